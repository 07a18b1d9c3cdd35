"""Deletion as kube-apiserver and the garbage collector do it: graceful pod deletion,
finalizers holding an object Terminating, and the three propagation policies."""

from __future__ import annotations

from typing import Any

import pytest
from conformance_support import Kubectl, Target
from workload_support import deployment, ensure_nodes, live_pods, wait_until


@pytest.fixture
def apps(api: Any, target: Target) -> Any:
    from kubernetes import client

    ensure_nodes(target)
    return client.AppsV1Api(api)


@pytest.fixture
def core(api: Any) -> Any:
    from kubernetes import client

    return client.CoreV1Api(api)


def _running_deployment(apps: Any, core: Any, namespace: str, name: str, replicas: int) -> None:
    apps.create_namespaced_deployment(namespace, deployment(name, replicas))
    wait_until(
        lambda: len(live_pods(core, namespace, f"app={name}")) == replicas,
        f"{replicas} pods of {name}",
    )
    wait_until(
        lambda: apps.list_namespaced_replica_set(namespace, label_selector=f"app={name}").items,
        f"the ReplicaSet of {name}",
    )


def _missing(read: Any, *args: Any) -> bool:
    from kubernetes import client

    try:
        read(*args)
    except client.ApiException as exc:
        if exc.status == 404:
            return True
        raise
    return False


def _meta(answer: Any) -> dict:
    assert isinstance(answer, dict), answer
    assert answer.get("kind") != "Status", answer
    return answer["metadata"]


def test_deleting_a_pod_is_graceful(apps: Any, core: Any, namespace: str) -> None:
    _running_deployment(apps, core, namespace, "web", 1)
    name = live_pods(core, namespace, "app=web")[0].metadata.name
    answer = core.delete_namespaced_pod(name, namespace)
    assert answer.metadata.deletion_timestamp is not None
    assert answer.metadata.deletion_grace_period_seconds == 1  # the pod's own grace period
    wait_until(lambda: _missing(core.read_namespaced_pod, name, namespace), f"{name} gone")


def test_kubectl_shows_a_terminating_pod(
    apps: Any, core: Any, kubectl: Kubectl, namespace: str
) -> None:
    core.create_namespaced_pod(
        namespace,
        {
            "metadata": {"name": "held", "finalizers": ["example.com/hold"]},
            "spec": {"containers": [{"name": "main", "image": "registry.k8s.io/pause:3.9"}]},
        },
    )
    core.delete_namespaced_pod("held", namespace, grace_period_seconds=0)

    def terminating() -> bool:
        out = kubectl("get", "pod", "held", "-n", namespace, "--no-headers").stdout
        return "Terminating" in out

    wait_until(terminating, "kubectl to show the pod Terminating")
    core.patch_namespaced_pod("held", namespace, {"metadata": {"finalizers": None}})
    wait_until(lambda: _missing(core.read_namespaced_pod, "held", namespace), "the pod gone")


def test_a_finalizer_holds_an_object_until_it_is_removed(core: Any, namespace: str) -> None:
    core.create_namespaced_config_map(
        namespace, {"metadata": {"name": "held", "finalizers": ["example.com/hold"]}}
    )
    answer = core.delete_namespaced_config_map("held", namespace)
    # The answer is the object marked for deletion (the client leaves it a dict).
    assert _meta(answer)["deletionTimestamp"]
    held = core.read_namespaced_config_map("held", namespace)
    assert held.metadata.deletion_timestamp is not None
    assert held.metadata.finalizers == ["example.com/hold"]
    # Deleting it again changes nothing; it waits for its finalizer.
    core.delete_namespaced_config_map("held", namespace)
    assert core.read_namespaced_config_map("held", namespace).metadata.finalizers
    core.patch_namespaced_config_map("held", namespace, {"metadata": {"finalizers": None}})
    wait_until(lambda: _missing(core.read_namespaced_config_map, "held", namespace), "it gone")


def test_background_deletion_takes_the_replicasets_and_pods(
    apps: Any, core: Any, namespace: str
) -> None:
    from kubernetes import client

    _running_deployment(apps, core, namespace, "web", 2)
    apps.delete_namespaced_deployment(
        "web", namespace, body=client.V1DeleteOptions(propagation_policy="Background")
    )
    assert _missing(apps.read_namespaced_deployment, "web", namespace)
    wait_until(lambda: not apps.list_namespaced_replica_set(namespace).items, "the ReplicaSet gone")
    wait_until(
        lambda: not core.list_namespaced_pod(namespace, label_selector="app=web").items,
        "every pod gone",
    )


def test_foreground_deletion_waits_for_the_dependents(apps: Any, core: Any, namespace: str) -> None:
    from kubernetes import client

    _running_deployment(apps, core, namespace, "web", 2)
    answer = apps.delete_namespaced_deployment(
        "web", namespace, body=client.V1DeleteOptions(propagation_policy="Foreground")
    )
    # The answer is the Deployment marked for deletion, waiting on its dependents.
    assert "foregroundDeletion" in _meta(answer)["finalizers"]
    wait_until(
        lambda: _missing(apps.read_namespaced_deployment, "web", namespace), "the Deployment gone"
    )
    # By the time the owner is gone its dependents are too.
    assert not apps.list_namespaced_replica_set(namespace).items
    assert not core.list_namespaced_pod(namespace, label_selector="app=web").items


def test_orphan_deletion_leaves_the_dependents_without_owner(
    apps: Any, core: Any, kubectl: Kubectl, namespace: str
) -> None:
    _running_deployment(apps, core, namespace, "web", 2)
    result = kubectl("delete", "deployment", "web", "-n", namespace, "--cascade=orphan")
    assert result.returncode == 0, result.stderr
    wait_until(
        lambda: _missing(apps.read_namespaced_deployment, "web", namespace), "the Deployment gone"
    )
    (rs,) = wait_until(
        lambda: [
            r
            for r in apps.list_namespaced_replica_set(namespace).items
            if not r.metadata.owner_references
        ],
        "the ReplicaSet orphaned",
    )
    pods = live_pods(core, namespace, "app=web")
    assert len(pods) == 2
    # The pods keep their ReplicaSet, which keeps running them.
    assert {p.metadata.owner_references[0].uid for p in pods} == {rs.metadata.uid}
