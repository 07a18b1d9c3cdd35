"""The vocabulary of object templates: kinds, durations, generated names and hashes,
container specs, and the status shapes workloads report.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import orjson
import yaml

from ktriage.sim.names import safe_encode
from ktriage.sim.timefmt import rfc3339

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


def substitute(value: Any, old: str, new: str) -> Any:
    if isinstance(value, str):
        return value.replace(old, new)
    if isinstance(value, list):
        return [substitute(v, old, new) for v in value]
    if isinstance(value, dict):
        return {k: substitute(v, old, new) for k, v in value.items()}
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


Template = dict[str, Any]


def need(tpl: Template, key: str, what: str) -> Any:
    if key not in tpl or tpl[key] in (None, ""):
        raise TemplateError(f"{what}: missing required field {key!r}")
    return tpl[key]


def check_keys(tpl: Any, allowed: Iterable[str], what: str) -> None:
    if not isinstance(tpl, dict):
        raise TemplateError(f"{what}: expected a mapping, got {type(tpl).__name__}")
    allowed = set(allowed)
    unknown = sorted(set(tpl) - allowed)
    if unknown:
        raise TemplateError(
            f"{what}: unknown field {unknown[0]!r} (allowed: {', '.join(sorted(allowed))})"
        )


CONTAINER_KEYS = (
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
WORKLOAD_KEYS = (
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
TOKEN_SOURCES = [
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
DEFAULT_TOLERATIONS = [
    {
        "effect": "NoExecute",
        "key": f"node.kubernetes.io/{key}",
        "operator": "Exists",
        "tolerationSeconds": 300,
    }
    for key in ("not-ready", "unreachable")
]
NODE_CONDITIONS = (
    ("MemoryPressure", "False", "KubeletHasSufficientMemory", "has sufficient memory available"),
    ("DiskPressure", "False", "KubeletHasNoDiskPressure", "has no disk pressure"),
    ("PIDPressure", "False", "KubeletHasSufficientPID", "has sufficient PID available"),
    ("Ready", "True", "KubeletReady", "is posting ready status"),
)


def status_condition(ctype: str, status: str, t: float) -> dict[str, Any]:
    return {
        "type": ctype,
        "status": status,
        "lastProbeTime": None,
        "lastTransitionTime": rfc3339(t),
    }


_ADDONS: dict[str, Any] | None = None


def load_addons() -> dict[str, Any]:
    """`_addons.yaml`: the object templates of kube-system, Falco and Tetragon."""
    global _ADDONS
    if _ADDONS is None:
        text = resources.files("ktriage.sim.scenarios").joinpath("_addons.yaml").read_text()
        _ADDONS = yaml.safe_load(text)
    return _ADDONS


def qos_class(containers: list[ContainerSpec]) -> str:
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
                "lastUpdateTime": rfc3339(since + 20),
                "lastTransitionTime": rfc3339(since + 20),
            },
            {
                "type": "Progressing",
                "status": "True",
                "reason": "NewReplicaSetAvailable",
                "message": "ReplicaSet has successfully progressed.",
                "lastUpdateTime": rfc3339(since + 20),
                "lastTransitionTime": rfc3339(since),
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
