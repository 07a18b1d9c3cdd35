"""Health tells the truth: an API server that accepts connections and stops answering
shows as `stalled` within the stall threshold (lists, watches and pod-log streams),
a watch that is silent while its server answers stays `connected`, the sources
recover by themselves, and TLS/DNS failures are named in words. Against the
simulated API server on loopback, with a short threshold so no test waits 30 s."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import sim_builders as builders
import yaml
from test_kube_source import Watching, converged, no_duplicates, privileged_pod
from test_live_scenarios import falco_line, falco_pod
from waiting import wait_for

from ktriage.core.cluster import ClusterState
from ktriage.engine import Engine
from ktriage.live import HealthReporter
from ktriage.sim.runner import SimCluster
from ktriage.sim.tls import make_serving_cert
from ktriage.sources.kube import (
    STALL_AFTER,
    Backoff,
    KubeConnection,
    KubeWatchSource,
    WatchTimeouts,
)
from ktriage.sources.podlogs import PodLogSource

pytestmark = pytest.mark.sim

FAST = Backoff(initial=0.05, cap=0.5)
STALL = 2.0
TIMEOUTS = WatchTimeouts(connect=2.0, watch=300.0, read=10.0, stall=STALL)
# The watchdog looks every stall/10 s; the rest is the loop, the test's polling and
# a loaded machine. Without the watchdog nothing would be said before the 10 s read
# timeout, so this still tells the two apart.
DETECTED_WITHIN = STALL + 3.0


@contextlib.asynccontextmanager
async def watching(
    kubeconfig: Path, *, synced: bool = True, timeouts: WatchTimeouts = TIMEOUTS
) -> AsyncIterator[Watching]:
    conn = KubeConnection.connect(str(kubeconfig))
    engine = Engine()
    state = ClusterState()
    sources = [
        KubeWatchSource(conn, r, state, backoff=FAST, timeouts=timeouts)
        for r in ("pods", "nodes", "events")
    ]
    for src in sources:
        engine.add_source(src)
    await engine.start()
    try:
        if synced:
            for src in sources:
                await asyncio.wait_for(src.synced.wait(), 10)
        yield Watching(engine, state, sources)
    finally:
        await engine.stop(timeout=1.0)
        assert all([await asyncio.to_thread(src.join, 1.0) for src in sources])
        conn.close()
        engine.archive.close()


@contextlib.contextmanager
def hung(sim: SimCluster) -> Any:
    """The server stops answering; it answers again on leaving (whatever happens)."""
    sim.faults.hang(True)
    try:
        yield
    finally:
        sim.faults.hang(False)


def test_the_default_threshold_keeps_the_30_second_promise() -> None:
    assert WatchTimeouts().stall == STALL_AFTER <= 29.0


async def test_hostile_stalled_silent_watch_stays_connected_while_the_server_answers(
    sim_cluster: SimCluster,
) -> None:
    # A little more room than STALL: a probe goes out after stall/2 s of silence and
    # must be answered in the other half, even on a loaded machine.
    stall = 3.0
    timeouts = WatchTimeouts(connect=2.0, watch=300.0, read=10.0, stall=stall)
    async with watching(sim_cluster.kubeconfig_path, timeouts=timeouts) as w:
        await wait_for(lambda: all(s.health.state == "connected" for s in w.sources))
        # Nothing changes for twice the threshold: the watches are silent, the
        # probes find the server answering, nobody is called stalled.
        deadline = time.monotonic() + 2 * stall
        while time.monotonic() < deadline:
            assert all(s.health.state == "connected" for s in w.sources), [
                (s.health.state, s.health.last_error) for s in w.sources
            ]
            await asyncio.sleep(0.05)
        assert all(s.probes >= 1 for s in w.sources)
        assert all(s.stalls == 0 for s in w.sources)


async def test_hostile_stalled_api_server_hangs_and_comes_back(sim_cluster: SimCluster) -> None:
    sim = sim_cluster
    async with watching(sim.kubeconfig_path) as w:
        await wait_for(lambda: all(s.health.state == "connected" for s in w.sources))
        reporter_out = io.StringIO()
        reporter = HealthReporter(w.engine, reporter_out)
        reporter.tick()
        with hung(sim):
            started = time.monotonic()
            await wait_for(
                lambda: all(s.health.state == "stalled" for s in w.sources),
                timeout=DETECTED_WITHIN + 5,
                what=lambda: [(s.health.state, s.health.last_error) for s in w.sources],
            )
            took = time.monotonic() - started
            assert took <= DETECTED_WITHIN, took
            for s in w.sources:
                assert s.health.last_error.startswith(
                    f"no answer from the API server at {sim.url} for "
                ), s.health.last_error
            reporter.tick()
            said = reporter_out.getvalue()
            assert f"ktriage: kube pods: stalled: no answer from the API server at {sim.url}" in (
                said
            )
            # While it hangs, the cluster changes; the reconnect attempts keep timing
            # out and the state stays stalled.
            sim.store.apply(privileged_pod("while-hung"))
            sim.store.delete("v1", "Pod", "shop", "api-1")
            await wait_for(lambda: w.pods.errors["network"] >= 1, timeout=STALL * 3)
            assert all(s.health.state == "stalled" for s in w.sources)
        # Answering again: every source recovers by itself and misses nothing.
        await wait_for(lambda: len(w.events("privileged-pod", "while-hung")) == 1)
        await wait_for(lambda: len(w.events("pod-deleted", "api-1")) == 1)
        await wait_for(converged(sim, w))
        await wait_for(lambda: all(s.health.state == "connected" for s in w.sources))
        no_duplicates(w)
        assert "connected again after: no answer from the API server" in w.history()
        reporter.tick()
        assert "ktriage: kube pods: connected" in reporter_out.getvalue()


async def test_hostile_stalled_first_list_never_answered(sim_cluster: SimCluster) -> None:
    sim = sim_cluster
    with hung(sim):
        async with watching(sim.kubeconfig_path, synced=False) as w:
            await wait_for(
                lambda: all(s.health.state == "stalled" for s in w.sources),
                timeout=DETECTED_WITHIN + 5,
                what=lambda: [(s.health.state, s.health.last_error) for s in w.sources],
            )
            assert not any(s.synced.is_set() for s in w.sources)
            sim.faults.hang(False)
            for src in w.sources:
                await asyncio.wait_for(src.synced.wait(), 10)
            await wait_for(lambda: all(s.health.state == "connected" for s in w.sources))
            await wait_for(converged(sim, w))


async def test_hostile_stalled_sensor_pods_and_their_logs(sim_cluster: SimCluster) -> None:
    sim = sim_cluster
    store = sim.store
    store.apply(builders.namespace("falco"))
    store.apply(falco_pod("falco-a", "worker-1"))
    conn = KubeConnection.connect(str(sim.kubeconfig_path))
    engine = Engine()
    src = PodLogSource(conn, "falco", backoff=FAST, timeouts=TIMEOUTS)
    engine.add_source(src)
    await engine.start()

    def alerts() -> list[int]:
        return sorted(int(e.summary.split("n=")[1].split(")")[0]) for e in engine.store)

    try:
        await asyncio.wait_for(src.synced.wait(), 10)
        await wait_for(lambda: src.streams_open() == 1)
        follower = src.followers[("falco", "falco-a")]
        store.append_log("falco", "falco-a", "falco", falco_line(1))
        await wait_for(lambda: alerts() == [1], what=alerts)
        with hung(sim):
            started = time.monotonic()
            await wait_for(
                lambda: src.health.state == "stalled",
                timeout=DETECTED_WITHIN + 5,
                what=lambda: (src.health.state, src.health.last_error),
            )
            assert time.monotonic() - started <= DETECTED_WITHIN
            # The log stream was dropped with the silent watch; its reopening waits.
            await wait_for(lambda: not follower.streaming, what="the log stream dropped")
            store.append_log("falco", "falco-a", "falco", falco_line(2))
            # The follower's own wait for an answer is bounded too, and says so.
            await wait_for(
                lambda: any(
                    "logs of falco/falco-a: no answer from the API server" in message
                    for _, message in src.history
                ),
                timeout=STALL * 4,
                what=lambda: list(src.history),
            )
            assert src.health.state == "stalled" and alerts() == [1]
        await wait_for(lambda: alerts() == [1, 2], what=alerts)
        await wait_for(lambda: src.health.state == "connected", what=lambda: src.health)
        assert engine.store.duplicates == 0
        assert follower.opens >= 2
    finally:
        await engine.stop()
        assert await asyncio.to_thread(src.join, 1.0)
        conn.close()
        engine.archive.close()


def _kubeconfig_with(sim: SimCluster, tmp_path: Path, **cluster: str) -> Path:
    config = yaml.safe_load(sim.kubeconfig_path.read_text())
    for entry in config["clusters"]:
        entry["cluster"].update(cluster)
    path = tmp_path / "changed.kubeconfig"
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return path


async def test_hostile_ca_change_names_the_untrusted_certificate(
    sim_cluster: SimCluster, tmp_path: Path
) -> None:
    # The cluster's CA was rotated: the kubeconfig still trusts another one.
    other_ca = make_serving_cert().ca_pem
    kubeconfig = _kubeconfig_with(
        sim_cluster, tmp_path, **{"certificate-authority-data": base64.b64encode(other_ca).decode()}
    )
    async with watching(kubeconfig, synced=False) as w:
        await wait_for(
            lambda: all("not trusted" in s.health.last_error for s in w.sources),
            what=lambda: [s.health.last_error for s in w.sources],
        )
        for s in w.sources:
            text = s.health.last_error
            assert s.health.state == "reconnecting"
            assert "the API server's certificate is not trusted (certificate verify failed: " in (
                text
            )
            assert (
                "): has the cluster's CA changed? check the kubeconfig's certificate-authority-data"
            ) in text
            assert "API error 0" not in text and "SSLError" not in text


async def test_hostile_ca_change_on_the_sensor_log_source(
    sim_cluster: SimCluster, tmp_path: Path
) -> None:
    other_ca = make_serving_cert().ca_pem
    kubeconfig = _kubeconfig_with(
        sim_cluster, tmp_path, **{"certificate-authority-data": base64.b64encode(other_ca).decode()}
    )
    conn = KubeConnection.connect(str(kubeconfig))
    engine = Engine()
    src = PodLogSource(conn, "tetragon", backoff=FAST, timeouts=TIMEOUTS)
    engine.add_source(src)
    await engine.start()
    try:
        await wait_for(
            lambda: "certificate is not trusted" in src.health.last_error,
            what=lambda: src.health.last_error,
        )
    finally:
        await engine.stop()
        assert await asyncio.to_thread(src.join, 1.0)
        conn.close()
        engine.archive.close()


async def test_hostile_dns_failure_is_named(sim_cluster: SimCluster, tmp_path: Path) -> None:
    kubeconfig = _kubeconfig_with(
        sim_cluster, tmp_path, server="https://api.cluster-that-does-not-exist.invalid:6443"
    )
    async with watching(kubeconfig, synced=False) as w:
        await wait_for(
            lambda: "does not resolve (DNS)" in w.pods.health.last_error,
            what=lambda: w.pods.health.last_error,
        )
        assert w.pods.health.state == "reconnecting"


def test_hostile_stalled_sim_hang_fault_over_http(sim_cluster: SimCluster) -> None:
    """The sim's hang fault: connections are accepted, nothing is answered (but the
    fault endpoint), and what was asked meanwhile is answered once it is lifted."""
    import json
    import threading

    import urllib3

    sim = sim_cluster
    http = urllib3.PoolManager(ca_certs=str(sim.ca_path), retries=False)
    auth = {"Authorization": f"Bearer {sim.admin_token}"}

    def faults(body: dict[str, Any]) -> dict[str, Any]:
        resp = http.request(
            "POST",
            sim.url + "/_sim/faults",
            body=json.dumps(body),
            headers={**auth, "Content-Type": "application/json"},
            timeout=5,
        )
        assert resp.status == 200
        return json.loads(resp.data)

    pods = sim.url + "/api/v1/namespaces/shop/pods?limit=1"
    assert faults({"hang": True})["hang"] is True
    with pytest.raises(urllib3.exceptions.ReadTimeoutError):
        http.request("GET", pods, headers=auth, timeout=urllib3.Timeout(connect=2, read=0.5))
    answered: list[int] = []
    waiting = threading.Thread(
        target=lambda: answered.append(http.request("GET", pods, headers=auth, timeout=10).status)
    )
    before = sim.server.requests
    waiting.start()
    deadline = time.monotonic() + 10
    while sim.server.requests == before:  # the request is in, held
        assert time.monotonic() < deadline, "the request never reached the server"
        time.sleep(0.01)
    assert not answered
    assert faults({"hang": False})["hang"] is False
    waiting.join(10)
    assert answered == [200]
    assert faults({"hang": True, "reset": True})["hang"] is True  # reset first, then hang
    sim.faults.reset()
    assert sim.faults.state()["hang"] is False


class StallingProxy:
    """A TCP relay in front of the API server that can stop passing bytes while
    keeping every connection open and accepting new ones: a hung network path, below
    TLS and HTTP (the server itself keeps working)."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self.flowing = asyncio.Event()
        self.flowing.set()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        assert self._server is not None
        self.flowing.set()
        self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        await self.flowing.wait()  # accepted; nothing goes through while stalled
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.transport.abort()
            return
        self._writers.add(up_writer)

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(Exception):
                while data := await src.read(65536):
                    await self.flowing.wait()  # held, not lost: the path heals later
                    dst.write(data)
                    await dst.drain()
            dst.transport.abort()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self._writers -= {writer, up_writer}


async def test_hostile_stalled_tcp_path_hangs_and_heals(
    sim_cluster: SimCluster, tmp_path: Path
) -> None:
    sim = sim_cluster
    proxy = StallingProxy(sim.port)
    await proxy.start()
    kubeconfig = _kubeconfig_with(sim, tmp_path, server=f"https://127.0.0.1:{proxy.port}")
    try:
        async with watching(kubeconfig) as w:
            await wait_for(lambda: all(s.health.state == "connected" for s in w.sources))
            proxy.flowing.clear()
            started = time.monotonic()
            await wait_for(
                lambda: all(s.health.state == "stalled" for s in w.sources),
                timeout=DETECTED_WITHIN + 5,
                what=lambda: [(s.health.state, s.health.last_error) for s in w.sources],
            )
            assert time.monotonic() - started <= DETECTED_WITHIN
            sim.store.apply(privileged_pod("behind-the-stall"))
            # New connections are accepted and never answered (not even TLS): each
            # attempt times out and the state stays stalled.
            await wait_for(lambda: w.pods.errors["network"] >= 2, timeout=STALL * 6)
            assert all(s.health.state == "stalled" for s in w.sources)
            proxy.flowing.set()
            await wait_for(lambda: len(w.events("privileged-pod", "behind-the-stall")) == 1)
            await wait_for(converged(sim, w))
            await wait_for(lambda: all(s.health.state == "connected" for s in w.sources))
            no_duplicates(w)
    finally:
        await proxy.stop()


async def test_hostile_oversized_log_line_is_skipped_and_counted(sim_cluster: SimCluster) -> None:
    """A sensor log line without end (or far too long) is streamed past, counted as
    skipped, and the lines after it are read; memory holds one bounded partial line."""
    sim = sim_cluster
    store = sim.store
    store.apply(builders.namespace("falco"))
    store.apply(falco_pod("falco-a", "worker-1"))
    conn = KubeConnection.connect(str(sim.kubeconfig_path))
    engine = Engine()
    src = PodLogSource(conn, "falco", backoff=FAST, timeouts=TIMEOUTS)
    src.max_line = 64 * 1024
    engine.add_source(src)
    await engine.start()

    def alerts() -> list[int]:
        return sorted(int(e.summary.split("n=")[1].split(")")[0]) for e in engine.store)

    try:
        await asyncio.wait_for(src.synced.wait(), 10)
        await wait_for(lambda: src.streams_open() == 1)
        store.append_log("falco", "falco-a", "falco", falco_line(1))
        store.append_log("falco", "falco-a", "falco", '{"rule": "' + "A" * 1_000_000 + '"}')
        store.append_log("falco", "falco-a", "falco", falco_line(2))
        await wait_for(lambda: alerts() == [1, 2], what=alerts)
        assert src.health.skipped["too-long"] == 1
        (origin, reason, detail) = src.ingestor.skip_log[-1]
        assert (origin, reason) == ("falco/falco-a", "too-long")
        assert "over 65536 bytes" in detail
        assert src.health.state == "connected"
    finally:
        await engine.stop()
        assert await asyncio.to_thread(src.join, 1.0)
        conn.close()
        engine.archive.close()


async def test_hostile_oversized_watch_event_lists_again(sim_cluster: SimCluster) -> None:
    """A watch event line over the limit is not held: the resource is listed again
    (the list has the object), after a backoff, and nothing is missed or doubled."""
    sim = sim_cluster
    async with watching(sim.kubeconfig_path) as w:
        w.pods.max_line = 256 * 1024
        big = privileged_pod("annotated")
        big["metadata"]["annotations"] = {"note": "x" * (1024 * 1024)}
        sim.store.apply(big)
        await wait_for(lambda: w.pods.errors["oversized-watch-event"] >= 1)
        await wait_for(lambda: len(w.events("privileged-pod", "annotated")) == 1)
        await wait_for(converged(sim, w))
        assert "a watch event over 262144 bytes was not read; listing again" in w.history()
        w.pods.max_line = 64 * 1024 * 1024
        sim.store.apply(privileged_pod("after"))
        await wait_for(lambda: len(w.events("privileged-pod", "after")) == 1)
        await wait_for(lambda: w.pods.health.state == "connected")
        no_duplicates(w)
