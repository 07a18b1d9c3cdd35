"""Every scenario plays to the end into a real ClusterStore; its streams parse with
ktriage's own Ingestor without a skipped line and carry the signals the story needs."""

from __future__ import annotations

import asyncio
import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest
from waiting import wait_for

from ktriage.core import ingest
from ktriage.core.model import EntityKind, Event, Severity
from ktriage.sim.audit import AuditWriter
from ktriage.sim.clock import ManualClock, SimClock
from ktriage.sim.outputs import SimOutputs
from ktriage.sim.scenario.bundled import scenario_names
from ktriage.sim.scenario.context import StepFailed
from ktriage.sim.scenario.format import load_scenario, parse_scenario
from ktriage.sim.scenario.player import ScenarioPlayer
from ktriage.sim.scenario.runtime_records import FALCO_PRIORITIES
from ktriage.sim.storage.store import ClusterStore

START = 1_800_000_000.0


@dataclass
class Played:
    player: ScenarioPlayer
    store: ClusterStore
    outputs: SimOutputs
    records: dict[str, list[dict[str, Any]]]
    lines: dict[str, list[str]]
    events: list[Event]
    skipped: Counter = field(default_factory=Counter)

    def pod(self, ref: str) -> dict[str, Any]:
        ns, name = self.player.resolve_pod(ref)
        pod = self.store.get_obj("v1", "Pod", ns, name)
        assert pod is not None, ref
        return pod

    def events_for_pod(self, name: str) -> list[Event]:
        return [e for e in self.events if any(x.kind == EntityKind.POD and x.name == name
                                              for x in e.entities)]  # fmt: skip


# The scenarios whose records are all as the real writers make them. `hostile` writes
# records no real writer makes, on purpose (see test_hostile_scenario.py).
WELL_FORMED = [name for name in scenario_names() if name != "hostile"]


def play(name: str, directory: Path) -> Played:
    clock = ManualClock(start=START)
    store = ClusterStore(clock)
    outputs = SimOutputs(directory)
    player = ScenarioPlayer(
        load_scenario(name),
        store=store,
        audit=AuditWriter(outputs, clock),
        outputs=outputs,
        clock=clock,
    )
    player.play_all()
    outputs.close()
    ingestor = ingest.Ingestor()
    records: dict[str, list[dict[str, Any]]] = {}
    lines: dict[str, list[str]] = {}
    events: list[Event] = []
    for source, path in (
        ("audit", outputs.audit_path),
        ("falco", outputs.falco_path),
        ("tetragon", outputs.tetragon_path),
    ):
        raw = path.read_bytes().splitlines()
        lines[source] = [line.decode() for line in raw]
        records[source] = [orjson.loads(line) for line in raw]
        for i, line in enumerate(raw, start=1):
            events += ingestor.feed_line(line, origin=f"{path.name}:{i}")
    events += ingestor.flush()
    return Played(player, store, outputs, records, lines, events, Counter(ingestor.skipped))


@pytest.fixture(scope="module")
def played(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Played]:
    cache: dict[str, Played] = {}

    def get(name: str) -> Played:
        if name not in cache:
            cache[name] = play(name, tmp_path_factory.mktemp(name))
        return cache[name]

    return get


# ----------------------------------------------------------------- every scenario


@pytest.mark.parametrize("name", WELL_FORMED)
def test_plays_to_the_end_and_parses_without_a_skipped_line(
    played: Callable[[str], Played], name: str
) -> None:
    p = played(name)
    assert p.player.done
    assert p.player.steps_done == p.player.total_steps == len(p.player.scenario.steps)
    assert p.player.errors == []
    assert p.records["audit"] and p.records["falco"] and p.records["tetragon"]
    assert p.skipped == Counter(), p.skipped
    sources = Counter(e.source for e in p.events)
    assert sources["audit"] >= len(p.records["audit"])
    assert sources["falco"] == len(p.records["falco"])
    assert sources["tetragon"] == len(p.records["tetragon"])
    # Records are unique where the real sources make them unique.
    audit_ids = [r["auditID"] for r in p.records["audit"]]
    assert len(set(audit_ids)) == len(audit_ids)
    assert len({r["uuid"] for r in p.records["falco"]}) == len(p.records["falco"])
    # Times stay inside the scenario.
    end = START + p.player.scenario.duration + 60
    assert all(START <= e.time <= end for e in p.events), [e for e in p.events if e.time < START]


@pytest.mark.parametrize("name", WELL_FORMED)
def test_runtime_alerts_also_reach_the_agent_pods_logs(
    played: Callable[[str], Played], name: str
) -> None:
    p = played(name)
    for source, namespace, app, container in (
        ("falco", "falco", "falco", "falco"),
        ("tetragon", "kube-system", "tetragon", "export-stdout"),
    ):
        by_node: dict[str, set[str]] = {}
        for pod in p.store.list_objs("v1", "Pod", namespace):
            if pod["metadata"]["labels"].get("app.kubernetes.io/name") == app:
                logs = p.store.log_lines(namespace, pod["metadata"]["name"], container) or []
                by_node[pod["spec"]["nodeName"]] = {line.text for line in logs}
        assert len(by_node) == 3
        for line, record in zip(p.lines[source], p.records[source], strict=True):
            node = record["hostname"] if source == "falco" else record["node_name"]
            assert line in by_node[node], (source, node, line[:120])


@pytest.mark.parametrize("name", WELL_FORMED)
def test_ids_agree_across_pod_status_falco_and_tetragon(
    played: Callable[[str], Played], name: str
) -> None:
    p = played(name)
    seen: dict[str, set[str]] = {}  # pod → container ids Tetragon reported
    for rec in p.records["tetragon"]:
        body = next(v for k, v in rec.items() if k.startswith("process_"))
        pod = body["process"].get("pod")
        if pod:
            cid = pod["container"]["id"]
            assert re.fullmatch(r"containerd://[0-9a-f]{64}", cid)
            assert body["process"]["docker"] == cid.split("://")[1][:31]
            seen.setdefault(pod["name"], set()).add(cid.split("://")[1])
    for alert in p.records["falco"]:
        fields = alert["output_fields"]
        pod_name = fields["k8s.pod.name"]
        assert re.fullmatch(r"[0-9a-f]{12}", fields["container.id"])
        # Every Falco alert in a pod has Tetragon records of the same container.
        assert any(c.startswith(fields["container.id"]) for c in seen.get(pod_name, ())), alert
        assert alert["hostname"] in {"worker-1", "worker-2", "worker-3"}
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z", alert["time"])
    # The ids Tetragon reports are the pods' own: a pod that never restarted has one.
    pods = {o["metadata"]["name"]: o for o in p.store.list_objs("v1", "Pod")}
    for pod_name, cids in seen.items():
        if pod_name not in pods:
            continue  # replaced by a rollout since
        ids = {s["containerID"].split("://")[1] for s in pods[pod_name]["status"]
               ["containerStatuses"] if s["restartCount"] == 0}  # fmt: skip
        if ids:
            assert cids <= ids, pod_name


@pytest.mark.parametrize("name", WELL_FORMED)
def test_execs_are_logged_like_kube_apiserver(played: Callable[[str], Played], name: str) -> None:
    p = played(name)
    execs = [r for r in p.records["audit"] if r.get("objectRef", {}).get("subresource") == "exec"]
    assert execs
    tetragon_pods = {
        body["process"]["pod"]["name"]
        for rec in p.records["tetragon"]
        for key, body in rec.items()
        if key.startswith("process_") and body["process"].get("pod")
    }
    for r in execs:
        ref = r["objectRef"]
        assert r["verb"] == "create" and r["stage"] == "ResponseStarted"
        assert r["responseStatus"]["code"] == 101
        assert re.fullmatch(
            rf"/api/v1/namespaces/{ref['namespace']}/pods/{ref['name']}/exec\?command=[^&]+"
            r"(&command=[^&]+)*&container=[a-z-]+(&stderr=true)?(&stdin=true)?&stdout=true"
            r"(&tty=true)?",
            r["requestURI"],
        ), r["requestURI"]
        # The exec'd pod is one Tetragon saw processes in (it may be gone since).
        assert ref["name"] in tetragon_pods


# -------------------------------------------------------------------- cryptominer


def test_cryptominer_ends_in_crashloopbackoff_after_oomkills(
    played: Callable[[str], Played],
) -> None:
    p = played("cryptominer")
    pod = p.pod("shop/storefront#0")
    name = pod["metadata"]["name"]
    (status,) = pod["status"]["containerStatuses"]
    assert status["restartCount"] == 4
    assert status["state"]["waiting"]["reason"] == "CrashLoopBackOff"
    assert "back-off" in status["state"]["waiting"]["message"]
    assert status["lastState"]["terminated"]["reason"] == "OOMKilled"
    assert status["lastState"]["terminated"]["exitCode"] == 137
    ready = {c["type"]: c["status"] for c in pod["status"]["conditions"]}
    assert ready["Ready"] == ready["ContainersReady"] == "False"
    assert pod["status"]["phase"] == "Running"
    # The other replica is untouched.
    assert p.pod("shop/storefront#1")["status"]["containerStatuses"][0]["restartCount"] == 0
    # Logs: the previous container's, and events counting the back-offs.
    previous = p.store.log_lines("shop", name, "storefront", previous=True)
    assert previous and any("starting" in line.text for line in previous)
    events = {
        e["reason"]: e
        for e in p.store.list_objs("v1", "Event", "shop")
        if e["involvedObject"]["name"] == name
    }
    assert events["BackOff"]["count"] == 4 and events["BackOff"]["type"] == "Warning"
    assert p.store.get_obj("events.k8s.io/v1", "Event", "shop", events["BackOff"]["metadata"]
                           ["name"])["deprecatedCount"] == 4  # fmt: skip
    oom = [e for e in p.store.list_objs("v1", "Event", "default") if e["reason"] == "OOMKilling"]
    assert len(oom) == 4 and all("xmrig" in e["message"] for e in oom)
    svc = p.store.get_obj("v1", "Service", "shop", "storefront")
    assert svc["spec"]["type"] == "LoadBalancer" and svc["status"]["loadBalancer"]["ingress"]


def test_cryptominer_signals(played: Callable[[str], Played]) -> None:
    p = played("cryptominer")
    name = p.pod("shop/storefront#0")["metadata"]["name"]
    mine = p.events_for_pod(name)
    kinds = {e.kind for e in mine if e.signal}
    assert {k for k in kinds if "exec" in k or "shell" in k}, kinds
    assert {"miner", "mining-pool-egress", "download"} <= kinds
    by_source = {e.source for e in mine if e.signal}
    assert by_source == {"audit", "falco", "tetragon"}
    assert max(e.severity for e in mine) == Severity.CRITICAL
    attacker = [e for e in p.events if any(x.name == "203.0.113.50" for x in e.entities)]
    assert any(e.kind == "exec" for e in attacker)


# -------------------------------------------------------------------- token-theft


def test_token_theft_leaves_a_privileged_pod_and_a_cluster_admin_binding(
    played: Callable[[str], Played],
) -> None:
    p = played("token-theft")
    pwn = p.store.get_obj("v1", "Pod", "kube-system", "pwn-x7k2q")
    assert pwn is not None and pwn["status"]["phase"] == "Running"
    assert pwn["spec"]["hostPID"] and pwn["spec"]["hostNetwork"]
    assert pwn["spec"]["nodeName"] == "worker-2"
    assert pwn["spec"]["containers"][0]["securityContext"]["privileged"] is True
    assert {"name": "host", "hostPath": {"path": "/", "type": "Directory"}} in pwn["spec"][
        "volumes"
    ]
    crb = p.store.get_obj(
        "rbac.authorization.k8s.io/v1", "ClusterRoleBinding", None, "ci-runner-admin"
    )
    assert crb["roleRef"]["name"] == "cluster-admin"
    assert crb["subjects"] == [{"kind": "ServiceAccount", "name": "runner", "namespace": "ci"}]


def test_token_theft_audit_trail(played: Callable[[str], Played]) -> None:
    p = played("token-theft")
    sa = p.store.get_obj("v1", "ServiceAccount", "ci", "runner")
    outside = [r for r in p.records["audit"] if r["sourceIPs"] == ["198.51.100.23"]]
    assert outside and all(r["user"]["username"] == "system:serviceaccount:ci:runner"
                           for r in outside)  # fmt: skip
    assert all(r["user"]["uid"] == sa["metadata"]["uid"] for r in outside)
    assert all(r["userAgent"].startswith("kubectl/") for r in outside)
    denied = [r for r in outside if r["responseStatus"]["code"] == 403]
    assert len(denied) >= 10
    assert all(r["responseStatus"]["reason"] == "Forbidden" for r in denied)
    assert all(r["annotations"]["authorization.k8s.io/decision"] == "forbid" for r in denied)
    assert 'User "system:serviceaccount:ci:runner" cannot list resource "nodes"' in " ".join(
        r["responseStatus"]["message"] for r in denied
    )
    (all_secrets,) = [r for r in outside if r["requestURI"] == "/api/v1/secrets?limit=500"]
    assert all_secrets["verb"] == "list" and "namespace" not in all_secrets["objectRef"]
    (binding,) = [r for r in outside if r["objectRef"]["resource"] == "clusterrolebindings"
                  and r["verb"] == "create"]  # fmt: skip
    assert binding["level"] == "RequestResponse"
    assert binding["requestObject"]["roleRef"]["name"] == "cluster-admin"
    assert "uid" not in binding["requestObject"]["metadata"]
    assert binding["responseObject"]["metadata"]["uid"]
    (create_pod,) = [r for r in outside if r["objectRef"]["resource"] == "pods"
                     and r["verb"] == "create" and "subresource" not in r["objectRef"]
                     and r["responseStatus"]["code"] == 201]  # fmt: skip
    spec = create_pod["requestObject"]["spec"]
    assert spec["hostPID"] is True and spec["nodeName"] == "worker-2"
    assert spec["containers"][0]["securityContext"] == {"privileged": True}
    assert spec["volumes"] == [{"name": "host", "hostPath": {"path": "/", "type": "Directory"}}]
    assert "status" not in create_pod["requestObject"]


def test_token_theft_signals(played: Callable[[str], Played]) -> None:
    p = played("token-theft")
    kinds = {e.kind for e in p.events if e.signal}
    assert {"rbac-binding", "privileged-pod", "nsenter", "sa-token-read"} <= kinds
    assert {k for k in kinds if "secret" in k}
    assert {k for k in kinds if "forbidden" in k or "403" in k}
    runner = p.pod("ci/runner#0")["metadata"]["name"]
    assert {e.source for e in p.events_for_pod(runner) if e.signal} >= {"falco", "tetragon"}
    nsenter = [e for e in p.events if e.kind == "nsenter"]
    assert nsenter and nsenter[0].severity == Severity.CRITICAL  # privileged, into PID 1


# ---------------------------------------------------------------------- quiet-day


def test_quiet_day_cluster_after_rollouts_scaling_and_the_job(
    played: Callable[[str], Played],
) -> None:
    p = played("quiet-day")
    store = p.store
    deploy = store.get_obj("apps/v1", "Deployment", "shop", "storefront")
    assert deploy["spec"]["replicas"] == 3
    assert deploy["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "2"
    image = deploy["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image == "ghcr.io/acme/storefront:2.5.0"
    pods = [
        o
        for o in store.list_objs("v1", "Pod", "shop")
        if o["metadata"]["labels"].get("app") == "storefront"
    ]
    assert len(pods) == 3
    assert {o["spec"]["containers"][0]["image"] for o in pods} == {image}
    sets = {
        o["metadata"]["name"]: o["spec"]["replicas"]
        for o in store.list_objs("apps/v1", "ReplicaSet", "shop")
        if o["metadata"]["name"].startswith("storefront-")
    }
    assert sorted(sets.values()) == [0, 3]
    owners = {o["metadata"]["ownerReferences"][0]["name"] for o in pods}
    assert owners == {n for n, r in sets.items() if r == 3}
    assert len([o for o in store.list_objs("v1", "Pod", "shop")
                if o["metadata"]["labels"].get("app") == "cart"]) == 3  # fmt: skip
    job = store.get_obj("batch/v1", "Job", "batch", "nightly-report-29012345")
    assert job["status"]["succeeded"] == 1 and "active" not in job["status"]
    (job_pod,) = store.list_objs("v1", "Pod", "batch")
    assert job_pod["status"]["phase"] == "Succeeded"
    reasons = Counter(e["reason"] for e in store.list_objs("v1", "Event", "shop"))
    assert reasons["Pulled"] >= 5 and reasons["Killing"] >= 5 and reasons["Scheduled"] >= 5
    assert reasons["ScalingReplicaSet"] >= 3


def test_quiet_day_has_nothing_malicious(played: Callable[[str], Played]) -> None:
    p = played("quiet-day")
    notice = FALCO_PRIORITIES.index("Notice")
    assert all(FALCO_PRIORITIES.index(a["priority"]) >= notice for a in p.records["falco"])
    execs = [r for r in p.records["audit"] if r.get("objectRef", {}).get("subresource") == "exec"]
    assert [(r["user"]["username"], r["objectRef"]["namespace"]) for r in execs] == [
        ("sre-alice", "dev")
    ]
    # Every signal is about that one expected exec, and none is above medium.
    sre_pod = execs[0]["objectRef"]["name"]
    signals = [e for e in p.events if e.signal]
    assert signals
    assert all(any(x.name == sre_pod for x in e.entities) for e in signals), [
        e.summary for e in signals if not any(x.name == sre_pod for x in e.entities)
    ]
    assert max(e.severity for e in p.events) <= Severity.MEDIUM
    users = Counter(r["user"]["username"] for r in p.records["audit"])
    assert users["system:kube-controller-manager"] and users["system:node:worker-1"]
    assert any(u.startswith("system:serviceaccount:kube-system:") for u in users)


# ------------------------------------------------------------- timing and errors


async def test_run_plays_each_step_at_its_scenario_time(tmp_path: Path) -> None:
    clock = ManualClock(start=START)
    store = ClusterStore(clock)
    outputs = SimOutputs(tmp_path)
    scenario = load_scenario("cryptominer")
    player = ScenarioPlayer(
        scenario, store=store, audit=AuditWriter(outputs, clock), outputs=outputs, clock=clock
    )
    task = asyncio.create_task(player.run())
    try:
        await wait_for(lambda: store.get_obj("v1", "Namespace", None, "shop") is not None)
        assert player.steps_done == 0 and not player.done
        for t in (31, 50.65, 170, 420):
            clock.set(START + t)
            due = sum(1 for s in scenario.steps if s.at <= t)
            await wait_for(lambda due=due: player.steps_done == due)
        await asyncio.wait_for(task, 5)
    finally:
        task.cancel()
    assert player.done and player.errors == []
    audit = [orjson.loads(line) for line in outputs.audit_path.read_bytes().splitlines()]
    (shell,) = [r for r in audit if r["requestURI"].endswith("&tty=true")]
    assert shell["requestReceivedTimestamp"] == "2027-01-15T08:00:50.000000Z"  # START + 50s


def test_a_step_that_cannot_apply_names_itself(tmp_path: Path) -> None:
    text = """
cluster:
  - node: {name: worker-1}
  - namespace: shop
  - deployment: {namespace: shop, name: web, image: nginx:1.27}
steps:
  - {at: 1, delete: {pod: shop/web#0}}
  - {at: 2, pod_log: {pod: shop/web#0, line: too late}}
  - {at: 3, pod_log: {pod: shop/web#9, line: nobody}}
"""
    clock = ManualClock(start=START)
    store = ClusterStore(clock)
    outputs = SimOutputs(tmp_path)
    player = ScenarioPlayer(
        parse_scenario(text, source="mine.yaml"),
        store=store,
        audit=AuditWriter(outputs, clock),
        outputs=outputs,
        clock=clock,
    )
    with pytest.raises(StepFailed, match=r"mine.yaml: step 2 \(line \d+\), at 2s, pod_log: "):
        player.play_all()
    assert store.list_objs("v1", "Pod", "shop") == []


async def test_run_skips_a_failing_step_and_goes_on(tmp_path: Path) -> None:
    text = """
cluster:
  - node: {name: worker-1}
  - namespace: shop
  - deployment: {namespace: shop, name: web, replicas: 2, image: nginx:1.27}
steps:
  - {at: 1, pod_log: {pod: shop/web#5, line: nobody}}
  - {at: 2, pod_log: {pod: shop/web#1, line: hello}}
"""
    clock = ManualClock(start=START)
    store = ClusterStore(clock)
    outputs = SimOutputs(tmp_path)
    player = ScenarioPlayer(
        parse_scenario(text, source="mine.yaml"),
        store=store,
        audit=AuditWriter(outputs, clock),
        outputs=outputs,
        clock=clock,
    )
    task = asyncio.create_task(player.run())
    await wait_for(lambda: store.get_obj("v1", "Namespace", None, "shop") is not None)
    clock.set(START + 5)
    await asyncio.wait_for(task, 5)
    assert player.steps_done == 2
    assert (
        len(player.errors) == 1
        and "step 1" in player.errors[0]
        and "no index" in (player.errors[0])
    )
    ns, name = player.resolve_pod("shop/web#1")
    assert [line.text for line in store.log_lines(ns, name, "web")] == ["hello"]


# -------------------------------------------------------------------------- noise


async def test_noise_writes_the_rate_it_is_asked_for(tmp_path: Path) -> None:
    rate, seconds = 20_000, 0.75
    clock = SimClock(start=START, speed=1.0)
    store = ClusterStore(clock)
    outputs = SimOutputs(tmp_path)
    scenario = parse_scenario(
        "cluster:\n  - node: {name: worker-1}\n  - node: {name: worker-2}\n  - kube_system: {}\n"
        "  - tetragon: {}\n  - namespace: shop\n"
        "  - deployment: {namespace: shop, name: web, replicas: 3, image: nginx:1.27}\n"
    )
    player = ScenarioPlayer(
        scenario,
        store=store,
        audit=AuditWriter(outputs, clock),
        outputs=outputs,
        clock=clock,
        noise_rate=rate,
    )
    task = asyncio.create_task(player.run())
    await wait_for(lambda: player.done and player.noise.started is not None)
    await asyncio.sleep(seconds)  # no steps: the noise goes on by itself
    assert not task.done()
    stopping = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    stopped = time.monotonic()
    outputs.close()
    audit = outputs.audit_path.read_bytes().splitlines()
    tetragon = outputs.tetragon_path.read_bytes().splitlines()
    written = len(audit) + len(tetragon)
    assert written == player.noise.written
    started = player.noise.started
    low, high = rate * (stopping - started), rate * (stopped - started)
    assert 0.9 * low <= written <= 1.1 * high, (written, low, high)
    assert 0.5 < len(audit) / written < 0.7  # 60% audit, 40% Tetragon
    ids = [orjson.loads(line)["auditID"] for line in audit]
    assert len(set(ids)) == len(ids)
    execs = [orjson.loads(line) for line in tetragon if line.startswith(b'{"process_exec"')]
    exec_ids = [r["process_exec"]["process"]["exec_id"] for r in execs]
    assert len(set(exec_ids)) == len(exec_ids) == len(tetragon) // 2
    ingestor = ingest.Ingestor()
    events = []
    for line in audit + tetragon:
        events += ingestor.feed_line(line, origin="noise")
    assert Counter(ingestor.skipped) == Counter()
    assert not [e for e in events if e.signal], "noise must be benign"
    assert {e.source for e in events} == {"audit", "tetragon"}
    # Scenario-time stamps from the clock.
    last = orjson.loads(audit[-1])["requestReceivedTimestamp"]
    assert last.startswith("2027-01-15T08:00:0")
