"""Subresources: status, scale, eviction, binding, token requests, exec."""

from __future__ import annotations

from aiohttp import web

from ktriage.sim.controllers import disruption
from ktriage.sim.resources import ResourceType, lookup
from ktriage.sim.server import errors, tables, token_request
from ktriage.sim.server.errors import ApiError
from ktriage.sim.server.handler_base import HandlerBase
from ktriage.sim.server.request import Ctx
from ktriage.sim.server.writes import apply_patch
from ktriage.sim.storage.store import deep_copy

LONG_RUNNING_SUBRESOURCES = {"exec", "attach", "portforward", "proxy"}


class SubresourceHandlers(HandlerBase):
    """Subresources other than logs."""

    async def _subresource(self, ctx: Ctx, rt: ResourceType) -> web.StreamResponse:
        info = ctx.info
        assert info is not None
        sub = info.subresource
        if sub in ("status", "ephemeralcontainers", "resize", "approval"):
            if info.verb == "get":
                return self._get(ctx, rt)
            # A CSR's approval, like its status, changes only the status (its conditions).
            scope = "status" if sub in ("status", "approval") else sub
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
            upgrade = ctx.request.headers.get("Upgrade", "").lower() == "websocket"
            if sub in ("exec", "attach") and upgrade:
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
            wanted = apply_patch(ctx.request.content_type, scale, body)
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
        pod = self._get_stored(rt, info.namespace, info.name)
        blocker = disruption.eviction_blocker(self.store, self.clock, pod)
        if blocker is not None:
            code, message, causes = blocker
            if code != 429:
                raise errors.internal_error(message)
            raise ApiError(errors.status(code, "TooManyRequests", message, {"causes": causes}))
        # The pod goes as a DELETE would take it (graceful deletion included).
        await self._delete(ctx, rt)
        out = errors.success()
        out["code"] = 201
        return self._json(ctx, out, 201)

    async def _token_request(self, ctx: Ctx) -> web.Response:
        """TokenRequest: a signed JWT for the ServiceAccount (see `auth.tokens`)."""
        info = ctx.info
        assert info is not None
        body = await self._read_body(ctx)
        ctx.request_object = None  # the audit log never holds a token request's answer
        rt = lookup("", "v1", "serviceaccounts")
        assert rt is not None
        sa = self._get_stored(rt, info.namespace, info.name)
        request = token_request.parse(body, info.name, info.namespace)
        bound = token_request.bound_object(self.store, request, info.namespace, info.name)
        now = self.clock.now()
        token = self.auth.tokens.issue(
            namespace=info.namespace,
            name=info.name,
            uid=sa["metadata"]["uid"],
            audiences=request.audiences,
            now=now,
            expiration_seconds=request.expiration_seconds,
            bound=bound,
        )
        out = token_request.response(request, info.name, info.namespace, now, token)
        ctx.response_object = None  # the token stays out of the audit log
        return self._json(ctx, out, 201)


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
