"""The footer: the key hints that fit the width, whole, and `?` for the rest.

Textual's Footer lays every hint out and lets the row run past the screen's
edge: a hint is cut in the middle, and the command-palette hint docked on the
right leaves a stray character of whatever ran under it. This footer keeps only
the hints that fit, dropping the least needed first (theme, snapshot, follow,
then from the end), always keeps `?`, and says how many it left out there.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, NamedTuple

from rich.cells import cell_len
from textual import events
from textual.app import ComposeResult
from textual.widgets import Footer

# Not exported by textual.widgets, but the Footer's own key widget (textual is pinned
# below 9): the hints look and click exactly like the Footer's.
from textual.widgets._footer import FooterKey

if TYPE_CHECKING:
    from textual.screen import Screen

HELP_ACTION = "help"
# Which hints go first when the row is too narrow: lower goes earlier. A hint not
# named here ranks DEFAULT_RANK; among equals the one further right goes first.
DROP_RANK = {
    "cycle_theme": 0,
    "save_snapshot": 1,
    "toggle_follow": 2,
}
DEFAULT_RANK = 5


class Hint(NamedTuple):
    key: str
    key_display: str
    description: str
    action: str
    enabled: bool
    tooltip: str

    @property
    def width(self) -> int:
        """Cells it takes in the compact footer: key, space, words, a space after."""
        return cell_len(self.key_display) + 1 + cell_len(self.description) + 1


def fit_hints(hints: list[Hint], width: int) -> tuple[list[Hint], int]:
    """The hints that fit in `width` cells, in their order, and how many were left out.

    The help hint is never left out; when others are, it says how many (the
    width of that note is counted too)."""
    kept = list(hints)
    dropped = 0

    def total(items: Iterable[Hint]) -> int:
        return sum(h.width for h in items) + (len(f" (+{dropped})") if dropped else 0)

    while kept and total(kept) > width:
        candidates = [i for i, h in enumerate(kept) if h.action != HELP_ACTION]
        if not candidates:
            break
        victim = min(candidates, key=lambda i: (DROP_RANK.get(kept[i].action, DEFAULT_RANK), -i))
        del kept[victim]
        dropped += 1
    if dropped:
        kept = [
            h._replace(description=f"{h.description} (+{dropped})")
            if h.action == HELP_ACTION
            else h
            for h in kept
        ]
    return kept, dropped


class KeyHints(Footer):
    """A compact footer whose hints never run past its width."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, compact=True)
        self._composed_width = -1
        # What the row shows: its hints, how many were left out, the palette's hint.
        self._shown: tuple[list[Hint], int, Hint | None] = ([], 0, None)

    @property
    def shown_hints(self) -> list[Hint]:
        return self._shown[0]

    @property
    def dropped(self) -> int:
        return self._shown[1]

    def _hints(self) -> tuple[list[Hint], Hint | None]:
        active = self.screen.active_bindings
        hints: list[Hint] = []
        seen: set[str] = set()
        for _node, binding, enabled, tooltip in active.values():
            if not binding.show or binding.action in seen:
                continue
            seen.add(binding.action)
            hints.append(
                Hint(
                    binding.key,
                    self.app.get_key_display(binding),
                    binding.description,
                    binding.action,
                    enabled,
                    tooltip,
                )
            )
        palette: Hint | None = None
        if self.show_command_palette and self.app.ENABLE_COMMAND_PALETTE:
            found: Any = active.get(self.app.COMMAND_PALETTE_BINDING)
            if found is not None:
                _node, binding, enabled, tooltip = found
                palette = Hint(
                    binding.key,
                    self.app.get_key_display(binding),
                    binding.description,
                    binding.action,
                    enabled,
                    binding.tooltip or binding.description,
                )
        return hints, palette

    def _layout(self, width: int) -> tuple[list[Hint], int, Hint | None]:
        """The hints shown at `width`, how many were left out, and the palette's."""
        hints, palette = self._hints()
        room = width
        if palette is not None:
            # Its left border takes the cell a hint's trailing space would.
            palette_width = palette.width
            if palette_width + 10 > width:
                palette = None  # too narrow: the palette is still on ctrl+p
            else:
                room -= palette_width
        kept, dropped = fit_hints(hints, room)
        return kept, dropped, palette

    def bindings_changed(self, screen: Screen) -> None:
        # A cursor move refreshes the bindings; most leave the hints as they are,
        # and rebuilding a row of key widgets on each would cost every key press.
        if (
            self._bindings_ready
            and screen.app.app_focus
            and self.is_attached
            and screen is self.screen
            and self._composed_width == (self.size.width or self.app.size.width)
            and self._layout(self._composed_width) == self._shown
        ):
            return
        super().bindings_changed(screen)

    def compose(self) -> ComposeResult:
        if not self._bindings_ready:
            return
        width = self.size.width or self.app.size.width
        self._composed_width = width
        self._shown = self._layout(width)
        kept, _, palette = self._shown
        for hint in kept:
            yield FooterKey(
                hint.key,
                hint.key_display,
                hint.description,
                hint.action,
                disabled=not hint.enabled,
                tooltip=hint.tooltip,
            ).data_bind(compact=Footer.compact)
        if palette is not None:
            yield FooterKey(
                palette.key,
                palette.key_display,
                palette.description,
                palette.action,
                classes="-command-palette",
                disabled=not palette.enabled,
                tooltip=palette.tooltip,
            )

    async def on_resize(self, event: events.Resize) -> None:
        if self._bindings_ready and event.size.width != self._composed_width:
            await self.recompose()

    def text(self) -> str:
        """The hints as they read, for tests and the help screen."""
        return " ".join(f"{h.key_display} {h.description}" for h in self.shown_hints)
