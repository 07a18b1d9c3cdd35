"""TokenRequest (`serviceaccounts/<name>/token`): what a request asks for, checked as
kube-apiserver checks it, and the answer around the signed token."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ktriage.sim.auth.tokens import API_AUDIENCES, BoundObject
from ktriage.sim.resources import lookup
from ktriage.sim.server import errors
from ktriage.sim.server.errors import ApiError
from ktriage.sim.storage.store import ClusterStore
from ktriage.sim.timefmt import rfc3339

DEFAULT_SECONDS = 3600
MIN_SECONDS = 600
MAX_SECONDS = 1 << 32
BINDABLE = ("Pod", "Secret")


@dataclass(frozen=True)
class TokenRequestSpec:
    audiences: list[str]
    expiration_seconds: int
    bound_ref: dict | None


def parse(body: Any, name: str, namespace: str) -> TokenRequestSpec:
    spec = (body.get("spec") if isinstance(body, dict) else None) or {}
    if not isinstance(spec, dict):
        spec = {}
    audiences = spec.get("audiences") or list(API_AUDIENCES)
    if not isinstance(audiences, list) or not all(isinstance(a, str) for a in audiences):
        raise errors.bad_request("spec.audiences: must be a list of strings")
    seconds = spec.get("expirationSeconds", DEFAULT_SECONDS)
    if seconds is None:
        seconds = DEFAULT_SECONDS
    if not isinstance(seconds, int) or isinstance(seconds, bool):
        raise errors.bad_request("spec.expirationSeconds: must be an integer")
    problem = ""
    if seconds < MIN_SECONDS:
        problem = "may not specify a duration less than 10 minutes"
    elif seconds > MAX_SECONDS:
        problem = "may not specify a duration larger than 2^32 seconds"
    if problem:
        raise ApiError(
            errors.status(
                422,
                "Invalid",
                f'TokenRequest.authentication.k8s.io "{name}" is invalid: '
                f"spec.expirationSeconds: Invalid value: {seconds}: {problem}",
                {
                    "name": name,
                    "group": "authentication.k8s.io",
                    "kind": "TokenRequest",
                    "causes": [
                        {
                            "reason": "FieldValueInvalid",
                            "message": f"Invalid value: {seconds}: {problem}",
                            "field": "spec.expirationSeconds",
                        }
                    ],
                },
            )
        )
    ref = spec.get("boundObjectRef")
    return TokenRequestSpec(audiences, seconds, ref if isinstance(ref, dict) else None)


def bound_object(
    store: ClusterStore, request: TokenRequestSpec, namespace: str, sa_name: str
) -> BoundObject | None:
    """The object a token is bound to (it dies with it), checked to exist."""
    ref = request.bound_ref
    if ref is None:
        return None
    kind, name, uid = ref.get("kind"), ref.get("name"), ref.get("uid") or ""
    if kind not in BINDABLE or ref.get("apiVersion", "v1") != "v1" or not isinstance(name, str):
        raise errors.bad_request(
            f'cannot bind token for serviceaccount "{sa_name}" to object of type '
            f"{ref.get('apiVersion', '')}, Kind={kind}"
        )
    obj = store.peek("v1", str(kind), namespace, name)
    if obj is None:
        rt = lookup("", "v1", "pods" if kind == "Pod" else "secrets")
        assert rt is not None
        raise errors.not_found(rt, name)
    if kind == "Pod" and (obj.get("spec") or {}).get("serviceAccountName") != sa_name:
        raise errors.bad_request(
            f'cannot bind token for serviceaccount "{sa_name}" to pod running with different '
            "serviceaccount name."
        )
    actual = obj["metadata"].get("uid", "")
    if uid and uid != actual:
        raise ApiError(
            errors.status(
                409,
                "Conflict",
                f'Operation cannot be fulfilled on {kind} "{name}": the UID in the bound object '
                f"reference ({uid}) does not match the UID in record. The object might have "
                "been deleted and then recreated",
                {"name": name, "kind": kind},
            )
        )
    return BoundObject(str(kind), name, actual)


def response(
    request: TokenRequestSpec, name: str, namespace: str, now: float, token: str
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "audiences": request.audiences,
        "expirationSeconds": request.expiration_seconds,
        "boundObjectRef": request.bound_ref,
    }
    return {
        "kind": "TokenRequest",
        "apiVersion": "authentication.k8s.io/v1",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "creationTimestamp": rfc3339(now),
        },
        "spec": spec,
        "status": {
            "token": token,
            "expirationTimestamp": rfc3339(now + request.expiration_seconds),
        },
    }
