"""Pod specs: what in a pod (or a workload's pod template) reaches into the host.

`pod_spec_risks` reads a spec; `template_spec` finds the spec inside a pod, a
workload, a merge patch of one, or the part of the spec a JSON patch writes.
"""

from __future__ import annotations

from typing import Any

from ktriage.core.model import Severity

_SENSITIVE_HOST_PATHS = (
    "/",
    "/etc",
    "/root",
    "/proc",
    "/sys",
    "/var/run",
    "/run",
    "/var/lib/kubelet",
    "/var/lib/docker",
    "/var/lib/containerd",
    "/var/log",
    "/home",
    "/dev",
    "/boot",
    "/var/run/docker.sock",
    "/run/containerd/containerd.sock",
)
_DANGEROUS_CAPS = frozenset(
    {"SYS_ADMIN", "SYS_PTRACE", "SYS_MODULE", "DAC_READ_SEARCH", "NET_ADMIN", "BPF", "ALL"}
)


def _container_flags(containers: object, flags: list[str], dangerous: list[str]) -> None:
    if not isinstance(containers, list):
        return
    for c in containers:
        if not isinstance(c, dict):
            continue
        name = str(c.get("name") or "?")
        sc = c.get("securityContext")
        if not isinstance(sc, dict):
            continue
        if sc.get("privileged") is True:
            flags.append(f"privileged container {name}")
            dangerous.append("privileged")
        caps = sc.get("capabilities")
        if isinstance(caps, dict) and isinstance(caps.get("add"), list):
            added = [str(a).upper().removeprefix("CAP_") for a in caps["add"]]
            bad = sorted({a for a in added if a in _DANGEROUS_CAPS})
            if bad:
                flags.append(f"container {name} adds {','.join(bad)}")
                dangerous.append("caps")


def pod_spec_risks(spec: object) -> tuple[str, Severity, list[str]] | None:
    """(kind, severity, reasons) for a pod spec that reaches into the host, else None."""
    if not isinstance(spec, dict):
        return None
    flags: list[str] = []
    dangerous: list[str] = []
    for key in ("containers", "initContainers", "ephemeralContainers"):
        _container_flags(spec.get(key), flags, dangerous)
    host_paths: list[str] = []
    volumes = spec.get("volumes")
    if isinstance(volumes, list):
        for v in volumes:
            if isinstance(v, dict) and isinstance(v.get("hostPath"), dict):
                path = str(v["hostPath"].get("path") or "")
                host_paths.append(path)
                flags.append(f"hostPath {path}")
    host_ns = [k for k in ("hostPID", "hostIPC", "hostNetwork") if spec.get(k) is True]
    flags.extend(host_ns)
    if not flags:
        return None
    sensitive = any(p.rstrip("/") in _SENSITIVE_HOST_PATHS or p == "/" for p in host_paths) or any(
        p.endswith(".sock") for p in host_paths
    )
    if dangerous:
        kind = "privileged-pod"
        sev = Severity.HIGH
        if "privileged" in dangerous and (host_paths or "hostPID" in host_ns):
            sev = Severity.CRITICAL if sensitive or "hostPID" in host_ns else Severity.HIGH
    elif host_paths:
        kind = "hostpath-pod"
        sev = Severity.HIGH if sensitive else Severity.MEDIUM
    else:
        kind = "host-namespace-pod"
        sev = Severity.HIGH if "hostPID" in host_ns else Severity.MEDIUM
    return kind, sev, flags


# Where the pod spec lies in each kind of object, as JSON-pointer keys.
_POD_SPEC_AT: dict[str, tuple[str, ...]] = {
    "pods": ("spec",),
    "cronjobs": ("spec", "jobTemplate", "spec", "template", "spec"),
}
_WORKLOAD_SPEC_AT = ("spec", "template", "spec")
# Operations of one JSON patch read at most: a bigger patch is read in part.
MAX_PATCH_OPS = 10_000


def _pointer_keys(path: str) -> list[str]:
    """A JSON pointer (RFC 6901) as its keys."""
    return [k.replace("~1", "/").replace("~0", "~") for k in path[1:].split("/")]


def _is_index(key: str) -> bool:
    return key == "-" or key.isdigit()


def _place(spec: dict[str, Any], keys: list[str], value: object) -> None:
    """Put `value` at `keys` in `spec`, making what is missing. An array index makes a
    new element: the partial spec need not know which element a patch touches, only
    what it sets."""
    cur: dict[str, Any] | list[Any] = spec
    for i, key in enumerate(keys):
        last = i == len(keys) - 1
        if isinstance(cur, list):
            if last:
                cur.append(value)
                return
            child: dict[str, Any] | list[Any] = [] if _is_index(keys[i + 1]) else {}
            cur.append(child)
            cur = child
            continue
        if last:
            cur[key] = value
            return
        want = list if _is_index(keys[i + 1]) else dict
        found = cur.get(key)
        if not isinstance(found, want):
            found = want()
            cur[key] = found
        cur = found


def spec_from_json_patch(resource: str, ops: object) -> dict[str, Any] | None:
    """The partial pod spec a JSON patch (RFC 6902) of a pod or workload writes: each
    `add`/`replace` whose path lands in the pod spec, its value put at that path. None
    when no operation touches the pod spec."""
    if not isinstance(ops, list):
        return None
    prefix = list(_POD_SPEC_AT.get(resource, _WORKLOAD_SPEC_AT))
    spec: dict[str, Any] = {}
    touched = False
    for op in ops[:MAX_PATCH_OPS]:
        if not isinstance(op, dict) or op.get("op") not in ("add", "replace"):
            continue
        path = op.get("path")
        if not isinstance(path, str) or not path.startswith("/"):
            continue
        keys = _pointer_keys(path)
        value = op.get("value")
        # The spec itself, or something above it (the whole template), given whole.
        if len(keys) <= len(prefix) and keys == prefix[: len(keys)]:
            below: object = value
            for key in prefix[len(keys) :]:
                below = below.get(key) if isinstance(below, dict) else None
            if isinstance(below, dict):
                spec.update(below)
                touched = True
            continue
        if keys[: len(prefix)] != prefix:
            continue
        _place(spec, keys[len(prefix) :], value)
        touched = True
    return spec if touched else None


def template_spec(resource: str, obj: object) -> object:
    """The pod spec inside a pod or a workload object (or a merge patch of one, or the
    part of the spec a JSON patch writes)."""
    if isinstance(obj, list):
        return spec_from_json_patch(resource, obj)
    if not isinstance(obj, dict):
        return None
    spec = obj.get("spec")
    if resource == "pods" or not isinstance(spec, dict):
        return spec
    return workload_pod_spec(resource, spec)


def workload_pod_spec(resource: str, spec: dict[str, Any]) -> object:
    """The pod spec in a workload's spec: its template's (a CronJob's, in its jobTemplate)."""
    if resource == "cronjobs":
        jt = spec.get("jobTemplate")
        job_spec = jt.get("spec") if isinstance(jt, dict) else None
        if not isinstance(job_spec, dict):
            return None
        spec = job_spec
    tpl = spec.get("template")
    return tpl.get("spec") if isinstance(tpl, dict) else None
