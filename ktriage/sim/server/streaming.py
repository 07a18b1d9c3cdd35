"""Streams: `exec` over a WebSocket and pod logs (`logs -f` follows the store's log feed)."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from ktriage.sim.resources import lookup
from ktriage.sim.server import errors
from ktriage.sim.server.handler_base import HandlerBase, hand_over
from ktriage.sim.server.request import Ctx, dumps, truthy
from ktriage.sim.timefmt import parse_rfc3339, rfc3339_nano


class StreamingHandlers(HandlerBase):
    """exec and pod logs."""

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
        await ws.send_bytes(b"\x03" + dumps(status))
        await ws.close()
        return ws

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
        previous = truthy(q.get("previous")) if "previous" in q else False
        follow = (truthy(q.get("follow")) if "follow" in q else False) and not previous
        timestamps = truthy(q.get("timestamps")) if "timestamps" in q else False
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
            hand_over(loop, queue, line)

        def close() -> None:
            hand_over(loop, queue, None)

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
