"""The write-ahead journal: every change ktriage makes, before and after it is made.

`<snapshot dir>/actions.jsonl` (mode 0600, in a 0700 directory) is only ever
appended to. Every action that goes through `ActionService.apply` writes two
lines:

- an **intent**, before the first API call: the action, the incident (its id
  and its first signal, which stay the same when the incident reappears after
  a restart), the target and subject, the exact planned changes, what undo
  would need, and a unique `uid`;
- a **result**, after it, naming the intent's uid: the result, the message,
  what a failure left behind, what undo needs, the containment facts re-read
  from the cluster and, for evidence, every file with its sha256 and size.

An intent without a result was cut short (ktriage was killed in the middle):
it is *unfinished*, offered on the next start for rollback or completion.
Each line names the cluster (its API server's address): lines of another
cluster are never used. Lines of the earlier format (one line per completed
action, `{"undone": uid}` when undone) are still read. Unreadable lines (a
line torn by a kill, garbage) are skipped and counted; a line longer than
`MAX_LINE_BYTES` is skipped; of a file larger than `MAX_JOURNAL_BYTES` only
the end is read, and the load says so. Free text (messages, titles, notes,
actor) is redacted like every output; the names and bodies that undo and
completion act on are kept exactly, or they would miss.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from ktriage.actions.base import ActionRecord, Change, Target
from ktriage.core.redact import redact_text
from ktriage.core.snapshot import make_private_dirs

JOURNAL_FILE = "actions.jsonl"
FORMAT = 2
# Of a journal larger than this, only the last this many bytes are read.
MAX_JOURNAL_BYTES = 16 << 20
# A line longer than this was not written by ktriage: skipped.
MAX_LINE_BYTES = 1 << 20
# A planned change body larger than this is kept as its size only.
MAX_BODY_BYTES = 64 << 10

INTENT = "intent"
RESULT = "result"


@dataclass(slots=True)
class Intent:
    """What ktriage was about to do (written before the first API call)."""

    uid: str
    id: str
    action: str  # the label: "isolate", "undo isolate"
    incident_id: str
    signal: str  # "<source>:<ref>" of the incident's first signal, "" when unknown
    target: Target
    subject: Target
    time: float
    actor: str
    title: str
    changes: list[dict[str, Any]] = field(default_factory=list)
    undo: dict[str, Any] = field(default_factory=dict)  # what undo would need
    undo_of: str = ""  # uid of the record an undo undoes
    files: list[str] = field(default_factory=list)  # evidence files planned

    @property
    def is_undo(self) -> bool:
        return bool(self.undo_of) or self.action.startswith("undo ")

    @property
    def base_action(self) -> str:
        """`isolate` for both `isolate` and `undo isolate`."""
        return self.action.removeprefix("undo ")


@dataclass(slots=True)
class Result:
    """How an intent ended (written after the action)."""

    intent: str  # the intent's uid
    result: str
    message: str = ""
    error: str = ""
    time: float = 0.0
    started: float = 0.0
    actor: str = ""
    leftovers: list[str] = field(default_factory=list)
    undo: dict[str, Any] = field(default_factory=dict)
    undoable: bool = False
    undo_note: str = ""
    containment: list[dict[str, str]] = field(default_factory=list)
    files: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    # Set when this result closes an unfinished intent of an earlier run:
    # "rollback" | "complete", and the uid of the action that did it.
    resolved: str = ""
    by: str = ""


@dataclass(slots=True)
class Entry:
    """One intent and, once it ended, its result."""

    intent: Intent
    result: Result | None = None

    @property
    def finished(self) -> bool:
        return self.result is not None


@dataclass(slots=True)
class Loaded:
    records: list[ActionRecord]  # completed actions, oldest first, undone ones marked
    entries: list[Entry] = field(default_factory=list)  # intents of this format, oldest first
    skipped: int = 0  # lines that could not be read
    problem: str = ""  # why the file could not be read (at all, or in full)

    def unfinished(self) -> list[Entry]:
        return [e for e in self.entries if not e.finished]


# ---- reading -----------------------------------------------------------------------


def _text(value: Any, name: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValueError(f"{name} is not text")
    return value


def _texts(value: Any, name: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{name} is not a list of text")
    return list(value)


def _dicts(value: Any, name: str) -> list[dict[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise ValueError(f"{name} is not a list of objects")
    return list(value)


def _object(value: Any, name: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError(f"{name} is not an object")
    return value


def _number(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} is not a number")
    return float(value)


def _target(value: Any) -> Target:
    if not isinstance(value, dict):
        raise ValueError("target is not an object")
    kind, namespace, name = value.get("kind"), value.get("namespace"), value.get("name")
    if type(kind) is not str or type(namespace) is not str or type(name) is not str or not name:
        raise ValueError("target lacks kind, namespace or name")
    return Target(kind, namespace, name)


def _target_json(target: Target) -> dict[str, str]:
    return {"kind": target.kind, "namespace": target.namespace, "name": target.name}


def _record(line: dict[str, Any]) -> ActionRecord:
    """A completed action in the earlier format (one line per action)."""
    strings = ("id", "action", "incident", "actor", "result", "summary", "undo_note")
    if not all(isinstance(line.get(k, ""), str) for k in strings):
        raise ValueError("a text field is not text")
    undo = line.get("undo") or {}
    if not isinstance(undo, dict) or not isinstance(line.get("time"), int | float):
        raise ValueError("undo or time of the wrong type")
    if not line.get("id") or not line.get("action"):
        raise ValueError("no id or action")
    return ActionRecord(
        id=line["id"],
        action=line["action"],
        incident_id=line.get("incident", ""),
        target=_target(line.get("target")),
        subject=_target(line.get("subject")),
        time=float(line["time"]),
        actor=line.get("actor", ""),
        result=line.get("result", ""),
        summary=line.get("summary", ""),
        undo=undo,
        undoable=line.get("undoable") is True,
        undo_note=line.get("undo_note", ""),
        uid=str(line.get("uid") or line["id"]),
    )


def _intent(line: dict[str, Any]) -> Intent:
    uid, rid, action = (_text(line.get(k), k) for k in ("uid", "id", "action"))
    if not uid or not action:
        raise ValueError("an intent without uid or action")
    changes = _dicts(line.get("changes"), "changes")
    for change in changes:
        _text(change.get("verb"), "verb")
        _target(change.get("target"))
    return Intent(
        uid=uid,
        id=rid or uid,
        action=action,
        incident_id=_text(line.get("incident"), "incident"),
        signal=_text(line.get("signal"), "signal"),
        target=_target(line.get("target")),
        subject=_target(line.get("subject")),
        time=_number(line.get("time"), "time"),
        actor=_text(line.get("actor"), "actor"),
        title=_text(line.get("title"), "title"),
        changes=changes,
        undo=_object(line.get("undo"), "undo"),
        undo_of=_text(line.get("undo_of"), "undo_of"),
        files=_texts(line.get("files"), "files"),
    )


def _result(line: dict[str, Any]) -> Result:
    uid = _text(line.get("intent"), "intent")
    result = _text(line.get("result"), "result")
    if not uid or not result:
        raise ValueError("a result without intent or result")
    files = _dicts(line.get("files"), "files")
    for f in files:
        _text(f.get("path"), "path")
    return Result(
        intent=uid,
        result=result,
        message=_text(line.get("message"), "message"),
        error=_text(line.get("error"), "error"),
        time=_number(line.get("time", 0), "time"),
        started=_number(line.get("started", 0), "started"),
        actor=_text(line.get("actor"), "actor"),
        leftovers=_texts(line.get("leftovers"), "leftovers"),
        undo=_object(line.get("undo"), "undo"),
        undoable=line.get("undoable") is True,
        undo_note=_text(line.get("undo_note"), "undo_note"),
        containment=_dicts(line.get("containment"), "containment"),
        files=files,
        warnings=_texts(line.get("warnings"), "warnings"),
        resolved=_text(line.get("resolved"), "resolved"),
        by=_text(line.get("by"), "by"),
    )


def entry_record(entry: Entry) -> ActionRecord:
    """The ActionRecord of a finished entry (what `records()` and undo use)."""
    intent, result = entry.intent, entry.result
    assert result is not None
    return ActionRecord(
        id=intent.id,
        action=intent.action,
        incident_id=intent.incident_id,
        target=intent.target,
        subject=intent.subject,
        time=result.time or intent.time,
        actor=result.actor or intent.actor,
        result=result.result,
        summary=result.message,
        undo=dict(result.undo),
        undoable=result.undoable,
        undo_note=result.undo_note,
        uid=intent.uid,
    )


def _tail(data: bytes, size: int) -> bytes:
    """The last whole lines of a journal read from its end (the first line is cut)."""
    if size <= MAX_JOURNAL_BYTES:
        return data
    cut = data.find(b"\n")
    return data[cut + 1 :] if cut >= 0 else b""


class ActionJournal:
    def __init__(self, directory: Path) -> None:
        self.path = Path(directory) / JOURNAL_FILE

    def load(self, cluster: str) -> Loaded:
        """Everything taken on this cluster, oldest first (see the module docstring)."""
        loaded = Loaded([])
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            return loaded
        except OSError as exc:
            loaded.problem = f"cannot read {self.path}: {exc.strerror or exc}"
            return loaded
        try:
            with open(self.path, "rb") as fh:
                if size > MAX_JOURNAL_BYTES:
                    fh.seek(size - MAX_JOURNAL_BYTES)
                data = _tail(fh.read(MAX_JOURNAL_BYTES), size)
        except OSError as exc:
            loaded.problem = f"cannot read {self.path}: {exc.strerror or exc}"
            return loaded
        if size > MAX_JOURNAL_BYTES:
            loaded.problem = (
                f"{self.path} is larger than {MAX_JOURNAL_BYTES >> 20} MiB: "
                "only its last lines were read"
            )
        self._parse(data, cluster, loaded)
        return loaded

    def _parse(self, data: bytes, cluster: str, loaded: Loaded) -> None:
        by_uid: dict[str, ActionRecord] = {}
        entries: dict[str, Entry] = {}
        undone: list[str] = []
        for raw in data.split(b"\n"):
            if not raw.strip():
                continue
            if len(raw) > MAX_LINE_BYTES:
                loaded.skipped += 1
                continue
            try:
                line = orjson.loads(raw)
                if not isinstance(line, dict):
                    raise ValueError("not an object")
                if line.get("cluster") != cluster:
                    continue
                kind = line.get("kind")
                if kind == INTENT:
                    intent = _intent(line)
                    if intent.uid not in entries:
                        entries[intent.uid] = Entry(intent)
                        loaded.entries.append(entries[intent.uid])
                    continue
                if kind == RESULT:
                    ended = _result(line)
                    entry = entries.get(ended.intent)
                    if entry is None:
                        raise ValueError("a result for no known intent")
                    if entry.result is None:
                        entry.result = ended
                    continue
                if kind is not None:
                    raise ValueError(f"unknown kind {kind!r}")
                if "undone" in line:
                    undone.append(_text(line.get("undone"), "undone"))
                    continue
                record = _record(line)
            except (ValueError, TypeError, UnicodeDecodeError, RecursionError):
                loaded.skipped += 1
                continue
            by_uid[record.uid] = record
            loaded.records.append(record)
        # Entries of this format become records once they have a result.
        for entry in loaded.entries:
            if entry.result is None:
                continue
            record = entry_record(entry)
            by_uid[record.uid] = record
            loaded.records.append(record)
        loaded.records.sort(key=lambda r: r.time)
        for entry in loaded.entries:
            result = entry.result
            if (
                entry.intent.undo_of
                and result is not None
                and result.result
                in (
                    "undone",
                    "unchanged",
                )
            ):
                undone.append(entry.intent.undo_of)
        for uid in undone:
            if uid in by_uid:
                by_uid[uid].undone = True

    # ---- writing -------------------------------------------------------------------

    def _append(self, line: dict[str, Any]) -> None:
        """One whole line at the end of the file. A line torn by an earlier kill (no
        newline at the end) is ended first, so this one is not glued to it."""
        make_private_dirs(self.path.parent)
        # (default=str: a value an action put in its plan that JSON has no type for
        # is kept as its text rather than losing the whole line.)
        data = (json.dumps(line, sort_keys=True, ensure_ascii=True, default=str) + "\n").encode()
        flags = os.O_RDWR | os.O_CREAT | os.O_APPEND | getattr(os, "O_NOFOLLOW", 0)
        fd = os.open(self.path, flags, 0o600)
        try:
            size = os.fstat(fd).st_size
            if size and os.pread(fd, 1, size - 1) != b"\n":
                data = b"\n" + data
            os.write(fd, data)
        finally:
            os.close(fd)

    def intent(self, intent: Intent, cluster: str) -> None:
        """Raises OSError when the file cannot be written."""
        self._append(
            {
                "v": FORMAT,
                "kind": INTENT,
                "cluster": cluster,
                "uid": intent.uid,
                "id": intent.id,
                "action": intent.action,
                "incident": intent.incident_id,
                "signal": intent.signal,
                "target": _target_json(intent.target),
                "subject": _target_json(intent.subject),
                "time": intent.time,
                "actor": redact_text(intent.actor),
                "title": redact_text(intent.title),
                "changes": intent.changes,
                "undo": intent.undo,
                "undo_of": intent.undo_of,
                "files": intent.files,
            }
        )

    def result(self, result: Result, cluster: str) -> None:
        """Raises OSError when the file cannot be written."""
        line: dict[str, Any] = {
            "v": FORMAT,
            "kind": RESULT,
            "cluster": cluster,
            "intent": result.intent,
            "result": result.result,
            "message": redact_text(result.message),
            "error": redact_text(result.error),
            "time": result.time,
            "started": result.started,
            "actor": redact_text(result.actor),
            "leftovers": [redact_text(x) for x in result.leftovers],
            "undo": result.undo,
            "undoable": result.undoable,
            "undo_note": redact_text(result.undo_note),
            "containment": [_redacted_fact(f) for f in result.containment],
            "files": result.files,
            "warnings": [redact_text(w) for w in result.warnings],
        }
        if result.resolved:
            line["resolved"] = result.resolved
            line["by"] = result.by
        self._append(line)


def _redacted_fact(fact: dict[str, Any]) -> dict[str, Any]:
    return {
        k: redact_text(v) if k == "detail" and isinstance(v, str) else v for k, v in fact.items()
    }


def change_json(change: Change) -> dict[str, Any]:
    """A planned change as the intent keeps it: verb, target, exact body, words."""
    body = change.body
    if body is not None:
        size = len(json.dumps(body, default=str))
        if size > MAX_BODY_BYTES:
            body = {"omitted": f"{size} bytes"}
    return {
        "verb": change.verb,
        "target": _target_json(change.target),
        "body": body,
        "content_type": change.content_type,
        "summary": redact_text(change.summary),
    }


def change_target(change: dict[str, Any]) -> Target:
    return _target(change.get("target"))
