"""The official client, set up for actions: one ApiClient, raw JSON in and out.

Requests are sent by the official `kubernetes` client (CoreV1Api,
NetworkingV1Api, AppsV1Api, AuthorizationV1Api, AuthenticationV1Api). Replies
are read with `_preload_content=False` and decoded as plain dicts: the preview
and the evidence show exactly what the server returned, and the NetworkPolicy
evaluator works on the same dicts.

These functions block; the runner calls them in threads.
"""

from __future__ import annotations

import json
from typing import Any

from kubernetes import client as k8s

from ktriage.kubeclient import client_from_kubeconfig as api_client_from_kubeconfig

__all__ = ["Kube", "api_client_from_kubeconfig"]


def _write_options(dry_run: bool, timeout: Any) -> dict[str, Any]:
    """What every write sends: the dry-run switch, our field manager, a raw reply."""
    return {
        "dry_run": "All" if dry_run else None,
        "field_manager": "ktriage",
        "_preload_content": False,
        "_request_timeout": timeout,
    }


def _decode(response: Any) -> dict[str, Any]:
    data = response.data
    response.release_conn()
    if not data:
        return {}
    value = json.loads(data)
    return value if isinstance(value, dict) else {}


class Kube:
    """Blocking calls used by the actions; every method returns the decoded reply."""

    def __init__(self, api_client: k8s.ApiClient) -> None:
        self.api_client = api_client
        self.core = k8s.CoreV1Api(api_client)
        self.net = k8s.NetworkingV1Api(api_client)
        self.apps = k8s.AppsV1Api(api_client)
        self.batch = k8s.BatchV1Api(api_client)
        self.authz = k8s.AuthorizationV1Api(api_client)
        self.authn = k8s.AuthenticationV1Api(api_client)
        self.custom = k8s.CustomObjectsApi(api_client)
        self.apis = k8s.ApisApi(api_client)

    # ---- reads ---------------------------------------------------------------

    def get_pod(self, namespace: str, name: str, *, timeout: Any = None) -> dict[str, Any]:
        return _decode(
            self.core.read_namespaced_pod(
                name, namespace, _preload_content=False, _request_timeout=timeout
            )
        )

    def get_node(self, name: str, *, timeout: Any = None) -> dict[str, Any]:
        return _decode(self.core.read_node(name, _preload_content=False, _request_timeout=timeout))

    def list_network_policies(self, namespace: str, *, timeout: Any = None) -> list[dict[str, Any]]:
        reply = _decode(
            self.net.list_namespaced_network_policy(
                namespace, _preload_content=False, _request_timeout=timeout
            )
        )
        return list(reply.get("items") or [])

    def get_network_policy(
        self, namespace: str, name: str, *, timeout: Any = None
    ) -> dict[str, Any]:
        return _decode(
            self.net.read_namespaced_network_policy(
                name, namespace, _preload_content=False, _request_timeout=timeout
            )
        )

    def list_services(self, namespace: str, *, timeout: Any = None) -> list[dict[str, Any]]:
        reply = _decode(
            self.core.list_namespaced_service(
                namespace, _preload_content=False, _request_timeout=timeout
            )
        )
        return list(reply.get("items") or [])

    def get_controller(
        self, kind: str, namespace: str, name: str, *, timeout: Any = None
    ) -> dict[str, Any]:
        readers = {
            "ReplicaSet": self.apps.read_namespaced_replica_set,
            "StatefulSet": self.apps.read_namespaced_stateful_set,
            "DaemonSet": self.apps.read_namespaced_daemon_set,
            "Job": self.batch.read_namespaced_job,
        }
        return _decode(
            readers[kind](name, namespace, _preload_content=False, _request_timeout=timeout)
        )

    def list_pods(
        self, namespace: str, *, label_selector: str = "", timeout: Any = None
    ) -> list[dict[str, Any]]:
        reply = _decode(
            self.core.list_namespaced_pod(
                namespace,
                label_selector=label_selector or None,
                _preload_content=False,
                _request_timeout=timeout,
            )
        )
        return list(reply.get("items") or [])

    def list_daemonsets_all(self, *, timeout: Any = None) -> list[dict[str, Any]]:
        reply = _decode(
            self.apps.list_daemon_set_for_all_namespaces(
                _preload_content=False, _request_timeout=timeout
            )
        )
        return list(reply.get("items") or [])

    def api_groups(self, *, timeout: Any = None) -> dict[str, list[str]]:
        """Discovery (`/apis`): group name -> the versions it serves."""
        reply = _decode(
            self.apis.get_api_versions(_preload_content=False, _request_timeout=timeout)
        )
        out: dict[str, list[str]] = {}
        for group in reply.get("groups") or ():
            if isinstance(group, dict) and group.get("name"):
                versions = [str(v.get("version")) for v in group.get("versions") or ()]
                out[str(group["name"])] = versions
        return out

    def api_resources(self, group: str, version: str, *, timeout: Any = None) -> list[str]:
        """The resource names (plurals) a group version serves."""
        reply = _decode(
            self.custom.get_api_resources(
                group, version, _preload_content=False, _request_timeout=timeout
            )
        )
        return [str(r.get("name")) for r in reply.get("resources") or () if isinstance(r, dict)]

    def list_custom(
        self, group: str, version: str, plural: str, namespace: str, *, timeout: Any = None
    ) -> list[dict[str, Any]]:
        reply = _decode(
            self.custom.list_namespaced_custom_object(
                group, version, namespace, plural, _preload_content=False, _request_timeout=timeout
            )
        )
        return list(reply.get("items") or [])

    def get_custom(
        self,
        group: str,
        version: str,
        plural: str,
        namespace: str,
        name: str,
        *,
        timeout: Any = None,
    ) -> dict[str, Any]:
        return _decode(
            self.custom.get_namespaced_custom_object(
                group,
                version,
                namespace,
                plural,
                name,
                _preload_content=False,
                _request_timeout=timeout,
            )
        )

    def list_pod_events(
        self, namespace: str, name: str, *, timeout: Any = None
    ) -> list[dict[str, Any]]:
        reply = _decode(
            self.core.list_namespaced_event(
                namespace,
                field_selector=f"involvedObject.name={name},involvedObject.kind=Pod",
                _preload_content=False,
                _request_timeout=timeout,
            )
        )
        return list(reply.get("items") or [])

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
        return self.core.read_namespaced_pod_log(
            name,
            namespace,
            container=container,
            previous=previous or None,
            limit_bytes=limit_bytes,
            _preload_content=False,
            _request_timeout=timeout,
        )

    # ---- writes --------------------------------------------------------------

    def patch_node(
        self, name: str, body: dict[str, Any], *, dry_run: bool = False, timeout: Any = None
    ) -> dict[str, Any]:
        # A dict body goes out as application/strategic-merge-patch+json, as kubectl sends.
        return _decode(
            self.core.patch_node(
                name,
                body,
                **_write_options(dry_run, timeout),
            )
        )

    def patch_pod(
        self,
        namespace: str,
        name: str,
        body: dict[str, Any],
        *,
        dry_run: bool = False,
        timeout: Any = None,
    ) -> dict[str, Any]:
        return _decode(
            self.core.patch_namespaced_pod(
                name,
                namespace,
                body,
                **_write_options(dry_run, timeout),
            )
        )

    def create_network_policy(
        self, namespace: str, body: dict[str, Any], *, dry_run: bool = False, timeout: Any = None
    ) -> dict[str, Any]:
        return _decode(
            self.net.create_namespaced_network_policy(
                namespace,
                body,
                **_write_options(dry_run, timeout),
            )
        )

    def delete_network_policy(
        self, namespace: str, name: str, *, dry_run: bool = False, timeout: Any = None
    ) -> dict[str, Any]:
        return _decode(
            self.net.delete_namespaced_network_policy(
                name,
                namespace,
                dry_run="All" if dry_run else None,
                _preload_content=False,
                _request_timeout=timeout,
            )
        )

    def create_custom(
        self,
        group: str,
        version: str,
        plural: str,
        namespace: str,
        body: dict[str, Any],
        *,
        dry_run: bool = False,
        timeout: Any = None,
    ) -> dict[str, Any]:
        return _decode(
            self.custom.create_namespaced_custom_object(
                group, version, namespace, plural, body, **_write_options(dry_run, timeout)
            )
        )

    def delete_custom(
        self,
        group: str,
        version: str,
        plural: str,
        namespace: str,
        name: str,
        *,
        dry_run: bool = False,
        timeout: Any = None,
    ) -> dict[str, Any]:
        return _decode(
            self.custom.delete_namespaced_custom_object(
                group,
                version,
                namespace,
                plural,
                name,
                dry_run="All" if dry_run else None,
                _preload_content=False,
                _request_timeout=timeout,
            )
        )

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
        return _decode(
            self.authz.create_self_subject_access_review(
                body, _preload_content=False, _request_timeout=timeout
            )
        )

    def self_review(self, *, timeout: Any = None) -> dict[str, Any]:
        body = {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
        return _decode(
            self.authn.create_self_subject_review(
                body, _preload_content=False, _request_timeout=timeout
            )
        )
