"""The admission chain a write goes through after decoding: the kind's validation (422),
then the validating admission plugins (today Pod Security, 403 or warnings)."""

from __future__ import annotations

from typing import Any

from ktriage.sim.admission import certificates, podsecurity
from ktriage.sim.admission.fielderrors import invalid
from ktriage.sim.admission.validation import validate
from ktriage.sim.resources import ResourceType
from ktriage.sim.server import errors

# Subresources whose writes Pod Security checks (the others cannot change the pod spec).
CHECKED_SUBRESOURCES = ("", "ephemeralcontainers")


def admit(
    store: Any,
    rt: ResourceType,
    obj: dict,
    old: dict | None,
    subresource: str = "",
    user: Any = None,
    audit_annotations: dict[str, str] | None = None,
) -> podsecurity.Decision:
    """Validate `obj` (an update of `old` when given) and run Pod Security on it; raise the
    API error that rejects it, or return the warnings and audit annotations to attach.
    `user` (the request's identity) is what a CertificateSigningRequest records; a
    rejection's audit annotations go into `audit_annotations`."""
    if rt.kind == "CertificateSigningRequest":
        certificates.prepare(obj, old, user)
    validate(rt, obj, old)
    if rt.resource == "namespaces" and rt.group == "":
        _namespace_labels(rt, obj)
        return podsecurity.Decision(warnings=podsecurity.existing_pods_warnings(store, obj, old))
    if subresource not in CHECKED_SUBRESOURCES or not rt.namespaced:
        return podsecurity.Decision()
    spec = podsecurity.pod_spec_of(rt.group, rt.kind, obj)
    if spec is None:
        return podsecurity.Decision()
    if old is not None and podsecurity.pod_spec_of(rt.group, rt.kind, old) == spec:
        return podsecurity.Decision()  # metadata-only updates are not re-checked
    meta = obj["metadata"]
    namespace = store.peek("v1", "Namespace", None, meta.get("namespace") or "")
    decision = podsecurity.admit(
        rt.group,
        rt.kind,
        rt.group_resource,
        meta.get("name") or "",
        obj,
        podsecurity.labels_of(namespace),
    )
    if decision.forbidden:
        if audit_annotations is not None:  # the rejected request's audit event says why too
            audit_annotations.update(decision.audit_annotations)
        raise errors.ApiError(
            errors.status(
                403,
                "Forbidden",
                decision.forbidden,
                {"name": meta.get("name") or "", "kind": rt.resource},
            )
        )
    return decision


def _namespace_labels(rt: ResourceType, obj: dict) -> None:
    """Pod Security validates its own namespace labels: an unknown level is Invalid."""
    labels = podsecurity.labels_of(obj)
    causes = []
    for mode in ("enforce", "audit", "warn"):
        key = podsecurity.LABEL_PREFIX + mode
        if key in labels and labels[key] not in podsecurity.LEVELS:
            causes.append(
                invalid(
                    f"metadata.labels[{key}]",
                    labels[key],
                    "must be one of privileged, baseline, restricted",
                )
            )
    if causes:
        raise errors.invalid(rt, obj["metadata"].get("name") or "", causes)
