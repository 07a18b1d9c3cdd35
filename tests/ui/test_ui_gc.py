"""The collector while the app runs: young collections spaced out (a listed page's
short-lived objects are mostly gone before one), no automatic full collection, and
the interpreter's own settings back once the app exits."""

from __future__ import annotations

import gc

from ui_helpers import engine_with, make_app, miner_events

from ktriage.ui.app import YOUNG_GC_THRESHOLD


async def test_collector_thresholds_while_running_and_after(tmp_path):
    before = gc.get_threshold()
    app = make_app(engine_with(miner_events()), tmp_path)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        young, middle, full = gc.get_threshold()
        assert young == YOUNG_GC_THRESHOLD != before[0]
        assert middle == before[1]
        assert full >= 1_000_000_000  # no automatic full collection
    assert gc.get_threshold() == before
