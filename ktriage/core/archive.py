"""Raw records kept on disk and addressed by offset, so events stay small in memory.

A plain input file is registered as it is (its lines are read back by offset);
anything else (network input, decompressed or re-serialized records) is appended
to a private spool file.
"""

from __future__ import annotations

import itertools
import os
from _thread import allocate_lock
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from ktriage.core.model import Event, RawRef
from ktriage.core.salvage import prune_depth

if TYPE_CHECKING:
    import tempfile

# Archive ids are unique in the process (not per archive): an event's packed raw
# reference then names its file alone, and `archive_for` finds the archive again.
_NEXT_ID = itertools.count()
# Held for as long as the process runs: events outlive the replayer that read them,
# and an event that shed its texts reads them again from its file (an archive is a
# few hundred bytes; its files are opened again on demand once closed).
_ARCHIVES: dict[int, RawArchive] = {}


def archive_for(archive_id: int) -> RawArchive | None:
    """The archive that gave out `archive_id`."""
    return _ARCHIVES.get(archive_id)


def registered_file(archive_id: int) -> Path | None:
    """The plain file registered under `archive_id` (None: no such id, or the spool)."""
    archive = _ARCHIVES.get(archive_id)
    if archive is None or archive_id == archive._spool_id:
        return None
    return archive._paths.get(archive_id)


class RawArchive:
    """Maps RawRef(archive, offset, length) to bytes on disk."""

    def __init__(self, spool_dir: Path | str | None = None) -> None:
        self._paths: dict[int, Path] = {}
        self._handles: dict[int, Any] = {}
        # (The threading module's Lock, without importing it: a replay needs no more.)
        self._lock = allocate_lock()
        self._spool_id: int | None = None
        self._spool_fh: Any = None
        self._spool_size = 0
        self._spool_dir = Path(spool_dir) if spool_dir else None
        self._tmpdir: tempfile.TemporaryDirectory[str] | None = None

    def register_file(self, path: Path | str) -> int:
        """Register a plain file whose bytes stay where they are; returns its id."""
        with self._lock:
            return self._add_path(Path(path))

    def _add_path(self, path: Path) -> int:
        archive_id = next(_NEXT_ID)
        self._paths[archive_id] = path
        _ARCHIVES[archive_id] = self
        return archive_id

    def _open_spool(self) -> None:
        if self._spool_dir is None:
            import tempfile  # only records that are not lines of a plain file are spooled

            self._tmpdir = tempfile.TemporaryDirectory(prefix="ktriage-spool-")
            self._spool_dir = Path(self._tmpdir.name)
        self._spool_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = self._spool_dir / f"spool-{os.getpid()}-{id(self):x}.jsonl"
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
        self._spool_fh = os.fdopen(fd, "w+b", buffering=0)
        self._spool_id = self._add_path(path)

    def spool(self, data: bytes) -> RawRef:
        """Append a raw record to the spool and return where it is."""
        with self._lock:
            if self._spool_fh is None:
                self._open_spool()
            offset = self._spool_size
            self._spool_fh.write(data + b"\n")
            self._spool_size += len(data) + 1
            assert self._spool_id is not None
            return RawRef(self._spool_id, offset, len(data))

    def spool_record(self, record: Any) -> RawRef:
        return self.spool(orjson.dumps(record))

    def read(self, ref: RawRef) -> bytes:
        with self._lock:
            fh = self._handles.get(ref.archive)
            if fh is None:
                if ref.archive == self._spool_id:
                    fh = self._spool_fh
                else:
                    fh = open(self._paths[ref.archive], "rb")
                self._handles[ref.archive] = fh
            fh.seek(ref.offset)
            data = fh.read(ref.length)
            if ref.archive == self._spool_id:
                fh.seek(0, os.SEEK_END)
            return data

    def load(self, ref: RawRef) -> Any:
        """The raw record decoded from JSON (None when it is not valid JSON any more)."""
        try:
            record = orjson.loads(self.read(ref))
        except (orjson.JSONDecodeError, OSError, IndexError, KeyError):
            return None
        # A hostile record nested hundreds deep must not crash what shows it.
        return prune_depth(record)

    def record(self, event: Event) -> Any:
        """The raw record behind an event (kept inline or on disk), or None."""
        if event.raw_inline is not None:
            return event.raw_inline
        if event.raw is not None:
            return self.load(event.raw)
        return None

    def close(self) -> None:
        with self._lock:
            for archive, fh in self._handles.items():
                if archive != self._spool_id:
                    fh.close()
            self._handles.clear()
            if self._spool_fh is not None:
                self._spool_fh.close()
                self._spool_fh = None
            if self._tmpdir is not None:
                self._tmpdir.cleanup()
                self._tmpdir = None
