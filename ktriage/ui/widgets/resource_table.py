"""A table of cluster objects for a `:` view (pods, nodes, events...).

A RowList, so it moves like every pane (j/k, g/G, pages) and `/` filters it
(words, `!exclude`, `ns:NAME`). Every cell is the server's text: shown as plain
text through `shown` (secrets redacted, control characters escaped), never markup.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

from rich.text import Text

from ktriage.core.text import clip, clip_middle, shown
from ktriage.resourceread import Cell, Resource, Row, When
from ktriage.ui.format import age
from ktriage.ui.query import Query
from ktriage.ui.widgets.row_list import RowList

MAX_COLUMN = 60  # a cell wider than this is clipped (the last column takes the rest)
MIN_COLUMN = 6  # columns shrink to fit the screen, not below this
LAST_COLUMN = 12  # room the last column keeps when the others shrink


class ResourceTable(RowList):
    QUERY_MODE: ClassVar[str] = "filter"
    EMPTY_TEXT: ClassVar[str] = "No objects."

    def __init__(self, resource: Resource, now: Callable[[], float], *, id: str | None = None):
        super().__init__(id=id)
        self.resource = resource
        self.now = now
        self.all_rows: list[Row] = []
        self.rows: list[Row] = []
        self._texts: list[tuple[str, ...]] = []  # shown cells of `rows`
        self._widths: list[int] = [len(c) for c in resource.columns]
        self.border_title = Text(resource.title)
        self.loading_text = ""
        self._fit: tuple[int, list[int]] | None = None

    # ---- data ---------------------------------------------------------------------

    def cell_text(self, cell: Cell) -> str:
        if isinstance(cell, When):
            return "?" if cell.t is None else age(self.now() - cell.t)
        return shown(cell)

    def set_rows(self, rows: list[Row]) -> None:
        self.all_rows = rows
        self._apply()

    def _apply(self) -> None:
        query = self.query_filter
        texts = [tuple(self.cell_text(c) for c in row.cells) for row in self.all_rows]
        keep = [
            i
            for i, cells in enumerate(texts)
            if query is None
            or query.matches_fields(
                " ".join(cells).lower(), namespaces=(self.all_rows[i].namespace,)
            )
        ]
        self.rows = [self.all_rows[i] for i in keep]
        self._texts = [texts[i] for i in keep]
        widths = [len(c) for c in self.resource.columns]
        for cells in self._texts:
            for n, cell in enumerate(cells):
                widths[n] = max(widths[n], min(len(cell), MAX_COLUMN))
        self._widths = widths
        self._fit = None
        self.data_changed()

    def set_query(self, query: Query | None) -> None:
        self.query_filter = query if query is not None and not query.empty else None
        self._apply()

    @property
    def selected(self) -> Row | None:
        return self.rows[self.cursor] if 0 <= self.cursor < len(self.rows) else None

    # ---- RowList ------------------------------------------------------------------

    def row_count(self) -> int:
        return len(self.rows)

    def empty_text(self) -> str:
        if self.loading_text:
            return self.loading_text
        return super().empty_text()

    def fitted(self, width: int) -> list[int]:
        """Column widths that fit `width`: the widest columns give way first, down to
        MIN_COLUMN, so every column keeps a place (NODE at 80 columns too)."""
        if self._fit is not None and self._fit[0] == width:
            return self._fit[1]
        widths = list(self._widths)
        gaps = 2 * (len(widths) - 1)
        # The last column takes what is left, with room kept for a short value
        # (NODE's whole name; the start of a MESSAGE).
        widths[-1] = min(widths[-1], LAST_COLUMN)
        while sum(widths) + gaps > width:
            widest = max(range(len(widths) - 1), key=lambda n: widths[n], default=None)
            if widest is None or widths[widest] <= MIN_COLUMN:
                break
            widths[widest] -= 1
        self._fit = (width, widths)
        return widths

    def _line(self, cells: tuple[str, ...], width: int) -> str:
        widths = self.fitted(width)
        parts = []
        last = len(cells) - 1
        for n, cell in enumerate(cells):
            if n == last:
                parts.append(cell)
            else:
                # A name keeps its end (the suffix that tells replicas apart).
                cut = clip_middle if self.resource.columns[n] == "NAME" else clip
                parts.append(cut(cell, widths[n]).ljust(widths[n]))
        return "  ".join(parts)

    def render_header(self, width: int) -> Text | None:
        return Text(self._line(self.resource.columns, width))

    def render_row(self, index: int, width: int) -> Text:
        return Text(self._line(self._texts[index], width), no_wrap=True)

    def subtitle(self) -> str:
        total = len(self.all_rows)
        if self.query_filter is not None:
            return f"{len(self.rows)} of {total} · filter: {self.query_filter.text}"
        return f"{total} objects"
