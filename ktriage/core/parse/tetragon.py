"""Tetragon JSON export lines: process_exec/exit/kprobe/tracepoint/lsm, and the
older process_connect/listen/close. Policy hits and suspicious execs are signals;
plain execs and exits are context.
"""

from __future__ import annotations

from typing import Any

import msgspec

from ktriage.core.attack import attack_for
from ktriage.core.detect.tetragon import classify_connect, classify_exec, classify_hook
from ktriage.core.model import (
    CompactEvent,
    EntityKind,
    EntityRef,
    Event,
    RawRef,
    Severity,
    entity,
    unshared_entity,
)
from ktriage.core.parse import _SECOND_CACHE as _SECONDS
from ktriage.core.parse import (
    SkipRecord,
    clipped_value,
    plain,
    short_container_id,
    short_hash,
    time_out_of_range,
    to_epoch,
)
from ktriage.core.parse.podfacts import own_address


class TImage(msgspec.Struct, gc=False):
    name: str | None = None


class TContainer(msgspec.Struct, gc=False):
    id: str | None = None
    name: str | None = None
    image: TImage | None = None
    pid: int | None = None


class TPod(msgspec.Struct, gc=False):
    namespace: str | None = None
    name: str | None = None
    container: TContainer | None = None


class TProcess(msgspec.Struct, gc=False):
    exec_id: str | None = None
    pid: int | None = None
    uid: int | None = None
    binary: str | None = None
    arguments: str | None = None
    start_time: str | None = None
    pod: TPod | None = None
    docker: str | None = None
    # Capabilities stay raw: only an escape check looks at them.
    cap: msgspec.Raw = msgspec.Raw()


class TParent(msgspec.Struct, gc=False):
    exec_id: str | None = None
    binary: str | None = None
    arguments: str | None = None


class TBody(msgspec.Struct, gc=False):
    process: TProcess | None = None
    parent: TParent | None = None
    # kprobe / tracepoint / lsm
    function_name: str | None = None
    policy_name: str | None = None
    action: str | None = None
    args: list[Any] | None = None
    subsys: str | None = None
    event: str | None = None
    # connect / listen / close (older exports)
    destination_ip: str | None = None
    destination_port: int | None = None
    source_ip: str | None = None
    protocol: str | None = None
    # exit
    status: int | None = None
    signal: str | None = None


class TetragonRecord(msgspec.Struct, gc=False):
    process_exec: TBody | None = None
    process_exit: TBody | None = None
    process_kprobe: TBody | None = None
    process_tracepoint: TBody | None = None
    process_lsm: TBody | None = None
    process_uprobe: TBody | None = None
    process_connect: TBody | None = None
    process_listen: TBody | None = None
    process_close: TBody | None = None
    node_name: str | None = None
    time: str | int | float | None = None


DECODER = msgspec.json.Decoder(TetragonRecord)
_TYPES = (
    "process_exec",
    "process_exit",
    "process_kprobe",
    "process_tracepoint",
    "process_lsm",
    "process_uprobe",
    "process_connect",
    "process_listen",
    "process_close",
)

_KINDS = {name: name.replace("_", "-") for name in _TYPES}

# A container's pod, image, node and namespace never change: its entities (one
# shared tuple) and the words naming where it runs are computed once per
# (node, container, pod). Two generations: when the newer is full it becomes the
# older one, and what is read from the older is kept in the newer: the containers
# still running stay, those of finished jobs go. An entry holds its record's strings
# (~700 bytes): a replay where every event names a new pod reads none of them again.
_ENTITY_CACHE: dict[tuple[object, ...], tuple[tuple[EntityRef, ...], str]] = {}
_ENTITY_CACHE_OLD: dict[tuple[object, ...], tuple[tuple[EntityRef, ...], str]] = {}
_ENTITY_CACHE_MAX = 4096


def _entities(rec: TetragonRecord, proc: TProcess | None) -> tuple[tuple[EntityRef, ...], str]:
    """(entities, where) of an event: `ns/pod`, `container …`, `node …` or the host."""
    global _ENTITY_CACHE, _ENTITY_CACHE_OLD
    node = rec.node_name
    if proc is None:
        return tuple(_entities_uncached(rec, proc)), _where(proc, node)
    pod = proc.pod
    if pod is not None:
        container = pod.container
        if container is not None:
            image = container.image
            key = (
                node,
                proc.docker,
                pod.namespace,
                pod.name,
                container.id,
                image.name if image is not None else None,
            )
        else:
            key = (node, proc.docker, pod.namespace, pod.name, None, None)
    else:
        key = (node, proc.docker, None, None, None, None)
    found = _ENTITY_CACHE.get(key)
    if found is None:
        found = _ENTITY_CACHE_OLD.get(key)
        if found is None:
            found = (tuple(_entities_uncached(rec, proc)), _where(proc, node))
        if len(_ENTITY_CACHE) >= _ENTITY_CACHE_MAX:
            _ENTITY_CACHE_OLD = _ENTITY_CACHE
            _ENTITY_CACHE = {}
        _ENTITY_CACHE[key] = found
    return found


def _entities_uncached(rec: TetragonRecord, proc: TProcess | None) -> list[EntityRef]:
    ents: list[EntityRef] = []
    ns = ""
    if proc is not None:
        pod = proc.pod
        cid = ""
        if pod is not None:
            ns = pod.namespace or ""
            if pod.name:
                # Pods and containers are shared per container by _ENTITY_CACHE, not
                # interned: a job's pod is often named by one or two events only.
                ents.append(unshared_entity(EntityKind.POD, ns, pod.name))
            c = pod.container
            if c is not None:
                if c.id:
                    cid = short_container_id(c.id)
                if c.image is not None and c.image.name:
                    ents.append(entity(EntityKind.IMAGE, "", c.image.name))
        if not cid and proc.docker:
            cid = proc.docker[:12]
        if cid:
            ents.append(unshared_entity(EntityKind.CONTAINER, "", cid))
    if rec.node_name:
        ents.append(entity(EntityKind.NODE, "", rec.node_name))
    if ns:
        ents.append(entity(EntityKind.NAMESPACE, "", ns))
    return ents


def _where(proc: TProcess | None, node: str | None) -> str:
    if proc is not None and proc.pod is not None and proc.pod.name:
        return f"{proc.pod.namespace}/{proc.pod.name}"
    if proc is not None and proc.docker:
        return f"container {proc.docker[:12]}"
    return f"node {node}" if node else "the host"


def _cmdline(proc: TProcess | None) -> str:
    if proc is None:
        return "?"
    binary = proc.binary or "?"
    return f"{binary} {proc.arguments}" if proc.arguments else binary


def _in_container(proc: TProcess) -> bool:
    return proc.pod is not None or bool(proc.docker)


def _arg_source(args: list[Any] | None) -> str:
    """The source address of a socket argument (the local end: a pod's own address
    when the process runs in the pod's network), or ""."""
    if not args:
        return ""
    for a in args:
        if isinstance(a, dict):
            sock = a.get("sock_arg") or a.get("skb_arg")
            if isinstance(sock, dict):
                return own_address(sock.get("saddr"))
    return ""


def parse_tetragon(data: bytes | memoryview) -> TetragonRecord:
    try:
        return DECODER.decode(data)
    except msgspec.ValidationError as exc:
        raise SkipRecord("wrong-type", f"Tetragon event field of the wrong type: {exc}") from None


def build_event(rec: TetragonRecord, data: bytes | memoryview, raw: RawRef | int | None) -> Event:
    etype = ""
    body: TBody | None = None
    for name in _TYPES:
        body = getattr(rec, name)
        if body is not None:
            etype = name
            break
    if body is None:
        raise SkipRecord("unknown-format", "a Tetragon event of a type ktriage does not read")
    stamp_value = rec.time
    if stamp_value is None and etype == "process_exec" and body.process is not None:
        # An exec happens when its process starts: the one event time we can trust.
        stamp_value = body.process.start_time
    if stamp_value is None:
        raise SkipRecord("missing-field", "Tetragon event has no time")
    time = None
    if type(stamp_value) is str and len(stamp_value) > 20 and stamp_value[-1] == "Z":
        # to_epoch's common case, inlined: "YYYY-MM-DDTHH:MM:SS.ffffffZ" of a cached second
        base = _SECONDS.get(stamp_value[:19])
        frac = stamp_value[19:-1]
        if base is not None and frac[:1] == "." and frac[1:].isdigit():
            time = base + float(frac[:10])
    if time is None:
        time = to_epoch(stamp_value)
    if time is None:
        if time_out_of_range(stamp_value):
            raise SkipRecord(
                "out-of-range", f"Tetragon event time out of range: {clipped_value(stamp_value)}"
            )
        shown_time = clipped_value(stamp_value)
        raise SkipRecord("wrong-type", f"Tetragon event time is not a time: {shown_time}")
    proc = body.process
    parent = body.parent
    exec_id = proc.exec_id if proc is not None else None
    stamp = stamp_value if isinstance(stamp_value, str) else repr(stamp_value)
    ref = f"{exec_id}:{etype}:{stamp}" if exec_id else f"h:{short_hash(bytes(data).strip())}"
    ents, where = _entities(rec, proc)
    cmd = _cmdline(proc)
    pbin = parent.binary if parent is not None and parent.binary else "?"
    kind = _KINDS[etype]
    severity = Severity.INFO
    signal = False
    label = ""
    technique = ""
    tactic = ""

    if etype == "process_exec":
        summary = f"exec {cmd} in {where} (parent {pbin})"
        found = classify_exec(proc, parent) if proc is not None else None
        if found is not None:
            kind, severity, label, technique, tactic = found
            signal = True
            summary = f"{label}: {cmd} in {where} (parent {pbin})"
    elif etype == "process_exit":
        status = f" status {body.status}" if body.status else ""
        sig = f" signal {body.signal}" if body.signal else ""
        summary = f"exit {cmd} in {where}{status}{sig}"
    elif etype in ("process_kprobe", "process_tracepoint", "process_lsm", "process_uprobe"):
        (kind, severity, label, technique, tactic), detail = classify_hook(body, proc)
        signal = True
        own = _arg_source(body.args) if proc is not None and _in_container(proc) else ""
        if own:
            ents = (*ents, entity(EntityKind.IP, "", own))
        policy = f" [policy {body.policy_name}]" if body.policy_name else ""
        summary = f"{label}: {detail} by {cmd} in {where}{policy}"
        if kind == "process-kprobe":
            kind = etype.replace("_", "-")
    else:
        dst = f"{body.destination_ip}:{body.destination_port}"
        if etype == "process_connect":
            kind = "network-connect"
            summary = f"connect {cmd} in {where} -> {dst}"
            if body.destination_ip:
                ents = (*ents, entity(EntityKind.IP, "", body.destination_ip))
            own = own_address(body.source_ip) if proc is not None and _in_container(proc) else ""
            if own and own != body.destination_ip:
                ents = (*ents, entity(EntityKind.IP, "", own))
            found = classify_connect(proc, body.destination_port)
            if found is not None:
                kind, severity, label, technique, tactic = found
                signal = True
            if signal:
                summary = f"{label}: {cmd} in {where} -> {dst}"
        elif etype == "process_listen":
            kind = "network-listen"
            summary = f"listen {cmd} in {where} on {body.source_ip or '?'}"
        else:
            kind = "network-close"
            summary = f"close {cmd} in {where} -> {dst}"
    if len(summary) > 400 or not summary.isprintable():
        summary = plain(summary, 400)
    return CompactEvent(
        time,
        "tetragon",
        ref,
        kind,
        severity,
        summary,
        ents,
        attack_for(technique, tactic or None) if technique else None,
        signal,
        label,
        raw,  # type: ignore[arg-type]  # a packed int: CompactEvent reads it back
    )
