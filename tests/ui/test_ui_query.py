"""The `/` filter language."""

from __future__ import annotations

from ui_helpers import miner_events

from ktriage.core.model import Severity
from ktriage.ui.query import parse_query


def test_words_phrases_exclusions_and_fields():
    q = parse_query('xmrig "pool.example -o" !dev source:falco,audit sev:high kind:ex ns:shop')
    assert q.words == ("xmrig", "pool.example -o")
    assert q.excluded == ("dev",)
    assert q.sources == frozenset({"falco", "audit"})
    assert q.min_severity is Severity.HIGH
    assert q.kinds == ("ex",)
    assert q.namespaces == ("shop",)
    assert not q.problems


def test_unknown_fields_are_reported_and_flags_are_plain_words():
    q = parse_query("src:syslog sev:urgent -o")
    assert q.problems and "syslog" in q.problems[0] and "urgent" in q.problems[1]
    assert q.words == ("-o",)
    assert parse_query("   ").empty
    assert parse_query('"unclosed phrase').words == ("unclosed phrase",)


def test_matching_events():
    events = {e.ref: e for e in miner_events(context_count=2)}
    assert parse_query("xmrig").matches_event(events["f-miner"])
    assert not parse_query("xmrig !pool").matches_event(events["f-miner"])
    assert parse_query('"curl -o /tmp"').matches_event(events["f-miner"])
    assert parse_query("sev:crit").matches_event(events["f-miner"])
    assert not parse_query("sev:crit").matches_event(events["a-exec"])
    assert parse_query("source:tetragon ns:payments").matches_event(events["t-0"])
    assert not parse_query("source:tetragon ns:dev").matches_event(events["t-0"])
    assert parse_query("kind:mi").matches_event(events["f-miner"])
    # Entities and tactics are searchable too.
    assert parse_query("alice@example.com").matches_event(events["a-exec"])
    assert parse_query("impact").matches_event(events["f-miner"])
