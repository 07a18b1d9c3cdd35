"""Kubernetes audit events (audit.k8s.io/v1 and v1beta1, and older ones without
apiVersion) -> an ordinary context Event; detect/audit.py decides what is a signal.

Only the fields we use are decoded; requestObject and responseObject stay raw JSON
bytes until a detection needs them.
"""

from __future__ import annotations

from collections.abc import Callable

import msgspec

from ktriage.core.detect.own import is_own_agent
from ktriage.core.memo import remembered
from ktriage.core.model import (
    CompactEvent,
    EntityKind,
    EntityRef,
    Event,
    RawRef,
    Severity,
    entity,
    is_system_identity,
)
from ktriage.core.parse import _SECOND_CACHE as _SECONDS
from ktriage.core.parse import (
    SkipRecord,
    clipped_value,
    identity,
    plain,
    short_hash,
    time_out_of_range,
    to_epoch,
)
from ktriage.core.salvage import OBJECT_FIELDS, salvage_bytes

Stamp = str | int | float | None


class UserInfo(msgspec.Struct, gc=False):
    username: str | None = None
    # Kept raw: only the anonymous check looks for one group in it.
    groups: msgspec.Raw = msgspec.Raw()
    # Kept raw: decoded only for service accounts (see bound_token_entities).
    extra: msgspec.Raw = msgspec.Raw()

    def in_group(self, group: str) -> bool:
        if not self.groups:
            return False
        return f'"{group}"'.encode() in bytes(self.groups)


class Annotations(msgspec.Struct, gc=False):
    decision: str | None = msgspec.field(default=None, name="authorization.k8s.io/decision")


class ObjectRef(msgspec.Struct, gc=False):
    resource: str | None = None
    subresource: str | None = None
    namespace: str | None = None
    name: str | None = None
    apiGroup: str | None = None


class ResponseStatus(msgspec.Struct, gc=False):
    code: int | None = None
    message: str | None = None


class Meta(msgspec.Struct, gc=False):
    creationTimestamp: Stamp = None


class AuditRecord(msgspec.Struct, gc=False):
    kind: str | None = None
    level: str | None = None
    userAgent: str | None = None
    auditID: str | None = None
    stage: str | None = None
    verb: str | None = None
    requestURI: str | None = None
    user: UserInfo | None = None
    impersonatedUser: UserInfo | None = None
    sourceIPs: list[str] | None = None
    objectRef: ObjectRef | None = None
    responseStatus: ResponseStatus | None = None
    annotations: Annotations | None = None
    requestObject: msgspec.Raw = msgspec.Raw()
    responseObject: msgspec.Raw = msgspec.Raw()
    stageTimestamp: Stamp = None
    requestReceivedTimestamp: Stamp = None
    timestamp: Stamp = None
    metadata: Meta | None = None
    # Panther's copy of the event time, for exports that dropped the others.
    p_event_time: Stamp = None

    @property
    def code(self) -> int:
        st = self.responseStatus
        return (st.code or 0) if st is not None else 0

    @property
    def username(self) -> str:
        u = self.user
        return (u.username or "") if u is not None else ""

    @property
    def decision(self) -> str:
        ann = self.annotations
        return (ann.decision or "") if ann is not None else ""


class BoundTokenClaims(msgspec.Struct, gc=False):
    """What kube-apiserver records in `user.extra` for a request made with a bound
    service-account token: the pod (and node) the token was issued for."""

    pod_name: list[str] | str | None = msgspec.field(
        default=None, name="authentication.kubernetes.io/pod-name"
    )
    node_name: list[str] | str | None = msgspec.field(
        default=None, name="authentication.kubernetes.io/node-name"
    )


_CLAIMS_DECODER = msgspec.json.Decoder(BoundTokenClaims)


class EventListRecord(msgspec.Struct, gc=False):
    kind: str | None = None
    items: list[msgspec.Raw] | None = None


DECODER = msgspec.json.Decoder(AuditRecord)
LIST_DECODER = msgspec.json.Decoder(EventListRecord)

# Where an audit event's time may be, the most telling first.
_TIME_FIELDS = (
    "stageTimestamp",
    "requestReceivedTimestamp",
    "timestamp",
    "metadata.creationTimestamp",
    "p_event_time",
)


def decode_object(raw: msgspec.Raw) -> object:
    """requestObject/responseObject as Python data; None when absent or unreadable.
    One nested too deeply to decode gives the fields detections read (a scan)."""
    if not raw:
        return None
    try:
        return msgspec.json.decode(raw)
    except (msgspec.DecodeError, ValueError):
        return None
    except RecursionError:
        return salvage_bytes(bytes(raw), fields=OBJECT_FIELDS).result()


UNTIMED_NOTE = " (time not recorded; placed after the previous record)"
OUT_OF_RANGE_NOTE = " (time out of range; placed after the previous record)"
# Where an untimed record is placed: a time, none, or what gives it when asked (a
# focused replay reads the time of a line it left out only for a record that needs it).
UntimedAt = float | Callable[[], float | None] | None


def _event_time(rec: AuditRecord, untimed_at: UntimedAt = None) -> tuple[float, bool | str]:
    """(time, placed): the record's own time, or `untimed_at` (the time of the previous
    timed record of the same input; `placed` is then the note to add) when it carries no
    timestamp at all, or only times out of range."""
    present: list[str] = []
    for name in _TIME_FIELDS:
        value = _time_value(rec, name)
        if value is None:
            continue
        t = to_epoch(value)
        if t is not None:
            return t, False
        present.append(name)
    if callable(untimed_at):
        untimed_at = untimed_at()
    if present:
        values = [_time_value(rec, name) for name in present]
        if not any(time_out_of_range(v) for v in values):
            raise SkipRecord("wrong-type", f"audit event has no readable time ({present[0]})")
        if untimed_at is None:
            raise SkipRecord(
                "out-of-range",
                f"audit event time out of range ({present[0]}), and no earlier record of"
                " this input has one to place it after",
            )
        return untimed_at, OUT_OF_RANGE_NOTE
    if untimed_at is not None:
        return untimed_at, UNTIMED_NOTE
    raise SkipRecord(
        "missing-field",
        "audit event has no timestamp, and no earlier record of this input has one"
        " to place it after",
    )


def _time_value(rec: AuditRecord, name: str) -> object:
    if name == "metadata.creationTimestamp":
        return rec.metadata.creationTimestamp if rec.metadata else None
    return getattr(rec, name)


def target_text(rec: AuditRecord) -> str:
    """`pods/exec default/web-1`, or the URI for non-resource requests."""
    ref = rec.objectRef
    if ref is None or not ref.resource:
        return rec.requestURI or "(no target)"
    what = ref.resource
    if ref.subresource:
        what = f"{what}/{ref.subresource}"
    if ref.name:
        return f"{what} {ref.namespace}/{ref.name}" if ref.namespace else f"{what} {ref.name}"
    if ref.namespace:
        return f"{what} in {ref.namespace}"
    return what


def _object_entity(ref: ObjectRef) -> EntityRef | None:
    res = ref.resource
    name = ref.name
    if not name:
        return None
    if res == "pods":
        return entity(EntityKind.POD, ref.namespace, name)
    if res == "nodes":
        return entity(EntityKind.NODE, "", name)
    if res == "serviceaccounts":
        return entity(EntityKind.SERVICE_ACCOUNT, ref.namespace, name)
    if res == "namespaces":
        return entity(EntityKind.NAMESPACE, "", name)
    return None


def parse_audit(data: bytes | memoryview) -> AuditRecord:
    """Decode one audit event. Raises SkipRecord, or msgspec.DecodeError for bad JSON."""
    try:
        rec = DECODER.decode(data)
    except msgspec.ValidationError as exc:
        raise SkipRecord("wrong-type", f"audit event field of the wrong type: {exc}") from None
    if rec.kind not in (None, "Event"):
        kind = clipped_value(rec.kind)
        raise SkipRecord("unknown-format", f"an object of kind {kind}, not an audit event")
    if not rec.verb and not rec.requestURI and rec.objectRef is None:
        # Partial records (detection-test logs) may lack the verb; with neither a
        # URI nor an object there is nothing left to describe.
        raise SkipRecord(
            "missing-field",
            "audit event says nothing about the request (no verb, requestURI or objectRef)",
        )
    return rec


# Small caches: a stream names the same few thousand users, IPs and namespaces.
_IDENTITIES: dict[str, EntityRef] = {}
_IPS: dict[str, EntityRef] = {}
_NAMESPACES: dict[str, EntityRef] = {}
_MAX_CACHE = 100_000


@remembered(_IDENTITIES, _MAX_CACHE)
def _identity(name: str) -> EntityRef:
    return identity(name)


@remembered(_IPS, _MAX_CACHE)
def _ip(ip: str) -> EntityRef:
    return entity(EntityKind.IP, "", ip)


@remembered(_NAMESPACES, _MAX_CACHE)
def _namespace(ns: str) -> EntityRef:
    return entity(EntityKind.NAMESPACE, "", ns)


BoundEntities = tuple[EntityRef, EntityRef | None] | tuple[None, None]
_BOUND: dict[tuple[str, bytes], BoundEntities] = {}
_NO_BOUND: BoundEntities = (None, None)


def _claim(value: list[str] | str | None) -> str:
    if isinstance(value, list):
        value = value[0] if value else None
    return value if isinstance(value, str) else ""


def bound_token_entities(username: str, extra: msgspec.Raw) -> BoundEntities:
    """(Pod, Node or None) a service account's bound token was issued for, from the
    user's `extra`; (None, None) when it names no pod. The pod is in the service
    account's namespace. The control plane's own service accounts (kube-system) never
    link, and neither do their pods."""
    key = (username, bytes(extra))
    cached = _BOUND.get(key)
    if cached is not None:
        return cached
    found = _NO_BOUND
    parts = username.split(":", 3)
    if len(parts) == 4 and parts[2] and not is_system_identity(username):
        try:
            claims = _CLAIMS_DECODER.decode(extra)
        except (msgspec.DecodeError, ValueError, RecursionError):
            claims = None
        pod = _claim(claims.pod_name) if claims is not None else ""
        if pod:
            node = _claim(claims.node_name) if claims is not None else ""
            found = (
                entity(EntityKind.POD, parts[2], pod),
                entity(EntityKind.NODE, "", node) if node else None,
            )
    if len(_BOUND) > _MAX_CACHE:
        _BOUND.clear()
    _BOUND[key] = found
    return found


_PODS: dict[str, dict[str, EntityRef]] = {}
_ENTITY_TUPLES: dict[tuple[EntityRef, ...], tuple[EntityRef, ...]] = {}


def _pod(ns: str, name: str) -> EntityRef:
    byname = _PODS.get(ns)
    if byname is None:
        if len(_PODS) > _MAX_CACHE:
            _PODS.clear()
        byname = _PODS[ns] = {}
    elif len(byname) > _MAX_CACHE:
        byname.clear()
    ent = byname[name] = entity(EntityKind.POD, ns, name)
    return ent


def build_event(
    rec: AuditRecord,
    data: bytes | memoryview,
    raw: RawRef | int | None,
    untimed_at: UntimedAt = None,
) -> Event:
    """The ordinary (context) Event of one audit record. This runs for every audit
    line, so it stays flat: dictionary look-ups inline, helpers only on a cache miss.

    `untimed_at` is the time of the previous timed record of the same input: a record
    with no timestamp at all is placed there (and says so) instead of being skipped."""
    value = rec.stageTimestamp
    time = None
    if type(value) is str and len(value) > 20 and value[-1] == "Z" and value[19] == ".":
        base = _SECONDS.get(value[:19])
        if base is not None:
            frac = value[19:-1]
            if frac[1:].isdigit():
                time = base + float(frac[:10])
    placed: bool | str = False
    if time is None:
        time, placed = _event_time(rec, untimed_at)
    aid = rec.auditID
    if aid:
        ref = f"{aid}:{rec.stage or ''}"
    else:
        ref = "h:" + short_hash(bytes(data).rstrip(b"\r\n"))
    user = rec.user
    actor = (user.username or "") if user is not None else ""
    if actor:
        ent = _IDENTITIES.get(actor)
        ents: list[EntityRef] = [ent if ent is not None else _identity(actor)]
    else:
        ents = []
    imp = rec.impersonatedUser
    if imp is not None and imp.username and not rights_review(rec):
        # A rights review under impersonation (`kubectl auth can-i --as`, what a responder
        # runs) acts on nothing as that identity: it must not join the identity's incident.
        ents.append(_identity(imp.username))
    bound_pod = bound_node = None
    if user is not None and user.extra and actor.startswith("system:serviceaccount:"):
        bound_pod, bound_node = bound_token_entities(actor, user.extra)
    oref = rec.objectRef
    if oref is not None and oref.resource:
        res = oref.resource
        ns = oref.namespace
        name = oref.name
        if name:
            if res == "pods":
                byname = _PODS.get(ns or "")
                ent = byname.get(name) if byname is not None else None
                ents.append(ent if ent is not None else _pod(ns or "", name))
            elif res in _ENTITY_RESOURCES:
                obj = _object_entity(oref)
                if obj is not None:
                    ents.append(obj)
            if oref.subresource:
                target = (
                    f"{res}/{oref.subresource} {ns}/{name}"
                    if ns
                    else f"{res}/{oref.subresource} {name}"
                )
            else:
                target = f"{res} {ns}/{name}" if ns else f"{res} {name}"
        elif oref.subresource:
            target = f"{res}/{oref.subresource} in {ns}" if ns else f"{res}/{oref.subresource}"
        else:
            target = f"{res} in {ns}" if ns else res
        if ns:
            ent = _NAMESPACES.get(ns)
            ents.append(ent if ent is not None else _namespace(ns))
    else:
        target = rec.requestURI or "(no target)"
    ips = rec.sourceIPs
    if ips:
        get_ip = _IPS.get
        for ip in ips:
            ent = get_ip(ip)
            ents.append(ent if ent is not None else _ip(ip))
    if bound_pod is not None:
        # The pod whose token made the request: a stolen token used from outside
        # links to what happened in that pod. Last, so that the first Pod of a
        # request about a pod stays its target; the token's node only when the
        # request names no pod, so that node is never taken for the target's.
        if bound_pod not in ents:
            ents.append(bound_pod)
        if bound_node is not None and (oref is None or oref.resource != "pods"):
            ents.append(bound_node)
    verb = rec.verb
    if verb:
        summary = f"{actor or '(unknown user)'} {verb} {target}"
    else:
        summary = f"{actor or '(unknown user)'} requested {target} (verb not recorded)"
    if imp is not None and imp.username:
        summary = f"{summary} as {imp.username}"
    st = rec.responseStatus
    if st is not None and st.code is not None and st.code >= 400:
        summary = f"{summary} (denied {st.code})"
    if len(summary) > 300 or not summary.isprintable():
        summary = plain(summary)
    if placed:
        summary = with_untimed_note(summary, placed)  # type: ignore[arg-type]
    # One shared tuple per combination of entities: less memory, and the correlator
    # looks a shared tuple's links up once.
    key = tuple(ents)
    shared = _ENTITY_TUPLES.get(key)
    if shared is None:
        if len(_ENTITY_TUPLES) > _MAX_CACHE:
            _ENTITY_TUPLES.clear()
        shared = _ENTITY_TUPLES[key] = key
    kind = "api-request"
    agent = rec.userAgent
    if agent is not None and is_own_agent(agent):
        # This process's own checks, dry runs and actions, as the cluster saw them:
        # kept in the stream, but not context for incidents (the action events are).
        # Only this run's exact agent (see detect/own.py): `ktriage/...` is spoofable.
        kind = OWN_REQUEST_KIND
        summary = f"{summary} (ktriage)"
    return CompactEvent(
        time,
        "audit",
        ref,
        kind,
        Severity.INFO,
        summary,
        shared,
        None,
        False,
        "",
        raw,  # type: ignore[arg-type]  # a packed int: CompactEvent reads it back
    )


# What `kubectl auth can-i` creates: reviews of the requester's own rights.
_RIGHTS_REVIEWS = frozenset({"selfsubjectrulesreviews", "selfsubjectaccessreviews"})


def rights_review(rec: AuditRecord) -> bool:
    """Whether the request only asked which rights its identity has (a review in the
    `authorization.k8s.io` group exactly: a look-alike resource of another group may
    do anything)."""
    oref = rec.objectRef
    return (
        rec.verb == "create"
        and oref is not None
        and oref.resource in _RIGHTS_REVIEWS
        and oref.apiGroup == "authorization.k8s.io"
        and not oref.subresource
    )


OWN_REQUEST_KIND = "ktriage-request"


def with_untimed_note(summary: str, note: str = UNTIMED_NOTE) -> str:
    """The summary of a record placed at the previous record's time, saying so."""
    if summary.endswith(note):
        return summary
    return plain(summary, 300 - len(note)) + note


_ENTITY_RESOURCES = frozenset({"nodes", "serviceaccounts", "namespaces"})
