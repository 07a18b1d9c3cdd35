"""Builders for realistic objects of the simulated cluster (nodes, pods, owners).

The store fills what the API server owns (uid, resourceVersion, creationTimestamp,
pod status); these give the rest the shape a real cluster has.
"""

from __future__ import annotations

import time
from typing import Any

from ktriage.sim.timefmt import rfc3339
from ktriage.sim.version import KUBE_VERSION


def namespace(name: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if labels:
        meta["labels"] = dict(labels)
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": meta}


def node(
    name: str,
    ip: str,
    *,
    roles: tuple[str, ...] = (),
    ready: bool = True,
    unschedulable: bool = False,
    labels: dict[str, str] | None = None,
    now: float | None = None,
) -> dict[str, Any]:
    """A kubelet-registered node; `now` (default: the wall clock) dates its conditions."""
    stamp = rfc3339(time.time() if now is None else now)
    all_labels = {
        "beta.kubernetes.io/arch": "amd64",
        "beta.kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
    }
    for role in roles:
        all_labels[f"node-role.kubernetes.io/{role}"] = ""
    all_labels.update(labels or {})
    spec: dict[str, Any] = {"podCIDR": "10.244.0.0/24", "podCIDRs": ["10.244.0.0/24"]}
    if unschedulable:
        spec["unschedulable"] = True
    if "control-plane" in roles:
        spec["taints"] = [{"effect": "NoSchedule", "key": "node-role.kubernetes.io/control-plane"}]
    conditions = [
        _node_condition(
            "MemoryPressure",
            False,
            "KubeletHasSufficientMemory",
            "kubelet has sufficient memory available",
            stamp,
        ),
        _node_condition(
            "DiskPressure", False, "KubeletHasNoDiskPressure", "kubelet has no disk pressure", stamp
        ),
        _node_condition(
            "PIDPressure", False, "KubeletHasSufficientPID", "kubelet has sufficient PID available",
            stamp,
        ),
        _node_condition(
            "Ready",
            ready,
            "KubeletReady" if ready else "KubeletNotReady",
            "kubelet is posting ready status" if ready else "container runtime network not ready",
            stamp,
        ),
    ]  # fmt: skip
    capacity = {
        "cpu": "4",
        "ephemeral-storage": "102626232Ki",
        "hugepages-1Gi": "0",
        "hugepages-2Mi": "0",
        "memory": "16333508Ki",
        "pods": "110",
    }
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": all_labels,
            "annotations": {
                "node.alpha.kubernetes.io/ttl": "0",
                "volumes.kubernetes.io/controller-managed-attach-detach": "true",
            },
        },
        "spec": spec,
        "status": {
            "addresses": [
                {"address": ip, "type": "InternalIP"},
                {"address": name, "type": "Hostname"},
            ],
            "allocatable": dict(capacity),
            "capacity": capacity,
            "conditions": conditions,
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {
                "architecture": "amd64",
                "bootID": "7c1f6f0e-1c1a-4d5e-9a55-2f5b0c9e2a10",
                "containerRuntimeVersion": "containerd://2.1.4",
                "kernelVersion": "6.8.0-60-generic",
                "kubeProxyVersion": "",
                "kubeletVersion": KUBE_VERSION,
                "machineID": "0b6c1c1d5a8e4f6b9a2e1f3d4c5b6a79",
                "operatingSystem": "linux",
                "osImage": "Ubuntu 24.04.2 LTS",
                "systemUUID": "ec2b1a9e-55d1-4d3e-8f1a-6b7c8d9e0f12",
            },
        },
    }


def _node_condition(
    ctype: str, value: bool, reason: str, message: str, stamp: str
) -> dict[str, Any]:
    return {
        "lastHeartbeatTime": stamp,
        "lastTransitionTime": stamp,
        "message": message,
        "reason": reason,
        "status": "True" if value else "False",
        "type": ctype,
    }


def container(name: str, image: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "image": image, **extra}


def pod(
    namespace: str,
    name: str,
    containers: list[dict[str, Any]],
    *,
    node_name: str | None = None,
    labels: dict[str, str] | None = None,
    owner: dict[str, Any] | None = None,
    service_account: str = "default",
    **spec_extra: Any,
) -> dict[str, Any]:
    """A pod; `owner` is the owning object (its kind, name and uid become the
    controller ownerReference, as a ReplicaSet's pods carry)."""
    meta: dict[str, Any] = {"name": name, "namespace": namespace}
    if labels:
        meta["labels"] = dict(labels)
    if owner is not None:
        meta["ownerReferences"] = [owner_reference(owner)]
    spec: dict[str, Any] = {"containers": containers, "serviceAccountName": service_account}
    if node_name:
        spec["nodeName"] = node_name
    spec.update(spec_extra)
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}


def owner_reference(owner: dict[str, Any]) -> dict[str, Any]:
    meta = owner["metadata"]
    return {
        "apiVersion": owner["apiVersion"],
        "blockOwnerDeletion": True,
        "controller": True,
        "kind": owner["kind"],
        "name": meta["name"],
        "uid": meta["uid"],
    }
