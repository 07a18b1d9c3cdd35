"""Client calls of the workload and identity actions, as raw JSON like kube.py's.

Kept beside kube.py (same conventions: blocking, a decoded dict back, dry runs
with `dryRun=All`, our field manager) so that each set of actions has its own
calls. The runner calls them in threads.
"""

from __future__ import annotations

import json
from typing import Any

from kubernetes import client as k8s

from ktriage.actions.kube import Kube

_RBAC = "rbac.authorization.k8s.io/v1"
MERGE_PATCH = "application/merge-patch+json"


def _decode(response: Any) -> dict[str, Any]:
    data = response.data
    response.release_conn()
    if not data:
        return {}
    value = json.loads(data)
    return value if isinstance(value, dict) else {}


def _raw(dry_run: bool, timeout: Any) -> dict[str, Any]:
    return {
        "dry_run": "All" if dry_run else None,
        "_preload_content": False,
        "_request_timeout": timeout,
    }


def _delete_options(dry_run: bool, uid: str = "") -> dict[str, Any]:
    """The body of a delete. The API server reads a delete's options from its body when
    it has one and then ignores the query, so a dry run must say so here too; with
    `uid`, only that very object is deleted (not a namesake made since)."""
    body: dict[str, Any] = {"apiVersion": "v1", "kind": "DeleteOptions"}
    if dry_run:
        body["dryRun"] = ["All"]
    if uid:
        body["preconditions"] = {"uid": uid}
    return body


def _rbac(kube: Kube) -> k8s.RbacAuthorizationV1Api:
    return k8s.RbacAuthorizationV1Api(kube.api_client)


# ---- pods and workloads ------------------------------------------------------------


def delete_pod(
    kube: Kube,
    namespace: str,
    name: str,
    *,
    grace_period: int | None = None,
    uid: str = "",
    dry_run: bool = False,
    timeout: Any = None,
) -> dict[str, Any]:
    """Delete a pod; with `uid`, only that very pod (not a namesake made since)."""
    body = _delete_options(dry_run, uid)
    if grace_period is not None:
        body["gracePeriodSeconds"] = grace_period
    return _decode(
        kube.core.delete_namespaced_pod(name, namespace, body=body, **_raw(dry_run, timeout))
    )


def list_pods(
    kube: Kube, namespace: str, *, label_selector: str = "", timeout: Any = None
) -> list[dict[str, Any]]:
    reply = _decode(
        kube.core.list_namespaced_pod(
            namespace,
            label_selector=label_selector or None,
            _preload_content=False,
            _request_timeout=timeout,
        )
    )
    return list(reply.get("items") or [])


def get_workload(
    kube: Kube, kind: str, namespace: str, name: str, *, timeout: Any = None
) -> dict[str, Any]:
    readers = {
        "Deployment": kube.apps.read_namespaced_deployment,
        "StatefulSet": kube.apps.read_namespaced_stateful_set,
        "ReplicaSet": kube.apps.read_namespaced_replica_set,
        "DaemonSet": kube.apps.read_namespaced_daemon_set,
    }
    return _decode(readers[kind](name, namespace, _preload_content=False, _request_timeout=timeout))


def patch_scale(
    kube: Kube,
    kind: str,
    namespace: str,
    name: str,
    replicas: int,
    *,
    dry_run: bool = False,
    timeout: Any = None,
) -> dict[str, Any]:
    """Set spec.replicas through the scale subresource, as `kubectl scale` does."""
    patchers = {
        "Deployment": kube.apps.patch_namespaced_deployment_scale,
        "StatefulSet": kube.apps.patch_namespaced_stateful_set_scale,
        "ReplicaSet": kube.apps.patch_namespaced_replica_set_scale,
    }
    body = {"spec": {"replicas": replicas}}
    return _decode(
        patchers[kind](
            name,
            namespace,
            body,
            field_manager="ktriage",
            _content_type=MERGE_PATCH,
            **_raw(dry_run, timeout),
        )
    )


# ---- identities ------------------------------------------------------------------------


def list_bindings(kube: Kube, *, timeout: Any = None) -> list[dict[str, Any]]:
    """Every ClusterRoleBinding and RoleBinding (all namespaces), with kind and apiVersion."""
    api = _rbac(kube)
    out: list[dict[str, Any]] = []
    for kind, call in (
        ("ClusterRoleBinding", api.list_cluster_role_binding),
        ("RoleBinding", api.list_role_binding_for_all_namespaces),
    ):
        reply = _decode(call(_preload_content=False, _request_timeout=timeout))
        for item in reply.get("items") or ():
            if isinstance(item, dict):
                item.setdefault("kind", kind)
                item.setdefault("apiVersion", _RBAC)
                out.append(item)
    return out


def get_binding(
    kube: Kube, kind: str, namespace: str, name: str, *, timeout: Any = None
) -> dict[str, Any]:
    api = _rbac(kube)
    if kind == "ClusterRoleBinding":
        reply = api.read_cluster_role_binding(
            name, _preload_content=False, _request_timeout=timeout
        )
    else:
        reply = api.read_namespaced_role_binding(
            name, namespace, _preload_content=False, _request_timeout=timeout
        )
    obj = _decode(reply)
    obj.setdefault("kind", kind)
    obj.setdefault("apiVersion", _RBAC)
    return obj


def delete_binding(
    kube: Kube,
    kind: str,
    namespace: str,
    name: str,
    *,
    uid: str = "",
    dry_run: bool = False,
    timeout: Any = None,
) -> dict[str, Any]:
    api = _rbac(kube)
    body = _delete_options(dry_run, uid)
    if kind == "ClusterRoleBinding":
        return _decode(api.delete_cluster_role_binding(name, body=body, **_raw(dry_run, timeout)))
    return _decode(
        api.delete_namespaced_role_binding(name, namespace, body=body, **_raw(dry_run, timeout))
    )


def create_binding(
    kube: Kube, obj: dict[str, Any], *, dry_run: bool = False, timeout: Any = None
) -> dict[str, Any]:
    api = _rbac(kube)
    opts = {**_raw(dry_run, timeout), "field_manager": "ktriage"}
    if obj.get("kind") == "ClusterRoleBinding":
        return _decode(api.create_cluster_role_binding(obj, **opts))
    namespace = (obj.get("metadata") or {}).get("namespace", "")
    return _decode(api.create_namespaced_role_binding(namespace, obj, **opts))


def replace_binding(
    kube: Kube, obj: dict[str, Any], *, dry_run: bool = False, timeout: Any = None
) -> dict[str, Any]:
    """PUT the binding (its resourceVersion makes it fail on a concurrent change)."""
    api = _rbac(kube)
    meta = obj.get("metadata") or {}
    opts = {**_raw(dry_run, timeout), "field_manager": "ktriage"}
    if obj.get("kind") == "ClusterRoleBinding":
        return _decode(api.replace_cluster_role_binding(meta.get("name", ""), obj, **opts))
    return _decode(
        api.replace_namespaced_role_binding(
            meta.get("name", ""), meta.get("namespace", ""), obj, **opts
        )
    )


def get_service_account(
    kube: Kube, namespace: str, name: str, *, timeout: Any = None
) -> dict[str, Any]:
    return _decode(
        kube.core.read_namespaced_service_account(
            name, namespace, _preload_content=False, _request_timeout=timeout
        )
    )


def delete_service_account(
    kube: Kube,
    namespace: str,
    name: str,
    *,
    uid: str = "",
    dry_run: bool = False,
    timeout: Any = None,
) -> dict[str, Any]:
    body = _delete_options(dry_run, uid)
    return _decode(
        kube.core.delete_namespaced_service_account(
            name, namespace, body=body, **_raw(dry_run, timeout)
        )
    )


def create_service_account(
    kube: Kube, namespace: str, obj: dict[str, Any], *, dry_run: bool = False, timeout: Any = None
) -> dict[str, Any]:
    opts = {**_raw(dry_run, timeout), "field_manager": "ktriage"}
    return _decode(kube.core.create_namespaced_service_account(namespace, obj, **opts))


def list_secrets(kube: Kube, namespace: str, *, timeout: Any = None) -> list[dict[str, Any]]:
    reply = _decode(
        kube.core.list_namespaced_secret(
            namespace,
            field_selector="type=kubernetes.io/service-account-token",
            _preload_content=False,
            _request_timeout=timeout,
        )
    )
    return list(reply.get("items") or [])


def delete_secret(
    kube: Kube,
    namespace: str,
    name: str,
    *,
    uid: str = "",
    dry_run: bool = False,
    timeout: Any = None,
) -> dict[str, Any]:
    body = _delete_options(dry_run, uid)
    return _decode(
        kube.core.delete_namespaced_secret(name, namespace, body=body, **_raw(dry_run, timeout))
    )
