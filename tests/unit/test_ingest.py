"""The Ingestor: format detection, skip reasons, documents and arrays."""

from __future__ import annotations

import orjson
import pytest

from ktriage.core.ingest import MAX_LINE, MAX_SKIP_LOG, OVERSIZED_NOTE, Ingestor, Skip
from ktriage.core.model import RawRef

AUDIT = {
    "kind": "Event",
    "apiVersion": "audit.k8s.io/v1",
    "auditID": "a-1",
    "stage": "ResponseComplete",
    "verb": "get",
    "user": {"username": "alice"},
    "objectRef": {"resource": "pods", "namespace": "default", "name": "web"},
    "responseStatus": {"code": 200},
    "stageTimestamp": "2024-05-01T12:00:00.000001Z",
}
FALCO = {
    "time": "2024-05-01T12:00:01.000000000Z",
    "rule": "Terminal shell in container",
    "priority": "Notice",
    "output": "A shell",
    "output_fields": {"k8s.pod.name": "web", "k8s.ns.name": "default"},
}
TETRAGON = {
    "process_exec": {
        "process": {
            "exec_id": "ZXg=",
            "binary": "/bin/ls",
            "pod": {"namespace": "default", "name": "web"},
        }
    },
    "node_name": "n1",
    "time": "2024-05-01T12:00:02Z",
}


def dumps(obj: object) -> bytes:
    return orjson.dumps(obj)


def test_mixed_formats_are_detected() -> None:
    ing = Ingestor()
    events = []
    for rec in (AUDIT, FALCO, TETRAGON):
        events += ing.feed_line(dumps(rec))
    assert [e.source for e in events] == ["audit", "falco", "tetragon"]
    assert ing.formats == {"audit": 1, "falco": 1, "tetragon": 1}


def test_detection_does_not_depend_on_key_order() -> None:
    for rec in (AUDIT, FALCO, TETRAGON):
        reordered = dict(reversed(list(rec.items())))
        [ev] = Ingestor().feed_line(dumps(reordered))
        assert ev.time > 0


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b'{"kind": 0}', "unknown-format"),
        (b'{"hello": "world"}', "unknown-format"),
        (b"42", "not-an-object"),
        (b'"a string"', "not-an-object"),
        (b'[{"auditID": "x"}]', "not-an-object"),
        (b'["auditID"]', "not-an-object"),
        (b"null", "not-an-object"),
        (b'{"kind":"Event","auditID":"x","verb":"get"', "truncated-json"),
        (b'{"rule": "x", "priority": "Notice", "time": "2024-05-01T1', "truncated-json"),
        (b"{not json}", "malformed-json"),
        (b'{"a": 1} trailing', "malformed-json"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary"),
        (b"\xff\xfe\xfd garbage", "binary"),
        (b'{"auditID": "\xff\xfe"}', "binary"),
        (b"\x00\x01\x02\x03", "binary"),
    ],
)
def test_skip_reasons(line: bytes, reason: str) -> None:
    ing = Ingestor()
    assert ing.feed_line(line, origin="in.jsonl:7") == []
    assert ing.skipped == {reason: 1}
    origin, got, detail = ing.skip_log[0]
    assert (origin, got) == ("in.jsonl:7", reason)
    assert detail and "\n" not in detail


def test_blank_lines_are_ignored_not_counted() -> None:
    ing = Ingestor()
    for blank in (b"", b"\n", b"   \r\n", b"\t"):
        assert ing.feed_line(blank) == []
    assert not ing.skipped
    assert ing.skip_log == []


def test_too_long_line() -> None:
    ing = Ingestor()
    huge = b'{"kind":"Event","auditID":"x","verb":"get","pad":"' + b"a" * MAX_LINE + b'"}'
    assert ing.feed_line(huge, origin="big.jsonl:1") == []
    assert ing.skipped == {"too-long": 1}
    # No time of its own and nothing before it to place it after: nothing to show.
    assert "no timestamp" in ing.skip_log[0][2]
    ing2 = Ingestor()
    events = ing2.feed_document(
        dumps(AUDIT) + b"\n" + huge + b"\n" + dumps(FALCO), origin="big.jsonl"
    )
    # Read partially, placed after the record before it, and still counted.
    assert len(events) == 3
    assert events[1].summary.endswith(OVERSIZED_NOTE)
    assert [(o, r) for o, r, _ in ing2.skip_log] == [("big.jsonl:2", "too-long")]
    assert "read partially" in ing2.skip_log[0][2]


def test_skip_log_is_capped_but_counts_are_not() -> None:
    ing = Ingestor()
    for _ in range(MAX_SKIP_LOG + 50):
        ing.feed_line(b"{oops")
    assert ing.skipped["malformed-json"] == MAX_SKIP_LOG + 50
    assert len(ing.skip_log) == MAX_SKIP_LOG


def test_feed_record_and_hint() -> None:
    ing = Ingestor()
    [ev] = ing.feed_record(dict(AUDIT), origin="hook")
    assert ev.source == "audit"
    assert ing.feed_record([1, 2], origin="hook") == []
    assert ing.feed_record({"kind": 0}, origin="hook") == []
    assert ing.skipped == {"not-an-object": 1, "unknown-format": 1}
    # a hint forces the format even when the keys would not tell
    bare = {k: v for k, v in AUDIT.items() if k not in ("auditID", "apiVersion", "kind")}
    assert Ingestor().feed_record(bare) == []
    [ev] = Ingestor().feed_record(bare, hint="audit")
    assert ev.kind == "api-request"
    [ev] = Ingestor().feed_record(dict(FALCO), hint="falco")
    assert ev.source == "falco"


def test_raw_ref_is_passed_through() -> None:
    raw = RawRef(3, 100, 42)
    for rec in (AUDIT, FALCO, TETRAGON):
        [ev] = Ingestor().feed_line(dumps(rec), raw=raw)
        assert ev.raw == raw


def test_document_json_lines_with_bad_lines() -> None:
    data = b"\n".join([dumps(AUDIT), b"", b"{broken", dumps(FALCO), b"7", dumps(TETRAGON), b""])
    ing = Ingestor()
    events = ing.feed_document(data, origin="mix.jsonl", archive=5)
    assert [e.source for e in events] == ["audit", "falco", "tetragon"]
    assert [(o, r) for o, r, _ in ing.skip_log] == [
        ("mix.jsonl:3", "malformed-json"),
        ("mix.jsonl:5", "not-an-object"),
    ]
    first = events[0].raw
    assert first == RawRef(5, 0, len(dumps(AUDIT)))
    assert data[events[1].raw.offset : events[1].raw.offset + events[1].raw.length] == dumps(FALCO)


def test_document_pretty_printed_object() -> None:
    pretty = orjson.dumps(TETRAGON, option=orjson.OPT_INDENT_2)
    assert pretty.count(b"\n") > 3
    ing = Ingestor()
    [ev] = ing.feed_document(pretty, origin="doc.json")
    assert ev.source == "tetragon"
    assert not ing.skipped


def test_document_concatenated_pretty_objects() -> None:
    a = orjson.dumps(AUDIT, option=orjson.OPT_INDENT_2)
    b = orjson.dumps(FALCO, option=orjson.OPT_INDENT_2)
    events = Ingestor().feed_document(a + b"\n" + b, origin="two.json")
    assert [e.source for e in events] == ["audit", "falco"]


def test_document_array_and_event_list() -> None:
    arr = orjson.dumps([AUDIT, FALCO, 5], option=orjson.OPT_INDENT_2)
    ing = Ingestor()
    events = ing.feed_document(arr, origin="arr.json")
    assert [e.source for e in events] == ["audit", "falco"]
    assert [(o, r) for o, r, _ in ing.skip_log] == [("arr.json:item3", "not-an-object")]
    items = [dict(AUDIT, auditID=f"id-{i}") for i in range(4)]
    elist = orjson.dumps(
        {"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": items},
        option=orjson.OPT_INDENT_2,
    )
    assert len(Ingestor().feed_document(elist, origin="list.json")) == 4
    assert len(Ingestor().feed_document(orjson.dumps({"kind": "EventList", "items": items}))) == 4


def test_document_with_bom_and_crlf() -> None:
    data = b"\xef\xbb\xbf" + dumps(AUDIT) + b"\r\n" + dumps(FALCO) + b"\r\n"
    ing = Ingestor()
    assert len(ing.feed_document(data, origin="win.jsonl")) == 2
    assert not ing.skipped


def test_broken_pretty_document_falls_back_to_lines() -> None:
    data = b'{\n  "kind": "Event",\n  "auditID": "x",\n'
    ing = Ingestor()
    assert ing.feed_document(data, origin="cut.json") == []
    assert sum(ing.skipped.values()) == 3


def test_skip_type() -> None:
    assert Skip("empty") == ("empty", "")


def test_feed_lines_matches_feed_line_and_points_at_each_line() -> None:
    untimed = {k: v for k, v in AUDIT.items() if k != "stageTimestamp"}
    untimed["auditID"] = "a-2"
    lines = [
        dumps(AUDIT) + b"\r\n",
        b"\n",
        dumps(TETRAGON) + b"\n",
        b"{broken\n",
        dumps(FALCO) + b"\n",
        dumps(untimed),  # last line, no line end
    ]
    data = b"".join(lines)
    got: list = []
    ing = Ingestor()
    assert ing.feed_lines(iter(lines), "mix.jsonl", got.append, archive=7) == (6, 4)
    assert [(o, r) for o, r, _ in ing.skip_log] == [("mix.jsonl:4", "malformed-json")]
    one_by_one = Ingestor()
    expected = []
    for i, line in enumerate(lines, 1):
        expected += one_by_one.feed_line(line, origin=f"mix.jsonl:{i}")
    assert [(e.source, e.ref, e.time, e.summary, e.entities) for e in got] == [
        (e.source, e.ref, e.time, e.summary, e.entities) for e in expected
    ]
    assert got[-1].summary.endswith("(time not recorded; placed after the previous record)")
    for ev in got:
        assert ev.raw.archive == 7
        body = data[ev.raw.offset : ev.raw.offset + ev.raw.length]
        assert orjson.loads(body) and not body.endswith((b"\r", b"\n"))
    assert got[0].raw == RawRef(7, 0, len(dumps(AUDIT)))


def test_feed_lines_spools_when_there_is_no_archive() -> None:
    spooled: list[bytes] = []

    def spool(body: bytes) -> RawRef:
        spooled.append(body)
        return RawRef(1, len(spooled), len(body))

    got: list = []
    Ingestor().feed_lines(iter([dumps(FALCO) + b"\n"]), "f.gz", got.append, spool=spool)
    assert spooled == [dumps(FALCO)]
    assert got[0].raw == RawRef(1, 1, len(dumps(FALCO)))


def test_compact_raw_reference_reads_back_as_a_raw_ref() -> None:
    from ktriage.core.model import CompactEvent, Event, Severity, pack_raw

    packed = pack_raw(2, 123_456_789, 900)
    assert isinstance(packed, int)
    ev = CompactEvent(1.0, "audit", "r", "api-request", Severity.INFO, "s", raw=packed)
    assert isinstance(ev, Event)
    assert ev.raw == RawRef(2, 123_456_789, 900)
    ev.raw = RawRef(3, 4, 5)
    assert ev.raw == RawRef(3, 4, 5)
    ev.raw = None
    assert ev.raw is None
    # numbers too large to pack stay a RawRef
    assert pack_raw(0, 1 << 40, 10) == RawRef(0, 1 << 40, 10)
