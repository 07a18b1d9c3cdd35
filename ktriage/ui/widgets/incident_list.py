"""The Incidents pane: one row per incident, most severe first, then most recent."""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

from rich.text import Text

from ktriage.core.containment import CONTAINED, NOTHING, PARTLY
from ktriage.core.model import EntityKind, EntityRef, Incident, Severity
from ktriage.ui.format import SEVERITY_BADGES, age, cell
from ktriage.ui.query import Query
from ktriage.ui.widgets.row_list import RowList

_KIND_PREFIX = {
    EntityKind.POD: "",
    EntityKind.SERVICE_ACCOUNT: "sa:",
    EntityKind.USER: "user:",
    EntityKind.IP: "ip:",
    EntityKind.CONTAINER: "ctr:",
    EntityKind.NODE: "node:",
    EntityKind.IMAGE: "img:",
    EntityKind.NAMESPACE: "ns:",
}
TACTIC_SHORT = {
    "initial-access": "initial",
    "execution": "exec",
    "persistence": "persist",
    "privilege-escalation": "privesc",
    "defense-evasion": "evasion",
    "credential-access": "cred",
    "discovery": "discov",
    "lateral-movement": "lateral",
    "collection": "collect",
    "command-and-control": "c2",
    "exfiltration": "exfil",
    "impact": "impact",
}


# The CLUSTER column is at most this wide (a longer context name is clipped).
CLUSTER_WIDTH = 16


# The containment mark: every pod isolated or gone and every acting identity
# revoked / something contained / nothing contained yet.
CONTAINMENT_MARKS = {CONTAINED: "✓", PARTLY: "◒", NOTHING: "·"}


def entity_short(ent: EntityRef) -> str:
    return _KIND_PREFIX.get(ent.kind, ent.kind.lower() + ":") + ent.short()


def entities_short(entities: tuple[EntityRef, ...], limit: int = 2) -> str:
    strong = [e for e in entities if e.strong] or list(entities)
    text = ", ".join(entity_short(e) for e in strong[:limit])
    if len(strong) > limit:
        text += f" +{len(strong) - limit}"
    return text


def tactics_short(tactics: tuple[str, ...]) -> str:
    return " ".join(TACTIC_SHORT.get(t, t) for t in tactics)


class IncidentList(RowList):
    """Incidents with a badge, a containment mark, id, title, entities, tactics, event
    count and the time since the last event (LAST)."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        *RowList.COMPONENT_CLASSES,
        "containment--done",
        "containment--partly",
    }
    DEFAULT_CSS = """
    IncidentList > .containment--done { color: $success; text-style: bold; }
    IncidentList > .containment--partly { color: $ktriage-new; text-style: bold; }
    """
    PANE_TITLE = "Incidents"
    EMPTY_TEXT = "No incidents yet: signals open incidents as they arrive."
    BINDINGS: ClassVar = [("enter", "open", "Timeline")]

    def __init__(
        self,
        clock: Callable[[], float],
        *,
        id: str | None = None,
        containment: Callable[[Incident], str] | None = None,
    ) -> None:
        super().__init__(id=id)
        self.clock = clock
        # The incident's containment level (core.containment), for the mark.
        self.containment = containment
        self.all_incidents: list[Incident] = []
        self.shown: list[Incident] = []
        self.selected_id: str | None = None
        # What the user has looked at: id -> (revision, severity) when last shown.
        self.seen: dict[str, tuple[int, Severity]] = {}
        # The CLUSTER column's width: 0 (no column) unless incidents carry a cluster,
        # which they do only when several clusters are watched.
        self.cluster_width = 0

    # ---- data ----------------------------------------------------------------

    def update_incidents(self, incidents: list[Incident], renamed: dict[str, str]) -> None:
        """New sorted incident list; keeps the cursor on the selected incident."""
        for old, new in renamed.items():
            if old in self.seen and new not in self.seen:
                self.seen[new] = self.seen[old]
        if self.selected_id is not None:
            seen_ids: set[str] = set()
            while self.selected_id in renamed and self.selected_id not in seen_ids:
                seen_ids.add(self.selected_id)
                self.selected_id = renamed[self.selected_id]
        self.all_incidents = incidents
        longest = max((len(i.cluster) for i in incidents), default=0)
        self.cluster_width = min(CLUSTER_WIDTH, max(7, longest)) if longest else 0
        self._apply_filter()
        self._restore_cursor()
        self.data_changed()

    def _apply_filter(self) -> None:
        query = self.query_filter
        if query is None:
            self.shown = self.all_incidents
        else:
            self.shown = [i for i in self.all_incidents if self._matches(i, query)]

    @staticmethod
    def _matches(inc: Incident, query: Query) -> bool:
        hay = " ".join(
            (
                inc.id,
                inc.cluster,
                inc.title,
                inc.severity.label,
                " ".join(inc.tactics),
                " ".join(e.short() for e in inc.entities),
            )
        ).lower()
        namespaces = [e.namespace or e.name for e in inc.entities if e.namespace]
        sources = inc.counts_by_source
        if query.sources and not any(s in sources for s in query.sources):
            return False
        return query.matches_fields(
            hay, severity=inc.severity, namespaces=namespaces, cluster=inc.cluster
        )

    def _restore_cursor(self) -> None:
        previous = self.selected_id
        if previous is not None:
            for i, inc in enumerate(self.shown):
                if inc.id == previous:
                    self.cursor = i
                    return
        if self.shown:
            self.cursor = min(self.cursor, len(self.shown) - 1)
            self.selected_id = self.shown[self.cursor].id
        else:
            self.selected_id = None
        if self.selected_id != previous:
            self.post_message(self.CursorMoved(self, self.cursor))

    def set_query(self, query: Query | None) -> None:
        self.query_filter = query if query is not None and not query.empty else None
        self._apply_filter()
        self._restore_cursor()
        self.data_changed()

    @property
    def selected(self) -> Incident | None:
        if 0 <= self.cursor < len(self.shown):
            return self.shown[self.cursor]
        return None

    def select_id(self, incident_id: str) -> bool:
        for i, inc in enumerate(self.shown):
            if inc.id == incident_id:
                self.selected_id = incident_id
                self.move_cursor(i, user=False)
                return True
        return False

    def move_cursor(self, index: int, *, user: bool = True) -> None:
        if self.shown:
            self.selected_id = self.shown[max(0, min(index, len(self.shown) - 1))].id
        super().move_cursor(index, user=user)

    def mark_seen(self, inc: Incident) -> None:
        self.seen[inc.id] = (inc.revision, inc.severity)
        self.refresh()

    def marker(self, inc: Incident) -> str:
        """`new`, `escalated`, `updated` or `` for an incident not looked at since."""
        seen = self.seen.get(inc.id)
        if seen is None:
            return "new"
        revision, severity = seen
        if inc.severity > severity:
            return "escalated"
        if inc.revision > revision:
            return "updated"
        return ""

    # ---- rendering -------------------------------------------------------------

    def row_count(self) -> int:
        return len(self.shown)

    def _widths(self, width: int) -> tuple[int, int, int]:
        """Widths of title, entities and tactics for this pane width."""
        fixed = 2 + 5 + 2 + 11 + 7 + 6 + (self.cluster_width + 1 if self.cluster_width else 0)
        rest = max(10, width - fixed)
        tactics = min(28, rest // 5) if width >= 100 else 0
        entities = min(48, rest * 2 // 7) if width >= 70 else 0
        title = rest - tactics - entities - (1 if tactics else 0) - (1 if entities else 0)
        return title, entities, tactics

    def render_header(self, width: int) -> Text | None:
        title, entities, tactics = self._widths(width)
        parts = [Text("  SEV  C ID         ")]
        if self.cluster_width:
            parts += [cell("CLUSTER", self.cluster_width), Text(" ")]
        parts.append(cell("TITLE", title))
        if entities:
            parts += [Text(" "), cell("ENTITIES", entities)]
        if tactics:
            parts += [Text(" "), cell("TACTICS", tactics)]
        # LAST: how long ago the incident's last event was (not how old the incident is).
        parts += [Text(" "), cell("EVENTS", 6, right=True), cell("LAST", 6, right=True)]
        return Text.assemble(*parts)

    def render_row(self, index: int, width: int) -> Text:
        inc = self.shown[index]
        title_w, entities_w, tactics_w = self._widths(width)
        sev_style = self.severity_style(inc.severity)
        mark = self.marker(inc)
        if mark == "new":
            mark_text = Text("●", self.style_for("rowlist--new"))
        elif mark == "escalated":
            mark_text = Text("▲", sev_style)
        elif mark == "updated":
            mark_text = Text("•", self.style_for("rowlist--muted"))
        else:
            mark_text = Text(" ")
        parts = [
            mark_text,
            Text(" "),
            Text(SEVERITY_BADGES[inc.severity], sev_style),
            Text(" "),
            self._containment_mark(inc),
            Text(" "),
            cell(inc.id, 10, self.style_for("rowlist--key")),
            Text(" "),
        ]
        muted = self.style_for("rowlist--muted")
        if self.cluster_width:
            parts += [cell(inc.cluster, self.cluster_width, muted), Text(" ")]
        parts.append(cell(inc.title, title_w))
        if entities_w:
            parts += [Text(" "), cell(entities_short(inc.entities), entities_w, muted)]
        if tactics_w:
            parts += [Text(" "), cell(tactics_short(inc.tactics), tactics_w, muted)]
        parts += [
            Text(" "),
            cell(str(inc.event_count), 6, right=True),
            cell(age(self.clock() - inc.last_seen), 6, muted, right=True),
        ]
        return Text.assemble(*parts)

    def _containment_mark(self, inc: Incident) -> Text:
        level = self.containment(inc) if self.containment is not None else NOTHING
        style = {
            CONTAINED: "containment--done",
            PARTLY: "containment--partly",
        }.get(level, "rowlist--muted")
        return Text(CONTAINMENT_MARKS.get(level, " "), self.style_for(style))

    def subtitle(self) -> str:
        total = len(self.all_incidents)
        fresh = sum(1 for i in self.all_incidents if self.marker(i) in ("new", "escalated"))
        text = f"{total} incident{'s' if total != 1 else ''}"
        if fresh:
            text += f" · {fresh} new/escalated"
        if self.query_filter is not None:
            text += f" · filter: {self.query_filter.text} ({len(self.shown)})"
        return text
