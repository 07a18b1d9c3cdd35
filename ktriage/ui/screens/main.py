"""The main screen: Incidents, Timeline, Detail, Pods and Live stream panes.

It holds no domain logic: it shows what the engine has, and moves the
selection between panes. Updates arrive in batches from the app's timer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.events import DescendantFocus
from textual.reactive import var
from textual.screen import Screen

from ktriage.core.model import EntityRef, Event, Incident
from ktriage.ui.containment import ContainmentTracker
from ktriage.ui.detail import event_detail, incident_detail, pod_detail
from ktriage.ui.hooks import ActorCache, Selection
from ktriage.ui.pods import PodRow, pod_rows, pods_loading
from ktriage.ui.query import parse_query
from ktriage.ui.widgets.detail_view import DetailView
from ktriage.ui.widgets.filter_bar import FilterBar
from ktriage.ui.widgets.incident_list import IncidentList
from ktriage.ui.widgets.key_hints import KeyHints
from ktriage.ui.widgets.live_stream import LiveStream
from ktriage.ui.widgets.notice_bar import NoticeBar
from ktriage.ui.widgets.pod_list import PodList
from ktriage.ui.widgets.row_list import RowList
from ktriage.ui.widgets.status_bar import StatusBar
from ktriage.ui.widgets.timeline import Timeline

if TYPE_CHECKING:
    from ktriage.engine import Changes
    from ktriage.resourceread import ResourceReader
    from ktriage.ui.app import KtriageApp

PANE_NAMES = {
    "incidents": "Incidents",
    "timeline": "Timeline",
    "detail": "Detail",
    "pods": "Pods",
    "live": "Live stream",
}

# One level up from each pane, for `esc`: Detail goes back to the pane whose row it
# shows (see PARENT_OF_DETAIL); the Timeline, Pods and Live stream belong to the
# incidents; Incidents is the top.
PARENT_PANE = {"timeline": "incidents", "pods": "incidents", "live": "incidents"}
PARENT_OF_DETAIL = {"timeline": "timeline", "pods": "pods", "live": "live"}


class MainScreen(Screen[None]):
    # A zoomed pane keeps the status line, the prompt, notices and the key hints.
    ALLOW_IN_MAXIMIZED_VIEW = "StatusBar, FilterBar, NoticeBar, KeyHints"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f", "toggle_follow", "Follow"),
        Binding("z", "zoom", "Zoom", show=False),
        Binding("b", "blast", "Blast radius", show=False),
        Binding("w", "workflow", "Workflow", show=False),
        Binding("A", "ack", "Acknowledge", show=False),
        Binding("m", "note", "Note", show=False),
        Binding("escape", "back", "Back", show=False),
        Binding("colon", "resource_prompt", "Resources", key_display=":", show=False),
        Binding("d", "describe", "Describe", show=False),
        Binding("L", "pod_logs", "View logs", key_display="L", show=False),
    ]

    # What the action keys act on (the pod; the identity that acted, which the actor
    # cache settles a few seconds after the incident changed): the footer follows it.
    # Permission answers and finished actions refresh the footer themselves.
    action_targets: var[tuple[object, ...]] = var((), init=False, bindings=True)

    def __init__(self) -> None:
        super().__init__()
        # The pane the filter prompt edits and its query before editing.
        self._filter_target: RowList | None = None
        self._filter_before = ""
        self._pods_key: tuple[object, ...] | None = None
        self._detail_source = ""  # which pane the Detail content came from
        self.containment: ContainmentTracker | None = None
        self._actors: ActorCache | None = None

    @property
    def kapp(self) -> KtriageApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        app = self.kapp
        engine = app.engine
        self.containment = ContainmentTracker(engine)
        yield StatusBar(id="status")
        with Vertical(id="panes"):
            with Horizontal(id="row-top"):
                yield IncidentList(app.now, id="incidents", containment=self.containment.level)
            with Horizontal(id="row-middle"):
                yield Timeline(engine.store.get, id="timeline")
                yield DetailView(id="detail")
            with Horizontal(id="row-bottom"):
                yield PodList(id="pods")
                yield LiveStream(self._incident_of, capacity=app.live_capacity, id="live")
        yield FilterBar(id="filter")
        yield NoticeBar(id="notice")
        yield KeyHints()

    # ---- shortcuts -------------------------------------------------------------

    @property
    def incidents(self) -> IncidentList:
        return self.query_one(IncidentList)

    @property
    def timeline(self) -> Timeline:
        return self.query_one(Timeline)

    @property
    def detail(self) -> DetailView:
        return self.query_one(DetailView)

    @property
    def pods(self) -> PodList:
        return self.query_one(PodList)

    @property
    def live(self) -> LiveStream:
        return self.query_one(LiveStream)

    @property
    def notice(self) -> NoticeBar:
        return self.query_one(NoticeBar)

    def _incident_of(self, ev: Event) -> str | None:
        inc = self.kapp.engine.correlator.incident_of_event(ev.id)
        if inc is None and ev.incident_hint:
            return ev.incident_hint
        return inc.id if inc is not None else None

    def on_mount(self) -> None:
        self.incidents.focus()
        self.apply_changes(self.kapp.engine.take_changes())
        self.tick_slow()

    # ---- batched updates ---------------------------------------------------------

    def apply_changes(self, changes: Changes) -> None:
        """One batch from the engine: a handful of repaints, whatever its size."""
        correlator = self.kapp.engine.correlator
        incidents = self.incidents
        if changes.incidents or changes.renamed or not incidents.all_incidents:
            incidents.update_incidents(correlator.sorted_incidents(), changes.renamed)
        selected = incidents.selected
        shown = self.timeline.incident
        if selected is not None and shown is not None and selected.id in changes.incidents:
            if selected is shown or selected.id == shown.id:
                self.timeline.show_incident(selected)
                incidents.mark_seen(selected)
                if self._detail_source == "incidents":
                    self._show_incident_detail(selected)
                if self.kapp.action_provider is not None:
                    # A new pod or a first actor may bring action keys with it.
                    self.refresh_bindings()
        elif selected is not None and (shown is None or shown.id != selected.id):
            self._select_incident(selected)
        if changes.events:
            self.live.add_events(changes.events)

    def tick_slow(self) -> None:
        """About once a second: ages, the status bar, live pod state."""
        app = self.kapp
        engine = app.engine
        self.query_one(StatusBar).update_status(
            context=engine.context_name or app.mode,
            cluster=engine.cluster_name,
            mode=app.mode,
            health=engine.health(),
            now=app.now(),
            read_only=app.read_only,
            lag_now=app.lag_clock() if app.lag_clock is not None else None,
            dropped=engine.store.dropped,
            clusters=engine.cluster_health() if hasattr(engine, "cluster_health") else (),
        )
        self.incidents.refresh()
        if engine.cluster is not None:
            self.refresh_pods()
        if app.action_provider is not None:
            selection = self.selection()
            self.action_targets = (selection.pod, selection.identity)

    def refresh_pods_at_list_edges(self) -> None:
        """Every refresh: a pod list's first pods and its end show at once, not at the
        next slow tick (the pane is redrawn about twice a second while it loads)."""
        cluster = self.kapp.engine.cluster
        if cluster is None:
            return
        pods = self.pods
        loading = pods_loading(cluster)
        if pods.loading_count is not None and loading is None:
            self.refresh_pods()  # the list ended
        elif loading and not pods.rows and pods.show_all:
            self.refresh_pods()  # its first page is in

    # ---- selection flow -------------------------------------------------------------

    def _select_incident(self, inc: Incident | None) -> None:
        self.timeline.show_incident(inc)
        if inc is not None:
            self.incidents.mark_seen(inc)
        self.refresh_pods(force=True)
        focused = self.focused
        if focused is self.incidents or self._detail_source in ("", "incidents"):
            self._show_incident_detail(inc)
        if self.kapp.action_provider is not None:
            self.refresh_bindings()

    def refresh_pods(self, *, force: bool = False) -> None:
        engine = self.kapp.engine
        pods = self.pods
        inc = self.incidents.selected
        state = engine.state_for(inc)
        cluster_rev = getattr(state, "revision", None)
        key = (pods.show_all, inc.id if inc else None, inc.revision if inc else None, cluster_rev)
        if not force and key == self._pods_key:
            return
        self._pods_key = key
        rows = pod_rows(engine.store, state, inc, show_all=pods.show_all)
        scope = "all pods" if pods.show_all else (f"{inc.id}" if inc else "no incident")
        cluster = self.pods_cluster()
        if cluster:  # with several clusters, the pane lists one: say which
            from ktriage.ui.format import cluster_label

            scope += f" · cluster {cluster_label(cluster)}"
        pods.set_rows(rows, scope, loading=pods_loading(engine.cluster))
        if self._detail_source == "pods":
            # The pod shown in Detail changed too (cordoned, isolated, restarted).
            self._show_pod_detail(pods.selected)

    def _show_incident_detail(self, inc: Incident | None) -> None:
        self._detail_source = "incidents"
        if inc is None:
            self.detail.clear()
            return
        state = self.containment.of(inc) if self.containment is not None else None
        styles = self.detail.styles_for_builders()
        keeper = self.kapp.workflow
        work = keeper.work_for(inc.id, self.kapp.engine) if keeper is not None else None
        lines = incident_detail(inc, dict(inc.counts_by_source), styles, state, work)
        self.detail.show(lines, f"incident {inc.id}")

    def _show_event_detail(self, ev: Event | None, source: str) -> None:
        self._detail_source = source
        if ev is None:
            self.detail.clear()
            return
        engine = self.kapp.engine
        try:
            raw = engine.raw_record(ev)
        except (OSError, ValueError):
            raw = None
        inc = engine.correlator.incident_of_event(ev.id)
        lines = event_detail(ev, raw, inc, self.detail.styles_for_builders())
        self.detail.show(lines, f"event #{ev.id} · {ev.source}")

    def _show_pod_detail(self, row: PodRow | None) -> None:
        self._detail_source = "pods"
        if row is None:
            self.detail.clear()
            return
        engine = self.kapp.engine
        ids = engine.store.by_entity(row.ref)
        related: list[Incident] = []
        seen: set[str] = set()
        for eid in ids[-2000:]:
            inc = engine.correlator.incident_of_event(eid)
            if inc is not None and inc.id not in seen:
                seen.add(inc.id)
                related.append(inc)
        related.sort(key=lambda i: (-i.severity, -i.last_seen))
        lines = pod_detail(row, related[:10], len(ids), self.detail.styles_for_builders())
        self.detail.show(lines, f"pod {row.ref.short()}")

    def refresh_detail(self) -> None:
        """Rebuild the Detail content (after a theme change restyles it)."""
        source = self._detail_source
        if source == "timeline":
            self._show_event_detail(self.timeline.selected_event, "timeline")
        elif source == "live":
            self._show_event_detail(self.live.selected_event, "live")
        elif source == "pods":
            self._show_pod_detail(self.pods.selected)
        else:
            self._show_incident_detail(self.incidents.selected)

    @on(RowList.CursorMoved, "#incidents")
    def _incident_moved(self, event: RowList.CursorMoved) -> None:
        inc = self.incidents.selected
        shown = self.timeline.incident
        if inc is None or shown is None or inc.id != shown.id:
            self._select_incident(inc)
        elif self.focused is self.incidents:
            self._show_incident_detail(inc)

    @on(RowList.Opened, "#incidents")
    def _incident_opened(self, event: RowList.Opened) -> None:
        self.timeline.focus()

    @on(RowList.CursorMoved, "#timeline")
    def _timeline_moved(self, event: RowList.CursorMoved) -> None:
        if self.focused is self.timeline:
            self._show_event_detail(self.timeline.selected_event, "timeline")

    @on(RowList.Opened, "#timeline")
    def _timeline_opened(self, event: RowList.Opened) -> None:
        self._show_event_detail(self.timeline.selected_event, "timeline")
        self.detail.focus()

    @on(PodList.ScopeToggled)
    def _pods_scope(self, event: PodList.ScopeToggled) -> None:
        self.refresh_pods(force=True)
        self._show_pod_detail(self.pods.selected)
        if self.kapp.action_provider is not None:
            self.refresh_bindings()

    @on(RowList.CursorMoved, "#pods")
    def _pod_moved(self, event: RowList.CursorMoved) -> None:
        if self.focused is self.pods:
            self._show_pod_detail(self.pods.selected)
        if self.kapp.action_provider is not None:
            self.refresh_bindings()

    @on(RowList.Opened, "#pods")
    def _pod_opened(self, event: RowList.Opened) -> None:
        self._show_pod_detail(self.pods.selected)
        self.detail.focus()

    @on(RowList.CursorMoved, "#live")
    def _live_moved(self, event: RowList.CursorMoved) -> None:
        if self.focused is self.live:
            self._show_event_detail(self.live.selected_event, "live")

    @on(RowList.Opened, "#live")
    def _live_opened(self, event: RowList.Opened) -> None:
        ev = self.live.selected_event
        if ev is None:
            return
        inc = self.kapp.engine.correlator.incident_of_event(ev.id)
        if inc is None:
            self._show_event_detail(ev, "live")
            self.notify("This event belongs to no incident.", timeout=3)
            return
        if not self.incidents.select_id(inc.id):
            self.incidents.set_query(None)
            self.incidents.select_id(inc.id)
        self._select_incident(inc)
        self.timeline.select_event(ev.id)
        self.timeline.focus()

    def on_descendant_focus(self, event: DescendantFocus) -> None:
        widget = event.widget
        if not isinstance(widget, RowList) or widget.id is None:
            return
        if widget is self.incidents:
            self._show_incident_detail(self.incidents.selected)
        elif widget is self.timeline:
            self._show_event_detail(self.timeline.selected_event, "timeline")
        elif widget is self.pods:
            self._show_pod_detail(self.pods.selected)
        elif widget is self.live:
            self._show_event_detail(self.live.selected_event, "live")

    # ---- filter prompt ----------------------------------------------------------------

    @on(RowList.FilterRequested)
    def _filter_requested(self, event: RowList.FilterRequested) -> None:
        target = event.row_list
        self._filter_target = target
        current = target.query_filter.text if target.query_filter is not None else ""
        self._filter_before = current
        verb = "search" if target.QUERY_MODE == "search" else "filter"
        name = PANE_NAMES.get(target.id or "", "")
        self.query_one(FilterBar).open(f"{verb} {name} /", current)

    @on(FilterBar.Changed)
    def _filter_changed(self, event: FilterBar.Changed) -> None:
        target = self._filter_target
        if target is None:
            return
        query = parse_query(event.text)
        target.set_query(query)
        if event.final:
            if query.problems:
                self.notify("; ".join(query.problems), severity="warning", markup=False)
            self._close_filter()

    @on(FilterBar.Cancelled)
    def _filter_cancelled(self, event: FilterBar.Cancelled) -> None:
        target = self._filter_target
        if target is not None:
            target.set_query(parse_query(self._filter_before))
        self._close_filter()

    def _close_filter(self) -> None:
        self.query_one(FilterBar).close()
        target = self._filter_target
        self._filter_target = None
        if target is not None:
            target.focus()

    # ---- keys ---------------------------------------------------------------------------

    def follow_target(self) -> Timeline | LiveStream:
        return self.live if self.focused is self.live else self.timeline

    def action_toggle_follow(self) -> None:
        target = self.follow_target()
        target.toggle_follow()
        name = "live stream" if target is self.live else "timeline"
        state = "following" if target.follow else "paused"
        self.notify(f"{name.capitalize()}: {state}", timeout=1.5)

    def action_blast(self) -> None:
        from ktriage.ui.screens.blast import open_blast

        open_blast(self.kapp, self.incidents.selected)

    def action_workflow(self) -> None:
        from ktriage.ui.screens.workflow import open_workflow

        open_workflow(self.kapp, self.incidents.selected)

    def action_note(self) -> None:
        from ktriage.ui.screens.workflow import open_workflow

        open_workflow(self.kapp, self.incidents.selected, ask="note")

    def action_ack(self) -> None:
        """Acknowledge the selected incident, saying so below the panes."""
        from ktriage.ui.screens.workflow import acknowledge

        inc = self.incidents.selected
        if inc is not None and self.kapp.workflow is not None:
            title, body = acknowledge(self.kapp.workflow, self.kapp.engine, inc)
            self.notice.show_notice(title, body, seconds=6)

    def action_zoom(self) -> None:
        if self.maximized is not None:
            self.minimize()
        elif self.focused is not None:
            self.maximize(self.focused)

    # ---- resource views, describe, logs (ui/screens/resource.py) ---------------------

    def action_resource_prompt(self) -> None:
        from ktriage.ui.screens.resource import open_prompt

        open_prompt(self.kapp)

    def pods_cluster(self) -> str:
        """The cluster whose pods the Pods pane lists: the selected incident's, else the
        first cluster's ("" with one cluster)."""
        from ktriage.ui.screens.resource import clusters_of

        names = clusters_of(self.kapp)
        if not names:
            return ""
        inc = self.incidents.selected
        cluster = getattr(inc, "cluster", "") if inc is not None else ""
        return cluster if cluster in names else names[0]

    def _reader_and_pod(self, what: str) -> tuple[ResourceReader, EntityRef, str] | None:
        """The reader (of the pod's cluster), the pod `d`/`L` act on (the Pods row, else
        the incident's main pod) and its cluster; None, said below the panes, when there
        is none or no cluster."""
        from ktriage.ui.screens.resource import NO_CLUSTER, no_client, reader_for

        cluster = self.pods_cluster()
        reader = reader_for(self.kapp, cluster)
        if reader is None:
            self.notice.show_notice(what, no_client(cluster) if cluster else NO_CLUSTER)
            return None
        pod = self.selection().pod
        if pod is None:
            self.notice.show_notice(what, "No pod selected: pick one in the Pods pane.")
            return None
        return reader, pod, cluster

    def action_describe(self) -> None:
        from ktriage.ui.screens.describe import DescribeScreen

        found = self._reader_and_pod("d Describe")
        if found is not None:
            reader, pod, cluster = found
            self.app.push_screen(
                DescribeScreen(reader, "Pod", pod.namespace, pod.name, cluster=cluster)
            )

    def action_pod_logs(self) -> None:
        from ktriage.ui.screens.pod_logs import PodLogsScreen

        found = self._reader_and_pod("L View logs")
        if found is not None:
            reader, pod, cluster = found
            self.app.push_screen(PodLogsScreen(reader, pod.namespace, pod.name, cluster=cluster))

    def parent_pane(self, pane: str) -> str | None:
        """The pane one level up from `pane` (None at the top)."""
        if pane == "detail":
            return PARENT_OF_DETAIL.get(self._detail_source, "incidents")
        return PARENT_PANE.get(pane)

    def action_back(self) -> None:
        """Up one level: detail → its list → incidents. A notice or a pane's filter
        goes first; at the top, nothing else happens."""
        if self.notice.active:
            self.notice.hide()
            return
        focused = self.focused
        if isinstance(focused, RowList) and focused.query_filter is not None:
            focused.set_query(None)
            return
        if focused is None or focused.id not in PANE_NAMES:
            self.incidents.focus()
            return
        parent = self.parent_pane(focused.id)
        if parent is not None:
            self.query_one(f"#{parent}").focus()

    def selection(self) -> Selection:
        """What an action key acts on."""
        focused = self.focused
        inc = self.incidents.selected
        event = None
        pane = focused.id if focused is not None and focused.id else "incidents"
        if focused is self.timeline:
            event = self.timeline.selected_event
        elif focused is self.live:
            event = self.live.selected_event
        pod_row = self.pods.selected if focused is self.pods else None
        if pod_row is not None:
            pod = pod_row.ref
            info = pod_row.info
        else:
            pod = Selection.main_pod(inc)
            info = None
            cluster = self.kapp.engine.state_for(inc)
            if pod is not None and cluster is not None:
                info = cluster.pods.get((pod.namespace, pod.name))
        if self._actors is None:
            self._actors = ActorCache(self.kapp.engine.store.get)
        identity = self._actors.actor(inc)
        return Selection(
            pane=pane, incident=inc, event=event, pod=pod, pod_info=info, identity=identity
        )
