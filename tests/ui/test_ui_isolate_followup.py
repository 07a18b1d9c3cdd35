"""After an isolation, detach is a hint in the outcome (press D), never a dialog of
its own where enter would apply it; and no hint at all when the isolation is
effective (a NetworkPolicy-enforcing plugin seen). Against the sim."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from ui_helpers import engine_with, make_app, miner_events, notices, wait_for

from ktriage.actions import kubeconfig_factory
from ktriage.ui.screens.action_confirm import ActionConfirmScreen

pytestmark = pytest.mark.sim

NS, POD, NODE = "payments", "api-7d9f", "node-1"


@pytest.fixture
def sim(make_sim_cluster: Callable[..., Any]) -> Any:
    cluster = make_sim_cluster()
    store = cluster.store
    store.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    store.apply({"apiVersion": "v1", "kind": "Node", "metadata": {"name": NODE}, "spec": {}})
    store.apply(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": POD, "namespace": NS, "labels": {"app": "api"}},
            "spec": {"nodeName": NODE, "containers": [{"name": "app", "image": "nginx:1.27"}]},
        }
    )
    # A Service selects it: detach has something to do, so the old follow-up dialog
    # would have opened.
    store.apply(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "api", "namespace": NS},
            "spec": {"selector": {"app": "api"}, "ports": [{"port": 80}]},
        }
    )
    return cluster


def _cilium_agent(sim: Any) -> None:
    sim.store.apply(
        {
            "apiVersion": "apps/v1",
            "kind": "DaemonSet",
            "metadata": {"name": "cilium", "namespace": "kube-system"},
            "spec": {
                "selector": {"matchLabels": {"k8s-app": "cilium"}},
                "template": {
                    "metadata": {"labels": {"k8s-app": "cilium"}},
                    "spec": {"containers": [{"name": "agent", "image": "cilium/cilium:1.16"}]},
                },
            },
        }
    )


async def _isolate(app: Any, pilot: Any) -> list[str]:
    """Isolate the selected pod through the keys; the outcome's notices."""
    service = app.action_provider.service
    await wait_for(pilot, lambda: service.cluster != "" and service._loaded, timeout=20)
    selection = app.selection()
    assert selection is not None and selection.pod is not None
    assert (selection.pod.namespace, selection.pod.name) == (NS, POD)
    await wait_for(pilot, lambda: app.action_provider.available("isolate", selection)[0])
    await pilot.press("i")
    await wait_for(pilot, lambda: isinstance(app.screen, ActionConfirmScreen), timeout=20)
    await pilot.press("enter")

    def outcomes() -> list[str]:
        return [n.message for n in notices(app) if n.title.startswith("isolate")]

    await wait_for(pilot, outcomes, timeout=20)
    # The outcome is in; a follow-up would be prepared in a worker: let every one end.
    await app.workers.wait_for_complete()
    await pilot.pause()
    return outcomes()


async def test_isolate_without_an_enforcing_plugin_hints_detach_and_opens_no_dialog(
    tmp_path: Path, sim: Any
) -> None:
    app = make_app(engine_with(miner_events()), tmp_path, mode="live")
    app.api_client_factory = kubeconfig_factory(str(sim.kubeconfig_path), "sim-admin")
    async with app.run_test(size=(160, 45), notifications=True) as pilot:
        (message,) = await _isolate(app, pilot)
        assert f"press D to detach pod {NS}/{POD}" in message
        assert not isinstance(app.screen, ActionConfirmScreen)
        # Enter now applies nothing: the pod keeps its labels but the quarantine one.
        await pilot.press("enter")
        await pilot.pause()
        assert not isinstance(app.screen, ActionConfirmScreen)
        labels = sim.store.get_obj("v1", "Pod", NS, POD)["metadata"]["labels"]
        assert labels.get("app") == "api"


async def test_isolate_effective_under_cilium_mentions_no_detach(tmp_path: Path, sim: Any) -> None:
    _cilium_agent(sim)
    app = make_app(engine_with(miner_events()), tmp_path, mode="live")
    app.api_client_factory = kubeconfig_factory(str(sim.kubeconfig_path), "sim-admin")
    async with app.run_test(size=(160, 45), notifications=True) as pilot:
        (message,) = await _isolate(app, pilot)
        assert "isolate: ok" in [n.title for n in notices(app)]
        assert "Cilium" in message
        assert "press D" not in message and "detach" not in message.lower()
        assert not isinstance(app.screen, ActionConfirmScreen)
