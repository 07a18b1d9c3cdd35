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
        self._seen: set[tuple[str, str]] = set()
        self._by_entity: dict[EntityRef, list[int]] = {}
        self.max_events = max_events
        self.duplicates = 0
        self.dropped = 0

    def add(self, event: Event) -> Event | None:
        """Store `event`, giving it an id; None when it is a duplicate or not kept."""
        key = (event.source, event.ref)
        if key in self._seen:
            self.duplicates += 1
            return None
        if self.max_events is not None and len(self._events) >= self.max_events:
            self.dropped += 1
            return None
        self._seen.add(key)
        events = self._events
        events.append(event)
        event.id = eid = len(events)
        index = self._by_entity
        for ent in event.entities:
            if ent.kind in INDEXED_KINDS:
                ids = index.get(ent)
                if ids is None:
                    index[ent] = [eid]
                else:
                    ids.append(eid)
        return event

    def get(self, event_id: int) -> Event:
        return self._events[event_id - 1]

    def by_entity(self, ent: EntityRef) -> list[int]:
        """Ids of the events naming a pod or node (other kinds are not indexed)."""
        return self._by_entity.get(ent, [])

    def entities(self) -> Iterable[EntityRef]:
        return self._by_entity.keys()

    def __len__(self) -> int:
        return len(self._events)

    def __iter__(self) -> Iterator[Event]:
        return iter(self._events)

    def since(self, event_id: int) -> list[Event]:
        """Events with an id greater than `event_id`, in arrival order."""
        return self._events[event_id:]
