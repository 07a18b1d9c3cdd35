"""The box every dialog is: centred over the screen, bounded by it, with its key hint at
the bottom left (notices come up at the bottom right and would cover it)."""

from __future__ import annotations

from typing import TypeVar

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
