"""Per-entity state of the correlator stays small and bounded, whatever names what.

Short-lived job pods make every event name entities never seen before: what the
correlator keeps for each must not outweigh the event itself (the full pipeline's
goal is 300 bytes per retained event, see benchmarks/pipeline_memory.py)."""

from __future__ import annotations

import gc
import tracemalloc

from ktriage.core.correlate import _PENDING_TRIM, PENDING_PER_ENTITY, Correlator
from ktriage.core.model import Event, Severity, entity

NODE = entity("Node", "", "node-a")
NS = entity("Namespace", "", "jobs")
IMAGE = entity("Image", "", "worker:2")
# What the correlator and its store keep for one context event naming a new pod and
# a new container, out of the pipeline's 300-byte goal: about 85 bytes of the store's
# columns and de-duplication table, and one dictionary entry per entity (no _Slot and
# lists, which made it ~700 bytes).
MAX_BYTES_PER_NEW_POD_EVENT = 200


def _context(i: int, t: float, *ents: object) -> Event:
    return Event(
        time=t,
        source="tetragon",
        ref=f"c{i}",
        kind="process-exec",
        severity=Severity.INFO,
        summary="exec /usr/local/bin/worker",
        entities=tuple(ents),  # type: ignore[arg-type]
    )


def _signal(i: int, t: float, *ents: object) -> Event:
    return Event(
        time=t,
        source="falco",
        ref=f"s{i}",
        kind="shell",
        severity=Severity.HIGH,
        summary="shell",
        entities=tuple(ents),  # type: ignore[arg-type]
        signal=True,
        label="Shell",
    )


def _held_per_event(c: Correlator, events: list[Event]) -> float:
    """Bytes still allocated after feeding `events` (made beforehand), per event."""
    gc.collect()
    tracemalloc.start()
    try:
        for e in events:
            c.add(e)
        gc.collect()
        held = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    return held / len(events)


def test_per_entity_state_of_events_each_naming_a_new_pod_is_bounded() -> None:
    n = 50_000
    events = [
        _context(
            i,
            float(i),
            entity("Pod", "jobs", f"batch-{i:08d}"),
            entity("Container", "", f"{i:012x}"),
            IMAGE,
            NODE,
            NS,
        )
        for i in range(n)
    ]
    c = Correlator(window=600)
    per_event = _held_per_event(c, events)
    assert per_event <= MAX_BYTES_PER_NEW_POD_EVENT, f"{per_event:.0f} B per event"
    # Nothing was lost by holding less: a signal on the last pod takes its context.
    last = events[-1].entities[0]
    c.add(_signal(0, float(n), last, NODE))
    (inc,) = c.incidents.values()
    assert events[-1].id in {eid for _, eid in inc.timeline}
    assert inc.signal_count == 1


def test_context_held_as_one_id_or_a_slot_attaches_alike() -> None:
    once = entity("Pod", "jobs", "once")
    twice = entity("Pod", "jobs", "twice")
    named_twice = entity("Pod", "jobs", "named-twice")
    c = Correlator(window=600)
    a = _context(1, 10.0, once)
    b = _context(2, 11.0, twice)
    b2 = _context(3, 12.0, twice)
    d = _context(4, 13.0, named_twice, named_twice)
    old = _context(5, 0.0, entity("Pod", "jobs", "stale"))
    for e in (old, a, b, b2, d):
        c.add(e)
    for i, pod in enumerate((once, twice, named_twice)):
        c.add(_signal(i, 20.0 + i, pod))
    timelines = {inc.title: {eid for _, eid in inc.timeline} for inc in c.incidents.values()}
    assert timelines["Shell in jobs/once"] >= {a.id}
    assert timelines["Shell in jobs/twice"] >= {b.id, b2.id}
    assert timelines["Shell in jobs/named-twice"] >= {d.id}
    # A signal out of the window takes nothing from the id it finds held.
    c.add(_signal(9, 5_000.0, entity("Pod", "jobs", "stale")))
    stale = next(i for i in c.incidents.values() if "stale" in i.title)
    assert old.id not in {eid for _, eid in stale.timeline}


def test_hostile_one_entity_in_100k_events_keeps_a_bounded_pending_list() -> None:
    pod = entity("Pod", "jobs", "hot")
    n = 100_000
    events = [_context(i, i * 0.001, pod, NODE) for i in range(n)]
    c = Correlator(window=600)
    per_event = _held_per_event(c, events)
    # The events are stored (~85 bytes each: the store's share); the pod's pending ids
    # are cut back, not one more per event.
    assert per_event <= 100, f"{per_event:.0f} B per event"
    slot = c._slots[pod]
    assert not isinstance(slot, int) and slot is not None
    assert len(slot.pending) <= _PENDING_TRIM
    # The newest pending events are kept and join a signal that comes now.
    c.add(_signal(0, n * 0.001, pod))
    (inc,) = c.incidents.values()
    assert len(inc.timeline) >= PENDING_PER_ENTITY + 1
    assert events[-1].id in {eid for _, eid in inc.timeline}


def test_hostile_100k_entities_in_one_event_stay_one_id_each() -> None:
    pods = [entity("Pod", "jobs", f"p-{i}") for i in range(100_000)]
    wide = _context(0, 1.0, *pods)
    c = Correlator(window=600)
    gc.collect()
    tracemalloc.start()
    try:
        c.add(wide)
        gc.collect()
        held = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    # One dictionary entry per pod, no slot or list: well under 100 bytes each.
    assert held / len(pods) <= 100, f"{held / len(pods):.0f} B per entity"
    # A signal on any of them (or a second event naming one) still finds the event.
    c.add(_context(1, 2.0, pods[5]))
    c.add(_signal(0, 3.0, pods[5]))
    c.add(_signal(1, 4.0, pods[99_999]))
    by_pod = {inc.title: {eid for _, eid in inc.timeline} for inc in c.incidents.values()}
    assert wide.id in by_pod["Shell in jobs/p-5"]
    # The wide event attached to the first signal's incident; it is context once.
    assert wide.id not in by_pod["Shell in jobs/p-99999"]


def test_hostile_one_signal_naming_100k_entities_links_each() -> None:
    pods = [entity("Pod", "jobs", f"s-{i}") for i in range(100_000)]
    c = Correlator(window=600)
    c.add(_signal(0, 1.0, *pods))
    after = [_context(i, 2.0, pods[i]) for i in (0, 50_000, 99_999)]
    for e in after:
        c.add(e)
    (inc,) = c.incidents.values()
    assert {e.id for e in after} <= {eid for _, eid in inc.timeline}
