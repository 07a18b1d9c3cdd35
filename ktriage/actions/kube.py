"""The official client, set up for actions: one ApiClient, raw JSON in and out.

Requests are sent by the official `kubernetes` client: its typed API classes
(CoreV1Api, NetworkingV1Api, AppsV1Api...), and its ApiClient alone for the access
and identity reviews (see kubeclient.raw_post). Replies are read with
`_preload_content=False` and decoded as plain dicts: the preview and the evidence
show exactly what the server returned, and the NetworkPolicy evaluator works on
the same dicts.

These functions block; the runner calls them in threads.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import cached_property
from typing import Any, NamedTuple

from kubernetes import client as k8s

from ktriage.kubeclient import client_from_kubeconfig as api_client_from_kubeconfig
from ktriage.kubeclient import raw_post

__all__ = [
    "CustomKind",
    "Kube",
    "api_client_from_kubeconfig",
    "call_raw",
    "decode",
    "dry_run_option",
    "fetch",
    "fetch_items",
    "send_delete",
    "send_write",
    "write_options",
]


def dry_run_option(dry_run: bool) -> dict[str, Any]:
    """The dry-run switch of a write (`dryRun=All`), or nothing."""
    return {"dry_run": "All" if dry_run else None}


def write_options(dry_run: bool) -> dict[str, Any]:
    """What a create, patch or replace sends: the dry-run switch and our field manager."""
    return {**dry_run_option(dry_run), "field_manager": "ktriage"}


def decode(response: Any) -> dict[str, Any]:
    """The JSON object of a reply read with `_preload_content=False` ({} when empty)."""
    data = response.data
    response.release_conn()
    if not data:
        return {}
    value = json.loads(data)
    return value if isinstance(value, dict) else {}


def call_raw(call: Callable[..., Any], *args: Any, timeout: Any = None, **kwargs: Any) -> Any:
    """One client call, its reply unread (`_preload_content=False`), within `timeout`."""
    return call(*args, _preload_content=False, _request_timeout=timeout, **kwargs)


def fetch(
    call: Callable[..., Any], *args: Any, timeout: Any = None, **kwargs: Any
) -> dict[str, Any]:
    """One client call, its reply decoded as a plain dict."""
    return decode(call_raw(call, *args, timeout=timeout, **kwargs))


def fetch_items(
    call: Callable[..., Any], *args: Any, timeout: Any = None, **kwargs: Any
) -> list[dict[str, Any]]:
    """One list call, the `items` of its reply."""
    return list(fetch(call, *args, timeout=timeout, **kwargs).get("items") or [])


def send_write(
    call: Callable[..., Any], *args: Any, dry_run: bool = False, timeout: Any = None, **kwargs: Any
) -> dict[str, Any]:
    """One create, patch or replace, sent with `write_options`; its reply decoded."""
    return fetch(call, *args, timeout=timeout, **kwargs, **write_options(dry_run))


def send_delete(
    call: Callable[..., Any], *args: Any, dry_run: bool = False, timeout: Any = None, **kwargs: Any
) -> dict[str, Any]:
    """One delete, sent with the dry-run switch (a delete has no field manager)."""
    return fetch(call, *args, timeout=timeout, **kwargs, **dry_run_option(dry_run))


class CustomKind(NamedTuple):
    """Where a custom resource is served: its API group, version and plural."""

    group: str
    version: str
    plural: str

    def path(self, namespace: str) -> tuple[str, str, str, str]:
        """The leading arguments of a CustomObjectsApi call in `namespace`."""
        return (self.group, self.version, namespace, self.plural)


def _api_class(name: str) -> Any:
    """An attribute holding the client's API class `name` for this Kube's ApiClient,
    made on first use: importing them all (core/v1 above all) takes most of a second,
    which a session that takes no action never pays. Typed by its annotation."""
    return cached_property(lambda kube: getattr(k8s, name)(kube.api_client))


class Kube:
    """Blocking calls used by the actions; every method returns the decoded reply."""

    core: k8s.CoreV1Api = _api_class("CoreV1Api")
    net: k8s.NetworkingV1Api = _api_class("NetworkingV1Api")
    apps: k8s.AppsV1Api = _api_class("AppsV1Api")
    batch: k8s.BatchV1Api = _api_class("BatchV1Api")
    rbac: k8s.RbacAuthorizationV1Api = _api_class("RbacAuthorizationV1Api")
    custom: k8s.CustomObjectsApi = _api_class("CustomObjectsApi")
    apis: k8s.ApisApi = _api_class("ApisApi")

    def __init__(self, api_client: k8s.ApiClient) -> None:
        self.api_client = api_client

    # ---- reads ---------------------------------------------------------------

    def get_pod(self, namespace: str, name: str, *, timeout: Any = None) -> dict[str, Any]:
        return fetch(self.core.read_namespaced_pod, name, namespace, timeout=timeout)

    def get_node(self, name: str, *, timeout: Any = None) -> dict[str, Any]:
        return fetch(self.core.read_node, name, timeout=timeout)

    def list_network_policies(self, namespace: str, *, timeout: Any = None) -> list[dict[str, Any]]:
        return fetch_items(self.net.list_namespaced_network_policy, namespace, timeout=timeout)

    def get_network_policy(
        self, namespace: str, name: str, *, timeout: Any = None
    ) -> dict[str, Any]:
        return fetch(self.net.read_namespaced_network_policy, name, namespace, timeout=timeout)

    def list_services(self, namespace: str, *, timeout: Any = None) -> list[dict[str, Any]]:
        return fetch_items(self.core.list_namespaced_service, namespace, timeout=timeout)

    def get_controller(
        self, kind: str, namespace: str, name: str, *, timeout: Any = None
    ) -> dict[str, Any]:
        readers = {
            "Deployment": self.apps.read_namespaced_deployment,
            "ReplicaSet": self.apps.read_namespaced_replica_set,
            "StatefulSet": self.apps.read_namespaced_stateful_set,
            "DaemonSet": self.apps.read_namespaced_daemon_set,
            "Job": self.batch.read_namespaced_job,
        }
        return fetch(readers[kind], name, namespace, timeout=timeout)

    def list_pods(
        self, namespace: str, *, label_selector: str = "", timeout: Any = None
    ) -> list[dict[str, Any]]:
        return fetch_items(
            self.core.list_namespaced_pod,
            namespace,
            label_selector=label_selector or None,
            timeout=timeout,
        )

    def list_daemonsets_all(self, *, timeout: Any = None) -> list[dict[str, Any]]:
        return fetch_items(self.apps.list_daemon_set_for_all_namespaces, timeout=timeout)

    def api_groups(self, *, timeout: Any = None) -> dict[str, list[str]]:
        """Discovery (`/apis`): group name -> the versions it serves."""
        reply = fetch(self.apis.get_api_versions, timeout=timeout)
        out: dict[str, list[str]] = {}
        for group in reply.get("groups") or ():
            if isinstance(group, dict) and group.get("name"):
                versions = [str(v.get("version")) for v in group.get("versions") or ()]
                out[str(group["name"])] = versions
        return out

    def api_resources(self, group: str, version: str, *, timeout: Any = None) -> list[str]:
        """The resource names (plurals) a group version serves."""
        reply = fetch(self.custom.get_api_resources, group, version, timeout=timeout)
        return [str(r.get("name")) for r in reply.get("resources") or () if isinstance(r, dict)]

    def list_custom(
        self, kind: CustomKind, namespace: str, *, timeout: Any = None
    ) -> list[dict[str, Any]]:
        return fetch_items(
            self.custom.list_namespaced_custom_object, *kind.path(namespace), timeout=timeout
        )

    def get_custom(
        self, kind: CustomKind, namespace: str, name: str, *, timeout: Any = None
    ) -> dict[str, Any]:
        read = self.custom.get_namespaced_custom_object
        return fetch(read, *kind.path(namespace), name, timeout=timeout)

    def list_pod_events(
        self, namespace: str, name: str, *, timeout: Any = None
    ) -> list[dict[str, Any]]:
        return fetch_items(
            self.core.list_namespaced_event,
            namespace,
            field_selector=f"involvedObject.name={name},involvedObject.kind=Pod",
            timeout=timeout,
        )

    def open_log(
        self,
        namespace: str,
        name: str,
        container: str,
        *,
        previous: bool = False,
        limit_bytes: int | None = None,
        timeout: Any = None,
    ) -> Any:
        """The urllib3 response of a pod log, unread: the caller streams it."""
        return call_raw(
            self.core.read_namespaced_pod_log,
            name,
            namespace,
            container=container,
            previous=previous or None,
            limit_bytes=limit_bytes,
            timeout=timeout,
        )

    # ---- writes --------------------------------------------------------------

    def patch_node(
        self, name: str, body: dict[str, Any], *, dry_run: bool = False, timeout: Any = None
    ) -> dict[str, Any]:
        # A dict body goes out as application/strategic-merge-patch+json, as kubectl sends.
        return send_write(self.core.patch_node, name, body, dry_run=dry_run, timeout=timeout)

    def patch_pod(
        self,
        namespace: str,
        name: str,
        body: dict[str, Any],
        *,
        dry_run: bool = False,
        timeout: Any = None,
    ) -> dict[str, Any]:
        return send_write(
            self.core.patch_namespaced_pod, name, namespace, body, dry_run=dry_run, timeout=timeout
        )

    def create_network_policy(
        self, namespace: str, body: dict[str, Any], *, dry_run: bool = False, timeout: Any = None
    ) -> dict[str, Any]:
        create = self.net.create_namespaced_network_policy
        return send_write(create, namespace, body, dry_run=dry_run, timeout=timeout)

    def delete_network_policy(
        self, namespace: str, name: str, *, dry_run: bool = False, timeout: Any = None
    ) -> dict[str, Any]:
        delete = self.net.delete_namespaced_network_policy
        return send_delete(delete, name, namespace, dry_run=dry_run, timeout=timeout)

    def create_custom(
        self,
        kind: CustomKind,
        namespace: str,
        body: dict[str, Any],
        *,
        dry_run: bool = False,
        timeout: Any = None,
    ) -> dict[str, Any]:
        create = self.custom.create_namespaced_custom_object
        return send_write(create, *kind.path(namespace), body, dry_run=dry_run, timeout=timeout)

    def delete_custom(
        self,
        kind: CustomKind,
        namespace: str,
        name: str,
        *,
        dry_run: bool = False,
        timeout: Any = None,
    ) -> dict[str, Any]:
        delete = self.custom.delete_namespaced_custom_object
        return send_delete(delete, *kind.path(namespace), name, dry_run=dry_run, timeout=timeout)

    # ---- who am I, what may I do --------------------------------------------

    def access_review(
        self,
        *,
        verb: str,
        resource: str,
        group: str = "",
        subresource: str = "",
        namespace: str = "",
        timeout: Any = None,
    ) -> dict[str, Any]:
        attributes: dict[str, str] = {"verb": verb, "resource": resource, "group": group}
        if subresource:
            attributes["subresource"] = subresource
        if namespace:
            attributes["namespace"] = namespace
        body = {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SelfSubjectAccessReview",
            "spec": {"resourceAttributes": attributes},
        }
        # Sent without the typed API class (see kubeclient.raw_post): every live
        # session asks this at start, while its first pods load.
        path = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"
        return decode(raw_post(self.api_client, path, body, timeout=timeout))

    def self_review(self, *, timeout: Any = None) -> dict[str, Any]:
        body = {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
        path = "/apis/authentication.k8s.io/v1/selfsubjectreviews"
        return decode(raw_post(self.api_client, path, body, timeout=timeout))
