"""What every source does with the events it made: hand them to the engine and count."""

from __future__ import annotations

from ktriage.core.model import Event
from ktriage.engine import Engine, SourceHealth

STORE_FULL = "store-full"


def deliver(engine: Engine, health: SourceHealth, events: list[Event]) -> None:
    """Add events to the engine; what a full store did not keep is counted, not lost
    silently: it shows in the source's health as skipped `store-full`."""
    if not events:
        return
    store = engine.store
    before = store.dropped
    engine.add_events(events)
    dropped = store.dropped - before
    if dropped:
        health.skipped[STORE_FULL] += dropped
        health.last_error = (
            f"event store full ({store.max_events} events): {store.dropped} not kept"
        )
    health.count(len(events) - dropped, max(e.time for e in events))
