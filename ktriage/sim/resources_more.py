"""The served types beyond the core workloads: coordination (Leases), policy
(PodDisruptionBudgets), certificates (CSRs), admission webhook configurations,
CustomResourceDefinitions and the metrics API. `resources.RESOURCES` includes them."""

from __future__ import annotations

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
