"""Falco alerts as written with `json_output: true` (syscall and k8saudit sources)."""

from __future__ import annotations

import re
from typing import Any, NamedTuple

import msgspec

from ktriage.core.attack import attack_for_kind, from_falco_tags
from ktriage.core.detect import falco as classifier
from ktriage.core.detect.tetragon import KUBELET_CREDENTIAL_PATHS
from ktriage.core.memo import remembered
from ktriage.core.model import (
    Attack,
    CompactEvent,
    EntityKind,
    EntityRef,
    Event,
    RawRef,
    Severity,
    entity,
)
from ktriage.core.parse import (
    SkipRecord,
    clipped_value,
    identity,
    plain,
    short_hash,
    time_out_of_range,
    to_epoch,
)
from ktriage.core.parse.podfacts import own_address
from ktriage.core.text import mark_shown


class FalcoAlert(msgspec.Struct, gc=False):
    time: str | int | float | None = None
    rule: str | None = None
    priority: str | None = None
    source: str | None = None
    hostname: str | None = None
    output: str | None = None
    output_fields: dict[str, Any] | None = None
    tags: list[str] | None = None
    uuid: str | None = None


DECODER = msgspec.json.Decoder(FalcoAlert)

_LEADING = re.compile(
    r"^\S+:?\s+(?:Emergency|Alert|Critical|Error|Warning|Notice|Informational|Info|Debug)\s+"
)
_NA = (None, "", "<NA>", "N/A")
# Longest summary kept (`plain`'s cut).
SUMMARY_MAX = 400


def _str(fields: dict[str, Any], key: str) -> str:
    v = fields.get(key)
    if v in _NA or isinstance(v, bool):
        return ""
    return v if isinstance(v, str) else str(v)


# Alerts of one workload name the same few entities again and again: the common
# form (pod, container, node, namespace and nothing else) is built once per
# combination and shared.
_ENTITY_TUPLES: dict[tuple[object, ...], tuple[EntityRef, ...]] = {}
_ENTITY_TUPLES_MAX = 100_000
# Fields that add entities beyond the common form.
_MORE_ENTITY_FIELDS = frozenset(
    {
        "container.image.repository",
        "fd.rip",
        "fd.sip",
        "fd.lip",
        "k8s.pod.ip",
        "ka.user.name",
    }
)
# Rules whose remote address is the API server: shared by every pod, it never links.
_API_SERVER_RULES = frozenset({"Contact K8S API Server From Container"})


def _entity_tuple(alert: FalcoAlert, fields: dict[str, Any]) -> tuple[EntityRef, ...]:
    if alert.source == "k8s_audit" or not _MORE_ENTITY_FIELDS.isdisjoint(fields):
        return tuple(_entities(alert, fields))
    get = fields.get
    key = (alert.hostname, get("k8s.ns.name"), get("k8s.pod.name"), get("container.id"))
    try:
        found = _ENTITY_TUPLES.get(key)
    except TypeError:  # an unhashable field value (a list or object)
        return tuple(_entities(alert, fields))
    if found is None:
        if len(_ENTITY_TUPLES) > _ENTITY_TUPLES_MAX:
            _ENTITY_TUPLES.clear()
        found = _ENTITY_TUPLES[key] = _common_entities(*key)
    return found


def _namespace(value: object) -> str:
    return "" if value in _NA or type(value) is not str else value


def _workload_entities(host: object, ns: str, pod: object, cid: object) -> list[EntityRef]:
    """An alert's pod, container and node, the first of its entities."""
    ents: list[EntityRef] = []
    if pod not in _NA and type(pod) is str:
        ents.append(entity(EntityKind.POD, ns, pod))
    if cid not in _NA and type(cid) is str and cid != "host":
        ents.append(entity(EntityKind.CONTAINER, "", cid[:12]))
    if host:
        ents.append(entity(EntityKind.NODE, "", host))  # type: ignore[arg-type]
    return ents


def _common_entities(host: object, ns: object, pod: object, cid: object) -> tuple[EntityRef, ...]:
    """`_entities` of an alert with none of _MORE_ENTITY_FIELDS and not from k8saudit:
    its pod, container, node and namespace (what `_entities` makes of those fields
    alone: no own address, no remote one, no identity)."""
    namespace = _namespace(ns)
    ents = _workload_entities(host, namespace, pod, cid)
    if namespace:
        ents.append(entity(EntityKind.NAMESPACE, "", namespace))
    return tuple(ents)


def _entities(alert: FalcoAlert, fields: dict[str, Any]) -> list[EntityRef]:
    get = fields.get
    ns = _namespace(get("k8s.ns.name"))
    cid = get("container.id")
    ents = _workload_entities(alert.hostname, ns, get("k8s.pod.name"), cid)
    if "container.image.repository" in fields:
        repo = _str(fields, "container.image.repository")
        if repo:
            tag = _str(fields, "container.image.tag")
            ents.append(entity(EntityKind.IMAGE, "", f"{repo}:{tag}" if tag else repo))
    own = ""
    if cid not in _NA and type(cid) is str and cid != "host":
        # The pod's own address, from inside its container: Falco's pod metadata, or
        # the local end of the connection. Calls the pod's service account makes
        # come from it (a pod on the host network has the node's: see README).
        own = own_address(_str(fields, "k8s.pod.ip") or _str(fields, "fd.lip"))
        if own:
            ents.append(entity(EntityKind.IP, "", own))
    if ("fd.rip" in fields or "fd.sip" in fields) and alert.rule not in _API_SERVER_RULES:
        rip = _str(fields, "fd.rip") or _str(fields, "fd.sip")
        if rip and rip != own:
            ents.append(entity(EntityKind.IP, "", rip))
    if alert.source == "k8s_audit" or "ka.user.name" in fields:
        ns = _k8saudit_entities(fields, ents, ns)
    if ns:
        ents.append(entity(EntityKind.NAMESPACE, "", ns))
    return ents


def _k8saudit_entities(fields: dict[str, Any], ents: list[EntityRef], ns: str) -> str:
    """Entities from the k8saudit plugin's ka.* fields; returns the namespace."""
    user = _str(fields, "ka.user.name")
    if user:
        ents.append(identity(user))
    tns = _str(fields, "ka.target.namespace")
    tres = _str(fields, "ka.target.resource")
    tname = _str(fields, "ka.target.name") or _str(fields, "ka.resp.name")
    if tname and tres == "pods":
        ents.append(entity(EntityKind.POD, tns, tname))
    elif tname and tres == "serviceaccounts":
        ents.append(entity(EntityKind.SERVICE_ACCOUNT, tns, tname))
    elif tname and tres == "nodes":
        ents.append(entity(EntityKind.NODE, "", tname))
    for key in ("ka.source.ips", "ka.sourceips"):
        ips = fields.get(key)
        if isinstance(ips, list):
            ents.extend(entity(EntityKind.IP, "", str(ip)) for ip in ips[:4])
    return ns or tns


def parse_falco(data: bytes | memoryview) -> FalcoAlert:
    try:
        alert = DECODER.decode(data)
    except msgspec.ValidationError as exc:
        raise SkipRecord("wrong-type", f"Falco alert field of the wrong type: {exc}") from None
    if not alert.rule:
        raise SkipRecord("missing-field", "Falco alert has no rule")
    return alert


# Rules whose alert may be a read of the kubelet's credentials (a custom rule is a
# falco-alert).
_FILE_READ_KINDS = frozenset({"sensitive-file-read", "falco-alert"})


def _kubelet_credentials(path: object) -> bool:
    return isinstance(path, str) and any(p in path for p in KUBELET_CREDENTIAL_PATHS)


class _RuleProfile(NamedTuple):
    """What an alert's rule, priority and tags make of its event: the same for every
    alert that repeats them (an alert stream repeats a few rules)."""

    kind: str
    severity: Severity
    attack: Attack | None
    signal: bool
    label: str
    # Whether the alert may be a read of the kubelet's credentials (its file decides).
    reads_files: bool


# (rule, priority, tags, kubelet credentials read) -> its profile. Bounded: a hostile
# stream may name a new rule in every alert.
_PROFILES: dict[tuple[object, ...], _RuleProfile] = {}
_PROFILES_MAX = 10_000


def _profile(
    rule: str, priority: str, tags: tuple[object, ...] | None, credentials: bool
) -> _RuleProfile:
    key = (rule, priority, tags, credentials)
    try:
        hash(key)
    except TypeError:  # an unhashable tag (a list or object): made, not remembered
        return _make_profile(rule, priority, tags, credentials)
    return _remembered_profile(key)


@remembered(_PROFILES, _PROFILES_MAX)
def _remembered_profile(key: tuple[Any, ...]) -> _RuleProfile:
    return _make_profile(*key)


def _make_profile(
    rule: str, priority: str, tags: tuple[object, ...] | None, credentials: bool
) -> _RuleProfile:
    kind, label, behaviour = classifier.classify_rule(rule)
    severity = classifier.severity(priority, behaviour)
    reads_files = kind in _FILE_READ_KINDS
    if reads_files and credentials:
        # Whoever holds these acts as the node (core/containment.py keeps it open).
        kind = "kubelet-credentials-read"
    falco_internal = rule.startswith("Falco internal")
    internal = falco_internal or severity == Severity.INFO
    attack = (from_falco_tags(tags) if tags else None) or attack_for_kind(kind)
    return _RuleProfile(
        "falco-internal" if falco_internal else kind,
        severity,
        None if internal else attack,
        not internal,
        "" if internal else label,
        reads_files,
    )


def _time(alert: FalcoAlert, fields: dict[str, Any]) -> float:
    time = None
    if alert.time is not None:
        time = to_epoch(alert.time)
    if time is None:
        for key in ("evt.time", "evt.time.iso8601"):
            v = fields.get(key)
            if v is not None:
                time = to_epoch(v)
                if time is not None:
                    break
    if time is None:
        stamps = (alert.time, fields.get("evt.time"), fields.get("evt.time.iso8601"))
        shown_time = clipped_value(alert.time)
        if any(time_out_of_range(v) for v in stamps if v is not None):
            raise SkipRecord("out-of-range", f"Falco alert time out of range: {shown_time}")
        if alert.time is not None:
            raise SkipRecord("wrong-type", f"Falco alert time is not a time: {shown_time}")
        raise SkipRecord("missing-field", "Falco alert has no time")
    return time


# An alert's text -> (its summary, whether the summary is its own shown form). A
# workload's alerts repeat their texts: each is made safe once, and its events share
# one summary. Bounded: a hostile stream may say something new in every alert.
_SUMMARIES: dict[str, tuple[str, bool]] = {}
_SUMMARIES_MAX = 16_384


def _summary(text: str) -> str:
    """`plain(text, SUMMARY_MAX)`; a text with nothing to redact, escape or cut is
    kept as it is, and said to be shown as it is (a report of thousands of alerts
    need not look at it again)."""
    summary, as_is = _made_safe(text)
    if as_is:
        mark_shown(summary)
    return summary


@remembered(_SUMMARIES, _SUMMARIES_MAX)
def _made_safe(text: str) -> tuple[str, bool]:
    made = plain(text, SUMMARY_MAX)
    return made, made is text  # `plain` returns its input when it changed nothing


def build_event(alert: FalcoAlert, data: bytes | memoryview, raw: RawRef | int | None) -> Event:
    fields = alert.output_fields or {}
    time = _time(alert, fields)
    rule = alert.rule or ""
    tags = alert.tags
    profile = _profile(rule, alert.priority or "", tuple(tags) if tags else None, False)
    if profile.reads_files and _kubelet_credentials(fields.get("fd.name")):
        profile = _profile(rule, alert.priority or "", tuple(tags) if tags else None, True)
    output = alert.output or ""
    text = _LEADING.sub("", output, count=1) if output[:1].isdigit() else output
    summary = _summary(f"{rule}: {text}" if text and not text.startswith(rule) else (text or rule))
    return CompactEvent(
        time,
        "falco",
        alert.uuid or short_hash(bytes(data).strip()),
        profile.kind,
        profile.severity,
        summary,
        _entity_tuple(alert, fields),
        profile.attack,
        profile.signal,
        profile.label,
        raw,  # type: ignore[arg-type]  # a packed int: CompactEvent reads it back
    )
