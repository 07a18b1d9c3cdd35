"""A replay read a slice at a time, so what is loaded can be shown while the rest loads.

`ktriage replay FILE` in the UI drives `SteppedReplay.steps()` on the UI's loop: each
step reads about SLICE_BYTES of a plain JSON-lines file through the same ingest and
correlate path as a whole replay (same events, same ids, same incidents), and the
caller hands the UI what changed between steps. Compressed files and JSON documents
cannot be cut at a line: each is read whole in one step, as `Replayer` reads it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from ktriage.core.archive import RawArchive
from ktriage.core.correlate import Correlator
from ktriage.core.ingest import Ingestor
from ktriage.core.model import Event
from ktriage.core.replay import Replayer, ReplayStats, _is_gzip, _looks_like_document

# Bytes of lines read per step: a few milliseconds of work, so a caller that yields
# to the UI every few steps keeps keys answered.
SLICE_BYTES = 256 << 10


class SteppedReplay:
    """Files fed to a correlator step by step; `complete` only once every byte is read
    and the ingestor flushed (requests held for a response come out then)."""

    def __init__(
        self,
        correlator: Correlator,
        ingestor: Ingestor,
        archive: RawArchive,
        paths: list[Path],
        *,
        slice_bytes: int = SLICE_BYTES,
    ) -> None:
        self.correlator = correlator
        self.ingestor = ingestor
        self.archive = archive
        self.paths = list(paths)
        self.slice_bytes = max(1, slice_bytes)
        self.replayer = Replayer(correlator, ingestor, archive)
        self.total_bytes = sum(_size(p) for p in self.paths)
        self.read_bytes = 0
        self.complete = False
        # Incidents changed since the caller last took them (take_changed).
        self._changed: set[str] = set()
        # The newest event time loaded: "now" of a replay is the end of the recording.
        self.newest: float | None = None
        self._seen = len(correlator.store)

    @property
    def stats(self) -> ReplayStats:
        return self.replayer.stats

    def fraction(self) -> float:
        """How much of the input is read, 0.0 to 1.0 (1.0 only when complete)."""
        if self.complete:
            return 1.0
        if self.total_bytes <= 0:
            return 0.0
        return min(self.read_bytes / self.total_bytes, 0.999)

    def take_changed(self) -> tuple[set[str], list[Event]]:
        """(incidents changed, events stored) since the previous call."""
        changed, self._changed = self._changed, set()
        store = self.correlator.store
        events = store.since(self._seen)
        self._seen = len(store)
        newest = max((ev.time for ev in events), default=None)
        if newest is not None and (self.newest is None or newest > self.newest):
            self.newest = newest
        return changed, events

    def _emit(self, event: Event) -> None:
        changed = self.correlator.add(event)
        if changed:
            self._changed |= changed

    def _feed(self, events: list[Event]) -> None:
        for ev in events:
            self._emit(ev)
        self.replayer.stats.events += len(events)

    def steps(self) -> Iterator[None]:
        """Read the input, yielding after each slice."""
        self.replayer.check(self.paths)
        for path in self.paths:
            size = _size(path)
            if _is_gzip(path) or _is_document(path):
                # Not cut at a line: read whole, as a replay reads it.
                self.replayer.replay_file(path)
                self._changed |= set(self.correlator.incidents)
                self.read_bytes += size
                yield
            else:
                yield from self._plain_lines(path)
        self._feed(self.ingestor.flush())
        self.complete = True

    def _plain_lines(self, path: Path) -> Iterator[None]:
        stats = self.replayer.stats
        stats.files += 1
        name = path.name
        ingestor = self.ingestor
        ingestor.start_input(name)
        archive_id = self.archive.register_file(path)
        offset = 0
        line = 0
        start = self.read_bytes
        try:
            with open(path, "rb") as fh:
                while True:
                    chunk = fh.readlines(self.slice_bytes)
                    if not chunk:
                        break
                    lines, events = ingestor.feed_lines(
                        chunk,
                        name,
                        self._emit,
                        archive=archive_id,
                        spool=self.archive.spool,
                        start_offset=offset,
                        start_line=line,
                        shed_texts=True,
                    )
                    offset += sum(map(len, chunk))
                    line += lines
                    stats.lines += lines
                    stats.events += events
                    self.read_bytes = start + offset
                    yield
        except OSError as exc:
            # Unreadable part way (a file removed or cut under us): keep what was read.
            ingestor.count_skip(name, "unreadable-file", str(exc))
        self.read_bytes = start + max(offset, _size(path))


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _is_document(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            return _looks_like_document(fh.read(65536))
    except OSError:
        return False
