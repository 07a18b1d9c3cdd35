"""Append-only event store with indexes by id, entity and (source, ref)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from ktriage.core.model import EntityKind, EntityRef, Event

# Entity kinds indexed by the store (the UI looks pods up); the correlator keeps
# its own indexes, so indexing everything would only cost time and memory.
INDEXED_KINDS = frozenset({EntityKind.POD, EntityKind.NODE})


class EventStore:
    """Holds every event once. Ids are monotonic in arrival order, starting at 1.

    Duplicates (same source and ref, as after a watch reconnect or a replay of
    overlapping files) are counted and dropped. With `max_events`, the store stops
    keeping new events once full and counts what it did not keep.
    """

    def __init__(self, max_events: int | None = None) -> None:
        self._events: list[Event] = []
        # Refs seen, per source: a set of the events' own ref strings costs far less
        # than one (source, ref) tuple per event.
        self._refs: dict[str, set[str]] = {}
        self._by_entity: dict[EntityRef, list[int]] = {}
        # The entity index is brought up to date when it is read, not on every add:
        # a replay of millions of events then never pays for it unless asked.
        self._indexed = 0
        self.max_events = max_events
        self.duplicates = 0
        self.dropped = 0

    def add(self, event: Event, scope: str = "") -> Event | None:
        """Store `event`, giving it an id; None when it is a duplicate or not kept.

        `scope` is the cluster an event comes from when several are watched: two
        clusters' refs are never duplicates of each other."""
        source = f"{scope}\0{event.source}" if scope else event.source
        refs = self._refs.get(source)
        if refs is None:
            refs = self._refs[source] = set()
        elif event.ref in refs:
            self.duplicates += 1
            return None
        events = self._events
        if self.max_events is not None and len(events) >= self.max_events:
            self.dropped += 1
            return None
        refs.add(event.ref)
        events.append(event)
        event.id = len(events)
        return event

    def _index(self) -> dict[EntityRef, list[int]]:
        events = self._events
        index = self._by_entity
        for eid in range(self._indexed + 1, len(events) + 1):
            for ent in events[eid - 1].entities:
                if ent.kind in INDEXED_KINDS:
                    ids = index.get(ent)
                    if ids is None:
                        index[ent] = [eid]
                    else:
                        ids.append(eid)
        self._indexed = len(events)
        return index

    def get(self, event_id: int) -> Event:
        return self._events[event_id - 1]

    def by_entity(self, ent: EntityRef) -> list[int]:
        """Ids of the events naming a pod or node (other kinds are not indexed)."""
        index = self._by_entity if self._indexed == len(self._events) else self._index()
        return index.get(ent, [])

    def entities(self) -> Iterable[EntityRef]:
        index = self._by_entity if self._indexed == len(self._events) else self._index()
        return index.keys()

    def __len__(self) -> int:
        return len(self._events)

    def __iter__(self) -> Iterator[Event]:
        return iter(self._events)

    def since(self, event_id: int) -> list[Event]:
        """Events with an id greater than `event_id`, in arrival order."""
        return self._events[event_id:]
