"""ServiceAccount tokens as kube-apiserver issues them (TokenRequest): RS256 JWTs signed
by a key of this cluster, with the `kubernetes.io` claim naming the ServiceAccount (and
the Pod they are bound to), checked again at every use."""

from __future__ import annotations

import base64
import hashlib
import threading
import uuid
from dataclasses import dataclass
from typing import Any

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

ISSUER = "https://kubernetes.default.svc.cluster.local"
API_AUDIENCES = (ISSUER,)
MAX_TOKEN_BYTES = 16 * 1024


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class BoundObject:
    kind: str  # Pod, Secret or Node
    name: str
    uid: str


@dataclass(frozen=True)
class ServiceAccountClaims:
    """What a verified token says (its signature, issuer, audience and times checked)."""

    namespace: str
    name: str
    uid: str
    token_id: str
    bound: BoundObject | None


class TokenIssuer:
    """Signs and verifies this cluster's ServiceAccount tokens; the key is made on first use."""

    def __init__(self, issuer: str = ISSUER) -> None:
        self.issuer = issuer
        self._lock = threading.Lock()
        self._key: rsa.RSAPrivateKey | None = None
        self._kid = ""

    def _private_key(self) -> rsa.RSAPrivateKey:
        with self._lock:
            if self._key is None:
                self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
                der = self._key.public_key().public_bytes(
                    serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
                )
                # kube-apiserver's key id: the unpadded base64url SHA-256 of the public key.
                self._kid = _b64(hashlib.sha256(der).digest())
            return self._key

    def issue(
        self,
        *,
        namespace: str,
        name: str,
        uid: str,
        audiences: list[str],
        now: float,
        expiration_seconds: int,
        bound: BoundObject | None = None,
    ) -> str:
        key = self._private_key()
        k8s: dict[str, Any] = {
            "namespace": namespace,
            "serviceaccount": {"name": name, "uid": uid},
        }
        if bound is not None:
            k8s[bound.kind.lower()] = {"name": bound.name, "uid": bound.uid}
        claims = {
            "aud": audiences,
            "exp": int(now) + expiration_seconds,
            "iat": int(now),
            "iss": self.issuer,
            "jti": str(uuid.uuid4()),
            "kubernetes.io": k8s,
            "nbf": int(now),
            "sub": f"system:serviceaccount:{namespace}:{name}",
        }
        header = {"alg": "RS256", "kid": self._kid}
        signing_input = f"{_b64(orjson.dumps(header))}.{_b64(orjson.dumps(claims))}"
        signature = key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input}.{_b64(signature)}"

    def verify(self, token: str, now: float) -> ServiceAccountClaims | None:
        """The claims of a token this cluster signed and that is valid now, else None."""
        if self._key is None or len(token) > MAX_TOKEN_BYTES or token.count(".") != 2:
            return None
        head, body, sig = token.split(".")
        try:
            header = orjson.loads(_unb64(head))
            if not isinstance(header, dict) or header.get("alg") != "RS256":
                return None
            self._key.public_key().verify(
                _unb64(sig), f"{head}.{body}".encode(), padding.PKCS1v15(), hashes.SHA256()
            )
            claims = orjson.loads(_unb64(body))
        except (ValueError, InvalidSignature, orjson.JSONDecodeError):
            return None
        return _checked(claims, self.issuer, now)


def _checked(claims: Any, issuer: str, now: float) -> ServiceAccountClaims | None:
    if not isinstance(claims, dict) or claims.get("iss") != issuer:
        return None
    aud = claims.get("aud")
    audiences = aud if isinstance(aud, list) else [aud]
    if not any(a in API_AUDIENCES for a in audiences):
        return None
    exp, nbf = claims.get("exp"), claims.get("nbf")
    if not isinstance(exp, int) or not isinstance(nbf, int) or not nbf <= now < exp:
        return None
    k8s = claims.get("kubernetes.io")
    if not isinstance(k8s, dict):
        return None
    sa = k8s.get("serviceaccount")
    namespace = k8s.get("namespace")
    if not isinstance(sa, dict) or not isinstance(namespace, str):
        return None
    name, uid = sa.get("name"), sa.get("uid")
    if not isinstance(name, str) or not isinstance(uid, str):
        return None
    if claims.get("sub") != f"system:serviceaccount:{namespace}:{name}":
        return None
    bound = None
    for kind in ("Pod", "Secret", "Node"):
        ref = k8s.get(kind.lower())
        if isinstance(ref, dict) and kind != "Node":
            bound = BoundObject(kind, str(ref.get("name", "")), str(ref.get("uid", "")))
    return ServiceAccountClaims(namespace, name, uid, str(claims.get("jti", "")), bound)
