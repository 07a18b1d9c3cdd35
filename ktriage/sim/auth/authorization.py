"""Authorization: the attributes of a request, a decision, and kube-apiserver's 403
message. The decisions themselves are the RBAC authorizer's (`rbac.py`)."""

from __future__ import annotations

from dataclasses import dataclass


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
