"""Detach when the cluster does not hold what the plan hoped: a controller that is gone,
a policy that selects every pod, labels someone removed meanwhile. Against the
simulated cluster on loopback."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from test_actions_support import (
    make_service,
    seed_namespace,
    seed_pod,
    seed_policy,
    unique,
)

from ktriage.actions import OK, UNCHANGED

pytestmark = pytest.mark.sim


def _service(sim: Any, ns: str, selector: dict[str, str]) -> None:
    sim.store.apply(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "front", "namespace": ns},
            "spec": {"selector": selector, "ports": [{"port": 80}]},
        }
    )


async def test_detach_with_its_controller_gone_warns_and_still_detaches_the_rest(
    sim: Any, tmp_path: Path
) -> None:
    ns, pod = unique("orphan"), unique("web")
    seed_namespace(sim.store, ns)
    ghost = {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "name": "ghost-5c8d",
        "uid": "00000000-0000-4000-8000-00000000dead",
        "controller": True,
    }
    seed_pod(sim.store, ns, pod, node="n1", labels={"app": "front", "team": "pay"}, owner=ghost)
    _service(sim, ns, {"app": "front"})
    service = make_service(sim, None, tmp_path)
    try:
        plan = await service.prepare("D", "INC-9", (ns, pod))
        (warning,) = [w for w in plan.warnings if w.startswith("Could not read ReplicaSet")]
        assert "ReplicaSet ghost-5c8d" in warning and "is gone" in warning
        assert "the pod may stay attached to it" in warning
        (change,) = plan.changes
        assert change.body["metadata"]["labels"] == {"app": None}
        outcome = await service.apply(plan)
        assert outcome.result == OK, outcome.message
        labels = sim.store.get_obj("v1", "Pod", ns, pod)["metadata"]["labels"]
        assert "app" not in labels and labels["team"] == "pay"
    finally:
        service.close()


async def test_a_policy_that_selects_every_pod_is_named_not_detached_from(
    sim: Any, tmp_path: Path
) -> None:
    ns, pod = unique("open"), unique("web")
    seed_namespace(sim.store, ns)
    seed_pod(sim.store, ns, pod, node="n1", labels={"app": "front"})
    _service(sim, ns, {"app": "front"})
    seed_policy(sim.store, ns, "allow-all-in", {"podSelector": {}, "ingress": [{}]})
    service = make_service(sim, None, tmp_path)
    try:
        plan = await service.prepare("D", "INC-10", (ns, pod))
        assert any(
            w.startswith("NetworkPolicy allow-all-in selects every pod in the namespace")
            and "no label change detaches the pod from it" in w
            for w in plan.warnings
        ), plan.warnings
        assert [c.body["metadata"]["labels"] for c in plan.changes] == [{"app": None}]
    finally:
        service.close()


async def test_labels_removed_by_someone_else_meanwhile_leave_detach_unchanged(
    sim: Any, tmp_path: Path
) -> None:
    ns, pod = unique("gone"), unique("web")
    seed_namespace(sim.store, ns)
    seed_pod(sim.store, ns, pod, node="n1", labels={"app": "front", "team": "pay"})
    _service(sim, ns, {"app": "front"})
    service = make_service(sim, None, tmp_path)
    try:
        plan = await service.prepare("D", "INC-12", (ns, pod))
        # Someone takes the label off first: the patch meets a new resourceVersion, the
        # re-read finds nothing left to remove.
        sim.store.mutate("v1", "Pod", ns, pod, lambda p: p["metadata"]["labels"].pop("app"))
        outcome = await service.apply(plan)
        assert outcome.result == UNCHANGED, outcome.message
        labels = sim.store.get_obj("v1", "Pod", ns, pod)["metadata"]["labels"]
        assert labels == {"team": "pay"}
    finally:
        service.close()
