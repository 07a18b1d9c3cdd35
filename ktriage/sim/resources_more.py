"""The served types beyond the core workloads: coordination (Leases), policy
(PodDisruptionBudgets), certificates (CSRs), admission webhook configurations,
CustomResourceDefinitions and the metrics API. `resources.RESOURCES` includes them."""

from __future__ import annotations

import threading

from ktriage.sim.resources import ALL_VERBS, STATUS_VERBS, ResourceType, Subresource

ADMIT_GROUPS: tuple[str, ...] = (
    "policy",
    "certificates.k8s.io",
    "coordination.k8s.io",
    "admissionregistration.k8s.io",
    "apiextensions.k8s.io",
    "metrics.k8s.io",
)

ADMIT_RESOURCES: tuple[ResourceType, ...] = (
    ResourceType("coordination.k8s.io", "v1", "leases", "Lease", True),
    ResourceType(
        "policy",
        "v1",
        "poddisruptionbudgets",
        "PodDisruptionBudget",
        True,
        short_names=("pdb",),
        subresources=(Subresource("status", "PodDisruptionBudget", STATUS_VERBS),),
        generation=True,
    ),
    ResourceType(
        "certificates.k8s.io",
        "v1",
        "certificatesigningrequests",
        "CertificateSigningRequest",
        False,
        short_names=("csr",),
        subresources=(
            Subresource("approval", "CertificateSigningRequest", STATUS_VERBS),
            Subresource("status", "CertificateSigningRequest", STATUS_VERBS),
        ),
    ),
    ResourceType(
        "admissionregistration.k8s.io",
        "v1",
        "mutatingwebhookconfigurations",
        "MutatingWebhookConfiguration",
        False,
        categories=("api-extensions",),
        generation=True,
    ),
    ResourceType(
        "admissionregistration.k8s.io",
        "v1",
        "validatingwebhookconfigurations",
        "ValidatingWebhookConfiguration",
        False,
        categories=("api-extensions",),
        generation=True,
    ),
    ResourceType(
        "apiextensions.k8s.io",
        "v1",
        "customresourcedefinitions",
        "CustomResourceDefinition",
        False,
        verbs=ALL_VERBS,
        short_names=("crd", "crds"),
        categories=("api-extensions",),
        subresources=(Subresource("status", "CustomResourceDefinition", STATUS_VERBS),),
        generation=True,
    ),
    ResourceType("metrics.k8s.io", "v1beta1", "nodes", "NodeMetrics", False, verbs=("get", "list")),
    ResourceType("metrics.k8s.io", "v1beta1", "pods", "PodMetrics", True, verbs=("get", "list")),
)


class CustomResources:
    """The custom resources CustomResourceDefinitions make served (see controllers/crd).

    Shared by the clusters of one process, as the resource table is: a definition made in
    one simulated cluster is served by the others until it is deleted."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.by_gvr: dict[tuple[str, str, str], ResourceType] = {}
        self.by_kind: dict[tuple[str, str], ResourceType] = {}

    def add(self, rt: ResourceType) -> None:
        with self._lock:
            by_gvr = dict(self.by_gvr)
            by_gvr[(rt.group, rt.version, rt.resource)] = rt
            by_kind = dict(self.by_kind)
            by_kind[(rt.api_version, rt.kind)] = rt
            self.by_gvr, self.by_kind = by_gvr, by_kind

    def remove(self, group: str, resource: str) -> list[ResourceType]:
        with self._lock:
            gone = [
                rt for rt in self.by_gvr.values() if (rt.group, rt.resource) == (group, resource)
            ]
            self.by_gvr = {k: v for k, v in self.by_gvr.items() if v not in gone}
            self.by_kind = {k: v for k, v in self.by_kind.items() if v not in gone}
            return gone

    def groups(self) -> list[str]:
        out: list[str] = []
        for rt in self.by_gvr.values():
            if rt.group not in out:
                out.append(rt.group)
        return out

    def group_versions(self, group: str) -> list[str]:
        out: list[str] = []
        for rt in self.by_gvr.values():
            if rt.group == group and rt.version not in out:
                out.append(rt.version)
        return out


CUSTOM = CustomResources()
