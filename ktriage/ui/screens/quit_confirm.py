"""Before quitting: every change ktriage made in the cluster that is still there.

A cordoned node or an isolated pod outlives ktriage, so quitting names each
(this run's and earlier runs' changes not undone, what failed actions and
failed rollbacks left behind, actions cut short) and waits for a second `q`;
`esc` stays. The names come from the cluster and are shown as plain text.
"""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.widgets import Static

from ktriage.core.text import shown
from ktriage.ui.screens.dialog import LINE_KEYS, DialogScreen, ScrollKeys


def changes_text(changes: list[str]) -> Text:
    out = Text()
    out.append("These changes stay in the cluster after ktriage quits:\n\n", "bold")
    for change in changes:
        out.append("• ", "bold")
        out.append(shown(change) + "\n")
    out.append(
        "\nesc, then u on the pod or identity undoes one (an action cut short: u rolls "
        "back what of it is in place); q quits and leaves them.",
        "italic",
    )
    return out


class QuitConfirmScreen(DialogScreen[bool], ScrollKeys):
    """Dismisses with True (quit anyway) on `q`, False (stay) on `esc`."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit_anyway", "Quit anyway"),
        Binding("escape", "stay", "Stay"),
        *LINE_KEYS,
    ]

    def __init__(self, changes: list[str]) -> None:
        super().__init__()
        self.changes = list(changes)

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog -warning") as box:
            n = len(self.changes)
            box.border_title = Text(f"Still in place in the cluster: {n} change(s)")
            box.border_subtitle = Text("q quit anyway · esc stay")
            with VerticalScroll():
                yield Static(changes_text(self.changes), id="quit-changes")

    def action_quit_anyway(self) -> None:
        self.dismiss(True)

    def action_stay(self) -> None:
        self.dismiss(False)
