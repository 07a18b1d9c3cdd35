"""Impersonation headers as kube-apiserver's impersonation filter reads and authorizes
them (`k8s.io/apiserver/pkg/endpoints/filters/impersonation.go`)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import unquote

from ktriage.sim.auth.authentication import AUTHENTICATED, Identity
from ktriage.sim.auth.authorization import Attributes

USER = "impersonate-user"
GROUP = "impersonate-group"
UID = "impersonate-uid"
EXTRA_PREFIX = "impersonate-extra-"
SA_PREFIX = "system:serviceaccount:"


@dataclass
class ImpersonationRequest:
    user: str
    groups: list[str] = field(default_factory=list)
    uid: str | None = None
    extra: dict[str, list[str]] = field(default_factory=dict)

    def service_account(self) -> tuple[str, str] | None:
        if not self.user.startswith(SA_PREFIX):
            return None
        parts = self.user[len(SA_PREFIX) :].split(":")
        if len(parts) != 2 or not all(parts):
            return None
        return parts[0], parts[1]

    def attributes(self) -> list[Attributes]:
        """One `impersonate` check per thing asked for, as the real filter makes them."""
        sa = self.service_account()
        if sa is not None:
            checks = [
                Attributes(
                    "impersonate",
                    True,
                    api_version="v1",
                    resource="serviceaccounts",
                    namespace=sa[0],
                    name=sa[1],
                )
            ]
        else:
            checks = [
                Attributes("impersonate", True, api_version="v1", resource="users", name=self.user)
            ]
        checks += [
            Attributes("impersonate", True, api_version="v1", resource="groups", name=g)
            for g in self.groups
        ]
        for key, values in self.extra.items():
            checks += [
                Attributes(
                    "impersonate",
                    True,
                    api_group="authentication.k8s.io",
                    api_version="v1",
                    resource="userextras",
                    subresource=key,
                    name=v,
                )
                for v in values
            ]
        if self.uid is not None:
            checks.append(
                Attributes(
                    "impersonate",
                    True,
                    api_group="authentication.k8s.io",
                    api_version="v1",
                    resource="uids",
                    name=self.uid,
                )
            )
        return checks  # fmt: skip

    def identity(self) -> Identity:
        """Who the request runs as: exactly the requested groups (a ServiceAccount's own
        groups when none were requested) plus system:authenticated."""
        groups = list(self.groups)
        sa = self.service_account()
        if sa is not None and not groups:
            groups = ["system:serviceaccounts", f"system:serviceaccounts:{sa[0]}"]
        groups = list(dict.fromkeys(groups))
        if self.user == "system:anonymous":
            if "system:unauthenticated" not in groups:
                groups.append("system:unauthenticated")
        elif AUTHENTICATED not in groups:
            groups.append(AUTHENTICATED)
        return Identity(
            name=self.user,
            username=self.user,
            groups=tuple(groups),
            uid=self.uid or "",
            extra=tuple(sorted((k, tuple(v)) for k, v in self.extra.items())),
        )


def parse_headers(headers: Iterable[tuple[str, str]] | object) -> ImpersonationRequest | str | None:
    """The impersonation asked for; None when none; an error message when groups, extras or
    a uid come without a user."""
    items = headers.items() if hasattr(headers, "items") else headers  # type: ignore[union-attr]
    user: str | None = None
    groups: list[str] = []
    uid: str | None = None
    extra: dict[str, list[str]] = {}
    for name, value in items:  # type: ignore[union-attr]
        lower = name.lower()
        if lower == USER:
            user = value if user is None else user
        elif lower == GROUP:
            groups.append(value)
        elif lower == UID:
            uid = value if uid is None else uid
        elif lower.startswith(EXTRA_PREFIX) and len(lower) > len(EXTRA_PREFIX):
            key = unquote(lower[len(EXTRA_PREFIX) :])
            extra.setdefault(key, []).append(value)
    if user is None:
        if groups or extra or uid is not None:
            asked = [f"Group {g}" for g in groups] + [f"Extra {k}" for k in extra]
            asked += [f"UID {uid}"] if uid is not None else []
            return f"requested [{' '.join(asked)}] without impersonating a user"
        return None
    return ImpersonationRequest(user=user, groups=groups, uid=uid, extra=extra)
