"""Webhook receivers (aiohttp): the API server's audit webhook backend, and Falco's
`http_output` / Falcosidekick's webhook output.

A POST is answered 200 only once its events are stored (the handler runs on the
engine's loop and hands them to the engine before replying), so a sender that
gets 200 can forget the batch. A body that cannot be used is answered 400 with a
plain reason and counted; nothing else in the stream is affected. With a token
configured, requests without `Authorization: Bearer <token>` get 401.

Every POST path is accepted: kube-apiserver posts to whatever URL its webhook
kubeconfig names, and Falco/Falcosidekick likewise.
"""

from __future__ import annotations

import asyncio
import hmac
import ssl
import time
from collections import Counter
from pathlib import Path

import msgspec
from aiohttp import web

from ktriage.core.ingest import MAX_SKIP_LOG, Ingestor
from ktriage.core.model import Event
from ktriage.core.text import printable
from ktriage.engine import Engine, SourceHealth
from ktriage.sources.base import deliver

# kube-apiserver sends up to 400 events per batch by default; leave room.
MAX_AUDIT_BODY = 64 << 20
MAX_FALCO_BODY = 4 << 20
IDLE_FLUSH = 2.0


class ListenError(Exception):
    """The server cannot start (bad address, port in use, unreadable certificate)."""


class _EventList(msgspec.Struct):
    kind: str | None = None
    apiVersion: str | None = None  # the wire name
    items: list[msgspec.Raw] | None = None


_EVENT_LIST = msgspec.json.Decoder(_EventList)
_ANY = msgspec.json.Decoder()


def parse_listen(text: str, default_host: str = "127.0.0.1") -> tuple[str, int]:
    """`HOST:PORT`, `:PORT`, `PORT` or `[v6]:PORT` → (host, port)."""
    value = text.strip()
    host, port_text = default_host, value
    if value.startswith("["):
        end = value.find("]")
        if end == -1 or value[end + 1 : end + 2] != ":":
            raise ValueError(f"not HOST:PORT: {text!r}")
        host, port_text = value[1:end], value[end + 2 :]
    elif ":" in value:
        host_part, _, port_text = value.rpartition(":")
        host = host_part or default_host
    if not host:
        raise ValueError(f"no host in {text!r}: give an address such as 127.0.0.1")
    try:
        port = int(port_text)
    except ValueError:
        raise ValueError(f"not HOST:PORT: {text!r} (the port must be a number)") from None
    if not 0 <= port <= 65535:
        raise ValueError(f"port out of range in {text!r}")
    return host, port


def tls_context(cert: Path | str, key: Path | str) -> ssl.SSLContext:
    """A server TLS context from PEM files; ListenError with the reason when unusable."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        ctx.load_cert_chain(str(cert), str(key))
    except FileNotFoundError as exc:
        raise ListenError(f"TLS: file not found: {exc.filename}") from exc
    except (ssl.SSLError, OSError) as exc:
        raise ListenError(f"TLS: cannot load certificate {cert} / key {key}: {exc}") from exc
    return ctx


class WebhookSource:
    """Shared server plumbing; subclasses turn a body into events."""

    kind = ""
    label = ""
    max_body = MAX_FALCO_BODY

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        token: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
        idle_flush: float = IDLE_FLUSH,
    ) -> None:
        self.host = host
        self.port = port
        self.token = token or None
        self.ssl_context = ssl_context
        self.ingestor = Ingestor()
        scheme = "https" if ssl_context else "http"
        self.health = SourceHealth(name=f"{self.label} {scheme}://{host}:{port}", kind=self.kind)
        self.health.skipped = self.ingestor.skipped
        self.started = asyncio.Event()
        self.requests: Counter[int] = Counter()  # responses by status code
        self.idle_flush = idle_flush
        self._runner: web.AppRunner | None = None
        self._engine: Engine | None = None
        self._last_post = 0.0
        self._held = False
        self._batch = 0

    @property
    def url(self) -> str:
        scheme = "https" if self.ssl_context else "http"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}/"

    async def start(self, engine: Engine) -> None:
        """Bind and listen; raises ListenError with the reason when it cannot."""
        self._engine = engine
        app = web.Application(client_max_size=self.max_body)
        app.router.add_route("POST", "/{tail:.*}", self._handle)
        app.router.add_route("GET", "/healthz", self._healthz)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port, ssl_context=self.ssl_context)
        try:
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            raise ListenError(
                f"cannot listen on {self.host}:{self.port}: {exc.strerror or exc}"
            ) from exc
        self._runner = runner
        server = site._server
        sockets = getattr(server, "sockets", None) or []
        if sockets:
            self.port = sockets[0].getsockname()[1]
        scheme = "https" if self.ssl_context else "http"
        self.health.name = f"{self.label} {scheme}://{self.host}:{self.port}"
        self.health.state = "connected"
        self.health.last_error = ""
        self.started.set()

    async def run(self, engine: Engine) -> None:
        if self._runner is None:
            try:
                await self.start(engine)
            except ListenError as exc:
                self.health.state = "failed"
                self.health.last_error = str(exc)
                return
        try:
            while True:
                await asyncio.sleep(min(self.idle_flush, 0.5))
                if self._held and time.monotonic() - self._last_post >= self.idle_flush:
                    self._held = False
                    self._deliver(self.ingestor.flush())
        finally:
            await self.aclose()

    async def aclose(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            self.health.state = "done"
            await runner.cleanup()

    def close(self) -> None:
        """Synchronous close for Engine.stop; the cancelled task cleans up the server."""

    # ---- request handling ------------------------------------------------------

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    def _authorized(self, request: web.Request) -> bool:
        if self.token is None:
            return True
        header = request.headers.get("Authorization", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer":
            return False
        return hmac.compare_digest(value.strip().encode(), self.token.encode())

    def _reply(self, status: int, text: str) -> web.Response:
        self.requests[status] += 1
        return web.Response(status=status, text=text + "\n")

    def _reject(self, reason: str, detail: str) -> web.Response:
        ing = self.ingestor
        ing.skipped[reason] += 1
        if len(ing.skip_log) < MAX_SKIP_LOG:
            ing.skip_log.append((f"POST #{self._batch}", reason, detail))
        self.health.last_error = f"rejected a POST: {detail}"
        return self._reply(400, f"{reason}: {detail}")

    async def _handle(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            what = "missing" if "Authorization" not in request.headers else "wrong"
            self.health.last_error = f"refused a POST with a {what} bearer token"
            return self._reply(401, f"unauthorized: {what} bearer token")
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            self.ingestor.skipped["too-long"] += 1
            self.health.last_error = f"refused a POST over {self.max_body} bytes"
            return self._reply(413, f"too large: the limit is {self.max_body} bytes")
        self._batch += 1
        if not body.strip():
            return self._reject("missing-field", "the request body is empty")
        try:
            events = self._events(body)
        except _Rejected as exc:
            if exc.counted:
                self.health.last_error = f"rejected a POST: {exc.detail}"
                return self._reply(400, f"{exc.reason}: {exc.detail}")
            return self._reject(exc.reason, exc.detail)
        self._deliver(events)
        self._last_post = time.monotonic()
        self._held = True
        return self._reply(200, f"ok: {len(events)} event(s)")

    def _events(self, body: bytes) -> list[Event]:
        raise NotImplementedError

    def _deliver(self, events: list[Event]) -> None:
        if events and self._engine is not None:
            deliver(self._engine, self.health, events)

    def _feed_one(self, data: bytes, origin: str) -> list[Event]:
        """Feed one record; _Rejected when the ingestor could not use it."""
        assert self._engine is not None
        before = sum(self.ingestor.skipped.values())
        events = self.ingestor.feed_line(data, origin=origin, raw=self._engine.archive.spool(data))
        if sum(self.ingestor.skipped.values()) > before:
            reason = next(
                (r for o, r, _ in reversed(self.ingestor.skip_log) if o == origin), "unusable"
            )
            detail = next(
                (d for o, _, d in reversed(self.ingestor.skip_log) if o == origin), reason
            )
            # Already counted by the ingestor: say why, do not count twice.
            raise _Rejected(reason, detail, counted=True)
        return events


class _Rejected(Exception):
    def __init__(self, reason: str, detail: str, *, counted: bool = False) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail
        self.counted = counted


def _check_json(body: bytes) -> object:
    try:
        return _ANY.decode(body)
    except msgspec.DecodeError as exc:
        text = str(exc)
        if "truncated" in text.lower() or "unexpected end" in text.lower():
            raise _Rejected("truncated-json", f"the JSON is cut short ({text})") from None
        raise _Rejected("malformed-json", f"not valid JSON ({text})") from None


class AuditWebhookSource(WebhookSource):
    """kube-apiserver's audit webhook backend: POSTs of `audit.k8s.io` EventLists."""

    kind = "audit"
    label = "audit webhook"
    max_body = MAX_AUDIT_BODY

    def _events(self, body: bytes) -> list[Event]:
        try:
            batch = _EVENT_LIST.decode(body)
        except msgspec.ValidationError:
            _check_json(body)
            raise _Rejected("not-an-object", "expected an audit.k8s.io EventList object") from None
        except msgspec.DecodeError:
            _check_json(body)
            raise _Rejected("malformed-json", "not valid JSON") from None
        if batch.kind == "Event":
            # A single event (some proxies unbatch): take it as it is.
            return self._feed_one(body.strip(), f"POST #{self._batch}")
        if batch.kind != "EventList" or batch.items is None:
            raise _Rejected(
                "unknown-format",
                f"expected kind EventList with items, got kind {printable(batch.kind or 'none')!r}",
            )
        events: list[Event] = []
        assert self._engine is not None
        spool = self._engine.archive.spool
        feed = self.ingestor.feed_line
        for i, item in enumerate(batch.items, 1):
            data = bytes(item)
            # Unusable items are skipped and counted; the rest of the batch is kept.
            events.extend(feed(data, origin=f"POST #{self._batch} item {i}", raw=spool(data)))
        return events


class FalcoWebhookSource(WebhookSource):
    """Falco `http_output` and Falcosidekick webhook POSTs: one alert per request
    (a JSON array of alerts is accepted too)."""

    kind = "falco"
    label = "falco webhook"
    max_body = MAX_FALCO_BODY

    def _events(self, body: bytes) -> list[Event]:
        head = body.lstrip()[:1]
        if head == b"[":
            try:
                items = msgspec.json.decode(body, type=list[msgspec.Raw])
            except msgspec.DecodeError:
                _check_json(body)
                raise _Rejected("malformed-json", "not valid JSON") from None
            events: list[Event] = []
            for i, item in enumerate(items, 1):
                origin = f"POST #{self._batch} item {i}"
                assert self._engine is not None
                data = bytes(item)
                events.extend(
                    self.ingestor.feed_line(
                        data, origin=origin, raw=self._engine.archive.spool(data)
                    )
                )
            return events
        if head != b"{":
            _check_json(body)
            raise _Rejected("not-an-object", "expected a Falco alert JSON object")
        return self._feed_one(body.strip(), f"POST #{self._batch}")
