"""The files the simulated cluster writes: the API server's audit log and the
Falco and Tetragon JSON-line streams, as they would appear on a real node."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import orjson


class JsonLineFile:
    """Append-only JSON-lines file, safe to call from several threads."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._fh = os.fdopen(fd, "ab", buffering=0)
        self.lines = 0

    def write(self, record: dict[str, Any]) -> bytes:
        line = orjson.dumps(record) + b"\n"
        with self._lock:
            self._fh.write(line)
            self.lines += 1
        return line

    def write_raw(self, line: bytes) -> None:
        """One line exactly as given (a scenario's hostile record), newline added."""
        with self._lock:
            self._fh.write(line.rstrip(b"\n") + b"\n")
            self.lines += 1

    def write_many(self, records: list[dict[str, Any]]) -> None:
        data = b"".join(orjson.dumps(r) + b"\n" for r in records)
        with self._lock:
            self._fh.write(data)
            self.lines += len(records)

    def close(self) -> None:
        with self._lock:
            self._fh.close()


class SimOutputs:
    """`audit.log`, `falco.jsonl` and `tetragon.jsonl` in one directory."""

    def __init__(self, directory: Path | str) -> None:
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.audit_path = self.dir / "audit.log"
        self.falco_path = self.dir / "falco.jsonl"
        self.tetragon_path = self.dir / "tetragon.jsonl"
        # A new cluster starts new streams: what an earlier run left in the directory
        # describes a cluster that is gone (followed from the start, it would come back as
        # today's incidents). It is kept beside them, not deleted.
        self.kept_previous: list[Path] = []
        for path in (self.audit_path, self.falco_path, self.tetragon_path):
            if path.is_file() and path.stat().st_size:
                previous = path.with_name(path.name + ".previous")
                os.replace(path, previous)
                self.kept_previous.append(previous)
        self.audit = JsonLineFile(self.audit_path)
        self.falco = JsonLineFile(self.falco_path)
        self.tetragon = JsonLineFile(self.tetragon_path)

    def close(self) -> None:
        for f in (self.audit, self.falco, self.tetragon):
            f.close()
