"""Moving around by keyboard: panes, rows, opening and going back."""

from __future__ import annotations

from ui_helpers import engine_with, make_app, miner_events, screen_text, wait_for

from ktriage.core.model import Severity
from ktriage.ui.widgets.detail_view import DetailView
from ktriage.ui.widgets.incident_list import IncidentList
from ktriage.ui.widgets.timeline import Timeline


async def test_incidents_sorted_by_severity_and_first_selected(tmp_path):
    app = make_app(engine_with(miner_events()), tmp_path)
    async with app.run_test(size=(120, 36)) as pilot:
        incidents = app.screen.query_one(IncidentList)
        await wait_for(pilot, lambda: len(incidents.shown) == 2)
        assert [i.severity for i in incidents.shown] == [Severity.CRITICAL, Severity.MEDIUM]
        assert app.focused is incidents
        timeline = app.screen.query_one(Timeline)
        assert timeline.incident is incidents.shown[0]
        text = screen_text(app)
        assert "Miner download" in text
        assert "payments/api-7d9f" in text


async def test_tab_cycles_panes_in_order(tmp_path):
    app = make_app(engine_with(miner_events()), tmp_path)
    async with app.run_test(size=(120, 36)) as pilot:
        order = []
        for _ in range(5):
            order.append(app.focused.id)
            await pilot.press("tab")
        assert order == ["incidents", "timeline", "detail", "pods", "live"]
        assert app.focused.id == "incidents"
        await pilot.press("shift+tab")
        assert app.focused.id == "live"


async def test_j_k_g_G_move_the_cursor_and_select_the_incident(tmp_path):
    app = make_app(engine_with(miner_events()), tmp_path)
    async with app.run_test(size=(120, 36)) as pilot:
        incidents = app.screen.query_one(IncidentList)
        timeline = app.screen.query_one(Timeline)
        await pilot.press("j")
        assert incidents.cursor == 1
        assert timeline.incident.id == incidents.shown[1].id
        await pilot.press("k")
        assert incidents.cursor == 0
        await pilot.press("G")
        assert incidents.cursor == 1
        await pilot.press("g")
        assert incidents.cursor == 0
        await pilot.press("down")
        await pilot.press("up")
        assert incidents.cursor == 0


async def test_enter_opens_timeline_then_detail_and_esc_goes_back(tmp_path):
    app = make_app(engine_with(miner_events()), tmp_path)
    async with app.run_test(size=(120, 36)) as pilot:
        timeline = app.screen.query_one(Timeline)
        detail = app.screen.query_one(DetailView)
        await pilot.press("enter")
        assert app.focused is timeline
        # Following: the cursor is on the newest event, the miner alert.
        assert timeline.selected_event.ref == "f-miner"
        await pilot.press("g")
        assert timeline.selected_event.ref == "a-exec"
        await pilot.press("enter")
        assert app.focused is detail
        shown = "\n".join(line.value.plain for line in detail.logical)
        assert "alice@example.com exec into payments/api-7d9f: sh" in shown
        assert "Raw record (secrets redacted)" in shown
        # The raw record's token is redacted, the value never shown.
        assert "s3cr3t-value" not in shown
        assert '"token": "<redacted>"' in shown
        await pilot.press("escape")
        assert app.focused is timeline
        await pilot.press("escape")
        assert app.focused.id == "incidents"


async def test_pods_pane_lists_the_incident_pods_and_toggles_all(tmp_path):
    app = make_app(engine_with(miner_events()), tmp_path)
    async with app.run_test(size=(120, 36)) as pilot:
        pods = app.screen.query_one("#pods")
        assert [r.name for r in pods.rows] == ["api-7d9f"]
        # In replay the node comes from the events naming the pod.
        assert pods.rows[0].node == "node-1"
        pods.focus()
        await pilot.press("a")
        await wait_for(pilot, lambda: len(pods.rows) == 2)
        assert sorted(r.name for r in pods.rows) == ["api-7d9f", "debug-shell"]
        await pilot.press("enter")
        detail = app.screen.query_one(DetailView)
        assert app.focused is detail
        assert detail.subject.startswith("pod ")


async def test_live_stream_enter_goes_to_the_event_in_its_incident(tmp_path):
    app = make_app(engine_with(miner_events()), tmp_path)
    async with app.run_test(size=(120, 36)) as pilot:
        live = app.screen.query_one("#live")
        incidents = app.screen.query_one(IncidentList)
        timeline = app.screen.query_one(Timeline)
        live.focus()
        await pilot.press("G")
        assert live.selected_event.ref == "a-dev"
        await pilot.press("enter")
        assert app.focused is timeline
        assert incidents.selected.id == timeline.incident.id
        assert timeline.selected_event.ref == "a-dev"


async def test_zoom_maximizes_the_focused_pane(tmp_path):
    app = make_app(engine_with(miner_events()), tmp_path)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.press("tab", "z")
        assert app.screen.maximized is app.screen.query_one(Timeline)
        await pilot.press("escape")
        assert app.screen.maximized is None


async def test_mouse_click_selects_and_double_click_opens(tmp_path):
    app = make_app(engine_with(miner_events()), tmp_path)
    async with app.run_test(size=(120, 36)) as pilot:
        incidents = app.screen.query_one(IncidentList)
        # Row 0 is the header; the second incident is on the third content line.
        await pilot.click(IncidentList, offset=(10, 3))
        assert incidents.cursor == 1
        timeline = app.screen.query_one(Timeline)
        assert timeline.incident.id == incidents.shown[1].id
        await pilot.click(IncidentList, offset=(10, 2), times=2)
        assert incidents.cursor == 0
        assert app.focused is timeline
