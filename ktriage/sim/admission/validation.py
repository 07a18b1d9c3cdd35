"""Validation of objects before they are stored, as kube-apiserver's registry strategies do
(names, required fields); 422 Invalid with one cause per problem."""

from __future__ import annotations

import re

from ktriage.sim.resources import ResourceType
from ktriage.sim.server import errors

_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS_LABEL_MESSAGE = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
    "and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', "
    "regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)
DNS_SUBDOMAIN_MESSAGE = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' "
    "or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex "
    "used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)


def validate(rt: ResourceType, obj: dict) -> None:
    """Field validation kube-apiserver does for these kinds; Invalid (422) naming each cause."""
    meta = obj["metadata"]
    name = meta.get("name") or ""
    causes: list[tuple[str, str, str]] = []
    if rt.group == "rbac.authorization.k8s.io":
        if "/" in name or "%" in name or name in (".", ".."):
            causes.append(
                (
                    "metadata.name",
                    "FieldValueInvalid",
                    f"Invalid value: \"{name}\": may not contain '/' or '%'",
                )
            )
    elif rt.resource == "namespaces":
        if not _DNS_LABEL.match(name) or len(name) > 63:
            causes.append(
                (
                    "metadata.name",
                    "FieldValueInvalid",
                    f'Invalid value: "{name}": {DNS_LABEL_MESSAGE}',
                )
            )
    elif not _DNS_SUBDOMAIN.match(name) or len(name) > 253:
        causes.append(
            (
                "metadata.name",
                "FieldValueInvalid",
                f'Invalid value: "{name}": {DNS_SUBDOMAIN_MESSAGE}',
            )
        )
    spec = obj.get("spec") if isinstance(obj.get("spec"), dict) else {}
    if rt.kind == "Pod" and rt.group == "":
        containers = spec.get("containers") or []
        if not containers:
            causes.append(("spec.containers", "FieldValueRequired", "Required value"))
        seen: set[str] = set()
        for i, c in enumerate(containers):
            cname = c.get("name") if isinstance(c, dict) else None
            if not cname:
                causes.append(
                    (f"spec.containers[{i}].name", "FieldValueRequired", "Required value")
                )
            elif cname in seen:
                causes.append(
                    (
                        f"spec.containers[{i}].name",
                        "FieldValueDuplicate",
                        f'Duplicate value: "{cname}"',
                    )
                )
            else:
                seen.add(cname)
            if isinstance(c, dict) and not c.get("image"):
                causes.append(
                    (f"spec.containers[{i}].image", "FieldValueRequired", "Required value")
                )
    elif rt.kind in ("Deployment", "ReplicaSet", "DaemonSet"):
        if not spec.get("selector"):
            causes.append(("spec.selector", "FieldValueRequired", "Required value"))
        if not ((spec.get("template") or {}).get("spec") or {}).get("containers"):
            causes.append(("spec.template.spec.containers", "FieldValueRequired", "Required value"))
    elif rt.kind in ("RoleBinding", "ClusterRoleBinding"):
        ref = obj.get("roleRef") or {}
        if not ref.get("name"):
            causes.append(("roleRef.name", "FieldValueRequired", "Required value"))
        if ref.get("kind") not in ("Role", "ClusterRole"):
            causes.append(
                (
                    "roleRef.kind",
                    "FieldValueNotSupported",
                    f'Unsupported value: "{ref.get("kind", "")}": '
                    'supported values: "ClusterRole", "Role"',
                )
            )
    if causes:
        raise errors.invalid(rt, name, causes)
