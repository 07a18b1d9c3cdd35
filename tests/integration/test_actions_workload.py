"""Workload containment against the simulated cluster and its controllers: delete the pod
(evidence first, grace period choice), scale its Deployment to zero and back."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from test_actions_support import (
    audit_lines,
    engine_with_incident,
    kubectl,
    make_service,
    seed_namespace,
    seed_node,
    seed_pod,
    unique,
)
from waiting import wait_for

from ktriage.actions import OK, UNDONE, ActionError
from ktriage.sim.controllers.kubelet import node_object

pytestmark = pytest.mark.sim


def _pods(sim: Any, ns: str) -> list[dict]:
    return sim.store.list_objs("v1", "Pod", ns)


def _live(pods: list[dict]) -> list[dict]:
    return [p for p in pods if not p["metadata"].get("deletionTimestamp")]


def _deployment(sim: Any, ns: str, replicas: int = 2) -> None:
    from kubernetes import client, config

    seed_namespace(sim.store, ns)
    if sim.store.get_obj("v1", "Node", None, "worker-1") is None:
        sim.store.apply(node_object("worker-1", 1))
    api = config.new_client_from_config(str(sim.kubeconfig_path), context="sim-admin")
    try:
        client.AppsV1Api(api).create_namespaced_deployment(
            ns,
            {
                "metadata": {"name": "web"},
                "spec": {
                    "replicas": replicas,
                    "selector": {"matchLabels": {"app": "web"}},
                    "template": {
                        "metadata": {"labels": {"app": "web"}},
                        "spec": {"containers": [{"name": "app", "image": "nginx:1.27"}]},
                    },
                },
            },
        )
    finally:
        api.close()


async def test_delete_pod_without_evidence_needs_an_explicit_choice(
    sim: Any, tmp_path: Path
) -> None:
    node, pod = unique("node"), unique("web")
    seed_node(sim.store, node)
    seed_pod(sim.store, "shop", pod, node=node)
    engine, incident = engine_with_incident("shop", pod, node)
    service = make_service(sim, engine, tmp_path)
    try:
        plan = await service.prepare("X", incident, ("shop", pod))
        assert plan.warnings[0].startswith("No evidence of this pod was saved")
        assert plan.option == "" and [k for k, _ in plan.options] == ["g", "0"]
        # The dry run reached the server and deleted nothing.
        dry = [
            a
            for a in audit_lines(sim)
            if a["verb"] == "delete" and (a.get("objectRef") or {}).get("name") == pod
        ]
        assert dry and all("dryRun=All" in a["requestURI"] for a in dry)
        assert kubectl(sim, tmp_path, "get", "pod", pod, "-n", "shop", "-o", "json")
        # Enter alone does not delete: the service refuses a plan nobody chose for.
        refused = await service.apply(plan)
        assert refused.result == "failed" and "choose" in refused.message
        assert sim.store.get_obj("v1", "Pod", "shop", pod) is not None

        plan.option = "0"
        outcome = await service.apply(plan)
        assert outcome.result == OK, outcome.message
        (deleted,) = outcome.containment
        assert deleted["aspect"] == "workload" and deleted["state"] == "deleted"
        assert deleted["subject"] == f"pod shop/{pod}"
        assert outcome.undoable is False and "cannot" in outcome.undo_note
    finally:
        service.close()
    gone = kubectl(sim, tmp_path, "get", "pods", "-n", "shop", "-o", "json")
    assert pod not in [
        p["metadata"]["name"] for p in gone["items"] if not p["metadata"].get("deletionTimestamp")
    ]
    events = engine.correlator.events_of(incident)
    first, second = [e for e in events if e.kind == "action-delete-pod"]
    assert "containment" not in first.raw_inline  # the attempt nobody chose for
    assert second.raw_inline["containment"][0]["state"] == "deleted"


async def test_delete_pod_after_its_logs_were_dumped_offers_the_grace_period(
    sim: Any, tmp_path: Path
) -> None:
    node, pod = unique("node"), unique("web")
    seed_node(sim.store, node)
    seed_pod(sim.store, "shop", pod, node=node)
    engine, incident = engine_with_incident("shop", pod, node)
    service = make_service(sim, engine, tmp_path)
    try:
        logs = await service.apply(await service.prepare("l", incident, ("shop", pod)))
        assert logs.result == OK, logs.message
        plan = await service.prepare("X", incident, ("shop", pod))
        assert not any("No evidence" in w for w in plan.warnings)
        assert plan.option == "g" and any("Evidence saved first" in n for n in plan.notes)
        outcome = await service.apply(plan)
        assert outcome.result == OK, outcome.message
    finally:
        service.close()


async def test_delete_pod_of_a_deployment_warns_of_the_replacement(
    sim: Any, tmp_path: Path
) -> None:
    ns = unique("shop")
    _deployment(sim, ns, replicas=1)
    await wait_for(lambda: len(_live(_pods(sim, ns))) == 1, what="the Deployment's pod")
    (pod,) = _live(_pods(sim, ns))
    name = pod["metadata"]["name"]
    engine, incident = engine_with_incident(ns, name)
    service = make_service(sim, engine, tmp_path)
    try:
        plan = await service.prepare("X", incident, (ns, name))
        assert any("replacement" in w and "Scale it to zero" in w for w in plan.warnings)
        plan.option = "0"
        assert (await service.apply(plan)).result == OK
    finally:
        service.close()
    # The controller keeps its promise: a new pod under another name.
    await wait_for(
        lambda: [p for p in _live(_pods(sim, ns)) if p["metadata"]["name"] != name],
        what="the replacement pod",
    )


async def test_scale_to_zero_and_undo_restores_the_replicas(sim: Any, tmp_path: Path) -> None:
    ns = unique("shop")
    _deployment(sim, ns, replicas=2)
    await wait_for(lambda: len(_live(_pods(sim, ns))) == 2, what="two running pods")
    name = _live(_pods(sim, ns))[0]["metadata"]["name"]
    engine, incident = engine_with_incident(ns, name)
    service = make_service(sim, engine, tmp_path)
    try:
        plan = await service.prepare("S", incident, (ns, name))
        # Through its ReplicaSet, to the Deployment.
        assert plan.subject.kind == "Deployment" and plan.subject.name == "web"
        assert plan.changes[0].body == {"spec": {"replicas": 0}}
        assert any("Every pod" in w for w in plan.warnings)
        spec = kubectl(sim, tmp_path, "get", "deployment", "web", "-n", ns, "-o", "json")
        assert spec["spec"]["replicas"] == 2  # the dry run changed nothing
        # No logs were dumped: the plan warns first and enter alone scales nothing.
        assert plan.warnings[0].startswith(f"No evidence of pod {ns}/{name} was saved")
        assert "dump logs (l) first" in plan.warnings[0]
        assert plan.option == "" and [k for k, _ in plan.options] == ["s"]
        refused = await service.apply(plan)
        assert refused.result == "failed" and "choose" in refused.message
        got = kubectl(
            sim, tmp_path, "get", "deployment", "web", "-n", ns, "-o", "jsonpath={.spec.replicas}"
        )
        assert got == "2"

        plan.option = "s"
        outcome = await service.apply(plan)
        assert outcome.result == OK, outcome.message
        # Sent as the preview said: a patch of the scale subresource.
        (sent,) = [
            a
            for a in audit_lines(sim)
            if a["verb"] == "patch"
            and (a.get("objectRef") or {}).get("namespace") == ns
            and (a.get("objectRef") or {}).get("subresource") == "scale"
            and "dryRun" not in a["requestURI"]
        ]
        assert sent["objectRef"]["resource"] == "deployments"
        assert sent["responseStatus"]["code"] == 200
        (scaled,) = outcome.containment
        assert scaled["state"] == "scaled-down" and scaled["subject"] == f"deployment {ns}/web"
        assert "spec.replicas is 0 (was 2)" in scaled["detail"]
        got = kubectl(
            sim, tmp_path, "get", "deployment", "web", "-n", ns, "-o", "jsonpath={.spec.replicas}"
        )
        assert got == "0"
        await wait_for(lambda: not _live(_pods(sim, ns)), what="every pod terminating")

        undo = await service.undo(incident, (ns, name))
        assert undo.result == UNDONE, undo.message
        assert undo.containment[0]["state"] == "restored"
        got = kubectl(
            sim, tmp_path, "get", "deployment", "web", "-n", ns, "-o", "jsonpath={.spec.replicas}"
        )
        assert got == "2"
        await wait_for(lambda: len(_live(_pods(sim, ns))) == 2, what="two pods again")
    finally:
        service.close()


async def test_scale_to_zero_after_its_logs_were_dumped_needs_no_choice(
    sim: Any, tmp_path: Path
) -> None:
    ns = unique("shop")
    _deployment(sim, ns, replicas=1)
    # Running, so that it has a log to dump.
    await wait_for(
        lambda: [p for p in _live(_pods(sim, ns)) if p.get("status", {}).get("phase") == "Running"],
        what="the Deployment's pod running",
    )
    name = _live(_pods(sim, ns))[0]["metadata"]["name"]
    engine, incident = engine_with_incident(ns, name)
    service = make_service(sim, engine, tmp_path)
    try:
        logs = await service.apply(await service.prepare("l", incident, (ns, name)))
        assert logs.result == OK, logs.message
        plan = await service.prepare("S", incident, (ns, name))
        assert not any("No evidence" in w for w in plan.warnings)
        assert not plan.options and any("Evidence saved first" in n for n in plan.notes)
        outcome = await service.apply(plan)
        assert outcome.result == OK, outcome.message
        await wait_for(lambda: not _live(_pods(sim, ns)), what="the pod terminating")
    finally:
        service.close()


async def test_scale_refuses_a_daemonset_and_a_bare_pod_saying_why(
    sim: Any, tmp_path: Path
) -> None:
    node, bare, ds_pod = unique("node"), unique("bare"), unique("agent")
    seed_node(sim.store, node)
    seed_pod(sim.store, "shop", bare, node=node)
    owner = {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "name": "agent",
        "uid": "00000000-0000-0000-0000-00000000da00",
        "controller": True,
    }
    seed_pod(sim.store, "shop", ds_pod, node=node, owner=owner)
    engine, incident = engine_with_incident("shop", bare)
    service = make_service(sim, engine, tmp_path)
    try:
        with pytest.raises(ActionError, match=r"no controller.*delete the pod instead"):
            await service.prepare("S", incident, ("shop", bare))
        with pytest.raises(ActionError, match="DaemonSet agent cannot be scaled"):
            await service.prepare("S", incident, ("shop", ds_pod))
    finally:
        service.close()


async def test_scale_to_zero_a_statefulset(sim: Any, tmp_path: Path) -> None:
    from kubernetes import client, config

    ns = unique("db")
    seed_namespace(sim.store, ns)
    if sim.store.get_obj("v1", "Node", None, "worker-1") is None:
        sim.store.apply(node_object("worker-1", 1))
    api = config.new_client_from_config(str(sim.kubeconfig_path), context="sim-admin")
    try:
        client.AppsV1Api(api).create_namespaced_stateful_set(
            ns,
            {
                "metadata": {"name": "pg"},
                "spec": {
                    "replicas": 1,
                    "serviceName": "pg",
                    "selector": {"matchLabels": {"app": "pg"}},
                    "template": {
                        "metadata": {"labels": {"app": "pg"}},
                        "spec": {"containers": [{"name": "pg", "image": "postgres:16"}]},
                    },
                },
            },
        )
    finally:
        api.close()
    await wait_for(lambda: len(_live(_pods(sim, ns))) == 1, what="the StatefulSet's pod")
    name = _live(_pods(sim, ns))[0]["metadata"]["name"]
    engine, incident = engine_with_incident(ns, name)
    service = make_service(sim, engine, tmp_path)
    try:
        plan = await service.prepare("S", incident, (ns, name))
        assert (plan.subject.kind, plan.subject.name) == ("StatefulSet", "pg")
        plan.option = "s"
        outcome = await service.apply(plan)
        assert outcome.result == OK, outcome.message
        assert outcome.containment[0]["subject"] == f"statefulset {ns}/pg"
        got = kubectl(
            sim, tmp_path, "get", "statefulset", "pg", "-n", ns, "-o", "jsonpath={.spec.replicas}"
        )
        assert got == "0"
        await wait_for(lambda: not _live(_pods(sim, ns)), what="the pod terminating")
    finally:
        service.close()
