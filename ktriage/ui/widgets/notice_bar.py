"""A notice above the footer: why a key did nothing, in full.

It takes its own lines below the panes (they shrink while it shows) instead of
floating over them like a toast, so the newest rows of the Timeline and the Live
stream stay visible. It hides itself after a while, or with `esc`.
"""

from __future__ import annotations

from rich.text import Text
from textual.timer import Timer
from textual.widgets import Static

from ktriage.core.text import shown


class NoticeBar(Static):
    DEFAULT_CSS = """
    NoticeBar {
        height: auto;
        max-height: 8;
        display: none;
        background: $panel;
        border-top: solid $warning;
        padding: 0 1;
    }
    NoticeBar.-active { display: block; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(Text(""), id=id)
        self._timer: Timer | None = None
        self.text = ""

    @property
    def active(self) -> bool:
        return self.has_class("-active")

    def show_notice(self, title: str, body: str, seconds: float = 20.0) -> None:
        """Show `title` and `body` (untrusted parts included: shown as plain text)."""
        out = Text(no_wrap=False)
        out.append(shown(title), "bold")
        out.append("  (esc hides)\n", "dim")
        out.append(shown(body, keep_newlines=True))
        self.text = out.plain
        self.update(out)
        self.add_class("-active")
        if self._timer is not None:
            self._timer.stop()
        self._timer = self.set_timer(seconds, self.hide)

    def hide(self) -> None:
        if self._timer is not None:
            self._timer.stop()
            self._timer = None
        self.remove_class("-active")
