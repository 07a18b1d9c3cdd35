"""The `?` screen: every key, by where it works, and the filter language."""

from __future__ import annotations

import textwrap
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.widgets import Static

from ktriage.actions.catalog import CATALOG
from ktriage.core.kinds import FAMILIES
from ktriage.ui.screens.dialog import LINE_KEYS, ScrollKeys, TextBoxScreen

SECTIONS: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = (
    (
        "Everywhere",
        (
            ("tab / shift+tab", "next / previous pane"),
            ("?", "this help"),
            (
                "ctrl+p",
                "palette: actions (and why one is not possible), panes, notices, a screenshot "
                "(SVG, next to the snapshots), go to an incident",
            ),
            ("? Help (+N)", "footer: N more keys did not fit; all of them are here"),
            ("(click status bar)", "every source's health in full (also: palette, Sources)"),
            ("● ◐ ◌ ⧖ ✖ ✓", "source connected / reconnecting / starting / stalled / failed / done"),
            (
                "! (status bar)",
                "a source has a problem (unhealthy, or waiting: a mistyped path) and its "
                "words did not fit: click for them",
            ),
            ("t", "cycle themes"),
            ("s", "save the selected incident's Markdown snapshot (palette: as plain text)"),
            (
                ":",
                "resource views read live from the cluster: pods, nodes, events, netpol, sa, "
                "rbac (tab completes; :incidents comes back)",
            ),
            ("d", "describe the selected pod: live YAML, secrets redacted, and its events"),
            (
                "L",
                "follow the selected pod's log (f follow, p previous, c container, / search, "
                "r reopen)",
            ),
            ("w", "the incident's workflow: acknowledge, status, owner, notes"),
            ("A / m", "acknowledge the selected incident / add a note to it"),
            ("f", "follow the timeline (or the live stream when it has focus)"),
            ("z", "zoom the focused pane to full screen (esc restores)"),
            (
                "esc",
                "up one level: Detail → the list it came from → Incidents (first it hides "
                "the notice, closes the prompt, clears the filter)",
            ),
            ("(line above keys)", "notices: newest wins, +N earlier; palette: Notices lists them"),
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
            ("LAST", "time since the incident's last event (not its age)"),
            ("b", "blast radius: what the attacker can do next from here"),
        ),
    ),
    (
        "Timeline",
        (
            ("enter", "show the event's raw record in Detail"),
            ("▌ BOLD", "signals; muted rows are context"),
            ("TIME (UTC)", "times are UTC; the title names the day when it is not today"),
            ("DATE  TIME", "rows carry MM-DD when the incident spans days"),
        ),
    ),
    ("Pods", (("a", "the incident's pods / all pods"), ("enter", "the pod's summary"))),
    ("Live stream", (("enter", "go to the event's incident"),)),
    (
        "Resource views (:)",
        (
            ("/", "filter: words, !exclude, ns:NAME"),
            ("d / L", "describe the row / view a pod's log (pods and events only)"),
            (":VIEW@CLUSTER", "with several clusters: that cluster's view (titles name it)"),
            ("@", "the same view from the next cluster"),
            ("r", "read again"),
            (":", "another view"),
            ("esc", "clear the filter, then back"),
        ),
    ),
    (
        "Workflow (w)",
        (
            ("a", "acknowledge"),
            (
                "1-5",
                "status: new / investigating / contained / resolved / false positive (asks "
                "why, then previews allow-list entries; y saves them)",
            ),
            ("o / O", "take the incident / name its owner"),
            ("n", "add a note"),
            ("esc", "cancel the prompt, discard the preview, close"),
        ),
    ),
)

FILTER_HELP = (
    ("miner", "rows containing the word (all words must match)"),
    ('"xmrig -o"', "a phrase, spaces and all"),
    ("!kube-system", "rows not containing it"),
    ("source:falco,audit", "only these sources (src: too)"),
    ("sev:high", "severity high or above"),
    ("kind:exec", "a kind family (below), else the event kind by its beginning"),
    ("kind:exec,network", "either"),
    ("ns:payments", "namespace"),
    ("cluster:prod-eu", "incidents of this cluster (when several are watched)"),
)


FILES = (
    (
        "snapshots (s)",
        "--snapshot-dir, else $XDG_STATE_HOME/ktriage/snapshots ($XDG_STATE_HOME defaults "
        "to ~/.local/state); screenshots (palette) go there too",
    ),
    (
        "themes (t)",
        "ktriage-dark, ktriage-light, ktriage-high-contrast; add your own as "
        "$XDG_CONFIG_HOME/ktriage/themes/NAME.toml (same keys as the shipped ones)",
    ),
)


KEY_WIDTH = 24  # two spaces, the key, padding: where every description starts


def help_text(actions_state: str, width: int = 86) -> Text:
    """The help, its descriptions wrapped to `width` under their own column (a
    narrow terminal must not fold them back under the keys)."""
    out = Text(no_wrap=True)
    key_style = "bold"
    room = max(20, width - KEY_WIDTH)

    def row(key: str, what: str, style: str = "") -> None:
        lines = textwrap.wrap(what, room) or [""]
        out.append(f"  {key:<{KEY_WIDTH - 2}}", key_style)
        out.append(lines[0] + "\n", style)
        for line in lines[1:]:
            out.append(" " * KEY_WIDTH)
            out.append(line + "\n", style)

    def heading(title: str) -> None:
        for line in textwrap.wrap(title, max(20, width)):
            out.append(line + "\n", "bold underline")

    for title, rows in SECTIONS:
        heading(title)
        for key, what in rows:
            row(key, what)
        out.append("\n")
    heading(
        "Containment (on the selected pod or the incident's main pod; B and R on the "
        "identity that acted)"
    )
    for action in CATALOG:
        row(action.key, action.description)
        if action.undo:
            row("", f"undo: {action.undo}", "dim")
    for line in textwrap.wrap(actions_state, max(20, width - 2)):
        out.append(f"  {line}\n", "italic")
    out.append("\n")
    heading("Filter language (/)")
    for key, what in FILTER_HELP:
        row(key, what)
    out.append("\n")
    heading("Kind families (kind:NAME): the same meaning across sources")
    for family in FAMILIES:
        row(family.name, family.meaning)
        row("", f"e.g. /{family.example}", "dim")
    out.append("\n")
    heading("Files")
    for key, what in FILES:
        row(key, what)
    return out


class HelpScreen(TextBoxScreen, ScrollKeys):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,question_mark", "close", "Close", key_display="esc"),
        *LINE_KEYS,
    ]
    DEFAULT_CSS = """
    HelpScreen > VerticalScroll {
        width: 90;
        max-width: 95%;
        height: 90%;
        border-title-color: $accent;
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
            yield Static(help_text(self.actions_state, self._text_width()), id="help-text")

    def _text_width(self) -> int:
        # The box: 90 wide or 95% of the screen, less its border, padding and scrollbar.
        return min(90, self.app.size.width * 95 // 100) - 2 - 4 - 2

    def on_resize(self) -> None:
        self.query_one("#help-text", Static).update(
            help_text(self.actions_state, self._text_width())
        )
