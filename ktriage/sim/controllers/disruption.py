"""The disruption controller's part: PodDisruptionBudget status (how many matching pods
are healthy, how many must stay, how many disruptions are allowed), and the eviction
decision the API server takes with it."""

from __future__ import annotations

import math
from typing import Any

from ktriage.sim.controllers.watching import wake_on_changes
from ktriage.sim.controllers.workloads import selector_matches
from ktriage.sim.timefmt import rfc3339

PDB_VERSION = "policy/v1"
BLOCKED_MESSAGE = "Cannot evict pod as it would violate the pod's disruption budget."


def pod_healthy(pod: dict) -> bool:
    if (pod.get("metadata") or {}).get("deletionTimestamp"):
        return False
    for cond in (pod.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            return cond.get("status") == "True"
    return False


def _scaled(value: Any, total: int, round_up: bool) -> int:
    if isinstance(value, str) and value.endswith("%"):
        try:
            pct = int(value[:-1])
        except ValueError:
            return 0
        exact = pct * total / 100
        return math.ceil(exact) if round_up else math.floor(exact)
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def budget_status(pdb: dict, pods: list[dict], now: float) -> dict:
    """The status the disruption controller computes for `pdb` over its namespace's pods."""
    spec = pdb.get("spec") or {}
    matching = [
        p
        for p in pods
        if selector_matches(
            spec.get("selector"), (p.get("metadata") or {}).get("labels"), empty_matches=True
        )
    ]
    expected = len(matching)
    healthy = sum(1 for p in matching if pod_healthy(p))
    if spec.get("maxUnavailable") is not None:
        desired = max(0, expected - _scaled(spec["maxUnavailable"], expected, True))
    elif spec.get("minAvailable") is not None:
        desired = _scaled(spec["minAvailable"], expected, True)
    else:
        desired = expected  # maxUnavailable 0 would be the same: nothing may go
    allowed = max(0, healthy - desired)
    generation = (pdb.get("metadata") or {}).get("generation", 1)
    old = {c.get("type"): c for c in (pdb.get("status") or {}).get("conditions") or []}
    state = "True" if allowed > 0 else "False"
    previous = old.get("DisruptionAllowed") or {}
    condition = {
        "type": "DisruptionAllowed",
        "status": state,
        "observedGeneration": generation,
        "lastTransitionTime": previous.get("lastTransitionTime")
        if previous.get("status") == state
        else rfc3339(now),
        "reason": "SufficientPods" if allowed > 0 else "InsufficientPods",
        "message": "",
    }
    return {
        "observedGeneration": generation,
        "disruptionsAllowed": allowed,
        "currentHealthy": healthy,
        "desiredHealthy": desired,
        "expectedPods": expected,
        "conditions": [condition],
    }


def _comparable(status: dict) -> dict:
    out = dict(status)
    out["conditions"] = [
        {k: v for k, v in c.items() if k != "lastTransitionTime"} for c in status["conditions"]
    ]
    return out


def refresh(store: Any, clock: Any, namespace: str | None = None) -> None:
    """Bring every budget's status (of one namespace, or all) up to date."""
    for pdb in store.list_objs(PDB_VERSION, "PodDisruptionBudget", namespace):
        meta = pdb["metadata"]
        pods = store.list_objs("v1", "Pod", meta.get("namespace"))
        status = budget_status(pdb, pods, clock.now())
        current = pdb.get("status") or {}
        if current.get("conditions") and _comparable(current) == _comparable(status):
            continue

        def put(obj: dict, status: dict = status) -> None:
            obj["status"] = status

        try:
            store.mutate(PDB_VERSION, "PodDisruptionBudget", meta["namespace"], meta["name"], put)
        except KeyError:
            continue  # deleted meanwhile


def eviction_blocker(store: Any, clock: Any, pod: dict) -> tuple[int, str, list[dict]] | None:
    """Why the eviction of `pod` is refused (code, message, causes), or None to allow it.

    As the eviction REST handler: pods that are not running, or not healthy, go without
    asking; a pod covered by several budgets is an error; otherwise its budget must allow a
    disruption (and the disruption is counted at once)."""
    phase = (pod.get("status") or {}).get("phase")
    if phase in ("Succeeded", "Failed", "Pending"):
        return None
    meta = pod["metadata"]
    labels = meta.get("labels") or {}
    budgets = [
        b
        for b in store.list_objs(PDB_VERSION, "PodDisruptionBudget", meta.get("namespace"))
        if selector_matches((b.get("spec") or {}).get("selector"), labels, empty_matches=True)
    ]
    if not budgets:
        return None
    if len(budgets) > 1:
        return (
            500,
            "This pod has more than one PodDisruptionBudget, which the eviction subresource "
            "does not support.",
            [],
        )
    pdb = budgets[0]
    pods = store.list_objs("v1", "Pod", meta.get("namespace"))
    status = budget_status(pdb, pods, clock.now())
    if not pod_healthy(pod) and status["currentHealthy"] >= status["desiredHealthy"]:
        return None
    if status["disruptionsAllowed"] <= 0:
        name = pdb["metadata"]["name"]
        cause = {
            "reason": "DisruptionBudget",
            "message": f"The disruption budget {name} needs {status['desiredHealthy']} healthy "
            f"pods and has {status['currentHealthy']} currently",
        }
        return 429, BLOCKED_MESSAGE, [cause]
    return None


async def run(store: Any, clock: Any) -> None:
    """Recompute budgets whenever a pod or a budget changes."""
    types = [("v1", "Pod"), (PDB_VERSION, "PodDisruptionBudget")]
    with wake_on_changes(store, types) as wake:
        while True:
            await wake.wait()
            wake.clear()
            refresh(store, clock)
