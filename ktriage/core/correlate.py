"""Signals → incidents.

Incidents are the connected components of signals linked by a shared strong
entity (pod, container, service account, external user, IP) within a time window
(union–find). For every strong entity the signals are kept sorted by time; two
signals that are neighbours in that order and within the window are always in one
component, so a late or out-of-order event merges exactly as if it had come in
order. Context events (non-signals) attach to the incident of the nearest signal
sharing one of their strong entities within the window; context seen before its
signal is attached when the signal arrives.

Expected sessions: a suppressed exec/attach/port-forward into a pod also covers
the ordinary activity of that interactive session on the pod (SESSION_COVERED_KINDS,
SESSION_MAX_SEVERITY), from SESSION_LEAD before it until the rule's `session` after
it. Runtime signals it covers become context. Live, the Falco alert of a shell often
arrives before the audit line of the exec that started it, so a session that
becomes known late demotes the signals it covers retroactively: their component is
rebuilt from its events (see `_rebuild`), and an incident left without signals is
closed (its id goes to `closed`).

Linking entities: a pod, container, service account, person or address links; a
control-plane identity's requests link by nothing but their object (their source
addresses are nodes', shared by everything on them). What the correlator learns from
fact events (FACT_KINDS: a pod's own address, the service account it runs as) links
too: the signals naming the address, or the pod, are filed under the pod, or its
account, as if they had named it from the start (`_alias`), in any order of arrival.

Recurring incidents: low signals of one rule about pods of one namespace form one
incident (filed under a roll-up key, not their pods) with a count and a bounded list
of pods. A signal above low about one of those pods, within the window, takes that
pod's low signals into its own incident (`_promote_around`, through `_rebuild`).

Titles name what happened and where: the pod, else the identity that made the
requests (never one they were about), else a service account, user or node.
"""

from __future__ import annotations

import bisect
import contextlib
import functools
import operator
import re
from array import array
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from ktriage.core.attack import tactic_rank
from ktriage.core.config import Config, Suppression
from ktriage.core.detect.podstate import killed_process
from ktriage.core.model import EntityKind, EntityRef, Event, Incident, Severity
from ktriage.core.parse import blake2b
from ktriage.core.parse.audit import OWN_REQUEST_KIND
from ktriage.core.parse.podfacts import POD_ACCOUNT_KIND, POD_ADDRESS_KIND
from ktriage.core.store import EventStore, entity_key, probe

# How many unattached context events are remembered per entity for late signals.
PENDING_PER_ENTITY = 5_000
# A pending list is cut back to PENDING_PER_ENTITY once it grows past this (cutting
# at every append would cost more than the memory it saves).
_PENDING_TRIM = 2 * PENDING_PER_ENTITY
# Events of an incident read for the process a node's OOM report names (the newest).
_PROCESS_SCAN = 2000
_bisect_left = bisect.bisect_left
_bisect_right = bisect.bisect_right
# Sources that count for corroboration (our own actions do not).
OBSERVING_SOURCES = frozenset({"audit", "falco", "tetragon", "kube"})

# ---- recurring low signals (roll-up) ---------------------------------------------
# Low signals of one rule on pods of one namespace (a noisy rule on every replica of
# a workload) form one recurring incident, not one per pod. A pod leaves it for an
# incident of its own as soon as a signal above low concerns it within the window:
# its low signals join that incident (and so do, in turn, its other low signals
# within the window of those).
ROLLUP_SOURCES = frozenset({"falco", "tetragon", "kube"})
ROLLUP_KIND = "Recurring"
# Entities of each kind (pods, containers, nodes...) named in a recurring
# incident's entities (the count covers every pod).
ROLLUP_LISTED = 20
# Distinct pods counted exactly up to this many; beyond, "at least".
ROLLUP_COUNTED = 10_000
_POD: str = EntityKind.POD.value
_LOW = Severity.LOW
# Signals a recurring incident takes before it counts their entities (see _Recurring.take).
_WAITING_MAX = 4096

# ---- learnt links --------------------------------------------------------------
# Context events that state a fact the correlator links by (see ingest.py and
# cluster.py): a pod's own address (signals from that address join the pod's
# incident), and the service account a pod runs as (its signals join the pod's).
FACT_KINDS = frozenset({POD_ADDRESS_KIND, POD_ACCOUNT_KIND})
# Every pod without an account of its own runs as `default`: it links nothing.
SHARED_ACCOUNTS = frozenset({"default"})
# An address reused by many pods (or a hostile stream claiming it for thousands)
# links to this many at most.
MAX_LEARNT_PER_ENTITY = 8

# ---- expected sessions ------------------------------------------------------
# Audit detections (kinds) that open an interactive session into a pod.
SESSION_KINDS = {"exec": "exec", "attach": "attach", "port-forward": "port-forward"}
# Sources whose signals a session may cover: what runs inside the pod.
RUNTIME_SOURCES = frozenset({"falco", "tetragon"})
# What an interactive shell normally produces, and nothing more. An attacker who
# waits for an SRE's exec must still be seen, so every high-impact detection stays
# out: miner, mining-pool egress, nsenter/host shell (container-escape, "nsenter"),
# download-and-execute, token theft (sa-token-read), netcat/reverse shells, kubectl
# or API discovery from the pod, kernel modules, ptrace, setuid, kprobe/tracepoint/
# lsm policy hits, dropped binaries. Covered:
#   shell             the session's own shell (Falco "Terminal shell in container",
#                     Tetragon sh/bash started by the container runtime)
#   process-exec/-exit plain commands typed in it (context already; listed for clarity)
#   falco-alert       Falco rules ktriage has no name for, at Notice or below only
#   sensitive-file-read  an admin reading config or key files (Falco Warning level),
#                     but never a service-account token or shadow file (see below;
#                     Tetragon's token and shadow reads are HIGH, never covered)
#   download          curl/wget without piping to a shell or writing to /tmp
#   network-connect/-listen/-close  ordinary connections (mining ports are HIGH)
SESSION_COVERED_KINDS = frozenset(
    {
        "shell",
        "process-exec",
        "process-exit",
        "falco-alert",
        "sensitive-file-read",
        "download",
        "network-connect",
        "network-listen",
        "network-close",
    }
)
# Nothing at HIGH or above from the runtime is ever covered by a session.
SESSION_MAX_SEVERITY = Severity.MEDIUM
# Unnamed Falco rules could be anything: only Notice and below (LOW) are covered.
_SESSION_MAX_BY_KIND = {"falco-alert": Severity.LOW}
# A session starts this long before its audit line: the runtime sees the shell at
# about the same time, and the two clocks differ a little.
SESSION_LEAD = 30.0


# Files whose reading is credential theft whoever does it: Falco reports them as
# ordinary sensitive-file reads (Warning), so the path decides.
_NEVER_COVERED_READS = ("serviceaccount/token", "/etc/shadow", "/etc/gshadow", "eks.amazonaws.com")


def session_covers(ev: Event) -> bool:
    """Whether a runtime event is ordinary activity of an interactive session."""
    if ev.source not in RUNTIME_SOURCES or ev.kind not in SESSION_COVERED_KINDS:
        return False
    if ev.severity > _SESSION_MAX_BY_KIND.get(ev.kind, SESSION_MAX_SEVERITY):
        return False
    if ev.kind == "sensitive-file-read":
        return not any(path in ev.summary for path in _NEVER_COVERED_READS)
    return True


@dataclass(frozen=True, slots=True)
class _Session:
    """An expected interactive session into one pod."""

    start: float
    end: float
    order: tuple[float, str]  # (time, ref) of its audit event: the earliest wins
    text: str  # the suppressed_by of what it covers


@dataclass(slots=True)
class _Group:
    """Aggregates of one component, merged when components merge."""

    first_key: tuple[float, str, str]  # (time, source, ref) of the earliest signal
    signal_ids: list[int] = field(default_factory=list)
    timeline: list[tuple[float, int]] = field(default_factory=list)  # sorted (time, id)
    max_severity: Severity = Severity.INFO
    sources: Counter[str] = field(default_factory=Counter)
    signal_sources: set[str] = field(default_factory=set)
    tactics: set[str] = field(default_factory=set)
    labels: dict[str, tuple[int, float]] = field(default_factory=dict)  # label -> (sev, time)
    entity_counts: Counter[EntityRef] = field(default_factory=Counter)
    first_signal: float = 0.0
    incident: Incident | None = None
    # Identities that acted in its signals (audit requesters), for the title.
    actors: Counter[EntityRef] = field(default_factory=Counter)
    # Set for a recurring incident (rolled-up low signals).
    recurring: _Recurring | None = None


@dataclass(slots=True)
class _Recurring:
    """What a recurring incident says of its pods: a count, and a bounded list of its
    entities (per kind, the first ROLLUP_LISTED in sort order: the same whatever
    order the signals came in)."""

    key: EntityRef
    pods: dict[EntityRef, None] = field(default_factory=dict)  # up to ROLLUP_COUNTED
    more_pods: bool = False  # more distinct pods than counted
    listed: dict[str, list[EntityRef]] = field(default_factory=dict)
    changed: bool = True  # the listed entities changed since the incident took them
    # The entities of signals taken and not counted yet (see `take`).
    waiting: list[tuple[EntityRef, ...]] = field(default_factory=list)

    def take(self, ents: tuple[EntityRef, ...]) -> None:
        """A signal's entities, counted when the incident is next read (`settle`): a
        replay that makes its incidents at the end counts them all at once, in the
        order they came, which gives what counting each at once gives."""
        waiting = self.waiting
        waiting.append(ents)
        if len(waiting) >= _WAITING_MAX:
            self.settle()

    def settle(self) -> None:
        """Count the entities taken (every reader of the counts calls this first)."""
        if not self.waiting:
            return
        if len(self.waiting) == 1:  # read after every signal (incidents made as they come)
            self.add_all(self.waiting.pop())
            return
        waiting, self.waiting = self.waiting, []
        # A signal naming the same entities (one tuple per pod: parse/falco.py) as one
        # counted before adds nothing: counted, each entity is listed or ranks after
        # the last listed, and stays so.
        counted: set[int] = set()
        for ents in waiting:
            if id(ents) not in counted:
                counted.add(id(ents))
                self.add_all(ents)

    def add_all(self, ents: tuple[EntityRef, ...]) -> None:
        """Count each pod and list each entity (each kind's list kept sorted and cut at
        ROLLUP_LISTED): the loop a recurring incident runs for every low signal it
        takes."""
        pods = self.pods
        listed = self.listed
        for ent in ents:
            kind = ent[0]
            if kind == _POD and ent not in pods:
                if len(pods) < ROLLUP_COUNTED:
                    pods[ent] = None
                else:
                    self.more_pods = True
            lst = listed.get(kind)
            if lst is None:
                listed[kind] = [ent]
                self.changed = True
                continue
            if len(lst) >= ROLLUP_LISTED:
                if not ent < lst[-1]:
                    continue
            elif ent in lst:  # a short list (the nodes, the namespace): a look is enough
                continue
            pos = _bisect_left(lst, ent)
            if pos < len(lst) and lst[pos] == ent:
                continue
            lst.insert(pos, ent)
            if len(lst) > ROLLUP_LISTED:
                lst.pop()
            self.changed = True

    def merge(self, other: _Recurring) -> None:
        self.settle()
        other.settle()
        self.add_all(tuple(other.pods))
        for lst in other.listed.values():
            self.add_all(tuple(lst))
        self.more_pods = self.more_pods or other.more_pods

    def entities(self) -> tuple[EntityRef, ...]:
        """The listed entities in the order of _ENTITY_ORDER, each kind's in sort order
        (its list is kept sorted: the lists are joined, not sorted again)."""
        self.settle()
        order: dict[str, int] = _ENTITY_ORDER
        listed = self.listed
        # An entity sorts by its kind first: kinds of one rank go by their name.
        kinds = sorted(listed, key=lambda kind: (order.get(kind, 99), kind))
        return tuple(e for kind in kinds for e in listed[kind])


class _Slot:
    """What the correlator knows of one linking entity: its signals (time, id) in
    time order, and the ids of context events not yet attached, oldest first.

    A linking entity seen in one context event only (most pods of short-lived jobs)
    has no _Slot: the correlator keeps that event's id under the entity's key (see
    `Correlator._held`), and makes the _Slot on the entity's second pending event or
    first signal."""

    __slots__ = ("pending", "rolled", "signals")

    def __init__(self, pending: list[int] | None = None) -> None:
        self.signals: list[tuple[float, int]] = []
        self.pending: list[int] = [] if pending is None else pending
        # Low signals of this entity filed in a recurring incident (made on demand).
        self.rolled: list[tuple[float, int]] | None = None


_UNSEEN = _Slot()  # marker for "entity not looked at yet"
# What `Correlator._slots` holds for an entity: its _Slot; None when it does not link.
# A linking entity without a _Slot is not in it: see _HeldIds.
_SlotValue = _Slot | None
# Event ids a _HeldIds entry holds (4 bytes each); a later one makes a _Slot.
_HELD_ID_MAX = 0xFFFFFFFF


class _HeldIds:
    """The linking entities seen that have no _Slot, by key (store.entity_key): for
    each, the id of the one context event it waits with for a signal (0: none).

    Two arrays, open-addressed (linear probing, at most two thirds full): 18 to 36
    bytes an entity, where a dictionary entry, its EntityRef and the name kept for
    it cost ~250 (short-lived job pods are as many as their events). An entry is
    never removed: it also says the entity was seen (as `_slots` said with a 0)."""

    __slots__ = ("_count", "_ids", "_keys", "_mask")

    def __init__(self) -> None:
        self._keys = array("q", bytes(8 * 1024))
        self._ids = array("I", bytes(4 * 1024))
        self._mask = 1023
        self._count = 0

    def _find(self, key: int) -> int:
        """The position of `key`, or of the empty place where it would go."""
        return probe(self._keys, self._mask, key)

    def get(self, key: int) -> int | None:
        """The id held for `key` (0: none); None when the entity was never seen."""
        i = self._find(key)
        return self._ids[i] if self._keys[i] else None

    def mark(self, key: int) -> None:
        """Say the entity of `key` was seen (holding nothing for it if it is new)."""
        i = self._find(key)
        if not self._keys[i]:
            self._put(i, key, 0)

    def hold(self, key: int, event_id: int) -> int:
        """Hold `event_id` for `key` unless an id is held already: returns that id
        (0: none, `event_id` is held now)."""
        i = self._find(key)
        if not self._keys[i]:
            self._put(i, key, event_id)
            return 0
        held = self._ids[i]
        if not held:
            self._ids[i] = event_id
        return held

    def _put(self, i: int, key: int, event_id: int) -> None:
        self._keys[i] = key
        self._ids[i] = event_id
        self._count += 1
        if 3 * self._count > 2 * self._mask:
            self._grow()

    def take(self, key: int) -> int:
        """The id held for `key` (0: none), holding none from now on."""
        i = self._find(key)
        held = self._ids[i]
        self._ids[i] = 0
        return held

    def __len__(self) -> int:
        return self._count

    def _grow(self) -> None:
        old_keys, old_ids = self._keys, self._ids
        size = 2 * len(old_keys)
        mask = size - 1
        keys = array("q", bytes(8 * size))
        ids = array("I", bytes(4 * size))
        for key, held in zip(old_keys, old_ids, strict=True):
            if key:
                i = key & mask
                while keys[i]:
                    i = (i + 1) & mask
                keys[i] = key
                ids[i] = held
        self._keys, self._ids, self._mask = keys, ids, mask


@functools.lru_cache(maxsize=4096)
def incident_id(first_key: tuple[float, str, str], cluster: str = "") -> str:
    """A short id derived from the earliest signal: the same input, the same id. With
    several clusters the cluster is part of it: the same record in two is two incidents."""
    text = f"{first_key[1]}:{first_key[2]}"
    if cluster:
        text = f"{cluster}\0{text}"
    digest = blake2b(text.encode(), digest_size=4)
    return "INC-" + digest.hexdigest().upper()[:6]


class Correlator:
    """Feeds events into an EventStore and keeps incidents up to date."""

    def __init__(
        self,
        store: EventStore | None = None,
        *,
        window: float | None = None,
        config: Config | None = None,
        cluster: str = "",
    ) -> None:
        self.config = config or Config()
        self.store = store if store is not None else EventStore()
        # The cluster this correlator's events come from when several are watched
        # (one correlator each: an incident never spans clusters); "" with one.
        self.cluster = cluster
        self.window = window if window is not None else self.config.window
        self._parent: dict[int, int] = {}  # union–find over signal ids
        self._groups: dict[int, _Group] = {}  # root signal id -> group
        # Entities seen: a linking one's _Slot (strong, or a detection key) once it
        # has a signal or a second pending event, None for one that does not link.
        # A linking entity without a _Slot is in `_held` alone, by key, with the id
        # of the one context event it waits with: an entry here, with the EntityRef
        # and name it keeps alive, costs ~250 bytes, a _Slot and its lists ~250 more
        # (see `_slot_for` and `_slot_found`).
        self._slots: dict[EntityRef, _SlotValue] = {}
        self._held = _HeldIds()
        self._event_group: dict[int, int] = {}  # context event id -> a signal id of its group
        self.incidents: dict[str, Incident] = {}
        # Ids that disappeared: an incident merged into another or renamed
        # because an earlier signal arrived late. old id -> current id.
        self.renamed: dict[str, str] = {}
        # Ids of incidents that vanished: every signal they had was found to be part
        # of an expected session (see `_rebuild`). `resolve` gives None for them; an
        # id that opens again later leaves this set.
        self.closed: set[str] = set()
        self.suppressed = 0
        # Expected sessions by pod, and the runtime signals they turned into context
        # (pod -> sorted (time, event id); event id -> the session that covers it).
        self._sessions: dict[EntityRef, list[_Session]] = {}
        self._session_hidden: dict[EntityRef, list[tuple[float, int]]] = {}
        self._hidden_by: dict[int, _Session] = {}
        # Ids of our own events (actions): in timelines, but not activity.
        self._own: set[int] = set()
        # Signals filed in a recurring incident: signal id -> its roll-up key.
        self._rolled: dict[int, EntityRef] = {}
        # Learnt links: the signals naming an entity are also filed under these
        # (a pod's address -> the pod; a pod -> the service account it runs as).
        self._also: dict[EntityRef, list[EntityRef]] = {}
        self._extras_cache: dict[EntityRef, tuple[EntityRef, ...]] = {}
        # Groups whose incident is made at the end of `deferred_incidents` (by id).
        self._deferred: dict[int, _Group] | None = None

    @contextlib.contextmanager
    def deferred_incidents(self) -> Iterator[None]:
        """Incidents are made once, when the block ends, not once per event: for a
        reader that looks at none before then (a report of a replay). An incident is
        made from its group's state alone, so the end result is the same; only
        `renamed`, `closed`, `revision` and `escalated` (what a watcher of the
        changes reads) do not tell the story in between."""
        if self._deferred is not None:
            yield  # nested: the outer block makes them
            return
        self._deferred = {}
        try:
            yield
        finally:
            dirty, self._deferred = self._deferred, None
            for group in list(self._groups.values()):
                if id(group) in dirty:
                    self._refresh(group)

    # ---- union–find -------------------------------------------------------

    def _find(self, sid: int) -> int:
        parent = self._parent
        root = sid
        while parent[root] != root:
            root = parent[root]
        while parent[sid] != root:
            parent[sid], sid = root, parent[sid]
        return root

    def _union(self, a: int, b: int) -> int:
        ra, rb = self._find(a), self._find(b)
        if ra == rb:
            return ra
        ga, gb = self._groups[ra], self._groups[rb]
        if len(ga.timeline) < len(gb.timeline):
            ra, rb, ga, gb = rb, ra, gb, ga
        self._parent[rb] = ra
        del self._groups[rb]
        ga.signal_ids.extend(gb.signal_ids)
        _merge_into(ga.timeline, gb.timeline)
        ga.max_severity = max(ga.max_severity, gb.max_severity)
        ga.sources.update(gb.sources)
        ga.signal_sources |= gb.signal_sources
        ga.tactics |= gb.tactics
        for label, (sev, t) in gb.labels.items():
            if label not in ga.labels or (-sev, t) < (-ga.labels[label][0], ga.labels[label][1]):
                ga.labels[label] = (sev, t)
        ga.entity_counts.update(gb.entity_counts)
        ga.actors.update(gb.actors)
        if gb.recurring is not None:
            if ga.recurring is None:
                ga.recurring = gb.recurring
            else:
                ga.recurring.merge(gb.recurring)
            ga.recurring.changed = True
        # The merged incident keeps the earlier one's identity; the other id is
        # recorded as renamed so the UI can follow it.
        keep, loser = ga.incident, gb.incident
        if gb.first_key < ga.first_key:
            ga.first_key = gb.first_key
            ga.first_signal = gb.first_signal
            keep, loser = gb.incident, ga.incident
        if keep is None:
            keep, loser = loser, None
        ga.incident = keep
        if loser is not None and keep is not None:
            self.incidents.pop(loser.id, None)
            self.renamed[loser.id] = keep.id
        return ra

    # ---- feeding -----------------------------------------------------------

    def add(self, event: Event) -> set[str]:
        """Store one event; returns the ids of incidents opened, changed or closed
        (a closed id is in `closed` and resolves to None)."""
        out = self._add_stored(event)
        return set() if out is None else out

    def add_many(self, events: Iterable[Event], stored: list[Event]) -> set[str]:
        """`add` for each event, in order: the ids of the incidents they changed; the
        events stored are appended to `stored` as they are (a duplicate, or one a
        full store refused, is not), so that an error midway loses none of them.

        The live sources' path: a page of 500 pods brings 1,000 context events (each
        pod's address and service account). A context event with no suppression
        rule to ask is stored and attached here without `add`'s other checks."""
        changed: set[str] = set()
        keep = stored.append
        store_add = self.store.add
        cluster = self.cluster
        add_context = self._add_context
        learn = self._learn
        plain = not self.config.suppressions
        for event in events:
            if plain and not event.signal:
                if store_add(event, cluster) is None:
                    continue
                out = add_context(event)
                if event.kind in FACT_KINDS:
                    out |= learn(event)
            else:
                found = self._add_stored(event)
                if found is None:
                    continue
                out = found
            keep(event)
            if out:
                changed |= out
        return changed

    def _add_stored(self, event: Event) -> set[str] | None:
        """`add`, or None when the event was not stored."""
        if self.store.add(event, self.cluster) is None:
            return None
        changed: set[str] | None = None
        if self.config.suppressions:
            rule = self.config.suppression_for(event)
            if rule is not None:
                was_signal = event.signal
                event.suppressed_by = rule.describe()
                event.signal = False
                self.suppressed += 1
                if was_signal and event.source == "audit" and event.kind in SESSION_KINDS:
                    changed = self._open_session(event, rule)
        if self._sessions and event.signal and event.source in RUNTIME_SOURCES:
            self._session_check(event)
        if event.signal:
            out = self._add_signal(event)
        else:
            out = self._add_context(event)
            if event.kind in FACT_KINDS:
                out |= self._learn(event)
        if changed:
            out |= changed
        return out

    # ---- expected sessions ------------------------------------------------------

    def _open_session(self, ev: Event, rule: Suppression) -> set[str]:
        """Register the session a suppressed exec/attach/port-forward opens, and turn
        the runtime signals it covers that are already here into context."""
        pod = ev.first(EntityKind.POD)
        if pod is None or rule.session <= 0 or ev.severity <= Severity.LOW:
            # No pod, sessions off, or a denied request (detections mark those LOW):
            # no session was opened.
            return set()
        who = next(
            (e.name for e in ev.entities if e.kind == EntityKind.USER),
            next(
                (
                    f"system:serviceaccount:{e.namespace}:{e.name}"
                    for e in ev.entities
                    if e.kind == EntityKind.SERVICE_ACCOUNT
                ),
                "(unknown user)",
            ),
        )
        session = _Session(
            start=ev.time - SESSION_LEAD,
            end=ev.time + rule.session,
            order=(ev.time, ev.ref),
            text=f"during the expected {SESSION_KINDS[ev.kind]} by {who} ({rule.describe()})",
        )
        sessions = self._sessions.setdefault(pod, [])
        sessions.append(session)
        sessions.sort(key=lambda s: s.order)
        # Signals covered by an earlier-known session take the earliest session's text,
        # as they would have had the sessions arrived in order.
        hidden = self._session_hidden.get(pod)
        if hidden:
            lo = _bisect_left(hidden, (session.start, 0))
            hi = bisect.bisect_right(hidden, (session.end, float("inf")))
            for _, eid in hidden[lo:hi]:
                if session.order < self._hidden_by[eid].order:
                    self._hide(self.store.get(eid), pod, session, record=False)
        slot = self._slot_found(pod)
        if slot is None or not (slot.signals or slot.rolled):
            return set()
        found: list[int] = []
        # Its ordinary signals, and its low ones filed in a recurring incident.
        for lst in (slot.signals, slot.rolled or []):
            lo = _bisect_left(lst, (session.start, 0))
            hi = bisect.bisect_right(lst, (session.end, float("inf")))
            found.extend(sid for _, sid in lst[lo:hi])
        roots: dict[int, None] = {}
        get = self.store.get
        for sid in found:
            sig = get(sid)
            if session_covers(sig):
                sig.signal = False
                self.suppressed += 1
                self._hide(sig, pod, session)
                roots[self._find(sid)] = None
        changed: set[str] = set()
        for root in roots:
            changed |= self._rebuild(root)
        return changed

    def _session_check(self, ev: Event) -> None:
        """Turn a runtime signal into context when an expected session covers it."""
        if not session_covers(ev):
            return
        for ent in ev.entities:
            if ent.kind != EntityKind.POD:
                continue
            sessions = self._sessions.get(ent)
            if not sessions:
                continue
            t = ev.time
            for session in sessions:  # earliest first
                if session.start <= t <= session.end:
                    ev.signal = False
                    self.suppressed += 1
                    self._hide(ev, ent, session)
                    return

    def _hide(self, ev: Event, pod: EntityRef, session: _Session, *, record: bool = True) -> None:
        ev.suppressed_by = session.text
        self._hidden_by[ev.id] = session
        if record:
            bisect.insort(self._session_hidden.setdefault(pod, []), (ev.time, ev.id))

    def _keys(self, ev: Event) -> list[EntityRef]:
        """Where a signal is filed: its roll-up key, or its linking entities."""
        key = self._rolled.get(ev.id)
        return [key] if key is not None else self._signal_keys(ev)

    def _rebuild(self, root: int, *, promote: set[int] | frozenset[int] = frozenset()) -> set[str]:
        """Recompute one component from its events after some of its signals became
        context: its remaining signals are linked again (they may fall apart into
        several incidents, or none), and its context attaches anew.

        The incident keeps its id and object when its earliest remaining signal is
        the same; otherwise the old id is renamed to the incident of the earliest
        remaining signal, or, with no signal left, closed. Signals in `promote` leave
        their recurring incident and are linked as ordinary signals."""
        old = self._groups.pop(root)
        old_inc = old.incident
        get = self.store.get
        window = self.window
        keep: list[Event] = []
        promoted: list[Event] = []
        for sid in old.signal_ids:
            ev = get(sid)
            for ent in self._keys(ev):
                found = self._slot_found(ent)
                if found is None:
                    continue
                lst = found.signals
                pos = _bisect_left(lst, (ev.time, sid))
                if pos < len(lst) and lst[pos][1] == sid:
                    del lst[pos]
            del self._parent[sid]
            if sid in self._rolled and (sid in promote or not ev.signal):
                self._unroll(ev)
                if ev.signal:
                    promoted.append(ev)
            if ev.signal:
                keep.append(ev)
        signal_ids = set(old.signal_ids)
        context = [get(eid) for _, eid in old.timeline if eid not in signal_ids]
        for ev in context:
            self._event_group.pop(ev.id, None)
        if old_inc is not None:
            self.incidents.pop(old_inc.id, None)
        # Link the remaining signals again, in time order: no incident is made yet.
        keep.sort(key=lambda e: (e.time, e.source, e.ref))
        for ev in keep:
            sid = ev.id
            self._parent[sid] = sid
            group = _Group(first_key=(ev.time, ev.source, ev.ref), first_signal=ev.time)
            self._groups[sid] = group
            self._absorb(group, ev, signal=True)
            root_id = sid
            for ent in self._keys(ev):
                slot = self._slot_for(ent)
                lst = slot.signals
                item = (ev.time, sid)
                pos = bisect.bisect_left(lst, item)
                for neighbour in (pos - 1, pos):
                    if 0 <= neighbour < len(lst) and abs(lst[neighbour][0] - ev.time) <= window:
                        root_id = self._union(root_id, lst[neighbour][1])
                lst.insert(pos, item)
        groups: dict[int, _Group] = {}
        for ev in keep:
            r = self._find(ev.id)
            groups[r] = self._groups[r]
        changed: set[str] = set()
        successor = ""
        for group in sorted(groups.values(), key=lambda g: g.first_key):
            if old_inc is not None and incident_id(group.first_key, self.cluster) == old_inc.id:
                # The earliest signal is the same: the incident keeps its object (a
                # group it joined meanwhile gives up its own, renamed to this one).
                joined = group.incident
                if joined is not None and joined is not old_inc:
                    self.incidents.pop(joined.id, None)
                    self.renamed[joined.id] = old_inc.id
                group.incident = old_inc
            changed |= self._refresh(group)
            if not successor and group.incident is not None:
                successor = group.incident.id
        # Context (and the demoted signals, now context) attaches anew, in time order;
        # our own actions stay with the incident that followed theirs.
        for ev in sorted(context + [e for e in map(get, old.signal_ids) if not e.signal],
                         key=lambda e: (e.time, e.id)):  # fmt: skip
            if ev.incident_hint and old_inc is not None:
                inc = self.resolve(successor) if successor else None
                if inc is not None:
                    for group in groups.values():
                        if group.incident is inc:
                            self._event_group[ev.id] = group.signal_ids[0]
                            self._absorb(group, ev, signal=False)
                continue
            changed |= self._add_context(ev)
        for ev in promoted:
            # Context of the pod, kept for a signal to come: this is one now.
            self._attach_pending(self._groups[self._find(ev.id)], ev)
        for group in groups.values():
            inc = group.incident
            escalated = inc is not None and inc.escalated
            changed |= self._refresh(group, context_only=True)
            if inc is not None:
                # Rebuilt to take promoted signals in: a rise in severity stays said.
                inc.escalated = escalated
        if old_inc is not None and old_inc.id not in self.incidents:
            if successor:
                self.renamed[old_inc.id] = successor
            else:
                self.closed.add(old_inc.id)
                self.renamed.pop(old_inc.id, None)
            changed.add(old_inc.id)
        return changed

    def _slot_for(self, ent: EntityRef) -> _Slot:
        """The _Slot of an entity a signal is filed under, made if need be (taking the
        id of the one context event it held, if any)."""
        found = self._slots.get(ent)
        if type(found) is _Slot:
            return found
        held = self._held.take(entity_key(ent)) if self._held else 0
        slot = self._slots[ent] = _Slot([held] if held else None)
        return slot

    def _slot_found(self, ent: EntityRef) -> _Slot | None:
        """The _Slot of an entity if it has one (one that only waits with one context
        event has no signals, no roll-up: nothing a reader of a _Slot looks for)."""
        found = self._slots.get(ent)
        return found if type(found) is _Slot else None

    def _add_signal(self, ev: Event) -> set[str]:
        key = _rollup_key(ev)
        if key is not None:
            linking = self._linking(ev)
            if not self._near_ordinary(ev, linking):
                return self._add_linked(ev, [key], rolled=key, linking=linking)
        changed = self._add_linked(ev, self._signal_keys(ev))
        if self._rolled:
            changed |= self._promote_around(ev)
        return changed

    def _add_linked(
        self,
        ev: Event,
        keys: list[EntityRef],
        rolled: EntityRef | None = None,
        linking: list[EntityRef] | None = None,
    ) -> set[str]:
        """File a signal under `keys` and join the components of its neighbours
        (`linking`: its linking entities, when the caller has them already)."""
        sid = ev.id
        t = ev.time
        item = (t, sid)
        window = self.window
        # The signals next to this one (in time, per linking entity) within the
        # window: their components and this signal become one.
        neighbours: list[int] = []
        for ent in keys:
            slot = self._slot_for(ent)
            lst = slot.signals
            if lst and lst[-1] < item:
                # After every signal filed here (signals mostly come in time order).
                if t - lst[-1][0] <= window:
                    neighbours.append(lst[-1][1])
                lst.append(item)
                continue
            pos = _bisect_left(lst, item)
            if pos < len(lst) and lst[pos][1] == sid:
                continue  # an entity named twice
            if pos and t - lst[pos - 1][0] <= window:
                neighbours.append(lst[pos - 1][1])
            if pos < len(lst) and lst[pos][0] - t <= window:
                neighbours.append(lst[pos][1])
            lst.insert(pos, item)
        if rolled is not None:
            assert linking is not None  # _add_signal passes both
            self._roll(ev, rolled, linking, item)
        if neighbours:
            # Joins an existing component directly (most signals do): cheaper than
            # a component of its own merged at once.
            root = self._find(neighbours[0])
            for other in neighbours[1:]:
                root = self._union(root, other)
            self._parent[sid] = root
            group = self._groups[root]
            if t <= group.first_key[0]:
                first_key = (t, ev.source, ev.ref)
                if first_key < group.first_key:
                    # The incident's id follows its earliest signal: _refresh renames it.
                    group.first_key = first_key
                    group.first_signal = t
        else:
            self._parent[sid] = sid
            group = self._groups[sid] = _Group(first_key=(t, ev.source, ev.ref), first_signal=t)
        self._absorb(group, ev, signal=True, rolled=rolled, item=item)
        if rolled is None:
            self._attach_pending(group, ev)
        return self._refresh(group)

    # ---- learnt links -----------------------------------------------------------

    def _linking(self, ev: Event) -> list[EntityRef]:
        """The entities an event links through, with what they were learnt to be."""
        base = _linking(ev)
        also = self._also
        if not also or not any(e in also for e in base):
            return base
        out = list(base)
        for ent in base:
            if ent in also:
                out.extend(x for x in self._extras(ent) if x not in out)
        return out

    def _extras(self, ent: EntityRef) -> tuple[EntityRef, ...]:
        """What `ent` was learnt to stand with, transitively (cached until the next
        link is learnt)."""
        found = self._extras_cache.get(ent)
        if found is None:
            found = self._extras_cache[ent] = tuple(_closure([ent], self._also)[1:])
        return found

    def _signal_keys(self, ev: Event) -> list[EntityRef]:
        """The entities a signal is filed under: its linking ones, else a detection key."""
        return self._linking(ev) or [_fallback_key(ev)]

    def _learn(self, ev: Event) -> set[str]:
        """A fact event: a pod's address, or the service account a pod runs as."""
        pod = ev.first(EntityKind.POD)
        if pod is None or not pod.strong:
            return set()
        if ev.kind == POD_ADDRESS_KIND:
            ip = ev.first(EntityKind.IP)
            if ip is None or not ip.strong:
                return set()
            return self._alias(ip, pod)
        account = ev.first(EntityKind.SERVICE_ACCOUNT)
        if account is None or not account.strong or account.name in SHARED_ACCOUNTS:
            return set()
        return self._alias(pod, account)

    def _alias(self, src: EntityRef, dst: EntityRef) -> set[str]:
        """From now on, and for what is already here: the signals filed under `src`
        are filed under `dst` too (as if they had named it from the start, so the
        order of arrival does not matter)."""
        targets = self._also.setdefault(src, [])
        if dst in targets or len(targets) >= MAX_LEARNT_PER_ENTITY or dst == src:
            return set()
        targets.append(dst)
        self._extras_cache.clear()
        slot = self._slot_found(src)
        if slot is None or not (slot.signals or slot.rolled):
            return set()
        get = self.store.get
        window = self.window
        filed: list[Event] = []
        roots: dict[int, None] = {}
        keys = _closure([dst], self._also)
        for _, sid in list(slot.signals):
            ev = get(sid)
            item = (ev.time, sid)
            root = self._find(sid)
            for key in keys:
                target = self._slot_for(key)
                lst = target.signals
                pos = _bisect_left(lst, item)
                if pos < len(lst) and lst[pos][1] == sid:
                    continue
                for n in (pos - 1, pos):
                    if 0 <= n < len(lst) and abs(lst[n][0] - ev.time) <= window:
                        root = self._union(root, lst[n][1])
                lst.insert(pos, item)
            roots[root] = None
            filed.append(ev)
        for item in list(slot.rolled or ()):
            for key in keys:
                target = self._slot_for(key)
                if target.rolled is None:
                    target.rolled = []
                pos = _bisect_left(target.rolled, item)
                if pos == len(target.rolled) or target.rolled[pos] != item:
                    target.rolled.insert(pos, item)
        changed: set[str] = set()
        for root in {self._find(r): None for r in roots}:
            changed |= self._refresh(self._groups[root])
        for ev in filed:
            self._attach_pending(self._groups[self._find(ev.id)], ev)
            if self._rolled:
                changed |= self._promote_around(ev)
        return changed

    # ---- recurring low signals --------------------------------------------------

    def _roll(
        self,
        ev: Event,
        key: EntityRef,
        linking: list[EntityRef],
        item: tuple[float, int],
    ) -> None:
        """Remember a low signal filed in a recurring incident under its own pods and
        containers (`linking`), where a stronger signal finds it; `item` is its
        (time, id)."""
        self._rolled[ev.id] = key
        for ent in linking:
            slot = self._slot_for(ent)
            rolled = slot.rolled
            if rolled is None:
                slot.rolled = [item]
            elif rolled[-1] < item:
                rolled.append(item)
            else:
                bisect.insort(rolled, item)

    def _unroll(self, ev: Event) -> None:
        """Forget a signal's place in a recurring incident (promoted or demoted)."""
        if self._rolled.pop(ev.id, None) is None:
            return
        item = (ev.time, ev.id)
        for ent in self._linking(ev):
            slot = self._slot_found(ent)
            if slot is None or not slot.rolled:
                continue
            pos = _bisect_left(slot.rolled, item)
            if pos < len(slot.rolled) and slot.rolled[pos] == item:
                del slot.rolled[pos]

    def _near_ordinary(self, ev: Event, linking: list[EntityRef]) -> bool:
        """Whether an ordinary signal shares one of `ev`'s linking entities (`linking`)
        within the window."""
        t = ev.time
        window = self.window
        slots = self._slots
        for ent in linking:
            slot = slots.get(ent)
            if type(slot) is not _Slot or not slot.signals:
                continue
            lst = slot.signals
            pos = _bisect_left(lst, (t, 0))
            if pos < len(lst) and lst[pos][0] - t <= window:
                return True
            if pos and t - lst[pos - 1][0] <= window:
                return True
        return False

    def _promote_around(self, ev: Event) -> set[str]:
        """Low signals of a recurring incident that an ordinary signal concerns (same
        pod or container, within the window) leave it and join the ordinary incident;
        so do, in turn, those near them."""
        window = self.window
        slots = self._slots
        get = self.store.get
        promote: dict[int, None] = {}
        work = [ev]
        while work:
            e = work.pop()
            t = e.time
            for ent in self._linking(e):
                slot = slots.get(ent)
                if type(slot) is not _Slot or not slot.rolled:
                    continue
                lst = slot.rolled
                lo = _bisect_left(lst, (t - window, 0))
                hi = _bisect_right(lst, (t + window, float("inf")))
                for _, sid in lst[lo:hi]:
                    if sid not in promote:
                        promote[sid] = None
                        work.append(get(sid))
        if not promote:
            return set()
        roots: dict[int, None] = {self._find(sid): None for sid in promote}
        changed: set[str] = set()
        for root in roots:
            changed |= self._rebuild(root, promote=set(promote))
        return changed

    def _add_context(self, ev: Event) -> set[str]:
        """Attach to the incident of the nearest signal sharing a linking entity within
        the window; else remember the event for a signal still to come. This runs for
        almost every event, so it is one look-up per entity and a few list operations."""
        if ev.kind == OWN_REQUEST_KIND:
            return set()  # our own API calls: the action events tell that story
        slots = self._slots
        held_ids = self._held
        linked: list[_Slot] = []
        # Linking entities without a _Slot (in `_held`): no signals to look at.
        lone: list[EntityRef] = []
        ents = ev.entities
        # The addresses a control-plane identity calls from are nodes' (shared by
        # everything they run): they never link (see _linking).
        no_ips = False
        if ents and ev.source == "audit":
            known = _NO_LINK_REQUESTER.get(ents[0])
            no_ips = _no_link_requester(ents[0]) if known is None else known
        also = self._also
        for ent in ents:
            slot = slots.get(ent, _UNSEEN)
            if slot is _UNSEEN:
                if not ent.strong:
                    slots[ent] = None
                    continue
                held_ids.mark(hash(ent) or 1)  # seen (entity_key, inlined)
                slot = None
            elif slot is None:
                continue
            if no_ips and ent.kind == "IP":
                continue
            if slot is None:
                lone.append(ent)
            else:
                linked.append(slot)
            if also and ent in also:
                # What this entity was learnt to stand with (its pod, its account):
                # those seen already.
                for extra in self._extras(ent):
                    found = slots.get(extra, _UNSEEN)
                    if found is _UNSEEN:
                        if held_ids.get(entity_key(extra)) is not None:
                            lone.append(extra)
                    elif found is not None:
                        linked.append(found)
        if not linked and not lone and ev.kind == "oomkilled" and ev.source == "kube":
            linked = self._process_slots(ev)
        if not linked and not lone:
            return set()
        best_gap = self.window
        best_sid = 0
        t = ev.time
        for slot in linked:
            lst = slot.signals
            if lst:
                pos = _bisect_left(lst, (t, 0))
                if pos < len(lst):
                    gap = lst[pos][0] - t
                    if gap <= best_gap:
                        best_gap, best_sid = gap, lst[pos][1]
                if pos:
                    gap = t - lst[pos - 1][0]
                    if gap <= best_gap:
                        best_gap, best_sid = gap, lst[pos - 1][1]
        if not best_sid:
            eid = ev.id
            for slot in linked:
                pend = slot.pending
                pend.append(eid)
                if len(pend) > _PENDING_TRIM:
                    del pend[:-PENDING_PER_ENTITY]
            for ent in lone:
                # Its first pending event is held by id; a second makes its _Slot
                # (looked up again: an entity named twice has just made it).
                found = slots.get(ent)
                if found is not None:
                    found.pending.append(eid)
                    continue
                key = hash(ent) or 1  # entity_key, inlined
                if eid > _HELD_ID_MAX:
                    held = held_ids.take(key)
                    slots[ent] = _Slot([held, eid] if held else [eid])
                    continue
                held = held_ids.hold(key, eid)
                if held and held != eid:  # (equal: an entity named twice)
                    held_ids.take(key)
                    slots[ent] = _Slot([held, eid])
            return set()
        # Attach: _absorb and the context-only _refresh, inlined.
        group = self._groups[self._find(best_sid)]
        eid = ev.id
        self._event_group[eid] = best_sid
        timeline = group.timeline
        if t >= timeline[-1][0]:
            timeline.append((t, eid))
        else:
            bisect.insort(timeline, (t, eid))
        source = ev.source
        sources = group.sources
        count = sources[source] = sources.get(source, 0) + 1
        inc = group.incident
        if inc is None:
            return self._refresh(group)
        inc.first_seen = timeline[0][0]
        inc.last_seen = self._last_observed(timeline) if self._own else timeline[-1][0]
        inc.timeline = timeline
        inc.counts_by_source[source] = count
        inc.revision += 1
        inc.escalated = False
        return {inc.id}

    def _process_slots(self, ev: Event) -> list[_Slot]:
        """A node's OOM kill report names a process, not a pod. Nodes stay weak: the
        report joins only an incident on that node whose pods ran that process (seen
        by Tetragon or Falco), as context, through those pods."""
        node = ev.first(EntityKind.NODE)
        proc = killed_process(ev.summary)
        if node is None or proc is None:
            return []
        named = re.compile(rf"(?:^|[\s/(=]){re.escape(proc[1])}(?:$|[\s):])")
        found: list[_Slot] = []
        for inc in self.incidents.values():
            if node not in inc.entities:
                continue
            for other in self.events_of(inc.id)[-_PROCESS_SCAN:]:
                pod = other.first(EntityKind.POD)
                if other.source not in ("tetragon", "falco") or pod is None:
                    continue
                slot = self._slot_found(pod)
                if slot is None or any(slot is f for f in found):
                    continue
                if named.search(other.summary[:500]):
                    found.append(slot)
        return found

    def _attach_pending(self, group: _Group, signal: Event) -> None:
        """Context that arrived before this signal joins its incident now."""
        get = self.store.get
        slots = self._slots
        for ent in self._linking(signal):
            found = slots.get(ent)
            if found is None and self._held.get(entity_key(ent)):
                # One pending event held in place of a _Slot: make the _Slot (the
                # entity's signals are filed by now, so this is rare).
                found = self._slot_for(ent)
            if found is None or not found.pending:
                continue
            slot = found
            keep: list[int] = []
            for eid in slot.pending:
                if eid in self._event_group:
                    continue
                ev = get(eid)
                if abs(ev.time - signal.time) <= self.window:
                    self._event_group[eid] = signal.id
                    self._absorb(group, ev, signal=False)
                else:
                    keep.append(eid)
            slot.pending = keep

    def _absorb(
        self,
        group: _Group,
        ev: Event,
        *,
        signal: bool,
        rolled: EntityRef | None = None,
        item: tuple[float, int] | None = None,
    ) -> None:
        """Take an event into a group's aggregates (`rolled`: the roll-up key of a
        signal just filed in a recurring incident; `item`: its (time, id), shared
        with the lists it is filed in; when the caller has them)."""
        t = ev.time
        eid = ev.id
        if item is None:
            item = (t, eid)
        timeline = group.timeline
        if not timeline or item >= timeline[-1]:
            timeline.append(item)
        else:
            bisect.insort(timeline, item)
        source = ev.source
        group.sources[source] += 1
        if not signal:
            return
        group.signal_ids.append(eid)
        severity = ev.severity
        if severity > group.max_severity:
            group.max_severity = severity
        if source in OBSERVING_SOURCES:
            group.signal_sources.add(source)
        attack = ev.attack
        if attack is not None:
            group.tactics.add(attack.tactic)
        label = ev.label
        if label:
            labels = group.labels
            old = labels.get(label)
            # The most severe, then earliest, signal of a label gives its place.
            if old is None or severity > old[0] or (severity == old[0] and t < old[1]):
                labels[label] = (int(severity), t)
        ents = ev.entities
        if source == "audit" or source == "falco":
            actor = _actor(ev)
            if actor is not None:
                group.actors[actor] += 1
        key = rolled if rolled is not None else self._rolled.get(eid) if self._rolled else None
        if key is None:
            counts = group.entity_counts
            for ent in ents:
                counts[ent] += 1
            return
        # A recurring incident: every pod counted, a few entities listed.
        rec = group.recurring
        if rec is None:
            rec = group.recurring = _Recurring(key)
        rec.take(ents)

    # ---- incidents ---------------------------------------------------------

    def _refresh(self, group: _Group, *, context_only: bool = False, source: str = "") -> set[str]:
        if self._deferred is not None:
            self._deferred[id(group)] = group
            return set()
        inc = group.incident
        timeline = group.timeline
        first_time = timeline[0][0]
        last_time = self._last_observed(timeline) if self._own else timeline[-1][0]
        if inc is not None and context_only:
            inc.first_seen, inc.last_seen = first_time, last_time
            inc.timeline = timeline
            if source:
                # One context event: only its source's count changed.
                inc.counts_by_source[source] = group.sources[source]
            else:
                inc.counts_by_source = dict(group.sources)
            inc.revision += 1
            inc.escalated = False
            return {inc.id}
        severity = score(group.max_severity, group.signal_sources, group.tactics)
        new_id = incident_id(group.first_key, self.cluster)
        if inc is None:
            inc = Incident(
                id=new_id,
                severity=severity,
                title="",
                first_seen=first_time,
                last_seen=last_time,
                first_signal=group.first_signal,
                tactics=(),
                entities=(),
                cluster=self.cluster,
            )
            group.incident = inc
        elif inc.id != new_id:
            self.incidents.pop(inc.id, None)
            self.renamed[inc.id] = new_id
            inc.id = new_id
        inc.escalated = inc.revision > 0 and severity > inc.severity
        inc.severity = severity
        inc.first_seen, inc.last_seen = first_time, last_time
        inc.first_signal = group.first_signal
        inc.tactics = tuple(sorted(group.tactics, key=tactic_rank))
        rec = group.recurring
        if rec is None:
            inc.entities = _ranked_entities(group.entity_counts)
        else:
            rec.settle()  # the entities it took count before `changed` is read
            if rec.changed or not inc.entities:
                inc.entities = rec.entities()
                rec.changed = False
        if group.recurring is not None and len(group.recurring.pods) > 1:
            inc.title = recurring_title(group.labels, group.recurring, len(group.signal_ids))
        else:
            inc.title = make_title(group.labels, inc.entities, _main_actor(group.actors))
        inc.timeline = group.timeline
        inc.signal_count = len(group.signal_ids)
        inc.counts_by_source = dict(group.sources)
        inc.revision += 1
        self.incidents[inc.id] = inc
        self.renamed.pop(inc.id, None)
        if self.closed:
            self.closed.discard(inc.id)
        return {inc.id}

    def _last_observed(self, timeline: list[tuple[float, int]]) -> float:
        """The time of the latest event in a timeline that is not one of ours."""
        own = self._own
        for t, eid in reversed(timeline):
            if eid not in own:
                return t
        return timeline[-1][0]

    def resolve(self, incident_id: str) -> Incident | None:
        """The incident now holding `incident_id` (following merges and renames)."""
        seen = set()
        while incident_id in self.renamed and incident_id not in seen:
            seen.add(incident_id)
            incident_id = self.renamed[incident_id]
        return self.incidents.get(incident_id)

    def incident_of_event(self, event_id: int) -> Incident | None:
        sid = event_id if event_id in self._parent else self._event_group.get(event_id)
        if sid is None:
            return None
        return self._groups[self._find(sid)].incident

    def events_of(self, incident_id: str) -> list[Event]:
        inc = self.resolve(incident_id)
        if inc is None:
            return []
        get = self.store.get
        timeline = inc.timeline
        events = [get(eid) for _, eid in timeline]
        # Events of the same instant in an order of their own, not of arrival: a
        # report is the same however its input was read (a focused replay reads
        # context after signals). The timeline is in time order: only when two
        # events share an instant is there anything to sort.
        if len(set(map(_first, timeline))) < len(timeline):
            events.sort(key=_report_order)
        return events

    def attach(self, incident_id: str, event: Event) -> set[str]:
        """Store an event of our own (an action) in a given incident's timeline. It
        does not count as activity: the incident's last_seen (its age) stays with
        what was observed."""
        inc = self.resolve(incident_id)
        event.incident_hint = inc.id if inc else incident_id
        if self.store.add(event, self.cluster) is None or inc is None:
            return set()
        self._own.add(event.id)
        for group in self._groups.values():
            if group.incident is inc:
                root = self._find(group.signal_ids[0])
                self._event_group[event.id] = root
                self._absorb(group, event, signal=False)
                return self._refresh(group, context_only=True)
        return set()

    def signal_entities(self) -> list[EntityRef]:
        """Every entity that links at least one signal: all that context can join."""
        return [ent for ent, slot in self._slots.items() if type(slot) is _Slot and slot.signals]

    def sorted_incidents(self) -> list[Incident]:
        """Most severe first, then most recent."""
        return sorted(self.incidents.values(), key=lambda i: (-i.severity, -i.last_seen, i.id))


def _report_order(ev: Event) -> tuple[float, str, str]:
    return (ev.time, ev.source, ev.ref)


_first = operator.itemgetter(0)


def _closure(base: list[EntityRef], also: dict[EntityRef, list[EntityRef]]) -> list[EntityRef]:
    """`base` and every entity learnt to stand with one of them, transitively."""
    out = list(base)
    seen = set(base)
    i = 0
    while i < len(out):
        for extra in also.get(out[i], ()):
            if extra not in seen:
                seen.add(extra)
                out.append(extra)
        i += 1
    return out


_SYSTEM_KINDS = (EntityKind.USER, EntityKind.SERVICE_ACCOUNT)


def _system_requester(first: EntityRef) -> bool:
    """Whether an audit event's first entity (its requester) is a control-plane
    identity: one that never links."""
    found = _NO_LINK_REQUESTER.get(first)
    return _no_link_requester(first) if found is None else found


# Entity -> whether, as an audit event's first entity, it is a control-plane
# requester (looked up for every audit event).
_NO_LINK_REQUESTER: dict[EntityRef, bool] = {}


def _no_link_requester(first: EntityRef) -> bool:
    if len(_NO_LINK_REQUESTER) > 100_000:
        _NO_LINK_REQUESTER.clear()
    found = _NO_LINK_REQUESTER[first] = first.kind in _SYSTEM_KINDS and not first.strong
    return found


def _linking(ev: Event) -> list[EntityRef]:
    """The entities through which an event links: its strong ones, but not the
    source addresses of a control-plane identity's requests (node addresses: the
    controllers, scheduler and kubelets call from them, and so does every
    host-network pod)."""
    ents = ev.entities
    if ev.source == "audit" and ents and _system_requester(ents[0]):
        return [e for e in ents if e.strong and e.kind != EntityKind.IP]
    return [e for e in ents if e.strong]


def _actor(ev: Event) -> EntityRef | None:
    """The identity that made an audit request (its first user or service account;
    parse/audit.py puts the requester first, Falco's k8saudit events name the
    user before any service account they target)."""
    if ev.source not in ("audit", "falco"):
        return None
    for e in ev.entities:
        if e[0] in _ACTOR_KINDS:
            return e
    return None


# _SYSTEM_KINDS as a set of their plain strings (equal, and hashing alike).
_ACTOR_KINDS = frozenset(str(kind.value) for kind in _SYSTEM_KINDS)


def _main_actor(actors: Counter[EntityRef]) -> EntityRef | None:
    """The identity a title names: a person or workload account before a system
    one, then the one that acted most."""
    if not actors:
        return None
    return min(actors, key=lambda e: (not e.strong, -actors[e], e))


def _rollup_key(ev: Event) -> EntityRef | None:
    """The recurring incident a low signal may join: one per rule and namespace,
    for signals about a pod (runtime alerts and pod faults)."""
    if ev.severity != _LOW or ev.source not in ROLLUP_SOURCES:
        return None
    for pod in ev.entities:
        if pod[0] == _POD:
            break
    else:
        return None
    if not pod.namespace:
        return None
    parts = (pod.namespace, ev.source, ev.kind, ev.label)
    key = _ROLLUP_KEYS.get(parts)
    if key is None:
        if len(_ROLLUP_KEYS) >= _ROLLUP_KEYS_MAX:
            _ROLLUP_KEYS.clear()
        key = _ROLLUP_KEYS[parts] = EntityRef(
            ROLLUP_KIND, pod.namespace, f"{ev.source}:{ev.kind}:{ev.label}"
        )
    return key


# (namespace, source, kind, label) -> its roll-up key: one object for every low
# signal of a rule in a namespace. Bounded: a hostile stream may name a new rule in
# every alert.
_ROLLUP_KEYS: dict[tuple[str, str, str, str], EntityRef] = {}
_ROLLUP_KEYS_MAX = 10_000


def _fallback_key(ev: Event) -> EntityRef:
    """A signal with no strong entity (a host-level Falco alert) links only to
    repeats of the same detection on the same node or namespace."""
    scope = ev.first(EntityKind.NODE) or ev.first(EntityKind.NAMESPACE)
    return EntityRef("Detection", scope.name if scope else "", ev.label or ev.kind)


def score(base: Severity, signal_sources: set[str], tactics: set[str]) -> Severity:
    """Highest severity, raised by corroboration and by ATT&CK progression.

    Low-grade signals (debug/informational alerts, expected noise) are never
    raised: several weak hints do not make an attack.
    """
    if base < Severity.MEDIUM:
        return base
    steps = 0
    if len(signal_sources) >= 2:
        steps += 1
    if len(tactics) >= 3:
        steps += 1
    return base.raised(steps)


_TITLE_KINDS = (EntityKind.POD, EntityKind.SERVICE_ACCOUNT, EntityKind.USER, EntityKind.NODE)


_ENTITY_ORDER: dict[str, int] = {
    k: i
    for i, k in enumerate(
        (
            EntityKind.POD,
            EntityKind.SERVICE_ACCOUNT,
            EntityKind.USER,
            EntityKind.IP,
            EntityKind.CONTAINER,
            EntityKind.NODE,
            EntityKind.IMAGE,
            EntityKind.NAMESPACE,
        )
    )
}


def _ranked_entities(counts: Counter[EntityRef]) -> tuple[EntityRef, ...]:
    order = _ENTITY_ORDER
    return tuple(sorted(counts, key=lambda e: (order.get(e.kind, 99), -counts[e], e)))


def make_title(
    labels: dict[str, tuple[int, float]],
    entities: tuple[EntityRef, ...],
    actor: EntityRef | None = None,
) -> str:
    """ "Shell, miner download and mining-pool egress in shop/storefront-7d9f";
    without a pod, the identity that acted ("Cluster-admin binding by bob"), never
    one the requests were about."""
    # The three most severe phrases, told in the order they happened.
    top = sorted(labels.items(), key=lambda kv: (-kv[1][0], kv[1][1], kv[0]))[:3]
    phrases = [label for label, _ in sorted(top, key=lambda kv: (kv[1][1], kv[0]))]
    if not phrases:
        phrases = ["Suspicious activity"]
    words = [phrases[0][:1].upper() + phrases[0][1:]] + [_lower_first(p) for p in phrases[1:]]
    text = words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]
    extra = len(labels) - len(phrases)
    if extra > 0:
        text += f" (+{extra} more)"
    where = ""
    pod = next((e for e in entities if e.kind == EntityKind.POD), None)
    if pod is None and actor is not None:
        if actor.kind == EntityKind.SERVICE_ACCOUNT:
            return f"{text} by service account {actor.short()}"
        return f"{text} by {actor.name}"
    for kind in _TITLE_KINDS:
        ent = next((e for e in entities if e.kind == kind), None)
        if ent is not None:
            prep = "on" if kind == EntityKind.NODE else ("by" if kind == EntityKind.USER else "in")
            if kind == EntityKind.SERVICE_ACCOUNT:
                where = f" by service account {ent.short()}"
            else:
                where = f" {prep} {ent.short()}"
            break
    return text + where


def recurring_title(labels: dict[str, tuple[int, float]], rec: _Recurring, count: int) -> str:
    """ "Kubernetes Client Tool Launched, recurring: 250 times on 37 pods in shop"."""
    label = min(labels, key=lambda k: (-labels[k][0], labels[k][1], k)) if labels else ""
    rec.settle()
    pods = len(rec.pods)
    pods_text = f"{pods}+ pods" if rec.more_pods else (f"{pods} pods" if pods != 1 else "1 pod")
    times = "once" if count == 1 else f"{count} times"
    return f"{label or 'Low signal'}, recurring: {times} on {pods_text} in {rec.key.namespace}"


def _lower_first(text: str) -> str:
    # Keep acronyms and proper names ("RBAC", "SSH") as they are.
    if len(text) > 1 and text[:2].isupper():
        return text
    return text[:1].lower() + text[1:]


def _merge_into(a: list[tuple[float, int]], b: list[tuple[float, int]]) -> None:
    """Merge the sorted list `b` into the sorted list `a`, in place. `b` is the smaller
    group's timeline (often one signal): copying `a` for it would make every signal
    joining a busy incident cost as much as the incident's whole timeline."""
    if not b:
        return
    if not a or a[-1] <= b[0]:
        a.extend(b)
    elif len(b) <= 16:
        for item in b:
            bisect.insort(a, item)
    else:
        a.extend(b)
        a.sort()
