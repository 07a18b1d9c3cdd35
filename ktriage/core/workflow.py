"""What the responders decided about an incident: acknowledged, status, owner, notes.

Kept in a local SQLite database (`workflow.sqlite3` under the state directory,
WAL, the file readable by the user alone), keyed by cluster and incident id, so an
incident that comes back after a restart, or in a replay of the same data, comes
back with its status and notes. Every change is a row of its own (an append-only
history): the current state of an incident is its latest rows, and the history
becomes timeline events.

Statuses move new → investigating → contained → resolved, or to false-positive (a
reason is required); any status may be set again later (a resolved incident can be
reopened). Text from the user is stored as typed and escaped where it is shown, like
every other untrusted string.
"""

from __future__ import annotations

import contextlib
import os
import re
import sqlite3
import time
import tomllib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ktriage.core.allowlist import MAX_ARGUMENTS, AllowListError, entries_from_text
from ktriage.core.model import Event
from ktriage.core.sessions import default_state_dir

DB_FILE = "workflow.sqlite3"

NEW = "new"
INVESTIGATING = "investigating"
CONTAINED = "contained"
RESOLVED = "resolved"
FALSE_POSITIVE = "false-positive"
STATUSES = (NEW, INVESTIGATING, CONTAINED, RESOLVED, FALSE_POSITIVE)
# Statuses that need a reason ("why is this a false positive?").
NEEDS_REASON = frozenset({FALSE_POSITIVE})

# What one row records.
ACK = "ack"
STATUS = "status"
OWNER = "owner"
NOTE = "note"
KINDS = (ACK, STATUS, OWNER, NOTE)

MAX_TEXT = 10_000  # characters of one note or reason
_SCHEMA = """
CREATE TABLE IF NOT EXISTS changes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    cluster TEXT NOT NULL,
    incident TEXT NOT NULL,
    time REAL NOT NULL,
    actor TEXT NOT NULL,
    kind TEXT NOT NULL,
    value TEXT NOT NULL,
    reason TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS changes_by_incident ON changes (cluster, incident, id);
"""


class WorkflowError(Exception):
    """A change that cannot be made, in plain words."""


class StoreUnavailable(WorkflowError):
    """The database cannot be opened, read or written (corrupt, locked, no space):
    the change itself was fine, and may be kept in memory and saved later."""


@dataclass(frozen=True, slots=True)
class Change:
    time: float
    actor: str
    kind: str  # ack | status | owner | note
    value: str
    reason: str = ""
    # The database row (0: not saved yet): with the cluster and incident, a stable
    # name for the change across restarts.
    row: int = 0

    def words(self) -> str:
        """`status → false-positive (reason)`, `note: ...`, `acknowledged`."""
        if self.kind == ACK:
            return "acknowledged"
        if self.kind == STATUS:
            return f"status → {self.value}" + (f" ({self.reason})" if self.reason else "")
        if self.kind == OWNER:
            return f"owner → {self.value}"
        return f"note: {self.value}"


@dataclass(slots=True)
class IncidentWork:
    """The responders' state of one incident, from its history."""

    incident: str
    status: str = NEW
    reason: str = ""
    owner: str = ""
    acknowledged: bool = False
    acknowledged_by: str = ""
    notes: list[Change] = field(default_factory=list)
    history: list[Change] = field(default_factory=list)

    def apply(self, change: Change) -> None:
        self.history.append(change)
        if change.kind == ACK:
            self.acknowledged = True
            self.acknowledged_by = change.actor
        elif change.kind == STATUS:
            self.status, self.reason = change.value, change.reason
            self.acknowledged = True  # setting a status is looking at it
            self.acknowledged_by = self.acknowledged_by or change.actor
        elif change.kind == OWNER:
            self.owner = change.value
        elif change.kind == NOTE:
            self.notes.append(change)


def saved_workflow(
    cluster: str, directory: Path | None = None
) -> tuple[dict[str, IncidentWork], str]:
    """Every incident's workflow of `cluster` in an existing database (none is
    created), and the problem in words when it cannot be read ("" when none)."""
    directory = directory or default_state_dir()
    if not (directory / DB_FILE).exists():
        return {}, ""
    try:
        return WorkflowStore(directory).load_all(cluster), ""
    except (WorkflowError, OSError) as exc:
        return {}, str(exc)


def default_actor() -> str:
    """Who is at the keyboard when the cluster identity is not known: `$USER`."""
    return os.environ.get("USER") or os.environ.get("USERNAME") or "unknown"


def check(kind: str, value: str, reason: str = "") -> tuple[str, str]:
    """A change's value and reason as they are saved, or WorkflowError saying why
    the change cannot be made."""
    if kind not in KINDS:
        raise WorkflowError(f"unknown change {kind!r}")
    reason = _text(reason, "the reason")
    if kind == ACK:
        return "", ""
    if kind == STATUS:
        if value not in STATUSES:
            raise WorkflowError(f"unknown status {value!r} (use {', '.join(STATUSES)})")
        if value in NEEDS_REASON and not reason:
            raise WorkflowError(f"say why the incident is a {value}")
        return value, reason
    what = "the owner" if kind == OWNER else "the note"
    value = _text(value, what)
    if not value:
        raise WorkflowError(f"{what} is empty")
    return value, ""


def _text(value: str, what: str) -> str:
    if not isinstance(value, str):
        raise WorkflowError(f"{what} must be text")
    value = value.replace("\x00", "").strip()
    if len(value) > MAX_TEXT:
        raise WorkflowError(f"{what} is longer than {MAX_TEXT} characters")
    return value


class WorkflowStore:
    """The database for one state directory. Thread-safe enough for one UI: each call
    opens its own short transaction; a second ktriage on the same directory sees the
    other's changes on its next read (WAL)."""

    def __init__(
        self,
        directory: Path | str,
        clock: Callable[[], float] = time.time,
        *,
        timeout: float = 5.0,
    ) -> None:
        self.directory = Path(directory)
        self.path = self.directory / DB_FILE
        self.clock = clock
        self.timeout = timeout  # seconds to wait for another writer's lock
        from ktriage.core.snapshot import make_private_dirs  # snapshot imports this module

        try:
            make_private_dirs(self.directory)
            # Created 0600 before SQLite opens it (SQLite would use the umask).
            flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0)
            fd = os.open(self.path, flags, 0o600)
            os.close(fd)
            os.chmod(self.path, 0o600)
        except OSError as exc:
            raise StoreUnavailable(f"cannot open {self.path}: {exc.strerror or exc}") from exc
        with self._connect() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(_SCHEMA)

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        try:
            db = sqlite3.connect(self.path, timeout=self.timeout)
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"cannot open {self.path}: {exc}") from exc
        try:
            with db:
                yield db
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc) or "busy" in str(exc):
                raise StoreUnavailable(
                    f"{self.path} is locked by another program; try again"
                ) from exc
            raise StoreUnavailable(f"{self.path} cannot be used ({exc})") from exc
        except sqlite3.DatabaseError as exc:
            raise StoreUnavailable(
                f"{self.path} cannot be used ({exc}); move it away to start a new one"
            ) from exc
        finally:
            db.close()
        # The WAL and shared-memory files hold the same data: keep them private too.
        for suffix in ("-wal", "-shm"):
            side = self.path.with_name(self.path.name + suffix)
            with contextlib.suppress(FileNotFoundError):
                os.chmod(side, 0o600)

    def _add(
        self,
        cluster: str,
        incident: str,
        actor: str,
        kind: str,
        value: str,
        reason: str = "",
        when: float | None = None,
    ) -> Change:
        actor = _text(actor, "the actor") or default_actor()
        at = self.clock() if when is None else when
        with self._connect() as db:
            cursor = db.execute(
                "INSERT INTO changes (cluster, incident, time, actor, kind, value, reason) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (cluster, incident, at, actor, kind, value, reason),
            )
            row = cursor.lastrowid or 0
        return Change(at, actor, kind, value, reason, row)

    def save(self, cluster: str, incident: str, change: Change) -> Change:
        """Save a change made while the database could not be written (its time and
        actor kept); the saved change, with its row."""
        value, reason = check(change.kind, change.value, change.reason)
        return self._add(
            cluster, incident, change.actor, change.kind, value, reason, when=change.time
        )

    def acknowledge(self, cluster: str, incident: str, actor: str = "") -> Change:
        return self._add(cluster, incident, actor, ACK, "")

    def set_status(
        self, cluster: str, incident: str, status: str, *, reason: str = "", actor: str = ""
    ) -> Change:
        status, reason = check(STATUS, status, reason)
        return self._add(cluster, incident, actor, STATUS, status, reason)

    def set_owner(self, cluster: str, incident: str, owner: str, *, actor: str = "") -> Change:
        owner, _ = check(OWNER, owner)
        return self._add(cluster, incident, actor, OWNER, owner)

    def add_note(self, cluster: str, incident: str, text: str, *, actor: str = "") -> Change:
        text, _ = check(NOTE, text)
        return self._add(cluster, incident, actor, NOTE, text)

    def load(self, cluster: str, incident: str) -> IncidentWork:
        work = IncidentWork(incident)
        with self._connect() as db:
            rows = db.execute(
                "SELECT time, actor, kind, value, reason, id FROM changes "
                "WHERE cluster = ? AND incident = ? ORDER BY id",
                (cluster, incident),
            ).fetchall()
        for row in rows:
            if row[2] in KINDS:
                work.apply(Change(*row))
        return work

    def load_all(self, cluster: str) -> dict[str, IncidentWork]:
        """Every incident of the cluster that has any change, by id."""
        out: dict[str, IncidentWork] = {}
        with self._connect() as db:
            rows = db.execute(
                "SELECT incident, time, actor, kind, value, reason, id FROM changes "
                "WHERE cluster = ? ORDER BY id",
                (cluster,),
            ).fetchall()
        for incident, *rest in rows:
            if rest[2] in KINDS:
                out.setdefault(incident, IncidentWork(incident)).apply(Change(*rest))
        return out


# ---- a false positive becomes allow-list entries -----------------------------------

USER_ALLOWLIST_FILE = "allowlist.toml"  # in the config directory, beside config.toml
MAX_RULES = 20


@dataclass(slots=True)
class RulePreview:
    """The allow-list entries that would mark an incident's signals as expected,
    checked against those signals: `covered` are the signals they match (with the
    entry's name), `not_covered` the others with the reason."""

    toml: str
    entries: int
    covered: list[tuple[Event, str]] = field(default_factory=list)
    not_covered: list[tuple[Event, str]] = field(default_factory=list)

    def lines(self) -> list[str]:
        """What saving it would do, in words (untrusted text left to the caller to
        show safely)."""
        out = [f"{self.entries} allow-list entr{'y' if self.entries == 1 else 'ies'}:"]
        out += [f"  {line}" for line in self.toml.strip().split("\n")]
        out.append("")
        out.append(
            f"Marks as expected {len(self.covered)} of the incident's signals "
            "(they stay in timelines as context):"
        )
        out += [f"  {ev.source} {ev.kind}: {ev.summary[:160]}" for ev, _ in self.covered[:30]]
        if len(self.covered) > 30:
            out.append(f"  … {len(self.covered) - 30} more")
        out.append(
            "An API entry matches that identity only, with that verb on that object in that "
            "namespace (for an exec: any command). A runtime entry matches that program with "
            "exactly those arguments and that parent, in any pod. Anything else still signals."
        )
        if self.not_covered:
            out.append("")
            out.append(f"Not covered ({len(self.not_covered)}), they still signal:")
            out += [f"  {ev.source} {ev.kind}: {why}" for ev, why in self.not_covered[:20]]
        return out


def _toml_str(text: str) -> str:
    """A TOML basic string: quotes, backslashes and every control character escaped."""
    out = []
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ch == "\x7f":
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _toml_list(values: list[str]) -> str:
    return "[" + ", ".join(_toml_str(v) for v in values) + "]"


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _base(path: str) -> str:
    return path.rsplit("/", 1)[-1]


def _rule_of(ev: Event, raw: Any) -> tuple[dict[str, Any] | None, str, tuple[Any, ...]]:
    """The allow-list fields that match exactly this signal, the reason none can,
    and the values to check the parsed entry against."""
    if not isinstance(raw, dict):
        return None, "its raw record is not available", ()
    if ev.source == "audit":
        user = _dict(raw.get("user")).get("username")
        if not isinstance(user, str) or not user:
            return None, "the request names no authenticated user", ()
        if raw.get("impersonatedUser"):
            return None, "an impersonated request is never expected", ()
        oref = _dict(raw.get("objectRef"))
        verb = str(raw.get("verb") or "")
        resource = str(oref.get("resource") or "")
        if oref.get("subresource"):
            resource += f"/{oref['subresource']}"
        namespace, name = str(oref.get("namespace") or ""), str(oref.get("name") or "")
        rule: dict[str, Any] = {"users": [user], "verbs": [verb], "resources": [resource]}
        rule["namespaces"] = [namespace]
        if name:
            rule["names"] = [name]
        check_args = (user, verb, resource, namespace, name, str(raw.get("requestURI") or ""))
        return rule, "", check_args
    if ev.source == "tetragon":
        body = raw.get("process_exec")
        if not isinstance(body, dict):
            return None, "allow lists match Tetragon process executions only", ()
        proc, parent = _dict(body.get("process")), _dict(body.get("parent"))
        binary, args = str(proc.get("binary") or ""), str(proc.get("arguments") or "")
        parent_binary = str(parent.get("binary") or "")
    elif ev.source == "falco":
        fields = _dict(raw.get("output_fields"))
        cmdline = fields.get("proc.cmdline")
        exe = fields.get("proc.exepath") or fields.get("proc.exe") or fields.get("proc.name")
        if not isinstance(cmdline, str) or not isinstance(exe, str):
            return None, "the alert names no process", ()
        binary, args = exe, cmdline.partition(" ")[2]
        pname = fields.get("proc.pname")
        parent_binary = pname if isinstance(pname, str) else ""
    else:
        return None, f"allow lists do not cover {ev.source} events", ()
    if not binary:
        return None, "the event names no program", ()
    if len(args) > MAX_ARGUMENTS:
        return None, f"its arguments are longer than {MAX_ARGUMENTS} characters", ()
    if not args.strip():
        # Allow lists cannot name a pod: `sh` with no arguments would be expected in
        # every pod of the cluster. Someone who means that writes it by hand.
        return None, f"{_base(binary)} with no arguments would be expected in every pod", ()
    rule = {"source": ev.source, "binaries": [_base(binary)], "arguments": re.escape(args)}
    if parent_binary:
        rule["parents"] = [_base(parent_binary)]
    return rule, "", (binary, args, parent_binary)


def false_positive_rules(
    incident_id: str,
    events: Sequence[Event],
    reason: str,
    raw_loader: Callable[[Event], Any] | None = None,
) -> RulePreview:
    """The allow-list entries that would keep this incident's signals from
    signalling again: one per distinct (identity, verb, resource, namespace, name,
    detection) or (source, program, arguments, parent, detection), each checked
    by parsing it back and matching it against the signal it was written for."""
    reason = check(STATUS, FALSE_POSITIVE, reason)[1]
    blocks: dict[str, tuple[str, list[Event], tuple[Any, ...], str]] = {}
    not_covered: list[tuple[Event, str]] = []
    for ev in events:
        if not ev.signal or ev.source == "ktriage":
            continue
        raw = ev.raw_inline
        if raw is None and raw_loader is not None and ev.raw is not None:
            try:
                raw = raw_loader(ev)
            except Exception:  # unreadable: not covered, said below
                raw = None
        fields, why, check_args = _rule_of(ev, raw)
        if fields is None:
            not_covered.append((ev, why))
            continue
        fields["kinds"] = [ev.kind]
        body = "\n".join(
            f"{key} = {_toml_str(v) if isinstance(v, str) else _toml_list(v)}"
            for key, v in fields.items()
        )
        if body in blocks:
            blocks[body][1].append(ev)
            continue
        if len(blocks) >= MAX_RULES:
            not_covered.append((ev, f"more than {MAX_RULES} distinct entries would be needed"))
            continue
        name = f"{incident_id} false positive {len(blocks) + 1}"
        blocks[body] = (name, [ev], check_args, fields.get("source", "audit"))
    text_parts = []
    for body, (name, _evs, _args, _src) in blocks.items():
        text_parts.append(
            f"[[allow]]\nname = {_toml_str(name)}\nreason = {_toml_str(reason)}\n{body}\n"
        )
    text = "\n".join(text_parts)
    preview = RulePreview(toml=text, entries=len(blocks), not_covered=not_covered)
    if not blocks:
        return preview
    # Parsed back as ktriage will read it, and matched against each signal.
    entries = {e.name: e for e in entries_from_text(text, "(preview)")}
    for name, evs, args, source in blocks.values():
        entry = entries.get(name)
        for ev in evs:
            if entry is None:
                ok = False
            elif source == "audit":
                user, verb, resource, namespace, obj, uri = args
                ok = entry.matches_request(
                    user, verb, resource, namespace, obj, uri, lambda: None, ev.kind
                )
            else:
                binary, arguments, parent = args
                ok = entry.matches_process(binary, arguments, parent, ev.kind)
            if ok:
                preview.covered.append((ev, name))
            else:
                preview.not_covered.append((ev, "the entry written for it does not match it"))
    return preview


def save_rules(path: Path, preview: RulePreview, header: str = "") -> Path:
    """Append the preview's entries to the allow-list file at `path` (0600, in a
    0700 directory), after checking the whole file still reads as an allow list;
    AllowListError (nothing written) otherwise."""
    from ktriage.core.snapshot import write_private

    existing = ""
    if path.exists():
        try:
            existing = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise AllowListError(f"cannot read {path}: {exc}") from exc
    if existing and not existing.endswith("\n"):
        existing += "\n"
    block = (f"\n# {header}\n" if header else "\n") + preview.toml
    entries_from_text(existing + block, str(path))  # the whole file must still load
    return write_private(path, existing + block)


def user_allowlist() -> tuple[Path, bool]:
    """The user's allow-list file, and whether the config lists it under
    `[allowlist] files` (only then is it read, at the next start)."""
    from ktriage.core.config import config_dir, default_config_path

    path = config_dir() / USER_ALLOWLIST_FILE
    config = default_config_path()
    try:
        data = tomllib.loads(config.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return path, False
    files = _dict(data.get("allowlist")).get("files")
    listed = isinstance(files, list) and any(
        isinstance(f, str) and (config.parent / f).resolve() == path.resolve() for f in files
    )
    return path, listed
