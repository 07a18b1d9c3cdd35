"""Reading the few objects audit detections look inside: certificate signing requests,
ConfigMaps that hold credentials, webhook configuration patches."""

from __future__ import annotations

import base64
import binascii
import re
from typing import NamedTuple

MAX_CSR_BYTES = 64 << 10


class CsrSubject(NamedTuple):
    common_name: str
    organizations: tuple[str, ...]
    signer: str


def csr_subject(obj: object) -> CsrSubject | None:
    """The subject a CertificateSigningRequest asks a certificate for, or None when
    its request is absent or unreadable."""
    if not isinstance(obj, dict):
        return None
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return None
    signer = spec.get("signerName")
    signer = signer if isinstance(signer, str) else ""
    request = spec.get("request")
    if not isinstance(request, str) or len(request) > MAX_CSR_BYTES:
        return None
    # Imported here: a CSR is rare, and loading the library costs every replay
    # tens of milliseconds at start.
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    try:
        pem = base64.b64decode(request, validate=False)
        csr = x509.load_pem_x509_csr(pem)
        subject = csr.subject
        cn = [a.value for a in subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
        orgs = [a.value for a in subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)]
    except (ValueError, TypeError, binascii.Error):
        return None
    return CsrSubject(
        str(cn[0]) if cn else "",
        tuple(str(o) for o in orgs[:16]),
        signer,
    )


def csr_approved(obj: object) -> bool:
    """Whether a CSR object (the body of an approval) carries an Approved condition."""
    if not isinstance(obj, dict):
        return False
    status = obj.get("status")
    conditions = status.get("conditions") if isinstance(status, dict) else None
    if not isinstance(conditions, list):
        return False
    return any(
        isinstance(c, dict) and c.get("type") == "Approved" and c.get("status", "True") == "True"
        for c in conditions[:32]
    )


# Falco's "Create/Modify Configmap With Private Credentials" looks for these words; a
# private key block is as telling.
_CREDENTIAL_WORDS = re.compile(
    r"aws[_-](?:s3[_-])?access[_-]key[_-]id|aws[_-]secret[_-]access[_-]key|password|passwd|"
    r"passphrase|client[_-]secret|api[_-]?key|-----begin [a-z ]*private key-----",
    re.IGNORECASE,
)
_MAX_SCAN = 256 << 10


def configmap_credentials(obj: object) -> list[str]:
    """Keys of a ConfigMap (or a patch of one) whose name or value looks like a
    credential, with the word found: `access.properties (aws_secret_access_key)`."""
    if not isinstance(obj, dict):
        return []
    found: list[str] = []
    budget = _MAX_SCAN
    for field in ("data", "binaryData", "stringData"):
        data = obj.get(field)
        if not isinstance(data, dict):
            continue
        for key, value in list(data.items())[:1000]:
            text = f"{key}\n{value if isinstance(value, str) else ''}"[:budget]
            budget -= len(text)
            m = _CREDENTIAL_WORDS.search(text)
            if m is not None:
                found.append(f"{str(key)[:60]} ({m.group(0).lower()[:40]})")
            if budget <= 0 or len(found) >= 5:
                return found
    return found


def only_ca_bundle(obj: object) -> bool:
    """Whether a webhook configuration patch only sets caBundle (cert-manager's
    cainjector and many operators refresh it): a merge patch whose webhooks carry
    only names and caBundles, or a JSON patch that only touches caBundle paths."""
    if isinstance(obj, list):
        return bool(obj) and all(
            isinstance(op, dict) and str(op.get("path", "")).endswith("/caBundle")
            for op in obj[:1000]
        )
    if not isinstance(obj, dict):
        return False
    if set(obj) - {"webhooks", "metadata", "apiVersion", "kind"}:
        return False
    hooks = obj.get("webhooks")
    if not isinstance(hooks, list) or not hooks:
        return False
    for hook in hooks[:1000]:
        if not isinstance(hook, dict) or set(hook) - {"name", "clientConfig", "$patch"}:
            return False
        cc = hook.get("clientConfig")
        if cc is not None and (not isinstance(cc, dict) or set(cc) - {"caBundle"}):
            return False
    return True
