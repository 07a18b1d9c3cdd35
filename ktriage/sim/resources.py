"""The resource types the simulated API server serves, as discovery describes them.

One table drives discovery (legacy and aggregated), URL routing, field selectors,
the OpenAPI index and the table printers, so they cannot disagree.
"""

from __future__ import annotations

from dataclasses import dataclass, field

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
READ_VERBS = ("get", "list", "watch")
STATUS_VERBS = ("get", "patch", "update")


@dataclass(frozen=True)
class Subresource:
    name: str
    kind: str
    verbs: tuple[str, ...]
    group: str | None = None  # None: the parent's group
    version: str | None = None


@dataclass(frozen=True)
class ResourceType:
    group: str
    version: str
    resource: str
    kind: str
    namespaced: bool
    verbs: tuple[str, ...] = ALL_VERBS
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    subresources: tuple[Subresource, ...] = ()
    # Field labels usable in fieldSelector besides metadata.name/metadata.namespace.
    field_labels: tuple[str, ...] = ()
    stored: bool = True  # False for virtual resources (reviews): create only, nothing kept
    generation: bool = False  # metadata.generation tracks spec changes

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def list_kind(self) -> str:
        return self.kind + "List"

    @property
    def group_resource(self) -> str:
        """`pods`, `deployments.apps`: how error messages name the resource."""
        return f"{self.resource}.{self.group}" if self.group else self.resource

    def subresource(self, name: str) -> Subresource | None:
        for sub in self.subresources:
            if sub.name == name:
                return sub
        return None

    @property
    def has_status(self) -> bool:
        return self.subresource("status") is not None


from ktriage.sim.resources_more import ADMIT_GROUPS, ADMIT_RESOURCES, CUSTOM  # noqa: E402


def _workload(
    group: str,
    resource: str,
    kind: str,
    short_names: tuple[str, ...] = (),
    *,
    scalable: bool = False,
    field_labels: tuple[str, ...] = (),
) -> ResourceType:
    """A controller's workload type: namespaced, in the `all` category, its spec
    generation tracked, with a status (and, when scalable, a scale) subresource."""
    scale = (Subresource("scale", "Scale", STATUS_VERBS, "autoscaling", "v1"),) if scalable else ()
    return ResourceType(
        group,
        "v1",
        resource,
        kind,
        True,
        short_names=short_names,
        categories=("all",),
        subresources=(*scale, Subresource("status", kind, STATUS_VERBS)),
        field_labels=field_labels,
        generation=True,
    )


def _review(group: str, resource: str, kind: str, *, namespaced: bool = False) -> ResourceType:
    """A review: created to ask a question answered in the response; nothing is stored."""
    return ResourceType(group, "v1", resource, kind, namespaced, verbs=("create",), stored=False)


_EVENT_FIELDS = (
    "involvedObject.kind",
    "involvedObject.namespace",
    "involvedObject.name",
    "involvedObject.uid",
    "involvedObject.apiVersion",
    "involvedObject.resourceVersion",
    "involvedObject.fieldPath",
    "reason",
    "reportingComponent",
    "source",
    "type",
)

RESOURCES: tuple[ResourceType, ...] = (
    ResourceType(
        "",
        "v1",
        "namespaces",
        "Namespace",
        False,
        verbs=("create", "delete", "get", "list", "patch", "update", "watch"),
        short_names=("ns",),
        subresources=(
            Subresource("finalize", "Namespace", ("update",)),
            Subresource("status", "Namespace", STATUS_VERBS),
        ),
        field_labels=("status.phase",),
    ),
    ResourceType(
        "",
        "v1",
        "nodes",
        "Node",
        False,
        short_names=("no",),
        subresources=(
            Subresource(
                "proxy", "NodeProxyOptions", ("create", "delete", "get", "patch", "update")
            ),
            Subresource("status", "Node", STATUS_VERBS),
        ),
        field_labels=("spec.unschedulable",),
    ),
    ResourceType(
        "",
        "v1",
        "pods",
        "Pod",
        True,
        short_names=("po",),
        categories=("all",),
        subresources=(
            Subresource("attach", "PodAttachOptions", ("create", "get")),
            Subresource("binding", "Binding", ("create",)),
            Subresource("ephemeralcontainers", "Pod", STATUS_VERBS),
            Subresource("eviction", "Eviction", ("create",), group="policy", version="v1"),
            Subresource("exec", "PodExecOptions", ("create", "get")),
            Subresource("log", "Pod", ("get",)),
            Subresource("portforward", "PodPortForwardOptions", ("create", "get")),
            Subresource("proxy", "PodProxyOptions", ("create", "delete", "get", "patch", "update")),
            Subresource("resize", "Pod", STATUS_VERBS),
            Subresource("status", "Pod", STATUS_VERBS),
        ),
        field_labels=(
            "spec.nodeName",
            "spec.restartPolicy",
            "spec.schedulerName",
            "spec.serviceAccountName",
            "spec.hostNetwork",
            "status.phase",
            "status.podIP",
            "status.nominatedNodeName",
        ),
        generation=True,
    ),
    ResourceType(
        "", "v1", "events", "Event", True, short_names=("ev",), field_labels=_EVENT_FIELDS
    ),
    ResourceType(
        "",
        "v1",
        "services",
        "Service",
        True,
        short_names=("svc",),
        categories=("all",),
        subresources=(
            Subresource(
                "proxy", "ServiceProxyOptions", ("create", "delete", "get", "patch", "update")
            ),
            Subresource("status", "Service", STATUS_VERBS),
        ),
    ),
    ResourceType(
        "",
        "v1",
        "serviceaccounts",
        "ServiceAccount",
        True,
        short_names=("sa",),
        subresources=(
            Subresource("token", "TokenRequest", ("create",), "authentication.k8s.io", "v1"),
        ),
    ),
    ResourceType("", "v1", "secrets", "Secret", True, field_labels=("type",)),
    ResourceType("", "v1", "configmaps", "ConfigMap", True, short_names=("cm",)),
    _workload("apps", "deployments", "Deployment", ("deploy",), scalable=True),
    _workload(
        "apps",
        "replicasets",
        "ReplicaSet",
        ("rs",),
        scalable=True,
        field_labels=("status.replicas",),
    ),
    _workload("apps", "daemonsets", "DaemonSet", ("ds",)),
    _workload("apps", "statefulsets", "StatefulSet", ("sts",), scalable=True),
    _workload("batch", "jobs", "Job"),
    _workload("batch", "cronjobs", "CronJob", ("cj",)),
    ResourceType(
        "networking.k8s.io",
        "v1",
        "networkpolicies",
        "NetworkPolicy",
        True,
        short_names=("netpol",),
        generation=True,
    ),
    ResourceType("rbac.authorization.k8s.io", "v1", "roles", "Role", True),
    ResourceType("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding", True),
    ResourceType("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", False),
    ResourceType(
        "rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding", False
    ),
    ResourceType(
        "events.k8s.io",
        "v1",
        "events",
        "Event",
        True,
        short_names=("ev",),
        field_labels=(
            *_EVENT_FIELDS,
            "regarding.kind",
            "regarding.namespace",
            "regarding.name",
            "regarding.uid",
            "reportingController",
        ),
    ),
    *ADMIT_RESOURCES,
    _review(
        "authorization.k8s.io",
        "localsubjectaccessreviews",
        "LocalSubjectAccessReview",
        namespaced=True,
    ),
    _review("authorization.k8s.io", "selfsubjectaccessreviews", "SelfSubjectAccessReview"),
    _review("authorization.k8s.io", "selfsubjectrulesreviews", "SelfSubjectRulesReview"),
    _review("authorization.k8s.io", "subjectaccessreviews", "SubjectAccessReview"),
    _review("authentication.k8s.io", "selfsubjectreviews", "SelfSubjectReview"),
    _review("authentication.k8s.io", "tokenreviews", "TokenReview"),
)


@dataclass
class _Index:
    by_gvr: dict[tuple[str, str, str], ResourceType] = field(default_factory=dict)
    by_kind: dict[tuple[str, str], ResourceType] = field(default_factory=dict)
    groups: dict[str, list[str]] = field(default_factory=dict)


def _build_index() -> _Index:
    idx = _Index()
    for rt in RESOURCES:
        idx.by_gvr[(rt.group, rt.version, rt.resource)] = rt
        idx.by_kind[(rt.api_version, rt.kind)] = rt
        versions = idx.groups.setdefault(rt.group, [])
        if rt.version not in versions:
            versions.append(rt.version)
    return idx


_INDEX = _build_index()

# API groups in the order discovery lists them (core first, as kube-apiserver does).
GROUP_ORDER: tuple[str, ...] = (
    "",
    "apps",
    "batch",
    "events.k8s.io",
    "authentication.k8s.io",
    "authorization.k8s.io",
    "networking.k8s.io",
    "rbac.authorization.k8s.io",
    *ADMIT_GROUPS,
)


def lookup(group: str, version: str, resource: str) -> ResourceType | None:
    key = (group, version, resource)
    return _INDEX.by_gvr.get(key) or CUSTOM.by_gvr.get(key)


def by_kind(api_version: str, kind: str) -> ResourceType | None:
    return _INDEX.by_kind.get((api_version, kind)) or CUSTOM.by_kind.get((api_version, kind))


def group_versions(group: str) -> list[str]:
    return list(_INDEX.groups.get(group, ())) or CUSTOM.group_versions(group)


def resources_of(group: str, version: str) -> list[ResourceType]:
    return [rt for rt in RESOURCES if rt.group == group and rt.version == version] or [
        rt for rt in CUSTOM.by_gvr.values() if rt.group == group and rt.version == version
    ]


def served_groups() -> tuple[str, ...]:
    """GROUP_ORDER and then the groups of the custom resources being served."""
    return GROUP_ORDER + tuple(g for g in CUSTOM.groups() if g not in GROUP_ORDER)
