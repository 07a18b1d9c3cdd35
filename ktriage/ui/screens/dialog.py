"""The box every dialog is: centred over the screen, bounded by it, with its key hint at
the bottom left (notices come up at the bottom right and would cover it)."""

from __future__ import annotations

from typing import Any, TypeVar, cast

from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen

ResultType = TypeVar("ResultType")


class DialogScreen(ModalScreen[ResultType]):
    """A modal screen whose box is a `Vertical` with the class `dialog`, plus `-warning`
    or `-error` for the colour of its border; a `VerticalScroll` inside scrolls a long
    body instead of cutting it off."""

    DEFAULT_CSS = """
    DialogScreen { align: center middle; }
    DialogScreen > .dialog {
        width: 100;
        max-width: 95%;
        height: auto;
        max-height: 90%;
        border: round $primary;
        border-title-style: bold;
        border-subtitle-align: left;
        background: $surface;
        padding: 0 1;
    }
    DialogScreen > .dialog.-warning { border: round $warning; border-title-color: $warning; }
    DialogScreen > .dialog.-error { border: round $error; border-title-color: $error; }
    /* Bounded by the screen (not by the box, whose height follows its content). */
    DialogScreen > .dialog VerticalScroll { height: auto; max-height: 80vh; }
    """


# A line down and up in a screen's VerticalScroll (ScrollKeys), for its BINDINGS.
LINE_KEYS: tuple[Binding, ...] = (
    Binding("j,down", "scroll(1)", "Down", show=False),
    Binding("k,up", "scroll(-1)", "Up", show=False),
)
# Its top and bottom.
END_KEYS: tuple[Binding, ...] = (
    Binding("g,home", "ends(0)", "Top", show=False),
    Binding("G,end", "ends(1)", "Bottom", show=False),
)


class ScrollKeys:
    """The actions of LINE_KEYS, END_KEYS and page keys on a screen's one VerticalScroll
    (a mixin for a Screen)."""

    def _scroll_view(self) -> VerticalScroll:
        return cast("ModalScreen[Any]", self).query_one(VerticalScroll)

    def action_scroll(self, step: int) -> None:
        self._scroll_view().scroll_relative(y=step, animate=False)

    def action_page(self, direction: int) -> None:
        view = self._scroll_view()
        view.scroll_relative(y=direction * max(1, view.size.height - 1), animate=False)

    def action_ends(self, bottom: int) -> None:
        view = self._scroll_view()
        if bottom:
            view.scroll_end(animate=False)
        else:
            view.scroll_home(animate=False)


class TextBoxScreen(ModalScreen[None]):
    """A modal box of text: one VerticalScroll centred over the screen, on the surface
    colour in a rounded border (its size is the subclass's); its close key dismisses it."""

    DEFAULT_CSS = """
    TextBoxScreen { align: center middle; }
    TextBoxScreen > VerticalScroll { border: round $primary; background: $surface; }
    """

    def action_close(self) -> None:
        self.dismiss(None)
