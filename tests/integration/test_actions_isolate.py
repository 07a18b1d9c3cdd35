"""Isolation and detach against the simulated cluster, checked with the real kubectl."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
from test_actions_support import (
    audit_lines,
    engine_with_incident,
    kubectl,
    make_service,
    seed_namespace,
    seed_node,
    seed_pod,
    seed_policy,
    unique,
)

from ktriage.actions import FAILED, OK, UNCHANGED, UNDONE, ActionError
from ktriage.actions.base import QUARANTINE_LABEL
from ktriage.actions.isolate import policy_name, quarantine_value

pytestmark = pytest.mark.sim


def _policies(sim: Any, tmp_path: Path, ns: str) -> dict[str, dict]:
    listing = kubectl(sim, tmp_path, "get", "networkpolicy", "-n", ns, "-o", "json")
    return {p["metadata"]["name"]: p for p in listing["items"]}


def _labels(sim: Any, tmp_path: Path, ns: str, pod: str) -> dict[str, str]:
    text = kubectl(sim, tmp_path, "get", "pod", pod, "-n", ns, "--show-labels", "--no-headers")
    labels = text.split()[-1]
    return dict(kv.split("=", 1) for kv in labels.split(",") if "=" in kv)


async def test_isolate_preview_dry_run_apply_idempotent_undo(sim: Any, tmp_path: Path) -> None:
    ns, node, pod = unique("shop"), unique("node"), unique("web")
    seed_namespace(sim.store, ns)
    seed_node(sim.store, node)
    seed_pod(sim.store, ns, pod, node=node, labels={"app": "web", "tier": "front"})
    seed_policy(
        sim.store,
        ns,
        "allow-frontend",
        {
            "podSelector": {"matchLabels": {"app": "web"}},
            "ingress": [
                {
                    "from": [{"podSelector": {"matchLabels": {"role": "lb"}}}],
                    "ports": [{"protocol": "TCP", "port": 8080}],
                }
            ],
        },
    )
    seed_policy(sim.store, ns, "allow-all-ingress", {"podSelector": {}, "ingress": [{}]})
    seed_policy(
        sim.store,
        ns,
        "db-only",
        {"podSelector": {"matchLabels": {"app": "db"}}, "ingress": [{}]},
    )
    engine, incident = engine_with_incident(ns, pod)
    service = make_service(sim, engine, tmp_path)
    try:
        plan = await service.prepare("i", incident, (ns, pod))
        create, label = plan.changes
        name = f"ktriage-quarantine-{pod}"
        assert create.verb == "create" and create.target.name == name
        body = create.body
        assert body["metadata"]["labels"] == {"app.kubernetes.io/managed-by": "ktriage"}
        assert body["metadata"]["annotations"] == {"ktriage.io/incident": incident}
        assert body["spec"] == {
            "podSelector": {"matchLabels": {QUARANTINE_LABEL: pod}},
            "policyTypes": ["Ingress", "Egress"],
        }
        kubernetes_validate.validate(body, "1.37", strict=True)
        assert "kind: NetworkPolicy" in create.render()
        assert label.body["metadata"]["labels"] == {QUARANTINE_LABEL: pod}
        assert label.body["metadata"]["resourceVersion"]
        # The warnings name the policies that still allow traffic, and only those.
        warnings = " ".join(plan.warnings)
        assert "allow-frontend" in warnings and "TCP/8080" in warnings
        assert "allow-all-ingress" in warnings and "selects every pod" in warnings
        assert "db-only" not in warnings
        # The dry run changed nothing.
        assert name not in _policies(sim, tmp_path, ns)
        assert QUARANTINE_LABEL not in _labels(sim, tmp_path, ns, pod)

        outcome = await service.apply(plan)
        assert outcome.result == OK, outcome.message
        # Re-read and judged: the quarantine is in place but other policies still allow.
        assert "NOT effective" in outcome.message
        assert "allow-all-ingress" in outcome.message and "allow-frontend" in outcome.message
        (fact,) = outcome.containment
        assert fact["aspect"] == "network" and fact["subject"] == f"pod {ns}/{pod}"
        assert fact["state"] == "not-effective" and "TCP/8080" in fact["detail"]
        policies = _policies(sim, tmp_path, ns)
        assert policies[name]["spec"]["policyTypes"] == ["Ingress", "Egress"]
        assert policies[name]["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "ktriage"
        assert _labels(sim, tmp_path, ns, pod)[QUARANTINE_LABEL] == pod
        # The policy was created before the pod was labelled.
        writes = [
            (a["verb"], a["objectRef"]["resource"])
            for a in audit_lines(sim)
            if a.get("objectRef", {}).get("namespace") == ns
            and a["verb"] in ("create", "patch", "delete")
            and "dryRun" not in a["requestURI"]
            and a["user"]["username"] == "kubernetes-admin"
        ]
        assert writes == [("create", "networkpolicies"), ("patch", "pods")]
        (event,) = [e for e in engine.correlator.events_of(incident) if e.source == "ktriage"]
        assert event.raw_inline["action"] == "isolate" and event.raw_inline["result"] == "ok"
        assert event.raw_inline["warnings"]
        assert event.raw_inline["containment"][0]["state"] == "not-effective"

        again = await service.prepare("i", incident, (ns, pod))
        assert again.changes == [] and "already quarantined" in again.unchanged
        assert "allow-frontend" in again.unchanged  # the claim is re-read, not remembered
        rechecked = await service.apply(again)
        assert rechecked.result == UNCHANGED
        assert rechecked.containment[0]["state"] == "not-effective"

        undo = await service.prepare_undo(incident, (ns, pod))
        assert [c.verb for c in undo.changes] == ["patch", "delete"]
        assert undo.changes[0].body["metadata"]["labels"] == {QUARANTINE_LABEL: None}
        undone = await service.apply(undo)
        assert undone.result == UNDONE, undone.message
        assert undone.containment[0]["state"] == "restored"
        assert "allow-frontend" in undone.containment[0]["detail"]
        assert name not in _policies(sim, tmp_path, ns)
        assert QUARANTINE_LABEL not in _labels(sim, tmp_path, ns, pod)
        writes = [
            (a["verb"], a["objectRef"]["resource"])
            for a in audit_lines(sim)
            if a.get("objectRef", {}).get("namespace") == ns
            and a["verb"] in ("create", "patch", "delete")
            and "dryRun" not in a["requestURI"]
        ]
        # Undo: the label goes first, then the policy.
        assert writes[-2:] == [("patch", "pods"), ("delete", "networkpolicies")]
    finally:
        service.close()


async def test_isolation_without_other_policies_says_it_is_complete(
    sim: Any, tmp_path: Path
) -> None:
    ns, pod = unique("lonely"), unique("web")
    seed_pod(sim.store, ns, pod, node="n1")
    service = make_service(sim, None, tmp_path)
    try:
        plan = await service.prepare("i", "INC-2", (ns, pod))
        # No policy would allow traffic; but the plain simulated cluster runs no network
        # plugin that enforces NetworkPolicy, and the plan says so first.
        (warning,) = plan.warnings
        assert warning.startswith("No NetworkPolicy-enforcing network plugin was seen")
        assert "isolation may not be enforced" in warning
        assert any("no policy allows traffic to or from this pod" in n for n in plan.notes)
        outcome = await service.apply(plan)
        assert outcome.result == OK
        (fact,) = outcome.containment
        assert fact["state"] == "unverified" and "may not be enforced" in fact["detail"]
    finally:
        service.close()


async def test_foreign_policy_with_our_name_is_never_touched(sim: Any, tmp_path: Path) -> None:
    ns, pod = unique("shop"), unique("web")
    seed_pod(sim.store, ns, pod, node="n1")
    seed_policy(sim.store, ns, f"ktriage-quarantine-{pod}", {"podSelector": {}})
    service = make_service(sim, None, tmp_path)
    try:
        with pytest.raises(ActionError, match="not managed by ktriage"):
            await service.prepare("i", "INC-3", (ns, pod))
    finally:
        service.close()


def test_long_pod_names_give_legal_names() -> None:
    long_a = "a" * 70 + "-x"
    long_b = "a" * 70 + "-y"
    for pod in (long_a, long_b, "web.v2.pod"):
        name = policy_name(pod)
        assert len(name) <= 63 and re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", name), name
        value = quarantine_value(pod)
        assert len(value) <= 63
        assert re.fullmatch(r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?", value), value
    assert policy_name(long_a) != policy_name(long_b)
    assert quarantine_value(long_a) != quarantine_value(long_b)
    assert policy_name("web-1") == "ktriage-quarantine-web-1"
    assert quarantine_value("web-1") == "web-1"


async def test_long_pod_name_isolates(sim: Any, tmp_path: Path) -> None:
    ns, pod = unique("shop"), "payments-api-" + "x" * 60 + "-7d9f"
    # A label value holds at most 63 characters: the API server rejects the pod name as one.
    seed_pod(sim.store, ns, pod, node="n1", labels={"app": "payments-api"})
    service = make_service(sim, None, tmp_path)
    try:
        outcome = await service.apply(await service.prepare("i", "INC-4", (ns, pod)))
        assert outcome.result == OK, outcome.message
        assert policy_name(pod) in _policies(sim, tmp_path, ns)
        assert _labels(sim, tmp_path, ns, pod)[QUARANTINE_LABEL] == quarantine_value(pod)
    finally:
        service.close()


def _seed_workload(sim: Any, ns: str, pod: str) -> None:
    seed_namespace(sim.store, ns)
    rs = sim.store.apply(
        {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {"name": "web-7d9f", "namespace": ns},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": "web", "pod-template-hash": "7d9f"}},
                "template": {
                    "metadata": {"labels": {"app": "web", "pod-template-hash": "7d9f"}},
                    "spec": {"containers": [{"name": "app", "image": "nginx:1.27"}]},
                },
            },
        }
    )
    owner = {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "name": "web-7d9f",
        "uid": rs["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }
    labels = {"app": "web", "pod-template-hash": "7d9f", "tier": "front", "team": "pay"}
    seed_pod(sim.store, ns, pod, node="n1", labels=labels, owner=owner)
    sim.store.apply(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "web", "namespace": ns},
            "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]},
        }
    )
    seed_policy(
        sim.store,
        ns,
        "allow-front",
        {
            "podSelector": {
                "matchExpressions": [{"key": "tier", "operator": "In", "values": ["front"]}]
            },
            "ingress": [{}],
        },
    )


async def test_detach_removes_the_labels_that_hold_the_pod(sim: Any, tmp_path: Path) -> None:
    ns, pod = unique("shop"), unique("web")
    _seed_workload(sim, ns, pod)
    engine, incident = engine_with_incident(ns, pod)
    service = make_service(sim, engine, tmp_path)
    try:
        isolated = await service.apply(await service.prepare("i", incident, (ns, pod)))
        assert isolated.result == OK
        plan = await service.prepare("D", incident, (ns, pod))
        (change,) = plan.changes
        removed = change.body["metadata"]["labels"]
        assert removed == {"app": None, "pod-template-hash": None, "tier": None}
        notes = " ".join(plan.notes)
        assert "ReplicaSet web-7d9f" in notes and "Service web" in notes
        assert "NetworkPolicy allow-front" in notes
        assert "kubectl label pod" in notes and "app=web" in notes
        assert any("start a replacement" in w for w in plan.warnings)
        assert not any("not isolated" in w for w in plan.warnings)
        assert _labels(sim, tmp_path, ns, pod)["app"] == "web"  # dry run changed nothing

        outcome = await service.apply(plan)
        assert outcome.result == OK, outcome.message
        labels = _labels(sim, tmp_path, ns, pod)
        assert labels == {"team": "pay", QUARANTINE_LABEL: pod}
        detached = next(f for f in outcome.containment if f["state"] == "detached")
        assert "Service web" in detached["detail"] and "ReplicaSet web-7d9f" in detached["detail"]
        # Detach is not undone by ktriage (it would cost a replica); undo goes to isolation.
        assert not outcome.record.can_undo and "kubectl label pod" in outcome.record.undo_note
        assert service.last_undoable(incident, (ns, pod)) is isolated.record
        event = [e for e in engine.correlator.events_of(incident) if e.kind == "action-detach"]
        assert event and event[0].raw_inline["undoable"] is False
    finally:
        service.close()


async def test_detach_refreshes_on_stale_resource_version(sim: Any, tmp_path: Path) -> None:
    ns, pod = unique("shop"), unique("web")
    _seed_workload(sim, ns, pod)
    service = make_service(sim, None, tmp_path)
    try:
        plan = await service.prepare("D", "INC-5", (ns, pod))
        # Someone edits the pod between the preview and the apply: 409, re-read, retry once.
        sim.store.mutate("v1", "Pod", ns, pod, lambda p: p["metadata"]["labels"].pop("tier", None))
        outcome = await service.apply(plan)
        assert outcome.result == OK, outcome.message
        assert _labels(sim, tmp_path, ns, pod) == {"team": "pay"}
        codes = [
            a["responseStatus"]["code"]
            for a in audit_lines(sim)
            if a["verb"] == "patch"
            and a.get("objectRef", {}).get("name") == pod
            and "dryRun" not in a["requestURI"]
        ]
        assert codes == [409, 200]
    finally:
        service.close()


async def test_nothing_to_detach(sim: Any, tmp_path: Path) -> None:
    ns, pod = unique("bare"), unique("job")
    seed_pod(sim.store, ns, pod, node="n1", labels={"run": "once"})
    service = make_service(sim, None, tmp_path)
    try:
        plan = await service.prepare("D", "INC-6", (ns, pod))
        assert plan.changes == [] and "not held" in plan.unchanged
        assert (await service.apply(plan)).result == UNCHANGED
    finally:
        service.close()


async def test_isolation_failure_is_failed_not_raised(sim: Any, tmp_path: Path) -> None:
    """A plan for a pod deleted meanwhile: 404, the policy rolled back (see faults tests)."""
    ns, pod = unique("shop"), unique("gone")
    seed_pod(sim.store, ns, pod, node="n1")
    service = make_service(sim, None, tmp_path)
    try:
        plan = await service.prepare("i", "INC-7", (ns, pod))
        sim.store.delete("v1", "Pod", ns, pod)
        outcome = await service.apply(plan)
        assert outcome.result == FAILED
        assert f"pod {ns}/{pod} is gone" in outcome.message
        assert "rolled back" in outcome.message and "nothing is left behind" in outcome.message
        assert _policies(sim, tmp_path, ns) == {}
    finally:
        service.close()


async def test_detach_lets_a_job_let_go_of_its_pod(sim: Any, tmp_path: Path) -> None:
    """A pod a Job (or a CronJob's Job) runs is held by the Job's selector labels."""
    ns, pod = unique("batch"), unique("report")
    seed_namespace(sim.store, ns)
    uid_label = "batch.kubernetes.io/controller-uid"
    job = sim.store.apply(
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": "nightly-report", "namespace": ns},
            "spec": {
                "selector": {"matchLabels": {uid_label: "9f2c"}},
                "manualSelector": True,
                "template": {
                    "metadata": {"labels": {uid_label: "9f2c", "job-name": "nightly-report"}},
                    "spec": {
                        "restartPolicy": "Never",
                        "containers": [{"name": "report", "image": "busybox:1.36"}],
                    },
                },
            },
        }
    )
    owner = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "name": "nightly-report",
        "uid": job["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }
    labels = {uid_label: "9f2c", "job-name": "nightly-report", "team": "data"}
    seed_pod(sim.store, ns, pod, node="n1", labels=labels, owner=owner)
    service = make_service(sim, None, tmp_path)
    try:
        plan = await service.prepare("D", "INC-J", (ns, pod))
        assert plan.changes, (plan.unchanged, [w[:300] for w in plan.warnings])
        (change,) = plan.changes
        assert change.body["metadata"]["labels"] == {uid_label: None}
        assert "Job nightly-report" in " ".join(plan.notes)
        assert any("Job nightly-report will no longer count this pod" in w for w in plan.warnings)
        outcome = await service.apply(plan)
        assert outcome.result == OK, outcome.message
        assert _labels(sim, tmp_path, ns, pod) == {"job-name": "nightly-report", "team": "data"}
    finally:
        service.close()


async def test_hostile_hostnetwork_pod_is_refused_with_node_level_steps(
    sim: Any, tmp_path: Path
) -> None:
    """The token-theft case: a privileged hostNetwork/hostPID pod. NetworkPolicy cannot
    apply to it: isolation refuses, names node-level containment, records not-applicable,
    and creates nothing."""
    ns, pod = unique("kube-system"), unique("pwn")
    seed_pod(sim.store, ns, pod, node="worker-1", labels={"run": "pwn"})
    sim.store.mutate(
        "v1", "Pod", ns, pod, lambda p: p["spec"].update(hostNetwork=True, hostPID=True)
    )
    engine, incident = engine_with_incident(ns, pod)
    service = make_service(sim, engine, tmp_path)
    try:
        with pytest.raises(ActionError) as caught:
            await service.prepare("i", incident, (ns, pod))
        message = caught.value.message
        assert message.startswith("NetworkPolicy does not apply to hostNetwork pods")
        assert "node worker-1" in message
        assert "cordon its node (c)" in message and "save its evidence (l)" in message
        assert re.search(r"then delete( \(\w\))? or evict the pod", message), message
        (event,) = [e for e in engine.correlator.events_of(incident) if e.source == "ktriage"]
        assert event.raw_inline["result"] == "refused"
        (fact,) = event.raw_inline["containment"]
        assert fact["state"] == "not-applicable" and fact["subject"] == f"pod {ns}/{pod}"
        assert _policies(sim, tmp_path, ns) == {}
        assert QUARANTINE_LABEL not in _labels(sim, tmp_path, ns, pod)
    finally:
        service.close()


async def test_hostile_allow_everything_policy_added_right_after_isolation(
    sim: Any, tmp_path: Path
) -> None:
    """An attacker adds `ingress: [{}]` for every pod between ktriage's label and its
    check: the check reads it back and the outcome says isolation is not effective."""
    ns, pod = unique("shop"), unique("web")
    seed_pod(sim.store, ns, pod, node="n1", labels={"app": "web"})
    service = make_service(sim, None, tmp_path)
    try:
        plan = await service.prepare("i", "INC-A", (ns, pod))
        assert not any("Still allowed" in w for w in plan.warnings)
        kube = (await service.ensure_context()).kube
        real_patch = kube.patch_pod

        def patch_then_attack(*args: Any, **kwargs: Any) -> Any:
            reply = real_patch(*args, **kwargs)
            if not kwargs.get("dry_run"):
                seed_policy(sim.store, ns, "let-me-in", {"podSelector": {}, "ingress": [{}]})
            return reply

        kube.patch_pod = patch_then_attack  # type: ignore[method-assign]
        outcome = await service.apply(plan)
        assert outcome.result == OK
        (fact,) = outcome.containment
        assert fact["state"] == "not-effective"
        assert "NetworkPolicy let-me-in" in fact["detail"] and "from anywhere" in fact["detail"]
        assert "NOT effective" in outcome.message and "let-me-in" in outcome.message
    finally:
        service.close()
