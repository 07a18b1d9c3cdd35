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
