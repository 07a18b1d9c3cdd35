"""The status bar: cluster context, each source's health, skipped lines, clock."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from rich.text import Text
from textual.widget import Widget

from ktriage.core.text import clip, clip_middle, shown
from ktriage.ui.format import clock_time, count, date_time, rate

_STATE_GLYPH = {
    "connected": ("●", "status--ok"),
    "done": ("✓", "status--ok"),
    "starting": ("◌", "status--warn"),
    "loading": ("◌", "status--warn"),
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
        # (cluster, its worst source state) when several clusters are watched.
        self.clusters: list[tuple[str, str]] = []

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
        clusters: Sequence[tuple[str, str]] = (),
    ) -> None:
        self.clusters = list(clusters)
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
        """The most detailed line that fits: full (rates, lag, reasons), then short
        (reasons shortened), brief (abbreviated names, reasons shortened), compact
        (glyphs only). Every source's health stays on the line at every width; `!`
        leads when any has a problem (unhealthy, or waiting because of one)."""
        muted = self._style("status--muted")
        width = self.size.width
        for detail in (FULL, SHORT, BRIEF, COMPACT):
            clock = date_time(self.now) if detail >= SHORT else clock_time(self.now)
            right = Text(f" {clock} ", style=muted) if self.now else Text("")
            room = max(0, width - right.cell_len)
            left = self._left(detail)
            if left.cell_len <= room:
                break
        left.truncate(room, overflow="ellipsis")
        left.pad_right(room - left.cell_len)
        return Text.assemble(left, right, no_wrap=True, end="")

    def _left(self, detail: int) -> Text:
        muted = self._style("status--muted")
        bar = "  │ " if detail == FULL else " │ "
        left = Text(no_wrap=True, end="")
        groups = _by_kind(self.health)
        states = [_group_state(group) for _, group in groups]
        if detail != FULL and any(_trouble(group) is not None for _, group in groups):
            left.append(" !", self._style("status--bad"))
        left.append(" ⎈ ", self._style("status--context"))
        if self.clusters:
            self._cluster_segments(left, detail)
        else:
            where = shown(self.context or self.mode or "ktriage")
            if detail != FULL:
                where = clip(where, 24 if detail == SHORT else 14)
            left.append(where, self._style("status--context"))
        if detail == FULL and self.cluster and self.cluster != self.context:
            left.append(f" ({shown(self.cluster)})", muted)
        if self.read_only:
            left.append(" read-only" if detail >= SHORT else " ro", self._style("status--warn"))
        skipped = 0
        for (kind, group), state in zip(groups, states, strict=True):
            left.append(bar, muted)
            glyph, style = _STATE_GLYPH.get(state, ("?", "status--muted"))
            name = shown(kind)
            left.append(_ABBREVIATIONS.get(kind, name[:4]) if detail <= BRIEF else name)
            left.append(f" {glyph}", self._style(style))
            if len(group) > 1:
                left.append(f"×{len(group)}", muted)
            skipped += sum(sum(h.skipped.values()) for h in group)
            if detail == COMPACT:
                continue
            troubled = _trouble(group)
            if troubled is not None:
                limit = 80 if detail == FULL else 30
                reason = short_reason(shown(troubled.last_error), limit)
                left.append(f" {reason}", self._style(style))
            elif state == "loading":
                # A replay loading in the background: how far, never "complete" before.
                loaded = count(sum(h.events_total for h in group))
                left.append(f" {_progress(group)}", self._style("status--warn"))
                if detail == FULL:
                    left.append(f" · {loaded} ev", muted)
            elif detail != FULL:
                continue
            elif state == "done":
                left.append(f" {count(sum(h.events_total for h in group))} ev", muted)
                if _progress(group):
                    left.append(f" {_progress(group)}", muted)
            else:
                # Watch events carry the objects' own times, not when they were seen.
                freshness = source_freshness(group, self.lag_now) if kind != "kube" else ""
                per_second = sum(h.rate() for h in group)
                if per_second > 0 and not freshness.startswith("quiet"):
                    left.append(f" {rate(per_second)}", muted)
                if freshness:
                    left.append(f" {freshness}", muted)
        if skipped:
            left.append(bar, muted)
            words = "skipped" if detail >= SHORT else "skip"
            left.append(f"{words} {count(skipped)}", self._style("status--warn"))
        if self.store_dropped:
            left.append(bar, muted)
            words = "not kept" if detail >= SHORT else "lost"
            left.append(f"{words} {count(self.store_dropped)}", self._style("status--bad"))
        return left

    def _cluster_segments(self, left: Text, detail: int) -> None:
        """Each cluster's name and the glyph of its worst source: `eu ● us ✖`."""
        width = {FULL: 16, SHORT: 10}.get(detail, 6)
        names = [shown(name) for name, _ in self.clusters]
        if any(len(n) > width for n in names):
            # Clipped, `prod-eu-1` and `prod-eu-2` would read the same: what they
            # share in front goes first (`…1`, `…2`).
            common = _shared_start(names) if len(names) > 1 else 0
            names = [f"…{n[common:]}" if 0 < common < len(n) else n for n in names]
        for i, ((_, state), name) in enumerate(zip(self.clusters, names, strict=True)):
            glyph, style = _STATE_GLYPH.get(state, ("?", "status--muted"))
            if i:
                left.append(" ")
            left.append(clip(name, width), self._style("status--context"))
            left.append(f" {glyph}", self._style(style))


# Levels of detail of the status line, most first: FULL (rates, lag, reasons), SHORT
# (reasons shortened), BRIEF (abbreviated names, reasons shortened), COMPACT (glyphs).
FULL, SHORT, BRIEF, COMPACT = 3, 2, 1, 0
_UNHEALTHY = frozenset({"reconnecting", "stalled", "failed"})
# Source kinds as the compact line names them.
_ABBREVIATIONS = {
    "kube": "k8s",
    "audit": "aud",
    "falco": "fal",
    "tetragon": "tet",
    "replay": "rep",
    "podlogs": "logs",
}


def _shared_start(names: Sequence[str]) -> int:
    """How many characters every name starts with alike."""
    shortest = min(len(n) for n in names)
    for i in range(shortest):
        if len({n[i] for n in names}) > 1:
            return i
    return shortest


def _progress(group: Sequence[Any]) -> str:
    """What the group's loading sources say of their progress ("loading 34%")."""
    return " ".join(shown(p) for h in group if (p := getattr(h, "progress", "")))


def _trouble(group: Sequence[Any]) -> Any | None:
    """The source of a group whose problem the line must say: one unhealthy with a
    reason, or one still starting because of a problem (a file that is not there:
    a mistyped path waits for ever)."""
    for h in group:
        if h.last_error and (h.state in _UNHEALTHY or h.state == "starting"):
            return h
    return None


def short_reason(text: str, width: int) -> str:
    """A reason in `width` characters: paths cut to their last part first (which file
    is what tells a mistyped path), then the end clipped."""
    if len(text) <= width:
        return text
    words = []
    for word in text.split(" "):
        if "/" in word and len(word) > 16:
            last = word.rstrip(":,;").rsplit("/", 1)[-1] or word
            tail = word[len(word.rstrip(":,;")) :]
            word = "…/" + clip_middle(last, 20) + tail
        words.append(word)
    return clip(" ".join(words), width)


def _group_state(group: Sequence[Any]) -> str:
    return max((h.state for h in group), key=lambda st: _STATE_RANK.get(st, 0))


_STATE_RANK = {
    "done": 0,
    "connected": 1,
    "loading": 2,
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
