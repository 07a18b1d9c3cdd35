"""The containment state on screen: the Incidents list's mark and the Detail block."""

from __future__ import annotations

from test_ui_injection import assert_no_markup_effects, frame_segments, injected_events
from ui_helpers import T0, engine_with, make_app, miner_events, screen_text, wait_for

from ktriage.core.containment import fact
from ktriage.core.model import EntityKind, Event, Severity
from ktriage.ui.widgets.detail_view import DetailView
from ktriage.ui.widgets.incident_list import IncidentList

_refs = iter(range(1, 1_000))


def action(when: float, pod: str, name: str, *facts: dict) -> Event:
    n = next(_refs)
    return Event(
        time=when,
        source="ktriage",
        ref=f"action-{n}",
        kind=f"action-{name}",
        severity=Severity.INFO,
        summary=f"{name} pod {pod}: ok",
        signal=False,
        raw_inline={
            "action": name,
            "actor": "oncall",
            "result": "ok",
            "pod": pod,
            "containment": list(facts),
        },
    )


def incident_of(engine, pod_name: str) -> str:
    for inc in engine.correlator.incidents.values():
        if any(e.kind == EntityKind.POD and e.name == pod_name for e in inc.entities):
            return inc.id
    raise AssertionError(pod_name)


def row_of(app, incident_id: str) -> str:
    """The incident's row in the Incidents list, as drawn at the pane's width."""
    incidents = app.screen.query_one(IncidentList)
    index = next(i for i, inc in enumerate(incidents.shown) if inc.id == incident_id)
    return incidents.render_row(index, incidents.size.width).plain


def detail_text(app) -> str:
    """The Detail pane's text, wrapped lines joined again."""
    text = "\n".join(line.plain.rstrip() for line in app.screen.query_one(DetailView).lines)
    return text.replace("\n          ", " ")


async def test_marks_say_contained_or_nothing_at_80_columns(tmp_path) -> None:
    engine = engine_with(miner_events(context_count=5))
    miner = incident_of(engine, "api-7d9f")
    dev = incident_of(engine, "debug-shell")
    engine.attach_action(
        miner,
        action(
            T0 + 100,
            "payments/api-7d9f",
            "isolate",
            fact("network", "pod payments/api-7d9f", "isolated", "no policy allows traffic"),
        ),
    )
    engine.attach_action(
        miner,
        action(
            T0 + 130,
            "payments/api-7d9f",
            "unbind",
            fact("identity", "user alice@example.com", "bindings-removed", "2 bindings"),
        ),
    )
    engine.attach_action(
        dev,
        action(T0 + 300, "dev/debug-shell", "cordon", fact("node", "node n9", "cordoned", "x")),
    )
    app = make_app(engine, tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: miner in screen_text(app))
        text = screen_text(app)
        assert "SEV  C ID" in text
        assert " ✓ " + miner in row_of(app, miner) and " ✓ " + miner in text
        # A cordon alone contains nothing: the pod runs on.
        assert " · " + dev in row_of(app, dev) and " · " + dev in text
        assert app.screen.query_one(IncidentList).selected.id == miner
        await wait_for(pilot, lambda: "Containment" in detail_text(app))
        detail = detail_text(app)
        assert "✓ contained · time to contain 2m 10s" in detail
        assert "pod payments/api-7d9f isolated · no policy allows traffic (oncall" in detail
        assert "user alice@example.com bindings-removed · 2 bindings" in detail
        assert "Next" not in detail.split("Evidence", 1)[0]


async def test_an_action_recorded_while_running_updates_the_mark_and_detail(tmp_path) -> None:
    engine = engine_with(miner_events(context_count=5))
    dev = incident_of(engine, "debug-shell")
    app = make_app(engine, tmp_path)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.press("down")
        assert app.screen.query_one(IncidentList).selected.id == dev
        await wait_for(pilot, lambda: "· not contained yet" in detail_text(app))
        assert "open: pod dev/debug-shell not isolated" in detail_text(app)
        assert " · " + dev in row_of(app, dev)
        isolate = fact("network", "pod dev/debug-shell", "isolated", "checked")
        engine.attach_action(dev, action(T0 + 400, "dev/debug-shell", "isolate", isolate))
        await wait_for(pilot, lambda: "✓ contained" in detail_text(app))
        await wait_for(pilot, lambda: " ✓ " + dev in row_of(app, dev))


async def test_hostile_names_in_the_containment_block_stay_text(tmp_path) -> None:
    engine = engine_with(injected_events())
    app = make_app(engine, tmp_path)
    async with app.run_test(size=(200, 60)) as pilot:
        await wait_for(pilot, lambda: "Containment" in detail_text(app))
        detail = detail_text(app)
        # The pod's name in a quoted argument, as text; the user's escape shown.
        assert "'pod/web-[bold red]x[/]-[link=http://evil]y[/link]'" in detail
        assert "mallory\\x1b[2J" in detail
        assert "\x1b" not in detail and "\x07" not in detail
        assert_no_markup_effects(frame_segments(app))
        app.screen.query_one(DetailView).focus()
        await pilot.press("G")
        assert_no_markup_effects(frame_segments(app))
