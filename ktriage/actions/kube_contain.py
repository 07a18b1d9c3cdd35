"""Client calls of the workload and identity actions, as raw JSON like kube.py's.

Kept beside kube.py (same conventions: blocking, a decoded dict back, dry runs
with `dryRun=All`, our field manager) so that each set of actions has its own
calls. The runner calls them in threads.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ktriage.actions.kube import (
    Kube,
    fetch,
    fetch_items,
    send_delete,
    send_write,
)

_RBAC = "rbac.authorization.k8s.io/v1"
MERGE_PATCH = "application/merge-patch+json"


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


# ---- pods and workloads ------------------------------------------------------------


def _delete_namespaced(method: str) -> Callable[..., dict[str, Any]]:
    """A delete of one core namespaced object by CoreV1Api's `method` (looked up when
    called: the API class is imported on first use); with `uid`, only that very
    object (not a namesake made since)."""

    def delete(
        kube: Kube,
        namespace: str,
        name: str,
        *,
        grace_period: int | None = None,
        uid: str = "",
        dry_run: bool = False,
        timeout: Any = None,
    ) -> dict[str, Any]:
        body = _delete_options(dry_run, uid)
        if grace_period is not None:
            body["gracePeriodSeconds"] = grace_period
        call = getattr(kube.core, method)
        return send_delete(call, name, namespace, body=body, dry_run=dry_run, timeout=timeout)

    delete.__name__ = delete.__qualname__ = method.replace("_namespaced", "")
    return delete


delete_pod = _delete_namespaced("delete_namespaced_pod")
delete_service_account = _delete_namespaced("delete_namespaced_service_account")
delete_secret = _delete_namespaced("delete_namespaced_secret")


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
    return send_write(
        patchers[kind],
        name,
        namespace,
        body,
        _content_type=MERGE_PATCH,
        dry_run=dry_run,
        timeout=timeout,
    )


# ---- identities ------------------------------------------------------------------------


def list_bindings(kube: Kube, *, timeout: Any = None) -> list[dict[str, Any]]:
    """Every ClusterRoleBinding and RoleBinding (all namespaces), with kind and apiVersion."""
    api = kube.rbac
    out: list[dict[str, Any]] = []
    for kind, call in (
        ("ClusterRoleBinding", api.list_cluster_role_binding),
        ("RoleBinding", api.list_role_binding_for_all_namespaces),
    ):
        for item in fetch(call, timeout=timeout).get("items") or ():
            if isinstance(item, dict):
                item.setdefault("kind", kind)
                item.setdefault("apiVersion", _RBAC)
                out.append(item)
    return out


def get_binding(
    kube: Kube, kind: str, namespace: str, name: str, *, timeout: Any = None
) -> dict[str, Any]:
    api = kube.rbac
    if kind == "ClusterRoleBinding":
        obj = fetch(api.read_cluster_role_binding, name, timeout=timeout)
    else:
        obj = fetch(api.read_namespaced_role_binding, name, namespace, timeout=timeout)
    obj.setdefault("kind", kind)
    obj.setdefault("apiVersion", _RBAC)
    return obj


def delete_binding(
    kube: Kube,
    namespace: str,
    name: str,
    *,
    kind: str,
    uid: str = "",
    dry_run: bool = False,
    timeout: Any = None,
) -> dict[str, Any]:
    api = kube.rbac
    body = _delete_options(dry_run, uid)
    args: tuple[Any, ...]
    if kind == "ClusterRoleBinding":
        call, args = api.delete_cluster_role_binding, (name,)
    else:
        call, args = api.delete_namespaced_role_binding, (name, namespace)
    return send_delete(call, *args, body=body, dry_run=dry_run, timeout=timeout)


def create_binding(
    kube: Kube, obj: dict[str, Any], *, dry_run: bool = False, timeout: Any = None
) -> dict[str, Any]:
    api = kube.rbac
    args: tuple[Any, ...]
    if obj.get("kind") == "ClusterRoleBinding":
        call, args = api.create_cluster_role_binding, (obj,)
    else:
        namespace = (obj.get("metadata") or {}).get("namespace", "")
        call, args = api.create_namespaced_role_binding, (namespace, obj)
    return send_write(call, *args, dry_run=dry_run, timeout=timeout)


def replace_binding(
    kube: Kube, obj: dict[str, Any], *, dry_run: bool = False, timeout: Any = None
) -> dict[str, Any]:
    """PUT the binding (its resourceVersion makes it fail on a concurrent change)."""
    api = kube.rbac
    meta = obj.get("metadata") or {}
    name = meta.get("name", "")
    args: tuple[Any, ...]
    if obj.get("kind") == "ClusterRoleBinding":
        call, args = api.replace_cluster_role_binding, (name, obj)
    else:
        call, args = api.replace_namespaced_role_binding, (name, meta.get("namespace", ""), obj)
    return send_write(call, *args, dry_run=dry_run, timeout=timeout)


def get_service_account(
    kube: Kube, namespace: str, name: str, *, timeout: Any = None
) -> dict[str, Any]:
    return fetch(kube.core.read_namespaced_service_account, name, namespace, timeout=timeout)


def create_service_account(
    kube: Kube, namespace: str, obj: dict[str, Any], *, dry_run: bool = False, timeout: Any = None
) -> dict[str, Any]:
    create = kube.core.create_namespaced_service_account
    return send_write(create, namespace, obj, dry_run=dry_run, timeout=timeout)


def list_secrets(kube: Kube, namespace: str, *, timeout: Any = None) -> list[dict[str, Any]]:
    return fetch_items(
        kube.core.list_namespaced_secret,
        namespace,
        field_selector="type=kubernetes.io/service-account-token",
        timeout=timeout,
    )
