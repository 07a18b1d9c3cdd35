"""The simulated API server through the official `kubernetes` client, over HTTPS on loopback."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

import orjson
import pytest
import urllib3
from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

from ktriage.sim.runner import SimCluster

NS = "shop"


def wait_for(cond: Callable[[], Any], timeout: float = 5.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


def status_of(exc: ApiException) -> dict:
    return json.loads(exc.body)


def audit_lines(cluster: SimCluster) -> list[dict]:
    # Only lines ended by a newline are whole: a watch's last stage may be being written.
    whole = cluster.outputs.audit_path.read_bytes().split(b"\n")[:-1]
    return [orjson.loads(line) for line in whole if line.strip()]


def raw(
    api: Any,
    method: str,
    path: str,
    body: Any = None,
    query: list[tuple[str, str]] | None = None,
    content_type: str = "application/json",
) -> Any:
    """One request through the client's own HTTP layer, bypassing its model checks."""
    headers = {"Accept": "application/json"}
    if body is not None:
        headers["Content-Type"] = content_type
    params = api.param_serialize(
        method,
        path,
        query_params=query,
        header_params=headers,
        body=body,
        auth_settings=["BearerToken"],
    )
    resp = api.call_api(*params)
    resp.read()
    return resp


def configmap(name: str, **data: str) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "labels": {"app": "test"}},
        "data": data,
    }


def stored_configmap(name: str, labels: dict[str, str] | None = None) -> dict:
    """A ConfigMap for `store.apply` (which needs the namespace in the object)."""
    meta = {"name": name, "namespace": NS, "labels": labels or {"app": "test"}}
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": {}}


# ---------------------------------------------------------------------- read


def test_list_get_and_selectors(kube_api: Any) -> None:
    v1 = client.CoreV1Api(kube_api)
    everything = v1.list_pod_for_all_namespaces()
    assert sorted(p.metadata.name for p in everything.items) == ["api-1", "web-1"]
    assert int(everything.metadata.resource_version) > 0

    web = v1.read_namespaced_pod("web-1", NS)
    assert web.status.phase == "Running"
    assert web.spec.node_name == "worker-1"
    assert web.metadata.owner_references[0].kind == "ReplicaSet"
    statuses = {cs.name: cs for cs in web.status.container_statuses}
    assert statuses["web"].restart_count == 1
    assert statuses["web"].last_state.terminated.reason == "OOMKilled"
    assert statuses["web"].last_state.terminated.exit_code == 137
    assert web.status.pod_ip and web.status.host_ip == "10.0.0.11"
    ready = {c.type: c.status for c in web.status.conditions}
    assert ready["Ready"] == "True"

    def names(**kw: Any) -> list[str]:
        return sorted(p.metadata.name for p in v1.list_namespaced_pod(NS, **kw).items)

    assert names(label_selector="app in (web,db)") == ["web-1"]
    assert names(label_selector="app notin (web)") == ["api-1"]
    assert names(label_selector="!tier") == ["web-1"]
    assert names(label_selector="tier,app=api") == ["api-1"]
    assert names(field_selector="spec.nodeName=worker-2") == ["api-1"]
    assert names(field_selector="status.phase=Running,metadata.name!=api-1") == ["web-1"]
    events = client.CoreV1Api(kube_api).list_namespaced_event(
        NS, field_selector="involvedObject.name=web-1,involvedObject.kind=Pod"
    )
    assert [e.reason for e in events.items] == ["BackOff"]


def test_bad_selectors_are_400(kube_api: Any) -> None:
    v1 = client.CoreV1Api(kube_api)
    with pytest.raises(ApiException) as err:
        v1.list_namespaced_pod(NS, field_selector="spec.bogus=1")
    assert err.value.status == 400
    assert status_of(err.value)["message"] == "field label not supported: spec.bogus"
    with pytest.raises(ApiException) as err:
        v1.list_namespaced_pod(NS, label_selector="app in ()")
    assert err.value.status == 400


def test_limit_and_continue(kube_api: Any, sim_cluster: SimCluster) -> None:
    for i in range(5):
        sim_cluster.store.apply(stored_configmap(f"page-{i}", {"page": "yes"}))
    v1 = client.CoreV1Api(kube_api)
    seen: list[str] = []
    token = None
    pages = 0
    while True:
        page = v1.list_namespaced_config_map(NS, label_selector="page", limit=2, _continue=token)
        pages += 1
        seen += [c.metadata.name for c in page.items]
        token = page.metadata._continue
        if not token:
            break
        assert page.metadata.remaining_item_count == 5 - len(seen)
    assert pages == 3
    assert seen == [f"page-{i}" for i in range(5)]


def test_not_found_is_a_real_status(kube_api: Any) -> None:
    with pytest.raises(ApiException) as err:
        client.CoreV1Api(kube_api).read_namespaced_pod("nope", NS)
    assert err.value.status == 404
    body = status_of(err.value)
    assert body == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'pods "nope" not found',
        "reason": "NotFound",
        "details": {"name": "nope", "kind": "pods"},
        "code": 404,
    }
    with pytest.raises(ApiException) as err:
        client.AppsV1Api(kube_api).read_namespaced_deployment("nope", NS)
    assert status_of(err.value)["message"] == 'deployments.apps "nope" not found'
    assert status_of(err.value)["details"] == {
        "name": "nope",
        "group": "apps",
        "kind": "deployments",
    }


# ---------------------------------------------------------------------- write


def test_create_conflicts_and_delete(kube_api: Any, sim_cluster: SimCluster) -> None:
    v1 = client.CoreV1Api(kube_api)
    created = v1.create_namespaced_config_map(NS, configmap("settings", a="1"))
    assert created.metadata.uid and created.metadata.resource_version
    assert created.metadata.creation_timestamp is not None
    assert sim_cluster.store.get_obj("v1", "ConfigMap", NS, "settings")["data"] == {"a": "1"}

    with pytest.raises(ApiException) as err:
        v1.create_namespaced_config_map(NS, configmap("settings"))
    assert err.value.status == 409
    assert status_of(err.value)["reason"] == "AlreadyExists"
    assert status_of(err.value)["message"] == 'configmaps "settings" already exists'

    stale = created.metadata.resource_version
    v1.patch_namespaced_config_map("settings", NS, {"data": {"a": "2"}})
    body = configmap("settings", a="3")
    body["metadata"]["resourceVersion"] = stale
    with pytest.raises(ApiException) as err:
        v1.replace_namespaced_config_map("settings", NS, body)
    assert err.value.status == 409
    assert status_of(err.value)["message"] == (
        'Operation cannot be fulfilled on configmaps "settings": the object has been modified; '
        "please apply your changes to the latest version and try again"
    )
    current = v1.read_namespaced_config_map("settings", NS)
    body["metadata"]["resourceVersion"] = current.metadata.resource_version
    replaced = v1.replace_namespaced_config_map("settings", NS, body)
    assert replaced.data == {"a": "3"}
    assert int(replaced.metadata.resource_version) > int(current.metadata.resource_version)

    status = v1.delete_namespaced_config_map("settings", NS)
    assert status["status"] == "Success"
    assert status["details"]["name"] == "settings"
    assert sim_cluster.store.get_obj("v1", "ConfigMap", NS, "settings") is None
    with pytest.raises(ApiException) as err:
        v1.delete_namespaced_config_map("settings", NS)
    assert err.value.status == 404


def test_create_in_missing_namespace_and_invalid_name(kube_api: Any) -> None:
    v1 = client.CoreV1Api(kube_api)
    with pytest.raises(ApiException) as err:
        v1.create_namespaced_config_map("ghost", configmap("x"))
    assert err.value.status == 404
    assert status_of(err.value)["message"] == 'namespaces "ghost" not found'
    with pytest.raises(ApiException) as err:
        v1.create_namespaced_config_map(NS, configmap("Bad_Name"))
    assert err.value.status == 422
    body = status_of(err.value)
    assert body["reason"] == "Invalid"
    assert body["message"].startswith(
        'ConfigMap "Bad_Name" is invalid: metadata.name: Invalid value'
    )


def test_create_pod_gets_scheduled_and_running(kube_api: Any, sim_cluster: SimCluster) -> None:
    v1 = client.CoreV1Api(kube_api)
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"generateName": "debug-", "labels": {"run": "debug"}},
        "spec": {"containers": [{"name": "shell", "image": "busybox"}]},
    }
    made = v1.create_namespaced_pod(NS, pod)
    assert made.metadata.name.startswith("debug-") and len(made.metadata.name) == 11
    assert made.spec.node_name in ("worker-1", "worker-2")
    # Kubelet has not started it yet: Pending, its container being created; then Running.
    assert made.status.phase == "Pending"
    assert made.status.container_statuses[0].state.waiting.reason == "ContainerCreating"
    assert made.spec.containers[0].image_pull_policy == "Always"
    deadline = time.monotonic() + 10
    while v1.read_namespaced_pod(made.metadata.name, NS).status.phase != "Running":
        assert time.monotonic() < deadline, "the created pod never ran"
        time.sleep(0.02)
    gone = v1.delete_namespaced_pod(made.metadata.name, NS)
    assert gone.metadata.deletion_timestamp is not None
    # Graceful deletion: the pod stays, Terminating, until kubelet has stopped it.
    assert gone.metadata.deletion_grace_period_seconds == 30
    deadline = time.monotonic() + 10
    while sim_cluster.store.get_obj("v1", "Pod", NS, made.metadata.name) is not None:
        assert time.monotonic() < deadline, "the deleted pod was never removed"
        time.sleep(0.02)


def test_three_patch_kinds(kube_api: Any, sim_cluster: SimCluster) -> None:
    v1 = client.CoreV1Api(kube_api)
    # Strategic merge: containers merge by name, the other container is kept.
    v1.patch_namespaced_pod(
        "web-1", NS, {"spec": {"containers": [{"name": "web", "image": "nginx:1.28"}]}}
    )
    pod = sim_cluster.store.get_obj("v1", "Pod", NS, "web-1")
    images = {c["name"]: c["image"] for c in pod["spec"]["containers"]}
    assert images == {"web": "nginx:1.28", "sidecar": "envoyproxy/envoy:v1.30.1"}
    # The main resource cannot change status.
    v1.patch_namespaced_pod("web-1", NS, {"status": {"phase": "Failed"}})
    assert sim_cluster.store.get_obj("v1", "Pod", NS, "web-1")["status"]["phase"] == "Running"

    # JSON merge patch: null deletes a key, lists replace.
    resp = raw(
        kube_api,
        "PATCH",
        f"/api/v1/namespaces/{NS}/pods/api-1",
        {"metadata": {"labels": {"tier": None, "quarantine": "true"}}},
        content_type="application/merge-patch+json",
    )
    assert resp.status == 200
    labels = sim_cluster.store.get_obj("v1", "Pod", NS, "api-1")["metadata"]["labels"]
    assert labels == {"app": "api", "quarantine": "true"}

    # JSON patch (a list body selects application/json-patch+json).
    v1.patch_namespaced_pod(
        "api-1",
        NS,
        [
            {"op": "test", "path": "/metadata/labels/app", "value": "api"},
            {"op": "add", "path": "/metadata/labels/owner", "value": "sre"},
            {"op": "remove", "path": "/metadata/labels/quarantine"},
        ],
    )
    labels = sim_cluster.store.get_obj("v1", "Pod", NS, "api-1")["metadata"]["labels"]
    assert labels == {"app": "api", "owner": "sre"}
    with pytest.raises(ApiException) as err:
        v1.patch_namespaced_pod(
            "api-1", NS, [{"op": "test", "path": "/metadata/labels/app", "value": "web"}]
        )
    assert err.value.status == 422

    # Cordon as kubectl does it, then the status subresource.
    v1.patch_node("worker-2", {"spec": {"unschedulable": True}})
    assert sim_cluster.store.get_obj("v1", "Node", None, "worker-2")["spec"]["unschedulable"]
    v1.patch_namespaced_pod_status("api-1", NS, {"status": {"phase": "Failed"}})
    assert sim_cluster.store.get_obj("v1", "Pod", NS, "api-1")["status"]["phase"] == "Failed"


def test_server_side_apply(kube_api: Any, sim_cluster: SimCluster) -> None:
    body = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "deny", "namespace": NS},
        "spec": {"podSelector": {}, "policyTypes": ["Ingress"]},
    }
    net = client.NetworkingV1Api(kube_api)
    created = net.patch_namespaced_network_policy(
        "deny", NS, body, field_manager="ktriage", _content_type="application/apply-patch+yaml"
    )
    assert created.spec.policy_types == ["Ingress"]
    body["spec"]["policyTypes"] = ["Ingress", "Egress"]
    net.patch_namespaced_network_policy(
        "deny", NS, body, field_manager="ktriage", _content_type="application/apply-patch+yaml"
    )
    stored = sim_cluster.store.get_obj("networking.k8s.io/v1", "NetworkPolicy", NS, "deny")
    assert stored["spec"]["policyTypes"] == ["Ingress", "Egress"]
    assert stored["metadata"]["generation"] == 2
    with pytest.raises(ApiException) as err:
        net.patch_namespaced_network_policy(
            "deny", NS, body, _content_type="application/apply-patch+yaml"
        )
    assert err.value.status == 422


def test_dry_run_changes_nothing(kube_api: Any, sim_cluster: SimCluster) -> None:
    v1 = client.CoreV1Api(kube_api)

    # The cluster's resourceVersion moves on its own (node leases are renewed): the objects
    # the dry runs touch must keep theirs.
    def versions() -> tuple[str, str]:
        node = sim_cluster.store.get_obj("v1", "Node", None, "worker-1")
        pod = sim_cluster.store.get_obj("v1", "Pod", NS, "web-1")
        return node["metadata"]["resourceVersion"], pod["metadata"]["resourceVersion"]

    before = versions()
    made = v1.create_namespaced_config_map(NS, configmap("dry", a="1"), dry_run="All")
    assert made.metadata.name == "dry" and made.metadata.uid
    assert sim_cluster.store.get_obj("v1", "ConfigMap", NS, "dry") is None
    patched = v1.patch_node("worker-1", {"spec": {"unschedulable": True}}, dry_run="All")
    assert patched.spec.unschedulable is True
    assert not sim_cluster.store.get_obj("v1", "Node", None, "worker-1")["spec"].get(
        "unschedulable"
    )
    v1.delete_namespaced_pod("web-1", NS, dry_run="All")
    assert sim_cluster.store.get_obj("v1", "Pod", NS, "web-1") is not None
    assert versions() == before


def test_field_validation(kube_api: Any, sim_cluster: SimCluster) -> None:
    body = configmap("strict", a="1")
    body["bogus"] = True
    body["metadata"]["alsoBogus"] = 1
    # (The client itself refuses unknown fields, so the body goes out raw.)
    path = f"/api/v1/namespaces/{NS}/configmaps"
    resp = raw(kube_api, "POST", path, body, query=[("fieldValidation", "Strict")])
    assert resp.status == 400
    assert json.loads(resp.data)["message"] == (
        'strict decoding error: unknown field "metadata.alsoBogus", unknown field "bogus"'
    )
    assert sim_cluster.store.get_obj("v1", "ConfigMap", NS, "strict") is None
    # Default (Warn): accepted, the unknown fields dropped and reported in Warning headers.
    resp = raw(kube_api, "POST", path, body)
    assert resp.status == 201
    assert resp.headers.getlist("Warning") == [
        '299 - "unknown field \\"metadata.alsoBogus\\""',
        '299 - "unknown field \\"bogus\\""',
    ]
    stored = sim_cluster.store.get_obj("v1", "ConfigMap", NS, "strict")
    assert "bogus" not in stored and "alsoBogus" not in stored["metadata"]


# ---------------------------------------------------------------------- watch


def test_watch_sees_changes_in_order(kube_api: Any, sim_cluster: SimCluster) -> None:
    v1 = client.CoreV1Api(kube_api)
    listed = v1.list_namespaced_pod(NS)
    events: list[tuple[str, str, str]] = []
    done = threading.Event()

    def run() -> None:
        w = watch.Watch()
        for ev in w.stream(
            v1.list_namespaced_pod,
            NS,
            resource_version=listed.metadata.resource_version,
            timeout_seconds=5,
        ):
            obj = ev["object"]
            events.append((ev["type"], obj.metadata.name, obj.status.phase))
            if ev["type"] == "DELETED":
                w.stop()
        done.set()

    thread = threading.Thread(target=run)
    thread.start()
    wait_for(lambda: sim_cluster.faults.state()["open_watches"] == 1, what="watch open")
    store = sim_cluster.store
    store.apply(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "w-1", "namespace": NS},
            "spec": {"containers": [{"name": "c", "image": "busybox"}]},
        }
    )
    store.set_container_state(NS, "w-1", "c", "waiting", reason="CrashLoopBackOff", restart=True)
    store.apply(stored_configmap("not-a-pod"))
    store.delete("v1", "Pod", NS, "w-1")
    assert done.wait(5)
    thread.join()
    assert [(t, n) for t, n, _ in events] == [
        ("ADDED", "w-1"),
        ("MODIFIED", "w-1"),
        ("DELETED", "w-1"),
    ]


def test_watch_with_selector_turns_mismatch_into_deleted(
    kube_api: Any, sim_cluster: SimCluster
) -> None:
    v1 = client.CoreV1Api(kube_api)
    listed = v1.list_namespaced_pod(NS, label_selector="app=api")
    seen: list[str] = []

    def run() -> None:
        w = watch.Watch()
        for ev in w.stream(
            v1.list_namespaced_pod,
            NS,
            label_selector="app=api",
            resource_version=listed.metadata.resource_version,
            timeout_seconds=5,
        ):
            seen.append(ev["type"])
            w.stop()

    thread = threading.Thread(target=run)
    thread.start()
    wait_for(lambda: sim_cluster.faults.state()["open_watches"] == 1, what="watch open")
    sim_cluster.store.mutate(
        "v1", "Pod", NS, "api-1", lambda p: p["metadata"]["labels"].update(app="x")
    )
    thread.join(5)
    assert seen == ["DELETED"]


def test_watch_too_old_resource_version_gets_410(kube_api: Any, sim_cluster: SimCluster) -> None:
    v1 = client.CoreV1Api(kube_api)
    old = v1.list_namespaced_pod(NS).metadata.resource_version
    sim_cluster.store.apply(stored_configmap("bump"))
    sim_cluster.store.compact()
    newest = sim_cluster.store.resource_version
    # The raw stream: HTTP 200 and one ERROR event with an Expired Status.
    resp = v1.list_namespaced_pod(NS, watch=True, resource_version=old, _preload_content=False)
    assert resp.status == 200
    lines = [json.loads(line) for line in resp.data.splitlines()]
    assert lines == [
        {
            "type": "ERROR",
            "object": {
                "kind": "Status",
                "apiVersion": "v1",
                "metadata": {},
                "status": "Failure",
                "message": f"too old resource version: {old} ({newest})",
                "reason": "Expired",
                "code": 410,
            },
        }
    ]
    # The client's Watch turns it into ApiException(410).
    with pytest.raises(ApiException) as err:
        for _ in watch.Watch().stream(
            v1.list_namespaced_pod, NS, resource_version=old, timeout_seconds=2
        ):
            pass
    assert err.value.status == 410
    # And the fault: the next watch expires whatever its resourceVersion.
    sim_cluster.faults.expire_next_watch()
    current = v1.list_namespaced_pod(NS).metadata.resource_version
    resp = v1.list_namespaced_pod(NS, watch=True, resource_version=current, _preload_content=False)
    assert json.loads(resp.data.splitlines()[0])["object"]["code"] == 410
    assert sim_cluster.faults.state()["expire_next_watch"] == 0


def test_watch_cut_after_events_and_cut_now(kube_api: Any, sim_cluster: SimCluster) -> None:
    v1 = client.CoreV1Api(kube_api)
    sim_cluster.faults.cut_after_events = 2
    for i in range(4):
        sim_cluster.store.apply(stored_configmap(f"c-{i}"))
    # No resourceVersion: the current objects come as ADDED; the stream is cut after two.
    stream = watch.Watch().stream(v1.list_namespaced_config_map, NS, timeout_seconds=5)
    got = [ev["object"].metadata.name for ev in stream]
    assert len(got) == 2
    sim_cluster.faults.cut_after_events = None

    ended = threading.Event()
    received: list[str] = []
    failures: list[BaseException] = []

    def run() -> None:
        rv = v1.list_namespaced_config_map(NS).metadata.resource_version
        stream = watch.Watch().stream(
            v1.list_namespaced_config_map, NS, timeout_seconds=30, resource_version=rv
        )
        try:
            for ev in stream:
                received.append(ev["type"])
        except Exception as exc:  # a cut watch loses its connection, as a real one does
            failures.append(exc)
        ended.set()

    thread = threading.Thread(target=run)
    started = time.monotonic()
    thread.start()
    wait_for(lambda: sim_cluster.faults.state()["open_watches"] == 1, what="watch open")
    assert sim_cluster.faults.cut_watches() == 1
    assert ended.wait(5), "the cut stream did not end"
    assert time.monotonic() - started < 5
    assert received == []
    assert len(failures) == 1, "the cut stream ended cleanly instead of losing its connection"
    thread.join()


def test_watch_bookmarks_and_initial_events(kube_api: Any) -> None:
    v1 = client.CoreV1Api(kube_api)
    resp = v1.list_namespaced_pod(
        NS,
        watch=True,
        allow_watch_bookmarks=True,
        send_initial_events=True,
        resource_version_match="NotOlderThan",
        resource_version="",
        timeout_seconds=1,
        _preload_content=False,
    )
    events = [json.loads(line) for line in resp.data.splitlines()]
    types = [e["type"] for e in events]
    assert types == ["ADDED", "ADDED", "BOOKMARK", "BOOKMARK"]
    marker = events[2]["object"]["metadata"]
    assert marker["annotations"] == {"k8s.io/initial-events-end": "true"}
    assert int(marker["resourceVersion"]) >= max(
        int(e["object"]["metadata"]["resourceVersion"]) for e in events[:2]
    )


# ---------------------------------------------------------------------- logs


def test_pod_logs(kube_api: Any) -> None:
    v1 = client.CoreV1Api(kube_api)
    assert v1.read_namespaced_pod_log("web-1", NS, container="web") == (
        "GET /cart 200 line 1\nGET /cart 200 line 2\nGET /cart 200 line 3\n"
    )
    assert v1.read_namespaced_pod_log("web-1", NS, container="web", tail_lines=1) == (
        "GET /cart 200 line 3\n"
    )
    assert v1.read_namespaced_pod_log(
        "web-1", NS, container="web", previous=True, tail_lines=2
    ) == ("previous run line 4\nprevious run line 5\n")
    assert v1.read_namespaced_pod_log("web-1", NS, container="web", limit_bytes=6) == "GET /c"
    stamped = v1.read_namespaced_pod_log("web-1", NS, container="sidecar", timestamps=True)
    stamp, text = stamped.rstrip("\n").split(" ", 1)
    assert text == "envoy ready" and stamp.endswith("Z") and len(stamp) == 30
    assert v1.read_namespaced_pod_log("api-1", NS) == "listening on :8080\n"  # one container
    assert (
        v1.read_namespaced_pod_log("web-1", NS, container="web", since_seconds=3600).count("\n")
        == 3
    )


@pytest.mark.parametrize(
    ("name", "kwargs", "code", "message"),
    [
        (
            "web-1",
            {},
            400,
            "a container name must be specified for pod web-1, choose one of: [web sidecar]",
        ),
        ("web-1", {"container": "db"}, 400, "container db is not valid for pod web-1"),
        (
            "web-1",
            {"container": "sidecar", "previous": True},
            400,
            'previous terminated container "sidecar" in pod "web-1" not found',
        ),
        ("ghost", {"container": "web"}, 404, 'pods "ghost" not found'),
    ],
)
def test_pod_log_errors(kube_api: Any, name: str, kwargs: dict, code: int, message: str) -> None:
    with pytest.raises(ApiException) as err:
        client.CoreV1Api(kube_api).read_namespaced_pod_log(name, NS, **kwargs)
    assert err.value.status == code
    assert status_of(err.value)["message"] == message


def test_pod_log_follow(kube_api: Any, sim_cluster: SimCluster) -> None:
    v1 = client.CoreV1Api(kube_api)
    resp = v1.read_namespaced_pod_log(
        "api-1", NS, follow=True, tail_lines=1, _preload_content=False
    )
    lines: list[str] = []
    finished = threading.Event()

    def read() -> None:
        for chunk in resp.stream(amt=None, decode_content=False):
            lines.extend(chunk.decode().splitlines())
        finished.set()

    thread = threading.Thread(target=read)
    thread.start()
    wait_for(lambda: lines == ["listening on :8080"], what="the existing line")
    sim_cluster.store.append_log(NS, "api-1", "api", "GET /healthz 200")
    wait_for(lambda: lines[-1:] == ["GET /healthz 200"], what="the appended line")
    # A restart ends the stream of the old container, as kubelet's does.
    sim_cluster.store.restart_container(NS, "api-1", "api")
    assert finished.wait(5)
    thread.join()
    resp.release_conn()
    assert lines == ["listening on :8080", "GET /healthz 200"]


# ---------------------------------------------------------------------- auth


def _ssar(api: Any, verb: str, resource: str, namespace: str = NS) -> Any:
    review = client.V1SelfSubjectAccessReview(
        spec=client.V1SelfSubjectAccessReviewSpec(
            resource_attributes=client.V1ResourceAttributes(
                verb=verb, resource=resource, namespace=namespace
            )
        )
    )
    return client.AuthorizationV1Api(api).create_self_subject_access_review(review).status


def test_self_subject_access_review(kube_api: Any, viewer_api: Any) -> None:
    assert _ssar(kube_api, "create", "pods").allowed is True
    assert _ssar(kube_api, "delete", "nodes", "").allowed is True
    assert _ssar(viewer_api, "list", "pods").allowed is True
    assert _ssar(viewer_api, "list", "pods").reason.startswith(
        "RBAC: allowed by ClusterRoleBinding"
    )
    assert _ssar(viewer_api, "create", "pods").allowed is False
    assert _ssar(viewer_api, "get", "secrets").allowed is False
    who = client.AuthenticationV1Api(viewer_api).create_self_subject_review(
        client.V1SelfSubjectReview()
    )
    assert who.status.user_info.username == "viewer"
    assert "system:authenticated" in who.status.user_info.groups


def test_viewer_writes_are_forbidden(viewer_api: Any, sim_cluster: SimCluster) -> None:
    v1 = client.CoreV1Api(viewer_api)
    assert [p.metadata.name for p in v1.list_namespaced_pod(NS).items] == ["api-1", "web-1"]
    with pytest.raises(ApiException) as err:
        v1.delete_namespaced_pod("web-1", NS)
    assert err.value.status == 403
    assert status_of(err.value) == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'pods "web-1" is forbidden: User "viewer" cannot delete resource "pods" '
        'in API group "" in the namespace "shop"',
        "reason": "Forbidden",
        "details": {"name": "web-1", "kind": "pods"},
        "code": 403,
    }
    with pytest.raises(ApiException) as err:
        v1.list_namespaced_secret(NS)
    assert status_of(err.value)["message"] == (
        'secrets is forbidden: User "viewer" cannot list resource "secrets" in API group "" '
        'in the namespace "shop"'
    )
    with pytest.raises(ApiException) as err:
        v1.patch_node("worker-1", {"spec": {"unschedulable": True}})
    assert status_of(err.value)["message"] == (
        'nodes "worker-1" is forbidden: User "viewer" cannot patch resource "nodes" in API '
        'group "" at the cluster scope'
    )
    assert sim_cluster.store.get_obj("v1", "Pod", NS, "web-1") is not None


def test_intruder_and_missing_token(sim_cluster: SimCluster) -> None:
    intruder = config.new_client_from_config(
        config_file=str(sim_cluster.kubeconfig_path), context="sim-intruder"
    )
    with pytest.raises(ApiException) as err:
        client.CoreV1Api(intruder).list_namespaced_pod(NS)
    assert err.value.status == 403
    intruder.close()

    cfg = client.Configuration()
    cfg.host = sim_cluster.url
    cfg.ssl_ca_cert = str(sim_cluster.ca_path)
    anonymous = client.ApiClient(cfg)
    with pytest.raises(ApiException) as err:
        client.CoreV1Api(anonymous).list_namespaced_pod(NS)
    assert err.value.status == 401
    assert status_of(err.value) == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": "Unauthorized",
        "reason": "Unauthorized",
        "code": 401,
    }
    anonymous.close()


# ---------------------------------------------------------------------- faults


def test_faults_500_and_429(kube_api: Any, sim_cluster: SimCluster) -> None:
    v1 = client.CoreV1Api(kube_api)
    sim_cluster.faults.fail_next(2)
    for _ in range(2):
        with pytest.raises(ApiException) as err:
            v1.read_namespaced_pod("web-1", NS)
        assert err.value.status == 500
        assert status_of(err.value)["reason"] == "InternalError"
    assert v1.read_namespaced_pod("web-1", NS).metadata.name == "web-1"

    sim_cluster.faults.throttle(1, retry_after=2)
    with pytest.raises(ApiException) as err:
        v1.create_namespaced_config_map(NS, configmap("throttled"))
    assert err.value.status == 429
    assert err.value.headers["Retry-After"] == "2"
    # API Priority and Fairness answers in plain text, not with a Status.
    assert err.value.headers["Content-Type"].startswith("text/plain")
    assert err.value.body.strip() == "Too many requests, please try again later."
    assert v1.create_namespaced_config_map(NS, configmap("throttled")).metadata.name == "throttled"

    sim_cluster.faults.error_rate = 0.5  # every second request
    codes = []
    for _ in range(4):
        try:
            v1.read_namespaced_pod("web-1", NS)
            codes.append(200)
        except ApiException as exc:
            codes.append(exc.status)
    assert codes == [200, 500, 200, 500]
    assert sim_cluster.faults.state()["injected"] == 5


def test_latency_token_expiry_and_deny(
    kube_api: Any, viewer_api: Any, sim_cluster: SimCluster
) -> None:
    v1 = client.CoreV1Api(kube_api)
    sim_cluster.faults.latency = 0.3
    started = time.monotonic()
    v1.read_namespaced_pod("web-1", NS)
    assert time.monotonic() - started >= 0.3
    sim_cluster.faults.latency = 0

    sim_cluster.faults.expire_token("viewer")
    with pytest.raises(ApiException) as err:
        client.CoreV1Api(viewer_api).list_namespaced_pod(NS)
    assert err.value.status == 401
    sim_cluster.faults.restore_token("viewer")
    sim_cluster.faults.deny("viewer")
    with pytest.raises(ApiException) as err:
        client.CoreV1Api(viewer_api).list_namespaced_pod(NS)
    assert err.value.status == 403
    sim_cluster.faults.allow("viewer")
    assert client.CoreV1Api(viewer_api).list_namespaced_pod(NS).items


def test_fault_endpoint_is_admin_only(sim_cluster: SimCluster) -> None:
    http = urllib3.PoolManager(ca_certs=str(sim_cluster.ca_path))
    url = sim_cluster.url + "/_sim/faults"

    def post(token: str, body: dict) -> urllib3.BaseHTTPResponse:
        return http.request(
            "POST",
            url,
            body=json.dumps(body),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )

    resp = post(sim_cluster.admin_token, {"fail_next": {"n": 3, "code": 503}, "latency": 0.01})
    assert resp.status == 200
    state = json.loads(resp.data)
    assert state["fail_next"] == [503, 503, 503] and state["latency"] == 0.01
    assert post(sim_cluster.readonly_token, {"reset": True}).status == 403
    assert post(sim_cluster.admin_token, {"bogus": 1}).status == 400
    assert post(sim_cluster.admin_token, {"reset": True}).status == 200
    assert sim_cluster.faults.state()["fail_next"] == []


# ---------------------------------------------------------------------- audit


def test_every_request_is_audited(kube_api: Any, viewer_api: Any, sim_cluster: SimCluster) -> None:
    v1 = client.CoreV1Api(kube_api)
    before = len(audit_lines(sim_cluster))
    v1.create_namespaced_config_map(NS, configmap("audited"))
    with pytest.raises(ApiException):
        client.CoreV1Api(viewer_api).delete_namespaced_pod("web-1", NS)
    v1.read_namespaced_secret("db-password", NS)
    client.RbacAuthorizationV1Api(kube_api).create_cluster_role_binding(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": "oops"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "cluster-admin",
            },
            "subjects": [{"kind": "ServiceAccount", "name": "default", "namespace": NS}],
        }
    )
    lines = audit_lines(sim_cluster)[before:]
    assert len(lines) == 4
    create, denied, secret, binding = lines
    assert list(create)[:8] == [
        "kind",
        "apiVersion",
        "level",
        "auditID",
        "stage",
        "requestURI",
        "verb",
        "user",
    ]
    assert create["verb"] == "create" and create["level"] == "Metadata"
    assert create["stage"] == "ResponseComplete"
    assert create["user"]["username"] == "kubernetes-admin"
    assert create["user"]["groups"] == ["system:masters", "system:authenticated"]
    assert create["sourceIPs"] == ["127.0.0.1"]
    assert create["userAgent"].startswith("OpenAPI-Generator/")
    assert create["objectRef"] == {
        "resource": "configmaps",
        "namespace": NS,
        "name": "audited",
        "apiVersion": "v1",
    }
    assert create["responseStatus"] == {"metadata": {}, "code": 201}
    assert create["annotations"]["authorization.k8s.io/decision"] == "allow"
    assert create["requestURI"] == f"/api/v1/namespaces/{NS}/configmaps"

    assert denied["user"]["username"] == "viewer" and denied["verb"] == "delete"
    assert denied["responseStatus"]["code"] == 403
    assert denied["responseStatus"]["reason"] == "Forbidden"
    assert denied["annotations"]["authorization.k8s.io/decision"] == "forbid"

    assert secret["level"] == "Metadata" and secret["objectRef"]["resource"] == "secrets"
    assert "responseObject" not in secret and "aHVudGVyMg" not in json.dumps(secret)

    assert binding["level"] == "RequestResponse"
    assert binding["requestObject"]["roleRef"]["name"] == "cluster-admin"
    assert binding["responseObject"]["metadata"]["uid"]
    assert binding["objectRef"]["apiGroup"] == "rbac.authorization.k8s.io"


def test_discovery_and_version(kube_api: Any) -> None:
    version = client.VersionApi(kube_api).get_code()
    assert version.git_version.startswith("v1.37.") and version.minor == "37"
    core = client.CoreV1Api(kube_api).get_api_resources()
    by_name = {r.name: r for r in core.resources}
    assert by_name["pods"].short_names == ["po"] and by_name["pods"].namespaced
    assert by_name["pods/log"].verbs == ["get"]
    assert (
        by_name["pods/eviction"].group == "policy" and by_name["pods/eviction"].kind == "Eviction"
    )
    assert by_name["nodes/proxy"].kind == "NodeProxyOptions"
    assert by_name["serviceaccounts/token"].kind == "TokenRequest"
    groups = {g.name for g in client.ApisApi(kube_api).get_api_versions().groups}
    assert {"apps", "networking.k8s.io", "rbac.authorization.k8s.io", "events.k8s.io",
            "authorization.k8s.io", "authentication.k8s.io"} <= groups  # fmt: skip
    apps = {r.name for r in client.AppsV1Api(kube_api).get_api_resources().resources}
    assert {"deployments", "replicasets", "daemonsets", "deployments/scale"} <= apps


def test_impersonation_is_checked_and_audited(kube_api: Any, sim_cluster: SimCluster) -> None:
    v1 = client.CoreV1Api(kube_api)
    kube_api.default_headers["Impersonate-User"] = "viewer"
    try:
        assert [p.metadata.name for p in v1.list_namespaced_pod(NS).items] == ["api-1", "web-1"]
        with pytest.raises(ApiException) as err:
            v1.delete_namespaced_pod("web-1", NS)
        assert status_of(err.value)["message"].startswith(
            'pods "web-1" is forbidden: User "viewer" cannot delete'
        )
    finally:
        del kube_api.default_headers["Impersonate-User"]
    listed, denied = audit_lines(sim_cluster)[-2:]
    assert listed["user"]["username"] == "kubernetes-admin"
    assert listed["impersonatedUser"]["username"] == "viewer"
    assert denied["responseStatus"]["code"] == 403


def test_viewer_cannot_impersonate(viewer_api: Any) -> None:
    viewer_api.default_headers["Impersonate-User"] = "kubernetes-admin"
    with pytest.raises(ApiException) as err:
        client.CoreV1Api(viewer_api).list_namespaced_secret(NS)
    assert status_of(err.value)["message"] == (
        'users "kubernetes-admin" is forbidden: User "viewer" cannot impersonate resource '
        '"users" in API group "" at the cluster scope'
    )


def test_delete_collection(kube_api: Any, sim_cluster: SimCluster) -> None:
    for i in range(3):
        sim_cluster.store.apply(stored_configmap(f"junk-{i}", {"junk": "yes"}))
    v1 = client.CoreV1Api(kube_api)
    v1.delete_collection_namespaced_config_map(NS, label_selector="junk=yes")
    left = [c["metadata"]["name"] for c in sim_cluster.store.list_objs("v1", "ConfigMap", NS)]
    assert left == ["web-config"]


def test_store_history_is_bounded() -> None:
    from ktriage.sim.clock import ManualClock
    from ktriage.sim.storage.store import ClusterStore, Expired

    store = ClusterStore(ManualClock(), history_limit=3)
    start = store.resource_version
    for i in range(5):
        store.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": f"ns-{i}"}})
    with pytest.raises(Expired) as err:
        store.watch("v1", "Namespace", start, lambda change: None)
    assert str(err.value) == f"too old resource version: {start} ({start + 2})"
    backlog, unsubscribe = store.watch("v1", "Namespace", start + 2, lambda change: None)
    assert [c.obj["metadata"]["name"] for c in backlog] == ["ns-2", "ns-3", "ns-4"]
    unsubscribe()


def test_stop_closes_streams_within_a_second(make_sim_cluster: Callable[..., SimCluster]) -> None:
    cluster = make_sim_cluster()
    cluster.store.apply(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "p", "namespace": "default"},
            "spec": {"containers": [{"name": "c", "image": "busybox"}]},
        }
    )
    cluster.store.append_log("default", "p", "c", "hello")
    api = config.new_client_from_config(config_file=str(cluster.kubeconfig_path))
    v1 = client.CoreV1Api(api)
    ended: list[str] = []

    def watch_pods() -> None:
        for _ in watch.Watch().stream(v1.list_namespaced_pod, "default", timeout_seconds=60):
            pass
        ended.append("watch")

    def follow_log() -> None:
        resp = v1.read_namespaced_pod_log("p", "default", follow=True, _preload_content=False)
        for _ in resp.stream(amt=None, decode_content=False):
            pass
        ended.append("follow")

    threads = [threading.Thread(target=f) for f in (watch_pods, follow_log)]
    for t in threads:
        t.start()
    wait_for(lambda: cluster.faults.state()["open_watches"] == 1, what="watch open")
    wait_for(lambda: len(cluster.server._streams) == 2, what="both streams open")
    started = time.monotonic()
    cluster.stop()
    assert time.monotonic() - started < 1.0
    for t in threads:
        t.join(5)
    assert sorted(ended) == ["follow", "watch"]
    api.close()


def test_manual_clock_advances_from_another_thread(
    make_sim_cluster: Callable[..., SimCluster],
) -> None:
    from ktriage.sim.clock import ManualClock

    clock = ManualClock(start=1_800_000_000.0)
    cluster = make_sim_cluster(clock=clock)
    woke = threading.Event()

    async def sleeper() -> None:
        await clock.sleep_until(1_800_000_060.0)
        woke.set()

    future = __import__("asyncio").run_coroutine_threadsafe(sleeper(), cluster._loop)
    assert not woke.wait(0.1)
    cluster.advance(60)
    assert woke.wait(2)
    future.result(2)
    ns = cluster.store.get_obj("v1", "Namespace", None, "default")
    assert ns["metadata"]["creationTimestamp"] == "2027-01-15T08:00:00Z"


# A SelfSubjectAccessReview as kubectl v1.37.1 sends it for `auth can-i create pods -n shop`.
KUBECTL_SSAR = bytes.fromhex(
    "6b3873000a320a17617574686f72697a6174696f6e2e6b38732e696f2f7631121753656c665375626a656374"
    "416363657373526576696577123c0a100a0012001a0022002a00320038004200121e0a1c0a0473686f701206"
    "6372656174651a0022002a04706f647332003a001a08080012001a0020001a002200"
)


def test_protobuf_access_review(sim_cluster: SimCluster) -> None:
    from ktriage.sim.server import protobuf

    review = protobuf.decode(KUBECTL_SSAR)
    assert review["kind"] == "SelfSubjectAccessReview"
    assert review["spec"]["resourceAttributes"] == {
        "namespace": "shop",
        "verb": "create",
        "resource": "pods",
    }
    http = urllib3.PoolManager(ca_certs=str(sim_cluster.ca_path))
    for token, allowed in ((sim_cluster.admin_token, True), (sim_cluster.readonly_token, False)):
        resp = http.request(
            "POST",
            sim_cluster.url + "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
            body=KUBECTL_SSAR,
            headers={
                "Authorization": f"Bearer {token}",
                "Content-Type": protobuf.CONTENT_TYPE,
                "Accept": "application/vnd.kubernetes.protobuf,application/json",
            },
        )
        assert resp.status == 201
        assert resp.headers["Content-Type"] == protobuf.CONTENT_TYPE
        answer = protobuf.decode(resp.data)
        assert answer["status"].get("allowed", False) is allowed
        assert answer["spec"]["resourceAttributes"]["verb"] == "create"
