"""Every source's health in full: what the status bar sums up by kind."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, ClassVar

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.widgets import Static

from ktriage.clusters import cluster_label
from ktriage.core.text import shown
from ktriage.ui.format import count, rate
from ktriage.ui.screens.dialog import TextBoxScreen
from ktriage.ui.widgets.status_bar import QUIET_AFTER


def sources_table(health: Sequence[Any], now: float | None = None) -> Table:
    table = Table(expand=True, box=None, header_style="bold", pad_edge=False)
    columns = ("source", "state", "events", "rate", "lag", "last event", "skipped", "last problem")
    for column in columns:
        table.add_column(column, no_wrap=column != "last problem")
    for h in health:
        idle = h.quiet_for(now)
        # A quiet source is not behind: its lag would only grow (see the status bar).
        lag = h.lag(now) if idle is not None and idle < QUIET_AFTER else None
        skipped = ", ".join(f"{reason} {n}" for reason, n in sorted(h.skipped.items())) or "-"
        # With several clusters a source's cluster leads its name.
        cluster = getattr(h, "cluster", "")
        table.add_row(
            Text(f"{cluster_label(cluster)}: {shown(h.name)}" if cluster else shown(h.name)),
            Text(h.state),
            count(h.events_total),
            rate(h.rate()),
            "-" if lag is None else f"{lag:.1f}s",
            "-" if idle is None else f"{idle:.0f}s ago",
            Text(shown(skipped)),
            Text(shown(h.last_error or "-")),
        )
    return table


class SourcesScreen(TextBoxScreen):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q", "close", "Close", key_display="esc"),
    ]
    DEFAULT_CSS = """
    SourcesScreen > VerticalScroll {
        width: 95%;
        height: auto;
        max-height: 90%;
        padding: 0 1;
    }
    """

    def __init__(self, health: Sequence[Any], now: float | None = None) -> None:
        super().__init__()
        self.health = list(health)
        self.now = now

    def compose(self) -> ComposeResult:
        with VerticalScroll() as scroll:
            scroll.border_title = Text("Sources")
            scroll.border_subtitle = Text("esc closes")
            yield Static(sources_table(self.health, self.now), id="sources-table")

    def on_mount(self) -> None:
        self.set_interval(1.0, self._refresh)

    def _refresh(self) -> None:
        self.query_one(Static).update(sources_table(self.health, self.now or time.time()))
