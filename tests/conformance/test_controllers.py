"""Workload controllers as kube-controller-manager runs them: a Deployment makes a
ReplicaSet that keeps its pods, replaces lost ones, releases relabelled ones, and
rolls out, scales and rolls back through kubectl."""

from __future__ import annotations

import re
from typing import Any

import pytest
from conformance_support import Kubectl, Target
from workload_support import deployment, ensure_nodes, live_pods, ready_count, wait_until

REVISION = "deployment.kubernetes.io/revision"


@pytest.fixture
def apps(api: Any, target: Target) -> Any:
    from kubernetes import client

    ensure_nodes(target)
    return client.AppsV1Api(api)


@pytest.fixture
def core(api: Any) -> Any:
    from kubernetes import client

    return client.CoreV1Api(api)


def _rolled_out(kubectl: Kubectl, namespace: str, name: str) -> None:
    result = kubectl("rollout", "status", f"deployment/{name}", "-n", namespace, "--timeout=60s")
    assert result.returncode == 0, result.stderr
    assert f'deployment "{name}" successfully rolled out' in result.stdout


def _replica_sets(apps: Any, namespace: str, name: str) -> list[Any]:
    return apps.list_namespaced_replica_set(namespace, label_selector=f"app={name}").items


def test_deployment_makes_a_replicaset_whose_pods_it_owns(
    apps: Any, core: Any, kubectl: Kubectl, namespace: str
) -> None:
    apps.create_namespaced_deployment(namespace, deployment("web", 2))
    _rolled_out(kubectl, namespace, "web")
    (rs,) = _replica_sets(apps, namespace, "web")
    pth = rs.metadata.labels["pod-template-hash"]
    assert rs.metadata.name == f"web-{pth}"
    assert rs.metadata.annotations[REVISION] == "1"
    owner = rs.metadata.owner_references[0]
    assert (owner.kind, owner.name, owner.controller, owner.block_owner_deletion) == (
        "Deployment",
        "web",
        True,
        True,
    )
    pods = live_pods(core, namespace, "app=web")
    assert len(pods) == 2
    for pod in pods:
        assert re.fullmatch(rf"web-{pth}-[bcdfghjklmnpqrstvwxz2456789]{{5}}", pod.metadata.name)
        assert pod.metadata.generate_name == f"web-{pth}-"
        assert pod.metadata.labels["pod-template-hash"] == pth
        ref = pod.metadata.owner_references[0]
        assert (ref.kind, ref.name, ref.uid) == ("ReplicaSet", rs.metadata.name, rs.metadata.uid)
        assert ref.controller and ref.block_owner_deletion
    dep = apps.read_namespaced_deployment("web", namespace)
    assert dep.metadata.annotations[REVISION] == "1"
    assert dep.status.observed_generation == dep.metadata.generation
    assert (dep.status.updated_replicas, dep.status.available_replicas) == (2, 2)


def test_a_deleted_pod_is_replaced(apps: Any, core: Any, kubectl: Kubectl, namespace: str) -> None:
    apps.create_namespaced_deployment(namespace, deployment("web", 2))
    _rolled_out(kubectl, namespace, "web")
    before = {p.metadata.name for p in live_pods(core, namespace, "app=web")}
    victim = sorted(before)[0]
    core.delete_namespaced_pod(victim, namespace)

    def replaced() -> bool:
        names = {p.metadata.name for p in live_pods(core, namespace, "app=web")}
        return len(names) == 2 and victim not in names

    wait_until(replaced, f"a replacement for {victim}")


def test_a_relabelled_pod_is_released_and_replaced(
    apps: Any, core: Any, kubectl: Kubectl, namespace: str
) -> None:
    """What detach does: the pod leaves the selector, loses its ownerReference, and the
    ReplicaSet starts another; the detached pod keeps running."""
    apps.create_namespaced_deployment(namespace, deployment("web", 2))
    _rolled_out(kubectl, namespace, "web")
    victim = live_pods(core, namespace, "app=web")[0].metadata.name
    core.patch_namespaced_pod(victim, namespace, {"metadata": {"labels": {"app": None}}})

    def released() -> Any:
        pod = core.read_namespaced_pod(victim, namespace)
        return not pod.metadata.owner_references and pod

    pod = wait_until(released, f"{victim} to lose its ownerReference")
    assert pod.metadata.deletion_timestamp is None
    assert pod.status.phase == "Running"
    wait_until(
        lambda: ready_count(live_pods(core, namespace, "app=web")) == 2,
        "two ready pods matching the selector again",
    )
    assert victim not in {p.metadata.name for p in live_pods(core, namespace, "app=web")}
    _rolled_out(kubectl, namespace, "web")


def test_kubectl_scale_adds_and_removes_pods(
    apps: Any, core: Any, kubectl: Kubectl, namespace: str
) -> None:
    apps.create_namespaced_deployment(namespace, deployment("web", 1))
    _rolled_out(kubectl, namespace, "web")
    result = kubectl("scale", "deployment/web", "--replicas=3", "-n", namespace)
    assert result.returncode == 0, result.stderr
    _rolled_out(kubectl, namespace, "web")
    wait_until(lambda: len(live_pods(core, namespace, "app=web")) == 3, "three pods")
    result = kubectl("scale", "deployment/web", "--replicas=1", "-n", namespace)
    assert result.returncode == 0, result.stderr
    wait_until(lambda: len(live_pods(core, namespace, "app=web")) == 1, "one pod left")
    (rs,) = _replica_sets(apps, namespace, "web")
    assert rs.spec.replicas == 1


def test_set_image_rolls_out_a_new_replicaset_and_undo_rolls_back(
    apps: Any, core: Any, kubectl: Kubectl, namespace: str
) -> None:
    apps.create_namespaced_deployment(namespace, deployment("web", 2, "nginx:1.27"))
    _rolled_out(kubectl, namespace, "web")
    result = kubectl("set", "image", "deployment/web", "main=nginx:1.28", "-n", namespace)
    assert result.returncode == 0, result.stderr
    _rolled_out(kubectl, namespace, "web")
    sets = {rs.metadata.annotations[REVISION]: rs for rs in _replica_sets(apps, namespace, "web")}
    assert set(sets) == {"1", "2"}
    assert sets["1"].spec.replicas == 0 and sets["2"].spec.replicas == 2
    wait_until(
        lambda: (
            {p.spec.containers[0].image for p in live_pods(core, namespace, "app=web")}
            == {"nginx:1.28"}
        ),
        "only pods of the new image",
    )

    result = kubectl("rollout", "undo", "deployment/web", "-n", namespace)
    assert result.returncode == 0, result.stderr
    _rolled_out(kubectl, namespace, "web")
    dep = apps.read_namespaced_deployment("web", namespace)
    assert dep.spec.template.spec.containers[0].image == "nginx:1.27"
    assert dep.metadata.annotations[REVISION] == "3"
    # The first set is the new one again, under the next revision.
    by_name = {rs.metadata.name: rs for rs in _replica_sets(apps, namespace, "web")}
    assert by_name[sets["1"].metadata.name].metadata.annotations[REVISION] == "3"
    assert len(by_name) == 2
    history = kubectl("rollout", "history", "deployment/web", "-n", namespace)
    assert history.returncode == 0, history.stderr
    assert re.search(r"^2\s", history.stdout, re.M) and re.search(r"^3\s", history.stdout, re.M)


def test_rollout_restart_replaces_every_pod(
    apps: Any, core: Any, kubectl: Kubectl, namespace: str
) -> None:
    apps.create_namespaced_deployment(namespace, deployment("web", 2))
    _rolled_out(kubectl, namespace, "web")
    before = {p.metadata.name for p in live_pods(core, namespace, "app=web")}
    result = kubectl("rollout", "restart", "deployment/web", "-n", namespace)
    assert result.returncode == 0, result.stderr
    _rolled_out(kubectl, namespace, "web")

    def all_new() -> bool:
        names = {p.metadata.name for p in live_pods(core, namespace, "app=web")}
        return len(names) == 2 and not names & before

    wait_until(all_new, "two pods, none of them from before the restart")
    dep = apps.read_namespaced_deployment("web", namespace)
    assert "kubectl.kubernetes.io/restartedAt" in dep.spec.template.metadata.annotations
    assert dep.metadata.annotations[REVISION] == "2"


def test_a_replicaset_adopts_a_matching_orphan_pod(apps: Any, core: Any, namespace: str) -> None:
    core.create_namespaced_pod(
        namespace,
        {
            "metadata": {"name": "stray", "labels": {"app": "cache"}},
            "spec": {"containers": [{"name": "main", "image": "registry.k8s.io/pause:3.9"}]},
        },
    )
    rs = {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {"name": "cache"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "cache"}},
            "template": deployment("cache")["spec"]["template"],
        },
    }
    made = apps.create_namespaced_replica_set(namespace, rs)

    def adopted() -> bool:
        pod = core.read_namespaced_pod("stray", namespace)
        refs = pod.metadata.owner_references or []
        return any(r.uid == made.metadata.uid and r.controller for r in refs)

    wait_until(adopted, "the ReplicaSet to adopt the matching pod")
    wait_until(lambda: len(live_pods(core, namespace, "app=cache")) == 2, "two pods in all")
    # Adopted, so only one more was made.
    assert len(live_pods(core, namespace, "app=cache")) == 2
