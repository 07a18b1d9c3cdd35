"""Focused replay: build events only for the lines that can reach an incident.

Most lines of a large recording are routine (controllers polling, kubelets
patching pod status, processes starting and exiting) and belong to no incident.
A focused replay reads a file twice:

1. Every line is decoded (which validates it). A line that might be a signal
   (decided from its fields, erring on the side of "might"), or that is not
   plainly valid, goes through the full pipeline, in file order, so stateful
   detections (403 bursts, one signal per request) see what they always see.
2. Every other line is decoded again and checked against the strong entities of
   the signals found in pass 1. Only a line naming one of them goes through the
   full pipeline, as context; the rest are counted.

The result is the same set of incidents, ids, titles and timelines as a full
replay (the correlator is order-independent, and a context event can only join
an incident through a strong entity of one of its signals); tests compare the
two on real and generated data. Lines that fail the quick checks always take the
full path, so every unusable line is still skipped and counted by its reason.
"""

from __future__ import annotations

from collections.abc import Iterable
from sys import intern

import msgspec

from ktriage.core.detect.audit import _WORKLOADS, _WRITE_VERBS, _is_system
from ktriage.core.model import STRONG_KINDS, EntityRef
from ktriage.core.parse import _SECOND_CACHE, to_epoch
from ktriage.core.parse.audit import DECODER as AUDIT_DECODER
from ktriage.core.parse.audit import AuditRecord
from ktriage.core.parse.tetragon import DECODER as TETRAGON_DECODER
from ktriage.core.parse.tetragon import TetragonRecord
from ktriage.core.parse.tetragon import _classify_exec as classify_exec

# A focused replay pays off only for large files; small ones take the full path.
FOCUS_MIN_BYTES = 8 << 20

# Resources whose requests core/detect/audit.py inspects (pods and workloads are
# narrowed below, as they are by far the most common).
_AUDIT_HANDLED = frozenset(
    {
        "secrets", "nodes", "serviceaccounts", "clusterrolebindings", "rolebindings",
        "clusterroles", "roles", "namespaces",
    }
)  # fmt: skip
_POD_SIGNAL_SUBRESOURCES = frozenset({"exec", "attach", "portforward", "ephemeralcontainers"})


def audit_might_signal(rec: AuditRecord) -> bool:
    """False only for audit records no detection can turn into a signal."""
    ref = rec.objectRef
    if ref is not None and ref.resource:
        if ref.resource == "pods":
            sub = ref.subresource
            if sub in _POD_SIGNAL_SUBRESOURCES:
                return True
            # Mirrors AuditDetector._pod_create: the spec decides, or a person
            # creating a pod in kube-system.
            if (
                not sub
                and rec.verb == "create"
                and (
                    len(rec.requestObject) > 0
                    or (ref.namespace == "kube-system" and not _is_system(rec.username))
                )
            ):
                return True
        elif ref.resource in _WORKLOADS:
            # Mirrors AuditDetector._workload: deletions, and writes by a person
            # that carry the object (or create a CronJob).
            verb = rec.verb or ""
            if not ref.subresource and (
                verb in ("delete", "deletecollection")
                or (
                    verb in _WRITE_VERBS
                    and not _is_system(rec.username)
                    and (len(rec.requestObject) > 0 or ref.resource == "cronjobs")
                )
            ):
                return True
        elif ref.resource in _AUDIT_HANDLED:
            return True
    st = rec.responseStatus
    if st is not None and st.code == 403:
        return True  # 403 bursts are counted in order
    user = rec.user
    if user is None or not user.username or user.username == "system:anonymous":
        return True
    return rec.impersonatedUser is not None


def tetragon_might_signal(rec: TetragonRecord) -> bool:
    """Only process_exit and ordinary execs are never signals."""
    if rec.process_exit is not None:
        return False
    body = rec.process_exec
    if body is None or body.process is None:
        return True
    return classify_exec(body.process, body.parent) is not None


# What plain_links returns for a line that must take the full path now.
FULL = None
# Links of a line that may join any incident (a bound token names its pod).
ANY = ("",)


_AUDIT_DECODE = AUDIT_DECODER.decode
_NARROWED = frozenset({"pods"}) | _WORKLOADS


def plain_links(line: bytes) -> tuple[str, ...] | None:
    """For a valid line that cannot be a signal: the names through which it could
    join an incident (user, object, source IPs, pod, container). None when the
    line must take the full path (it might be a signal, or is not plainly valid).

    The audit case runs for most lines of a replay, so quick_audit and
    audit_might_signal are inlined here (the tests compare it with the full path)."""
    if line.startswith(b'{"process_'):
        t = quick_tetragon(line)
        if t is None or tetragon_might_signal(t):
            return FULL
        body = t.process_exec or t.process_exit
        proc = body.process if body is not None else None
        if proc is None:
            return ()
        links = []
        if proc.docker:
            links.append(intern(proc.docker[:12]))
        pod = proc.pod
        if pod is not None:
            if pod.name:
                links.append(intern(pod.name))
            c = pod.container
            if c is not None and c.id:
                links.append(intern(c.id.rpartition("//")[2][:12]))
        return tuple(links)
    if not line.startswith(b'{"kind":"Event",') and b'"auditID"' not in line:
        return FULL
    # (An unauthenticated request has the user system:anonymous or none: both go
    # the full path below, as the detector reads the groups only then.)
    try:
        a = _AUDIT_DECODE(line)
    except (msgspec.DecodeError, ValueError):
        return FULL
    if not a.verb or (a.kind is not None and a.kind != "Event"):
        return FULL
    user = a.user
    name = user.username if user is not None else None
    if not name or name == "system:anonymous" or a.impersonatedUser is not None:
        return FULL
    st = a.responseStatus
    if st is not None and st.code == 403:
        return FULL
    ref = a.objectRef
    if ref is not None:
        resource = ref.resource
        if resource in _NARROWED or resource in _AUDIT_HANDLED:
            if audit_might_signal(a):
                return FULL
    stamp = a.stageTimestamp or a.requestReceivedTimestamp or a.timestamp
    if not (
        type(stamp) is str
        and len(stamp) > 20
        and stamp[-1] == "Z"
        and stamp[19] == "."
        and stamp[:19] in _SECOND_CACHE
        and stamp[20:-1].isdigit()
    ) and not _valid_time(stamp):
        return FULL
    if name.startswith("system:serviceaccount:"):
        if user.extra:
            return ANY
        name = name.rpartition(":")[2]
    # Pass 2 needs these until the end of the replay: interned, a few thousand
    # distinct names serve hundreds of thousands of lines.
    ips = a.sourceIPs
    if ips:
        ips = [intern(ip) for ip in ips]
    if ref is not None and ref.name:
        return (intern(name), intern(ref.name), *ips) if ips else (intern(name), intern(ref.name))
    return (intern(name), *ips) if ips else (intern(name),)


class SignalEntities:
    """The names of the strong entities of every signal: what context can join."""

    def __init__(self, keys: Iterable[EntityRef]) -> None:
        self.names = frozenset(key.name for key in keys if key.kind in STRONG_KINDS)

    def related(self, links: tuple[str, ...]) -> bool:
        """Whether a plain line's links name a strong entity of some signal."""
        if links is ANY:
            return True
        names = self.names
        return any(link in names for link in links)


def _valid_time(stamp: object) -> bool:
    """Whether the parsers will read this time; the common RFC 3339 form of a
    second already seen is answered from their cache."""
    if type(stamp) is not str:
        return False
    if len(stamp) > 20 and stamp[-1] == "Z" and stamp[19] == "." and stamp[:19] in _SECOND_CACHE:
        return stamp[20:-1].isdigit()
    return to_epoch(stamp) is not None


def quick_audit(line: bytes) -> AuditRecord | None:
    """The decoded record when it is plainly usable, else None (take the full path)."""
    try:
        rec = AUDIT_DECODER.decode(line)
    except (msgspec.DecodeError, ValueError):
        return None
    if rec.kind not in (None, "Event") or not rec.verb:
        return None
    stamp = rec.stageTimestamp or rec.requestReceivedTimestamp or rec.timestamp
    # _valid_time's common case, inlined (this runs for most lines of a replay).
    if (
        type(stamp) is str
        and len(stamp) > 20
        and stamp[-1] == "Z"
        and stamp[19] == "."
        and stamp[:19] in _SECOND_CACHE
        and stamp[20:-1].isdigit()
    ):
        return rec
    return rec if _valid_time(stamp) else None


def quick_tetragon(line: bytes) -> TetragonRecord | None:
    try:
        rec = TETRAGON_DECODER.decode(line)
    except (msgspec.DecodeError, ValueError):
        return None
    if rec.process_exec is None and rec.process_exit is None:
        return None
    return rec if _valid_time(rec.time) else None
