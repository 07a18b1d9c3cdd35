"""Realistic Kubernetes objects from the compact templates scenarios use.

`ObjectFactory.expand({"deployment": {...}})` returns the Deployment, its ReplicaSet
and its Pods with ownerReferences, labels, `pod-template-hash`, container ids and
statuses as a real cluster shows them. Everything random comes from one seeded
generator, so a scenario builds the same cluster every time. The pod and workload
templates are in `workload_templates`; Falco and Tetragon records in `runtime_records`.
"""

from __future__ import annotations

import base64
import random
from collections.abc import Callable
from typing import Any

import orjson

from ktriage.sim.names import NAME_ALPHABET
from ktriage.sim.scenario.templates import (
    CONTAINERD_VERSION,
    NODE_CONDITIONS,
    NodeInfo,
    Template,
    TemplateError,
    api_version_of,
    check_keys,
    need,
    parse_seconds,
)
from ktriage.sim.scenario.workload_templates import WorkloadTemplates
from ktriage.sim.timefmt import rfc3339
from ktriage.sim.version import KUBE_VERSION


class ObjectFactory(WorkloadTemplates):
    """Expands templates into full objects. Holds the cluster layout (nodes, IPs)."""

    # The second octet of the pod network (10.244.0.0/16): another simulated cluster
    # in the same demo gets a network of its own.
    pod_network = 244

    def __init__(self, seed: int = 1, start: float = 1_800_000_000.0) -> None:
        self.rng = random.Random(seed)
        self.start = start
        self.nodes: list[NodeInfo] = []
        self._next_node = 0
        self._next_cluster_ip = 20
        self._next_node_port = 30080
        # (namespace, workload name) → its pods' names, in creation order.
        self.workload_pods: dict[tuple[str, str], list[str]] = {}
        # Startup log lines to write: (namespace, pod, container, line, time).
        self.initial_logs: list[tuple[str, str, str, str, float]] = []

    # ------------------------------------------------------------- random ids

    def suffix(self, n: int = 5) -> str:
        return "".join(self.rng.choice(NAME_ALPHABET) for _ in range(n))

    def hex(self, n: int = 64) -> str:
        return "".join(self.rng.choice("0123456789abcdef") for _ in range(n))

    def uid(self) -> str:
        h = self.hex(32)
        variant = "89ab"[int(h[16], 16) % 4]
        return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{variant}{h[17:20]}-{h[20:]}"

    def container_id(self) -> str:
        return "containerd://" + self.hex(64)

    # ----------------------------------------------------------------- layout

    def node(self, name: str) -> NodeInfo:
        for n in self.nodes:
            if n.name == name:
                return n
        raise TemplateError(f"unknown node {name!r} (nodes: {', '.join(self.node_names())})")

    def node_names(self) -> list[str]:
        return [n.name for n in self.nodes]

    def place(self, tpl: Template) -> NodeInfo:
        if tpl.get("node"):
            return self.node(tpl["node"])
        candidates = [self.node(n) for n in tpl.get("nodes") or []] or self.nodes
        if not candidates:
            raise TemplateError("no nodes: declare nodes before workloads")
        node = candidates[self._next_node % len(candidates)]
        self._next_node += 1
        return node

    def pod_ip(self, node: NodeInfo) -> str:
        ip = f"10.{self.pod_network}.{node.index}.{node.next_pod_ip}"
        node.next_pod_ip += 1
        return ip

    # -------------------------------------------------------------- templates

    def expand(self, item: Any, *, now: float | None = None) -> list[dict[str, Any]]:
        """One template (`{"deployment": {...}}`) → the objects it stands for, in apply order."""
        if not isinstance(item, dict) or len(item) != 1:
            got = ", ".join(sorted(item)) if isinstance(item, dict) else type(item).__name__
            raise TemplateError(
                f"an object template is a mapping with exactly one key "
                f"({', '.join(sorted(TEMPLATES))}), got: {got}"
            )
        ((key, tpl),) = item.items()
        builder = TEMPLATES.get(key)
        if builder is None:
            raise TemplateError(
                f"unknown object template {key!r} (known: {', '.join(sorted(TEMPLATES))})"
            )
        return builder(self, {} if tpl is None else tpl, self.start if now is None else now)

    def _created(self, tpl: Template, now: float, default_age: float) -> float:
        age = tpl.get("age")
        if age is None:
            return now - default_age
        try:
            return now - parse_seconds(age)
        except ValueError as exc:
            raise TemplateError(f"age: {exc}") from None

    def _meta(self, tpl: Template, what: str, now: float, age: float) -> dict[str, Any]:
        meta: dict[str, Any] = {
            "name": need(tpl, "name", what),
            "namespace": need(tpl, "namespace", what),
            "uid": self.uid(),
            "creationTimestamp": rfc3339(self._created(tpl, now, age)),
        }
        if tpl.get("labels"):
            meta["labels"] = dict(tpl["labels"])
        if tpl.get("annotations"):
            meta["annotations"] = dict(tpl["annotations"])
        return meta

    # namespaces and nodes ---------------------------------------------------

    def t_namespace(self, tpl: Any, now: float) -> list[dict[str, Any]]:
        if isinstance(tpl, str):
            tpl = {"name": tpl}
        check_keys(tpl, ("name", "labels", "age"), "namespace")
        name = need(tpl, "name", "namespace")
        labels = {"kubernetes.io/metadata.name": name, **(tpl.get("labels") or {})}
        return [
            {
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {
                    "name": name,
                    "uid": self.uid(),
                    "labels": labels,
                    "creationTimestamp": rfc3339(self._created(tpl, now, 86400 * 40)),
                },
                "spec": {"finalizers": ["kubernetes"]},
                "status": {"phase": "Active"},
            }
        ]

    def t_node(self, tpl: Template, now: float) -> list[dict[str, Any]]:
        check_keys(tpl, ("name", "ip", "zone", "instanceType", "labels", "age"), "node")
        name = need(tpl, "name", "node")
        index = len(self.nodes) + 1
        ip = tpl.get("ip") or f"10.0.1.{10 + index}"
        created = self._created(tpl, now, 86400 * 12)
        zone = tpl.get("zone") or f"eu-west-1{'abc'[(index - 1) % 3]}"
        labels = {
            "beta.kubernetes.io/arch": "amd64",
            "beta.kubernetes.io/os": "linux",
            "kubernetes.io/arch": "amd64",
            "kubernetes.io/hostname": name,
            "kubernetes.io/os": "linux",
            "node.kubernetes.io/instance-type": tpl.get("instanceType") or "m6i.xlarge",
            "topology.kubernetes.io/region": zone[:-1],
            "topology.kubernetes.io/zone": zone,
            **(tpl.get("labels") or {}),
        }
        self.nodes.append(
            NodeInfo(name=name, ip=ip, index=index, boot_time=created - 60, labels=labels)
        )
        conditions = [
            {
                "type": ctype,
                "status": status,
                "reason": reason,
                "message": f"kubelet {message}",
                "lastHeartbeatTime": rfc3339(now - 7),
                "lastTransitionTime": rfc3339(created + 40),
            }
            for ctype, status, reason, message in NODE_CONDITIONS
        ]
        return [
            {
                "apiVersion": "v1",
                "kind": "Node",
                "metadata": {
                    "name": name,
                    "uid": self.uid(),
                    "labels": labels,
                    "annotations": {
                        "node.alpha.kubernetes.io/ttl": "0",
                        "volumes.kubernetes.io/controller-managed-attach-detach": "true",
                    },
                    "creationTimestamp": rfc3339(created),
                },
                "spec": {
                    "podCIDR": f"10.{self.pod_network}.{index}.0/24",
                    "podCIDRs": [f"10.{self.pod_network}.{index}.0/24"],
                    "providerID": f"aws:///{zone}/i-0{self.hex(16)}",
                },
                "status": {
                    "addresses": [
                        {"type": "InternalIP", "address": ip},
                        {"type": "Hostname", "address": name},
                    ],
                    "allocatable": {
                        "cpu": "3920m",
                        "ephemeral-storage": "95491281146",
                        "memory": "15140388Ki",
                        "pods": "58",
                    },
                    "capacity": {
                        "cpu": "4",
                        "ephemeral-storage": "104779756Ki",
                        "memory": "16009764Ki",
                        "pods": "58",
                    },
                    "conditions": conditions,
                    "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
                    "nodeInfo": {
                        "architecture": "amd64",
                        "bootID": self.uid(),
                        "containerRuntimeVersion": CONTAINERD_VERSION,
                        "kernelVersion": "6.8.0-1031-aws",
                        "kubeProxyVersion": "",
                        "kubeletVersion": KUBE_VERSION,
                        "machineID": self.hex(32),
                        "operatingSystem": "linux",
                        "osImage": "Ubuntu 24.04.2 LTS",
                        "systemUUID": self.uid(),
                    },
                },
            }
        ]

    # simple namespaced objects ----------------------------------------------

    def t_serviceaccount(self, tpl: Template, now: float) -> list[dict[str, Any]]:
        check_keys(tpl, ("namespace", "name", "labels", "annotations", "age"), "serviceaccount")
        meta = self._meta(tpl, "serviceaccount", now, 86400 * 30)
        return [{"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta}]

    def t_configmap(self, tpl: Template, now: float) -> list[dict[str, Any]]:
        check_keys(tpl, ("namespace", "name", "labels", "annotations", "data", "age"), "configmap")
        return [
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": self._meta(tpl, "configmap", now, 86400 * 20),
                "data": {k: str(v) for k, v in (tpl.get("data") or {}).items()},
            }
        ]

    def t_secret(self, tpl: Template, now: float) -> list[dict[str, Any]]:
        keys = ("namespace", "name", "labels", "annotations", "type", "data", "age")
        check_keys(tpl, keys, "secret")
        data = {
            k: base64.b64encode(str(v).encode()).decode()
            for k, v in (tpl.get("data") or {}).items()
        }
        return [
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": self._meta(tpl, "secret", now, 86400 * 20),
                "type": tpl.get("type") or "Opaque",
                "data": data,
            }
        ]

    def t_service(self, tpl: Template, now: float) -> list[dict[str, Any]]:
        keys = ("namespace", "name", "type", "selector", "ports", "clusterIP", "externalIP")
        check_keys(tpl, (*keys, "labels", "age"), "service")
        name = need(tpl, "name", "service")
        stype = tpl.get("type") or "ClusterIP"
        if stype not in ("ClusterIP", "NodePort", "LoadBalancer"):
            raise TemplateError(f"service {name}: type must be ClusterIP, NodePort or LoadBalancer")
        cluster_ip = tpl.get("clusterIP")
        if not cluster_ip:
            n = self._next_cluster_ip
            cluster_ip = f"10.96.{n // 250}.{n % 250 + 1}"
            self._next_cluster_ip += 7
        raw_ports = tpl.get("ports") or [80]
        ports = []
        for p in raw_ports:
            port, _, target = str(p).partition(":")
            try:
                entry: dict[str, Any] = {
                    "name": "http" if len(raw_ports) == 1 else f"p{port}",
                    "port": int(port),
                    "protocol": "TCP",
                    "targetPort": int(target or port),
                }
            except ValueError:
                raise TemplateError(f"service {name}: bad port {p!r} (use 80 or 80:8080)") from None
            if stype in ("NodePort", "LoadBalancer"):
                entry["nodePort"] = self._next_node_port
                self._next_node_port += 1
            ports.append(entry)
        svc: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": self._meta(tpl, "service", now, 86400 * 30),
            "spec": {
                "clusterIP": cluster_ip,
                "clusterIPs": [cluster_ip],
                "internalTrafficPolicy": "Cluster",
                "ipFamilies": ["IPv4"],
                "ipFamilyPolicy": "SingleStack",
                "ports": ports,
                "selector": tpl.get("selector") or {"app": name},
                "sessionAffinity": "None",
                "type": stype,
            },
            "status": {"loadBalancer": {}},
        }
        if stype == "LoadBalancer":
            svc["spec"]["externalTrafficPolicy"] = "Cluster"
            svc["spec"]["allocateLoadBalancerNodePorts"] = True
            rnd = self.rng.randint
            ext = tpl.get("externalIP") or f"34.{rnd(64, 127)}.{rnd(1, 254)}.{rnd(1, 254)}"
            svc["status"]["loadBalancer"] = {"ingress": [{"ip": ext, "ipMode": "VIP"}]}
        return [svc]

    def t_networkpolicy(self, tpl: Template, now: float) -> list[dict[str, Any]]:
        keys = ("namespace", "name", "podSelector", "policyTypes", "ingress", "egress")
        check_keys(tpl, (*keys, "labels", "age"), "networkpolicy")
        spec: dict[str, Any] = {"podSelector": tpl.get("podSelector") or {}}
        for key in ("ingress", "egress"):
            if key in tpl:
                spec[key] = tpl[key] or []
        types = [t for t in ("Ingress", "Egress") if t.lower() in tpl]
        spec["policyTypes"] = tpl.get("policyTypes") or types or ["Ingress"]
        return [
            {
                "apiVersion": "networking.k8s.io/v1",
                "kind": "NetworkPolicy",
                "metadata": self._meta(tpl, "networkpolicy", now, 86400 * 25),
                "spec": spec,
            }
        ]

    def t_object(self, tpl: Template, now: float) -> list[dict[str, Any]]:
        """A raw object, applied as given (metadata gets a uid if it has none)."""
        if not isinstance(tpl, dict) or not tpl.get("kind"):
            raise TemplateError("object: needs kind and metadata.name")
        if not isinstance(tpl.get("metadata"), dict) or not tpl["metadata"].get("name"):
            raise TemplateError(f"object {tpl['kind']}: metadata.name is missing")
        obj = orjson.loads(orjson.dumps(tpl))
        if not obj.get("apiVersion"):  # (setdefault would look the kind up even when given)
            obj["apiVersion"] = api_version_of(obj["kind"])
        obj["metadata"].setdefault("uid", self.uid())
        return [obj]


TEMPLATES: dict[str, Callable[[ObjectFactory, Any, float], list[dict[str, Any]]]] = {
    "namespace": ObjectFactory.t_namespace,
    "node": ObjectFactory.t_node,
    "serviceaccount": ObjectFactory.t_serviceaccount,
    "configmap": ObjectFactory.t_configmap,
    "secret": ObjectFactory.t_secret,
    "service": ObjectFactory.t_service,
    "networkpolicy": ObjectFactory.t_networkpolicy,
    "pod": ObjectFactory.t_pod,
    "deployment": ObjectFactory.t_deployment,
    "daemonset": ObjectFactory.t_daemonset,
    "job": ObjectFactory.t_job,
    "object": ObjectFactory.t_object,
    "kube_system": ObjectFactory.t_kube_system,
    "falco": ObjectFactory.t_falco,
    "tetragon": ObjectFactory.t_tetragon,
    "cilium": ObjectFactory.t_cilium,
    "calico": ObjectFactory.t_calico,
}
