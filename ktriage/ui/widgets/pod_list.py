"""The Pods pane: the selected incident's pods, or every pod (`a` toggles)."""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from rich.text import Text
from textual.binding import Binding
from textual.message import Message
from textual.reactive import var

from ktriage.ui.format import cell
from ktriage.ui.pods import PodRow, RowStats
from ktriage.ui.query import Query
from ktriage.ui.widgets.row_list import RowList

_ALARMING = {"privileged", "hostPath", "hostNet", "hostPID", "hostIPC"}
_CONTAINMENT = {"quarantined", "cordoned"}
# Flags as a narrow pane shows them.
_SHORT_FLAGS = {
    "privileged": "priv",
    "hostPath": "hPath",
    "hostNet": "hNet",
    "hostPID": "hPID",
    "hostIPC": "hIPC",
    "quarantined": "quar",
    "cordoned": "cord",
}
# Initials for the narrowest pane, where even the short words do not fit: the
# containment flags first, then how many others there are ("Q C+3").
_INITIAL_FLAGS = {"quarantined": "Q", "cordoned": "C"}
# Phases and reasons as a narrow pane shows them: common words cut to a stem that
# still reads as the word; anything else is cut with an ellipsis.
_SHORT_PHASES = {
    "Running": "Run",
    "Pending": "Pend",
    "Succeeded": "Done",
    "Failed": "Fail",
    "Unknown": "Unkn",
    "CrashLoopBackOff": "Crash",
    "OOMKilled": "OOM",
    "ImagePullBackOff": "NoImg",
    "ErrImagePull": "NoImg",
    "Evicted": "Evict",
    "ContainerCreating": "Start",
    "PodInitializing": "Init",
    "Terminating": "Stop",
}
# Below this pane width the compact layout: pod name without its namespace, short
# phases, NODE still shown (at least _NODE_MIN columns).
_COMPACT_BELOW = 48
_NODE_MIN = 6
# PHASE when wide grows to what the rows need, up to this (CrashLoopBackOff fits).
_PHASE_MAX = 18
_PHASE_BAD = {
    "Failed",
    "Gone",
    "CrashLoopBackOff",
    "OOMKilled",
    "Evicted",
    "ImagePullBackOff",
    "ErrImagePull",
    "Error",
    "Unknown",
}


def _row_key(row: PodRow) -> tuple[str, str]:
    return (row.namespace, row.name)


def _short_phase(phase: str) -> str:
    return _SHORT_PHASES.get(phase, phase)


@dataclass(frozen=True)
class _Columns:
    """Column widths of the Pods pane (0: the column is hidden)."""

    name: int
    phase: int
    node: int
    flags: int
    ready: bool
    compact: bool  # the pod's name without its namespace
    short_phase: bool  # phases in their short forms


class PodList(RowList):
    PANE_TITLE = "Pods"
    EMPTY_TEXT = "No pods for this incident (a: all pods)."
    BINDINGS: ClassVar = [
        ("enter", "open", "Pod detail"),
        Binding("a", "toggle_all", "All pods"),
    ]

    # The incident's pods (False) or all pods (True).
    show_all: var[bool] = var(False)

    class ScopeToggled(Message):
        """`a` switched between the incident's pods and all pods."""

        def __init__(self, pod_list: PodList) -> None:
            super().__init__()
            self.pod_list = pod_list

        @property
        def control(self) -> PodList:
            return self.pod_list

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.rows: list[PodRow] = []
        self.shown: list[PodRow] = []
        self.scope = ""
        # Pods of the cluster's list under way shown so far (None: none under way).
        self.loading_count: int | None = None
        self._row_stats: RowStats | None = None
        self._flags_need = 0
        self._phase_need = 5
        self._short_phase_need = 3
        self._has_nodes = False

    def set_rows(self, rows: list[PodRow], scope: str, *, loading: int | None = None) -> None:
        """The rows to show; `loading`: a list of the cluster's pods is under way and
        this many of its pods are in (the rest are coming)."""
        selected = self.selected
        self.rows = rows
        # Kept with the rows of all pods as they change: no pass over every row here.
        self._row_stats = getattr(rows, "stats", None)
        self.scope = scope
        self.loading_count = loading
        self._apply_filter()
        if selected is not None:
            self._find_again(selected)
        self.data_changed()

    def _find_again(self, selected: PodRow) -> None:
        """Put the cursor back on the pod it was on, wherever its row went: where it
        was (the usual case), by bisection in all pods' sorted rows, or by a scan."""
        shown, key = self.shown, selected.key
        if 0 <= self.cursor < len(shown) and shown[self.cursor].key == key:
            return
        if self.show_all:  # sorted by (namespace, name)
            i = bisect.bisect_left(shown, key, key=_row_key)
            if i < len(shown) and shown[i].key == key:
                self.cursor = i
                return
        for i, row in enumerate(shown):
            if row.key == key:
                self.cursor = i
                break

    def _apply_filter(self) -> None:
        q = self.query_filter
        stats = self._row_stats
        if q is None:
            self.shown = self.rows
        else:
            self.shown = [r for r in self.rows if self._matches(r, q)]
            stats = None
        if stats is None:
            stats = RowStats.of(self.shown)
        self._flags_need = stats.flags_need
        self._has_nodes = stats.has_nodes
        self._phase_need = stats.phase_need
        self._short_phase_need = max((len(_short_phase(p)) for p in stats.phases), default=0)

    @staticmethod
    def _matches(row: PodRow, q: Query) -> bool:
        hay = " ".join((row.namespace, row.name, row.phase, row.node, *row.flags)).lower()
        return q.matches_fields(hay, namespaces=[row.namespace])

    def set_query(self, query: Query | None) -> None:
        self.query_filter = query if query is not None and not query.empty else None
        self._apply_filter()
        self.data_changed()

    @property
    def selected(self) -> PodRow | None:
        if 0 <= self.cursor < len(self.shown):
            return self.shown[self.cursor]
        return None

    def action_toggle_all(self) -> None:
        self.show_all = not self.show_all

    def watch_show_all(self, show_all: bool) -> None:
        """The scope changed (`a`, or set by the screen): start at the top, say so."""
        self.cursor = 0
        self.post_message(self.ScopeToggled(self))

    # ---- rendering -----------------------------------------------------------------

    def row_count(self) -> int:
        return len(self.shown)

    def _columns(self, width: int) -> _Columns:
        """The widths of the columns for a pane `width` columns wide."""
        if width < _COMPACT_BELOW:
            return self._compact_columns(width)
        show_ready = width >= 72
        node = min(18, max(7, width // 7)) if self._has_nodes else 0
        fixed = 1 + 1 + 4 + (6 if show_ready else 0) + (node + 1 if node else 0)
        # PHASE as wide as the rows need when names keep 20 columns beside the flags,
        # else the short forms (a cut "CrashLoop…" hides which back-off it is).
        phase = max(5, min(_PHASE_MAX, self._phase_need))
        room = width - fixed - phase
        short = room - min(30, room // 2, self._flags_need) < 20
        if short:
            phase = max(5, min(_PHASE_MAX, self._short_phase_need))
        rest = max(12, width - fixed - phase)
        # As wide as the flags of the rows need, within bounds.
        flags = max(5, min(30, rest // 2, self._flags_need))
        return _Columns(rest - flags, phase, node, flags, show_ready, False, short)

    def _compact_columns(self, width: int) -> _Columns:
        """A narrow pane: the pod's name alone, short phases, a NODE of at least
        _NODE_MIN columns, and flags before the name's tail (the name starts)."""
        phase = 5  # the header and the longest short forms
        node = max(_NODE_MIN, min(12, width // 5)) if self._has_nodes else 0
        fixed = 1 + phase + 1 + 4 + (node + 1 if node else 0)
        rest = max(6, width - fixed)
        # The flags before the name's tail: the name keeps half, at least its start.
        if self._flags_need:
            flags = min(self._flags_need, max(3, rest - max(5, rest // 2)))
        else:
            flags = 0
        return _Columns(max(1, rest - flags), phase, node, flags, False, True, True)

    def render_header(self, width: int) -> Text | None:
        col = self._columns(width)
        title = "NAME" if col.compact else "NAMESPACE/NAME"
        parts = [cell(title, col.name), " ", cell("PHASE", col.phase), " "]
        if col.ready:
            parts += [cell("READY", 5), " "]
        parts += [cell("RST", 3, right=True), " "]
        if col.node:
            parts += [cell("NODE", col.node), " "]
        parts.append(cell("FLAGS", col.flags))
        return Text.assemble(*parts)

    def render_row(self, index: int, width: int) -> Text:
        row = self.shown[index]
        col = self._columns(width)
        muted = self.style_for("rowlist--muted")
        bad = self.style_for("rowlist--sev-high")
        phase_style = bad if row.phase in _PHASE_BAD else ("" if row.known else muted)
        flags = self._flags(row.flags, col.flags)
        restarts = "-" if row.restarts is None else str(row.restarts)
        restart_style = bad if row.restarts else ""
        name = row.name if col.compact else row.ref.short()
        phase = _short_phase(row.phase) if col.short_phase else row.phase
        parts = [cell(name, col.name, middle=True), " "]
        parts += [cell(phase, col.phase, phase_style), " "]
        if col.ready:
            parts += [cell(row.ready, 5), " "]
        parts += [cell(restarts, 3, restart_style, right=True), " "]
        if col.node:
            parts += [cell(row.node or "-", col.node, muted), " "]
        parts.append(flags)
        return Text.assemble(*parts)

    def _flags(self, names: Sequence[str], width: int) -> Text:
        """The flags in full when they fit, else abbreviated with containment first (a
        cordon or an isolation is never the part cut off), else cut; where not even the
        containment words fit, their initials and a count of the rest ("Q C+4")."""
        ordered = sorted(names, key=lambda f: f not in _CONTAINMENT)
        short = [(f, _SHORT_FLAGS.get(f, f)) for f in ordered]
        full = self._flag_text([(f, f) for f in names])
        if full.cell_len <= width:
            return full
        flags = self._flag_text(short)
        containment = self._flag_text([w for w in short if w[0] in _CONTAINMENT])
        if containment.cell_len > width:
            # Not even the containment words fit: their initials, and how many more.
            others = sum(1 for f in names if f not in _INITIAL_FLAGS)
            flags = self._flag_text(
                [(f, _INITIAL_FLAGS[f]) for f in ordered if f in _INITIAL_FLAGS]
            )
            if others:
                more = flags.copy()
                more.append(f"+{others}", self.style_for("rowlist--sev-critical"))
                flags = more if more.cell_len <= width else flags
        if flags.cell_len > width:
            flags.truncate(width, overflow="ellipsis")
        return flags

    def _flag_text(self, words: list[tuple[str, str]]) -> Text:
        flags = Text(end="", no_wrap=True)
        for flag, word in words:
            if flags:
                flags.append(" ")
            severity = "critical" if flag in _ALARMING else "medium"
            flags.append(word, self.style_for(f"rowlist--sev-{severity}"))
        return flags

    def subtitle(self) -> str:
        text = f"{len(self.rows)} · {self.scope}" if self.scope else str(len(self.rows))
        if self.loading_count is not None:
            text += f" · loading {self.loading_count:,}…"
        text += " · a: " + ("incident's pods" if self.show_all else "all pods")
        if self.query_filter is not None:
            text += f" · filter: {self.query_filter.text} ({len(self.shown)})"
        return text
