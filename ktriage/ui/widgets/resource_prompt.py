"""The `:` prompt's input: a resource name with completion, as k9s has it.

The suggestion (shown greyed after the cursor) completes with Tab or →; the
words are the views `ktriage.resourceread` knows and `incidents`.
"""

from __future__ import annotations

from typing import ClassVar

from textual.binding import Binding, BindingType
from textual.suggester import SuggestFromList
from textual.widgets import Input

from ktriage.resourceread import PROMPT_WORDS


class ResourcePrompt(Input):
    DEFAULT_CSS = """
    ResourcePrompt {
        border: none;
        height: 1;
        padding: 0;
        background: $panel;
    }
    ResourcePrompt:focus { border: none; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        # Not a priority binding: those run before keys already queued for the input,
        # so a fast "ev<tab>" would complete "" first.
        Binding("tab", "complete", "Complete", show=False),
    ]

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(
            placeholder="pods, nodes, events, netpol, sa, rbac, incidents  "
            "(tab completes, enter opens, esc cancels)",
            suggester=SuggestFromList(PROMPT_WORDS, case_sensitive=False),
            id=id,
        )

    def action_complete(self) -> None:
        """Take the suggestion; with none, the first word that starts like the input."""
        suggestion = self._suggestion
        if suggestion:
            self.value = suggestion
        else:
            typed = self.value.strip().lstrip(":").lower()
            matches = [w for w in PROMPT_WORDS if w.startswith(typed)]
            if matches:
                self.value = matches[0]
        self.cursor_position = len(self.value)
