"""Actions cut short: what of their plan is in place in the cluster now.

An intent in the journal without a result means ktriage stopped in the middle
of an action (killed, crashed, the machine went down). Before offering to roll
it back or complete it, each planned change is read back from the cluster:

- `create X`: X exists (and is ktriage's) or not;
- `patch X`: the labels and fields the patch set (or removed) are as planned;
- `delete X`: X is gone or still there;
- `write F`: the evidence file exists.

The verdict names what is in place and what is not, e.g. "NetworkPolicy
shop/ktriage-quarantine-web exists; the label on pod shop/web is not set: an
orphan policy that selects no pod".
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubernetes import client as k8s

from ktriage.actions.base import MANAGED_BY, MANAGED_BY_LABEL, ActionError, Target
from ktriage.actions.context import ActionContext
from ktriage.actions.journal import Entry, change_target
from ktriage.actions.kube import fetch

IN_PLACE = "in place"
NOT_IN_PLACE = "not in place"
UNKNOWN = "unknown"

NOTHING = "nothing in place"
PARTLY = "partly in place"
ALL = "all in place"
UNCHECKED = "not checked"

# kind → (reader in the official client, namespaced): the kinds ktriage changes.
_CORE = {
    "Pod": ("read_namespaced_pod", True),
    "Node": ("read_node", False),
    "Secret": ("read_namespaced_secret", True),
    "ServiceAccount": ("read_namespaced_service_account", True),
    "Service": ("read_namespaced_service", True),
    "ConfigMap": ("read_namespaced_config_map", True),
}
_APPS = {
    "Deployment": "read_namespaced_deployment",
    "StatefulSet": "read_namespaced_stateful_set",
    "ReplicaSet": "read_namespaced_replica_set",
    "DaemonSet": "read_namespaced_daemon_set",
}
_RBAC = {
    "RoleBinding": ("read_namespaced_role_binding", True),
    "ClusterRoleBinding": ("read_cluster_role_binding", False),
    "Role": ("read_namespaced_role", True),
    "ClusterRole": ("read_cluster_role", False),
}
# Custom resources ktriage may create: kind → (group, version, plural).
_CUSTOM = {
    "CiliumNetworkPolicy": ("cilium.io", "v2", "ciliumnetworkpolicies"),
    "CiliumClusterwideNetworkPolicy": ("cilium.io", "v2", "ciliumclusterwidenetworkpolicies"),
    "NetworkPolicy.projectcalico.org": ("projectcalico.org", "v3", "networkpolicies"),
}


def can_read(kind: str, api_version: str = "") -> bool:
    """Whether `read_object` knows where to read this kind."""
    group = api_version.partition("/")[0] if "/" in api_version else ""
    return kind in ("NetworkPolicy", *_CORE, *_APPS, *_RBAC, *_CUSTOM) or (
        bool(group) and "/" in api_version
    )


def _plural(kind: str) -> str:
    """`NetworkPolicy` → `networkpolicies`, `Lease` → `leases`, `Ingress` → `ingresses`."""
    low = kind.lower()
    if low.endswith("y") and low[-2:-1] not in "aeiou":
        return low[:-1] + "ies"
    if low.endswith(("s", "x", "z", "ch", "sh")):
        return low + "es"
    return low + "s"


def read_object(
    api_client: Any,
    kind: str,
    namespace: str,
    name: str,
    api_version: str = "",
    *,
    timeout: Any = None,
) -> dict[str, Any]:
    """The object as the server has it now (blocking). Raises ApiException (404 when
    gone), or LookupError for a kind this reader does not know."""
    opts: dict[str, Any] = {"timeout": timeout}
    group = api_version.partition("/")[0] if "/" in api_version else ""
    if kind == "NetworkPolicy" and group in ("", "networking.k8s.io"):
        api = k8s.NetworkingV1Api(api_client)
        return fetch(api.read_namespaced_network_policy, name, namespace, **opts)
    if kind in _CORE and not group:
        method, namespaced = _CORE[kind]
        fn = getattr(k8s.CoreV1Api(api_client), method)
        return fetch(fn, name, namespace, **opts) if namespaced else fetch(fn, name, **opts)
    if kind in _APPS:
        fn = getattr(k8s.AppsV1Api(api_client), _APPS[kind])
        return fetch(fn, name, namespace, **opts)
    if kind in _RBAC:
        method, namespaced = _RBAC[kind]
        fn = getattr(k8s.RbacAuthorizationV1Api(api_client), method)
        return fetch(fn, name, namespace, **opts) if namespaced else fetch(fn, name, **opts)
    custom = _CUSTOM.get(kind)
    if custom is None and group and "/" in api_version:
        # A custom resource named by its apiVersion (Calico's projectcalico.org/v3
        # NetworkPolicy): the plural as CRDs name it, from the lower-cased kind.
        custom = (group, api_version.partition("/")[2], _plural(kind.partition(".")[0]))
    if custom is None:
        raise LookupError(kind)
    api = k8s.CustomObjectsApi(api_client)
    g, v, plural = custom
    if namespace:
        return fetch(api.get_namespaced_custom_object, g, v, namespace, plural, name, **opts)
    return fetch(api.get_cluster_custom_object, g, v, plural, name, **opts)


@dataclass(slots=True)
class Check:
    """One planned change, read back."""

    change: str  # "create NetworkPolicy shop/x"
    state: str  # IN_PLACE | NOT_IN_PLACE | UNKNOWN
    detail: str = ""

    def words(self) -> str:
        return f"{self.change}: {self.state}" + (f" ({self.detail})" if self.detail else "")


@dataclass(slots=True)
class Unfinished:
    """An action cut short, and what of it is in place now."""

    entry: Entry
    checks: list[Check] = field(default_factory=list)
    verdict: str = UNCHECKED
    problem: str = ""  # why the cluster could not be read

    @property
    def uid(self) -> str:
        return self.entry.intent.uid

    @property
    def in_place(self) -> list[Check]:
        return [c for c in self.checks if c.state == IN_PLACE]

    @property
    def not_in_place(self) -> list[Check]:
        return [c for c in self.checks if c.state == NOT_IN_PLACE]

    def title(self) -> str:
        """`isolate pod shop/web (INC-1A2B3C), cut short`"""
        intent = self.entry.intent
        inc = f" ({intent.incident_id})" if intent.incident_id else ""
        return f"{intent.action} {intent.target.words()}{inc}, cut short"

    def summary(self) -> str:
        """What is in place now, in one sentence."""
        if self.problem:
            return f"not checked: {self.problem}"
        if not self.checks:
            return "it planned no change in the cluster"
        if self.verdict == NOTHING:
            return "nothing of it is in place"
        if self.verdict == ALL:
            return "everything it planned is in place; only its result was not recorded"
        done = "; ".join(c.change for c in self.in_place)
        missing = "; ".join(c.change for c in self.not_in_place)
        text = f"done: {done}; not done: {missing}"
        orphan = self.orphan()
        return f"{text} ({orphan})" if orphan else text

    def orphan(self) -> str:
        """The well-known half-done isolation, in words."""
        intent = self.entry.intent
        created = [c for c in self.in_place if c.change.startswith("create NetworkPolicy")] or [
            c for c in self.in_place if c.change.startswith("create ")
        ]
        label = [c for c in self.not_in_place if c.change.startswith("patch pod")]
        if intent.base_action == "isolate" and created and label and not intent.is_undo:
            return "an orphan policy: it selects no pod"
        return ""


def _matches(current: Any, wanted: Any) -> bool:
    """Whether a strategic-merge patch's values are what the object holds now
    (None in the patch: the key is gone)."""
    if isinstance(wanted, dict):
        if not isinstance(current, dict):
            return all(v is None for v in wanted.values())
        return all(
            k not in current if v is None else _matches(current.get(k), v)
            for k, v in wanted.items()
            if k != "resourceVersion"
        )
    return bool(current == wanted)


def _patch_applied(obj: dict[str, Any], body: Any) -> bool:
    if not isinstance(body, dict):
        return False
    return _matches(obj, body)


def _managed(obj: dict[str, Any]) -> bool:
    labels = (obj.get("metadata") or {}).get("labels") or {}
    return labels.get(MANAGED_BY_LABEL) == MANAGED_BY


async def _read(ctx: ActionContext, target: Target, api_version: str) -> dict[str, Any] | None:
    """The object, or None when it does not exist (404)."""
    what = f"read {target.words()}"
    try:
        return await ctx.call(
            read_object,
            ctx.kube.api_client,
            target.kind,
            target.namespace,
            target.name,
            api_version,
            what=what,
            subject=target,
        )
    except ActionError as error:
        if error.reason == "not-found":
            return None
        raise


async def check_change(ctx: ActionContext, change: dict[str, Any], base: Path) -> Check:
    target = change_target(change)
    verb = str(change.get("verb") or "")
    words = f"{verb} {target.words()}"
    if verb == "write":
        path = (base / target.name).resolve()
        if not path.is_relative_to(base.resolve()):
            return Check(words, UNKNOWN, "not under the evidence directory")
        exists = await asyncio.to_thread(path.exists)
        return Check(words, IN_PLACE if exists else NOT_IN_PLACE)
    body = change.get("body")
    api_version = str(body.get("apiVersion") or "") if isinstance(body, dict) else ""
    if not can_read(target.kind, api_version):
        return Check(words, UNKNOWN, f"ktriage cannot read a {target.kind}")
    try:
        obj = await _read(ctx, target, api_version)
    except ActionError as error:
        return Check(words, UNKNOWN, error.message)
    if verb == "create":
        if obj is None:
            return Check(words, NOT_IN_PLACE, "it does not exist")
        if not _managed(obj):
            return Check(words, UNKNOWN, "it exists but is not marked as ktriage's")
        return Check(words, IN_PLACE, "it exists")
    if verb == "delete":
        return Check(words, IN_PLACE if obj is None else NOT_IN_PLACE)
    if verb == "patch":
        if obj is None:
            return Check(words, UNKNOWN, f"{target.words()} is gone")
        applied = _patch_applied(obj, body)
        return Check(words, IN_PLACE if applied else NOT_IN_PLACE)
    return Check(words, UNKNOWN, f"ktriage does not know how to check '{verb}'")


async def inspect(ctx: ActionContext, entry: Entry, base: Path) -> Unfinished:
    """Read back every change the intent planned."""
    found = Unfinished(entry)
    for change in entry.intent.changes:
        try:
            found.checks.append(await check_change(ctx, change, base))
        except (ValueError, TypeError) as exc:
            found.checks.append(Check(str(change.get("verb")), UNKNOWN, str(exc)))
    states = {c.state for c in found.checks}
    if not found.checks or states == {NOT_IN_PLACE}:
        found.verdict = NOTHING
    elif states == {IN_PLACE}:
        found.verdict = ALL
    elif UNKNOWN in states and IN_PLACE not in states:
        found.verdict = UNCHECKED
        found.problem = "; ".join(c.words() for c in found.checks if c.state == UNKNOWN)
    else:
        found.verdict = PARTLY
    return found
