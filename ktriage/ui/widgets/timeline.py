"""The Timeline pane: every event of the selected incident, in time order.

A virtual view over `incident.timeline` (a sorted list of (time, event id)):
only the rows on screen are rendered, so an incident of 100,000 events scrolls
as fast as one of ten. Signals stand out (severity colour, bold, a bar in the
margin); context events are muted. It follows new events until the user moves
away from the end; `f` toggles following.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Hashable
from typing import ClassVar

from rich.text import Text

from ktriage.core.allowlist import EXPECTED_PREFIX
from ktriage.core.model import Event, Incident
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

# Rendered rows kept per (event id, width); cleared when the theme changes.
_ROW_CACHE_SIZE = 4096


class Timeline(RowList, DatedRows):
    PANE_TITLE = "Timeline"
    FOLLOWS = True
    QUERY_MODE = "search"
    EMPTY_TEXT = "Select an incident to see its timeline."
    BINDINGS: ClassVar = [("enter", "open", "Detail")]

    def __init__(self, get_event: Callable[[int], Event], *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.get_event = get_event
        self.incident: Incident | None = None
        self.selected_event_id: int | None = None
        self._rows: dict[tuple[int, int, bool], Text] = {}

    # ---- data ------------------------------------------------------------------

    def show_incident(self, incident: Incident | None) -> None:
        """Switch to another incident (or none), starting at its end, following."""
        same = (
            incident is not None and self.incident is not None and incident.id == self.incident.id
        )
        self.incident = incident
        if same:
            self.incident_updated()
            return
        self.follow = True
        self.selected_event_id = None
        self._update_days()
        self.data_changed()
        if self.row_count():
            self.move_cursor(self.row_count() - 1, user=False)

    def incident_updated(self) -> None:
        """The shown incident changed (new events, maybe out of order)."""
        if self.incident is None:
            return
        if not self.follow and self.selected_event_id is not None:
            index = self.index_of(self.selected_event_id)
            if index is not None:
                self.cursor = index
        before = self.selected_event_id
        self._update_days()
        self.data_changed()
        if self.follow:
            ev = self.event_at(self.cursor)
            self.selected_event_id = ev.id if ev is not None else None
            if self.selected_event_id != before:
                self.post_message(self.CursorMoved(self, self.cursor))

    def _update_days(self) -> None:
        """Dates where they are needed: in the rows when the incident spans days, once in
        the title when it is from another day than today."""
        inc = self.incident
        if inc is None or not inc.timeline:
            self._date_span(None, None)
        else:
            self._date_span(inc.timeline[0][0], inc.timeline[-1][0])
        title = "Timeline" + (f" · {inc.id}" if inc else "")
        if self.days:
            title += f" · {self.days}"
        self.border_title = Text(title)

    def index_of(self, event_id: int) -> int | None:
        """Row of an event in the timeline, by binary search on (time, id)."""
        if self.incident is None:
            return None
        timeline = self.incident.timeline
        try:
            ev = self.get_event(event_id)
        except IndexError:
            return None
        pos = bisect.bisect_left(timeline, (ev.time, event_id))
        if pos < len(timeline) and timeline[pos][1] == event_id:
            return pos
        return None

    def select_event(self, event_id: int) -> bool:
        index = self.index_of(event_id)
        if index is None:
            return False
        self.follow = False
        self.move_cursor(index)
        return True

    def event_at(self, index: int) -> Event | None:
        if self.incident is None or not 0 <= index < len(self.incident.timeline):
            return None
        return self.get_event(self.incident.timeline[index][1])

    @property
    def selected_event(self) -> Event | None:
        return self.event_at(self.cursor)

    def move_cursor(self, index: int, *, user: bool = True) -> None:
        ev = self.event_at(max(0, min(index, self.row_count() - 1)))
        self.selected_event_id = ev.id if ev is not None else None
        super().move_cursor(index, user=user)

    def toggle_follow(self) -> None:
        self.follow = not self.follow
        if self.follow and self.row_count():
            self.move_cursor(self.row_count() - 1, user=False)
        self._show_subtitle()

    # ---- rendering --------------------------------------------------------------

    def notify_style_update(self) -> None:
        self._rows.clear()
        super().notify_style_update()

    def row_count(self) -> int:
        return len(self.incident.timeline) if self.incident is not None else 0

    def row_key(self, index: int) -> Hashable | None:
        assert self.incident is not None
        # The same event renders differently once its date is shown.
        return (self.incident.timeline[index][1], self.dated)

    def _time_width(self, width: int) -> int:
        return time_width(self.dated, width)

    def render_header(self, width: int) -> Text | None:
        tw = self._time_width(width)
        return Text.assemble(
            "  ",
            cell(time_header(self.dated, tw), tw),
            " SOURCE   SEV  ",
            cell("SUMMARY", max(0, width - tw - 17)),
        )

    def render_row(self, index: int, width: int) -> Text:
        assert self.incident is not None
        eid = self.incident.timeline[index][1]
        key = (eid, width, self.dated)
        text = self._rows.get(key)
        if text is None:
            if len(self._rows) > _ROW_CACHE_SIZE:
                self._rows.clear()
            text = self._rows[key] = self._render_event(self.get_event(eid), width)
        return text.copy()

    def _render_event(self, ev: Event, width: int) -> Text:
        sev_style = self.severity_style(ev.severity)
        muted = self.style_for("rowlist--muted")
        if ev.signal:
            bar = Text("▌", sev_style)
            badge = Text(SEVERITY_BADGES[ev.severity], sev_style)
            summary_style = self.style_for("rowlist--signal")
        else:
            bar = Text(" ")
            badge = Text(SEVERITY_BADGES[ev.severity].lower(), muted)
            summary_style = muted
        if ev.source == "ktriage":
            summary_style = self.style_for("rowlist--key")
        tw = self._time_width(width)
        summary_w = max(0, width - tw - 17)
        summary = plain(ev.summary, summary_style)
        if ev.suppressed_by:
            # An allow-list match reads "(expected: …)"; a user's suppression says so.
            expected = ev.suppressed_by.startswith(EXPECTED_PREFIX)
            summary.append(" (" if expected else " (suppressed: ", muted)
            summary.append_text(plain(ev.suppressed_by, muted))
            summary.append(")", muted)
        summary.truncate(summary_w, overflow="ellipsis")
        return Text.assemble(
            bar,
            Text(" "),
            cell(time_cell(ev.time, self.dated, tw), tw, muted),
            Text(" "),
            cell(ev.source, 8),
            Text(" "),
            badge,
            Text(" "),
            summary,
        )

    def row_matches(self, index: int, query: Query) -> bool:
        ev = self.event_at(index)
        return ev is not None and query.matches_event(ev)

    def subtitle(self) -> str:
        if self.incident is None:
            return ""
        n = len(self.incident.timeline)
        signals = self.incident.signal_count
        text = f"{n} event{'s' if n != 1 else ''} · {signals} signal{'s' if signals != 1 else ''}"
        text += " · following" if self.follow else " · paused (f follows)"
        if self.query_filter is not None:
            text += f" · search: {self.query_filter.text} (n/N)"
        return text
