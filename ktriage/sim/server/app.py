"""The simulated Kubernetes API server: HTTP on loopback, spoken closely enough to
kube-apiserver that the official `kubernetes` client and `kubectl` work unchanged.

One request goes through the steps kube-apiserver takes: authentication (bearer
token), request info (verb, resource, namespace, name from the URL), authorization,
the injected faults, the handler, and one audit event. Objects live in the
`ClusterStore`; watches and `logs -f` stream from its change and log feeds.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import orjson
from aiohttp import web

from ktriage.sim.audit import AuditWriter
from ktriage.sim.auth.authentication import Auth
from ktriage.sim.clock import SimClock
from ktriage.sim.controllers import origin
from ktriage.sim.faults import Faults, exempt_from_faults
from ktriage.sim.server import connection, discovery, errors, openapi
from ktriage.sim.server.errors import ApiError
from ktriage.sim.server.filters import RequestFilters
from ktriage.sim.server.reads import ReadHandlers
from ktriage.sim.server.request import JSON, Ctx, dumps, parse_request_info
from ktriage.sim.server.reviews import ReviewHandlers
from ktriage.sim.server.streaming import StreamingHandlers
from ktriage.sim.server.subresources import SubresourceHandlers
from ktriage.sim.server.writes import WriteHandlers
from ktriage.sim.storage.store import ClusterStore

log = logging.getLogger("ktriage.sim")


class APIServer(
    RequestFilters,
    ReadHandlers,
    WriteHandlers,
    SubresourceHandlers,
    StreamingHandlers,
    ReviewHandlers,
):
    """The aiohttp application and its request pipeline; the handlers are grouped by area
    in the base classes (reads, writes, subresources, streaming, reviews)."""

    def __init__(
        self,
        store: ClusterStore,
        audit: AuditWriter,
        auth: Auth,
        faults: Faults,
        clock: SimClock,
        *,
        bookmark_interval: float = 30.0,
    ) -> None:
        self.store = store
        self.audit = audit
        self.auth = auth
        self.faults = faults
        self.clock = clock
        self.bookmark_interval = bookmark_interval
        self.server_address = "127.0.0.1:0"
        self.requests = 0
        self._streams: set[Callable[[], None]] = set()
        self._stopping = False
        self.app = web.Application(client_max_size=64 * 1024 * 1024)
        self.app.router.add_route("*", "/{tail:.*}", self.handle)

    # ------------------------------------------------------------------ pipeline

    def close_streams(self) -> None:
        """End every open watch and log follow (server shutdown)."""
        self._stopping = True
        for close in list(self._streams):
            close()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        ctx = Ctx(request=request, received=self.clock.now())
        self.requests += 1
        if request.path.startswith("/_sim/"):
            return await self._sim_control(request)
        await self.faults.hold()
        lost = not exempt_from_faults(request.path) and "dryRun" not in request.query
        if lost and self.faults.take_blackhole(request.method, request.path):
            # Lost: never applied, never answered; the connection ends at reset().
            await self.faults.swallow()
            connection.reset(request)
            return connection.reset_response()
        origin.mark_api_request()
        try:
            # kube-apiserver resolves the request info before it authenticates, so even
            # a 401's audit record names the verb and the object.
            ctx.info = parse_request_info(request.method, request.path, dict(request.query))
            if ctx.info.resource_request:
                ctx.object_ref = self._object_ref(ctx.info)
            ctx.ident = self._authenticate(request)
            self._impersonate(ctx)
            self._authorize(ctx)
            exempt = exempt_from_faults(request.path)
            if self.faults.latency and not exempt:
                await asyncio.sleep(self.faults.latency)
            failure = self.faults.request_failure(request.path)
            if failure is not None and failure.reset:
                # Lost before any answer: no audit record, as when the network drops it.
                ctx.audited = True
                connection.reset(request)
                return connection.reset_response()
            if failure is not None:
                raise errors.from_code(failure.code, failure.retry_after)
            resp = await self._dispatch(ctx)
        except ApiError as err:
            resp = self._error_response(ctx, err)
        except (ConnectionResetError, asyncio.CancelledError):
            self._complete_audit(ctx)
            raise
        except Exception as exc:  # a bug: answer as kube-apiserver does, keep serving
            log.exception("simulated API server failed on %s %s", request.method, request.path)
            resp = self._error_response(ctx, errors.internal_error(str(exc) or type(exc).__name__))
        self._complete_audit(ctx)
        return resp

    def _complete_audit(self, ctx: Ctx) -> None:
        """The request's last audit record: `ResponseComplete` (after `ResponseStarted`
        for a long-running one), unless a stage already ended its record."""
        if not ctx.audited:
            self._emit_audit(ctx)

    def _error_response(self, ctx: Ctx, err: ApiError) -> web.Response:
        ctx.code = err.code
        ctx.response_status = err.status
        ctx.response_object = err.status
        if err.plain_text is not None:
            # API Priority and Fairness answers 429 with Go's http.Error: plain text.
            resp = web.Response(text=err.plain_text + "\n", status=err.code)
            resp.headers["Content-Type"] = "text/plain; charset=utf-8"
            resp.headers["X-Content-Type-Options"] = "nosniff"
        else:
            resp = web.Response(body=dumps(err.status), status=err.code, content_type=JSON)
        for key, value in err.headers.items():
            resp.headers[key] = value
        return resp

    async def _sim_control(self, request: web.Request) -> web.Response:
        """`/_sim/faults`: read (GET) or change (POST) the injected faults; admin only."""
        header = request.headers.get("Authorization", "")
        ident = (
            self.auth.authenticate(header[7:].strip()) if header[:7].lower() == "bearer " else None
        )
        if ident is None:
            err = errors.unauthorized()
            return web.Response(body=dumps(err.status), status=401, content_type=JSON)
        if not ident.privileged:
            err = errors.forbidden(
                f'forbidden: User "{ident.username}" cannot {request.method.lower()} '
                f'path "{request.path}"',
                None,
                "",
                "",
                "",
            )
            return web.Response(body=dumps(err.status), status=403, content_type=JSON)
        if request.path != "/_sim/faults":
            err = errors.path_not_found()
            return web.Response(body=dumps(err.status), status=404, content_type=JSON)
        if request.method == "GET":
            return web.Response(body=dumps(self.faults.state()), content_type=JSON)
        if request.method != "POST":
            err = errors.method_not_allowed()
            return web.Response(body=dumps(err.status), status=405, content_type=JSON)
        try:
            settings = orjson.loads(await request.read() or b"{}")
            if not isinstance(settings, dict):
                raise ValueError("fault settings must be a JSON object")
            state = self.faults.update(settings)
        except (ValueError, orjson.JSONDecodeError) as exc:
            err = errors.bad_request(str(exc))
            return web.Response(body=dumps(err.status), status=400, content_type=JSON)
        return web.Response(body=dumps(state), content_type=JSON)

    # ------------------------------------------------------------------ routing

    async def _dispatch(self, ctx: Ctx) -> web.StreamResponse:
        info = ctx.info
        assert info is not None
        if not info.resource_request:
            return await self._non_resource(ctx)
        rt = info.rt
        if rt is None:
            raise errors.path_not_found()
        if info.namespace and not rt.namespaced and rt.resource != "namespaces":
            raise errors.path_not_found()
        if info.subresource:
            sub = rt.subresource(info.subresource)
            if sub is None:
                raise errors.path_not_found()
            if info.verb not in sub.verbs:
                raise errors.method_not_allowed()
            return await self._subresource(ctx, rt)
        if info.verb not in rt.verbs or (info.verb in ("get",) and not rt.stored):
            raise errors.method_not_allowed()
        if not rt.stored:
            return await self._review(ctx, rt)
        if info.verb == "get":
            return self._get(ctx, rt)
        if info.verb == "list":
            return self._list(ctx, rt)
        if info.verb == "watch":
            return await self._watch(ctx, rt)
        if info.verb == "create":
            if info.name:
                raise errors.method_not_allowed()
            return await self._create(ctx, rt)
        if info.verb == "update":
            return await self._update(ctx, rt)
        if info.verb == "patch":
            return await self._patch(ctx, rt)
        if info.verb == "delete":
            return await self._delete(ctx, rt)
        if info.verb == "deletecollection":
            return await self._delete_collection(ctx, rt)
        raise errors.method_not_allowed()

    async def _non_resource(self, ctx: Ctx) -> web.StreamResponse:
        request = ctx.request
        path = request.path.rstrip("/") or "/"
        if request.method not in ("GET", "HEAD"):
            raise errors.method_not_allowed()
        accept = request.headers.get("Accept", "")
        if path == "/version":
            return self._json(ctx, discovery.VERSION_INFO)
        if path in ("/healthz", "/livez", "/readyz"):
            return web.Response(text="ok", content_type="text/plain")
        if path in ("/api", "/apis"):
            version = discovery.wants_aggregated(accept)
            if version is not None:
                body = discovery.aggregated(core=path == "/api", version=version)
                resp = web.Response(body=dumps(body))
                resp.headers["Content-Type"] = discovery.AGGREGATED_TYPE.format(version=version)
                resp.headers["Vary"] = "Accept"
                return resp
            if path == "/api":
                return self._json(ctx, discovery.api_versions(self.server_address))
            return self._json(ctx, discovery.api_group_list())
        segs = path.strip("/").split("/")
        if segs[0] == "api" and len(segs) == 2:
            body = discovery.api_resource_list("", segs[1])
            if body is not None:
                return self._json(ctx, body)
        if segs[0] == "apis" and len(segs) == 2:
            body = discovery.api_group(segs[1])
            if body is not None:
                return self._json(ctx, body)
        if segs[0] == "apis" and len(segs) == 3:
            body = discovery.api_resource_list(segs[1], segs[2])
            if body is not None:
                return self._json(ctx, body)
        if segs[0] == "openapi":
            data = openapi.document(path)
            if data is not None:
                resp = web.Response(body=data, content_type=JSON)
                if "hash" in request.query:
                    resp.headers["Cache-Control"] = "public, immutable"
                return resp
        raise errors.path_not_found()
