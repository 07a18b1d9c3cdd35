"""The UI on recorded streams: real captured fixtures, the demo scenario, a huge incident."""

from __future__ import annotations

import re
import time

import pytest
from real_fixtures import require_real_fixtures
from ui_helpers import REAL_FIXTURES, T0, context, make_app, screen_text, signal, wait_for

from ktriage.core.config import Config
from ktriage.core.model import EntityKind, Severity, entity
from ktriage.engine import Engine
from ktriage.ui.app import replay_clock
from ktriage.ui.widgets.detail_view import DetailView
from ktriage.ui.widgets.incident_list import IncidentList
from ktriage.ui.widgets.live_stream import LiveStream
from ktriage.ui.widgets.timeline import Timeline


def replayed(files) -> Engine:
    engine = Engine(Config())
    engine.context_name = "replay"
    engine.replay_files(list(files))
    return engine


@pytest.fixture
def real_files():
    require_real_fixtures(REAL_FIXTURES)
    files = sorted(REAL_FIXTURES.glob("k8s-audit-v1/*.jsonl"))
    files += sorted(REAL_FIXTURES.glob("falco-alerts/*.jsonl"))
    files += sorted(REAL_FIXTURES.glob("tetragon/*.json"))
    files += sorted(REAL_FIXTURES.glob("falco-k8s-audit/*.json"))
    assert files, f"no fixture files under {REAL_FIXTURES}"
    return files


async def test_real_fixtures_open_navigate_and_show_raw_records(tmp_path, real_files):
    engine = replayed(real_files)
    expected = engine.correlator.sorted_incidents()
    assert expected, "the real fixtures should open incidents"
    app = make_app(engine, tmp_path, clock=replay_clock(engine))
    async with app.run_test(size=(160, 45)) as pilot:
        incidents = app.screen.query_one(IncidentList)
        assert [i.id for i in incidents.shown] == [i.id for i in expected]
        assert expected[0].id in screen_text(app)
        # Walk every incident: the timeline always shows the selected one.
        timeline = app.screen.query_one(Timeline)
        for _ in range(len(expected) - 1):
            await pilot.press("j")
            assert timeline.incident.id == incidents.selected.id
        await pilot.press("g", "enter", "g", "enter")
        detail = app.screen.query_one(DetailView)
        assert app.focused is detail
        plain = [line.value.plain for line in detail.logical]
        assert "Raw record (secrets redacted)" in plain
        # Skipped lines are counted in the status bar.
        skipped = sum(engine.ingestor.skipped.values())
        if skipped:
            assert f"skipped {skipped}" in screen_text(app)


async def test_demo_scenario_replayed_shows_the_cryptominer_story(tmp_path, cryptominer_streams):
    engine = replayed(cryptominer_streams)
    app = make_app(engine, tmp_path, clock=replay_clock(engine))
    async with app.run_test(size=(120, 36)) as pilot:
        incidents = app.screen.query_one(IncidentList)
        top = incidents.shown[0]
        assert top.severity is Severity.CRITICAL
        # ktriage's "mining-pool egress" or Falco's rule, named verbatim
        assert re.search(r"min(ing|er)[- ]pool", top.title.lower())
        await pilot.press("enter", "slash", *"source:falco", "enter")
        timeline = app.screen.query_one(Timeline)
        assert timeline.selected_event.source == "falco"
        await pilot.press("n")
        assert timeline.selected_event.source == "falco"
        live = app.screen.query_one(LiveStream)
        assert live.total == len(engine.store)


async def test_hundred_thousand_events_in_one_incident_stay_fast(tmp_path):
    pod = entity(EntityKind.POD, "shop", "web-0")
    events = [signal(T0, "falco", "s-0", "shell", Severity.HIGH, "shell in shop/web-0", (pod,))]
    events += [
        context(T0 + i * 0.01, "tetragon", f"c-{i}", f"exec /bin/step {i}", (pod,))
        for i in range(1, 100_000)
    ]
    engine = Engine()
    engine.add_events(events)
    app = make_app(engine, tmp_path)
    async with app.run_test(size=(120, 36)) as pilot:
        timeline = app.screen.query_one(Timeline)
        assert timeline.row_count() == 100_000
        await pilot.press("enter")
        # Only the visible rows are rendered: a full repaint is a few dozen lines.
        start = time.perf_counter()
        for y in range(timeline.size.height):
            timeline.render_line(y)
        assert time.perf_counter() - start < 0.2
        for keys in (("g",), ("G",), ("pageup",) * 20, ("slash", *"step 50000", "enter")):
            start = time.perf_counter()
            await pilot.press(*keys)
            # Generous bound: Pilot itself waits for the app to settle after each key.
            assert time.perf_counter() - start < 1.5 * len(keys)
        assert timeline.selected_event.summary == "exec /bin/step 50000"
        await pilot.press("n")
        assert timeline.selected_event.summary == "exec /bin/step 50000"  # the only match
        # New events keep arriving at the end while the user reads the middle.
        engine.add_events(
            [context(T0 + 1000 + i, "tetragon", f"new-{i}", "exec new", (pod,)) for i in range(10)]
        )
        await wait_for(pilot, lambda: timeline.virtual_size.height == 100_011)
        assert timeline.selected_event.summary == "exec /bin/step 50000"


async def test_sources_screen_lists_each_source_with_skips(tmp_path, cryptominer_streams):
    bad = tmp_path / "garbage.jsonl"
    bad.write_text('not json\n{"neither": "audit nor falco"}\n')
    engine = replayed([*cryptominer_streams, bad])
    app = make_app(engine, tmp_path, clock=replay_clock(engine))
    async with app.run_test(size=(160, 45)) as pilot:
        await pilot.press("ctrl+p", *"Sources", "enter")
        from ktriage.ui.screens.sources import SourcesScreen

        await wait_for(pilot, lambda: isinstance(app.screen, SourcesScreen))
        text = screen_text(app)
        assert "replay (4 file(s))" in text
        assert "done" in text
        reasons = engine.ingestor.skipped
        assert reasons
        for reason in reasons:
            assert reason in text
        await pilot.press("escape")
        assert not isinstance(app.screen, SourcesScreen)
