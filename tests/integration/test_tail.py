"""The file follower and file source against real files: rotation, truncation,
partial lines, missing files, garbage and oversized lines, --since, backpressure."""

from __future__ import annotations

import asyncio
import os
import time
import tracemalloc
from pathlib import Path

import orjson
import pytest
from waiting import wait_for

from ktriage.core.ingest import MAX_LINE
from ktriage.core.model import iso
from ktriage.core.salvage import MAX_KEPT_BYTES
from ktriage.engine import Engine
from ktriage.sources.tail import CHUNK, FileFollower, FileSource, offset_for_time

BASE = 1_800_000_000.0


def audit_line(i: int, t: float | None = None) -> bytes:
    ts = iso(BASE + i if t is None else t)
    return orjson.dumps(
        {
            "kind": "Event",
            "apiVersion": "audit.k8s.io/v1",
            "level": "Metadata",
            "auditID": f"id-{i}",
            "stage": "ResponseComplete",
            "requestURI": "/api/v1/namespaces/default/pods",
            "verb": "list",
            "user": {"username": "alice"},
            "sourceIPs": ["10.0.0.1"],
            "objectRef": {"resource": "pods", "namespace": "default", "apiVersion": "v1"},
            "responseStatus": {"code": 200},
            "requestReceivedTimestamp": ts,
            "stageTimestamp": ts,
        }
    )


def append(path: Path, data: bytes) -> None:
    with open(path, "ab") as fh:
        fh.write(data)


class Collector:
    """Runs a follower in a task and collects its lines."""

    def __init__(self, follower: FileFollower) -> None:
        self.follower = follower
        self.lines: list[bytes] = []
        self.idle = 0
        self.statuses: list[tuple[str, str]] = []
        self.task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        async for batch in self.follower.batches():
            if not batch:
                self.idle += 1
            self.lines.extend(line for _, line in batch)

    def start(self) -> Collector:
        self.task = asyncio.create_task(self._run())
        return self

    async def idle_once_more(self) -> None:
        """Wait until the follower has reached the end of the file again."""
        seen = self.idle
        await wait_for(lambda: self.idle > seen + 1, what="the follower to go idle")

    async def stop(self) -> None:
        self.follower.stop()
        assert self.task is not None
        await asyncio.wait_for(self.task, 2.0)


def follower(path: Path, **kw) -> FileFollower:  # type: ignore[no-untyped-def]
    kw.setdefault("poll_interval", 0.01)
    return FileFollower(path, **kw)


async def test_start_at_end_then_follow(tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    path.write_bytes(b"old-1\nold-2\npartial-old")
    col = Collector(follower(path)).start()
    await col.idle_once_more()
    append(path, b"-rest\nnew-1\n")
    await wait_for(lambda: col.lines == [b"new-1"], what="new-1")
    await col.stop()


async def test_partial_line_is_read_once_when_completed(tmp_path: Path) -> None:
    path = tmp_path / "f.log"
    path.write_bytes(b"")
    col = Collector(follower(path, start="beginning")).start()
    append(path, b'{"a": 1}\n{"b":')
    await wait_for(lambda: col.lines == [b'{"a": 1}'])
    await col.idle_once_more()
    assert col.lines == [b'{"a": 1}']  # the half line is held
    append(path, b" 2}\n")
    await wait_for(lambda: len(col.lines) == 2)
    await col.idle_once_more()
    assert col.lines == [b'{"a": 1}', b'{"b": 2}']
    await col.stop()


async def test_rotation_by_rename_and_recreate(tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    path.write_bytes(b"")
    f = follower(path, start="beginning")
    col = Collector(f).start()
    writer = open(path, "ab", buffering=0)  # kept open across the rename
    writer.write(b"a1\na2\n")
    await wait_for(lambda: col.lines == [b"a1", b"a2"])
    # lumberjack: rename the live file, keep writing what was in flight, then re-create.
    os.rename(path, tmp_path / "audit-1.log")
    writer.write(b"a3\na4-no-newline")
    writer.close()
    # Until the new file exists, the old one is still followed.
    await wait_for(lambda: col.lines == [b"a1", b"a2", b"a3"])
    await col.idle_once_more()
    assert col.lines == [b"a1", b"a2", b"a3"]  # the partial line is held
    path.write_bytes(b"b1\nb2\n")
    await wait_for(lambda: len(col.lines) == 6, what="lines after rotation")
    assert col.lines == [b"a1", b"a2", b"a3", b"a4-no-newline", b"b1", b"b2"]
    assert f.rotations == 1
    # And a second rotation, the logrotate way (rename, create, write).
    os.rename(path, tmp_path / "audit-2.log")
    path.write_bytes(b"c1\n")
    await wait_for(lambda: col.lines[-1:] == [b"c1"])
    assert f.rotations == 2 and len(col.lines) == 7
    await col.stop()


async def test_copy_truncate(tmp_path: Path) -> None:
    path = tmp_path / "falco.jsonl"
    path.write_bytes(b"x1\nx2\n")
    f = follower(path, start="beginning")
    col = Collector(f).start()
    await wait_for(lambda: col.lines == [b"x1", b"x2"])
    with open(path, "r+b") as fh:
        fh.truncate(0)
    await wait_for(lambda: f.truncations == 1, what="truncation noticed")
    append(path, b"y1\n")
    await wait_for(lambda: col.lines == [b"x1", b"x2", b"y1"])
    await col.stop()


async def test_missing_file_is_waited_for(tmp_path: Path) -> None:
    path = tmp_path / "later.log"
    statuses: list[tuple[str, str]] = []
    f = follower(path, on_status=lambda s, m: statuses.append((s, m)))
    col = Collector(f).start()
    await wait_for(lambda: bool(statuses))
    assert statuses[0][0] == "starting" and "waiting for file" in statuses[0][1]
    # Created later: read from its start, even though we start "at the end".
    path.write_bytes(b"first\n")
    await wait_for(lambda: col.lines == [b"first"])
    assert statuses[-1] == ("connected", "")
    await col.stop()


async def test_backpressure_reads_one_chunk_ahead_at_most(tmp_path: Path) -> None:
    path = tmp_path / "big.log"
    path.write_bytes((b"x" * 99 + b"\n") * 100_000)  # 10 MB
    f = follower(path, start="beginning")
    agen = f.batches()
    first = await agen.__anext__()
    # The consumer has not asked for more: nothing beyond the first chunk was read.
    assert f.bytes_read == CHUNK and len(first) == CHUNK // 100
    await agen.__anext__()
    assert f.bytes_read == 2 * CHUNK
    await agen.aclose()


async def test_five_mib_line_is_streamed_past(tmp_path: Path) -> None:
    path = tmp_path / "huge.log"
    with open(path, "wb") as fh:
        fh.write(b"before\n")
        fh.write(b"{" + b"x" * (5 << 20) + b"}\n")
        fh.write(b"after\n")
    too_long: list[tuple[int, int]] = []
    f = follower(path, start="beginning", on_too_long=lambda o, n: too_long.append((o, n)))
    col = Collector(f).start()
    tracemalloc.start()
    try:
        await wait_for(lambda: col.lines == [b"before", b"after"], timeout=10)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert too_long == [(7, (5 << 20) + 2)]
    # Never holds the line: at most one partial line of MAX_LINE plus a chunk or two, and
    # what the field scanner may keep of an oversized record.
    assert peak < MAX_LINE + 4 * CHUNK + (1 << 20) + MAX_KEPT_BYTES, peak
    await col.stop()


async def test_file_source_counts_garbage_and_keeps_the_rest(tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    garbage = [
        b"not json at all",
        b'{"kind": "Event", "auditID": "cut',
        b"\x00\x01\x02\xff binary",
        b'{"hello": "world"}',
        b"[1, 2, 3]",
    ]
    body = b"\n".join([audit_line(1), *garbage, audit_line(2)]) + b"\n"
    body += b"{" + b"y" * (2 << 20) + b"}\n" + audit_line(3) + b"\n"
    path.write_bytes(body)
    engine = Engine()
    src = FileSource(path, "audit", start="beginning", poll_interval=0.01)
    engine.add_source(src)
    await engine.start()
    try:
        await wait_for(lambda: src.health.events_total == 3, what="3 events")
        assert [e.ref for e in engine.store] == [
            "id-1:ResponseComplete",
            "id-2:ResponseComplete",
            "id-3:ResponseComplete",
        ]
        assert src.health.state == "connected"
        assert dict(src.health.skipped) == {
            "malformed-json": 1,
            "truncated-json": 1,
            "binary": 1,
            "unknown-format": 1,
            "not-an-object": 1,
            "too-long": 1,
        }
        # Raw records are kept (spooled) and read back.
        ev = engine.store.get(2)
        assert engine.raw_record(ev)["auditID"] == "id-2"
        assert src.health.newest_event_time == BASE + 3
    finally:
        await engine.stop()
        engine.archive.close()


def test_offset_for_time(tmp_path: Path) -> None:
    path = tmp_path / "timed.log"
    lines = [audit_line(i, BASE + i) for i in range(20_000)]
    path.write_bytes(b"\n".join(lines) + b"\n")
    offset = offset_for_time(path, BASE + 15_000, slack=60)
    with open(path, "rb") as fh:
        fh.seek(offset)
        first = orjson.loads(fh.readline())
    n = int(first["auditID"].split("-")[1])
    # Starts before the cutoff minus the slack, but not far before.
    assert 15_000 - 60 - 30 <= n <= 15_000 - 60
    assert offset_for_time(path, BASE - 10) == 0


async def test_file_source_since(tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    path.write_bytes(b"\n".join(audit_line(i) for i in range(5_000)) + b"\n")
    engine = Engine()
    src = FileSource(path, "audit", since=BASE + 4_990, poll_interval=0.01)
    engine.add_source(src)
    await engine.start()
    try:
        await wait_for(lambda: src.health.events_total == 10)
        assert sorted(e.ref for e in engine.store) == sorted(
            f"id-{i}:ResponseComplete" for i in range(4_990, 5_000)
        )
        # The search skipped most of the file; the rest was read and dropped.
        assert 0 < src.before_since < 200
        append(path, audit_line(6_000) + b"\n")
        await wait_for(lambda: src.health.events_total == 11)
    finally:
        await engine.stop()
        engine.archive.close()


@pytest.mark.parametrize("start", ["end", "beginning"])
async def test_stop_is_prompt(tmp_path: Path, start: str) -> None:
    path = tmp_path / "idle.log"
    path.write_bytes(b"")
    engine = Engine()
    src = FileSource(path, "falco", start=start, poll_interval=0.2)
    engine.add_source(src)
    await engine.start()
    await wait_for(lambda: src.health.state == "connected")
    t0 = time.monotonic()
    await engine.stop(timeout=1.0)
    assert time.monotonic() - t0 < 1.0
    engine.archive.close()
