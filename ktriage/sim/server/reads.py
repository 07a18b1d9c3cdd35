"""Reading: get, list (with consistent paging) and watch (with bookmarks)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web

from ktriage.sim.resources import ResourceType
from ktriage.sim.server import connection, errors, list_options, tables
from ktriage.sim.server.handler_base import HandlerBase, hand_over
from ktriage.sim.server.request import JSON, Ctx, accept_partial, accept_table, dumps, truthy
from ktriage.sim.storage.store import Change, Expired, ListSnapshot

DEFAULT_WATCH_TIMEOUT = 1800.0
CUT = object()  # a watch's queue item: the `cut_watches` fault resets its connection


class ReadHandlers(HandlerBase):
    """get, list and watch."""

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
        snap, start = self._list_state(ctx, rt, namespace)
        limit = ctx.query.get("limit")
        n = 0
        if limit:
            try:
                n = int(limit)
            except ValueError:
                raise errors.bad_request(f'limit: Invalid value: "{limit}"') from None
        objs, rest, last = _page(snap, snap.index(start), n, match)
        list_meta: dict[str, Any] = {"resourceVersion": str(snap.rv)}
        if rest:
            # The next page starts just after this one's last key, at this page's
            # resourceVersion: every page reads the same snapshot.
            list_meta["continue"] = list_options.encode_continue(snap.rv, last + "\x00")
            list_meta["remainingItemCount"] = rest
        accept = ctx.request.headers.get("Accept", "")
        table_version = accept_table(accept)
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
        if accept_partial(accept):
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

    def _list_state(
        self, ctx: Ctx, rt: ResourceType, namespace: str | None
    ) -> tuple[ListSnapshot, str]:
        """The sorted state a list reads (read-only) and the first key of the page, by
        the list's resourceVersion options (see `list_options`)."""
        opts = list_options.parse(ctx.query)
        token = opts.token
        store = self.store
        if token is not None and token.rv != list_options.LATEST:
            current = store.resource_version
            if token.rv > current:  # a forged token: no such state yet
                raise list_options.too_large(token.rv, current)
            try:
                snap = store.list_snapshot(rt.api_version, rt.kind, namespace, token.rv)
            except Expired:
                raise list_options.continue_expired(token) from None
            return snap, token.start
        if token is not None:
            return store.list_snapshot(rt.api_version, rt.kind, namespace), token.start
        wanted = opts.resource_version
        current = store.resource_version
        if wanted is not None and wanted > current:
            raise list_options.too_large(wanted, current)
        if wanted is not None and opts.exact and wanted != current:
            try:
                return store.list_snapshot(rt.api_version, rt.kind, namespace, wanted), ""
            except Expired:
                raise list_options.list_expired() from None
        return store.list_snapshot(rt.api_version, rt.kind, namespace), ""

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
        bookmarks = truthy(q.get("allowWatchBookmarks")) if "allowWatchBookmarks" in q else False
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
        table_version = accept_table(ctx.request.headers.get("Accept", ""))
        include = q.get("includeObject", "Metadata")

        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Any] = asyncio.Queue()

        def listener(change: Change) -> None:
            hand_over(loop, queue, change)

        def close() -> None:
            hand_over(loop, queue, None)

        def cut() -> None:
            hand_over(loop, queue, CUT)

        initial: list[dict] = []
        expired_message: str | None = None
        unsubscribe: Callable[[], None] = lambda: None  # noqa: E731
        last_rv = self.store.resource_version
        if rv_param not in ("", "0") and self.faults.take_watch_expiry():
            # Only a watch from a given resourceVersion can be too old.
            expired_message = f"too old resource version: {rv_param} ({last_rv})"
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
                last_rv = max(since, self.store.oldest_resource_version_of(rt.api_version, rt.kind))
                for change in backlog:
                    queue.put_nowait(change)

        resp = web.StreamResponse(status=200)
        resp.content_type = JSON
        resp.enable_chunked_encoding()
        ctx.code = 200
        unregister_cut = self.faults.register_watch(cut)
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
            return dumps({"type": event_type, "object": obj}) + b"\n"

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
                if change is CUT:
                    connection.reset(ctx.request)
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


def _page(
    snap: ListSnapshot, first: int, limit: int, match: Callable[[dict], bool] | None
) -> tuple[list[dict], int, str]:
    """One page of a sorted state from position `first`: its objects, how many more
    there are after it (0: the list ends here) and its last key. Without selectors
    that is a slice (a page costs its own size, not the list's); with them the
    objects are tested from `first` on, and the rest counted for remainingItemCount."""
    objs, keys = snap.objs, snap.keys
    if match is None:
        end = len(objs) if limit <= 0 else min(len(objs), first + limit)
        page = objs[first:end]
        return page, len(objs) - end, keys[end - 1] if page else ""
    page = []
    last = ""
    i = first
    while i < len(objs) and (limit <= 0 or len(page) < limit):
        if match(objs[i]):
            page.append(objs[i])
            last = keys[i]
        i += 1
    rest = sum(1 for o in objs[i:] if match(o)) if limit > 0 else 0
    return page, rest, last
