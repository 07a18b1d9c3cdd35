"""The containment state through the real actions against the simulated cluster; its
next steps run in a shell with the real kubectl, and do what they say."""

from __future__ import annotations

import hashlib
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from test_actions_support import (
    KUBECTL,
    engine_with_incident,
    kubectl,
    make_service,
    seed_cluster_role_binding,
    seed_node,
    seed_pod,
    unique,
)

from ktriage.actions import OK
from ktriage.core.containment import NOTHING, containment_state
from ktriage.core.model import EntityKind, Event, Severity, entity
from ktriage.core.snapshot import render_markdown, time_to_contain

pytestmark = pytest.mark.sim


def _run(sim: Any, cwd: Path, command: str) -> subprocess.CompletedProcess[str]:
    """One next-step command, as the user would paste it into a POSIX shell."""
    env = {
        "PATH": f"{KUBECTL.parent}:/usr/bin:/bin",
        "HOME": str(cwd),
        "KUBECONFIG": str(sim.kubeconfig_path),
        "KUBECACHEDIR": str(cwd / ".kubecache"),
    }
    return subprocess.run(
        ["/bin/sh", "-c", command], cwd=cwd, env=env, capture_output=True, text=True, timeout=60
    )


def _state(engine: Any, incident: str) -> Any:
    inc = engine.correlator.resolve(incident)
    return inc, containment_state(inc, engine.correlator.events_of(incident))


def _item(state: Any, aspect: str, subject: str) -> Any:
    (item,) = [i for i in state.of(aspect) if i.subject == subject]
    return item


async def test_isolate_cordon_and_logs_make_the_state_and_its_next_steps_run(
    sim: Any, tmp_path: Path
) -> None:
    node, pod, other = unique("node"), unique("web"), unique("api")
    account = unique("robber")
    seed_node(sim.store, node)
    seed_pod(sim.store, "shop", pod, node=node)
    seed_pod(sim.store, "shop", other, node=node)
    sim.store.apply(
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": account, "namespace": "shop"},
        }
    )
    binding = unique("grab")
    seed_cluster_role_binding(
        sim.store,
        binding,
        "view",
        [{"kind": "ServiceAccount", "name": account, "namespace": "shop"}],
    )
    engine, incident = engine_with_incident("shop", pod, node)
    # The account execs into both pods: it acted, and it links them into the incident.
    sa = entity(EntityKind.SERVICE_ACCOUNT, "shop", account)
    engine.add_events(
        Event(
            time=time.time() - 50 + n,
            source="audit",
            ref=unique("exec"),
            kind="exec",
            severity=Severity.HIGH,
            summary=f"system:serviceaccount:shop:{account} exec into shop/{target}",
            entities=(sa, entity(EntityKind.POD, "shop", target)),
            signal=True,
            label="Exec",
        )
        for n, target in enumerate((pod, other))
    )
    incident = engine.correlator.resolve(incident).id
    service = make_service(sim, engine, tmp_path / "snapshots")
    try:
        for key in ("c", "i", "l"):
            plan = await service.prepare(key, incident, ("shop", pod))
            outcome = await service.apply(plan)
            assert outcome.result == OK, (key, outcome.message)
            if key == "l":
                files = outcome.files
    finally:
        service.close()

    inc, state = _state(engine, incident)
    # A cordon, saved logs and an isolation nothing is seen to enforce (this cluster
    # runs no network plugin): nothing is contained yet.
    assert state.level == NOTHING and not state.contained
    assert time_to_contain(inc, engine.correlator.events_of(incident)) is None

    # The node: cordoned, as the real kubectl sees it too.
    assert _item(state, "node", f"node {node}").state == "cordoned"
    assert kubectl(sim, tmp_path, "get", "node", node, "-o", "jsonpath={.spec.unschedulable}") == (
        "true"
    )
    # The isolated pod: what the isolate action checked (a record without a checked
    # fact is "unverified", never "isolated").
    isolate = [e for e in engine.correlator.events_of(incident) if e.kind == "action-isolate"][-1]
    said = [
        f["state"]
        for f in isolate.raw_inline.get("containment", [])
        if f["aspect"] == "network" and f["subject"] == f"pod shop/{pod}"
    ]
    assert _item(state, "network", f"pod shop/{pod}").state == (said[-1] if said else "unverified")
    # The evidence: every file's SHA-256 in the fact, as the files on disk have it.
    evidence = _item(state, "evidence", f"pod shop/{pod}")
    assert evidence.state == "logs-dumped" and evidence.actor == "kubernetes-admin"
    assert f"{len(files)} file(s)" in evidence.detail
    for f in files:
        on_disk = hashlib.sha256((tmp_path / "snapshots" / f["path"]).read_bytes()).hexdigest()
        assert f"{Path(f['path']).name} sha256 {on_disk}" in evidence.detail

    # What is open: the other pod, its evidence, the account.
    open_subjects = {(i.aspect, i.subject) for i in state.open}
    assert ("network", f"pod shop/{other}") in open_subjects
    assert ("evidence", f"pod shop/{other}") in open_subjects
    assert ("identity", f"serviceaccount shop/{account}") in open_subjects

    # Its next steps, run as written with the real kubectl, do what they say.
    work = tmp_path / "by-hand"
    work.mkdir()
    steps = {s.why.split(":")[0]: s for s in state.next_steps if s.subject == f"pod shop/{other}"}
    for command in steps["not isolated"].commands + steps["save its evidence"].commands:
        done = _run(sim, work, command)
        assert done.returncode == 0, (command, done.stderr)
    labels = kubectl(sim, tmp_path, "get", "pod", other, "-n", "shop", "-o", "json")["metadata"][
        "labels"
    ]
    assert labels["ktriage.io/quarantine"] == other
    policy = kubectl(
        sim,
        tmp_path,
        "get",
        "networkpolicy",
        f"ktriage-quarantine-{other}",
        "-n",
        "shop",
        "-o",
        "json",
    )
    assert policy["spec"]["podSelector"] == {"matchLabels": {"ktriage.io/quarantine": other}}
    assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"]
    assert _run(sim, work, f"sha256sum -c shop.{other}.SHA256SUMS").returncode == 0
    assert f"name: {other}" in (work / f"shop.{other}.yaml").read_text()

    (account_step,) = [s for s in state.next_steps if s.subject == f"serviceaccount shop/{account}"]
    can_i, bindings, recreate = account_step.commands
    assert _run(sim, work, can_i).returncode == 0
    found = _run(sim, work, bindings)
    assert found.returncode == 0 and binding in found.stdout
    uid_before = kubectl(sim, tmp_path, "get", "sa", account, "-n", "shop", "-o", "json")
    done = _run(sim, work, recreate)
    assert done.returncode == 0, done.stderr
    uid_after = kubectl(sim, tmp_path, "get", "sa", account, "-n", "shop", "-o", "json")
    assert uid_after["metadata"]["uid"] != uid_before["metadata"]["uid"]

    # The snapshot says all of it.
    markdown = render_markdown(inc, engine.correlator.events_of(incident))
    section = markdown.split("## Containment", 1)[1].split("\n## ", 1)[0]
    assert "**Not contained yet.**" in section
    assert f"| node | node {node} | cordoned |" in section
    assert f"| evidence | pod shop/{pod} | logs-dumped |" in section
    assert f"| identity | serviceaccount shop/{account} | open |" in section
    assert f"kubectl --namespace=shop label pod/{other} ktriage.io/quarantine={other}" in section


async def test_cordon_plan_for_a_host_network_pod_names_delete_not_isolate(
    sim: Any, tmp_path: Path
) -> None:
    """Isolation refuses a hostNetwork pod: the cordon plan must not send the user back
    to it, but name what works: its evidence saved, then the pod deleted."""
    node, host_pod, plain_pod = unique("node"), unique("pwn"), unique("web")
    ns = unique("kube-system")
    seed_node(sim.store, node)
    seed_pod(sim.store, ns, host_pod, node=node, labels={"run": "pwn"})
    sim.store.mutate("v1", "Pod", ns, host_pod, lambda p: p["spec"].update(hostNetwork=True))
    seed_pod(sim.store, ns, plain_pod, node=node, labels={"app": "web"})
    engine, incident = engine_with_incident(ns, host_pod)
    service = make_service(sim, engine, tmp_path)
    try:
        plan = await service.prepare("c", incident, (ns, host_pod))
        notes = " ".join(plan.notes)
        assert "isolate it too" not in notes
        assert "NetworkPolicy cannot apply" in notes
        assert "save its evidence (l), then delete it (X)" in notes
        plan = await service.prepare("c", incident, (ns, plain_pod))
        assert "isolate it too" in " ".join(plan.notes)
    finally:
        service.close()
