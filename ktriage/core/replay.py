"""Reading recorded streams (plain or gzip) into the ingest → correlate pipeline.

Plain files stay where they are and their lines are addressed by offset; lines of
compressed files and records of JSON documents are copied to the archive's spool.
"""

from __future__ import annotations

import contextlib
import gc
import gzip
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson

from ktriage.core import focus as focused
from ktriage.core.archive import RawArchive
from ktriage.core.correlate import Correlator
from ktriage.core.ingest import MAX_LINE, Ingestor
from ktriage.core.model import EntityRef, pack_raw
from ktriage.core.parse import to_epoch

# A JSON document (pretty-printed object or array) is read whole up to this size.
MAX_DOCUMENT = 256 << 20


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


@contextlib.contextmanager
def _bulk_load() -> Iterator[None]:
    """Pause the cyclic garbage collector while a replay fills the store.

    A replay allocates millions of objects (events, their strings and tuples, index
    entries) that all stay alive as long as the store and form no reference cycles.
    The collector would walk them again and again (each older-generation pass
    traverses every survivor) and free nothing: measured, that doubles the replay
    time. Afterwards the survivors are frozen (gc.freeze: kept out of every later
    collection, as they will never be garbage while the store lives) and the
    collector is restored as it was.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if was_enabled:
            gc.enable()


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
    ) -> None:
        self.correlator = correlator
        self.ingestor = ingestor or Ingestor()
        self.archive = archive or RawArchive()
        self.stats = ReplayStats()
        # Reports need incidents only: large plain files may then be read focused
        # (see core/focus.py). The UI wants every event and leaves this off.
        self.focus = focus
        self.focus_min_bytes = focus_min_bytes
        self._second_pass: list[tuple[Path, str, int, focused.PlainIndex]] = []

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
        with _bulk_load():
            for path in paths:
                self.replay_file(path)
            if self._second_pass:
                keys = frozenset(self.correlator.signal_entities())
                for path, name, archive_id, plain in self._second_pass:
                    self._focused_context(path, name, archive_id, plain, keys)
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
                        self._document(fh.read(MAX_DOCUMENT + 1), name)
                    else:
                        self._lines(fh, name, archive_id=None)
                return
            with open(path, "rb") as fh:
                head = fh.read(65536)
                fh.seek(0)
                if _looks_like_document(head):
                    self._document(fh.read(MAX_DOCUMENT + 1), name)
                elif self.focus and path.stat().st_size >= self.focus_min_bytes:
                    archive_id = self.archive.register_file(path)
                    plain = self._focused_signals(fh, name, archive_id)
                    self._second_pass.append((path, name, archive_id, plain))
                else:
                    self._lines(fh, name, archive_id=self.archive.register_file(path))
        except (OSError, EOFError, gzip.BadGzipFile) as exc:
            # A truncated or corrupt compressed file: keep what was read, say why.
            self.ingestor.skipped["unreadable-file"] += 1
            self.ingestor.skip_log.append((name, "unreadable-file", str(exc)))

    def _lines(self, fh: Iterator[bytes], name: str, archive_id: int | None) -> None:
        lines, events = self.ingestor.feed_lines(
            fh, name, self.correlator.add, archive=archive_id, spool=self.archive.spool
        )
        self.stats.lines += lines
        self.stats.events += events

    def _focused_signals(
        self, fh: Iterator[bytes], name: str, archive_id: int
    ) -> focused.PlainIndex:
        """Pass 1: every line that might be a signal goes through the full pipeline
        now, in file order; the others are only indexed for pass 2."""
        feed_line = self.ingestor.feed_line
        feed = self._feed

        def full(body: bytes, lineno: int, offset: int, last_plain: bytes | None) -> None:
            if last_plain is not None and not (
                b'"stageTimestamp"' in body
                or b'"requestReceivedTimestamp"' in body
                or body.startswith(b'{"process_')
            ):
                # An untimed audit record is placed after the latest timed record,
                # which may be a line left for pass 2 (lines that carry their own
                # time set it themselves).
                self._note_time(last_plain)
            raw = pack_raw(archive_id, offset, len(body))
            feed(feed_line(body, origin=f"{name}:{lineno}", raw=raw))

        # A line end is whitespace to the JSON decoder: a line of MAX_LINE bytes
        # and its "\r\n" may still be plain.
        plain, lines = focused.first_pass(fh, full, MAX_LINE + 2)
        self.stats.lines += lines
        return plain

    def _note_time(self, body: bytes) -> None:
        rec = focused.quick_audit(body) or focused.quick_tetragon(body)
        if rec is None:
            return
        stamp = None
        for field in ("stageTimestamp", "requestReceivedTimestamp", "timestamp", "time"):
            stamp = stamp or getattr(rec, field, None)
        t = to_epoch(stamp)
        if t is not None:
            self.ingestor.note_input_time(t)

    def _focused_context(
        self,
        path: Path,
        name: str,
        archive_id: int,
        plain: focused.PlainIndex,
        keys: frozenset[EntityRef],
    ) -> None:
        """Pass 2: of the lines pass 1 left out, only those the index finds naming a
        strong entity of a signal are read again; an event of theirs is kept when
        one of its entities is exactly such an entity. The rest are counted."""
        self.ingestor.start_input(name)
        feed_line = self.ingestor.feed_line
        add = self.correlator.add
        offsets = plain.offsets
        kept = 0
        with open(path, "rb") as fh:
            for i in plain.candidates(focused.index_names(keys)):
                offset = offsets[i]
                fh.seek(offset)
                body = fh.readline().rstrip(b"\r\n")
                raw = pack_raw(archive_id, offset, len(body))
                related = False
                for ev in feed_line(body, origin=f"{name}:{i + 1}", raw=raw):
                    if any(ent in keys for ent in ev.entities):
                        add(ev)
                        self.stats.events += 1
                        related = True
                kept += related
        self.stats.unrelated += plain.plain - kept

    def _document(self, data: bytes, name: str) -> None:
        if len(data) > MAX_DOCUMENT:
            self.ingestor.skipped["too-long"] += 1
            self.ingestor.skip_log.append((name, "too-long", "document larger than 256 MiB"))
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
            raw = self.archive.spool_record(record)
            origin = f"{name}[{i}]" if isinstance(doc, list) else name
            self._feed(self.ingestor.feed_record(record, origin=origin, raw=raw))

    def _feed(self, events: list) -> None:
        add = self.correlator.add
        for ev in events:
            add(ev)
        self.stats.events += len(events)
