"""Which audit events are signals, and how risky.

`AuditDetector.process(record, event)` turns the ordinary context event built by
parse/audit.py into a signal where a detection matches, and returns the events to
emit now. It keeps a little state:

- one signal per request: a request is audited at several stages (RequestReceived,
  ResponseStarted, ResponseComplete). The signal comes from the response stage; a
  RequestReceived that would be a signal is held until its response stage arrives,
  or, when none does, released as the signal once event time has moved on (or at
  `flush`). Later stages of a request already signalled become context.
- bursts per identity: 403 responses (reconnaissance), distinct secrets read, and
  namespaces or workloads deleted (destruction).
- roles seen created with wildcards or dangerous rights (and users bound to
  cluster-admin), so a binding to one (or impersonating one) is flagged too;
  certificate requests' subjects, for their approval; each workload's container
  names, so a container added to it later is seen.
- the cluster's networks (identity.ClusterNetworks), learnt from node and pod
  objects, to tell a system credential used from outside.

Who is exempt, and why, is in identity.py; the RBAC and certificate detections are
in rbac.py, those on configuration objects in cluster_config.py, those on pods and
workloads in workloads.py (the exec command judged in exec_command.py, pod specs read
in podspec.py). `SIGNAL_REQUESTS` (at the end) declares
which requests the handlers act on; the focused replay reads it.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from dataclasses import dataclass, field

import msgspec

from ktriage.core.detect.cluster_config import ConfigDetections
from ktriage.core.detect.common import (
    DELETE_VERBS,
    READ_VERBS,
    WORKLOADS,
    WRITE_VERBS,
    Window,
    answered,
    denied,
    signal,
)
from ktriage.core.detect.identity import (
    SA_PREFIX,
    ClusterNetworks,
    is_control_plane,
    is_controller_account,
    is_system_credential,
    node_of,
    public_address,
)
from ktriage.core.detect.objects import CsrSubject
from ktriage.core.detect.own import EARLIER_SESSION, is_dry_run, own_session
from ktriage.core.detect.rbac import RbacDetections
from ktriage.core.detect.workloads import (
    SECURITY_TOOLS,
    WorkloadDetections,
)
from ktriage.core.model import EntityKind, EntityRef, Event, Severity, entity, iso
from ktriage.core.parse import identity, plain
from ktriage.core.parse.audit import (
    OUT_OF_RANGE_NOTE,
    OWN_REQUEST_KIND,
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
# Distinct secrets one identity reads within the window: a sweep, not an app's needs.
SECRET_BURST_COUNT = 20
SECRET_BURST_WINDOW = 40.0
# Deletions by one identity within the window: destruction, not a clean-up.
NAMESPACE_BURST_COUNT = 5
WORKLOAD_BURST_COUNT = 10
DELETE_BURST_WINDOW = 60.0
# A system credential seen again from the same outside address re-signals after this.
OUTSIDE_REPEAT = 3600.0
_MAX_PENDING = 10_000
_MAX_SIGNALLED = 200_000

_PUBLIC_PATHS = ("/healthz", "/livez", "/readyz", "/version")
_PUBLIC_EXACT = frozenset({"/.well-known/openid-configuration", "/openid/v1/jwks"})
# Kept for the modules that import them from here.
_WRITE_VERBS = WRITE_VERBS
_WORKLOADS = WORKLOADS
# Objects whose status names the cluster's addresses (see ClusterNetworks).
_ADDRESS_RESOURCES = frozenset({"pods", "nodes"})
_ADDRESS_MARKS = (b'IP"', b'"addresses"')


def carries_addresses(raw: msgspec.Raw | bytes) -> bool:
    """Whether a pod or node object (or patch) may hold addresses: a cheap byte test."""
    data = memoryview(raw).tobytes() if not isinstance(raw, bytes) else raw
    return any(mark in data for mark in _ADDRESS_MARKS)


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


def _demote(ev: Event, why: str) -> Event:
    ev.signal = False
    ev.severity = Severity.INFO
    ev.summary = plain(f"{ev.summary} ({why})")
    return ev


class AuditDetector(WorkloadDetections, RbacDetections, ConfigDetections):
    """Stateful audit detections; one per Ingestor.

    `networks` knows the cluster's addresses (configured, and learnt from the node
    and pod objects this detector reads); share one between detectors of one cluster.
    """

    def __init__(self, networks: ClusterNetworks | None = None) -> None:
        self.networks = networks if networks is not None else ClusterNetworks()
        self._pending: dict[_RequestKey, Event] = {}
        self._next_release = float("inf")
        self._signalled: dict[_RequestKey, None] = {}
        self._bursts: dict[str, _Burst] = {}
        self._risky_roles: dict[tuple[str, str], str] = {}
        self._admin_users: set[str] = set()
        self._csr_subjects: dict[str, CsrSubject] = {}
        self._containers: dict[tuple[str, str, str], frozenset[str]] = {}
        self._windows: dict[tuple[str, str], Window] = {}
        self._outside_seen: dict[tuple[str, str], float] = {}
        # Events a detection made besides the request's own (bursts), emitted with it.
        self._extra: list[Event] = []
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
            "certificatesigningrequests": self._csr,
            "mutatingwebhookconfigurations": self._webhook,
            "validatingwebhookconfigurations": self._webhook,
            "configmaps": self._configmap,
            "events": self._events,
            "services": self._service,
        }
        for res in WORKLOADS:
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
        own = own_session(rec.userAgent, rec.username)
        if own:
            # ktriage's own request (parse/audit.py made this session's OWN_REQUEST_KIND;
            # an earlier recorded session's by the same identity is marked here): never
            # a signal, never counted in a burst, nothing learnt from it.
            if own == EARLIER_SESSION and ev.kind != OWN_REQUEST_KIND:
                ev.kind = OWN_REQUEST_KIND
                ev.summary = with_earlier_note(ev.summary)
            if out is None:
                return [ev]
            out.append(ev)
            return out
        summary = ev.summary
        oref = rec.objectRef
        if oref is not None and _dry_run(rec):
            # It changed nothing: no detection of what it did, nothing learnt from the
            # objects it named. Who sent it is still judged below (anonymous, a
            # privileged impersonation, a system credential from outside, 403 bursts).
            note = next((n for n in (UNTIMED_NOTE, OUT_OF_RANGE_NOTE) if summary.endswith(n)), "")
            text = plain(f"{summary[: len(summary) - len(note)]} (dry run)")
            ev.summary = summary = with_untimed_note(text, note) if note else text
        elif oref is not None:
            if oref.resource in _ADDRESS_RESOURCES:
                self._learn_addresses(rec)
            handler = self._handlers.get(oref.resource or "")
            if handler is not None:
                handler(rec, ev)
        user = rec.user
        if user is not None:
            name = user.username
            if name == "system:anonymous" or (not name and user.in_group("system:unauthenticated")):
                self._anonymous(rec, ev)
        imp = rec.impersonatedUser
        if imp is not None:
            self._impersonation(rec, ev)
        if rec.sourceIPs and self.networks.known:
            self._outside(rec, ev)
        if ev.summary is not summary and imp is not None and imp.username:
            # A detection rewrote the summary in the requester's name: say whose
            # rights the request used, as the plain summary does.
            ev.summary = _as_impersonated(ev.summary, rec.username, imp.username)
        if ev.summary is not summary and summary.endswith((UNTIMED_NOTE, OUT_OF_RANGE_NOTE)):
            # A detection rewrote the summary of a record placed at an assumed time.
            note = UNTIMED_NOTE if summary.endswith(UNTIMED_NOTE) else OUT_OF_RANGE_NOTE
            ev.summary = with_untimed_note(ev.summary, note)
        st = rec.responseStatus
        if st is not None and st.code == 403 and answered(rec):
            burst = self._forbidden(rec, ev)
            if burst is not None:
                self._extra.append(burst)
        if self._extra:
            if out is None:
                out = []
            out.extend(self._extra)
            self._extra = []
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

    # -- identities and networks ----------------------------------------------

    def _exempt(self, rec: AuditRecord) -> bool:
        """The control plane acting: its identities are exempt from detections that
        judge who acted (nodes are judged per request, see the handlers)."""
        return is_control_plane(rec.username)

    def _learn_addresses(self, rec: AuditRecord) -> None:
        for raw in (rec.requestObject, rec.responseObject):
            if raw and carries_addresses(raw):
                self.networks.learn_object(decode_object(raw))

    def _outside(self, rec: AuditRecord, ev: Event) -> None:
        """A credential the cluster issued to itself or its workloads, used from a
        public address outside the cluster's networks."""
        actor = rec.username
        if not is_system_credential(actor):
            return
        networks = self.networks
        ip = next((ip for ip in (rec.sourceIPs or ())[:8] if networks.outside(ip)), None)
        if ip is None:
            return
        where = f"from {ip}, outside the cluster's networks"
        if ev.signal:
            if ev.severity < Severity.HIGH:
                ev.severity = Severity.HIGH
            ev.summary = plain(f"{ev.summary} ({where})")
            return
        key = (actor, ip)
        last = self._outside_seen.get(key)
        if last is not None and abs(ev.time - last) < OUTSIDE_REPEAT:
            return
        if len(self._outside_seen) > 50_000:
            self._outside_seen.clear()
        self._outside_seen[key] = ev.time
        what = f"{rec.verb} {target_text(rec)}" if rec.verb else target_text(rec)
        text = f"{actor} used {where}: {what}"
        if denied(rec):
            text += f" (denied {rec.code})"
        label = (
            "Node credential used from outside"
            if node_of(actor)
            else (
                "Service-account token used from outside"
                if actor.startswith(SA_PREFIX)
                else "System credential used from outside"
            )
        )
        signal(ev, "system-credential-outside", Severity.HIGH, label, text, "T1078")
        # The label must not say "attempt": the credential itself worked.
        ev.label = label

    # -- detections -----------------------------------------------------------

    def _secrets(self, rec: AuditRecord, ev: Event) -> None:
        verb = rec.verb or ""
        oref = rec.objectRef
        assert oref is not None
        actor = rec.username
        if verb in READ_VERBS:
            ns = oref.namespace or ""
            named = _named_read(oref.name, rec.requestURI)
            if verb == "get":
                kind, label = "secret-read", "Secret read"
                what = f"read secret {ns}/{oref.name}" if oref.name else f"read a secret in {ns}"
            else:
                kind, label = "secret-list", "Secret listing"
                what = f"{verb} secrets in {ns}" if ns else f"{verb} secrets in all namespaces"
            ev.kind = kind
            if self._exempt(rec):
                return
            node = node_of(actor)
            if node and named:
                # A kubelet reads the secrets of the pods bound to it (the node
                # authorizer refuses the others).
                return
            is_sa = actor.startswith(SA_PREFIX)
            if node:
                label = "Node credential listing secrets"
                sev = Severity.HIGH
            elif not ns and verb != "get":
                label = "Cluster-wide secret listing"
                sev = Severity.HIGH if (is_sa and verb == "list") else Severity.MEDIUM
            else:
                sev = Severity.MEDIUM if is_sa else Severity.LOW
            if not denied(rec) and verb == "get" and oref.name and answered(rec):
                self._count_secret_read(rec, ev, f"{ns}/{oref.name}")
            signal(ev, kind, sev, label, f"{actor} {what}", "T1552.007", request=rec)
            return
        if verb == "create":
            obj = decode_object(rec.requestObject)
            if isinstance(obj, dict) and obj.get("type") == "kubernetes.io/service-account-token":
                ev.kind = "token-request"
                if self._exempt(rec) or denied(rec):
                    return
                text = f"{actor} created a long-lived service-account token secret "
                text += f"{oref.namespace}/{oref.name or ''}".rstrip("/")
                signal(ev, "token-request", Severity.MEDIUM, "Token request", text, "T1528")

    def _count_secret_read(self, rec: AuditRecord, ev: Event, key: str) -> None:
        actor = rec.username
        window = self._window(actor, "secret-read")
        found = window.add(ev.time, key, SECRET_BURST_COUNT, SECRET_BURST_WINDOW)
        if found is None:
            return
        first, last = found
        examples = ", ".join(window.keys)
        text = (
            f"{actor} read {SECRET_BURST_COUNT} different secrets within "
            f"{last - first:.0f} s (e.g. {examples})"
        )
        self._extra.append(
            self._burst(
                rec,
                "secret-burst",
                Severity.HIGH,
                "Secret read burst",
                text,
                "T1552.007",
                first,
                last,
            )
        )

    def _deleted(self, rec: AuditRecord, ev: Event, group: str) -> None:
        """Deletions of namespaces or workloads, counted per identity: a burst is
        destruction (impact)."""
        if self._exempt(rec) or denied(rec) or not answered(rec):
            return
        oref = rec.objectRef
        assert oref is not None
        actor = rec.username
        kind_name = "namespaces" if group == "namespaces" else (oref.resource or "workloads")
        if rec.verb == "deletecollection" or not oref.name:
            where = f"in {oref.namespace}" if oref.namespace else "in every namespace"
            text = f"{actor} deleted every one of the {kind_name} {where}"
            signal(ev, "bulk-delete", Severity.HIGH, "Bulk deletion", text, "T1485")
            return
        count = NAMESPACE_BURST_COUNT if group == "namespaces" else WORKLOAD_BURST_COUNT
        key = f"{oref.namespace}/{oref.name}" if oref.namespace else oref.name
        window = self._window(actor, f"delete-{group}")
        found = window.add(ev.time, key, count, DELETE_BURST_WINDOW)
        if found is None:
            return
        first, last = found
        text = (
            f"{actor} deleted {count} {kind_name} within {last - first:.0f} s "
            f"(e.g. {', '.join(window.keys)})"
        )
        self._extra.append(
            self._burst(
                rec, "bulk-delete", Severity.HIGH, "Bulk deletion", text, "T1485", first, last
            )
        )

    def _window(self, actor: str, what: str) -> Window:
        key = (actor, what)
        window = self._windows.get(key)
        if window is None:
            if len(self._windows) > 50_000:
                horizon = self._latest - 600
                for k in [
                    k for k, w in self._windows.items() if not w.times or w.times[-1][0] < horizon
                ]:
                    del self._windows[k]
            window = self._windows[key] = Window()
        return window

    def _burst(
        self,
        rec: AuditRecord,
        kind: str,
        sev: Severity,
        label: str,
        text: str,
        technique: str,
        first: float,
        last: float,
    ) -> Event:
        actor = rec.username
        ents: list[EntityRef] = [identity(actor)]
        ents.extend(entity(EntityKind.IP, "", ip) for ip in (rec.sourceIPs or [])[:4])
        ev = Event(
            time=last,
            source="audit",
            ref=f"{kind}:{actor}:{iso(first)}",
            kind=kind,
            severity=sev,
            summary=plain(text),
            entities=tuple(ents),
        )
        signal(ev, kind, sev, label, text, technique)
        return ev

    def _serviceaccounts(self, rec: AuditRecord, ev: Event) -> None:
        oref = rec.objectRef
        assert oref is not None
        if oref.subresource != "token" or rec.verb != "create":
            return
        ev.kind = "token-request"
        actor = rec.username
        if self._exempt(rec) or (node_of(actor) and not denied(rec)):
            # kube-controller-manager mints its controllers' tokens; a kubelet mints
            # the tokens of the pods bound to it.
            return
        ns, name = oref.namespace or "", oref.name or ""
        sa = f"{ns}/{name}"
        text = f"{actor} requested a token for service account {sa}"
        if is_controller_account(ns, name):
            sev, label = Severity.CRITICAL, "Token for a controller account"
            text += " (a kube-controller-manager controller's account)"
        elif ns == "kube-system":
            sev, label = Severity.HIGH, "Token for a kube-system account"
        else:
            sev, label = Severity.MEDIUM, "Token request"
        signal(ev, "token-request", sev, label, text, "T1528", request=rec)

    def _nodes(self, rec: AuditRecord, ev: Event) -> None:
        oref = rec.objectRef
        assert oref is not None
        if oref.subresource != "proxy":
            return
        actor = rec.username
        if self._exempt(rec):
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
        signal(ev, "node-proxy", sev, "Node proxy access", text, "T1609", request=rec)

    def _namespaces(self, rec: AuditRecord, ev: Event) -> None:
        if rec.verb not in DELETE_VERBS:
            return
        oref = rec.objectRef
        assert oref is not None
        name = (oref.name or "").lower()
        if name and any(tool in name for tool in SECURITY_TOOLS):
            self._tool_deleted(rec, ev, f"namespace {oref.name}")
        else:
            self._deleted(rec, ev, "namespaces")

    def _tool_deleted(self, rec: AuditRecord, ev: Event, what: str) -> None:
        actor = rec.username
        text = f"{actor} deleted {what}"
        label = "Security tool deleted"
        signal(ev, "security-tool-deleted", Severity.HIGH, label, text, "T1562.001", request=rec)

    def _anonymous(self, rec: AuditRecord, ev: Event) -> None:
        """An anonymous request the server allowed: always a signal, critical when it
        did something another detection flags (an anonymous secret list)."""
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
            text += f" from {', '.join(rec.sourceIPs[:4])}"
        sev = Severity.HIGH
        label = "Anonymous access"
        technique = "T1078"
        if ev.signal:
            # What the request did is flagged on its own: done without credentials.
            text += f" ({ev.label}: {ev.summary})"
            sev = Severity.CRITICAL
            label = f"Anonymous access: {ev.label}"
        signal(ev, "anonymous-allowed", sev, label, text, technique)

    def _forbidden(self, rec: AuditRecord, ev: Event) -> Event | None:
        actor = rec.username
        if not actor or self._exempt(rec):
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
        signal(ev, "forbidden-burst", Severity.MEDIUM, "Forbidden burst", text, "T1613")
        return ev

    def _prune_bursts(self) -> None:
        horizon = self._latest - 10 * BURST_WINDOW
        for actor in [a for a, s in self._bursts.items() if not s.times or s.times[-1] < horizon]:
            del self._bursts[actor]


_BODY_LEVELS = frozenset({"Request", "RequestResponse"})


def _dry_run(rec: AuditRecord) -> bool:
    verb = rec.verb
    if verb in DELETE_VERBS:
        return is_dry_run(
            verb,
            rec.requestURI,
            body_recorded=rec.level in _BODY_LEVELS,
            delete_options=decode_object(rec.requestObject) if rec.requestObject else None,
        )
    return is_dry_run(verb, rec.requestURI)


EARLIER_NOTE = " (ktriage, earlier session)"


def with_earlier_note(summary: str) -> str:
    """The summary of an earlier ktriage session's request, saying so (before any
    note on an assumed time, which stays last)."""
    note = next((n for n in (UNTIMED_NOTE, OUT_OF_RANGE_NOTE) if summary.endswith(n)), "")
    text = plain(f"{summary[: len(summary) - len(note)]}{EARLIER_NOTE}")
    return with_untimed_note(text, note) if note else text


def _as_impersonated(summary: str, actor: str, impersonated: str) -> str:
    """`system:admin as alice list secrets…` from `system:admin list secrets…`."""
    if f" as {impersonated}" in summary:
        return summary
    if actor and summary.startswith(actor + " "):
        return plain(f"{actor} as {impersonated}{summary[len(actor) :]}")
    return plain(f"{summary} (as {impersonated})")


# -- what the detections read ---------------------------------------------------------
#
# For each resource a handler reads, which of its requests a detection may turn into a
# signal (or learn from). A focused replay (core/focus.py) sends only those, and the
# requests `might_signal` accepts for other reasons, through the detector: each
# predicate must accept every request its handler can act on.


def _pods_read(rec: AuditRecord) -> bool:
    ref = rec.objectRef
    assert ref is not None
    sub = ref.subresource
    if sub in ("exec", "attach", "portforward", "ephemeralcontainers"):
        return True
    if not sub and rec.verb == "create":
        # The spec decides (or the name the response gives it), or a person creating
        # a pod in kube-system.
        if rec.requestObject or not ref.name:
            return True
        if ref.namespace == "kube-system" and not is_control_plane(rec.username):
            return True
    return _teaches_addresses(rec)


def _workloads_read(rec: AuditRecord) -> bool:
    ref = rec.objectRef
    assert ref is not None
    if ref.subresource:
        return False
    verb = rec.verb or ""
    if verb in DELETE_VERBS:
        return True
    return (
        verb in WRITE_VERBS
        and not is_control_plane(rec.username)
        and (bool(rec.requestObject) or ref.resource in ("cronjobs", "daemonsets"))
    )


def _kubelet_secret_read(rec: AuditRecord) -> bool:
    """A node reading one named secret (of a pod bound to it): never a signal."""
    ref = rec.objectRef
    return (
        ref is not None
        and (rec.verb or "") in READ_VERBS
        and bool(node_of(rec.username))
        and _named_read(ref.name, rec.requestURI)
    )


def _named_read(name: str | None, uri: str | None) -> bool:
    """A read of one object: by name, or a list/watch selecting one name."""
    return bool(name) or "fieldSelector=metadata.name" in (uri or "")


def _teaches_addresses(rec: AuditRecord) -> bool:
    # Spelt out (no generator): a focused replay asks this of most pod requests.
    request, response = rec.requestObject, rec.responseObject
    return bool(request and carries_addresses(request)) or bool(
        response and carries_addresses(response)
    )


def _configmap_read(rec: AuditRecord) -> bool:
    """A write the ConfigMap detections may call a signal: one whose body they can
    read for credentials, or one in kube-system (cluster DNS and aws-auth, known by
    name alone). A Service write needs its body too (its type)."""
    ref = rec.objectRef
    return (rec.verb or "") in WRITE_VERBS and (
        bool(rec.requestObject) or (ref is not None and ref.namespace == "kube-system")
    )


def _verbs(verbs: frozenset[str]) -> Callable[[AuditRecord], bool]:
    return lambda rec: (rec.verb or "") in verbs


_WRITE_OR_DELETE = WRITE_VERBS | DELETE_VERBS
SIGNAL_REQUESTS: dict[str, Callable[[AuditRecord], bool]] = {
    "pods": _pods_read,
    "secrets": lambda rec: not _kubelet_secret_read(rec),
    "nodes": lambda rec: (
        (rec.objectRef is not None and rec.objectRef.subresource == "proxy")
        or _teaches_addresses(rec)
    ),
    "serviceaccounts": lambda rec: (
        rec.objectRef is not None and rec.objectRef.subresource == "token"
    ),
    "clusterrolebindings": _verbs(_WRITE_OR_DELETE),
    "rolebindings": _verbs(_WRITE_OR_DELETE),
    "clusterroles": _verbs(_WRITE_OR_DELETE),
    "roles": _verbs(_WRITE_OR_DELETE),
    "namespaces": _verbs(DELETE_VERBS),
    "certificatesigningrequests": lambda rec: True,
    "mutatingwebhookconfigurations": _verbs(_WRITE_OR_DELETE),
    "validatingwebhookconfigurations": _verbs(_WRITE_OR_DELETE),
    "configmaps": lambda rec: _configmap_read(rec),
    "events": _verbs(DELETE_VERBS),
    "services": lambda rec: (rec.verb or "") in WRITE_VERBS and bool(rec.requestObject),
    **dict.fromkeys(WORKLOADS, _workloads_read),
}
SIGNAL_RESOURCES = frozenset(SIGNAL_REQUESTS)


def might_signal(rec: AuditRecord) -> bool:
    """False only for audit records no detection can turn into a signal (or learn
    from): what the handlers read (SIGNAL_REQUESTS), 403s (bursts), anonymous and
    impersonated requests, and system credentials from a public address."""
    ref = rec.objectRef
    if ref is not None and ref.resource:
        check = SIGNAL_REQUESTS.get(ref.resource)
        if check is not None and check(rec):
            return True
    st = rec.responseStatus
    if st is not None and st.code == 403:
        return True  # 403 bursts are counted in order
    user = rec.user
    if user is None or not user.username or user.username == "system:anonymous":
        return True
    if rec.impersonatedUser is not None:
        return True
    return outside_candidate(user.username, rec.sourceIPs)


def outside_candidate(username: str, ips: list[str] | None) -> bool:
    """Whether `_outside` may flag a request: a system credential from a public address."""
    if not ips or not username.startswith("system:"):
        return False
    return is_system_credential(username) and any(public_address(ip) for ip in ips[:8])
