"""Small text builders shared by the panes.

Every string that came from outside (pod names, commands, alert outputs) goes
through `plain`, which makes a rich `Text` from `shown(s)`: never markup, secrets
redacted, control and invisible characters shown escaped.
"""

from __future__ import annotations

from datetime import UTC, datetime

from rich.style import Style
from rich.text import Text

from ktriage import clusters
from ktriage.core.model import Severity, bad_time
from ktriage.core.text import shown

SEVERITY_BADGES = {
    Severity.CRITICAL: "CRIT",
    Severity.HIGH: "HIGH",
    Severity.MEDIUM: "MED ",
    Severity.LOW: "LOW ",
    Severity.INFO: "INFO",
}


def plain(text: object, style: Style | str = "") -> Text:
    """Untrusted text as a plain Text (no markup, no secrets, no hidden characters)."""
    return Text(shown(str(text)), style=style, no_wrap=True, end="")


def cell(
    text: object, width: int, style: Style | str = "", *, right: bool = False, middle: bool = False
) -> Text:
    """A fixed-width column: clipped with an ellipsis, padded with spaces. `middle` cuts
    out the middle instead of the end (a pod's name: its replica suffix tells pods apart)."""
    t = plain(text, style)
    if width <= 0:
        return Text("", end="")
    if middle and width >= 8 and t.cell_len > width:
        tail = (width - 1) // 2
        t = Text.assemble(t[: width - 1 - tail], "…", t[len(t) - tail :], end="")
    t.truncate(width, overflow="ellipsis")
    pad = width - t.cell_len
    if pad > 0:
        if right:
            t = Text.assemble(" " * pad, t, end="")
        else:
            t.append(" " * pad)
    return t


def age(seconds: float) -> str:
    """`12s`, `5m`, `3h`, `2d` — one unit, as a glance needs."""
    if not -1e15 < seconds < 1e15:  # NaN or beyond any calendar
        return "?" if seconds != seconds or seconds < 0 else "∞"
    s = max(0, int(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m"
    if s < 86400:
        return f"{s // 3600}h"
    return f"{s // 86400}d"


# Times no calendar holds (NaN, infinite, beyond year 9999) are shown as such.
_BAD_TIME = (OverflowError, ValueError, OSError, TypeError)


def clock_time(ts: float) -> str:
    try:
        return datetime.fromtimestamp(ts, UTC).strftime("%H:%M:%S")
    except _BAD_TIME:
        return "--:--:--"


def event_time(ts: float) -> str:
    """Time of day with milliseconds: timelines are read at that grain."""
    try:
        dt = datetime.fromtimestamp(ts, UTC)
    except _BAD_TIME:
        return "--:--:--.---"
    return dt.strftime("%H:%M:%S.") + f"{dt.microsecond // 1000:03d}"


def date_time(ts: float) -> str:
    try:
        return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    except _BAD_TIME:
        return bad_time(ts)


def rate(value: float) -> str:
    if value != value:
        return "?/s"
    if value >= 10_000:
        return f"{value / 1000:.0f}k/s"
    if value >= 1000:
        return f"{value / 1000:.1f}k/s"
    if value >= 10:
        return f"{value:.0f}/s"
    return f"{value:.1f}/s"


def count(n: int) -> str:
    if n >= 1_000_000:
        return f"{n / 1_000_000:.1f}M"
    if n >= 10_000:
        return f"{n / 1000:.0f}k"
    return str(n)


def day(ts: float) -> str:
    """`2026-12-03` (UTC), or `----------` for a time no calendar holds."""
    try:
        return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d")
    except _BAD_TIME:
        return "----------"


def dated_event_time(ts: float, *, millis: bool = True) -> str:
    """`12-03 14:02:11.300` (or without the milliseconds): for rows spanning days."""
    try:
        dt = datetime.fromtimestamp(ts, UTC)
    except _BAD_TIME:
        return "--------------.---" if millis else "--------------"
    text = dt.strftime("%m-%d %H:%M:%S")
    return text + f".{dt.microsecond // 1000:03d}" if millis else text


def span_days(first: float, last: float, today: float) -> tuple[bool, str]:
    """(rows need dates, the day(s) to name in the pane's title).

    Rows carry their date when the events span more than one day; a single day
    that is not today is named once, in the title; today's needs no words."""
    first_day, last_day = day(first), day(last)
    if first_day != last_day:
        return True, f"{first_day} → {last_day}"
    if first_day != day(today):
        return False, first_day
    return False, ""


def time_width(dated: bool, pane_width: int) -> int:
    """Cells of a pane's time column: `14:02:11.300`, or dated when the rows span days
    (milliseconds kept where the pane is wide enough)."""
    if not dated:
        return 12
    return 18 if pane_width >= 90 else 14


def time_cell(ts: float, dated: bool, width: int) -> str:
    if not dated:
        return event_time(ts)
    return dated_event_time(ts, millis=width >= 18)


def time_header(dated: bool, width: int) -> str:
    return ("DATE  TIME (UTC)" if width >= 16 else "DATE TIME") if dated else "TIME (UTC)"


def cluster_label(name: str, width: int = 40) -> str:
    """A cluster's (kube context's) name as a title shows it (`clusters.cluster_label`,
    with the room a title has)."""
    return clusters.cluster_label(name, width)


def in_cluster_title(cluster: str) -> str:
    """What a screen's title adds to name its cluster when several are watched ("": one)."""
    return f" · cluster {cluster_label(cluster)}" if cluster else ""
