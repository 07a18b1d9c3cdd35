"""Reading recorded streams (plain or gzip) into the ingest → correlate pipeline.

Plain files stay where they are and their lines are addressed by offset; lines of
compressed files and records of JSON documents are copied to the archive's spool.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import pickle
import select
import signal
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, cast

import orjson

from ktriage.core import focus as focused
from ktriage.core.archive import RawArchive
from ktriage.core.correlate import Correlator
from ktriage.core.gcpause import collector_paused
from ktriage.core.ingest import MAX_LINE, Ingestor
from ktriage.core.model import EntityRef, Event, pack_raw
from ktriage.core.parse import to_epoch

# A JSON document (pretty-printed object or array) is read whole up to this size.
MAX_DOCUMENT = 256 << 20
# The read buffer of a plain file read line by line: each read from the system fills
# this much (the default 8 KiB took a read a few lines).
READ_BUFFER = 1 << 20


class InputError(Exception):
    """A file that cannot be read at all (missing, unreadable, not a file)."""


@dataclass(slots=True)
class ReplayStats:
    files: int = 0
    lines: int = 0
    events: int = 0
    # Lines a focused replay read and checked but kept no event for: valid, and
    # naming no strong entity of any signal.
    unrelated: int = 0


def _is_gzip(path: Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(2) == b"\x1f\x8b"


def _gunzip_what_remains(path: Path, limit: int) -> bytes:
    """Every byte a truncated gzip file still gives (the gzip module gives none of
    its last block); members one after another are joined."""
    out: list[bytes] = []
    size = 0
    with open(path, "rb") as fh:
        data = fh.read(limit)
    while data and size < limit:
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            chunk = inflater.decompress(data, limit - size)
        except zlib.error:
            break
        out.append(chunk)
        size += len(chunk)
        if not inflater.eof:
            break
        data = inflater.unused_data
    return b"".join(out)


def _looks_like_document(head: bytes) -> bool:
    """A JSON array, or one object spread over several lines."""
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if text.startswith(b"["):
        return True
    if not text.startswith(b"{"):
        return False
    first_line = text.split(b"\n", 1)[0]
    try:
        orjson.loads(first_line)
    except orjson.JSONDecodeError:
        return b"\n" in text
    return False


# Pass 1 of a file this large is shared with a helper process (with `parallel`).
PARALLEL_MIN_BYTES = 64 << 20
# The first part of such a file this process reads alone (at most an eighth of it),
# to measure how much the full path costs there.
PROBE_BYTES = 2 << 20
# Lines for the full path pass 1 holds before feeding them (see _focused_signals).
HELD_LINES = 64
# Events of those lines the correlator is given at a time (at least).
FILED_EVENTS = 64
# What the full path is called with for one line (see focus.first_pass).
_Held = tuple[bytes, int, int, object, float | None]
# This process takes over the far end of what the helper has left when that end is
# at least this long, and starts at least this far ahead of the helper (a batch of
# its lines, and a line as long as any, fit well before it).
TAKE_OVER_MIN_BYTES = 2 << 20
TAKE_OVER_MARGIN = 2 << 20
# Seconds between looks at whether to take over, while the helper sends nothing.
IDLE_LOOK = 0.01
# Seconds the helper may take beyond ten times what this process took for its part.
HELPER_PATIENCE = 30.0
# Longer lines (line end aside) are skipped as too long by the ingestor.
LINE_LIMIT = MAX_LINE
# Where a part's first untimed record goes when no line was left out before it in
# that part: after the last line the previous part left out.
PREVIOUS_PART = object()


def _plain_time(body: bytes) -> float | None:
    """The time of a line pass 1 left out (audit, Tetragon or Falco)."""
    rec = focused.quick_audit(body) or focused.quick_tetragon(body)
    if rec is not None:
        stamp = None
        for field in ("stageTimestamp", "requestReceivedTimestamp", "timestamp", "time"):
            stamp = stamp or getattr(rec, field, None)
        return to_epoch(stamp)
    return focused.falco_time(body)


def _read_at(fd: int, offset: int, length: int) -> bytes:
    """`length` bytes of a file from `offset` (fewer at its end), read alone: lines
    read again are far apart, and a buffered read would fill its whole buffer for
    each."""
    data = os.pread(fd, length, offset)
    if len(data) < length:
        parts = [data]
        got = len(data)
        while got < length:
            more = os.pread(fd, length - got, offset + got)
            if not more:
                break
            parts.append(more)
            got += len(more)
        data = b"".join(parts)
    return data


def _line_at(fd: int, offset: int) -> bytes:
    """The line of a file from `offset` on, without its end (see _read_at)."""
    parts = []
    while True:
        chunk = os.pread(fd, 64 << 10, offset)
        cut = chunk.find(b"\n")
        if cut >= 0:
            parts.append(chunk[: cut + 1])
            break
        if not chunk:
            break
        parts.append(chunk)
        offset += len(chunk)
    return b"".join(parts).rstrip(b"\r\n")


def _line_start_after(fh: BinaryIO, position: int) -> int:
    """The start of the first line after `position` (the file's end if none); the
    file is left at its start."""
    fh.seek(position)
    fh.readline()
    found = fh.tell()
    fh.seek(0)
    return found


def _own_share(full_seconds: float, total_seconds: float) -> float:
    """The share of the rest of a file this process reads in pass 1 while the helper
    reads the other. This process also sends every line of the helper's part that
    goes the full path there, as the helper finds them (after its own part): both
    are then busy about as long when this process's part takes its pass 1 and the
    full path of all lines. From the first part: the full path took `full_seconds`
    of `total_seconds` (pass 1 took the rest).

    Measured, the helper reads up to a fifth faster per line than this process does
    between feeding lines to the full path: the share is a fifth lower than the
    balance, so that this process is early rather than late, and then takes over
    the end of the helper's part (see _take_over_share)."""
    scan = max(total_seconds - full_seconds, 1e-6)
    ratio = full_seconds / scan  # full path per pass-1 time
    return min(0.5, max(0.05, SHARE_BIAS * (1.0 - ratio) / 2.0))


SHARE_BIAS = 0.8


def _take_over_share(scan_cost: float, feed_cost: float, helper_cost: float) -> float:
    """The share of what the helper has left (its far end) this process takes over,
    from seconds per byte: reading here, the full path, the helper reading. Reading
    that share here and then feeding the full-path lines of all that was left takes
    as long as the helper reading the rest."""
    share = (helper_cost - feed_cost) / (scan_cost + helper_cost)
    return min(max(share, 0.0), 1.0)


# For a line that went the full path, the helper gives the latest line left out
# before it (its time when it is longer than PLAIN_SENT_MAX; None: none since the
# previous full line), or this marker: the last line the previous part left out.
_AFTER_PREVIOUS_PART = "previous part"
PLAIN_SENT_MAX = 4096
# (offset, index, that line, time or marker, latest time of audit lines left out
# before it, the line without its end: itself when at most SENT_LINE_MAX bytes, else
# its length, and it is read from the file)
_Signal = tuple[int, int, bytes | float | str | None, float | None, bytes | int]
# (lines read, latest time of the audit lines left out after the last signal, lines
# left out, where it stopped when asked to (else None: at the end), the latest line
# left out as _Signal gives it). The helper keeps its index: it then answers which of
# its lines pass 2 reads (`_HelperPart`), and sending the index (megabytes of offsets
# and names) would keep both processes waiting at the end of pass 1.
_HelperResult = tuple[int, float | None, int, int | None, bytes | float | str | None]
# (index in the part, offset, length without the line end or -1: up to the line end)
_Candidate = tuple[int, int, int]
# The helper sends the lines it found for the full path this many at a time, each
# with its bytes when it is no longer than this: measured, a pipe carries them for a
# fraction of what reading each again from the file costs (a system call per line).
SIGNALS_PER_MESSAGE = 128
SENT_LINE_MAX = 16 << 10
# Bytes of a message's length, before it.
_LENGTH = 8
# The pipe from the helper holds this much (Linux's F_SETPIPE_SZ, when allowed), so
# that the helper seldom waits for this process to read.
_PIPE_BYTES = 1 << 20
# This process takes at most about this much out of the pipe ahead of what it feeds:
# when it is that far behind (a file of signals, each sent with its bytes), the helper
# waits on a full pipe rather than the backlog growing in memory.
PENDING_MAX = 64 << 20


def _sent_plain(last_plain: object) -> bytes | float | str | None:
    """What the helper sends of the latest line left out (see _Signal)."""
    if last_plain is PREVIOUS_PART:
        return _AFTER_PREVIOUS_PART
    if isinstance(last_plain, bytes):
        # Sent as it is, its time read only if needed; a long one's time now.
        return _plain_time(last_plain) if len(last_plain) > PLAIN_SENT_MAX else last_plain
    return None


class _Progress:
    """Where the helper is in its part, and where the replay asks it to stop: two
    numbers in memory both processes share. The replay takes over the end of the
    helper's part when it has nothing else to do (see _focused_signals)."""

    NO_LIMIT = 1 << 62

    def __init__(self) -> None:
        import mmap

        self._memory = mmap.mmap(-1, 16)  # anonymous and shared: the fork keeps it
        self._write(8, self.NO_LIMIT)
        # The helper's side: a request that came too late is set aside for good.
        self._passed = False
        self.stopped_at: int | None = None

    def _read(self, at: int) -> int:
        return int.from_bytes(self._memory[at : at + 8], "little")

    def _write(self, at: int, value: int) -> None:
        self._memory[at : at + 8] = value.to_bytes(8, "little")

    def position(self) -> int:
        """Where the helper's latest batch of lines began."""
        return self._read(0)

    def ask_to_stop(self, at: int) -> None:
        self._write(8, at)

    def stop_at(self, offset: int) -> int:
        """For the helper's pass 1 (`stop_at`): says where it is, and gives where it
        stops. A request to stop at a place already behind it is refused (it reads on
        to the end, and the replay, told so, drops what it read of that end)."""
        self._write(0, offset)
        if not self._passed:
            asked = self._read(8)
            if asked >= offset:
                self.stopped_at = asked if asked < self.NO_LIMIT else None
                return asked
            self._passed = True
            self.stopped_at = None
        return self.NO_LIMIT


def _first_pass_from(
    path: Path,
    split: int,
    send: Callable[[object], None],
    receive: Callable[[], object] | None = None,
    progress: _Progress | None = None,
) -> None:
    """Pass 1 over a file from `split` on, as the helper process runs it: the lines
    that go the full path are sent as they are found (`("signals", [...])`), for
    the parent to read again and feed in order, with what placing them needs; then
    `("done", _HelperResult)`. It stops sooner where `progress` says. Then one
    request is answered (`receive` gives it): `("names", [...])`, which lines of the
    part pass 2 reads (`("candidates", [_Candidate, ...])`), or `("index",)`, the
    index itself (`("index", PlainIndex)`)."""
    signals: list[_Signal] = []
    add = signals.append

    def full(
        body: bytes, index: int, offset: int, last_plain: object, plain_time: float | None
    ) -> None:
        sent = body if len(body) <= SENT_LINE_MAX else len(body)
        add((offset, index, _sent_plain(last_plain), plain_time, sent))
        if len(signals) >= SIGNALS_PER_MESSAGE:
            send(("signals", signals))  # written out before it returns
            signals.clear()

    with open(path, "rb", buffering=READ_BUFFER) as fh:
        fh.seek(split)
        index, lines, last_plain, tail_time = focused.first_pass(
            fh,
            full,
            LINE_LIMIT,
            start=split,
            previous=PREVIOUS_PART,
            stop_at=progress.stop_at if progress is not None else None,
        )
    if signals:
        send(("signals", signals))
    end = progress.stopped_at if progress is not None else None
    send(("done", (lines, tail_time, index.plain, end, _sent_plain(last_plain))))
    request = receive() if receive is not None else None
    if type(request) is not tuple or not request:
        return  # the parent is gone, or needs nothing more
    if request[0] == "names" and len(request) == 2:
        send(("candidates", _candidates(index, request[1])))
    elif request[0] == "index":
        send(("index", index))


def _write_message(fd: int, message: object) -> None:
    """One message down a pipe: its length, then its pickle."""
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    view = memoryview(len(data).to_bytes(_LENGTH, "little") + data)
    while view:
        view = view[os.write(fd, view) :]


def _read_message(fd: int) -> object:
    """One message from a pipe (see _write_message), waiting for it; None when the
    pipe ends first."""
    data = bytearray()
    size = None
    while size is None or len(data) < _LENGTH + size:
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            return None
        data += chunk
        if size is None and len(data) >= _LENGTH:
            size = int.from_bytes(data[:_LENGTH], "little")
    return pickle.loads(bytes(data[_LENGTH : _LENGTH + size]))


def _helper_main(fd: int, requests: int, path: Path, split: int, progress: _Progress) -> None:
    """The helper process's work: pass 1 from `split`, its messages written to `fd`,
    and the one request then read from `requests` answered."""
    _first_pass_from(
        path,
        split,
        lambda message: _write_message(fd, message),
        lambda: _read_message(requests),
        progress,
    )
    os.close(fd)


class _Helper:
    """A forked process running pass 1 over a file's second part while the replay
    reads the first: pass 1 decodes every line, and that is most of a replay. The
    lines it finds for the full path come as it goes (`signals`), its counts at the
    end (`result`); it then waits to answer one request (`ask`, then `answer`):
    which of its lines pass 2 reads, or its whole index."""

    def __init__(self, pid: int, fd: int, requests: int, progress: _Progress) -> None:
        self.pid = pid
        self.fd = fd
        self.requests = requests  # written to by this process, read by the helper
        self.progress = progress
        # What came down the pipe and is not taken yet: from `_taken` on. Taken bytes
        # are dropped only once they are most of it: dropping them at every message
        # moved the whole backlog (megabytes while this process is behind) each time.
        self._pending = bytearray()
        self._taken = 0
        # Each read from the pipe lands here first: a new buffer of _PIPE_BYTES for
        # every read was mapped, faulted in and unmapped again each time.
        self._scratch = bytearray(_PIPE_BYTES)
        self._poller = select.poll()
        self._poller.register(fd, select.POLLIN)
        self._done: _HelperResult | None = None
        self._over = False  # done, failed or stopped

    @classmethod
    def start(cls, path: Path, split: int) -> _Helper | None:
        fork = getattr(os, "fork", None)
        if fork is None:
            return None
        pipes: list[int] = []
        try:
            receive, send = os.pipe()
            pipes += (receive, send)
            read_request, write_request = os.pipe()
            pipes += (read_request, write_request)
        except OSError:
            for fd in pipes:
                os.close(fd)
            return None
        with contextlib.suppress(OSError, ImportError, AttributeError):
            import fcntl

            fcntl.fcntl(send, fcntl.F_SETPIPE_SZ, _PIPE_BYTES)
        try:
            progress = _Progress()
        except OSError:
            for fd in pipes:
                os.close(fd)
            return None
        try:
            pid = fork()
        except OSError:
            for fd in pipes:
                os.close(fd)
            return None
        if pid == 0:
            # The helper: what it sends is its outcome, and it never returns (when it
            # fails, the parent reads its part itself).
            code = 1
            try:
                os.close(receive)
                os.close(write_request)
                _helper_main(send, read_request, path, split, progress)
                code = 0
            finally:
                os._exit(code)
        os.close(send)
        os.close(read_request)
        return cls(pid, receive, write_request, progress)

    def signals(self, deadline: float, idle: Callable[[], bool] | None = None) -> Iterator[_Signal]:
        """The lines the helper sends to the full path, in file order, as it finds
        them, until it is done, fails, or sends nothing by `deadline` (monotonic
        seconds; it is then stopped). While nothing has come, `idle()` is called
        (again after it did some work, or every IDLE_LOOK seconds)."""
        while not self._over:
            if idle is not None:
                open_pipe = self.drain()
                while open_pipe and not self._has_message() and time.monotonic() < deadline:
                    if not idle():
                        self._poller.poll(IDLE_LOOK * 1000)
                    open_pipe = self.drain()
            message = self._receive(deadline)
            if message is None:
                self.stop()
                return
            kind, payload = message
            if kind == "signals" and type(payload) is list:
                yield from payload
                # What came meanwhile is taken out of the pipe: while this process
                # feeds what it took earlier, the helper never waits for it.
                self.drain()
            elif kind == "done" and type(payload) is tuple and len(payload) == 5:
                self._done = cast(_HelperResult, payload)
                self._over = True
            else:
                self.stop()

    def result(self, timeout: float) -> _HelperResult | None:
        """What the helper found, once its signals were read; None when it failed,
        or gave no answer within `timeout` seconds, or sent signals nobody read (it
        is then stopped, and the caller reads its part itself). A helper that
        answered waits for `ask` (or `stop`)."""
        for _ in self.signals(time.monotonic() + timeout):
            self.stop()
            self._done = None
        if self._done is None:
            self.stop()
        return self._done

    def ask(self, request: tuple[object, ...], timeout: float) -> bool:
        """Send the helper its one request, once its result was read (`answer` gives
        the answer); False when it cannot take it (it is then stopped)."""
        if self.fd < 0 or self._done is None:
            self.stop()
            return False
        if not self._send_request(request, time.monotonic() + timeout):
            self.stop()
            return False
        return True

    def answer(self, kind: str, timeout: float) -> object:
        """The payload of the helper's answer (`kind`, as the request's); None when
        none came within `timeout` seconds. The helper is stopped either way."""
        if self.fd < 0:
            return None
        message = self._receive(time.monotonic() + timeout)
        self.stop()
        if message is None or message[0] != kind:
            return None
        return message[1]

    def _has_message(self) -> bool:
        """Whether a whole message is waiting in what was taken out of the pipe."""
        pending = self._pending
        at = self._taken
        return len(pending) - at >= _LENGTH and len(pending) - at >= _LENGTH + int.from_bytes(
            pending[at : at + _LENGTH], "little"
        )

    def _send_request(self, request: tuple[object, ...], deadline: float) -> bool:
        """Write a request to the helper by `deadline` (a helper that stopped reading
        cannot hold this process)."""
        data = pickle.dumps(request, protocol=pickle.HIGHEST_PROTOCOL)
        view = memoryview(len(data).to_bytes(_LENGTH, "little") + data)
        writable = select.poll()
        writable.register(self.requests, select.POLLOUT)
        try:
            os.set_blocking(self.requests, False)
            while view:
                wait = max(0.0, deadline - time.monotonic())
                if not writable.poll(wait * 1000):
                    return False
                with contextlib.suppress(BlockingIOError):
                    view = view[os.write(self.requests, view) :]
        except OSError:
            return False
        return True

    def _receive(self, deadline: float) -> tuple[str, object] | None:
        """The next message; None at the end of the pipe, on a broken message, or
        when nothing came by `deadline`."""
        pending = self._pending
        poller = self._poller
        while True:
            at = self._taken
            if len(pending) - at >= _LENGTH:
                size = int.from_bytes(pending[at : at + _LENGTH], "little")
                end = at + _LENGTH + size
                if len(pending) >= end:
                    try:
                        with memoryview(pending) as view:
                            message = pickle.loads(view[at + _LENGTH : end])
                    except (pickle.UnpicklingError, EOFError, ValueError, TypeError):
                        return None
                    finally:
                        self._take(end)
                    if type(message) is not tuple or len(message) != 2:
                        return None
                    return cast(tuple[str, object], message)
            wait = max(0.0, deadline - time.monotonic())
            try:
                if not poller.poll(wait * 1000):
                    return None
                if not self._read_some():
                    return None
            except OSError:
                return None

    def _read_some(self) -> bool:
        """One read from the pipe into `_pending`; False at its end."""
        scratch = self._scratch
        got = os.readv(self.fd, [scratch])
        if not got:
            return False
        with memoryview(scratch) as view:
            self._pending += view[:got]
        return True

    def _take(self, end: int) -> None:
        """Mark what `_pending` holds up to `end` as taken."""
        self._taken = end
        if end * 2 >= len(self._pending):
            del self._pending[:end]
            self._taken = 0

    def drain(self) -> bool:
        """Take what the helper sent so far out of the pipe, without waiting: while
        this process reads its own part, the helper then never waits for it. False
        once the pipe has ended (or failed)."""
        if self.fd < 0:
            return False
        try:
            while (
                len(self._pending) - self._taken < PENDING_MAX or not self._has_message()
            ) and self._poller.poll(0):
                if not self._read_some():
                    return False
        except OSError:
            return False
        return True

    def stop(self) -> None:
        """End the helper (when it still runs) and wait for it; close the pipe."""
        if self.fd < 0:
            return
        self._over = True
        with contextlib.suppress(OSError):
            os.kill(self.pid, signal.SIGKILL)
        with contextlib.suppress(OSError):
            os.waitpid(self.pid, 0)
        os.close(self.fd)
        os.close(self.requests)
        self.fd = -1


def _candidates(
    index: focused.PlainIndex, names: Iterable[str | tuple[str, str]]
) -> list[_Candidate]:
    """The lines of a part pass 2 reads again (see PlainIndex.candidates), where they are."""
    offsets = index.offsets
    last = len(offsets) - 1
    return [
        (i, offsets[i], offsets[i + 1] - offsets[i] if i < last else -1)
        for i in index.candidates(names)
    ]


class _HelperPart:
    """The part of a file a helper read in pass 1. The helper keeps the part's index
    and says which of its lines pass 2 reads; when it cannot, this process reads the
    part again (pass 1 without the full path) to find them."""

    __slots__ = ("end", "first_line", "helper", "index", "path", "plain", "split")

    def __init__(self, helper: _Helper, path: Path, split: int, end: int, plain: int) -> None:
        self.helper: _Helper | None = helper
        self.path = path
        self.split = split
        self.end = end  # where the part ended in pass 1 (lines after it are not its)
        self.plain = plain  # lines left out
        self.first_line = 0  # lines of the file before the part
        self.index: focused.PlainIndex | None = None  # once taken from the helper

    def ask(self, names: Iterable[str | tuple[str, str]], timeout: float) -> None:
        """Ask the helper which lines pass 2 reads (it works on it while this process
        reads the earlier parts); `candidates` takes the answer."""
        if self.index is None and self.helper is not None:
            if not self.helper.ask(("names", list(names)), timeout):
                self.helper = None

    def candidates(
        self, names: Iterable[str | tuple[str, str]], timeout: float
    ) -> list[_Candidate]:
        """The lines of the part pass 2 reads again, asked of the helper (`ask` first)
        or, when it cannot answer, found in the part's index."""
        if self.index is None and self.helper is not None:
            found = self.helper.answer("candidates", timeout)
            self.helper = None
            if type(found) is list and all(type(c) is tuple and len(c) == 3 for c in found):
                return cast(list[_Candidate], found)
        return _candidates(self.take_index(timeout), names)

    def take_index(self, timeout: float) -> focused.PlainIndex:
        """The part's index, asked of the helper (which then ends), else read again."""
        if self.index is None:
            found = None
            if self.helper is not None and self.helper.ask(("index",), timeout):
                found = self.helper.answer("index", timeout)
            self.helper = None
            self.index = found if isinstance(found, focused.PlainIndex) else self._read_again()
        return self.index

    def _read_again(self) -> focused.PlainIndex:
        with open(self.path, "rb", buffering=READ_BUFFER) as fh:
            fh.seek(self.split)
            index, _, _, _ = focused.first_pass(
                fh, _ignore, LINE_LIMIT, start=self.split, stop=self.end
            )
        return index

    def stop(self) -> None:
        if self.helper is not None:
            self.helper.stop()
            self.helper = None


# A part of a file pass 2 reads: its index, or the helper that holds it.
_Part = focused.PlainIndex | _HelperPart


def _ignore(*_args: object) -> None:
    """Pass 1's full path when reading a part again: its lines were fed already."""


class Replayer:
    """Feeds files through an Ingestor into a Correlator."""

    def __init__(
        self,
        correlator: Correlator,
        ingestor: Ingestor | None = None,
        archive: RawArchive | None = None,
        *,
        focus: bool = False,
        focus_min_bytes: int = focused.FOCUS_MIN_BYTES,
        parallel: bool = False,
        parallel_min_bytes: int = PARALLEL_MIN_BYTES,
    ) -> None:
        self.correlator = correlator
        self.ingestor = ingestor or Ingestor(allowlist=correlator.config.allowlist)
        self.archive = archive or RawArchive()
        self.stats = ReplayStats()
        # Reports need incidents only: large plain files may then be read focused
        # (see core/focus.py). The UI wants every event and leaves this off.
        self.focus = focus
        self.focus_min_bytes = focus_min_bytes
        # A focused replay of a large file may fork a helper for pass 1. Only for a
        # program with no other threads (the replay command): forking copies locks.
        self.parallel = parallel
        self.parallel_min_bytes = parallel_min_bytes
        self._second_pass: list[tuple[Path, str, int, list[_Part]]] = []
        self._helper: _Helper | None = None  # while one runs pass 1
        # Events pass 1 built and has not given the correlator yet (see _file_built).
        self._built: list[Event] = []

    def check(self, paths: list[Path]) -> None:
        """Fail early, with a clear message, on any file that cannot be read."""
        for path in paths:
            if not path.exists():
                raise InputError(f"{path}: no such file")
            if path.is_dir():
                raise InputError(f"{path}: is a directory, not a file")
            try:
                with open(path, "rb") as fh:
                    fh.read(1)
            except OSError as exc:
                raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from exc

    def replay(self, paths: list[Path]) -> ReplayStats:
        self.check(paths)
        # A focused replay is read for its report: incidents are made once, at the
        # end (the UI, which shows them as they come, reads unfocused).
        deferred = self.correlator.deferred_incidents() if self.focus else contextlib.nullcontext()
        # A replay makes millions of objects (events, their strings and tuples, index
        # entries) that live as long as the store: measured, the collector walking
        # them doubled the replay time.
        with collector_paused(), deferred:
            try:
                for path in paths:
                    self.replay_file(path)
                if self._second_pass:
                    # Requests still held for a response: nothing pass 2 reads can be
                    # one (those are never left out), so they are signals now, whose
                    # entities context may name.
                    self._feed(self.ingestor.flush())
                    keys = frozenset(self.correlator.signal_entities())
                    for path, name, archive_id, parts in self._second_pass:
                        self._focused_context(path, name, archive_id, parts, keys)
            finally:
                # A helper still waiting to answer pass 2 (this one failed) ends.
                for *_, parts in self._second_pass:
                    for part in parts:
                        if isinstance(part, _HelperPart):
                            part.stop()
                self._second_pass.clear()
            self._feed(self.ingestor.flush())
        return self.stats

    def replay_file(self, path: Path) -> None:
        self.stats.files += 1
        name = path.name
        self.ingestor.start_input(name)
        try:
            if _is_gzip(path):
                with gzip.open(path, "rb") as fh:
                    head = fh.peek(65536)[:65536] if hasattr(fh, "peek") else b""
                    if _looks_like_document(head):
                        try:
                            data = fh.read(MAX_DOCUMENT + 1)
                        except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
                            self._cut_document(path, name, exc)
                        else:
                            self._document(data, name)
                    else:
                        self._lines(fh, name, archive_id=None)
                return
            with open(path, "rb", buffering=READ_BUFFER) as fh:
                head = fh.read(65536)
                fh.seek(0)
                if _looks_like_document(head):
                    self._document(fh.read(MAX_DOCUMENT + 1), name)
                elif self.focus and (size := path.stat().st_size) >= self.focus_min_bytes:
                    archive_id = self.archive.register_file(path)
                    try:
                        parts = self._focused_signals(fh, path, name, archive_id, size)
                    finally:
                        # Ended whatever happened (a helper left running would wait
                        # for this process to read it); one that finished pass 1 is
                        # in `parts` by now, waiting to answer pass 2.
                        if self._helper is not None:
                            self._helper.stop()
                            self._helper = None
                    self._second_pass.append((path, name, archive_id, parts))
                else:
                    self._lines(fh, name, archive_id=self.archive.register_file(path))
        except (OSError, EOFError, gzip.BadGzipFile) as exc:
            # A truncated or corrupt compressed file: keep what was read, say why.
            self._file_built()
            self.ingestor.count_skip(name, "unreadable-file", str(exc))

    def _file_built(self) -> None:
        """Give the correlator the events pass 1 built and has not given it yet, in
        order (taken out first: a failure while filing them files none twice)."""
        built = self._built
        if built:
            batch = built.copy()
            built.clear()
            self._feed(batch)

    def _lines(self, fh: Iterator[bytes], name: str, archive_id: int | None) -> None:
        lines, events = self.ingestor.feed_lines(
            fh, name, self.correlator.add, archive=archive_id, spool=self.archive.spool
        )
        self.stats.lines += lines
        self.stats.events += events

    def _focused_signals(
        self, fh: BinaryIO, path: Path, name: str, archive_id: int, size: int
    ) -> list[_Part]:
        """Pass 1: every line that might be a signal goes through the full pipeline
        now, in file order; the others are only indexed for pass 2. A large file's
        second part is read by a helper process at the same time (see _Helper)."""
        ingestor = self.ingestor
        feed_line = ingestor.feed_line
        # The events of the lines for the full path go to the correlator a batch at a
        # time, in order: measured, building an event and filing it by turns made
        # both a sixth slower (each pushes the other's data out of the caches). A
        # read that fails midway files what was built (replay_file).
        built = self._built
        feed = built.extend
        file_built = self._file_built

        base = 0  # lines before the part being read

        advance_audit_clock = ingestor.advance_audit_clock
        note_input_line = ingestor.note_input_line

        def catch_up(plain_time: float | None) -> None:
            # Audit lines left out moved time on: requests held for their response
            # that are due by now come out, as reading them in order would have done.
            if plain_time is not None:
                due = advance_audit_clock(plain_time)
                if due:
                    feed(due)

        def full(
            body: bytes, index: int, offset: int, last_plain: object, plain_time: float | None
        ) -> None:
            catch_up(plain_time)
            # The latest record read is a line left out (or its time, as the helper
            # gives it for a long one): an untimed record that follows is placed at
            # its time, read only then.
            if isinstance(last_plain, bytes):
                note_input_line(last_plain, _plain_time)
            elif isinstance(last_plain, float):
                ingestor.note_input_time(last_plain)
            raw = pack_raw(archive_id, offset, len(body))
            events = feed_line(body, origin=f"{name}:{base + index + 1}", raw=raw)
            if events:
                feed(events)
                if len(built) >= FILED_EVENTS:
                    file_built()

        # The lines for the full path are fed a few dozen at a time, as pass 1 finds
        # them (with what it found for each, so in effect as at once): measured, going
        # from decoding plain lines to the full path and back for every one made both
        # slower (each pushes the other's code and data out of the caches).
        held: list[_Held] = []

        def hold(
            body: bytes, index: int, offset: int, last_plain: object, plain_time: float | None
        ) -> None:
            held.append((body, index, offset, last_plain, plain_time))

        feeding = 0.0  # seconds spent feeding held lines (in this process's own part)

        def feed_held() -> None:
            nonlocal feeding
            began = time.perf_counter()
            for args in held:
                full(*args)
            held.clear()
            file_built()
            feeding += time.perf_counter() - began

        def feed_some() -> None:
            if len(held) >= HELD_LINES:
                feed_held()

        started = time.monotonic()
        if not (self.parallel and size >= self.parallel_min_bytes):
            split = size
            first, lines, last_plain, tail_time = focused.first_pass(
                fh, hold, LINE_LIMIT, each_batch=feed_some
            )
            feed_held()
            catch_up(tail_time)
            parts: list[_Part] = [first]
        else:
            # The first few MiB alone: the share of their time the full path took
            # decides how much of the rest this process reads (it also feeds every
            # line the helper sends to the full path).
            probe = _line_start_after(fh, min(PROBE_BYTES, size // 8))
            began = time.perf_counter()
            first, lines, last_plain, tail_time = focused.first_pass(
                fh, hold, LINE_LIMIT, stop=probe
            )
            scanned = time.perf_counter()
            feed_held()
            fed = time.perf_counter()
            share = _own_share(fed - scanned, fed - began)
            # Seconds per byte of the file: reading here, and the full path.
            scan_cost = (scanned - began) / max(probe, 1)
            feed_cost = (fed - scanned) / max(probe, 1)
            catch_up(tail_time)
            parts = [first]
            split = _line_start_after(fh, probe + int((size - probe) * share))
            if split < size:
                # One helper waits for pass 2 at a time: an earlier file's gives its
                # index now.
                for *_, earlier in self._second_pass:
                    for part in earlier:
                        if isinstance(part, _HelperPart):
                            part.take_index(HELPER_PATIENCE)
            helper = self._helper = _Helper.start(path, split) if split < size else None
            helper_began = time.perf_counter()
            base = lines
            fh.seek(probe)

            # After each batch, what the helper sent so far is taken out of the pipe:
            # it never waits for this process, however few lines this part sends to
            # the full path.
            def after_batch() -> None:
                if helper is not None:
                    helper.drain()
                feed_some()

            middle_began = time.perf_counter()
            feeding = 0.0
            middle, more, last_plain, tail_time = focused.first_pass(
                fh,
                hold,
                LINE_LIMIT,
                start=probe,
                stop=split,
                previous=last_plain,
                each_batch=after_batch,
            )
            feed_held()
            if split - probe >= PROBE_BYTES:
                # Better measured here than in the first few MiB (warm, and longer).
                fed_for = feeding
                scan_cost = (time.perf_counter() - middle_began - fed_for) / (split - probe)
                feed_cost = fed_for / (split - probe)
            catch_up(tail_time)
            middle.first_line = lines
            parts.append(middle)
            lines += more
        # The helper reads about as much as this process did: far longer means it hangs.
        patience = HELPER_PATIENCE + 10 * (time.monotonic() - started)
        if split < size:
            base = lines
            found = None
            fed = -1  # the last line of the helper's part sent to the full path
            # Ends of the helper's part this process took over (latest first): where
            # each starts, its pass 1, and its lines for the full path, held.
            taken: list[
                tuple[int, tuple[focused.PlainIndex, int, object, float | None], list[_Held]]
            ]
            taken = []
            taken_from = size  # where the latest one starts

            def take_over() -> bool:
                """With nothing from the helper to feed yet, read the far end of what
                it has left (asked to stop there, it reads the rest), as much as lets
                both end about together, whatever the share said."""
                nonlocal taken_from
                assert helper is not None
                file_built()  # (nothing else to do meanwhile)
                position = max(helper.progress.position(), split)  # (0 until it starts)
                left = taken_from - position
                if left < TAKE_OVER_MIN_BYTES or position == split:
                    return False
                helper_cost = (time.perf_counter() - helper_began) / (position - split)
                take = int(left * _take_over_share(scan_cost, feed_cost, helper_cost))
                if take < TAKE_OVER_MIN_BYTES:
                    return False
                at = _line_start_after(fh, taken_from - take)
                if at - position < TAKE_OVER_MARGIN or at >= taken_from:
                    return False
                helper.progress.ask_to_stop(at)
                mine: list[_Held] = []

                def keep(*args: object) -> None:
                    mine.append(cast(_Held, args))

                fh.seek(at)
                read = focused.first_pass(
                    fh,
                    keep,
                    LINE_LIMIT,
                    start=at,
                    stop=taken_from,
                    previous=PREVIOUS_PART,
                    each_batch=helper.drain,
                )
                taken.append((at, read, mine))
                taken_from = at
                return True

            if helper is not None:
                # Its lines for the full path, in order, as it finds them.
                deadline = time.monotonic() + patience
                reader = fh.fileno()
                for offset, index, placed, plain_time, sent in helper.signals(
                    deadline, idle=take_over
                ):
                    body = sent if isinstance(sent, bytes) else _read_at(reader, offset, sent)
                    previous = last_plain if isinstance(placed, str) else placed
                    full(body, index, offset, previous, plain_time)
                    fed = index
                found = helper.result(patience)

            def read_rest_here(
                start: int,
                previous: object,
                feed_line: Callable[[bytes, int, int, object, float | None], None],
            ) -> None:
                """Pass 1 from `start` to the end, in this process (the helper could
                not read it)."""
                nonlocal base, lines
                base = lines
                fh.seek(start)
                rest, more, _, tail_time = focused.first_pass(
                    fh, feed_line, LINE_LIMIT, start=start, previous=previous
                )
                rest.first_line = lines
                parts.append(rest)
                catch_up(tail_time)
                lines += more

            if found is None:
                # No helper after all (it could not start, or failed): read the rest
                # here, but for the lines it already sent.
                def rest_full(
                    body: bytes, index: int, offset: int, last: object, plain_time: float | None
                ) -> None:
                    if index > fed:
                        full(body, index, offset, last, plain_time)

                read_rest_here(split, last_plain, rest_full)
            else:
                more, tail_time, plain, stopped_at, helper_plain = found
                assert helper is not None
                remote = _HelperPart(helper, path, split, stopped_at or size, plain)
                self._helper = None  # the part holds it now
                remote.first_line = lines
                parts.append(remote)
                catch_up(tail_time)
                lines += more
                # The ends taken over from where the helper stopped follow, in order.
                # It stops where it was last asked to, or, when its last batch began
                # before a later request came (one line can be long), where it was
                # asked before: the ends taken over before that place are its. When a
                # request came after it had passed that place, it read on to the end:
                # all it was asked is its.
                if stopped_at is not None:
                    ends = [end for end in taken if end[0] >= stopped_at]
                    previous = last_plain if isinstance(helper_plain, str) else helper_plain
                    if not ends or ends[-1][0] != stopped_at:
                        # (It stops only where asked: were it ever elsewhere, the rest
                        # is read here, as for a helper that failed.)
                        read_rest_here(stopped_at, previous, full)
                        ends = []
                    for _, (part_index, count, part_plain, part_time), held in reversed(ends):
                        base = lines
                        for body, at, offset, before, plain_time in held:
                            before = previous if before is PREVIOUS_PART else before
                            full(body, at, offset, before, plain_time)
                        if part_plain is not PREVIOUS_PART:
                            previous = part_plain
                        part_index.first_line = lines
                        parts.append(part_index)
                        catch_up(part_time)
                        lines += count
        file_built()
        self.stats.lines += lines
        return parts

    def _focused_context(
        self,
        path: Path,
        name: str,
        archive_id: int,
        parts: list[_Part],
        keys: frozenset[EntityRef],
    ) -> None:
        """Pass 2: of the lines pass 1 left out, only those the index finds naming a
        strong entity of a signal are read again; an event of theirs is kept when
        one of its entities is exactly such an entity. The rest are counted."""
        self.ingestor.start_input(name)
        feed_line = self.ingestor.feed_line
        add = self.correlator.add
        names = focused.index_names(keys)
        for part in parts:
            if isinstance(part, _HelperPart):
                part.ask(names, HELPER_PATIENCE)
        kept = 0
        with open(path, "rb", buffering=0) as fh:
            reader = fh.fileno()
            for part in parts:
                if isinstance(part, _HelperPart):
                    found = part.candidates(names, HELPER_PATIENCE)
                else:
                    found = _candidates(part, names)
                for i, offset, length in found:
                    if length >= 0:
                        body = _read_at(reader, offset, length).rstrip(b"\r\n")
                    else:
                        body = _line_at(reader, offset)
                    raw = pack_raw(archive_id, offset, len(body))
                    origin = f"{name}:{part.first_line + i + 1}"
                    related = False
                    for ev in feed_line(body, origin=origin, raw=raw):
                        if ev.signal or any(ent in keys for ent in ev.entities):
                            add(ev)
                            self.stats.events += 1
                            related = True
                    kept += related
                self.stats.unrelated += part.plain
        self.stats.unrelated -= kept

    def _cut_document(self, path: Path, name: str, exc: BaseException) -> None:
        """A compressed JSON document cut short: read the records complete before the
        cut (zlib gives every byte it can), and say the file is incomplete."""
        self.ingestor.count_skip(
            name, "unreadable-file", f"{exc} (the records before the cut were read)"
        )
        data = _gunzip_what_remains(path, MAX_DOCUMENT + 1)
        self._feed(self.ingestor.feed_cut_document(data[: MAX_DOCUMENT + 1], origin=name))

    def _document(self, data: bytes, name: str) -> None:
        if len(data) > MAX_DOCUMENT:
            self.ingestor.count_skip(name, "too-long", "document larger than 256 MiB")
            return
        try:
            doc = orjson.loads(data)
        except orjson.JSONDecodeError:
            # Not one document after all: let the ingestor sort it out line by line.
            self._feed(self.ingestor.feed_document(data, origin=name))
            return
        records = doc if isinstance(doc, list) else [doc]
        self.stats.lines += len(records)
        for i, record in enumerate(records):
            try:
                raw = self.archive.spool_record(record)
            except (TypeError, orjson.JSONEncodeError):
                raw = None  # nested deeper than the encoder goes: the ingestor says so
            origin = f"{name}[{i}]" if isinstance(doc, list) else name
            self._feed(self.ingestor.feed_record(record, origin=origin, raw=raw))

    def _feed(self, events: list[Event]) -> None:
        add = self.correlator.add
        for ev in events:
            add(ev)
        self.stats.events += len(events)
