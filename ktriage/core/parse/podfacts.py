"""What an audited pod write says about the pod that links: its own address and the
service account it runs as.

The kubelet writes a pod's address into its status (`patch pods/status`); the API
server's answer to a create or update holds the whole pod. A pod on the host's
network has the node's address (`podIP == hostIP`): shared by everything on the
node, it is never a pod's own. Values come from the record (the attacker's side):
an address must parse as one, and a name must look like a Kubernetes name.
"""

from __future__ import annotations

import ipaddress
import re

import msgspec

from ktriage.core.parse.audit import AuditRecord

# The kinds of the context events that state these facts (the correlator learns
# links from them: see correlate.FACT_KINDS).
POD_ADDRESS_KIND = "pod-address"
POD_ACCOUNT_KIND = "pod-account"
# Kubernetes object names (DNS subdomain), bounded.
_NAME = re.compile(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?")


class _Meta(msgspec.Struct, gc=False):
    name: str | None = None
    namespace: str | None = None


class _Spec(msgspec.Struct, gc=False):
    serviceAccountName: str | None = None
    serviceAccount: str | None = None
    hostNetwork: bool | None = None


class _Status(msgspec.Struct, gc=False):
    podIP: str | None = None
    hostIP: str | None = None


class _Pod(msgspec.Struct, gc=False):
    metadata: _Meta | None = None
    spec: _Spec | None = None
    status: _Status | None = None


_DECODE = msgspec.json.Decoder(_Pod).decode
_ERRORS = (msgspec.DecodeError, ValueError, RecursionError)


def _decode(raw: bytes) -> _Pod | None:
    if not raw:
        return None
    try:
        return _DECODE(raw)
    except _ERRORS:
        return None


def own_address(text: object) -> str:
    """`text` as a pod's own address: a unicast IP that is not loopback,
    link-local or unspecified; "" otherwise (garbage included)."""
    if not isinstance(text, str) or not 2 <= len(text) <= 45:
        return ""
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return ""
    if ip.is_loopback or ip.is_unspecified or ip.is_link_local or ip.is_multicast:
        return ""
    return str(ip)


def pod_facts(rec: AuditRecord) -> tuple[str, str, str, str] | None:
    """(namespace, pod name, its own address or "", its service account or "") of a
    pod create, update or status write; None when it says neither."""
    response = bytes(rec.responseObject) if rec.responseObject else b""
    request = bytes(rec.requestObject) if rec.requestObject else b""
    if not (
        b'"podIP"' in response
        or b'"serviceAccountName"' in response
        or b'"podIP"' in request
        or b'"serviceAccountName"' in request
    ):
        return None
    oref = rec.objectRef
    if oref is None:
        return None
    address = account = ""
    host_network = False
    name = oref.name or ""
    namespace = oref.namespace or ""
    for pod in (_decode(response), _decode(request)):
        if pod is None:
            continue
        if pod.metadata is not None:
            name = name or pod.metadata.name or ""
            namespace = namespace or pod.metadata.namespace or ""
        spec = pod.spec
        if spec is not None:
            host_network = host_network or spec.hostNetwork is True
            account = account or spec.serviceAccountName or spec.serviceAccount or ""
        status = pod.status
        if status is not None and not address and status.podIP:
            candidate = own_address(status.podIP)
            if candidate and candidate != own_address(status.hostIP):
                address = candidate
    if host_network:
        address = ""
    if not (_NAME.fullmatch(name) and _NAME.fullmatch(namespace)):
        return None
    if account and not _NAME.fullmatch(account):
        account = ""
    if not (address or account):
        return None
    return namespace, name, address, account
