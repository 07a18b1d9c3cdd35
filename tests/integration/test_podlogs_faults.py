"""Sensor pod logs when the API server says no: a refused or throttled log request is
said in words and retried until the alerts come, a pod whose log is gone (404) is let
go quietly, and an identity that may not list pods cluster-wide looks where the sensor
usually runs. Against the simulated API server's fault API on loopback."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest
import sim_builders as builders
from test_live_scenarios import falco_line, falco_pod
from waiting import wait_for

from ktriage.engine import Engine
from ktriage.sim.runner import SimCluster
from ktriage.sources.kube import Backoff, KubeConnection, WatchTimeouts
from ktriage.sources.podlogs import PodLogSource

pytestmark = pytest.mark.sim

FAST = Backoff(initial=0.05, cap=0.5)
TIMEOUTS = WatchTimeouts(connect=2.0, watch=300.0, read=10.0, stall=5.0)
LOG_PATH = "/namespaces/falco/pods/falco-a/log"


def _alerts(engine: Engine) -> list[int]:
    return sorted(int(e.summary.split("n=")[1].split(")")[0]) for e in engine.store)


def _said(src: PodLogSource, words: str) -> bool:
    return any(words in message for _, message in src.history)


@contextlib.asynccontextmanager
async def following(sim: SimCluster) -> AsyncIterator[tuple[PodLogSource, Engine]]:
    sim.store.apply(builders.namespace("falco"))
    sim.store.apply(falco_pod("falco-a", "worker-1"))
    conn = KubeConnection.connect(str(sim.kubeconfig_path))
    engine = Engine()
    src = PodLogSource(conn, "falco", start="beginning", backoff=FAST, timeouts=TIMEOUTS)
    engine.add_source(src)
    await engine.start()
    try:
        yield src, engine
    finally:
        await engine.stop()
        assert await asyncio.to_thread(src.join, 1.0)
        conn.close()
        engine.archive.close()


async def test_a_refused_log_request_is_said_and_retried_until_the_alerts_come(
    sim_cluster: SimCluster,
) -> None:
    sim = sim_cluster
    sim.faults.match = LOG_PATH
    sim.faults.fail_next(2, code=500)
    async with following(sim) as (src, engine):
        sim.store.append_log("falco", "falco-a", "falco", falco_line(1))
        await wait_for(
            lambda: _said(src, "logs of falco/falco-a:") and _said(src, "retrying in"),
            what=lambda: list(src.history),
        )
        await wait_for(lambda: _alerts(engine) == [1], what=lambda: _alerts(engine))
        assert sim.faults.injected >= 2
        assert engine.store.duplicates == 0


async def test_a_throttled_log_request_waits_as_long_as_the_server_asks(
    sim_cluster: SimCluster,
) -> None:
    sim = sim_cluster
    sim.faults.match = LOG_PATH
    sim.faults.throttle(1, retry_after=1)
    async with following(sim) as (src, engine):
        sim.store.append_log("falco", "falco-a", "falco", falco_line(3))
        await wait_for(lambda: _said(src, "retrying in 1.0 s"), what=lambda: list(src.history))
        await wait_for(lambda: _alerts(engine) == [3], what=lambda: _alerts(engine))


async def test_a_log_that_is_gone_lets_the_pod_go_without_a_word(
    sim_cluster: SimCluster,
) -> None:
    sim = sim_cluster
    sim.faults.match = LOG_PATH
    sim.faults.fail_next(1, code=404)
    async with following(sim) as (src, engine):
        await asyncio.wait_for(src.synced.wait(), 10)
        # The follower ended on the 404 (the pod is gone, as far as its log goes).
        await wait_for(
            lambda: ("falco", "falco-a") not in src.followers,
            what=lambda: (list(src.followers), list(src.history)),
        )
        assert sim.faults.injected == 1
        assert not _said(src, "logs of falco/falco-a")
        # When the pod shows up again (a change to it), its log is followed again.
        sim.store.mutate(
            "v1",
            "Pod",
            "falco",
            "falco-a",
            lambda obj: obj["metadata"].setdefault("labels", {}).update({"seen": "again"}),
        )
        sim.store.append_log("falco", "falco-a", "falco", falco_line(4))
        await wait_for(lambda: _alerts(engine) == [4], what=lambda: _alerts(engine))


async def test_not_allowed_cluster_wide_looks_in_the_sensors_namespace(
    sim_cluster: SimCluster,
) -> None:
    sim = sim_cluster
    # Only the cluster-wide list of pods is forbidden (its path has no namespace).
    sim.faults.match = "/api/v1/pods"
    sim.faults.fail_next(1, code=403)
    async with following(sim) as (src, engine):
        await wait_for(
            lambda: _said(
                src,
                "not allowed to list pods in all namespaces; looking for falco pods in "
                "namespace falco",
            ),
            what=lambda: list(src.history),
        )
        sim.store.append_log("falco", "falco-a", "falco", falco_line(5))
        await wait_for(lambda: _alerts(engine) == [5], what=lambda: _alerts(engine))
        assert src.health.state == "connected", src.health
