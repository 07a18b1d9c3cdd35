"""Authentication: bearer tokens and the identities they stand for.

Three static tokens come with every simulated cluster (the kubeconfig's contexts):

- `admin` (`sim-admin`): user `kubernetes-admin` in `system:masters`;
- `viewer` (`sim-readonly`): user `viewer`, bound to the `view` ClusterRole;
- `intruder` (`sim-intruder`): authenticated, bound to nothing.

ServiceAccount tokens are JWTs from TokenRequest (`tokens.TokenIssuer`); they authenticate
only while the ServiceAccount (and the Pod they are bound to) with the uid in the token
exists. What anyone may do is the RBAC authorizer's to decide (`rbac.RBACAuthorizer`).
"""

from __future__ import annotations

import secrets
import threading
import uuid
from dataclasses import dataclass, field

from ktriage.sim.auth.authorization import Attributes, Decision
from ktriage.sim.auth.rbac import PRIVILEGED_GROUP, RBACAuthorizer
from ktriage.sim.auth.tokens import TokenIssuer
from ktriage.sim.clock import SimClock
from ktriage.sim.storage.store import ClusterStore

AUTHENTICATED = "system:authenticated"


@dataclass(frozen=True)
class Identity:
    name: str  # the handle tests and faults use: admin, viewer, intruder
    username: str
    groups: tuple[str, ...]  # every group, system:authenticated included
    token: str = field(default="", repr=False)
    uid: str = ""
    extra: tuple[tuple[str, tuple[str, ...]], ...] = ()

    @property
    def all_groups(self) -> list[str]:
        return list(self.groups)

    @property
    def extra_dict(self) -> dict[str, list[str]]:
        return {key: list(values) for key, values in self.extra}

    @property
    def privileged(self) -> bool:
        return PRIVILEGED_GROUP in self.groups


def with_authenticated(groups: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """The groups an authenticator reports: as given, plus system:authenticated."""
    out = list(dict.fromkeys(groups))
    if AUTHENTICATED not in out:
        out.append(AUTHENTICATED)
    return tuple(out)


class Auth:
    """The identities of one simulated cluster and what each may do."""

    def __init__(self, store: ClusterStore, clock: SimClock) -> None:
        self._lock = threading.Lock()
        self._by_token: dict[str, Identity] = {}
        self._by_name: dict[str, Identity] = {}
        self.store = store
        self.clock = clock
        self.tokens = TokenIssuer()
        self.authorizer = RBACAuthorizer(store)
        self.admin = self.add("admin", "kubernetes-admin", [PRIVILEGED_GROUP])
        self.viewer = self.add("viewer", "viewer", ["sim:viewers"])
        self.intruder = self.add("intruder", "intruder", [])

    def add(
        self,
        name: str,
        username: str,
        groups: list[str],
        token: str | None = None,
    ) -> Identity:
        """Register a static token; returns its identity (`token` is the bearer token).
        Its rights are whatever the RBAC objects grant `username` and `groups`."""
        ident = Identity(
            name=name,
            username=username,
            groups=with_authenticated(groups),
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
        """A static identity by handle or by username."""
        with self._lock:
            ident = self._by_name.get(name)
            if ident is None:
                ident = next((i for i in self._by_name.values() if i.username == name), None)
            return ident

    def authenticate(self, token: str) -> Identity | None:
        with self._lock:
            ident = self._by_token.get(token)
        if ident is not None:
            return ident
        return self._service_account(token)

    def _service_account(self, token: str) -> Identity | None:
        """The ServiceAccount a JWT of this cluster names, if it (and what the token is
        bound to) still exists with the uid in the token."""
        claims = self.tokens.verify(token, self.clock.now())
        if claims is None:
            return None
        sa = self.store.peek("v1", "ServiceAccount", claims.namespace, claims.name)
        if sa is None or sa["metadata"].get("uid") != claims.uid:
            return None
        if sa["metadata"].get("deletionTimestamp"):
            return None
        extra: list[tuple[str, tuple[str, ...]]] = [
            ("authentication.kubernetes.io/credential-id", (f"JTI={claims.token_id}",))
        ]
        if claims.bound is not None:
            bound = self.store.peek("v1", claims.bound.kind, claims.namespace, claims.bound.name)
            if bound is None or bound["metadata"].get("uid") != claims.bound.uid:
                return None
            if claims.bound.kind == "Pod":
                extra += [
                    ("authentication.kubernetes.io/pod-name", (claims.bound.name,)),
                    ("authentication.kubernetes.io/pod-uid", (claims.bound.uid,)),
                ]
        username = f"system:serviceaccount:{claims.namespace}:{claims.name}"
        return Identity(
            name=username,
            username=username,
            groups=with_authenticated(
                ["system:serviceaccounts", f"system:serviceaccounts:{claims.namespace}"]
            ),
            uid=claims.uid,
            extra=tuple(sorted(extra)),
        )

    def authorize(self, ident: Identity, attrs: Attributes) -> Decision:
        return self.authorizer.authorize(ident, attrs)

    def rules(self, ident: Identity, namespace: str) -> tuple[list[dict], list[dict], list[str]]:
        """(resourceRules, nonResourceRules, errors) for a SelfSubjectRulesReview."""
        return self.authorizer.rules(ident, namespace)
