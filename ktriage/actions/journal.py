"""Actions taken, kept on disk so that they can still be undone after a restart.

`<snapshot dir>/actions.jsonl` (mode 0600, in a 0700 directory) gets one JSON line
per applied action, and one line when an action is undone. Each line names the
cluster (its API server's address): a record is only offered for undo on the
cluster it was taken on. Lines that cannot be read are skipped and counted; the
file is only ever appended to.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ktriage.actions.base import ActionRecord, Target
from ktriage.core.redact import redact_text
from ktriage.core.snapshot import make_private_dirs

JOURNAL_FILE = "actions.jsonl"
# A journal past this size is not read back (it is never that large in use).
MAX_JOURNAL_BYTES = 16 << 20


@dataclass(slots=True)
class Loaded:
    records: list[ActionRecord]
    skipped: int = 0  # lines that could not be read
    problem: str = ""  # why the file could not be read at all


def _target(value: Any) -> Target:
    if not isinstance(value, dict):
        raise ValueError("target is not an object")
    parts = [value.get(k) for k in ("kind", "namespace", "name")]
    if not all(isinstance(p, str) for p in parts) or not parts[2]:
        raise ValueError("target lacks kind, namespace or name")
    return Target(*parts)


def _target_json(target: Target) -> dict[str, str]:
    return {"kind": target.kind, "namespace": target.namespace, "name": target.name}


def _record(line: dict[str, Any]) -> ActionRecord:
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


class ActionJournal:
    def __init__(self, directory: Path) -> None:
        self.path = Path(directory) / JOURNAL_FILE

    def load(self, cluster: str) -> Loaded:
        """The records taken on this cluster, oldest first, with undone ones marked."""
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            return Loaded([])
        except OSError as exc:
            return Loaded([], problem=f"cannot read {self.path}: {exc.strerror or exc}")
        if size > MAX_JOURNAL_BYTES:
            return Loaded([], problem=f"{self.path} is larger than 16 MiB: not read")
        try:
            with open(self.path, "rb") as fh:
                lines = fh.read().splitlines()
        except OSError as exc:
            return Loaded([], problem=f"cannot read {self.path}: {exc.strerror or exc}")
        loaded = Loaded([])
        by_id: dict[str, ActionRecord] = {}
        for raw in lines:
            if not raw.strip():
                continue
            try:
                line = json.loads(raw)
                if not isinstance(line, dict):
                    raise ValueError("not an object")
                if line.get("cluster") != cluster:
                    continue
                undone = line.get("undone")
                if undone is not None:
                    if undone in by_id:
                        by_id[undone].undone = True
                    continue
                record = _record(line)
            except (ValueError, TypeError, UnicodeDecodeError):
                loaded.skipped += 1
                continue
            by_id[record.uid] = record
            loaded.records.append(record)
        return loaded

    def _append(self, line: dict[str, Any]) -> None:
        make_private_dirs(self.path.parent)
        data = (json.dumps(line, sort_keys=True, ensure_ascii=True) + "\n").encode()
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_NOFOLLOW", 0)
        fd = os.open(self.path, flags, 0o600)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)

    def record(self, record: ActionRecord, cluster: str) -> None:
        """Raises OSError when the file cannot be written.

        Free text (summary, note, actor) is redacted like every output; the names
        undo acts on (target, subject, undo) are kept exactly, or undo would miss."""
        self._append(
            {
                "cluster": cluster,
                "id": record.id,
                "uid": record.uid,
                "action": record.action,
                "incident": record.incident_id,
                "target": _target_json(record.target),
                "subject": _target_json(record.subject),
                "time": record.time,
                "actor": redact_text(record.actor),
                "result": record.result,
                "summary": redact_text(record.summary),
                "undo": record.undo,
                "undoable": record.undoable,
                "undo_note": redact_text(record.undo_note),
            }
        )

    def undone(self, record_uid: str, cluster: str) -> None:
        self._append({"cluster": cluster, "undone": record_uid})
