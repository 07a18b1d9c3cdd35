"""Several clusters in one engine: incidents never span clusters, and the multi-cluster
command line (per-cluster values, context lists) says clearly what it cannot use."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
import yaml

from ktriage.cli import build_parser
from ktriage.clusters import MultiEngine, worst_state
from ktriage.core.correlate import Correlator
from ktriage.core.model import Attack, Event, Severity, entity
from ktriage.engine import SourceHealth
from ktriage.live import MAX_CLUSTERS, LiveError, context_names, for_cluster
from ktriage.options import LiveOptions

POD = entity("Pod", "shop", "web-1")
SA = entity("ServiceAccount", "ci", "runner")
IP = entity("IP", "", "203.0.113.50")
_refs = itertools.count()


def ev(t: float, *ents: object, ref: str | None = None, label: str = "Shell") -> Event:
    return Event(
        time=t,
        source="falco",
        ref=ref or f"r{next(_refs)}",
        kind="shell",
        severity=Severity.HIGH,
        summary=f"{label} at {t}",
        entities=tuple(ents),  # type: ignore[arg-type]
        attack=Attack("execution", "T1059"),
        signal=True,
        label=label,
    )


def two_clusters() -> MultiEngine:
    engine = MultiEngine()
    engine.add_cluster("prod-eu")
    engine.add_cluster("prod-us")
    return engine


def test_same_pod_ip_and_service_account_in_two_clusters_stay_two_incidents() -> None:
    engine = two_clusters()
    eu, us = engine.members["prod-eu"], engine.members["prod-us"]
    eu.add_events([ev(0, POD, SA, IP)])
    us.add_events([ev(5, POD, SA, IP)])
    eu.add_events([ev(10, POD, label="Miner download")])  # links in prod-eu only
    incidents = engine.correlator.sorted_incidents()
    assert len(incidents) == 2
    by_cluster = {inc.cluster: inc for inc in incidents}
    assert set(by_cluster) == {"prod-eu", "prod-us"}
    assert by_cluster["prod-eu"].signal_count == 2
    assert by_cluster["prod-us"].signal_count == 1
    assert [e.time for e in engine.correlator.events_of(by_cluster["prod-us"].id)] == [5]
    changes = engine.take_changes()
    assert changes.incidents == {inc.id for inc in incidents}
    assert [e.time for e in changes.events] == [0, 5, 10]


def test_the_same_record_in_two_clusters_is_two_events_and_two_incidents() -> None:
    # Two clusters may well produce the same ref (a replayed scenario, a copied
    # cluster): neither is a duplicate of the other, and their ids differ.
    engine = two_clusters()
    engine.members["prod-eu"].add_events([ev(0, POD, ref="same")])
    engine.members["prod-us"].add_events([ev(0, POD, ref="same")])
    engine.members["prod-us"].add_events([ev(0, POD, ref="same")])  # a true duplicate
    assert len(engine.store) == 2
    assert engine.store.duplicates == 1
    ids = {inc.id for inc in engine.correlator.incidents.values()}
    assert len(ids) == 2
    for inc in engine.correlator.incidents.values():
        assert engine.member_of(inc) is engine.members[inc.cluster]
        assert engine.correlator.resolve(inc.id) is inc


def test_one_cluster_keeps_the_ids_and_fields_it_always_had() -> None:
    plain = Correlator()
    plain.add(ev(0, POD, ref="x"))
    inc = next(iter(plain.incidents.values()))
    assert inc.cluster == ""
    scoped = Correlator(cluster="prod-eu")
    scoped.add(ev(0, POD, ref="x"))
    other = next(iter(scoped.incidents.values()))
    assert other.cluster == "prod-eu"
    assert other.id != inc.id and other.id.startswith("INC-")


def test_an_action_recorded_on_an_incident_joins_that_cluster_only() -> None:
    engine = two_clusters()
    engine.members["prod-eu"].add_events([ev(0, POD)])
    engine.members["prod-us"].add_events([ev(0, POD)])
    engine.take_changes()
    us = next(i for i in engine.correlator.incidents.values() if i.cluster == "prod-us")
    action = Event(
        time=1, source="ktriage", ref="a1", kind="action", severity=Severity.INFO, summary="x"
    )
    engine.attach_action(us.id, action)
    assert action in engine.correlator.events_of(us.id)
    eu = next(i for i in engine.correlator.incidents.values() if i.cluster == "prod-eu")
    assert action not in engine.correlator.events_of(eu.id)
    assert engine.take_changes().incidents == {us.id}


def test_events_cannot_be_added_to_the_whole_but_only_to_a_cluster() -> None:
    engine = two_clusters()
    with pytest.raises(TypeError):
        engine.add_events([ev(0, POD)])


def test_each_cluster_shows_its_worst_source() -> None:
    engine = two_clusters()
    ok = SourceHealth(name="kube pods", kind="kube", state="connected")
    down = SourceHealth(name="kube pods", kind="kube", state="failed")
    up = SourceHealth(name="audit", kind="audit", state="connected")

    class Fixed:
        def __init__(self, health: SourceHealth) -> None:
            self.health = health

        async def run(self, engine: object) -> None:
            return None

    engine.add_to("prod-eu", Fixed(ok))
    engine.add_to("prod-us", Fixed(down))
    engine.add_to("prod-us", Fixed(up))
    assert engine.cluster_health() == [("prod-eu", "connected"), ("prod-us", "failed")]
    assert [h.cluster for h in engine.health()] == ["prod-eu", "prod-us", "prod-us"]
    assert worst_state([]) == "starting"


# ---- the command line ------------------------------------------------------------


def options(*argv: str) -> LiveOptions:
    return LiveOptions.from_args(build_parser().parse_args(list(argv)))


def test_repeated_context_gives_several_clusters_and_one_stays_as_it_was() -> None:
    one = options("--context", "a")
    assert one.context == "a" and one.contexts == ("a",)
    two = options("--context", "a", "--context", "b", "--context", "a")
    assert two.context is None and two.contexts == ("a", "b", "a")
    assert context_names(two) == ["a", "b"]
    assert context_names(options()) == []


def test_per_cluster_values_name_their_context() -> None:
    names = ["prod-eu", "prod=us"]
    assert for_cluster("prod-eu=/var/log/a.log", names, "--audit-log") == (
        "prod-eu",
        "/var/log/a.log",
    )
    # A context whose name holds `=` is found whole (the longest match).
    assert for_cluster("prod=us=x=y", names, "--audit-log") == ("prod=us", "x=y")
    assert for_cluster("auto", names, "--falco", shared=("auto", "off")) == (None, "auto")
    with pytest.raises(LiveError, match="say which one"):
        for_cluster("/var/log/a.log", names, "--audit-log")


def write_kubeconfig(path: Path, names: list[str]) -> Path:
    data = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:1"}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": n, "context": {"cluster": "c", "user": "u"}} for n in names],
        "current-context": names[0],
    }
    path.write_text(yaml.safe_dump(data))
    return path


def test_all_contexts_reads_the_kubeconfig(tmp_path: Path) -> None:
    cfg = write_kubeconfig(tmp_path / "kc", ["one", "two", "three"])
    got = context_names(options("--kubeconfig", str(cfg), "--all-contexts"))
    assert got == ["one", "two", "three"]
    with pytest.raises(LiveError, match="cannot be used together"):
        context_names(options("--kubeconfig", str(cfg), "--all-contexts", "--context", "one"))


def test_hostile_too_many_contexts_are_refused_with_a_reason(tmp_path: Path) -> None:
    names = [f"c{i}" for i in range(MAX_CLUSTERS + 1)]
    cfg = write_kubeconfig(tmp_path / "kc", names)
    with pytest.raises(LiveError, match=f"at most {MAX_CLUSTERS}"):
        context_names(options("--kubeconfig", str(cfg), "--all-contexts"))


def test_snapshot_names_the_cluster_and_only_with_several() -> None:
    from ktriage.core.snapshot import render_markdown

    engine = two_clusters()
    engine.members["prod-eu"].add_events([ev(0, POD)])
    (inc,) = engine.correlator.incidents.values()
    text = render_markdown(inc, engine.correlator.events_of(inc.id))
    assert "| Cluster | prod-eu |" in text
    plain = Correlator()
    plain.add(ev(0, POD))
    (one,) = plain.incidents.values()
    assert "| Cluster |" not in render_markdown(one, plain.events_of(one.id))


def test_hostile_context_name_in_a_snapshot_is_plain_text() -> None:
    from ktriage.core.snapshot import render_markdown

    engine = MultiEngine()
    name = "evil|[x](http://e.example)\x1b[2J\n# heading"
    engine.add_cluster(name).add_events([ev(0, POD)])
    (inc,) = engine.correlator.incidents.values()
    text = render_markdown(inc, engine.correlator.events_of(inc.id))
    (row,) = [line for line in text.splitlines() if line.startswith("| Cluster |")]
    assert "\x1b" not in row and "\n" not in row
    # A code span: the link, the pipe and the heading stay text inside the cell.
    assert row.startswith("| Cluster | `evil\\|[x](http://e.example)") and row.endswith("` |")
    assert row.count("`") == 2


def test_next_steps_name_the_incidents_context_and_only_with_several() -> None:
    """With several clusters the current kubeconfig context may be another cluster's: a
    pasted next step must go to the incident's own."""
    from ktriage.core.containment import containment_state
    from ktriage.core.snapshot import render_markdown

    engine = MultiEngine()
    engine.add_cluster("prod-us").add_events([ev(0, POD)])
    (inc,) = engine.correlator.incidents.values()
    events = engine.correlator.events_of(inc.id)
    commands = [c for step in containment_state(inc, events).next_steps for c in step.commands]
    assert commands and all(
        c.count("kubectl ") == c.count("kubectl --context=prod-us ") for c in commands
    )
    text = render_markdown(inc, events, cluster="2 clusters")
    assert "| Cluster | prod-us |" in text and "2 clusters" not in text
    assert "kubectl --context=prod-us " in text

    plain = Correlator()
    plain.add(ev(0, POD))
    (one,) = plain.incidents.values()
    steps = containment_state(one, plain.events_of(one.id)).next_steps
    assert steps and not any("--context" in c for s in steps for c in s.commands)


def test_hostile_context_name_in_next_steps_is_one_quoted_word() -> None:
    import shlex

    from ktriage.core.containment import containment_state

    engine = MultiEngine()
    engine.add_cluster("x'; rm -rf / #").add_events([ev(0, POD)])
    (inc,) = engine.correlator.incidents.values()
    steps = containment_state(inc, engine.correlator.events_of(inc.id)).next_steps
    commands = [c for s in steps for c in s.commands if "kubectl" in c]
    assert commands
    for command in commands:
        # Every kubectl of the command takes the whole name as one word.
        words = shlex.split(command)
        at = [i for i, w in enumerate(words) if w == "kubectl"]
        assert at and all(words[i + 1] == "--context=x'; rm -rf / #" for i in at), command
