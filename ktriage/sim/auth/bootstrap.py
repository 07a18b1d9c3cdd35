"""The ClusterRoles and ClusterRoleBindings kube-apiserver creates at start
(`plugin/pkg/auth/authorizer/rbac/bootstrappolicy`), with their real rules, and the
bindings that give the sim's kubeconfig identities their rights.

`admin`, `edit` and `view` are aggregated: their rules are filled by the aggregation
controller from the `system:aggregate-to-*` roles (and from any ClusterRole labelled
like them). `view` grants no Secrets, no Nodes and nothing of RBAC.
"""

from __future__ import annotations

from typing import Any

from ktriage.sim.storage.store import ClusterStore

RBAC = "rbac.authorization.k8s.io/v1"
READ = ["get", "list", "watch"]
WRITE = ["create", "delete", "deletecollection", "patch", "update"]
AGGREGATE = "rbac.authorization.k8s.io/aggregate-to-"
# The `sim-readonly` context's user is bound to `view`, and, as a triage viewer needs
# nodes (which `view` does not grant), to a node reader of the sim's own.
VIEWER_BINDING = "sim-viewer"
NODE_READER = "sim:node-reader"


def _rule(groups: list[str], resources: list[str], verbs: list[str]) -> dict[str, Any]:
    return {"apiGroups": groups, "resources": resources, "verbs": verbs}


AGGREGATE_TO_VIEW = [
    _rule([""], ["configmaps", "endpoints", "persistentvolumeclaims",
                 "persistentvolumeclaims/status", "pods", "replicationcontrollers",
                 "replicationcontrollers/scale", "serviceaccounts", "services",
                 "services/status"], READ),
    _rule([""], ["bindings", "events", "limitranges", "namespaces/status", "pods/log",
                 "pods/status", "replicationcontrollers/status", "resourcequotas",
                 "resourcequotas/status"], READ),
    _rule([""], ["namespaces"], READ),
    _rule(["discovery.k8s.io"], ["endpointslices"], READ),
    _rule(["apps"], ["controllerrevisions", "daemonsets", "daemonsets/status", "deployments",
                     "deployments/scale", "deployments/status", "replicasets",
                     "replicasets/scale", "replicasets/status", "statefulsets",
                     "statefulsets/scale", "statefulsets/status"], READ),
    _rule(["autoscaling"], ["horizontalpodautoscalers", "horizontalpodautoscalers/status"],
          READ),
    _rule(["batch"], ["cronjobs", "cronjobs/status", "jobs", "jobs/status"], READ),
    _rule(["extensions"], ["daemonsets", "daemonsets/status", "deployments",
                           "deployments/scale", "deployments/status", "ingresses",
                           "ingresses/status", "networkpolicies", "replicasets",
                           "replicasets/scale", "replicasets/status",
                           "replicationcontrollers/scale"], READ),
    _rule(["policy"], ["poddisruptionbudgets", "poddisruptionbudgets/status"], READ),
    _rule(["networking.k8s.io"], ["ingresses", "ingresses/status", "networkpolicies"], READ),
]  # fmt: skip

AGGREGATE_TO_EDIT = [
    _rule([""], ["pods/attach", "pods/exec", "pods/portforward", "pods/proxy", "secrets",
                 "services/proxy"], READ),
    _rule([""], ["serviceaccounts"], ["impersonate"]),
    _rule([""], ["pods", "pods/attach", "pods/exec", "pods/portforward", "pods/proxy"], WRITE),
    _rule([""], ["pods/eviction"], ["create"]),
    _rule([""], ["configmaps", "events", "persistentvolumeclaims", "replicationcontrollers",
                 "replicationcontrollers/scale", "secrets", "serviceaccounts", "services",
                 "services/proxy"], WRITE),
    _rule([""], ["serviceaccounts/token"], ["create"]),
    _rule(["apps"], ["daemonsets", "deployments", "deployments/rollback", "deployments/scale",
                     "replicasets", "replicasets/scale", "statefulsets",
                     "statefulsets/scale"], WRITE),
    _rule(["autoscaling"], ["horizontalpodautoscalers"], WRITE),
    _rule(["batch"], ["cronjobs", "jobs"], WRITE),
    _rule(["extensions"], ["daemonsets", "deployments", "deployments/rollback",
                           "deployments/scale", "ingresses", "networkpolicies", "replicasets",
                           "replicasets/scale", "replicationcontrollers/scale"], WRITE),
    _rule(["policy"], ["poddisruptionbudgets"], WRITE),
    _rule(["networking.k8s.io"], ["ingresses", "networkpolicies"], WRITE),
    _rule(["coordination.k8s.io"], ["leases"],
          ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]),
]  # fmt: skip

AGGREGATE_TO_ADMIN = [
    _rule(["authorization.k8s.io"], ["localsubjectaccessreviews"], ["create"]),
    _rule(["rbac.authorization.k8s.io"], ["rolebindings", "roles"],
          ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]),
]  # fmt: skip


def _meta(name: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "name": name,
        "labels": {"kubernetes.io/bootstrapping": "rbac-defaults", **(labels or {})},
        "annotations": {"rbac.authorization.kubernetes.io/autoupdate": "true"},
    }


def _cluster_role(
    name: str,
    rules: list[dict[str, Any]] | None,
    labels: dict[str, str] | None = None,
    aggregate_from: str | None = None,
) -> dict[str, Any]:
    role: dict[str, Any] = {
        "apiVersion": RBAC,
        "kind": "ClusterRole",
        "metadata": _meta(name, labels),
        "rules": rules,
    }
    if aggregate_from:
        role["aggregationRule"] = {
            "clusterRoleSelectors": [{"matchLabels": {AGGREGATE + aggregate_from: "true"}}]
        }
        role["rules"] = []
    return role


def _binding(name: str, role: str, subjects: list[tuple[str, str]]) -> dict[str, Any]:
    return {
        "apiVersion": RBAC,
        "kind": "ClusterRoleBinding",
        "metadata": _meta(name),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
        "subjects": [
            {"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": subject}
            for kind, subject in subjects
        ],
    }


def cluster_roles() -> list[dict[str, Any]]:
    discovery_urls = ["/api", "/api/*", "/apis", "/apis/*", "/healthz", "/livez", "/openapi",
                      "/openapi/*", "/readyz", "/version", "/version/"]  # fmt: skip
    public_urls = ["/healthz", "/livez", "/readyz", "/version", "/version/"]
    issuer_urls = ["/.well-known/openid-configuration", "/.well-known/openid-configuration/",
                   "/openid/v1/jwks", "/openid/v1/jwks/"]  # fmt: skip
    return [
        _cluster_role("admin", None, aggregate_from="admin"),
        _cluster_role(
            "cluster-admin",
            [_rule(["*"], ["*"], ["*"]), {"nonResourceURLs": ["*"], "verbs": ["*"]}],
        ),
        _cluster_role("edit", None, {AGGREGATE + "admin": "true"}, aggregate_from="edit"),
        _cluster_role("view", None, {AGGREGATE + "edit": "true"}, aggregate_from="view"),
        _cluster_role(
            "system:aggregate-to-admin", AGGREGATE_TO_ADMIN, {AGGREGATE + "admin": "true"}
        ),
        _cluster_role("system:aggregate-to-edit", AGGREGATE_TO_EDIT, {AGGREGATE + "edit": "true"}),
        _cluster_role("system:aggregate-to-view", AGGREGATE_TO_VIEW, {AGGREGATE + "view": "true"}),
        _cluster_role(
            "system:basic-user",
            [
                _rule(
                    ["authorization.k8s.io"],
                    ["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
                    ["create"],
                ),
                _rule(["authentication.k8s.io"], ["selfsubjectreviews"], ["create"]),
            ],
        ),
        _cluster_role("system:discovery", [{"nonResourceURLs": discovery_urls, "verbs": ["get"]}]),
        _cluster_role(
            "system:public-info-viewer", [{"nonResourceURLs": public_urls, "verbs": ["get"]}]
        ),
        {
            "apiVersion": RBAC,
            "kind": "ClusterRole",
            "metadata": {"name": NODE_READER},
            "rules": [_rule([""], ["nodes"], READ)],
        },
        _cluster_role(
            "system:service-account-issuer-discovery",
            [{"nonResourceURLs": issuer_urls, "verbs": ["get"]}],
        ),
    ]


def cluster_role_bindings(viewer: str) -> list[dict[str, Any]]:
    authenticated = ("Group", "system:authenticated")
    return [
        _binding("cluster-admin", "cluster-admin", [("Group", "system:masters")]),
        _binding("system:basic-user", "system:basic-user", [authenticated]),
        _binding("system:discovery", "system:discovery", [authenticated]),
        _binding(
            "system:public-info-viewer",
            "system:public-info-viewer",
            [authenticated, ("Group", "system:unauthenticated")],
        ),
        _binding(
            "system:service-account-issuer-discovery",
            "system:service-account-issuer-discovery",
            [("Group", "system:serviceaccounts")],
        ),
        _sim_binding(VIEWER_BINDING, "view", viewer),
        _sim_binding(VIEWER_BINDING + "-nodes", NODE_READER, viewer),
    ]


def _sim_binding(name: str, role: str, user: str) -> dict[str, Any]:
    """A binding of the sim's own (not a bootstrap default: no bootstrapping label)."""
    return dict(_binding(name, role, [("User", user)]), metadata={"name": name})


def seed(store: ClusterStore, viewer: str) -> None:
    """Create the bootstrap roles and bindings that are missing (existing ones are kept)."""
    for obj in [*cluster_roles(), *cluster_role_bindings(viewer)]:
        if store.get_obj(RBAC, obj["kind"], None, obj["metadata"]["name"]) is None:
            store.apply(obj)
