"""What the workload controllers share: selectors, ownerReferences, pods from templates."""

from __future__ import annotations

import hashlib
import random
from typing import TYPE_CHECKING, Any

import orjson

from ktriage.sim.controllers import podstatus
from ktriage.sim.controllers.manager import key_of
from ktriage.sim.names import NAME_ALPHABET, safe_encode
from ktriage.sim.storage.store import AlreadyExists, Change, ClusterStore, deep_copy

if TYPE_CHECKING:
    from ktriage.sim.controllers.manager import Controller, ObjKey

TEMPLATE_HASH_LABEL = "pod-template-hash"
# Pods a controller creates in one pass, as kube-controller-manager's burstReplicas: a
# huge replica count is worked through in passes, the loop serving requests between.
BURST = 100


def selector_matches(selector: Any, labels: Any, *, empty_matches: bool = False) -> bool:
    """A LabelSelector (matchLabels and matchExpressions) against labels. An empty
    selector matches nothing for the workload controllers and role aggregation (they
    refuse to act on one) and every pod for a PodDisruptionBudget (policy/v1): say so
    with `empty_matches`. A malformed selector or an unknown operator matches nothing."""
    if not isinstance(selector, dict):
        return False
    labels = labels if isinstance(labels, dict) else {}
    match_labels = selector.get("matchLabels") or {}
    expressions = selector.get("matchExpressions") or []
    if not isinstance(match_labels, dict) or not isinstance(expressions, list):
        return False
    if not match_labels and not expressions:
        return empty_matches
    if any(labels.get(k) != v for k, v in match_labels.items()):
        return False
    for expr in expressions:
        if not isinstance(expr, dict):
            return False
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        has = key in labels
        if op == "In" and not (has and labels[key] in values):
            return False
        if op == "NotIn" and has and labels[key] in values:
            return False
        if op == "Exists" and not has:
            return False
        if op == "DoesNotExist" and has:
            return False
        if op not in ("In", "NotIn", "Exists", "DoesNotExist"):
            return False
    return True


def controller_ref(obj: dict) -> dict | None:
    for ref in owner_refs(obj):
        if ref.get("controller"):
            return ref
    return None


def owner_refs(obj: dict | None) -> list[dict]:
    """The object's ownerReferences that are references at all (hostile data may hold
    anything there)."""
    if not obj:
        return []
    refs = (obj.get("metadata") or {}).get("ownerReferences")
    if not isinstance(refs, list):
        return []
    return [r for r in refs if isinstance(r, dict) and isinstance(r.get("uid"), str)]


def owned_by(obj: dict, owner: dict) -> bool:
    ref = controller_ref(obj)
    return ref is not None and ref.get("uid") == owner["metadata"].get("uid")


def owner_reference(owner: dict) -> dict:
    return {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def terminating(obj: dict) -> bool:
    return bool((obj.get("metadata") or {}).get("deletionTimestamp"))


def pod_active(pod: dict) -> bool:
    phase = (pod.get("status") or {}).get("phase")
    return not terminating(pod) and phase not in ("Succeeded", "Failed")


def pod_ready(pod: dict) -> bool:
    for cond in (pod.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            return cond.get("status") == "True"
    return False


def template_hash(template: dict) -> str:
    """A stable hash of a pod template, spelled as kube spells pod-template-hash."""
    digest = hashlib.sha256(orjson.dumps(template, option=orjson.OPT_SORT_KEYS)).digest()
    return safe_encode(digest[:10].decode("latin-1"))


def without_hash(template: dict) -> dict:
    out = deep_copy(template)
    labels = (out.get("metadata") or {}).get("labels")
    if labels:
        labels.pop(TEMPLATE_HASH_LABEL, None)
    (out.get("metadata") or {}).pop("creationTimestamp", None)
    return out


def same_template(a: dict, b: dict) -> bool:
    return _normal(without_hash(a)) == _normal(without_hash(b))


def _normal(template: dict) -> dict:
    # Compare as the API would after defaulting (a template read back through a client
    # gains defaults and empty fields): defaults filled, empty values dropped.
    spec = deep_copy(template.get("spec") or {})
    podstatus.default_spec(spec)
    return _pruned({"metadata": template.get("metadata") or {}, "spec": spec})


def _pruned(value: object) -> object:
    if isinstance(value, dict):
        out = {k: _pruned(v) for k, v in value.items()}
        return {k: v for k, v in out.items() if v not in ({}, [], None, "")}
    if isinstance(value, list):
        return [_pruned(v) for v in value]
    return value


def create_pod(
    store: ClusterStore,
    owner: dict,
    template: dict,
    *,
    name: str | None = None,
    labels: dict | None = None,
    spec_extra: dict | None = None,
) -> dict | None:
    """A pod from `owner`'s template, named `<owner>-<5 chars>` unless `name` is given;
    `labels` and `spec_extra` are added to the template's."""
    meta_t = (template.get("metadata") or {}) if template else {}
    prefix = owner["metadata"]["name"] + "-"
    for _ in range(5):
        pod_name = name or prefix + "".join(random.choices(NAME_ALPHABET, k=5))
        meta: dict = {
            "name": pod_name,
            "namespace": owner["metadata"].get("namespace") or "default",
            "labels": {**(meta_t.get("labels") or {}), **(labels or {})},
            "ownerReferences": [owner_reference(owner)],
        }
        if name is None:
            meta["generateName"] = prefix
        if meta_t.get("annotations"):
            meta["annotations"] = dict(meta_t["annotations"])
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": meta,
            "spec": {**deep_copy(template.get("spec") or {}), **(spec_extra or {})},
        }
        try:
            return store.create_checked(pod)
        except AlreadyExists:
            if name is not None:
                return None
    return None


def mark_managed(manager: object, change: object, from_api: bool) -> None:
    """A workload a client made, or whose spec a client changed, is driven by its
    controller; one the scenario wrote is left to the scenario (see `manager`)."""
    obj = change.obj  # type: ignore[attr-defined]
    if not from_api or change.type == "DELETED":  # type: ignore[attr-defined]
        return
    old = change.old  # type: ignore[attr-defined]
    if old is None or obj.get("spec") != old.get("spec"):
        manager.managed.add(obj["metadata"]["uid"])  # type: ignore[attr-defined]


def observe_workload(
    controller: Controller, change: Change, from_api: bool, workload: tuple[str, str]
) -> None:
    """What a workload controller does with a change: its own `workload` type is managed
    from now on when a client made or respecified it (`mark_managed`) and queued unless
    deleted; for a dependent (a pod, a ReplicaSet) the workload controlling it is queued."""
    if change.kind != workload[1]:
        enqueue_owner(controller, change, workload)
        return
    mark_managed(controller.manager, change, from_api)
    if change.type != "DELETED":
        controller.manager.enqueue(controller, key_of(change.obj))


def enqueue_owner(controller: Controller, change: Change, owner: tuple[str, str]) -> None:
    """Queue the `owner` type (apiVersion, kind) object controlling the changed object,
    before or after the change (a pod released by its owner is news to that owner)."""
    obj = change.obj
    ns = obj["metadata"].get("namespace", "")
    for o in (obj, change.old):
        ref = controller_ref(o) if o else None
        if ref is not None and ref.get("kind") == owner[1]:
            controller.manager.enqueue(controller, (*owner, ns, ref.get("name", "")))


def driven(controller: Controller, workload: tuple[str, str], key: ObjKey) -> dict | None:
    """The `workload` type object `key` names if its controller drives it now: it
    exists, is not being deleted and is managed (see `mark_managed`)."""
    _, _, ns, name = key
    obj = controller.store.peek(*workload, ns, name)
    if obj is None or terminating(obj) or not controller.manager.is_managed(obj):
        return None
    return obj


def write_status(store: ClusterStore, obj: dict, status: dict) -> None:
    """Store `status` unless it is what the object already reports."""
    if (obj.get("status") or {}) == status:
        return
    meta = obj["metadata"]

    def write(o: dict) -> None:
        o["status"] = status

    store.mutate(obj["apiVersion"], obj["kind"], meta.get("namespace"), meta["name"], write)


def owned_pods(store: ClusterStore, owner: dict) -> list[dict]:
    ns = owner["metadata"].get("namespace")
    return [p for p in store.snapshot("v1", "Pod", ns)[0] if owned_by(p, owner)]
