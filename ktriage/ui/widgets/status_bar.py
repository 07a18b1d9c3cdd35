"""The status bar: cluster context, each source's health, skipped lines, clock."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from rich.text import Text
from textual.widget import Widget

from ktriage.core.text import shown
from ktriage.ui.format import count, date_time, rate

_STATE_GLYPH = {
    "connected": ("●", "status--ok"),
    "done": ("✓", "status--ok"),
    "starting": ("◌", "status--warn"),
    "reconnecting": ("◐", "status--warn"),
    "stalled": ("⧖", "status--bad"),
    "failed": ("✖", "status--bad"),
}


class StatusBar(Widget):
    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "status--ok",
        "status--warn",
        "status--bad",
        "status--muted",
        "status--context",
    }
    DEFAULT_CSS = """
    StatusBar {
        dock: top;
        height: 1;
        background: $panel;
        color: $foreground;
    }
    StatusBar > .status--ok { color: $success; }
    StatusBar > .status--warn { color: $warning; }
    StatusBar > .status--bad { color: $error; text-style: bold; }
    StatusBar > .status--muted { color: $ktriage-muted; }
    StatusBar > .status--context { color: $accent; text-style: bold; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.context = ""
        self.cluster = ""
        self.mode = ""
        self.read_only = False
        self.health: Sequence[Any] = ()
        self.now: float = 0.0
        self.lag_now: float | None = None
        self.store_dropped = 0

    def update_status(
        self,
        *,
        context: str,
        cluster: str,
        mode: str,
        health: Sequence[Any],
        now: float,
        read_only: bool = False,
        lag_now: float | None = None,
        dropped: int = 0,
    ) -> None:
        self.context = context
        self.cluster = cluster
        self.mode = mode
        self.health = list(health)
        self.now = now
        self.read_only = read_only
        self.lag_now = lag_now
        self.store_dropped = dropped
        self.refresh()

    def on_click(self) -> None:
        self.app.run_action("sources")

    def _style(self, name: str):  # type: ignore[no-untyped-def]
        return self.get_component_rich_style(name, partial=True)

    def render(self) -> Text:
        muted = self._style("status--muted")
        left = Text(no_wrap=True, end="")
        left.append(" ⎈ ", self._style("status--context"))
        where = self.context or self.mode or "ktriage"
        left.append(shown(where), self._style("status--context"))
        if self.cluster and self.cluster != self.context:
            left.append(f" ({shown(self.cluster)})", muted)
        if self.read_only:
            left.append(" read-only", self._style("status--warn"))
        skipped = 0
        for kind, group in _by_kind(self.health):
            left.append("  │ ", muted)
            state = max((h.state for h in group), key=lambda st: _STATE_RANK.get(st, 0))
            glyph, style = _STATE_GLYPH.get(state, ("?", "status--muted"))
            left.append(shown(kind))
            left.append(f" {glyph}", self._style(style))
            if len(group) > 1:
                left.append(f"×{len(group)}", muted)
            troubled = next((h for h in group if h.state == state and h.last_error), None)
            if state in ("reconnecting", "stalled", "failed") and troubled is not None:
                left.append(f" {shown(troubled.last_error)[:40]}", self._style(style))
            elif state == "done":
                left.append(f" {count(sum(h.events_total for h in group))} ev", muted)
            else:
                # Watch events carry the objects' own times, not when they were seen.
                freshness = source_freshness(group, self.lag_now) if kind != "kube" else ""
                per_second = sum(h.rate() for h in group)
                if per_second > 0 and not freshness.startswith("quiet"):
                    left.append(f" {rate(per_second)}", muted)
                if freshness:
                    left.append(f" {freshness}", muted)
            skipped += sum(sum(h.skipped.values()) for h in group)
        if skipped:
            left.append("  │ ", muted)
            left.append(f"skipped {count(skipped)}", self._style("status--warn"))
        if self.store_dropped:
            left.append("  │ ", muted)
            left.append(f"not kept {count(self.store_dropped)}", self._style("status--bad"))
        right = Text(f" {date_time(self.now)} ", style=muted) if self.now else Text("")
        width = self.size.width
        room = max(0, width - right.cell_len)
        left.truncate(room, overflow="ellipsis")
        left.pad_right(room - left.cell_len)
        return Text.assemble(left, right, no_wrap=True, end="")


_STATE_RANK = {
    "done": 0,
    "connected": 1,
    "starting": 2,
    "reconnecting": 3,
    "stalled": 4,
    "failed": 5,
}


def _by_kind(health: Sequence[Any]) -> list[tuple[str, list[Any]]]:
    """Sources grouped by kind, in the order they were added."""
    groups: dict[str, list[Any]] = {}
    for h in health:
        groups.setdefault(h.kind or h.name, []).append(h)
    return list(groups.items())


# A source with no new events for this long is shown as quiet (how long), not as
# lagging: "now minus the newest event" would only grow while nothing happens.
QUIET_AFTER = 10.0


def source_freshness(group: Sequence[Any], now: float | None = None) -> str:
    """`lag 1.2s` while events of these sources flow, `quiet 3m` when none came in
    for QUIET_AFTER seconds, "" before the first event. `now` is the time on the
    clock event times are compared with (None: each source's own)."""
    lags: list[float] = []
    quiet: list[float] = []
    for h in group:
        idle = h.quiet_for(now)
        if idle is None:
            continue
        if idle >= QUIET_AFTER:
            quiet.append(idle)
            continue
        lag = h.lag(now)
        if lag is not None:
            lags.append(lag)
    if lags:
        return f"lag {_lag(max(lags))}"
    if quiet:
        return f"quiet {_lag(min(quiet))}"
    return ""


def _lag(seconds: float) -> str:
    if seconds < 10:
        return f"{seconds:.1f}s"
    if seconds < 3600:
        return f"{seconds / 60:.0f}m" if seconds >= 120 else f"{seconds:.0f}s"
    return f"{seconds / 3600:.0f}h"
