"""The Falco full path and the report, made cheaper per alert: what they cache stays
bounded and gives exactly what the uncached path gives, on hostile input too."""

from __future__ import annotations

import bisect
import random
from datetime import UTC, datetime

import orjson

from ktriage.core import correlate, model, text
from ktriage.core.correlate import ROLLUP_LISTED, Correlator, _Recurring, _rollup_key
from ktriage.core.detect import falco as classifier
from ktriage.core.ingest import Ingestor
from ktriage.core.model import (
    MAX_TIME,
    CompactEvent,
    EntityKind,
    EntityRef,
    Event,
    Severity,
    bad_time,
    entity,
    iso,
)
from ktriage.core.parse import falco as falco_parser
from ktriage.core.parse import plain
from ktriage.core.redact import redact_text
from ktriage.core.report import incident_json_line
from ktriage.core.text import printable, shown


def _alert(i: int = 0, **changes: object) -> dict[str, object]:
    rec: dict[str, object] = {
        "uuid": f"9ff3078f-cc1b-0c3e-1c07-{i:012x}",
        "time": f"2026-09-21T14:13:{i % 60:02d}.230000123Z",
        "rule": "Contact K8S API Server From Container",
        "priority": "Notice",
        "source": "syscall",
        "hostname": "node-c",
        "output": f"Contact K8S API Server From Container (user=root k8s_pod=svc-{i})",
        "output_fields": {
            "container.id": f"{i:012x}",
            "k8s.ns.name": "team-1",
            "k8s.pod.name": f"svc-{i}",
        },
        "tags": ["network", "mitre_discovery", "T1565"],
    }
    rec.update(changes)
    return rec


def _plain_iso(ts: float) -> str:
    """`iso` without its shortcut: the calendar of every time worked out whole."""
    try:
        return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    except (OverflowError, ValueError, OSError, TypeError):
        return bad_time(ts)


def _plain_entry(ev: Event) -> dict[str, object]:
    """`Event.as_dict` without its shortcuts: every text redacted and escaped."""
    return {
        "source": ev.source,
        "ref": printable(redact_text(str(ev.ref))),
        "time": _plain_iso(ev.time),
        "kind": printable(redact_text(str(ev.kind))),
        "severity": ev.severity.name.lower(),
        "summary": printable(redact_text(str(ev.summary))),
    }


def _events(*alerts: dict[str, object]) -> list[Event]:
    ing = Ingestor()
    out: list[Event] = []
    for n, rec in enumerate(alerts, 1):
        out.extend(ing.feed_line(orjson.dumps(rec), origin=f"falco.jsonl:{n}"))
    return out


def _uncached_summary(rec: dict[str, object]) -> str:
    """The summary as build_event made it before: `plain` of the rule and output."""
    rule = str(rec["rule"])
    text = str(rec["output"])
    summary = f"{rule}: {text}" if text and not text.startswith(rule) else (text or rule)
    return plain(summary, 400)


# ---- the report's events ------------------------------------------------------------


def test_report_entry_is_the_plain_one_for_every_kind_of_text_and_time() -> None:
    refs = [
        "9ff3078f-cc1b-0c3e-1c07-724e44c5b476",
        "ABCDEF0123",
        "",
        "token=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N",
        "[bold red]x[/]\x1b]52;c;ZWNobw==\x07",
        "deadbeef\u200b",
        "abc-def\n",
    ]
    times = [0.0, 1790000000.2300001, 1790000000.9999995, 12.5e-6, MAX_TIME - 0.5]
    times += [float("nan"), float("inf"), -1.0, 1e20, 1790000000]  # type: ignore[list-item]
    summaries = ["plain words", "password=hunter2 in a command", "\x1b[31mred\x1b[0m", "é" * 600]
    for ref in refs:
        for t in times:
            for summary in summaries:
                ev = Event(t, "falco", ref, "shell\x07", Severity.LOW, summary)
                assert ev.as_dict() == _plain_entry(ev), (ref, t, summary)


def test_iso_rounds_microseconds_as_datetime_does() -> None:
    rng = random.Random(14)
    values = [0.0, 0.5e-6, 1.5e-6, 2.5e-6, 0.9999995, 1.9999995, MAX_TIME - 1e-7]
    for _ in range(50_000):
        second = rng.randrange(0, int(MAX_TIME))
        values.append(second + rng.randrange(0, 2_000_001) / 2e6)
        values.append(second + rng.random())
    for value in values:
        assert iso(value) == _plain_iso(value), value


def test_hostile_out_of_range_times_in_a_report_are_said_as_iso_says_them() -> None:
    for value in (float("nan"), float("inf"), -float("inf"), -1.0, MAX_TIME, 1e300, -0.0):
        assert iso(value) == _plain_iso(value)
    assert iso(float("nan")).startswith("(time out of range")


def test_hostile_100k_distinct_seconds_keep_the_time_cache_bounded() -> None:
    for second in range(150_000):
        iso(1_790_000_000.0 + second * 7 + 0.25)
    assert len(model._SECOND_TEXT) <= model._SECOND_TEXT_MAX
    assert iso(1_790_000_000.25) == _plain_iso(1_790_000_000.25)


# ---- summaries a report need not check again -------------------------------------------


def test_a_summary_marked_as_shown_is_its_own_shown_form() -> None:
    [ev] = _events(_alert(1))
    assert ev.summary in text._SHOWN_AS_IS
    assert shown(ev.summary) == ev.summary
    assert ev.as_dict()["summary"] == ev.summary


def test_hostile_rule_with_markup_and_controls_is_escaped_and_never_marked_shown() -> None:
    rule = "[link=file:///etc]Evil[/link]\x1b]52;c;cm0gLXJmIH4=\x07 rule\u202e"
    rec = _alert(2, rule=rule, output="\x1b[2Jcleared [b]screen[/b] password=hunter2")
    [ev] = _events(rec)
    assert ev.summary == _uncached_summary(rec)
    assert "\x1b" not in ev.summary and "hunter2" not in ev.summary
    assert ev.summary not in text._SHOWN_AS_IS
    assert "\x1b" not in ev.label and "\u202e" not in ev.label
    line = orjson.loads(incident_json_line(_one_incident(ev), [ev]))
    assert line["events"][0]["summary"] == shown(ev.summary)
    assert "\x1b" not in line["title"]


def test_hostile_summaries_with_secrets_controls_or_length_are_not_marked_shown() -> None:
    cases = [
        _alert(3, output="curl -u admin:s3cret https://example.com"),
        _alert(4, output="token: eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJlZm9v"),
        _alert(5, output="tab\there"),
        _alert(6, output="zero\u200bwidth"),
        _alert(7, output="x" * 401),
    ]
    for rec in cases:
        [ev] = _events(rec)
        assert ev.summary == _uncached_summary(rec)
        assert ev.summary not in text._SHOWN_AS_IS
        assert ev.as_dict() == _plain_entry(ev)


def test_hostile_100k_distinct_alerts_keep_every_cache_bounded(monkeypatch) -> None:
    # The entity-tuple cache's own limit is above this test's alert count: made small,
    # so that a cache that is never cleared fails here.
    monkeypatch.setattr(falco_parser, "_ENTITY_TUPLES_MAX", 1_000)
    ing = Ingestor()
    for i in range(100_000):
        rec = _alert(i, rule=f"custom rule {i}", priority="Notice" if i % 2 else "Warning")
        ing.feed_line(orjson.dumps(rec), origin="x:1")
    assert len(text._SHOWN_AS_IS) <= text.SHOWN_AS_IS_MAX
    assert len(falco_parser._PROFILES) <= falco_parser._PROFILES_MAX
    assert len(falco_parser._ENTITY_TUPLES) <= 1_001
    assert len(classifier._CLASSIFIED) <= 10_001


# ---- one profile per rule, priority and tags ---------------------------------------------


def test_profiles_give_what_the_rule_priority_and_tags_give_each_alert() -> None:
    rule = "Read sensitive file untrusted"
    plain_read = _alert(10, rule=rule, priority="Warning")
    plain_read["output_fields"] = {"fd.name": "/etc/hosts", "k8s.pod.name": "a"}
    kubelet = _alert(11, rule=rule, priority="Warning")
    kubelet["output_fields"] = {"fd.name": "/var/lib/kubelet/pki/kubelet-client-current.pem"}
    debug = _alert(12, rule="a custom rule", priority="Debug")
    untagged = _alert(13, rule=rule, priority="Warning", tags=None)
    other_tags = _alert(14, rule=rule, priority="Warning", tags=["T1552"])
    a, b, c, d, e, a2 = _events(plain_read, kubelet, debug, untagged, other_tags, plain_read)
    assert (a.kind, b.kind) == ("sensitive-file-read", "kubelet-credentials-read")
    assert a2.kind == a.kind and a2.attack == a.attack  # the credentials read did not stick
    assert a.severity == Severity.HIGH and a.signal and a.label == "“Read sensitive file untrusted”"
    assert (c.signal, c.label, c.attack, c.severity) == (False, "", None, Severity.INFO)
    assert d.attack is not None and d.attack.tactic == "credential-access"
    assert e.attack is not None and e.attack.technique == "T1552"


def test_hostile_unhashable_tags_still_give_an_event() -> None:
    # The decoder refuses tags that are not strings; a record built otherwise (a
    # salvaged one) may still hold them: no profile is kept for it, the event is made.
    ing = Ingestor()
    assert ing.feed_line(orjson.dumps(_alert(15, tags=[["T1059"]])), origin="x:1") == []
    assert ing.skipped["wrong-type"] == 1
    alert = falco_parser.FalcoAlert(**{**_alert(16), "tags": [{"mitre": "x"}, ["T1059"], "T1552"]})
    before = len(falco_parser._PROFILES)
    ev = falco_parser.build_event(alert, b"{}", None)
    assert ev.kind == "k8s-api-contact" and ev.signal and ev.attack is not None
    assert ev.attack.technique == "T1552"
    assert len(falco_parser._PROFILES) == before


# ---- the correlator's roll-up of low signals -----------------------------------------------


def _one_incident(ev: Event) -> object:
    c = Correlator()
    c.add(ev)
    [inc] = c.incidents.values()
    return inc


def test_recurring_add_all_lists_the_first_entities_of_each_kind_in_order() -> None:
    # Against a plain model: each kind lists the ROLLUP_LISTED smallest entities seen,
    # sorted; pods are counted in the order first seen.
    rng = random.Random(3)
    kinds = [EntityKind.POD, EntityKind.CONTAINER, EntityKind.NODE, EntityKind.NAMESPACE]
    key = entity("Recurring", "ns", "falco:x:y")
    rec = _Recurring(key)
    seen: dict[str, set[EntityRef]] = {}
    pods: dict[EntityRef, None] = {}
    for _ in range(3000):
        ents = tuple(
            entity(kind, "ns" if kind == EntityKind.POD else "", f"n{rng.randrange(60)}")
            for kind in rng.sample(kinds, rng.randrange(1, 5))
        )
        rec.add_all(ents)
        for ent in ents:
            seen.setdefault(ent.kind, set()).add(ent)
            if ent.kind == EntityKind.POD:
                pods.setdefault(ent, None)
        expected = {kind: sorted(found)[:ROLLUP_LISTED] for kind, found in seen.items()}
        assert rec.listed == expected
        assert list(rec.pods) == list(pods) and not rec.more_pods
    assert bisect.bisect_left(rec.listed[EntityKind.POD], entity("Pod", "ns", "n0")) == 0


def _low(t: float, pod: int) -> Event:
    return CompactEvent(
        t,
        "falco",
        f"ref-{pod}-{t}",
        "k8s-api-contact",
        Severity.LOW,
        f"contact from svc-{pod}",
        (entity("Pod", "team", f"svc-{pod}"), entity("Container", "", f"c{pod:011d}")),
        None,
        True,
        "“Contact K8S API Server From Container”",
    )


def _shape(c: Correlator) -> list[tuple[object, ...]]:
    return sorted(
        (i.id, i.title, i.signal_count, i.entities, tuple(t for t, _ in i.timeline), i.last_seen)
        for i in c.incidents.values()
    )


def test_low_signals_out_of_order_give_the_incidents_they_give_in_order() -> None:
    rng = random.Random(9)
    items = [(1000.0 + rng.random() * 4000, rng.randrange(40)) for _ in range(600)]
    shapes = []
    for order in (sorted(items), sorted(items, reverse=True), rng.sample(items, len(items))):
        c = Correlator(window=600)
        for t, pod in order:
            c.add(_low(t, pod))
        shapes.append(_shape(c))
    assert shapes[0] == shapes[1] == shapes[2]
    assert any("recurring" in title for _, title, *_ in shapes[0])


def test_hostile_100k_distinct_rules_keep_the_rollup_keys_bounded() -> None:
    base = _low(0.0, 1)
    for i in range(100_000):
        ev = CompactEvent(
            float(i), "falco", f"r{i}", "falco-alert", Severity.LOW, "x", base.entities,
            None, True, f"“rule {i}”",
        )  # fmt: skip
        assert _rollup_key(ev) is not None
    assert len(correlate._ROLLUP_KEYS) <= correlate._ROLLUP_KEYS_MAX
    assert _rollup_key(base) == entity("Recurring", "team", f"falco:{base.kind}:{base.label}")


def test_hostile_out_of_range_alert_time_is_skipped_and_said() -> None:
    # A parser refuses a time out of range: the line is skipped and said, not reported.
    rec = _alert(20, time="9999-12-31T23:59:59.999999999Z")
    rec["output_fields"] = {"k8s.pod.name": "p"}
    ing = Ingestor()
    assert ing.feed_line(orjson.dumps(rec), origin="x:1") == []
    assert ing.skipped["out-of-range"] == 1


def test_common_entities_are_what_the_full_entity_reading_gives() -> None:
    values: list[object] = [None, "", "<NA>", "N/A", "host", "web-1", "0123456789abcdef", 7, True]
    rng = random.Random(5)
    for _ in range(3000):
        host, ns, pod, cid = (rng.choice(values) for _ in range(4))
        fields = {
            k: v
            for k, v in (("k8s.ns.name", ns), ("k8s.pod.name", pod), ("container.id", cid))
            if rng.random() < 0.9
        }
        alert = falco_parser.FalcoAlert(
            rule="r", hostname=host if isinstance(host, str) else None, output_fields=fields
        )
        key = (alert.hostname, fields.get("k8s.ns.name"), fields.get("k8s.pod.name"))
        common = falco_parser._common_entities(*key, fields.get("container.id"))
        assert common == tuple(falco_parser._entities(alert, fields)), (alert, fields)


def test_hostile_markup_and_controls_in_entity_names_stay_data() -> None:
    rec = _alert(21)
    rec["output_fields"] = {
        "k8s.pod.name": "[red]pod[/red]\x1b[2J",
        "k8s.ns.name": "ns\u200b",
        "container.id": "\x07" * 20,
    }
    [ev] = _events(rec)
    assert entity("Pod", "ns\u200b", "[red]pod[/red]\x1b[2J") in ev.entities
    data = orjson.loads(incident_json_line(_one_incident(ev), [ev]))
    texts = [data["title"]] + [e["name"] for e in data["entities"]] + [data["events"][0]["summary"]]
    assert any("[red]pod[/red]" in t for t in texts)
    assert not any(c in t for t in texts for c in ("\x1b", "\x07", "\u200b"))


def test_entities_taken_and_settled_later_count_as_counted_at_once() -> None:
    rng = random.Random(11)
    kinds = [EntityKind.POD, EntityKind.CONTAINER, EntityKind.NODE, EntityKind.NAMESPACE]
    shared = [
        tuple(entity(k, "ns" if k == EntityKind.POD else "", f"n{i}") for k in kinds)
        for i in range(50)
    ]
    key = entity("Recurring", "ns", "falco:x:y")
    eager, lazy, other = _Recurring(key), _Recurring(key), _Recurring(key)
    for n in range(20_000):
        ents = (
            rng.choice(shared)
            if rng.random() < 0.5
            else tuple(
                entity(k, "ns" if k == EntityKind.POD else "", f"m{rng.randrange(15_000)}")
                for k in kinds
            )
        )
        eager.add_all(ents)
        lazy.take(ents)
        assert len(lazy.waiting) < correlate._WAITING_MAX  # bounded: settled when full
        if n == 10_000:
            other.take(ents)
            lazy.merge(other)  # a merge counts what both took first
            eager.merge(other)
    assert lazy.entities() == eager.entities()
    assert (lazy.pods, lazy.listed, lazy.more_pods) == (eager.pods, eager.listed, eager.more_pods)
    assert list(lazy.pods) == list(eager.pods)  # the same pods, counted in the same order
    assert not lazy.waiting


def test_a_deferred_replay_of_low_signals_titles_its_recurring_incident_as_one_by_one() -> None:
    events = [_low(1000.0 + i, i % 300) for i in range(2000)]
    deferred, eager = Correlator(window=600), Correlator(window=600)
    with deferred.deferred_incidents():
        for ev in events:
            deferred.add(ev)
    for ev in [_low(e.time, int(e.ref.split("-")[1])) for e in events]:
        eager.add(ev)
    assert _shape(deferred) == _shape(eager)
    [title] = {i.title for i in deferred.incidents.values()}
    assert title.endswith("recurring: 2000 times on 300 pods in team")


def test_recurring_entities_are_in_the_order_a_full_sort_gives() -> None:
    rng = random.Random(17)
    kinds = ["Pod", "Container", "Node", "Namespace", "IP", "Image", "Zeta", "Alpha", "User"]
    order = correlate._ENTITY_ORDER
    for _ in range(200):
        rec = _Recurring(entity("Recurring", "ns", "k"))
        for _ in range(rng.randrange(1, 120)):
            kind = rng.choice(kinds)
            rec.take((entity(kind, rng.choice(["", "a", "b"]), f"n{rng.randrange(40)}"),))
        rec.settle()
        listed = [e for lst in rec.listed.values() for e in lst]
        expected = sorted(listed, key=lambda e: (order.get(e.kind, 99), e))
        assert list(rec.entities()) == expected


def test_alerts_saying_the_same_share_one_summary_made_safe_once() -> None:
    first, again = _events(_alert(30), _alert(30, uuid="another-uuid"))
    assert first.summary is again.summary and first.ref != again.ref
    secret = _alert(31, output="login with password=hunter2 failed")
    a, b = _events(secret, {**secret, "uuid": "x"})
    assert a.summary is b.summary and a.summary == _uncached_summary(secret)
    assert "hunter2" not in a.summary and a.summary not in text._SHOWN_AS_IS


def test_hostile_100k_distinct_outputs_keep_the_summaries_bounded() -> None:
    ing = Ingestor()
    for i in range(100_000):
        ing.feed_line(orjson.dumps(_alert(i, output=f"out {i} \x1b[{i}m")), origin="x:1")
    assert len(falco_parser._SUMMARIES) <= falco_parser._SUMMARIES_MAX
    [ev] = _events(_alert(7, output="out 7 \x1b[7m"))
    assert ev.summary == _uncached_summary(_alert(7, output="out 7 \x1b[7m"))


def test_hex_and_dash_refs_are_their_own_shown_form() -> None:
    # What lets Event.as_dict take such a ref as it is: redaction finds nothing in it.
    rng = random.Random(23)
    alphabet = "0123456789abcdefABCDEF-"
    for _ in range(20_000):
        ref = "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 80)))
        assert shown(ref) == ref
        assert Event(1.0, "falco", ref, "k", Severity.LOW, "s").as_dict()["ref"] == ref
    ev = Event(1.0, "falco", "abc-token=def", "k", Severity.LOW, None)  # type: ignore[arg-type]
    assert ev.as_dict() == _plain_entry(ev)
