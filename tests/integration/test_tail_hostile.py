"""A followed file fed hostile lines: a line nested thousands of levels deep, then a
privileged hostPID pod whose audit line is over 1 MiB, then an ordinary line. The
source stays healthy, the ordinary line's event arrives, and the oversized pod
raises its signal and shows in an incident timeline."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import orjson
from waiting import wait_for

from ktriage.core.ingest import MAX_LINE, OVERSIZED_NOTE, TOO_DEEP_NOTE
from ktriage.core.model import Severity, iso
from ktriage.engine import Engine
from ktriage.sources.tail import CHUNK, FileSource

BASE = 1_800_000_000.0


def audit(i: int, **over: object) -> dict:
    ts = iso(BASE + i)
    rec: dict = {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": "RequestResponse",
        "auditID": f"id-{i}",
        "stage": "ResponseComplete",
        "requestURI": "/api/v1/namespaces/shop/pods",
        "verb": "list",
        "user": {"username": "mallory"},
        "sourceIPs": ["203.0.113.50"],
        "objectRef": {"resource": "pods", "namespace": "shop", "apiVersion": "v1"},
        "responseStatus": {"code": 200},
        "requestReceivedTimestamp": ts,
        "stageTimestamp": ts,
    }
    rec.update(over)
    return rec


def deep_line(i: int, depth: int) -> bytes:
    rec = audit(
        i,
        verb="create",
        objectRef={"resource": "widgets", "namespace": "shop", "apiGroup": "x.example"},
        requestObject={"spec": "HOLE"},
    )
    return orjson.dumps(rec).replace(b'"HOLE"', b"[" * depth + b"]" * depth)


def oversized_pod_line(i: int) -> bytes:
    env = [{"name": f"PAD_{n}", "value": "v" * 1000} for n in range(1200)]
    rec = audit(
        i,
        verb="create",
        objectRef={"resource": "pods", "namespace": "shop", "name": "root-shell"},
        responseStatus={"code": 201},
        requestObject={
            "kind": "Pod",
            "metadata": {"name": "root-shell", "namespace": "shop"},
            "spec": {
                "hostPID": True,
                "containers": [{"name": "sh", "env": env, "securityContext": {"privileged": True}}],
            },
        },
    )
    return orjson.dumps(rec)


def append(path: Path, data: bytes) -> None:
    with open(path, "ab") as fh:
        fh.write(data)


async def test_hostile_lines_in_a_followed_file_keep_the_source_healthy(tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    path.write_bytes(orjson.dumps(audit(1)) + b"\n")
    engine = Engine()
    src = FileSource(path, "audit", start="beginning", poll_interval=0.01)
    engine.add_source(src)
    await engine.start()
    try:
        await wait_for(lambda: src.health.events_total == 1, what="the first event")
        append(path, deep_line(2, 20_000) + b"\n")
        big = oversized_pod_line(3)
        assert len(big) > MAX_LINE
        # Written in pieces, as a writer flushes: the follower streams past it.
        tracemalloc.start()
        try:
            for pos in range(0, len(big), CHUNK // 3):
                append(path, big[pos : pos + CHUNK // 3])
            append(path, b"\n" + orjson.dumps(audit(4)) + b"\n")
            await wait_for(
                lambda: src.health.events_total == 4,
                what=lambda: f"4 events, have {src.health.events_total}: {src.health}",
            )
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        # Never held the 1.2 MiB line whole beside the partial line it may keep.
        assert peak < MAX_LINE + 4 * CHUNK + (1 << 20), peak
        assert src.health.state == "connected"
        assert dict(src.health.skipped) == {"too-deep": 1, "too-long": 1}
        refs = [e.ref for e in engine.store]
        assert refs == [f"id-{i}:ResponseComplete" for i in (1, 2, 3, 4)]
        deep, pod, last = (engine.store.get(i) for i in (2, 3, 4))
        assert deep.summary.endswith(TOO_DEEP_NOTE)
        assert last.summary == "mallory list pods in shop"
        assert pod.signal and pod.kind == "privileged-pod"
        assert pod.severity == Severity.CRITICAL and pod.summary.endswith(OVERSIZED_NOTE)
        assert "hostPID" in pod.summary
        # The oversized record is in an incident's timeline, its raw record the
        # fields that were read.
        incidents = engine.correlator.sorted_incidents()
        timelines = [engine.correlator.events_of(inc.id) for inc in incidents]
        assert any(pod in events for events in timelines)
        raw = engine.raw_record(pod)
        assert raw["requestObject"]["spec"]["hostPID"] is True
        assert "env" not in raw["requestObject"]["spec"]["containers"][0]
    finally:
        await engine.stop()
        engine.archive.close()
