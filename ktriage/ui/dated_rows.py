"""What the panes whose rows carry an event time share: the date only where needed."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from ktriage.ui.format import span_days


class DatedRows:
    """A mixin for a pane of timed rows: `dated` (every row carries its date) when the
    rows span days, `days` (the day(s) to name once in the title) for a single day other
    than today. "Today" is the app's wall clock: the real one even in a replay, whose own
    clock stops at the recording's end."""

    app: Any
    wall_clock: Callable[[], float] | None = None  # set to override the app's clock
    dated = False
    days = ""

    def _today(self) -> float:
        clock = self.wall_clock or getattr(self.app, "wall_clock", None) or time.time
        return float(clock())

    def _date_span(self, oldest: float | None, newest: float | None) -> None:
        """Set `dated` and `days` for rows from `oldest` to `newest` (None: no rows)."""
        if oldest is None or newest is None:
            self.dated, self.days = False, ""
        else:
            self.dated, self.days = span_days(oldest, newest, self._today())
