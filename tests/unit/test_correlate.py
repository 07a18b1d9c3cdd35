"""Correlation: strong links, windows, order independence, context, scores, titles."""

from __future__ import annotations

import itertools
import random

from ktriage.core.config import Config, Suppression
from ktriage.core.correlate import Correlator, make_title
from ktriage.core.model import Attack, Event, Severity, entity

POD = entity("Pod", "shop", "storefront-7d9f")
POD2 = entity("Pod", "billing", "worker-1")
NODE = entity("Node", "", "node-a")
NS = entity("Namespace", "", "shop")
SA = entity("ServiceAccount", "ci", "runner")
IP = entity("IP", "", "203.0.113.50")
SYSTEM = entity("User", "", "system:kube-controller-manager")
_refs = itertools.count()


def ev(
    t: float,
    *ents,
    signal: bool = True,
    source: str = "falco",
    sev: Severity = Severity.HIGH,
    label: str = "Shell",
    tactic: str | None = "execution",
    kind: str = "shell",
) -> Event:
    return Event(
        time=t,
        source=source,
        ref=f"r{next(_refs)}",
        kind=kind,
        severity=sev,
        summary=f"{label} at {t}",
        entities=tuple(ents),
        attack=Attack(tactic, "T1059") if tactic else None,
        signal=signal,
        label=label if signal else "",
    )


def test_signals_sharing_a_strong_entity_within_the_window_form_one_incident() -> None:
    c = Correlator(window=600)
    c.add(ev(0, POD, NODE))
    c.add(ev(300, POD, NODE, label="Miner download"))
    assert len(c.incidents) == 1
    inc = next(iter(c.incidents.values()))
    assert inc.signal_count == 2
    assert inc.title == "Shell and miner download in shop/storefront-7d9f"


def test_weak_entities_and_system_users_never_link() -> None:
    c = Correlator(window=600)
    c.add(ev(0, POD, NODE, NS, SYSTEM))
    c.add(ev(10, POD2, NODE, NS, SYSTEM))
    assert len(c.incidents) == 2


def test_signals_outside_the_window_stay_apart_until_a_bridge_arrives() -> None:
    c = Correlator(window=600)
    c.add(ev(0, POD))
    c.add(ev(1000, POD))
    assert len(c.incidents) == 2
    ids_before = set(c.incidents)
    c.add(ev(500, POD))  # within 600 s of both
    assert len(c.incidents) == 1
    survivor = next(iter(c.incidents))
    # The ids that disappeared resolve to the survivor.
    for old in ids_before:
        assert c.resolve(old).id == survivor


def test_transitive_links_through_different_entities() -> None:
    c = Correlator(window=600)
    c.add(ev(0, POD, IP, source="audit"))
    c.add(ev(60, IP, SA, source="audit"))
    c.add(ev(120, SA, POD2, source="tetragon"))
    assert len(c.incidents) == 1


def _incident_shape(c: Correlator) -> set[tuple[str, str, str, tuple[str, ...]]]:
    return {
        (i.id, i.title, i.severity.label, tuple(e.ref for e in c.events_of(i.id)))
        for i in c.incidents.values()
    }


def test_any_arrival_order_gives_the_same_incidents_ids_and_titles() -> None:
    base = [
        ev(0, POD, IP, source="audit", label="Exec into pod", sev=Severity.MEDIUM),
        ev(30, POD, label="Shell"),
        ev(60, POD, source="tetragon", label="Miner download", tactic="command-and-control"),
        ev(90, POD, source="tetragon", label="Mining-pool egress", tactic="impact"),
        ev(45, POD, signal=False, source="audit"),
        ev(5000, POD2, label="Shell"),
        ev(5100, POD2, signal=False, source="kube"),
        ev(20, IP, SA, source="audit", label="Secret list", tactic="credential-access"),
    ]
    expected = None
    rng = random.Random(7)
    for _ in range(30):
        order = base[:]
        rng.shuffle(order)
        c = Correlator(window=1800)
        for e in order:
            c.add(_clone(e))
        shape = _incident_shape(c)
        if expected is None:
            expected = shape
        assert shape == expected
    assert expected is not None and len(expected) == 2


def _clone(e: Event) -> Event:
    return Event(
        time=e.time,
        source=e.source,
        ref=e.ref,
        kind=e.kind,
        severity=e.severity,
        summary=e.summary,
        entities=e.entities,
        attack=e.attack,
        signal=e.signal,
        label=e.label,
    )


def test_context_attaches_before_or_after_its_signal_but_never_opens_an_incident() -> None:
    c = Correlator(window=600)
    early = c.add(ev(0, POD, signal=False, source="audit"))
    assert early == set() and not c.incidents
    c.add(ev(100, POD))
    c.add(ev(200, POD, signal=False, source="kube"))
    c.add(ev(5000, POD, signal=False, source="kube"))  # outside the window
    inc = next(iter(c.incidents.values()))
    assert [e.time for e in c.events_of(inc.id)] == [0, 100, 200]
    assert inc.counts_by_source == {"audit": 1, "falco": 1, "kube": 1}


def test_timeline_is_in_time_order_for_late_events() -> None:
    c = Correlator(window=600)
    for t in (10, 20, 30):
        c.add(ev(t, POD))
    c.add(ev(15, POD, signal=False, source="falco"))
    inc = next(iter(c.incidents.values()))
    assert [e.time for e in c.events_of(inc.id)] == [10, 15, 20, 30]


def test_corroboration_and_progression_raise_the_score() -> None:
    single = Correlator()
    single.add(ev(0, POD, sev=Severity.MEDIUM))
    assert next(iter(single.incidents.values())).severity == Severity.MEDIUM

    corroborated = Correlator()
    corroborated.add(ev(0, POD, sev=Severity.MEDIUM, source="audit"))
    corroborated.add(ev(5, POD, sev=Severity.MEDIUM, source="tetragon"))
    inc = next(iter(corroborated.incidents.values()))
    assert inc.severity == Severity.HIGH

    chain = Correlator()
    for t, tactic in enumerate(("execution", "credential-access", "privilege-escalation")):
        chain.add(ev(t, POD, sev=Severity.MEDIUM, source="audit", tactic=tactic))
    chain.add(ev(9, POD, sev=Severity.MEDIUM, source="falco"))
    inc = next(iter(chain.incidents.values()))
    assert inc.severity == Severity.CRITICAL
    assert inc.tactics == ("execution", "privilege-escalation", "credential-access")


def test_low_signals_are_never_raised() -> None:
    c = Correlator()
    c.add(ev(0, POD, sev=Severity.LOW, source="audit"))
    c.add(ev(1, POD, sev=Severity.LOW, source="falco"))
    assert next(iter(c.incidents.values())).severity == Severity.LOW


def test_escalation_is_flagged() -> None:
    c = Correlator()
    c.add(ev(0, POD, sev=Severity.LOW))
    inc = next(iter(c.incidents.values()))
    assert not inc.escalated
    c.add(ev(1, POD, sev=Severity.CRITICAL))
    assert inc.escalated and inc.severity == Severity.CRITICAL


def test_duplicates_are_dropped() -> None:
    c = Correlator()
    e = ev(0, POD)
    c.add(e)
    assert c.add(_clone(e)) == set()
    assert c.store.duplicates == 1 and len(c.store) == 1


def test_suppressed_signals_stay_visible_as_context_only() -> None:
    cfg = Config(suppressions=[Suppression(user="sre-alice", namespace="dev", reason="expected")])
    c = Correlator(config=cfg)
    alice = entity("User", "", "sre-alice")
    dev_pod = entity("Pod", "dev", "api-1")
    e = ev(0, alice, dev_pod, entity("Namespace", "", "dev"), source="audit", label="Exec into pod")
    c.add(e)
    assert not c.incidents
    assert e.suppressed_by.startswith("user=sre-alice namespace=dev")
    assert len(c.store) == 1 and c.suppressed == 1


def test_titles() -> None:
    labels = {
        "Shell": (3, 1.0),
        "Miner download": (4, 2.0),
        "Mining-pool egress": (4, 3.0),
        "Exec into pod": (2, 0.0),
    }
    assert make_title(labels, (POD,)) == (
        "Shell, miner download and mining-pool egress (+1 more) in shop/storefront-7d9f"
    )
    assert make_title({"RBAC escalation": (3, 0.0)}, (SA,)) == (
        "RBAC escalation by service account ci/runner"
    )
    assert make_title({}, ()) == "Suspicious activity"


def test_actions_attach_to_the_named_incident() -> None:
    c = Correlator()
    c.add(ev(0, POD))
    inc = next(iter(c.incidents.values()))
    action = Event(
        time=50,
        source="ktriage",
        ref="a1",
        kind="action-cordon",
        severity=Severity.INFO,
        summary="cordoned node-a",
        entities=(NODE,),
        raw_inline={"action": "cordon", "result": "ok"},
    )
    assert c.attach(inc.id, action) == {inc.id}
    assert c.events_of(inc.id)[-1] is action
    assert action.incident_hint == inc.id
    # Acting is not activity: the incident's age still counts from what was observed.
    assert inc.last_seen == 0
    c.add(ev(20, POD))  # observed later, still before the action
    assert inc.last_seen == 20
    c.add(ev(70, POD))
    assert inc.last_seen == 70


def test_many_events_in_one_incident_stay_fast() -> None:
    import time

    c = Correlator()
    c.add(ev(0, POD))
    start = time.perf_counter()
    for i in range(100_000):
        c.add(ev(i * 0.01, POD, signal=False, source="tetragon"))
    elapsed = time.perf_counter() - start
    inc = next(iter(c.incidents.values()))
    assert inc.event_count == 100_001
    # Linear work: a quadratic timeline would take minutes here.
    assert elapsed < 10


def test_signals_without_strong_entities_group_by_detection_and_node() -> None:
    c = Correlator(window=600)
    for t in range(5):
        c.add(ev(t, NODE, label="Sensitive file read", source="falco"))
    c.add(ev(3, NODE, label="Write below binary dir", source="falco"))
    c.add(ev(4, entity("Node", "", "node-b"), label="Sensitive file read", source="falco"))
    assert sorted(i.signal_count for i in c.incidents.values()) == [1, 1, 5]


# ---- expected sessions ---------------------------------------------------------

ALICE = entity("User", "", "sre-alice")
DEV = entity("Namespace", "", "dev")
DEV_POD = entity("Pod", "dev", "api-7b9d-p9pt8")
DEV_POD2 = entity("Pod", "dev", "api-7b9d-x2k4m")
DEV_CID = entity("Container", "", "0a1b2c3d4e5f")
WORKER = entity("Node", "", "worker-2")
T = 1_800_000_150.0
SRE_RULE = Suppression(user="sre-alice", namespace="dev", reason="expected SRE access")


def _sre_config(**session: float) -> Config:
    rule = Suppression(user="sre-alice", namespace="dev", reason="expected SRE access", **session)
    return Config(suppressions=[rule])


def _event(t: float, source: str, kind: str, sev: Severity, label: str, *ents, **kw) -> Event:
    return Event(
        time=t,
        source=source,
        ref=kw.pop("ref", f"{source}-{kind}-{t}"),
        kind=kind,
        severity=sev,
        summary=f"{label} at {t}",
        entities=tuple(ents),
        attack=Attack(kw.pop("tactic", "execution"), "T1059"),
        signal=kw.pop("signal", True),
        label=label,
    )


def sre_exec(t: float = T, pod=DEV_POD, sev: Severity = Severity.MEDIUM) -> Event:
    ip = entity("IP", "", "10.20.0.15")
    return _event(t, "audit", "exec", sev, "Exec into pod", ALICE, pod, DEV, ip)


def falco_shell(t: float = T + 0.7, pod=DEV_POD) -> Event:
    return _event(t, "falco", "shell", Severity.LOW, "Shell", pod, DEV_CID, WORKER, DEV)


def tetragon_shell(t: float = T + 0.6, pod=DEV_POD, sev: Severity = Severity.MEDIUM) -> Event:
    return _event(t, "tetragon", "shell", sev, "Shell", pod, DEV_CID, WORKER, DEV)


def tetragon_ps(t: float = T + 8) -> Event:
    ev = _event(t, "tetragon", "process-exec", Severity.INFO, "", DEV_POD, DEV_CID, WORKER, DEV)
    ev.signal = False
    return ev


def tetragon_miner(t: float = T + 40) -> Event:
    return _event(
        t, "tetragon", "miner", Severity.CRITICAL, "Miner", DEV_POD, DEV_CID, WORKER, DEV,
        tactic="impact",
    )  # fmt: skip


def _play(events: list[Event], config: Config) -> Correlator:
    c = Correlator(config=config)
    for e in events:
        c.add(_clone(e))
    return c


def _sessions_shape(c: Correlator) -> tuple:
    incidents = _incident_shape(c)
    hidden = sorted((e.ref, e.suppressed_by, e.signal) for e in c.store)
    return frozenset(incidents), tuple(hidden)


def test_expected_exec_hides_its_shell_in_every_arrival_order() -> None:
    base = [sre_exec(), falco_shell(), tetragon_shell(), tetragon_ps()]
    shapes = set()
    for order in itertools.permutations(base):
        c = _play(list(order), _sre_config())
        assert c.incidents == {}, [i.title for i in c.incidents.values()]
        shapes.add(_sessions_shape(c))
        by_kind = {(e.source, e.kind): e for e in c.store}
        for key in (("falco", "shell"), ("tetragon", "shell")):
            shell = by_kind[key]
            assert not shell.signal
            assert shell.suppressed_by == (
                "during the expected exec by sre-alice "
                "(user=sre-alice namespace=dev (expected SRE access))"
            )
        assert c.suppressed == 3  # the exec and the two shells
    assert len(shapes) == 1


def test_without_the_suppression_the_same_input_is_an_incident() -> None:
    c = _play([sre_exec(), falco_shell(), tetragon_shell()], Config())
    assert [i.severity for i in c.incidents.values()] == [Severity.HIGH]


def test_a_shell_seen_before_its_exec_closes_the_incident_it_opened() -> None:
    c = Correlator(config=_sre_config())
    shell = falco_shell()
    opened = c.add(shell)
    (iid,) = opened
    assert iid in c.incidents
    changed = c.add(sre_exec())
    assert iid in changed and iid in c.closed
    assert c.incidents == {} and c.resolve(iid) is None
    assert c.incident_of_event(shell.id) is None


def test_a_miner_during_an_expected_session_is_still_an_incident_in_every_order() -> None:
    base = [sre_exec(), falco_shell(), tetragon_shell(), tetragon_ps(), tetragon_miner()]
    shapes = set()
    for order in itertools.permutations(base):
        c = _play(list(order), _sre_config())
        assert len(c.incidents) == 1
        inc = next(iter(c.incidents.values()))
        assert inc.severity >= Severity.HIGH
        assert inc.title == "Miner in dev/api-7b9d-p9pt8"
        assert inc.signal_count == 1
        signals = [e for e in c.events_of(inc.id) if e.signal]
        assert [(e.source, e.kind) for e in signals] == [("tetragon", "miner")]
        shapes.add(_sessions_shape(c))
    assert len(shapes) == 1


def test_late_session_renames_the_incident_to_its_remaining_signal() -> None:
    c = Correlator(config=_sre_config())
    c.add(tetragon_shell())
    (shell_id,) = c.incidents
    c.add(tetragon_miner())
    assert set(c.incidents) == {shell_id}
    inc = c.incidents[shell_id]
    c.add(sre_exec())
    (miner_id,) = c.incidents
    assert miner_id != shell_id and shell_id not in c.closed
    assert c.renamed[shell_id] == miner_id
    assert c.resolve(shell_id) is c.incidents[miner_id]
    assert c.incidents[miner_id].title == "Miner in dev/api-7b9d-p9pt8"
    assert inc.signal_count == 2  # the old object is no longer updated


def test_an_action_stays_with_the_incident_that_follows_its_own() -> None:
    c = Correlator(config=_sre_config())
    c.add(tetragon_shell())
    c.add(tetragon_miner())
    (iid,) = c.incidents
    action = Event(
        time=T + 100, source="ktriage", ref="act-1", kind="action-isolate",
        severity=Severity.INFO, summary="isolated dev/api", entities=(DEV_POD,),
    )  # fmt: skip
    c.attach(iid, action)
    c.add(sre_exec())
    inc = c.resolve(iid)
    assert inc is not None and action in c.events_of(inc.id)


def test_a_shell_in_another_pod_of_the_namespace_is_still_an_incident() -> None:
    base = [sre_exec(), falco_shell(pod=DEV_POD2), tetragon_shell(pod=DEV_POD2)]
    for order in itertools.permutations(base):
        c = _play(list(order), _sre_config())
        assert len(c.incidents) == 1
        inc = next(iter(c.incidents.values()))
        assert inc.severity == Severity.HIGH
        assert DEV_POD2 in inc.entities and DEV_POD not in inc.entities


def test_high_impact_runtime_signals_are_never_covered() -> None:
    app_shell = tetragon_shell(sev=Severity.HIGH)  # a shell spawned by the application
    unnamed = _event(T + 5, "falco", "falco-alert", Severity.MEDIUM, "Unexpected thing", DEV_POD)
    token = _event(T + 6, "tetragon", "sa-token-read", Severity.HIGH, "Token theft", DEV_POD)
    falco_token = _event(
        T + 7, "falco", "sensitive-file-read", Severity.MEDIUM, "Sensitive file read", DEV_POD
    )
    falco_token.summary = (
        "Read sensitive file untrusted: Sensitive file opened for reading by non-trusted "
        "program | file=/var/run/secrets/kubernetes.io/serviceaccount/token"
    )
    for ev in (app_shell, unnamed, token, falco_token):
        for order in ([sre_exec(), ev], [ev, sre_exec()]):
            c = _play(order, _sre_config())
            assert len(c.incidents) == 1, ev.kind
            assert not next(e for e in c.store if e.source != "audit").suppressed_by


def test_session_length_is_respected() -> None:
    late = 16 * 60
    for order in ([sre_exec(), falco_shell(T + late)], [falco_shell(T + late), sre_exec()]):
        assert len(_play(order, _sre_config()).incidents) == 1  # default 15 minutes
        assert _play(order, _sre_config(session=1800)).incidents == {}
    early = [sre_exec(), falco_shell(T - 31)]
    assert len(_play(early, _sre_config()).incidents) == 1
    assert _play([sre_exec(), falco_shell(T - 29)], _sre_config()).incidents == {}
    off = [sre_exec(), falco_shell(T + 1)]
    assert len(_play(off, _sre_config(session=0)).incidents) == 1


def test_an_admins_ordinary_reads_and_commands_are_covered() -> None:
    config_read = _event(
        T + 20, "falco", "sensitive-file-read", Severity.MEDIUM, "Sensitive file read", DEV_POD
    )
    config_read.summary = "Read sensitive file untrusted: ... | file=/etc/ssl/private/api.key"
    curl = _event(T + 30, "tetragon", "download", Severity.MEDIUM, "Download tool", DEV_POD)
    unnamed = _event(T + 40, "falco", "falco-alert", Severity.LOW, "Some notice", DEV_POD)
    for ev in (config_read, curl, unnamed):
        for order in ([sre_exec(), ev], [ev, sre_exec()]):
            assert _play(order, _sre_config()).incidents == {}, ev.kind


def test_a_denied_exec_opens_no_session() -> None:
    c = _play([sre_exec(sev=Severity.LOW), falco_shell(), tetragon_shell()], _sre_config())
    assert len(c.incidents) == 1


def test_overlapping_sessions_name_the_earliest_in_any_order() -> None:
    bob_rule = Suppression(user="sre-bob", namespace="dev", reason="pairing")
    cfg = Config(suppressions=[SRE_RULE, bob_rule])
    bob = sre_exec(T + 5)
    bob.entities = (entity("User", "", "sre-bob"), *bob.entities[1:])
    bob.ref = "bob-exec"
    texts = set()
    for order in itertools.permutations([sre_exec(), bob, falco_shell(T + 10)]):
        c = _play(list(order), cfg)
        assert c.incidents == {}
        texts.add(next(e for e in c.store if e.source == "falco").suppressed_by)
    assert len(texts) == 1 and next(iter(texts)).startswith("during the expected exec by sre-alice")


def _mix_events() -> list[Event]:
    """Events of a generated mix (audit, Tetragon, Falco over 300 pods), each read
    twice (the second copies are duplicates), and 200 pods' address and account facts."""
    import importlib.util
    import tempfile
    from pathlib import Path

    from ktriage.core.cluster import ClusterState, listed_pod
    from ktriage.core.ingest import Ingestor

    root = Path(__file__).resolve().parents[2]
    spec = importlib.util.spec_from_file_location("mixes", root / "benchmarks" / "mixes.py")
    assert spec is not None and spec.loader is not None
    mixes = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mixes)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "mix.jsonl"
        mixes.write_mix("project", path, 3_000)
        lines = path.read_bytes().splitlines()
    ingestor = Ingestor()
    events: list[Event] = []
    for n, line in enumerate(lines + lines[:500]):
        events.extend(ingestor.feed_line(line, origin=f"mix:{n}"))
    events.extend(ingestor.flush())
    state = ClusterState()
    pods = [
        {
            "metadata": {"name": f"p{i}", "namespace": "shop", "uid": f"u{i}"},
            "spec": {"serviceAccountName": f"sa{i % 7}", "nodeName": "n1"},
            "status": {"phase": "Running", "podIP": f"10.1.{i // 250}.{i % 250 + 1}"},
        }
        for i in range(200)
    ]
    events.extend(state.apply_pod_page([listed_pod(p) for p in pods]) + state.take_facts())
    return events


def test_add_many_is_add_for_each_event_in_order() -> None:
    """The engine's batch path gives what `add`, one event at a time, gives: the
    same events stored, the same incidents changed, the same incidents in the end;
    with a suppression rule (every event then takes `add`'s own path) too."""
    from ktriage.core.store import EventStore

    rules = [Suppression(user="system:node:node-a", reason="expected")]
    # No rule, a suppression rule, and a store that fills up midway.
    for config, limit in ((Config(), None), (Config(suppressions=rules), None), (Config(), 2_500)):
        one = Correlator(config=config, store=EventStore(max_events=limit))
        many = Correlator(config=config, store=EventStore(max_events=limit))
        singly = _mix_events()
        changed_one: set[str] = set()
        stored_one = []
        for ev in singly:
            before = len(one.store)
            changed_one |= one.add(ev)
            if len(one.store) > before:
                stored_one.append(ev)
        batched = _mix_events()
        changed_many: set[str] = set()
        stored_many = []
        for start in range(0, len(batched), 97):
            changed_many |= many.add_many(batched[start : start + 97], stored_many)
        assert len(stored_many) < len(batched)  # the duplicates were not stored
        assert many.store.dropped == one.store.dropped
        assert (one.store.dropped > 0) == (limit is not None)
        assert [(e.key, e.id) for e in stored_many] == [(e.key, e.id) for e in stored_one]
        assert changed_many == changed_one and changed_one
        assert [(i.id, i.title, [e for _, e in i.timeline]) for i in many.sorted_incidents()] == [
            (i.id, i.title, [e for _, e in i.timeline]) for i in one.sorted_incidents()
        ]
        assert many.suppressed == one.suppressed
        assert (many.suppressed > 0) == bool(config.suppressions)
        # The links learnt from the facts (pod to address, pod to account), which
        # come last: a full store has refused them.
        assert many._also == one._also
        assert (len(one._also) >= 200) == (limit is None)
