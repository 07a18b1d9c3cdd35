"""The Pods pane while a big cluster's pods are listed: it grows page by page with
"loading N…", then shows exactly the server's pods."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
from ui_helpers import make_app, screen_text, wait_for

from ktriage.core.config import Config
from ktriage.live import build_live
from ktriage.options import LiveOptions
from ktriage.ui.widgets.pod_list import PodList

pytestmark = pytest.mark.sim

PODS = 700  # two pages of the live source's 500


@pytest.fixture
def big_sim(tmp_path):
    from ktriage.sim.bulk import seed_pods
    from ktriage.sim.runner import SimCluster

    cluster = SimCluster(tmp_path / "sim")
    seed_pods(cluster.store, PODS, namespaces=3, nodes=4)
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


@contextlib.asynccontextmanager
async def all_pods_shown(tmp_path, sim) -> AsyncIterator[tuple[Any, Any, PodList]]:
    """ktriage's live UI on `sim`, its Pods pane focused and showing all pods: (app,
    pilot, the pane)."""
    options = LiveOptions(kubeconfig=str(sim.kubeconfig_path), falco=("off",), tetragon=("off",))
    setup = build_live(options, Config())
    engine = setup.engine
    app = make_app(engine, tmp_path, mode="live", clock=None, start_sources=True)
    try:
        async with app.run_test(size=(160, 45)) as pilot:
            pods = app.screen.query_one(PodList)
            pods.focus()
            await pilot.press("a")
            await wait_for(pilot, lambda: pods.show_all)
            yield app, pilot, pods
    finally:
        if setup.connection is not None:
            setup.connection.close()
        engine.archive.close()


async def test_pod_count_on_screen_grows_before_the_list_is_complete(tmp_path, big_sim):
    sim = big_sim
    total = len(sim.store.snapshot("v1", "Pod")[0])
    # Every answer takes a while: the first page is on screen well before the second.
    sim.faults.latency = 1.5
    async with all_pods_shown(tmp_path, sim) as (app, pilot, pods):

        def partial() -> bool:
            return 0 < len(pods.rows) < total and pods.loading_count == len(pods.rows)

        await wait_for(pilot, partial, timeout=30)
        shown = len(pods.rows)
        await wait_for(pilot, lambda: f"loading {shown:,}…" in screen_text(app), timeout=5)
        # Keys are answered while the rest loads.
        await pilot.press("j")
        assert pods.cursor == 1
        await wait_for(pilot, lambda: pods.loading_count is None, timeout=30)
        await wait_for(pilot, lambda: len(pods.rows) == total, timeout=5)
        server = {
            (p["metadata"]["namespace"], p["metadata"]["name"])
            for p in sim.store.snapshot("v1", "Pod")[0]
        }
        assert {r.key for r in pods.rows} == server
        await wait_for(pilot, lambda: "loading" not in screen_text(app), timeout=5)
        assert f"{total} · all pods" in screen_text(app)


async def test_first_page_and_list_end_show_without_waiting_for_the_slow_tick(
    tmp_path, big_sim, monkeypatch
):
    import ktriage.ui.app as app_module

    # The pane's regular refresh (about twice a second) never comes in this test: what
    # shows, the first page and the end of the list, shows at the list's edges.
    monkeypatch.setattr(app_module, "SLOW_EVERY", 10**9)
    sim = big_sim
    total = len(sim.store.snapshot("v1", "Pod")[0])
    sim.faults.latency = 1.0
    async with all_pods_shown(tmp_path, sim) as (_app, pilot, pods):
        await wait_for(pilot, lambda: 0 < len(pods.rows) < total, timeout=30)
        assert pods.loading_count == len(pods.rows)
        await wait_for(pilot, lambda: len(pods.rows) == total, timeout=30)
        assert pods.loading_count is None
