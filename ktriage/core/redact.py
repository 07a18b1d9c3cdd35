"""Redaction of secrets from everything ktriage displays or saves.

Secret `data`/`stringData`, TokenRequest tokens, bearer tokens, Authorization
headers, kubeconfig credentials and JWT-shaped strings are replaced, wherever in a
record they appear.
"""

from __future__ import annotations

import re
from typing import Any

REDACTED = "<redacted>"

# Keys whose values are credentials, wherever they appear (compared lower-case).
_SECRET_KEYS = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "token",
        "bearertoken",
        "bearer_token",
        "password",
        "client-key-data",
        "client-certificate-data",
        "id-token",
        "refresh-token",
        "access_token",
        "accesstoken",
        "secret",
        "x-auth-token",
        "cookie",
        "set-cookie",
        "access-token",
        "client-secret",
        "client_secret",
        "client-key",
        "refresh_token",
        "id_token",
        "apikey",
        "api-key",
        "api_key",
    }
)
# kubectl keeps the whole object it applied in this annotation: a Secret's data too.
_LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
_BEARER = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}")
_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}")
_AUTH_HEADER = re.compile(r"(?i)(authorization\s*[:=]\s*)\S+(\s+\S+)?")


def redact_text(text: str) -> str:
    """Remove bearer/basic credentials, Authorization headers and JWTs from text."""
    if not text:
        return text
    text = _AUTH_HEADER.sub(lambda m: m.group(1) + REDACTED, text)
    text = _BEARER.sub(lambda m: m.group(1) + " " + REDACTED, text)
    return _JWT.sub(REDACTED, text)


def _is_secret_object(obj: dict[str, Any]) -> bool:
    # Items of a SecretList and request bodies of patches carry no kind: a `type`
    # next to `data`/`stringData` is what only Secrets have.
    return obj.get("kind") == "Secret" or (
        isinstance(obj.get("type"), str) and ("data" in obj or "stringData" in obj)
    )


def _secret_payload(value: Any) -> Any:
    """A Secret (or a list of them, or a patch to one): every value replaced."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if key in ("data", "stringData") and isinstance(item, dict):
                out[key] = {k: REDACTED for k in item}
            elif key == "items" and isinstance(item, list):
                out[key] = [_secret_payload(i) for i in item]
            else:
                out[key] = redact(item)
        return out
    return redact(value)


def redact(value: Any) -> Any:
    """Return a copy of a decoded JSON value with every secret replaced."""
    if isinstance(value, dict):
        kind = value.get("kind")
        if isinstance(kind, str) and kind.startswith("Secret") and kind.endswith("List"):
            return _secret_payload(value)
        ref = value.get("objectRef")
        if isinstance(ref, dict) and ref.get("resource") == "secrets":
            # An audit event about Secrets: its bodies are Secrets or patches to them.
            return {
                key: _secret_payload(item)
                if key in ("requestObject", "responseObject")
                else redact(item)
                for key, item in value.items()
            }
        secret = _is_secret_object(value)
        out: dict[str, Any] = {}
        for key, item in value.items():
            lowered = key.lower() if isinstance(key, str) else key
            if secret and key in ("data", "stringData") and isinstance(item, dict):
                out[key] = {k: REDACTED for k in item}
            elif key == _LAST_APPLIED and isinstance(item, str) and '"Secret"' in item:
                out[key] = REDACTED
            elif lowered in _SECRET_KEYS and isinstance(item, str | bytes) and item:
                out[key] = REDACTED
            elif lowered in _SECRET_KEYS and isinstance(item, list):
                out[key] = [REDACTED for _ in item]
            elif key == "status" and kind == "TokenRequest" and isinstance(item, dict):
                out[key] = {k: (REDACTED if k == "token" else v) for k, v in item.items()}
            else:
                out[key] = redact(item)
        return out
    if isinstance(value, list):
        return [redact(v) for v in value]
    if isinstance(value, str):
        return redact_text(value)
    return value
