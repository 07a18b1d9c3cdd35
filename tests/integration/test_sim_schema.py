"""Objects the simulated API server returns validate against the official schemas.

kubernetes-validate ships the Kubernetes OpenAPI schemas as JSON schemas; its newest
set is 1.37, which is the version the simulated server reports. Strict mode rejects
any property a schema does not declare.
"""

from __future__ import annotations

import functools
import json
import re
import time
from typing import Any

import kubernetes_validate
import pytest

from ktriage.sim.runner import SimCluster

NS = "shop"
VERSION = "1.37"


def test_the_schemas_are_for_1_37() -> None:
    check({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"})
    with pytest.raises(AssertionError):
        check({"kind": "Status", "apiVersion": "v1", "metadata": {}, "bogus": 1})
    versions = kubernetes_validate.utils.all_versions()
    assert any(v.startswith(VERSION + ".") for v in versions), versions
    # A schema is strict: an unknown field fails, with the package's own function and ours.
    bad = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "bogus": 1}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, VERSION, strict=True)
    with pytest.raises(AssertionError):
        check(bad)
    del bad["bogus"]
    check(bad)


def fetch(api: Any, method: str, path: str, body: Any = None) -> tuple[int, dict]:
    headers = {"Accept": "application/json"}
    if body is not None:
        headers["Content-Type"] = (
            "application/strategic-merge-patch+json" if method == "PATCH" else "application/json"
        )
    params = api.param_serialize(
        method, path, header_params=headers, body=body, auth_settings=["BearerToken"]
    )
    resp = api.call_api(*params)
    resp.read()
    return resp.status, json.loads(resp.data)


@functools.cache
def _validator(api_version: str, kind: str) -> Any:
    """kubernetes-validate's strict schema for a kind, loaded once (its own `validate`
    reloads the large definitions file on every call).

    A Status says apiVersion v1, as kube-apiserver's do, but the schema is filed as
    status-meta-v1.json; kubernetes-validate's lookup by apiVersion misses it.
    """
    import jsonschema
    from referencing import Registry, Resource

    utils = kubernetes_validate.utils
    version = [v for v in utils.all_versions() if v.startswith(VERSION + ".")][-1]
    folder = f"kubernetes-json-schema/v{version}-local-strict"
    if kind == "Status":
        group_version = "meta-v1"
    else:
        group_version = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    schema = utils.schema_contents(f"{folder}/{kind.lower()}-{group_version}.json", version)
    definitions = _definitions(folder, version)
    registry = Resource.from_contents(definitions) @ (Resource.from_contents(schema) @ Registry())
    return jsonschema.validators.Draft202012Validator(schema, registry=registry)


@functools.cache
def _definitions(folder: str, version: str) -> Any:
    return kubernetes_validate.utils.schema_contents(f"{folder}/_definitions.json", version)


def check(obj: dict) -> None:
    import jsonschema

    try:
        _validator(obj["apiVersion"], obj["kind"]).validate(obj)
    except jsonschema.ValidationError as exc:
        path = "/".join(str(p) for p in exc.path)
        raise AssertionError(f"{obj.get('kind')} invalid at {path}: {exc.message}") from None


SEEDED = [
    "/api/v1/namespaces/shop",
    "/api/v1/nodes/worker-1",
    "/api/v1/namespaces/shop/pods/web-1",
    "/api/v1/namespaces/shop/pods/api-1",
    "/api/v1/namespaces/shop/services/web",
    "/api/v1/namespaces/shop/configmaps/web-config",
    "/api/v1/namespaces/shop/secrets/db-password",
    "/api/v1/namespaces/shop/serviceaccounts/default",
    "/api/v1/namespaces/shop/events/web-1.18a2b3c4d5e6f701",
    "/apis/events.k8s.io/v1/namespaces/shop/events/web-1.18a2b3c4d5e6f702",
    "/apis/apps/v1/namespaces/shop/deployments/web",
    "/apis/apps/v1/namespaces/shop/replicasets/web-7d9f8c6b5",
    "/apis/rbac.authorization.k8s.io/v1/clusterroles/pod-reader",
    "/apis/rbac.authorization.k8s.io/v1/namespaces/shop/rolebindings/read-pods",
    # Lists (their items carry no kind, as the real server's do not).
    "/api/v1/pods",
    "/api/v1/nodes",
    "/api/v1/namespaces/shop/events",
    "/apis/events.k8s.io/v1/events",
    "/apis/apps/v1/deployments",
    "/apis/rbac.authorization.k8s.io/v1/rolebindings",
    # Errors.
    "/api/v1/namespaces/shop/pods/ghost",
]


@pytest.mark.parametrize("path", SEEDED)
def test_served_objects_validate(kube_api: Any, path: str) -> None:
    _, obj = fetch(kube_api, "GET", path)
    assert obj["kind"]
    check(obj)


def test_objects_after_changes_validate(kube_api: Any, sim_cluster: SimCluster) -> None:
    store = sim_cluster.store
    # A pod created through the API: scheduled, defaulted, running.
    code, pod = fetch(
        kube_api,
        "POST",
        f"/api/v1/namespaces/{NS}/pods",
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "miner", "labels": {"app": "miner"}},
            "spec": {
                "containers": [
                    {
                        "name": "xmrig",
                        "image": "xmrig/xmrig:6.21",
                        "ports": [{"containerPort": 3333}],
                        "securityContext": {"privileged": True},
                    }
                ],
                "hostPID": True,
                "volumes": [{"name": "host", "hostPath": {"path": "/"}}],
            },
        },
    )
    assert code == 201
    check(pod)
    # Container states the scenarios use: OOMKilled, CrashLoopBackOff, back to running.
    store.set_container_state(NS, "miner", "xmrig", "terminated", reason="OOMKilled", exit_code=137)
    check(fetch(kube_api, "GET", f"/api/v1/namespaces/{NS}/pods/miner")[1])
    store.set_container_state(
        NS, "miner", "xmrig", "waiting", reason="CrashLoopBackOff", restart=True
    )
    _, crashing = fetch(kube_api, "GET", f"/api/v1/namespaces/{NS}/pods/miner")
    assert crashing["status"]["containerStatuses"][0]["state"]["waiting"]["reason"] == (
        "CrashLoopBackOff"
    )
    check(crashing)
    # Cordoned node, patched pod, deleted pod (answered with the pod marked for deletion),
    # deleted ConfigMap (answered with a Status).
    _, node = fetch(kube_api, "PATCH", "/api/v1/nodes/worker-2", {"spec": {"unschedulable": True}})
    check(node)
    _, patched = fetch(
        kube_api,
        "PATCH",
        f"/api/v1/namespaces/{NS}/pods/web-1",
        {"metadata": {"labels": {"ktriage.io/quarantine": "true"}}},
    )
    check(patched)
    code, deleted = fetch(kube_api, "DELETE", f"/api/v1/namespaces/{NS}/pods/miner")
    assert code == 200 and deleted["metadata"]["deletionTimestamp"]
    check(deleted)
    _, status = fetch(kube_api, "DELETE", f"/api/v1/namespaces/{NS}/configmaps/web-config")
    assert status["status"] == "Success"
    check(status)


def test_reviews_validate(kube_api: Any) -> None:
    code, ssar = fetch(
        kube_api,
        "POST",
        "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
        {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SelfSubjectAccessReview",
            "spec": {"resourceAttributes": {"verb": "create", "resource": "pods", "namespace": NS}},
        },
    )
    assert code == 201 and ssar["status"]["allowed"] is True
    check(ssar)
    _, rules = fetch(
        kube_api,
        "POST",
        "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews",
        {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SelfSubjectRulesReview",
            "spec": {"namespace": NS},
        },
    )
    check(rules)
    _, who = fetch(
        kube_api,
        "POST",
        "/apis/authentication.k8s.io/v1/selfsubjectreviews",
        {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"},
    )
    assert who["status"]["userInfo"]["username"] == "kubernetes-admin"
    check(who)


def test_watch_event_objects_validate(kube_api: Any, sim_cluster: SimCluster) -> None:
    params = kube_api.param_serialize(
        "GET",
        f"/api/v1/namespaces/{NS}/pods",
        query_params=[("watch", "1"), ("timeoutSeconds", "1"), ("allowWatchBookmarks", "true")],
        header_params={"Accept": "application/json"},
        auth_settings=["BearerToken"],
    )
    resp = kube_api.call_api(*params)
    resp.read()
    events = [json.loads(line) for line in resp.data.splitlines()]
    assert [e["type"] for e in events] == ["ADDED", "ADDED", "BOOKMARK"]
    for event in events[:2]:
        check(event["object"])


SERVED_TYPES = [
    ("/api/v1/pods", "v1", "Pod"),
    ("/api/v1/nodes", "v1", "Node"),
    ("/api/v1/namespaces", "v1", "Namespace"),
    ("/api/v1/services", "v1", "Service"),
    ("/api/v1/serviceaccounts", "v1", "ServiceAccount"),
    ("/api/v1/secrets", "v1", "Secret"),
    ("/api/v1/configmaps", "v1", "ConfigMap"),
    ("/api/v1/events", "v1", "Event"),
    ("/apis/events.k8s.io/v1/events", "events.k8s.io/v1", "Event"),
    ("/apis/apps/v1/deployments", "apps/v1", "Deployment"),
    ("/apis/apps/v1/replicasets", "apps/v1", "ReplicaSet"),
    ("/apis/apps/v1/daemonsets", "apps/v1", "DaemonSet"),
    ("/apis/networking.k8s.io/v1/networkpolicies", "networking.k8s.io/v1", "NetworkPolicy"),
    (
        "/apis/rbac.authorization.k8s.io/v1/clusterroles",
        "rbac.authorization.k8s.io/v1",
        "ClusterRole",
    ),
    (
        "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
        "rbac.authorization.k8s.io/v1",
        "ClusterRoleBinding",
    ),
    ("/apis/rbac.authorization.k8s.io/v1/roles", "rbac.authorization.k8s.io/v1", "Role"),
    (
        "/apis/rbac.authorization.k8s.io/v1/rolebindings",
        "rbac.authorization.k8s.io/v1",
        "RoleBinding",
    ),
]


def _scenario_names() -> list[str]:
    from ktriage.sim.scenario.bundled import scenario_names

    names = list(scenario_names())
    assert names, "no bundled scenarios"
    return names


@pytest.mark.parametrize("name", _scenario_names())
def test_scenario_objects_validate(name: str, make_sim_cluster: Any) -> None:
    """Every object a bundled scenario leaves in the cluster, as the server serves it."""
    from kubernetes import config

    cluster = make_sim_cluster(scenario=name, speed=5000)
    deadline = time.monotonic() + 30
    while not cluster.player.done and cluster.player_error is None:
        assert time.monotonic() < deadline, "the scenario did not finish"
        time.sleep(0.02)
    assert cluster.player_error is None
    api = config.new_client_from_config(config_file=str(cluster.kubeconfig_path))
    try:
        total = 0
        for path, api_version, kind in SERVED_TYPES:
            _, listed = fetch(api, "GET", path)
            for item in listed["items"]:
                check(dict(item, apiVersion=api_version, kind=kind))
                total += 1
        assert total > 20
    finally:
        api.close()
