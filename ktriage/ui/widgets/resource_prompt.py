"""The `:` prompt's input: a resource name with completion, as k9s has it.

The suggestion (shown greyed after the cursor) completes with Tab or →; the
words are the views `ktriage.resourceread` knows and `incidents`; with several
clusters, each view with `@CLUSTER` too (`pods@demo-west`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from textual.binding import Binding, BindingType
from textual.suggester import SuggestFromList
from textual.widgets import Input

from ktriage.resourceread import PROMPT_WORDS, RESOURCES


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

    def __init__(self, *, clusters: Sequence[str] = (), id: str | None = None) -> None:
        words = [*PROMPT_WORDS, *(f"{r.name}@{c}" for r in RESOURCES for c in clusters)]
        at = "[@CLUSTER], " if clusters else ""
        super().__init__(
            placeholder=f"pods, nodes, events, netpol, sa, rbac {at}incidents  "
            "(tab completes, enter opens, esc cancels)",
            suggester=SuggestFromList(words, case_sensitive=False),
            id=id,
        )
        self.words = words

    def action_complete(self) -> None:
        """Take the suggestion; with none, the first word that starts like the input."""
        suggestion = self._suggestion
        if suggestion:
            self.value = suggestion
        else:
            typed = self.value.strip().lstrip(":").lower()
            matches = [w for w in self.words if w.lower().startswith(typed)]
            if matches:
                self.value = matches[0]
        self.cursor_position = len(self.value)
