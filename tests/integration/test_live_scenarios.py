"""The three scenarios end to end from live sources against the simulated cluster:
the kube watches, the audit log followed as a file, and Falco and Tetragon read
from their pods' logs (`--falco auto`, `--tetragon auto`).

The oracle is the scenario's own record: every audit event, Falco alert and
Tetragon event the sim wrote to its files must have reached the live store (by
source and ref, so through pod logs too), and every incident `replay` finds in
those files must be inside one live incident at least as severe. What only the
cluster's state can tell (OOM kills, crash loops, new privileged pods) must join
the incidents it belongs to."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from waiting import wait_for

from ktriage.core.cluster import ClusterState
from ktriage.core.config import Config, Suppression
from ktriage.core.correlate import Correlator
from ktriage.core.model import Severity
from ktriage.core.replay import Replayer
from ktriage.engine import Engine
from ktriage.sim.clock import ManualClock
from ktriage.sim.runner import SimCluster
from ktriage.sources.kube import Backoff, KubeConnection, kube_sources
from ktriage.sources.podlogs import PodLogSource
from ktriage.sources.tail import FileSource

pytestmark = pytest.mark.sim

FAST = Backoff(initial=0.05, cap=0.5)
# The SRE's exec in `dev` is agreed access; a user would say so in the config.
QUIET_CONFIG = Config(
    suppressions=[Suppression(namespace="dev", reason="on-call debugging in dev, agreed")]
)


async def play_live(sim: SimCluster, config: Config | None = None) -> tuple[Engine, Correlator]:
    """Run the live sources while the scenario plays; returns the live engine and a
    replay of the sim's files (the oracle)."""
    conn = KubeConnection.connect(str(sim.kubeconfig_path))
    engine = Engine(config)
    state = ClusterState()
    watches = kube_sources(conn, state, backoff=FAST)
    logs = [PodLogSource(conn, kind, backoff=FAST) for kind in ("falco", "tetragon")]
    audit = FileSource(sim.outputs.audit_path, "audit", start="beginning", poll_interval=0.05)
    for src in [*watches, *logs, audit]:
        engine.add_source(src)
    await engine.start()
    try:
        for src in [*watches, *logs]:
            await asyncio.wait_for(src.synced.wait(), 10)
        # Falco and Tetragon are read from "now" on (the default): wait until every
        # sensor pod's stream is open before the scenario starts writing.
        for src in logs:
            await wait_for(
                lambda src=src: src.followers and src.streams_open() == len(src.followers),
                what=f"{src.kind} log streams",
            )
        player = sim.player
        while not player.done:
            await asyncio.to_thread(sim.advance, 1.0)
        assert not player.errors, player.errors

        oracle = Replayer(Correlator(config=config))
        oracle.replay([sim.outputs.audit_path, sim.outputs.falco_path, sim.outputs.tetragon_path])
        assert sum(oracle.ingestor.skipped.values()) == 0
        wanted = {(e.source, e.ref) for e in oracle.correlator.store}
        assert {s for s, _ in wanted} == {"audit", "falco", "tetragon"}

        def missing() -> set[tuple[str, str]]:
            return wanted - {(e.source, e.ref) for e in engine.store}

        await wait_for(lambda: not missing(), what=lambda: sorted(missing())[:5])
        # Pod logs start at the end: the sensors' start-up messages were not read.
        assert all(sum(src.health.skipped.values()) == 0 for src in [*logs, audit])
        assert engine.store.duplicates == 0
        return engine, oracle.correlator
    finally:
        await engine.stop()
        for src in [*watches, *logs]:
            assert await asyncio.to_thread(src.join, 1.0)
        conn.close()
        engine.archive.close()


def live_incident_holding(engine: Engine, keys: set[tuple[str, str]]) -> Any:
    correlator = engine.correlator
    for inc in correlator.incidents.values():
        have = {(e.source, e.ref) for e in correlator.events_of(inc.id)}
        if keys <= have:
            return inc
    return None


def check_against_replay(engine: Engine, oracle: Correlator) -> None:
    for rinc in oracle.incidents.values():
        keys = {(e.source, e.ref) for e in oracle.events_of(rinc.id)}
        linc = live_incident_holding(engine, keys)
        assert linc is not None, f"no live incident holds replay's {rinc.title}"
        assert linc.severity >= rinc.severity


def kube_kinds(engine: Engine, incident_id: str) -> set[str]:
    return {e.kind for e in engine.correlator.events_of(incident_id) if e.source == "kube"}


async def test_cryptominer_live(make_sim_cluster: Callable[..., SimCluster]) -> None:
    sim = make_sim_cluster(scenario="cryptominer", clock=ManualClock())
    engine, oracle = await play_live(sim)
    check_against_replay(engine, oracle)
    top = engine.correlator.sorted_incidents()[0]
    assert top.severity == Severity.CRITICAL
    assert "storefront" in top.title
    assert set(top.counts_by_source) == {"audit", "falco", "tetragon", "kube"}
    # The pod's OOM kills and crash loop, seen only in its state, are in the incident.
    assert {"oomkilled", "crashloop"} <= kube_kinds(engine, top.id)


async def test_token_theft_live(make_sim_cluster: Callable[..., SimCluster]) -> None:
    sim = make_sim_cluster(scenario="token-theft", clock=ManualClock())
    engine, oracle = await play_live(sim)
    check_against_replay(engine, oracle)
    pwn = next(
        i for i in engine.correlator.incidents.values() if "privileged pod" in i.title.lower()
    )
    assert pwn.severity == Severity.CRITICAL
    # The attacker's privileged hostPath pod, as the watch saw it appear.
    assert "privileged-pod" in kube_kinds(engine, pwn.id)
    assert len(engine.correlator.incidents) == len(oracle.incidents)


async def test_quiet_day_live(make_sim_cluster: Callable[..., SimCluster]) -> None:
    sim = make_sim_cluster(scenario="quiet-day", clock=ManualClock())
    engine, oracle = await play_live(sim, QUIET_CONFIG)
    check_against_replay(engine, oracle)
    # Rolling updates, scaling and a finished job: the cluster's state adds context,
    # and nothing above low.
    assert sum(1 for e in engine.store if e.source == "kube") > 0
    assert all(i.severity <= Severity.LOW for i in engine.correlator.incidents.values()), [
        (i.severity.label, i.title) for i in engine.correlator.incidents.values()
    ]


# ---- --falco auto: pods that restart, appear and go -----------------------------------


def falco_line(n: int, pod: str = "web-1") -> str:
    import orjson

    return orjson.dumps(
        {
            "output": f"Notice A shell was spawned in a container (n={n})",
            "priority": "Notice",
            "rule": "Terminal shell in container",
            "time": f"2026-01-01T00:00:{n % 60:02d}.000000000Z",
            "source": "syscall",
            "hostname": "worker-1",
            "tags": ["container", "shell", "mitre_execution"],
            "output_fields": {"k8s.ns.name": "shop", "k8s.pod.name": pod, "n": n},
        }
    ).decode()


def falco_pod(name: str, node: str) -> dict[str, Any]:
    import sim_builders as builders

    return builders.pod(
        "falco",
        name,
        [builders.container("falco", "docker.io/falcosecurity/falco:0.41.3")],
        node_name=node,
        labels={"app.kubernetes.io/name": "falco"},
    )


async def test_falco_auto_follows_restarts_and_new_pods(sim_cluster: SimCluster) -> None:
    import sim_builders as builders

    sim = sim_cluster
    store = sim.store
    store.apply(builders.namespace("falco"))
    store.apply(falco_pod("falco-a", "worker-1"))
    store.append_log("falco", "falco-a", "falco", "Falco version: 0.41.3 (x86_64)")
    store.append_log("falco", "falco-a", "falco", falco_line(0))  # before we start
    conn = KubeConnection.connect(str(sim.kubeconfig_path))
    engine = Engine()
    src = PodLogSource(conn, "falco", backoff=FAST)
    engine.add_source(src)
    await engine.start()

    def alerts() -> list[int]:
        return sorted(int(e.summary.split("n=")[1].split(")")[0]) for e in engine.store)

    try:
        await asyncio.wait_for(src.synced.wait(), 10)
        await wait_for(lambda: src.streams_open() == 1)
        follower = src.followers[("falco", "falco-a")]
        store.append_log("falco", "falco-a", "falco", "Loaded event sources: syscall")
        for n in (1, 2):
            store.append_log("falco", "falco-a", "falco", falco_line(n))
        await wait_for(lambda: alerts() == [1, 2], what=alerts)  # from "now" on
        await wait_for(lambda: src.non_alert == 1)

        # Falco restarts: its stream ends; what the new container prints is read, once.
        store.set_container_state("falco", "falco-a", "falco", "running", restart=True)
        for n in (3, 4):
            store.append_log("falco", "falco-a", "falco", falco_line(n))
        await wait_for(lambda: alerts() == [1, 2, 3, 4], what=alerts)
        assert follower.opens >= 2

        # A new Falco pod appears (a node joined): all of its log is new.
        store.apply(falco_pod("falco-b", "worker-2"))
        store.append_log("falco", "falco-b", "falco", falco_line(5, "api-1"))
        await wait_for(lambda: alerts() == [1, 2, 3, 4, 5], what=alerts)

        # A pod that goes away is no longer followed.
        store.delete("v1", "Pod", "falco", "falco-b")
        await wait_for(lambda: ("falco", "falco-b") not in src.followers)
        store.append_log("falco", "falco-a", "falco", falco_line(6))
        await wait_for(lambda: alerts() == [1, 2, 3, 4, 5, 6], what=alerts)
        assert engine.store.duplicates == 0
        assert sum(src.health.skipped.values()) == 0
        assert src.health.state == "connected"
    finally:
        await engine.stop()
        assert await asyncio.to_thread(src.join, 1.0)
        conn.close()
        engine.archive.close()
