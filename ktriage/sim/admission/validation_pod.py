"""Pod spec validation (pkg/apis/core/validation): containers, ports, volumes."""

from __future__ import annotations

from typing import Any

from ktriage.sim.admission.fielderrors import (
    Cause,
    dns_label,
    duplicate,
    invalid,
    not_found,
    not_supported,
    port_number,
    required,
)

PROTOCOLS = ["SCTP", "TCP", "UDP"]
RESTART_POLICIES = ["Always", "Never", "OnFailure"]


def template(path: str, tmpl: Any) -> list[Cause]:
    """A workload's pod template: its spec is validated as a pod's."""
    if not isinstance(tmpl, dict):
        return [required(f"{path}.spec.containers")]
    spec = tmpl.get("spec") if isinstance(tmpl.get("spec"), dict) else {}
    return pod_spec(f"{path}.spec", spec)


def pod_spec(path: str, spec: dict) -> list[Cause]:
    out: list[Cause] = []
    volumes: set[str] = set()
    for i, vol in enumerate(spec.get("volumes") or []):
        vname = vol.get("name") if isinstance(vol, dict) else None
        vpath = f"{path}.volumes[{i}].name"
        if not vname:
            out.append(required(vpath))
        elif vname in volumes:
            out.append(duplicate(vpath, vname))
        else:
            out += dns_label(vpath, vname)
            volumes.add(vname)
    containers = spec.get("containers") or []
    if not containers:
        out.append(required(f"{path}.containers"))
    names: set[str] = set()
    for field in ("initContainers", "containers"):
        items = spec.get(field) or []
        if not isinstance(items, list):
            out.append(invalid(f"{path}.{field}", items, "must be a list"))
            continue
        for i, c in enumerate(items):
            out += _container(f"{path}.{field}[{i}]", c, names, volumes)
    policy = spec.get("restartPolicy")
    if policy is not None and policy not in RESTART_POLICIES:
        out.append(not_supported(f"{path}.restartPolicy", policy, RESTART_POLICIES))
    return out


def _container(path: str, c: Any, names: set[str], volumes: set[str]) -> list[Cause]:
    if not isinstance(c, dict):
        return [required(f"{path}.name")]
    out: list[Cause] = []
    cname = c.get("name")
    if not cname:
        out.append(required(f"{path}.name"))
    elif cname in names:
        out.append(duplicate(f"{path}.name", cname))
    else:
        out += dns_label(f"{path}.name", cname)
        names.add(cname)
    if not c.get("image"):
        out.append(required(f"{path}.image"))
    port_names: set[str] = set()
    for j, port in enumerate(c.get("ports") or []):
        ppath = f"{path}.ports[{j}]"
        if not isinstance(port, dict):
            continue
        if port.get("name"):
            if port["name"] in port_names:
                out.append(duplicate(f"{ppath}.name", port["name"]))
            port_names.add(port["name"])
        if port.get("containerPort") in (None, 0):
            out.append(required(f"{ppath}.containerPort"))
        else:
            out += port_number(f"{ppath}.containerPort", port.get("containerPort"))
        if port.get("hostPort") not in (None, 0):
            out += port_number(f"{ppath}.hostPort", port.get("hostPort"))
        proto = port.get("protocol")
        if proto is not None and proto not in PROTOCOLS:
            out.append(not_supported(f"{ppath}.protocol", proto, PROTOCOLS))
    for j, mount in enumerate(c.get("volumeMounts") or []):
        mpath = f"{path}.volumeMounts[{j}]"
        if not isinstance(mount, dict):
            continue
        mname = mount.get("name")
        if not mname:
            out.append(required(f"{mpath}.name"))
        elif mname not in volumes:
            out.append(not_found(f"{mpath}.name", mname))
        if not mount.get("mountPath"):
            out.append(required(f"{mpath}.mountPath"))
    return out
