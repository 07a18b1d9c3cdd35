"""Webhook receivers over real HTTP on loopback: audit EventList batches, Falco
http_output / Falcosidekick alerts, malformed bodies, bearer tokens and TLS."""

from __future__ import annotations

import asyncio
import shutil
import ssl
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import orjson
import pytest
from real_fixtures import require_real_fixtures

from ktriage.core.model import iso
from ktriage.engine import Engine
from ktriage.sources.http import (
    AuditWebhookSource,
    FalcoWebhookSource,
    ListenError,
    parse_listen,
    tls_context,
)

REAL = Path(__file__).resolve().parents[2] / ".." / "shared" / "fixtures" / "real"
BASE = 1_800_000_000.0


def audit_event(i: int, **extra: object) -> dict:
    ts = iso(BASE + i)
    return {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": "Metadata",
        "auditID": f"aid-{i}",
        "stage": "ResponseComplete",
        "requestURI": "/api/v1/namespaces/shop/pods/web-1/exec?command=sh",
        "verb": "create",
        "user": {"username": "mallory"},
        "sourceIPs": ["203.0.113.7"],
        "objectRef": {
            "resource": "pods",
            "subresource": "exec",
            "namespace": "shop",
            "name": "web-1",
            "apiVersion": "v1",
        },
        "responseStatus": {"code": 101},
        "requestReceivedTimestamp": ts,
        "stageTimestamp": ts,
        **extra,
    }


def event_list(items: list[dict]) -> bytes:
    return orjson.dumps(
        {"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "metadata": {}, "items": items}
    )


FALCO_ALERT = {
    "uuid": "2a7c1c1e-0000-4000-8000-000000000001",
    "output": "Notice A shell was spawned in a container (user=root shell=sh)",
    "priority": "Notice",
    "rule": "Terminal shell in container",
    "time": "2027-01-15T10:00:00.123456789Z",
    "source": "syscall",
    "hostname": "node-1",
    "tags": ["container", "shell", "mitre_execution", "T1059"],
    "output_fields": {
        "k8s.ns.name": "shop",
        "k8s.pod.name": "web-1",
        "container.id": "abcdef012345",
        "proc.cmdline": "sh",
    },
}


@pytest.fixture
async def engine() -> AsyncIterator[Engine]:
    eng = Engine()
    yield eng
    await eng.stop()
    eng.archive.close()


async def started(engine: Engine, source: AuditWebhookSource | FalcoWebhookSource):  # type: ignore[no-untyped-def]
    engine.add_source(source)
    await engine.start()
    await asyncio.wait_for(source.started.wait(), 5)
    return source


async def post(
    url: str, body: bytes, *, token: str | None = None, ssl_ctx: ssl.SSLContext | None = None
) -> tuple[int, str]:
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, data=body, headers=headers, ssl=ssl_ctx) as resp,
    ):
        return resp.status, await resp.text()


def test_parse_listen() -> None:
    assert parse_listen("0.0.0.0:8443") == ("0.0.0.0", 8443)
    assert parse_listen(":9000") == ("127.0.0.1", 9000)
    assert parse_listen("9000") == ("127.0.0.1", 9000)
    assert parse_listen("[::1]:7000") == ("::1", 7000)
    with pytest.raises(ValueError, match="port must be a number"):
        parse_listen("localhost:http")


async def test_audit_batches_are_stored_before_200(engine: Engine) -> None:
    src = await started(engine, AuditWebhookSource("127.0.0.1", 0))
    status, text = await post(src.url + "audit", event_list([audit_event(1), audit_event(2)]))
    # The reply comes only once the events are in the store.
    assert status == 200 and "2 event(s)" in text
    assert [e.ref for e in engine.store] == ["aid-1:ResponseComplete", "aid-2:ResponseComplete"]
    ev = engine.store.get(1)
    assert ev.signal and ev.kind == "exec"
    # Each item is kept as its own raw record.
    assert engine.raw_record(ev)["auditID"] == "aid-1"
    assert src.health.events_total == 2 and src.health.state == "connected"

    # One bad item in a batch: counted, the rest kept, still 200.
    bad = {"kind": "Event", "apiVersion": "audit.k8s.io/v1", "auditID": 5}
    status, _ = await post(src.url, event_list([audit_event(3), bad, audit_event(4)]))
    assert status == 200
    assert len(engine.store) == 4
    assert sum(src.health.skipped.values()) == 1


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"this is not json", "malformed-json"),
        (b'{"kind": "EventList", "items": [', "truncated-json"),
        (b"[1, 2]", "not-an-object"),
        (b'{"kind": "PodList", "items": []}', "unknown-format"),
        (b"   ", "missing-field"),
    ],
)
async def test_audit_malformed_bodies_get_400_and_lose_nothing(
    engine: Engine, body: bytes, reason: str
) -> None:
    src = await started(engine, AuditWebhookSource("127.0.0.1", 0))
    assert (await post(src.url, event_list([audit_event(1)])))[0] == 200
    status, text = await post(src.url, body)
    assert status == 400 and text.startswith(reason), text
    assert src.health.skipped[reason] == 1
    assert "rejected a POST" in src.health.last_error
    # What came before is intact, and what comes after is received.
    assert (await post(src.url, event_list([audit_event(2)])))[0] == 200
    assert [e.ref for e in engine.store] == ["aid-1:ResponseComplete", "aid-2:ResponseComplete"]
    assert src.requests[400] == 1 and src.requests[200] == 2


async def test_bearer_token(engine: Engine) -> None:
    src = await started(engine, AuditWebhookSource("127.0.0.1", 0, token="s3cret-token"))
    body = event_list([audit_event(1)])
    status, text = await post(src.url, body)
    assert status == 401 and "missing" in text
    status, text = await post(src.url, body, token="guess")
    assert status == 401 and "wrong" in text
    assert len(engine.store) == 0
    assert (await post(src.url, body, token="s3cret-token"))[0] == 200
    assert len(engine.store) == 1
    assert "token" in src.health.last_error


async def test_falco_http_output_and_sidekick(engine: Engine) -> None:
    src = await started(engine, FalcoWebhookSource("127.0.0.1", 0, token="t"))
    status, _ = await post(src.url, orjson.dumps(FALCO_ALERT), token="t")
    assert status == 200
    # Falcosidekick forwards the same payload, here two alerts as an array.
    second = dict(FALCO_ALERT, uuid="2a7c1c1e-0000-4000-8000-000000000002")
    third = dict(FALCO_ALERT, uuid="2a7c1c1e-0000-4000-8000-000000000003")
    status, _ = await post(src.url + "falco", orjson.dumps([second, third]), token="t")
    assert status == 200
    refs = [e.ref for e in engine.store]
    assert refs == [a["uuid"] for a in (FALCO_ALERT, second, third)]
    assert all(e.source == "falco" for e in engine.store)
    status, text = await post(src.url, b'{"hello": "world"}', token="t")
    assert status == 400 and text.startswith("unknown-format")
    status, text = await post(src.url, b"{not json", token="t")
    assert status == 400 and text.startswith("malformed-json")
    assert len(engine.store) == 3


async def test_falco_real_alerts(engine: Engine) -> None:
    path = REAL / "falco-alerts" / "falco_alerts.jsonl"
    require_real_fixtures(path)
    src = await started(engine, FalcoWebhookSource("127.0.0.1", 0))
    lines = [ln for ln in path.read_bytes().splitlines() if ln.strip()]
    for line in lines:
        status, text = await post(src.url, line)
        assert status == 200, text
    assert len(engine.store) == len(lines)


async def test_body_over_the_limit_is_413(engine: Engine) -> None:
    src = FalcoWebhookSource("127.0.0.1", 0)
    src.max_body = 1024
    await started(engine, src)
    status, _ = await post(src.url, b"{" + b" " * 4096 + b"}")
    assert status == 413
    assert src.health.skipped["too-long"] == 1


async def test_port_in_use_is_a_clear_failure(engine: Engine) -> None:
    first = await started(engine, AuditWebhookSource("127.0.0.1", 0))
    second = AuditWebhookSource("127.0.0.1", first.port)
    with pytest.raises(ListenError, match=r"cannot listen on 127\.0\.0\.1"):
        await second.start(engine)
    # Run through the engine, the same problem marks the source failed, in words.
    engine.add_source(second)
    await engine.start()
    async with asyncio.timeout(5):
        while second.health.state != "failed":
            await asyncio.sleep(0.01)
    assert second.health.state == "failed" and "cannot listen" in second.health.last_error


@pytest.fixture
def self_signed(tmp_path: Path) -> tuple[Path, Path]:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("no openssl CLI to make a self-signed certificate")
    cert, key = tmp_path / "tls.crt", tmp_path / "tls.key"
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return cert, key


async def test_tls(engine: Engine, self_signed: tuple[Path, Path]) -> None:
    cert, key = self_signed
    src = await started(
        engine, AuditWebhookSource("127.0.0.1", 0, token="tok", ssl_context=tls_context(cert, key))
    )
    assert src.url.startswith("https://")
    client = ssl.create_default_context(cafile=str(cert))
    status, _ = await post(src.url, event_list([audit_event(1)]), token="tok", ssl_ctx=client)
    assert status == 200 and len(engine.store) == 1
    # A client that does not trust the certificate cannot talk to it.
    with pytest.raises(aiohttp.ClientConnectorCertificateError):
        await post(src.url, event_list([audit_event(2)]), token="tok")
    # Plain HTTP to the TLS port is not accepted either.
    with pytest.raises(aiohttp.ClientError):
        await post(src.url.replace("https", "http"), event_list([audit_event(3)]), token="tok")
    assert len(engine.store) == 1


def test_tls_context_errors(tmp_path: Path) -> None:
    with pytest.raises(ListenError, match="file not found"):
        tls_context(tmp_path / "nope.crt", tmp_path / "nope.key")
    bad = tmp_path / "bad.pem"
    bad.write_text("not a certificate")
    with pytest.raises(ListenError, match="cannot load certificate"):
        tls_context(bad, bad)


def test_listen_addresses_need_a_host() -> None:
    from ktriage.sources.http import parse_listen

    assert parse_listen("127.0.0.1:9443") == ("127.0.0.1", 9443)
    assert parse_listen(":9443") == ("127.0.0.1", 9443)
    with pytest.raises(ValueError, match="no host"):
        parse_listen("[]:9443")


def test_webhooks_beyond_loopback_need_a_token(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from ktriage.core.config import Config
    from ktriage.live import TOKEN_ENV, LiveError, build_live
    from ktriage.options import LiveOptions

    monkeypatch.delenv(TOKEN_ENV, raising=False)
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.kube/config: no cluster
    options = LiveOptions(
        falco=("off",), tetragon=("off",), listen_audit="0.0.0.0:0", headless=True
    )
    with pytest.raises(LiveError, match="need a shared token"):
        build_live(options, Config())


def test_the_webhook_token_can_come_from_a_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A token in argv is visible to every local user; a file or the environment is not."""
    from ktriage.live import TOKEN_ENV, LiveError, webhook_token
    from ktriage.options import LiveOptions

    monkeypatch.setenv(TOKEN_ENV, "from-env")
    secret = tmp_path / "token"
    secret.write_text("s3cr3t-token\nignored second line\n")
    assert webhook_token(LiveOptions(webhook_token_file=str(secret))) == "s3cr3t-token"
    options = LiveOptions(webhook_token="from-argv", webhook_token_file=str(secret))
    assert webhook_token(options) == "from-argv"
    assert webhook_token(LiveOptions()) == "from-env"
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(LiveError, match="holds no token"):
        webhook_token(LiveOptions(webhook_token_file=str(tmp_path / "empty")))
    with pytest.raises(LiveError, match="cannot read"):
        webhook_token(LiveOptions(webhook_token_file=str(tmp_path / "nope")))
