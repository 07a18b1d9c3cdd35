"""kube-controller-manager's CSR signer: an approved request for one of the built-in client
signers gets a certificate from the cluster's CA in `status.certificate`."""

from __future__ import annotations

import base64
import datetime as dt
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import ExtendedKeyUsageOID

from ktriage.sim.controllers.watching import wake_on_changes

CSR_VERSION = "certificates.k8s.io/v1"
SIGNERS = frozenset(
    {"kubernetes.io/kube-apiserver-client", "kubernetes.io/kube-apiserver-client-kubelet"}
)
DEFAULT_SECONDS = 365 * 24 * 3600
USAGES = {
    "client auth": ExtendedKeyUsageOID.CLIENT_AUTH,
    "server auth": ExtendedKeyUsageOID.SERVER_AUTH,
}


def _conditions(csr: dict) -> set[str]:
    return {
        c.get("type", "")
        for c in (csr.get("status") or {}).get("conditions") or []
        if c.get("status", "True") == "True"
    }


def wants_certificate(csr: dict) -> bool:
    spec = csr.get("spec") or {}
    conditions = _conditions(csr)
    return (
        spec.get("signerName") in SIGNERS
        and "Approved" in conditions
        and not conditions & {"Denied", "Failed"}
        and not (csr.get("status") or {}).get("certificate")
    )


def sign(csr: dict, ca_pem: bytes, ca_key_pem: bytes, now: float) -> str | None:
    """The base64 PEM certificate for `csr`, or None when its request does not parse."""
    spec = csr.get("spec") or {}
    try:
        request = x509.load_pem_x509_csr(base64.b64decode(spec.get("request") or ""))
    except ValueError:
        return None
    ca = x509.load_pem_x509_certificate(ca_pem)
    key = serialization.load_pem_private_key(ca_key_pem, password=None)
    start = dt.datetime.fromtimestamp(now, dt.UTC) - dt.timedelta(minutes=5)
    seconds = spec.get("expirationSeconds")
    lifetime = dt.timedelta(seconds=seconds if isinstance(seconds, int) else DEFAULT_SECONDS)
    end = min(start + lifetime, ca.not_valid_after_utc)
    usages = [USAGES[u] for u in spec.get("usages") or [] if u in USAGES]
    builder = (
        x509.CertificateBuilder()
        .subject_name(request.subject)
        .issuer_name(ca.subject)
        .public_key(request.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
    )
    if usages:
        builder = builder.add_extension(x509.ExtendedKeyUsage(usages), critical=False)
    cert = builder.sign(key, hashes.SHA256())  # type: ignore[arg-type]
    return base64.b64encode(cert.public_bytes(serialization.Encoding.PEM)).decode()


async def run(store: Any, clock: Any, ca_pem: bytes, ca_key_pem: bytes) -> None:
    with wake_on_changes(store, [(CSR_VERSION, "CertificateSigningRequest")]) as wake:
        while True:
            await wake.wait()
            wake.clear()
            for csr in store.list_objs(CSR_VERSION, "CertificateSigningRequest"):
                if not wants_certificate(csr):
                    continue
                certificate = sign(csr, ca_pem, ca_key_pem, clock.now())
                if certificate is None:
                    continue

                def put(obj: dict, certificate: str = certificate) -> None:
                    obj.setdefault("status", {})["certificate"] = certificate

                try:
                    store.mutate(
                        CSR_VERSION, "CertificateSigningRequest", None, csr["metadata"]["name"], put
                    )
                except KeyError:
                    continue
