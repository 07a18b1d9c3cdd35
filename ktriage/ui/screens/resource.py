"""The `:` resource views (k9s-style): a prompt, then a full-screen table read live.

`:` opens a one-line prompt with completion (`pods`, `nodes`, `events`,
`netpol`, `sa`, `rbac`, `incidents`, and aliases such as `po`, `no`, `ev`).
Each view lists its kind in every namespace from the live cluster, read only,
in a worker thread (the UI keeps answering); a kind that cannot be read (401,
403, a timeout) is a line in the view, the rest still shown. `/` filters,
`r` reads again, `d` describes the row, `L` follows a pod's log, `esc` goes
back to the incidents. Without a live cluster (a replay) the view says so.

With several clusters a view reads one of them, named in its title: the selected
incident's cluster, else the last one viewed (the first at start); `:pods@NAME`
names it, and `@` in a view switches to the next cluster.
"""

from __future__ import annotations

import time
import weakref
from typing import Any, ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.screen import ModalScreen, Screen
from textual.widgets import Input, Static

from ktriage.core.text import shown
from ktriage.resourceread import INCIDENTS, PROMPT_WORDS, Listing, Resource, ResourceReader, resolve
from ktriage.ui.format import cluster_label
from ktriage.ui.query import parse_query
from ktriage.ui.readers import cached_reader
from ktriage.ui.widgets.filter_bar import FilterBar
from ktriage.ui.widgets.key_hints import KeyHints
from ktriage.ui.widgets.resource_prompt import ResourcePrompt
from ktriage.ui.widgets.resource_table import ResourceTable

# One reader per app and cluster ("" with one cluster): its ApiClient (and connection
# pool) outlives the views.
_READERS: weakref.WeakKeyDictionary[Any, dict[str, ResourceReader]] = weakref.WeakKeyDictionary()
# The cluster the views read last, per app (with several clusters).
_VIEWED: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()
NO_CLUSTER = (
    "No live cluster: ktriage is replaying recorded events, so there is no cluster to read. "
    "Resource views, describe and logs need `ktriage` (live) or `ktriage demo`."
)


def clusters_of(app: Any) -> list[str]:
    """The watched clusters' names when several are watched (in the order added); []
    with one cluster."""
    members = getattr(getattr(app, "engine", None), "members", None)
    return list(members) if members else []


def no_client(cluster: str) -> str:
    return (
        f"No connection to cluster {cluster_label(cluster)}: ktriage has no client for it "
        "(see its health in the status bar)."
    )


def reader_for(app: Any, cluster: str = "") -> ResourceReader | None:
    """The reader of a cluster (of the app's one cluster with ""), made on first use;
    None without a live cluster (replay) or without a client for that cluster."""
    return cached_reader(_READERS, app, cluster, ResourceReader)


def incident_cluster(app: Any) -> str:
    """The selected incident's cluster on the main screen ("" when none is selected)."""
    from ktriage.ui.screens.main import MainScreen

    screen = getattr(app, "main_screen", None)
    if not isinstance(screen, MainScreen) or not screen.is_mounted:
        return ""
    inc = screen.incidents.selected
    return str(getattr(inc, "cluster", "") or "") if inc is not None else ""


def view_cluster(app: Any) -> str:
    """The cluster a view opened now reads: "" with one cluster; with several, the
    selected incident's, else the one viewed last, else the first."""
    names = clusters_of(app)
    if not names:
        return ""
    chosen = incident_cluster(app)
    if chosen in names:
        return chosen
    last = _VIEWED.get(app, "")
    return last if last in names else names[0]


def split_word(word: str) -> tuple[str, str | None]:
    """`pods@demo-west` → ("pods", "demo-west"); `pods` → ("pods", None)."""
    view, at, cluster = word.partition("@")
    return view, (cluster.strip() if at else None)


def unknown_word(word: str) -> str:
    return f"No view named {shown(word)!r}. Known: {', '.join(PROMPT_WORDS)}."


class ResourcePromptScreen(ModalScreen[str | None]):
    """The `:` prompt, at the bottom of the screen over whatever is shown."""

    DEFAULT_CSS = """
    ResourcePromptScreen { align: left bottom; background: $background 0%; }
    ResourcePromptScreen > Horizontal { height: 1; background: $panel; dock: bottom; }
    ResourcePromptScreen Static { width: auto; padding: 0 0 0 1; color: $accent;
        text-style: bold; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", priority=True),
    ]

    def compose(self) -> ComposeResult:
        with Horizontal():
            yield Static(Text(":"))
            yield ResourcePrompt(clusters=clusters_of(self.app), id="resource-prompt")

    def on_mount(self) -> None:
        self.query_one(ResourcePrompt).focus()

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.dismiss(event.value.strip())

    def action_cancel(self) -> None:
        self.dismiss(None)


def open_prompt(app: Any) -> None:
    """`:` anywhere: ask for a view, then open it."""

    def chosen(word: str | None) -> None:
        if word:
            open_view(app, word)

    app.push_screen(ResourcePromptScreen(), chosen)


def _say(app: Any, title: str, body: str) -> None:
    """Below the panes on the main screen (not over its newest rows), else a toast."""
    from ktriage.ui.screens.main import MainScreen

    screen = app.screen
    if isinstance(screen, MainScreen):
        screen.notice.show_notice(title, body)
    elif isinstance(screen, ResourceScreen):
        screen.say(f"{title}: {body}")
    else:
        app.notify(shown(body), title=shown(title), markup=False, severity="warning")


def back_to_main(app: Any) -> None:
    from ktriage.ui.screens.main import MainScreen

    while len(app.screen_stack) > 1 and not isinstance(app.screen, MainScreen):
        app.pop_screen()


def open_view(app: Any, word: str) -> None:
    """Open the view a prompt word names (`pods`, `pods@CLUSTER`): a resource table, or
    back to the incidents."""
    view, wanted = split_word(word)
    if view.strip().lstrip(":").strip().lower() == INCIDENTS:
        back_to_main(app)
        return
    resource = resolve(view)
    if resource is None:
        _say(app, f":{shown(view)}", unknown_word(view))
        return
    names = clusters_of(app)
    if wanted is not None and wanted not in names:
        known = f"Watched: {', '.join(cluster_label(n) for n in names)}." if names else ""
        what = "several clusters" if names else "one cluster, so no @CLUSTER is needed"
        _say(
            app,
            f":{resource.name}",
            f"No watched cluster named {cluster_label(wanted)!r} (ktriage watches {what}). "
            + known,
        )
        return
    current = app.screen
    if wanted is not None:
        cluster = wanted
    elif isinstance(current, ResourceScreen) and current.cluster:
        cluster = current.cluster  # from one view to another: the same cluster
    else:
        cluster = view_cluster(app)
    reader = reader_for(app, cluster)
    if reader is None:
        _say(app, f":{resource.name}", no_client(cluster) if cluster else NO_CLUSTER)
        return
    if cluster:
        _VIEWED[app] = cluster
    screen = ResourceScreen(resource, reader, cluster=cluster)
    if isinstance(app.screen, ResourceScreen):
        app.switch_screen(screen)
    else:
        back_to_main(app)
        app.push_screen(screen)


class ResourceScreen(Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back", key_display="esc"),
        Binding("d", "describe", "Describe"),
        Binding("L", "logs", "View logs", key_display="L"),
        # Reached when the view lists no pods (the key above is then disabled): says so.
        Binding("L", "no_logs", "View logs", key_display="L", show=False),
        Binding("r", "reload", "Reload"),
        Binding("at", "next_cluster", "Cluster", key_display="@"),
        Binding("colon", "prompt", "View", key_display=":"),
    ]
    DEFAULT_CSS = """
    ResourceScreen > #resource-status { height: auto; max-height: 6; padding: 0 1;
        background: $panel; }
    ResourceScreen > #resource-status.-problem { color: $warning; }
    ResourceScreen > ResourceTable { height: 1fr; border: round $primary; }
    """

    def __init__(self, resource: Resource, reader: ResourceReader, *, cluster: str = "") -> None:
        super().__init__()
        self.resource = resource
        self.reader = reader
        # The cluster read, named in the title ("" with one cluster).
        self.cluster = cluster
        self.listing: Listing | None = None
        self.reading = False
        self.read_at: float | None = None
        self._filter_before = ""

    @property
    def table(self) -> ResourceTable:
        return self.query_one(ResourceTable)

    @property
    def title_text(self) -> str:
        """The view's name, and its cluster's when several are watched."""
        if not self.cluster:
            return self.resource.title
        return f"{self.resource.title} · cluster {cluster_label(self.cluster)}"

    @property
    def lists_pods(self) -> bool:
        """Whether `L` can work here: pods, or events (about pods)."""
        return bool({"Pod", "Event"} & set(self.resource.kinds))

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "logs":
            return self.lists_pods
        if action == "no_logs":
            return not self.lists_pods
        if action == "next_cluster":
            return len(clusters_of(self.app)) > 1
        return True

    def compose(self) -> ComposeResult:
        yield Static(Text(""), id="resource-status")
        table = ResourceTable(self.resource, self.app.now, id="resource-table")  # type: ignore[attr-defined]
        table.border_title = Text(self.title_text)
        yield table
        yield FilterBar(id="resource-filter")
        yield KeyHints()

    def on_mount(self) -> None:
        self.query_one("#resource-filter", FilterBar).query_one(
            Input
        ).placeholder = "words, !exclude, ns:NAME  (enter: apply, esc: cancel, empty: clear)"
        self.table.focus()
        self.action_reload()

    # ---- reading ------------------------------------------------------------------

    def action_reload(self) -> None:
        if self.reading:
            return
        self.reading = True
        self.say(f"{self.title_text}: reading from the cluster…", problem=False)
        if not self.table.all_rows:
            self.table.loading_text = "reading…"
            self.table.refresh()
        self.run_worker(self._read, thread=True, group="resource", exit_on_error=False)

    def _read(self) -> None:
        try:
            listing = self.reader.list(self.resource)
        except Exception as exc:  # never raised into the UI: said in the view
            listing = Listing(self.resource, problems=[f"{type(exc).__name__}: {exc}"])
        try:
            self.app.call_from_thread(self._show, listing)
        except RuntimeError:
            pass  # the app closed while the cluster was read

    def _show(self, listing: Listing) -> None:
        self.reading = False
        self.listing = listing
        self.read_at = self.app.now()  # type: ignore[attr-defined]
        if not self.is_mounted:
            return
        table = self.table
        table.loading_text = "Nothing could be read (see above)." if listing.problems else ""
        table.set_rows(listing.rows)
        stamp = time.strftime("%H:%M:%S UTC", time.gmtime(self.read_at))
        head = f"{self.title_text} · {len(listing.rows)} read at {stamp} (read only)"
        if listing.problems:
            self.say("\n".join([head, *(f"! {p}" for p in listing.problems)]), problem=True)
        else:
            self.say(head, problem=False)

    def say(self, text: str, *, problem: bool = True) -> None:
        status = self.query_one("#resource-status", Static)
        status.update(Text(shown(text, keep_newlines=True)))
        status.set_class(problem, "-problem")

    @property
    def status_text(self) -> str:
        return str(self.query_one("#resource-status", Static).render())

    # ---- keys ---------------------------------------------------------------------

    def action_back(self) -> None:
        if self.table.query_filter is not None:
            self.table.set_query(None)
            return
        self.app.pop_screen()

    def action_prompt(self) -> None:
        open_prompt(self.app)

    def action_describe(self) -> None:
        row = self.table.selected
        if row is None:
            return
        from ktriage.ui.screens.describe import DescribeScreen

        self.app.push_screen(
            DescribeScreen(self.reader, row.kind, row.namespace, row.name, cluster=self.cluster)
        )

    def action_logs(self) -> None:
        row = self.table.selected
        if row is None:
            return
        if row.kind == "Pod":
            namespace, name = row.namespace, row.name
        elif row.about is not None and row.about[0] == "Pod":
            namespace, name = row.about[1], row.about[2]
        else:
            self.say(f"L follows a pod's log: {row.kind} {row.name} is not a pod.")
            return
        from ktriage.ui.screens.pod_logs import PodLogsScreen

        self.app.push_screen(PodLogsScreen(self.reader, namespace, name, cluster=self.cluster))

    def action_no_logs(self) -> None:
        self.say(
            f"L shows a pod's log: {self.resource.title} are not pods. "
            "Open :pods (or :events, for an event about a pod)."
        )

    def action_next_cluster(self) -> None:
        """`@`: the same view, read from the next watched cluster."""
        names = clusters_of(self.app)
        if len(names) < 2:
            return
        index = names.index(self.cluster) if self.cluster in names else -1
        open_view(self.app, f"{self.resource.name}@{names[(index + 1) % len(names)]}")

    # ---- `/` filter ---------------------------------------------------------------

    @on(ResourceTable.FilterRequested)
    def _filter_requested(self, event: ResourceTable.FilterRequested) -> None:
        table = self.table
        self._filter_before = table.query_filter.text if table.query_filter is not None else ""
        self.query_one(FilterBar).open(f"filter {self.resource.name} /", self._filter_before)

    @on(FilterBar.Changed)
    def _filter_changed(self, event: FilterBar.Changed) -> None:
        self.table.set_query(parse_query(event.text))
        if event.final:
            self._close_filter()

    @on(FilterBar.Cancelled)
    def _filter_cancelled(self, event: FilterBar.Cancelled) -> None:
        self.table.set_query(parse_query(self._filter_before))
        self._close_filter()

    def _close_filter(self) -> None:
        self.query_one(FilterBar).close()
        self.table.focus()
