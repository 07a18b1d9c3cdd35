"""The kube watch sources against the simulated API server over HTTP, with the
official client: state, events from changes, and every fault a long watch meets
(cut streams, 410 Expired, 500s, 429 with Retry-After, 401/403, the server going
away and coming back). After each, the state must match the server's, every
change must have given exactly one event, and health must say what happened."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import sim_builders as builders
import yaml
from waiting import wait_for

from ktriage.core.cluster import ClusterState
from ktriage.engine import Engine
from ktriage.sim.runner import SimCluster
from ktriage.sources.kube import Backoff, KubeConnection, KubeWatchSource, WatchTimeouts

pytestmark = pytest.mark.sim

FAST = Backoff(initial=0.05, cap=0.5)
TIMEOUTS = WatchTimeouts(connect=2.0, watch=300.0, read=10.0)


class Watching:
    def __init__(self, engine: Engine, state: ClusterState, sources: list[KubeWatchSource]):
        self.engine = engine
        self.state = state
        self.sources = sources
        self.by_resource = {s.resource: s for s in sources}

    @property
    def pods(self) -> KubeWatchSource:
        return self.by_resource["pods"]

    def events(self, kind: str, name: str | None = None) -> list[Any]:
        out = []
        for ev in self.engine.store:
            if ev.source != "kube" or ev.kind != kind:
                continue
            if name is None or any(e.name == name for e in ev.entities):
                out.append(ev)
        return out

    def history(self) -> str:
        return "\n".join(msg for s in self.sources for _, msg in s.history)


@contextlib.asynccontextmanager
async def watching(kubeconfig: Path, **kw: Any) -> AsyncIterator[Watching]:
    conn = KubeConnection.connect(str(kubeconfig))
    engine = Engine()
    state = ClusterState()
    sources = [
        KubeWatchSource(conn, r, state, backoff=FAST, timeouts=TIMEOUTS, **kw)
        for r in ("pods", "nodes", "events")
    ]
    for src in sources:
        engine.add_source(src)
    await engine.start()
    try:
        for src in sources:
            await asyncio.wait_for(src.synced.wait(), 10)
        assert engine.cluster is state
        yield Watching(engine, state, sources)
    finally:
        started = time.monotonic()
        await engine.stop(timeout=1.0)
        stopped = [await asyncio.to_thread(src.join, 1.0) for src in sources]
        elapsed = time.monotonic() - started
        conn.close()
        engine.archive.close()
        # Stopping ends every watch within a second.
        assert all(stopped) and elapsed < 1.5, (stopped, elapsed)


def server_pods(sim: SimCluster) -> dict[tuple[str, str], str]:
    return {
        (p["metadata"]["namespace"], p["metadata"]["name"]): p["metadata"]["resourceVersion"]
        for p in sim.store.list_objs("v1", "Pod")
    }


def state_pods(state: ClusterState) -> dict[tuple[str, str], str]:
    return {k: p.resource_version for k, p in state.pods.items()}


def converged(sim: SimCluster, w: Watching) -> Callable[[], bool]:
    def check() -> bool:
        nodes = {n["metadata"]["name"] for n in sim.store.list_objs("v1", "Node")}
        return state_pods(w.state) == server_pods(sim) and set(w.state.nodes) == nodes

    return check


def privileged_pod(name: str) -> dict[str, Any]:
    return builders.pod(
        "shop",
        name,
        [builders.container("x", "alpine:3.20", securityContext={"privileged": True})],
        node_name="worker-2",
        hostPID=True,
    )


def no_duplicates(w: Watching) -> None:
    refs = Counter(ev.ref for ev in w.engine.store if ev.source == "kube")
    assert w.engine.store.duplicates == 0
    assert all(n == 1 for n in refs.values())


# ---- state and changes ---------------------------------------------------------


async def test_state_and_changes(sim_cluster: SimCluster) -> None:
    sim = sim_cluster
    async with watching(sim.kubeconfig_path) as w:
        assert state_pods(w.state) == server_pods(sim)
        web = w.state.pod("shop", "web-1")
        assert web is not None
        assert web.owner == "ReplicaSet/web-7d9f8c6b5" and web.node == "worker-1"
        assert web.containers == ("web", "sidecar") and web.restarts == 1
        assert set(w.state.nodes) == {"worker-1", "worker-2"}
        # The seeded pod was OOMKilled before we started: reported from its lastState.
        assert [e.summary for e in w.events("oomkilled", "web-1")] == [
            "Container web of pod shop/web-1 was OOMKilled (exit code 137, restarts 1)"
        ]
        # Seeded Warning events (the BackOff one says the container is crash-looping).
        assert w.by_resource["events"].lists == 1

        store = sim.store
        store.set_container_state("shop", "api-1", "api", "terminated", reason="OOMKilled",
                                  exit_code=137)  # fmt: skip
        await wait_for(lambda: len(w.events("oomkilled", "api-1")) == 1, what="OOM event")
        store.set_container_state("shop", "api-1", "api", "waiting", reason="CrashLoopBackOff",
                                  restart=True)  # fmt: skip
        await wait_for(lambda: len(w.events("crashloop", "api-1")) == 1, what="crash loop")
        store.apply(privileged_pod("debugger"))
        await wait_for(lambda: len(w.events("privileged-pod", "debugger")) == 1)
        ev = w.events("privileged-pod", "debugger")[0]
        assert ev.signal and ev.severity.label == "high"
        store.delete("v1", "Pod", "shop", "debugger")
        await wait_for(lambda: len(w.events("pod-deleted", "debugger")) == 1)

        def cordon(node: dict) -> None:
            node["spec"]["unschedulable"] = True

        def not_ready(node: dict) -> None:
            for cond in node["status"]["conditions"]:
                if cond["type"] == "Ready":
                    cond.update(status="False", reason="KubeletNotReady",
                                lastTransitionTime="2026-01-01T00:05:00Z")  # fmt: skip

        store.mutate("v1", "Node", None, "worker-2", cordon)
        store.mutate("v1", "Node", None, "worker-2", not_ready)
        await wait_for(lambda: len(w.events("node-cordoned", "worker-2")) == 1)
        await wait_for(lambda: len(w.events("node-notready", "worker-2")) == 1)
        assert w.state.nodes["worker-2"].unschedulable and not w.state.nodes["worker-2"].ready
        await wait_for(converged(sim, w), what="state = server")
        # Nothing but the changes above: no repeat of the OOM kill on later updates.
        assert len(w.events("oomkilled", "api-1")) == 1
        no_duplicates(w)
        assert all(s.health.state == "connected" for s in w.sources)


# ---- faults -------------------------------------------------------------------------


async def test_watch_cut_mid_stream(sim_cluster: SimCluster) -> None:
    sim = sim_cluster
    async with watching(sim.kubeconfig_path) as w:
        before = w.pods.reconnects
        # Every watch is closed after one event: four changes, four reconnects.
        sim.faults.cut_after_events = 1
        for i in range(4):
            sim.store.apply(privileged_pod(f"p{i}"))
        await wait_for(lambda: len(w.events("privileged-pod")) == 4, what="4 events")
        sim.faults.cut_after_events = None
        assert w.pods.reconnects >= before + 3
        # And a cut of every open stream at once, with changes right after it.
        sim.faults.cut_watches()
        sim.store.delete("v1", "Pod", "shop", "p0")
        sim.store.delete("v1", "Pod", "shop", "p1")
        await wait_for(lambda: len(w.events("pod-deleted")) == 2, what="2 deletions")
        await wait_for(converged(sim, w))
        no_duplicates(w)
        assert "closed by the server" in w.history()
        assert w.pods.relists == 0  # resumed from the resourceVersion, never re-listed


async def test_500s_then_410_relist_applies_only_differences(sim_cluster: SimCluster) -> None:
    sim = sim_cluster
    async with watching(sim.kubeconfig_path) as w:
        sim.store.apply(privileged_pod("gone-soon"))
        await wait_for(lambda: len(w.events("privileged-pod", "gone-soon")) == 1)
        # The API server fails every request, and the open watches are cut.
        sim.faults.fail_next(100_000, 500)
        sim.faults.cut_watches()
        await wait_for(
            lambda: all(s.health.state == "reconnecting" for s in w.sources), what="reconnecting"
        )
        # The cut is a lost connection; the resume attempts then meet the 500s.
        await wait_for(
            lambda: "API server error 500" in (w.pods.health.last_error or ""),
            what=lambda: f"a 500 reported: {w.pods.health.last_error}",
        )
        # While we are away: one pod deleted, one OOMKilled, one privileged pod created.
        sim.store.delete("v1", "Pod", "shop", "gone-soon")
        sim.store.set_container_state("shop", "api-1", "api", "terminated", reason="OOMKilled",
                                      exit_code=137)  # fmt: skip
        sim.store.apply(privileged_pod("while-away"))
        # The server comes back, but compacted: our resourceVersions are too old to watch.
        sim.store.compact()
        sim.faults.reset()
        await wait_for(
            lambda: all(s.relists == 1 for s in w.sources),
            what=lambda: f"re-lists {[(s.relists, s.lists) for s in w.sources]} {w.history()}",
        )
        await wait_for(converged(sim, w))
        await wait_for(lambda: len(w.events("privileged-pod", "while-away")) == 1)
        assert len(w.events("pod-deleted", "gone-soon")) == 1
        assert len(w.events("oomkilled", "api-1")) == 1
        # Only the differences: nothing else about the pods that did not change.
        pod_events = [e for e in w.engine.store if e.source == "kube" and e.kind != "k8s-warning"]
        kinds = Counter(e.kind for e in pod_events)
        assert kinds["privileged-pod"] == 2 and kinds["pod-deleted"] == 1
        no_duplicates(w)
        history = w.history()
        assert "410" in history and "listed pods again" in history
        assert all(s.health.state == "connected" for s in w.sources)


async def test_429_honours_retry_after(sim_cluster: SimCluster) -> None:
    sim = sim_cluster
    async with watching(sim.kubeconfig_path) as w:
        sim.faults.throttle(3, retry_after=1)
        cut_at = time.monotonic()
        sim.faults.cut_watches()
        sim.store.apply(privileged_pod("after-throttle"))
        await wait_for(lambda: len(w.events("privileged-pod", "after-throttle")) == 1)
        # Three 429s were answered: each watch waited the second Retry-After asked for.
        assert time.monotonic() - cut_at >= 1.0
        assert sum(s.errors["429"] for s in w.sources) == 3
        assert "Retry-After" in w.history()
        await wait_for(converged(sim, w))
        await wait_for(lambda: all(s.health.state == "connected" for s in w.sources))
        no_duplicates(w)


async def test_401_after_token_expiry_and_403(sim_cluster: SimCluster) -> None:
    sim = sim_cluster
    async with watching(sim.kubeconfig_path) as w:
        sim.faults.expire_token("admin")
        sim.faults.cut_watches()
        # The cut is a lost connection first; the reconnection then meets the 401.
        rejected = (
            "credentials rejected (401): the API server did not accept the kubeconfig's "
            "token or client certificate; check your kubeconfig credentials"
        )
        await wait_for(
            lambda: (w.pods.health.last_error or "").startswith(rejected),
            what=lambda: f"a 401 reported: {w.pods.health.last_error}",
        )
        assert w.pods.errors["401"] >= 1
        assert w.pods.health.state == "reconnecting"
        sim.store.apply(privileged_pod("during-401"))
        sim.faults.restore_token("admin")
        await wait_for(lambda: len(w.events("privileged-pod", "during-401")) == 1)
        assert w.pods.conn.reloads >= 1  # credentials were re-read from the kubeconfig

        sim.faults.deny("admin")
        sim.faults.cut_watches()
        # The message itself: "403" alone also matches a server port such as 40307.
        await wait_for(
            lambda: "forbidden (403) to list/watch pods" in w.pods.health.last_error,
            what=lambda: f"a 403 reported: {w.pods.health.last_error}",
        )
        sim.faults.allow("admin")
        await wait_for(lambda: w.pods.health.state == "connected")
        await wait_for(converged(sim, w))
        no_duplicates(w)
        assert "connected again after: credentials rejected (401)" in w.history()


class TcpProxy:
    """A TCP relay in front of the API server, to take the server away and back."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.transport.abort()
            return
        self._writers |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(Exception):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.transport.abort()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self._writers -= {writer, up_writer}


async def test_api_server_goes_away_and_comes_back(sim_cluster: SimCluster, tmp_path: Path) -> None:
    sim = sim_cluster
    proxy = TcpProxy(sim.port)
    await proxy.start()
    config = yaml.safe_load(sim.kubeconfig_path.read_text())
    for cluster in config["clusters"]:
        cluster["cluster"]["server"] = f"https://127.0.0.1:{proxy.port}"
    kubeconfig = tmp_path / "via-proxy.kubeconfig"
    kubeconfig.write_text(yaml.safe_dump(config))
    kubeconfig.chmod(0o600)
    try:
        async with watching(kubeconfig) as w:
            await proxy.stop()
            await wait_for(
                lambda: all("connection refused" in s.health.last_error for s in w.sources),
                what=lambda: [s.health.last_error for s in w.sources],
            )
            assert all(s.health.state == "reconnecting" for s in w.sources)
            assert f"lost the API server at https://127.0.0.1:{proxy.port}" in (
                w.pods.health.last_error
            )
            sim.store.apply(privileged_pod("while-down"))
            sim.store.delete("v1", "Pod", "shop", "api-1")
            await proxy.start()  # the same port again
            await wait_for(lambda: len(w.events("privileged-pod", "while-down")) == 1)
            await wait_for(lambda: len(w.events("pod-deleted", "api-1")) == 1)
            await wait_for(converged(sim, w))
            await wait_for(lambda: all(s.health.state == "connected" for s in w.sources))
            no_duplicates(w)
            assert "connected again after: lost the API server" in w.history()
    finally:
        with contextlib.suppress(Exception):
            await proxy.stop()


async def test_events_fall_back_to_core_v1(sim_cluster: SimCluster) -> None:
    sim = sim_cluster
    # Pretend events.k8s.io is not served: its first request gets 404.
    sim.faults.match = "events.k8s.io"
    sim.faults.fail_next(1, 404)
    async with watching(sim.kubeconfig_path) as w:
        events = w.by_resource["events"]
        assert "using core v1 events" in w.history()
        sim.faults.reset()
        sim.store.apply(
            {
                "apiVersion": "v1",
                "kind": "Event",
                "metadata": {"name": "api-1.x1", "namespace": "shop"},
                "involvedObject": {"kind": "Pod", "namespace": "shop", "name": "api-1"},
                "reason": "FailedMount",
                "message": 'MountVolume.SetUp failed for volume "certs"',
                "type": "Warning",
                "count": 1,
                "lastTimestamp": "2026-01-01T00:02:00Z",
            }
        )
        await wait_for(lambda: len(w.events("k8s-warning", "api-1")) == 1)
        assert events.errors["404"] == 1


async def test_events_forbidden_falls_back_to_core_v1_as_viewer(sim_cluster: SimCluster) -> None:
    # The read-only identity is bound to `view`: core events yes, events.k8s.io no (real RBAC).
    sim = sim_cluster
    conn = KubeConnection.connect(str(sim.kubeconfig_path), context="sim-readonly")
    engine = Engine()
    source = KubeWatchSource(conn, "events", ClusterState(), backoff=FAST, timeouts=TIMEOUTS)
    engine.add_source(source)
    await engine.start()
    try:
        await asyncio.wait_for(source.synced.wait(), 10)
        history = [msg for _, msg in source.history]
        fallbacks = [m for m in history if m.startswith("events.k8s.io/v1")]
        assert fallbacks == [
            "events.k8s.io/v1 may not be listed (403 forbidden); using core v1 events"
        ]
        assert source.errors["403"] == 1
        sim.store.apply(
            {
                "apiVersion": "v1",
                "kind": "Event",
                "metadata": {"name": "api-1.x2", "namespace": "shop"},
                "involvedObject": {"kind": "Pod", "namespace": "shop", "name": "api-1"},
                "reason": "FailedMount",
                "message": 'MountVolume.SetUp failed for volume "token"',
                "type": "Warning",
                "count": 1,
                "lastTimestamp": "2026-01-01T00:03:00Z",
            }
        )

        def warned() -> bool:
            return any(
                ev.kind == "k8s-warning" and any(e.name == "api-1" for e in ev.entities)
                for ev in engine.store
            )

        await wait_for(warned, what="the core v1 event seen")
        assert source.health.state == "connected"
    finally:
        await engine.stop(timeout=1.0)
        await asyncio.to_thread(source.join, 1.0)
        conn.close()
        engine.archive.close()


async def test_hostile_events_forbidden_on_both_apis_backs_off(sim_cluster: SimCluster) -> None:
    # Neither events API may be listed: say so, naming the core API, and back off
    # (a hot retry would hammer the API server with hundreds of requests a second).
    sim = sim_cluster
    sim.faults.match = "events"
    sim.faults.fail_next(10_000, 403)
    conn = KubeConnection.connect(str(sim.kubeconfig_path))
    engine = Engine()
    source = KubeWatchSource(conn, "events", ClusterState(), backoff=FAST, timeouts=TIMEOUTS)
    engine.add_source(source)
    await engine.start()
    try:
        await wait_for(
            lambda: "forbidden (403) to list/watch core v1 events" in source.health.last_error,
            what=lambda: source.health.last_error,
        )
        assert source.health.state == "reconnecting"
        assert "retrying in" in source.health.last_error
        history = [msg for _, msg in source.history]
        assert sum(m.startswith("events.k8s.io/v1") for m in history) == 1
        started = source.errors["403"]
        await wait_for(lambda: source.errors["403"] >= started + 3, timeout=10)
        # FAST backs off 0.05 s doubling to 0.5 s: within 1.5 s a handful of tries.
        before = source.errors["403"]
        deadline = time.monotonic() + 1.5
        await wait_for(lambda: time.monotonic() >= deadline, timeout=5)
        assert source.errors["403"] - before <= 5
        assert not source.synced.is_set()
    finally:
        sim.faults.reset()
        await engine.stop(timeout=1.0)
        await asyncio.to_thread(source.join, 1.0)
        conn.close()
        engine.archive.close()


async def test_namespace_scope(sim_cluster: SimCluster) -> None:
    sim = sim_cluster
    sim.store.apply(builders.namespace("other"))
    sim.store.apply(builders.pod("other", "elsewhere", [builders.container("c", "busybox")]))
    async with watching(sim.kubeconfig_path, namespace="shop") as w:
        assert {ns for ns, _ in w.state.pods} == {"shop"}
        assert w.pods.health.name == "kube pods in shop"
        assert set(w.state.nodes) == {"worker-1", "worker-2"}  # nodes are cluster-wide
