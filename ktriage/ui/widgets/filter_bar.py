"""The `/` prompt: a one-line query input for the pane that asked for it."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.message import Message
from textual.reactive import var
from textual.widgets import Input, Static


class FilterBar(Horizontal):
    DEFAULT_CSS = """
    FilterBar {
        height: 1;
        display: none;
        background: $panel;
    }
    FilterBar.-active { display: block; }
    FilterBar > Static { width: auto; padding: 0 1; color: $accent; text-style: bold; }
    FilterBar > Input {
        border: none;
        height: 1;
        padding: 0;
        background: $panel;
    }
    FilterBar > Input:focus { border: none; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", priority=True),
    ]

    # Shown (the `-active` class) while a query is being edited.
    is_open: var[bool] = var(False, toggle_class="-active")

    class Changed(Message):
        def __init__(self, text: str, final: bool) -> None:
            super().__init__()
            self.text = text
            self.final = final

    class Cancelled(Message):
        pass

    def compose(self) -> ComposeResult:
        yield Static(Text("/"), id="filter-prompt")
        yield Input(
            placeholder='words, "a phrase", !exclude, source:falco, sev:high, kind:exec, ns:NAME  '
            "(enter: apply, esc: cancel, empty: clear)",
            id="filter-input",
        )

    def open(self, prompt: str, current: str) -> None:
        self.query_one("#filter-prompt", Static).update(Text(prompt))
        field = self.query_one(Input)
        field.value = current
        self.is_open = True
        field.focus()
        field.cursor_position = len(current)

    def close(self) -> None:
        self.is_open = False

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        if self.is_open:
            self.post_message(self.Changed(event.value, final=False))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.post_message(self.Changed(event.value, final=True))

    def action_cancel(self) -> None:
        self.post_message(self.Cancelled())
