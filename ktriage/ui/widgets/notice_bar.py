"""Notices below the panes: what happened (saved, paused, failed), why a key did nothing.

A notice takes its own line below the panes (they shrink while it shows) instead
of floating over them like a toast, so the newest rows of the Timeline and the
Live stream stay visible. One line, the newest wins, with a count of the ones
it replaced; an explanation (why a key did nothing) takes a few lines, as many
as the screen has to spare. Each hides after its time, or with `esc`. The last
HISTORY notices are kept for the Notices screen (palette: Notices).

Every text is shown as plain text: notices carry pod names, paths and error
messages that come from outside.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.timer import Timer
from textual.widget import Widget
from textual.widgets import Static

from ktriage.core.text import clip, shown
from ktriage.ui.screens.dialog import LINE_KEYS, ScrollKeys, TextBoxScreen

HISTORY = 200
# Lines the panes need at least (their rows' min-height in ktriage.tcss), plus the
# status bar and the footer: a notice gets what is left, so it never pushes the
# newest rows of the bottom panes off the screen.
PANES_MIN_HEIGHT = 7 + 6 + 6
CHROME_HEIGHT = 2
MAX_LINES = 8
# Longest message kept: a notice is a line, not a log.
MAX_TEXT = 2000

_MARKS = {"information": "•", "warning": "⚠", "error": "✖"}


@dataclass(frozen=True, slots=True)
class Notice:
    title: str
    message: str
    severity: str = "information"
    at: float = 0.0

    def line(self) -> str:
        """Title and message on one line, as plain (already shown) text."""
        lead = f"{self.title}: " if self.title else ""
        return lead + self.message.replace("\n", " ⏎ ")


class NoticeBar(Widget):
    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "notice--information",
        "notice--warning",
        "notice--error",
        "notice--muted",
    }
    DEFAULT_CSS = """
    NoticeBar {
        height: auto;
        max-height: 9;
        display: none;
        background: $panel;
        padding: 0 1;
    }
    NoticeBar.-active { display: block; }
    NoticeBar.-explain { border-top: solid $warning; }
    NoticeBar > .notice--information { color: $accent; text-style: bold; }
    NoticeBar > .notice--warning { color: $warning; text-style: bold; }
    NoticeBar > .notice--error { color: $error; text-style: bold; }
    NoticeBar > .notice--muted { color: $ktriage-muted; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._timer: Timer | None = None
        self.history: deque[Notice] = deque(maxlen=HISTORY)
        self.current: Notice | None = None
        self.body = ""  # an explanation's lines, shown below the title
        self.replaced = 0  # notices the current one replaced since the bar was last hidden
        self.seconds = 0.0  # how long the current one stays
        self.text = ""

    @property
    def active(self) -> bool:
        return self.has_class("-active")

    # ---- showing -----------------------------------------------------------------

    def post(
        self,
        message: str,
        *,
        title: str = "",
        severity: str = "information",
        seconds: float = 5.0,
    ) -> None:
        """A one-line notice (untrusted parts included: shown as plain text)."""
        notice = Notice(
            clip(shown(title), 200),
            clip(shown(message, keep_newlines=True), MAX_TEXT),
            severity if severity in _MARKS else "information",
            time.time(),
        )
        self._show(notice, "", seconds)

    def show_notice(self, title: str, body: str, seconds: float = 20.0) -> None:
        """An explanation: `title` on the first line, `body` below it, as many lines
        as the screen spares (untrusted parts included: shown as plain text)."""
        # Redacted whole, then clipped: clipping first could cut a secret in two.
        text = clip(shown(body, keep_newlines=True), MAX_TEXT)
        notice = Notice(clip(shown(title), 200), text, "warning", time.time())
        self._show(notice, text, seconds)

    def _show(self, notice: Notice, body: str, seconds: float) -> None:
        self.history.append(notice)
        if self.active:
            self.replaced += 1
        # A burst of one-line notices changes only the words: no new layout, one timer.
        same_shape = self.active and not body and not self.body
        self.current = notice
        self.body = body
        self.text = notice.line() if not body else f"{notice.title}\n{body}"
        seconds = max(0.5, seconds)
        if same_shape and self._timer is not None and seconds == self.seconds:
            self._timer.reset()
            self.refresh()
            return
        self.set_class(bool(body), "-explain")
        self.styles.max_height = self._max_lines(bool(body))
        self.add_class("-active")
        if self._timer is not None:
            self._timer.stop()
        self.seconds = seconds
        self._timer = self.set_timer(self.seconds, self.hide)
        self.refresh(layout=True)

    def _max_lines(self, explain: bool) -> int:
        if not explain:
            return 1
        spare = self.app.size.height - CHROME_HEIGHT - PANES_MIN_HEIGHT
        if self.is_attached:
            # The `/` prompt, when open, takes a line too.
            spare -= len(self.screen.query("FilterBar.-active"))
        # The border line above an explanation counts in the lines it takes.
        return max(2, min(MAX_LINES + 1, spare))

    def hide(self) -> None:
        if self._timer is not None:
            self._timer.stop()
            self._timer = None
        self.replaced = 0
        self.current = None
        self.remove_class("-active")

    # ---- rendering ---------------------------------------------------------------

    def render(self) -> Text:
        notice = self.current
        if notice is None:
            return Text("")
        width = max(1, self.size.width)
        style = self.get_component_rich_style(f"notice--{notice.severity}", partial=True)
        muted = self.get_component_rich_style("notice--muted", partial=True)
        body_lines: list[Text] = []
        cut = False
        if self.body:
            body_lines = list(Text(self.body).wrap(self.app.console, width))
            room = max(1, self._max_lines(True) - 2)  # less the border and the title
            if len(body_lines) > room:
                body_lines, cut = body_lines[:room], True
                last = body_lines[-1]
                last.truncate(max(1, width - 1))
                last.append("…")
        tail = Text(no_wrap=True, end="")
        if self.replaced:
            tail.append(f"  +{self.replaced} earlier", muted)
        if cut:
            tail.append("  all of it: palette, Notices", muted)
        tail.append("  esc hides", muted)
        head = Text(no_wrap=True, end="", overflow="ellipsis")
        head.append(_MARKS[notice.severity] + " ", style)
        if self.body:
            head.append(notice.title, style)
        else:
            if notice.title:
                head.append(notice.title + ": ", style)
            head.append(notice.message.replace("\n", " ⏎ "))
        room = max(0, width - tail.cell_len)
        if head.cell_len > room:
            # Cut in the middle: the start says what, the end which file or why.
            head = _middle_cut(head, room)
        head.pad_right(room - head.cell_len)
        first = Text.assemble(head, tail, no_wrap=True, end="")
        first.truncate(width)
        if not self.body:
            return first
        out = Text(end="")
        out.append_text(first)
        for line in body_lines:
            out.append("\n")
            out.append_text(line)
        return out


def _middle_cut(text: Text, width: int) -> Text:
    if width < 9:
        text.truncate(width, overflow="ellipsis")
        return text
    keep_end = min(60, (width - 1) * 2 // 3)
    head = text[: width - 1 - keep_end]
    head.truncate(width - 1 - keep_end)
    tail = text[len(text) - keep_end :]
    return Text.assemble(head, "…", tail, no_wrap=True, end="")


class NoticesScreen(TextBoxScreen, ScrollKeys):
    """The last notices, newest first."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q", "close", "Close", key_display="esc"),
        *LINE_KEYS,
    ]
    DEFAULT_CSS = """
    NoticesScreen > VerticalScroll {
        width: 100;
        max-width: 95%;
        height: auto;
        max-height: 90%;
        border-title-color: $accent;
        padding: 0 1;
    }
    NoticesScreen Static { height: auto; }
    """

    def __init__(self, notices: list[Notice]) -> None:
        super().__init__()
        self.notices = list(notices)

    def compose(self) -> ComposeResult:
        with VerticalScroll() as scroll:
            scroll.border_title = Text(f"Notices: the last {len(self.notices)}")
            scroll.border_subtitle = Text("esc closes")
            yield Static(notices_text(self.notices), id="notices-text")


def notices_text(notices: list[Notice]) -> Text:
    out = Text()
    if not notices:
        out.append("No notices yet.", "italic")
        return out
    for notice in reversed(notices):
        stamp = time.strftime("%H:%M:%S", time.gmtime(notice.at))
        out.append(f"{stamp} {_MARKS.get(notice.severity, '•')} ", "bold")
        if notice.title:
            out.append(notice.title + "\n  ", "bold")
        out.append(notice.message.replace("\n", "\n  ") + "\n")
    return out
