"""Validation of objects before they are stored, as kube-apiserver's registry strategies do:
object metadata (names, labels, annotations) for every kind, then the kind's own rules
(pod specs, workloads, NetworkPolicies, bindings) and, on update, its immutable fields.
422 Invalid with one cause per problem, worded as apimachinery's field errors."""

from __future__ import annotations

from ktriage.sim.admission import certificates, immutable, validation_netpol, validation_pod
from ktriage.sim.admission.fielderrors import (
    DNS_LABEL_MESSAGE,
    DNS_SUBDOMAIN_MESSAGE,
    LABEL_VALUE_MESSAGE,
    LABEL_VALUE_RE,
    Cause,
    dns_label,
    dns_subdomain,
    invalid,
    qualified_name,
    required,
)
from ktriage.sim.resources import ResourceType
from ktriage.sim.server import errors

__all__ = ["DNS_LABEL_MESSAGE", "DNS_SUBDOMAIN_MESSAGE", "labels", "selector", "validate"]

ANNOTATIONS_MAX_BYTES = 256 * 1024
SELECTOR_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")


def validate(rt: ResourceType, obj: dict, old: dict | None = None) -> None:
    """Field validation kube-apiserver does for these kinds; Invalid (422) naming each cause."""
    meta = obj["metadata"]
    name = meta.get("name") or ""
    causes = _name(rt, name)
    causes += labels("metadata.labels", meta.get("labels"))
    causes += _annotations(meta.get("annotations"))
    causes += _kind_rules(rt, obj)
    if old is not None:
        causes += immutable.check(rt, obj, old)
    if causes:
        raise errors.invalid(rt, name, causes)


def _name(rt: ResourceType, name: str) -> list[Cause]:
    if rt.group == "rbac.authorization.k8s.io":
        if "/" in name or "%" in name or name in (".", ".."):
            return [invalid("metadata.name", name, "may not contain '/' or '%'")]
        return []
    if rt.resource == "namespaces":
        return dns_label("metadata.name", name)
    return dns_subdomain("metadata.name", name)


def labels(field: str, values: object) -> list[Cause]:
    """Label keys are qualified names; values are at most 63 characters of a restricted set."""
    if not isinstance(values, dict):
        return []
    out: list[Cause] = []
    for key, value in values.items():
        out += qualified_name(field, str(key))
        text = value if isinstance(value, str) else str(value)
        if len(text) > 63:
            out.append(invalid(field, text, "must be no more than 63 characters"))
        if not LABEL_VALUE_RE.match(text):
            out.append(invalid(field, text, LABEL_VALUE_MESSAGE))
    return out


def _annotations(values: object) -> list[Cause]:
    if not isinstance(values, dict):
        return []
    out: list[Cause] = []
    total = 0
    for key, value in values.items():
        out += qualified_name("metadata.annotations", str(key).lower())
        total += len(str(key).encode()) + len(str(value).encode())
    if total > ANNOTATIONS_MAX_BYTES:
        out.append(
            (
                "metadata.annotations",
                "FieldValueTooLong",
                f"Too long: must have at most {ANNOTATIONS_MAX_BYTES} bytes",
            )
        )
    return out


def selector(field: str, sel: object) -> list[Cause]:
    """A LabelSelector: its matchLabels as labels, its expressions' operators and values."""
    if not isinstance(sel, dict):
        return []
    out = labels(f"{field}.matchLabels", sel.get("matchLabels"))
    for i, expr in enumerate(sel.get("matchExpressions") or []):
        path = f"{field}.matchExpressions[{i}]"
        if not isinstance(expr, dict):
            out.append(required(path))
            continue
        op = expr.get("operator")
        values = expr.get("values") or []
        if op in ("In", "NotIn") and not values:
            out.append(
                required(f"{path}.values", "must be specified when `operator` is 'In' or 'NotIn'")
            )
        elif op in ("Exists", "DoesNotExist") and values:
            out.append(
                (
                    f"{path}.values",
                    "FieldValueForbidden",
                    "Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                )
            )
        elif op not in SELECTOR_OPERATORS:
            out.append(invalid(f"{path}.operator", op, "not a valid selector operator"))
        out += qualified_name(f"{path}.key", str(expr.get("key") or ""))
    return out


def _kind_rules(rt: ResourceType, obj: dict) -> list[Cause]:
    spec = obj.get("spec") if isinstance(obj.get("spec"), dict) else {}
    if rt.kind == "Pod" and rt.group == "":
        return validation_pod.pod_spec("spec", spec)
    if rt.group in ("apps", "batch") and rt.kind != "CronJob":
        return _workload(rt, spec)
    if rt.kind == "CronJob":
        job = ((spec.get("jobTemplate") or {}).get("spec")) or {}
        return validation_pod.template("spec.jobTemplate.spec.template", job.get("template"))
    if rt.kind == "NetworkPolicy" and rt.group == "networking.k8s.io":
        return validation_netpol.spec(spec, selector)
    if rt.kind == "CustomResourceDefinition":
        return _crd(obj, spec)
    if rt.kind == "CertificateSigningRequest":
        return certificates.validate(obj)
    if rt.kind in ("RoleBinding", "ClusterRoleBinding"):
        return _role_ref(obj.get("roleRef") or {})
    return []


def _workload(rt: ResourceType, spec: dict) -> list[Cause]:
    out: list[Cause] = []
    sel = spec.get("selector")
    template = spec.get("template") if isinstance(spec.get("template"), dict) else {}
    if rt.kind != "Job":
        if not sel:
            out.append(required("spec.selector"))
        else:
            out += selector("spec.selector", sel)
    out += validation_pod.template("spec.template", template)
    tmpl_labels = (template.get("metadata") or {}).get("labels") or {}
    match = (sel or {}).get("matchLabels") if isinstance(sel, dict) else None
    if rt.kind != "Job" and isinstance(match, dict) and match:
        if any(tmpl_labels.get(k) != v for k, v in match.items()):
            out.append(
                invalid(
                    "spec.template.metadata.labels",
                    tmpl_labels,
                    "`selector` does not match template `labels`",
                )
            )
    replicas = spec.get("replicas")
    if isinstance(replicas, int) and replicas < 0:
        out.append(invalid("spec.replicas", replicas, "must be greater than or equal to 0"))
    return out


def _role_ref(ref: dict) -> list[Cause]:
    out: list[Cause] = []
    if not ref.get("name"):
        out.append(required("roleRef.name"))
    if ref.get("kind") not in ("Role", "ClusterRole"):
        out.append(
            (
                "roleRef.kind",
                "FieldValueNotSupported",
                f'Unsupported value: "{ref.get("kind", "")}": '
                'supported values: "ClusterRole", "Role"',
            )
        )
    return out


def _crd(obj: dict, spec: dict) -> list[Cause]:
    names = spec.get("names") if isinstance(spec.get("names"), dict) else {}
    out: list[Cause] = []
    for path, value in (
        ("spec.group", spec.get("group")),
        ("spec.names.plural", names.get("plural")),
        ("spec.names.kind", names.get("kind")),
    ):
        if not value:
            out.append(required(path))
    if not spec.get("versions"):
        out.append(
            required("spec.versions", "must have exactly one version marked as storage version")
        )
    name = obj["metadata"].get("name") or ""
    if spec.get("group") and names.get("plural") and name != f"{names['plural']}.{spec['group']}":
        out.append(invalid("metadata.name", name, 'must be spec.names.plural+"."+spec.group'))
    return out
