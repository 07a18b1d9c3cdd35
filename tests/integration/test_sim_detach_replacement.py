"""ktriage's detach against a Deployment the controllers run: the pod leaves its
ReplicaSet (which lets go of it) and a replacement starts, as detach promises."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
from test_actions_support import (
    engine_with_incident,
    make_service,
    seed_namespace,
    unique,
)

from ktriage.actions import OK
from ktriage.sim.controllers.kubelet import node_object

pytestmark = pytest.mark.sim


async def _until(cond: Any, what: str, timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := cond()):
        assert time.monotonic() < deadline, f"timed out after {timeout} s waiting for {what}"
        await asyncio.sleep(0.02)
    return value


async def test_detach_gets_its_promised_replacement(sim: Any, tmp_path: Path) -> None:
    from kubernetes import client, config

    ns = unique("shop")
    seed_namespace(sim.store, ns)
    if sim.store.get_obj("v1", "Node", None, "worker-1") is None:
        sim.store.apply(node_object("worker-1", 1))
    api = config.new_client_from_config(str(sim.kubeconfig_path), context="sim-admin")
    client.AppsV1Api(api).create_namespaced_deployment(
        ns,
        {
            "metadata": {"name": "web"},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "app", "image": "nginx:1.27"}]},
                },
            },
        },
    )
    api.close()

    def running() -> list[dict]:
        pods = sim.store.list_objs("v1", "Pod", ns)
        return [
            p
            for p in pods
            if p["status"].get("phase") == "Running"
            and p["metadata"].get("labels", {}).get("app") == "web"
            and not p["metadata"].get("deletionTimestamp")
        ]

    await _until(lambda: len(running()) == 2, "two running pods")
    pod = running()[0]["metadata"]["name"]
    engine, incident = engine_with_incident(ns, pod)
    service = make_service(sim, engine, tmp_path)
    try:
        plan = await service.prepare("D", incident, (ns, pod))
        assert any("start a replacement" in w for w in plan.warnings)
        outcome = await service.apply(plan)
        assert outcome.result == OK, outcome.message
        # Re-read after applying: the pod is detached and the replacement was seen.
        states = {f["state"]: f for f in outcome.containment}
        assert set(states) == {"detached", "replaced"}, outcome.containment
        assert states["detached"]["subject"] == f"pod {ns}/{pod}"
        assert "no longer selected by ReplicaSet" in states["detached"]["detail"]
        replacement = states["replaced"]["detail"].split("started pod ")[1].split()[0]
        assert replacement != pod and sim.store.get_obj("v1", "Pod", ns, replacement)
    finally:
        service.close()
    detached = await _until(
        lambda: (
            (p := sim.store.get_obj("v1", "Pod", ns, pod))
            and not p["metadata"].get("ownerReferences")
            and p
        ),
        "the ReplicaSet to let go of the detached pod",
    )
    assert detached["status"]["phase"] == "Running"
    assert not detached["metadata"].get("deletionTimestamp")
    await _until(
        lambda: len(running()) == 2 and pod not in {p["metadata"]["name"] for p in running()},
        "a replacement running",
    )
