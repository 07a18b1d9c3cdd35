"""RowList updates its scrollbar with one private Textual method (`Widget._scroll_update`),
wrapped: the pinned Textual has it, and without it the list still sizes itself."""

from __future__ import annotations

from rich.text import Text
from textual.app import App, ComposeResult
from textual.widget import Widget
from ui_helpers import wait_for

from ktriage.ui.themes import VARIABLE_DEFAULTS
from ktriage.ui.widgets import row_list
from ktriage.ui.widgets.row_list import RowList


class NumberList(RowList):
    PANE_TITLE = "Numbers"

    def __init__(self) -> None:
        super().__init__(id="numbers")
        self.count = 0

    def row_count(self) -> int:
        return self.count

    def render_row(self, index: int, width: int) -> Text:
        return Text(str(index))

    def render_header(self, width: int) -> Text | None:
        return Text("N")


class NumberApp(App):
    def get_theme_variable_defaults(self) -> dict[str, str]:
        return dict(VARIABLE_DEFAULTS)

    def compose(self) -> ComposeResult:
        yield NumberList()


def test_the_pinned_textual_has_the_private_method_row_list_wraps() -> None:
    assert callable(getattr(Widget, "_scroll_update", None))
    assert row_list.SCROLLBAR_UPDATE is Widget._scroll_update


async def _grow(app: NumberApp) -> None:
    async with app.run_test(size=(40, 12)) as pilot:
        rows = app.query_one(NumberList)
        for count in (3, 50, 500):
            rows.count = count
            rows.data_changed()
            await wait_for(pilot, lambda c=count: rows.virtual_size.height == c + 1)


async def test_the_list_sizes_itself_with_the_private_method() -> None:
    await _grow(NumberApp())


async def test_the_list_sizes_itself_without_the_private_method(monkeypatch) -> None:
    monkeypatch.setattr(row_list, "SCROLLBAR_UPDATE", None)
    await _grow(NumberApp())
