"""What the identity actions share: who an identity is, which ones are refused, and
the evidence they write before changing anything.

- `unbind.py` (`B`) removes the RBAC bindings of the identity that acted;
- `revoke.py` (`R`) revokes a ServiceAccount's credentials, or records that a
  user's cannot be revoked.

Identities of the cluster itself (`system:anonymous`, `system:node:...`, control
plane components) are refused with the reason, and so is the identity ktriage
acts as (containing it would lock the responder out).
"""

from __future__ import annotations

import copy
import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ktriage.actions.base import (
    ActionError,
    Target,
)
from ktriage.actions.context import ActionContext
from ktriage.actions.logs import _private_opener, safe_name
from ktriage.core.model import EntityKind
from ktriage.core.snapshot import make_private_dirs

SA = EntityKind.SERVICE_ACCOUNT
USER = EntityKind.USER
BINDING_RESOURCES = {"rolebindings": "RoleBinding", "clusterrolebindings": "ClusterRoleBinding"}
SA_NAME_ANNOTATION = "kubernetes.io/service-account.name"
SA_UID_ANNOTATION = "kubernetes.io/service-account.uid"
# How many pods a plan names before counting the rest.
NAMED_PODS = 10
# How long the recreation waits for the old ServiceAccount to be gone.
GONE_SECONDS = 10.0
# Fields the server sets; a recreated object leaves them out.
_SERVER_META = (
    "uid",
    "resourceVersion",
    "creationTimestamp",
    "generation",
    "managedFields",
    "selfLink",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "ownerReferences",
)


def username(target: Target) -> str:
    """The name the API server knows the identity by."""
    if target.kind == SA:
        return f"system:serviceaccount:{target.namespace}:{target.name}"
    return target.name


def identity_subject(target: Target) -> str:
    """The containment fact's subject: `serviceaccount ns/name` or `user name`."""
    if target.kind == SA:
        return f"serviceaccount {target.namespace}/{target.name}"
    return f"user {target.name}"


def refuse_unrevocable(target: Target) -> None:
    """Raise, saying why, for an identity that is the cluster's own or nobody's."""
    name = username(target)
    if target.kind not in (SA, USER):
        raise ActionError(f"{target.words()} is not an identity")
    if name in ("system:anonymous", "system:unauthenticated"):
        raise ActionError(
            f"{name} is not a revocable identity: it is every request without credentials. "
            "Remove what it is granted by hand (kubectl get clusterrolebindings,rolebindings "
            "-A -o wide | grep -e system:anonymous -e system:unauthenticated) and turn "
            "anonymous authentication off (kube-apiserver --anonymous-auth=false)"
        )
    if name.startswith("system:node:"):
        raise ActionError(
            f"{name} is not a revocable identity: it is the kubelet of node "
            f"{name.removeprefix('system:node:')}, and the Node authorizer (not RBAC) gives it "
            "its rights. Cordon and drain that node, then rotate the kubelet's client "
            "certificate or replace the node"
        )
    if target.kind == USER and name.startswith("system:"):
        raise ActionError(
            f"{name} is not a revocable identity: it is a component of the control plane. "
            "Its rights come from the cluster's bootstrap policy; removing them breaks the "
            "cluster"
        )


async def refuse_self(ctx: ActionContext, target: Target) -> None:
    """Raise when the identity is the one ktriage acts as: it would lock itself out."""
    who = await ctx.permissions.identity()
    if username(target) == who:
        raise ActionError(
            f"{who} is the identity ktriage itself acts as: containing it would lock "
            "ktriage (and you) out. Use another identity to contain this one"
        )


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def clean(obj: dict[str, Any]) -> dict[str, Any]:
    """The object without the fields the server sets, ready to be created again."""
    # apiVersion and kind first, as kubectl shows an object.
    head: dict[str, Any] = {k: obj[k] for k in ("apiVersion", "kind") if k in obj}
    out = {**head, **copy.deepcopy({k: v for k, v in obj.items() if k not in head})}
    out.pop("status", None)
    meta = out.get("metadata") or {}
    for key in _SERVER_META:
        meta.pop(key, None)
    annotations = meta.get("annotations") or {}
    annotations.pop("kubectl.kubernetes.io/last-applied-configuration", None)
    if not annotations:
        meta.pop("annotations", None)
    return out


def binding_key(obj: dict[str, Any]) -> tuple[str, str, str]:
    meta = obj.get("metadata") or {}
    return str(obj.get("kind", "")), str(meta.get("namespace", "")), str(meta.get("name", ""))


def binding_target(obj: dict[str, Any]) -> Target:
    kind, ns, name = binding_key(obj)
    return Target(kind, ns, name)


def names_identity(subject: Any, target: Target) -> bool:
    """Whether a binding subject is this identity (groups are not matched). A
    ServiceAccount may also be named as a User by its full username: RBAC matches that."""
    if not isinstance(subject, dict):
        return False
    kind = subject.get("kind")
    if kind == "User":
        return subject.get("name") == username(target)
    return (
        target.kind == SA
        and kind == "ServiceAccount"
        and subject.get("name") == target.name
        and subject.get("namespace") == target.namespace
    )


def created_by(records: list[tuple[Any, Any]], target: Target) -> list[tuple[str, str, str]]:
    """(kind, namespace, name) of the bindings the identity created or changed in the
    incident, from its audit records that succeeded."""
    who = username(target)
    found: list[tuple[str, str, str]] = []
    for _event, raw in records:
        if not isinstance(raw, dict):
            continue
        user = _mapping(raw.get("user"))
        if user.get("username") != who:
            continue
        if raw.get("verb") not in ("create", "update", "patch"):
            continue
        ref = _mapping(raw.get("objectRef"))
        kind = BINDING_RESOURCES.get(str(ref.get("resource") or ""))
        status = _mapping(raw.get("responseStatus"))
        code = status.get("code")
        if kind is None or (isinstance(code, int) and code >= 300):
            continue
        name = str(ref.get("name") or "")
        if not name:
            obj = raw.get("responseObject") or raw.get("requestObject")
            if isinstance(obj, dict):
                name = str((obj.get("metadata") or {}).get("name") or "")
        if name:
            ns = "" if kind == "ClusterRoleBinding" else str(ref.get("namespace") or "")
            key = (kind, ns, name)
            if key not in found:
                found.append(key)
    return found


def groups_of(records: list[tuple[Any, Any]], target: Target) -> list[str]:
    """The groups the API server said the identity had, in the incident's audit records."""
    who = username(target)
    groups: list[str] = []
    for _event, raw in records:
        user = raw.get("user") if isinstance(raw, dict) else None
        if not isinstance(user, dict) or user.get("username") != who:
            continue
        for group in user.get("groups") or ():
            if isinstance(group, str) and group not in groups:
                groups.append(group)
    return groups


def evidence_dir(ctx: ActionContext, incident_id: str, what: str) -> Path:
    stamp = datetime.fromtimestamp(ctx.clock(), UTC).strftime("%Y%m%dT%H%M%SZ")
    base = ctx.snapshot_dir / safe_name(incident_id) / "evidence"
    path = base / f"{safe_name(what)}.{stamp}"
    n = 2
    while path.exists():
        path = base / f"{safe_name(what)}.{stamp}-{n}"
        n += 1
    return path


def write_evidence(directory: Path, base: Path, name: str, data: Any) -> dict[str, Any]:
    """One JSON file, 0600 in 0700 directories; exact, so undo can trust it. Returns its
    entry for the record: {path (relative to `base`), sha256, bytes}."""
    make_private_dirs(directory)
    path = directory / name
    text = (json.dumps(data, indent=2, sort_keys=True) + "\n").encode()
    with open(path, "wb", opener=_private_opener) as fh:
        fh.write(text)
    digest = hashlib.sha256(text).hexdigest()
    return {"path": str(path.relative_to(base)), "sha256": digest, "bytes": len(text)}
