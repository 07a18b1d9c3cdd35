"""Following a growing JSON-lines file the way `tail -F` does, and the file source.

`FileFollower` yields complete lines as a file grows. It copes with what log
files do in practice:

- rotation by rename and re-create (kube-apiserver's lumberjack, logrotate's
  default): the old file is read to its end through the descriptor still held
  (a rename keeps the inode), then any file rotated in between (two rotations
  between two looks: found next to it by name, newer than the old one, not read
  before), then the new one from its start;
- truncation in place (logrotate's copytruncate), seen as a size below the read
  offset or as other first bytes (truncated, then written again past the
  offset): the unread rest is read from the rotated copy whose content
  continues what was read (`name.1`, `name-<date>`, maybe `.gz`), then the file
  from its start;
- what could not be read (no copy, an unreadable rotated file) is counted as
  `lost-on-rotation` with a sentence saying what and why;
- a regular file replaced by a symbolic link, a directory or a pipe: not read,
  said in health, and followed again once a regular file is back;
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
import functools
import gzip
import os
import stat
import time
import zlib
from collections import deque
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiofiles
import orjson

from ktriage.core.ingest import MAX_LINE, Ingestor
from ktriage.core.model import Event, parse_time
from ktriage.core.salvage import RecordScanner, SalvagedLine
from ktriage.core.text import printable
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

# Bytes of a file's start kept to recognise it, and bytes before the read offset
# kept to find a rotated copy that continues what was read.
HEAD = 4096
TAIL = 4096
COPIES_CHECKED = 16
SEEN = 256
RESCANS = 16
LOST_ON_ROTATION = "lost-on-rotation"

StatusCallback = Callable[[str, str], None]
SkipCallback = Callable[[int, int], None]
# (bytes, lines, sentence): what rotation or truncation made unreadable; -1 if unknown.
LostCallback = Callable[[int, int, str], None]


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
        on_lost: LostCallback | None = None,
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
        self._on_lost = on_lost or (lambda size, lines, why: None)
        self._stopped = False
        # Whether the path is a symbolic link we follow: decided the first time the
        # path is seen. A regular file later replaced by a link is not followed.
        self._follow_links: bool | None = None
        # Files read, as (first bytes, where reading stopped, the bytes before that): a
        # rotated file or a copy of one is never read twice, only what follows the
        # part read. (By content: inode numbers are reused at once.)
        self._read: deque[tuple[bytes, int, bytes]] = deque(maxlen=SEEN)
        # Where the last _drain stopped, and the bytes before it.
        self._drained: tuple[int, bytes] = (0, b"")
        # Counters a test or the status bar can read.
        self.rotations = 0
        self.truncations = 0
        self.recovered = 0  # truncations whose unread rest was read from a rotated copy
        self.intermediates = 0  # rotated files read that were never the followed file
        self.bytes_read = 0
        self.offset = 0  # next byte to read in the current file

    def stop(self) -> None:
        self._stopped = True

    # ---- the path and what is at it ------------------------------------------------

    def _path_problem(self) -> tuple[str, str] | None:
        """Why the path cannot be followed now, as (state, sentence); None when it can."""
        path = self.path
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return "missing", ""
        except OSError as exc:
            return "reconnecting", f"cannot read {path}: {exc.strerror or exc}"
        if stat.S_ISLNK(st.st_mode):
            if self._follow_links is None:
                self._follow_links = True
            target = _link_target(path)
            if not self._follow_links:
                return "failed", (
                    f"{path} was replaced by a symbolic link (to {target}): not followed, "
                    "since the log that was here is not there any more; waiting for a "
                    "regular file at that path"
                )
            try:
                st = os.stat(path)
            except FileNotFoundError:
                return "missing", ""
            except OSError as exc:
                return "reconnecting", f"cannot read {path} (a link to {target}): {exc}"
        elif self._follow_links is None:
            self._follow_links = False
        if stat.S_ISDIR(st.st_mode):
            return "failed", (
                f"{path} is a directory, not a log file: waiting for a regular file there"
            )
        if not stat.S_ISREG(st.st_mode):
            return "failed", (
                f"{path} is not a regular file (a pipe, socket or device): waiting for a "
                "regular file there"
            )
        return None

    def _identity_now(self) -> tuple[int, int] | None:
        """(device, inode) of what is at the path now, as it would be opened."""
        try:
            st = os.stat(self.path) if self._follow_links else os.lstat(self.path)
        except OSError:
            return None
        return st.st_dev, st.st_ino

    async def _wait_for_file(self, first: bool) -> bool:
        """Wait until the path holds a file that can be followed; True when it had to be
        waited for (so what it holds now is new)."""
        waited = False
        said = ""
        while not self._stopped:
            problem = self._path_problem()
            if problem is None:
                return waited
            state, message = problem
            waited = True
            if state == "missing":
                what = "to appear" if first else "to be re-created after rotation"
                state = "starting" if first else "reconnecting"
                message = f"waiting for file {self.path} {what}"
            if message != said:
                self._on_status(state, message)
                said = message
            delay = self.poll_interval if problem[0] == "missing" else 1.0
            await asyncio.sleep(max(self.poll_interval, delay))
        return waited

    def _opener(self, path: str, flags: int) -> int:
        # Never block opening a pipe put at the path; no following a link that was not
        # there at the start.
        flags |= os.O_NONBLOCK
        if not self._follow_links:
            flags |= os.O_NOFOLLOW
        return os.open(path, flags)

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
                fh = await aiofiles.open(self.path, "rb", buffering=0, opener=self._opener)
            except FileNotFoundError:
                continue  # rotated away between stat and open: wait again
            except OSError as exc:
                self._on_status("reconnecting", f"cannot open {self.path}: {_reason(exc)}")
                await asyncio.sleep(max(self.poll_interval, 1.0))
                continue
            try:
                if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
                    continue  # swapped for something else since the check: say so again
                async for batch in self._read_file(fh, first):
                    yield batch
            finally:
                await fh.close()
            first = False

    # ---- the followed file -----------------------------------------------------------

    async def _read_file(
        self, fh: aiofiles.threadpool.binary.AsyncFileIO, first: bool
    ) -> AsyncIterator[list[tuple[int, bytes]]]:
        fd = fh.fileno()
        st = os.fstat(fd)
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
        # What identifies this file's content: its first bytes (a file truncated and
        # written again past our offset has other first bytes), and the bytes just
        # before our offset (to find a rotated copy that continues what we read).
        head = os.pread(fd, min(HEAD, offset), 0) if offset else b""
        tail = os.pread(fd, min(TAIL, offset), offset - min(TAIL, offset)) if offset else b""
        self.offset = offset
        self._on_status("connected", "")

        # While nothing of the file's content is read (from its start, or after a
        # truncation), a copy made and a truncation done before we read anything
        # cannot be seen in the file itself, only as a new rotated copy next to it,
        # looked for whenever the file changes: copies newer than this mtime.
        unread_since_ns: int | None = st.st_mtime_ns if offset == 0 else None
        looked_at_ns = 0
        # The file's mtime when it last held what we had read: copies of what was
        # written after that are no older.
        intact_ns = st.st_mtime_ns
        while not self._stopped:
            before_read_ns = os.fstat(fd).st_mtime_ns
            data = await fh.read(self.chunk_size)
            if unread_since_ns is not None and not head:
                mtime_ns = os.fstat(fd).st_mtime_ns
                if mtime_ns != looked_at_ns:
                    looked_at_ns = mtime_ns
                    # Copies of what the file held before, so no newer than it now.
                    live = functools.partial(os.pread, fd, HEAD, 0)
                    async for lines in self._rotated_between(
                        unread_since_ns, identity, live, until_ns=mtime_ns
                    ):
                        yield lines
            if data and not head and os.pread(fd, min(len(data), HEAD), 0) != data[:HEAD]:
                # Read at the start, and the start is not that any more: truncated since.
                await fh.seek(0)
                continue
            if data and not (head and os.pread(fd, len(head), 0) != head):
                intact_ns = before_read_ns
                self.bytes_read += len(data)
                if len(head) < HEAD:
                    head += data[: HEAD - len(head)]
                tail = (tail + data[-TAIL:])[-TAIL:]
                lines = splitter.feed(data, offset)
                offset += len(data)
                self.offset = offset
                if lines:
                    yield lines
                # Let the loop breathe between chunks (UI redraws, other sources).
                await asyncio.sleep(0)
                continue

            # At the end of the file (or it changed under the read): truncated, rotated?
            # Truncation first: a file truncated, written again, then renamed away
            # still holds lines to read from its start.
            st = os.fstat(fd)
            if st.st_size < offset or (head and os.pread(fd, len(head), 0) != head):
                # Truncated in place (copy-truncate), maybe written again past our offset.
                async for lines in self._truncated(head, tail, offset, splitter):
                    yield lines
                unread_since_ns, looked_at_ns = intact_ns, 0
                offset, head, tail = 0, b"", b""
                splitter.reset(0)
                await fh.seek(0)
                self.offset = 0
                continue
            now = self._identity_now()
            if now is not None and now != identity:
                # Rotated: finish the old file through the descriptor we hold (writes
                # may have landed since our last read), then any file rotated in
                # between, then the new one from its start.
                async for lines in self._drain(
                    _Reader(self.path.name, fh, False), offset, splitter, tail
                ):
                    yield lines
                end, last = self._drained
                self._read.append((os.pread(fd, min(HEAD, end), 0), end, last))
                before = self.intermediates
                # (The file now at the path is not excluded: if it is renamed away too
                # before we open it, it is one of these. A copy of it is left alone.)
                async for lines in self._rotated_between(
                    os.fstat(fd).st_mtime_ns, None, functools.partial(_head_of, self.path)
                ):
                    yield lines
                self.rotations += 1 + self.intermediates - before
                return
            intact_ns = st.st_mtime_ns
            yield []
            await asyncio.sleep(self.poll_interval)

    async def _drain(
        self, reader: _Reader, offset: int, splitter: LineSplitter, tail: bytes = b""
    ) -> AsyncIterator[list[tuple[int, bytes]]]:
        """Read a file that no longer grows to its end from `offset` (`tail`: the bytes
        before it), through the splitter; a last line without a newline counts. Where
        it stopped, and the bytes before that, are left in `_drained`."""
        try:
            while not self._stopped and (data := await reader.read(self.chunk_size)):
                tail = (tail + data[-TAIL:])[-TAIL:]
                self.bytes_read += len(data)
                lines = splitter.feed(data, offset)
                offset += len(data)
                if lines:
                    yield lines
                await asyncio.sleep(0)
        except (OSError, EOFError, zlib.error) as exc:
            # A compressed file cut short (still being written) or an I/O error.
            self._on_lost(
                -1,
                1,
                f"{reader.name}: read stopped at byte {offset}: {_reason(exc)}; "
                "what follows could not be read",
            )
        self._drained = (offset, tail)
        lines = splitter.finish()
        if lines:
            yield lines

    async def _truncated(
        self, head: bytes, tail: bytes, offset: int, splitter: LineSplitter
    ) -> AsyncIterator[list[tuple[int, bytes]]]:
        """The followed file was truncated in place after we read `offset` bytes: read
        what we had not read yet from the rotated copy (logrotate's copytruncate copies
        the file, then truncates it), or say what was lost."""
        self.truncations += 1
        copy = await self._matching_copy(head, tail, offset)
        if copy is not None:
            async for lines in self._drain(copy, offset, splitter, tail):
                yield lines
            await copy.close()
            self._read.append((head, *self._drained))
            self.recovered += 1
            self._on_status(
                "connected",
                f"{self.path.name} was truncated (copy-truncate); its unread rest was "
                f"read from the copy {copy.name}",
            )
            return
        self._read.append((head, offset, tail))
        held = splitter.held
        splitter.reset(0)
        where = f"{self.path.name} was truncated at byte {offset} with no rotated copy "
        where += "holding what was read found next to it"
        if held:
            self._on_lost(
                held,
                1,
                f"{where}: the unfinished line at its end ({held} bytes so far) and "
                "anything written after it before the truncation could not be read",
            )
        else:
            self._on_status(
                "connected",
                f"{where}: lines written after our last read and before the "
                "truncation, if there were any, could not be read",
            )

    # ---- rotated files next to the followed one ------------------------------------

    def _rotated_files(self) -> list[tuple[int, str, os.stat_result]]:
        """Regular files in the same directory named as rotations of ours, newest first."""
        out: list[tuple[int, str, os.stat_result]] = []
        name = self.path.name
        try:
            entries = os.scandir(self.path.parent)
        except OSError:
            return out
        with entries:
            for entry in entries:
                if not rotated_name(name, entry.name):
                    continue
                try:
                    st = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                if stat.S_ISREG(st.st_mode):
                    out.append((st.st_mtime_ns, entry.path, st))
        # File times tick coarsely (a few ms): on a tie, the name says which is newer.
        out.sort(key=lambda c: (c[0], _rotation_rank(name, os.path.basename(c[1]))), reverse=True)
        return out

    async def _matching_copy(self, head: bytes, tail: bytes, offset: int) -> _Reader | None:
        """The newest rotated file that starts with `head` and holds `tail` just before
        `offset`, opened and placed at `offset`; None when there is none."""
        if offset == 0:
            return None
        candidates = await asyncio.to_thread(self._rotated_files)
        for _, path, st in candidates[:COPIES_CHECKED]:
            gz = path.endswith(".gz")
            if not gz and st.st_size < offset:
                continue
            try:
                reader = await _Reader.open(path, gz)
            except OSError:
                continue
            try:
                if await reader.read_exactly(len(head)) == head:
                    await reader.seek(offset - len(tail))
                    if await reader.read_exactly(len(tail)) == tail:
                        return reader
            except (OSError, EOFError, zlib.error):
                pass
            await reader.close()
        return None

    async def _rotated_between(
        self,
        since_ns: int,
        current: tuple[int, int] | None,
        live: Callable[[], bytes] | None = None,
        *,
        until_ns: int | None = None,
    ) -> AsyncIterator[list[tuple[int, bytes]]]:
        """Rotated files written after the one we followed and before the one now at the
        path (two rotations between two looks), or copies made of the file and
        truncated away before we read any of it: read whole, oldest first. A copy of
        what the file holds now (`live()`, its first bytes: copied, not truncated
        yet) is left for the truncation to find, and so is anything newer."""
        done: set[tuple[int, int, int, int]] = set()
        # Rotation may go on while we read (`name.1` becoming `name.2`, new files): when
        # a name holds another file once opened, look again, so the order stays oldest
        # first; and look again at the end for files rotated meanwhile.
        for _ in range(RESCANS):
            candidates = await asyncio.to_thread(self._rotated_files)
            todo = []
            for mtime_ns, path, st in reversed(candidates):
                # Inodes are reused at once: a file's key includes its mtime and size.
                key = (st.st_dev, st.st_ino, mtime_ns, st.st_size)
                if until_ns is not None and mtime_ns > until_ns:
                    continue
                if mtime_ns >= since_ns and (st.st_dev, st.st_ino) != current:
                    if key not in done:
                        todo.append((path, st, key))
            if not todo:
                return
            for path, st, key in todo:
                try:
                    reader = await _Reader.open(path, path.endswith(".gz"))
                except OSError as exc:
                    done.add(key)
                    self._on_lost(
                        st.st_size,
                        1,
                        f"{os.path.basename(path)}, rotated while {self.path.name} was "
                        f"followed, could not be read ({st.st_size} bytes): {_reason(exc)}",
                    )
                    continue
                try:
                    if reader.identity != (st.st_dev, st.st_ino):
                        break  # renamed since it was listed: look again
                    first = await reader.read_exactly(HEAD)
                    now = live() if live is not None else b""
                    n = min(len(first), len(now))
                    if n and first[:n] == now[:n]:
                        return  # a copy of what the file holds now, not truncated yet
                    done.add(key)
                    if not first:
                        continue
                    splitter = LineSplitter(self.max_line, self._on_too_long)
                    known = next(
                        (r for r in reversed(self._read) if r[0] and first.startswith(r[0])), None
                    )
                    if known is None:
                        self.intermediates += 1
                        start, before = 0, b""
                    else:
                        # A (compressed) copy of a file already read: only what follows
                        # the part read, if it continues it.
                        _, start, before = known
                        await reader.seek(start - len(before))
                        if await reader.read_exactly(len(before)) != before:
                            continue
                    await reader.seek(start)
                    async for lines in self._drain(reader, start, splitter, before):
                        yield lines
                    end, last = self._drained
                    if known is not None and end > start:
                        self.recovered += 1
                    self._read.append((first[: min(HEAD, end)], end, last))
                except (OSError, EOFError, zlib.error) as exc:
                    done.add(key)
                    self._on_lost(
                        -1,
                        1,
                        f"{reader.name}, rotated while {self.path.name} was followed, could "
                        f"not be read: {_reason(exc)}",
                    )
                finally:
                    await reader.close()
            # Look again until nothing new: files rotated while we read these.


class _Reader:
    """A rotated file read to its end: plain (through aiofiles) or gzip (in a thread)."""

    def __init__(self, name: str, fh: Any, gz: bool) -> None:
        self.name = name
        self._fh = fh
        self._gz = gz
        st = os.fstat(fh.fileobj.fileno() if gz else fh.fileno())
        self.identity = (st.st_dev, st.st_ino)

    @classmethod
    async def open(cls, path: str, gz: bool) -> _Reader:
        name = os.path.basename(path)
        if gz:
            return cls(name, await asyncio.to_thread(gzip.open, path, "rb"), True)
        opener = lambda p, f: os.open(p, f | os.O_NOFOLLOW | os.O_NONBLOCK)  # noqa: E731
        return cls(name, await aiofiles.open(path, "rb", buffering=0, opener=opener), False)

    async def read(self, n: int) -> bytes:
        if self._gz:
            return await asyncio.to_thread(self._fh.read, n)
        return await self._fh.read(n)

    async def read_exactly(self, n: int) -> bytes:
        out = b""
        while len(out) < n and (data := await self.read(n - len(out))):
            out += data
        return out

    async def seek(self, offset: int) -> None:
        if self._gz:
            await asyncio.to_thread(self._fh.seek, offset)
        else:
            await self._fh.seek(offset)

    async def close(self) -> None:
        if self._gz:
            await asyncio.to_thread(self._fh.close)
        else:
            await self._fh.close()


def rotated_name(name: str, candidate: str) -> bool:
    """Whether `candidate` is a name rotation gives older contents of `name`:
    logrotate's `name.1` and `name-20270115`, lumberjack's `stem-<time>.ext`
    (kube-apiserver), each maybe compressed (`.gz`). Other logs in the directory
    (`audit-webhook.log` next to `audit.log`) are not."""
    if candidate == name:
        return False
    base = candidate.removesuffix(".gz")
    for sep in (".", "-"):
        if base.startswith(name + sep) and base[len(name) + 1 :][:1].isdigit():
            return True
    stem, dot, ext = name.rpartition(".")
    return bool(
        dot
        and stem
        and base.startswith(stem + "-")
        and base.endswith("." + ext)
        and base[len(stem) + 1 :][:1].isdigit()
    )


def _rotation_rank(name: str, candidate: str) -> tuple[int, str]:
    """Orders rotated names from oldest to newest: logrotate's `name.2` before `name.1`;
    dated names (`name-20270115`, lumberjack's `stem-<time>.ext`) by their date."""
    rest = candidate.removesuffix(".gz")[len(name) + 1 :]
    if candidate.startswith(name + ".") and rest.isdigit():
        return -int(rest), ""
    return 0, candidate


def _head_of(path: Path) -> bytes:
    """The first bytes of the file at `path` now (none if it cannot be read)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
    except OSError:
        return b""
    try:
        return os.pread(fd, HEAD, 0) if stat.S_ISREG(os.fstat(fd).st_mode) else b""
    except OSError:
        return b""
    finally:
        os.close(fd)


def _link_target(path: Path) -> str:
    try:
        return printable(os.readlink(path))
    except OSError:
        return "?"


def _reason(exc: BaseException) -> str:
    return printable(getattr(exc, "strerror", None) or str(exc) or type(exc).__name__)


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

    @property
    def held(self) -> int:
        """Bytes of an unfinished line held (0 when none, or inside a skipped one)."""
        return 0 if self._silent else len(self._pending)

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
            on_lost=self._lost,
        )

    def _status(self, state: str, message: str) -> None:
        self.health.state = state
        if message:
            self.health.last_error = message
        elif state == "connected":
            self.health.last_error = ""

    def _too_long(self, offset: int, size: int) -> None:
        how_long = f"{size} bytes" if size >= 0 else "cut off by rotation"
        self.ingestor.count_skip(
            f"{self.path.name}@{offset}",
            "too-long",
            f"the line is {how_long}, over 1 MiB; nothing usable could be read from it",
        )

    def _lost(self, size: int, lines: int, why: str) -> None:
        """Rotation or truncation made input unreadable: counted, and said in health."""
        self.ingestor.count_skip(self.path.name, LOST_ON_ROTATION, why, max(lines, 1))
        self.health.last_error = why

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
