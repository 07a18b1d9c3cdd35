"""A big pod list applied page by page as the pages arrive, against the simulated API
server over HTTP: the state grows before the list is complete, ends equal to the
server's, and a list broken midway (its continue token expired: 410) starts over
and still ends consistent."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import sim_builders as builders
from waiting import wait_for

from ktriage.core.cluster import ClusterState
from ktriage.engine import Engine
from ktriage.sim.bulk import seed_pods
from ktriage.sim.runner import SimCluster
from ktriage.sources import listgc
from ktriage.sources.kube import Backoff, KubeConnection, KubeWatchSource, WatchTimeouts

pytestmark = pytest.mark.sim

FAST = Backoff(initial=0.05, cap=0.5)
TIMEOUTS = WatchTimeouts(connect=2.0, watch=300.0, read=10.0)
PODS = 400
PAGE = 40


def server_pods(sim: SimCluster) -> dict[tuple[str, str], str]:
    return {
        (p["metadata"]["namespace"], p["metadata"]["name"]): p["metadata"]["resourceVersion"]
        for p in sim.store.snapshot("v1", "Pod")[0]
    }


class Pages:
    """What the state held after each page applied (pods, loading count)."""

    def __init__(self, state: ClusterState) -> None:
        self.seen: list[tuple[int, int | None]] = []
        apply = state.apply_pod_page

        def recording(objs: Any) -> Any:
            events = apply(objs)
            self.seen.append((len(state.pods), state.pods_loading))
            return events

        state.apply_pod_page = recording  # type: ignore[method-assign]


@contextlib.asynccontextmanager
async def pods_source(
    sim: SimCluster,
    source_class: type[KubeWatchSource] = KubeWatchSource,
    before_start: Callable[[KubeWatchSource], Awaitable[None]] | None = None,
) -> AsyncIterator[tuple[Engine, ClusterState, KubeWatchSource, Pages]]:
    conn = KubeConnection.connect(str(sim.kubeconfig_path))
    engine = Engine()
    state = ClusterState()
    pages = Pages(state)
    src = source_class(conn, "pods", state, backoff=FAST, timeouts=TIMEOUTS, page_size=PAGE)
    engine.add_source(src)
    if before_start is not None:
        await before_start(src)
    await engine.start()
    try:
        yield engine, state, src, pages
    finally:
        await engine.stop(timeout=1.0)
        await asyncio.to_thread(src.join, 1.0)
        conn.close()
        engine.archive.close()


async def test_pages_are_applied_as_they_arrive(sim_cluster: SimCluster) -> None:
    sim = sim_cluster
    seed_pods(sim.store, PODS, namespaces=4, nodes=5)
    total = len(server_pods(sim))
    sim.faults.latency = 0.05  # each page takes a while, as over a real network
    async with pods_source(sim) as (_engine, state, src, pages):
        await wait_for(src.synced.is_set, timeout=60, what="the list complete")
        # Every page showed as it came: the state grew page by page.
        counts = [n for n, _ in pages.seen]
        assert len(counts) == -(-total // PAGE)
        assert counts == sorted(counts) and counts[0] == PAGE and counts[-1] == total
        assert all(loading == n for n, loading in pages.seen)  # "loading N…"
        assert state.pods_loading is None and state.pods_complete
        # And the list is the server's, watched on from its resourceVersion.
        assert {k: p.resource_version for k, p in state.pods.items()} == server_pods(sim)
        sim.faults.latency = 0.0
        sim.store.apply(builders.pod("shop", "late", [builders.container("x", "alpine:3.20")]))
        await wait_for(lambda: ("shop", "late") in state.pods, what="a pod added after the list")
        assert src.lists == 1 and src.relists == 0


class ExpiringMidList(KubeWatchSource):
    """Between the first and the second page of the first list, the server changes
    (a pod of the first page deleted, one added) and compacts its history, so the
    list's continue token is too old: the next page is answered 410 Expired."""

    sim: SimCluster
    gone: tuple[str, str] | None = None

    def _decode_page(self, data: bytes, rv: str) -> Any:
        page, rv, token = super()._decode_page(data, rv)
        if self.gone is None and token:
            meta = page[3]["metadata"]
            self.gone = (meta["namespace"], meta["name"])
            self.sim.store.delete("v1", "Pod", *self.gone)
            self.sim.store.apply(
                builders.pod("shop", "while-listing", [builders.container("x", "alpine:3.20")])
            )
            self.sim.store.compact()
        return page, rv, token


async def test_hostile_continue_expired_mid_list_starts_over_consistent(
    sim_cluster: SimCluster,
) -> None:
    sim = sim_cluster
    seed_pods(sim.store, PODS, namespaces=4, nodes=5)
    ExpiringMidList.sim = sim
    async with pods_source(sim, ExpiringMidList) as (engine, state, src, pages):
        await wait_for(src.synced.is_set, timeout=60, what="the list complete")
        assert isinstance(src, ExpiringMidList) and src.gone is not None
        # The first attempt applied its first page, then met the 410 and listed again.
        assert src.relists == 1 and src.errors["410"] == 1
        assert pages.seen[0] == (PAGE, PAGE) and pages.seen[1][1] == PAGE  # counted anew
        assert any("410" in msg for _, msg in src.history)
        assert {k: p.resource_version for k, p in state.pods.items()} == server_pods(sim)
        assert src.gone not in state.pods and ("shop", "while-listing") in state.pods
        # The pod deleted mid-list was reported gone once; no event came twice.
        deleted = [e for e in engine.store if e.kind == "pod-deleted"]
        assert [e.entities[0].name for e in deleted] == [src.gone[1]]
        refs = Counter(e.ref for e in engine.store)
        assert engine.store.duplicates == 0 and set(refs.values()) == {1}
        started = time.monotonic()
        sim.store.delete("v1", "Pod", "shop", "while-listing")
        await wait_for(lambda: ("shop", "while-listing") not in state.pods, what="the watch")
        assert time.monotonic() - started < 10


class ResetMidList(KubeWatchSource):
    """After the first page of the first list, the server changes (a listed pod is
    deleted) and the connection of the next page's request is reset."""

    sim: SimCluster
    gone: tuple[str, str] | None = None

    def _decode_page(self, data: bytes, rv: str) -> Any:
        page, rv, token = super()._decode_page(data, rv)
        if self.gone is None and token:
            meta = page[0]["metadata"]
            self.gone = (meta["namespace"], meta["name"])
            self.sim.store.delete("v1", "Pod", *self.gone)
            self.sim.faults.reset_next(1)
        return page, rv, token


async def test_hostile_connection_reset_mid_list_starts_over_consistent(
    sim_cluster: SimCluster,
) -> None:
    sim = sim_cluster
    seed_pods(sim.store, PODS, namespaces=4, nodes=5)
    ResetMidList.sim = sim
    async with pods_source(sim, ResetMidList) as (engine, state, src, pages):
        await wait_for(src.synced.is_set, timeout=60, what="the list complete")
        assert isinstance(src, ResetMidList) and src.gone is not None
        assert src.errors["network"] >= 1 and src.lists == 1
        assert pages.seen[0] == (PAGE, PAGE) and pages.seen[1][1] == PAGE  # listed anew
        assert {k: p.resource_version for k, p in state.pods.items()} == server_pods(sim)
        assert src.gone not in state.pods
        deleted = [e for e in engine.store if e.kind == "pod-deleted"]
        assert [e.entities[0].name for e in deleted] == [src.gone[1]]
        assert engine.store.duplicates == 0
        assert src.health.state == "connected"


class RecordingCollector(KubeWatchSource):
    """Records, for each page it decodes, which list it is of (lists done before it)
    and whether the cyclic collector was running."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.seen: list[tuple[int, bool]] = []

    def _decode_page(self, data: bytes, rv: str) -> Any:
        self.seen.append((self.lists, gc.isenabled()))
        return super()._decode_page(data, rv)


async def test_first_list_is_decoded_with_the_collector_paused_and_later_ones_are_not(
    sim_cluster: SimCluster,
) -> None:
    """As the UI runs it: the first list's pages are decoded with the collector paused
    and frozen afterwards; the collector runs again between pages and after the list;
    a relist (410 after a cut) decodes as usual. The state ends as the server's."""
    sim = sim_cluster
    seed_pods(sim.store, PODS, namespaces=4, nodes=5)
    total = len(server_pods(sim))
    frozen_before = gc.get_freeze_count()
    listgc.keep_first_lists_out(True)
    try:
        async with pods_source(sim, RecordingCollector) as (_engine, state, src, _pages):
            assert isinstance(src, RecordingCollector)
            await wait_for(src.synced.is_set, timeout=60, what="the list complete")
            first = [running for lists, running in src.seen if lists == 0]
            assert len(first) == -(-total // PAGE) and not any(first)
            assert gc.get_freeze_count() > frozen_before  # the pages' objects, frozen
            assert gc.isenabled()
            # Away while the server moves on and compacts: watching on is refused (410).
            sim.faults.fail_next(100_000, 500)
            sim.faults.cut_watches()
            await wait_for(lambda: src.health.state == "reconnecting", what="reconnecting")
            sim.store.apply(builders.pod("shop", "while-away", [builders.container("x", "a:1")]))
            sim.store.compact()
            sim.faults.reset()
            # (`relists` counts when the relist is decided; `lists` when a list is done.)
            await wait_for(
                lambda: src.relists >= 1 and src.lists >= 2,
                timeout=60,
                what="a relist after the cut, complete",
            )
            later = [running for lists, running in src.seen if lists >= 1]
            assert later and all(later)
            await wait_for(
                lambda: {k: p.resource_version for k, p in state.pods.items()} == server_pods(sim),
                what="the state equal to the server's",
            )
            assert gc.isenabled()
    finally:
        listgc.keep_first_lists_out(False)
        gc.unfreeze()


class CountingPages(KubeWatchSource):
    """Records the continue token of every page it asks for (None: a first page)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.asked: list[str | None] = []

    def _request_page(self, token: str | None) -> bytes:
        self.asked.append(token)
        return super()._request_page(token)


@contextlib.asynccontextmanager
async def early_pods_source(
    sim: SimCluster, *, answered_first: bool = True
) -> AsyncIterator[tuple[Engine, ClusterState, CountingPages, Any]]:
    """A pods source whose first page is asked for before the engine starts it, as
    `ktriage` does while its UI loads (live.run_live); the engine is started once
    that request has ended, or at once (`answered_first` False). Yields the early
    request too."""
    asked: list[Any] = []

    async def ask_early(src: KubeWatchSource) -> None:
        assert isinstance(src, CountingPages)
        src.ask_first_page()
        src.ask_first_page()  # once only
        early = src._early
        assert early is not None
        asked.append(early)
        if answered_first:
            await asyncio.to_thread(early._thread.join, 30)
            assert src.asked == [None] and not early._thread.is_alive()

    async with pods_source(sim, CountingPages, ask_early) as (engine, state, src, _pages):
        assert isinstance(src, CountingPages)
        yield engine, state, src, asked[0]


async def test_a_first_page_asked_for_before_the_start_is_the_lists_first(
    sim_cluster: SimCluster,
) -> None:
    sim = sim_cluster
    seed_pods(sim.store, PODS, namespaces=4, nodes=5)
    async with early_pods_source(sim) as (_engine, state, src, _early):
        await wait_for(src.synced.is_set, timeout=60, what="the list complete")
        # The first page was asked for once, before the start; the list went on from
        # its continue token, and ended as the server's pods.
        assert src.asked[0] is None and src.asked.count(None) == 1
        assert len(src.asked) == -(-len(server_pods(sim)) // PAGE)
        assert {k: p.resource_version for k, p in state.pods.items()} == server_pods(sim)
        assert src.lists == 1 and not src.errors


async def test_hostile_a_first_page_asked_early_that_failed_is_asked_again(
    sim_cluster: SimCluster,
) -> None:
    sim = sim_cluster
    seed_pods(sim.store, PODS, namespaces=4, nodes=5)
    sim.faults.fail_next(1, 500)  # the early request is answered 500
    async with early_pods_source(sim) as (_engine, state, src, _early):
        await wait_for(src.synced.is_set, timeout=60, what="the list complete")
        # Its error was the list's first request's: counted, then listed again.
        assert src.errors["500"] == 1
        assert src.asked.count(None) == 2
        assert {k: p.resource_version for k, p in state.pods.items()} == server_pods(sim)
        assert any("API server error 500" in message for _, message in src.history)


def test_a_live_setup_asks_each_list_for_its_first_page(sim_cluster: SimCluster) -> None:
    from ktriage.cli import build_parser
    from ktriage.live import build_live
    from ktriage.options import LiveOptions
    from ktriage.sources.kube import ListWatch

    args = build_parser().parse_args(
        ["--kubeconfig", str(sim_cluster.kubeconfig_path), "--falco", "off", "--tetragon", "off"]
    )
    setup = build_live(LiveOptions.from_args(args))
    lists = [s for s in setup.engine.sources if isinstance(s, ListWatch)]
    try:
        assert {s.resource for s in lists} == {"pods", "nodes", "events"}
        setup.ask_first_pages()
        for source in lists:
            assert source._early is not None
            source._early._thread.join(30)
            assert source._early.result()  # each one's first page, answered
    finally:
        for source in lists:
            source.close()
        setup.close_connections()
        setup.engine.archive.close()


async def test_a_list_started_while_its_early_page_is_on_the_way_waits_for_it(
    sim_cluster: SimCluster,
) -> None:
    """As in `ktriage`: the UI starts the list while the early request still waits
    for the server; the list takes that answer when it comes, asking nothing twice."""
    sim = sim_cluster
    seed_pods(sim.store, PODS, namespaces=4, nodes=5)
    sim.faults.latency = 0.3  # every answer takes a while
    try:
        async with early_pods_source(sim, answered_first=False) as (_engine, state, src, early):
            assert early._thread.is_alive()  # started before the answer came
            await wait_for(src.synced.is_set, timeout=60, what="the list complete")
            assert src.asked.count(None) == 1 and src.lists == 1 and not src.errors
            assert {k: p.resource_version for k, p in state.pods.items()} == server_pods(sim)
    finally:
        sim.faults.latency = 0.0


def test_hostile_a_ui_that_cannot_start_ends_the_early_requests(
    sim_cluster: SimCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`ktriage` whose UI cannot be imported says so (exit 2) and stops the lists
    whose first pages it had asked for: a request still waiting for the server's
    headers cannot be cut (as before), but its answer, when it comes, ends it."""
    import sys
    import threading

    from ktriage.cli import build_parser
    from ktriage.live import run_live
    from ktriage.options import LiveOptions
    from ktriage.sources import kube as kube_module
    from ktriage.sources.kube import ListWatch

    sim_cluster.faults.hang(True)  # no first page ever comes
    asked: list[ListWatch] = []
    ask = ListWatch.ask_first_page

    def recording(self: ListWatch) -> None:
        asked.append(self)
        ask(self)

    monkeypatch.setattr(ListWatch, "ask_first_page", recording)
    monkeypatch.setitem(sys.modules, "ktriage.ui.app", None)  # importing it fails
    args = build_parser().parse_args(
        ["--kubeconfig", str(sim_cluster.kubeconfig_path), "--falco", "off", "--tetragon", "off"]
    )
    try:
        assert run_live(LiveOptions.from_args(args)) == 2
        assert {s.resource for s in asked} == {"pods", "nodes", "events"}
        assert all(source._stop.is_set() for source in asked)
    finally:
        sim_cluster.faults.hang(False)
    for source in asked:
        early = source._early
        assert early is not None
        early._thread.join(10)
        assert not early._thread.is_alive()
        with pytest.raises(kube_module._Stopped):
            early.result()  # the answer came after the stop: not taken
    assert not [t for t in threading.enumerate() if t.name.startswith("ktriage-list-")]
