"""Cordon against the simulated cluster: preview, dry run, apply, idempotency, undo, record."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from test_actions_support import (
    audit_lines,
    engine_with_incident,
    kubectl,
    make_service,
    seed_node,
    seed_pod,
    unique,
)

from ktriage.actions import OK, UNCHANGED, UNDONE, ActionError
from ktriage.actions.kube import Kube, api_client_from_kubeconfig
from ktriage.core.snapshot import render_markdown, time_to_contain

pytestmark = pytest.mark.sim


def _unschedulable(sim: Any, tmp_path: Path, node: str) -> str:
    return kubectl(sim, tmp_path, "get", "node", node, "-o", "jsonpath={.spec.unschedulable}")


async def test_cordon_preview_dry_run_apply_idempotent_undo(sim: Any, tmp_path: Path) -> None:
    node, pod = unique("node"), unique("web")
    seed_node(sim.store, node)
    seed_pod(sim.store, "shop", pod, node=node)
    engine, incident = engine_with_incident("shop", pod, node)
    service = make_service(sim, engine, tmp_path / "snapshots")
    try:
        # Preview: the exact patch, as kubectl cordon sends it.
        plan = await service.prepare("c", incident, ("shop", pod))
        assert plan.title == f"Cordon node {node}"
        (change,) = plan.changes
        assert change.verb == "patch" and change.target.name == node
        assert change.body == {"spec": {"unschedulable": True}}
        assert change.content_type == "application/strategic-merge-patch+json"
        assert "dryRun=All" in plan.dry_run or "dry" in plan.dry_run.lower()
        # The dry run reached the server and changed nothing.
        dry = [
            a
            for a in audit_lines(sim)
            if a["verb"] == "patch" and (a.get("objectRef") or {}).get("name") == node
        ]
        assert dry and all("dryRun=All" in a["requestURI"] for a in dry)
        assert not sim.store.get_obj("v1", "Node", None, node).get("spec", {}).get("unschedulable")
        assert _unschedulable(sim, tmp_path, node) == ""

        outcome = await service.apply(plan)
        assert outcome.result == OK, outcome.message
        assert outcome.actor == "kubernetes-admin"
        assert _unschedulable(sim, tmp_path, node) == "true"
        applied = [
            a
            for a in audit_lines(sim)
            if a["verb"] == "patch"
            and (a.get("objectRef") or {}).get("name") == node
            and "dryRun" not in a["requestURI"]
        ]
        assert len(applied) == 1 and applied[0]["user"]["username"] == "kubernetes-admin"
        assert applied[0]["responseStatus"]["code"] == 200

        # The record: an action event in the incident's timeline, and time to contain.
        events = engine.correlator.events_of(incident)
        (action,) = [e for e in events if e.source == "ktriage"]
        assert action.kind == "action-cordon" and not action.signal
        info = action.raw_inline
        assert info["action"] == "cordon" and info["result"] == "ok"
        assert info["actor"] == "kubernetes-admin" and info["target"] == f"node {node}"
        assert info["undoable"] is True
        # The fact, re-read from the node; a cordon alone contains nothing.
        assert info["containment"] == [
            {
                "aspect": "node",
                "subject": f"node {node}",
                "state": "cordoned",
                "detail": f"re-read: node {node} is unschedulable; no new pods are placed "
                "on it, the pods running there keep running",
            }
        ]
        inc = engine.correlator.resolve(incident)
        assert time_to_contain(inc, events) is None
        markdown = render_markdown(inc, events)
        assert "## Actions taken" in markdown
        assert f"| Time to contain | not contained yet (open: pod shop/{pod} not isolated) |" in (
            markdown
        )
        assert f"| node | node {node} | cordoned |" in markdown

        # Idempotent: a cordoned node is left alone, and the record says so.
        again = await service.prepare("c", incident, ("shop", pod))
        assert again.changes == [] and "already cordoned" in again.unchanged
        second = await service.apply(again)
        assert second.result == UNCHANGED and "already cordoned" in second.message
        assert not second.record.can_undo

        # Undo uncordons: the last undoable action is the first cordon.
        assert service.available(("shop", pod))["u"][0] is True
        undo_plan = await service.prepare_undo(incident, ("shop", pod))
        assert undo_plan.changes[0].body == {"spec": {"unschedulable": False}}
        undone = await service.apply(undo_plan)
        assert undone.result == UNDONE, undone.message
        assert _unschedulable(sim, tmp_path, node) in ("", "false")
        assert outcome.record.undone
        actions = [e for e in engine.correlator.events_of(incident) if e.source == "ktriage"]
        kinds = [e.kind for e in actions]
        assert kinds == ["action-cordon", "action-cordon", "action-undo-cordon"]
        # Already cordoned: still a fact (it is true); undone: restored, as re-read.
        assert [f["state"] for f in actions[1].raw_inline["containment"]] == ["cordoned"]
        assert [f["state"] for f in actions[2].raw_inline["containment"]] == ["restored"]
        with pytest.raises(ActionError, match="nothing to undo"):
            await service.prepare_undo(incident, ("shop", pod))
    finally:
        service.close()


async def test_already_cordoned_node_is_not_uncordoned_by_undo(sim: Any, tmp_path: Path) -> None:
    node, pod = unique("node"), unique("web")
    seed_node(sim.store, node, unschedulable=True)
    seed_pod(sim.store, "shop", pod, node=node)
    engine, incident = engine_with_incident("shop", pod)
    service = make_service(sim, engine, tmp_path)
    try:
        plan = await service.prepare("c", incident, ("shop", pod))
        assert "already cordoned" in plan.unchanged and plan.dry_run == "nothing to send"
        outcome = await service.apply(plan)
        assert outcome.result == UNCHANGED
        assert service.last_undoable(incident, ("shop", pod)) is None
        assert _unschedulable(sim, tmp_path, node) == "true"
    finally:
        service.close()


async def test_unscheduled_pod_cannot_be_cordoned(sim: Any, tmp_path: Path) -> None:
    pod = unique("pending")
    seed_pod(sim.store, "shop", pod, node="")
    sim.store.mutate("v1", "Pod", "shop", pod, lambda p: p["spec"].pop("nodeName", None))
    service = make_service(sim, None, tmp_path)
    try:
        with pytest.raises(ActionError, match="not scheduled on a node"):
            await service.prepare("c", "INC-1", ("shop", pod))
    finally:
        service.close()


def test_dict_patches_go_out_as_strategic_merge(sim: Any) -> None:
    """The official client sends dict bodies as application/strategic-merge-patch+json.

    The audit log does not record the content type, so tell by the semantics:
    a strategic merge updates one container by its `name` merge key; a JSON merge
    patch would replace the whole list and drop the other container.
    """
    node, pod = unique("node"), unique("two")
    seed_node(sim.store, node)
    seed_pod(sim.store, "shop", pod, node=node, containers=("app", "sidecar"))
    client = api_client_from_kubeconfig(str(sim.kubeconfig_path), "sim-admin")
    try:
        kube = Kube(client)
        body = {"spec": {"containers": [{"name": "app", "image": "nginx:1.28"}]}}
        reply = kube.patch_pod("shop", pod, body)
        images = {c["name"]: c["image"] for c in reply["spec"]["containers"]}
        assert images == {"app": "nginx:1.28", "sidecar": "nginx:1.27"}
    finally:
        client.close()
