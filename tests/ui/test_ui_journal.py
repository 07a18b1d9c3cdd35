"""The journal in the UI: the start-up dialog for actions an earlier run was killed in
the middle of, and the quit dialog naming earlier runs' changes, against the sim."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from ui_helpers import engine_with, make_app, miner_events, screen_text, wait_for

from ktriage.actions import ActionService, kubeconfig_factory
from ktriage.actions.base import MANAGED_BY, MANAGED_BY_LABEL, Target
from ktriage.actions.journal import ActionJournal, Intent
from ktriage.actions.unfinished import NOTHING
from ktriage.ui.screens.action_confirm import ActionConfirmScreen
from ktriage.ui.screens.quit_confirm import QuitConfirmScreen
from ktriage.ui.screens.unfinished import UnfinishedScreen

pytestmark = pytest.mark.sim

NS, POD, NODE = "shop", "web-9", "worker-9"
POLICY = f"ktriage-quarantine-{POD}"


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
            "metadata": {"name": POD, "namespace": NS, "labels": {"app": "web"}},
            "spec": {"nodeName": NODE, "containers": [{"name": "app", "image": "nginx:1.27"}]},
        }
    )
    return cluster


def _cluster_address(sim: Any) -> str:
    client = kubeconfig_factory(str(sim.kubeconfig_path), "sim-admin")()
    try:
        return str(client.configuration.host)
    finally:
        client.close()


def _cut_short_isolation(sim: Any, snapshots: Path, pod: str, uid: str, ns: str = NS) -> None:
    """What a kill between the policy and the label leaves: the policy, and an intent."""
    policy = f"ktriage-quarantine-{pod}"
    body = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": policy, "namespace": ns, "labels": {MANAGED_BY_LABEL: MANAGED_BY}},
        "spec": {
            "podSelector": {"matchLabels": {"ktriage.io/quarantine": pod}},
            "policyTypes": ["Ingress", "Egress"],
        },
    }
    changes = [
        {"verb": "create", "target": {"kind": "NetworkPolicy", "namespace": ns, "name": policy},
         "body": body, "content_type": "", "summary": "deny all"},
        {"verb": "patch", "target": {"kind": "Pod", "namespace": ns, "name": pod},
         "body": {"metadata": {"labels": {"ktriage.io/quarantine": pod}}},
         "content_type": "application/strategic-merge-patch+json", "summary": "label"},
    ]  # fmt: skip
    intent = Intent(
        uid=uid,
        id="A1" if uid.endswith("1") else "A2",
        action="isolate",
        incident_id="INC-0000AA",
        signal="",
        target=Target("Pod", ns, pod),
        subject=Target("NetworkPolicy", ns, policy),
        time=time.time() - 30,
        actor="admin",
        title=f"Isolate pod {ns}/{pod}",
        changes=changes,
        undo={"namespace": ns, "pod": pod, "policy": policy, "value": pod},
    )
    ActionJournal(snapshots).intent(intent, _cluster_address(sim))


async def test_startup_dialog_rolls_back_an_orphan_policy_and_shows_hostile_names_as_text(
    tmp_path: Path, sim: Any
) -> None:
    snapshots = tmp_path / "snapshots"
    sim.store.apply(
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": POLICY, "namespace": NS, "labels": {MANAGED_BY_LABEL: MANAGED_BY}},
            "spec": {
                "podSelector": {"matchLabels": {"ktriage.io/quarantine": POD}},
                "policyTypes": ["Ingress", "Egress"],
            },
        }
    )
    _cut_short_isolation(sim, snapshots, POD, "run1-A1")
    # A journal line naming a pod no cluster has: markup and a terminal escape.
    _cut_short_isolation(sim, snapshots, "[bold red]x[/]\x1b[2J", "run1-A2")
    app = make_app(engine_with(miner_events()), tmp_path, mode="live", snapshot_dir=snapshots)
    app.api_client_factory = kubeconfig_factory(str(sim.kubeconfig_path), "sim-admin")
    async with app.run_test(size=(160, 45)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, UnfinishedScreen), timeout=20)
        await wait_for(pilot, lambda: "Cut short" in screen_text(app))
        text = screen_text(app)
        assert "Cut short by an earlier run: 2 action(s)" in text
        assert f"isolate pod {NS}/{POD} (INC-0000AA), cut short" in text
        assert f"not done: patch pod {NS}/{POD} (an orphan" in text
        assert "[bold red]x[/]" in text and "\x1b[2J" not in text
        assert "r roll back · c complete · l leave · esc close" in text
        await pilot.press("r")
        await wait_for(
            pilot,
            lambda: sim.store.get_obj("networking.k8s.io/v1", "NetworkPolicy", NS, POLICY) is None,
            timeout=20,
        )
        await wait_for(pilot, lambda: "rollback: undone" in screen_text(app), timeout=10)
        # The hostile one is left; it stays listed, and quitting names it.
        await pilot.press("l")
        await wait_for(pilot, lambda: "All decided" in screen_text(app))
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, UnfinishedScreen))
        await pilot.press("q")
        await wait_for(pilot, lambda: "Still in place" in screen_text(app))
        text = screen_text(app)
        assert "[bold red]x[/]" in text and "cut short" in text
        assert f"isolate pod {NS}/{POD}" not in text
        await pilot.press("q")
        await wait_for(pilot, lambda: not app.is_running)
    service = ActionService(
        None, kubeconfig_factory(str(sim.kubeconfig_path), "sim-admin"), snapshots
    )
    try:
        (left,) = await service.unfinished()
        assert left.entry.intent.target.name == "[bold red]x[/]\x1b[2J"
        assert left.verdict != NOTHING or left.problem
    finally:
        service.close()


async def test_quit_names_an_earlier_runs_isolation_still_in_place(
    tmp_path: Path, sim: Any
) -> None:
    snapshots = tmp_path / "snapshots"
    earlier = ActionService(
        None, kubeconfig_factory(str(sim.kubeconfig_path), "sim-admin"), snapshots
    )
    try:
        outcome = await earlier.apply(await earlier.prepare("i", "INC-0000AA", (NS, POD)))
        assert outcome.result == "ok"
    finally:
        earlier.close()
    app = make_app(engine_with(miner_events()), tmp_path, mode="live", snapshot_dir=snapshots)
    app.api_client_factory = kubeconfig_factory(str(sim.kubeconfig_path), "sim-admin")
    async with app.run_test(size=(160, 45)) as pilot:
        service = app.action_provider.service  # type: ignore[union-attr]
        await wait_for(pilot, lambda: service.cluster != "" and service._loaded, timeout=20)
        await pilot.press("q")
        await wait_for(pilot, lambda: "Still in place" in screen_text(app))
        assert (
            f"isolate of pod {NS}/{POD} (NetworkPolicy {NS}/{POLICY}) (A1, not undone)"
            in screen_text(app)
        )
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, QuitConfirmScreen))
        assert app.is_running


async def test_u_with_nothing_to_undo_says_so(tmp_path: Path, sim: Any) -> None:
    app = make_app(engine_with(miner_events()), tmp_path, mode="live")
    app.api_client_factory = kubeconfig_factory(str(sim.kubeconfig_path), "sim-admin")
    async with app.run_test(size=(160, 45)) as pilot:
        selection = app.selection()
        assert selection is not None and selection.pod is not None
        await pilot.press("u")
        where = f"pod {selection.pod.namespace}/{selection.pod.name}"
        # Said in the notice below the panes, which covers none of the newest rows.
        screen = app.screen
        await wait_for(pilot, lambda: f"nothing to undo on {where}" in screen.notice.text)


async def test_u_on_a_pod_with_an_action_cut_short_rolls_it_back_as_quit_says(
    tmp_path: Path, sim: Any
) -> None:
    # The pod the miner incident selects, with an orphan policy a killed run left.
    ns, pod = "payments", "api-7d9f"
    policy = f"ktriage-quarantine-{pod}"
    sim.store.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    sim.store.apply(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": pod, "namespace": ns, "labels": {"app": "api"}},
            "spec": {"nodeName": NODE, "containers": [{"name": "app", "image": "nginx:1.27"}]},
        }
    )
    sim.store.apply(
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": policy, "namespace": ns, "labels": {MANAGED_BY_LABEL: MANAGED_BY}},
            "spec": {
                "podSelector": {"matchLabels": {"ktriage.io/quarantine": pod}},
                "policyTypes": ["Ingress", "Egress"],
            },
        }
    )
    snapshots = tmp_path / "snapshots"
    _cut_short_isolation(sim, snapshots, pod, "run1-A1", ns=ns)
    app = make_app(engine_with(miner_events()), tmp_path, mode="live", snapshot_dir=snapshots)
    app.api_client_factory = kubeconfig_factory(str(sim.kubeconfig_path), "sim-admin")
    async with app.run_test(size=(160, 45)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, UnfinishedScreen), timeout=20)
        await wait_for(pilot, lambda: "Cut short" in screen_text(app))
        await pilot.press("l")  # left in the start-up dialog
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, UnfinishedScreen))
        await pilot.press("q")
        await wait_for(pilot, lambda: "Still in place" in screen_text(app))
        assert "(an action cut short: u rolls back what of it is" in screen_text(app)
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, QuitConfirmScreen))
        await pilot.press("u")
        await wait_for(pilot, lambda: isinstance(app.screen, ActionConfirmScreen), timeout=20)
        text = screen_text(app)
        assert f"Undoes: isolate of pod {ns}/{pod}" in text
        assert "was cut short in an earlier run" in text
        assert sim.store.get_obj("networking.k8s.io/v1", "NetworkPolicy", ns, policy)
        await pilot.press("enter")
        await wait_for(
            pilot,
            lambda: sim.store.get_obj("networking.k8s.io/v1", "NetworkPolicy", ns, policy) is None,
            timeout=20,
        )
        service = app.action_provider.service  # type: ignore[union-attr]
        await wait_for(pilot, lambda: not service.still_in_place())
