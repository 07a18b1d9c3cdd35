"""The secret corpus and hidden characters in every attacker-controlled field reach no
pane: incident list, timeline, live stream, detail (with the raw record) and zoom."""

from __future__ import annotations

import sys
from pathlib import Path

import orjson
from ui_helpers import engine_with, make_app, screen_text, wait_for

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit"))
from hostile_records import leaks, write_inputs

from ktriage.core.ingest import Ingestor
from ktriage.ui.widgets.detail_view import DetailView
from ktriage.ui.widgets.live_stream import LiveStream
from ktriage.ui.widgets.timeline import Timeline


def hostile_events(tmp_path: Path) -> list:
    ingestor = Ingestor()
    events = []
    for path in write_inputs(tmp_path):
        for n, line in enumerate(path.read_bytes().splitlines(), 1):
            for ev in ingestor.feed_line(line, origin=f"{path.name}:{n}"):
                # Kept inline so the detail pane shows the whole raw record.
                ev.raw_inline = orjson.loads(line)
                events.append(ev)
    return events


def detail_text(app) -> str:
    return "\n".join(line.value.plain for line in app.screen.query_one(DetailView).logical)


async def test_hostile_secret_corpus_reaches_no_pane(tmp_path):
    events = hostile_events(tmp_path)
    assert len(events) == 4
    app = make_app(engine_with(events), tmp_path)
    async with app.run_test(size=(220, 60)) as pilot:
        seen: list[str] = [screen_text(app)]  # incident list, live stream, status bar
        await pilot.press("enter")
        timeline = app.screen.query_one(Timeline)
        assert app.focused is timeline
        seen.append(screen_text(app))
        # Every event of the incident in the detail pane, raw record included.
        for index in range(len(events)):
            timeline.focus()
            await pilot.press("g", *(["j"] * index), "enter")
            detail = app.screen.query_one(DetailView)
            await wait_for(pilot, lambda detail=detail: app.focused is detail)
            text = detail_text(app)
            assert "Raw record (secrets redacted)" in text
            seen += [text, screen_text(app)]
            await pilot.press("z")  # zoomed detail
            seen.append(screen_text(app))
            await pilot.press("escape")
        # The live stream, zoomed.
        app.screen.query_one(LiveStream).focus()
        await pilot.press("z")
        seen.append(screen_text(app))
        whole = "\n".join(seen)
        assert "<redacted>" in whole
        assert "DB_PASSWORD" in whole and "userAgent" in whole and "arguments" in whole
        assert leaks(whole) == []
        # Hidden characters are shown as escapes, not as nothing (a raw tab would
        # move the terminal's cursor past the pane's border).
        assert "\\u200b\\u202e\\t\\x85\\ufeff\\u2028" in whole
