"""Several clusters in one screen, against two simulated clusters on loopback.

Two sims, one kubeconfig with a context for each (`write_joint_kubeconfig`), and
`build_live` with `--context` given twice: the same attack in both is two incidents,
each labelled with its cluster; an action taken from cluster B's incident changes B
and not A (read back with the official client, and with kubectl); one cluster down
leaves the other working; hostile context names and unusable contexts do not stop
the others."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from test_actions_support import seed_node, seed_pod
from waiting import wait_for

from ktriage.actions import OK
from ktriage.clusters import MultiEngine
from ktriage.core.model import EntityKind, Event, Severity, entity
from ktriage.live import IncidentPrinter, LiveSetup, build_live
from ktriage.options import LiveOptions
from ktriage.sim.clock import ManualClock
from ktriage.sim.runner import SimCluster, write_joint_kubeconfig
from ktriage.sources.kube import Backoff, WatchTimeouts
from ktriage.ui.hooks import Selection, make_provider

pytestmark = pytest.mark.sim

FAST = Backoff(initial=0.05, cap=0.5)
EU, US = "prod-eu", "prod-us"


def seeded(sim: SimCluster) -> SimCluster:
    """The same names in every cluster: node worker-1 running shop/web-1."""
    seed_node(sim.store, "worker-1")
    seed_pod(sim.store, "shop", "web-1", node="worker-1")
    return sim


def shell_alert(ref: str) -> Event:
    return Event(
        time=time.time() - 30,
        source="falco",
        ref=ref,
        kind="shell",
        severity=Severity.HIGH,
        summary="Shell spawned in shop/web-1",
        entities=(entity(EntityKind.POD, "shop", "web-1"), entity(EntityKind.NODE, "", "worker-1")),
        signal=True,
        label="Shell",
    )


def multi(kubeconfig: Path, *contexts: str, **extra: Any) -> LiveSetup:
    options = LiveOptions(
        kubeconfig=str(kubeconfig), contexts=contexts, falco=("off",), tetragon=("off",), **extra
    )
    return build_live(options, backoff=FAST)


@pytest.fixture
def stopping() -> Iterator[list[LiveSetup]]:
    """Setups whose engines and connections are stopped at teardown."""
    setups: list[LiveSetup] = []
    yield setups
    for setup in setups:
        setup.close_connections()
        setup.engine.archive.close()


async def stop(setup: LiveSetup) -> None:
    await setup.engine.stop()
    for src in setup.engine.sources:
        join = getattr(src, "join", None)
        if join is not None:
            await asyncio.to_thread(join, 1.0)


def node_unschedulable(sim: SimCluster, name: str) -> bool:
    api = k8s_config.new_client_from_config(config_file=str(sim.kubeconfig_path))
    try:
        return bool(k8s.CoreV1Api(api).read_node(name).spec.unschedulable)
    finally:
        api.close()


class FakeApp:
    """What the action provider needs of the app: workers run when awaited, and the
    confirm dialog is kept to be read."""

    def __init__(self, engine: MultiEngine, snapshots: Path) -> None:
        self.engine = engine
        self.snapshot_dir = snapshots
        self.clock = time.time
        self.read_only = False
        self.workers: list[Any] = []
        self.screens: list[Any] = []
        self.notes: list[str] = []

    def run_worker(self, coro: Any, **_: Any) -> None:
        self.workers.append(coro)

    def push_screen(self, screen: Any, callback: Any = None) -> None:
        self.screens.append(screen)

    def notify(self, message: str, **_: Any) -> None:
        self.notes.append(message)

    def set_interval(self, *_: Any) -> None:
        return None


async def test_cordon_from_cluster_b_cordons_b_and_not_a(
    make_sim_cluster: Callable[..., SimCluster],
    tmp_path: Path,
    stopping: list[LiveSetup],
    kubectl_path: Path,
) -> None:
    a, b = seeded(make_sim_cluster()), seeded(make_sim_cluster())
    kubeconfig = write_joint_kubeconfig(tmp_path / "kubeconfig", {EU: a, US: b})
    setup = multi(kubeconfig, EU, US)
    stopping.append(setup)
    engine = setup.engine
    assert isinstance(engine, MultiEngine)
    # The same alert (same pod, node and even ref) in both clusters: two incidents.
    for member in engine.members.values():
        member.add_events([shell_alert("falco-1")])
    incidents = {inc.cluster: inc for inc in engine.correlator.incidents.values()}
    assert set(incidents) == {EU, US}

    app = FakeApp(engine, tmp_path / "snapshots")
    provider = make_provider(app)
    assert provider is not None
    pod = entity(EntityKind.POD, "shop", "web-1")
    selection = Selection(pane="incidents", incident=incidents[US], event=None, pod=pod)
    # Permissions are checked in the background, in cluster B.
    await wait_for(
        lambda: provider.available("cordon", selection)[0],
        what=lambda: provider.available("cordon", selection),
    )
    await provider.run("cordon", selection)
    for coro in app.workers:
        await coro
    assert not app.notes, app.notes
    (confirm,) = app.screens
    assert confirm.cluster == US
    assert confirm.plan.title == "Cordon node worker-1"
    outcome = await confirm.service.apply(confirm.plan)
    assert outcome.result == OK, outcome.message

    # B's node is cordoned, A's (same name) is not: read back with the official client.
    assert node_unschedulable(b, "worker-1")
    assert not node_unschedulable(a, "worker-1")

    # And with kubectl, by context of the joint kubeconfig.
    def kubectl(context: str) -> str:
        done = subprocess.run(
            [
                *(str(kubectl_path), "--kubeconfig", str(kubeconfig), "--context", context),
                *("get", "node", "worker-1", "-o", "jsonpath={.spec.unschedulable}"),
            ],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
            env={"HOME": str(tmp_path), "KUBECACHEDIR": str(tmp_path / f"cache-{context}")},
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    assert kubectl(US) == "true"
    assert kubectl(EU) == ""
    # The action is in B's incident's timeline only.
    kinds = {e.kind for e in engine.correlator.events_of(incidents[US].id)}
    assert "action-cordon" in kinds
    assert "action-cordon" not in {e.kind for e in engine.correlator.events_of(incidents[EU].id)}
    # What ktriage left in place names the cluster.
    left = provider.still_in_place()  # type: ignore[attr-defined]
    assert left and all(line.startswith(f"[{US}]") for line in left), left


async def test_same_attack_in_two_clusters_is_two_incidents_each_labelled(
    make_sim_cluster: Callable[..., SimCluster], tmp_path: Path, stopping: list[LiveSetup]
) -> None:
    sims = {
        EU: make_sim_cluster(scenario="cryptominer", clock=ManualClock()),
        US: make_sim_cluster(scenario="cryptominer", clock=ManualClock()),
    }
    kubeconfig = write_joint_kubeconfig(tmp_path / "kubeconfig", sims)
    files = {
        kind: tuple(f"{name}={getattr(sim.outputs, f'{kind}_path')}" for name, sim in sims.items())
        for kind in ("audit", "falco", "tetragon")
    }
    setup = build_live(
        LiveOptions(
            kubeconfig=str(kubeconfig),
            contexts=(EU, US),
            audit_log=files["audit"],
            falco=files["falco"],
            tetragon=files["tetragon"],
            from_start=True,
        ),
        backoff=FAST,
    )
    stopping.append(setup)
    engine = setup.engine
    assert isinstance(engine, MultiEngine)
    assert sorted(h.cluster for h in engine.health()) == [EU] * 6 + [US] * 6
    lines: list[bytes] = []
    printer = IncidentPrinter(engine, lines.append, interval=0)
    await engine.start()
    try:
        for sim in sims.values():
            while not sim.player.done:
                await asyncio.to_thread(sim.advance, 1.0)
            assert not sim.player.errors, sim.player.errors

        def critical(cluster: str) -> list[Any]:
            return [
                inc
                for inc in engine.correlator.incidents.values()
                if inc.cluster == cluster
                and inc.severity == Severity.CRITICAL
                and "storefront" in inc.title
                and {"audit", "falco", "tetragon"} <= set(inc.counts_by_source)
            ]

        await wait_for(lambda: critical(EU) and critical(US), what="a critical incident in each")
        eu, us = critical(EU)[0], critical(US)[0]
        assert eu.id != us.id
        # Each incident holds its own cluster's records only: the audit records of the
        # incident are those of its sim's file.
        # (An audit event's ref is its auditID and stage; each sim makes its own ids.)
        for inc, sim, other in ((eu, sims[EU], sims[US]), (us, sims[US], sims[EU])):
            own, theirs = sim.outputs.audit_path.read_text(), other.outputs.audit_path.read_text()
            ids = {
                e.ref.split(":")[0]
                for e in engine.correlator.events_of(inc.id)
                if e.source == "audit"
            }
            assert ids and all(i in own and i not in theirs for i in ids)
        printer.tick(force=True)
        printed = [orjson.loads(line) for line in lines]
        clusters = {p["id"]: p.get("cluster") for p in printed if "id" in p and "title" in p}
        assert clusters[eu.id] == EU and clusters[us.id] == US
    finally:
        await stop(setup)


async def test_one_cluster_down_shows_in_its_health_and_the_other_keeps_working(
    make_sim_cluster: Callable[..., SimCluster], tmp_path: Path, stopping: list[LiveSetup]
) -> None:
    a, b = seeded(make_sim_cluster()), seeded(make_sim_cluster())
    kubeconfig = write_joint_kubeconfig(tmp_path / "kubeconfig", {EU: a, US: b})
    setup = multi(kubeconfig, EU, US)
    stopping.append(setup)
    engine = setup.engine
    assert isinstance(engine, MultiEngine)
    await engine.start()
    try:
        await wait_for(
            lambda: engine.cluster_health() == [(EU, "connected"), (US, "connected")],
            what=lambda: engine.cluster_health(),
        )
        a.stop()
        await wait_for(
            lambda: dict(engine.cluster_health())[EU] in ("reconnecting", "stalled", "failed"),
            what=lambda: engine.cluster_health(),
        )
        assert dict(engine.cluster_health())[US] == "connected"
        # The other cluster keeps working: a new pod there is seen.
        seed_pod(b.store, "shop", "api-2", node="worker-1")
        us_state = engine.members[US].cluster
        await wait_for(lambda: ("shop", "api-2") in us_state.pods, what="api-2 in prod-us")
        assert ("shop", "api-2") not in engine.members[EU].cluster.pods
    finally:
        await stop(setup)


# ---- hostile -------------------------------------------------------------------


def hostile_name() -> str:
    return "[bold red]prod[/]\x1b[31m\u202e" + "x" * 300


async def test_hostile_context_name_markup_control_and_length_stays_text(
    make_sim_cluster: Callable[..., SimCluster], tmp_path: Path, stopping: list[LiveSetup]
) -> None:
    name = hostile_name()
    a, b = seeded(make_sim_cluster()), seeded(make_sim_cluster())
    kubeconfig = write_joint_kubeconfig(tmp_path / "kubeconfig", {name: a, US: b})
    setup = multi(kubeconfig, name, US)
    stopping.append(setup)
    engine = setup.engine
    assert isinstance(engine, MultiEngine)
    engine.members[name].add_events([shell_alert("falco-1")])
    (inc,) = engine.correlator.incidents.values()
    assert inc.cluster == name
    lines: list[bytes] = []
    IncidentPrinter(engine, lines.append, interval=0).tick(force=True)
    (line,) = lines
    assert b"\x1b" not in line and "\u202e".encode() not in line
    assert b"\\x1b" in line
    await engine.start()
    try:
        await wait_for(
            lambda: all(state == "connected" for _, state in engine.cluster_health()),
            what=lambda: engine.cluster_health(),
        )
    finally:
        await stop(setup)


def silent_server() -> tuple[socket.socket, int]:
    """A port that accepts connections and never answers (a hung API server)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    return server, server.getsockname()[1]


async def test_hostile_contexts_refused_hung_and_unusable_do_not_stop_the_others(
    make_sim_cluster: Callable[..., SimCluster], tmp_path: Path, stopping: list[LiveSetup]
) -> None:
    good = seeded(make_sim_cluster())
    kubeconfig = tmp_path / "kubeconfig"
    write_joint_kubeconfig(kubeconfig, {"good": good})
    data = yaml.safe_load(kubeconfig.read_text())
    hung, port = silent_server()
    try:
        ca = data["clusters"][0]["cluster"]["certificate-authority-data"]
        data["clusters"].append({"name": "hung", "cluster": {"server": f"http://127.0.0.1:{port}"}})
        data["clusters"].append(
            {"name": "same", "cluster": {"server": good.url, "certificate-authority-data": ca}}
        )
        data["users"].append({"name": "wrong-token", "user": {"token": "not-a-token"}})
        data["users"].append({"name": "no-cert", "user": {"client-certificate": "/nonexistent"}})
        data["contexts"] += [
            {"name": "refused-401", "context": {"cluster": "same", "user": "wrong-token"}},
            {"name": "hangs", "context": {"cluster": "hung", "user": "wrong-token"}},
            {"name": "unusable", "context": {"cluster": "same", "user": "no-cert"}},
        ]
        kubeconfig.write_text(yaml.safe_dump(data))
        names = ("good", "refused-401", "hangs", "unusable")
        started = time.monotonic()
        setup = multi(kubeconfig, *names)
        stopping.append(setup)
        engine = setup.engine
        assert isinstance(engine, MultiEngine)
        for member in engine.members.values():
            for src in member.sources:
                if hasattr(src, "timeouts"):
                    src.timeouts = WatchTimeouts(connect=1.0, stall=1.0)
        await engine.start()
        try:
            await wait_for(
                lambda: dict(engine.cluster_health())["good"] == "connected",
                what=lambda: engine.cluster_health(),
            )
            assert time.monotonic() - started < 15
            health = dict(engine.cluster_health())
            assert health["unusable"] == "failed"
            await wait_for(
                lambda: dict(engine.cluster_health())["refused-401"] != "starting",
                what=lambda: engine.cluster_health(),
            )
            refused = [h for h in engine.health() if h.cluster == "refused-401"]
            assert any("401" in h.last_error or "nauthorized" in h.last_error for h in refused)
            assert ("shop", "web-1") in engine.members["good"].cluster.pods
            # The server that never answers is said not to answer.
            await wait_for(
                lambda: dict(engine.cluster_health())["hangs"] in ("stalled", "reconnecting"),
                what=lambda: engine.cluster_health(),
            )
            assert dict(engine.cluster_health())["good"] == "connected"
        finally:
            await stop(setup)
    finally:
        hung.close()


async def test_hostile_ten_contexts_each_watched_and_labelled(
    make_sim_cluster: Callable[..., SimCluster], tmp_path: Path, stopping: list[LiveSetup]
) -> None:
    a, b = seeded(make_sim_cluster()), seeded(make_sim_cluster())
    # Ten contexts, five on each simulated cluster.
    clusters = {f"ctx-{i}": (a if i % 2 else b) for i in range(10)}
    kubeconfig = write_joint_kubeconfig(tmp_path / "kubeconfig", clusters)
    setup = multi(kubeconfig, *clusters)
    stopping.append(setup)
    engine = setup.engine
    assert isinstance(engine, MultiEngine)
    for member in engine.members.values():
        member.add_events([shell_alert("falco-1")])
    assert sorted(i.cluster for i in engine.correlator.incidents.values()) == sorted(clusters)
    await engine.start()
    try:
        await wait_for(
            lambda: all(state == "connected" for _, state in engine.cluster_health()),
            timeout=40,
            what=lambda: engine.cluster_health(),
        )
    finally:
        await stop(setup)


def test_headless_command_with_two_contexts_labels_health_and_incidents(
    make_sim_cluster: Callable[..., SimCluster], tmp_path: Path
) -> None:
    from test_headless import Headless

    sims = {
        EU: make_sim_cluster(scenario="cryptominer", clock=ManualClock()),
        US: make_sim_cluster(clock=ManualClock()),  # quiet: no attack there
    }
    kubeconfig = write_joint_kubeconfig(tmp_path / "kubeconfig", sims)
    args = ["--kubeconfig", str(kubeconfig), "--context", EU, "--context", US, "--from-start"]
    args += ["--audit-log", f"{EU}={sims[EU].outputs.audit_path}"]
    args += ["--tetragon", "off", "--falco", f"{US}=off"]
    k = Headless(args, tmp_path)
    try:
        for name in (f"{EU}: kube pods", f"{US}: kube pods", f"{EU}: falco auto"):
            k.wait_for(
                lambda name=name: any(name in e and ": connected" in e for e in k.err),
                what=f"{name} connected",
            )
        assert not any(f"{US}: falco" in e for e in k.err)
        while not sims[EU].player.done:
            sims[EU].advance(2.0)
        k.wait_for(
            lambda: any(i["severity"] == "critical" for i in k.incidents()), what="an incident"
        )
        code = k.stop()
    finally:
        k.kill()
    assert code == 0, k.err[-5:]
    incidents = k.incidents()
    assert incidents and {i["cluster"] for i in incidents} == {EU}


def test_per_cluster_files_and_webhooks_go_to_their_cluster(tmp_path: Path) -> None:
    # No server is contacted while building: two contexts on an unused port will do.
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": "http://127.0.0.1:9"}}],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [
                    {"name": n, "context": {"cluster": "c", "user": "u"}} for n in (EU, US)
                ],
                "current-context": EU,
            }
        )
    )
    audit = tmp_path / "us-audit.log"
    audit.write_text("")
    setup = build_live(
        LiveOptions(
            kubeconfig=str(kubeconfig),
            contexts=(EU, US),
            audit_log=(f"{US}={audit}",),
            falco=("off",),
            tetragon=(f"{EU}=off",),
            listen_audit=f"{EU}=127.0.0.1:0,{US}=127.0.0.1:0",
            listen_falco=f"{US}=127.0.0.1:0",
        )
    )
    try:
        engine = setup.engine
        assert isinstance(engine, MultiEngine)

        def kinds(name: str) -> list[str]:
            return sorted(s.health.kind for s in engine.members[name].sources)

        assert kinds(EU) == ["audit", "kube", "kube", "kube"]  # its audit webhook
        assert kinds(US) == ["audit", "audit", "falco", "kube", "kube", "kube", "tetragon"]
        assert len(setup.webhooks) == 3
        with pytest.raises(Exception, match="say which one"):
            build_live(
                LiveOptions(kubeconfig=str(kubeconfig), contexts=(EU, US), audit_log=(str(audit),))
            )
        with pytest.raises(Exception, match="say which one"):
            build_live(
                LiveOptions(
                    kubeconfig=str(kubeconfig), contexts=(EU, US), listen_audit="127.0.0.1:0"
                )
            )
    finally:
        setup.close_connections()
        setup.engine.archive.close()


def test_sim_command_runs_two_clusters_with_one_kubeconfig(tmp_path: Path) -> None:
    import os
    import signal
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("KUBE")}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2])
    proc = subprocess.Popen(
        [sys.executable, "-m", "ktriage.cli", "sim", "--clusters", "2", "--dir", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        out: list[str] = []
        deadline = time.monotonic() + 30
        while not out or not out[-1].startswith("Ctrl-C"):
            assert time.monotonic() < deadline, out
            line = proc.stdout.readline()
            assert line, (out, proc.stderr.read() if proc.stderr else "")
            out.append(line)
        kubeconfig = tmp_path / "kubeconfig"
        assert any(str(kubeconfig) in line for line in out)
        servers = set()
        for context in ("sim-1", "sim-2"):
            api = k8s_config.new_client_from_config(config_file=str(kubeconfig), context=context)
            try:
                names = {ns.metadata.name for ns in k8s.CoreV1Api(api).list_namespace().items}
                assert "default" in names
                servers.add(api.configuration.host)
            finally:
                api.close()
        assert len(servers) == 2  # two API servers, not one named twice
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
