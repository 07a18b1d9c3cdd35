"""RowList: the keyboard-driven list every pane is built on.

A Line-API view: it renders only the rows on screen, so a list of a hundred
thousand rows costs what a screenful costs. Subclasses say how many rows there
are and how one row looks; the base handles the cursor, scrolling, the header
line, following the end of a growing list, and `/` filters with `n`/`N`.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import ClassVar

from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding, BindingType
from textual.cache import LRUCache
from textual.geometry import Size
from textual.message import Message
from textual.reactive import var
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.widget import Widget

from ktriage.core.model import Severity
from ktriage.core.text import shown
from ktriage.ui.query import Query

STRIP_CACHE_SIZE = 1024

SEVERITY_CLASSES = {
    Severity.CRITICAL: "rowlist--sev-critical",
    Severity.HIGH: "rowlist--sev-high",
    Severity.MEDIUM: "rowlist--sev-medium",
    Severity.LOW: "rowlist--sev-low",
    Severity.INFO: "rowlist--sev-info",
}


# Textual's private scrollbar update, the one private API ktriage uses (textual is
# pinned below 9); should a release drop it, lists lay the screen out instead.
SCROLLBAR_UPDATE = getattr(Widget, "_scroll_update", None)


class _RowMessage(Message):
    """What the row messages carry: the list and the row. Never posted itself (no
    handler listens for it), so each message still runs only its own handlers."""

    def __init__(self, row_list: RowList, index: int) -> None:
        super().__init__()
        self.row_list = row_list
        self.index = index

    @property
    def control(self) -> RowList:
        return self.row_list


class RowList(ScrollView, can_focus=True):
    """A virtual list with a cursor. Subclasses implement `row_count` and `render_row`."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "rowlist--header",
        "rowlist--cursor",
        "rowlist--cursor-blurred",
        "rowlist--muted",
        "rowlist--match",
        "rowlist--signal",
        "rowlist--new",
        "rowlist--key",
        "rowlist--empty",
        *SEVERITY_CLASSES.values(),
    }

    DEFAULT_CSS = """
    RowList {
        scrollbar-size-vertical: 1;
        scrollbar-size-horizontal: 0;
    }
    RowList > .rowlist--header { color: $foreground; text-style: bold; }
    RowList > .rowlist--cursor {
        background: $block-cursor-background;
        color: $block-cursor-foreground;
    }
    RowList > .rowlist--cursor-blurred { background: $block-cursor-blurred-background; }
    RowList > .rowlist--muted { color: $ktriage-muted; }
    RowList > .rowlist--match { background: $ktriage-match-background; }
    RowList > .rowlist--signal { text-style: bold; }
    RowList > .rowlist--new { color: $ktriage-new; text-style: bold; }
    RowList > .rowlist--key { color: $accent; text-style: bold; }
    RowList > .rowlist--empty { color: $ktriage-muted; text-style: italic; }
    RowList > .rowlist--sev-critical { color: $severity-critical; text-style: bold; }
    RowList > .rowlist--sev-high { color: $severity-high; text-style: bold; }
    RowList > .rowlist--sev-medium { color: $severity-medium; }
    RowList > .rowlist--sev-low { color: $severity-low; }
    RowList > .rowlist--sev-info { color: $severity-info; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up,k", "cursor_up", "Up", show=False),
        Binding("down,j", "cursor_down", "Down", show=False),
        Binding("g,home", "first", "First", show=False),
        Binding("G,end", "last", "Last", show=False),
        Binding("pageup,ctrl+b", "page_up", "Page up", show=False),
        Binding("pagedown,ctrl+f", "page_down", "Page down", show=False),
        Binding("enter", "open", "Open"),
        Binding("slash", "filter", "Filter", key_display="/"),
        Binding("n", "next_match", "Next match", show=False),
        Binding("N", "previous_match", "Previous match", show=False),
    ]

    # Whether this list can follow its end as rows arrive (timeline, live stream).
    FOLLOWS: ClassVar[bool] = False
    # What `/` does here: "filter" hides other rows, "search" highlights and jumps.
    QUERY_MODE: ClassVar[str] = "filter"
    EMPTY_TEXT: ClassVar[str] = "Nothing here yet."
    PANE_TITLE: ClassVar[str] = ""
    HAS_HEADER: ClassVar[bool] = True

    # Following the end of the list as rows arrive (the subtitle says so).
    follow: var[bool] = var(False, init=False)

    class CursorMoved(_RowMessage):
        """The cursor is on another row (or the row under it changed)."""

    class Opened(_RowMessage):
        """Enter (or a double click) on a row."""

    class FilterRequested(Message):
        def __init__(self, row_list: RowList) -> None:
            super().__init__()
            self.row_list = row_list

    def __init__(
        self, *, name: str | None = None, id: str | None = None, classes: str | None = None
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.cursor = 0
        self.set_reactive(RowList.follow, self.FOLLOWS)
        self.query_filter: Query | None = None
        self._styles: dict[str, Style] = {}
        self._base_style: Style | None = None
        # Rendered rows of lists whose rows never change (see `row_key`).
        self._strip_cache: LRUCache[tuple[Hashable, ...], Strip] = LRUCache(STRIP_CACHE_SIZE)
        self.border_title = Text(self.PANE_TITLE)

    # ---- to implement ------------------------------------------------------

    def row_count(self) -> int:
        return 0

    def render_row(self, index: int, width: int) -> Text:
        return Text("")

    def render_header(self, width: int) -> Text | None:
        """The header line, or None for a list without one."""
        return None

    def row_key(self, index: int) -> Hashable | None:
        """A key for a row whose rendering never changes (an event), or None."""
        return None

    def row_matches(self, index: int, query: Query) -> bool:
        """Whether a row matches the search (search-mode lists)."""
        return False

    def subtitle(self) -> str:
        """Right-hand border text: counts, follow state, filter."""
        return ""

    # ---- helpers for subclasses --------------------------------------------

    def watch_follow(self) -> None:
        if self.is_mounted:
            self._show_subtitle()

    def _show_subtitle(self) -> None:
        # A Text, not a str: a str border title would be parsed as markup.
        self.border_subtitle = Text(shown(self.subtitle()))

    def style_for(self, component: str) -> Style:
        style = self._styles.get(component)
        if style is None:
            style = self._styles[component] = self.get_component_rich_style(component, partial=True)
        return style

    @property
    def base_style(self) -> Style:
        # Computing a widget's rich style walks its ancestors: once per style change.
        if self._base_style is None:
            self._base_style = self.rich_style
        return self._base_style

    def severity_style(self, severity: Severity) -> Style:
        return self.style_for(SEVERITY_CLASSES[severity])

    @property
    def header_lines(self) -> int:
        return 1 if self.HAS_HEADER else 0

    @property
    def page_height(self) -> int:
        return max(1, self.scrollable_content_region.height - self.header_lines)

    def data_changed(self) -> None:
        """Call after the rows changed: resizes, follows, repaints."""
        count = self.row_count()
        width = max(1, self.scrollable_content_region.width)
        self._set_virtual_size(Size(width, count + self.header_lines))
        if count == 0:
            self.cursor = 0
        elif self.follow:
            self.cursor = count - 1
            self._scroll_cursor_into_view()
        elif self.cursor >= count:
            self.cursor = count - 1
            self._scroll_cursor_into_view()
        self._show_subtitle()
        self.refresh()

    def _set_virtual_size(self, size: Size) -> None:
        """Set the virtual size, without a screen layout when only the row count moved.

        Assigning `virtual_size` lays the whole screen out again and repaints every
        pane; a list that grows ten times a second would do that ten times a second.
        When the scrollbar stays as it is (shown, or hidden), updating its extent is
        enough.
        """
        old = self.virtual_size
        if size == old:
            return
        height = self.container_size.height
        same_bar = (old.height > height) == (size.height > height)
        update = SCROLLBAR_UPDATE
        if old.width == size.width and height and same_bar and update is not None:
            self.set_reactive(RowList.virtual_size, size)
            update(self, size)
        else:
            self.virtual_size = size

    def _scroll_cursor_into_view(self) -> None:
        height = self.page_height
        top = round(self.scroll_y)
        # force: the scrollbars may not know the new virtual size until the next layout.
        if self.cursor < top:
            self.scroll_to(y=self.cursor, animate=False, force=True, immediate=True)
        elif self.cursor >= top + height:
            self.scroll_to(y=self.cursor - height + 1, animate=False, force=True, immediate=True)

    def move_cursor(self, index: int, *, user: bool = True) -> None:
        count = self.row_count()
        if count == 0:
            return
        index = max(0, min(index, count - 1))
        if self.FOLLOWS and user:
            self.follow = index == count - 1 and self.follow
        changed = index != self.cursor
        self.cursor = index
        self._scroll_cursor_into_view()
        self._show_subtitle()
        self.refresh()
        if changed or user:
            self.post_message(self.CursorMoved(self, index))

    # ---- rendering -----------------------------------------------------------

    def notify_style_update(self) -> None:
        self._styles.clear()
        self._base_style = None
        self._strip_cache.clear()
        super().notify_style_update()
        self.refresh()

    def on_resize(self, event: events.Resize) -> None:
        self.data_changed()

    def on_mount(self) -> None:
        self.data_changed()

    def on_focus(self) -> None:
        self.refresh()

    def on_blur(self) -> None:
        self.refresh()

    def empty_text(self) -> str:
        """What an empty pane says: why it is empty."""
        if self.QUERY_MODE == "filter" and self.query_filter is not None:
            return "Nothing matches the filter (esc clears it)."
        return self.EMPTY_TEXT

    def render_line(self, y: int) -> Strip:
        region = self.scrollable_content_region
        width = region.width
        base = self.base_style
        header = self.header_lines
        if header and y == 0:
            text = self.render_header(width) or Text("")
            text.stylize(self.style_for("rowlist--header"))
            return self._strip(text, width, base)
        scroll_x, scroll_y = self.scroll_offset
        index = scroll_y + y - header
        count = self.row_count()
        if count == 0:
            if y == header:
                empty = Text(self.empty_text(), self.style_for("rowlist--empty"))
                return self._strip(empty, width, base)
            return Strip.blank(width, base)
        if index >= count or index < 0:
            return Strip.blank(width, base)
        matched = (
            self.QUERY_MODE == "search"
            and self.query_filter is not None
            and self.row_matches(index, self.query_filter)
        )
        cursor = 0 if index != self.cursor else (2 if self.has_focus else 1)
        key = self.row_key(index)
        cache_key = (key, width, scroll_x, cursor, matched) if key is not None else None
        if cache_key is not None:
            cached = self._strip_cache.get(cache_key)
            if cached is not None:
                return cached
        text = self.render_row(index, width)
        if text.cell_len < width:
            # Pad first, so the cursor's background spans the whole row.
            text.pad_right(width - text.cell_len)
        if matched:
            text.stylize(self.style_for("rowlist--match"))
        if cursor:
            component = "rowlist--cursor" if cursor == 2 else "rowlist--cursor-blurred"
            text.stylize(self.style_for(component))
        strip = self._strip(text, width, base, scroll_x)
        if cache_key is not None:
            self._strip_cache[cache_key] = strip
        return strip

    def _strip(self, text: Text, width: int, base: Style, scroll_x: int = 0) -> Strip:
        text.no_wrap = True
        text.end = ""
        if text.cell_len < width + scroll_x:
            text.pad_right(width + scroll_x - text.cell_len)
        segments = list(text.render(self.app.console))
        strip = Strip(segments).crop_extend(scroll_x, scroll_x + width, base)
        return strip.apply_style(base) if base else strip

    # ---- keys ----------------------------------------------------------------

    def action_cursor_up(self) -> None:
        self.move_cursor(self.cursor - 1)

    def action_cursor_down(self) -> None:
        self.move_cursor(self.cursor + 1)

    def action_first(self) -> None:
        self.move_cursor(0)

    def action_last(self) -> None:
        if self.FOLLOWS:
            self.follow = True
        self.move_cursor(self.row_count() - 1)

    def action_page_up(self) -> None:
        self.move_cursor(self.cursor - self.page_height)

    def action_page_down(self) -> None:
        self.move_cursor(self.cursor + self.page_height)

    def action_open(self) -> None:
        if self.row_count():
            self.post_message(self.Opened(self, self.cursor))

    def action_filter(self) -> None:
        self.post_message(self.FilterRequested(self))

    def action_next_match(self) -> None:
        self._jump(+1)

    def action_previous_match(self) -> None:
        self._jump(-1)

    def _jump(self, step: int) -> None:
        query = self.query_filter
        count = self.row_count()
        if count == 0:
            return
        if query is None or self.QUERY_MODE == "filter":
            # Every row shown matches: n/N step through them.
            self.move_cursor(self.cursor + step)
            return
        index = self.find_match(query, self.cursor + step, step)
        if index is None:
            self.app.bell()
            self.notify(f"No more matches for {query.text!r}", timeout=2, markup=False)
            return
        self.move_cursor(index)

    def find_match(self, query: Query, start: int, step: int) -> int | None:
        """The first matching row from `start` in direction `step`, or None."""
        count = self.row_count()
        index = start
        while 0 <= index < count:
            if self.row_matches(index, query):
                return index
            index += step
        return None

    def set_query(self, query: Query | None) -> None:
        """Apply (or clear, with None) the `/` query for this pane."""
        self.query_filter = query if query is not None and not query.empty else None
        if self.QUERY_MODE == "search" and self.query_filter is not None:
            found = self.find_match(self.query_filter, self.cursor, +1)
            if found is None:
                found = self.find_match(self.query_filter, self.cursor, -1)
            if found is not None:
                if self.FOLLOWS:
                    self.follow = False
                self.move_cursor(found)
        self.data_changed()

    # ---- mouse ---------------------------------------------------------------

    def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is None:
            return
        index = round(self.scroll_y) + offset.y - self.header_lines
        if 0 <= index < self.row_count():
            self.move_cursor(index)
            if event.chain >= 2:
                self.action_open()

    def on_mouse_scroll_up(self, event: events.MouseScrollUp) -> None:
        if self.FOLLOWS:
            self.follow = False
