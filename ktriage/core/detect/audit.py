"""Which audit events are signals, and how risky.

`AuditDetector.process(record, event)` turns the ordinary context event built by
parse/audit.py into a signal where a detection matches, and returns the events to
emit now. It keeps a little state:

- one signal per request: a request is audited at several stages (RequestReceived,
  ResponseStarted, ResponseComplete). The signal comes from the response stage; a
  RequestReceived that would be a signal is held until its response stage arrives,
  or, when none does, released as the signal once event time has moved on (or at
  `flush`). Later stages of a request already signalled become context.
- bursts of 403 responses per identity (reconnaissance).
- roles seen created with wildcard rules, so a binding to one is flagged too.
"""

from __future__ import annotations

import bisect
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

from ktriage.core.attack import attack_for
from ktriage.core.detect.podspec import (
    pod_spec_risks,
    template_spec,
)
from ktriage.core.model import (
    EntityKind,
    EntityRef,
    Event,
    Severity,
    entity,
    is_system_identity,
    iso,
)
from ktriage.core.parse import identity, plain
from ktriage.core.parse.audit import (
    OUT_OF_RANGE_NOTE,
    UNTIMED_NOTE,
    AuditRecord,
    decode_object,
    target_text,
    with_untimed_note,
)

# A RequestReceived is held this long (event time) for its response stage.
HOLD_SECONDS = 30.0
BURST_COUNT = 10
BURST_WINDOW = 60.0
_MAX_PENDING = 10_000
_MAX_SIGNALLED = 200_000

_RESPONSE_STAGES = frozenset({"ResponseStarted", "ResponseComplete", "Panic", ""})
_PUBLIC_PATHS = ("/healthz", "/livez", "/readyz", "/version")
_PUBLIC_EXACT = frozenset({"/.well-known/openid-configuration", "/openid/v1/jwks"})
_WRITE_VERBS = frozenset({"create", "update", "patch"})
_READ_VERBS = frozenset({"get", "list", "watch"})
_WORKLOADS = frozenset(
    {
        "deployments",
        "daemonsets",
        "statefulsets",
        "replicasets",
        "jobs",
        "cronjobs",
        "replicationcontrollers",
    }
)
SECURITY_TOOLS = (
    "falco",
    "tetragon",
    "sysdig",
    "aqua",
    "twistlock",
    "prisma",
    "crowdstrike",
    "falcon-sensor",
    "tracee",
    "kubearmor",
    "neuvector",
    "stackrox",
    "lacework",
    "wiz-",
    "qualys",
    "trivy",
    "kyverno",
    "gatekeeper",
    "datadog",
)
_SA_TOKEN_PATHS = (
    "/var/run/secrets/kubernetes.io",
    "/run/secrets/kubernetes.io",
    "/serviceaccount/token",
)


_RequestKey = tuple[str | None, ...]


def _request_key(rec: AuditRecord) -> _RequestKey:
    """What every stage of one request shares. The auditID alone is not enough:
    test fixtures and some exporters reuse one id for different requests."""
    oref = rec.objectRef
    if oref is None:
        return (rec.auditID, rec.verb, rec.username, rec.requestURI)
    return (
        rec.auditID,
        rec.verb,
        rec.username,
        rec.requestURI,
        oref.resource,
        oref.subresource,
        oref.namespace,
        oref.name,
    )


@dataclass(slots=True)
class _Burst:
    times: list[float] = field(default_factory=list)
    open_until: float = -1.0
    what: dict[str, None] = field(default_factory=dict)
    ips: dict[str, None] = field(default_factory=dict)


def _signal(
    ev: Event,
    kind: str,
    severity: Severity,
    label: str,
    summary: str,
    technique: str,
    tactic: str | None = None,
) -> None:
    ev.kind = kind
    ev.severity = severity
    # A refused request is an attempt: the incident's title must not claim success.
    ev.label = f"{label} attempt (denied)" if "(denied " in summary else label
    ev.summary = plain(summary)
    ev.attack = attack_for(technique, tactic)
    ev.signal = True


def _demote(ev: Event, why: str) -> Event:
    ev.signal = False
    ev.severity = Severity.INFO
    ev.summary = plain(f"{ev.summary} ({why})")
    return ev


def _is_system(name: str) -> bool:
    return is_system_identity(name)


def _denied(rec: AuditRecord) -> bool:
    return rec.code >= 400


def _exec_command(uri: str) -> str:
    """`command=bash&command=-c&command=…` -> `bash -c '…'`."""
    _, _, query = uri.partition("?")
    if not query:
        return ""
    parts = [v for k, v in parse_qsl(query, keep_blank_values=True) if k == "command"]
    return shlex.join(parts) if parts else ""


def _past(verb: str) -> str:
    """create -> created, patch -> patched."""
    return f"{verb}d" if verb.endswith("e") else f"{verb}ed"


def flag_unread_pod_spec(rec: AuditRecord, ev: Event) -> None:
    """A pod or workload written with a record too large to read to its end: what was
    not read may hold anything, and a spec that large is suspicious in itself. At least
    a medium signal (a stronger one the detections made stays)."""
    oref = rec.objectRef
    verb = rec.verb or ""
    if oref is None or oref.subresource or verb not in _WRITE_VERBS or _denied(rec):
        return
    resource = oref.resource or ""
    if resource != "pods" and resource not in _WORKLOADS:
        return
    if ev.signal and ev.severity >= Severity.MEDIUM:
        return
    kind_name = resource[:-1] if resource.endswith("s") else resource
    where = f"{kind_name} {oref.namespace}/{oref.name}" if oref.namespace else kind_name
    if oref.name is None:
        where = f"a {kind_name} in {oref.namespace}" if oref.namespace else f"a {kind_name}"
    _signal(
        ev,
        "pod-spec-unread",
        Severity.MEDIUM,
        "Pod spec too large to read fully",
        f"{rec.username} {_past(verb)} {where}: the pod spec is too large to read fully",
        "T1610",
    )


_LABELS = {
    "privileged-pod": "Privileged pod",
    "hostpath-pod": "HostPath pod",
    "host-namespace-pod": "Host-namespace pod",
}


class AuditDetector:
    """Stateful audit detections; one per Ingestor."""

    def __init__(self) -> None:
        self._pending: dict[_RequestKey, Event] = {}
        self._next_release = float("inf")
        self._signalled: dict[_RequestKey, None] = {}
        self._bursts: dict[str, _Burst] = {}
        self._wildcard_roles: set[tuple[str, str]] = set()
        self._latest = 0.0
        self._handlers: dict[str, Callable[[AuditRecord, Event], None]] = {
            "pods": self._pods,
            "secrets": self._secrets,
            "nodes": self._nodes,
            "serviceaccounts": self._serviceaccounts,
            "clusterrolebindings": self._binding,
            "rolebindings": self._binding,
            "clusterroles": self._role,
            "roles": self._role,
            "namespaces": self._namespaces,
        }
        for res in _WORKLOADS:
            self._handlers[res] = self._workload

    # -- the pipeline ---------------------------------------------------------

    def process(self, rec: AuditRecord, ev: Event) -> list[Event]:
        """Classify `ev` (built from `rec`) and return what to emit now."""
        out: list[Event] | None = None
        t = ev.time
        if t > self._latest:
            self._latest = t
            if t > self._next_release:
                out = self._release(t)
        summary = ev.summary
        oref = rec.objectRef
        if oref is not None:
            handler = self._handlers.get(oref.resource)
            if handler is not None:
                handler(rec, ev)
        user = rec.user
        if user is not None and not ev.signal:
            name = user.username
            if name == "system:anonymous" or (not name and user.in_group("system:unauthenticated")):
                self._anonymous(rec, ev)
        imp = rec.impersonatedUser
        if ev.summary is not summary and imp is not None and imp.username:
            # A detection rewrote the summary in the requester's name: say whose
            # rights the request used, as the plain summary does.
            ev.summary = _as_impersonated(ev.summary, rec.username, imp.username)
        if ev.summary is not summary and summary.endswith((UNTIMED_NOTE, OUT_OF_RANGE_NOTE)):
            # A detection rewrote the summary of a record placed at an assumed time.
            note = UNTIMED_NOTE if summary.endswith(UNTIMED_NOTE) else OUT_OF_RANGE_NOTE
            ev.summary = with_untimed_note(ev.summary, note)
        st = rec.responseStatus
        if st is not None and st.code == 403 and (rec.stage or "") in _RESPONSE_STAGES:
            burst = self._forbidden(rec, ev)
            if burst is not None:
                if out is None:
                    out = []
                out.append(burst)
        if ev.signal and rec.auditID:
            if out is None:
                return self._one_per_request(rec, ev)
            out.extend(self._one_per_request(rec, ev))
        elif out is None:
            return [ev]
        else:
            out.append(ev)
        return out

    def advance(self, t: float) -> list[Event]:
        """Time moved on to `t` by records that needed no detection (a focused replay
        reads them apart): release what is due, as `process` would have."""
        if t > self._latest:
            self._latest = t
            if t > self._next_release:
                return self._release(t)
        return []

    def flush(self) -> list[Event]:
        """End of input: release every held RequestReceived as the signal it is."""
        return self._release(float("inf"))

    def _one_per_request(self, rec: AuditRecord, ev: Event) -> list[Event]:
        aid = _request_key(rec)
        stage = rec.stage or ""
        if aid in self._signalled:
            return [_demote(ev, "same request as an earlier signal")]
        if stage == "RequestReceived":
            self._pending[aid] = ev
            release = ev.time + HOLD_SECONDS
            if release < self._next_release:
                self._next_release = release
            if len(self._pending) > _MAX_PENDING:
                oldest = next(iter(self._pending))
                return self._emit_pending(oldest)
            return []
        self._mark(aid)
        held = self._pending.pop(aid, None)
        if held is not None:
            return [_demote(held, "request received; signalled at its response"), ev]
        return [ev]

    def _mark(self, aid: _RequestKey) -> None:
        self._signalled[aid] = None
        if len(self._signalled) > _MAX_SIGNALLED:
            for old in list(self._signalled)[: _MAX_SIGNALLED // 4]:
                del self._signalled[old]

    def _emit_pending(self, aid: _RequestKey) -> list[Event]:
        ev = self._pending.pop(aid)
        self._mark(aid)
        return [ev]

    def _release(self, now: float) -> list[Event]:
        out: list[Event] = []
        nxt = float("inf")
        for aid, ev in list(self._pending.items()):
            due = ev.time + HOLD_SECONDS
            if due <= now:
                out.extend(self._emit_pending(aid))
            elif due < nxt:
                nxt = due
        self._next_release = nxt
        return out

    # -- detections -----------------------------------------------------------

    def _pods(self, rec: AuditRecord, ev: Event) -> None:
        oref = rec.objectRef
        assert oref is not None
        sub = oref.subresource
        verb = rec.verb or ""
        actor = rec.username
        denied = _denied(rec)
        if sub in ("exec", "attach", "portforward") and verb in ("create", "get"):
            pod = f"{oref.namespace}/{oref.name}"
            if sub == "exec":
                cmd = _exec_command(rec.requestURI or "")
                kind, label, technique = "exec", "Exec into pod", "T1609"
                text = f"{actor} exec into {pod}" + (f": {cmd}" if cmd else "")
                sev = Severity.MEDIUM
                if cmd and any(p in cmd for p in _SA_TOKEN_PATHS):
                    sev = Severity.HIGH
                    text += " (reads the service-account token)"
            elif sub == "attach":
                kind, label, technique = "attach", "Attach to pod", "T1609"
                text = f"{actor} attached to {pod}"
                sev = Severity.MEDIUM
            else:
                kind, label, technique = "port-forward", "Port-forward to pod", "T1572"
                text = f"{actor} port-forward to {pod}"
                sev = Severity.MEDIUM
            if denied:
                sev = Severity.LOW
                text += f" (denied {rec.code})"
            _signal(ev, kind, sev, label, text, technique)
            return
        if sub == "ephemeralcontainers" and verb in ("update", "patch"):
            sev = Severity.LOW if denied else Severity.MEDIUM
            text = f"{actor} added an ephemeral container to {oref.namespace}/{oref.name}"
            if denied:
                text += f" (denied {rec.code})"
            _signal(ev, "ephemeral-container", sev, "Ephemeral container", text, "T1609")
            return
        if not sub and verb == "create":
            self._pod_create(rec, ev)

    def _pod_create(self, rec: AuditRecord, ev: Event) -> None:
        """A pod created with a risky spec (or in kube-system by a person)."""
        oref = rec.objectRef
        assert oref is not None
        obj = decode_object(rec.requestObject)
        name = oref.name or _created_name(obj)
        if not name and rec.responseObject:
            # Made from a generateName (a controller's pods): the name the server gave
            # it is in the response, where the audit policy records it.
            name = _created_name(decode_object(rec.responseObject))
        ns = oref.namespace or ""
        if name and (created := entity(EntityKind.POD, ns, name)) not in ev.entities:
            # The request may already name a pod: the one whose bound token made it.
            # The created pod goes before it, as the first Pod of a request is its target.
            ents = list(ev.entities)
            at = next((i for i, e in enumerate(ents) if e.kind == EntityKind.POD), len(ents))
            ents.insert(at, created)
            ev.entities = tuple(ents)
        ev.kind = "pod-create"
        ev.label = "Pod created"
        risks = pod_spec_risks(template_spec("pods", obj))
        actor = rec.username
        where = f"{ns}/{name}" if name else f"a pod in {ns}"
        if risks is None:
            if ns == "kube-system" and not _is_system(actor) and not _denied(rec):
                _signal(
                    ev,
                    "pod-create",
                    Severity.LOW,
                    "Pod in kube-system",
                    f"{actor} created {where}",
                    "T1610",
                )
            return
        kind, sev, flags = risks
        text = f"{actor} created {where}: {', '.join(flags)}"
        if _denied(rec):
            _signal(ev, kind, Severity.LOW, _LABELS[kind], f"{text} (denied {rec.code})", "T1611")
        elif _is_system(actor):
            # A controller made it from a template; the template's author is the
            # signal where the audit log has it. Outside kube-system it is still news.
            if ns == "kube-system":
                ev.kind = kind
                ev.summary = plain(text)
                return
            _signal(ev, kind, Severity.LOW, _LABELS[kind], text, "T1611")
        else:
            _signal(ev, kind, sev, _LABELS[kind], text, "T1611")

    def _workload(self, rec: AuditRecord, ev: Event) -> None:
        verb = rec.verb or ""
        oref = rec.objectRef
        assert oref is not None
        if oref.subresource:
            return
        if verb in ("delete", "deletecollection"):
            name = (oref.name or "").lower()
            if name and any(tool in name for tool in SECURITY_TOOLS):
                what = f"{(oref.resource or '')[:-1]} {oref.namespace}/{oref.name}"
                self._tool_deleted(rec, ev, what)
            return
        if verb not in _WRITE_VERBS:
            return
        actor = rec.username
        if _is_system(actor):
            return
        resource = oref.resource or ""
        obj = decode_object(rec.requestObject)
        risks = pod_spec_risks(template_spec(resource, obj))
        ns = oref.namespace or ""
        name = oref.name or ""
        if not name and isinstance(obj, dict) and isinstance(obj.get("metadata"), dict):
            name = str(obj["metadata"].get("name") or "")
        kind_name = resource[:-1] if resource.endswith("s") else resource
        where = f"{kind_name} {ns}/{name}" if ns else f"{kind_name} {name}"
        if risks is not None:
            kind, sev, flags = risks
            text = f"{actor} {_past(verb)} {where} with {', '.join(flags)}"
            if _denied(rec):
                sev = Severity.LOW
                text += f" (denied {rec.code})"
            _signal(ev, kind, sev, _LABELS[kind], text, "T1611")
        elif resource == "cronjobs" and verb == "create" and not _denied(rec):
            _signal(
                ev,
                "cronjob-create",
                Severity.LOW,
                "CronJob created",
                f"{actor} created {where}",
                "T1053.007",
            )

    def _secrets(self, rec: AuditRecord, ev: Event) -> None:
        verb = rec.verb or ""
        oref = rec.objectRef
        assert oref is not None
        actor = rec.username
        if verb in _READ_VERBS:
            ns = oref.namespace or ""
            if verb == "get":
                kind, label = "secret-read", "Secret read"
                what = f"read secret {ns}/{oref.name}" if oref.name else f"read a secret in {ns}"
            else:
                kind, label = "secret-list", "Secret listing"
                what = f"{verb} secrets in {ns}" if ns else f"{verb} secrets in all namespaces"
            ev.kind = kind
            if _is_system(actor):
                return
            is_sa = actor.startswith("system:serviceaccount:")
            if not ns and verb != "get":
                label = "Cluster-wide secret listing"
                sev = Severity.HIGH if (is_sa and verb == "list") else Severity.MEDIUM
            else:
                sev = Severity.MEDIUM if is_sa else Severity.LOW
            text = f"{actor} {what}"
            if _denied(rec):
                sev = Severity.LOW
                text += f" (denied {rec.code})"
            _signal(ev, kind, sev, label, text, "T1552.007")
            return
        if verb == "create":
            obj = decode_object(rec.requestObject)
            if isinstance(obj, dict) and obj.get("type") == "kubernetes.io/service-account-token":
                ev.kind = "token-request"
                if _is_system(actor) or _denied(rec):
                    return
                text = f"{actor} created a long-lived service-account token secret "
                text += f"{oref.namespace}/{oref.name or ''}".rstrip("/")
                _signal(ev, "token-request", Severity.MEDIUM, "Token request", text, "T1528")

    def _serviceaccounts(self, rec: AuditRecord, ev: Event) -> None:
        oref = rec.objectRef
        assert oref is not None
        if oref.subresource != "token" or rec.verb != "create":
            return
        ev.kind = "token-request"
        actor = rec.username
        if _is_system(actor):
            return
        sa = f"{oref.namespace}/{oref.name}"
        text = f"{actor} requested a token for service account {sa}"
        sev = Severity.MEDIUM
        if _denied(rec):
            sev = Severity.LOW
            text += f" (denied {rec.code})"
        _signal(ev, "token-request", sev, "Token request", text, "T1528")

    def _nodes(self, rec: AuditRecord, ev: Event) -> None:
        oref = rec.objectRef
        assert oref is not None
        if oref.subresource != "proxy":
            return
        actor = rec.username
        if _is_system(actor):
            ev.kind = "node-proxy"
            return
        path = (rec.requestURI or "").split("?", 1)[0]
        _, _, rest = path.partition("/proxy")
        first = rest.strip("/").split("/", 1)[0]
        if first in ("exec", "run", "attach", "portForward", "cri", "debug"):
            sev = Severity.HIGH
        elif first in ("metrics", "stats", "healthz", "spec", "configz"):
            sev = Severity.LOW
        else:
            sev = Severity.MEDIUM
        text = f"{actor} reached kubelet on node {oref.name} through the API proxy"
        if rest:
            text += f": {rest}"
        if _denied(rec):
            sev = Severity.LOW
            text += f" (denied {rec.code})"
        _signal(ev, "node-proxy", sev, "Node proxy access", text, "T1609")

    def _binding(self, rec: AuditRecord, ev: Event) -> None:
        if rec.verb not in _WRITE_VERBS:
            return
        oref = rec.objectRef
        assert oref is not None
        obj = decode_object(rec.requestObject)
        if not isinstance(obj, dict):
            return
        role_ref = obj.get("roleRef")
        if not isinstance(role_ref, dict):
            return
        role = str(role_ref.get("name") or "")
        role_kind = str(role_ref.get("kind") or "ClusterRole")
        cluster = oref.resource == "clusterrolebindings"
        ns = "" if role_kind == "ClusterRole" else (oref.namespace or "")
        if role == "cluster-admin":
            sev, label = Severity.HIGH, "Cluster-admin binding"
        elif role == "admin":
            sev, label = (Severity.HIGH if cluster else Severity.MEDIUM), "Admin binding"
        elif (ns, role) in self._wildcard_roles:
            sev, label = (Severity.HIGH if cluster else Severity.MEDIUM), "Wildcard role binding"
        else:
            return
        ev.kind = "rbac-binding"
        subjects: list[str] = []
        extra: list[EntityRef] = []
        subs = obj.get("subjects")
        if isinstance(subs, list):
            for s in subs:
                if not isinstance(s, dict):
                    continue
                sk, sn = str(s.get("kind") or ""), str(s.get("name") or "")
                sns = str(s.get("namespace") or "")
                if sk == "ServiceAccount":
                    subjects.append(f"ServiceAccount {sns}/{sn}")
                    extra.append(entity(EntityKind.SERVICE_ACCOUNT, sns, sn))
                elif sk == "User":
                    subjects.append(f"User {sn}")
                    extra.append(identity(sn))
                else:
                    subjects.append(f"{sk} {sn}")
        if extra:
            ev.entities = (*ev.entities, *extra)
        actor = rec.username
        if _is_system(actor):
            return
        name = oref.name or str((obj.get("metadata") or {}).get("name") or "")
        text = f"{actor} bound {role_kind} {role} to {', '.join(subjects) or 'no subjects'}"
        text += f" ({oref.resource} {name})" if name else ""
        if _denied(rec):
            sev = Severity.LOW
            text += f" (denied {rec.code})"
        _signal(ev, "rbac-binding", sev, label, text, "T1098.006")

    def _role(self, rec: AuditRecord, ev: Event) -> None:
        if rec.verb not in _WRITE_VERBS:
            return
        oref = rec.objectRef
        assert oref is not None
        obj = decode_object(rec.requestObject)
        if not isinstance(obj, dict) or not isinstance(obj.get("rules"), list):
            return
        wild: list[str] = []
        for rule in obj["rules"]:
            if not isinstance(rule, dict):
                continue
            for key in ("verbs", "resources"):
                values = rule.get(key)
                if isinstance(values, list) and "*" in values:
                    wild.append(key)
        if not wild:
            return
        cluster = oref.resource == "clusterroles"
        name = oref.name or str((obj.get("metadata") or {}).get("name") or "")
        ns = "" if cluster else (oref.namespace or "")
        if not _denied(rec):
            self._wildcard_roles.add((ns, name))
        ev.kind = "rbac-wildcard-role"
        actor = rec.username
        if _is_system(actor):
            return
        what = "ClusterRole" if cluster else f"Role in {ns}"
        text = f"{actor} {rec.verb}d {what} {name} with wildcard {' and '.join(sorted(set(wild)))}"
        sev = Severity.HIGH if cluster else Severity.MEDIUM
        if _denied(rec):
            sev = Severity.LOW
            text += f" (denied {rec.code})"
        _signal(ev, "rbac-wildcard-role", sev, "Wildcard role", text, "T1098.006")

    def _namespaces(self, rec: AuditRecord, ev: Event) -> None:
        if rec.verb not in ("delete", "deletecollection"):
            return
        oref = rec.objectRef
        assert oref is not None
        name = (oref.name or "").lower()
        if name and any(tool in name for tool in SECURITY_TOOLS):
            self._tool_deleted(rec, ev, f"namespace {oref.name}")

    def _tool_deleted(self, rec: AuditRecord, ev: Event, what: str) -> None:
        actor = rec.username
        text = f"{actor} deleted {what}"
        sev = Severity.HIGH
        if _denied(rec):
            sev = Severity.LOW
            text += f" (denied {rec.code})"
        _signal(ev, "security-tool-deleted", sev, "Security tool deleted", text, "T1562.001")

    def _anonymous(self, rec: AuditRecord, ev: Event) -> None:
        uri = rec.requestURI or ""
        path = uri.split("?", 1)[0]
        if path in _PUBLIC_EXACT or path.startswith(_PUBLIC_PATHS):
            return
        code = rec.code
        allowed = code < 400 if code else rec.decision == "allow"
        if not allowed:
            return
        what = target_text(rec) if rec.objectRef else uri
        text = (
            f"anonymous request allowed: {rec.verb} {what}"
            if rec.verb
            else f"anonymous request allowed: {what}"
        )
        if rec.sourceIPs:
            text += f" from {', '.join(rec.sourceIPs)}"
        _signal(ev, "anonymous-allowed", Severity.HIGH, "Anonymous access", text, "T1078")

    def _forbidden(self, rec: AuditRecord, ev: Event) -> Event | None:
        actor = rec.username
        if not actor or _is_system(actor):
            return None
        state = self._bursts.get(actor)
        if state is None:
            if len(self._bursts) > 50_000:
                self._prune_bursts()
            state = self._bursts[actor] = _Burst()
        t = ev.time
        times = state.times
        i = bisect.bisect(times, t)
        times.insert(i, t)
        if len(state.what) < 6:
            state.what[f"{rec.verb or 'request'} {target_text(rec)}"] = None
        if rec.sourceIPs:
            for ip in rec.sourceIPs[:4]:
                state.ips[ip] = None
        # Keep a few minutes around the newest time; order-tolerant within that.
        if len(times) > 4 * BURST_COUNT and times[0] < times[-1] - 5 * BURST_WINDOW:
            del times[: bisect.bisect(times, times[-1] - 5 * BURST_WINDOW)]
            i = bisect.bisect(times, t) - 1
        if t <= state.open_until:
            state.open_until = max(state.open_until, t + BURST_WINDOW)
            return None
        n = len(times)
        for j in range(max(0, i - BURST_COUNT + 1), min(i, n - BURST_COUNT) + 1):
            first, last = times[j], times[j + BURST_COUNT - 1]
            if last - first <= BURST_WINDOW and first > state.open_until:
                state.open_until = last + BURST_WINDOW
                return self._burst_event(actor, state, first, last)
        return None

    def _burst_event(self, actor: str, state: _Burst, first: float, last: float) -> Event:
        ents: list[EntityRef] = [identity(actor)]
        ents.extend(entity(EntityKind.IP, "", ip) for ip in state.ips)
        what = ", ".join(state.what)
        text = (
            f"{actor} was denied {BURST_COUNT} requests within {last - first:.0f} s (e.g. {what})"
        )
        state.what.clear()
        ev = Event(
            time=last,
            source="audit",
            ref=f"forbidden-burst:{actor}:{iso(first)}",
            kind="forbidden-burst",
            severity=Severity.MEDIUM,
            summary=plain(text),
            entities=tuple(ents),
        )
        _signal(ev, "forbidden-burst", Severity.MEDIUM, "Forbidden burst", text, "T1613")
        return ev

    def _prune_bursts(self) -> None:
        horizon = self._latest - 10 * BURST_WINDOW
        for actor in [a for a, s in self._bursts.items() if not s.times or s.times[-1] < horizon]:
            del self._bursts[actor]


def _created_name(obj: object) -> str:
    """metadata.name of a request or response object, or ""."""
    meta = obj.get("metadata") if isinstance(obj, dict) else None
    name = meta.get("name") if isinstance(meta, dict) else None
    return name if isinstance(name, str) else ""


def _as_impersonated(summary: str, actor: str, impersonated: str) -> str:
    """`system:admin as alice list secrets…` from `system:admin list secrets…`."""
    if f" as {impersonated}" in summary:
        return summary
    if actor and summary.startswith(actor + " "):
        return plain(f"{actor} as {impersonated}{summary[len(actor) :]}")
    return plain(f"{summary} (as {impersonated})")
