"""Helpers for the controller, deletion and pod lifecycle conformance tests."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from conformance_support import Target

# Controllers are asynchronous: every wait is for a condition, with this deadline.
DEADLINE = 30.0


def wait_until(
    cond: Callable[[], Any], what: str | Callable[[], str], timeout: float = DEADLINE
) -> Any:
    """Poll `cond` until it returns something true; fail naming `what` at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            said = what() if callable(what) else what
            raise AssertionError(f"timed out after {timeout:g} s waiting for {said}")
        time.sleep(0.05)


def ensure_nodes(target: Target) -> None:
    """A real cluster has nodes; an idle simulated one gets two, as kubelets register."""
    if not target.is_sim:
        return
    from ktriage.sim.controllers.kubelet import node_object

    store = target.sim.store
    if store.list_objs("v1", "Node"):
        return
    for index in (1, 2):
        store.apply(node_object(f"worker-{index}", index))


def deployment(name: str, replicas: int = 2, image: str = "registry.k8s.io/pause:3.9") -> dict:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "terminationGracePeriodSeconds": 1,
                    "containers": [{"name": "main", "image": image}],
                },
            },
        },
    }


def live_pods(core: Any, namespace: str, selector: str) -> list[Any]:
    pods = core.list_namespaced_pod(namespace, label_selector=selector).items
    return [p for p in pods if p.metadata.deletion_timestamp is None]


def ready_count(pods: list[Any]) -> int:
    def ready(pod: Any) -> bool:
        return any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])

    return sum(1 for p in pods if p.status is not None and ready(p))
