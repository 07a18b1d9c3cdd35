"""ServiceAccounts: a `default` one in every namespace, and TokenRequest JWTs that work
only while the ServiceAccount (and the Pod they are bound to) they name exists."""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

import pytest
from conformance_support import Target
from identity_support import jwt_parts, request_token, status_of, token_client, wait_until, whoami


def _core(api: Any) -> Any:
    from kubernetes import client

    return client.CoreV1Api(api)


def _new_sa(api: Any, namespace: str, name: str = "") -> tuple[str, str]:
    name = name or f"sa-{uuid.uuid4().hex[:6]}"
    sa = _core(api).create_namespaced_service_account(namespace, {"metadata": {"name": name}})
    return name, sa.metadata.uid


def _default_sa(api: Any, namespace: str) -> Any:
    from kubernetes import client

    try:
        return _core(api).read_namespaced_service_account("default", namespace)
    except client.ApiException as exc:
        if exc.status == 404:
            return None
        raise


def _sa_gone(api: Any, namespace: str, name: str) -> bool:
    listed = _core(api).list_namespaced_service_account(
        namespace, field_selector=f"metadata.name={name}"
    )
    return listed.items == []


def test_a_new_namespace_gets_a_default_service_account(api: Any, namespace: str) -> None:
    sa = wait_until(lambda: _default_sa(api, namespace), what="the default ServiceAccount")
    assert sa.metadata.namespace == namespace


def test_the_default_service_account_comes_back_after_deletion(api: Any, namespace: str) -> None:
    first = wait_until(lambda: _default_sa(api, namespace), what="the default ServiceAccount")
    _core(api).delete_namespaced_service_account("default", namespace)

    def recreated() -> Any:
        sa = _default_sa(api, namespace)
        return sa if sa is not None and sa.metadata.uid != first.metadata.uid else None

    assert wait_until(recreated, what="a new default ServiceAccount").metadata.name == "default"


def test_kubectl_lists_the_default_service_account(kubectl: Any, namespace: str, api: Any) -> None:
    wait_until(lambda: _default_sa(api, namespace), what="the default ServiceAccount")
    out = kubectl("get", "serviceaccounts", "-n", namespace, "-o", "name")
    assert out.returncode == 0, out.stderr
    assert "serviceaccount/default" in out.stdout.split()


def test_token_request_issues_a_signed_jwt_with_the_kubernetes_claims(
    api: Any, namespace: str, target: Target
) -> None:
    name, uid = _new_sa(api, namespace)
    token = request_token(api, namespace, name, expirationSeconds=3600)
    header, claims = jwt_parts(token)
    assert header["alg"] == "RS256" and header["kid"]
    assert claims["sub"] == f"system:serviceaccount:{namespace}:{name}"
    assert claims["kubernetes.io"]["namespace"] == namespace
    assert claims["kubernetes.io"]["serviceaccount"] == {"name": name, "uid": uid}
    assert claims["exp"] - claims["iat"] == 3600 and claims["nbf"] == claims["iat"]
    assert claims["jti"]
    if target.is_sim:
        assert claims["iss"] == "https://kubernetes.default.svc.cluster.local"
        assert claims["aud"] == ["https://kubernetes.default.svc.cluster.local"]


def test_a_token_request_authenticates_as_its_service_account(api: Any, namespace: str) -> None:
    name, _ = _new_sa(api, namespace)
    sa_api = token_client(api, request_token(api, namespace, name))
    try:
        me = whoami(sa_api)
    finally:
        sa_api.close()
    assert me["username"] == f"system:serviceaccount:{namespace}:{name}"
    assert set(me["groups"]) == {
        "system:serviceaccounts",
        f"system:serviceaccounts:{namespace}",
        "system:authenticated",
    }


def test_kubectl_whoami_with_a_service_account_token(
    api: Any, namespace: str, kubectl: Any
) -> None:
    name, _ = _new_sa(api, namespace)
    token = request_token(api, namespace, name)
    out = kubectl("auth", "whoami", "--token", token, "-o", "json")
    assert out.returncode == 0, out.stderr
    info = json.loads(out.stdout)["status"]["userInfo"]
    assert info["username"] == f"system:serviceaccount:{namespace}:{name}"


def test_a_token_stops_working_when_its_service_account_is_deleted(
    api: Any, namespace: str
) -> None:
    name, _ = _new_sa(api, namespace)
    sa_api = token_client(api, request_token(api, namespace, name))
    try:
        assert status_of(lambda: whoami(sa_api)) == 200
        _core(api).delete_namespaced_service_account(name, namespace)
        wait_until(lambda: status_of(lambda: whoami(sa_api)) == 401, what="a 401")
    finally:
        sa_api.close()


def test_a_token_stops_working_when_its_service_account_is_recreated(
    api: Any, namespace: str
) -> None:
    name, first_uid = _new_sa(api, namespace)
    old_api = token_client(api, request_token(api, namespace, name))
    try:
        _core(api).delete_namespaced_service_account(name, namespace)
        wait_until(lambda: _sa_gone(api, namespace, name), what="the deletion")
        _, second_uid = _new_sa(api, namespace, name)
        assert second_uid != first_uid
        wait_until(lambda: status_of(lambda: whoami(old_api)) == 401, what="a 401")
        new_api = token_client(api, request_token(api, namespace, name))
        try:
            assert whoami(new_api)["username"] == f"system:serviceaccount:{namespace}:{name}"
        finally:
            new_api.close()
        # The old token never comes back to life with the new ServiceAccount.
        assert status_of(lambda: whoami(old_api)) == 401
    finally:
        old_api.close()


def test_a_token_bound_to_a_pod_dies_with_the_pod(api: Any, namespace: str) -> None:
    name, _ = _new_sa(api, namespace)
    pod = _core(api).create_namespaced_pod(
        namespace,
        {
            "metadata": {"name": "bound"},
            "spec": {
                "serviceAccountName": name,
                "containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10"}],
            },
        },
    )
    ref = {"apiVersion": "v1", "kind": "Pod", "name": "bound", "uid": pod.metadata.uid}
    token = request_token(api, namespace, name, boundObjectRef=ref)
    _, claims = jwt_parts(token)
    assert claims["kubernetes.io"]["pod"] == {"name": "bound", "uid": pod.metadata.uid}
    sa_api = token_client(api, token)
    try:
        me = whoami(sa_api)
        assert me["extra"]["authentication.kubernetes.io/pod-name"] == ["bound"]
        _core(api).delete_namespaced_pod("bound", namespace, grace_period_seconds=0)
        wait_until(lambda: status_of(lambda: whoami(sa_api)) == 401, timeout=60, what="a 401")
    finally:
        sa_api.close()


def test_a_token_request_shorter_than_ten_minutes_is_invalid(api: Any, namespace: str) -> None:
    from kubernetes import client

    name, _ = _new_sa(api, namespace)
    with pytest.raises(client.ApiException) as err:
        request_token(api, namespace, name, expirationSeconds=60)
    assert err.value.status == 422
    body = json.loads(err.value.body)
    assert body["reason"] == "Invalid"
    assert "may not specify a duration less than 10 minutes" in body["message"]


def test_a_token_request_for_a_missing_service_account_is_not_found(
    api: Any, namespace: str
) -> None:
    from kubernetes import client

    with pytest.raises(client.ApiException) as err:
        request_token(api, namespace, "nobody")
    assert err.value.status == 404
    assert json.loads(err.value.body)["message"] == 'serviceaccounts "nobody" not found'


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def test_hostile_forged_tokens_are_unauthorized(api: Any, namespace: str) -> None:
    """A token whose claims were changed, one signed with `alg: none`, one cut short and
    one that is garbage: each a 401, never another identity."""
    name, _ = _new_sa(api, namespace)
    token = request_token(api, namespace, name)
    head, body, sig = token.split(".")
    _, claims = jwt_parts(token)
    promoted = dict(claims, sub="system:serviceaccount:kube-system:default")
    promoted["kubernetes.io"] = dict(claims["kubernetes.io"], namespace="kube-system")
    none_head = _b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    forged = [
        f"{head}.{_b64(json.dumps(promoted).encode())}.{sig}",
        f"{none_head}.{body}.",
        f"{head}.{body}",
        f"{head}.{body}.{sig[:-4]}AAAA",
        "x" * 6000,
        "..",
    ]
    for bad in forged:
        bad_api = token_client(api, bad)
        try:
            assert status_of(lambda c=bad_api: whoami(c)) == 401, bad[:40]
        finally:
            bad_api.close()


@pytest.mark.sim_only
def test_a_namespace_stored_long_ago_gets_a_default_account_as_old(
    target: Target, api: Any
) -> None:
    """Scenarios store namespaces with their age; their default ServiceAccount is as old."""
    name = f"ktriage-e2e-old-{uuid.uuid4().hex[:6]}"
    created = "2026-01-02T03:04:05Z"
    target.sim.store.apply({"apiVersion": "v1", "kind": "Namespace",
                            "metadata": {"name": name, "creationTimestamp": created}})  # fmt: skip
    try:
        sa = wait_until(lambda: _default_sa(api, name), what="the default ServiceAccount")
        assert sa.metadata.creation_timestamp.strftime("%Y-%m-%dT%H:%M:%SZ") == created
    finally:
        target.sim.store.delete("v1", "Namespace", None, name)


def test_kubectl_create_token_gives_a_working_token(api: Any, namespace: str, kubectl: Any) -> None:
    wait_until(lambda: _default_sa(api, namespace), what="the default ServiceAccount")
    made = kubectl("create", "token", "default", "-n", namespace, "--duration=15m")
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip()
    _, claims = jwt_parts(token)
    assert claims["exp"] - claims["iat"] == 900
    me = kubectl("auth", "whoami", "--token", token, "-o", "jsonpath={.status.userInfo.username}")
    assert me.returncode == 0, me.stderr
    assert me.stdout == f"system:serviceaccount:{namespace}:default"
