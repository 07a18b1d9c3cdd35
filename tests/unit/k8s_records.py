"""Builders of realistic records: audit.k8s.io/v1 events as kube-apiserver writes them,
Falco JSON alerts and Tetragon export lines, in the shapes of the captured fixtures
(falcosecurity/falco k8s_audit trace files, panther-analysis EKS tests, cilium/tetragon
examples). Each builder returns one JSON line (bytes)."""

from __future__ import annotations

import itertools
import time
import uuid
from typing import Any

import orjson

T0 = 1_790_000_000.0
_ids = itertools.count(1)


def rfc3339(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int(ts % 1 * 1e6):06d}Z"


def _uid(n: int) -> str:
    return str(uuid.UUID(int=n))


def audit(
    t: float,
    user: str,
    verb: str,
    resource: str,
    *,
    namespace: str = "",
    name: str = "",
    subresource: str = "",
    query: str = "",
    code: int = 200,
    source_ip: str = "10.0.0.11",
    user_agent: str = "kubectl/v1.30.2 (linux/amd64) kubernetes/3968350",
    groups: list[str] | None = None,
    request_object: dict[str, Any] | None = None,
    response_object: dict[str, Any] | None = None,
    impersonate: str = "",
    extra: dict[str, list[str]] | None = None,
    api_group: str = "",
) -> bytes:
    """One ResponseComplete audit event."""
    n = next(_ids)
    path = f"/api/v1/namespaces/{namespace}/{resource}" if namespace else f"/api/v1/{resource}"
    if api_group:
        group_path = f"/apis/{api_group}/v1"
        path = (
            f"{group_path}/namespaces/{namespace}/{resource}"
            if namespace
            else f"{group_path}/{resource}"
        )
    if name:
        path += f"/{name}"
    if subresource:
        path += f"/{subresource}"
    if query:
        path += f"?{query}"
    if groups is None:
        if user.startswith("system:serviceaccount:"):
            ns = user.split(":")[2]
            groups = [
                "system:serviceaccounts",
                f"system:serviceaccounts:{ns}",
                "system:authenticated",
            ]
        elif user.startswith("system:node:"):
            groups = ["system:nodes", "system:authenticated"]
        else:
            groups = ["system:authenticated"]
    obj: dict[str, Any] = {"resource": resource, "apiVersion": "v1"}
    if api_group:
        obj["apiGroup"] = api_group
    if namespace:
        obj["namespace"] = namespace
    if name:
        obj["name"] = name
    if subresource:
        obj["subresource"] = subresource
    user_info: dict[str, Any] = {"username": user, "uid": _uid(n * 7), "groups": groups}
    if extra:
        user_info["extra"] = extra
    rec: dict[str, Any] = {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": "RequestResponse" if (request_object or response_object) else "Metadata",
        "auditID": _uid(n),
        "stage": "ResponseComplete",
        "requestURI": path,
        "verb": verb,
        "user": user_info,
        "sourceIPs": [source_ip],
        "userAgent": user_agent,
        "objectRef": obj,
        "responseStatus": {"metadata": {}, "code": code},
        "requestReceivedTimestamp": rfc3339(t - 0.004),
        "stageTimestamp": rfc3339(t),
        "annotations": {
            "authorization.k8s.io/decision": "allow" if code < 400 else "forbid",
            "authorization.k8s.io/reason": "",
        },
    }
    if impersonate:
        rec["impersonatedUser"] = {"username": impersonate, "groups": ["system:authenticated"]}
    if request_object is not None:
        rec["requestObject"] = request_object
    if response_object is not None:
        rec["responseObject"] = response_object
    return orjson.dumps(rec)


def falco(
    t: float,
    rule: str,
    priority: str,
    *,
    namespace: str,
    pod: str,
    cmd: str,
    node: str = "node-a",
    container_id: str = "",
    tags: list[str] | None = None,
    fields: dict[str, Any] | None = None,
) -> bytes:
    """A Falco syscall alert with Kubernetes metadata, as falcosidekick receives it."""
    n = next(_ids)
    cid = container_id or f"{n * 2654435761 % (1 << 48):012x}"
    output_fields = {
        "container.id": cid,
        "container.name": pod.rsplit("-", 2)[0],
        "evt.time": int(t * 1e9),
        "k8s.ns.name": namespace,
        "k8s.pod.name": pod,
        "proc.cmdline": cmd,
        "proc.name": cmd.split()[0],
        "user.name": "root",
    }
    output_fields.update(fields or {})
    when = rfc3339(t)
    return orjson.dumps(
        {
            "uuid": _uid(n),
            "output": f"{when[11:19]}.000000000: {priority} {rule} (user=root "
            f"command={cmd} container_id={cid} k8s_ns={namespace} k8s_pod={pod})",
            "priority": priority,
            "rule": rule,
            "source": "syscall",
            "time": when,
            "hostname": node,
            "tags": tags or ["container", "mitre_execution"],
            "output_fields": output_fields,
        }
    )


def tetragon_exec(
    t: float,
    binary: str,
    arguments: str,
    *,
    namespace: str,
    pod: str,
    parent: str = "/usr/bin/containerd-shim-runc-v2",
    node: str = "node-a",
    container_pid: int = 17,
) -> bytes:
    """A Tetragon process_exec export line (shape of cilium/tetragon's examples)."""
    n = next(_ids)
    cid = f"{n * 11400714819323198485 % (1 << 64):016x}" * 4
    exec_id = f"{node}:{n}:{n * 13}".encode().hex()
    return orjson.dumps(
        {
            "process_exec": {
                "process": {
                    "exec_id": exec_id,
                    "pid": 1000 + n,
                    "uid": 0,
                    "cwd": "/",
                    "binary": binary,
                    "arguments": arguments,
                    "flags": "execve clone",
                    "start_time": rfc3339(t),
                    "auid": 4294967295,
                    "pod": {
                        "namespace": namespace,
                        "name": pod,
                        "container": {
                            "id": f"containerd://{cid}",
                            "name": pod.rsplit("-", 2)[0],
                            "image": {"id": f"docker.io/library/app@sha256:{cid}", "name": "app"},
                            "start_time": rfc3339(t - 600),
                            "pid": container_pid,
                        },
                    },
                    "docker": cid[:31],
                    "parent_exec_id": f"{exec_id}00",
                    "refcnt": 1,
                },
                "parent": {
                    "exec_id": f"{exec_id}00",
                    "pid": 900 + n,
                    "uid": 0,
                    "cwd": "/",
                    "binary": parent,
                    "flags": "execve clone",
                    "start_time": rfc3339(t - 0.01),
                    "auid": 4294967295,
                },
            },
            "node_name": node,
            "time": rfc3339(t),
        }
    )


def pod_object(
    namespace: str,
    name: str,
    *,
    account: str = "",
    host_paths: dict[str, bool] | None = None,
    host_network: bool = False,
    host_pid: bool = False,
    privileged: bool = False,
    owner: tuple[str, str] | None = None,
    pod_ip: str = "",
    host_ip: str = "",
) -> dict[str, Any]:
    """A Pod as the API server answers with it. `host_paths`: path -> read-only."""
    volumes = []
    mounts = []
    for i, (path, read_only) in enumerate((host_paths or {}).items()):
        volumes.append({"name": f"host-{i}", "hostPath": {"path": path, "type": ""}})
        mount: dict[str, Any] = {"name": f"host-{i}", "mountPath": f"/host{path}".rstrip("/")}
        if read_only:
            mount["readOnly"] = True
        mounts.append(mount)
    container: dict[str, Any] = {
        "name": "main",
        "image": "registry.example.com/app:1.0",
        "volumeMounts": mounts,
    }
    if privileged:
        container["securityContext"] = {"privileged": True}
    spec: dict[str, Any] = {"containers": [container], "volumes": volumes}
    if account:
        spec["serviceAccountName"] = account
    if host_network:
        spec["hostNetwork"] = True
    if host_pid:
        spec["hostPID"] = True
    meta: dict[str, Any] = {"name": name, "namespace": namespace, "uid": _uid(next(_ids))}
    if owner is not None:
        meta["ownerReferences"] = [
            {
                "apiVersion": "apps/v1",
                "kind": owner[0],
                "name": owner[1],
                "uid": _uid(next(_ids)),
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ]
    obj: dict[str, Any] = {"kind": "Pod", "apiVersion": "v1", "metadata": meta, "spec": spec}
    if pod_ip or host_ip:
        obj["status"] = {"phase": "Running", "podIP": pod_ip, "hostIP": host_ip}
    return obj
