"""Jobs run to completion, DaemonSets put one pod on each node."""

from __future__ import annotations

from typing import Any

import pytest
from conformance_support import Kubectl, Target
from workload_support import ensure_nodes, wait_until


@pytest.fixture
def apps(api: Any, target: Target) -> Any:
    from kubernetes import client

    ensure_nodes(target)
    return client.AppsV1Api(api)


def test_a_job_completes(api: Any, apps: Any, kubectl: Kubectl, namespace: str) -> None:
    from kubernetes import client

    batch = client.BatchV1Api(api)
    core = client.CoreV1Api(api)
    batch.create_namespaced_job(
        namespace,
        {
            "metadata": {"name": "report"},
            "spec": {
                "completions": 2,
                "parallelism": 1,
                "template": {
                    "spec": {
                        "restartPolicy": "Never",
                        "containers": [
                            {"name": "main", "image": "busybox:1.36", "command": ["true"]}
                        ],
                    }
                },
            },
        },
    )
    result = kubectl(
        "wait", "--for=condition=complete", "job/report", "-n", namespace, "--timeout=60s"
    )
    assert result.returncode == 0, result.stderr
    job = batch.read_namespaced_job("report", namespace)
    assert job.status.succeeded == 2
    assert job.status.completion_time is not None
    pods = core.list_namespaced_pod(namespace, label_selector="job-name=report").items
    assert len(pods) == 2
    assert {p.status.phase for p in pods} == {"Succeeded"}
    for pod in pods:
        assert pod.metadata.name.startswith("report-")
        assert pod.metadata.owner_references[0].uid == job.metadata.uid


def test_a_daemonset_runs_one_pod_per_node(
    api: Any, apps: Any, kubectl: Kubectl, namespace: str
) -> None:
    from kubernetes import client

    core = client.CoreV1Api(api)
    nodes = {n.metadata.name for n in core.list_node().items}
    apps.create_namespaced_daemon_set(
        namespace,
        {
            "metadata": {"name": "agent"},
            "spec": {
                "selector": {"matchLabels": {"app": "agent"}},
                "template": {
                    "metadata": {"labels": {"app": "agent"}},
                    "spec": {
                        "tolerations": [{"operator": "Exists"}],
                        "terminationGracePeriodSeconds": 1,
                        "containers": [{"name": "main", "image": "registry.k8s.io/pause:3.9"}],
                    },
                },
            },
        },
    )
    result = kubectl("rollout", "status", "daemonset/agent", "-n", namespace, "--timeout=60s")
    assert result.returncode == 0, result.stderr

    def placed() -> list[Any]:
        pods = core.list_namespaced_pod(namespace, label_selector="app=agent").items
        return [p for p in pods if p.metadata.deletion_timestamp is None]

    pods = wait_until(lambda: len(placed()) == len(nodes) and placed(), "a pod per node")
    assert sorted(p.spec.node_name for p in pods) == sorted(nodes)
    ds = apps.read_namespaced_daemon_set("agent", namespace)
    assert ds.status.desired_number_scheduled == len(nodes)
    assert ds.status.number_ready == len(nodes)


def test_a_statefulset_makes_ordered_pods_and_replaces_them_by_name(
    api: Any, apps: Any, kubectl: Kubectl, namespace: str
) -> None:
    from kubernetes import client

    core = client.CoreV1Api(api)
    apps.create_namespaced_stateful_set(
        namespace,
        {
            "metadata": {"name": "db"},
            "spec": {
                "replicas": 3,
                "serviceName": "db",
                "selector": {"matchLabels": {"app": "db"}},
                "template": {
                    "metadata": {"labels": {"app": "db"}},
                    "spec": {
                        "terminationGracePeriodSeconds": 1,
                        "containers": [{"name": "main", "image": "registry.k8s.io/pause:3.9"}],
                    },
                },
            },
        },
    )
    result = kubectl("rollout", "status", "statefulset/db", "-n", namespace, "--timeout=60s")
    assert result.returncode == 0, result.stderr

    def names() -> list[str]:
        pods = core.list_namespaced_pod(namespace, label_selector="app=db").items
        return sorted(p.metadata.name for p in pods if p.metadata.deletion_timestamp is None)

    wait_until(lambda: names() == ["db-0", "db-1", "db-2"], "db-0, db-1 and db-2")
    first = core.read_namespaced_pod("db-1", namespace)
    assert first.spec.hostname == "db-1" and first.spec.subdomain == "db"
    assert first.metadata.labels["statefulset.kubernetes.io/pod-name"] == "db-1"
    core.delete_namespaced_pod("db-1", namespace)

    def replaced() -> bool:
        try:
            pod = core.read_namespaced_pod("db-1", namespace)
        except client.ApiException as exc:
            if exc.status == 404:  # between the old pod's removal and its replacement
                return False
            raise
        ready = any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])
        return pod.metadata.uid != first.metadata.uid and ready

    wait_until(replaced, "a new db-1")
    apps.patch_namespaced_stateful_set_scale("db", namespace, {"spec": {"replicas": 1}})
    wait_until(lambda: names() == ["db-0"], "scaled down to db-0 alone")
