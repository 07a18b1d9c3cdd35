"""What the current identity may do, asked of the API server before a key is offered.

Each needed permission is one SelfSubjectAccessReview; answers are cached for a
few minutes per (verb, resource, namespace), so moving through the pods list
costs nothing. Who we are comes from a SelfSubjectReview, once, for the record.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ktriage.actions.kube import Kube
    from ktriage.actions.runner import Runner


@dataclass(frozen=True, slots=True)
class Permission:
    verb: str
    resource: str
    group: str = ""
    subresource: str = ""
    namespaced: bool = True

    def words(self) -> str:
        """`patch on nodes`, `get on pods/log`, `create on networkpolicies`."""
        res = f"{self.resource}/{self.subresource}" if self.subresource else self.resource
        return f"{self.verb} on {res}"

    def resource_arg(self) -> str:
        """The resource as `kubectl auth can-i` names it: `networkpolicies.networking.k8s.io`."""
        return f"{self.resource}.{self.group}" if self.group else self.resource

    def scope(self, namespace: str) -> str:
        """`in namespace shop`, or `cluster-wide`."""
        return f"in namespace {namespace}" if self.namespaced and namespace else "cluster-wide"

    def can_i(self, namespace: str) -> str:
        """The kubectl line that checks this permission for the current identity."""
        line = f"kubectl auth can-i {self.verb} {self.resource_arg()}"
        if self.subresource:
            line += f" --subresource={self.subresource}"
        if self.namespaced and namespace:
            line += f" -n {namespace}"
        elif not self.namespaced and self.resource in NAMESPACED_RESOURCES:
            line += " --all-namespaces"
        return line


@dataclass(frozen=True, slots=True)
class Verdict:
    allowed: bool
    reason: str = ""  # the server's reason, or why we could not ask
    known: bool = True  # False when the review itself failed


PATCH_NODES = Permission("patch", "nodes", namespaced=False)
GET_NODES = Permission("get", "nodes", namespaced=False)
GET_PODS = Permission("get", "pods")
PATCH_PODS = Permission("patch", "pods")
CREATE_NETPOL = Permission("create", "networkpolicies", "networking.k8s.io")
DELETE_NETPOL = Permission("delete", "networkpolicies", "networking.k8s.io")
LIST_NETPOL = Permission("list", "networkpolicies", "networking.k8s.io")
GET_LOGS = Permission("get", "pods", subresource="log")
LIST_EVENTS = Permission("list", "events")
LIST_SERVICES = Permission("list", "services")
GET_REPLICASETS = Permission("get", "replicasets", "apps")
GET_STATEFULSETS = Permission("get", "statefulsets", "apps")
GET_DAEMONSETS = Permission("get", "daemonsets", "apps")
GET_JOBS = Permission("get", "jobs", "batch")
DELETE_PODS = Permission("delete", "pods")
LIST_PODS = Permission("list", "pods")
PATCH_DEPLOYMENT_SCALE = Permission("patch", "deployments", "apps", subresource="scale")
PATCH_STATEFULSET_SCALE = Permission("patch", "statefulsets", "apps", subresource="scale")
PATCH_REPLICASET_SCALE = Permission("patch", "replicasets", "apps", subresource="scale")
GET_DEPLOYMENTS = Permission("get", "deployments", "apps")
_RBAC = "rbac.authorization.k8s.io"
# Bindings are looked for in every namespace: a ServiceAccount may be bound anywhere.
LIST_ROLEBINDINGS = Permission("list", "rolebindings", _RBAC, namespaced=False)
DELETE_ROLEBINDINGS = Permission("delete", "rolebindings", _RBAC, namespaced=False)
CREATE_ROLEBINDINGS = Permission("create", "rolebindings", _RBAC, namespaced=False)
UPDATE_ROLEBINDINGS = Permission("update", "rolebindings", _RBAC, namespaced=False)
LIST_CLUSTERROLEBINDINGS = Permission("list", "clusterrolebindings", _RBAC, namespaced=False)
DELETE_CLUSTERROLEBINDINGS = Permission("delete", "clusterrolebindings", _RBAC, namespaced=False)
CREATE_CLUSTERROLEBINDINGS = Permission("create", "clusterrolebindings", _RBAC, namespaced=False)
UPDATE_CLUSTERROLEBINDINGS = Permission("update", "clusterrolebindings", _RBAC, namespaced=False)
GET_SERVICEACCOUNTS = Permission("get", "serviceaccounts")
CREATE_SERVICEACCOUNTS = Permission("create", "serviceaccounts")
DELETE_SERVICEACCOUNTS = Permission("delete", "serviceaccounts")
LIST_SECRETS = Permission("list", "secrets")
DELETE_SECRETS = Permission("delete", "secrets")

# Resources that live in namespaces, though some actions need them in every namespace.
NAMESPACED_RESOURCES = frozenset({"rolebindings", "roles", "secrets", "pods", "serviceaccounts"})

UNKNOWN_TTL = 30.0  # seconds before a failed review is asked again


class PermissionCache:
    """SelfSubjectAccessReview answers, cached for `ttl` seconds."""

    def __init__(
        self,
        kube: Kube,
        runner: Runner,
        *,
        ttl: float = 300.0,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self._kube = kube
        self._runner = runner
        self.ttl = ttl
        self._now = now
        # (permission, namespace) -> (when, verdict, for how long)
        self._cache: dict[tuple[Permission, str], tuple[float, Verdict, float]] = {}
        self._identity: str | None = None
        self._identity_lock = asyncio.Lock()
        self.reviews_sent = 0

    def cached(self, permission: Permission, namespace: str) -> Verdict | None:
        key = (permission, namespace if permission.namespaced else "")
        hit = self._cache.get(key)
        if hit is None or self._now() - hit[0] > hit[2]:
            return None
        return hit[1]

    async def check(self, permission: Permission, namespace: str) -> Verdict:
        hit = self.cached(permission, namespace)
        if hit is not None:
            return hit
        ns = namespace if permission.namespaced else ""
        self.reviews_sent += 1
        try:
            reply = await self._runner.call(
                self._kube.access_review,
                verb=permission.verb,
                resource=permission.resource,
                group=permission.group,
                subresource=permission.subresource,
                namespace=ns,
                what=f"ask whether we may {permission.words()}",
            )
        except Exception as exc:
            # The review itself failed: offer the action (the server still decides and a
            # 403 names the permission), and ask again soon rather than in minutes.
            verdict = Verdict(allowed=True, reason=f"could not check: {exc}", known=False)
            self._cache[(permission, ns)] = (self._now(), verdict, min(self.ttl, UNKNOWN_TTL))
            return verdict
        status = reply.get("status") or {}
        verdict = Verdict(
            allowed=bool(status.get("allowed")) and not status.get("denied"),
            reason=str(status.get("reason") or status.get("evaluationError") or ""),
        )
        self._cache[(permission, ns)] = (self._now(), verdict, self.ttl)
        return verdict

    def unknown_cached(self, permissions: Iterable[Permission], namespace: str) -> str:
        """Why some of these permissions could not be checked ("" when all were)."""
        for p in permissions:
            verdict = self.cached(p, namespace)
            if verdict is not None and not verdict.known:
                return verdict.reason
        return ""

    async def missing(self, permissions: Iterable[Permission], namespace: str) -> list[Permission]:
        """The permissions the identity lacks (unknown answers count as allowed)."""
        perms = list(dict.fromkeys(permissions))
        verdicts = await asyncio.gather(*(self.check(p, namespace) for p in perms))
        return [p for p, v in zip(perms, verdicts, strict=True) if not v.allowed]

    def missing_cached(
        self, permissions: Iterable[Permission], namespace: str
    ) -> list[Permission] | None:
        """Like `missing`, from the cache alone; None when something is not cached."""
        out: list[Permission] = []
        for p in dict.fromkeys(permissions):
            verdict = self.cached(p, namespace)
            if verdict is None:
                return None
            if not verdict.allowed:
                out.append(p)
        return out

    def invalidate(self) -> None:
        self._cache.clear()

    @property
    def known_identity(self) -> str:
        """Who we are, if the server already said ("" until then)."""
        return self._identity or ""

    async def identity(self) -> str:
        """The username from SelfSubjectReview, asked once."""
        async with self._identity_lock:
            if self._identity is None:
                try:
                    reply = await self._runner.call(self._kube.self_review, what="ask who we are")
                    info = (reply.get("status") or {}).get("userInfo") or {}
                    self._identity = str(info.get("username") or "unknown")
                except Exception as exc:
                    # Not cached: the next action asks again.
                    return f"unknown ({exc})"
            return self._identity


def needs(missing: list[Permission]) -> str:
    """`needs patch on nodes` / `needs create on networkpolicies and patch on pods`."""
    words = [p.words() for p in missing]
    if not words:
        return ""
    if len(words) == 1:
        return f"needs {words[0]}"
    return "needs " + ", ".join(words[:-1]) + " and " + words[-1]


def explain_missing(missing: list[Permission], namespace: str, who: str = "") -> str:
    """Each missing permission with its scope and the line that checks it:

    `viewer may not patch nodes (cluster-wide); check: kubectl auth can-i patch nodes`
    """
    subject = who or "the current identity"
    lines = []
    for p in missing:
        res = f"{p.resource}/{p.subresource}" if p.subresource else p.resource
        lines.append(
            f"{subject} may not {p.verb} {res} ({p.scope(namespace)}); check: {p.can_i(namespace)}"
        )
    return "\n".join(lines)
