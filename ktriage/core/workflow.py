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
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

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


@dataclass(frozen=True, slots=True)
class Change:
    time: float
    actor: str
    kind: str  # ack | status | owner | note
    value: str
    reason: str = ""

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


def default_state_dir() -> Path:
    """`$XDG_STATE_HOME/ktriage` (~/.local/state/ktriage): where the database lives."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "ktriage"


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

    def __init__(self, directory: Path | str, clock: Callable[[], float] = time.time) -> None:
        self.directory = Path(directory)
        self.path = self.directory / DB_FILE
        self.clock = clock
        from ktriage.core.snapshot import make_private_dirs  # snapshot imports this module

        make_private_dirs(self.directory)
        # Created 0600 before SQLite opens it (SQLite would use the umask).
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o600)
        os.close(fd)
        os.chmod(self.path, 0o600)
        with self._connect() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(_SCHEMA)

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        try:
            db = sqlite3.connect(self.path, timeout=5.0)
        except sqlite3.Error as exc:
            raise WorkflowError(f"cannot open {self.path}: {exc}") from exc
        try:
            with db:
                yield db
        except sqlite3.DatabaseError as exc:
            raise WorkflowError(
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
        self, cluster: str, incident: str, actor: str, kind: str, value: str, reason: str = ""
    ) -> Change:
        change = Change(self.clock(), _text(actor, "the actor") or default_actor(), kind, value,
                        reason)  # fmt: skip
        with self._connect() as db:
            db.execute(
                "INSERT INTO changes (cluster, incident, time, actor, kind, value, reason) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (cluster, incident, change.time, change.actor, kind, value, reason),
            )
        return change

    def acknowledge(self, cluster: str, incident: str, actor: str = "") -> Change:
        return self._add(cluster, incident, actor, ACK, "")

    def set_status(
        self, cluster: str, incident: str, status: str, *, reason: str = "", actor: str = ""
    ) -> Change:
        if status not in STATUSES:
            raise WorkflowError(f"unknown status {status!r} (use {', '.join(STATUSES)})")
        reason = _text(reason, "the reason")
        if status in NEEDS_REASON and not reason:
            raise WorkflowError(f"say why the incident is a {status}")
        return self._add(cluster, incident, actor, STATUS, status, reason)

    def set_owner(self, cluster: str, incident: str, owner: str, *, actor: str = "") -> Change:
        owner = _text(owner, "the owner")
        if not owner:
            raise WorkflowError("the owner is empty")
        return self._add(cluster, incident, actor, OWNER, owner)

    def add_note(self, cluster: str, incident: str, text: str, *, actor: str = "") -> Change:
        text = _text(text, "the note")
        if not text:
            raise WorkflowError("the note is empty")
        return self._add(cluster, incident, actor, NOTE, text)

    def load(self, cluster: str, incident: str) -> IncidentWork:
        work = IncidentWork(incident)
        with self._connect() as db:
            rows = db.execute(
                "SELECT time, actor, kind, value, reason FROM changes "
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
                "SELECT incident, time, actor, kind, value, reason FROM changes "
                "WHERE cluster = ? ORDER BY id",
                (cluster,),
            ).fetchall()
        for incident, *rest in rows:
            if rest[2] in KINDS:
                out.setdefault(incident, IncidentWork(incident)).apply(Change(*rest))
        return out
