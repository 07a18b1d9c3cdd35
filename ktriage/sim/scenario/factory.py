"""Realistic Kubernetes objects and runtime records from the compact templates scenarios use.

`ObjectFactory.expand({"deployment": {...}})` returns the Deployment, its ReplicaSet
and its Pods with ownerReferences, labels, `pod-template-hash`, container ids and
statuses as a real cluster shows them. Everything random comes from one seeded
generator, so a scenario builds the same cluster every time. The second half builds
Falco alerts and Tetragon process records in the shapes those tools export.
"""

from __future__ import annotations

import base64
import hashlib
import random
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import resources
from typing import Any

import orjson
import yaml

# The alphabet Kubernetes uses for generated names (no vowels, no confusable digits).
NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
KUBE_VERSION = "v1.37.1"
CONTAINERD_VERSION = "containerd://2.1.4"


class TemplateError(ValueError):
    """A template that cannot be expanded; the message names the field."""


# resource → (group, version, kind, namespaced): what audit steps and targets need.
RESOURCE_KINDS: dict[str, tuple[str, str, str, bool]] = {
    "namespaces": ("", "v1", "Namespace", False),
    "nodes": ("", "v1", "Node", False),
    "pods": ("", "v1", "Pod", True),
    "services": ("", "v1", "Service", True),
    "serviceaccounts": ("", "v1", "ServiceAccount", True),
    "secrets": ("", "v1", "Secret", True),
    "configmaps": ("", "v1", "ConfigMap", True),
    "events": ("", "v1", "Event", True),
    "endpoints": ("", "v1", "Endpoints", True),
    "persistentvolumeclaims": ("", "v1", "PersistentVolumeClaim", True),
    "deployments": ("apps", "v1", "Deployment", True),
    "replicasets": ("apps", "v1", "ReplicaSet", True),
    "daemonsets": ("apps", "v1", "DaemonSet", True),
    "statefulsets": ("apps", "v1", "StatefulSet", True),
    "controllerrevisions": ("apps", "v1", "ControllerRevision", True),
    "jobs": ("batch", "v1", "Job", True),
    "cronjobs": ("batch", "v1", "CronJob", True),
    "horizontalpodautoscalers": ("autoscaling", "v2", "HorizontalPodAutoscaler", True),
    "networkpolicies": ("networking.k8s.io", "v1", "NetworkPolicy", True),
    "ingresses": ("networking.k8s.io", "v1", "Ingress", True),
    "roles": ("rbac.authorization.k8s.io", "v1", "Role", True),
    "rolebindings": ("rbac.authorization.k8s.io", "v1", "RoleBinding", True),
    "clusterroles": ("rbac.authorization.k8s.io", "v1", "ClusterRole", False),
    "clusterrolebindings": ("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", False),
    "leases": ("coordination.k8s.io", "v1", "Lease", True),
    "endpointslices": ("discovery.k8s.io", "v1", "EndpointSlice", True),
    "tokenreviews": ("authentication.k8s.io", "v1", "TokenReview", False),
    "selfsubjectreviews": ("authentication.k8s.io", "v1", "SelfSubjectReview", False),
    "selfsubjectaccessreviews": ("authorization.k8s.io", "v1", "SelfSubjectAccessReview", False),
    "selfsubjectrulesreviews": ("authorization.k8s.io", "v1", "SelfSubjectRulesReview", False),
    "subjectaccessreviews": ("authorization.k8s.io", "v1", "SubjectAccessReview", False),
    "certificatesigningrequests": (
        "certificates.k8s.io",
        "v1",
        "CertificateSigningRequest",
        False,
    ),
}
KIND_RESOURCES: dict[str, str] = {v[2]: k for k, v in RESOURCE_KINDS.items()}


def api_version_of(kind: str) -> str:
    """`Pod` → `v1`, `Deployment` → `apps/v1`; TemplateError for an unknown kind."""
    resource = KIND_RESOURCES.get(kind)
    if resource is None:
        raise TemplateError(f"unknown kind {kind!r}: give apiVersion too")
    group, version, _, _ = RESOURCE_KINDS[resource]
    return f"{group}/{version}" if group else version


# ---------------------------------------------------------------------------- time


def k8s_time(t: float) -> str:
    """metav1.Time: whole seconds, `Z`."""
    return datetime.fromtimestamp(int(t), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def micro_time(t: float) -> str:
    """metav1.MicroTime: six fractional digits, `Z`."""
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def nano_time(ns: int) -> str:
    """RFC 3339 with nanoseconds, as Falco and Tetragon write it."""
    secs, frac = divmod(ns, 1_000_000_000)
    return datetime.fromtimestamp(secs, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{frac:09d}Z"


def parse_k8s_time(text: str | None) -> float | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")


def parse_seconds(value: Any) -> float:
    """`90`, `1.5`, `"90s"`, `"1m30s"`, `"2h"`, `"500ms"` → seconds; ValueError otherwise."""
    if isinstance(value, bool):
        raise ValueError(f"not a duration: {value!r}")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError(f"duration must not be negative: {value}")
        return float(value)
    if isinstance(value, str):
        text = value.strip().lower().replace(" ", "")
        try:
            return parse_seconds(float(text))
        except ValueError:
            pass
        parts = _DURATION_RE.findall(text)
        if parts and "".join(n + u for n, u in parts) == text:
            return sum(float(n) * _DURATION_UNITS[u] for n, u in parts)
    raise ValueError(f"not a duration: {value!r} (use seconds or e.g. 90s, 1m30s, 2h)")


# ------------------------------------------------------------------------ utilities


def fnv32a(data: bytes) -> int:
    h = 0x811C9DC5
    for b in data:
        h = ((h ^ b) * 0x01000193) & 0xFFFFFFFF
    return h


def safe_encode(text: str) -> str:
    """Kubernetes' `rand.SafeEncodeString`: each byte mapped into NAME_ALPHABET."""
    return "".join(NAME_ALPHABET[ord(c) % len(NAME_ALPHABET)] for c in text)


def template_hash(template: dict[str, Any]) -> str:
    """A `pod-template-hash` that changes when (and only when) the template does.

    Like the controller's (fnv32a, then SafeEncodeString of its decimal digits), so
    it only has the characters real hashes have.
    """
    return safe_encode(str(fnv32a(orjson.dumps(template, option=orjson.OPT_SORT_KEYS))))


def image_digest(image: str) -> str:
    return "sha256:" + hashlib.sha256(image.encode()).hexdigest()


def image_ref(image: str) -> str:
    """`nginx:1.27` → `docker.io/library/nginx:1.27`, as containerd reports images."""
    first = image.split("/", 1)[0]
    if "/" not in image:
        return f"docker.io/library/{image}"
    if "." in first or ":" in first or first == "localhost":
        return image
    return f"docker.io/{image}"


def image_id(image: str) -> str:
    """The status `imageID`: repository@digest."""
    ref = image_ref(image)
    repo = ref.rsplit(":", 1)[0] if ":" in ref.rsplit("/", 1)[-1] else ref
    return f"{repo}@{image_digest(ref)}"


def merge_patch(target: dict[str, Any], patch: dict[str, Any]) -> None:
    """RFC 7386 JSON merge patch, in place: `None` deletes a key."""
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict) and isinstance(target.get(key), dict):
            merge_patch(target[key], value)
        elif isinstance(value, dict):
            fresh: dict[str, Any] = {}
            merge_patch(fresh, value)
            target[key] = fresh
        else:
            target[key] = value


def _substitute(value: Any, old: str, new: str) -> Any:
    if isinstance(value, str):
        return value.replace(old, new)
    if isinstance(value, list):
        return [_substitute(v, old, new) for v in value]
    if isinstance(value, dict):
        return {k: _substitute(v, old, new) for k, v in value.items()}
    return value


# -------------------------------------------------------------------------- model


@dataclass
class NodeInfo:
    name: str
    ip: str
    index: int
    boot_time: float
    next_pod_ip: int = 10
    labels: dict[str, str] = field(default_factory=dict)


@dataclass
class ContainerSpec:
    name: str
    image: str
    command: list[str] | None = None
    args: list[str] | None = None
    ports: list[int] = field(default_factory=list)
    resources: dict[str, Any] | None = None
    security_context: dict[str, Any] | None = None
    env: list[dict[str, Any]] | None = None
    volume_mounts: list[dict[str, Any]] | None = None

    def to_spec(self) -> dict[str, Any]:
        spec: dict[str, Any] = {"name": self.name, "image": self.image}
        if self.command:
            spec["command"] = list(self.command)
        if self.args:
            spec["args"] = list(self.args)
        if self.ports:
            spec["ports"] = [{"containerPort": p, "protocol": "TCP"} for p in self.ports]
        if self.env:
            spec["env"] = self.env
        spec["resources"] = self.resources or {}
        if self.volume_mounts:
            spec["volumeMounts"] = self.volume_mounts
        if self.security_context:
            spec["securityContext"] = self.security_context
        spec["terminationMessagePath"] = "/dev/termination-log"
        spec["terminationMessagePolicy"] = "File"
        last = self.image.rsplit("/", 1)[-1]
        latest = (":" not in last and "@" not in last) or last.endswith(":latest")
        spec["imagePullPolicy"] = "Always" if latest else "IfNotPresent"
        return spec


_Template = dict[str, Any]


def _need(tpl: _Template, key: str, what: str) -> Any:
    if key not in tpl or tpl[key] in (None, ""):
        raise TemplateError(f"{what}: missing required field {key!r}")
    return tpl[key]


def _check_keys(tpl: Any, allowed: Iterable[str], what: str) -> None:
    if not isinstance(tpl, dict):
        raise TemplateError(f"{what}: expected a mapping, got {type(tpl).__name__}")
    allowed = set(allowed)
    unknown = sorted(set(tpl) - allowed)
    if unknown:
        raise TemplateError(
            f"{what}: unknown field {unknown[0]!r} (allowed: {', '.join(sorted(allowed))})"
        )


_CONTAINER_KEYS = (
    "name",
    "image",
    "command",
    "args",
    "ports",
    "resources",
    "securityContext",
    "env",
    "volumeMounts",
)
_WORKLOAD_KEYS = (
    "namespace",
    "name",
    "image",
    "containers",
    "initContainers",
    "command",
    "args",
    "ports",
    "resources",
    "securityContext",
    "podSecurityContext",
    "serviceAccount",
    "labels",
    "annotations",
    "node",
    "nodes",
    "volumes",
    "hostNetwork",
    "hostPID",
    "hostIPC",
    "logs",
    "age",
    "priorityClassName",
    "tolerations",
)
_TOKEN_SOURCES = [
    {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
    {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
    {
        "downwardAPI": {
            "items": [
                {
                    "path": "namespace",
                    "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"},
                }
            ]
        }
    },
]
_DEFAULT_TOLERATIONS = [
    {
        "effect": "NoExecute",
        "key": f"node.kubernetes.io/{key}",
        "operator": "Exists",
        "tolerationSeconds": 300,
    }
    for key in ("not-ready", "unreachable")
]
_NODE_CONDITIONS = (
    ("MemoryPressure", "False", "KubeletHasSufficientMemory", "has sufficient memory available"),
    ("DiskPressure", "False", "KubeletHasNoDiskPressure", "has no disk pressure"),
    ("PIDPressure", "False", "KubeletHasSufficientPID", "has sufficient PID available"),
    ("Ready", "True", "KubeletReady", "is posting ready status"),
)


def _condition(ctype: str, status: str, t: float) -> dict[str, Any]:
    return {
        "type": ctype,
        "status": status,
        "lastProbeTime": None,
        "lastTransitionTime": k8s_time(t),
    }


class ObjectFactory:
    """Expands templates into full objects. Holds the cluster layout (nodes, IPs)."""

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

    def place(self, tpl: _Template) -> NodeInfo:
        if tpl.get("node"):
            return self.node(tpl["node"])
        candidates = [self.node(n) for n in tpl.get("nodes") or []] or self.nodes
        if not candidates:
            raise TemplateError("no nodes: declare nodes before workloads")
        node = candidates[self._next_node % len(candidates)]
        self._next_node += 1
        return node

    def pod_ip(self, node: NodeInfo) -> str:
        ip = f"10.244.{node.index}.{node.next_pod_ip}"
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

    def _created(self, tpl: _Template, now: float, default_age: float) -> float:
        age = tpl.get("age")
        if age is None:
            return now - default_age
        try:
            return now - parse_seconds(age)
        except ValueError as exc:
            raise TemplateError(f"age: {exc}") from None

    def _meta(self, tpl: _Template, what: str, now: float, age: float) -> dict[str, Any]:
        meta: dict[str, Any] = {
            "name": _need(tpl, "name", what),
            "namespace": _need(tpl, "namespace", what),
            "uid": self.uid(),
            "creationTimestamp": k8s_time(self._created(tpl, now, age)),
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
        _check_keys(tpl, ("name", "labels", "age"), "namespace")
        name = _need(tpl, "name", "namespace")
        labels = {"kubernetes.io/metadata.name": name, **(tpl.get("labels") or {})}
        return [
            {
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {
                    "name": name,
                    "uid": self.uid(),
                    "labels": labels,
                    "creationTimestamp": k8s_time(self._created(tpl, now, 86400 * 40)),
                },
                "spec": {"finalizers": ["kubernetes"]},
                "status": {"phase": "Active"},
            }
        ]

    def t_node(self, tpl: _Template, now: float) -> list[dict[str, Any]]:
        _check_keys(tpl, ("name", "ip", "zone", "instanceType", "labels", "age"), "node")
        name = _need(tpl, "name", "node")
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
                "lastHeartbeatTime": k8s_time(now - 7),
                "lastTransitionTime": k8s_time(created + 40),
            }
            for ctype, status, reason, message in _NODE_CONDITIONS
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
                    "creationTimestamp": k8s_time(created),
                },
                "spec": {
                    "podCIDR": f"10.244.{index}.0/24",
                    "podCIDRs": [f"10.244.{index}.0/24"],
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

    def t_serviceaccount(self, tpl: _Template, now: float) -> list[dict[str, Any]]:
        _check_keys(tpl, ("namespace", "name", "labels", "annotations", "age"), "serviceaccount")
        meta = self._meta(tpl, "serviceaccount", now, 86400 * 30)
        return [{"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta}]

    def t_configmap(self, tpl: _Template, now: float) -> list[dict[str, Any]]:
        _check_keys(tpl, ("namespace", "name", "labels", "annotations", "data", "age"), "configmap")
        return [
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": self._meta(tpl, "configmap", now, 86400 * 20),
                "data": {k: str(v) for k, v in (tpl.get("data") or {}).items()},
            }
        ]

    def t_secret(self, tpl: _Template, now: float) -> list[dict[str, Any]]:
        keys = ("namespace", "name", "labels", "annotations", "type", "data", "age")
        _check_keys(tpl, keys, "secret")
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

    def t_service(self, tpl: _Template, now: float) -> list[dict[str, Any]]:
        keys = ("namespace", "name", "type", "selector", "ports", "clusterIP", "externalIP")
        _check_keys(tpl, (*keys, "labels", "age"), "service")
        name = _need(tpl, "name", "service")
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

    def t_networkpolicy(self, tpl: _Template, now: float) -> list[dict[str, Any]]:
        keys = ("namespace", "name", "podSelector", "policyTypes", "ingress", "egress")
        _check_keys(tpl, (*keys, "labels", "age"), "networkpolicy")
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

    def t_object(self, tpl: _Template, now: float) -> list[dict[str, Any]]:
        """A raw object, applied as given (metadata gets a uid if it has none)."""
        if not isinstance(tpl, dict) or not tpl.get("kind"):
            raise TemplateError("object: needs kind and metadata.name")
        if not isinstance(tpl.get("metadata"), dict) or not tpl["metadata"].get("name"):
            raise TemplateError(f"object {tpl['kind']}: metadata.name is missing")
        obj = orjson.loads(orjson.dumps(tpl))
        obj.setdefault("apiVersion", api_version_of(obj["kind"]))
        obj["metadata"].setdefault("uid", self.uid())
        return [obj]

    # pods and workloads -----------------------------------------------------

    def _containers(
        self, tpl: _Template, what: str, key: str = "containers"
    ) -> list[ContainerSpec]:
        raw = tpl.get(key)
        if raw is None and key == "containers":
            raw = [
                {
                    "name": tpl.get("name"),
                    "image": _need(tpl, "image", what),
                    "command": tpl.get("command"),
                    "args": tpl.get("args"),
                    "ports": tpl.get("ports"),
                    "resources": tpl.get("resources"),
                    "securityContext": tpl.get("securityContext"),
                }
            ]
        if raw is not None and not isinstance(raw, list):
            raise TemplateError(f"{what}: {key} must be a list")
        out = []
        for i, c in enumerate(raw or []):
            where = f"{what}: {key}[{i}]"
            _check_keys(c, _CONTAINER_KEYS, where)
            try:
                ports = [int(p) for p in c.get("ports") or []]
            except (TypeError, ValueError):
                raise TemplateError(f"{where}: ports must be numbers") from None
            out.append(
                ContainerSpec(
                    name=_need(c, "name", where),
                    image=_need(c, "image", where),
                    command=c.get("command"),
                    args=c.get("args"),
                    ports=ports,
                    resources=c.get("resources"),
                    security_context=c.get("securityContext"),
                    env=c.get("env"),
                    volume_mounts=c.get("volumeMounts"),
                )
            )
        return out

    def _pod_spec(
        self,
        tpl: _Template,
        containers: list[ContainerSpec],
        init_containers: list[ContainerSpec],
        restart_policy: str,
    ) -> dict[str, Any]:
        sa = tpl.get("serviceAccount") or "default"
        token_mount = {
            "name": f"kube-api-access-{self.suffix(5)}",
            "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount",
            "readOnly": True,
        }

        def with_token(c: ContainerSpec) -> dict[str, Any]:
            spec = c.to_spec()
            spec["volumeMounts"] = [*(spec.get("volumeMounts") or []), token_mount]
            return spec

        volumes = list(tpl.get("volumes") or [])
        volumes.append(
            {
                "name": token_mount["name"],
                "projected": {"defaultMode": 420, "sources": _TOKEN_SOURCES},
            }
        )
        spec: dict[str, Any] = {
            "containers": [with_token(c) for c in containers],
            "dnsPolicy": "ClusterFirst",
            "enableServiceLinks": True,
            "preemptionPolicy": "PreemptLowerPriority",
            "priority": 0,
            "restartPolicy": restart_policy,
            "schedulerName": "default-scheduler",
            "securityContext": tpl.get("podSecurityContext") or {},
            "serviceAccount": sa,
            "serviceAccountName": sa,
            "terminationGracePeriodSeconds": 30,
            "tolerations": tpl.get("tolerations") or _DEFAULT_TOLERATIONS,
            "volumes": volumes,
        }
        if init_containers:
            spec["initContainers"] = [with_token(c) for c in init_containers]
        for flag in ("hostNetwork", "hostPID", "hostIPC"):
            if tpl.get(flag):
                spec[flag] = True
        if tpl.get("priorityClassName"):
            spec["priorityClassName"] = tpl["priorityClassName"]
        return spec

    def container_status(self, c: ContainerSpec, started: float, running: bool) -> dict[str, Any]:
        return {
            "name": c.name,
            "image": image_ref(c.image),
            "imageID": image_id(c.image),
            "containerID": self.container_id(),
            "lastState": {},
            "ready": running,
            "restartCount": 0,
            "started": running,
            "state": {"running": {"startedAt": k8s_time(started)}},
        }

    def build_pod(
        self,
        tpl: _Template,
        *,
        name: str,
        namespace: str,
        labels: dict[str, str],
        owner: dict[str, Any] | None,
        node: NodeInfo,
        created: float,
        containers: list[ContainerSpec],
        init_containers: list[ContainerSpec] | None = None,
        restart_policy: str = "Always",
        phase: str = "Running",
    ) -> dict[str, Any]:
        """A scheduled, started pod with a status kubelet would report."""
        init_containers = init_containers or []
        spec = self._pod_spec(tpl, containers, init_containers, restart_policy)
        spec["nodeName"] = node.name
        pod_ip = node.ip if tpl.get("hostNetwork") else self.pod_ip(node)
        started = created + 2 + self.rng.random() * 3
        ready_at = started + 1 + self.rng.random() * 4
        running = phase == "Running"
        meta: dict[str, Any] = {
            "name": name,
            "namespace": namespace,
            "uid": self.uid(),
            "labels": dict(labels),
            "creationTimestamp": k8s_time(created),
        }
        if tpl.get("annotations"):
            meta["annotations"] = dict(tpl["annotations"])
        if owner:
            meta["ownerReferences"] = [owner]
            meta["generateName"] = name[: name.rfind("-") + 1]
        ready = "True" if running else "False"
        pod: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": meta,
            "spec": spec,
            "status": {
                "phase": phase,
                "conditions": [
                    _condition("PodReadyToStartContainers", "True", started),
                    _condition("Initialized", "True", started),
                    _condition("Ready", ready, ready_at),
                    _condition("ContainersReady", ready, ready_at),
                    _condition("PodScheduled", "True", created),
                ],
                "hostIP": node.ip,
                "hostIPs": [{"ip": node.ip}],
                "podIP": pod_ip,
                "podIPs": [{"ip": pod_ip}],
                "qosClass": _qos_class(containers),
                "startTime": k8s_time(created),
                "containerStatuses": [
                    self.container_status(c, started, running) for c in containers
                ],
            },
        }
        if init_containers:
            statuses = []
            for c in init_containers:
                st = self.container_status(c, created + 1, False)
                st["state"] = {
                    "terminated": {
                        "containerID": st["containerID"],
                        "exitCode": 0,
                        "reason": "Completed",
                        "startedAt": k8s_time(created + 1),
                        "finishedAt": k8s_time(created + 2),
                    }
                }
                st["ready"] = True
                statuses.append(st)
            pod["status"]["initContainerStatuses"] = statuses
        for line in tpl.get("logs") or []:
            # Startup lines go to the first container, once it is ready.
            text = str(line).replace("${node}", node.name)
            self.initial_logs.append((namespace, name, containers[0].name, text, ready_at))
        return pod

    def _owner(self, obj: dict[str, Any]) -> dict[str, Any]:
        return {
            "apiVersion": obj["apiVersion"],
            "kind": obj["kind"],
            "name": obj["metadata"]["name"],
            "uid": obj["metadata"]["uid"],
            "controller": True,
            "blockOwnerDeletion": True,
        }

    def t_pod(self, tpl: _Template, now: float) -> list[dict[str, Any]]:
        """A bare pod (no controller)."""
        _check_keys(tpl, (*_WORKLOAD_KEYS, "restartPolicy", "phase"), "pod")
        name = _need(tpl, "name", "pod")
        namespace = _need(tpl, "namespace", "pod")
        pod = self.build_pod(
            tpl,
            name=name,
            namespace=namespace,
            labels=dict(tpl.get("labels") or {"run": name}),
            owner=None,
            node=self.place(tpl),
            created=self._created(tpl, now, 0),
            containers=self._containers(tpl, f"pod {name}"),
            init_containers=self._containers(tpl, f"pod {name}", "initContainers"),
            restart_policy=tpl.get("restartPolicy") or "Always",
            phase=tpl.get("phase") or "Running",
        )
        return [pod]

    def pod_template(
        self,
        tpl: _Template,
        labels: dict[str, str],
        containers: list[ContainerSpec],
        init_containers: list[ContainerSpec],
        restart_policy: str = "Always",
    ) -> dict[str, Any]:
        spec: dict[str, Any] = {
            "containers": [c.to_spec() for c in containers],
            "restartPolicy": restart_policy,
            "serviceAccountName": tpl.get("serviceAccount") or "default",
            "securityContext": tpl.get("podSecurityContext") or {},
            "terminationGracePeriodSeconds": 30,
            "dnsPolicy": "ClusterFirst",
            "schedulerName": "default-scheduler",
        }
        if init_containers:
            spec["initContainers"] = [c.to_spec() for c in init_containers]
        for flag in ("hostNetwork", "hostPID", "hostIPC"):
            if tpl.get(flag):
                spec[flag] = True
        for key in ("volumes", "tolerations", "priorityClassName"):
            if tpl.get(key):
                spec[key] = tpl[key]
        return {"metadata": {"labels": dict(labels)}, "spec": spec}

    def t_deployment(self, tpl: _Template, now: float) -> list[dict[str, Any]]:
        _check_keys(tpl, (*_WORKLOAD_KEYS, "replicas", "revision"), "deployment")
        name = _need(tpl, "name", "deployment")
        namespace = _need(tpl, "namespace", "deployment")
        what = f"deployment {namespace}/{name}"
        try:
            replicas = int(tpl.get("replicas", 1))
            revision = int(tpl.get("revision", 1))
        except (TypeError, ValueError):
            raise TemplateError(f"{what}: replicas and revision must be numbers") from None
        containers = self._containers(tpl, what)
        init_containers = self._containers(tpl, what, "initContainers")
        labels = {"app": name, "app.kubernetes.io/name": name, **(tpl.get("labels") or {})}
        created = self._created(tpl, now, 86400 * 9)
        deployment: dict[str, Any] = {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {
                "name": name,
                "namespace": namespace,
                "uid": self.uid(),
                "generation": revision,
                "labels": dict(labels),
                "annotations": {"deployment.kubernetes.io/revision": str(revision)},
                "creationTimestamp": k8s_time(created),
            },
            "spec": {
                "replicas": replicas,
                "revisionHistoryLimit": 10,
                "progressDeadlineSeconds": 600,
                "selector": {"matchLabels": {"app": name}},
                "strategy": {
                    "type": "RollingUpdate",
                    "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"},
                },
                "template": self.pod_template(tpl, labels, containers, init_containers),
            },
            "status": deployment_status(replicas, revision, created),
        }
        rs, pods = self.replicaset_with_pods(
            deployment, tpl, containers, init_containers, replicas, revision, created + 1
        )
        return [deployment, rs, *pods]

    def replicaset_with_pods(
        self,
        deployment: dict[str, Any],
        tpl: _Template,
        containers: list[ContainerSpec],
        init_containers: list[ContainerSpec],
        replicas: int,
        revision: int,
        created: float,
        *,
        make_pods: bool = True,
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """The ReplicaSet of a deployment's current template, and its pods."""
        name = deployment["metadata"]["name"]
        namespace = deployment["metadata"]["namespace"]
        template = deployment["spec"]["template"]
        pth = template_hash(template)
        labels = {**template["metadata"]["labels"], "pod-template-hash": pth}
        selector = {**deployment["spec"]["selector"]["matchLabels"], "pod-template-hash": pth}
        rs = {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {
                "name": f"{name}-{pth}",
                "namespace": namespace,
                "uid": self.uid(),
                "generation": 1,
                "labels": dict(labels),
                "annotations": {
                    "deployment.kubernetes.io/desired-replicas": str(replicas),
                    "deployment.kubernetes.io/max-replicas": str(replicas + max(1, replicas // 4)),
                    "deployment.kubernetes.io/revision": str(revision),
                },
                "ownerReferences": [self._owner(deployment)],
                "creationTimestamp": k8s_time(created),
            },
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": selector},
                "template": {"metadata": {"labels": dict(labels)}, "spec": template["spec"]},
            },
            "status": replicaset_status(replicas),
        }
        pods = []
        if make_pods:
            for _ in range(replicas):
                pods.append(self.replicaset_pod(rs, tpl, containers, init_containers, created + 1))
        return rs, pods

    def replicaset_pod(
        self,
        rs: dict[str, Any],
        tpl: _Template,
        containers: list[ContainerSpec],
        init_containers: list[ContainerSpec],
        created: float,
    ) -> dict[str, Any]:
        """A new pod of a deployment's ReplicaSet (registered as the workload's last pod)."""
        namespace = rs["metadata"]["namespace"]
        deployment = rs["metadata"]["ownerReferences"][0]["name"]
        pod_name = f"{rs['metadata']['name']}-{self.suffix(5)}"
        pod = self.build_pod(
            tpl,
            name=pod_name,
            namespace=namespace,
            labels=rs["spec"]["template"]["metadata"]["labels"],
            owner=self._owner(rs),
            node=self.place(tpl),
            created=created,
            containers=containers,
            init_containers=init_containers,
        )
        self.workload_pods.setdefault((namespace, deployment), []).append(pod_name)
        return pod

    def t_daemonset(self, tpl: _Template, now: float) -> list[dict[str, Any]]:
        _check_keys(tpl, _WORKLOAD_KEYS, "daemonset")
        name = _need(tpl, "name", "daemonset")
        namespace = _need(tpl, "namespace", "daemonset")
        what = f"daemonset {namespace}/{name}"
        containers = self._containers(tpl, what)
        init_containers = self._containers(tpl, what, "initContainers")
        labels = {"app.kubernetes.io/name": name, **(tpl.get("labels") or {})}
        created = self._created(tpl, now, 86400 * 11)
        template = self.pod_template(tpl, labels, containers, init_containers)
        nodes = [self.node(n) for n in tpl.get("nodes") or []] or self.nodes
        count = len(nodes)
        ds: dict[str, Any] = {
            "apiVersion": "apps/v1",
            "kind": "DaemonSet",
            "metadata": {
                "name": name,
                "namespace": namespace,
                "uid": self.uid(),
                "generation": 1,
                "labels": dict(labels),
                "annotations": {"deprecated.daemonset.template.generation": "1"},
                "creationTimestamp": k8s_time(created),
            },
            "spec": {
                "revisionHistoryLimit": 10,
                "selector": {"matchLabels": {"app.kubernetes.io/name": name}},
                "template": template,
                "updateStrategy": {
                    "type": "RollingUpdate",
                    "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1},
                },
            },
            "status": {
                "currentNumberScheduled": count,
                "desiredNumberScheduled": count,
                "numberAvailable": count,
                "numberMisscheduled": 0,
                "numberReady": count,
                "observedGeneration": 1,
                "updatedNumberScheduled": count,
            },
        }
        pod_labels = {
            **labels,
            "controller-revision-hash": template_hash(template)[:10],
            "pod-template-generation": "1",
        }
        pods = []
        for node in nodes:
            pod_name = f"{name}-{self.suffix(5)}"
            pods.append(
                self.build_pod(
                    {**tpl, "node": node.name},
                    name=pod_name,
                    namespace=namespace,
                    labels=pod_labels,
                    owner=self._owner(ds),
                    node=node,
                    created=created + 30 + node.index,
                    containers=containers,
                    init_containers=init_containers,
                )
            )
            self.workload_pods.setdefault((namespace, name), []).append(pod_name)
        return [ds, *pods]

    def t_job(self, tpl: _Template, now: float) -> list[dict[str, Any]]:
        """A Job with one running pod (a later `container_state` step completes it)."""
        _check_keys(tpl, _WORKLOAD_KEYS, "job")
        name = _need(tpl, "name", "job")
        namespace = _need(tpl, "namespace", "job")
        containers = self._containers(tpl, f"job {namespace}/{name}")
        created = self._created(tpl, now, 0)
        job_uid = self.uid()
        labels = {
            "batch.kubernetes.io/controller-uid": job_uid,
            "batch.kubernetes.io/job-name": name,
            "controller-uid": job_uid,
            "job-name": name,
            **(tpl.get("labels") or {}),
        }
        job: dict[str, Any] = {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {
                "name": name,
                "namespace": namespace,
                "uid": job_uid,
                "generation": 1,
                "labels": dict(tpl.get("labels") or {}),
                "creationTimestamp": k8s_time(created),
            },
            "spec": {
                "backoffLimit": 6,
                "completionMode": "NonIndexed",
                "completions": 1,
                "parallelism": 1,
                "manualSelector": False,
                "podReplacementPolicy": "TerminatingOrFailed",
                "selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": job_uid}},
                "suspend": False,
                "template": self.pod_template(tpl, labels, containers, [], "Never"),
            },
            "status": {
                "active": 1,
                "ready": 1,
                "startTime": k8s_time(created),
                "terminating": 0,
                "uncountedTerminatedPods": {},
            },
        }
        pod_name = f"{name}-{self.suffix(5)}"
        pod = self.build_pod(
            tpl,
            name=pod_name,
            namespace=namespace,
            labels=labels,
            owner=self._owner(job),
            node=self.place(tpl),
            created=created + 0.5,
            containers=containers,
            restart_policy="Never",
        )
        self.workload_pods.setdefault((namespace, name), []).append(pod_name)
        return [job, pod]

    # ready-made parts of every cluster --------------------------------------

    def _addon(self, key: str, tpl: _Template, now: float) -> list[dict[str, Any]]:
        _check_keys(tpl, ("version",), key)
        addon = load_addons()[key]
        version = str(tpl.get("version") or addon["version"])
        objs: list[dict[str, Any]] = []
        for item in _substitute(addon["objects"], "${version}", version):
            objs += self.expand(item, now=now)
        return objs

    def t_kube_system(self, tpl: _Template, now: float) -> list[dict[str, Any]]:
        """The namespaces and add-ons every cluster has: CoreDNS, kube-proxy, metrics-server."""
        return self._addon("kube_system", tpl, now)

    def t_falco(self, tpl: _Template, now: float) -> list[dict[str, Any]]:
        """Falco as its Helm chart installs it: namespace `falco`, one pod per node."""
        return self._addon("falco", tpl, now)

    def t_tetragon(self, tpl: _Template, now: float) -> list[dict[str, Any]]:
        """Tetragon as its Helm chart installs it: kube-system, `export-stdout` + `tetragon`."""
        return self._addon("tetragon", tpl, now)


_ADDONS: dict[str, Any] | None = None


def load_addons() -> dict[str, Any]:
    """`_addons.yaml`: the object templates of kube-system, Falco and Tetragon."""
    global _ADDONS
    if _ADDONS is None:
        text = resources.files("ktriage.sim.scenarios").joinpath("_addons.yaml").read_text()
        _ADDONS = yaml.safe_load(text)
    return _ADDONS


def _qos_class(containers: list[ContainerSpec]) -> str:
    any_set = False
    guaranteed = True
    for c in containers:
        res = c.resources or {}
        limits, requests = res.get("limits") or {}, res.get("requests") or {}
        if limits or requests:
            any_set = True
        if not limits or (requests and requests != limits) or not {"cpu", "memory"} <= set(limits):
            guaranteed = False
    if not any_set:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"


def deployment_status(replicas: int, generation: int, since: float) -> dict[str, Any]:
    return {
        "observedGeneration": generation,
        "replicas": replicas,
        "updatedReplicas": replicas,
        "readyReplicas": replicas,
        "availableReplicas": replicas,
        "conditions": [
            {
                "type": "Available",
                "status": "True",
                "reason": "MinimumReplicasAvailable",
                "message": "Deployment has minimum availability.",
                "lastUpdateTime": k8s_time(since + 20),
                "lastTransitionTime": k8s_time(since + 20),
            },
            {
                "type": "Progressing",
                "status": "True",
                "reason": "NewReplicaSetAvailable",
                "message": "ReplicaSet has successfully progressed.",
                "lastUpdateTime": k8s_time(since + 20),
                "lastTransitionTime": k8s_time(since),
            },
        ],
    }


def replicaset_status(replicas: int) -> dict[str, Any]:
    if replicas == 0:
        return {"replicas": 0, "observedGeneration": 1}
    return {
        "replicas": replicas,
        "fullyLabeledReplicas": replicas,
        "readyReplicas": replicas,
        "availableReplicas": replicas,
        "observedGeneration": 1,
    }


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
}


# ------------------------------------------------------------ runtime records

FALCO_PRIORITIES = (
    "Emergency",
    "Alert",
    "Critical",
    "Error",
    "Warning",
    "Notice",
    "Informational",
    "Debug",
)
_FALCO_FIELD_RE = re.compile(r"%([a-zA-Z0-9_.]+(?:\[[0-9]+\])?)")

# Falco's `-pk` appends the container and Kubernetes fields to every output.
FALCO_APPEND = (
    " container_id=%container.id container_name=%container.name"
    " container_image_repository=%container.image.repository"
    " container_image_tag=%container.image.tag k8s_pod_name=%k8s.pod.name"
    " k8s_ns_name=%k8s.ns.name"
)


def falco_priority(text: str) -> str:
    """`CRITICAL`/`critical`/`Critical` → `Critical`; ValueError for anything else."""
    low = text.strip().lower()
    for p in FALCO_PRIORITIES:
        if low == p.lower() or (p == "Informational" and low == "info"):
            return p
    raise ValueError(f"unknown Falco priority {text!r} (one of {', '.join(FALCO_PRIORITIES)})")


def render_falco_output(template: str, fields: dict[str, Any]) -> str:
    """Fill `%field` placeholders as Falco does (`<NA>` for a missing value)."""

    def one(m: re.Match[str]) -> str:
        value = fields.get(m.group(1))
        return "<NA>" if value is None else str(value)

    return _FALCO_FIELD_RE.sub(one, template)


def falco_alert(
    *,
    rule: str,
    priority: str,
    output_template: str,
    fields: dict[str, Any],
    tags: list[str],
    hostname: str,
    time_ns: int,
    alert_uuid: str,
    source: str = "syscall",
) -> dict[str, Any]:
    """One alert as Falco writes it with `json_output: true` (plus falcosidekick's uuid)."""
    secs, frac = divmod(time_ns, 1_000_000_000)
    clock = datetime.fromtimestamp(secs, UTC).strftime("%H:%M:%S") + f".{frac:09d}"
    fields = {"evt.time": time_ns, **fields}
    text = render_falco_output(output_template + FALCO_APPEND, fields)
    return {
        "hostname": hostname,
        "output": f"{clock}: {priority} {text}",
        "output_fields": fields,
        "priority": priority,
        "rule": rule,
        "source": source,
        "tags": sorted(tags),
        "time": nano_time(time_ns),
        "uuid": alert_uuid,
    }


def tetragon_exec_id(node: str, ktime_ns: int, pid: int) -> str:
    """Tetragon's exec_id: base64 of `node:ktime:pid`."""
    return base64.b64encode(f"{node}:{ktime_ns}:{pid}".encode()).decode()


# The capabilities a container process has by default, and privileged.
DEFAULT_CAPS = [
    "CAP_CHOWN",
    "DAC_OVERRIDE",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_RAW",
    "CAP_SYS_CHROOT",
    "CAP_MKNOD",
    "CAP_AUDIT_WRITE",
    "CAP_SETFCAP",
]
PRIVILEGED_CAPS = [
    "CAP_CHOWN",
    "DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
]


@dataclass
class TetragonProcess:
    """A process as Tetragon describes it; `pod` is None for host processes."""

    exec_id: str
    pid: int
    binary: str
    arguments: str
    start_ns: int
    parent_exec_id: str
    pod: dict[str, Any] | None
    uid: int = 0
    cwd: str = "/"
    flags: str = "execve clone"
    in_init_tree: bool = False
    exited: bool = False
    caps: list[str] | None = None

    def to_json(self) -> dict[str, Any]:
        proc: dict[str, Any] = {
            "exec_id": self.exec_id,
            "pid": self.pid,
            "uid": self.uid,
            "cwd": self.cwd,
            "binary": self.binary,
        }
        if self.arguments:
            proc["arguments"] = self.arguments
        proc["flags"] = self.flags
        proc["start_time"] = nano_time(self.start_ns)
        proc["auid"] = 4294967295
        if self.pod is not None:
            proc["pod"] = self.pod
            proc["docker"] = self.pod["container"]["id"].split("://", 1)[-1][:31]
        proc["parent_exec_id"] = self.parent_exec_id
        proc["tid"] = self.pid
        if self.caps is not None:
            proc["cap"] = {"permitted": self.caps, "effective": self.caps}
        if self.in_init_tree:
            proc["in_init_tree"] = True
        return proc


def tetragon_pod_info(
    pod: dict[str, Any], container_status: dict[str, Any], container_pid: int = 1
) -> dict[str, Any]:
    """The `pod` block Tetragon attaches to a process in a container."""
    meta = pod["metadata"]
    labels = meta.get("labels") or {}
    owners = meta.get("ownerReferences") or []
    workload, workload_kind = meta["name"], "Pod"
    if owners:
        workload_kind = owners[0]["kind"]
        workload = owners[0]["name"]
        if workload_kind == "ReplicaSet" and "pod-template-hash" in labels:
            workload_kind = "Deployment"
            workload = workload[: -len(labels["pod-template-hash"]) - 1]
    running = (container_status.get("state") or {}).get("running") or {}
    return {
        "namespace": meta.get("namespace", ""),
        "name": meta["name"],
        "container": {
            "id": container_status.get("containerID", ""),
            "name": container_status["name"],
            "image": {
                "id": container_status.get("imageID", ""),
                "name": container_status.get("image", ""),
            },
            "start_time": running.get("startedAt") or meta.get("creationTimestamp", ""),
            "pid": container_pid,
        },
        "pod_labels": dict(labels),
        "workload": workload,
        "workload_kind": workload_kind,
    }


def tetragon_record(event_type: str, body: dict[str, Any], *, node: str, time_ns: int) -> dict:
    """`{"process_exec": {...}, "node_name": ..., "time": ...}` as the export file has it."""
    return {event_type: body, "node_name": node, "time": nano_time(time_ns)}
