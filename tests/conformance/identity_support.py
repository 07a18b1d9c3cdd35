"""Helpers of the RBAC and ServiceAccount conformance tests: clients that present a
ServiceAccount token, TokenRequests, JWT claims, and waiting for a condition."""

from __future__ import annotations

import base64
import copy
import json
import time
from collections.abc import Callable
from typing import Any


def wait_until(cond: Callable[[], Any], timeout: float = 15.0, what: str = "") -> Any:
    """Poll `cond` until it returns something true (returned); fail naming `what`."""
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what or cond}")
        time.sleep(0.05)


def token_client(api: Any, token: str) -> Any:
    """An ApiClient for the admin's server and CA that authenticates with `token` only."""
    from kubernetes import client

    conf = copy.copy(api.configuration)
    conf.api_key = {"authorization": token}
    conf.api_key_prefix = {"authorization": "Bearer"}
    conf.refresh_api_key_hook = None  # else the kubeconfig's own token comes back
    conf.cert_file = None
    conf.key_file = None
    conf.username = None
    conf.password = None
    return client.ApiClient(conf)


def request_token(api: Any, namespace: str, name: str, **spec: Any) -> str:
    from kubernetes import client

    body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec}
    out = client.CoreV1Api(api).create_namespaced_service_account_token(name, namespace, body)
    return out.status.token


def jwt_parts(token: str) -> tuple[dict, dict]:
    """(header, claims) of a JWT, unverified."""
    head, body, _ = token.split(".")

    def decode(part: str) -> dict:
        return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))

    return decode(head), decode(body)


def status_of(call: Callable[[], Any]) -> int:
    """The HTTP status a client call ends with (200 when it returns)."""
    from kubernetes import client

    try:
        call()
    except client.ApiException as exc:
        return int(exc.status)
    return 200


def whoami(api: Any) -> dict:
    """The SelfSubjectReview's userInfo for this client."""
    from kubernetes import client

    body = {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
    out = client.AuthenticationV1Api(api).create_self_subject_review(body)
    info = out.status.user_info
    return {"username": info.username, "groups": list(info.groups or []), "extra": info.extra}


def can_i(api: Any, verb: str, resource: str, namespace: str = "", **attrs: str) -> Any:
    """The SelfSubjectAccessReview status for this client."""
    from kubernetes import client

    ra = {"verb": verb, "resource": resource, "namespace": namespace, **attrs}
    body = {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
            "spec": {"resourceAttributes": ra}}  # fmt: skip
    return client.AuthorizationV1Api(api).create_self_subject_access_review(body).status
