"""Following a growing JSON-lines file the way `tail -F` does, and the file source.

`FileFollower` yields complete lines as a file grows. It copes with what log
files do in practice:

- rotation by rename and re-create (kube-apiserver's lumberjack, logrotate's
  default): the old file is read to its end first, then the new one from its start;
- copy-truncate (the file shrinks): reading restarts at offset 0;
- a partial last line: held until its newline arrives, so it is read once, whole;
- a file that does not exist yet: waited for, and health says so;
- lines over `MAX_LINE`: never held whole; streamed through a scanner that reads
  the fields detections need (core/salvage.py), handed on as a small SalvagedLine
  (the ingestor counts it as too long, read partially).

Reading is in bounded chunks with a yield to the loop after each, and the next
chunk is read only when the consumer has taken the previous lines: a slow
consumer slows reading down instead of growing memory.

Raw records: a followed file can be rotated away, compressed or truncated under
us, so offsets into it do not stay valid. Each line that is parsed is therefore
copied to the engine's spool (`RawArchive.spool`) and events point there.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import aiofiles
import orjson

from ktriage.core.ingest import MAX_LINE, MAX_SKIP_LOG, Ingestor
from ktriage.core.model import Event, parse_time
from ktriage.core.salvage import RecordScanner, SalvagedLine
from ktriage.engine import Engine, SourceHealth
from ktriage.sources.base import deliver

CHUNK = 256 * 1024
POLL_INTERVAL = 0.2
# With no new input for this long, events held back to pair request and
# response stages are released.
IDLE_FLUSH = 2.0
# How far back of the cutoff the time search starts: lines are not strictly in
# time order (audit events are written when their stage completes).
SINCE_SLACK = 60.0
TIME_KEYS = ("stageTimestamp", "requestReceivedTimestamp", "time", "timestamp")

StatusCallback = Callable[[str, str], None]
SkipCallback = Callable[[int, int], None]


def line_time(line: bytes) -> float | None:
    """The time a JSON line records (audit, Falco or Tetragon), or None."""
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(obj, dict):
        return None
    for key in TIME_KEYS:
        t = parse_time(obj.get(key)) if key in obj else None
        if t is not None:
            return t
    return None


def offset_for_time(path: Path | str, cutoff: float, *, slack: float = SINCE_SLACK) -> int:
    """A line-aligned offset at or before the first line with a time >= cutoff - slack,
    found by binary search over the file (which is mostly in time order)."""
    target = cutoff - slack
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        lo, hi = 0, size

        def time_after(offset: int) -> tuple[float | None, int]:
            fh.seek(offset)
            if offset > 0:
                fh.readline()  # finish the line we landed in
            start = fh.tell()
            for _ in range(20):
                line = fh.readline(MAX_LINE + 1)
                if not line:
                    return None, start
                t = line_time(line)
                if t is not None:
                    return t, start
            return None, start

        while hi - lo > 4096:
            mid = (lo + hi) // 2
            t, _ = time_after(mid)
            if t is None or t >= target:
                hi = mid
            else:
                lo = mid
        _, aligned = time_after(lo)
        return aligned if lo > 0 else 0


class FileFollower:
    """Yields batches of complete lines from a file as it grows, across rotations."""

    def __init__(
        self,
        path: Path | str,
        *,
        start: str = "end",
        since: float | None = None,
        poll_interval: float = POLL_INTERVAL,
        chunk_size: int = CHUNK,
        max_line: int = MAX_LINE,
        on_status: StatusCallback | None = None,
        on_too_long: SkipCallback | None = None,
    ) -> None:
        if start not in ("end", "beginning"):
            raise ValueError(f"start must be 'end' or 'beginning', not {start!r}")
        self.path = Path(path)
        self.start = start
        self.since = since
        self.poll_interval = poll_interval
        self.chunk_size = chunk_size
        self.max_line = max_line
        self._on_status = on_status or (lambda state, message: None)
        self._on_too_long = on_too_long or (lambda offset, size: None)
        self._stopped = False
        # Counters a test or the status bar can read.
        self.rotations = 0
        self.truncations = 0
        self.bytes_read = 0
        self.offset = 0  # next byte to read in the current file

    def stop(self) -> None:
        self._stopped = True

    async def _wait_for_file(self, first: bool) -> bool:
        """Wait until the file exists; True when it had to be waited for."""
        said = False
        while not self._stopped:
            try:
                os.stat(self.path)
            except FileNotFoundError:
                if not said:
                    what = "to appear" if first else "to be re-created after rotation"
                    self._on_status(
                        "starting" if first else "reconnecting",
                        f"waiting for file {self.path} {what}",
                    )
                    said = True
                await asyncio.sleep(self.poll_interval)
                continue
            except OSError as exc:
                self._on_status("reconnecting", f"cannot read {self.path}: {exc.strerror or exc}")
                await asyncio.sleep(max(self.poll_interval, 1.0))
                continue
            if not os.path.isfile(self.path):
                self._on_status("failed", f"{self.path} is not a regular file")
                await asyncio.sleep(max(self.poll_interval, 1.0))
                continue
            return said
        return said

    async def batches(self) -> AsyncIterator[list[tuple[int, bytes]]]:
        """Batches of (offset, line without newline); an empty batch when idle."""
        first = True
        while not self._stopped:
            if await self._wait_for_file(first):
                # Created after we started: everything in it is new.
                first = False
            if self._stopped:
                return
            try:
                fh = await aiofiles.open(self.path, "rb", buffering=0)
            except FileNotFoundError:
                continue  # rotated away between stat and open: wait again
            except OSError as exc:
                self._on_status("reconnecting", f"cannot open {self.path}: {exc.strerror or exc}")
                await asyncio.sleep(max(self.poll_interval, 1.0))
                continue
            try:
                async for batch in self._read_file(fh, first):
                    yield batch
            finally:
                await fh.close()
            first = False

    async def _read_file(
        self, fh: aiofiles.threadpool.binary.AsyncFileIO, first: bool
    ) -> AsyncIterator[list[tuple[int, bytes]]]:
        st = os.fstat(fh.fileno())
        identity = (st.st_dev, st.st_ino)
        splitter = LineSplitter(self.max_line, self._on_too_long)
        offset = 0
        if first and self.start == "end" and self.since is None:
            offset = st.st_size
            if offset > 0:
                await fh.seek(offset - 1)
                if (await fh.read(1)) != b"\n":
                    # We start in the middle of a line: its rest is not a line.
                    splitter.discard_to_newline(offset)
        elif first and self.since is not None:
            offset = await asyncio.to_thread(offset_for_time, self.path, self.since)
        await fh.seek(offset)
        splitter.reset(offset, keep_discard=True)
        self.offset = offset
        self._on_status("connected", "")

        while not self._stopped:
            data = await fh.read(self.chunk_size)
            if data:
                self.bytes_read += len(data)
                lines = splitter.feed(data, offset)
                offset += len(data)
                self.offset = offset
                if lines:
                    yield lines
                # Let the loop breathe between chunks (UI redraws, other sources).
                await asyncio.sleep(0)
                continue

            # At the end of the file: has it been rotated or truncated?
            try:
                now: os.stat_result | None = os.stat(self.path)
            except OSError:
                now = None
            if now is not None and (now.st_dev, now.st_ino) != identity:
                # Rotated: finish the old file (writes may have landed since our
                # last read), then move on to the new one from its start.
                while data := await fh.read(self.chunk_size):
                    lines = splitter.feed(data, offset)
                    offset += len(data)
                    if lines:
                        yield lines
                lines = splitter.finish()
                if lines:
                    yield lines
                self.rotations += 1
                return
            if os.fstat(fh.fileno()).st_size < offset:
                # Copy-truncate: the file starts over.
                self.truncations += 1
                offset = 0
                splitter.reset(0)
                await fh.seek(0)
                self.offset = 0
                continue
            yield []
            await asyncio.sleep(self.poll_interval)


class LineSplitter:
    """Cuts a byte stream into lines; holds at most one partial line of `max_line`."""

    def __init__(self, max_line: int, on_too_long: SkipCallback) -> None:
        self.max_line = max_line
        self._on_too_long = on_too_long
        self._pending = bytearray()
        self._pending_offset = 0
        self._skipping = False  # inside a line too long to keep
        self._skip_start = 0
        self._scanner: RecordScanner | None = None  # reads the fields of that line
        self._silent = False  # inside a line we joined midway: drop it uncounted

    def reset(self, offset: int, *, keep_discard: bool = False) -> None:
        self._pending.clear()
        self._pending_offset = offset
        self._skipping = False
        self._scanner = None
        if not keep_discard:
            self._silent = False

    def discard_to_newline(self, offset: int) -> None:
        self._silent = True
        self._pending_offset = offset

    def feed(self, data: bytes, base: int) -> list[tuple[int, bytes]]:
        """Lines completed by `data`, which starts at file offset `base`."""
        pos = 0
        lines: list[tuple[int, bytes]] = []
        if self._skipping or self._silent:
            nl = data.find(b"\n")
            if nl == -1:
                if self._scanner is not None:
                    self._scanner.feed(data)
                return []
            if self._skipping:
                self._too_long(lines, self._skip_start, base + nl - self._skip_start, data[:nl])
            self._skipping = self._silent = False
            pos = nl + 1
            self._pending_offset = base + pos
        pending = self._pending
        while True:
            nl = data.find(b"\n", pos)
            if nl == -1:
                break
            if pending:
                pending += data[pos:nl]
                line = bytes(pending)
                pending.clear()
            else:
                line = data[pos:nl]
            line_offset = self._pending_offset
            pos = nl + 1
            self._pending_offset = base + pos
            if len(line) > self.max_line:
                self._scanner = RecordScanner()
                self._too_long(lines, line_offset, len(line), line)
            elif line.strip():
                lines.append((line_offset, line.rstrip(b"\r")))
        if pos < len(data):
            pending += data[pos:]
            if len(pending) > self.max_line:
                # Too long to keep: stream the rest of it through the scanner.
                self._skipping = True
                self._skip_start = self._pending_offset
                self._scanner = RecordScanner()
                self._scanner.feed(pending)
                pending.clear()
        return lines

    def _too_long(
        self, lines: list[tuple[int, bytes]], offset: int, size: int, tail: bytes
    ) -> None:
        """A line over the limit ended: what the scanner read of it goes on as a
        SalvagedLine; when it read nothing usable, the line is reported skipped."""
        scanner, self._scanner = self._scanner, None
        record = None
        if scanner is not None:
            scanner.feed(tail)
            record = scanner.result()
        if record is None:
            self._on_too_long(offset, size)
        else:
            lines.append((offset, SalvagedLine(orjson.dumps(record), size, scanner.cut)))

    def finish(self) -> list[tuple[int, bytes]]:
        """The stream has ended (a rotated file): a last line without newline counts."""
        lines: list[tuple[int, bytes]] = []
        if self._skipping:
            self._too_long(lines, self._skip_start, -1, b"")
        elif self._pending.strip() and not self._silent:
            lines.append((self._pending_offset, bytes(self._pending)))
        self.reset(0)
        return lines


class FileSource:
    """Follows one JSON-lines file of audit events, Falco alerts or Tetragon events."""

    def __init__(
        self,
        path: Path | str,
        kind: str,
        *,
        start: str = "end",
        since: float | None = None,
        poll_interval: float = POLL_INTERVAL,
        idle_flush: float = IDLE_FLUSH,
    ) -> None:
        self.path = Path(path)
        self.kind = kind
        self.since = since
        self.ingestor = Ingestor()
        self.health = SourceHealth(name=f"{kind} file {self.path}", kind=kind)
        self.health.skipped = self.ingestor.skipped
        # Events older than --since, read while seeking the start: not errors.
        self.before_since = 0
        self.idle_flush = idle_flush
        self.follower = FileFollower(
            self.path,
            start=start,
            since=since,
            poll_interval=poll_interval,
            on_status=self._status,
            on_too_long=self._too_long,
        )

    def _status(self, state: str, message: str) -> None:
        self.health.state = state
        if message:
            self.health.last_error = message
        elif state == "connected":
            self.health.last_error = ""

    def _too_long(self, offset: int, size: int) -> None:
        ing = self.ingestor
        ing.skipped["too-long"] += 1
        if len(ing.skip_log) < MAX_SKIP_LOG:
            how_long = f"{size} bytes" if size >= 0 else "cut off by rotation"
            ing.skip_log.append(
                (
                    f"{self.path.name}@{offset}",
                    "too-long",
                    f"the line is {how_long}, over 1 MiB; nothing usable could be read from it",
                )
            )

    def _deliver(self, engine: Engine, events: list[Event]) -> None:
        if self.since is not None:
            kept = [e for e in events if e.time >= self.since]
            self.before_since += len(events) - len(kept)
            events = kept
        if events:
            deliver(engine, self.health, events)

    async def run(self, engine: Engine) -> None:
        spool = engine.archive.spool
        feed = self.ingestor.feed_line
        name = self.path.name
        idle_since = time.monotonic()
        held = False
        try:
            async for batch in self.follower.batches():
                if not batch:
                    if held and time.monotonic() - idle_since >= self.idle_flush:
                        self._deliver(engine, self.ingestor.flush())
                        held = False
                    continue
                idle_since = time.monotonic()
                held = True
                events: list[Event] = []
                for offset, line in batch:
                    events.extend(feed(line, origin=f"{name}@{offset}", raw=spool(line)))
                self._deliver(engine, events)
        finally:
            self._deliver(engine, self.ingestor.flush())
            if self.health.state != "failed":
                self.health.state = "done" if self.follower._stopped else self.health.state

    def close(self) -> None:
        self.follower.stop()
