"""Deleting a namespace as a real control plane does: it goes Terminating (deletionTimestamp,
the `kubernetes` finalizer kept), refuses new content, has its content deleted (pods
gracefully), and only then disappears."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from conformance_support import Kubectl, Target
from workload_support import ensure_nodes, wait_until

PAUSE = "registry.k8s.io/pause:3.9"


@pytest.fixture
def core(api: Any, target: Target) -> Any:
    from kubernetes import client

    ensure_nodes(target)
    return client.CoreV1Api(api)


def _gone(core: Any, name: str) -> bool:
    from kubernetes import client

    try:
        core.read_namespace(name)
    except client.ApiException as exc:
        return exc.status == 404
    return False


def _fresh_namespace(core: Any) -> str:
    name = f"ktriage-e2e-del-{uuid.uuid4().hex[:8]}"
    created = core.create_namespace({"metadata": {"name": name}})
    assert created.spec.finalizers == ["kubernetes"]
    assert created.status.phase == "Active"
    return name


def test_namespace_deletion_terminates_refuses_content_then_disappears(core: Any) -> None:
    from kubernetes import client

    name = _fresh_namespace(core)
    try:
        core.create_namespaced_pod(
            name,
            {
                "metadata": {"name": "worker"},
                "spec": {
                    "terminationGracePeriodSeconds": 2,
                    "containers": [{"name": "main", "image": PAUSE}],
                },
            },
        )
        core.create_namespaced_config_map(name, {"metadata": {"name": "settings"}})
        # A running pod takes its grace period to stop, so the namespace stays a while.
        wait_until(
            lambda: core.read_namespaced_pod("worker", name).status.phase == "Running",
            "pod worker to run",
        )
        core.delete_namespace(name)
        ns = core.read_namespace(name)
        assert ns.metadata.deletion_timestamp is not None
        assert ns.status.phase == "Terminating"
        assert ns.spec.finalizers == ["kubernetes"]

        with pytest.raises(client.ApiException) as refused:
            core.create_namespaced_config_map(name, {"metadata": {"name": "late"}})
        assert refused.value.status == 403
        body = json.loads(refused.value.body)
        assert body["reason"] == "Forbidden"
        assert body["message"] == (
            'configmaps "late" is forbidden: unable to create new content in namespace '
            f"{name} because it is being terminated"
        )
        causes = body["details"].get("causes") or []
        assert any(c.get("reason") == "NamespaceTerminating" for c in causes)

        wait_until(lambda: _gone(core, name), f"namespace {name} to disappear", timeout=60)
        with pytest.raises(client.ApiException) as absent:
            core.read_namespaced_config_map("settings", name)
        assert absent.value.status == 404
    finally:
        try:
            core.delete_namespace(name)
        except client.ApiException:
            pass


def test_kubectl_delete_namespace_wait_returns(core: Any, kubectl: Kubectl) -> None:
    name = _fresh_namespace(core)
    core.create_namespaced_config_map(name, {"metadata": {"name": "settings"}})
    result = kubectl("delete", "namespace", name, "--wait=true", "--timeout=60s", timeout=90)
    assert result.returncode == 0, result.stderr
    assert f'namespace "{name}" deleted' in result.stdout
    assert _gone(core, name)
