"""The Live stream pane: every event as it arrives, in a bounded ring buffer.

`/` filters by source, severity and text (see ktriage.ui.query); the filter
applies to what is already there and to what arrives. ktriage's own API
requests are shown muted (`!ktriage-request` hides them).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from typing import ClassVar

from rich.text import Text

from ktriage.core.model import Event
from ktriage.core.parse.audit import OWN_REQUEST_KIND
from ktriage.ui.dated_rows import DatedRows
from ktriage.ui.format import (
    SEVERITY_BADGES,
    cell,
    plain,
    time_cell,
    time_header,
    time_width,
)
from ktriage.ui.query import Query
from ktriage.ui.widgets.row_list import RowList

DEFAULT_CAPACITY = 10_000


class LiveStream(RowList, DatedRows):
    PANE_TITLE = "Live stream"
    FOLLOWS = True
    QUERY_MODE = "filter"
    EMPTY_TEXT = "Waiting for events…"
    BINDINGS: ClassVar = [("enter", "open", "Go to incident")]

    def __init__(
        self,
        incident_of: Callable[[Event], str | None],
        *,
        capacity: int = DEFAULT_CAPACITY,
        id: str | None = None,
    ) -> None:
        super().__init__(id=id)
        self.incident_of = incident_of
        self.capacity = capacity
        self.events: list[Event] = []
        self.shown: list[Event] = self.events
        self.total = 0
        # The oldest and newest event times seen (arrival order is not time order: a
        # watch reports a pod created weeks ago).
        self._oldest: float | None = None
        self._newest: float | None = None

    def add_events(self, events: Iterable[Event]) -> None:
        batch = list(events)
        if not batch:
            return
        self.total += len(batch)
        times = [e.time for e in batch if e.time == e.time]  # NaN has no day
        if times:
            low, high = min(times), max(times)
            self._oldest = low if self._oldest is None else min(self._oldest, low)
            self._newest = high if self._newest is None else max(self._newest, high)
        if len(batch) > self.capacity:
            batch = batch[-self.capacity :]
        self.events.extend(batch)
        query = self.query_filter
        if query is not None:
            self.shown.extend(e for e in batch if query.matches_event(e))
        self._trim()
        self._update_days()
        self.data_changed()

    def _update_days(self) -> None:
        """Dates in the rows when the events kept span days; a single day other than
        today is named in the title."""
        self._date_span(self._oldest, self._newest)
        self.border_title = Text(self.PANE_TITLE + (f" · {self.days}" if self.days else ""))

    def _trim(self) -> None:
        # Trim in chunks so the list is not shifted on every batch.
        limit = self.capacity + self.capacity // 4
        if len(self.events) > limit:
            drop = len(self.events) - self.capacity
            del self.events[:drop]
            if self.shown is self.events:
                self._rows_dropped(drop)
        if self.shown is not self.events and len(self.shown) > limit:
            drop = len(self.shown) - self.capacity
            del self.shown[:drop]
            self._rows_dropped(drop)

    def _rows_dropped(self, drop: int) -> None:
        """Keep the cursor and the view on the same rows after the oldest went."""
        if self.follow:
            return
        self.cursor = max(0, self.cursor - drop)
        self.scroll_to(y=max(0, round(self.scroll_y) - drop), animate=False, immediate=True)

    def set_query(self, query: Query | None) -> None:
        selected = self.selected_event
        self.query_filter = query if query is not None and not query.empty else None
        if self.query_filter is None:
            self.shown = self.events
        else:
            q = self.query_filter
            self.shown = [e for e in self.events if q.matches_event(e)]
        self.cursor = len(self.shown) - 1
        if selected is not None and not self.follow:
            for i in range(len(self.shown) - 1, -1, -1):
                if self.shown[i] is selected:
                    self.cursor = i
                    break
        self.data_changed()
        self._scroll_cursor_into_view()

    @property
    def selected_event(self) -> Event | None:
        if 0 <= self.cursor < len(self.shown):
            return self.shown[self.cursor]
        return None

    def toggle_follow(self) -> None:
        self.follow = not self.follow
        if self.follow and self.shown:
            self.move_cursor(len(self.shown) - 1, user=False)
        self._show_subtitle()

    # ---- rendering ----------------------------------------------------------------

    def row_count(self) -> int:
        return len(self.shown)

    def row_key(self, index: int) -> Hashable | None:
        # The incident column can change (an event joins an incident later).
        ev = self.shown[index]
        return (ev.id, self.incident_of(ev), self.dated)

    def render_header(self, width: int) -> Text | None:
        tw = time_width(self.dated, width)
        summary_w = max(0, width - tw - 17 - 11)
        return Text.assemble(
            "  ",
            cell(time_header(self.dated, tw), tw),
            " SOURCE   SEV  ",
            cell("SUMMARY", summary_w),
            " INCIDENT  ",
        )

    def render_row(self, index: int, width: int) -> Text:
        ev = self.shown[index]
        sev_style = self.severity_style(ev.severity)
        muted = self.style_for("rowlist--muted")
        incident = self.incident_of(ev) or ""
        tw = time_width(self.dated, width)
        summary_w = max(0, width - tw - 17 - 11)
        if ev.kind == OWN_REQUEST_KIND:
            # ktriage's own checks and actions as the API server logged them: kept in
            # view (nothing is hidden from the user), but quiet, as they are no news.
            summary = plain(ev.summary, muted)
        else:
            summary = plain(ev.summary, self.style_for("rowlist--signal") if ev.signal else "")
        summary.truncate(summary_w, overflow="ellipsis")
        summary.pad_right(summary_w - summary.cell_len)
        return Text.assemble(
            Text("▌", sev_style) if ev.signal else Text(" "),
            Text(" "),
            cell(time_cell(ev.time, self.dated, tw), tw, muted),
            Text(" "),
            cell(ev.source, 8),
            Text(" "),
            Text(
                SEVERITY_BADGES[ev.severity] if ev.signal else SEVERITY_BADGES[ev.severity].lower(),
                sev_style if ev.signal else muted,
            ),
            Text(" "),
            summary,
            Text(" "),
            cell(incident, 10, self.style_for("rowlist--key")),
        )

    def subtitle(self) -> str:
        text = f"{len(self.events)} kept of {self.total}"
        if self.query_filter is not None:
            text += f" · filter: {self.query_filter.text} ({len(self.shown)})"
        text += " · following" if self.follow else " · paused (f follows)"
        return text
