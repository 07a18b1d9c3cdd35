"""The Pods pane: the selected incident's pods, or every pod (`a` toggles)."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.binding import Binding
from textual.message import Message
from textual.reactive import var

from ktriage.ui.format import cell
from ktriage.ui.pods import PodRow
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
        self._flags_need = 0
        self._has_nodes = False

    def set_rows(self, rows: list[PodRow], scope: str, *, loading: int | None = None) -> None:
        """The rows to show; `loading`: a list of the cluster's pods is under way and
        this many of its pods are in (the rest are coming)."""
        selected = self.selected
        self.rows = rows
        self.scope = scope
        self.loading_count = loading
        self._apply_filter()
        if selected is not None:
            for i, row in enumerate(self.shown):
                if row.key == selected.key:
                    self.cursor = i
                    break
        self.data_changed()

    def _apply_filter(self) -> None:
        q = self.query_filter
        if q is None:
            self.shown = self.rows
        else:
            self.shown = [r for r in self.rows if self._matches(r, q)]
        self._flags_need = max((len(" ".join(r.flags)) for r in self.shown), default=0)
        self._has_nodes = any(r.node for r in self.shown)

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

    def _columns(self, width: int) -> tuple[int, int, int, bool]:
        """Widths of name, node (0: hidden) and flags, and whether READY shows."""
        show_ready = width >= 72
        node = min(18, max(7, width // 7)) if width >= 48 and self._has_nodes else 0
        fixed = 12 + 4 + (6 if show_ready else 0) + (node + 1 if node else 0)
        rest = max(12, width - fixed)
        # As wide as the flags of the rows need, within bounds.
        flags = max(5, min(30, rest // 2, self._flags_need))
        return rest - flags, node, flags, show_ready

    def render_header(self, width: int) -> Text | None:
        name, node, flags, show_ready = self._columns(width)
        parts = [cell("NAMESPACE/NAME", name), " ", cell("PHASE", 10), " "]
        if show_ready:
            parts += [cell("READY", 5), " "]
        parts += [cell("RST", 3, right=True), " "]
        if node:
            parts += [cell("NODE", node), " "]
        parts.append(cell("FLAGS", flags))
        return Text.assemble(*parts)

    def render_row(self, index: int, width: int) -> Text:
        row = self.shown[index]
        name_w, node_w, flags_w, show_ready = self._columns(width)
        muted = self.style_for("rowlist--muted")
        bad = self.style_for("rowlist--sev-high")
        phase_style = bad if row.phase in _PHASE_BAD else ("" if row.known else muted)
        flags = self._flags(row.flags, flags_w)
        restarts = "-" if row.restarts is None else str(row.restarts)
        restart_style = bad if row.restarts else ""
        parts = [cell(row.ref.short(), name_w), " "]
        parts += [cell(row.phase, 10, phase_style), " "]
        if show_ready:
            parts += [cell(row.ready, 5), " "]
        parts += [cell(restarts, 3, restart_style, right=True), " "]
        if node_w:
            parts += [cell(row.node or "-", node_w, muted), " "]
        parts.append(flags)
        return Text.assemble(*parts)

    def _flags(self, names: list[str], width: int) -> Text:
        """The flags in full when they fit, else abbreviated with containment first (a
        cordon or an isolation is never the part cut off), else cut."""
        ordered = sorted(names, key=lambda f: f not in _CONTAINMENT)
        for shown_flags in (
            [(f, f) for f in names],
            [(f, _SHORT_FLAGS.get(f, f)) for f in ordered],
        ):
            flags = Text(end="", no_wrap=True)
            for flag, word in shown_flags:
                if flags:
                    flags.append(" ")
                severity = "critical" if flag in _ALARMING else "medium"
                flags.append(word, self.style_for(f"rowlist--sev-{severity}"))
            if flags.cell_len <= width:
                return flags
        flags.truncate(width, overflow="ellipsis")
        return flags

    def subtitle(self) -> str:
        text = f"{len(self.rows)} · {self.scope}" if self.scope else str(len(self.rows))
        if self.loading_count is not None:
            text += f" · loading {self.loading_count:,}…"
        text += " · a: " + ("incident's pods" if self.show_all else "all pods")
        if self.query_filter is not None:
            text += f" · filter: {self.query_filter.text} ({len(self.shown)})"
        return text
