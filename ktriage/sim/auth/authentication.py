"""Authentication: bearer tokens and the identities they stand for.

Three identities come with every simulated cluster:

- `admin`: user `kubernetes-admin` in `system:masters`, allowed everything;
- `viewer`: read-only (role `readonly`);
- `intruder`: authenticated but allowed nothing at all (role `none`).

Other identities (impersonated users, service-account tokens) have role `basic`.
What each role may do is `authorization.RoleAuthorizer`'s to decide.
"""

from __future__ import annotations

import secrets
import threading
import uuid
from dataclasses import dataclass, field

from ktriage.sim.auth.authorization import ROLES, Attributes, Decision, RoleAuthorizer


@dataclass(frozen=True)
class Identity:
    name: str  # the handle tests and faults use: admin, viewer, intruder
    username: str
    groups: tuple[str, ...]
    role: str
    token: str = field(repr=False)
    uid: str = ""

    @property
    def all_groups(self) -> list[str]:
        groups = list(self.groups)
        if "system:authenticated" not in groups:
            groups.append("system:authenticated")
        return groups


class Auth:
    """The identities of one simulated cluster and what each may do."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_token: dict[str, Identity] = {}
        self._by_name: dict[str, Identity] = {}
        self.authorizer = RoleAuthorizer()
        self.admin = self.add("admin", "kubernetes-admin", ["system:masters"], "admin")
        self.viewer = self.add("viewer", "viewer", ["sim:viewers"], "readonly")
        self.intruder = self.add("intruder", "intruder", [], "none")

    def add(
        self,
        name: str,
        username: str,
        groups: list[str],
        role: str,
        token: str | None = None,
    ) -> Identity:
        """Register an identity; returns it (its `token` is the bearer token)."""
        if role not in ROLES:
            raise ValueError(f"role must be one of {ROLES}")
        ident = Identity(
            name=name,
            username=username,
            groups=tuple(groups),
            role=role,
            token=token or secrets.token_urlsafe(24),
            uid=str(uuid.uuid5(uuid.NAMESPACE_URL, f"ktriage-sim:{username}")),
        )
        with self._lock:
            old = self._by_name.get(name)
            if old is not None:
                self._by_token.pop(old.token, None)
            self._by_token[ident.token] = ident
            self._by_name[name] = ident
        return ident

    def get(self, name: str) -> Identity | None:
        """An identity by handle or by username."""
        with self._lock:
            ident = self._by_name.get(name)
            if ident is None:
                ident = next((i for i in self._by_name.values() if i.username == name), None)
            return ident

    def authenticate(self, token: str) -> Identity | None:
        with self._lock:
            return self._by_token.get(token)

    def authorize(self, ident: Identity, attrs: Attributes) -> Decision:
        return self.authorizer.authorize(ident, attrs)

    def rules(self, ident: Identity) -> tuple[list[dict], list[dict]]:
        """(resourceRules, nonResourceRules) for a SelfSubjectRulesReview."""
        return self.authorizer.rules(ident)
