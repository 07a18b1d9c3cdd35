"""The one entry point for raw input: lines, decoded records and whole documents.

Every source and `replay` goes through an Ingestor. It detects each record's
format (audit, Falco, Tetragon) by cheap byte checks, decodes only the fields it
needs, and never raises on bad input: an unusable record is skipped and counted
by reason, with a plain sentence saying why.

A record over MAX_LINE, or nested deeper than the decoders go, is not skipped
blind: core/salvage.py reads the fields detections need from its bytes, they go
through the ordinary parser and detections, and the event says the record was
read partially (counted under `too-long` / `too-deep`). Its public methods are a
contract: whatever the input, they return events and count; they never raise.
"""

from __future__ import annotations

import collections
import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import msgspec
import orjson

from ktriage.core import allowlist as allowlists
from ktriage.core import model
from ktriage.core.allowlist import AllowList, mark_expected
from ktriage.core.archive import archive_for, registered_file
from ktriage.core.detect.audit import AuditDetector
from ktriage.core.detect.identity import ClusterNetworks
from ktriage.core.detect.workloads import flag_unread_pod_spec
from ktriage.core.jsonsplit import split_documents
from ktriage.core.model import (
    RAW_PACK_OFFSET_LIMIT,
    RAW_PACK_SHIFTS,
    CompactEvent,
    EntityKind,
    EntityRef,
    Event,
    RawRef,
    Severity,
    entity,
    pack_raw,
)
from ktriage.core.parse import Skip, SkipRecord, plain
from ktriage.core.parse import audit as audit_parser
from ktriage.core.parse import falco as falco_parser
from ktriage.core.parse import tetragon as tetragon_parser
from ktriage.core.parse.podfacts import POD_ACCOUNT_KIND, POD_ADDRESS_KIND, pod_facts
from ktriage.core.salvage import (
    SALVAGE_KEY,
    RecordScanner,
    SalvagedLine,
    prune_depth,
    salvage_bytes,
)
from ktriage.core.text import clip

__all__ = [
    "FORMATS",
    "MAX_LINE",
    "OVERSIZED_NOTE",
    "SKIP_REASONS",
    "SKIP_REASON_TEXT",
    "TOO_DEEP_NOTE",
    "Ingestor",
    "Skip",
]

MAX_LINE = 1 << 20
MAX_SKIP_LOG = 1000
FORMATS = ("audit", "falco", "tetragon")
SKIP_REASONS = (
    "malformed-json",
    "truncated-json",
    "binary",
    "too-long",
    "not-an-object",
    "unknown-format",
    "wrong-type",
    "missing-field",
    "too-deep",
    "out-of-range",
    "unreadable",
    # Said by the live sources, not the parsers: a webhook body that did not inflate or
    # arrive in time, and input a log rotation made unreadable.
    "bad-encoding",
    "read-timeout",
    "lost-on-rotation",
)
# What each reason means, for health panes and reports.
SKIP_REASON_TEXT = {
    "malformed-json": "not valid JSON",
    "truncated-json": "JSON cut short",
    "binary": "not text (binary bytes or control characters)",
    "too-long": "over 1 MiB: read partially, only the fields detections need",
    "not-an-object": "a JSON value that is not an object",
    "unknown-format": "not an audit event, Falco alert or Tetragon event",
    "wrong-type": "a field of the wrong type",
    "missing-field": "a required field is missing",
    "too-deep": "nested too deeply to decode: read partially, only the fields detections need",
    "out-of-range": "a time outside the years 1970-2999",
    "unreadable": "the record could not be read (an unexpected error, kept running)",
    "bad-encoding": "a webhook body that is not the gzip or deflate data it says it is",
    "read-timeout": "a webhook body that did not arrive in time",
    "lost-on-rotation": "input a log rotation or truncation made unreadable",
}
# Said in the summary of an event read from a record too large or too deep to decode.
OVERSIZED_NOTE = " [record over 1 MiB: only key fields read]"
TOO_DEEP_NOTE = " [record nested too deeply: only key fields read]"
# Pod writes that may say a pod's address or service account (see _pod_facts).
_POD_WRITES = frozenset({"create", "update", "patch"})
_MAX_FACTS = 200_000
# Depth to which feed_record keeps an already-decoded record it cannot encode whole.
_PRUNE_DEPTH = 64

_GENERIC = msgspec.json.Decoder()
_AUDIT_DECODER = audit_parser.DECODER
_build_audit = audit_parser.build_event
_TETRAGON_DECODER = tetragon_parser.DECODER
_build_tetragon = tetragon_parser.build_event
_ITEMS = msgspec.json.Decoder(list[msgspec.Raw])
_WS = b" \t\r\n"
_BOM = b"\xef\xbb\xbf"
# Bytes that never appear in JSON text outside strings, where they must be escaped.
_CONTROL = bytes(c for c in range(32) if c not in (9, 10, 13)) + b"\x7f"


def _sniff(data: bytes) -> str | None:
    """The format a record's bytes look like, or None when a full decode must tell."""
    if data.startswith(b'{"process_'):
        return "tetragon"
    if b'"auditID"' in data or b'"audit.k8s.io/' in data:
        return "audit"
    if b'"rule"' in data and b'"priority"' in data:
        return "falco"
    if b'"process_' in data and b'"node_name"' in data:
        return "tetragon"
    return None


def _format_of(obj: dict[str, Any]) -> str | None:
    """The format of a decoded object, by its keys."""
    kind = obj.get("kind")
    if "auditID" in obj or ("verb" in obj and "requestURI" in obj) or kind == "EventList":
        return "audit"
    if kind == "Event" and (
        isinstance(obj.get("apiVersion"), str) and obj["apiVersion"].startswith("audit.k8s.io")
    ):
        return "audit"
    if "rule" in obj and ("priority" in obj or "output" in obj):
        return "falco"
    for key in obj:
        if isinstance(key, str) and key.startswith("process_") and ("time" in obj):
            return "tetragon"
    return None


def _bad_json(data: bytes, exc: Exception) -> Skip:
    """Say why bytes did not decode: binary garbage, cut short, or malformed."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return Skip("binary", "the line is not UTF-8 text")
    if data.translate(None, _CONTROL) != data:
        return Skip("binary", "the line holds control characters, not JSON text")
    msg = str(exc)
    if "truncated" in msg or "unexpected end" in msg.lower():
        return Skip("truncated-json", "the JSON is cut short (unexpected end of input)")
    return Skip("malformed-json", f"not valid JSON ({msg})")


class _NotedLine:
    """The time of the line left out that Ingestor.note_input_line noted last, read
    when an untimed record asks (one per ingestor, refilled at every note: nothing
    made per line, and no reference back to the ingestor)."""

    __slots__ = ("before", "line", "read")

    def __init__(self) -> None:
        self.line = b""
        self.read: Callable[[bytes], float | None] = _no_time
        self.before: float | None = None  # the time noted before it

    def __call__(self) -> float | None:
        t = self.read(self.line)
        return self.before if t is None else t


def _no_time(_line: bytes) -> float | None:
    return None


class Ingestor:
    """Turns raw records into Events; keeps counts of what it parsed and skipped."""

    def __init__(
        self, networks: ClusterNetworks | None = None, *, allowlist: AllowList | None = None
    ) -> None:
        # Well-known controllers' expected behaviour: their detections become
        # context marked "expected" (see core/allowlist.py).
        self.allowlist = allowlist if allowlist is not None else allowlists.current()
        self._allow_tetragon = "tetragon" in self.allowlist.runtime_sources
        # Falco alerts: its k8saudit ones are requests, matched by the audit entries.
        self._allow_falco = bool(self.allowlist.entries)
        self.expected = 0  # detections the allow list found expected
        # (pod, address or account) facts already said, so each is said once.
        self._facts: dict[tuple[EntityRef, str], None] = {}
        self.skipped: collections.Counter[str] = collections.Counter()
        # Of those counted in `skipped`, the records read in part (too long or too deep
        # to decode whole) whose key fields still made events.
        self.partial: collections.Counter[str] = collections.Counter()
        self.skip_log: list[tuple[str, str, str]] = []
        self.audit = AuditDetector(networks)
        # Plain ints on the hot path; `formats` assembles them.
        self._n_audit = 0
        self._n_falco = 0
        self._n_tetragon = 0
        # Time of the latest timed record of the current input: an audit record with
        # no timestamp at all is placed there (see start_input).
        self._input_time: audit_parser.UntimedAt = None
        self._noted = _NotedLine()  # (see note_input_line)

    @property
    def formats(self) -> collections.Counter[str]:
        """Records parsed, by format ("audit"/"falco"/"tetragon")."""
        counts: collections.Counter[str] = collections.Counter()
        for name, n in (
            ("audit", self._n_audit),
            ("falco", self._n_falco),
            ("tetragon", self._n_tetragon),
        ):
            if n:
                counts[name] = n
        return counts

    # -- public API -----------------------------------------------------------

    def start_input(self, name: str = "") -> None:
        """A new input begins (a file, or a live stream after a reconnect): records of
        different inputs are unrelated, so an untimed record is never placed after a
        record of another input."""
        self._input_time = None

    def note_input_time(self, t: float) -> None:
        """The latest timed record of this input was read elsewhere (a focused
        replay's second pass): untimed records that follow are placed after it."""
        self._input_time = t

    def note_input_line(self, line: bytes, read_time: Callable[[bytes], float | None]) -> None:
        """As note_input_time, for a line read elsewhere whose time `read_time(line)`
        gives, read only when an untimed record asks for it (most never do); when it
        gives none, the time noted before holds. (A focused replay notes a line before
        every record it reads: nothing is made for each.)"""
        before = self._input_time
        if callable(before):
            # Records that failed one after another: one level of waiting at most.
            # (The previous note is read before it is refilled.)
            before = before()
        noted = self._noted
        noted.line = line
        noted.read = read_time
        noted.before = before
        self._input_time = noted

    def advance_audit_clock(self, t: float) -> list[Event]:
        """Audit records up to time `t` were read elsewhere (a focused replay's plain
        lines): requests held for their response that are now due come out."""
        return self.audit.advance(t)

    def feed_line(
        self, line: bytes, *, origin: str = "", raw: RawRef | int | None = None
    ) -> list[Event]:
        """One line of input (a trailing newline is fine); 0..n events. Never raises:
        a line over MAX_LINE is read partially (see feed_oversized), and so is a
        SalvagedLine the file follower made of one."""
        try:
            if line.__class__ is SalvagedLine:
                return self._salvaged(line, line.size, origin, raw)
            if len(line) > MAX_LINE:
                return self.feed_oversized(line, origin=origin, raw=raw)
            if line[-1:] in (b"\n", b"\r"):
                line = line.rstrip(b"\r\n")
            if line[:1] == b"\xef" and line.startswith(_BOM):
                line = line[3:]
            if not line or line.isspace():
                return []
            if line.startswith(b'{"kind":"Event",') or b'"auditID"' in line:
                # The common case, inlined: one audit event per line.
                try:
                    rec = _AUDIT_DECODER.decode(line)
                except (msgspec.DecodeError, ValueError, RecursionError):
                    return self._bytes(line, origin, raw, None)
                if rec.verb and (rec.kind is None or rec.kind == "Event"):
                    try:
                        ev = _build_audit(rec, line, raw, self._input_time)
                        self._n_audit += 1
                        self._input_time = ev.time
                        return self._process(rec, ev)
                    except SkipRecord as exc:
                        return self.count_skip(origin, exc.skip.reason, exc.skip.detail)
                    except RecursionError:
                        return self._deep(line, origin, raw)
                    except Exception as exc:
                        return self.count_skip(origin, "wrong-type", _unreadable(exc))
            elif (
                b'"rule"' in line
                and b'"priority"' in line
                and not line.startswith(b'{"process_')
                and b'"audit.k8s.io/' not in line
            ):
                # A Falco alert (what _sniff would say, without its audit checks again).
                return self._bytes(line, origin, raw, "falco")
            return self._bytes(line, origin, raw, None)
        except Exception as exc:
            # The last line of defence: no record stops a source.
            return self.count_skip(origin, "unreadable", _unreadable(exc))

    def feed_oversized(
        self,
        data: bytes | bytearray | memoryview | RecordScanner,
        *,
        origin: str = "",
        raw: RawRef | int | None = None,
        size: int | None = None,
        spool: Callable[[bytes], RawRef | int] | None = None,
    ) -> list[Event]:
        """A record over MAX_LINE: its bytes (scanned in slices, never copied whole),
        or a RecordScanner already fed them chunk by chunk (`size`: the record's
        length). The fields detections need are read and go through the ordinary
        parser and detections; the event says the record was over the limit and
        only those fields were read. Counted under `too-long` (read partially).
        With `spool`, the event points at the fields read instead of `raw`. Never
        raises."""
        try:
            if isinstance(data, RecordScanner):
                scanner = data
            else:
                size = len(data) if size is None else size
                scanner = salvage_bytes(data)
            record = scanner.result()
            body = orjson.dumps(record) if record is not None else b""
            if body and spool is not None:
                raw = spool(body)
            return self._salvaged(body, size if size is not None else -1, origin, raw)
        except Exception as exc:
            return self.count_skip(
                origin, "too-long", f"over 1 MiB and unreadable: {_unreadable(exc)}"
            )

    def feed_lines(
        self,
        lines: Iterable[bytes],
        name: str,
        emit: Callable[[Event], object],
        *,
        archive: int | None = None,
        spool: Callable[[bytes], RawRef | int] | None = None,
        start_offset: int = 0,
        start_line: int = 0,
        shed_texts: bool | None = None,
    ) -> tuple[int, int]:
        """The lines of one input, in order (as a binary file iterates them, line ends
        included); every event goes to `emit` as soon as it is ready. Events point at
        their line: by byte offset in `archive`, or, without one, at the copy `spool`
        makes. Skips are logged as `name:lineno`. Returns (lines read, events emitted).
        An input read in slices gives each slice where it starts: `start_offset` bytes
        and `start_line` lines into the input.

        Plain events of a file registered in a RawArchive shed their ref and summary
        (built again from the line when read: see CompactEvent.shed): with
        `shed_texts=True`, or by default when `lines` is that very file.

        This is the replay hot path: the common audit and Tetragon lines are decoded
        and built inline, and nothing is formatted for a line unless it is skipped."""
        audit_decode = _AUDIT_DECODER.decode
        build_audit = _build_audit
        process = self.audit.process
        tetragon_decode = _TETRAGON_DECODER.decode
        build_tetragon = _build_tetragon
        # Events of a registered file may shed their texts (built again from the line
        # when read); an archive id no RawArchive gave out keeps them.
        if archive is None or registered_file(archive) is None:
            shed = False
        elif shed_texts is None:
            name_of = getattr(lines, "name", None)
            shed = isinstance(name_of, str) and Path(name_of) == registered_file(archive)
        else:
            shed = shed_texts
        if archive is not None:
            # pack_raw, inlined: archive << 60 | offset << 24 | length
            archive_bits = archive << RAW_PACK_SHIFTS[0]
            offset_shift = RAW_PACK_SHIFTS[1]
        offset = start_offset
        lineno = start_line
        emitted = 0
        raw: RawRef | int | None
        for line in lines:
            lineno += 1
            size = len(line)
            end = size
            if size and line[-1] == 10:  # b"\n"
                end -= 1
                if end and line[end - 1] == 13:  # b"\r"
                    end -= 1
            if end == 0 or end > MAX_LINE:
                if end:
                    for ev in self.feed_oversized(
                        memoryview(line)[:end],
                        origin=f"{name}:{lineno}",
                        raw=pack_raw(archive, offset, end) if archive is not None else None,
                        spool=spool,
                    ):
                        emit(ev)
                        emitted += 1
                offset += size
                continue
            if archive is not None:
                if offset < RAW_PACK_OFFSET_LIMIT:
                    raw = archive_bits | offset << offset_shift | end
                else:
                    raw = pack_raw(archive, offset, end)
            elif spool is not None:
                raw = spool(line[:end])
            else:
                raw = None
            offset += size
            try:
                # JSON allows the trailing line end as whitespace: lines decode as they are.
                if line.startswith(b'{"process_'):
                    try:
                        trec = tetragon_decode(line)
                        ev = build_tetragon(trec, line, raw)
                        if ev.signal and self._allow_tetragon:
                            self._expect_tetragon(trec, ev)
                    except Exception:
                        pass  # the general path below says why
                    else:
                        self._n_tetragon += 1
                        self._input_time = ev.time
                        if not shed or ev.signal:
                            emit(ev)
                        else:
                            # Its texts are built again from the line when read.
                            ref, summary = ev.ref, ev.summary
                            emit(ev)
                            ev.shed(ref, summary)  # type: ignore[attr-defined]
                        emitted += 1
                        continue
                elif line.startswith(b'{"kind":"Event",') or b'"auditID"' in line:
                    try:
                        rec = audit_decode(line)
                    except (msgspec.DecodeError, ValueError, RecursionError):
                        rec = None
                    if rec is not None and rec.verb and (rec.kind is None or rec.kind == "Event"):
                        try:
                            ev = build_audit(rec, line, raw, self._input_time)
                            built = (ev.ref, ev.summary)
                            self._n_audit += 1
                            self._input_time = ev.time
                            out = process(rec, ev)
                            if ev.signal:
                                self._expect_audit(rec, ev)
                            oref = rec.objectRef
                            if (
                                oref is not None
                                and oref.resource == "pods"
                                and rec.verb in _POD_WRITES
                            ):
                                out = out + self._pod_facts(rec, ev)
                        except SkipRecord as exc:
                            self.count_skip(f"{name}:{lineno}", exc.skip.reason, exc.skip.detail)
                            continue
                        except RecursionError:
                            out = self._deep(line[:end], f"{name}:{lineno}", raw)
                        except Exception as exc:
                            self.count_skip(f"{name}:{lineno}", "wrong-type", _unreadable(exc))
                            continue
                        if len(out) == 1:
                            emit(out[0])
                            emitted += 1
                            if shed and out[0] is ev and not ev.signal:
                                # Its texts are built again from the line when read.
                                ev.shed(*built)  # type: ignore[attr-defined]
                        else:
                            for one in out:
                                emit(one)
                            emitted += len(out)
                        continue
                body = line[:end]
                if body[:1] == b"\xef" and body.startswith(_BOM):
                    body = body[3:]
                if not body or body.isspace():
                    continue
                for ev in self._bytes(body, f"{name}:{lineno}", raw, None):
                    emit(ev)
                    emitted += 1
            except Exception as exc:
                # The last line of defence: no record stops the input.
                self.count_skip(f"{name}:{lineno}", "unreadable", _unreadable(exc))
        return lineno - start_line, emitted

    def feed_record(
        self,
        obj: object,
        *,
        origin: str = "",
        raw: RawRef | int | None = None,
        hint: str | None = None,
    ) -> list[Event]:
        """An already-decoded record; `hint` forces its format. Never raises."""
        try:
            if not isinstance(obj, dict):
                return self.count_skip(
                    origin, "not-an-object", f"a JSON {_json_type(obj)}, not an object"
                )
            fmt = hint if hint in FORMATS else _format_of(obj)
            if fmt is None:
                return self.count_skip(origin, "unknown-format", _unknown_detail(obj))
            try:
                data = orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)
            except (TypeError, orjson.JSONEncodeError) as exc:
                if "ecursion" not in str(exc):
                    return self.count_skip(
                        origin, "wrong-type", f"the record cannot be read as JSON: {exc}"
                    )
                # Nested deeper than JSON encoders go: keep the top of it.
                return self._deep(orjson.dumps(prune_depth(obj, _PRUNE_DEPTH)), origin, raw)
            if len(data) > MAX_LINE:
                return self.feed_oversized(data, origin=origin, raw=raw)
            return self._bytes(data, origin, raw, fmt)
        except Exception as exc:
            return self.count_skip(origin, "unreadable", _unreadable(exc))

    def feed_document(
        self, data: bytes, *, origin: str = "", archive: int | None = None
    ) -> list[Event]:
        """A whole file: JSON lines, one (pretty-printed) JSON document, a JSON array
        of records, or several documents one after another. With `archive`, events of
        JSON-lines input point at their line's bytes in that archive. Never raises."""
        try:
            return self._document(data, origin, archive)
        except Exception as exc:
            return self.count_skip(origin, "unreadable", _unreadable(exc))

    def _document(self, data: bytes, origin: str, archive: int | None) -> list[Event]:
        self.start_input(origin)
        text = data[3:] if data.startswith(_BOM) else data
        start = len(text) - len(text.lstrip(_WS))
        head = text[start : start + 1]
        if head == b"[":
            events = self._array(text, origin)
            if events is not None:
                return events
        elif head == b"{":
            first_end = text.find(b"\n", start)
            if first_end != -1 and text[first_end:].strip():
                first = text[start:first_end].rstrip(b"\r")
                try:
                    _GENERIC.decode(first)
                except RecursionError:
                    pass  # a whole (deep) record on its first line: read line by line
                except (msgspec.DecodeError, ValueError):
                    events = self._whole(text, origin)
                    if events is not None:
                        return events
        return self._lines(data, origin, archive)

    def feed_cut_document(self, data: bytes, *, origin: str = "") -> list[Event]:
        """A JSON array or a run of documents cut short (a truncated .gz): every record
        complete before the cut, and the one cut in half counted as truncated. Never
        raises."""
        try:
            return self._cut_document(data, origin)
        except Exception as exc:
            return self.count_skip(origin, "unreadable", _unreadable(exc))

    def _cut_document(self, data: bytes, origin: str) -> list[Event]:
        self.start_input(origin)
        text = data.decode("utf-8", errors="replace")
        if text.startswith("\ufeff"):
            text = text[1:]
        decoder = json.JSONDecoder()
        out: list[Event] = []
        pos = len(text) - len(text.lstrip())
        if text[pos : pos + 1] == "[":
            pos += 1
        end = len(text)
        while True:
            while pos < end and (text[pos].isspace() or text[pos] == ","):
                pos += 1
            if pos >= end or text[pos] == "]":
                break
            lineno = text.count("\n", 0, pos) + 1
            try:
                _, stop = decoder.raw_decode(text, pos)
            except RecursionError:
                # Too deep to decode: the scanner reads its fields and finds its end.
                rest = text[pos:].encode()
                scanner = salvage_bytes(rest)
                if scanner.end is None:
                    self.count_skip(
                        f"{origin}:{lineno}", "too-deep", "nested too deeply, and cut short"
                    )
                    break
                out.extend(self._deep(rest[: scanner.end], f"{origin}:{lineno}", None))
                pos += len(rest[: scanner.end].decode())
                continue
            except ValueError:
                self.count_skip(
                    f"{origin}:{lineno}",
                    "truncated-json",
                    "the file is cut short inside this record",
                )
                break
            out.extend(self._bytes(text[pos:stop].encode(), f"{origin}:{lineno}", None, None))
            pos = stop
        return out

    def flush(self) -> list[Event]:
        """End of input: emit what is still held (requests waiting for a response).
        Never raises."""
        try:
            return self.audit.flush()
        except Exception as exc:
            return self.count_skip("flush", "unreadable", _unreadable(exc))

    # -- internals ------------------------------------------------------------

    def _process(self, rec: audit_parser.AuditRecord, ev: Event) -> list[Event]:
        """The audit detections, then the allow list on the record's own event (held
        or not: a held request is the same object, emitted later as marked now)."""
        out = self.audit.process(rec, ev)
        if ev.signal:
            self._expect_audit(rec, ev)
        oref = rec.objectRef
        if oref is not None and oref.resource == "pods" and rec.verb in _POD_WRITES:
            out = out + self._pod_facts(rec, ev)
        return out

    def _pod_facts(self, rec: audit_parser.AuditRecord, ev: Event) -> list[Event]:
        """What a pod write says that links: the pod's own address (its status, as the
        kubelet writes it or the server answers), and the service account it runs as.
        Context events the correlator learns from (see correlate.FACT_KINDS)."""
        if rec.code >= 400:
            return []
        facts = pod_facts(rec)
        if facts is None:
            return []
        namespace, name, address, account = facts
        out: list[Event] = []
        pod = entity(EntityKind.POD, namespace, name)
        known = self._facts
        if len(known) > _MAX_FACTS:
            known.clear()

        def learn(value: str, suffix: str, kind: str, said: str, other: EntityRef) -> None:
            known[(pod, value)] = None
            out.append(
                Event(
                    time=ev.time,
                    source="audit",
                    ref=f"{ev.ref}:{suffix}",
                    kind=kind,
                    severity=Severity.INFO,
                    summary=plain(f"pod {namespace}/{name} {said}"),
                    entities=(pod, other),
                    raw=ev.raw,
                )
            )

        if address and (pod, address) not in known:
            ip = entity(EntityKind.IP, "", address)
            learn(address, "pod-address", POD_ADDRESS_KIND, f"has address {address}", ip)
        if account and (pod, account) not in known:
            account_ref = entity(EntityKind.SERVICE_ACCOUNT, namespace, account)
            said = f"runs as service account {account}"
            learn(account, "pod-account", POD_ACCOUNT_KIND, said, account_ref)
        return out

    def _expect_audit(self, rec: audit_parser.AuditRecord, ev: Event) -> None:
        """Mark a detection expected when the allow list holds the request: matched
        by the authenticated identity; an impersonated request never matches."""
        user = rec.user
        name = user.username if user is not None else None
        if not name or rec.impersonatedUser is not None or ev.source != "audit":
            return
        candidates = self.allowlist.audit_candidates(name)
        if not candidates:
            return
        oref = rec.objectRef
        resource = namespace = obj_name = ""
        if oref is not None:
            resource = oref.resource or ""
            if oref.subresource:
                resource = f"{resource}/{oref.subresource}"
            namespace = oref.namespace or ""
            obj_name = oref.name or ""
        decoded: list[object] = []

        def request_object() -> object:
            if not decoded:
                decoded.append(audit_parser.decode_object(rec.requestObject))
            return decoded[0]

        entry = self.allowlist.for_request(
            name, rec.verb or "", resource, namespace, obj_name, rec.requestURI or "",
            request_object, ev.kind,
        )  # fmt: skip
        if entry is not None:
            mark_expected(ev, entry)
            self.expected += 1

    def _expect_falco(self, alert: falco_parser.FalcoAlert, ev: Event) -> None:
        """A Falco alert about a process an allow-list entry expects: by the process's
        executable, its arguments (the command line after the program) and its
        parent's name, as Falco's fields give them."""
        fields = alert.output_fields or {}
        if alert.source == "k8s_audit":
            self._expect_falco_audit(fields, ev)
            return
        cmdline = fields.get("proc.cmdline")
        binary = fields.get("proc.exepath") or fields.get("proc.exe") or fields.get("proc.name")
        parent = fields.get("proc.pname")
        if not isinstance(cmdline, str) or not isinstance(binary, str):
            return
        entry = self.allowlist.for_process(
            "falco",
            binary,
            cmdline.partition(" ")[2],
            parent if isinstance(parent, str) else "",
            ev.kind,
        )
        if entry is not None:
            mark_expected(ev, entry)
            self.expected += 1

    def _expect_falco_audit(self, fields: dict[str, object], ev: Event) -> None:
        """A Falco k8saudit alert: the request it reports, by the ka.* fields its
        rule's output gave (the authenticated user, verb, resource, namespace)."""
        text = {k: v for k, v in fields.items() if isinstance(v, str) and v != "<NA>"}
        user = text.get("ka.user.name", "")
        if not user or "ka.impuser.name" in text:
            return
        if not self.allowlist.audit_candidates(user):
            return
        resource = text.get("ka.target.resource", "")
        if text.get("ka.target.subresource"):
            resource = f"{resource}/{text['ka.target.subresource']}"
        entry = self.allowlist.for_request(
            user,
            text.get("ka.verb", ""),
            resource,
            text.get("ka.target.namespace", ""),
            text.get("ka.target.name", ""),
            text.get("ka.uri", ""),
            lambda: None,  # Falco does not pass the request's body on
            ev.kind,
        )
        if entry is not None:
            mark_expected(ev, entry)
            self.expected += 1

    def _expect_tetragon(self, rec: tetragon_parser.TetragonRecord, ev: Event) -> None:
        body = rec.process_exec
        proc = body.process if body is not None else None
        if body is None or proc is None:
            return
        parent = body.parent.binary if body.parent is not None else ""
        entry = self.allowlist.for_process(
            "tetragon", proc.binary or "", proc.arguments or "", parent or "", ev.kind
        )
        if entry is not None:
            mark_expected(ev, entry)
            self.expected += 1

    def _salvaged(
        self, body: bytes, size: int, origin: str, raw: RawRef | int | None
    ) -> list[Event]:
        """The fields read from a record over the limit (`body`: them as JSON)."""
        how_long = f"{size} bytes" if size >= 0 else "cut short"
        what = f"the line is {how_long}, over 1 MiB"
        return self._from_salvage(bytes(body), origin, raw, "too-long", what, OVERSIZED_NOTE)

    def _deep(self, data: bytes, origin: str, raw: RawRef | int | None) -> list[Event]:
        """A record nested too deeply for the decoders: read its fields by scanning."""
        try:
            record = salvage_bytes(data).result()
            body = orjson.dumps(record) if record is not None else b""
        except Exception as exc:
            return self.count_skip(origin, "too-deep", f"nested too deeply; {_unreadable(exc)}")
        what = "the record is nested too deeply to decode"
        return self._from_salvage(body, origin, raw, "too-deep", what, TOO_DEEP_NOTE)

    def _from_salvage(
        self,
        body: bytes,
        origin: str,
        raw: RawRef | int | None,
        reason: str,
        what: str,
        note: str,
    ) -> list[Event]:
        """Parse and detect on the fields a scanner read; counted under `reason`
        either way, with what was made of it."""
        if not body:
            return self.count_skip(origin, reason, f"{what}; it is not a JSON object")
        unread = False
        try:
            obj = orjson.loads(body)
            lost = obj.pop(SALVAGE_KEY, None) if isinstance(obj, dict) else None
            if isinstance(lost, dict):
                # The scanner's account of what its bounds left out: said in the event.
                body = orjson.dumps(obj)
                unread = lost.get("unread") is True
                note = _lost_note(note, lost)
                what += "; " + note.strip(" []").partition("; ")[2]
            fmt = _format_of(obj) if isinstance(obj, dict) else None
            if fmt is None:
                return self.count_skip(
                    origin,
                    reason,
                    f"{what}; the fields read are not an audit event, Falco alert or"
                    " Tetragon event",
                )
            events = self._salvaged_events(fmt, body, raw, note, unread)
        except SkipRecord as exc:
            return self.count_skip(origin, reason, f"{what}; the fields read: {exc.skip.detail}")
        except Exception as exc:
            return self.count_skip(origin, reason, f"{what}; {_unreadable(exc)}")
        self.count_skip(origin, reason, f"{what}; read partially: only the fields detections need")
        self.partial[reason] += 1
        return events

    def _runtime_event(self, fmt: str, data: bytes, raw: RawRef | int | None) -> Event:
        """A Falco alert's event (`fmt` "falco"), else a Tetragon record's, with the
        allow list asked about it when it is a signal."""
        if fmt == "falco":
            alert = falco_parser.parse_falco(data)
            ev = falco_parser.build_event(alert, data, raw)
            if ev.signal and self._allow_falco:
                self._expect_falco(alert, ev)
            self._n_falco += 1
        else:
            rec = tetragon_parser.parse_tetragon(data)
            ev = tetragon_parser.build_event(rec, data, raw)
            if ev.signal and self._allow_tetragon:
                self._expect_tetragon(rec, ev)
            self._n_tetragon += 1
        self._input_time = ev.time
        return ev

    def _salvaged_events(
        self, fmt: str, body: bytes, raw: RawRef | int | None, note: str, unread: bool = False
    ) -> list[Event]:
        """The ordinary parser and detections, on a salvaged record; its own event
        says how it was read (`unread`: a bound stopped the reading before its end)."""
        if fmt == "audit":
            rec = audit_parser.parse_audit(body)
            ev = audit_parser.build_event(rec, body, raw, self._input_time)
            self._n_audit += 1
            self._input_time = ev.time
            out = self._process(rec, ev)
            if unread:
                # A held request is the same object: the signal goes out with it.
                flag_unread_pod_spec(rec, ev)
        else:
            ev = self._runtime_event(fmt, body, raw)
            out = [ev]
        # After the detections, which may rewrite the summary (a held request is the
        # same object, so the note stays when it comes out later).
        if note not in ev.summary:
            ev.summary = clip(ev.summary, 400 - len(note)) + note
        return out

    def count_skip(self, origin: str, reason: str, detail: str, n: int = 1) -> list[Event]:
        """Count `n` records skipped for `reason` and log where and why (bounded): the
        one way sources and the replay say what they could not use."""
        self.skipped[reason] += n
        if len(self.skip_log) < MAX_SKIP_LOG:
            self.skip_log.append((origin, reason, detail))
        return []

    def _lines(self, data: bytes, origin: str, archive: int | None) -> list[Event]:
        out: list[Event] = []
        offset = 0
        if data.startswith(_BOM):
            data = data[3:]
            offset = 3
        for lineno, line in enumerate(data.split(b"\n"), 1):
            length = len(line) + 1
            body = line.rstrip(b"\r")
            if body and not body.isspace():
                if len(body) > MAX_LINE:
                    out.extend(self.feed_oversized(body, origin=f"{origin}:{lineno}"))
                else:
                    raw = RawRef(archive, offset, len(body)) if archive is not None else None
                    events = self._bytes(body, f"{origin}:{lineno}", raw, None)
                    if events:
                        out.extend(events)
            offset += length
        return out

    def _array(self, text: bytes, origin: str) -> list[Event] | None:
        try:
            items = _ITEMS.decode(text)
        except RecursionError:
            # A record too deep for the decoder: read record by record.
            return self._cut_document(text, origin)
        except (msgspec.DecodeError, ValueError):
            return None
        out: list[Event] = []
        for i, item in enumerate(items, 1):
            out.extend(self._bytes(bytes(item), f"{origin}:item{i}", None, None))
        return out

    def _whole(self, text: bytes, origin: str) -> list[Event] | None:
        """One pretty-printed document, or several one after another; None if neither."""
        try:
            _GENERIC.decode(text)
        except (msgspec.DecodeError, ValueError, RecursionError):
            pass
        else:
            return self._bytes(text.strip(_WS), f"{origin}:1", None, None)
        try:
            decoded = text.decode("utf-8")
        except UnicodeDecodeError:
            return None
        decoder = json.JSONDecoder()
        spans: list[tuple[int, int]] = []
        pos = len(decoded) - len(decoded.lstrip())
        while pos < len(decoded):
            try:
                _, end = decoder.raw_decode(decoded, pos)
            except RecursionError:
                # A document too deep to decode: cut them all without recursion.
                return self._documents(text, origin)
            except ValueError:
                return None
            spans.append((pos, end))
            pos = end
            while pos < len(decoded) and decoded[pos].isspace():
                pos += 1
        out: list[Event] = []
        for a, b in spans:
            lineno = decoded.count("\n", 0, a) + 1
            out.extend(self._bytes(decoded[a:b].encode(), f"{origin}:{lineno}", None, None))
        return out

    def _documents(self, text: bytes, origin: str) -> list[Event] | None:
        """Documents one after another, one of them too deep to decode: each cut out
        without recursion and read (the deep one by the too-deep salvage path); what
        cannot be cut is one skip. None when not even a first document can be cut."""
        spans, trouble = split_documents(text)
        if not spans:
            return None
        out: list[Event] = []
        for a, b in spans:
            lineno = text.count(b"\n", 0, a) + 1
            out.extend(self._bytes(text[a:b], f"{origin}:{lineno}", None, None))
        if trouble is not None:
            lineno = text.count(b"\n", 0, spans[-1][1]) + 1
            self.count_skip(
                f"{origin}:{lineno}",
                trouble.reason,
                f"what follows this record cannot be cut into records: {trouble}",
            )
        return out

    def _bytes(
        self, data: bytes, origin: str, raw: RawRef | int | None, fmt: str | None
    ) -> list[Event]:
        """Parse one record's bytes; any failure becomes a Skip."""
        if fmt is None:
            fmt = _sniff(data)
        try:
            if fmt == "audit":
                return self._audit(data, origin, raw)
            if fmt == "falco" or fmt == "tetragon":
                return [self._runtime_event(fmt, data, raw)]
            return self._generic(data, origin, raw)
        except SkipRecord as exc:
            skip = exc.skip
            if skip.reason == "wrong-type" and data.lstrip(_WS)[:1] != b"{":
                return self._generic(data, origin, raw)
            return self.count_skip(origin, skip.reason, skip.detail)
        except (msgspec.DecodeError, ValueError) as exc:
            skip = _bad_json(data, exc)
            return self.count_skip(origin, skip.reason, skip.detail)
        except RecursionError:
            return self._deep(data, origin, raw)
        except Exception as exc:
            return self.count_skip(origin, "wrong-type", _unreadable(exc))

    def _generic(self, data: bytes, origin: str, raw: RawRef | int | None) -> list[Event]:
        """No cheap hint matched: decode fully to tell what the record is."""
        try:
            obj = _GENERIC.decode(data)
        except (msgspec.DecodeError, ValueError) as exc:
            skip = _bad_json(data, exc)
            return self.count_skip(origin, skip.reason, skip.detail)
        except RecursionError:
            return self._deep(data, origin, raw)
        if not isinstance(obj, dict):
            return self.count_skip(
                origin, "not-an-object", f"a JSON {_json_type(obj)}, not an object"
            )
        fmt = _format_of(obj)
        if fmt is None:
            return self.count_skip(origin, "unknown-format", _unknown_detail(obj))
        return self._bytes(data, origin, raw, fmt)

    def _audit(self, data: bytes, origin: str, raw: RawRef | int | None) -> list[Event]:
        if b'"EventList"' in data:
            lst = audit_parser.LIST_DECODER.decode(data)
            if lst.kind == "EventList":
                return self._event_list(lst, origin, raw)
        rec = audit_parser.parse_audit(data)
        ev = audit_parser.build_event(rec, data, raw, self._input_time)
        self._n_audit += 1
        self._input_time = ev.time
        return self._process(rec, ev)

    def _event_list(
        self, lst: audit_parser.EventListRecord, origin: str, raw: RawRef | int | None
    ) -> list[Event]:
        out: list[Event] = []
        for i, item in enumerate(lst.items or (), 1):
            where = f"{origin}:item{i}"
            data = bytes(item)
            try:
                rec = audit_parser.parse_audit(data)
                ev = audit_parser.build_event(rec, data, raw, self._input_time)
            except SkipRecord as exc:
                self.count_skip(where, exc.skip.reason, exc.skip.detail)
                continue
            except (msgspec.DecodeError, ValueError) as exc:
                skip = _bad_json(data, exc)
                self.count_skip(where, skip.reason, skip.detail)
                continue
            except RecursionError:
                out.extend(self._deep(data, where, raw))
                continue
            except Exception as exc:
                self.count_skip(where, "wrong-type", _unreadable(exc))
                continue
            self._n_audit += 1
            self._input_time = ev.time
            try:
                out.extend(self._process(rec, ev))
            except RecursionError:
                out.extend(self._deep(data, where, raw))
            except Exception as exc:
                self.count_skip(where, "wrong-type", _unreadable(exc))
        return out


def _lost_note(note: str, lost: dict[str, Any]) -> str:
    """`note` (" [record over 1 MiB: only key fields read]") with what the scanner's
    bounds left out: " [...; 4,950 capability names not kept; not read to its end]"."""
    parts: list[str] = []
    counts = lost.get("lost")
    if isinstance(counts, dict):
        for what, n in sorted(counts.items())[:6]:
            if not isinstance(n, int) or not isinstance(what, str):
                continue
            what = clip(what, 40)
            parts.append(f"{n:,} {what}" if " cut" in what else f"{n:,} {what} not kept")
    if lost.get("unread") is True:
        parts.append("not read to its end (a scan limit was reached)")
    if not parts:
        return note
    return note.rstrip("]") + "; " + "; ".join(parts) + "]"


def _unreadable(exc: Exception) -> str:
    return f"the record could not be read ({type(exc).__name__}: {exc})"[:300]


def _json_type(obj: object) -> str:
    if isinstance(obj, list):
        return "list"
    if isinstance(obj, str):
        return "string"
    if isinstance(obj, bool):
        return "boolean"
    if isinstance(obj, int | float):
        return "number"
    if obj is None:
        return "null"
    return type(obj).__name__


def _unknown_detail(obj: dict[str, Any]) -> str:
    keys = ", ".join(str(k) for k in list(obj)[:5])
    return f"an object that is not an audit event, Falco alert or Tetragon event (keys: {keys})"


def _derive_text(ev: CompactEvent) -> tuple[str, str, tuple[EntityRef, ...]] | None:
    """(ref, summary, entities) of an event that shed them, built again from its raw
    line as feed_lines built them; None when that line is gone or is not the event's
    any more (its time differs)."""
    raw = ev.raw
    archive = archive_for(raw.archive) if raw is not None else None
    if archive is None or raw is None:
        return None
    try:
        line = archive.read(raw)
        built: Event
        if ev.source == "audit":
            # An untimed record was placed at the time of the record before it, which
            # is its own time now.
            built = _build_audit(_AUDIT_DECODER.decode(line), line, raw, ev.time)
        elif ev.source == "tetragon":
            built = _build_tetragon(_TETRAGON_DECODER.decode(line), line, raw)
        else:
            return None
    except Exception:
        return None
    if built.time != ev.time:
        return None
    return built.ref, built.summary, built.entities


model.derive_text = _derive_text
