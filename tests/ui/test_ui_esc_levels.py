"""`esc` goes up one level of the pane hierarchy, never back through focus history:
Detail → the pane whose row it shows → Incidents; Timeline, Pods and Live stream → Incidents."""

from __future__ import annotations

from ui_helpers import engine_with, make_app, miner_events, wait_for

from ktriage.ui.screens.main import MainScreen


async def test_esc_from_detail_goes_to_timeline_then_incidents(tmp_path):
    app = make_app(engine_with(miner_events()), tmp_path)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.press("enter")
        assert app.focused.id == "timeline"
        await pilot.press("enter")
        assert app.focused.id == "detail"
        await pilot.press("escape")
        assert app.focused.id == "timeline"
        await pilot.press("escape")
        assert app.focused.id == "incidents"
        # The top level: esc again changes nothing.
        await pilot.press("escape")
        assert app.focused.id == "incidents"
        assert isinstance(app.screen, MainScreen)


async def test_esc_from_live_stream_enter_goes_up_not_back_to_live(tmp_path):
    """The issue's case: Live stream enter → Timeline; esc must go up to Incidents,
    not back to the Live stream (and never on to Pods)."""
    app = make_app(engine_with(miner_events()), tmp_path)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = app.screen
        screen.pods.focus()
        screen.live.focus()
        await pilot.press("G", "enter")
        assert app.focused.id == "timeline"
        await pilot.press("escape")
        assert app.focused.id == "incidents"
        await pilot.press("escape")
        assert app.focused.id == "incidents"


async def test_esc_from_pods_and_live_goes_to_incidents(tmp_path):
    app = make_app(engine_with(miner_events()), tmp_path)
    async with app.run_test(size=(120, 36)) as pilot:
        for pane in ("pods", "live"):
            app.screen.query_one(f"#{pane}").focus()
            await pilot.pause()
            await pilot.press("escape")
            assert app.focused.id == "incidents", pane


async def test_esc_from_detail_returns_to_the_pane_it_details(tmp_path):
    app = make_app(engine_with(miner_events()), tmp_path)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = app.screen
        screen.pods.focus()
        await pilot.press("enter")
        assert app.focused.id == "detail"
        await pilot.press("escape")
        assert app.focused.id == "pods"
        await pilot.press("escape")
        assert app.focused.id == "incidents"
        # Detail reached from the incidents (tab) goes back up to them.
        await pilot.press("tab", "tab")
        assert app.focused.id == "detail"
        await pilot.press("escape")
        assert app.focused.id == "timeline"
        await pilot.press("escape")
        assert app.focused.id == "incidents"


async def test_esc_clears_a_pane_filter_before_going_up(tmp_path):
    app = make_app(engine_with(miner_events()), tmp_path)
    async with app.run_test(size=(120, 36)) as pilot:
        incidents = app.screen.incidents
        await pilot.press("slash", *"dev", "enter")
        await wait_for(pilot, lambda: incidents.query_filter is not None)
        assert len(incidents.shown) == 1
        await pilot.press("escape")
        await wait_for(pilot, lambda: incidents.query_filter is None)
        assert len(incidents.shown) == 2
        assert app.focused is incidents


async def test_esc_minimizes_a_zoomed_pane_first(tmp_path):
    app = make_app(engine_with(miner_events()), tmp_path)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.press("enter", "z")
        assert app.screen.maximized is app.screen.timeline
        await pilot.press("escape")
        assert app.screen.maximized is None
        assert app.focused.id == "timeline"
        await pilot.press("escape")
        assert app.focused.id == "incidents"
