"""`/` filters and searches, `n`/`N`, and the timeline following new events."""

from __future__ import annotations

from ui_helpers import T0, context, engine_with, make_app, miner_events, wait_for

from ktriage.core.model import EntityKind, entity
from ktriage.core.parse.audit import OWN_REQUEST_KIND
from ktriage.ui.widgets.filter_bar import FilterBar
from ktriage.ui.widgets.incident_list import IncidentList
from ktriage.ui.widgets.live_stream import LiveStream
from ktriage.ui.widgets.timeline import Timeline


async def test_incident_filter_hides_rows_and_esc_clears_it(tmp_path):
    app = make_app(engine_with(miner_events()), tmp_path)
    async with app.run_test(size=(120, 36)) as pilot:
        incidents = app.screen.query_one(IncidentList)
        await pilot.press("slash")
        bar = app.screen.query_one(FilterBar)
        assert bar.is_open
        await pilot.press(*"debug")
        # Applied as it is typed.
        assert [i.title for i in incidents.shown] == ["Exec in dev/debug-shell"]
        await pilot.press("enter")
        assert not bar.is_open
        assert app.focused is incidents
        assert "filter: debug" in str(incidents.border_subtitle)
        await pilot.press("escape")
        assert len(incidents.shown) == 2
        assert incidents.query_filter is None


async def test_filter_by_severity_and_cancel_restores(tmp_path):
    app = make_app(engine_with(miner_events()), tmp_path)
    async with app.run_test(size=(120, 36)) as pilot:
        incidents = app.screen.query_one(IncidentList)
        await pilot.press("slash", *"sev:critical", "enter")
        assert [i.severity.label for i in incidents.shown] == ["critical"]
        await pilot.press("slash", "ctrl+u")
        assert len(incidents.shown) == 2  # live preview of the edited query
        await pilot.press("escape")
        # Cancelled: the query from before the edit is back.
        assert [i.severity.label for i in incidents.shown] == ["critical"]


async def test_live_stream_filters_by_source_severity_and_text(tmp_path):
    engine = engine_with(miner_events())
    app = make_app(engine, tmp_path)
    async with app.run_test(size=(120, 36)) as pilot:
        live = app.screen.query_one(LiveStream)
        live.focus()
        await pilot.press("slash", *"source:tetragon", "enter")
        assert live.shown and {e.source for e in live.shown} == {"tetragon"}
        await pilot.press("slash", "ctrl+u", *"sev:high", "enter")
        assert {e.ref for e in live.shown} == {"a-exec", "f-miner"}
        await pilot.press("slash", "ctrl+u", *"xmrig !dev", "enter")
        assert [e.ref for e in live.shown] == ["f-miner"]
        # New events that match join the filtered view; others do not.
        pod = entity(EntityKind.POD, "payments", "api-7d9f")
        engine.add_events(
            [
                context(T0 + 300, "tetragon", "late-1", "exec ./xmrig --donate 0", (pod,)),
                context(T0 + 301, "tetragon", "late-2", "exec /bin/true", (pod,)),
            ]
        )
        await wait_for(pilot, lambda: len(live.shown) == 2)
        assert [e.ref for e in live.shown] == ["f-miner", "late-1"]


async def test_timeline_search_jumps_with_n_and_N(tmp_path):
    app = make_app(engine_with(miner_events(context_count=40)), tmp_path)
    async with app.run_test(size=(120, 36)) as pilot:
        timeline = app.screen.query_one(Timeline)
        await pilot.press("enter", "g")
        assert timeline.cursor == 0
        await pilot.press("slash", *"/tmp/3", "enter")
        # Matches: /tmp/3 and /tmp/30../tmp/39, the first after the cursor.
        assert timeline.selected_event.summary.startswith("exec /bin/ls -la /tmp/3 ")
        await pilot.press("n")
        assert "/tmp/30 " in timeline.selected_event.summary
        await pilot.press("n", "n")
        assert "/tmp/32 " in timeline.selected_event.summary
        await pilot.press("N")
        assert "/tmp/31 " in timeline.selected_event.summary
        # Searching does not hide context: every row is still there.
        assert timeline.row_count() == 42
        assert not timeline.follow


async def test_timeline_follows_new_events_until_the_user_moves_away(tmp_path):
    engine = engine_with(miner_events(context_count=60))
    app = make_app(engine, tmp_path)
    pod = entity(EntityKind.POD, "payments", "api-7d9f")
    async with app.run_test(size=(120, 36)) as pilot:
        timeline = app.screen.query_one(Timeline)
        await pilot.press("enter")
        assert timeline.follow
        engine.add_events([context(T0 + 500, "tetragon", "new-1", "exec /tmp/xmrig", (pod,))])
        await wait_for(pilot, lambda: timeline.selected_event.ref == "new-1")
        # The newest row is on screen.
        assert timeline.scroll_y + timeline.page_height >= timeline.row_count()
        # Moving up pauses following: new events no longer move the cursor.
        await pilot.press("k")
        assert not timeline.follow
        held = timeline.selected_event.ref
        engine.add_events([context(T0 + 501, "tetragon", "new-2", "exec /tmp/x2", (pod,))])
        await wait_for(pilot, lambda: timeline.virtual_size.height == 64 + 1)
        assert timeline.selected_event.ref == held
        # An event that sorts before the cursor keeps the cursor on the same event.
        engine.add_events([context(T0 + 2, "tetragon", "early", "exec early", (pod,))])
        await wait_for(pilot, lambda: timeline.virtual_size.height == 65 + 1)
        assert timeline.selected_event.ref == held
        # f resumes following, and jumps to the end.
        await pilot.press("f")
        assert timeline.follow
        assert timeline.selected_event.ref == "new-2"
        await pilot.press("f")
        assert not timeline.follow
        await pilot.press("G")
        assert timeline.follow


async def test_new_and_escalated_incidents_are_marked_until_looked_at(tmp_path):
    engine = engine_with(miner_events())
    app = make_app(engine, tmp_path)
    async with app.run_test(size=(120, 36)) as pilot:
        incidents = app.screen.query_one(IncidentList)
        first, second = incidents.shown
        # The selected incident is being looked at; the other one is new.
        assert incidents.marker(first) == ""
        assert incidents.marker(second) == "new"
        await pilot.press("j")
        assert incidents.marker(second) == ""
        await pilot.press("k")
        # A critical signal on the dev pod escalates the other incident.
        from ui_helpers import signal

        from ktriage.core.model import Severity

        dev = entity(EntityKind.POD, "dev", "debug-shell")
        engine.add_events(
            [
                signal(
                    T0 + 210,
                    "falco",
                    "f-dev",
                    "miner",
                    Severity.CRITICAL,
                    "xmrig started in dev/debug-shell",
                    (dev,),
                    tactic="impact",
                )
            ]
        )
        await wait_for(pilot, lambda: incidents.marker(second) == "escalated")
        assert "▲" in "".join(s.text for s in incidents.render_line(2 + incidents.cursor))


async def test_a_flood_of_events_is_drawn_in_batches(tmp_path):
    import asyncio
    import time

    engine = engine_with(miner_events())
    app = make_app(engine, tmp_path)
    pod = entity(EntityKind.POD, "payments", "api-7d9f")
    async with app.run_test(size=(120, 36)) as pilot:
        screen = app.main_screen
        batches: list[int] = []
        apply = screen.apply_changes

        def counting_apply(changes):
            batches.append(len(changes.events))
            apply(changes)

        screen.apply_changes = counting_apply
        frames = 0
        display = app._display

        def counting_display(*args):
            nonlocal frames
            frames += 1
            display(*args)

        app._display = counting_display
        start = time.monotonic()
        for b in range(50):  # 5,000 events over about a second, 100 every 20 ms
            engine.add_events(
                [
                    context(T0 + 100 + b + i / 1000, "tetragon", f"f-{b}-{i}", "exec x", (pod,))
                    for i in range(100)
                ]
            )
            await asyncio.sleep(0.02)
        live = screen.live
        await wait_for(pilot, lambda: live.total >= 5_000 + 43)
        elapsed = time.monotonic() - start
        assert sum(batches) == 5_000
        # About ten batches a second, however many events: never a redraw per event.
        assert len(batches) <= 12 * elapsed + 2
        assert frames <= 30 * elapsed + 5


async def test_ktriage_own_requests_are_muted_in_the_live_stream(tmp_path):
    engine = engine_with(miner_events())
    app = make_app(engine, tmp_path)
    async with app.run_test(size=(120, 36)) as pilot:
        live = app.screen.query_one(LiveStream)
        pod = entity(EntityKind.POD, "payments", "api-7d9f")
        own = context(
            T0 + 300, "audit", "own-1", "alice get pods payments/api-7d9f (ktriage)", (pod,)
        )
        own.kind = OWN_REQUEST_KIND
        other = context(T0 + 301, "audit", "other-1", "bob get pods payments/api-7d9f", (pod,))
        engine.add_events([own, other])
        await wait_for(pilot, lambda: live.shown[-1].ref == "other-1")
        muted = live.style_for("rowlist--muted")

        def summary_style(ref: str):
            index = next(i for i, e in enumerate(live.shown) if e.ref == ref)
            row = live.render_row(index, 110)
            start = row.plain.index("get pods")
            return {span.style for span in row.spans if span.start <= start < span.end}

        assert muted in summary_style("own-1")
        assert muted not in summary_style("other-1")
        # And the filter hides them altogether.
        live.focus()
        await pilot.press("slash", *"!ktriage-request", "enter")
        assert "own-1" not in {e.ref for e in live.shown}
        assert "other-1" in {e.ref for e in live.shown}


async def test_a_filter_that_matches_nothing_says_so(tmp_path):
    app = make_app(engine_with(miner_events()), tmp_path)
    async with app.run_test(size=(120, 36)) as pilot:
        live = app.screen.query_one(LiveStream)
        live.focus()
        assert live.empty_text() == "Waiting for events…"
        await pilot.press("slash", *"no-such-thing-anywhere", "enter")
        assert live.row_count() == 0
        line = live.render_line(live.header_lines).text
        assert "Nothing matches the filter (esc clears it)." in line
        await pilot.press("escape")
        assert live.row_count() > 0
