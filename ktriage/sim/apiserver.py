"""The simulated Kubernetes API server: HTTP on loopback, spoken closely enough to
kube-apiserver that the official `kubernetes` client and `kubectl` work unchanged.

One request goes through the steps kube-apiserver takes: authentication (bearer
token), request info (verb, resource, namespace, name from the URL), authorization,
the injected faults, the handler, and one audit event. Objects live in the
`ClusterStore`; watches and `logs -f` stream from its change and log feeds.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import unquote

import orjson
import yaml
from aiohttp import web

from ktriage.sim import discovery, errors, openapi, patch, protobuf, schema, tables
from ktriage.sim.audit import AuditWriter
from ktriage.sim.auth import Attributes, Auth, Decision, Identity, forbidden_message
from ktriage.sim.clock import SimClock
from ktriage.sim.errors import ApiError
from ktriage.sim.faults import Faults
from ktriage.sim.resources import ResourceType, lookup
from ktriage.sim.selectors import SelectorError, matcher
from ktriage.sim.store import AlreadyExists, Change, ClusterStore, Conflict, Expired, deep_copy
from ktriage.sim.timefmt import parse_rfc3339, rfc3339, rfc3339_nano

log = logging.getLogger("ktriage.sim")

JSON = "application/json"
PATCH_TYPES = {
    "application/strategic-merge-patch+json",
    "application/merge-patch+json",
    "application/json-patch+json",
    "application/apply-patch+yaml",
    "application/apply-patch+cbor",
}
LONG_RUNNING_SUBRESOURCES = {"exec", "attach", "portforward", "proxy"}
DEFAULT_WATCH_TIMEOUT = 1800.0
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_GENERATE_CHARS = "bcdfghjklmnpqrstvwxz2456789"
NAMESPACE_MISMATCH = (
    "the namespace of the provided object does not match the namespace sent on the request"
)
DNS_LABEL_MESSAGE = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
    "and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', "
    "regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)
DNS_SUBDOMAIN_MESSAGE = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' "
    "or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex "
    "used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)


def _dumps(obj: Any) -> bytes:
    return orjson.dumps(obj)


def _truthy(value: str | None) -> bool:
    return value is not None and value.lower() in ("1", "true", "yes", "")


@dataclass
class RequestInfo:
    resource_request: bool
    verb: str
    path: str
    group: str = ""
    version: str = ""
    resource: str = ""
    subresource: str = ""
    namespace: str = ""
    name: str = ""
    rt: ResourceType | None = None

    def attributes(self) -> Attributes:
        return Attributes(
            verb=self.verb,
            resource_request=self.resource_request,
            path=self.path,
            api_group=self.group,
            api_version=self.version,
            resource=self.resource,
            subresource=self.subresource,
            namespace=self.namespace,
            name=self.name,
        )


def parse_request_info(method: str, path: str, query: dict[str, str]) -> RequestInfo:
    """Verb and resource attributes of a request, as kube-apiserver's RequestInfoFactory."""
    segs = [unquote(s) for s in path.strip("/").split("/") if s]
    non_resource = RequestInfo(False, method.lower(), path)
    if not segs or segs[0] not in ("api", "apis"):
        return non_resource
    if segs[0] == "api":
        if len(segs) < 3:
            return non_resource
        group, version, rest = "", segs[1], segs[2:]
    else:
        if len(segs) < 4:
            return non_resource
        group, version, rest = segs[1], segs[2], segs[3:]
    info = RequestInfo(True, "", path, group=group, version=version)
    if rest[0] == "namespaces" and len(rest) > 1:
        info.namespace = rest[1]
        if len(rest) > 2 and rest[2] not in ("status", "finalize"):
            rest = rest[2:]
    info.resource = rest[0]
    if len(rest) > 1:
        info.name = rest[1]
    if len(rest) > 2:
        info.subresource = rest[2]
    info.rt = lookup(group, version, info.resource)
    watch = _truthy(query.get("watch")) if "watch" in query else False
    if method in ("GET", "HEAD"):
        info.verb = "watch" if watch else ("get" if info.name else "list")
    elif method == "POST":
        info.verb = "create"
    elif method == "PUT":
        info.verb = "update"
    elif method == "PATCH":
        info.verb = "patch"
    elif method == "DELETE":
        info.verb = "delete" if info.name else "deletecollection"
    else:
        info.verb = ""
    if info.verb in ("list", "watch") and not info.name:
        # A list narrowed to one name by fieldSelector authorizes as that name.
        for part in (query.get("fieldSelector") or "").split(","):
            if part.startswith("metadata.name="):
                info.name = part.split("=", 1)[1]
    return info


@dataclass
class Ctx:
    """One request on its way through the server (what the audit event needs)."""

    request: web.Request
    received: float
    ident: Identity | None = None
    impersonator: Identity | None = None  # who authenticated, when acting as `ident`
    info: RequestInfo | None = None
    decision: Decision | None = None
    code: int = 200
    response_status: dict | None = None
    request_object: Any = None
    response_object: Any = None
    object_ref: dict | None = None
    audited: bool = False
    warnings: list[str] = field(default_factory=list)

    @property
    def query(self) -> Any:
        return self.request.query


def _accept_table(accept: str) -> str | None:
    for part in accept.split(","):
        params = [p.strip() for p in part.split(";")]
        opts = dict(p.split("=", 1) for p in params[1:] if "=" in p)
        if opts.get("as") == "Table" and opts.get("g") == "meta.k8s.io":
            if opts.get("v") in ("v1", "v1beta1"):
                return opts["v"]
    return None


def _accept_partial(accept: str) -> bool:
    return "as=PartialObjectMetadata" in accept


def _accept_protobuf(accept: str) -> bool:
    first = accept.split(",")[0].split(";")[0].strip()
    return first == protobuf.CONTENT_TYPE


class APIServer:
    """The aiohttp application and its request pipeline."""

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
        try:
            ctx.ident = self._authenticate(request)
            ctx.info = parse_request_info(request.method, request.path, dict(request.query))
            self._impersonate(ctx)
            self._authorize(ctx)
            if self.faults.latency:
                await asyncio.sleep(self.faults.latency)
            failure = self.faults.request_failure(request.path)
            if failure is not None:
                raise errors.from_code(failure.code, failure.retry_after)
            resp = await self._dispatch(ctx)
        except ApiError as err:
            resp = self._error_response(ctx, err)
        except (ConnectionResetError, asyncio.CancelledError):
            raise
        except Exception as exc:  # a bug: answer as kube-apiserver does, keep serving
            log.exception("simulated API server failed on %s %s", request.method, request.path)
            resp = self._error_response(ctx, errors.internal_error(str(exc) or type(exc).__name__))
        if not ctx.audited:
            self._emit_audit(ctx)
        return resp

    def _error_response(self, ctx: Ctx, err: ApiError) -> web.Response:
        ctx.code = err.code
        ctx.response_status = err.status
        ctx.response_object = err.status
        resp = web.Response(body=_dumps(err.status), status=err.code, content_type=JSON)
        for key, value in err.headers.items():
            resp.headers[key] = value
        return resp

    def _authenticate(self, request: web.Request) -> Identity:
        header = request.headers.get("Authorization", "")
        if not header.lower().startswith("bearer "):
            raise errors.unauthorized()
        ident = self.auth.authenticate(header[7:].strip())
        if ident is None or self.faults.token_expired(ident.name, ident.username):
            raise errors.unauthorized()
        return ident

    def _impersonate(self, ctx: Ctx) -> None:
        """`Impersonate-User`/`-Group` headers (kubectl --as/--as-group): the requester
        needs the `impersonate` verb; the request then runs as the impersonated user."""
        headers = ctx.request.headers
        user = headers.get("Impersonate-User")
        groups = headers.getall("Impersonate-Group", [])
        if user is None:
            if groups:
                raise errors.internal_error(f"requested {groups} without impersonating a user")
            return
        real = ctx.ident
        assert real is not None
        targets = [("users", "", user)]
        if user.startswith("system:serviceaccount:") and user.count(":") == 3:
            _, _, sa_ns, sa_name = user.split(":")
            targets = [("serviceaccounts", sa_ns, sa_name)]
        targets += [("groups", "", g) for g in groups]
        for resource, namespace, name in targets:
            attrs = Attributes(
                verb="impersonate",
                resource_request=True,
                resource=resource,
                namespace=namespace,
                name=name,
                api_version="v1",
            )
            denied = self.faults.denied(real.name, real.username)
            decision = Decision(False, "") if denied else self.auth.authorize(real, attrs)
            if not decision.allowed:
                ctx.decision = decision
                message = forbidden_message(real.username, attrs)
                raise errors.forbidden(message, None, "", resource, name)
        known = self.auth.get(user)
        if known is not None and known.username == user:
            effective = known if not groups else replace(known, groups=tuple(groups))
        else:
            role = "admin" if "system:masters" in groups else "basic"
            effective = Identity(
                name=user, username=user, groups=tuple(groups), role=role, token=""
            )
        ctx.impersonator = real
        ctx.ident = effective

    def _authorize(self, ctx: Ctx) -> None:
        assert ctx.ident is not None and ctx.info is not None
        info = ctx.info
        if self.faults.denied(ctx.ident.name, ctx.ident.username):
            decision = Decision(False, "")
        else:
            decision = self.auth.authorize(ctx.ident, info.attributes())
        ctx.decision = decision
        if info.resource_request:
            ctx.object_ref = self._object_ref(info)
        if not decision.allowed:
            message = forbidden_message(ctx.ident.username, info.attributes())
            if decision.reason:
                message += f": {decision.reason}"
            raise errors.forbidden(message, info.rt, info.group, info.resource, info.name)

    @staticmethod
    def _object_ref(info: RequestInfo) -> dict:
        ref = {"resource": info.resource, "namespace": info.namespace, "name": info.name}
        if info.group:
            ref["apiGroup"] = info.group
        ref["apiVersion"] = info.version
        if info.subresource:
            ref["subresource"] = info.subresource
        return ref

    def _source_ips(self, request: web.Request) -> list[str]:
        ips: list[str] = []
        for part in request.headers.get("X-Forwarded-For", "").split(","):
            if part.strip():
                ips.append(part.strip())
        real = request.headers.get("X-Real-Ip", "").strip()
        if real and real not in ips:
            ips.append(real)
        remote = request.remote or ""
        if remote and remote not in ips:
            ips.append(remote)
        return ips

    def _emit_audit(self, ctx: Ctx, stage: str = "ResponseComplete") -> None:
        ctx.audited = True
        request = ctx.request
        info = ctx.info
        ident = ctx.ident
        level = "Metadata"
        if info is not None and info.group == "rbac.authorization.k8s.io":
            level = "RequestResponse"
        annotations: dict[str, str] | None
        if ctx.decision is None:
            annotations = {}
        else:
            annotations = {
                "authorization.k8s.io/decision": "allow" if ctx.decision.allowed else "forbid",
                "authorization.k8s.io/reason": ctx.decision.reason,
            }
        verb = info.verb if info is not None else request.method.lower()
        impersonated = None
        if ctx.impersonator is not None and ident is not None:
            impersonated = {"username": ident.username, "groups": ident.all_groups}
            ident = ctx.impersonator
        response_status = None
        if ctx.response_status is not None and ctx.code >= 300:
            response_status = ctx.response_status
        try:
            self.audit.emit(
                user=ident.username if ident else "",
                groups=ident.all_groups if ident else [],
                user_uid=ident.uid if ident else None,
                verb=verb,
                uri=request.raw_path,
                object_ref=ctx.object_ref,
                code=ctx.code,
                source_ips=self._source_ips(request),
                user_agent=request.headers.get("User-Agent", ""),
                level=level,
                request_object=ctx.request_object if isinstance(ctx.request_object, dict) else None,
                response_object=ctx.response_object,
                annotations=annotations,
                time=ctx.received,
                stage_time=self.clock.now(),
                stage=stage,
                response_status=response_status,
                impersonated_user=impersonated,
            )
        except (OSError, ValueError):
            log.exception("audit event could not be written")

    async def _sim_control(self, request: web.Request) -> web.Response:
        """`/_sim/faults`: read (GET) or change (POST) the injected faults; admin only."""
        header = request.headers.get("Authorization", "")
        ident = (
            self.auth.authenticate(header[7:].strip()) if header[:7].lower() == "bearer " else None
        )
        if ident is None:
            err = errors.unauthorized()
            return web.Response(body=_dumps(err.status), status=401, content_type=JSON)
        if ident.role != "admin":
            err = errors.forbidden(
                f'forbidden: User "{ident.username}" cannot {request.method.lower()} '
                f'path "{request.path}"',
                None,
                "",
                "",
                "",
            )
            return web.Response(body=_dumps(err.status), status=403, content_type=JSON)
        if request.path != "/_sim/faults":
            err = errors.path_not_found()
            return web.Response(body=_dumps(err.status), status=404, content_type=JSON)
        if request.method == "GET":
            return web.Response(body=_dumps(self.faults.state()), content_type=JSON)
        if request.method != "POST":
            err = errors.method_not_allowed()
            return web.Response(body=_dumps(err.status), status=405, content_type=JSON)
        try:
            settings = orjson.loads(await request.read() or b"{}")
            if not isinstance(settings, dict):
                raise ValueError("fault settings must be a JSON object")
            state = self.faults.update(settings)
        except (ValueError, orjson.JSONDecodeError) as exc:
            err = errors.bad_request(str(exc))
            return web.Response(body=_dumps(err.status), status=400, content_type=JSON)
        return web.Response(body=_dumps(state), content_type=JSON)

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
                resp = web.Response(body=_dumps(body))
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

    # ------------------------------------------------------------------ responses

    def _json(self, ctx: Ctx, body: Any, status: int = 200) -> web.Response:
        ctx.code = status
        resp = web.Response(body=_dumps(body), status=status, content_type=JSON)
        for warning in ctx.warnings:
            resp.headers.add("Warning", f'299 - "{_escape(warning)}"')
        return resp

    def _object_response(
        self, ctx: Ctx, rt: ResourceType, obj: dict, status: int = 200
    ) -> web.Response:
        accept = ctx.request.headers.get("Accept", "")
        table_version = _accept_table(accept)
        if table_version and ctx.info is not None and ctx.info.verb == "get":
            body = tables.table(
                rt.api_version,
                rt.kind,
                [obj],
                self.clock.now(),
                resource_version=None,
                include=ctx.query.get("includeObject", "Metadata"),
            )
            body["apiVersion"] = f"meta.k8s.io/{table_version}"
            return self._json(ctx, body, status)
        if _accept_partial(accept) and ctx.info is not None and ctx.info.verb == "get":
            return self._json(ctx, tables.partial_metadata(obj), status)
        ctx.response_object = obj
        return self._json(ctx, obj, status)

    def _filters(self, ctx: Ctx, rt: ResourceType) -> Callable[[dict], bool] | None:
        try:
            return matcher(rt, ctx.query.get("labelSelector"), ctx.query.get("fieldSelector"))
        except SelectorError as exc:
            raise errors.bad_request(str(exc)) from None

    # ------------------------------------------------------------------ read

    def _get_stored(self, rt: ResourceType, namespace: str, name: str) -> dict:
        obj = self.store.peek(rt.api_version, rt.kind, namespace if rt.namespaced else None, name)
        if obj is None:
            raise errors.not_found(rt, name)
        return obj

    def _get(self, ctx: Ctx, rt: ResourceType) -> web.Response:
        info = ctx.info
        assert info is not None
        obj = self._get_stored(rt, info.namespace, info.name)
        return self._object_response(ctx, rt, obj)

    def _list(self, ctx: Ctx, rt: ResourceType) -> web.Response:
        info = ctx.info
        assert info is not None
        match = self._filters(ctx, rt)
        namespace = info.namespace if rt.namespaced and info.namespace else None
        objs, rv = self.store.snapshot(rt.api_version, rt.kind, namespace)
        if match is not None:
            objs = [o for o in objs if match(o)]
        list_meta: dict[str, Any] = {"resourceVersion": str(rv)}
        start = ctx.query.get("continue")
        if start:
            key = _decode_continue(start)
            objs = [o for o in objs if _sort_key(o) > key]
        limit = ctx.query.get("limit")
        if limit:
            try:
                n = int(limit)
            except ValueError:
                raise errors.bad_request(f'limit: Invalid value: "{limit}"') from None
            if n > 0 and len(objs) > n:
                rest = len(objs) - n
                objs = objs[:n]
                list_meta["continue"] = _encode_continue(rv, _sort_key(objs[-1]))
                list_meta["remainingItemCount"] = rest
        accept = ctx.request.headers.get("Accept", "")
        table_version = _accept_table(accept)
        if table_version:
            body = tables.table(
                rt.api_version,
                rt.kind,
                objs,
                self.clock.now(),
                include=ctx.query.get("includeObject", "Metadata"),
                list_meta=list_meta,
            )
            body["apiVersion"] = f"meta.k8s.io/{table_version}"
            return self._json(ctx, body)
        if _accept_partial(accept):
            body = {
                "kind": "PartialObjectMetadataList",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": list_meta,
                "items": [tables.partial_metadata(o) for o in objs],
            }
            return self._json(ctx, body)
        items = [{k: v for k, v in o.items() if k not in ("apiVersion", "kind")} for o in objs]
        body = {
            "kind": rt.list_kind,
            "apiVersion": rt.api_version,
            "metadata": list_meta,
            "items": items,
        }
        return self._json(ctx, body)

    # ------------------------------------------------------------------ watch

    async def _watch(self, ctx: Ctx, rt: ResourceType) -> web.StreamResponse:
        info = ctx.info
        assert info is not None
        q = ctx.query
        match = self._filters(ctx, rt)
        namespace = info.namespace if rt.namespaced and info.namespace else None
        if info.name and "fieldSelector" not in q:
            # GET .../pods/x?watch=1: the same as fieldSelector=metadata.name=x
            name = info.name

            def by_name(obj: dict, inner: Callable[[dict], bool] | None = match) -> bool:
                return obj["metadata"].get("name") == name and (inner is None or inner(obj))

            match = by_name

        def visible(obj: dict | None) -> bool:
            if obj is None:
                return False
            if namespace is not None and obj["metadata"].get("namespace") != namespace:
                return False
            return match is None or match(obj)

        try:
            timeout = float(q.get("timeoutSeconds") or DEFAULT_WATCH_TIMEOUT)
        except ValueError:
            raise errors.bad_request("timeoutSeconds: invalid value") from None
        bookmarks = _truthy(q.get("allowWatchBookmarks")) if "allowWatchBookmarks" in q else False
        send_initial = q.get("sendInitialEvents", "").lower() == "true"
        rv_param = q.get("resourceVersion", "")
        if send_initial and not bookmarks:
            raise errors.ApiError(
                errors.status(
                    422,
                    "Invalid",
                    'ListOptions.meta.k8s.io "" is invalid: allowWatchBookmarks: Required value: '
                    "allowWatchBookmarks must be set to true when sendInitialEvents is set",
                )
            )
        table_version = _accept_table(ctx.request.headers.get("Accept", ""))
        include = q.get("includeObject", "Metadata")

        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Change | None] = asyncio.Queue()

        def listener(change: Change) -> None:
            _hand_over(loop, queue, change)

        def close() -> None:
            _hand_over(loop, queue, None)

        initial: list[dict] = []
        expired_message: str | None = None
        unsubscribe: Callable[[], None] = lambda: None  # noqa: E731
        last_rv = self.store.resource_version
        if self.faults.take_watch_expiry():
            expired_message = f"too old resource version: {rv_param or 0} ({last_rv})"
        elif rv_param in ("", "0") or send_initial:
            objs, last_rv, unsubscribe = self.store.watch_state(
                rt.api_version, rt.kind, namespace, listener
            )
            if rv_param == "" or rv_param == "0" or send_initial:
                initial = [o for o in objs if visible(o)]
        else:
            try:
                since = int(rv_param)
            except ValueError:
                raise errors.bad_request(
                    f'resourceVersion: Invalid value: "{rv_param}": strconv.ParseUint: '
                    f'parsing "{rv_param}": invalid syntax'
                ) from None
            try:
                backlog, unsubscribe = self.store.watch(rt.api_version, rt.kind, since, listener)
            except Expired as exc:
                expired_message = str(exc)
            else:
                last_rv = max(since, self.store.oldest_resource_version)
                for change in backlog:
                    queue.put_nowait(change)

        resp = web.StreamResponse(status=200)
        resp.content_type = JSON
        resp.enable_chunked_encoding()
        ctx.code = 200
        unregister_cut = self.faults.register_watch(close)
        self._streams.add(close)
        sent = 0
        first_table = True

        def encode(event_type: str, obj: dict) -> bytes:
            nonlocal first_table
            if table_version and event_type not in ("ERROR", "BOOKMARK"):
                body = tables.table(
                    rt.api_version,
                    rt.kind,
                    [obj],
                    self.clock.now(),
                    include=include,
                    with_columns=first_table,
                )
                body["apiVersion"] = f"meta.k8s.io/{table_version}"
                if not first_table:
                    del body["columnDefinitions"]
                first_table = False
                obj = body
            return _dumps({"type": event_type, "object": obj}) + b"\n"

        try:
            await resp.prepare(ctx.request)
            self._emit_audit(ctx, stage="ResponseStarted")
            if expired_message is not None:
                await resp.write(encode("ERROR", errors.expired(expired_message)))
                return resp
            if self._stopping:
                return resp
            for obj in initial:
                await resp.write(encode("ADDED", obj))
                sent += 1
                if self.faults.cut_after_events and sent >= self.faults.cut_after_events:
                    return resp
            if send_initial:
                await resp.write(encode("BOOKMARK", self._bookmark(rt, last_rv, initial_end=True)))
            deadline = time.monotonic() + timeout
            while True:
                await self.faults.hold()
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    if bookmarks:
                        await resp.write(encode("BOOKMARK", self._bookmark(rt, last_rv)))
                    break
                try:
                    change = await asyncio.wait_for(
                        queue.get(), timeout=min(remaining, self.bookmark_interval)
                    )
                except TimeoutError:
                    await self.faults.hold()
                    if bookmarks and deadline - time.monotonic() > 0:
                        await resp.write(encode("BOOKMARK", self._bookmark(rt, last_rv)))
                    continue
                if change is None:
                    break
                await self.faults.hold()
                if change.rv <= last_rv:
                    continue
                last_rv = change.rv
                event = _watch_event(change, visible)
                if event is None:
                    continue
                await resp.write(encode(*event))
                sent += 1
                if self.faults.cut_after_events and sent >= self.faults.cut_after_events:
                    break
        except (ConnectionResetError, RuntimeError):
            pass
        finally:
            unsubscribe()
            unregister_cut()
            self._streams.discard(close)
        return resp

    @staticmethod
    def _bookmark(rt: ResourceType, rv: int, *, initial_end: bool = False) -> dict:
        meta: dict[str, Any] = {"resourceVersion": str(rv), "creationTimestamp": None}
        if initial_end:
            meta["annotations"] = {"k8s.io/initial-events-end": "true"}
        return {"kind": rt.kind, "apiVersion": rt.api_version, "metadata": meta}

    # ------------------------------------------------------------------ write

    async def _read_body(self, ctx: Ctx) -> Any:
        request = ctx.request
        data = await request.read()
        ctype = request.content_type
        if ctype == protobuf.CONTENT_TYPE:
            try:
                return protobuf.decode(data)
            except protobuf.UnsupportedKind:
                raise errors.unsupported_media_type(ctype) from None
            except protobuf.ProtobufError as exc:
                raise errors.bad_request(str(exc)) from None
        if not data:
            return None
        if ctype in ("application/yaml", "application/apply-patch+yaml", "text/yaml"):
            try:
                return yaml.safe_load(data)
            except yaml.YAMLError as exc:
                raise errors.bad_request(f"error decoding YAML: {exc}") from None
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise errors.bad_request(
                f"couldn't get version/kind; json parse error: {exc}"
            ) from None

    def _check_type(self, rt: ResourceType, obj: Any) -> dict:
        if not isinstance(obj, dict):
            raise errors.bad_request(f"the body of the request must be a {rt.kind} object")
        api_version = obj.get("apiVersion")
        kind = obj.get("kind")
        if api_version and api_version != rt.api_version:
            raise errors.bad_request(
                f"the API version in the data ({api_version}) does not match the expected "
                f"API version ({rt.api_version})"
            )
        if kind and kind != rt.kind:
            raise errors.bad_request(
                f'{kind} in version "{rt.version}" cannot be handled as a {rt.kind}: '
                f'no kind "{kind}" is registered for version "{rt.api_version}"'
            )
        obj["apiVersion"], obj["kind"] = rt.api_version, rt.kind
        if not isinstance(obj.get("metadata"), dict):
            obj["metadata"] = {}
        return obj

    def _field_validation(self, ctx: Ctx, obj: dict) -> None:
        """Drop unknown fields; Strict fails on them, Warn (the default) warns."""
        mode = ctx.query.get("fieldValidation", "Warn")
        if mode not in ("Strict", "Warn", "Ignore"):
            raise errors.bad_request(
                f'fieldValidation: Unsupported value: "{mode}": '
                'supported values: "Ignore", "Strict", "Warn"'
            )
        unknown = schema.unknown_fields(obj, prune=True)
        if not unknown:
            return
        if mode == "Strict":
            raise errors.bad_request(
                "strict decoding error: " + ", ".join(f'unknown field "{u}"' for u in unknown)
            )
        if mode == "Warn":
            ctx.warnings.extend(f'unknown field "{u}"' for u in unknown)

    def _dry_run(self, ctx: Ctx) -> bool:
        values = ctx.query.getall("dryRun", [])
        for value in values:
            if value != "All":
                raise errors.bad_request(
                    f'dryRun: Unsupported value: "{value}": supported values: "All"'
                )
        return bool(values)

    def _validate(self, rt: ResourceType, obj: dict) -> None:
        meta = obj["metadata"]
        name = meta.get("name") or ""
        causes: list[tuple[str, str, str]] = []
        if rt.group == "rbac.authorization.k8s.io":
            if "/" in name or "%" in name or name in (".", ".."):
                causes.append(
                    (
                        "metadata.name",
                        "FieldValueInvalid",
                        f"Invalid value: \"{name}\": may not contain '/' or '%'",
                    )
                )
        elif rt.resource == "namespaces":
            if not _DNS_LABEL.match(name) or len(name) > 63:
                causes.append(
                    (
                        "metadata.name",
                        "FieldValueInvalid",
                        f'Invalid value: "{name}": {DNS_LABEL_MESSAGE}',
                    )
                )
        elif not _DNS_SUBDOMAIN.match(name) or len(name) > 253:
            causes.append(
                (
                    "metadata.name",
                    "FieldValueInvalid",
                    f'Invalid value: "{name}": {DNS_SUBDOMAIN_MESSAGE}',
                )
            )
        spec = obj.get("spec") if isinstance(obj.get("spec"), dict) else {}
        if rt.kind == "Pod" and rt.group == "":
            containers = spec.get("containers") or []
            if not containers:
                causes.append(("spec.containers", "FieldValueRequired", "Required value"))
            seen: set[str] = set()
            for i, c in enumerate(containers):
                cname = c.get("name") if isinstance(c, dict) else None
                if not cname:
                    causes.append(
                        (f"spec.containers[{i}].name", "FieldValueRequired", "Required value")
                    )
                elif cname in seen:
                    causes.append(
                        (
                            f"spec.containers[{i}].name",
                            "FieldValueDuplicate",
                            f'Duplicate value: "{cname}"',
                        )
                    )
                else:
                    seen.add(cname)
                if isinstance(c, dict) and not c.get("image"):
                    causes.append(
                        (f"spec.containers[{i}].image", "FieldValueRequired", "Required value")
                    )
        elif rt.kind in ("Deployment", "ReplicaSet", "DaemonSet"):
            if not spec.get("selector"):
                causes.append(("spec.selector", "FieldValueRequired", "Required value"))
            if not ((spec.get("template") or {}).get("spec") or {}).get("containers"):
                causes.append(
                    ("spec.template.spec.containers", "FieldValueRequired", "Required value")
                )
        elif rt.kind in ("RoleBinding", "ClusterRoleBinding"):
            ref = obj.get("roleRef") or {}
            if not ref.get("name"):
                causes.append(("roleRef.name", "FieldValueRequired", "Required value"))
            if ref.get("kind") not in ("Role", "ClusterRole"):
                causes.append(
                    (
                        "roleRef.kind",
                        "FieldValueNotSupported",
                        f'Unsupported value: "{ref.get("kind", "")}": '
                        'supported values: "ClusterRole", "Role"',
                    )
                )
        if causes:
            raise errors.invalid(rt, name, causes)

    def _check_namespace(self, ctx: Ctx, rt: ResourceType, obj: dict) -> str:
        info = ctx.info
        assert info is not None
        meta = obj["metadata"]
        if not rt.namespaced:
            meta.pop("namespace", None)
            return ""
        body_ns = meta.get("namespace")
        if body_ns and info.namespace and body_ns != info.namespace:
            raise errors.bad_request(NAMESPACE_MISMATCH)
        namespace = info.namespace or body_ns or ""
        if not namespace:
            raise errors.bad_request("the namespace of the provided object must be set")
        meta["namespace"] = namespace
        return namespace

    async def _create(self, ctx: Ctx, rt: ResourceType, body: Any = None) -> web.Response:
        if body is None:
            body = await self._read_body(ctx)
        ctx.request_object = body
        obj = self._check_type(rt, body)
        self._field_validation(ctx, obj)
        namespace = self._check_namespace(ctx, rt, obj)
        meta = obj["metadata"]
        if meta.get("resourceVersion"):
            raise errors.internal_error(
                "resourceVersion should not be set on objects to be created"
            )
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + "".join(random.choices(_GENERATE_CHARS, k=5))
        if not meta.get("name"):
            raise errors.invalid(
                rt,
                "",
                [
                    (
                        "metadata.name",
                        "FieldValueRequired",
                        "Required value: name or generateName is required",
                    )
                ],
            )
        for key in (
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "managedFields",
            "selfLink",
            "generation",
        ):
            meta.pop(key, None)
        if rt.has_status:
            obj.pop("status", None)
        self._validate(rt, obj)
        name = meta["name"]
        if ctx.object_ref is not None:
            ctx.object_ref["name"] = name
        if namespace and rt.resource != "namespaces":
            ns = self.store.peek("v1", "Namespace", None, namespace)
            if ns is None:
                raise errors.namespace_not_found(namespace)
            if (ns.get("metadata") or {}).get("deletionTimestamp"):
                raise errors.ApiError(
                    errors.status(
                        403,
                        "Forbidden",
                        f'{rt.group_resource} "{name}" is forbidden: unable to create new '
                        f"content in namespace {namespace} because it is being terminated",
                        {"name": name, "kind": rt.resource},
                    )
                )
        if self._dry_run(ctx):
            if self.store.peek(rt.api_version, rt.kind, namespace or None, name) is not None:
                raise errors.already_exists(rt, name)
            self.store.prepare_new(obj, None)
            return self._object_response(ctx, rt, obj, 201)
        try:
            stored = self.store.create_checked(obj)
        except AlreadyExists:
            raise errors.already_exists(rt, name) from None
        return self._object_response(ctx, rt, stored, 201)

    def _name_check(self, ctx: Ctx, obj: dict) -> None:
        info = ctx.info
        assert info is not None
        body_name = obj["metadata"].get("name")
        if body_name and body_name != info.name:
            raise errors.bad_request(
                f"the name of the object ({body_name}) does not match the name on the URL "
                f"({info.name})"
            )
        obj["metadata"]["name"] = info.name

    def _merge_status_scope(self, rt: ResourceType, old: dict, new: dict, subresource: str) -> dict:
        """The main resource cannot change status, /status changes only status."""
        if subresource == "status":
            merged = deep_copy(old)
            if "status" in new:
                merged["status"] = new["status"]
            else:
                merged.pop("status", None)
            for key in ("labels", "annotations"):
                if key in new["metadata"]:
                    merged["metadata"][key] = new["metadata"][key]
            return merged
        if subresource == "ephemeralcontainers":
            merged = deep_copy(old)
            merged.setdefault("spec", {})["ephemeralContainers"] = (new.get("spec") or {}).get(
                "ephemeralContainers", []
            )
            return merged
        if rt.has_status:
            if "status" in old:
                new["status"] = deep_copy(old["status"])
            else:
                new.pop("status", None)
        return new

    def _store_update(self, ctx: Ctx, rt: ResourceType, new: dict, expected_rv: str | None) -> dict:
        info = ctx.info
        assert info is not None
        if self._dry_run(ctx):
            old = self._get_stored(rt, info.namespace, info.name)
            if expected_rv and expected_rv != old["metadata"].get("resourceVersion"):
                raise errors.conflict(rt, info.name)
            self.store.prepare_new(new, old)
            new["metadata"]["resourceVersion"] = old["metadata"].get("resourceVersion")
            return new
        self._record_manager(ctx, rt, new)
        try:
            return self.store.replace_checked(new, expected_rv)
        except KeyError:
            raise errors.not_found(rt, info.name) from None
        except Conflict:
            raise errors.conflict(rt, info.name) from None

    def _record_manager(self, ctx: Ctx, rt: ResourceType, new: dict) -> None:
        """Keep managedFields as kube-apiserver does: who last wrote the object, and
        when (the only time a spec change such as a cordon leaves on it)."""
        info = ctx.info
        assert info is not None
        try:
            old = self._get_stored(rt, info.namespace, info.name)
        except ApiError:
            return
        agent = ctx.request.headers.get("User-Agent", "")
        manager = ctx.query.get("fieldManager") or agent.split("/", 1)[0] or "unknown"
        subresource = info.subresource or ""
        entries = [
            e
            for e in old["metadata"].get("managedFields") or []
            if not (e.get("manager") == manager and e.get("subresource", "") == subresource)
        ]
        entry = {
            "manager": manager,
            "operation": "Update",
            "apiVersion": new.get("apiVersion", "v1"),
            "time": rfc3339(self.clock.now()),
            "fieldsType": "FieldsV1",
            "fieldsV1": {},
        }
        if subresource:
            entry["subresource"] = subresource
        new["metadata"]["managedFields"] = [*entries, entry]

    async def _update(self, ctx: Ctx, rt: ResourceType, subresource: str = "") -> web.Response:
        info = ctx.info
        assert info is not None
        body = await self._read_body(ctx)
        ctx.request_object = body
        obj = self._check_type(rt, body)
        self._field_validation(ctx, obj)
        self._check_namespace(ctx, rt, obj)
        self._name_check(ctx, obj)
        old = self._get_stored(rt, info.namespace, info.name)
        expected = obj["metadata"].get("resourceVersion")
        if expected and expected != old["metadata"].get("resourceVersion"):
            raise errors.conflict(rt, info.name)
        new = self._merge_status_scope(rt, old, obj, subresource)
        for key in ("managedFields", "selfLink"):
            new["metadata"].pop(key, None)
        self._validate(rt, new)
        stored = self._store_update(ctx, rt, new, expected)
        return self._object_response(ctx, rt, stored)

    async def _patch(self, ctx: Ctx, rt: ResourceType, subresource: str = "") -> web.Response:
        info = ctx.info
        assert info is not None
        ctype = ctx.request.content_type
        if ctype not in PATCH_TYPES:
            raise ApiError(
                errors.status(
                    415,
                    "UnsupportedMediaType",
                    "the body of the request was in an unknown format - accepted media types "
                    f"include: {', '.join(sorted(PATCH_TYPES - {'application/apply-patch+cbor'}))}",
                    {},
                )
            )
        if ctype == "application/apply-patch+cbor":
            raise errors.unsupported_media_type(ctype)
        body = await self._read_body(ctx)
        ctx.request_object = body if isinstance(body, dict) else None
        if body is None:
            raise errors.bad_request("the body of the request was empty")
        old = self.store.peek(
            rt.api_version, rt.kind, info.namespace if rt.namespaced else None, info.name
        )
        if ctype == "application/apply-patch+yaml":
            if not ctx.query.get("fieldManager"):
                raise ApiError(
                    errors.status(
                        422,
                        "Invalid",
                        'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: '
                        "is required for apply patch",
                        {
                            "group": "meta.k8s.io",
                            "kind": "PatchOptions",
                            "causes": [
                                {
                                    "reason": "FieldValueRequired",
                                    "message": "Required value: is required for apply patch",
                                    "field": "fieldManager",
                                }
                            ],
                        },
                    )
                )
            if old is None:
                if subresource:
                    raise errors.not_found(rt, info.name)
                obj = self._check_type(rt, body)
                obj["metadata"].setdefault("name", info.name)
                self._name_check(ctx, obj)
                return await self._create(ctx, rt, body=obj)
        if old is None:
            raise errors.not_found(rt, info.name)
        if isinstance(body, dict) and ctype == "application/apply-patch+yaml":
            body = self._check_type(rt, dict(body))
        patched = self._check_type(rt, _apply_patch(ctype, old, body))
        self._field_validation(ctx, patched)
        meta = patched["metadata"]
        if meta.get("name") != info.name:
            raise errors.bad_request(
                f"the name of the object ({meta.get('name')}) does not match the name on the "
                f"URL ({info.name})"
            )
        if rt.namespaced and meta.get("namespace") != info.namespace:
            raise errors.bad_request(NAMESPACE_MISMATCH)
        expected = meta.get("resourceVersion")
        if expected == old["metadata"].get("resourceVersion"):
            expected = None
        elif expected:
            raise errors.conflict(rt, info.name)
        new = self._merge_status_scope(rt, old, patched, subresource)
        new["metadata"].pop("managedFields", None)
        self._validate(rt, new)
        stored = self._store_update(ctx, rt, new, old["metadata"].get("resourceVersion"))
        return self._object_response(ctx, rt, stored)

    async def _delete_options(self, ctx: Ctx) -> dict:
        body = await self._read_body(ctx)
        return body if isinstance(body, dict) else {}

    async def _delete(self, ctx: Ctx, rt: ResourceType) -> web.Response:
        info = ctx.info
        assert info is not None
        options = await self._delete_options(ctx)
        ctx.request_object = options or None
        old = self._get_stored(rt, info.namespace, info.name)
        pre = options.get("preconditions") or {}
        if pre.get("uid") and pre["uid"] != old["metadata"].get("uid"):
            raise ApiError(
                errors.status(
                    409,
                    "Conflict",
                    f'Operation cannot be fulfilled on {rt.group_resource} "{info.name}": '
                    f"Precondition failed: UID in precondition: {pre['uid']}, "
                    f"UID in object meta: {old['metadata'].get('uid')}",
                    {
                        "name": info.name,
                        **({"group": rt.group} if rt.group else {}),
                        "kind": rt.resource,
                    },
                )
            )
        if pre.get("resourceVersion") and pre["resourceVersion"] != old["metadata"].get(
            "resourceVersion"
        ):
            raise errors.conflict(rt, info.name)
        dry_run = self._dry_run(ctx) or "All" in (options.get("dryRun") or [])
        gone = deep_copy(old)
        if not dry_run:
            namespace = info.namespace if rt.namespaced else None
            removed = self.store.delete(rt.api_version, rt.kind, namespace, info.name)
            if removed is None:
                raise errors.not_found(rt, info.name)
            gone = removed
        if rt.kind in ("Pod", "Namespace") and rt.group == "":
            # Graceful deletion: the API answers with the object marked for deletion.
            gone["metadata"]["deletionTimestamp"] = rfc3339(self.clock.now())
            if rt.kind == "Pod":
                grace = options.get("gracePeriodSeconds")
                if grace is None:
                    grace = (gone.get("spec") or {}).get("terminationGracePeriodSeconds", 30)
                gone["metadata"]["deletionGracePeriodSeconds"] = grace
            else:
                gone["status"] = {"phase": "Terminating"}
            return self._object_response(ctx, rt, gone)
        details = {"name": info.name}
        if rt.group:
            details["group"] = rt.group
        details["kind"] = rt.resource
        details["uid"] = old["metadata"].get("uid", "")
        body = errors.success(details)
        ctx.response_object = body
        return self._json(ctx, body)

    async def _delete_collection(self, ctx: Ctx, rt: ResourceType) -> web.Response:
        info = ctx.info
        assert info is not None
        await self._delete_options(ctx)
        match = self._filters(ctx, rt)
        namespace = info.namespace if rt.namespaced and info.namespace else None
        objs, _ = self.store.snapshot(rt.api_version, rt.kind, namespace)
        targets = [o for o in objs if match is None or match(o)]
        deleted = []
        dry_run = self._dry_run(ctx)
        for obj in targets:
            meta = obj["metadata"]
            if dry_run:
                deleted.append(deep_copy(obj))
                continue
            gone = self.store.delete(rt.api_version, rt.kind, meta.get("namespace"), meta["name"])
            if gone is not None:
                deleted.append(gone)
        items = [{k: v for k, v in o.items() if k not in ("apiVersion", "kind")} for o in deleted]
        body = {
            "kind": rt.list_kind,
            "apiVersion": rt.api_version,
            "metadata": {"resourceVersion": str(self.store.resource_version)},
            "items": items,
        }
        return self._json(ctx, body)

    # ------------------------------------------------------------------ subresources

    async def _subresource(self, ctx: Ctx, rt: ResourceType) -> web.StreamResponse:
        info = ctx.info
        assert info is not None
        sub = info.subresource
        if sub in ("status", "ephemeralcontainers", "resize"):
            if info.verb == "get":
                return self._get(ctx, rt)
            scope = "status" if sub == "status" else sub
            if info.verb == "update":
                return await self._update(ctx, rt, scope)
            return await self._patch(ctx, rt, scope)
        if sub == "log":
            return await self._pod_log(ctx)
        if sub == "eviction":
            return await self._evict(ctx, rt)
        if sub == "token":
            return await self._token_request(ctx)
        if sub == "scale":
            return await self._scale(ctx, rt)
        if sub in LONG_RUNNING_SUBRESOURCES or sub == "binding":
            # Streams need kubelet; there is none. The request is still audited.
            self._get_stored(rt, info.namespace, info.name)
            if sub == "exec" and ctx.request.headers.get("Upgrade", "").lower() == "websocket":
                return await self._exec_websocket(ctx)
            if sub in ("exec", "attach", "portforward"):
                raise errors.bad_request("Upgrade request required")
            raise errors.service_unavailable(
                f'no endpoints available for {rt.resource} "{info.name}" in the simulated cluster'
            )
        if sub == "finalize":
            return await self._update(ctx, rt)
        raise errors.path_not_found()

    async def _scale(self, ctx: Ctx, rt: ResourceType) -> web.Response:
        """The scale subresource: reads and sets spec.replicas (no controller acts on it)."""
        info = ctx.info
        assert info is not None
        obj = self._get_stored(rt, info.namespace, info.name)
        scale = _scale_of(obj)
        if info.verb == "get":
            return self._json(ctx, scale)
        body = await self._read_body(ctx)
        ctx.request_object = body if isinstance(body, dict) else None
        if info.verb == "update":
            wanted = body if isinstance(body, dict) else {}
        else:
            wanted = _apply_patch(ctx.request.content_type, scale, body)
        replicas = (wanted.get("spec") or {}).get("replicas")
        if not isinstance(replicas, int) or replicas < 0:
            raise ApiError(
                errors.status(
                    422,
                    "Invalid",
                    f'Scale.autoscaling "{info.name}" is invalid: spec.replicas: Invalid value: '
                    f"{replicas}: must be greater than or equal to 0",
                )
            )
        new = deep_copy(obj)
        new.setdefault("spec", {})["replicas"] = replicas
        stored = self._store_update(ctx, rt, new, None)
        return self._json(ctx, _scale_of(stored))

    async def _evict(self, ctx: Ctx, rt: ResourceType) -> web.Response:
        info = ctx.info
        assert info is not None
        body = await self._read_body(ctx)
        ctx.request_object = body if isinstance(body, dict) else None
        self._get_stored(rt, info.namespace, info.name)
        if not self._dry_run(ctx):
            self.store.delete("v1", "Pod", info.namespace, info.name)
        out = errors.success()
        out["code"] = 201
        return self._json(ctx, out, 201)

    async def _token_request(self, ctx: Ctx) -> web.Response:
        info = ctx.info
        assert info is not None
        body = await self._read_body(ctx)
        rt = lookup("", "v1", "serviceaccounts")
        assert rt is not None
        self._get_stored(rt, info.namespace, info.name)
        username = f"system:serviceaccount:{info.namespace}:{info.name}"
        ident = self.auth.add(
            f"sa:{info.namespace}:{info.name}",
            username,
            ["system:serviceaccounts", f"system:serviceaccounts:{info.namespace}"],
            "basic",
        )
        spec = (body or {}).get("spec") or {}
        seconds = int(spec.get("expirationSeconds") or 3600)
        out = {
            "kind": "TokenRequest",
            "apiVersion": "authentication.k8s.io/v1",
            "metadata": {
                "name": info.name,
                "namespace": info.namespace,
                "creationTimestamp": rfc3339(self.clock.now()),
            },
            "spec": {
                "audiences": spec.get("audiences")
                or ["https://kubernetes.default.svc.cluster.local"],
                "expirationSeconds": seconds,
                "boundObjectRef": spec.get("boundObjectRef"),
            },
            "status": {
                "token": ident.token,
                "expirationTimestamp": rfc3339(self.clock.now() + seconds),
            },
        }
        return self._json(ctx, out, 201)

    async def _exec_websocket(self, ctx: Ctx) -> web.StreamResponse:
        """A `kubectl exec` session: no kubelet runs commands here, so the session says so
        on stderr and ends with a non-zero exit, as a missing binary would."""
        protocols = [
            p.strip() for p in ctx.request.headers.get("Sec-WebSocket-Protocol", "").split(",")
        ]
        supported = [p for p in protocols if p in ("v5.channel.k8s.io", "v4.channel.k8s.io")]
        ws = web.WebSocketResponse(protocols=supported[:1] or ["v4.channel.k8s.io"])
        await ws.prepare(ctx.request)
        ctx.code = 101
        self._emit_audit(ctx, stage="ResponseStarted")
        message = b"ktriage sim: this simulated cluster does not run containers\r\n"
        await ws.send_bytes(b"\x02" + message)
        status = {
            "metadata": {},
            "status": "Failure",
            "message": "command terminated with non-zero exit code: exit status 126",
            "reason": "NonZeroExitCode",
            "details": {"causes": [{"reason": "ExitCode", "message": "126"}]},
        }
        await ws.send_bytes(b"\x03" + _dumps(status))
        await ws.close()
        return ws

    # ------------------------------------------------------------------ logs

    async def _pod_log(self, ctx: Ctx) -> web.StreamResponse:
        info = ctx.info
        assert info is not None
        rt = lookup("", "v1", "pods")
        assert rt is not None
        pod = self._get_stored(rt, info.namespace, info.name)
        q = ctx.query
        spec = pod.get("spec") or {}
        names = [c.get("name") for c in spec.get("containers") or []]
        inits = [c.get("name") for c in spec.get("initContainers") or []]
        ephemerals = [c.get("name") for c in spec.get("ephemeralContainers") or []]
        container = q.get("container", "")
        if not container:
            if len(names) == 1:
                container = names[0]
            else:
                message = (
                    f"a container name must be specified for pod {info.name}, "
                    f"choose one of: [{' '.join(names)}]"
                )
                if inits:
                    message += f" or one of the init containers: [{' '.join(inits)}]"
                if ephemerals:
                    message += f" or one of the ephemeral containers: [{' '.join(ephemerals)}]"
                raise errors.bad_request(message)
        if container not in names + inits + ephemerals:
            raise errors.bad_request(f"container {container} is not valid for pod {info.name}")
        previous = _truthy(q.get("previous")) if "previous" in q else False
        follow = (_truthy(q.get("follow")) if "follow" in q else False) and not previous
        timestamps = _truthy(q.get("timestamps")) if "timestamps" in q else False
        try:
            tail = int(q["tailLines"]) if q.get("tailLines") else None
            limit = int(q["limitBytes"]) if q.get("limitBytes") else None
            since_seconds = int(q["sinceSeconds"]) if q.get("sinceSeconds") else None
        except ValueError:
            raise errors.bad_request("invalid log options") from None
        since: float | None = None
        if since_seconds is not None:
            if since_seconds < 1:
                raise errors.bad_request(
                    'PodLogOptions "" is invalid: sinceSeconds: Invalid value: must be greater '
                    "than 0"
                )
            since = self.clock.now() - since_seconds
        elif q.get("sinceTime"):
            try:
                since = parse_rfc3339(q["sinceTime"])
            except ValueError:
                raise errors.bad_request(f'sinceTime: Invalid value: "{q["sinceTime"]}"') from None
        if previous:
            lines = self.store.log_lines(info.namespace, info.name, container, previous=True)
            if lines is None:
                raise errors.bad_request(
                    f'previous terminated container "{container}" in pod "{info.name}" not found'
                )
        else:
            lines = self.store.log_lines(info.namespace, info.name, container)
            assert lines is not None
            waiting = _waiting_reason(pod, container)
            if waiting is not None and not lines:
                raise errors.bad_request(
                    f'container "{container}" in pod "{info.name}" is waiting to start: {waiting}'
                )

        def fmt(line: Any) -> bytes:
            text = line.text + "\n"
            if timestamps:
                text = rfc3339_nano(line.time) + " " + text
            return text.encode()

        def select(lines: list) -> list:
            if since is not None:
                lines = [line for line in lines if line.time >= since]
            if tail is not None:
                lines = lines[-tail:] if tail > 0 else []
            return lines

        if not follow:
            data = b"".join(fmt(line) for line in select(lines))
            if limit is not None:
                data = data[:limit]
            ctx.code = 200
            return web.Response(body=data, content_type="text/plain")

        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Any] = asyncio.Queue()

        def listener(line: Any) -> None:
            _hand_over(loop, queue, line)

        def close() -> None:
            _hand_over(loop, queue, None)

        current, unsubscribe = self.store.follow_log(info.namespace, info.name, container, listener)
        resp = web.StreamResponse(status=200)
        resp.content_type = "text/plain"
        resp.enable_chunked_encoding()
        ctx.code = 200
        self._streams.add(close)
        written = 0
        try:
            await resp.prepare(ctx.request)
            self._emit_audit(ctx, stage="ResponseStarted")
            if self._stopping:
                return resp
            pending = select(current)
            while True:
                for line in pending:
                    data = fmt(line)
                    if limit is not None and written + len(data) > limit:
                        await resp.write(data[: limit - written])
                        return resp
                    written += len(data)
                    await resp.write(data)
                item = await queue.get()
                if item is None:
                    break
                pending = [item]
        except (ConnectionResetError, RuntimeError):
            pass
        finally:
            unsubscribe()
            self._streams.discard(close)
        return resp

    # ------------------------------------------------------------------ reviews

    async def _review(self, ctx: Ctx, rt: ResourceType) -> web.Response:
        info = ctx.info
        assert info is not None and ctx.ident is not None
        if info.verb != "create":
            raise errors.method_not_allowed()
        body = await self._read_body(ctx)
        was_protobuf = ctx.request.content_type == protobuf.CONTENT_TYPE
        obj = self._check_type(rt, body if isinstance(body, dict) else {})
        if not was_protobuf:
            self._field_validation(ctx, obj)
        ctx.request_object = obj
        spec = obj.get("spec") or {}
        out: dict[str, Any] = {
            "kind": rt.kind,
            "apiVersion": rt.api_version,
            "metadata": {"creationTimestamp": None},
        }
        if rt.kind in (
            "SelfSubjectAccessReview",
            "SubjectAccessReview",
            "LocalSubjectAccessReview",
        ):
            who = ctx.ident
            if rt.kind != "SelfSubjectAccessReview":
                who = self._subject(spec)
                if rt.kind == "LocalSubjectAccessReview":
                    ns = (spec.get("resourceAttributes") or {}).get("namespace")
                    if ns != info.namespace:
                        raise errors.bad_request(
                            "spec.resourceAttributes.namespace must match namespace"
                        )
                    out["metadata"]["namespace"] = info.namespace
            status = self._access_review(who, spec)
            out["spec"] = spec
            out["status"] = status
        elif rt.kind == "SelfSubjectRulesReview":
            resource_rules, non_resource_rules = self.auth.rules(ctx.ident)
            out["spec"] = spec
            out["status"] = {
                "resourceRules": resource_rules,
                "nonResourceRules": non_resource_rules,
                "incomplete": False,
            }
        elif rt.kind == "SelfSubjectReview":
            out["status"] = {
                "userInfo": {
                    "username": ctx.ident.username,
                    "uid": ctx.ident.uid,
                    "groups": ctx.ident.all_groups,
                }
            }
        elif rt.kind == "TokenReview":
            token = spec.get("token", "")
            who = self.auth.authenticate(token)
            status: dict[str, Any] = {"authenticated": who is not None}
            if who is not None and not self.faults.token_expired(who.name, who.username):
                status["user"] = {
                    "username": who.username,
                    "uid": who.uid,
                    "groups": who.all_groups,
                }
                status["audiences"] = spec.get("audiences") or [
                    "https://kubernetes.default.svc.cluster.local"
                ]
            else:
                status = {"authenticated": False, "error": "invalid bearer token"}
            out["spec"] = {"token": spec.get("token", "")}
            out["status"] = status
        ctx.code = 201
        ctx.response_object = out
        accept = ctx.request.headers.get("Accept", "")
        if (was_protobuf or _accept_protobuf(accept)) and protobuf.supports(
            rt.api_version, rt.kind
        ):
            encoded = dict(out, metadata={})
            return web.Response(
                body=protobuf.encode(encoded), status=201, content_type=protobuf.CONTENT_TYPE
            )
        if rt.kind == "TokenReview":
            # The token a client sent is not echoed into logs or responses beyond its own.
            ctx.request_object = None
        return self._json(ctx, out, 201)

    def _subject(self, spec: dict) -> Identity:
        username = spec.get("user") or ""
        known = self.auth.get(username)
        if known is not None:
            return known
        groups = tuple(spec.get("groups") or ())
        role = "admin" if "system:masters" in groups else "basic"
        return Identity(name=username, username=username, groups=groups, role=role, token="")

    def _access_review(self, who: Identity, spec: dict) -> dict[str, Any]:
        ra = spec.get("resourceAttributes")
        nra = spec.get("nonResourceAttributes")
        if ra:
            attrs = Attributes(
                verb=ra.get("verb", ""),
                resource_request=True,
                api_group=ra.get("group", ""),
                api_version=ra.get("version", ""),
                resource=ra.get("resource", ""),
                subresource=ra.get("subresource", ""),
                namespace=ra.get("namespace", ""),
                name=ra.get("name", ""),
            )
        elif nra:
            attrs = Attributes(
                verb=nra.get("verb", ""), resource_request=False, path=nra.get("path", "")
            )
        else:
            raise errors.bad_request(
                "spec: Invalid value: exactly one of nonResourceAttributes or "
                "resourceAttributes must be specified"
            )
        if self.faults.denied(who.name, who.username):
            decision = Decision(False, "")
        else:
            decision = self.auth.authorize(who, attrs)
        status: dict[str, Any] = {"allowed": decision.allowed}
        if decision.reason:
            status["reason"] = decision.reason
        return status


def _hand_over(loop: asyncio.AbstractEventLoop, queue: asyncio.Queue, item: Any) -> None:
    """Pass an item to a stream's queue from any thread (a stopped loop drops it)."""
    try:
        loop.call_soon_threadsafe(queue.put_nowait, item)
    except RuntimeError:
        pass


def _apply_patch(ctype: str, old: dict, body: Any) -> dict:
    """`old` patched by `body` in the format `ctype` names (errors as the API words them)."""
    try:
        if ctype == "application/json-patch+json":
            patched = patch.json_patch(old, body)
        elif ctype == "application/merge-patch+json":
            patched = patch.merge_patch(old, body)
        else:
            patched = patch.strategic_merge_patch(old, body)
    except patch.PatchError as exc:
        if exc.code == 400:
            raise errors.bad_request(str(exc)) from None
        if exc.code == 500:
            raise errors.internal_error(str(exc)) from None
        raise ApiError(errors.status(exc.code, "Invalid", str(exc))) from None
    if not isinstance(patched, dict):
        raise errors.bad_request("the patched object is not a JSON object")
    return patched


def _scale_of(obj: dict) -> dict:
    meta = obj["metadata"]
    keep = ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
    spec = obj.get("spec") or {}
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {k: meta[k] for k in keep if k in meta},
        "spec": {"replicas": spec.get("replicas", 1)},
        "status": {
            "replicas": (obj.get("status") or {}).get("replicas", 0),
            "selector": tables.selector_text(spec.get("selector")),
        },
    }


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def _waiting_reason(pod: dict, container: str) -> str | None:
    status = pod.get("status") or {}
    for key in ("containerStatuses", "initContainerStatuses", "ephemeralContainerStatuses"):
        for cs in status.get(key) or []:
            if cs.get("name") == container:
                waiting = (cs.get("state") or {}).get("waiting")
                if waiting and int(cs.get("restartCount", 0)) == 0:
                    return waiting.get("reason") or "ContainerCreating"
                return None
    return None


def _watch_event(change: Change, visible: Callable[[dict | None], bool]) -> tuple[str, dict] | None:
    """The event one watcher sees for a change, given its selectors."""
    now_in = visible(change.obj) if change.type != "DELETED" else False
    was_in = visible(change.old)
    if change.type == "ADDED":
        return ("ADDED", change.obj) if now_in else None
    if change.type == "DELETED":
        return ("DELETED", change.obj) if was_in else None
    if now_in and was_in:
        return "MODIFIED", change.obj
    if now_in:
        return "ADDED", change.obj
    if was_in:
        return "DELETED", change.obj
    return None


def _sort_key(obj: dict) -> str:
    meta = obj["metadata"]
    return f"{meta.get('namespace', '')}/{meta['name']}"


def _encode_continue(rv: int, key: str) -> str:
    token = {"v": "meta.k8s.io/v1", "rv": rv, "start": key + "\x00"}
    return base64.urlsafe_b64encode(orjson.dumps(token)).decode().rstrip("=")


def _decode_continue(token: str) -> str:
    try:
        padded = token + "=" * (-len(token) % 4)
        data = orjson.loads(base64.urlsafe_b64decode(padded))
        start = data["start"]
        if data.get("v") != "meta.k8s.io/v1" or not isinstance(start, str):
            raise ValueError
    except (ValueError, KeyError, TypeError, orjson.JSONDecodeError):
        raise errors.bad_request(
            "continue key is not valid: incorrect encoded start resourceVersion "
            "(version meta.k8s.io/v1)"
        ) from None
    return start.rstrip("\x00")
