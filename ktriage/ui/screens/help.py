"""The `?` screen: every key, by where it works, and the filter language."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from ktriage.actions.catalog import CATALOG

SECTIONS: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = (
    (
        "Everywhere",
        (
            ("tab / shift+tab", "next / previous pane"),
            ("?", "this help"),
            ("ctrl+p", "command palette: commands, themes, go to an incident"),
            ("(click status bar)", "every source's health in full (also: palette, Sources)"),
            ("● ◐ ◌ ⧖ ✖ ✓", "source connected / reconnecting / starting / stalled / failed / done"),
            ("! (status bar)", "a source is unhealthy (its words did not fit: click for them)"),
            ("t", "cycle themes"),
            ("s", "save the selected incident's Markdown snapshot"),
            ("f", "follow the timeline (or the live stream when it has focus)"),
            ("z", "zoom the focused pane to full screen (esc restores)"),
            ("esc", "back: close the prompt, clear the filter, previous pane"),
            ("q", "quit"),
        ),
    ),
    (
        "In every pane",
        (
            ("j / k / ↑ / ↓", "move"),
            ("g / G / home / end", "first / last row (G resumes following)"),
            ("pgup / pgdn", "page up / down"),
            ("enter", "open the selected row"),
            ("/", "filter (Timeline and Detail: search)"),
            ("n / N", "next / previous match"),
        ),
    ),
    (
        "Incidents",
        (
            ("enter", "show the incident's timeline"),
            ("● ▲ •", "new / escalated / updated since you looked"),
            ("C: ✓ ◒ ·", "contained / partly / nothing yet (Detail: what is open)"),
            ("AGE", "time since the incident's last event"),
            ("b", "blast radius: what the attacker can do next from here"),
        ),
    ),
    (
        "Timeline",
        (
            ("enter", "show the event's raw record in Detail"),
            ("▌ BOLD", "signals; muted rows are context"),
        ),
    ),
    ("Pods", (("a", "the incident's pods / all pods"), ("enter", "the pod's summary"))),
    ("Live stream", (("enter", "go to the event's incident"),)),
)

FILTER_HELP = (
    ("miner", "rows containing the word (all words must match)"),
    ('"xmrig -o"', "a phrase, spaces and all"),
    ("!kube-system", "rows not containing it"),
    ("source:falco,audit", "only these sources (src: too)"),
    ("sev:high", "severity high or above"),
    ("kind:exec", "event kind, by prefix"),
    ("ns:payments", "namespace"),
)


FILES = (
    ("snapshots (s)", "--snapshot-dir, else $XDG_STATE_HOME/ktriage/snapshots"),
    ("", "($XDG_STATE_HOME defaults to ~/.local/state)"),
    ("themes (t)", "ktriage-dark, ktriage-light, ktriage-high-contrast; add your own as"),
    ("", "$XDG_CONFIG_HOME/ktriage/themes/NAME.toml (same keys as the shipped ones)"),
)


def help_text(actions_state: str) -> Text:
    out = Text(no_wrap=False)
    key_style = "bold"
    for title, rows in SECTIONS:
        out.append(f"{title}\n", "bold underline")
        for key, what in rows:
            out.append(f"  {key:<22}", key_style)
            out.append(f"{what}\n")
        out.append("\n")
    out.append(
        "Containment (on the selected pod or the incident's main pod; B and R on the "
        "identity that acted)\n",
        "bold underline",
    )
    for action in CATALOG:
        out.append(f"  {action.key:<22}", key_style)
        out.append(f"{action.description}\n")
        if action.undo:
            out.append(f"  {'':<22}")
            out.append(f"undo: {action.undo}\n", "dim")
    out.append(f"  {actions_state}\n\n", "italic")
    out.append("Filter language (/)\n", "bold underline")
    for key, what in FILTER_HELP:
        out.append(f"  {key:<22}", key_style)
        out.append(f"{what}\n")
    out.append("\nFiles\n", "bold underline")
    for key, what in FILES:
        out.append(f"  {key:<22}", key_style)
        out.append(f"{what}\n")
    return out


class HelpScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,question_mark", "close", "Close", key_display="esc"),
        Binding("j,down", "scroll(1)", "Down", show=False),
        Binding("k,up", "scroll(-1)", "Up", show=False),
    ]
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll {
        width: 90;
        max-width: 95%;
        height: 90%;
        border: round $primary;
        border-title-color: $accent;
        background: $surface;
        padding: 0 2;
    }
    """

    def __init__(self, actions_state: str) -> None:
        super().__init__()
        self.actions_state = actions_state

    def compose(self) -> ComposeResult:
        with VerticalScroll() as scroll:
            scroll.border_title = Text("ktriage keys")
            scroll.border_subtitle = Text("esc closes")
            yield Static(help_text(self.actions_state), id="help-text")

    def action_close(self) -> None:
        self.dismiss(None)

    def action_scroll(self, step: int) -> None:
        self.query_one(VerticalScroll).scroll_relative(y=step, animate=False)
