"""Events of a replayed file keep no text of their own: their ref and summary are built
again from their line when read, the same strings the parser built; anything that
changed them keeps them; a line gone or rewritten reads as a plain word, never raises."""

from __future__ import annotations

import orjson
from k8s_records import T0, audit, falco, tetragon_exec

from ktriage.core import model
from ktriage.core.config import Config
from ktriage.core.correlate import Correlator
from ktriage.core.ingest import MAX_LINE, Ingestor
from ktriage.core.model import UNREADABLE_SUMMARY, CompactEvent, Severity, ShedEvent, entity
from ktriage.core.replay import Replayer
from ktriage.core.store import COMPACT_LAG, EventStore


def _lines() -> list[bytes]:
    out = []
    for i in range(60):
        t = T0 + i
        out.append(audit(t, "alice@example.com", "get", "pods", namespace="shop", name=f"w-{i}"))
        out.append(tetragon_exec(t, "/usr/bin/python3", f"-m job {i}", namespace="shop", pod="w-1"))
    out.append(falco(T0 + 70, "Terminal shell in container", "Notice", namespace="shop",
                     pod="w-1", cmd="sh"))  # fmt: skip
    out.append(audit(T0 + 80, "mallory", "create", "pods", namespace="shop", name="w-1",
                     subresource="exec", code=101))  # fmt: skip
    return out


def _replayed(tmp_path, lines: list[bytes]) -> tuple[Correlator, Replayer]:
    path = tmp_path / "in.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    correlator = Correlator(config=Config())
    replayer = Replayer(correlator)
    replayer.replay([path])
    return correlator, replayer


def _one_by_one(lines: list[bytes]) -> list[tuple[str, str, str]]:
    ingestor = Ingestor()
    out = []
    for i, line in enumerate(lines, 1):
        out += [(e.source, e.ref, e.summary) for e in ingestor.feed_line(line, origin=f"x:{i}")]
    out += [(e.source, e.ref, e.summary) for e in ingestor.flush()]
    return out


def test_shed_texts_read_back_exactly_as_the_parser_built_them(tmp_path):
    lines = _lines()
    correlator, _ = _replayed(tmp_path, lines)
    events = list(correlator.store)
    shed = [ev for ev in events if isinstance(ev, CompactEvent) and ev.shed_text]
    assert len(shed) > 100, "plain audit and Tetragon events of a file shed their texts"
    assert all(not ev.signal for ev in shed)
    model._DERIVED.clear()
    got = sorted((e.source, e.ref, e.summary) for e in events)
    assert got == sorted(_one_by_one(lines))
    # The report form too (secrets redacted, text as shown).
    assert all(ev.as_dict()["summary"] for ev in shed)


def test_signals_and_changed_texts_keep_their_own(tmp_path):
    correlator, _ = _replayed(tmp_path, _lines())
    signals = [ev for ev in correlator.store if ev.signal]
    assert signals
    assert not any(isinstance(ev, CompactEvent) and ev.shed_text for ev in signals)
    ev = CompactEvent(T0, "audit", "r-1", "api-request", Severity.INFO, "built", raw=1)
    ev.summary = "changed by a detection"
    ev.shed("r-1", "built")  # not the parser's strings any more: kept
    assert not ev.shed_text and ev.summary == "changed by a detection" and ev.ref == "r-1"


def test_hostile_file_rewritten_after_load_reads_unreadable_and_never_raises(tmp_path):
    correlator, _ = _replayed(tmp_path, _lines())
    path = tmp_path / "in.jsonl"
    # Same size, other bytes: an attacker (or a rotation) rewrote the file under us.
    path.write_bytes(b"x" * path.stat().st_size)
    model._DERIVED.clear()
    shed = [ev for ev in correlator.store if isinstance(ev, CompactEvent) and ev.shed_text]
    assert shed
    assert {ev.summary for ev in shed} == {UNREADABLE_SUMMARY}
    path.write_bytes(b"")  # and then cut to nothing
    model._DERIVED.clear()
    assert {ev.summary for ev in shed} == {UNREADABLE_SUMMARY}
    assert all(ev.ref.startswith("unreadable:") for ev in shed)


def test_hostile_huge_fields_deep_nesting_and_escapes_derive_bounded_and_equal(tmp_path):
    big = orjson.loads(audit(T0, "bob", "get", "pods", namespace="shop", name="w-0"))
    big["userAgent"] = "A" * (MAX_LINE - 300_000)  # a line just under the limit
    big["objectRef"]["name"] = "n" * 200_000 + "\u202e\u0000"
    deep = orjson.loads(audit(T0 + 1, "bob", "get", "pods", namespace="shop", name="w-2"))
    deep["requestObject"] = {"a": [[[[[[[[[[[[[[[[{"b": 1}]]]]]]]]]]]]]]]]}
    escaped = orjson.loads(audit(T0 + 2, "bob", "get", "pods", namespace="shop", name="w-3"))
    escaped["objectRef"]["name"] = "w\u001b[31m\u200b3"
    lines = [orjson.dumps(big), orjson.dumps(deep), orjson.dumps(escaped)]
    lines.append(b'{"kind":"Event","auditID":"bad-\xff-utf8","verb":"get"}')
    correlator, replayer = _replayed(tmp_path, lines)
    assert replayer.ingestor.skipped == {"binary": 1}
    model._DERIVED.clear()
    got = sorted((e.source, e.ref, e.summary) for e in correlator.store)
    assert got == sorted(_one_by_one(lines))
    for ev in correlator.store:
        assert len(ev.summary) <= 400  # the parsers' bound holds for derived texts
        assert ev.summary.isprintable()  # control and invisible characters escaped


def test_derived_texts_cache_stays_bounded(tmp_path):
    correlator, _ = _replayed(tmp_path, _lines() * 1)
    model._DERIVED.clear()
    for _ in range(3):
        for ev in correlator.store:
            _ = ev.summary
    assert len(model._DERIVED) <= model._DERIVED_MAX


def test_store_dedupes_by_ref_hash_across_overlapping_files(tmp_path):
    lines = _lines()
    a = tmp_path / "a.jsonl"
    b = tmp_path / "b.jsonl"
    a.write_bytes(b"\n".join(lines) + b"\n")
    b.write_bytes(b"\n".join(lines[:50]) + b"\n")  # the same records again
    correlator = Correlator(config=Config())
    Replayer(correlator).replay([a, b])
    once = Correlator(config=Config())
    Replayer(once).replay([a])
    assert len(correlator.store) == len(once.store)
    assert correlator.store.duplicates == 50
    store = EventStore()
    ev = CompactEvent(T0, "audit", "same", "api-request", Severity.INFO, "s")
    twin = CompactEvent(T0, "audit", "same", "api-request", Severity.INFO, "s")
    other = CompactEvent(T0, "falco", "same", "falco-alert", Severity.INFO, "s")
    assert store.add(ev) is ev and store.add(twin) is None and store.add(other) is other


def _fields(ev) -> tuple[object, ...]:
    return (ev.id, ev.time, ev.source, ev.ref, ev.kind, ev.severity, ev.summary,
            ev.entities, ev.attack, ev.signal, ev.label, ev.raw, ev.raw_inline,
            ev.suppressed_by, ev.incident_hint)  # fmt: skip


def test_compacted_events_read_back_equal_by_get_iteration_since_and_entity(tmp_path):
    lines = _lines() * 1
    lines += [
        audit(T0 + 100 + i, "carol", "get", "pods", namespace="shop", name=f"z-{i}")
        for i in range(3 * COMPACT_LAG)
    ]
    path = tmp_path / "in.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    before: list[tuple[object, ...]] = []
    correlator = Correlator(config=Config())
    store = correlator.store
    original_add = store.add

    def add_and_remember(ev, scope=""):
        kept = original_add(ev, scope)
        if kept is not None:
            before.append(kept)
        return kept

    store.add = add_and_remember  # the objects as they went in
    Replayer(correlator).replay([path])
    compacted = sum(1 for ev in store._events if ev is None)
    assert compacted > COMPACT_LAG, "plain events of a file are kept in columns"
    model._DERIVED.clear()
    want = [_fields(ev) for ev in before]
    assert [_fields(store.get(i)) for i in range(1, len(store) + 1)] == want
    assert [_fields(ev) for ev in store] == want
    assert [_fields(ev) for ev in store.since(len(store) - 700)] == want[-700:]
    pod = before[-1].first("Pod")
    assert store.by_entity(pod) == [ev.id for ev in before if pod in ev.entities]
    # Signals and events with something rare stay objects, the same object each time.
    for ev in before:
        if ev.signal or ev.label or ev.suppressed_by:
            assert store.get(ev.id) is ev


def test_max_events_and_duplicates_still_counted_with_compaction(tmp_path):
    store = EventStore(max_events=3)
    evs = [CompactEvent(T0 + i, "audit", f"r{i}", "api-request", Severity.INFO, "s")
           for i in range(5)]  # fmt: skip
    assert [store.add(ev) is not None for ev in evs] == [True, True, True, False, False]
    twin = CompactEvent(T0, "audit", "r0", "api-request", Severity.INFO, "s")
    assert store.add(twin) is None
    assert (store.dropped, store.duplicates, len(store)) == (2, 1, 3)


def _store_of(lines: list[bytes]) -> EventStore:
    """The events of `lines` stored as objects (fed one by one: nothing shed)."""
    correlator = Correlator(config=Config())
    ingestor = Ingestor()
    for i, line in enumerate(lines, 1):
        for ev in ingestor.feed_line(line, origin=f"x:{i}"):
            correlator.add(ev)
    for ev in ingestor.flush():
        correlator.add(ev)
    return correlator.store


def _job_lines(n: int) -> list[bytes]:
    out = []
    for i in range(n):
        t = T0 + i
        # Pods seen once (jobs), pods seen again and again, and an audit line between.
        pod = f"job-{i}" if i % 3 else f"web-{i % 4}"
        out.append(tetragon_exec(t, "/bin/worker", f"{i}", namespace="shop", pod=pod,
                                 node=f"node-{i % 5}"))  # fmt: skip
        if i % 10 == 0:
            out.append(audit(t, "alice@example.com", "get", "pods", namespace="shop", name=pod))
    return out


def test_shed_entities_read_back_and_index_as_the_parser_built_them(tmp_path):
    lines = _job_lines(3 * COMPACT_LAG)
    correlator, _ = _replayed(tmp_path, lines)
    store = correlator.store
    shed = [ev for ev in store if isinstance(ev, ShedEvent)]
    assert len(shed) > COMPACT_LAG, "plain Tetragon events of a file shed their entities"
    assert all(ev.source == "tetragon" for ev in shed)
    plain = _store_of(lines)
    model._DERIVED.clear()
    assert [e.entities for e in store] == [e.entities for e in plain]
    # The entity index (pods and nodes) is the one a store of objects gives.
    assert set(store.entities()) == set(plain.entities())
    for ent in plain.entities():
        assert store.by_entity(ent) == plain.by_entity(ent), ent
    # Asked again after more events came in: they are indexed too, once.
    more = _job_lines(2 * COMPACT_LAG + 7)
    for ev in _store_of(more):
        ev.id = 0
        correlator.store.add(ev)
    pod = next(e for e in plain.entities() if e.name == "web-1")
    ids = store.by_entity(pod)
    assert ids == sorted(set(ids)) and len(ids) > len(plain.by_entity(pod))


def test_hostile_file_rewritten_after_load_leaves_shed_events_without_entities(tmp_path):
    correlator, _ = _replayed(tmp_path, _job_lines(3 * COMPACT_LAG))
    path = tmp_path / "in.jsonl"
    path.write_bytes(b"x" * path.stat().st_size)
    model._DERIVED.clear()
    shed = [ev for ev in correlator.store if isinstance(ev, ShedEvent)]
    assert shed
    # Never raises; what the line no longer says is not made up.
    assert {ev.entities for ev in shed} == {()}
    assert {ev.summary for ev in shed} == {UNREADABLE_SUMMARY}
    # Pods named only by lines it can no longer read are left out of the listing, and
    # those a kept event names are still there.
    store = correlator.store
    kept = {e for ev in store if not isinstance(ev, ShedEvent) for e in ev.entities}
    listed = {e for e in store.entities() if e.kind == "Pod"}
    assert listed == {e for e in kept if e.kind == "Pod"}
    assert entity("Pod", "shop", "job-1") not in listed


def test_hostile_index_read_midway_through_a_load_matches_one_read_at_the_end(tmp_path):
    # The UI may ask for a pod's events at any step of a load (the load cut short
    # there, as far as the index knows): what it has indexed by then, objects that
    # were shed since, and what comes after, are each counted once.
    from ktriage.core.archive import RawArchive
    from ktriage.core.stepload import SteppedReplay

    path = tmp_path / "in.jsonl"
    lines = _job_lines(4 * COMPACT_LAG)
    path.write_bytes(b"\n".join(lines) + b"\n")
    correlator = Correlator(config=Config())
    loader = SteppedReplay(correlator, Ingestor(), RawArchive(), [path], slice_bytes=50_000)
    pod = entity("Pod", "shop", "web-1")
    node = entity("Node", "", "node-2")
    for _ in loader.steps():
        correlator.store.by_entity(pod)
        correlator.store.by_entity(node)
    plain = _store_of(lines)
    assert loader.complete and len(correlator.store) == len(plain)
    assert any(isinstance(ev, ShedEvent) for ev in correlator.store)
    for ent in (pod, node):
        assert correlator.store.by_entity(ent) == plain.by_entity(ent)
    assert set(correlator.store.entities()) == set(plain.entities())
