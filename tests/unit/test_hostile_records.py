"""Hostile records: none stops a source, an oversized one is not invisible, and no
value a parser lets through crashes an output. Tests are named by the hostile class."""

from __future__ import annotations

import io
import json
import random
import sys
from pathlib import Path

import msgspec
import orjson
import pytest

from ktriage.cli import main
from ktriage.core import salvage
from ktriage.core.correlate import FACT_KINDS, Correlator
from ktriage.core.ingest import (
    MAX_LINE,
    OVERSIZED_NOTE,
    SKIP_REASON_TEXT,
    SKIP_REASONS,
    TOO_DEEP_NOTE,
    Ingestor,
)
from ktriage.core.model import MAX_TIME, Event, Severity, iso, parse_time, to_datetime
from ktriage.core.parse import audit as audit_parser
from ktriage.core.parse.audit import OUT_OF_RANGE_NOTE
from ktriage.core.replay import Replayer
from ktriage.core.report import incident_json_line, text_report
from ktriage.core.salvage import RecordScanner, SalvagedLine, salvage_bytes
from ktriage.core.snapshot import duration, render_markdown
from ktriage.sources.tail import LineSplitter
from ktriage.ui import format as ui_format

T0 = "2026-11-27T03:00:00.000000Z"


def audit(**over: object) -> dict:
    rec: dict = {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": "RequestResponse",
        "auditID": "5f1c7a4e-0000-4000-8000-000000000001",
        "stage": "ResponseComplete",
        "requestURI": "/api/v1/namespaces/shop/pods",
        "verb": "get",
        "user": {"username": "mallory", "groups": ["system:authenticated"]},
        "sourceIPs": ["203.0.113.50"],
        "objectRef": {"resource": "pods", "namespace": "shop", "name": "web-1", "apiVersion": "v1"},
        "responseStatus": {"metadata": {}, "code": 200},
        "requestReceivedTimestamp": T0,
        "stageTimestamp": T0,
    }
    rec.update(over)
    return rec


def privileged_pod(env_bytes: int = 0, name: str = "root-shell") -> dict:
    """A privileged hostPID pod with a hostPath of / (CRITICAL), padded with env."""
    env = [{"name": f"PAD_{i}", "value": "x" * 1000} for i in range(env_bytes // 1024)]
    return audit(
        auditID="5f1c7a4e-0000-4000-8000-0000000000aa",
        verb="create",
        requestURI="/api/v1/namespaces/shop/pods",
        objectRef={"resource": "pods", "namespace": "shop", "name": name, "apiVersion": "v1"},
        responseStatus={"metadata": {}, "code": 201},
        requestObject={
            "kind": "Pod",
            "apiVersion": "v1",
            "metadata": {"name": name, "namespace": "shop", "labels": {"app": "x"}},
            "spec": {
                "hostPID": True,
                "serviceAccountName": "builder",
                "containers": [
                    {
                        "name": "shell",
                        "image": "alpine",
                        "env": env,
                        "securityContext": {
                            "privileged": True,
                            "capabilities": {"add": ["SYS_ADMIN"]},
                        },
                        "volumeMounts": [{"name": "host", "mountPath": "/host"}],
                    }
                ],
                "volumes": [{"name": "host", "hostPath": {"path": "/"}}],
            },
        },
    )


FALCO = {
    "uuid": "8e2c0a52-9d0d-4a6a-8b0c-0e5f8d6c1a01",
    "time": "2026-11-27T03:00:05.123456789Z",
    "rule": "Terminal shell in container",
    "priority": "Notice",
    "source": "syscall",
    "hostname": "node-a",
    "output": "03:00:05.123456789: Notice A shell was spawned (user=root k8s.pod=web-1)",
    "output_fields": {
        "k8s.ns.name": "shop",
        "k8s.pod.name": "web-1",
        "container.id": "0123456789ab",
        "proc.cmdline": "sh -c id",
    },
    "tags": ["container", "shell", "mitre_execution", "T1059"],
}
TETRAGON = {
    "process_exec": {
        "process": {
            "exec_id": "ZXhlYy0x",
            "pid": 4242,
            "binary": "/bin/bash",
            "arguments": "-c id",
            "start_time": "2026-11-27T03:00:06.000000Z",
            "pod": {
                "namespace": "shop",
                "name": "web-1",
                "container": {"id": "containerd://0123456789abcdef", "name": "web"},
            },
        },
        "parent": {"binary": "/usr/sbin/nginx"},
    },
    "node_name": "node-a",
    "time": "2026-11-27T03:00:06.000000Z",
}


def line(rec: dict) -> bytes:
    return orjson.dumps(rec)


def deep(depth: int) -> str:
    return "[" * depth + "]" * depth


def deep_audit_line(depth: int) -> bytes:
    """A custom resource audited with its body, nested `depth` levels."""
    head = line(
        audit(
            verb="create",
            objectRef={"resource": "widgets", "namespace": "shop", "apiGroup": "x.example"},
            requestObject={"spec": "HOLE"},
        )
    )
    return head.replace(b'"HOLE"', deep(depth).encode())


def kinds(events: list[Event]) -> list[str]:
    return [e.kind for e in observed(events)]


def observed(events: list[Event]) -> list[Event]:
    """The events of what a record says, without the facts the correlator learns
    links from (a pod's service account)."""
    return [e for e in events if e.kind not in FACT_KINDS]


# -- deep nesting -------------------------------------------------------------


@pytest.mark.parametrize("depth", [1000, 5000, 200_000])
def test_hostile_deep_nesting_audit_line_keeps_its_top_level_fields(depth: int) -> None:
    ing = Ingestor()
    events = ing.feed_line(deep_audit_line(depth), origin="a:1")
    assert len(events) == 1
    ev = events[0]
    assert ev.summary.startswith("mallory create widgets in shop")
    assert ev.summary.endswith(TOO_DEEP_NOTE)
    assert ing.skipped == {"too-deep": 1}
    assert "read partially" in ing.skip_log[0][2]
    # The next record is read as usual.
    assert kinds(ing.feed_line(line(FALCO))) == ["shell"]


def test_hostile_deep_nesting_every_feed_method_keeps_reading() -> None:
    bad = deep_audit_line(3000)
    good = line(audit())
    ing = Ingestor()
    emitted: list[Event] = []
    assert ing.feed_lines(io.BytesIO(bad + b"\n" + good + b"\n"), "f", emitted.append) == (2, 2)
    assert [e.summary.endswith(TOO_DEEP_NOTE) for e in emitted] == [True, False]
    for feed in (
        lambda i: i.feed_document(bad + b"\n" + good + b"\n", origin="doc"),
        lambda i: i.feed_document(b"[" + bad + b"," + good + b"]", origin="arr"),
        lambda i: i.feed_cut_document(b"[" + bad + b"," + good + b",{", origin="cut"),
    ):
        ing = Ingestor()
        events = feed(ing)
        assert len(events) == 2, ing.skip_log
        assert events[0].summary.endswith(TOO_DEEP_NOTE)
        assert ing.skipped["too-deep"] == 1


def test_hostile_deep_nesting_decoded_record_is_pruned_not_fatal() -> None:
    """A record already decoded (a webhook body) deeper than the encoder goes."""
    nested: object = []
    for _ in range(600):
        nested = [nested]
    rec = audit(verb="create", objectRef={"resource": "widgets", "namespace": "shop"})
    rec["requestObject"] = {"spec": nested}
    ing = Ingestor()
    events = ing.feed_record(rec, origin="hook")
    assert len(events) == 1 and events[0].summary.endswith(TOO_DEEP_NOTE)
    assert ing.skipped == {"too-deep": 1}


def test_hostile_deep_nesting_in_a_deep_call_stack() -> None:
    """The decoders' limit counts the caller's frames too: a record that decodes at
    the top of the stack may not deep inside a UI callback. It is still read."""
    record = deep_audit_line(300)

    def dig(n: int) -> list[Event]:
        if n:
            return dig(n - 1)
        return Ingestor().feed_line(record)

    events = dig(sys.getrecursionlimit() - 400)
    assert len(events) == 1 and events[0].summary.startswith("mallory create")


@pytest.mark.parametrize("where", ["falco", "tetragon"])
def test_hostile_deep_nesting_in_falco_and_tetragon_fields(where: str) -> None:
    if where == "falco":
        rec = json.loads(json.dumps(FALCO))
        rec["output_fields"]["evil"] = "HOLE"
    else:
        rec = json.loads(json.dumps(TETRAGON))
        rec["process_exec"]["args"] = "HOLE"
    data = line(rec).replace(b'"HOLE"', deep(5000).encode())
    ing = Ingestor()
    events = ing.feed_line(data)
    assert kinds(events) == ["shell"]
    assert events[0].signal and events[0].summary.endswith(TOO_DEEP_NOTE)


# -- oversized ----------------------------------------------------------------


def test_hostile_oversized_privileged_hostpid_pod_gives_the_same_signal() -> None:
    small = observed(Ingestor().feed_line(line(privileged_pod())))
    big_line = line(privileged_pod(env_bytes=1200 << 10))
    assert len(big_line) > MAX_LINE
    ing = Ingestor()
    big = observed(ing.feed_line(big_line, origin="audit.log:7"))
    assert len(small) == len(big) == 1
    a, b = small[0], big[0]
    assert (b.kind, b.severity, b.label, b.signal, b.attack) == (
        a.kind,
        a.severity,
        a.label,
        a.signal,
        a.attack,
    )
    assert b.kind == "privileged-pod" and b.severity == Severity.CRITICAL
    assert "hostPID" in b.summary and "privileged container shell" in b.summary
    assert b.entities == a.entities
    assert b.summary.endswith(OVERSIZED_NOTE)
    # Still counted, as read partially, so the health shows it.
    assert ing.skipped == {"too-long": 1}
    origin, reason, detail = ing.skip_log[0]
    assert (origin, reason) == ("audit.log:7", "too-long") and "read partially" in detail


def test_hostile_oversized_replay_shows_the_record_in_an_incident(tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    path.write_bytes(
        line(audit()) + b"\n" + line(privileged_pod(env_bytes=1200 << 10)) + b"\n" + line(FALCO)
    )
    correlator = Correlator()
    replayer = Replayer(correlator)
    replayer.replay([path])
    timeline = [
        ev.summary for inc in correlator.sorted_incidents() for ev in correlator.events_of(inc.id)
    ]
    assert any(s.endswith(OVERSIZED_NOTE) and "hostPID" in s for s in timeline)
    assert replayer.ingestor.skipped == {"too-long": 1}


@pytest.mark.parametrize("chunk", [1, 7, 4096, 256 << 10])
def test_hostile_oversized_scanner_reads_the_same_in_any_chunks(chunk: int) -> None:
    data = line(privileged_pod(env_bytes=300 << 10))
    whole = salvage_bytes(data).result()
    rng = random.Random(chunk)
    scanner = RecordScanner()
    pos = 0
    # Chunks that cut strings, escapes and numbers anywhere (the first 64 KiB finely).
    while pos < len(data):
        step = chunk if pos > 65536 else rng.randint(1, max(chunk, 2))
        scanner.feed(data[pos : pos + step])
        pos += step
    assert scanner.result() == whole
    assert whole["requestObject"]["spec"]["containers"][0]["securityContext"] == {
        "privileged": True,
        "capabilities": {"add": ["SYS_ADMIN"]},
    }
    assert "env" not in whole["requestObject"]["spec"]["containers"][0]


def test_hostile_oversized_falco_alert_and_tetragon_exec() -> None:
    falco = json.loads(json.dumps(FALCO))
    falco["output"] = falco["output"] + " " + "A" * (2 << 20)
    falco["output_fields"]["proc.cmdline"] = "sh -c " + "B" * (2 << 20)
    tetra = json.loads(json.dumps(TETRAGON))
    tetra["process_exec"]["process"]["arguments"] = "-c " + "C" * (2 << 20)
    ing = Ingestor()
    f = ing.feed_line(line(falco))
    t = ing.feed_line(line(tetra))
    assert kinds(f) == ["shell"] and f[0].severity == Severity.MEDIUM  # ktriage's shell rating
    # Each long string kept in part, and the event says so.
    assert "A shell was spawned" in f[0].summary
    assert f[0].summary.endswith(OVERSIZED_NOTE[:-1] + "; 2 strings cut at 4 KiB]")
    assert len(f[0].summary) <= 400
    assert kinds(t) == ["shell"] and t[0].signal
    assert t[0].summary.endswith(OVERSIZED_NOTE[:-1] + "; 1 strings cut at 4 KiB]")
    assert {e.name for e in t[0].entities} >= {"web-1", "node-a"}
    assert ing.skipped == {"too-long": 2}


def test_hostile_oversized_line_splitter_hands_on_what_it_read() -> None:
    too_long: list[tuple[int, int]] = []
    splitter = LineSplitter(MAX_LINE, lambda o, n: too_long.append((o, n)))
    big = line(privileged_pod(env_bytes=1500 << 10))
    data = b"first\n" + big + b"\n" + b"{" + b"x" * (MAX_LINE + 10) + b"}\nlast\n"
    out: list[tuple[int, bytes]] = []
    for pos in range(0, len(data), 64 << 10):
        out.extend(splitter.feed(data[pos : pos + (64 << 10)], pos))
    assert [o for o, _ in out] == [0, 6, len(data) - 5]
    salvaged = out[1][1]
    assert type(salvaged) is SalvagedLine and salvaged.size == len(big)
    assert len(salvaged) < 4096
    # The garbage line gave nothing to read: reported skipped, as before.
    assert too_long == [(7 + len(big), MAX_LINE + 12)]
    ing = Ingestor()
    events = ing.feed_line(salvaged, origin="f@6")
    assert kinds(events) == ["privileged-pod"] and events[0].summary.endswith(OVERSIZED_NOTE)
    assert ing.skipped == {"too-long": 1}


def test_hostile_oversized_work_is_bounded() -> None:
    """Millions of tiny tokens, or a bracket storm: the scanner stops at its bounds."""
    for data in (
        b'{"x":[' + b"{}," * (6 << 20) + b'{}],"verb":"get"}',
        b'{"verb":"get","x":' + b"[" * (8 << 20),
        b'{"requestObject":{"spec":{"containers":[' + b'{"name":"a"},' * 400_000 + b"{}]}}}",
    ):
        scanner = salvage_bytes(data)
        assert scanner._steps <= salvage.MAX_STEPS + 1
        assert scanner.bytes_seen <= salvage.MAX_SCAN_BYTES
        result = scanner.result() or {}
        assert len(orjson.dumps(result)) < MAX_LINE
        Ingestor().feed_oversized(data)  # never raises


def test_hostile_oversized_thousands_of_containers_keep_the_privileged_one() -> None:
    rec = privileged_pod()
    containers = rec["requestObject"]["spec"]["containers"]
    rec["requestObject"]["spec"]["containers"] = [
        {"name": f"c{i}", "image": "registry.example/app:1.0"} for i in range(30_000)
    ] + containers
    data = line(rec)
    assert len(data) > MAX_LINE
    events = Ingestor().feed_line(data)
    assert kinds(events) == ["privileged-pod"] and events[0].severity == Severity.CRITICAL


# -- out-of-range values ------------------------------------------------------

HUGE_TIMES = [
    "9999-12-31T23:59:59.9999999Z",
    "0001-01-01T00:00:00Z",
    "3000-01-01T00:00:00Z",
    2**70,
    -(2**70),
    1e308,
    -1,
]


@pytest.mark.parametrize("stamp", HUGE_TIMES, ids=str)
def test_hostile_out_of_range_audit_time_is_placed_or_skipped(stamp: object) -> None:
    bad = audit(stageTimestamp=stamp, requestReceivedTimestamp=stamp, auditID="bad")
    alone = Ingestor()
    assert alone.feed_line(json.dumps(bad).encode()) == []
    assert alone.skipped == {"out-of-range": 1}
    ing = Ingestor()
    first = ing.feed_line(line(audit()))
    placed = ing.feed_line(json.dumps(bad).encode())
    assert len(placed) == 1
    assert placed[0].time == first[0].time
    assert placed[0].summary.endswith(OUT_OF_RANGE_NOTE)


@pytest.mark.parametrize("stamp", HUGE_TIMES, ids=str)
def test_hostile_out_of_range_falco_and_tetragon_times_are_skipped(stamp: object) -> None:
    falco = dict(FALCO, time=stamp)
    tetra = dict(TETRAGON, time=stamp)
    tetra["process_exec"] = {**TETRAGON["process_exec"]}
    tetra["process_exec"]["process"] = {
        **TETRAGON["process_exec"]["process"],
        "start_time": stamp if isinstance(stamp, str) else None,
    }
    ing = Ingestor()
    assert ing.feed_line(json.dumps(falco).encode()) == []
    assert ing.feed_line(json.dumps(tetra).encode()) == []
    assert ing.skipped == {"out-of-range": 2}
    assert kinds(ing.feed_line(line(FALCO))) == ["shell"]


def test_hostile_out_of_range_integer_beyond_64_bits() -> None:
    ing = Ingestor()
    big = 10**400
    for rec in (audit(stageTimestamp=big, requestReceivedTimestamp=big), dict(FALCO, time=big)):
        assert ing.feed_line(json.dumps(rec).encode()) == []
    assert sum(ing.skipped.values()) == 2
    assert kinds(ing.feed_line(line(FALCO))) == ["shell"]


def test_hostile_out_of_range_nan_and_infinity_tokens() -> None:
    for token in (b"NaN", b"Infinity", b"-Infinity", b"1e999", b"-1e999"):
        data = line(FALCO).replace(b'"2026-11-27T03:00:05.123456789Z"', token)
        ing = Ingestor()
        assert ing.feed_line(data) == []
        assert sum(ing.skipped.values()) == 1
    assert parse_time(float("nan")) is None
    assert parse_time(float("inf")) is None
    assert parse_time(MAX_TIME) is None


BAD_VALUES = [
    float("nan"),
    float("inf"),
    float("-inf"),
    1e300,
    -1e300,
    2.0**70,
    -(2.0**70),
    253402300799.9999999,
    -62135596800.0 - 1,
]


@pytest.mark.parametrize("ts", BAD_VALUES, ids=repr)
def test_hostile_out_of_range_formatters_are_total(ts: float) -> None:
    assert isinstance(iso(ts), str)
    assert isinstance(to_datetime(ts).year, int)
    for fmt in (ui_format.clock_time, ui_format.event_time, ui_format.date_time):
        assert isinstance(fmt(ts), str)
    assert isinstance(ui_format.age(ts), str)
    assert isinstance(ui_format.rate(ts), str)
    assert isinstance(duration(ts), str)
    assert isinstance(duration(ts - 1e300), str)


def test_hostile_out_of_range_event_time_in_every_report() -> None:
    """An event with any time still renders in JSON, text and Markdown."""
    correlator = Correlator()
    ing = Ingestor()
    for ev in ing.feed_line(line(FALCO)):
        correlator.add(ev)
    inc = correlator.sorted_incidents()[0]
    events = correlator.events_of(inc.id)
    for ts in BAD_VALUES:
        events[0].time = ts
        inc.first_seen = inc.last_seen = inc.first_signal = ts
        assert json.loads(incident_json_line(inc, events))
        assert text_report([inc], correlator.events_of)
        assert render_markdown(inc, events, lambda e: None)


# -- bad UTF-8, duplicate keys, wrong types -----------------------------------


def test_hostile_bad_utf8_is_skipped_and_counted_then_reading_goes_on() -> None:
    ing = Ingestor()
    bad = line(FALCO).replace(b"node-a", b"node-\xff\xfe")
    assert ing.feed_line(bad) == []
    assert ing.skipped == {"binary": 1}
    # In a record over the limit, the scanner keeps what it can, bytes replaced.
    big = line(privileged_pod(env_bytes=1100 << 10)).replace(b"root-shell", b"root-\xff")
    events = ing.feed_line(big)
    assert kinds(events) == ["privileged-pod"] and "root-\ufffd" in events[0].summary


def test_hostile_duplicate_keys_and_wrong_types_never_raise() -> None:
    ing = Ingestor()
    cases = [
        b'{"kind":"Event","auditID":"x","verb":"get","verb":{"a":1},"stageTimestamp":"'
        + T0.encode()
        + b'"}',
        line(audit(user=[1, 2])),
        line(audit(sourceIPs="1.2.3.4")),
        line(audit(objectRef={"resource": ["pods"]})),
        line(audit(responseStatus={"code": 1e300})),
        line(dict(FALCO, output_fields=[1])),
        line(dict(FALCO, tags={"a": 1})),
        line(dict(TETRAGON, node_name=12)),
        b'{"rule":"x","priority":"Warning","time":' + b"9" * 5000 + b"}",
    ]  # fmt: skip
    for data in cases:
        ing.feed_line(data)
        ing.feed_lines([data], "f", lambda e: None)
        ing.feed_document(data)
    assert sum(ing.skipped.values()) >= len(cases)
    assert set(ing.skipped) <= set(SKIP_REASONS)


def test_hostile_internal_error_is_counted_as_unreadable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The catch-all: a detector bug on one record loses that record only."""
    ing = Ingestor()

    def broken(rec: object, ev: Event) -> list[Event]:
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(ing.audit, "process", broken)
    assert ing.feed_line(line(audit())) == []
    emitted: list[Event] = []
    ing.feed_lines([line(audit()) + b"\n", line(FALCO) + b"\n"], "f", emitted.append)
    assert kinds(emitted) == ["shell"]
    assert ing.skipped["wrong-type"] + ing.skipped["unreadable"] == 2


def test_every_skip_reason_is_explained() -> None:
    assert set(SKIP_REASON_TEXT) == set(SKIP_REASONS)


# -- the replay command -------------------------------------------------------


def test_hostile_records_through_replay_outputs(
    tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    path = tmp_path / "mixed.log"
    path.write_bytes(
        b"\n".join(
            [
                line(audit()),
                deep_audit_line(5000),
                line(privileged_pod(env_bytes=1200 << 10)),
                json.dumps(dict(FALCO, time="9999-12-31T23:59:59.9999999Z")).encode(),
                json.dumps(dict(TETRAGON, time=2**70)).encode(),
                b"\xff\xfe garbage",
                line(FALCO),
                line(TETRAGON),
            ]
        )
        + b"\n"
    )
    for flags in (["--json"], ["--text"], ["--markdown", str(tmp_path / "snap")]):
        assert main(["replay", *flags, str(path)]) == 0
        out = capsysbinary.readouterr()
        assert b"Traceback" not in out.err
    summaries = b"".join(p.read_bytes() for p in (tmp_path / "snap").iterdir())
    assert b"hostPID" in summaries


def test_hostile_deep_nesting_request_object_a_detection_decodes() -> None:
    """A request object too deep to decode on its own (a detection decodes it deeper
    in the stack than the record was): its fields are read by scanning instead."""
    obj = privileged_pod()["requestObject"]
    obj["spec"]["containers"][0]["args"] = "HOLE"
    raw = json.dumps(obj).encode().replace(b'"HOLE"', deep(5000).encode())
    scanned = audit_parser.decode_object(msgspec.Raw(raw))
    assert isinstance(scanned, dict)
    assert scanned["spec"]["hostPID"] is True
    assert scanned["spec"]["containers"][0]["securityContext"]["privileged"] is True
    assert "args" not in scanned["spec"]["containers"][0]
    assert audit_parser.decode_object(msgspec.Raw(b"[" * 5000 + b"]" * 5000)) is None


# -- budgets that must not hide a flag coming later in the record ----------------------


def pod_in_api_server_order(
    *, caps: list[str], containers_before: int = 0, pad_string: int = 0, privileged: bool = True
) -> dict:
    """A pod create as the API server writes it: securityContext.capabilities before
    privileged, hostPID after containers; padded with env (over 1 MiB) and optionally
    many plain containers before the privileged one and a long string before the spec."""
    env = [{"name": f"PAD_{i}", "value": "x" * 100} for i in range(9000)]
    security: dict = {"capabilities": {"add": caps}}
    if privileged:
        security["privileged"] = True
    plain = [
        {"name": f"c{i}", "image": "registry.example/app:1.0"} for i in range(containers_before)
    ]
    metadata: dict = {"name": "evil", "namespace": "shop"}
    if pad_string:
        metadata["annotations"] = {"note": "n" * pad_string}
    rec = privileged_pod(name="evil")
    rec["requestObject"] = {
        "kind": "Pod",
        "apiVersion": "v1",
        "metadata": metadata,
        "spec": {
            "containers": [
                *plain,
                {"name": "shell", "image": "alpine", "env": env, "securityContext": security},
            ],
            "hostPID": True,
        },
    }
    return rec


def one_signal(data: bytes) -> Event:
    events = [e for e in Ingestor().feed_line(data) if e.signal]
    assert len(events) == 1, [(e.kind, e.summary) for e in events]
    return events[0]


def test_hostile_budget_capability_names_before_privileged_and_hostpid() -> None:
    # The red team's case: 5,000 names exhaust what a value budget kept, before the flags.
    data = line(pod_in_api_server_order(caps=[f"C{i}" for i in range(5000)]))
    assert len(data) > MAX_LINE
    ev = one_signal(data)
    assert ev.kind == "privileged-pod" and ev.severity == Severity.CRITICAL
    assert "privileged container shell" in ev.summary and "hostPID" in ev.summary
    # Never silent: the event says what was not kept.
    assert "4,984 capability names not kept" in ev.summary


def test_hostile_budget_dangerous_capability_after_thousands_is_kept() -> None:
    caps = [f"C{i}" for i in range(20_000)] + ["sys_admin", "CAP_NET_ADMIN"] + ["C1"] * 9000
    data = line(pod_in_api_server_order(caps=caps, privileged=False))
    scanner = salvage_bytes(data)
    kept = scanner.result()["requestObject"]["spec"]["containers"][0]["securityContext"]
    assert kept["capabilities"]["add"][-2:] == ["sys_admin", "CAP_NET_ADMIN"]
    assert len(kept["capabilities"]["add"]) == salvage.MAX_NAMES + 2
    ev = one_signal(data)
    assert ev.kind == "privileged-pod" and "adds NET_ADMIN,SYS_ADMIN" in ev.summary
    assert "capability names not kept" in ev.summary


def test_hostile_budget_40000_containers_before_a_privileged_one() -> None:
    data = line(pod_in_api_server_order(caps=[], containers_before=40_000))
    ev = one_signal(data)
    assert ev.kind == "privileged-pod" and ev.severity == Severity.CRITICAL
    assert "privileged container shell" in ev.summary and "hostPID" in ev.summary
    assert "containers entries not kept" in ev.summary


def test_hostile_budget_many_privileged_containers_stay_bounded() -> None:
    rec = pod_in_api_server_order(caps=[])
    risky = {"name": "p", "securityContext": {"privileged": True, "capabilities": {"add": ["ALL"]}}}
    rec["requestObject"]["spec"]["containers"][:0] = [risky] * 20_000
    scanner = salvage_bytes(line(rec))
    containers = scanner.result()["requestObject"]["spec"]["containers"]
    assert len(containers) <= salvage.MAX_ITEMS + salvage.MAX_RISKY_ITEMS
    assert scanner.lost["containers entries"] > 0
    assert scanner.result()["requestObject"]["spec"]["hostPID"] is True


def test_hostile_budget_huge_string_before_the_flags() -> None:
    # 12 MiB of one string before the spec: skipped in one step, the flags still read.
    data = line(pod_in_api_server_order(caps=[], pad_string=12 << 20))
    ev = one_signal(data)
    assert ev.kind == "privileged-pod" and ev.severity == Severity.CRITICAL


def test_hostile_budget_values_budget_is_said() -> None:
    rec = pod_in_api_server_order(caps=[])
    rec["user"]["groups"] = [f"g{i}" for i in range(salvage.MAX_VALUES + 10)]
    ev = one_signal(line(rec))
    assert ev.kind == "privileged-pod" and ev.severity == Severity.CRITICAL
    # The groups past the budget, and the source address after them (a list too).
    assert "11 values not kept" in ev.summary


def test_hostile_budget_byte_cap_stops_reading_and_says_so() -> None:
    # Past the 16 MiB scan cap the flags are never reached: the event says the record
    # was not read to its end, and a pod spec too large to read is a signal in itself.
    data = line(pod_in_api_server_order(caps=[], pad_string=salvage.MAX_SCAN_BYTES))
    ev = one_signal(data)
    assert ev.kind == "pod-spec-unread" and ev.severity >= Severity.MEDIUM
    assert ev.label == "Pod spec too large to read fully"
    assert "not read to its end" in ev.summary


def test_hostile_budget_step_cap_stops_reading_and_says_so(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(salvage, "MAX_STEPS", 5_000)
    data = line(pod_in_api_server_order(caps=[f"C{i}" for i in range(6000)]))
    ev = one_signal(data)
    assert ev.kind == "pod-spec-unread" and ev.severity == Severity.MEDIUM
    assert "not read to its end" in ev.summary and ev.summary.startswith("mallory created pod")


def test_hostile_budget_unread_keeps_a_stronger_signal(monkeypatch: pytest.MonkeyPatch) -> None:
    # The flag came before the cap: the stronger signal stays, and says the rest was unread.
    rec = pod_in_api_server_order(caps=[])
    junk = [f"C{i}" for i in range(6000)]
    container = rec["requestObject"]["spec"]["containers"][0]
    container["securityContext"] = {"privileged": True, "capabilities": {"add": junk}}
    monkeypatch.setattr(salvage, "MAX_STEPS", 5_000)
    ev = one_signal(line(rec))
    assert ev.kind == "privileged-pod" and ev.severity == Severity.HIGH
    assert "not read to its end" in ev.summary


def pretty_deep_then_privileged(levels: int) -> tuple[bytes, bytes]:
    """A pretty-printed audit record with one annotation nested `levels` arrays deep,
    and a pretty-printed privileged pod after it."""
    deep = audit(auditID="deep-1", annotations={"a": "DEEP"})
    text = json.dumps(deep, indent=1).replace('"DEEP"', "[" * levels + "]" * levels)
    pod = privileged_pod()
    return text.encode(), json.dumps(pod, indent=1).encode()


@pytest.mark.parametrize("levels", [2_000, 200_000])
def test_hostile_deep_nesting_pretty_printed_documents_keep_the_next_record(levels: int) -> None:
    deep, pod = pretty_deep_then_privileged(levels)
    ing = Ingestor()
    events = observed(ing.feed_document(deep + b"\n" + pod + b"\n", origin="doc"))
    assert [e.kind for e in events if e.signal] == ["privileged-pod"]
    assert len(events) == 2, ing.skip_log
    assert events[0].summary.endswith(TOO_DEEP_NOTE)
    assert ing.skipped == {"too-deep": 1}
    assert events[1].severity == Severity.CRITICAL


def test_hostile_deep_nesting_pretty_printed_documents_cut_short() -> None:
    deep, pod = pretty_deep_then_privileged(2_000)
    ing = Ingestor()
    events = ing.feed_document(deep + b"\n" + pod + b"\n" + pod[:40], origin="doc")
    assert [e.kind for e in events if e.signal] == ["privileged-pod"]
    # The record cut in half is one skip, said in words; nothing before it is lost.
    assert ing.skipped == {"too-deep": 1, "truncated-json": 1}, ing.skip_log
    assert any("cannot be cut into records" in d for _, _, d in ing.skip_log)


def test_split_documents_without_recursion() -> None:
    from ktriage.core.jsonsplit import split_documents

    deep = b'{"a":' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    data = b' {"x": 1}\n' + deep + b'\n[1, {"y": [2]}]  '
    spans, trouble = split_documents(data)
    assert trouble is None
    assert [data[a:b] for a, b in spans] == [b'{"x": 1}', deep, b'[1, {"y": [2]}]']
    spans, trouble = split_documents(b'{"x": 1} nonsense')
    assert len(spans) == 1 and trouble is not None and trouble.reason == "malformed-json"


def test_hostile_oversized_json_patch_privileged_after_thousands_of_ops() -> None:
    # A JSON patch over 1 MiB: thousands of harmless operations, then the one that
    # makes the workload privileged; the salvage path keeps it, and says what it left.
    ops: list[dict] = [
        {"op": "add", "path": f"/metadata/annotations/a{i}", "value": "x" * 200}
        for i in range(6000)
    ]
    ops.append(
        {
            "op": "add",
            "path": "/spec/template/spec/containers/0/securityContext",
            "value": {"privileged": True},
        }
    )
    rec = audit(
        verb="patch",
        objectRef={"resource": "deployments", "namespace": "shop", "name": "web"},
        requestObject=ops,
    )
    data = line(rec)
    assert len(data) > MAX_LINE
    ev = one_signal(data)
    assert ev.kind == "privileged-pod"
    assert ev.summary.startswith("mallory patched deployment shop/web with privileged container")
    assert "requestObject entries not kept" in ev.summary


@pytest.mark.parametrize("chunk", [1, 7, 4096, 1 << 20])
def test_hostile_budget_plain_elements_dropped_the_same_in_any_chunks(chunk: int) -> None:
    # Plain elements are dropped in one step only when whole in a chunk: any split
    # of the bytes keeps the same fields and says the same.
    rec = pod_in_api_server_order(caps=["X1", "SYS_PTRACE"], containers_before=300)
    rec["requestObject"]["spec"]["containers"][150:150] = [{"name": "ALL", "image": "i"}]
    data = line(rec)[: 600_000 if chunk == 1 else None]
    whole = salvage_bytes(data, chunk=len(data))
    split = salvage_bytes(data, chunk=chunk)
    assert split.result() == whole.result()
    assert split.lost == whole.lost
