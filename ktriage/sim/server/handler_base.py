"""The base of the API server's handler groups: shared state and response helpers."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from aiohttp import web

from ktriage.sim.audit import AuditWriter
from ktriage.sim.auth.authentication import Auth
from ktriage.sim.clock import SimClock
from ktriage.sim.faults import Faults
from ktriage.sim.resources import ResourceType
from ktriage.sim.server import errors, tables
from ktriage.sim.server.request import JSON, Ctx, accept_partial, accept_table, dumps, escape
from ktriage.sim.storage.selectors import SelectorError, matcher
from ktriage.sim.storage.store import ClusterStore


class HandlerBase:
    """State and response helpers every handler of `APIServer` shares."""

    store: ClusterStore
    audit: AuditWriter
    auth: Auth
    faults: Faults
    clock: SimClock
    bookmark_interval: float
    server_address: str
    _streams: set[Callable[[], None]]
    _stopping: bool

    def _json(self, ctx: Ctx, body: Any, status: int = 200) -> web.Response:
        ctx.code = status
        resp = web.Response(body=dumps(body), status=status, content_type=JSON)
        for warning in ctx.warnings:
            resp.headers.add("Warning", f'299 - "{escape(warning)}"')
        return resp

    def _object_response(
        self, ctx: Ctx, rt: ResourceType, obj: dict, status: int = 200
    ) -> web.Response:
        accept = ctx.request.headers.get("Accept", "")
        table_version = accept_table(accept)
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
        if accept_partial(accept) and ctx.info is not None and ctx.info.verb == "get":
            return self._json(ctx, tables.partial_metadata(obj), status)
        ctx.response_object = obj
        return self._json(ctx, obj, status)

    def _filters(self, ctx: Ctx, rt: ResourceType) -> Callable[[dict], bool] | None:
        try:
            return matcher(rt, ctx.query.get("labelSelector"), ctx.query.get("fieldSelector"))
        except SelectorError as exc:
            raise errors.bad_request(str(exc)) from None

    def _get_stored(self, rt: ResourceType, namespace: str, name: str) -> dict:
        obj = self.store.peek(rt.api_version, rt.kind, namespace if rt.namespaced else None, name)
        if obj is None:
            raise errors.not_found(rt, name)
        return obj


def hand_over(loop: asyncio.AbstractEventLoop, queue: asyncio.Queue, item: Any) -> None:
    """Pass an item to a stream's queue from any thread (a stopped loop drops it)."""
    try:
        loop.call_soon_threadsafe(queue.put_nowait, item)
    except RuntimeError:
        pass
