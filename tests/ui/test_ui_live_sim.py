"""The UI connected to the running simulated cluster, as `ktriage demo` runs it."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from ui_helpers import make_app, screen_text, wait_for

from ktriage.core.config import Config
from ktriage.demo import live_options
from ktriage.live import build_live
from ktriage.options import DemoOptions
from ktriage.ui.widgets.incident_list import IncidentList
from ktriage.ui.widgets.pod_list import PodList
from ktriage.ui.widgets.status_bar import StatusBar

pytestmark = pytest.mark.sim


@pytest.fixture
def sim(make_sim_cluster: Callable[..., Any]) -> Any:
    cluster = make_sim_cluster(scenario="cryptominer", speed=60.0)
    return cluster


async def test_live_sources_on_the_sim_fill_every_pane(tmp_path, sim):
    setup = build_live(live_options(sim, DemoOptions()), Config())
    engine = setup.engine
    app = make_app(engine, tmp_path, mode="demo", clock=None, start_sources=True)
    try:
        async with app.run_test(size=(160, 45)) as pilot:
            incidents = app.screen.query_one(IncidentList)
            await wait_for(pilot, lambda: bool(incidents.shown), timeout=30)
            await wait_for(
                pilot,
                # ktriage's "mining-pool egress" or Falco's rule, named verbatim
                lambda: re.search(r"min(ing|er)[- ]pool", incidents.shown[0].title.lower()),
                timeout=30,
            )
            assert "storefront" in incidents.shown[0].title
            # Pods come from the cluster's live state (watched over HTTP).
            pods = app.screen.query_one(PodList)
            await wait_for(pilot, lambda: any(r.info is not None for r in pods.rows), timeout=15)
            row = next(r for r in pods.rows if r.info is not None)
            assert row.namespace == "shop" and row.node
            pods.focus()
            pods.move_cursor(pods.rows.index(row))
            await pilot.press("enter")  # the pod in Detail
            detail = app.screen.query_one("#detail")
            await wait_for(pilot, lambda: f"{row.node}" in screen_text(app))
            assert f"{row.node} (cordoned)" not in screen_text(app)
            # The node is cordoned (by someone else, or by ktriage): Detail follows.
            node = sim.store.get_obj("v1", "Node", None, row.node)
            node.setdefault("spec", {})["unschedulable"] = True
            sim.store.apply(node)
            await wait_for(pilot, lambda: f"{row.node} (cordoned)" in screen_text(app), timeout=15)
            assert detail is app.screen.query_one("#detail")
            pods.focus()
            await pilot.press("a")
            await wait_for(pilot, lambda: len(pods.rows) > 1)
            # The status bar shows the sources, connected.
            status = app.screen.query_one(StatusBar)
            await wait_for(pilot, lambda: "kube ●" in screen_text(app).splitlines()[0])
            assert {h.kind for h in status.health} >= {"kube", "audit", "falco", "tetragon"}
            # Navigation and a snapshot work while events keep arriving.
            incidents.focus()
            await pilot.press("enter", "g", "s")
            await wait_for(pilot, lambda: app.last_snapshot is not None)
            assert incidents.shown[0].id in app.last_snapshot.read_text()
    finally:
        if setup.connection is not None:
            setup.connection.close()
        engine.archive.close()


def test_demo_refuses_a_bad_speed_and_explains_kubectl(tmp_path, capsys):
    from ktriage.demo import how_to_use, run_demo

    options = DemoOptions(scenario="cryptominer", speed=0.0, directory=tmp_path / "d")
    assert run_demo(options, Config()) == 2
    assert "--speed must be greater than 0" in capsys.readouterr().err

    class FakeSim:  # only what how_to_use reads
        url = "https://127.0.0.1:1234"
        kubeconfig_path = tmp_path / "kubeconfig"

        class outputs:
            audit_path = tmp_path / "audit.log"
            falco_path = tmp_path / "falco.jsonl"
            tetragon_path = tmp_path / "tetragon.jsonl"

    lines = how_to_use(FakeSim, "cryptominer", 2.0)
    assert f"kubectl --kubeconfig {tmp_path / 'kubeconfig'} get pods -A" in lines[1]


async def test_two_simulated_clusters_in_one_screen_as_demo_clusters_2_runs_them(tmp_path):
    from ktriage.demo import DEMO_CONTEXTS, cluster_live_options
    from ktriage.sim.runner import SimCluster, write_joint_kubeconfig

    sims = {}
    try:
        for name in DEMO_CONTEXTS:
            sims[name] = SimCluster(tmp_path / name, scenario="cryptominer", speed=60.0).start()
        kubeconfig = write_joint_kubeconfig(tmp_path / "kubeconfig", sims)
        setup = build_live(
            cluster_live_options(sims, kubeconfig, DemoOptions(clusters=2)), Config()
        )
        engine = setup.engine
        app = make_app(engine, tmp_path, mode="demo", clock=None, start_sources=True)
        try:
            async with app.run_test(size=(160, 45)) as pilot:
                incidents = app.screen.query_one(IncidentList)
                await wait_for(
                    pilot,
                    lambda: (
                        {i.cluster for i in incidents.shown if "storefront" in i.title}
                        == set(DEMO_CONTEXTS)
                    ),
                    timeout=40,
                )
                assert "CLUSTER" in screen_text(app)
                await wait_for(
                    pilot,
                    lambda: all(
                        f"{n} ●" in screen_text(app).splitlines()[0] for n in DEMO_CONTEXTS
                    ),
                    timeout=15,
                )
                # The Pods pane lists the selected incident's cluster's pods: a pod
                # deleted in the other cluster stays listed here.
                west = next(i for i in incidents.shown if i.cluster == DEMO_CONTEXTS[1])
                incidents.select_id(west.id)
                pods = app.screen.query_one(PodList)
                await wait_for(
                    pilot, lambda: any(r.info is not None for r in pods.rows), timeout=15
                )
                row = next(r for r in pods.rows if r.info is not None)
                east = sims[DEMO_CONTEXTS[0]]
                east.store.delete("v1", "Pod", row.namespace, row.name)
                state = engine.members[DEMO_CONTEXTS[0]].cluster
                await wait_for(pilot, lambda: (row.namespace, row.name) not in state.pods)
                app.screen.refresh_pods(force=True)
                assert any(r.name == row.name and r.info is not None for r in pods.rows)
        finally:
            setup.close_connections()
            engine.archive.close()
    finally:
        for sim in sims.values():
            sim.stop()
