"""The target answers as a cluster: version, discovery and a namespace of our own."""

from __future__ import annotations

from typing import Any

from conformance_support import Kubectl


def test_the_target_lists_namespaces_and_our_own_exists(api: Any, namespace: str) -> None:
    from kubernetes import client

    names = {ns.metadata.name for ns in client.CoreV1Api(api).list_namespace().items}
    assert namespace in names


def test_kubectl_reaches_the_target(kubectl: Kubectl, namespace: str) -> None:
    result = kubectl("get", "namespace", namespace, "-o", "name")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"namespace/{namespace}"
