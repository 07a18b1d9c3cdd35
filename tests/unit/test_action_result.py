"""The Result an action shows is what holds after it, not only that its API calls
succeeded: an isolation whose own check found another policy letting traffic through
is "not effective", one that could not be checked (or that nothing is seen to enforce)
"not verified"."""

from __future__ import annotations

from typing import Any

from ktriage.core.containment import action_result, fact
from ktriage.core.correlate import Correlator
from ktriage.core.model import EntityKind, Event, Severity, entity
from ktriage.core.snapshot import render_markdown

POD = entity(EntityKind.POD, "shop", "web-1")
POLICY = "NetworkPolicy shop/ktriage-quarantine-web-1"
ALLOWS = "not effective: NetworkPolicy allow-web allows ingress from anywhere on TCP/8080"


def action(result: str = "ok", *facts: dict[str, str], **extra: Any) -> Event:
    """An action event with the fields actions/record.py writes."""
    raw: dict[str, Any] = {
        "action": "isolate",
        "target": POLICY,
        "actor": "oncall",
        "result": result,
        "error": "",
        "pod": "shop/web-1",
        "containment": list(facts),
        **extra,
    }
    return Event(
        time=200.0,
        source="ktriage",
        ref="a1",
        kind="action-isolate",
        severity=Severity.INFO,
        summary=f"isolate {POLICY}: isolation of pod shop/web-1 is NOT effective",
        entities=(POD,),
        raw_inline=raw,
    )


def network(state: str, detail: str = "x") -> dict[str, str]:
    return fact("network", "pod shop/web-1", state, detail)


def test_an_isolation_found_not_effective_says_so() -> None:
    assert action_result(action("ok", network("not-effective", ALLOWS))) == "not effective"


def test_an_isolation_nothing_enforces_is_not_verified() -> None:
    assert action_result(action("ok", network("unverified", "no plugin seen"))) == "not verified"


def test_an_effective_isolation_and_other_results_keep_their_word() -> None:
    assert action_result(action("ok", network("isolated"))) == "ok"
    assert action_result(action("failed", network("not-effective"))) == "failed"
    assert action_result(action("undone", network("restored"))) == "undone"
    cordon = action("ok", fact("node", "node w1", "cordoned", "re-read"))
    assert action_result(cordon) == "ok"


def test_hostile_unreadable_facts_do_not_hide_a_not_effective_one() -> None:
    junk: list[Any] = ["x", {"aspect": "network", "state": "isolated"}, None]
    event = action("ok", network("not-effective", ALLOWS))
    event.raw_inline["containment"] = junk + event.raw_inline["containment"]
    assert action_result(event) == "not effective"


def test_hostile_result_that_is_not_text_shows_nothing() -> None:
    assert action_result(action(["ok"], network("not-effective"))) == ""  # type: ignore[arg-type]


def _snapshot(*actions: Event) -> str:
    c = Correlator()
    c.add(
        Event(
            time=100.0,
            source="falco",
            ref="s1",
            kind="shell",
            severity=Severity.HIGH,
            summary="Shell",
            entities=(POD,),
            signal=True,
            label="Shell",
        )
    )
    (incident_id,) = c.incidents
    for ev in actions:
        c.attach(incident_id, ev)
    return render_markdown(c.resolve(incident_id), c.events_of(incident_id))


def test_snapshot_actions_taken_says_not_effective() -> None:
    markdown = _snapshot(action("ok", network("not-effective", ALLOWS)))
    table = markdown.split("## Actions taken", 1)[1].split("\n## ", 1)[0]
    assert f"| isolate | {POLICY} | not effective |" in table
    assert "| ok |" not in table
