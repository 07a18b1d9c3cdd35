"""Falco alerts as written with `json_output: true` (syscall and k8saudit sources)."""

from __future__ import annotations

import re
from typing import Any

import msgspec

from ktriage.core.attack import attack_for_kind, from_falco_tags
from ktriage.core.detect import falco as classifier
from ktriage.core.detect.tetragon import KUBELET_CREDENTIAL_PATHS
from ktriage.core.model import CompactEvent, EntityKind, EntityRef, Event, RawRef, Severity, entity
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


def _str(fields: dict[str, Any], key: str) -> str:
    v = fields.get(key)
    if v in _NA or isinstance(v, bool):
        return ""
    return v if isinstance(v, str) else str(v)


# Alerts of one workload name the same few entities again and again: the common
# form (pod, container, node, namespace and nothing else) is built once per
# combination and shared.
_ENTITY_TUPLES: dict[tuple[object, ...], tuple[EntityRef, ...]] = {}
# Fields that add entities beyond the common form.
_MORE_ENTITY_FIELDS = (
    "container.image.repository",
    "fd.rip",
    "fd.sip",
    "fd.lip",
    "k8s.pod.ip",
    "ka.user.name",
)
# Rules whose remote address is the API server: shared by every pod, it never links.
_API_SERVER_RULES = frozenset({"Contact K8S API Server From Container"})


def _entity_tuple(alert: FalcoAlert, fields: dict[str, Any]) -> tuple[EntityRef, ...]:
    if alert.source == "k8s_audit" or any(key in fields for key in _MORE_ENTITY_FIELDS):
        return tuple(_entities(alert, fields))
    get = fields.get
    key = (alert.hostname, get("k8s.ns.name"), get("k8s.pod.name"), get("container.id"))
    try:
        found = _ENTITY_TUPLES.get(key)
    except TypeError:  # an unhashable field value (a list or object)
        return tuple(_entities(alert, fields))
    if found is None:
        if len(_ENTITY_TUPLES) > 100_000:
            _ENTITY_TUPLES.clear()
        found = _ENTITY_TUPLES[key] = tuple(_entities(alert, fields))
    return found


def _entities(alert: FalcoAlert, fields: dict[str, Any]) -> list[EntityRef]:
    ents: list[EntityRef] = []
    get = fields.get
    ns = get("k8s.ns.name")
    if ns in _NA or type(ns) is not str:
        ns = ""
    pod = get("k8s.pod.name")
    if pod not in _NA and type(pod) is str:
        ents.append(entity(EntityKind.POD, ns, pod))
    cid = get("container.id")
    if cid not in _NA and type(cid) is str and cid != "host":
        ents.append(entity(EntityKind.CONTAINER, "", cid[:12]))
    if alert.hostname:
        ents.append(entity(EntityKind.NODE, "", alert.hostname))
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


def build_event(alert: FalcoAlert, data: bytes | memoryview, raw: RawRef | int | None) -> Event:
    fields = alert.output_fields or {}
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
    rule = alert.rule or ""
    kind, label, behaviour = classifier.classify_rule(rule)
    severity = classifier.severity(alert.priority or "", behaviour)
    if kind in _FILE_READ_KINDS and _kubelet_credentials(fields.get("fd.name")):
        # Whoever holds these acts as the node (core/containment.py keeps it open).
        kind = "kubelet-credentials-read"
    internal = rule.startswith("Falco internal") or severity == Severity.INFO
    output = alert.output or ""
    text = _LEADING.sub("", output, count=1) if output[:1].isdigit() else output
    summary = f"{rule}: {text}" if text and not text.startswith(rule) else (text or rule)
    attack = (from_falco_tags(alert.tags) if alert.tags else None) or attack_for_kind(kind)
    ref = alert.uuid or short_hash(bytes(data).strip())
    return CompactEvent(
        time,
        "falco",
        ref,
        "falco-internal" if rule.startswith("Falco internal") else kind,
        severity,
        plain(summary, 400),
        _entity_tuple(alert, fields),
        None if internal else attack,
        not internal,
        "" if internal else label,
        raw,  # type: ignore[arg-type]  # a packed int: CompactEvent reads it back
    )
