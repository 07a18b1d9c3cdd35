"""Webhook receivers under abuse, over real HTTP on loopback: deeply nested items,
decompression bombs, bad encodings, lying or slow senders, oversized bodies. Each
hostile request is refused with a clear status and reason, the good items around
it are kept, and a legitimate POST is answered promptly while the attack runs."""

from __future__ import annotations

import asyncio
import functools
import gzip
import time
import zlib
from collections.abc import AsyncIterator

import aiohttp
import orjson
import pytest
from test_webhooks import FALCO_ALERT, audit_event, event_list, post
from waiting import wait_for

from ktriage.engine import Engine
from ktriage.sources.http import (
    INFLATE_STEP,
    AuditWebhookSource,
    FalcoWebhookSource,
    WebhookSource,
    split_top_level,
)

TOKEN = "s3cret-token"


@pytest.fixture
async def engine() -> AsyncIterator[Engine]:
    eng = Engine()
    yield eng
    await eng.stop()
    eng.archive.close()


async def started(engine: Engine, source: WebhookSource) -> WebhookSource:
    engine.add_source(source)
    await engine.start()
    await asyncio.wait_for(source.started.wait(), 5)
    return source


def deep(levels: int) -> bytes:
    return b"[" * levels + b"]" * levels


def deep_audit_item(levels: int) -> bytes:
    item = orjson.dumps(audit_event(99))
    return item[:-1] + b', "requestObject": {"spec": ' + deep(levels) + b"}}"


@functools.cache
def gzip_bomb(unpacked: int) -> bytes:
    """`unpacked` bytes of zeros, gzipped: about a thousandth of that on the wire."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = b"\0" * (1 << 20)
    parts = [packer.compress(block) for _ in range(unpacked >> 20)]
    parts.append(packer.flush())
    return b"".join(parts)


async def post_with(
    url: str, body: bytes, headers: dict[str, str], *, token: str | None = TOKEN
) -> tuple[int, str]:
    headers = {"Content-Type": "application/json", **headers}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, data=body, headers=headers) as resp,
    ):
        return resp.status, await resp.text()


async def raw_request(port: int, head: bytes, body_parts: list[bytes] = (), gap: float = 0.0):  # type: ignore[no-untyped-def, assignment]
    """Speak HTTP by hand (for what a well-behaved client would not send); the status
    of the reply, or None when the server closed without one."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    reply = asyncio.create_task(asyncio.wait_for(reader.readline(), 10))
    try:
        writer.write(head)
        for part in body_parts:
            # Stop sending once answered, as a real client would.
            if reply.done():
                break
            await asyncio.sleep(gap)
            writer.write(part)
        try:
            line = await reply
        except ConnectionError:
            return None
        return int(line.split()[1]) if line else None
    finally:
        reply.cancel()
        writer.close()


def request_head(length: int | None, *, token: str | None = TOKEN, extra: str = "") -> bytes:
    lines = ["POST / HTTP/1.1", "Host: 127.0.0.1", "Content-Type: application/json"]
    if length is not None:
        lines.append(f"Content-Length: {length}")
    if token is not None:
        lines.append(f"Authorization: Bearer {token}")
    if extra:
        lines.append(extra)
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


# ---- items that break a decoder -------------------------------------------------


@pytest.mark.parametrize("levels", [1_000, 100_000])
async def test_hostile_deep_nesting_item_is_read_in_part_and_the_batch_kept(
    engine: Engine, levels: int
) -> None:
    src = await started(engine, AuditWebhookSource("127.0.0.1", 0))
    good = [orjson.dumps(audit_event(i)) for i in (1, 2)]
    body = (
        b'{"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":['
        + b",".join([good[0], deep_audit_item(levels), good[1]])
        + b"]}"
    )
    status, text = await post(src.url, body)
    assert status == 200, text
    # The deep item is read for its key fields, counted, and said in the reply.
    assert "kept 3 of 3 item(s) (1 read in part: too-deep 1)" in text, text
    assert "skipped" not in text
    assert [e.ref for e in engine.store] == [
        "aid-1:ResponseComplete",
        "aid-99:ResponseComplete",
        "aid-2:ResponseComplete",
    ]
    assert src.health.skipped["too-deep"] == 1
    # The receiver goes on as before.
    status, text = await post(src.url, event_list([audit_event(3)]))
    assert status == 200 and "kept 1 of 1" in text and len(engine.store) == 4


async def test_hostile_oversized_privileged_pod_item_raises_its_signal(engine: Engine) -> None:
    src = await started(engine, AuditWebhookSource("127.0.0.1", 0))
    pod = audit_event(7)
    pod.update(
        requestURI="/api/v1/namespaces/kube-system/pods",
        verb="create",
        objectRef={"resource": "pods", "namespace": "kube-system", "name": "big"},
        responseStatus={"code": 201},
        requestObject={
            "kind": "Pod",
            "spec": {
                "hostPID": True,
                "containers": [
                    {
                        "name": "c",
                        "image": "alpine",
                        "env": [{"name": f"PAD{i}", "value": "x" * 60} for i in range(14_000)],
                        "securityContext": {"privileged": True},
                    }
                ],
            },
        },
    )
    item = orjson.dumps(pod)
    assert len(item) > 1 << 20
    status, text = await post(src.url, event_list([audit_event(1)])[:-2] + b"," + item + b"]}")
    assert status == 200, text
    assert "kept 2 of 2 item(s) (1 read in part: too-long 1)" in text, text
    (signal,) = [e for e in engine.store if e.kind == "privileged-pod"]
    assert signal.severity.name == "CRITICAL"
    assert "over 1 MiB" in signal.summary


async def test_hostile_deep_nesting_in_falco_alerts(engine: Engine) -> None:
    src = await started(engine, FalcoWebhookSource("127.0.0.1", 0))
    alert = orjson.dumps(FALCO_ALERT)
    nested = alert[:-1] + b', "extra": ' + deep(5_000) + b"}"
    status, text = await post(src.url, b"[" + alert + b"," + nested + b"]")
    # The deep alert is read for its key fields (same uuid: the same alert, kept once).
    assert status == 200 and "kept 2 of 2 item(s) (1 read in part: too-deep 1)" in text, text
    # One such alert alone is read in part too: 200, never a 500.
    status, text = await post(src.url, nested)
    assert status == 200, text
    assert src.health.skipped["too-deep"] == 2
    # An array of one such alert: a batch whose one item is skipped.
    status, text = await post(src.url, deep(5_000))
    assert status == 200 and "kept 0 of 1" in text, text
    assert len(engine.store) == 1
    assert src.requests[500] == 0


async def test_hostile_deep_nesting_outside_the_items(engine: Engine) -> None:
    src = await started(engine, AuditWebhookSource("127.0.0.1", 0))
    body = (
        b'{"kind":"EventList","metadata":{"x":'
        + deep(3_000)
        + b'},"items":['
        + orjson.dumps(audit_event(1))
        + b"]}"
    )
    status, text = await post(src.url, body)
    assert status == 200 and "kept 1 of 1" in text, text
    # Deep and cut short: the brackets never close.
    status, text = await post(src.url, b'{"kind":"EventList","items":[' + b"[" * 3_000)
    assert status == 400 and text.startswith("truncated-json"), text
    assert len(engine.store) == 1


def test_split_top_level_without_recursion() -> None:
    body = (
        b'{"kind": "EventList", "metadata": {"kind": "no"}, "items": [ {"a": [1, 2]} ,'
        b' "x,]\\"}{" , ' + deep(50_000) + b", 7, null]}"
    )
    kind, items, trouble = split_top_level(body)
    assert kind == "EventList" and trouble is None
    assert items == [b'{"a": [1, 2]}', b'"x,]\\"}{"', deep(50_000), b"7", b"null"]
    assert split_top_level(b'[{"a": 1}, []]')[:2] == (None, [b'{"a": 1}', b"[]"])
    kind, items, trouble = split_top_level(b'{"kind": "EventList", "items": [1, [[[')
    assert kind == "EventList" and items == [b"1"]
    assert trouble is not None and trouble.reason == "truncated-json"


async def test_hostile_deep_nesting_costly_to_split_is_bounded(engine: Engine) -> None:
    """Good items, then a deep item built to be slow to scan (a string at every level):
    the good ones are kept, the rest is one skip, the work is bounded, and the receiver
    answers others meanwhile."""
    src = await started(engine, AuditWebhookSource("127.0.0.1", 0))
    good = b",".join(orjson.dumps(audit_event(i)) for i in range(1, 2001))
    body = (
        b'{"kind":"EventList","items":['
        + good
        + b","
        + b'["",' * (3 << 20)
        + b"]" * (3 << 20)
        + b"]}"
    )
    t0 = time.monotonic()
    attack = asyncio.create_task(post(src.url, body))
    await wait_for(lambda: src._batch == 1, what="the batch to be taken")
    status, text = await post(src.url, event_list([audit_event(5000)]))
    latency = time.monotonic() - t0
    status_attack, text_attack = await attack
    assert status == 200 and latency < 5, (latency, text)
    assert status_attack == 200, text_attack
    assert "kept 2000 of 2001" in text_attack and "too-deep 1" in text_attack
    assert time.monotonic() - t0 < 10
    assert len(engine.store) == 2001


# ---- decompression -----------------------------------------------------------------


@pytest.mark.parametrize("cls", [AuditWebhookSource, FalcoWebhookSource])
async def test_hostile_gzip_bodies(engine: Engine, cls: type[WebhookSource]) -> None:
    src = await started(engine, cls("127.0.0.1", 0, token=TOKEN))
    good = (
        event_list([audit_event(1), audit_event(2)])
        if cls is AuditWebhookSource
        else orjson.dumps(FALCO_ALERT)
    )
    # A genuine gzip (and deflate) body is inflated and used.
    status, text = await post_with(src.url, gzip.compress(good), {"Content-Encoding": "gzip"})
    assert status == 200, text
    n = len(engine.store)
    assert n >= 1
    # A gzip header on a body that is not gzip: 400, said in words.
    status, text = await post_with(src.url, good, {"Content-Encoding": "gzip"})
    assert status == 400 and text.startswith("bad-encoding") and "does not inflate" in text
    # gzip cut short.
    status, text = await post_with(src.url, gzip.compress(good)[:-20], {"Content-Encoding": "gzip"})
    assert status == 400 and "cut short" in text, text
    # An encoding we do not speak.
    status, text = await post_with(src.url, good, {"Content-Encoding": "compress"})
    assert status == 415 and "not supported" in text, text
    assert src.health.skipped["bad-encoding"] >= 2
    # A bomb past the cap: 413, having inflated no more than the cap.
    src.max_body = 1 << 20
    bomb = gzip_bomb(1 << 30)
    t0 = time.monotonic()
    status, text = await post_with(src.url, bomb, {"Content-Encoding": "gzip"})
    assert status == 413 and "inflates to over" in text, text
    assert time.monotonic() - t0 < 5
    assert len(engine.store) == n
    assert src.requests[500] == 0


async def test_hostile_gzip_bomb_flood_leaves_a_legitimate_post_prompt(engine: Engine) -> None:
    """16 unauthenticated 1 GB gzip bombs, looping, and a stream of unauthenticated junk:
    a legitimate POST is still answered in well under a second, every time."""
    src = await started(engine, AuditWebhookSource("127.0.0.1", 0, token=TOKEN))
    bomb = gzip_bomb(1 << 30)
    junk = b"\xff" * 65536
    stop = asyncio.Event()
    refused: list[int] = []

    async def attacker(body: bytes, headers: dict[str, str], rounds: int) -> None:
        async with aiohttp.ClientSession() as session:
            for _ in range(rounds):  # bounded: the test ends by itself
                if stop.is_set():
                    return
                try:
                    async with session.post(src.url, data=body, headers=headers) as resp:
                        refused.append(resp.status)
                except aiohttp.ClientError:
                    refused.append(-1)  # cut off while sending: refused all the same

    attack = [
        asyncio.create_task(attacker(bomb, {"Content-Encoding": "gzip"}, 40)) for _ in range(16)
    ]
    attack.append(asyncio.create_task(attacker(junk, {}, 400)))
    try:
        async with asyncio.timeout(10):
            while len(refused) < 32:  # the attack is under way
                await asyncio.sleep(0.01)
        latencies = []
        async with aiohttp.ClientSession() as session:
            for i in range(10):
                t0 = time.monotonic()
                async with session.post(
                    src.url,
                    data=event_list([audit_event(i)]),
                    headers={"Authorization": f"Bearer {TOKEN}"},
                ) as resp:
                    assert resp.status == 200, await resp.text()
                latencies.append(time.monotonic() - t0)
        assert not all(t.done() for t in attack), "the attack ended before the measurement"
    finally:
        stop.set()
        await asyncio.gather(*attack)
    print(f"legitimate POST latency under attack: max {max(latencies) * 1000:.0f} ms")
    assert max(latencies) < 1.0, latencies
    assert len(engine.store) == 10
    assert set(refused) <= {401, -1} and refused.count(401) > 0
    assert src.requests[500] == 0 and src.requests[401] >= 16


# ---- sizes and senders that lie or stall ---------------------------------------------


async def test_hostile_content_length_over_the_cap_is_413_before_reading(
    engine: Engine,
) -> None:
    src = await started(engine, FalcoWebhookSource("127.0.0.1", 0, token=TOKEN))
    t0 = time.monotonic()
    # Declares a terabyte and sends nothing: answered at once, not after reading.
    status = await raw_request(src.port, request_head(1 << 40))
    assert status == 413 and time.monotonic() - t0 < 2
    assert src.health.skipped["too-long"] == 1


async def test_hostile_chunked_body_over_the_cap_is_413(engine: Engine) -> None:
    src = FalcoWebhookSource("127.0.0.1", 0, token=TOKEN)
    src.max_body = 64 * 1024
    await started(engine, src)
    sent = 0

    async def endless() -> AsyncIterator[bytes]:
        nonlocal sent
        for _ in range(1000):  # 64 MiB at most; the server stops it long before
            sent += 65536
            yield b" " * 65536

    try:
        status, text = await post_with(src.url, endless(), {})  # type: ignore[arg-type]
    except aiohttp.ClientError:
        status, text = 413, "cut off by the server"
    assert status == 413, text
    assert sent < 64 << 20
    assert src.health.skipped["too-long"] == 1


@pytest.mark.parametrize("cls", [AuditWebhookSource, FalcoWebhookSource])
async def test_hostile_content_length_lie_times_out(
    engine: Engine, cls: type[WebhookSource]
) -> None:
    src = await started(engine, cls("127.0.0.1", 0, token=TOKEN, read_timeout=0.5))
    t0 = time.monotonic()
    # Promises 1000 bytes, sends 10 and waits.
    status = await raw_request(src.port, request_head(1000) + b'{"kind": "')
    assert status == 408 and time.monotonic() - t0 < 5
    assert src.health.skipped["read-timeout"] == 1
    assert "did not arrive" in src.health.last_error
    # The receiver is not held up: a good POST goes through.
    body = event_list([audit_event(1)]) if cls is AuditWebhookSource else orjson.dumps(FALCO_ALERT)
    assert (await post(src.url, body, token=TOKEN))[0] == 200


async def test_hostile_content_length_shorter_than_the_body(engine: Engine) -> None:
    """Declares less than it sends: the declared bytes are the body; what follows is
    not a request, refused by the HTTP parser, never a 500."""
    src = await started(engine, AuditWebhookSource("127.0.0.1", 0, token=TOKEN))
    body = event_list([audit_event(1)])
    status = await raw_request(src.port, request_head(10) + body)
    assert status == 400
    assert len(engine.store) == 0 and src.requests[500] == 0
    assert (await post(src.url, body, token=TOKEN))[0] == 200


async def test_hostile_sender_gone_mid_body(engine: Engine) -> None:
    src = await started(engine, AuditWebhookSource("127.0.0.1", 0, token=TOKEN))
    _, writer = await asyncio.open_connection("127.0.0.1", src.port)
    writer.write(request_head(100_000) + b'{"kind": "EventList", "items": [')
    await writer.drain()
    await wait_for(lambda: src._batch == 1, what="the request to be taken")
    writer.close()
    await wait_for(lambda: src.health.skipped["unreadable"] == 1, what="the cut body counted")
    assert "cannot be read" in src.health.last_error
    assert src.requests[500] == 0 and len(engine.store) == 0
    assert (await post(src.url, event_list([audit_event(1)]), token=TOKEN))[0] == 200


async def test_hostile_slow_body_times_out(engine: Engine) -> None:
    src = await started(engine, AuditWebhookSource("127.0.0.1", 0, token=TOKEN, read_timeout=0.5))
    body = event_list([audit_event(1)])
    # A byte every 50 ms: the whole body would take far longer than the read timeout.
    parts = [body[i : i + 1] for i in range(60)]
    t0 = time.monotonic()
    status = await raw_request(src.port, request_head(len(body)), parts, gap=0.05)
    assert status == 408 and time.monotonic() - t0 < 5
    assert len(engine.store) == 0


async def test_hostile_unauthenticated_body_is_not_read(engine: Engine) -> None:
    src = await started(engine, AuditWebhookSource("127.0.0.1", 0, token=TOKEN))
    # A declared 1 TB body without a token: refused on the headers alone.
    t0 = time.monotonic()
    status = await raw_request(src.port, request_head(1 << 40, token=None))
    assert status == 401 and time.monotonic() - t0 < 2
    assert sum(src.health.skipped.values()) == 0  # refused, not read and skipped


async def test_hostile_concurrent_bombs_under_the_cap_share_a_memory_budget(
    engine: Engine,
) -> None:
    """Authenticated senders each inflating a body just under the cap, all at once:
    together they never hold more than the in-flight budget; the rest are told to
    retry (503), and once the flood is over a POST goes through."""
    src = AuditWebhookSource("127.0.0.1", 0, token=TOKEN)
    src.max_body = 4 << 20
    src.max_inflight = 8 << 20
    await started(engine, src)
    bomb = gzip_bomb(4 << 20)[:-8]  # 4 MiB of zeros, cut before gzip's end: no 200
    statuses = await asyncio.gather(
        *[post_with(src.url, bomb, {"Content-Encoding": "gzip"}) for _ in range(12)]
    )
    codes = sorted(status for status, _ in statuses)
    assert set(codes) <= {400, 503}, codes
    assert 503 in codes
    # Refused as it crossed the line: over by one inflated step at most.
    assert src.peak_inflight <= (8 << 20) + INFLATE_STEP
    assert src.inflight == 0  # every claim released
    assert src.health.skipped["busy"] == 0  # asked to retry, not lost
    status, text = await post_with(
        src.url, gzip.compress(event_list([audit_event(1)])), {"Content-Encoding": "gzip"}
    )
    assert status == 200, text


# ---- requests of any shape: never a 500 -------------------------------------------


def _head(*lines: bytes) -> bytes:
    return b"\r\n".join([b"POST / HTTP/1.1", b"Host: 127.0.0.1", *lines]) + b"\r\n\r\n"


MALFORMED_REQUESTS: dict[str, bytes] = {
    "non-utf8 bearer token": _head(b"Authorization: Bearer \xff\xfe", b"Content-Length: 2") + b"{}",
    "bearer alone": _head(b"Authorization: Bearer", b"Content-Length: 2") + b"{}",
    "bearer and spaces": _head(b"Authorization: Bearer    ", b"Content-Length: 2") + b"{}",
    "no auth scheme": _head(f"Authorization: {TOKEN}".encode(), b"Content-Length: 2") + b"{}",
    "basic scheme": _head(b"Authorization: Basic Zm9vOmJhcg==", b"Content-Length: 2") + b"{}",
    "control bytes in token": _head(b"Authorization: Bearer \x01\x7f\x1b[2J", b"Content-Length: 0"),
    "bad header bytes": _head(b"X-Thing: \xc3\x28\xa0\xa1", b"Content-Length: 2") + b"{}",
    "huge header": _head(b"X-Big: " + b"a" * 200_000, b"Content-Length: 2") + b"{}",
    "many headers": _head(*[b"X-%d: y" % i for i in range(5_000)], b"Content-Length: 0"),
    "bad method": b"FROB / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
    "method with bytes": b"P\xffST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
    "bad content-length": _head(b"Content-Length: -5"),
    "two content-lengths": _head(b"Content-Length: 2", b"Content-Length: 3") + b"{}",
    "bad path bytes": b"POST /\xff\xfe%zz HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
    "not http": b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\0" * 64 + b"\r\n\r\n",
}


@pytest.mark.parametrize("name", sorted(MALFORMED_REQUESTS))
async def test_hostile_malformed_requests_never_get_500(
    engine: Engine, name: str, caplog: pytest.LogCaptureFixture
) -> None:
    src = await started(engine, AuditWebhookSource("127.0.0.1", 0, token=TOKEN))
    status = await raw_request(src.port, MALFORMED_REQUESTS[name] + b"\r\n")
    assert status != 500, name
    assert src.requests[500] == 0
    # The receiver still works afterwards.
    status, text = await post_with(src.url, event_list([audit_event(1)]), {})
    assert status == 200, text
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"


async def test_hostile_non_utf8_bearer_token_is_401(engine: Engine) -> None:
    src = await started(engine, AuditWebhookSource("127.0.0.1", 0, token=TOKEN))
    status = await raw_request(src.port, MALFORMED_REQUESTS["non-utf8 bearer token"])
    assert status == 401
    assert src.requests[401] == 1


@pytest.mark.parametrize(
    "encoding,tail,want",
    [("gzip", b"JUNK", 400), ("gzip", b"\x1f\x8b\x08\x00junk", 400), ("br", b"", 415)],
)
async def test_hostile_gzip_with_a_bad_tail_is_refused_without_traceback(
    engine: Engine, caplog: pytest.LogCaptureFixture, encoding: str, tail: bytes, want: int
) -> None:
    src = await started(engine, AuditWebhookSource("127.0.0.1", 0, token=TOKEN))
    good = event_list([audit_event(1)])
    body = (gzip.compress(good) if encoding == "gzip" else b"xx") + tail
    status, text = await post_with(src.url, body, {"Content-Encoding": encoding})
    assert status == want, text
    assert text.split(":")[0] in ("bad-encoding",), text
    assert src.requests[500] == 0
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"
