"""Who is writing: a client through the API, or the sim itself (scenario, controllers).

Scenario steps write the store directly and script their own workloads; controllers
leave those alone unless a client acts on them through the API (see `manager`). Each
API request runs in a task of its own, so a context variable set there marks exactly
the writes that request makes.
"""

from __future__ import annotations

from contextvars import ContextVar

_API_REQUEST: ContextVar[bool] = ContextVar("ktriage_sim_api_request", default=False)


def mark_api_request() -> None:
    """Called at the start of each API request (in the request's own task)."""
    _API_REQUEST.set(True)


def from_api() -> bool:
    return _API_REQUEST.get()


_CONTROLLER: ContextVar[bool] = ContextVar("ktriage_sim_controller", default=False)


def mark_controller() -> None:
    """Called at the start of each controller task."""
    _CONTROLLER.set(True)


def pods_start_pending() -> bool:
    """A pod a client or a controller creates starts Pending and is started by kubelet;
    one a scenario writes directly is stored as it is scripted."""
    return _API_REQUEST.get() or _CONTROLLER.get()
