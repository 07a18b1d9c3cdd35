"""Webhook receivers at their edges, over real HTTP on loopback: a lone audit Event
(some proxies unbatch), one nested past any decoder's depth, a wrong kind that deep,
Falco bodies that are JSON but not an alert, the health probe, bad listen addresses."""

from __future__ import annotations

import aiohttp
import orjson
import pytest
from test_webhooks import FALCO_ALERT, audit_event, engine, post, started  # noqa: F401

from ktriage.engine import Engine
from ktriage.sources.http import AuditWebhookSource, FalcoWebhookSource, parse_listen

DEPTH = 100_000  # far past msgspec's and the stdlib's recursion limits


def _nested(depth: int) -> dict:
    """A JSON-ready value nested `depth` levels deep, built without recursion."""
    value: object = "bottom"
    for _ in range(depth):
        value = {"a": value}
    return value  # type: ignore[return-value]


def _deep_body(kind: str) -> bytes:
    # orjson refuses to write deeper than 255 levels: splice the nesting in as text.
    shallow = orjson.dumps(audit_event(7, kind=kind, requestObject="HOLE"))
    return shallow.replace(b'"HOLE"', b'{"a":' * DEPTH + b'"x"' + b"}" * DEPTH)


async def test_a_lone_audit_event_is_taken_as_a_batch_of_one(engine: Engine) -> None:  # noqa: F811
    src = await started(engine, AuditWebhookSource("127.0.0.1", 0))
    status, text = await post(src.url + "audit", orjson.dumps(audit_event(1)))
    assert status == 200 and "1 event(s)" in text
    assert [e.ref for e in engine.store] == ["aid-1:ResponseComplete"]


async def test_hostile_deep_nesting_lone_audit_event_is_still_received(
    engine: Engine,  # noqa: F811
) -> None:
    src = await started(engine, AuditWebhookSource("127.0.0.1", 0))
    status, _ = await post(src.url, _deep_body("Event"))
    # Answered, never a 500: the event is kept, the part too deep to read counted.
    assert status == 200
    assert [e.ref for e in engine.store] == ["aid-7:ResponseComplete"]
    assert src.health.skipped == {"too-deep": 1}
    status, _ = await post(src.url, orjson.dumps(audit_event(2)))
    assert status == 200 and "aid-2:ResponseComplete" in [e.ref for e in engine.store]


async def test_hostile_deep_nesting_of_an_unknown_kind_is_refused_in_words(
    engine: Engine,  # noqa: F811
) -> None:
    src = await started(engine, AuditWebhookSource("127.0.0.1", 0))
    status, text = await post(src.url, _deep_body("PodList"))
    assert status == 400
    assert text.startswith("unknown-format") and "'PodList'" in text
    assert src.health.skipped["unknown-format"] == 1 and len(engine.store) == 0


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b'"a string"', "not-an-object"),
        (b"42", "not-an-object"),
        (b"[1, 2", "truncated-json"),
    ],
)
async def test_falco_bodies_that_are_not_alerts_get_400(
    engine: Engine,  # noqa: F811
    body: bytes,
    reason: str,
) -> None:
    src = await started(engine, FalcoWebhookSource("127.0.0.1", 0))
    status, text = await post(src.url, body)
    assert status == 400 and text.startswith(reason), text
    assert src.health.skipped[reason] == 1
    # The next alert is received as if nothing happened.
    status, _ = await post(src.url, orjson.dumps(FALCO_ALERT))
    assert status == 200 and len(engine.store) == 1


async def test_the_health_probe_answers_without_a_token(engine: Engine) -> None:  # noqa: F811
    src = await started(engine, AuditWebhookSource("127.0.0.1", 0, token="s3cret-token"))
    async with aiohttp.ClientSession() as session, session.get(src.url + "healthz") as resp:
        assert resp.status == 200 and await resp.text() == "ok\n"
    assert len(engine.store) == 0


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("[::1]7000", "not HOST:PORT"),
        ("[::1", "not HOST:PORT"),
        ("127.0.0.1:70000", "port out of range"),
        ("127.0.0.1:-1", "port out of range"),
    ],
)
def test_bad_listen_addresses_are_refused_in_words(text: str, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        parse_listen(text)
