"""Pod Security admission: the Pod Security Standards' baseline and restricted checks,
applied by the namespace labels `pod-security.kubernetes.io/{enforce,warn,audit}`.

Pods are checked at every level; workload templates (Deployments, Jobs, ...) only warn and
audit, as the real admission plugin does. Messages are worded as pod-security-admission's."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

LABEL_PREFIX = "pod-security.kubernetes.io/"
LEVELS = ("privileged", "baseline", "restricted")
AUDIT_ANNOTATION = "pod-security.kubernetes.io/audit-violations"
ENFORCE_POLICY_ANNOTATION = "pod-security.kubernetes.io/enforce-policy"
TEMPLATE_KINDS = {
    ("apps", "Deployment"): ("spec", "template"),
    ("apps", "ReplicaSet"): ("spec", "template"),
    ("apps", "StatefulSet"): ("spec", "template"),
    ("apps", "DaemonSet"): ("spec", "template"),
    ("batch", "Job"): ("spec", "template"),
    ("", "ReplicationController"): ("spec", "template"),
}
BASELINE_CAPABILITIES = frozenset(
    {
        "AUDIT_WRITE",
        "CHOWN",
        "DAC_OVERRIDE",
        "FOWNER",
        "FSETID",
        "KILL",
        "MKNOD",
        "NET_BIND_SERVICE",
        "SETFCAP",
        "SETGID",
        "SETPCAP",
        "SETUID",
        "SYS_CHROOT",
    }
)
RESTRICTED_VOLUME_TYPES = frozenset(
    {
        "configMap",
        "csi",
        "downwardAPI",
        "emptyDir",
        "ephemeral",
        "persistentVolumeClaim",
        "projected",
        "secret",
    }
)


@dataclass
class Decision:
    """What the admission decided for one request."""

    forbidden: str | None = None  # the 403 message when enforce rejects
    warnings: list[str] = field(default_factory=list)
    audit_annotations: dict[str, str] = field(default_factory=dict)


def policy(ns_labels: dict[str, str], mode: str) -> tuple[str, str] | None:
    level = ns_labels.get(LABEL_PREFIX + mode)
    if level not in LEVELS:
        return None
    return level, ns_labels.get(f"{LABEL_PREFIX}{mode}-version") or "latest"


def pod_spec_of(group: str, kind: str, obj: dict) -> dict | None:
    """The pod spec admission checks: the pod's own or the workload template's (CronJobs
    through their job template)."""
    if kind == "Pod" and group == "":
        return obj.get("spec") if isinstance(obj.get("spec"), dict) else {}
    if kind == "CronJob" and group == "batch":
        job = ((obj.get("spec") or {}).get("jobTemplate") or {}).get("spec") or {}
        return (job.get("template") or {}).get("spec") or {}
    if (group, kind) in TEMPLATE_KINDS:
        return ((obj.get("spec") or {}).get("template") or {}).get("spec") or {}
    return None


def admit(
    group: str, kind: str, resource: str, name: str, obj: dict, ns_labels: dict[str, str]
) -> Decision:
    decision = Decision()
    spec = pod_spec_of(group, kind, obj)
    if spec is None:
        return decision
    is_pod = kind == "Pod" and group == ""
    enforce = policy(ns_labels, "enforce")
    if enforce is not None and is_pod:
        decision.audit_annotations[ENFORCE_POLICY_ANNOTATION] = f"{enforce[0]}:{enforce[1]}"
        problems = violations(spec, enforce[0])
        if problems:
            decision.forbidden = (
                f'{resource} "{name}" is forbidden: violates PodSecurity '
                f'"{enforce[0]}:{enforce[1]}": {problems}'
            )
            return decision
    warn = policy(ns_labels, "warn")
    if warn is not None:
        problems = violations(spec, warn[0])
        if problems:
            decision.warnings.append(f'would violate PodSecurity "{warn[0]}:{warn[1]}": {problems}')
    audit = policy(ns_labels, "audit")
    if audit is not None:
        problems = violations(spec, audit[0])
        if problems:
            decision.audit_annotations[AUDIT_ANNOTATION] = (
                f'would violate PodSecurity "{audit[0]}:{audit[1]}": {problems}'
            )
    return decision


def violations(spec: dict, level: str) -> str:
    """The failed checks of `level` for this pod spec, joined as the admission words them
    ("" when the pod passes)."""
    return ", ".join(violation_list(spec, level))


def violation_list(spec: dict, level: str) -> list[str]:
    if level == "privileged":
        return []
    checks = BASELINE_CHECKS if level == "baseline" else RESTRICTED_CHECKS
    return [reason for reason in (check(spec) for check in checks) if reason]


def existing_pods_warnings(store: Any, namespace: dict, old: dict | None) -> list[str]:
    """When a namespace's enforce level changes, the warnings naming the pods already in it
    that the new level would reject (pods with the same problems share one line)."""
    new_policy = policy(labels_of(namespace), "enforce")
    if new_policy is None or new_policy == policy(labels_of(old), "enforce"):
        return []
    level, version = new_policy
    name = namespace["metadata"].get("name", "")
    by_problem: dict[str, list[str]] = {}
    for pod in store.list_objs("v1", "Pod", name):
        found = violation_list(pod.get("spec") or {}, level)
        if found:
            titles = ", ".join(reason.split(" (", 1)[0] for reason in found)
            by_problem.setdefault(titles, []).append(pod["metadata"]["name"])
    if not by_problem:
        return []
    out = [
        f'existing pods in namespace "{name}" violate the new PodSecurity enforce level '
        f'"{level}:{version}"'
    ]
    for titles, pods in by_problem.items():
        others = len(pods) - 1
        who = pods[0] if not others else f"{pods[0]} (and {others} other pod{'s' * (others > 1)})"
        out.append(f"{who}: {titles}")
    return out


# ---------------------------------------------------------------------- helpers


def _containers(spec: dict) -> list[dict]:
    out = []
    for key in ("initContainers", "containers", "ephemeralContainers"):
        out.extend(c for c in spec.get(key) or [] if isinstance(c, dict))
    return out


def _sc(obj: dict) -> dict:
    sc = obj.get("securityContext")
    return sc if isinstance(sc, dict) else {}


def _named(spec: dict, test: Callable[[dict], bool]) -> list[str]:
    """The names of the pod's containers that `test` picks out."""
    return [c.get("name", "") for c in _containers(spec) if test(c)]


def _offending(spec: dict, items_of: Callable[[dict], list[str]]) -> tuple[list[str], list[str]]:
    """The names of the containers with offending items (`items_of(container)`), and
    those items in the order found."""
    names: list[str] = []
    items: list[str] = []
    for c in _containers(spec):
        found = items_of(c)
        if found:
            names.append(c.get("name", ""))
            items.extend(found)
    return names, items


def _capabilities(container: dict, change: str) -> list[str]:
    """The capabilities a container adds or drops (`change`), as strings."""
    return [str(a) for a in (_sc(container).get("capabilities") or {}).get(change) or []]


def _quoted(names: list[str]) -> str:
    return ", ".join(f'"{n}"' for n in names)


def _who(names: list[str], singular: str = "container") -> str:
    noun = singular if len(names) == 1 else singular + "s"
    return f"{noun} {_quoted(names)}"


def _must(names: list[str], text: str) -> str:
    return f"{_who(names)} must {text}"


# ---------------------------------------------------------------------- baseline checks


def _host_namespaces(spec: dict) -> str:
    set_ = [f"{k}=true" for k in ("hostNetwork", "hostPID", "hostIPC") if spec.get(k) is True]
    return f"host namespaces ({', '.join(set_)})" if set_ else ""


def _privileged(spec: dict) -> str:
    names = _named(spec, lambda c: _sc(c).get("privileged") is True)
    if not names:
        return ""
    return f"privileged ({_must(names, 'not set securityContext.privileged=true')})"


def _capabilities_baseline(spec: dict) -> str:
    names, caps = _offending(
        spec, lambda c: [a for a in _capabilities(c, "add") if a not in BASELINE_CAPABILITIES]
    )
    if not names:
        return ""
    return (
        f"non-default capabilities ({_must(names, 'not include')} {_quoted(sorted(set(caps)))} in "
        "securityContext.capabilities.add)"
    )


def _host_path(spec: dict) -> str:
    names = [
        v.get("name", "")
        for v in spec.get("volumes") or []
        if isinstance(v, dict) and v.get("hostPath") is not None
    ]
    if not names:
        return ""
    return f"hostPath volumes ({_who(names, 'volume')})"


def _host_ports(spec: dict) -> str:
    names, ports = _offending(
        spec,
        lambda c: [
            str(p.get("hostPort"))
            for p in c.get("ports") or []
            if isinstance(p, dict) and p.get("hostPort")
        ],
    )
    if not names:
        return ""
    uses = "uses" if len(names) == 1 else "use"
    noun = "hostPort" if len(ports) == 1 else "hostPorts"
    return f"hostPort ({_who(names)} {uses} {noun} {', '.join(ports)})"


def _seccomp_baseline(spec: dict) -> str:
    bad = []
    if (_sc(spec).get("seccompProfile") or {}).get("type") == "Unconfined":
        bad.append("pod")
    names = _named(spec, lambda c: (_sc(c).get("seccompProfile") or {}).get("type") == "Unconfined")
    if not bad and not names:
        return ""
    parts = []
    if bad:
        parts.append('pod must not set securityContext.seccompProfile.type to "Unconfined"')
    if names:
        parts.append(
            f'{_must(names, "not set")} securityContext.seccompProfile.type to "Unconfined"'
        )
    return f"seccompProfile ({'; '.join(parts)})"


SAFE_SYSCTLS = frozenset(
    {
        "kernel.shm_rmid_forced",
        "net.ipv4.ip_local_port_range",
        "net.ipv4.ip_unprivileged_port_start",
        "net.ipv4.tcp_syncookies",
        "net.ipv4.ping_group_range",
        "net.ipv4.ip_local_reserved_ports",
        "net.ipv4.tcp_keepalive_time",
        "net.ipv4.tcp_fin_timeout",
        "net.ipv4.tcp_keepalive_intvl",
        "net.ipv4.tcp_keepalive_probes",
    }
)


def _proc_mount(spec: dict) -> str:
    names = _named(spec, lambda c: _sc(c).get("procMount") not in (None, "Default"))
    if not names:
        return ""
    return f'procMount ({_must(names, "not set")} securityContext.procMount to "Unmasked")'


def _sysctls(spec: dict) -> str:
    bad = [
        str(s.get("name", ""))
        for s in _sc(spec).get("sysctls") or []
        if isinstance(s, dict) and s.get("name") not in SAFE_SYSCTLS
    ]
    return f"forbidden sysctls ({', '.join(bad)})" if bad else ""


# ---------------------------------------------------------------------- restricted checks


def _allow_privilege_escalation(spec: dict) -> str:
    names = _named(spec, lambda c: _sc(c).get("allowPrivilegeEscalation") is not False)
    if not names:
        return ""
    return (
        "allowPrivilegeEscalation != false "
        f"({_must(names, 'set securityContext.allowPrivilegeEscalation=false')})"
    )


def _capabilities_restricted(spec: dict) -> str:
    no_drop = _named(
        spec,
        lambda c: (
            "ALL" not in [str(d) for d in (_sc(c).get("capabilities") or {}).get("drop") or []]
        ),
    )
    bad_add, caps = _offending(
        spec, lambda c: [a for a in _capabilities(c, "add") if a != "NET_BIND_SERVICE"]
    )
    parts = []
    if no_drop:
        parts.append(f'{_must(no_drop, "set")} securityContext.capabilities.drop=["ALL"]')
    if bad_add:
        parts.append(
            f"{_must(bad_add, 'not include')} {_quoted(sorted(set(caps)))} in "
            "securityContext.capabilities.add"
        )
    return f"unrestricted capabilities ({'; '.join(parts)})" if parts else ""


def _restricted_volumes(spec: dict) -> str:
    names, types = [], []
    for v in spec.get("volumes") or []:
        if not isinstance(v, dict):
            continue
        kind = next((k for k in v if k != "name"), "emptyDir")
        if kind not in RESTRICTED_VOLUME_TYPES:
            names.append(v.get("name", ""))
            if kind not in types:
                types.append(kind)
    if not names:
        return ""
    noun = "type" if len(types) == 1 else "types"
    uses = "uses" if len(names) == 1 else "use"
    return (
        f"restricted volume types ({_who(names, 'volume')} {uses} restricted volume {noun} "
        f"{_quoted(types)})"
    )


def _run_as_non_root(spec: dict) -> str:
    pod_true = _sc(spec).get("runAsNonRoot") is True
    explicit_false, unset = [], []
    if _sc(spec).get("runAsNonRoot") is False:
        return "runAsNonRoot != true (pod must not set securityContext.runAsNonRoot=false)"
    for c in _containers(spec):
        value = _sc(c).get("runAsNonRoot")
        if value is False:
            explicit_false.append(c.get("name", ""))
        elif value is None and not pod_true:
            unset.append(c.get("name", ""))
    parts = []
    if explicit_false:
        parts.append(f"{_must(explicit_false, 'not set')} securityContext.runAsNonRoot=false")
    if unset:
        parts.append(f"pod or {_must(unset, 'set')} securityContext.runAsNonRoot=true")
    return f"runAsNonRoot != true ({'; '.join(parts)})" if parts else ""


def _run_as_user(spec: dict) -> str:
    parts = []
    if _sc(spec).get("runAsUser") == 0:
        parts.append("pod must not set runAsUser=0")
    names = _named(spec, lambda c: _sc(c).get("runAsUser") == 0)
    if names:
        parts.append(f"{_must(names, 'not set')} runAsUser=0")
    return f"runAsUser=0 ({'; '.join(parts)})" if parts else ""


def _seccomp_restricted(spec: dict) -> str:
    pod_type = (_sc(spec).get("seccompProfile") or {}).get("type")
    ok = ("RuntimeDefault", "Localhost")
    parts = []
    if pod_type == "Unconfined":
        parts.append('pod must not set securityContext.seccompProfile.type to "Unconfined"')
    bad, unset = [], []
    for c in _containers(spec):
        ctype = (_sc(c).get("seccompProfile") or {}).get("type")
        if ctype is None:
            if pod_type not in ok:
                unset.append(c.get("name", ""))
        elif ctype not in ok:
            bad.append(c.get("name", ""))
    if bad:
        parts.append(f'{_must(bad, "not set")} securityContext.seccompProfile.type to "Unconfined"')
    if unset:
        parts.append(
            f"pod or {_must(unset, 'set')} securityContext.seccompProfile.type to "
            '"RuntimeDefault" or "Localhost"'
        )
    return f"seccompProfile ({'; '.join(parts)})" if parts else ""


Check = Callable[[dict], str]
# In the order of their check IDs, as the admission reports them; a restricted check that
# overrides a baseline one replaces it.
BASELINE_CHECKS: tuple[Check, ...] = (
    _capabilities_baseline,
    _host_namespaces,
    _host_path,
    _host_ports,
    _privileged,
    _proc_mount,
    _seccomp_baseline,
    _sysctls,
)
RESTRICTED_CHECKS: tuple[Check, ...] = (
    _allow_privilege_escalation,
    _capabilities_restricted,
    _host_namespaces,
    _host_ports,
    _privileged,
    _proc_mount,
    _restricted_volumes,
    _run_as_non_root,
    _run_as_user,
    _seccomp_restricted,
    _sysctls,
)


def labels_of(namespace: Any) -> dict[str, str]:
    if not isinstance(namespace, dict):
        return {}
    labels = (namespace.get("metadata") or {}).get("labels") or {}
    return {str(k): str(v) for k, v in labels.items()}
