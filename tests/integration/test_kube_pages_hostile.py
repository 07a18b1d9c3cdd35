"""Hostile pod lists against the simulated API server over HTTP: the longest names a
pod may have, a pod of 10,000 containers and 10,000 labels, and a continue token
turned to garbage on its way (the server refuses it with 400; ktriage says so in a
line and lists again). Each list still ends equal to the server's."""

from __future__ import annotations

import time
from typing import Any

import pytest
import sim_builders as builders
from test_kube_pages import pods_source, server_pods
from waiting import wait_for

from ktriage.sim.bulk import seed_pods
from ktriage.sim.runner import SimCluster
from ktriage.sources.kube import KubeWatchSource

pytestmark = pytest.mark.sim


async def test_hostile_longest_names_list_in_full(sim_cluster: SimCluster) -> None:
    sim = sim_cluster
    names = [f"{i:03d}-" + "n" * 247 + "-x" for i in range(120)]  # 253 characters each
    for name in names:
        sim.store.apply(builders.pod("long", name, [builders.container("c", "alpine:3.20")]))
    async with pods_source(sim) as (_engine, state, src, pages):
        await wait_for(src.synced.is_set, timeout=60, what="the list complete")
        assert {k: p.resource_version for k, p in state.pods.items()} == server_pods(sim)
        assert {n for ns, n in state.pods if ns == "long"} == set(names)
        assert len(pages.seen) >= 3  # (40 a page)


async def test_hostile_pod_of_10000_containers_and_labels(sim_cluster: SimCluster) -> None:
    sim = sim_cluster
    seed_pods(sim.store, 100, namespaces=2, nodes=2)
    containers = [builders.container(f"c{i}", f"registry.example/img-{i}:1") for i in range(10_000)]
    wide = builders.pod("wide", "many", containers)
    wide["metadata"]["labels"] = {f"label-{i}": f"value-{i}" for i in range(10_000)}
    sim.store.apply(wide)
    started = time.monotonic()
    async with pods_source(sim) as (_engine, state, src, _pages):
        await wait_for(src.synced.is_set, timeout=120, what="the list complete")
        took = time.monotonic() - started
        assert {k: p.resource_version for k, p in state.pods.items()} == server_pods(sim)
        info = state.pods[("wide", "many")]
        assert len(info.containers) == 10_000 and len(info.images) == 10_000
        assert len(info.labels) == 10_000
        assert took < 60


class GarbledToken(KubeWatchSource):
    """The first list's first continue token arrives garbled (as from a broken
    proxy, or a server that sends garbage): the next page's request carries it."""

    garbled = 0

    def _decode_page(self, data: bytes, rv: str) -> Any:
        page, rv, token = super()._decode_page(data, rv)
        if token and not self.garbled:
            type(self).garbled += 1
            token = "garbage!" + token[::-1]
        return page, rv, token


async def test_hostile_garbage_continue_token_is_said_and_listed_again(
    sim_cluster: SimCluster,
) -> None:
    sim = sim_cluster
    seed_pods(sim.store, 200, namespaces=2, nodes=2)
    async with pods_source(sim, GarbledToken) as (_engine, state, src, pages):
        await wait_for(src.synced.is_set, timeout=60, what="the list complete")
        assert GarbledToken.garbled == 1
        assert src.errors["400"] == 1 and src.lists == 1
        said = [msg for _, msg in src.history if "400" in msg]
        assert said and "continue key is not valid" in said[0], src.history
        # The first attempt's page, then the list again from its start.
        assert pages.seen[0][1] == 40 and pages.seen[1][1] == 40
        assert {k: p.resource_version for k, p in state.pods.items()} == server_pods(sim)
        assert src.health.state == "connected"
