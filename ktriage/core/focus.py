"""Focused replay: build events only for the lines that can reach an incident.

Most lines of a large recording are routine (controllers polling, kubelets
patching pod status, processes starting and exiting) and belong to no incident.
A focused replay reads a file twice:

1. Every line is decoded (which validates it). A line that might be a signal
   (decided from its fields, erring on the side of "might"), or that is not
   plainly valid, goes through the full pipeline, in file order, so stateful
   detections (403 bursts, one signal per request) see what they always see.
   Every other line is only indexed by the names it could link through.
2. The index gives the lines naming a strong entity of some signal found in
   pass 1. Only those are read again, in file order, through the full pipeline;
   an event of theirs is kept when one of its entities is exactly such a strong
   entity (the same pod name in another namespace is not). The rest are counted.

The result is the same set of incidents, ids, titles and timelines as a full
replay (the correlator is order-independent, and a context event can only join
an incident through a strong entity of one of its signals; events of the same
instant are reported in an order of their own, not of arrival); tests compare
the two on real and generated data. Lines that fail the quick checks always take
the full path, so every unusable line is still skipped and counted by its reason.

Pass 1 is most of the work. For a very large file the replay command shares it
with a forked helper process that reads a later part and sends the lines it finds
for the full path as it goes (core/replay.py).

Where the two can differ, the focused result is the one a full read in any
order would give: a context event between two signals of one entity attaches to
the nearer one (a full read attaches it to the nearer of those seen so far); no
context is dropped for a signal that comes late (a full read remembers the last
5,000 per entity); and of two records with one id (a reused auditID and stage)
the signal is kept (a full read keeps the first).
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from itertools import accumulate, islice
from typing import TypeGuard

import msgspec

from ktriage.core.detect.audit import (
    SIGNAL_REQUESTS,
    SIGNAL_RESOURCES,
    might_signal,
    outside_candidate,
)
from ktriage.core.detect.falco import recognised
from ktriage.core.detect.tetragon import SUSPECT_ARGUMENTS_RE, SUSPECT_EXEC_BINARIES
from ktriage.core.model import STRONG_KINDS, EntityKind, EntityRef
from ktriage.core.parse import _SECOND_CACHE, short_container_id, to_epoch
from ktriage.core.parse.audit import DECODER as AUDIT_DECODER
from ktriage.core.parse.audit import AuditRecord, ResponseStatus
from ktriage.core.parse.falco import DECODER as FALCO_DECODER
from ktriage.core.parse.tetragon import DECODER as TETRAGON_DECODER
from ktriage.core.parse.tetragon import TetragonRecord, TProcess

# A focused replay pays off only for large files; small ones take the full path.
FOCUS_MIN_BYTES = 8 << 20

# What core/detect/audit.py reads and may signal on: its own declaration.
audit_might_signal = might_signal


# Execs core/detect/tetragon.py `classify_exec` may call a signal: by binary name
# whatever the arguments, or by a piece of the arguments (its own tables).
_SUSPECT_BINARIES = SUSPECT_EXEC_BINARIES
_SUSPECT_ARGUMENTS = SUSPECT_ARGUMENTS_RE
_BASE_NAMES: dict[str, str] = {}


def _exec_might_signal(proc: TProcess) -> bool:
    """A cheaper, coarser `classify_exec(...) is not None`: True for every exec it
    may call a signal (and for a few it would not)."""
    binary = proc.binary
    if binary:
        name = _BASE_NAMES.get(binary)
        if name is None:
            if len(_BASE_NAMES) > 10_000:
                _BASE_NAMES.clear()
            name = _BASE_NAMES[binary] = binary.rpartition("/")[2]
        if name in _SUSPECT_BINARIES:
            return True
    args = proc.arguments
    return args is not None and _SUSPECT_ARGUMENTS.search(args) is not None


class _PlainAudit(AuditRecord, gc=False):
    """An audit record whose stageTimestamp msgspec reads as a time, in C: a line
    that decodes as this decodes as AuditRecord too, and its time is readable
    (tests check both)."""

    stageTimestamp: datetime | None = None  # type: ignore[assignment]


class _PlainTetragon(TetragonRecord, gc=False):
    """A Tetragon record whose time msgspec reads as a time (as _PlainAudit)."""

    time: datetime | None = None  # type: ignore[assignment]


_PLAIN_AUDIT_DECODE = msgspec.json.Decoder(_PlainAudit).decode
_PLAIN_TETRAGON_DECODE = msgspec.json.Decoder(_PlainTetragon).decode
_SIGNAL_RESOURCES = SIGNAL_RESOURCES
# Audit objects that become strong entities (core/parse/audit.py `_object_entity`).
_LINKING_RESOURCES = frozenset({"pods", "serviceaccounts"})
_FALCO_LINKING_FIELDS = ("k8s.pod.name", "container.id", "fd.rip", "fd.sip")
# RecursionError: a record nested too deeply takes the full path, which salvages it.
_DECODE_ERRORS = (msgspec.DecodeError, ValueError, RecursionError)
# Years of a time msgspec read that the parsers surely accept (they take 1970 to 2999;
# a time at either edge takes the full path, which decides).
_PLAIN_YEARS = (1970, 2999)
# (user name, address) pairs pass 1 remembers whether `outside_candidate` holds for.
_OUTSIDE_CACHE = 50_000
# Tetragon processes' names pass 1 remembers by what they are made from.
_TETRAGON_KEYS_CACHE = 50_000
# Combinations of names pass 1 remembers the number of (when every line names a new
# pod, its memory stays bounded: the index then grows as it did by name).
_COMBO_CACHE = 200_000
# PlainIndex.candidates looks for up to this many combinations one by one.
_FEW_COMBOS = 32
# The audit resources whose SIGNAL_REQUESTS predicate reads no more of a record
# without a request or response body than what `_audit_decision` is cached by
# (user, address, resource, subresource, verb, namespace, whether it names an
# object, kind, code): a test checks each predicate against this. Secrets are not
# (their URI counts).
_DECIDED_BY_NAMES = SIGNAL_RESOURCES - {"secrets"}
# What `_audit_decision` gives instead of a combination's number: the line may be a
# signal whatever its time; its names do not decide it (it is checked whole); it is
# left out, and its combination names its object (a pod or service account).
_SIGNAL = -1
_UNDECIDED = -2
_BY_OBJECT = -3
_AuditDecision = tuple[int, bool, dict[str | None, int] | None]


class PlainIndex:
    """What pass 1 keeps of the lines it left out: the names a line could link
    through (user, pod, service account, container, IP), and where every line
    starts.

    Lines name the same few combinations of names again and again (one kubelet,
    its address and one of its pods; one container of one pod), so each line
    keeps only the number of its combination (4 bytes), and an inverted index
    goes from each name to the combinations holding it."""

    __slots__ = ("always", "combos", "first_line", "offsets", "plain", "postings")

    def __init__(self) -> None:
        # Name -> the combinations (numbers) holding it.
        self.postings: dict[str | tuple[str, str], list[int]] = {}
        # The combination of every line of its part, by index; -1: not left out.
        self.combos = array("i")
        self.offsets = array("q")  # of every line of its part, by index
        self.first_line = 0  # lines of the file before its part
        # Lines that may join any incident (a bound token names its pod).
        self.always = array("q")
        self.plain = 0  # lines left out

    def candidates(self, names: Iterable[str | tuple[str, str]]) -> list[int]:
        """The lines (indices) naming any of `names`, and those that may join any
        incident, in file order."""
        found: set[int] = set(self.always)
        get = self.postings.get
        wanted: set[int] = set()
        for name in names:
            combos = get(name)
            if combos is not None:
                wanted.update(combos)
        if len(wanted) > _FEW_COMBOS:
            found.update(i for i, combo in enumerate(self.combos) if combo in wanted)
        else:
            # Each wanted combination looked for along the array in C: a few names
            # (the usual case) are found in a fraction of the time of a loop here.
            look = self.combos.index
            for combo in wanted:
                at = -1
                while True:
                    try:
                        at = look(combo, at + 1)
                    except ValueError:
                        break
                    found.add(at)
        return sorted(found)


def index_names(keys: Iterable[EntityRef]) -> set[str | tuple[str, str]]:
    """The names under which lines naming these entities are indexed: pods and
    service accounts by (namespace, name), service accounts also by their user name
    (as audit records name the requester), the others by name."""
    names: set[str | tuple[str, str]] = set()
    for key in keys:
        if key.kind not in STRONG_KINDS:
            continue
        if key.kind == EntityKind.POD:
            names.add((key.namespace, key.name))
        elif key.kind == EntityKind.SERVICE_ACCOUNT:
            names.add((key.namespace, key.name))
            names.add(f"system:serviceaccount:{key.namespace}:{key.name}")
        else:
            names.add(key.name)
    return names


def first_pass(
    lines: Iterable[bytes],
    full: Callable[[bytes, int, int, object, float | None], object],
    limit: int,
    *,
    start: int = 0,
    stop: int | None = None,
    previous: object = None,
    each_batch: Callable[[], object] | None = None,
    stop_at: Callable[[int], int] | None = None,
) -> tuple[PlainIndex, int, object, float | None]:
    """Pass 1 over the lines of one file, or of the part of it from byte `start`
    (where `lines` begin) to `stop`. Each line that might be a signal, or is not
    plainly valid, goes to `full(body, index, offset, last_plain, plain_time)` at
    once, in file order: `index` counts lines from `start`; `last_plain` is the
    latest line left out since the previous call (an untimed record is placed after
    it), or `previous` (given for a part that follows another); `each_batch` is
    called after every batch of lines (BATCH_BYTES); `stop_at(offset)`, given, is
    asked before each batch where the part ends (in place of `stop`: the part may
    end sooner than it was to); `plain_time` is the
    latest time, to the microsecond, of the audit lines left out since the previous
    call (requests held for their response are released by it), or None. Every
    other line is indexed by the names it could link through. Lines longer than
    `limit` (line end aside) are never left out. Returns (index, lines read, the
    last `last_plain`, the last `plain_time`).

    This runs for every line of a large replay: the common audit and Tetragon
    lines are decided by msgspec (types, times) and a few attribute checks, with
    the fewest string operations. Lines come in batches (their offsets and
    combinations are kept a batch at a time), and what decides a common line is
    remembered by the few names it is made of (`_audit_decision`, the Tetragon
    caches below); the tests compare the outcome with the full path."""
    index = PlainIndex()
    postings = index.postings
    # The combinations of names seen lately, by their number (forgotten now and
    # then: a combination seen again after that is given a new number).
    combo_numbers: dict[tuple[str | tuple[str, str] | None, ...], int] = {}
    combo_number = combo_numbers.get
    next_combo = 0

    def combo_of(keys: tuple[str | tuple[str, str] | None, ...]) -> int:
        """The number of a combination of names (a new one when not seen lately)."""
        nonlocal next_combo
        combo = combo_number(keys)
        if combo is not None:
            return combo
        if len(combo_numbers) > _COMBO_CACHE:
            combo_numbers.clear()
        combo = combo_numbers[keys] = next_combo
        next_combo += 1
        for key in keys:
            if key:
                found = postings.get(key)
                if found is None:
                    postings[key] = [combo]
                elif found[-1] != combo:
                    found.append(combo)
        return combo

    # What decides a common audit line, by the names it is made of (_audit_decision).
    audit_decisions: dict[tuple[object, ...], _AuditDecision] = {}
    audit_decision = audit_decisions.get
    # Whether an exec may be a signal, by (binary, arguments); a Tetragon process's
    # combination, by its pod's namespace and name, container id and docker id.
    exec_decisions: dict[tuple[str | None, str | None], bool] = {}
    tetragon_combos: dict[tuple[str | None, ...], int] = {}
    keep_combos = index.combos.extend
    keep_offsets = index.offsets.extend
    keep_always = index.always.append
    audit_decode = _PLAIN_AUDIT_DECODE
    tetragon_decode = _PLAIN_TETRAGON_DECODE
    signal_resources = _SIGNAL_RESOURCES
    signal_requests = SIGNAL_REQUESTS
    outside_seen: dict[tuple[str, str], bool] = {}
    # The years strictly between _PLAIN_YEARS (a range answers `in` in C).
    plain_years = range(_PLAIN_YEARS[0] + 1, _PLAIN_YEARS[1])
    linking_resources = _LINKING_RESOURCES
    exec_might_signal = _exec_might_signal
    decode_errors = _DECODE_ERRORS
    lineno = plain = 0
    offset = start
    end = stop if stop is not None else 1 << 62
    last_plain: object = previous
    # The latest time of the audit lines left out since the last full line.
    gap_stamp: datetime | None = None
    gap_time: float | None = None
    keys: tuple[str | tuple[str, str] | None, ...]
    read_batch = _batch_reader(lines)
    last_batch = False
    while not last_batch:
        if stop_at is not None:
            end = stop_at(offset)
        if offset >= end:
            break
        batch = read_batch()
        if not batch:
            break
        starts = list(accumulate(map(len, batch), initial=offset))
        offset = starts.pop()
        if offset > end:
            # The part ends in this batch: its lines that start before `end`.
            del batch[bisect_left(starts, end) :]
            del starts[len(batch) :]
            last_batch = True
        keep_offsets(starts)
        combos = [-1] * len(batch)
        long_lines = max(map(len, batch), default=0) > limit
        for i, line in enumerate(batch):
            combo = -1
            first = line[2:3]
            if long_lines and len(line) > limit and _body_length(line) > limit:
                first = b""  # too long: the full path skips it, and counts it
            if (first == b"k" and line.startswith(b'{"kind":"Event",')) or (
                first and first != b"p" and b'"auditID"' in line
            ):
                try:
                    a = audit_decode(line)
                except decode_errors:
                    a = None
                # (A record without a verb is never left out: the decision below,
                # cached or not, says so.)
                if a is not None and a.auditID and a.impersonatedUser is None:
                    user = a.user
                    ref = a.objectRef
                    ips = a.sourceIPs
                    stamp = a.stageTimestamp
                    slow = True
                    if (
                        user is not None
                        and ref is not None
                        and ips is not None
                        and len(ips) == 1
                        and not a.requestObject
                        and not a.responseObject
                    ):
                        # The common line: decided by its names (a few per file).
                        who = user.username
                        ip = ips[0]
                        ns = ref.namespace
                        obj = ref.name
                        st = a.responseStatus
                        key = (
                            who,
                            ip,
                            ref.resource,
                            ref.subresource,
                            a.verb,
                            ns,
                            not obj,
                            a.kind,
                            st.code if st is not None else None,
                        )
                        decided = audit_decision(key)
                        if decided is None:
                            if len(audit_decisions) > _COMBO_CACHE:
                                audit_decisions.clear()
                            decided = audit_decisions[key] = _audit_decision(a, combo_of)
                        static, account, objects = decided
                        if static != _UNDECIDED:
                            # (Without a body a pod write states no pod facts:
                            # core/parse/podfacts.py reads the bodies only.)
                            slow = False
                            if static != _SIGNAL and (
                                stamp.year in plain_years
                                if stamp is not None
                                else _audit_time_valid(a)
                            ):
                                if objects is None:
                                    combo = static
                                else:
                                    # Named by its object too (a pod or service account).
                                    found = objects.get(obj)
                                    if found is None:
                                        if len(objects) > _COMBO_CACHE:
                                            objects.clear()
                                        found = objects[obj] = combo_of(
                                            (who, (ns or "", obj or ""), ip)
                                        )
                                    combo = found
                                if account and user.extra:
                                    keep_always(lineno + i)
                    if slow:
                        name = user.username if user is not None else None
                        st = a.responseStatus
                        resource = ref.resource if ref is not None else None
                        outside: bool | None
                        if not name or not ips:
                            outside = False
                        elif len(ips) == 1:
                            outside_key = (name, ips[0])
                            outside = outside_seen.get(outside_key)
                            if outside is None:
                                if len(outside_seen) > _OUTSIDE_CACHE:
                                    outside_seen.clear()
                                outside = outside_seen[outside_key] = outside_candidate(name, ips)
                        else:
                            outside = outside_candidate(name, ips)
                        # The other reasons audit_might_signal gives (a 403, no or an
                        # anonymous user, a system credential from outside: see
                        # _plain_request; impersonation was ruled out above): of it,
                        # only the resource's own predicate is left to ask.
                        if (
                            _plain_request(name, a.verb, a.kind, st)
                            and not outside
                            and (
                                resource not in signal_resources or not signal_requests[resource](a)
                            )
                            and (resource != "pods" or not _says_pod_facts(a.verb, line))
                            and (
                                stamp.year in plain_years
                                if stamp is not None
                                else _audit_time_valid(a)
                            )
                        ):
                            if (
                                user is not None
                                and user.extra
                                and name.startswith("system:serviceaccount:")
                            ):
                                keep_always(lineno + i)
                            if ref is not None and resource in linking_resources and ref.name:
                                # Pods and service accounts by (namespace, name): one
                                # pod name is often found in several namespaces.
                                named = (ref.namespace or "", ref.name)
                                keys = (name, named, *ips) if ips else (name, named)
                            else:
                                keys = (name, *ips) if ips else (name,)
                            combo = combo_of(keys)
                    if combo >= 0:
                        if stamp is not None:
                            try:
                                if gap_stamp is None or stamp > gap_stamp:
                                    gap_stamp = stamp
                            except TypeError:  # a naive time among aware ones
                                t = _epoch(stamp)
                                if gap_time is None or t > gap_time:
                                    gap_time = t
                        else:
                            t = to_epoch(a.requestReceivedTimestamp or a.timestamp) or 0.0
                            if gap_time is None or t > gap_time:
                                gap_time = t
            elif first == b"p" and line.startswith(b'{"process_'):
                try:
                    tet = tetragon_decode(line)
                except decode_errors:
                    tet = None
                if tet is not None and tet.time is not None and tet.time.year in plain_years:
                    body = tet.process_exec
                    proc = None
                    if body is not None:
                        proc = body.process
                        if proc is None:
                            body = None
                        else:
                            made = (proc.binary, proc.arguments)
                            suspect = exec_decisions.get(made)
                            if suspect is None:
                                if len(exec_decisions) > _TETRAGON_KEYS_CACHE:
                                    exec_decisions.clear()
                                suspect = exec_decisions[made] = exec_might_signal(proc)
                            if suspect:
                                body = None
                    elif tet.process_exit is not None:
                        body = tet.process_exit
                        proc = body.process
                    if body is not None:
                        if proc is None:
                            combo = combo_of(())
                        else:
                            pod = proc.pod
                            c = pod.container if pod is not None else None
                            made_of = (
                                pod.namespace if pod is not None else None,
                                pod.name if pod is not None else None,
                                c.id if c is not None else None,
                                proc.docker,
                            )
                            found = tetragon_combos.get(made_of)
                            if found is None:
                                if len(tetragon_combos) > _TETRAGON_KEYS_CACHE:
                                    tetragon_combos.clear()
                                found = tetragon_combos[made_of] = combo_of(
                                    _tetragon_names(*made_of)
                                )
                            combo = found
            elif first and falco_is_plain(line):
                combo = combo_of(())
            if combo < 0:
                record = line.rstrip(b"\r\n")
                if record:
                    if gap_stamp is not None:
                        gap_time = max(gap_time or 0.0, _epoch(gap_stamp))
                        gap_stamp = None
                    full(record, lineno + i, starts[i], last_plain, gap_time)
                    last_plain = None
                    gap_time = None
            else:
                combos[i] = combo
                last_plain = line
        keep_combos(combos)
        plain += len(batch) - combos.count(-1)
        lineno += len(batch)
        if each_batch is not None:
            each_batch()
    index.plain = plain
    if gap_stamp is not None:
        gap_time = max(gap_time or 0.0, _epoch(gap_stamp))
    return index, lineno, last_plain, gap_time


# Lines pass 1 reads at a time: about this many bytes. A batch small enough to stay
# in a core's own cache while it is decoded: with both cores at work (the helper
# process), a 1 MiB batch made pass 1 about a tenth slower.
BATCH_BYTES = 128 << 10
_BATCH_LINES = 1024


def _batch_reader(lines: Iterable[bytes]) -> Callable[[], list[bytes]]:
    """The next lines, about BATCH_BYTES of them (an empty list at the end): a
    binary file's by `readlines`, other iterables' a few at a time."""
    readlines = getattr(lines, "readlines", None)
    if readlines is not None:
        return lambda: readlines(BATCH_BYTES)
    it = iter(lines)
    return lambda: list(islice(it, _BATCH_LINES))


def _audit_decision(
    rec: AuditRecord, number: Callable[[tuple[str | tuple[str, str] | None, ...]], int]
) -> _AuditDecision:
    """What decides an audit record with one source address, an object, and no
    request or response body, by the names pass 1 remembers it by (the cache key):
    (its combination's number, or _SIGNAL, _UNDECIDED or _BY_OBJECT; whether its
    user is a service account, whose bound token may name its pod (the user's
    `extra` says); for _BY_OBJECT, the combinations' numbers by the object's name,
    filled as lines come)."""
    user = rec.user
    ref = rec.objectRef
    ips = rec.sourceIPs
    assert user is not None and ref is not None and ips is not None
    name = user.username
    st = rec.responseStatus
    resource = ref.resource
    if not _plain_request(name, rec.verb, rec.kind, st) or outside_candidate(name, ips):
        return _SIGNAL, False, None
    if resource in _SIGNAL_RESOURCES:
        if resource not in _DECIDED_BY_NAMES:
            return _UNDECIDED, False, None
        if SIGNAL_REQUESTS[resource](rec):
            return _SIGNAL, False, None
    by_object = resource in _LINKING_RESOURCES and bool(ref.name)
    return (
        _BY_OBJECT if by_object else number((name, *ips)),
        name.startswith("system:serviceaccount:"),
        {} if by_object else None,
    )


def _plain_request(
    name: str | None, verb: str | None, kind: str | None, status: ResponseStatus | None
) -> TypeGuard[str]:
    """None of the reasons `audit_might_signal` gives for any resource but a system
    credential from outside (`outside_candidate`, asked by the caller): a user (then
    `name` is a str) and a verb, not anonymous, a complete event, no 403."""
    return bool(
        name
        and verb
        and name != "system:anonymous"
        and (kind == "Event" or kind is None)
        and (status is None or status.code != 403)
    )


def _tetragon_names(
    namespace: str | None, pod: str | None, container_id: str | None, docker: str | None
) -> tuple[tuple[str, str] | None, str]:
    """What a Tetragon process is indexed by: its pod and its short container id."""
    cid = short_container_id(container_id) if container_id else ""
    if not cid and docker:
        cid = docker[:12]
    return ((namespace or "", pod) if pod else None, cid)


_POD_WRITES = frozenset({"create", "update", "patch"})


def _says_pod_facts(verb: str | None, line: bytes) -> bool:
    """A pod write that may state the pod's address or service account: the full
    path reads it (core/parse/podfacts.py), for the correlator learns links from it
    in file order, as a full replay does."""
    return verb in _POD_WRITES and (b'"podIP"' in line or b'"serviceAccountName"' in line)


def _body_length(line: bytes) -> int:
    """A line's length without its end (`\n` or `\r\n`), as the ingestor counts it."""
    end = len(line)
    if end and line[-1] == 10:
        end -= 1
        if end and line[end - 1] == 13:
            end -= 1
    return end


def _epoch(stamp: datetime) -> float:
    """Epoch seconds of a time msgspec read; one without an offset is UTC, as
    core/parse reads it."""
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    return stamp.timestamp()


def _audit_time_valid(rec: AuditRecord) -> bool:
    """A record without stageTimestamp: whether the parser reads its other time."""
    stamp = rec.requestReceivedTimestamp or rec.timestamp
    return stamp is not None and _valid_time(stamp)


def falco_is_plain(line: bytes) -> bool:
    """A valid Falco line that is no signal and names nothing that links (the
    sensor's own notices, Debug-level rules without pod or container fields)."""
    if not (b'"rule":"Falco internal' in line or b'"priority":"Debug"' in line):
        return False  # cheap: most Falco lines are signals
    if not (b'"rule"' in line and b'"priority"' in line) or (
        b'"auditID"' in line or b'"audit.k8s.io/' in line or line.startswith(b'{"process_')
    ):
        return False  # the ingestor would not read it as Falco first
    try:
        alert = FALCO_DECODER.decode(line)
    except _DECODE_ERRORS:
        return False
    rule = alert.rule
    if not rule or not (
        rule.startswith("Falco internal") or (alert.priority or "").strip().lower() == "debug"
    ):
        return False
    if recognised(rule):
        return False  # raised to ktriage's own severity: a signal at any priority
    fields = alert.output_fields or {}
    if (
        alert.source == "k8s_audit"
        or any(key in fields for key in _FALCO_LINKING_FIELDS)
        or any(key.startswith("ka.") for key in fields)
    ):
        return False
    return alert.time is not None and _valid_time(alert.time)


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
    except _DECODE_ERRORS:
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


def falco_time(line: bytes) -> float | None:
    """The time of a Falco line (pass 1 leaves some out), or None."""
    try:
        alert = FALCO_DECODER.decode(line)
    except _DECODE_ERRORS:
        return None
    return to_epoch(alert.time) if alert.time is not None else None


def quick_tetragon(line: bytes) -> TetragonRecord | None:
    try:
        rec = TETRAGON_DECODER.decode(line)
    except _DECODE_ERRORS:
        return None
    if rec.process_exec is None and rec.process_exit is None:
        return None
    return rec if _valid_time(rec.time) else None
