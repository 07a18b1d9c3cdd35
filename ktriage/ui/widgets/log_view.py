"""A pod's log in a bounded ring of lines, with search highlighting.

A Line-API view: only the lines on screen are rendered. It keeps the newest
`capacity` lines; older ones are dropped and the first line says how many. Lines
arrive already made safe (`core.text.shown`: secrets redacted, control
characters escaped) and are shown as plain text, never markup.
"""

from __future__ import annotations

import collections
from typing import ClassVar

from rich.style import Style
from rich.text import Text
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.strip import Strip

MAX_WIDTH = 20_000  # columns the view scrolls to the right (lines are bounded anyway)


class LogView(ScrollView, can_focus=True):
    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "logview--match",
        "logview--current",
        "logview--note",
    }
    DEFAULT_CSS = """
    LogView { scrollbar-size-vertical: 1; scrollbar-size-horizontal: 1; }
    LogView > .logview--match { background: $ktriage-match-background; }
    LogView > .logview--current { background: $accent; color: $background; text-style: bold; }
    LogView > .logview--note { color: $ktriage-muted; text-style: italic; }
    """

    def __init__(self, capacity: int = 10_000, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.capacity = capacity
        self.lines: collections.deque[str] = collections.deque(maxlen=capacity)
        self.total = 0  # lines ever added: line number `total - 1` is the newest
        self.dropped = 0  # lines lost: out of the ring, or before they reached it
        self.follow = True
        self.search = ""
        self.current: int | None = None  # the line number of the current match
        self._width = 1

    # ---- data ---------------------------------------------------------------------

    @property
    def first_number(self) -> int:
        return self.total - len(self.lines)

    @property
    def note_lines(self) -> int:
        return 1 if self.dropped else 0

    def clear(self) -> None:
        self.lines.clear()
        self.total = self.dropped = 0
        self.current = None
        self._width = 1
        self._resize()

    def add_lines(self, lines: list[str], dropped: int = 0) -> None:
        """Append lines (already shown-safe); `dropped` lines were lost before them."""
        if not lines and not dropped:
            return
        overflow = max(0, len(self.lines) + len(lines) - self.capacity)
        self.dropped += dropped + overflow
        self.lines.extend(lines)
        self.total += len(lines) + dropped
        for line in lines:
            if len(line) > self._width:
                self._width = min(len(line), MAX_WIDTH)
        self._resize()
        if self.follow:
            self.scroll_end(animate=False, immediate=True, x_axis=False, force=True)

    def _resize(self) -> None:
        self.virtual_size = Size(self._width, len(self.lines) + self.note_lines)
        self.refresh()

    def text(self) -> str:
        return "\n".join(self.lines)

    # ---- search -------------------------------------------------------------------

    def set_search(self, text: str) -> bool:
        """Highlight `text` (case-insensitive) and go to its first match from the
        top of the view; False when no line has it."""
        self.search = text.lower()
        self.current = None
        self.refresh()
        if not self.search:
            return True
        top = self.first_number + max(0, round(self.scroll_y) - self.note_lines)
        return self._go(top, +1) or self._go(top, -1)

    def next_match(self, step: int) -> bool:
        if not self.search:
            return False
        start = self.current + step if self.current is not None else self.first_number
        return self._go(start, step)

    def _go(self, number: int, step: int) -> bool:
        first = self.first_number
        index = max(number - first, 0) if step > 0 else min(number - first, len(self.lines) - 1)
        needle = self.search
        while 0 <= index < len(self.lines):
            if needle in self.lines[index].lower():
                self.current = first + index
                self.follow = False
                y = index + self.note_lines
                self.scroll_to(y=max(0, y - self.size.height // 2), animate=False, immediate=True)
                self.refresh()
                return True
            index += step
        return False

    # ---- rendering ----------------------------------------------------------------

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        width = self.scrollable_content_region.width
        base = self.rich_style
        row = scroll_y + y
        if self.note_lines and row == 0:
            note = Text(
                f"⟨{self.dropped:,} earlier lines dropped: this view keeps the newest "
                f"{self.capacity:,}⟩",
                style=self.get_component_rich_style("logview--note", partial=True),
            )
            return self._strip(note, 0, width, base)
        index = row - self.note_lines
        if not 0 <= index < len(self.lines):
            return Strip.blank(width, base)
        line = self.lines[index]
        text = Text(line, no_wrap=True)
        if self.search:
            number = self.first_number + index
            component = "logview--current" if number == self.current else "logview--match"
            style = self.get_component_rich_style(component, partial=True)
            lowered = line.lower()
            start = lowered.find(self.search)
            while start != -1:
                text.stylize(style, start, start + len(self.search))
                start = lowered.find(self.search, start + max(len(self.search), 1))
        return self._strip(text, scroll_x, width, base)

    def _strip(self, text: Text, scroll_x: int, width: int, base: Style) -> Strip:
        text.end = ""
        segments = list(text.render(self.app.console))
        return Strip(segments).crop_extend(scroll_x, scroll_x + width, base).apply_style(base)
