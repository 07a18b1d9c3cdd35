"""Isolation on a simulated cluster running Cilium or Calico: the deny-based quarantine
beats allow rules without touching the pod's own labels; checked with the real kubectl
and against the CRD's schema; a policy an attacker adds right after is judged too."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from test_actions_support import (
    engine_with_incident,
    kubectl,
    make_service,
    seed_cluster_role_binding,
    seed_pod,
    seed_policy,
    unique,
)

from ktriage.actions import OK, UNDONE
from ktriage.actions.base import QUARANTINE_LABEL
from ktriage.actions.isolate import policy_name

# The module's cluster (conftest's `sim`) runs each network plugin in turn.
pytestmark = [
    pytest.mark.sim,
    pytest.mark.parametrize("sim", ["cilium", "calico"], indirect=True, scope="module"),
]

RESOURCE = {"cilium": "ciliumnetworkpolicies", "calico": "networkpolicies.projectcalico.org"}
CRD = {"cilium": "ciliumnetworkpolicies.cilium.io", "calico": "networkpolicies.projectcalico.org"}
KIND = {"cilium": "CiliumNetworkPolicy", "calico": "NetworkPolicy"}
PLUGIN = {"cilium": "Cilium", "calico": "Calico"}
API_VERSION = {"cilium": "cilium.io/v2", "calico": "projectcalico.org/v3"}


def _objects(sim: Any, tmp_path: Path, ns: str) -> dict[str, dict]:
    listing = kubectl(sim, tmp_path, "get", RESOURCE[sim.cni], "-n", ns, "-o", "json")
    return {p["metadata"]["name"]: p for p in listing["items"]}


def _labels(sim: Any, tmp_path: Path, ns: str, pod: str) -> dict[str, str]:
    return kubectl(sim, tmp_path, "get", "pod", pod, "-n", ns, "-o", "json")["metadata"]["labels"]


def _seed_allowing(sim: Any, ns: str, pod: str) -> None:
    seed_pod(sim.store, ns, pod, node="n1", labels={"app": "web", "tier": "front"})
    # Kubernetes policies that allow everything in: a plain deny-all would not win.
    seed_policy(sim.store, ns, "allow-all-in", {"podSelector": {}, "ingress": [{}]})
    seed_policy(
        sim.store,
        ns,
        "allow-all-out",
        {"podSelector": {}, "policyTypes": ["Egress"], "egress": [{}]},
    )


def _attacker_allow(sim: Any, ns: str) -> dict[str, Any]:
    """An allow-everything policy of the plugin's own kind, as an attacker would add."""
    if sim.cni == "cilium":
        return {
            "apiVersion": "cilium.io/v2",
            "kind": "CiliumNetworkPolicy",
            "metadata": {"name": "zz-allow-web", "namespace": ns},
            "spec": {
                "endpointSelector": {"matchLabels": {"app": "web"}},
                "ingress": [{"fromEntities": ["all"]}],
                "egress": [{"toEntities": ["all"]}],
            },
        }
    return {
        "apiVersion": "projectcalico.org/v3",
        "kind": "NetworkPolicy",
        # Same order as ktriage's; the name sorts first, so Calico evaluates it first.
        "metadata": {"name": "aaa-allow-web", "namespace": ns},
        "spec": {
            "order": 0,
            "selector": "app == 'web'",
            "types": ["Ingress", "Egress"],
            "ingress": [{"action": "Allow"}],
            "egress": [{"action": "Allow"}],
        },
    }


async def test_deny_quarantine_beats_allow_rules_and_undoes(sim: Any, tmp_path: Path) -> None:
    ns, pod = unique("shop"), unique("web")
    _seed_allowing(sim, ns, pod)
    engine, incident = engine_with_incident(ns, pod)
    service = make_service(sim, engine, tmp_path)
    name = policy_name(pod)
    try:
        plan = await service.prepare("i", incident, (ns, pod))
        create, label = plan.changes
        assert create.verb == "create" and create.body["kind"] == KIND[sim.cni]
        assert create.body["apiVersion"] == API_VERSION[sim.cni]
        assert create.target.name == name
        # Valid against the schema the cluster serves for that kind.
        crd = kubectl(sim, tmp_path, "get", "crd", CRD[sim.cni], "-o", "json")
        schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
        jsonschema.validate(create.body, schema)
        spec = create.body["spec"]
        if sim.cni == "cilium":
            assert spec["endpointSelector"] == {"matchLabels": {QUARANTINE_LABEL: pod}}
            assert spec["ingressDeny"] == [{"fromEntities": ["all"]}]
            assert spec["egressDeny"] == [{"toEntities": ["all"]}]
        else:
            assert spec["order"] == 0 and spec["types"] == ["Ingress", "Egress"]
            assert spec["selector"] == f"{QUARANTINE_LABEL} == '{pod}'"
            assert spec["ingress"] == [{"action": "Deny"}] == spec["egress"]
        # Only the quarantine label is added: the pod's own labels stay.
        assert label.body["metadata"]["labels"] == {QUARANTINE_LABEL: pod}
        # The plugin was seen: no warning; the deny beats the allow-everything policies.
        assert plan.warnings == [], plan.warnings
        notes = " ".join(plan.notes)
        assert f"enforced here by {PLUGIN[sim.cni]}" in notes
        assert "detach is not needed to cut traffic" in notes
        assert name not in _objects(sim, tmp_path, ns)  # the dry run created nothing

        outcome = await service.apply(plan)
        assert outcome.result == OK, outcome.message
        (fact,) = outcome.containment
        assert fact["state"] == "isolated", fact
        assert PLUGIN[sim.cni] in fact["detail"]
        created = _objects(sim, tmp_path, ns)[name]
        assert created["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "ktriage"
        assert _labels(sim, tmp_path, ns, pod) == {
            "app": "web",
            "tier": "front",
            QUARANTINE_LABEL: pod,
        }
        # The plain NetworkPolicies were not touched, and no plain one was added.
        netpols = kubectl(sim, tmp_path, "get", "networkpolicies.networking.k8s.io", "-n", ns)
        assert "ktriage" not in netpols

        undo = await service.prepare_undo(incident, (ns, pod))
        assert [c.verb for c in undo.changes] == ["patch", "delete"]
        assert undo.changes[1].target.kind == create.target.kind
        undone = await service.apply(undo)
        assert undone.result == UNDONE, undone.message
        assert undone.containment[0]["state"] == "restored"
        assert name not in _objects(sim, tmp_path, ns)
        assert QUARANTINE_LABEL not in _labels(sim, tmp_path, ns, pod)
    finally:
        service.close()


async def test_hostile_policy_added_right_after_isolation_is_judged(
    sim: Any, tmp_path: Path
) -> None:
    """The attacker adds an allow-everything policy of the plugin's kind between ktriage's
    label and its check. Cilium's deny still wins; Calico's ordered Deny is preceded by
    the attacker's Allow, and the check says so."""
    ns, pod = unique("shop"), unique("web")
    _seed_allowing(sim, ns, pod)
    service = make_service(sim, None, tmp_path)
    try:
        plan = await service.prepare("i", "INC-ATTACK", (ns, pod))
        kube = (await service.ensure_context()).kube
        real_patch = kube.patch_pod

        def patch_then_attack(*args: Any, **kwargs: Any) -> Any:
            reply = real_patch(*args, **kwargs)
            if not kwargs.get("dry_run"):
                sim.store.apply(_attacker_allow(sim, ns))
            return reply

        kube.patch_pod = patch_then_attack  # type: ignore[method-assign]
        outcome = await service.apply(plan)
        assert outcome.result == OK, outcome.message
        (fact,) = outcome.containment
        if sim.cni == "cilium":
            assert fact["state"] == "isolated", fact
        else:
            assert fact["state"] == "not-effective", fact
            assert "aaa-allow-web" in fact["detail"] and "NOT effective" in outcome.message
    finally:
        service.close()


async def test_hostile_pod_labels_forging_the_quarantine_label(sim: Any, tmp_path: Path) -> None:
    """A pod that already carries a forged quarantine label (another pod's value, ktriage's
    managed-by label) is relabelled with its own value, and only that value is selected."""
    ns, pod = unique("shop"), unique("web")
    forged = {
        "app": "web",
        QUARANTINE_LABEL: "someone-else",
        "app.kubernetes.io/managed-by": "ktriage",
    }
    seed_pod(sim.store, ns, pod, node="n1", labels=forged)
    service = make_service(sim, None, tmp_path)
    try:
        outcome = await service.apply(await service.prepare("i", "INC-H", (ns, pod)))
        assert outcome.result == OK, outcome.message
        assert outcome.containment[0]["state"] == "isolated", outcome.containment
        assert _labels(sim, tmp_path, ns, pod)[QUARANTINE_LABEL] == pod
        created = _objects(sim, tmp_path, ns)[policy_name(pod)]
        assert "someone-else" not in str(created["spec"]) and pod in str(created["spec"])
    finally:
        service.close()


async def test_without_rights_on_the_deny_kind_falls_back_and_says_why(
    sim: Any, tmp_path: Path
) -> None:
    """An identity RBAC lets create NetworkPolicies but not the plugin's kind: the plan
    uses a plain NetworkPolicy and names the missing permission, and the allow-everything
    policies then make it not effective."""
    from kubernetes import client as k8s

    from ktriage.actions import ActionService

    ns, pod = unique("shop"), unique("web")
    _seed_allowing(sim, ns, pod)
    user = unique("responder")
    identity = sim.add_identity(user, user, ["responders"])
    group, plural = {
        "cilium": ("cilium.io", "ciliumnetworkpolicies"),
        "calico": ("projectcalico.org", "networkpolicies"),
    }[sim.cni]
    sim.store.apply(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": user},
            "rules": [
                {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "patch"]},
                {
                    "apiGroups": ["networking.k8s.io"],
                    "resources": ["networkpolicies"],
                    "verbs": ["get", "list", "create", "delete"],
                },
                {"apiGroups": ["apps"], "resources": ["daemonsets"], "verbs": ["list"]},
                {"apiGroups": [group], "resources": [plural], "verbs": ["get", "list"]},
            ],
        }
    )
    seed_cluster_role_binding(
        sim.store,
        user,
        user,
        [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}],
    )

    def factory() -> k8s.ApiClient:
        configuration = k8s.Configuration()
        configuration.host = sim.url
        configuration.ssl_ca_cert = str(sim.ca_path)
        configuration.api_key = {"authorization": f"Bearer {identity.token}"}
        configuration.retries = False
        return k8s.ApiClient(configuration)

    service = ActionService(None, factory, tmp_path)
    try:
        plan = await service.prepare("i", "INC-RBAC", (ns, pod))
        (create, _label) = plan.changes
        assert create.body["apiVersion"] == "networking.k8s.io/v1"
        fallback = next(w for w in plan.warnings if "is used instead" in w)
        assert f"{user} needs create on {plural}" in fallback
        assert any("Still allowed after isolation" in w for w in plan.warnings)
        outcome = await service.apply(plan)
        assert outcome.result == OK
        assert outcome.containment[0]["state"] == "not-effective"
    finally:
        service.close()


async def test_label_failure_rolls_back_the_deny_policy(sim: Any, tmp_path: Path) -> None:
    """Cut in the middle (the label patch fails after the policy was created): the
    policy of the plugin's kind is deleted again; nothing is left behind."""
    ns, pod = unique("shop"), unique("web")
    seed_pod(sim.store, ns, pod, node="n1", labels={"app": "web"})
    service = make_service(sim, None, tmp_path)
    try:
        plan = await service.prepare("i", "INC-CUT", (ns, pod))
        sim.faults.match = f"/pods/{pod}"  # only the pod's label patch fails
        sim.faults.fail_next(3, code=500)
        outcome = await service.apply(plan)
        assert outcome.result == "failed"
        kind = "CiliumNetworkPolicy" if sim.cni == "cilium" else "Calico NetworkPolicy"
        assert f"rolled back: create {kind}" in outcome.message
        assert "nothing is left behind" in outcome.message
        assert outcome.containment == []  # nothing changed: no claim
        assert _objects(sim, tmp_path, ns) == {}
    finally:
        service.close()


async def test_failed_rollback_names_the_command_that_removes_the_policy(
    sim: Any, tmp_path: Path
) -> None:
    ns, pod = unique("shop"), unique("web")
    seed_pod(sim.store, ns, pod, node="n1", labels={"app": "web"})
    service = make_service(sim, None, tmp_path)
    try:
        plan = await service.prepare("i", "INC-LEFT", (ns, pod))
        # The pod's name is in the label patch's and the policy delete's paths.
        sim.faults.match = pod
        sim.faults.fail_next(2, code=403)
        outcome = await service.apply(plan)
        assert outcome.result == "failed"
        (leftover,) = outcome.leftovers
        assert "rollback failed" in leftover
        sim.faults.reset()
        command = re.search(r"remove it with: (kubectl [^(]+?) \(", leftover)
        assert command is not None, leftover
        wanted = {"cilium": "ciliumnetworkpolicy", "calico": "networkpolicies.projectcalico.org"}
        assert command.group(1).startswith(f"kubectl delete {wanted[sim.cni]} ")
        kubectl(sim, tmp_path, *shlex.split(command.group(1))[1:])
        assert _objects(sim, tmp_path, ns) == {}
    finally:
        service.close()
