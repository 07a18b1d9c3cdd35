"""The audit log as kube-apiserver writes it: two stages for long-running requests,
request objects as the client sent them, 401 and impersonation records in their
real shape. These read the simulated cluster's own audit file."""

from __future__ import annotations

import json
import ssl
import time
import urllib.error
import urllib.request
from typing import Any

import pytest
from conformance_support import Kubectl, Target

pytestmark = pytest.mark.sim_only


def _records(target: Target) -> list[dict]:
    text = target.sim.outputs.audit_path.read_text(encoding="utf-8")
    # The server may be writing a line right now: only lines ended by a newline are whole.
    whole = text.split("\n")[:-1]
    return [json.loads(line) for line in whole if line.strip()]


def _wait_records(target: Target, want: Any, what: str, timeout: float = 10.0) -> list[dict]:
    """The records `want` picks, once it picks some (the last stage is written when
    the server has finished the request, after the client may have returned)."""
    deadline = time.monotonic() + timeout
    while True:
        found = [r for r in _records(target) if want(r)]
        if found and all(_complete(found, r["auditID"]) for r in found):
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"no complete audit records for {what}: {found}")
        time.sleep(0.02)


def _complete(records: list[dict], audit_id: str) -> bool:
    stages = [r["stage"] for r in records if r["auditID"] == audit_id]
    return "ResponseComplete" in stages or (
        stages == ["ResponseStarted"] and _is_401(records, audit_id)
    )


def _is_401(records: list[dict], audit_id: str) -> bool:
    return any(
        r["auditID"] == audit_id and r.get("responseStatus", {}).get("code") == 401 for r in records
    )


def _pod(namespace: str, name: str) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"containers": [{"name": "app", "image": "nginx:1.27"}]},
    }


def _stages_by_id(records: list[dict]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for r in records:
        out.setdefault(r["auditID"], []).append(r["stage"])
    return out


def test_watch_has_both_stages_under_one_audit_id(api: Any, namespace: str, target: Target) -> None:
    from kubernetes import client

    resp = client.CoreV1Api(api).list_namespaced_config_map(
        namespace, watch=True, timeout_seconds=1, _preload_content=False
    )
    resp.read()
    resp.release_conn()
    found = _wait_records(
        target,
        lambda r: r["verb"] == "watch" and r.get("objectRef", {}).get("namespace") == namespace,
        "the watch",
    )
    assert list(_stages_by_id(found).values()) == [["ResponseStarted", "ResponseComplete"]]
    started, complete = found
    assert started["requestReceivedTimestamp"] == complete["requestReceivedTimestamp"]
    assert started["stageTimestamp"] <= complete["stageTimestamp"]
    assert started["responseStatus"] == complete["responseStatus"] == {"metadata": {}, "code": 200}


def test_followed_log_has_both_stages(api: Any, namespace: str, target: Target) -> None:
    from kubernetes import client

    store = target.sim.store
    store.apply(_pod(namespace, "talker"))
    store.set_container_state(namespace, "talker", "app", "running")
    store.append_log(namespace, "talker", "app", "first line")
    resp = client.CoreV1Api(api).read_namespaced_pod_log(
        "talker", namespace, follow=True, _preload_content=False
    )
    assert resp.readline() == b"first line\n"
    # The log is still open: only its first stage is written so far.
    records = [r for r in _records(target) if r.get("objectRef", {}).get("namespace") == namespace
               and r.get("objectRef", {}).get("subresource") == "log"]  # fmt: skip
    assert [r["stage"] for r in records] == ["ResponseStarted"]
    store.delete("v1", "Pod", namespace, "talker")  # the container is gone: the stream ends
    resp.read()
    resp.release_conn()
    found = _wait_records(
        target,
        lambda r: (
            r.get("objectRef", {}).get("subresource") == "log"
            and r.get("objectRef", {}).get("namespace") == namespace
        ),
        "the followed log",
    )
    assert list(_stages_by_id(found).values()) == [["ResponseStarted", "ResponseComplete"]]


def test_exec_has_both_stages(kubectl: Kubectl, namespace: str, target: Target) -> None:
    target.sim.store.apply(_pod(namespace, "shell"))
    target.sim.store.set_container_state(namespace, "shell", "app", "running")
    kubectl("exec", "-n", namespace, "shell", "--", "true")
    found = _wait_records(
        target,
        lambda r: (
            r.get("objectRef", {}).get("subresource") == "exec"
            and r.get("objectRef", {}).get("namespace") == namespace
        ),
        "the exec",
    )
    by_id = _stages_by_id(found)
    assert list(by_id.values()) == [["ResponseStarted", "ResponseComplete"]]
    assert all(r["responseStatus"]["code"] == 101 for r in found)


def test_request_object_is_logged_as_the_client_sent_it(
    api: Any, namespace: str, target: Target
) -> None:
    from kubernetes import client

    sent = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": "reader", "labels": {"team": "a"}},
        "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}],
    }
    created = client.RbacAuthorizationV1Api(api).create_namespaced_role(namespace, sent)
    assert created.metadata.uid  # the server did fill its fields in the stored object
    found = _wait_records(
        target,
        lambda r: (
            r["verb"] == "create"
            and r.get("objectRef", {}).get("resource") == "roles"
            and r.get("objectRef", {}).get("namespace") == namespace
        ),
        "the create",
    )
    assert found[0]["requestObject"] == sent
    assert found[0]["responseObject"]["metadata"]["uid"] == created.metadata.uid


def _sim_request(target: Target, path: str, token: str | None) -> urllib.error.HTTPError:
    context = ssl.create_default_context(cafile=str(target.sim.ca_path))
    request = urllib.request.Request(target.sim.url + path)
    request.add_header("User-Agent", "audit-shape-test")
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        urllib.request.urlopen(request, context=context, timeout=10)
    except urllib.error.HTTPError as err:
        return err
    raise AssertionError("the request was accepted")


@pytest.mark.parametrize(
    ("token", "message"),
    [
        ("not-a-token", "Authentication failed, attempted: bearer"),
        (None, "Authentication failed, no credentials provided"),
    ],
)
def test_hostile_unauthenticated_request_is_recorded_like_kube_apiserver(
    namespace: str, target: Target, token: str | None, message: str
) -> None:
    path = f"/api/v1/namespaces/{namespace}/secrets?token={token}"
    err = _sim_request(target, path, token)
    assert err.code == 401
    found = _wait_records(target, lambda r: r["requestURI"] == path, "the 401")
    assert len(found) == 1  # one record: the failed-authentication filter's
    record = found[0]
    assert record["stage"] == "ResponseStarted"
    assert record["user"] == {}
    assert record["verb"] == "list"
    assert record["objectRef"] == {
        "resource": "secrets",
        "namespace": namespace,
        "apiVersion": "v1",
    }
    assert record["responseStatus"] == {"metadata": {}, "message": message, "code": 401}
    assert "annotations" not in record
    assert record["userAgent"] == "audit-shape-test"


def test_impersonated_request_records_both_users(
    kubectl: Kubectl, namespace: str, target: Target
) -> None:
    result = kubectl("get", "configmaps", "-n", namespace, "--as", "jane", "--as-group", "devs")
    found = _wait_records(
        target,
        lambda r: (
            r["verb"] == "list"
            and r.get("impersonatedUser", {}).get("username") == "jane"
            and r.get("objectRef", {}).get("namespace") == namespace
        ),
        f"the impersonated list ({result.stderr.strip()})",
    )
    record = found[0]
    assert record["user"]["username"] != "jane"  # who authenticated
    assert "devs" in record["impersonatedUser"]["groups"]


def test_hostile_client_gone_mid_watch_still_completes_the_record(
    api: Any, namespace: str, target: Target
) -> None:
    from kubernetes import client

    resp = client.CoreV1Api(api).list_namespaced_config_map(
        namespace, watch=True, timeout_seconds=60, _preload_content=False
    )
    deadline = time.monotonic() + 10
    while not any(
        r["verb"] == "watch" and r.get("objectRef", {}).get("namespace") == namespace
        for r in _records(target)
    ):
        assert time.monotonic() < deadline, "the watch was never recorded"
        time.sleep(0.02)
    resp.close()  # the client goes away in the middle of the watch: its socket closes
    found = _wait_records(
        target,
        lambda r: r["verb"] == "watch" and r.get("objectRef", {}).get("namespace") == namespace,
        "the abandoned watch",
    )
    assert list(_stages_by_id(found).values()) == [["ResponseStarted", "ResponseComplete"]]
