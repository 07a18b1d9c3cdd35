"""Many realistic pods at once, for benchmarks (20,000 pods in a second or two).

`ClusterStore.apply` copies every object twice and looks for a free address among
all pods, which is quadratic for a big cluster. `seed_pods` builds the pods as
kube-apiserver and the kubelet would have left them (spec defaults, a running
status with conditions and container statuses, the managed fields of the writers)
and commits them directly, each with its own resourceVersion, as a cluster that
has been running for a while holds them. Their owners are ReplicaSets that exist
and agree on the replica count, so the controllers leave them alone.
"""

from __future__ import annotations

import uuid
from typing import Any

from ktriage.sim.storage.store import ClusterStore
from ktriage.sim.timefmt import rfc3339

PODS_PER_REPLICASET = 50
_IMAGES = (
    "ghcr.io/acme/checkout:2.14.1",
    "nginx:1.27",
    "envoyproxy/envoy:v1.30.1",
    "registry.k8s.io/coredns/coredns:v1.11.1",
    "quay.io/prometheus/node-exporter:v1.8.1",
)


def _node(name: str, ip: str, now: float) -> dict[str, Any]:
    stamp = rfc3339(now - 86_400)
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux"},
            "creationTimestamp": stamp,
            "uid": str(uuid.uuid4()),
        },
        "spec": {"podCIDR": ""},
        "status": {
            "addresses": [{"type": "InternalIP", "address": ip}],
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "reason": "KubeletReady",
                    "message": "kubelet is posting ready status",
                    "lastHeartbeatTime": stamp,
                    "lastTransitionTime": stamp,
                }
            ],
            "nodeInfo": {"kubeletVersion": "v1.31.2"},
        },
    }


def _managed(manager: str, operation: str, when: str, sub: str | None) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "apiVersion": "v1",
        "fieldsType": "FieldsV1",
        "fieldsV1": {
            "f:metadata": {"f:labels": {".": {}, "f:app": {}, "f:pod-template-hash": {}}},
            "f:spec": {
                "f:containers": {'k:{"name":"app"}': {".": {}, "f:image": {}, "f:name": {}}},
                "f:dnsPolicy": {},
                "f:restartPolicy": {},
            },
        },
        "manager": manager,
        "operation": operation,
        "time": when,
    }
    if sub:
        entry["subresource"] = sub
        entry["fieldsV1"] = {
            "f:status": {
                "f:conditions": {'k:{"type":"Ready"}': {".": {}, "f:status": {}}},
                "f:containerStatuses": {},
                "f:phase": {},
                "f:podIP": {},
            }
        }
    return entry


def _pod(
    namespace: str, name: str, rs: dict[str, Any], node: str, host_ip: str, ip: str, now: float
) -> dict[str, Any]:
    created = rfc3339(now - 3_600)
    started = rfc3339(now - 3_590)
    image = _IMAGES[hash(name) % len(_IMAGES)]
    labels = dict(rs["spec"]["selector"]["matchLabels"])
    containers = []
    statuses = []
    for cname, cimage in (("app", image), ("proxy", "envoyproxy/envoy:v1.30.1")):
        containers.append(
            {
                "name": cname,
                "image": cimage,
                "imagePullPolicy": "IfNotPresent",
                "ports": [{"containerPort": 8080, "name": "http", "protocol": "TCP"}],
                "env": [
                    {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                    {"name": "LOG_LEVEL", "value": "info"},
                ],
                "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}},
                "readinessProbe": {"httpGet": {"path": "/healthz", "port": 8080}},
                "terminationMessagePath": "/dev/termination-log",
                "terminationMessagePolicy": "File",
                "volumeMounts": [
                    {
                        "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount",
                        "name": "kube-api-access",
                        "readOnly": True,
                    }
                ],
            }
        )
        statuses.append(
            {
                "name": cname,
                "image": cimage,
                "imageID": f"{cimage}@sha256:{uuid.uuid4().hex}{uuid.uuid4().hex}",
                "containerID": f"containerd://{uuid.uuid4().hex}{uuid.uuid4().hex}",
                "ready": True,
                "restartCount": 0,
                "started": True,
                "state": {"running": {"startedAt": started}},
                "lastState": {},
            }
        )
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": str(uuid.uuid4()),
            "creationTimestamp": created,
            "generateName": rs["metadata"]["name"] + "-",
            "labels": labels,
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "ReplicaSet",
                    "name": rs["metadata"]["name"],
                    "uid": rs["metadata"]["uid"],
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
            "managedFields": [
                _managed("kube-controller-manager", "Update", created, None),
                _managed("kubelet", "Update", started, "status"),
            ],
        },
        "spec": {
            "containers": containers,
            "dnsPolicy": "ClusterFirst",
            "enableServiceLinks": True,
            "nodeName": node,
            "preemptionPolicy": "PreemptLowerPriority",
            "priority": 0,
            "restartPolicy": "Always",
            "schedulerName": "default-scheduler",
            "securityContext": {"runAsNonRoot": True},
            "serviceAccount": "default",
            "serviceAccountName": "default",
            "terminationGracePeriodSeconds": 30,
            "tolerations": [
                {
                    "effect": "NoExecute",
                    "key": "node.kubernetes.io/not-ready",
                    "operator": "Exists",
                    "tolerationSeconds": 300,
                }
            ],
            "volumes": [
                {
                    "name": "kube-api-access",
                    "projected": {
                        "defaultMode": 420,
                        "sources": [
                            {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                            {"configMap": {"name": "kube-root-ca.crt"}},
                        ],
                    },
                }
            ],
        },
        "status": {
            "phase": "Running",
            "hostIP": host_ip,
            "hostIPs": [{"ip": host_ip}],
            "podIP": ip,
            "podIPs": [{"ip": ip}],
            "qosClass": "Burstable",
            "startTime": created,
            "conditions": [
                {"type": t, "status": "True", "lastProbeTime": None, "lastTransitionTime": started}
                for t in ("PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady")
            ]
            + [{"type": "PodScheduled", "status": "True", "lastTransitionTime": created}],
            "containerStatuses": statuses,
        },
    }


def seed_pods(
    store: ClusterStore, count: int, *, namespaces: int = 40, nodes: int = 100
) -> list[tuple[str, str]]:
    """Add `count` running pods (with their namespaces, nodes and ReplicaSets);
    returns their (namespace, name) keys. Call it before `SimCluster.start`, or
    while nothing else writes pods."""
    now = store.clock.now()
    keys: list[tuple[str, str]] = []
    with store._lock:
        node_names = []
        for i in range(nodes):
            name = f"bulk-node-{i:03d}"
            store._commit(
                "v1", "Node", "", name, _node(name, f"10.1.{i // 250}.{i % 250 + 1}", now), None
            )
            node_names.append(name)
        ns_names = [f"team-{i:02d}" for i in range(namespaces)]
        for ns in ns_names:
            obj = {
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {
                    "name": ns,
                    "uid": str(uuid.uuid4()),
                    "creationTimestamp": rfc3339(now - 86_400),
                    "labels": {"kubernetes.io/metadata.name": ns},
                },
                "spec": {"finalizers": ["kubernetes"]},
                "status": {"phase": "Active"},
            }
            store._commit("v1", "Namespace", "", ns, obj, None)
        made = 0
        rs_index = 0
        while made < count:
            ns = ns_names[rs_index % len(ns_names)]
            replicas = min(PODS_PER_REPLICASET, count - made)
            app = f"svc-{rs_index:04d}"
            labels = {"app": app, "pod-template-hash": f"{rs_index:010x}"[-10:]}
            rs_name = f"{app}-{labels['pod-template-hash']}"
            rs = {
                "apiVersion": "apps/v1",
                "kind": "ReplicaSet",
                "metadata": {
                    "name": rs_name,
                    "namespace": ns,
                    "uid": str(uuid.uuid4()),
                    "creationTimestamp": rfc3339(now - 3_600),
                    "labels": labels,
                    "generation": 1,
                },
                "spec": {
                    "replicas": replicas,
                    "selector": {"matchLabels": labels},
                    "template": {"metadata": {"labels": labels}, "spec": {"containers": []}},
                },
                "status": {
                    "replicas": replicas,
                    "readyReplicas": replicas,
                    "availableReplicas": replicas,
                    "fullyLabeledReplicas": replicas,
                    "observedGeneration": 1,
                },
            }
            store._commit("apps/v1", "ReplicaSet", ns, rs_name, rs, None)
            for j in range(replicas):
                n = made + j
                node = node_names[n % len(node_names)]
                host_ip = f"10.1.{(n % nodes) // 250}.{(n % nodes) % 250 + 1}"
                ip = f"10.{100 + n // 65_000}.{(n // 250) % 260 % 256}.{n % 250 + 2}"
                name = f"{rs_name}-{n:06x}"
                store._commit(
                    "v1", "Pod", ns, name, _pod(ns, name, rs, node, host_ip, ip, now), None
                )
                keys.append((ns, name))
            made += replicas
            rs_index += 1
    return keys
