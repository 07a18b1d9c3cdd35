"""SVG snapshots of the `:` resource view, `d` describe and `L` logs at 80x24, 120x36
and 200x60, over a reader answering from fixed objects (the same rows every run; the
reader against a real API is tested with the sim in tests/integration).

Update the baselines with
`pytest tests/ui/test_ui_resource_snapshots.py --snapshot-update` and look at the
report before committing them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from ui_helpers import engine_with, make_app, miner_events, wait_for

from ktriage.actions.logs import LogStream, log_streams
from ktriage.resourceread import (
    KINDS,
    Description,
    Listing,
    Resource,
    ResourceReader,
    event_row,
    make_row,
    object_yaml,
)
from ktriage.ui.screens import resource as resource_screen
from ktriage.ui.screens.describe import DescribeScreen
from ktriage.ui.screens.pod_logs import PodLogsScreen
from ktriage.ui.screens.resource import ResourceScreen


def pod(namespace: str, name: str, node: str, restarts: int = 0, created: str = "") -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "namespace": namespace,
            "name": name,
            "creationTimestamp": created or "2027-01-14T08:15:00Z",
            "annotations": {"ci": "token=ghp_A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"},
        },
        "spec": {
            "nodeName": node,
            "containers": [
                {
                    "name": "api",
                    "image": "ghcr.io/acme/api:2.4.1",
                    "env": [{"name": "DB_PASSWORD", "value": "hunter2"}],
                },
                {"name": "sidecar", "image": "envoyproxy/envoy:v1.30.1"},
            ],
        },
        "status": {
            "phase": "Running",
            "containerStatuses": [
                {"name": "api", "ready": True, "restartCount": restarts, "state": {"running": {}}},
                {"name": "sidecar", "ready": True, "restartCount": 0, "state": {"running": {}}},
            ],
        },
    }


PODS = [
    pod("payments", "api-7d9f", "node-1", restarts=1),
    pod("payments", "payments-checkout-canary-7d9f8c6b5-x2x4z", "node-2"),
    pod("dev", "debug-shell", "node-1", created="2027-01-15T08:10:00Z"),
    pod("kube-system", "coredns-7bdd57759-cpngc", "node-2", created="2026-12-01T00:00:00Z"),
]
EVENT = {
    "metadata": {"namespace": "payments", "name": "api-7d9f.1"},
    "involvedObject": {"kind": "Pod", "namespace": "payments", "name": "api-7d9f"},
    "type": "Warning",
    "reason": "BackOff",
    "message": "Back-off restarting failed container api [bold red]x[/]",
    "lastTimestamp": "2027-01-15T08:12:00Z",
}
LOG = (
    b"".join(
        f"level=info msg=request path=/cart/{i} status={500 if i % 7 == 3 else 200}\n".encode()
        for i in range(40)
    )
    + b'level=error msg="\x1b]52;c;ZXZpbA==\x07 [bold red]injected[/]"\n'
)


class Recorded:
    """A log response from fixed bytes: streamed in two pieces, then the end."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def stream(self, amount: int, decode_content: bool = False) -> Iterator[bytes]:
        half = len(self.data) // 2
        yield self.data[:half]
        yield self.data[half:]

    def close(self) -> None:
        pass


class RecordedReader(ResourceReader):
    """Answers from the fixed objects above instead of an API server."""

    def __init__(self) -> None:
        super().__init__(lambda: None)

    def list(self, resource: Resource) -> Listing:
        listing = Listing(resource)
        if resource.name == "pods":
            listing.rows = [make_row("Pod", p, resource) for p in PODS]
        return listing

    def describe(self, kind: str, namespace: str, name: str) -> Description:
        obj = next(p for p in PODS if p["metadata"]["name"] == name)
        desc = Description(kind, namespace, name, object_yaml(obj), [event_row(EVENT)])
        desc.containers = log_streams(obj)
        return desc

    def containers(self, namespace: str, name: str) -> list[LogStream]:
        return log_streams(PODS[0])

    def open_log(self, namespace: str, name: str, container: str, **_: Any) -> Any:
        return Recorded(LOG)


@pytest.fixture
def app(tmp_path):
    app = make_app(engine_with(miner_events()), tmp_path)
    resource_screen._READERS[app] = {"": RecordedReader()}  # the one cluster's reader
    assert "Pod" in KINDS
    return app


async def _pods(pilot: Any) -> None:
    app = pilot.app
    await pilot.press("colon", *"pods", "enter")
    await wait_for(pilot, lambda: isinstance(app.screen, ResourceScreen))
    await wait_for(pilot, lambda: app.screen.listing is not None)
    await pilot.pause()


async def _describe(pilot: Any) -> None:
    await _pods(pilot)
    app = pilot.app
    await pilot.press("d")
    await wait_for(pilot, lambda: isinstance(app.screen, DescribeScreen))
    await wait_for(pilot, lambda: app.screen.description is not None)
    await pilot.pause()


async def _logs(pilot: Any) -> None:
    app = pilot.app
    await pilot.press("L")
    await wait_for(pilot, lambda: isinstance(app.screen, PodLogsScreen))
    screen = app.screen
    await wait_for(pilot, lambda: screen.ended is not None and len(screen.view.lines) == 41)
    await pilot.press("slash", *"status=500", "enter", "n")
    await pilot.pause()


@pytest.mark.parametrize("size", [(80, 24), (120, 36), (200, 60)])
def test_pods_view(snap_compare, app, size):
    assert snap_compare(app, terminal_size=size, run_before=_pods)


def test_describe_pod(snap_compare, app):
    assert snap_compare(app, terminal_size=(120, 36), run_before=_describe)


@pytest.mark.parametrize("size", [(80, 24), (120, 36)])
def test_pod_logs_with_search(snap_compare, app, size):
    assert snap_compare(app, terminal_size=size, run_before=_logs)
