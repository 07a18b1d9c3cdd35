"""Losing a connection the way real failures lose it: a TCP reset, not a clean end.

A server that dies, a load balancer that drops an idle stream, a network that
breaks: the client sees its connection reset in the middle of a response (or
before any), never a well-formed end of the stream. Closing with SO_LINGER 0
sends an RST instead of a FIN.
"""

from __future__ import annotations

import contextlib
import socket
import struct

from aiohttp import web


def reset(request: web.Request) -> None:
    """Abort the request's connection with a TCP reset; what was buffered is dropped."""
    transport = request.transport
    if transport is None or transport.is_closing():
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


def reset_response() -> web.Response:
    """What a handler returns after `reset`: aiohttp finds the connection gone and
    sends nothing."""
    return web.Response(status=500)
