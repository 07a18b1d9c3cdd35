"""Runtime security records in the shapes those tools export: Falco alerts and
Tetragon process events.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ktriage.sim.timefmt import rfc3339_ns

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
        "time": rfc3339_ns(time_ns),
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
        proc["start_time"] = rfc3339_ns(self.start_ns)
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
    return {event_type: body, "node_name": node, "time": rfc3339_ns(time_ns)}
