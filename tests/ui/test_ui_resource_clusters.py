"""`:` views, `d` and `L` with several clusters, against two simulated clusters: each
reads the selected incident's cluster (or the one named with `@`), names it in its
title, and `@` switches; a cluster without a client is said, never another read."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from ui_helpers import T0, make_app, open_view, screen_text, signal, wait_for

from ktriage.clusters import MultiEngine
from ktriage.core.model import EntityKind, Severity, entity
from ktriage.kubeclient import client_from_kubeconfig
from ktriage.ui.screens.describe import DescribeScreen
from ktriage.ui.screens.main import MainScreen
from ktriage.ui.screens.pod_logs import PodLogsScreen
from ktriage.ui.screens.resource import ResourceScreen

pytestmark = pytest.mark.sim

EAST, WEST = "demo-east", "demo-west"
HOSTILE_CLUSTER = "[bold red]x[/]\x1b[2J"


def add_pod(sim: Any, name: str) -> None:
    sim.store.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}})
    sim.store.apply(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"namespace": "shop", "name": name},
            "spec": {"nodeName": "worker-1", "containers": [{"name": "web", "image": "i"}]},
        }
    )
    sim.store.append_log("shop", name, "web", f"log line of {name}")


@pytest.fixture
def sims(tmp_path: Path) -> Any:
    """Two clusters, each with a pod of its own name: a wrong-cluster read shows."""
    from ktriage.sim.runner import SimCluster

    east = SimCluster(tmp_path / "east").start()
    west = SimCluster(tmp_path / "west").start()
    try:
        add_pod(east, "web-east")
        add_pod(west, "web-west")
        yield {EAST: east, WEST: west}
    finally:
        east.stop()
        west.stop()


def two_cluster_engine(sims: dict[str, Any], *, without_client: str = "") -> MultiEngine:
    engine = MultiEngine()
    for n, (name, sim) in enumerate(sims.items()):
        member = engine.add_cluster(name)
        pod_name = "web-east" if name == EAST else "web-west"
        pod = entity(EntityKind.POD, "shop", pod_name)
        # The west incident is the more severe: it is selected first.
        severity = Severity.CRITICAL if name == WEST else Severity.MEDIUM
        member.add_events(
            [signal(T0 + n, "audit", f"a-{n}", "exec", severity, f"exec into {pod_name}", (pod,))]
        )
        if name != without_client:
            path = str(sim.kubeconfig_path)
            engine.client_factories[name] = lambda p=path: client_from_kubeconfig(p, "sim-admin")
    return engine


def pod_names(screen: ResourceScreen) -> set[str]:
    return {r.name for r in screen.table.rows if r.namespace == "shop"}


async def test_colon_pods_reads_the_selected_incidents_cluster_and_at_switches(
    tmp_path: Path, sims: Any
):
    app = make_app(two_cluster_engine(sims), tmp_path, mode="live", read_only=True)
    async with app.run_test(size=(160, 45)) as pilot:
        assert app.screen.incidents.selected.cluster == WEST
        screen = await open_view(pilot, app, "pods")
        assert screen.cluster == WEST
        assert pod_names(screen) == {"web-west"}
        assert f"Pods · cluster {WEST}" in str(screen.table.border_title)
        assert f"cluster {WEST}" in screen.status_text
        # @ reads the same view from the other cluster.
        await pilot.press("at")
        await wait_for(pilot, lambda: app.screen is not screen)
        await wait_for(pilot, lambda: app.screen.listing is not None, timeout=15)
        east = app.screen
        assert east.cluster == EAST and pod_names(east) == {"web-east"}
        assert f"cluster {EAST}" in str(east.table.border_title)
        assert len(app.screen_stack) == 2  # switched, not stacked
        # d and L from this view read this view's cluster.
        east.table.move_cursor(
            next(i for i, r in enumerate(east.table.rows) if r.name == "web-east")
        )
        await pilot.press("L")
        await wait_for(pilot, lambda: isinstance(app.screen, PodLogsScreen))
        logs = app.screen
        await wait_for(pilot, lambda: "log line of web-east" in logs.view.text(), timeout=15)
        assert f"cluster {EAST}" in str(logs.view.border_title)


async def test_at_cluster_in_the_prompt_names_the_cluster(tmp_path: Path, sims: Any):
    app = make_app(two_cluster_engine(sims), tmp_path, mode="live", read_only=True)
    async with app.run_test(size=(160, 45)) as pilot:
        screen = await open_view(pilot, app, f"po@{EAST}")
        assert screen.cluster == EAST and pod_names(screen) == {"web-east"}
        # `:` from a view keeps the view's cluster.
        events = await open_view(pilot, app, "nodes")
        assert events.cluster == EAST


async def test_d_and_L_on_the_main_screen_read_the_incidents_own_cluster(tmp_path: Path, sims: Any):
    app = make_app(two_cluster_engine(sims), tmp_path, mode="live", read_only=True)
    async with app.run_test(size=(160, 45)) as pilot:
        main = app.screen
        assert main.incidents.selected.cluster == WEST
        await pilot.press("d")
        await wait_for(pilot, lambda: isinstance(app.screen, DescribeScreen))
        describe = app.screen
        await wait_for(pilot, lambda: describe.description is not None, timeout=15)
        assert describe.description.problems == []
        assert "name: web-west" in describe.body_text
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is main)
        # The other incident (east): its own pod, from its own cluster.
        main.incidents.move_cursor(1)
        await wait_for(pilot, lambda: main.incidents.selected.cluster == EAST)
        await pilot.press("L")
        await wait_for(pilot, lambda: isinstance(app.screen, PodLogsScreen))
        logs = app.screen
        await wait_for(pilot, lambda: "log line of web-east" in logs.view.text(), timeout=15)
        assert logs.problem == ""


async def test_unknown_cluster_and_a_cluster_without_client_are_said(tmp_path: Path, sims: Any):
    engine = two_cluster_engine(sims, without_client=WEST)
    app = make_app(engine, tmp_path, mode="live", read_only=True)
    async with app.run_test(size=(160, 45)) as pilot:
        main = app.screen
        notice = main.notice
        await pilot.press("colon", *"pods@elsewhere", "enter")
        await wait_for(pilot, lambda: notice.active)
        assert "No watched cluster named 'elsewhere'" in notice.text
        assert "No live cluster" not in notice.text
        notice.hide()
        # The selected incident is west's, which has no client: said, east never read.
        await pilot.press("colon", *"pods", "enter")
        await wait_for(pilot, lambda: notice.active)
        assert f"No connection to cluster {WEST}" in notice.text
        assert isinstance(app.screen, MainScreen)


async def test_hostile_cluster_name_in_titles_stays_text(tmp_path: Path, sims: Any):
    renamed = {HOSTILE_CLUSTER: sims[EAST], WEST: sims[WEST]}
    engine = two_cluster_engine(renamed)
    app = make_app(engine, tmp_path, mode="live", read_only=True)
    async with app.run_test(size=(160, 45)) as pilot:
        main = app.screen
        main.incidents.move_cursor(1)
        await wait_for(pilot, lambda: main.incidents.selected.cluster == HOSTILE_CLUSTER)
        screen = await open_view(pilot, app, "pods")
        text = screen_text(app)
        # Shown as typed on screen (not applied as markup), the escape made visible.
        assert "Pods · cluster [bold red]x[/]" in text
        assert "\x1b" not in text and "\x1b" not in screen.status_text
