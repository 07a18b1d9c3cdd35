"""`L`: a pod's log, streamed live into a screen without blocking the UI.

A `LogFollower` thread reads the follow stream (the newest LOG_BUFFER lines
first) into a bounded buffer; a timer here drains it ten times a second into
the LogView ring (10,000 lines; how many were dropped is its first line). Every
line is made safe in the follower thread (`shown`: secrets redacted, control
characters escaped). `f` pauses or resumes following the end, `p` switches to
the previous container instance's log and back, `c` chooses the container,
`/` searches with `n`/`N`, `r` reads it again (a restarted container), `esc`
closes the stream and the screen.
"""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import ModalScreen, Screen
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option

from ktriage.actions.logs import LogStream
from ktriage.core.text import shown
from ktriage.resourceread import LOG_BUFFER, LogFollower, ResourceReader, why
from ktriage.ui.format import in_cluster_title
from ktriage.ui.widgets.filter_bar import FilterBar
from ktriage.ui.widgets.key_hints import KeyHints
from ktriage.ui.widgets.log_view import LogView

DRAIN_INTERVAL = 0.1  # seconds between moving read lines into the view


class ContainerChoice(ModalScreen[str | None]):
    """`c`: pick one of the pod's containers (init and ephemeral ones too)."""

    DEFAULT_CSS = """
    ContainerChoice { align: center middle; }
    ContainerChoice > OptionList { width: 60; max-height: 20; border: round $primary; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, containers: list[LogStream], current: str) -> None:
        super().__init__()
        self.containers = [s for s in containers if not s.previous]
        self.current = current

    def compose(self) -> ComposeResult:
        options = OptionList(
            *(
                # Text prompts: a str would be parsed as markup.
                Option(Text(shown(f"{s.container}  ({s.describe()})")), id=f"c{n}")
                for n, s in enumerate(self.containers)
            )
        )
        options.border_title = Text("Container")
        yield options

    def on_mount(self) -> None:
        options = self.query_one(OptionList)
        names = [s.container for s in self.containers]
        if self.current in names:
            options.highlighted = names.index(self.current)
        options.focus()

    @on(OptionList.OptionSelected)
    def _selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(self.containers[event.option_index].container)

    def action_cancel(self) -> None:
        self.dismiss(None)


class PodLogsScreen(Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "Back", key_display="esc"),
        Binding("f", "toggle_follow", "Follow"),
        Binding("p", "toggle_previous", "Previous"),
        Binding("c", "choose_container", "Container"),
        Binding("r", "reopen", "Reopen"),
        Binding("slash", "search", "Search", key_display="/"),
        Binding("n", "next_match(1)", "Next", show=False),
        Binding("N", "next_match(-1)", "Previous match", show=False),
        Binding("G", "end", "End", show=False),
        Binding("g", "home", "Top", show=False),
    ]
    DEFAULT_CSS = """
    PodLogsScreen > #logs-status { height: auto; max-height: 3; padding: 0 1;
        background: $panel; }
    PodLogsScreen > LogView { height: 1fr; border: round $primary; }
    """

    def __init__(
        self,
        reader: ResourceReader,
        namespace: str,
        name: str,
        container: str | None = None,
        *,
        capacity: int = LOG_BUFFER,
        cluster: str = "",
    ) -> None:
        super().__init__()
        self.cluster = cluster  # named in the title when several clusters are watched
        self.reader = reader
        self.namespace = namespace
        self.pod = name
        self.container = container
        self.previous = False
        self.capacity = capacity
        self.containers: list[LogStream] = []
        self.follower: LogFollower | None = None
        self.ended: str | None = None
        self.problem = ""
        # A one-off answer to a key (`c` with one container), until the next key.
        self.hint = ""

    @property
    def view(self) -> LogView:
        return self.query_one(LogView)

    def compose(self) -> ComposeResult:
        yield Static(Text(""), id="logs-status")
        view = LogView(self.capacity, id="logs-view")
        view.border_title = Text(
            shown(f"Logs {self.namespace}/{self.pod}") + in_cluster_title(self.cluster)
        )
        yield view
        yield FilterBar(id="logs-search")
        yield KeyHints()

    def on_mount(self) -> None:
        self.query_one(FilterBar).query_one(
            Input
        ).placeholder = "text to find (enter: search, esc: cancel); n/N next/previous"
        self.view.focus()
        self.set_interval(DRAIN_INTERVAL, self._drain)
        self._status()
        self.run_worker(self._find_containers, thread=True, group="logs", exit_on_error=False)

    def on_unmount(self) -> None:
        self._stop_follower()

    # ---- the stream -----------------------------------------------------------------

    def _find_containers(self) -> None:
        try:
            containers = self.reader.containers(self.namespace, self.pod)
            problem = ""
        except Exception as exc:  # a pod that is gone, a 403: said on the screen
            containers = []
            problem = why(exc, f"get pods {self.namespace}/{self.pod}")
        try:
            self.app.call_from_thread(self._containers_found, containers, problem)
        except RuntimeError:
            pass  # the app closed meanwhile

    def _containers_found(self, containers: list[LogStream], problem: str) -> None:
        self.containers = containers
        if problem and self.container is None:
            self.problem = problem
            self._status()
            return
        if self.container is None:
            current = [s for s in containers if s.kind == "container" and not s.previous]
            first = current or [s for s in containers if not s.previous]
            if not first:
                self.problem = "the pod has no containers"
                self._status()
                return
            self.container = first[0].container
        self._start()

    def _start(self) -> None:
        self._stop_follower()
        if self.container is None:
            return
        self.ended = None
        self.problem = ""
        self.hint = ""
        self.view.clear()
        self.follower = LogFollower(
            self.reader,
            self.namespace,
            self.pod,
            self.container,
            follow=not self.previous,
            previous=self.previous,
            tail_lines=self.capacity,
            capacity=self.capacity,
            transform=shown,
        ).start()
        self._status()

    def _stop_follower(self) -> None:
        follower, self.follower = self.follower, None
        if follower is not None:
            follower.stop()

    def _drain(self) -> None:
        follower = self.follower
        if follower is None:
            return
        lines, dropped, ended = follower.take()
        if lines or dropped:
            self.view.add_lines(lines, dropped)
        if ended != self.ended:
            self.ended = ended
        self._status()

    def _status(self) -> None:
        if not self.is_mounted:
            return
        view = self.view
        parts = [f"{self.namespace}/{self.pod}"]
        if self.container is not None:
            which = "previous instance" if self.previous else "current"
            parts.append(f"container {self.container} ({which})")
        if self.previous:
            # A finished instance: its whole log was read, nothing more will come.
            parts.append("whole log, not followed (p: back to current)")
        elif self.ended:
            parts.append("stream ended (r reads again)")
        else:
            parts.append("following" if view.follow else "paused (f follows)")
        parts.append(f"{len(view.lines):,} lines")
        if view.dropped:
            parts.append(f"{view.dropped:,} dropped")
        if view.search:
            parts.append(f"search: {view.search}")
        line = " · ".join(parts)
        if self.problem:
            line += f"\n! {self.problem}"
        elif self.hint:
            line += f"\n{self.hint}"
        elif self.ended and not (self.previous and self.ended == "the log ended"):
            line += f"\n{'! ' if self.ended.startswith(('forbidden', 'not found')) else ''}"
            line += self.ended
        status = self.query_one("#logs-status", Static)
        text = Text(shown(line, keep_newlines=True))
        if status.render() != text:
            status.update(text)

    @property
    def status_text(self) -> str:
        return str(self.query_one("#logs-status", Static).render())

    # ---- keys -------------------------------------------------------------------------

    def action_toggle_follow(self) -> None:
        self.hint = ""
        view = self.view
        view.follow = not view.follow
        if view.follow:
            view.scroll_end(animate=False, immediate=True, x_axis=False)
        self._status()

    def action_toggle_previous(self) -> None:
        self.previous = not self.previous
        self._start()

    def action_reopen(self) -> None:
        """Read the log again (after its stream ended: the container restarted)."""
        if self.container is None:
            self.run_worker(self._find_containers, thread=True, group="logs", exit_on_error=False)
        else:
            self._start()

    def action_choose_container(self) -> None:
        if not self.containers:
            self.notify("No containers known yet.", timeout=3)
            return
        names = list(dict.fromkeys(s.container for s in self.containers if not s.previous))
        if len(names) == 1:
            self.hint = f"only one container: {names[0]}"
            self._status()
            return

        def chosen(name: str | None) -> None:
            if name and name != self.container:
                self.container = name
                self.previous = False
                self._start()

        self.app.push_screen(ContainerChoice(self.containers, self.container or ""), chosen)

    def action_search(self) -> None:
        self.query_one(FilterBar).open("search log /", self.view.search)

    def action_next_match(self, step: int) -> None:
        if not self.view.next_match(step):
            self.app.bell()
        self._status()

    def action_end(self) -> None:
        self.view.follow = True
        self.view.scroll_end(animate=False, immediate=True, x_axis=False)
        self._status()

    def action_home(self) -> None:
        self.view.follow = False
        self.view.scroll_home(animate=False, immediate=True)
        self._status()

    def action_close(self) -> None:
        self._stop_follower()
        self.app.pop_screen()

    @on(FilterBar.Changed)
    def _search_changed(self, event: FilterBar.Changed) -> None:
        if event.final:
            found = self.view.set_search(event.text)
            if not found and event.text:
                self.app.bell()
            self.query_one(FilterBar).close()
            self.view.focus()
            self._status()

    @on(FilterBar.Cancelled)
    def _search_cancelled(self, event: FilterBar.Cancelled) -> None:
        self.query_one(FilterBar).close()
        self.view.focus()
