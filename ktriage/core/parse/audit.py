"""Kubernetes audit events (audit.k8s.io/v1 and v1beta1, and older ones without
apiVersion) -> an ordinary context Event; detect/audit.py decides what is a signal.

Only the fields we use are decoded; requestObject and responseObject stay raw JSON
bytes until a detection needs them.
"""

from __future__ import annotations

import msgspec

from ktriage.core.model import EntityKind, EntityRef, Event, RawRef, Severity, entity
from ktriage.core.parse import SkipRecord, identity, plain, short_hash, to_epoch

Stamp = str | int | float | None


class UserInfo(msgspec.Struct):
    username: str | None = None
    groups: list[str] | None = None


class ObjectRef(msgspec.Struct):
    resource: str | None = None
    subresource: str | None = None
    namespace: str | None = None
    name: str | None = None
    apiGroup: str | None = None


class ResponseStatus(msgspec.Struct):
    code: int | None = None
    message: str | None = None


class Meta(msgspec.Struct):
    creationTimestamp: Stamp = None


class AuditRecord(msgspec.Struct):
    kind: str | None = None
    auditID: str | None = None
    stage: str | None = None
    verb: str | None = None
    requestURI: str | None = None
    user: UserInfo | None = None
    impersonatedUser: UserInfo | None = None
    sourceIPs: list[str] | None = None
    objectRef: ObjectRef | None = None
    responseStatus: ResponseStatus | None = None
    annotations: dict[str, str] | None = None
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
        return ann.get("authorization.k8s.io/decision", "") if ann else ""


class EventListRecord(msgspec.Struct):
    kind: str | None = None
    items: list[msgspec.Raw] | None = None


DECODER = msgspec.json.Decoder(AuditRecord)
LIST_DECODER = msgspec.json.Decoder(EventListRecord)

_TIME_FIELDS = ("stageTimestamp", "requestReceivedTimestamp", "timestamp")


def decode_object(raw: msgspec.Raw) -> object:
    """requestObject/responseObject as Python data; None when absent or unreadable."""
    if not raw:
        return None
    try:
        return msgspec.json.decode(raw)
    except msgspec.DecodeError:
        return None


def _event_time(rec: AuditRecord) -> float:
    present: list[str] = []
    for name in _TIME_FIELDS:
        value = getattr(rec, name)
        if value is None:
            continue
        t = to_epoch(value)
        if t is not None:
            return t
        present.append(name)
    for name, value in (
        ("metadata.creationTimestamp", rec.metadata.creationTimestamp if rec.metadata else None),
        ("p_event_time", rec.p_event_time),
    ):
        if value is None:
            continue
        t = to_epoch(value)
        if t is not None:
            return t
        present.append(name)
    if present:
        raise SkipRecord("wrong-type", f"audit event has no readable time ({present[0]})")
    raise SkipRecord("missing-field", "audit event has no timestamp")


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
        raise SkipRecord("unknown-format", f"an object of kind {rec.kind!r}, not an audit event")
    if not rec.verb:
        raise SkipRecord("missing-field", "audit event has no verb")
    return rec


def build_event(rec: AuditRecord, data: bytes | memoryview, raw: RawRef | None) -> Event:
    """The ordinary (context) Event of one audit record."""
    time = _event_time(rec)
    stage = rec.stage or ""
    ref = f"{rec.auditID}:{stage}" if rec.auditID else "h:" + short_hash(bytes(data))
    ents: list[EntityRef] = []
    actor = rec.username
    if actor:
        ents.append(identity(actor))
    imp = rec.impersonatedUser
    if imp is not None and imp.username:
        ents.append(identity(imp.username))
    oref = rec.objectRef
    if oref is not None:
        obj = _object_entity(oref)
        if obj is not None:
            ents.append(obj)
        if oref.namespace:
            ents.append(entity(EntityKind.NAMESPACE, "", oref.namespace))
    if rec.sourceIPs:
        for ip in rec.sourceIPs:
            ents.append(entity(EntityKind.IP, "", ip))
    code = rec.code
    summary = f"{actor or '(unknown user)'} {rec.verb} {target_text(rec)}"
    if imp is not None and imp.username:
        summary = f"{summary} as {imp.username}"
    if code >= 400:
        summary = f"{summary} (denied {code})"
    return Event(
        time=time,
        source="audit",
        ref=ref,
        kind="api-request",
        severity=Severity.INFO,
        summary=plain(summary),
        entities=tuple(ents),
        raw=raw,
    )
