"""Pod, node and Kubernetes-event changes → events.

Which changes matter: crash loops, OOM kills and other abnormal exits, restart
counts going up, image pulls failing, evictions, pods that cannot be scheduled,
nodes going NotReady or being cordoned, pods deleted, and new pods that are
privileged or reach into the host (hostPath volumes, host namespaces). Warning
events from the cluster become events too, as signals when they report one of
those faults.

Events have source "kube" and ref "<uid>:<resourceVersion>[:<what>]", so the same
object version never yields an event twice. Times come from the object (container
state times, condition transitions, event timestamps, creation time).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ktriage.core.attack import attack_for_kind
from ktriage.core.model import EntityKind, EntityRef, Event, Severity, entity, parse_time
from ktriage.core.text import clip

if TYPE_CHECKING:
    from ktriage.core.cluster import NodeInfo, PodInfo

SOURCE = "kube"
IMAGE_PULL_REASONS = frozenset(
    {
        "ErrImagePull",
        "ImagePullBackOff",
        "InvalidImageName",
        "ErrImageNeverPull",
        "RegistryUnavailable",
        "ImageInspectError",
    }
)
# Where privileged DaemonSets are expected (CNI, CSI, kube-proxy, the runtime
# sensors themselves): their pods are context, not signals.
INFRA_NAMESPACES = frozenset(
    {
        "kube-system",
        "falco",
        "tetragon",
        "calico-system",
        "tigera-operator",
        "cilium",
        "kube-flannel",
        "gke-managed-system",
        "gmp-system",
    }
)
MESSAGE_WIDTH = 300
CLUSTER_SCOPED = frozenset(
    {"Node", "Namespace", "PersistentVolume", "ClusterRole", "ClusterRoleBinding", "StorageClass"}
)

_LABELS = {
    "crashloop": "CrashLoopBackOff",
    "oomkilled": "OOMKilled container",
    "imagepull": "Image pull failure",
    "evicted": "Eviction",
    "privileged-pod": "Privileged pod",
    "hostpath-pod": "hostPath pod",
    "host-namespace-pod": "Pod in host namespaces",
    "node-notready": "Node NotReady",
}
_SEVERITY = {
    "crashloop": Severity.MEDIUM,
    "oomkilled": Severity.MEDIUM,
    "imagepull": Severity.LOW,
    "evicted": Severity.LOW,
    "privileged-pod": Severity.HIGH,
    "hostpath-pod": Severity.HIGH,
    "host-namespace-pod": Severity.HIGH,
    "node-notready": Severity.LOW,
}


def _d(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _s(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _l(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _t(value: Any) -> float | None:
    return parse_time(value) if value else None


def _make(
    *,
    time: float,
    ref: str,
    kind: str,
    summary: str,
    entities: tuple[EntityRef, ...],
    raw: dict[str, Any] | None,
    signal: bool | None = None,
    severity: Severity | None = None,
) -> Event:
    is_signal = kind in _SEVERITY if signal is None else signal
    sev = severity if severity is not None else _SEVERITY.get(kind, Severity.INFO)
    return Event(
        time=time,
        source=SOURCE,
        ref=ref,
        kind=kind,
        severity=sev,
        summary=summary,
        entities=entities,
        attack=attack_for_kind(kind) if is_signal else None,
        signal=is_signal,
        label=_LABELS.get(kind, "") if is_signal else "",
        raw_inline=raw,
    )


# ---- pods -------------------------------------------------------------------


class _Emitter:
    """The events of one object's change, refs `<base>:<what>`; the raw record is built
    for the first of them only, and shared."""

    __slots__ = ("_entities", "_make_raw", "_raw", "base", "events")

    def __init__(
        self,
        base: str,
        make_raw: Callable[[], dict[str, Any]],
        entities: Callable[[str], tuple[EntityRef, ...]],
    ) -> None:
        self.base = base
        self.events: list[Event] = []
        self._make_raw = make_raw
        self._entities = entities  # by the event's kind
        self._raw: dict[str, Any] | None = None

    def __call__(self, what: str, kind: str, time: float, summary: str, **kw: Any) -> None:
        if self._raw is None:
            self._raw = self._make_raw()
        self.events.append(
            _make(
                time=time,
                ref=f"{self.base}:{what}",
                kind=kind,
                summary=summary,
                entities=self._entities(kind),
                raw=self._raw,
                **kw,
            )
        )


def pod_entities(pod: PodInfo, *, with_account: bool = False) -> tuple[EntityRef, ...]:
    ents = [entity(EntityKind.POD, pod.namespace, pod.name)]
    if with_account and pod.service_account and pod.service_account != "default":
        # "default" is shared by every pod of a namespace: it would glue them together.
        ents.append(entity(EntityKind.SERVICE_ACCOUNT, pod.namespace, pod.service_account))
    if pod.node:
        ents.append(entity(EntityKind.NODE, "", pod.node))
    ents.append(entity(EntityKind.NAMESPACE, "", pod.namespace))
    for image in pod.images:
        ents.append(entity(EntityKind.IMAGE, "", image))
    return tuple(ents)


def pod_raw(obj: dict[str, Any] | None, pod: PodInfo) -> dict[str, Any]:
    """A small copy of the pod for the event's raw record (no env, no managed fields)."""
    if obj is None:
        return {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "namespace": pod.namespace,
                "name": pod.name,
                "uid": pod.uid,
                "resourceVersion": pod.resource_version,
            },
        }
    meta = _d(obj.get("metadata"))
    spec = _d(obj.get("spec"))
    keep_meta = {
        k: meta[k]
        for k in (
            "namespace",
            "name",
            "uid",
            "resourceVersion",
            "creationTimestamp",
            "deletionTimestamp",
            "labels",
            "ownerReferences",
        )
        if k in meta
    }
    keep_spec: dict[str, Any] = {
        k: spec[k]
        for k in ("nodeName", "serviceAccountName", "hostNetwork", "hostPID", "hostIPC")
        if k in spec
    }
    for key in ("initContainers", "containers", "ephemeralContainers"):
        containers = [
            {
                k: c[k]
                for k in ("name", "image", "command", "args", "securityContext", "volumeMounts")
                if k in c
            }
            for c in _l(spec.get(key))
            if isinstance(c, dict)
        ]
        if containers:
            keep_spec[key] = containers
    host_volumes = [v for v in _l(spec.get("volumes")) if isinstance(v, dict) and "hostPath" in v]
    if host_volumes:
        keep_spec["volumes"] = host_volumes
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": keep_meta,
        "spec": keep_spec,
        "status": obj.get("status") or {},
    }


def _pod_name(pod: PodInfo) -> str:
    return f"{pod.namespace}/{pod.name}"


def _exit_text(reason: str, code: int | None) -> str:
    if reason and code is not None:
        return f"{reason}, exit code {code}"
    if code is not None:
        return f"exit code {code}"
    return reason or "unknown reason"


def _expected_privileged(pod: PodInfo) -> bool:
    return pod.namespace in INFRA_NAMESPACES and pod.owner.startswith(("DaemonSet/", "Node/"))


def _risky_kind(pod: PodInfo) -> tuple[str, str]:
    parts = []
    if pod.privileged:
        parts.append("privileged container " + ", ".join(pod.privileged_containers))
    if pod.host_path:
        parts.append("hostPath " + ", ".join(pod.host_paths))
    namespaces = [
        n
        for n, on in (("network", pod.host_network), ("PID", pod.host_pid), ("IPC", pod.host_ipc))
        if on
    ]
    if namespaces:
        parts.append("host " + "/".join(namespaces) + " namespace")
    if pod.privileged:
        kind = "privileged-pod"
    elif pod.host_path:
        kind = "hostpath-pod"
    else:
        kind = "host-namespace-pod"
    return kind, "; ".join(parts)


def pod_changes(old: PodInfo | None, new: PodInfo, obj: dict[str, Any]) -> list[Event]:
    """Events implied by a pod going from `old` (None: first seen) to `new`."""
    emit = _Emitter(
        f"{new.uid}:{new.resource_version}",
        lambda: pod_raw(obj, new),
        lambda kind: pod_entities(new, with_account=kind.endswith("-pod")),
    )

    name = _pod_name(new)
    if old is None and new.risky:
        kind, detail = _risky_kind(new)
        if _expected_privileged(new):
            emit(
                "risky",
                kind,
                new.created or new.changed,
                f"Pod {name} ({new.owner}) runs with {detail}; expected for a system DaemonSet",
                signal=False,
                severity=Severity.INFO,
            )
        else:
            owner = f" ({new.owner})" if new.owner else ""
            emit("risky", kind, new.created or new.changed, f"New pod {name}{owner}: {detail}")

    # Pod-level faults.
    if new.reason == "Evicted" and (old is None or old.reason != "Evicted"):
        message = f": {clip(new.message, MESSAGE_WIDTH)}" if new.message else ""
        emit("evicted", "evicted", new.changed, f"Pod {name} was evicted{message}")
    if new.unschedulable and (old is None or not old.unschedulable):
        emit(
            "unschedulable",
            "unschedulable",
            new.unschedulable_since or new.changed,
            f"Pod {name} cannot be scheduled: {clip(new.unschedulable, MESSAGE_WIDTH)}",
            signal=False,
            severity=Severity.LOW,
        )

    # Container faults.
    old_statuses = {(s.kind, s.name): s for s in old.statuses} if old is not None else {}
    for st in new.statuses:
        prev = old_statuses.get((st.kind, st.name))
        what = st.name if st.kind == "container" else f"{st.kind}:{st.name}"
        label = f"{'init ' if st.kind == 'init' else ''}container {st.name} of pod {name}"
        explained = False
        seen_terms = set()
        if prev is not None:
            seen_terms = {prev.termination_key(), prev.last_termination_key()} - {None}
        for slot, key, reason, code, finished, started in (
            (
                "last",
                st.last_termination_key(),
                st.last_reason,
                st.last_exit_code,
                st.last_finished,
                st.last_started,
            ),
            ("now", st.termination_key(), st.reason, st.exit_code, st.finished, st.started),
        ):
            if key is None or key in seen_terms:
                continue
            seen_terms.add(key)
            when = finished or started or new.changed
            suffix = "" if slot == "now" else ":last"
            if reason == "OOMKilled":
                emit(
                    f"oomkilled:{what}{suffix}",
                    "oomkilled",
                    when,
                    f"{label[:1].upper()}{label[1:]} was OOMKilled"
                    f" ({_exit_text('', code)}, restarts {st.restarts})",
                )
                explained = True
            elif reason != "Completed" and code != 0 and (reason or code is not None):
                emit(
                    f"exit:{what}{suffix}",
                    "container-exit",
                    when,
                    f"{label[:1].upper()}{label[1:]} exited abnormally"
                    f" ({_exit_text(reason, code)})",
                    signal=False,
                    severity=Severity.LOW,
                )
                explained = True
        if st.state == "waiting" and st.reason == "CrashLoopBackOff":
            if prev is None or not (prev.state == "waiting" and prev.reason == "CrashLoopBackOff"):
                last = (
                    f", last exit {_exit_text(st.last_reason, st.last_exit_code)}"
                    if st.last_reason or st.last_exit_code is not None
                    else ""
                )
                emit(
                    f"crashloop:{what}",
                    "crashloop",
                    st.last_finished or new.changed,
                    f"{label[:1].upper()}{label[1:]} is in CrashLoopBackOff"
                    f" (restarts {st.restarts}{last})",
                )
                explained = True
        if st.state == "waiting" and st.reason in IMAGE_PULL_REASONS:
            if prev is None or not (prev.state == "waiting" and prev.reason in IMAGE_PULL_REASONS):
                message = f": {clip(st.message, MESSAGE_WIDTH)}" if st.message else ""
                emit(
                    f"imagepull:{what}",
                    "imagepull",
                    new.changed,
                    f"{label[:1].upper()}{label[1:]} cannot pull image {st.image or '?'}"
                    f" ({st.reason}){message}",
                )
        if prev is not None and st.restarts > prev.restarts and not explained:
            emit(
                f"restart:{what}",
                "restart",
                st.started or st.last_finished or new.changed,
                f"{label[:1].upper()}{label[1:]} restarted"
                f" (restarts {prev.restarts} → {st.restarts})",
                signal=False,
                severity=Severity.LOW,
            )
    return emit.events


def _deletion_time(obj: dict[str, Any] | None) -> float | None:
    if obj is None:
        return None
    meta = _d(obj.get("metadata"))
    t = _t(meta.get("deletionTimestamp"))
    if t is None:
        return None
    grace = meta.get("deletionGracePeriodSeconds")
    if isinstance(grace, int) and not isinstance(grace, bool) and grace > 0:
        # deletionTimestamp is when the grace period ends; the request came before.
        t -= grace
    return t


def _gone(
    obj: dict[str, Any] | None,
    fallback_time: float | None,
    changed: float,
    rv: str,
    seen_at: float | None = None,
) -> tuple[float, str]:
    """When an object went away and its last resourceVersion: its deletionTimestamp,
    else when the watch's DELETED arrived (`seen_at`: a grace-0 delete leaves no
    deletionTimestamp, and the newest time inside the object can be long before),
    else the newest time its final state records (a replay of recorded objects),
    else the caller's fallback (a re-list found it gone)."""
    from ktriage.core.cluster import latest_time

    when = _deletion_time(obj)
    if when is None and obj is not None and seen_at is not None:
        when = seen_at
    if when is None and obj is not None:
        when = latest_time(obj)
    if when is None:
        when = fallback_time if fallback_time is not None else changed
    if obj is not None:
        rv = _s(_d(obj.get("metadata")).get("resourceVersion")) or rv
    return when, rv


def pod_deleted(
    pod: PodInfo,
    obj: dict[str, Any] | None,
    *,
    fallback_time: float | None = None,
    seen_at: float | None = None,
) -> list[Event]:
    """The pod is gone: `obj` is its final state, or None when only a re-list told us;
    `seen_at`: when the watch reported the deletion."""
    when, rv = _gone(obj, fallback_time, pod.changed, pod.resource_version, seen_at)
    how = "" if obj is not None else " (found missing on re-list)"
    return [
        _make(
            time=when,
            ref=f"{pod.uid}:{rv}:deleted",
            kind="pod-deleted",
            summary=f"Pod {_pod_name(pod)} was deleted{how}",
            entities=pod_entities(pod),
            raw=pod_raw(obj, pod) if obj is not None else pod_raw(None, pod),
            signal=False,
            severity=Severity.INFO,
        )
    ]


# ---- nodes ------------------------------------------------------------------


def _node_raw(obj: dict[str, Any] | None, node: NodeInfo) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": node.name, "uid": node.uid, "resourceVersion": ""}
    if obj is None:
        meta["resourceVersion"] = node.resource_version
        return {"apiVersion": "v1", "kind": "Node", "metadata": meta}
    src = _d(obj.get("metadata"))
    meta = {k: src[k] for k in ("name", "uid", "resourceVersion", "labels") if k in src}
    status = _d(obj.get("status"))
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": meta,
        "spec": obj.get("spec") or {},
        "status": {"conditions": status.get("conditions") or []},
    }


def _taint_time(obj: dict[str, Any], key: str) -> float | None:
    for taint in _l(_d(obj.get("spec")).get("taints")):
        if isinstance(taint, dict) and taint.get("key") == key:
            return _t(taint.get("timeAdded"))
    return None


def node_changes(old: NodeInfo | None, new: NodeInfo, obj: dict[str, Any]) -> list[Event]:
    ents = (entity(EntityKind.NODE, "", new.name),)
    emit = _Emitter(
        f"{new.uid or new.name}:{new.resource_version}",
        lambda: _node_raw(obj, new),
        lambda _kind: ents,
    )

    was_ready = old.ready if old is not None else True
    if not new.ready and was_ready:
        why = new.ready_reason or "no Ready condition"
        message = f": {clip(new.ready_message, MESSAGE_WIDTH)}" if new.ready_message else ""
        emit(
            "notready",
            "node-notready",
            new.ready_since or new.changed,
            f"Node {new.name} is NotReady ({why}){message}",
        )
    elif new.ready and old is not None and not old.ready:
        emit(
            "ready",
            "node-ready",
            new.ready_since or new.changed,
            f"Node {new.name} is Ready again",
            signal=False,
        )
    was_cordoned = old.unschedulable if old is not None else False
    if new.unschedulable and not was_cordoned:
        emit(
            "cordoned",
            "node-cordoned",
            _taint_time(obj, "node.kubernetes.io/unschedulable") or new.changed,
            f"Node {new.name} is cordoned (unschedulable)",
            signal=False,
        )
    elif not new.unschedulable and was_cordoned:
        emit(
            "uncordoned",
            "node-uncordoned",
            new.changed,
            f"Node {new.name} is schedulable again (uncordoned)",
            signal=False,
        )
    return emit.events


def node_deleted(
    node: NodeInfo,
    obj: dict[str, Any] | None,
    *,
    fallback_time: float | None = None,
    seen_at: float | None = None,
) -> list[Event]:
    when, rv = _gone(obj, fallback_time, node.changed, node.resource_version, seen_at)
    return [
        _make(
            time=when,
            ref=f"{node.uid or node.name}:{rv}:deleted",
            kind="node-deleted",
            summary=f"Node {node.name} was removed from the cluster",
            entities=(entity(EntityKind.NODE, "", node.name),),
            raw=_node_raw(obj, node),
            signal=False,
        )
    ]


# ---- Kubernetes Warning events ------------------------------------------------


def event_count(obj: dict[str, Any]) -> int:
    """How many times the event has happened so far (series, count, deprecatedCount)."""
    for value in (
        _d(obj.get("series")).get("count"),
        obj.get("count"),
        obj.get("deprecatedCount"),
    ):
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return 1


def event_time(obj: dict[str, Any]) -> float | None:
    for value in (
        _d(obj.get("series")).get("lastObservedTime"),
        obj.get("lastTimestamp"),
        obj.get("deprecatedLastTimestamp"),
        obj.get("eventTime"),
        obj.get("firstTimestamp"),
        obj.get("deprecatedFirstTimestamp"),
        _d(obj.get("metadata")).get("creationTimestamp"),
    ):
        t = _t(value)
        if t is not None:
            return t
    return None


def _classify_warning(reason: str, message: str, object_kind: str) -> str:
    text = message.lower()
    if reason == "BackOff" and "restarting failed container" in text:
        return "crashloop"
    if reason in IMAGE_PULL_REASONS or (
        reason in ("BackOff", "Failed") and "pull" in text and "image" in text
    ):
        return "imagepull"
    if reason == "Evicted":
        return "evicted"
    if reason in ("OOMKilling", "OOMKilled"):
        return "oomkilled"
    if reason == "NodeNotReady" and object_kind == "Node":
        return "node-notready"
    if reason == "FailedScheduling":
        return "unschedulable"
    return "k8s-warning"


# The kernel's OOM report as node-problem-detector relays it: "Killed process 33760
# (xmrig) ...". The comm is at most 15 bytes in the kernel; bounded here, no nesting.
_KILLED_PROCESS = re.compile(r"Killed process (\d{1,10}) \(([^()\x00-\x1f]{1,64})\)")


def killed_process(text: str) -> tuple[int, str] | None:
    """The PID and process name an OOM kill report names, or None. Only the first
    1,000 characters are read (an event's message is the cluster's, and untrusted)."""
    match = _KILLED_PROCESS.search(text[:1000])
    if match is None:
        return None
    return int(match.group(1)), match.group(2)


def warning_event(obj: dict[str, Any]) -> list[Event]:
    """A Warning Event object (core v1 or events.k8s.io/v1) → one event; Normal → none."""
    if _s(obj.get("type")) != "Warning":
        return []
    meta = _d(obj.get("metadata"))
    target = _d(obj.get("regarding")) or _d(obj.get("involvedObject"))
    reason = _s(obj.get("reason"))
    message = _s(obj.get("note")) or _s(obj.get("message"))
    object_kind = _s(target.get("kind"))
    namespace = _s(target.get("namespace")) or _s(meta.get("namespace"))
    if object_kind in CLUSTER_SCOPED:
        # Events about nodes live in "default": the node itself has no namespace.
        namespace = ""
    name = _s(target.get("name"))
    kind = _classify_warning(reason, message, object_kind)
    ents: list[EntityRef] = []
    if object_kind == "Pod" and name:
        ents.append(entity(EntityKind.POD, namespace, name))
    elif object_kind == "Node" and name:
        ents.append(entity(EntityKind.NODE, "", name))
    source_host = _s(_d(obj.get("source")).get("host")) or _s(obj.get("reportingInstance"))
    if object_kind == "Pod" and source_host and "/" not in source_host:
        ents.append(entity(EntityKind.NODE, "", source_host))
    if namespace:
        ents.append(entity(EntityKind.NAMESPACE, "", namespace))
    what = f"{object_kind} {namespace + '/' if namespace else ''}{name}".strip()
    count = event_count(obj)
    times = f" (x{count})" if count > 1 else ""
    summary = f"Warning {reason or 'event'} on {what}{times}: {clip(message, MESSAGE_WIDTH)}"
    raw = {k: v for k, v in obj.items() if k != "metadata"}
    raw["metadata"] = {
        k: meta[k] for k in ("namespace", "name", "uid", "resourceVersion") if k in meta
    }
    when = event_time(obj)
    if when is None:
        return []
    uid = _s(meta.get("uid")) or f"{namespace}/{_s(meta.get('name'))}"
    # Faults reported against a pod are signals; the same words about a node (a
    # kernel OOM kill names a process, not a pod) are context, except NotReady.
    signal = kind in _SEVERITY and (object_kind == "Pod" or kind == "node-notready")
    return [
        _make(
            time=when,
            ref=f"{uid}:{_s(meta.get('resourceVersion'))}",
            kind=kind,
            summary=summary,
            entities=tuple(ents),
            raw=raw,
            signal=signal,
            severity=None if signal else Severity.LOW,
        )
    ]
