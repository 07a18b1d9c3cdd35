"""Deleting an object as kube-apiserver does: graceful deletion of pods, finalizers,
and the propagation policy (Background, Foreground, Orphan) for the garbage collector.

An object with finalizers (or a pod that must stop first) is not removed: it gets a
`deletionTimestamp` (and `deletionGracePeriodSeconds`) and lives on, Terminating,
until its finalizers are gone (`garbagecollector`) and, for a pod, kubelet stopped it.
"""

from __future__ import annotations

from ktriage.sim.storage.store import ClusterStore
from ktriage.sim.timefmt import rfc3339

FOREGROUND = "foregroundDeletion"
ORPHAN = "orphan"


def propagation(options: dict) -> str | None:
    policy = options.get("propagationPolicy")
    if policy in ("Foreground", "Background", "Orphan"):
        return policy
    if options.get("orphanDependents") is True:
        return "Orphan"
    return None


def pod_grace(pod: dict, options: dict) -> int:
    """The grace period a DELETE gives a pod: none for a pod never scheduled or done."""
    grace = options.get("gracePeriodSeconds")
    spec = pod.get("spec") or {}
    if grace is None:
        grace = spec.get("terminationGracePeriodSeconds", 30)
    try:
        grace = max(int(grace), 0)
    except (TypeError, ValueError):
        grace = 30
    if not spec.get("nodeName"):
        return 0
    if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
        return 0
    return grace


def delete(
    store: ClusterStore,
    api_version: str,
    kind: str,
    namespace: str | None,
    name: str,
    options: dict | None = None,
) -> tuple[dict | None, bool]:
    """Delete (or begin deleting) an object. Returns (object, removed): the removed
    object, or the one now marked for deletion; (None, False) if absent."""
    options = options or {}
    now = store.clock.now()
    is_pod = (api_version, kind) == ("v1", "Pod")
    with store._lock:  # one decision on one version of the object
        old = store.peek(api_version, kind, namespace, name)
        if old is None:
            return None, False
        meta = old.get("metadata") or {}
        finalizers = list(meta.get("finalizers") or [])
        grace = pod_grace(old, options) if is_pod else 0
        if meta.get("deletionTimestamp"):
            # Already terminating: a pod may be cut short; anything else stays as it is.
            if is_pod and grace == 0 and not finalizers:
                return store.delete(api_version, kind, namespace, name), True
            return store.get_obj(api_version, kind, namespace, name), False
        policy = propagation(options)
        if policy == "Foreground" and FOREGROUND not in finalizers:
            finalizers.append(FOREGROUND)
        elif policy == "Orphan" and ORPHAN not in finalizers:
            finalizers.append(ORPHAN)
        if not finalizers and grace == 0:
            return store.delete(api_version, kind, namespace, name), True

        def mark(obj: dict) -> None:
            m = obj["metadata"]
            m["deletionTimestamp"] = rfc3339(now + grace)
            m["deletionGracePeriodSeconds"] = grace
            if finalizers:
                m["finalizers"] = finalizers

        return store.mutate(api_version, kind, namespace, name, mark), False
