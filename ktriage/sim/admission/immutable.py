"""Fields an update may not change (ValidatePodUpdate, the workloads' selector, Secrets and
ConfigMaps marked `immutable`)."""

from __future__ import annotations

import copy
from typing import Any

from ktriage.sim.admission.fielderrors import Cause, GoRaw, forbidden, invalid

POD_UPDATABLE = (
    "`spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,"
    "`spec.tolerations` (only additions to existing tolerations),"
    "`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)"
)
IMMUTABLE_SET = "field is immutable when `immutable` is set"


def check(rt: Any, new: dict, old: dict) -> list[Cause]:
    kind, group = rt.kind, rt.group
    if kind == "Pod" and group == "":
        return _pod(new, old)
    if group in ("apps", "batch") and kind in (
        "Deployment",
        "ReplicaSet",
        "StatefulSet",
        "DaemonSet",
        "Job",
    ):
        new_sel = (new.get("spec") or {}).get("selector")
        old_sel = (old.get("spec") or {}).get("selector")
        if new_sel != old_sel:
            return [invalid("spec.selector", _go_selector(new_sel), "field is immutable")]
        return []
    if kind in ("Secret", "ConfigMap") and group == "":
        return _immutable_data(kind, new, old)
    return []


def _pod(new: dict, old: dict) -> list[Cause]:
    new_spec = copy.deepcopy(new.get("spec") or {})
    old_spec = copy.deepcopy(old.get("spec") or {})
    # What may change is copied from the new spec onto the old before comparing.
    for field in ("containers", "initContainers"):
        for old_c, new_c in zip(old_spec.get(field) or [], new_spec.get(field) or [], strict=False):
            if isinstance(old_c, dict) and isinstance(new_c, dict) and "image" in new_c:
                old_c["image"] = new_c["image"]
    for field in ("activeDeadlineSeconds", "ephemeralContainers"):
        if field in new_spec:
            old_spec[field] = new_spec[field]
        else:
            old_spec.pop(field, None)
    old_tol = old_spec.get("tolerations") or []
    new_tol = new_spec.get("tolerations") or []
    if new_tol[: len(old_tol)] == old_tol:
        old_spec["tolerations"] = new_tol
        if not new_tol:
            old_spec.pop("tolerations", None)
    if old_spec.get("nodeName") is None and new_spec.get("nodeName"):
        old_spec["nodeName"] = new_spec["nodeName"]
    if new_spec == old_spec:
        return []
    changed = sorted(k for k in set(new_spec) | set(old_spec) if new_spec.get(k) != old_spec.get(k))
    diff = "\n".join(f"  spec.{k}: changed" for k in changed)
    return [
        forbidden("spec", f"pod updates may not change fields other than {POD_UPDATABLE}\n" + diff)
    ]


def _immutable_data(kind: str, new: dict, old: dict) -> list[Cause]:
    if not old.get("immutable"):
        return []
    out: list[Cause] = []
    if not new.get("immutable"):
        out.append(forbidden("immutable", IMMUTABLE_SET))
    fields = ("data", "stringData", "type") if kind == "Secret" else ("data", "binaryData")
    for field in fields:
        if field == "stringData":
            if new.get(field):
                out.append(forbidden("data", IMMUTABLE_SET))
            continue
        if (new.get(field) or None) != (old.get(field) or None):
            if field == "type":
                out.append(invalid("type", new.get(field), "field is immutable"))
            else:
                out.append(forbidden(field, IMMUTABLE_SET))
    return out


def _go_selector(sel: Any) -> str:
    """How the Go LabelSelector prints in the error (the value of `%#v`)."""

    sel = sel if isinstance(sel, dict) else {}
    labels = sel.get("matchLabels") or {}
    pairs = ", ".join(f'"{k}":"{v}"' for k, v in sorted(labels.items()))
    match_labels = "map[string]string{" + pairs + "}" if labels else "map[string]string(nil)"
    exprs = sel.get("matchExpressions")
    match_exprs = (
        "[]v1.LabelSelectorRequirement(nil)" if not exprs else "[]v1.LabelSelectorRequirement{...}"
    )
    return GoRaw(f"v1.LabelSelector{{MatchLabels:{match_labels}, MatchExpressions:{match_exprs}}}")
