"""Authorization: what an identity may do, decided from its role.

Today the roles are fixed (the seam for an RBAC authorizer that reads Roles and
RoleBindings from the store):

- `admin`: allowed everything (`system:masters`);
- `readonly`: get/list/watch everything but secrets, pod logs included, as the
  built-in `view` ClusterRole grants;
- `basic`: the self reviews (SelfSubjectAccessReview, SelfSubjectRulesReview,
  SelfSubjectReview) and the discovery documents, as `system:basic-user` and
  `system:discovery` allow; `readonly` has those too;
- `none`: nothing at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ktriage.sim.auth.authentication import Identity

# admin: everything; readonly: the `view` role; basic: only what every authenticated user
# may do (self reviews, discovery); none: nothing at all.
ROLES = ("admin", "readonly", "basic", "none")
READ_VERBS = frozenset({"get", "list", "watch"})
READABLE_SUBRESOURCES = frozenset({"", "log", "status", "scale"})
SELF_REVIEWS = frozenset(
    {
        ("authorization.k8s.io", "selfsubjectaccessreviews"),
        ("authorization.k8s.io", "selfsubjectrulesreviews"),
        ("authentication.k8s.io", "selfsubjectreviews"),
    }
)
PUBLIC_PATH_PREFIXES = ("/api", "/apis", "/version", "/openapi", "/healthz", "/livez", "/readyz")


@dataclass(frozen=True)
class Attributes:
    """What a request wants to do, as an authorizer sees it."""

    verb: str
    resource_request: bool
    path: str = ""
    api_group: str = ""
    api_version: str = ""
    resource: str = ""
    subresource: str = ""
    namespace: str = ""
    name: str = ""


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str = ""  # the audit annotation authorization.k8s.io/reason


def forbidden_message(user: str, attrs: Attributes) -> str:
    """kube-apiserver's 403 message for these attributes."""
    if not attrs.resource_request:
        return f'forbidden: User "{user}" cannot {attrs.verb} path "{attrs.path}"'
    resource = attrs.resource + (f"/{attrs.subresource}" if attrs.subresource else "")
    scope = f'in the namespace "{attrs.namespace}"' if attrs.namespace else "at the cluster scope"
    what = (
        f'User "{user}" cannot {attrs.verb} resource "{resource}" '
        f'in API group "{attrs.api_group}" {scope}'
    )
    qualified = attrs.resource + (f".{attrs.api_group}" if attrs.api_group else "")
    if attrs.name:
        return f'{qualified} "{attrs.name}" is forbidden: {what}'
    return f"{qualified} is forbidden: {what}"


class RoleAuthorizer:
    """Decides from an identity's fixed role (see the module docstring)."""

    def authorize(self, ident: Identity, attrs: Attributes) -> Decision:
        """Allowed or not, with the reason an RBAC authorizer would give."""
        if ident.role == "admin":
            # system:masters is allowed by the privileged-group authorizer: no RBAC reason.
            return Decision(True, "")
        if ident.role == "none":
            return Decision(False, "")
        if not attrs.resource_request:
            if attrs.verb == "get" and attrs.path.startswith(PUBLIC_PATH_PREFIXES):
                return Decision(
                    True,
                    'RBAC: allowed by ClusterRoleBinding "system:discovery" of ClusterRole '
                    '"system:discovery" to Group "system:authenticated"',
                )
            return Decision(False, "")
        if (attrs.api_group, attrs.resource) in SELF_REVIEWS and attrs.verb == "create":
            return Decision(
                True,
                'RBAC: allowed by ClusterRoleBinding "system:basic-user" of ClusterRole '
                '"system:basic-user" to Group "system:authenticated"',
            )
        if ident.role == "readonly":
            if (
                attrs.verb in READ_VERBS
                and attrs.resource != "secrets"
                and attrs.subresource in READABLE_SUBRESOURCES
                and attrs.resource not in ("*",)
            ):
                return Decision(
                    True,
                    f'RBAC: allowed by ClusterRoleBinding "sim-{ident.name}" of ClusterRole '
                    f'"view" to User "{ident.username}"',
                )
        return Decision(False, "")

    def rules(self, ident: Identity) -> tuple[list[dict], list[dict]]:
        """(resourceRules, nonResourceRules) for a SelfSubjectRulesReview."""
        basic = [
            {"verbs": ["create"], "apiGroups": ["authorization.k8s.io"],
             "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"]},
            {"verbs": ["create"], "apiGroups": ["authentication.k8s.io"],
             "resources": ["selfsubjectreviews"]},
        ]  # fmt: skip
        discovery = [
            {"verbs": ["get"], "nonResourceURLs": [p, p + "/*"]} for p in PUBLIC_PATH_PREFIXES
        ]
        if ident.role == "admin":
            return (
                [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}, *basic],
                [{"verbs": ["*"], "nonResourceURLs": ["*"]}, *discovery],
            )
        if ident.role == "readonly":
            read = {
                "verbs": ["get", "list", "watch"],
                "apiGroups": ["", "apps", "batch", "events.k8s.io", "networking.k8s.io",
                              "rbac.authorization.k8s.io"],
                "resources": ["namespaces", "nodes", "pods", "pods/log", "pods/status",
                              "events", "services", "serviceaccounts", "configmaps",
                              "deployments", "replicasets", "daemonsets", "statefulsets",
                              "jobs", "cronjobs", "networkpolicies",
                              "roles", "rolebindings", "clusterroles", "clusterrolebindings"],
            }  # fmt: skip
            return [read, *basic], discovery
        if ident.role == "basic":
            return basic, discovery
        return [], []
