"""The Detail pane: the selected event's raw record, a pod's or an incident's summary.

Logical lines (ktriage.ui.detail) are wrapped to the pane's width once per
content or width change; only the visible wrapped lines are rendered.
"""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual import events
from textual.binding import Binding

from ktriage.core.model import Severity
from ktriage.ui.detail import DetailLine, DetailStyles
from ktriage.ui.query import Query
from ktriage.ui.widgets.row_list import RowList

LABEL_WIDTH = 10


class DetailView(RowList):
    COMPONENT_CLASSES: ClassVar[set[str]] = {
        *RowList.COMPONENT_CLASSES,
        "containment--done",
        "containment--open",
    }
    DEFAULT_CSS = """
    DetailView > .containment--done { color: $success; text-style: bold; }
    DetailView > .containment--open { color: $severity-high; text-style: bold; }
    """
    PANE_TITLE = "Detail"
    QUERY_MODE = "search"
    HAS_HEADER = False
    EMPTY_TEXT = "Select an event, a pod or an incident."
    BINDINGS: ClassVar = [Binding("enter", "open", "Open", show=False)]

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.logical: list[DetailLine] = []
        self.lines: list[Text] = []
        self.subject = ""
        self._wrapped_width = -1

    def styles_for_builders(self) -> DetailStyles:
        return DetailStyles(
            label=self.style_for("rowlist--muted"),
            muted=self.style_for("rowlist--muted"),
            key=self.style_for("rowlist--key"),
            heading=self.style_for("rowlist--signal"),
            severity={int(s): self.severity_style(s) for s in Severity},
            ok=self.style_for("containment--done"),
            warning=self.style_for("containment--open"),
        )

    def show(self, lines: list[DetailLine], subject: str) -> None:
        """New content; an update of the same subject keeps the reading position."""
        same = subject == self.subject and bool(subject)
        self.logical = lines
        self.subject = subject
        self._wrapped_width = -1
        self._layout()
        if not same:
            self.cursor = 0
            self.scroll_to(y=0, animate=False, force=True, immediate=True)
        self.data_changed()

    def clear(self) -> None:
        self.show([], "")

    def _layout(self) -> None:
        width = max(10, self.scrollable_content_region.width)
        if width == self._wrapped_width:
            return
        self._wrapped_width = width
        console = self.app.console
        out: list[Text] = []
        for line in self.logical:
            if line.label:
                label = Text(line.label.ljust(LABEL_WIDTH - 1)[: LABEL_WIDTH - 1] + " ")
                label.stylize(self.style_for("rowlist--muted"))
                parts = line.value.wrap(console, max(1, width - LABEL_WIDTH))
                for i, part in enumerate(parts):
                    prefix = label if i == 0 else Text(" " * LABEL_WIDTH)
                    out.append(Text.assemble(prefix, part))
            elif line.code and line.value.cell_len <= width:
                out.append(line.value)  # most JSON lines fit: no wrapping work
            elif line.code:
                plain = line.value.plain
                indent = len(plain) - len(plain.lstrip(" "))
                parts = line.value.wrap(console, max(1, width - indent - 2))
                for i, part in enumerate(parts):
                    out.append(part if i == 0 else Text.assemble(" " * (indent + 2), part))
            else:
                value = line.value
                if not value.plain:
                    out.append(Text(""))
                    continue
                out.extend(value.wrap(console, width))
        for text in out:
            text.end = ""
            text.no_wrap = True
        self.lines = out

    def on_resize(self, event: events.Resize) -> None:
        self._layout()
        super().on_resize(event)

    def notify_style_update(self) -> None:
        super().notify_style_update()

    def row_count(self) -> int:
        return len(self.lines)

    def render_row(self, index: int, width: int) -> Text:
        return self.lines[index].copy()

    def row_matches(self, index: int, query: Query) -> bool:
        return query.matches_text(self.lines[index].plain.lower())

    def subtitle(self) -> str:
        text = self.subject
        if self.query_filter is not None:
            text += f" · search: {self.query_filter.text} (n/N)"
        return text
