"""Append-only event store with indexes by id, entity and (source, ref)."""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Iterator

from ktriage.core.model import (
    _RAW_SLOT,
    _SUMMARY_SLOT,
    DERIVED_ENTITY_SOURCES,
    RAW_PACK_SHIFTS,
    CompactEvent,
    EntityKind,
    EntityRef,
    Event,
    Severity,
    ShedEvent,
)


def probe(table: array[int], mask: int, key: int) -> int:
    """Where `key` (never 0) is in an open-addressed table with linear probing (0
    marks an empty place), or the empty place where it would go."""
    i = key & mask
    while True:
        found = table[i]
        if found == 0 or found == key:
            return i
        i = (i + 1) & mask


class RefHashes:
    """A set of 64-bit hashes: a Python set while small (a look-up and an add in C),
    then one open-addressed array (linear probing, at most half full): 16 to 32 bytes
    an entry, where a Python set of ints costs about 80 (an int object and a set slot
    each)."""

    __slots__ = ("_count", "_mask", "_small", "_table")

    # Entries held in a Python set before they move to the array: past this the set's
    # 80 bytes an entry would show in a replay's memory per event (about a megabyte).
    SMALL_MAX = 1 << 14

    def __init__(self) -> None:
        self._small: set[int] | None = set()
        self._table = array("q")
        self._mask = 0
        self._count = 0

    def add(self, key: int) -> bool:
        """Add `key`; False when it was there already."""
        key = key or 1  # 0 marks an empty slot
        small = self._small
        if small is not None:
            if key in small:
                return False
            small.add(key)
            if len(small) > self.SMALL_MAX:
                self._to_table(small)
            return True
        i = probe(self._table, self._mask, key)
        if self._table[i]:
            return False
        self._table[i] = key
        self._count += 1
        if self._count * 2 > self._mask:
            self._grow()
        return True

    def __contains__(self, key: int) -> bool:
        key = key or 1
        if self._small is not None:
            return key in self._small
        return self._table[probe(self._table, self._mask, key)] != 0

    def __len__(self) -> int:
        return len(self._small) if self._small is not None else self._count

    def _to_table(self, small: set[int]) -> None:
        size = 1024
        while size <= 2 * len(small):  # at most half full, as _grow keeps it
            size *= 2
        self._table = array("q", bytes(8 * size))
        self._mask = size - 1
        self._count = 0
        self._small = None
        self._rehash(small)
        self._count = len(small)

    def _grow(self) -> None:
        old = self._table
        size = len(old) * 2
        self._table = array("q", bytes(8 * size))
        self._mask = size - 1
        self._rehash(key for key in old if key)

    def _rehash(self, keys: Iterable[int]) -> None:
        table = self._table
        mask = self._mask
        for key in keys:
            i = key & mask
            while table[i]:
                i = (i + 1) & mask
            table[i] = key


# Pod names read back from the lines of shed events, kept for the next listing of all
# pods (the Pods pane asks at every refresh). Bounded: a recording of short-lived pods
# would otherwise keep one EntityRef per pod, the cost shedding saved.
_POD_NAMES_MAX = 50_000

# Entity kinds indexed by the store (the UI looks pods up); the correlator keeps
# its own indexes, so indexing everything would only cost time and memory.
INDEXED_KINDS = frozenset({EntityKind.POD, EntityKind.NODE})


# A stored event is made compact once this many newer ones are in: by then nothing
# changes it any more (detections and the correlator change an event as it comes in).
COMPACT_LAG = 512
_SPOT_MASK = (1 << RAW_PACK_SHIFTS[0]) - 1  # offset and length of a packed raw reference


def entity_key(ent: EntityRef) -> int:
    """The 64-bit key an entity is indexed by where it is not kept itself: its hash
    (never 0, which marks "none"). Two entities share one about once in 10^19 pairs,
    and no input can choose to (string hashes are keyed per process)."""
    return hash(ent) or 1


class EventStore:
    """Holds every event once. Ids are monotonic in arrival order, starting at 1.

    Duplicates (same source and ref, as after a watch reconnect or a replay of
    overlapping files) are counted and dropped. With `max_events`, the store stops
    keeping new events once full and counts what it did not keep.

    Plain events read from a replayed file (CompactEvent.shed: no text of their own,
    no signal, nothing rare) are kept in columns, not as objects: their time, where
    their line is, and shared (source, kind, severity, archive) and entity tuples,
    about 34 bytes each instead of about 250. Reading one (get, iteration, since)
    gives an equal CompactEvent built from the columns: the same fields, the texts
    built again from its line; not the same object each time.

    Of the sources whose entities come from the line alone (DERIVED_ENTITY_SOURCES:
    Tetragon), such an event keeps no entities either: they are built again from its
    line with its texts (a ShedEvent), so a stream naming a new pod in every event
    holds no pod per event. The entity index finds those events by the keys of their
    pod and node (14 bytes an event).
    """

    def __init__(self, max_events: int | None = None) -> None:
        self._events: list[Event | None] = []
        # Refs seen, per source, as 64-bit hashes: an event may then drop its ref
        # string (see CompactEvent.shed) and costs 16 to 32 bytes here. Two refs of
        # one source share a hash about once in 10^13 pairs.
        self._refs: dict[str, RefHashes] = {}
        self._by_entity: dict[EntityRef, list[int]] = {}
        # The entity index is brought up to date when it is read, not on every add:
        # a replay of millions of events then never pays for it unless asked.
        self._indexed = 0
        # Columns of compacted events, by position (zeros where an event is an object).
        self._compacted = 0
        self._times = array("d")
        self._spots = array("Q")
        self._kinds = array("H")
        # None where the entities are built again from the line (a ShedEvent).
        self._entities: list[tuple[EntityRef, ...] | None] = []
        # Those events' ids, the entity_key of the pod each names (0: none) and its
        # node (an index into `_nodes`, 0: none), for the entity index (indexed up to
        # `_shed_indexed`): 14 bytes an event.
        self._shed_ids = array("I")
        self._shed_pods = array("q")
        self._shed_nodes = array("H")
        self._shed_indexed = 0
        self._node_ids: dict[EntityRef, int] = {}
        self._nodes: list[EntityRef] = []
        # Ids of those events by pod key or by node (the index of the ShedEvents).
        self._by_shed: dict[int | EntityRef, list[int]] = {}
        self._pod_names: dict[int, EntityRef] = {}
        self._kind_ids: dict[tuple[str, str, Severity, int], int] = {}
        self._kind_list: list[tuple[str, str, Severity, int]] = []
        self.max_events = max_events
        self.duplicates = 0
        self.dropped = 0

    def add(self, event: Event, scope: str = "") -> Event | None:
        """Store `event`, giving it an id; None when it is a duplicate or not kept.

        `scope` is the cluster an event comes from when several are watched: two
        clusters' refs are never duplicates of each other."""
        source = f"{scope}\0{event.source}" if scope else event.source
        refs = self._refs.get(source)
        key = hash(event.ref)
        if refs is None:
            refs = self._refs[source] = RefHashes()
        events = self._events
        if self.max_events is not None and len(events) >= self.max_events:
            if key in refs:
                self.duplicates += 1
            else:
                self.dropped += 1
            return None
        if not refs.add(key):
            self.duplicates += 1
            return None
        events.append(event)
        n = len(events)
        event.id = n
        if n - self._compacted >= 2 * COMPACT_LAG:
            self._compact(n - COMPACT_LAG)
        return event

    def _compact(self, upto: int) -> None:
        """Move the plain events before position `upto` into the columns."""
        events = self._events
        times = self._times
        spots = self._spots
        kinds = self._kinds
        entities = self._entities
        kind_ids = self._kind_ids
        summary_of = _SUMMARY_SLOT.__get__
        for pos in range(self._compacted, upto):
            ev = events[pos]
            if (
                type(ev) is CompactEvent
                and summary_of(ev, Event) is None  # shed its texts (CompactEvent.shed)
                and not ev.signal
                and ev.attack is None
                and not ev.label
                and ev.raw_inline is None
                and not ev.suppressed_by
                and not ev.incident_hint
            ):
                packed = _RAW_SLOT.__get__(ev, Event)
                if type(packed) is int:
                    kind_key = (ev.source, ev.kind, ev.severity, packed >> RAW_PACK_SHIFTS[0])
                    kind = kind_ids.get(kind_key)
                    if kind is None and len(kind_ids) < 65535:
                        kind = kind_ids[kind_key] = len(self._kind_list) + 1
                        self._kind_list.append(kind_key)
                    if kind is not None:
                        times.append(ev.time)
                        spots.append(packed & _SPOT_MASK)
                        kinds.append(kind)
                        keys = self._shed_keys(ev) if ev.source in DERIVED_ENTITY_SOURCES else None
                        if keys is not None and pos < 0xFFFFFFFF:
                            entities.append(None)
                            self._shed_ids.append(pos + 1)
                            self._shed_pods.append(keys[0])
                            self._shed_nodes.append(keys[1])
                        else:
                            entities.append(ev.entities)
                        events[pos] = None
                        continue
            times.append(0.0)
            spots.append(0)
            kinds.append(0)
            entities.append(None)
        self._compacted = upto

    def _view(self, pos: int) -> Event:
        """The compacted event at `pos`, built from the columns."""
        source, kind, severity, archive = self._kind_list[self._kinds[pos] - 1]
        raw = archive << RAW_PACK_SHIFTS[0] | self._spots[pos]
        ents = self._entities[pos]
        return (CompactEvent if ents is not None else ShedEvent)(
            self._times[pos], source, None, kind, severity, None,  # type: ignore[arg-type]
            ents, None, False, "", raw, None, "", "", pos + 1,  # type: ignore[arg-type]
        )  # fmt: skip

    def _index(self) -> dict[EntityRef, list[int]]:
        events = self._events
        index = self._by_entity
        columns = self._entities
        before = self._indexed
        for eid in range(before + 1, len(events) + 1):
            ev = events[eid - 1]
            ents = ev.entities if ev is not None else columns[eid - 1]
            if ents is None:
                continue  # a ShedEvent: indexed by the keys of its pod and node, below
            for ent in ents:
                if ent.kind in INDEXED_KINDS:
                    ids = index.get(ent)
                    if ids is None:
                        index[ent] = [eid]
                    else:
                        ids.append(eid)
        self._indexed = len(events)
        by_shed = self._by_shed
        nodes = self._nodes
        start = self._shed_indexed
        for eid, pod, node in zip(
            self._shed_ids[start:], self._shed_pods[start:], self._shed_nodes[start:], strict=True
        ):
            if eid <= before:
                continue  # indexed by its entities, when it was not shed yet
            for key in (pod or None, nodes[node - 1] if node else None):
                if key is not None:
                    found = by_shed.get(key)
                    if found is None:
                        by_shed[key] = [eid]
                    else:
                        found.append(eid)
        self._shed_indexed = len(self._shed_ids)
        return index

    def get(self, event_id: int) -> Event:
        ev = self._events[event_id - 1]
        if ev is not None:
            return ev
        return self._view(event_id - 1 if event_id > 0 else len(self._events) + event_id - 1)

    def by_entity(self, ent: EntityRef) -> list[int]:
        """Ids of the events naming a pod or node (other kinds are not indexed), in
        arrival order."""
        index = self._by_entity if self._indexed == len(self._events) else self._index()
        ids = index.get(ent, [])
        if not self._by_shed or ent.kind not in INDEXED_KINDS:
            return ids
        shed = self._by_shed.get(ent if ent.kind == EntityKind.NODE else entity_key(ent))
        if not shed:
            return ids
        return sorted(ids + shed) if ids else shed

    def entities(self) -> Iterable[EntityRef]:
        """Every pod and node named (those only ShedEvents name are read from the
        line of one of their events, once)."""
        index = self._by_entity if self._indexed == len(self._events) else self._index()
        if not self._by_shed:
            return index.keys()
        names = self._pod_names
        found = dict.fromkeys(index)
        for key, ids in self._by_shed.items():
            if not isinstance(key, int):
                found[key] = None  # a node
                continue
            ent = names.get(key)
            if ent is None:
                ent = self._pod_name(key, ids[0])
                if ent is None:
                    continue  # its line is gone
                if len(names) >= _POD_NAMES_MAX:
                    names.clear()  # read again from their lines when next asked
                names[key] = ent
            found[ent] = None
        return found.keys()

    def _pod_name(self, key: int, event_id: int) -> EntityRef | None:
        for ent in self.get(event_id).entities:
            if ent.kind == EntityKind.POD and entity_key(ent) == key:
                return ent
        return None

    def _shed_keys(self, ev: Event) -> tuple[int, int] | None:
        """(pod key, node index) of an event that may shed its entities: one naming at
        most one pod and one node (as a Tetragon event does); None for any other."""
        pod = node = 0
        for ent in ev.entities:
            kind = ent.kind
            if kind == EntityKind.POD:
                if pod:
                    return None
                pod = entity_key(ent)
            elif kind == EntityKind.NODE:
                if node:
                    return None
                node = self._node_ids.get(ent, 0)
                if not node:
                    if len(self._nodes) >= 0xFFFF:
                        return None
                    self._nodes.append(ent)
                    node = self._node_ids[ent] = len(self._nodes)
        return pod, node

    def __len__(self) -> int:
        return len(self._events)

    def __iter__(self) -> Iterator[Event]:
        view = self._view
        for pos, ev in enumerate(self._events):
            yield ev if ev is not None else view(pos)

    def since(self, event_id: int) -> list[Event]:
        """Events with an id greater than `event_id`, in arrival order."""
        view = self._view
        start = max(event_id, 0)
        return [
            ev if ev is not None else view(pos)
            for pos, ev in enumerate(self._events[start:], start)
        ]
