"""Webhook receivers (aiohttp): the API server's audit webhook backend, and Falco's
`http_output` / Falcosidekick's webhook output.

A POST is answered 200 only once its events are stored (the handler runs on the
engine's loop and hands them to the engine before replying), so a sender that
gets 200 can forget the batch. The reply says how many items were kept and
skipped: a bad item in a batch is that item's skip, counted by reason, and the
good ones are kept. A body that cannot be used at all is answered 400 with a
plain reason and counted; nothing else in the stream is affected.

Under abuse the receiver stays responsive:
- with a token configured, a request without `Authorization: Bearer <token>`
  gets 401 before its body is read or decompressed;
- aiohttp's own decompression is off: a `Content-Encoding: gzip|deflate` body is
  inflated here, in bounded pieces with a yield to the loop between them, and
  refused with 413 once it would pass the size cap (a gzip bomb costs at most
  the cap); a body that does not inflate is 400, an unknown encoding 415;
- a declared `Content-Length` over the cap is 413 before anything is read, and
  a body that does not arrive in time (a slow or lying sender) is 408.

Every POST path is accepted: kube-apiserver posts to whatever URL its webhook
kubeconfig names, and Falco/Falcosidekick likewise.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import ssl
import time
import zlib
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec

from ktriage.core import jsonsplit
from ktriage.core.ingest import Ingestor
from ktriage.core.jsonsplit import Unsplittable
from ktriage.core.model import Event
from ktriage.core.text import printable
from ktriage.engine import Engine, SourceHealth
from ktriage.sources.base import deliver

if TYPE_CHECKING:
    from aiohttp import web

# kube-apiserver sends up to 400 events per batch by default; leave room.
MAX_AUDIT_BODY = 64 << 20
MAX_FALCO_BODY = 4 << 20
IDLE_FLUSH = 2.0
# A body must arrive whole within this time: a sender that stalls (or declares
# more than it sends) does not hold a handler forever.
READ_TIMEOUT = 30.0
# Inflated output per step; each step is followed by a yield to the loop, so a
# decompression bomb shares the loop with everything else in small slices.
INFLATE_STEP = 256 * 1024
# Bodies held at once, across requests, as a multiple of the size cap: concurrent
# bombs that each stay under the cap still cannot take all the memory (503 past it).
INFLIGHT_BODIES = 2
# How long aiohttp keeps reading (and discarding, undecoded) the body of a
# request refused before its body was read, so the client sees the reply.
LINGER = 1.0
ENCODINGS = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}


class _NoTraceback(logging.Filter):
    """aiohttp logs a request it cannot parse (bad bytes, bad framing, a body that does
    not decode) with a full traceback; the sender already got its 4xx. Keep one plain
    line, its untrusted text made printable."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if exc is not None:
            record.msg = "%s: %s"
            record.args = (printable(record.getMessage())[:200], _what(exc))
            record.exc_info = None
            record.exc_text = None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


# The webhook servers' own logger (aiohttp's "aiohttp.server" is left as it is).
PROTOCOL_LOG = logging.getLogger("ktriage.webhook.protocol")
PROTOCOL_LOG.addFilter(_NoTraceback())


class ListenError(Exception):
    """The server cannot start (bad address, port in use, unreadable certificate)."""


class _EventList(msgspec.Struct):
    kind: str | None = None
    apiVersion: str | None = None  # the wire name
    items: list[msgspec.Raw] | None = None


_EVENT_LIST = msgspec.json.Decoder(_EventList)
_RAW_ITEMS = msgspec.json.Decoder(list[msgspec.Raw])
_RAW = msgspec.json.Decoder(msgspec.Raw)
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


class _Refused(Exception):
    """A request answered before its body could be used: status, skip reason, words."""

    def __init__(self, status: int, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.reason = reason
        self.detail = detail


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
        read_timeout: float = READ_TIMEOUT,
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
        self.read_timeout = read_timeout
        # Bytes of bodies held by requests in progress; None: INFLIGHT_BODIES x max_body.
        self.max_inflight: int | None = None
        self.inflight = 0
        self.peak_inflight = 0
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
        # Imported here: a session without webhooks never pays for aiohttp.
        from aiohttp import web

        self._engine = engine
        app = web.Application(client_max_size=self.max_body)
        app.router.add_route("POST", "/{tail:.*}", self._handle)
        app.router.add_route("GET", "/healthz", self._healthz)
        # auto_decompress off: aiohttp would inflate every gzip body as it arrives,
        # in one go on the loop, even for a request about to get 401.
        runner = web.AppRunner(
            app,
            access_log=None,
            shutdown_timeout=0.5,
            auto_decompress=False,
            lingering_time=LINGER,
            logger=PROTOCOL_LOG,
        )
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
        return self._response(200, "ok")

    def _authorized(self, request: web.Request) -> bool:
        if self.token is None:
            return True
        header = request.headers.get("Authorization", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer":
            return False
        # Header bytes an attacker chose may not be valid text: compare bytes, never fail.
        given = value.strip().encode("utf-8", "surrogateescape")
        return hmac.compare_digest(given, self.token.encode("utf-8", "surrogateescape"))

    def _reply(self, status: int, text: str) -> web.Response:
        self.requests[status] += 1
        # Busy is the one refusal worth retrying, and soon.
        headers = {"Retry-After": "1"} if status == 503 else None
        return self._response(status, text, headers)

    @staticmethod
    def _response(status: int, text: str, headers: dict[str, str] | None = None) -> web.Response:
        from aiohttp import web  # imported once start() ran: only a lookup

        return web.Response(status=status, text=text + "\n", headers=headers)

    def _reject(self, reason: str, detail: str, status: int = 400) -> web.Response:
        self.ingestor.count_skip(f"POST #{self._batch}", reason, detail)
        self.health.last_error = f"rejected a POST: {detail}"
        return self._reply(status, f"{reason}: {detail}")

    async def _handle(self, request: web.Request) -> web.Response:
        try:
            return await self._handle_request(request)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # no request of any shape gets a 500 or a traceback
            return self._reject("unreadable", f"the request cannot be read ({_what(exc)})")

    async def _handle_request(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            # Refused on the headers alone: the body is neither read nor inflated.
            what = "missing" if "Authorization" not in request.headers else "wrong"
            self.health.last_error = f"refused a POST with a {what} bearer token"
            return self._reply(401, f"unauthorized: {what} bearer token")
        self._batch += 1
        claim = _Claim(self)
        try:
            return await self._handle_body(request, claim)
        finally:
            claim.release()

    async def _handle_body(self, request: web.Request, claim: _Claim) -> web.Response:
        try:
            body = await self._read_body(request, claim)
        except _Refused as exc:
            if exc.status == 503:
                # Not lost: the sender is told to send it again.
                self.health.last_error = f"asked a sender to retry: {exc.detail}"
                return self._reply(503, f"{exc.reason}: {exc.detail}")
            return self._reject(exc.reason, exc.detail, exc.status)
        if not body.strip():
            return self._reject("missing-field", "the request body is empty")
        skips_before = Counter(self.ingestor.skipped)
        partial_before = Counter(self.ingestor.partial)
        try:
            events, items = await self._events(body)
        except _Rejected as exc:
            if exc.counted:
                self.health.last_error = f"rejected a POST: {exc.detail}"
                return self._reply(400, f"{exc.reason}: {exc.detail}")
            return self._reject(exc.reason, exc.detail)
        except Exception as exc:  # never a 500 for what a sender wrote
            return self._reject("unreadable", f"the body cannot be read ({_what(exc)})")
        self._deliver(events)
        self._last_post = time.monotonic()
        self._held = True
        # Items too long or too deep are read in part: kept, and said so.
        partial = self.ingestor.partial - partial_before
        skipped = self.ingestor.skipped - skips_before - partial
        n_skipped = sum(skipped.values())
        text = f"ok: {len(events)} event(s); kept {items - n_skipped} of {items} item(s)"
        if partial:
            reasons = ", ".join(f"{r} {n}" for r, n in sorted(partial.items()))
            text += f" ({sum(partial.values())} read in part: {reasons})"
        if n_skipped:
            reasons = ", ".join(f"{r} {n}" for r, n in sorted(skipped.items()))
            text += f", skipped {n_skipped} ({reasons})"
            self.health.last_error = f"POST #{self._batch}: skipped {n_skipped} of {items} item(s)"
        return self._reply(200, text)

    async def _read_body(self, request: web.Request, claim: _Claim) -> bytes:
        """The body, inflated if it says it is compressed, within the size cap and the
        read timeout; _Refused with the status and the reason otherwise."""
        cap = self.max_body
        encoding = request.headers.get("Content-Encoding", "").strip().lower()
        if encoding in ("", "identity"):
            wbits = None
        elif encoding in ENCODINGS:
            wbits = ENCODINGS[encoding]
        else:
            raise _Refused(
                415,
                "bad-encoding",
                f"Content-Encoding {printable(encoding[:40])!r} is not supported "
                "(use gzip, deflate or none)",
            )
        declared = request.content_length
        if declared is not None and declared > cap:
            raise _Refused(413, "too-long", f"the body is {declared} bytes, over {cap}")
        inflater = zlib.decompressobj(wbits) if wbits is not None else None
        out = bytearray()
        received = 0
        try:
            async with asyncio.timeout(self.read_timeout):
                while chunk := await request.content.readany():
                    received += len(chunk)
                    if received > cap:
                        raise _Refused(413, "too-long", f"the body is over {cap} bytes")
                    if inflater is None:
                        out += chunk
                        claim.hold(len(out))
                        continue
                    inflater = await _inflate(inflater, chunk, out, cap, wbits or 0, claim)
        except TimeoutError:
            raise _Refused(
                408,
                "read-timeout",
                f"the body did not arrive within {self.read_timeout:g} s "
                f"({received} of {declared if declared is not None else '?'} bytes)",
            ) from None
        except zlib.error as exc:
            raise _Refused(
                400, "bad-encoding", f"the {encoding} body does not inflate: {exc}"
            ) from None
        except _Refused:
            raise
        except Exception as exc:  # the sender went away, or broke the framing
            raise _Refused(400, "unreadable", f"the body cannot be read ({_what(exc)})") from None
        if inflater is not None and not inflater.eof:
            raise _Refused(400, "bad-encoding", f"the {encoding} body is cut short")
        return bytes(out)

    async def _events(self, body: bytes) -> tuple[list[Event], int]:
        """The events in a body and how many items it held."""
        raise NotImplementedError

    def _deliver(self, events: list[Event]) -> None:
        if events and self._engine is not None:
            deliver(self._engine, self.health, events)

    def _feed_item(self, data: bytes, origin: str) -> list[Event]:
        """One item of a batch; whatever goes wrong with it is that item's skip."""
        assert self._engine is not None
        try:
            return self.ingestor.feed_line(
                data, origin=origin, raw=self._engine.archive.spool(data)
            )
        except RecursionError:
            return self.ingestor.count_skip(origin, "too-deep", "the record is nested too deeply")
        except Exception as exc:  # one item never fails its batch
            return self.ingestor.count_skip(
                origin, "unreadable", f"the record cannot be read ({_what(exc)})"
            )

    def _feed_items(self, items: list[bytes]) -> list[Event]:
        events: list[Event] = []
        for i, data in enumerate(items, 1):
            # Unusable items are skipped and counted; the rest of the batch is kept.
            # (Oversized items are counted too-long by the ingestor.)
            events.extend(self._feed_item(data, f"POST #{self._batch} item {i}"))
        return events

    def _feed_split(
        self, items: list[bytes], trouble: Unsplittable | None
    ) -> tuple[list[Event], int]:
        """Items cut out of a body too deep to decode whole; what could not be cut into
        items is one more skip, said in words (or the body's 400 when nothing could)."""
        if trouble is not None and not items:
            raise _Rejected(trouble.reason, f"the body cannot be cut into items: {trouble}")
        events = self._feed_items(items)
        if trouble is None:
            return events, len(items)
        self.ingestor.count_skip(
            f"POST #{self._batch} item {len(items) + 1}",
            trouble.reason,
            f"the batch is too deeply nested to decode whole, and what follows item "
            f"{len(items)} cannot be cut into items: {trouble}",
        )
        return events, len(items) + 1

    def _feed_one(self, data: bytes, origin: str) -> list[Event]:
        """Feed one record; _Rejected when the ingestor could not use it."""
        ing = self.ingestor
        before = sum(ing.skipped.values()) - sum(ing.partial.values())
        events = self._feed_item(data, origin)
        # A record read in part still made its events: only a true skip is refused.
        if sum(ing.skipped.values()) - sum(ing.partial.values()) > before:
            reason = next(
                (r for o, r, _ in reversed(self.ingestor.skip_log) if o == origin), "unusable"
            )
            detail = next(
                (d for o, _, d in reversed(self.ingestor.skip_log) if o == origin), reason
            )
            # Already counted by the ingestor: say why, do not count twice.
            raise _Rejected(reason, detail, counted=True)
        return events


async def _inflate(
    inflater: zlib._Decompress, chunk: bytes, out: bytearray, cap: int, wbits: int, claim: _Claim
) -> zlib._Decompress:
    """Inflate one received chunk into `out` in steps of INFLATE_STEP, yielding to the
    loop after each; _Refused once `out` would pass `cap`. Returns the inflater to use
    next (a new one when a gzip stream holds several members)."""
    data = chunk
    while data:
        if inflater.eof:
            # gzip allows members one after another; zero padding after the end is fine.
            if not data.strip(b"\0"):
                return inflater
            inflater = zlib.decompressobj(wbits)
        out += inflater.decompress(data, INFLATE_STEP)
        if len(out) > cap:
            raise _Refused(413, "too-long", f"the body inflates to over {cap} bytes")
        claim.hold(len(out))
        data = inflater.unused_data if inflater.eof else inflater.unconsumed_tail
        await asyncio.sleep(0)
    return inflater


class _Claim:
    """The bytes one request's body holds, counted in its source's in-flight total."""

    def __init__(self, source: WebhookSource) -> None:
        self.source = source
        self.held = 0

    def hold(self, size: int) -> None:
        """The body now holds `size` bytes; _Refused (503) past the shared limit."""
        src = self.source
        src.inflight += size - self.held
        self.held = size
        src.peak_inflight = max(src.peak_inflight, src.inflight)
        limit = src.max_inflight or INFLIGHT_BODIES * src.max_body
        if src.inflight > limit:
            raise _Refused(
                503,
                "busy",
                f"request bodies in progress hold over {limit} bytes together; send again",
            )

    def release(self) -> None:
        self.source.inflight -= self.held
        self.held = 0


def _what(exc: BaseException) -> str:
    text = printable(str(exc))[:200]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class _Rejected(Exception):
    def __init__(self, reason: str, detail: str, *, counted: bool = False) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail
        self.counted = counted


def _check_json(body: bytes) -> object:
    try:
        return _ANY.decode(body)
    except RecursionError:
        return None  # well-formed as far as a decoder got; the items say the rest
    except msgspec.DecodeError as exc:
        text = str(exc)
        if "truncated" in text.lower() or "unexpected end" in text.lower():
            raise _Rejected("truncated-json", f"the JSON is cut short ({text})") from None
        raise _Rejected("malformed-json", f"not valid JSON ({text})") from None


def split_top_level(body: bytes) -> tuple[str | None, list[bytes], Unsplittable | None]:
    """The `kind` and raw `items` of a top-level JSON object (or the elements of a
    top-level array), without recursion, and why the rest could not be split (None when
    all of it could). See ktriage.core.jsonsplit."""
    try:
        return jsonsplit.split_top_level(body)
    except jsonsplit.NotAnObject:
        raise _Rejected("not-an-object", "expected a JSON object") from None


class AuditWebhookSource(WebhookSource):
    """kube-apiserver's audit webhook backend: POSTs of `audit.k8s.io` EventLists."""

    kind = "audit"
    label = "audit webhook"
    max_body = MAX_AUDIT_BODY

    async def _events(self, body: bytes) -> tuple[list[Event], int]:
        try:
            batch = _EVENT_LIST.decode(body)
        except RecursionError:
            # Too deep for the decoder somewhere: split the batch without recursion
            # (in a thread: a big body takes a while) and take the items one by one.
            kind, raw_items, trouble = await asyncio.to_thread(split_top_level, body)
            if kind == "Event":
                return self._feed_one(body.strip(), f"POST #{self._batch}"), 1
            if kind != "EventList":
                raise _Rejected(
                    "unknown-format",
                    f"expected kind EventList with items, got kind {printable(kind or 'none')!r}",
                ) from None
            return self._feed_split(raw_items, trouble)
        except msgspec.ValidationError:
            _check_json(body)
            raise _Rejected("not-an-object", "expected an audit.k8s.io EventList object") from None
        except msgspec.DecodeError:
            _check_json(body)
            raise _Rejected("malformed-json", "not valid JSON") from None
        if batch.kind == "Event":
            # A single event (some proxies unbatch): take it as it is.
            return self._feed_one(body.strip(), f"POST #{self._batch}"), 1
        if batch.kind != "EventList" or batch.items is None:
            raise _Rejected(
                "unknown-format",
                f"expected kind EventList with items, got kind {printable(batch.kind or 'none')!r}",
            )
        return self._feed_items([bytes(item) for item in batch.items]), len(batch.items)


class FalcoWebhookSource(WebhookSource):
    """Falco `http_output` and Falcosidekick webhook POSTs: one alert per request
    (a JSON array of alerts is accepted too)."""

    kind = "falco"
    label = "falco webhook"
    max_body = MAX_FALCO_BODY

    async def _events(self, body: bytes) -> tuple[list[Event], int]:
        head = body.lstrip()[:1]
        if head == b"[":
            try:
                items = [bytes(item) for item in _RAW_ITEMS.decode(body)]
            except RecursionError:
                _, items, trouble = await asyncio.to_thread(split_top_level, body)
                return self._feed_split(items, trouble)
            except msgspec.DecodeError:
                _check_json(body)
                raise _Rejected("malformed-json", "not valid JSON") from None
            return self._feed_items(items), len(items)
        if head != b"{":
            _check_json(body)
            raise _Rejected("not-an-object", "expected a Falco alert JSON object")
        return self._feed_one(body.strip(), f"POST #{self._batch}"), 1
