"""The actions taken on an incident, newest last, with what can still be undone."""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.reactive import var
from textual.widgets import Static

from ktriage.actions.base import FAILED, OK, UNCHANGED, UNDONE, ActionRecord
from ktriage.core.model import iso
from ktriage.core.text import shown

_RESULT_STYLE = {OK: "bold green", FAILED: "bold red", UNCHANGED: "yellow", UNDONE: "cyan"}


def actions_text(records: Sequence[ActionRecord]) -> Text:
    """One line per action: time, action, subject, result, and whether `u` undoes it."""
    out = Text(no_wrap=True, overflow="ellipsis")
    if not records:
        out.append("No actions taken yet.", "italic")
        return out
    last_undoable = next((r for r in reversed(records) if r.can_undo), None)
    for i, record in enumerate(records):
        if i:
            out.append("\n")
        out.append(iso(record.time)[11:19] + " ", "dim")
        out.append(shown(record.action).ljust(14))
        out.append(shown(record.subject.words()) + " ")
        out.append(record.result, _RESULT_STYLE.get(record.result, ""))
        if record.undone:
            out.append("  undone", "cyan")
        elif record is last_undoable:
            out.append("  u undoes", "bold")
        elif record.can_undo:
            out.append("  undoable", "dim")
        elif record.undo_note and record.result == OK:
            out.append("  " + shown(record.undo_note), "dim")
    return out


class ActionList(Static):
    """Shows `ActionService.records(incident_id)`: set `records` (or call `show()`)
    after each change and the list redraws itself."""

    DEFAULT_CSS = """
    ActionList { height: auto; max-height: 8; padding: 0 1; }
    """

    records: var[tuple[ActionRecord, ...]] = var(())

    def watch_records(self, records: tuple[ActionRecord, ...]) -> None:
        self.update(actions_text(records))

    def show(self, records: Sequence[ActionRecord]) -> None:
        self.records = tuple(records)
