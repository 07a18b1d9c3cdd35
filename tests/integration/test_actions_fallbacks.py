"""The actions' fallback paths against the simulated cluster: a pod gone, edited or replaced
by a namesake between preview and apply, a pod already terminating, a second conflict, a
scale the server keeps refusing, an undo with nothing left to undo, an identity no binding
names, reads of every kind an unfinished action may have changed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException
from test_actions_support import (
    Acting,
    audit_lines,
    engine_with_incident,
    make_service,
    seed_cluster_role_binding,
    seed_namespace,
    seed_node,
    seed_pod,
    unique,
)
from waiting import wait_for

from ktriage.actions import FAILED, OK, UNCHANGED, UNDONE, kubeconfig_factory
from ktriage.actions.base import QUARANTINE_LABEL, Target
from ktriage.actions.unfinished import can_read, read_object
from ktriage.core.model import EntityKind
from ktriage.sim.controllers.kubelet import node_object

pytestmark = pytest.mark.sim


def _pod_uid(sim: Any, ns: str, pod: str) -> str:
    return sim.store.get_obj("v1", "Pod", ns, pod)["metadata"]["uid"]


# ---- delete-pod: the pod changes between the preview and enter -----------------------


async def test_hostile_namesake_pod_made_after_the_preview_is_not_deleted(
    sim: Any, acting: Acting
) -> None:
    ns, node, pod, incident, service = acting
    plan = await service.prepare("X", incident, (ns, pod))
    previewed = _pod_uid(sim, ns, pod)
    # Someone deletes the pod and makes another under the same name meanwhile.
    sim.store.delete("v1", "Pod", ns, pod)
    seed_pod(sim.store, ns, pod, node=node)
    namesake = _pod_uid(sim, ns, pod)
    assert namesake != previewed
    plan.option = "0"
    outcome = await service.apply(plan)
    assert outcome.result == FAILED, outcome.message
    assert "Precondition failed" in outcome.message
    # The namesake is untouched: only the previewed pod was ever meant.
    assert _pod_uid(sim, ns, pod) == namesake
    assert not sim.store.get_obj("v1", "Pod", ns, pod)["metadata"].get("deletionTimestamp")


async def test_pod_gone_before_enter_is_reported_deleted(sim: Any, acting: Acting) -> None:
    ns, _node, pod, incident, service = acting
    plan = await service.prepare("X", incident, (ns, pod))
    sim.store.delete("v1", "Pod", ns, pod)
    plan.option = "0"
    outcome = await service.apply(plan)
    # The 404 of the delete is what was wanted: the pod is gone, read back as such.
    assert outcome.result == OK, outcome.message
    (fact,) = outcome.containment
    assert fact["state"] == "deleted" and fact["subject"] == f"pod {ns}/{pod}"


async def test_pod_already_terminating_is_left_unchanged(sim: Any, acting: Acting) -> None:
    ns, _node, pod, incident, service = acting

    def terminating(obj: dict) -> None:
        obj["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
        # Held by a finalizer, as a pod whose node is gone stays terminating.
        obj["metadata"]["finalizers"] = ["example.com/hold"]

    sim.store.mutate("v1", "Pod", ns, pod, terminating)
    plan = await service.prepare("X", incident, (ns, pod))
    assert plan.unchanged == f"pod {ns}/{pod} is already terminating"
    assert plan.dry_run == "nothing to send"
    outcome = await service.apply(plan)
    assert outcome.result == UNCHANGED and "already terminating" in outcome.message
    assert sim.store.get_obj("v1", "Pod", ns, pod) is not None


# ---- a conflict, then another -----------------------------------------------------------


async def test_a_second_conflict_stops_the_cordon_and_says_the_node_changed_again(
    sim: Any, acting: Acting
) -> None:
    ns, node, pod, incident, service = acting
    plan = await service.prepare("c", incident, (ns, pod))
    # Every request on the node answers 409 twice: the patch, then the re-read's retry.
    sim.faults.match = f"/nodes/{node}"
    sim.faults.fail_next(2, code=409)
    outcome = await service.apply(plan)
    assert outcome.result == FAILED
    assert "the object changed again while applying; nothing more was done" in (outcome.message)
    node_obj = sim.store.get_obj("v1", "Node", None, node)
    assert not (node_obj.get("spec") or {}).get("unschedulable")


# ---- scale to zero: the server keeps refusing -------------------------------------------


def _deployment(sim: Any, ns: str, name: str) -> None:
    seed_namespace(sim.store, ns)
    if sim.store.get_obj("v1", "Node", None, "worker-1") is None:
        sim.store.apply(node_object("worker-1", 1))
    api = kubeconfig_factory(str(sim.kubeconfig_path), "sim-admin")()
    try:
        k8s.AppsV1Api(api).create_namespaced_deployment(
            ns,
            {
                "metadata": {"name": name},
                "spec": {
                    "replicas": 1,
                    "selector": {"matchLabels": {"app": name}},
                    "template": {
                        "metadata": {"labels": {"app": name}},
                        "spec": {"containers": [{"name": "app", "image": "nginx:1.27"}]},
                    },
                },
            },
        )
    finally:
        api.close()


async def _running_pod(sim: Any, ns: str, app: str) -> str:
    def pods() -> list[dict]:
        return [
            p
            for p in sim.store.list_objs("v1", "Pod", ns)
            if (p["metadata"].get("labels") or {}).get("app") == app
        ]

    await wait_for(lambda: bool(pods()), timeout=10, what=f"a pod of {app}")
    return str(pods()[0]["metadata"]["name"])


async def test_scale_to_zero_refused_by_the_server_fails_in_words(sim: Any, tmp_path: Path) -> None:
    ns, name = unique("scale"), unique("api")
    _deployment(sim, ns, name)
    pod = await _running_pod(sim, ns, name)
    engine, incident = engine_with_incident(ns, pod)
    service = make_service(sim, engine, tmp_path)
    try:
        plan = await service.prepare("S", incident, (ns, pod))
        plan.option = "s"  # scale without dumping the logs first
        # The scale subresource answers 500 to every try (three in the test policy).
        sim.faults.match = "/scale"
        sim.faults.fail_next(3, code=500)
        outcome = await service.apply(plan)
        assert outcome.result == FAILED
        assert "server error 500" in outcome.message
        deploy = sim.store.get_obj("apps/v1", "Deployment", ns, name)
        assert deploy["spec"]["replicas"] == 1
    finally:
        service.close()


# ---- reading back what an unfinished action may have changed ----------------------------


def test_unfinished_reads_every_kind_it_may_have_changed(sim: Any) -> None:
    ns = unique("read")
    seed_namespace(sim.store, ns)
    sim.store.apply(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": "reader", "namespace": ns},
            "rules": [],
        }
    )
    binding = unique("crb")
    seed_cluster_role_binding(sim.store, binding, "view", [])
    _deployment(sim, ns, "web")
    api = kubeconfig_factory(str(sim.kubeconfig_path), "sim-admin")()
    try:
        role = read_object(api, "Role", ns, "reader")
        assert role["metadata"]["name"] == "reader"
        crb = read_object(api, "ClusterRoleBinding", "", binding)
        assert crb["roleRef"]["name"] == "view"
        deploy = read_object(api, "Deployment", ns, "web")
        assert deploy["spec"]["replicas"] == 1
        with pytest.raises(ApiException) as gone:
            read_object(api, "Role", ns, "never-made")
        assert gone.value.status == 404
        # A kind named only by its apiVersion: the plural as a CRD names it. The sim
        # serves no Calico, so the server says it does not know the resource.
        assert can_read("NetworkPolicy", "projectcalico.org/v3")
        with pytest.raises(ApiException) as unknown:
            read_object(api, "NetworkPolicy.projectcalico.org", ns, "x", "projectcalico.org/v3")
        assert unknown.value.status == 404
        # A kind ktriage never creates and no group to find it by: not guessed at.
        assert not can_read("Widget")
        with pytest.raises(LookupError):
            read_object(api, "Widget", ns, "x")
    finally:
        api.close()


# ---- isolate and detach: the pod changes under the action -------------------------------


def _patch_codes(sim: Any, pod: str) -> list[int]:
    return [
        a["responseStatus"]["code"]
        for a in audit_lines(sim)
        if a["verb"] == "patch"
        and (a.get("objectRef") or {}).get("name") == pod
        and "dryRun" not in a["requestURI"]
    ]


def _touch(sim: Any, ns: str, pod: str) -> None:
    """Someone edits the pod (a new resourceVersion) between the preview and enter."""
    sim.store.mutate(
        "v1",
        "Pod",
        ns,
        pod,
        lambda p: p["metadata"].setdefault("annotations", {}).update({"edited": "yes"}),
    )


async def test_isolate_of_a_pod_edited_since_the_preview_reads_it_again_and_labels_it(
    sim: Any, acting: Acting
) -> None:
    ns, _node, pod, incident, service = acting
    plan = await service.prepare("i", incident, (ns, pod))
    _touch(sim, ns, pod)
    outcome = await service.apply(plan)
    assert outcome.result == OK, outcome.message
    assert _patch_codes(sim, pod) == [409, 200]
    meta = sim.store.get_obj("v1", "Pod", ns, pod)["metadata"]
    assert QUARANTINE_LABEL in meta["labels"]
    assert meta["annotations"]["edited"] == "yes"  # the other edit is kept


async def test_undo_of_an_isolation_whose_pod_is_gone_removes_the_policy(
    sim: Any, acting: Acting
) -> None:
    ns, _node, pod, incident, service = acting
    applied = await service.apply(await service.prepare("i", incident, (ns, pod)))
    assert applied.result == OK, applied.message
    policy = f"ktriage-quarantine-{pod}"
    assert sim.store.get_obj("networking.k8s.io/v1", "NetworkPolicy", ns, policy)
    sim.store.delete("v1", "Pod", ns, pod)
    plan = await service.prepare_undo(incident, (ns, pod))
    assert f"pod {ns}/{pod} is gone: only the policy remains to remove." in plan.notes
    assert [c.verb for c in plan.changes] == ["delete"]
    undone = await service.apply(plan)
    assert undone.result == UNDONE, undone.message
    assert sim.store.get_obj("networking.k8s.io/v1", "NetworkPolicy", ns, policy) is None


async def test_undo_of_an_isolation_someone_already_took_apart_is_unchanged(
    sim: Any, acting: Acting
) -> None:
    ns, _node, pod, incident, service = acting
    applied = await service.apply(await service.prepare("i", incident, (ns, pod)))
    assert applied.result == OK, applied.message
    # Someone removed both the policy and the label by hand.
    sim.store.delete("networking.k8s.io/v1", "NetworkPolicy", ns, f"ktriage-quarantine-{pod}")
    sim.store.mutate("v1", "Pod", ns, pod, lambda p: p["metadata"]["labels"].pop(QUARANTINE_LABEL))
    plan = await service.prepare_undo(incident, (ns, pod))
    assert plan.unchanged == f"pod {ns}/{pod} is not isolated any more: nothing to undo"
    outcome = await service.apply(plan)
    assert outcome.result == UNCHANGED


# ---- unbind: nothing names the identity ----------------------------------------------------


async def test_unbind_of_an_identity_no_binding_names_is_unchanged(
    sim: Any, tmp_path: Path
) -> None:
    ns, name = unique("ci"), unique("loner")
    seed_namespace(sim.store, ns)
    sim.store.apply(
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name, "namespace": ns}}
    )
    engine, incident = engine_with_incident(ns, unique("web"))
    service = make_service(sim, engine, tmp_path)
    target = Target(EntityKind.SERVICE_ACCOUNT, ns, name)
    try:
        plan = await service.prepare("B", incident, target)
        assert plan.unchanged.startswith(
            f"no RoleBinding or ClusterRoleBinding names system:serviceaccount:{ns}:{name}"
        )
        assert plan.dry_run == "nothing to send" and not plan.changes
        outcome = await service.apply(plan)
        assert outcome.result == UNCHANGED
    finally:
        service.close()


# ---- evidence: part of it cannot be read ---------------------------------------------------


async def test_a_log_the_server_refuses_is_a_problem_in_the_record_not_a_lost_dump(
    sim: Any, tmp_path: Path
) -> None:
    node, pod = unique("node"), unique("web")
    seed_node(sim.store, node)
    seed_pod(sim.store, "shop", pod, node=node, containers=("app", "sidecar"))
    sim.store.append_log("shop", pod, "sidecar", "sidecar says hello")
    engine, incident = engine_with_incident("shop", pod, node)
    service = make_service(sim, engine, tmp_path)
    try:
        plan = await service.prepare("l", incident, ("shop", pod))
        # The first log read answers 500 to each of its tries; the second is read.
        sim.faults.match = "/log"
        sim.faults.fail_next(3, code=500)
        outcome = await service.apply(plan)
        assert outcome.result == OK, outcome.message
        assert "1 problem(s): " in outcome.message and "server error 500" in outcome.message
        (evidence,) = outcome.containment
        assert evidence["detail"].endswith("(1 problem(s): see the action's record)")
        names = sorted(Path(f["path"]).name for f in outcome.files)
        assert "sidecar.log" in names and "app.log" not in names
        # No empty file stands for the log that could not be read.
        directory = tmp_path / Path(outcome.files[0]["path"]).parent
        assert not (directory / "app.log").exists()
    finally:
        service.close()


async def test_events_the_server_refuses_leave_the_logs_and_yaml_dumped(
    sim: Any, acting: Acting
) -> None:
    ns, _node, pod, incident, service = acting
    plan = await service.prepare("l", incident, (ns, pod))
    sim.faults.match = "/events"
    sim.faults.fail_next(3, code=503)
    outcome = await service.apply(plan)
    assert outcome.result == OK, outcome.message
    assert "list the events of pod" in outcome.message and "503" in outcome.message
    names = sorted(Path(f["path"]).name for f in outcome.files)
    assert "pod.yaml" in names and "events.yaml" not in names
