"""The ktriage Textual app and its entry points for live, demo and replay.

A timer (10 Hz by default) takes the engine's batched changes and hands them
to the main screen, so a flood of events costs a few repaints a second and key
presses stay responsive.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import os
import time
from collections.abc import Callable, Iterable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from rich.text import Text
from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.css.query import NoMatches
from textual.markup import escape as escape_markup
from textual.message import Message
from textual.screen import Screen

from ktriage.actions.catalog import BY_NAME, CATALOG, POD
from ktriage.actions.service import kubeconfig_factory
from ktriage.core.config import Config
from ktriage.core.sessions import default_state_dir, record_session
from ktriage.core.snapshot import MARKDOWN, TEXT, write_snapshot
from ktriage.core.text import clip, shown
from ktriage.core.workflow import default_actor
from ktriage.options import LiveOptions, UIOptions
from ktriage.procmem import return_large_blocks
from ktriage.sources import listgc
from ktriage.ui.hooks import ActionProvider, Selection, make_provider
from ktriage.ui.screens.help import HelpScreen
from ktriage.ui.screens.main import PANE_NAMES, MainScreen
from ktriage.ui.screens.quit_confirm import QuitConfirmScreen
from ktriage.ui.screens.sources import SourcesScreen
from ktriage.ui.screens.workflow import WorkflowKeeper
from ktriage.ui.themes import DEFAULT_THEME, VARIABLE_DEFAULTS, load_themes
from ktriage.ui.widgets.notice_bar import NoticesScreen

if TYPE_CHECKING:
    from ktriage.engine import Engine

REFRESH_INTERVAL = 0.1  # seconds between batched updates: ~10 redraws a second at most
SLOW_EVERY = 5  # status bar and ages every this many refreshes
ERROR_NOTICE_SECONDS = 15.0  # at least this long for an error notice
FREEZE_INTERVAL = 2.0  # seconds between moving long-lived objects out of full GC passes
# Allocations between young collections (Python's default: 700). A page of listed pods
# is a few hundred thousand short-lived objects: collected every 700 they were each
# scanned before being dropped; every 20,000, most are gone first (about a tenth off a
# 20,000-pod list, each pause still a few milliseconds).
YOUNG_GC_THRESHOLD = 20_000


def default_snapshot_dir() -> Path:
    """`$XDG_STATE_HOME/ktriage/snapshots` (~/.local/state/ktriage/snapshots).

    A state directory rather than the working directory: snapshots hold incident
    data and should not land in whatever repository the user happens to be in.
    """
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "ktriage" / "snapshots"


class KtriageCommands(Provider):
    """Command palette entries: ktriage's actions and a jump to every incident."""

    def _commands(self) -> list[tuple[str, str, Callable[[], Any]]]:
        app: KtriageApp = self.app  # type: ignore[assignment]
        screen = app.main_screen
        commands: list[tuple[str, str, Callable[[], Any]]] = [
            *app.action_commands(),
            ("Save snapshot", "Write the selected incident as Markdown", app.action_save_snapshot),
            (
                "Save snapshot as plain text",
                "Write the selected incident as text, for a ticket without Markdown",
                partial(app.action_save_snapshot, TEXT),
            ),
            ("Toggle follow", "Follow the timeline's newest events", app.follow_timeline),
            ("Cycle theme", "Switch to the next ktriage theme", app.action_cycle_theme),
            ("Keys", "Every key ktriage knows", app.action_help),
            ("Sources", "Every source's health in full", app.action_sources),
            ("Notices", "The last notices, newest first", app.action_notices),
        ]
        if screen is not None:
            pods = screen.pods
            commands.append(("All pods", "Toggle all pods", pods.action_toggle_all))
            commands.append(("Zoom", "Zoom the focused pane (esc restores)", screen.action_zoom))
            for pane, pane_name in PANE_NAMES.items():
                commands.append(
                    (f"Go to {pane_name}", "Focus that pane", partial(app.focus_pane, pane))
                )
            commands.append(("Blast radius", "What the incident can reach", screen.action_blast))
            commands.append(
                ("Workflow", "Status, owner and notes of the incident (w)", screen.action_workflow)
            )
            commands.append(("Acknowledge", "Acknowledge the incident (A)", screen.action_ack))
            commands.append(("Add note", "A note on the incident (m)", screen.action_note))
            for inc in screen.incidents.all_incidents[:500]:
                commands.append(
                    (
                        f"Go to {inc.id} {shown(inc.title)}",
                        f"{inc.severity.label} · {inc.event_count} events",
                        partial(app.go_to_incident, inc.id),
                    )
                )
        return commands

    async def discover(self) -> Hits:
        app: KtriageApp = self.app  # type: ignore[assignment]
        actions = app.action_commands()
        # Every action possible on the selection, then the everyday commands.
        for name, help_text, callback in actions + self._commands()[len(actions) :][:5]:
            yield DiscoveryHit(Text(shown(name)), callback, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        app: KtriageApp = self.app  # type: ignore[assignment]
        # Searched for, an action not possible now is found too, saying why.
        for name, help_text, callback in self._commands() + app.unavailable_action_commands():
            score = matcher.match(name)
            if score > 0:
                yield Hit(score, _highlight(matcher, name), callback, text=name, help=help_text)


def _highlight(matcher: Any, name: str) -> Text:
    """The fuzzy match underlined, on plain text.

    Textual's own `Matcher.highlight` parses its input as markup, and incident
    titles are attacker-controlled, so the match offsets are applied here to a
    plain Text instead. Help strings must stay free of untrusted text for the
    same reason.
    """
    plain = shown(name)
    text = Text(plain)
    _score, offsets = matcher.fuzzy_search.match(matcher.query, plain)
    for offset in offsets:
        text.stylize("bold underline", offset, offset + 1)
    return text


class KtriageApp(App[int]):
    """The triage UI over an Engine (live, demo or replay)."""

    CSS_PATH = "styles/ktriage.tcss"
    TITLE = "ktriage"
    COMMANDS: ClassVar = App.COMMANDS | {KtriageCommands}
    ENABLE_COMMAND_PALETTE = True

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit", "Quit"),
        Binding("question_mark", "help", "Help", key_display="?"),
        Binding("s", "save_snapshot", "Snapshot"),
        Binding("t", "cycle_theme", "Theme"),
        *(Binding(a.key, a.binding_action, a.title, tooltip=a.description) for a in CATALOG),
        # Reached only when the key above is disabled (Textual tries a key's bindings in
        # order): the key then says why instead of doing nothing.
        *(Binding(a.key, f"blocked('{a.name}')", a.title, show=False) for a in CATALOG),
    ]

    async def action_quit(self) -> None:
        """Quit; but first name, in a dialog, what ktriage changed in the cluster and
        left in place (a cordoned node, an isolated pod), as they outlive ktriage:
        a second `q` quits, `esc` stays."""
        if isinstance(self.screen, QuitConfirmScreen):
            self.exit()
            return
        still = getattr(self.action_provider, "still_in_place", None)
        try:
            left = still() if still is not None else []
        except Exception as exc:  # never stop a quit on a broken provider
            left = [f"could not list the changes in place: {exc}"]
        if not left:
            self.exit()
            return

        def done(quit_anyway: bool | None) -> None:
            if quit_anyway:
                self.exit()

        self.push_screen(QuitConfirmScreen(left), done)

    # Textual's own palette entries that ktriage replaces with its own: its theme
    # picker (it offers themes not made for triage; `t` and the theme commands cycle
    # ktriage's) and its keys panel (ktriage's help lists every key).
    # Its screenshot too: it saves to ~/Downloads, which a server often lacks ("Failed
    # to save screenshot"); ktriage's saves next to the snapshots and says where.
    _REPLACED_SYSTEM_COMMANDS = frozenset({"Theme", "Keys", "Screenshot"})

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        for command in super().get_system_commands(screen):
            if command.title not in self._REPLACED_SYSTEM_COMMANDS:
                yield command
        yield SystemCommand(
            "Screenshot",
            "Save an SVG picture of the screen next to the snapshots",
            # Once the palette has closed, so that it is not in the picture.
            lambda: self.set_timer(0.1, self.action_save_screenshot),
        )

    def action_save_screenshot(self) -> Path | None:
        """Save the screen as SVG in the snapshot directory; say where."""
        directory = self.snapshot_dir
        name = time.strftime("ktriage-screen-%Y%m%dT%H%M%SZ", time.gmtime())
        path = directory / f"{name}.svg"
        svg = self.export_screenshot().encode()
        try:
            directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            n = 1
            while True:
                try:
                    # Private like the snapshots: the screen shows incident data.
                    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                    break
                except FileExistsError:
                    n += 1
                    path = directory / f"{name}-{n}.svg"
            with os.fdopen(fd, "wb") as out:
                out.write(svg)
        except OSError as exc:
            self.notify(shown(f"Screenshot not saved: {exc}"), severity="error", markup=False)
            return None
        self.notify(shown(f"Screenshot saved: {path}"), timeout=8, markup=False)
        return path

    # ---- notices -------------------------------------------------------------------

    class Noticed(Message):
        """A notification, handed to the main loop (notify may be called from a thread)."""

        def __init__(
            self, message: str, title: str, severity: Any, timeout: float | None, markup: bool
        ) -> None:
            super().__init__()
            self.message = message
            self.title = title
            self.severity = severity
            self.timeout = timeout
            self.markup = markup
            self.deferred = 0

    def notify(
        self,
        message: str,
        *,
        title: str = "",
        severity: Any = "information",
        timeout: float | None = None,
        markup: bool = True,
    ) -> None:
        """On the main screen, a notice below the panes: a toast would cover the newest
        rows of the Live stream. Over a dialog, a toast as usual."""
        self.post_message(self.Noticed(message, title, severity, timeout, markup))

    def on_ktriage_app_noticed(self, event: Noticed) -> None:
        timeout = event.timeout if event.timeout is not None else self.NOTIFICATION_TIMEOUT
        if event.severity == "error":
            timeout = max(timeout, ERROR_NOTICE_SECONDS)  # a failure must be read
        screen = self.main_screen
        if screen is not None and screen is self.screen and not screen.is_mounted:
            # Start-up notes come before the main screen is up: wait for it.
            if event.deferred < 50:
                event.deferred += 1
                self.call_after_refresh(self.on_ktriage_app_noticed, event)
                return
        if screen is not None and screen is self.screen and screen.is_mounted:
            try:
                bar = screen.notice
            except NoMatches:
                bar = None
            if bar is not None:
                # Always plain text: notices carry names and errors from outside.
                bar.post(event.message, title=event.title, severity=event.severity, seconds=timeout)
                return
        # Over a dialog, a toast: plain text too, whatever the caller said.
        super().notify(
            event.message, title=event.title, severity=event.severity, timeout=timeout, markup=False
        )

    def action_notices(self) -> None:
        screen = self.main_screen
        if screen is not None and not isinstance(self.screen, NoticesScreen):
            self.push_screen(NoticesScreen(list(screen.notice.history)))

    def __init__(
        self,
        engine: Engine,
        *,
        mode: str = "live",
        clock: Callable[[], float] | None = None,
        lag_clock: Callable[[], float] | None = None,
        theme: str | None = None,
        read_only: bool = False,
        snapshot_dir: Path | str | None = None,
        state_dir: Path | str | None = None,
        refresh_interval: float = REFRESH_INTERVAL,
        user_theme_dir: Path | None = None,
        start_sources: bool = True,
        live_capacity: int = 10_000,
        startup_notes: list[str] | None = None,
    ) -> None:
        super().__init__()
        self.engine = engine
        self.mode = mode
        self.clock = clock or time.time
        # The real time, for "today" (a replay's clock stops at the recording's end).
        self.wall_clock: Callable[[], float] = time.time
        # Lag is "now minus the newest event time": with a fixed clock it stays fixed.
        self.lag_clock = lag_clock if lag_clock is not None else (clock if clock else None)
        self.read_only = read_only
        self.snapshot_dir = Path(snapshot_dir) if snapshot_dir else default_snapshot_dir()
        # The responders' workflow (core/workflow.py), opened on mount.
        self.state_dir = Path(state_dir) if state_dir else default_state_dir()
        self.workflow: WorkflowKeeper | None = None
        self.cluster_identity = ""  # who we are to the cluster, once it said
        # Blast radius results computed this session, by incident, for the snapshot.
        self.blast_results: dict[str, Any] = {}
        self.refresh_interval = refresh_interval
        self.start_sources = start_sources
        self.live_capacity = live_capacity
        loaded = load_themes(user_theme_dir)
        self.theme_problems = loaded.problems
        for t in loaded.themes.values():
            self.register_theme(t)
        self.theme_names = list(loaded.themes)
        wanted = theme or DEFAULT_THEME
        if wanted not in self.available_themes:
            self.theme_problems.append((wanted, "no such theme; using " + DEFAULT_THEME))
            wanted = DEFAULT_THEME
        self.theme = wanted
        self.action_provider: ActionProvider | None = None
        self._ticks = 0
        self._started = False
        self.last_snapshot: Path | None = None
        self.startup_notes = list(startup_notes or [])
        # A zero-argument callable returning a kubernetes ApiClient, for the actions.
        self.api_client_factory: Callable[[], Any] | None = None
        self._gc_threshold: tuple[int, int, int] | None = None

    # ---- lifecycle ---------------------------------------------------------------

    def get_theme_variable_defaults(self) -> dict[str, str]:
        return dict(VARIABLE_DEFAULTS)

    def get_default_screen(self) -> Screen[Any]:
        return MainScreen()

    @property
    def main_screen(self) -> MainScreen | None:
        for screen in self.screen_stack:
            if isinstance(screen, MainScreen):
                return screen
        return None

    def now(self) -> float:
        return self.clock()

    async def on_mount(self) -> None:
        if not self.read_only:
            try:
                self.action_provider = make_provider(self)
            except Exception as exc:  # a broken provider must not stop triage
                self.notify(shown(f"Actions unavailable: {exc}"), severity="error", markup=False)
            if self.action_provider is not None:
                # The footer was drawn before the provider existed.
                self.call_after_refresh(self.refresh_bindings)
                start = getattr(self.action_provider, "start", None)
                if start is not None:
                    start()
                self.run_worker(self._learn_identity(), group="identity", exit_on_error=False)
        self.theme_changed_signal.subscribe(self, self._theme_changed)
        for path, reason in self.theme_problems:
            self.notify(shown(f"Theme {path}: {reason}"), severity="warning", markup=False)
        for note in self.startup_notes:
            self.notify(shown(note), timeout=15, markup=False)
        self._open_workflow()
        self.set_interval(self.refresh_interval, self._tick)
        self._gc_threshold = gc.get_threshold()
        # No automatic full collections: _freeze_heap does the young generations.
        gc.set_threshold(YOUNG_GC_THRESHOLD, self._gc_threshold[1], 1_000_000_000)
        listgc.keep_first_lists_out(True)
        return_large_blocks()  # a big list's replies given back when freed
        self._freeze_heap()
        self.set_interval(FREEZE_INTERVAL, self._freeze_heap)
        if self.start_sources:
            await self.engine.start()
            self._started = True

    def _open_workflow(self) -> None:
        # Keyed by the kube context ("replay" in replay): incident ids come from the
        # first signal, so the same data gives the same ids after a restart.
        # Changes carry the wall clock's time (in replay, "now" is the recording's end).
        self.workflow = WorkflowKeeper(
            self.state_dir, self.engine.context_name or "", self.workflow_actor
        )
        problem = self.workflow.open()
        if problem:
            self.notify(shown(problem), severity="warning", timeout=15, markup=False)
        self.workflow.sync(self.engine)

    def workflow_actor(self) -> str:
        """Who makes a workflow change: the cluster identity once known, else $USER."""
        return self.cluster_identity or default_actor()

    async def _learn_identity(self) -> None:
        """Ask the cluster who we are (SelfSubjectReview), once, for the workflow."""
        ask = getattr(getattr(self.action_provider, "service", None), "identity", None)
        if ask is None:
            return
        # After the actions' start-up (its journal read): the service sets up its
        # context once, and a second caller meanwhile would see the journal unread.
        while any(w.group == "actions-startup" and not w.is_finished for w in self.workers):
            await asyncio.sleep(0.1)
        try:
            who = await ask()
        except Exception:  # no answer: $USER stands in
            return
        if isinstance(who, str):
            self.cluster_identity = who
            # So a replay or the next run knows this session's requests as ktriage's.
            problem = record_session(self.state_dir, who, self.engine.context_name or "")
            if problem:
                self.notify(shown(problem), severity="warning", timeout=10, markup=False)

    def remember_blast(self, incident_id: str, result: Any) -> None:
        """A blast radius computed for an incident: its snapshot includes it."""
        self.blast_results[incident_id] = result

    async def on_unmount(self) -> None:
        listgc.keep_first_lists_out(False)
        gc.unfreeze()
        if self._gc_threshold is not None:
            gc.set_threshold(*self._gc_threshold)
        if self._started:
            await self.engine.stop()

    def _freeze_heap(self) -> None:
        """Collect the young generations, then move survivors out of the collector's way.

        Events live as long as the session, and a full collection scans every
        object: with a few hundred thousand events it pauses the UI for up to a
        second. So automatic full collections are off while the app runs, and what
        survives a young collection is frozen. Frozen objects are still freed by
        reference counting; only cyclic garbage that outlived a young collection
        waits until the app exits (`gc.unfreeze` then).
        """
        gc.collect(1)
        gc.freeze()

    def _tick(self) -> None:
        screen = self.main_screen
        if screen is None or not screen.is_mounted or self._closing:
            return
        try:
            if self.workflow is not None and self._ticks % SLOW_EVERY == 0:
                self.workflow.sync(self.engine)  # incidents that came back, with their notes
            changes = self.engine.take_changes()
            if changes.incidents or changes.events or changes.renamed:
                screen.apply_changes(changes)
            screen.refresh_pods_at_list_edges()
            self._ticks += 1
            if self._ticks % SLOW_EVERY == 0:
                screen.tick_slow()
        except NoMatches:
            # The screen is being torn down (quitting): nothing left to update.
            return

    def _theme_changed(self, theme: Any) -> None:
        screen = self.main_screen
        if screen is not None and screen.is_mounted:
            screen.refresh_detail()

    # ---- actions -------------------------------------------------------------------

    def action_help(self) -> None:
        if isinstance(self.screen, HelpScreen):
            return
        if self.read_only:
            state = "Hidden: ktriage runs --read-only."
        elif self.action_provider is None:
            state = "Not available in this build or mode."
        else:
            state = "Offered when the current identity may take them."
        self.push_screen(HelpScreen(state))

    def action_sources(self) -> None:
        if not isinstance(self.screen, SourcesScreen):
            self.push_screen(
                SourcesScreen(self.engine.health(), self.lag_clock() if self.lag_clock else None)
            )

    def action_cycle_theme(self) -> None:
        names = self.theme_names or [DEFAULT_THEME]
        try:
            index = names.index(self.theme)
        except ValueError:
            index = -1
        self.theme = names[(index + 1) % len(names)]
        self.notify(f"Theme: {self.theme}", timeout=1.5, markup=False)

    def follow_timeline(self) -> None:
        screen = self.main_screen
        if screen is not None:
            screen.timeline.toggle_follow()

    def go_to_incident(self, incident_id: str) -> None:
        screen = self.main_screen
        if screen is None:
            return
        if not screen.incidents.select_id(incident_id):
            screen.incidents.set_query(None)
            screen.incidents.select_id(incident_id)
        screen.timeline.focus()

    def action_save_snapshot(self, fmt: str = MARKDOWN) -> None:
        screen = self.main_screen
        inc = screen.incidents.selected if screen is not None else None
        if inc is None:
            self.notify("No incident selected: nothing to save.", severity="warning")
            return
        events = self.engine.correlator.events_of(inc.id)
        frozen = dataclasses.replace(inc, timeline=list(inc.timeline))
        directory = self.snapshot_dir
        taken = self.now()
        tracker = screen.containment if screen is not None else None
        pods = tracker.frozen_lookup(inc) if tracker is not None else None
        extra = {
            "fmt": fmt,
            "work": self.workflow.work_for(inc.id, self.engine) if self.workflow else None,
            "blast": self.blast_results.get(inc.id),
            "cluster": self.engine.context_name,
        }
        self.run_worker(
            partial(self._write_snapshot, directory, frozen, events, taken, pods, extra),
            thread=True,
            group="snapshot",
            exit_on_error=False,
        )

    def _write_snapshot(
        self,
        directory: Path,
        inc: Any,
        events: list[Any],
        taken: float,
        pod_exists: Any = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        try:
            path = write_snapshot(
                directory,
                inc,
                events,
                self.engine.raw_record,
                generated_at=taken,
                pod_exists=pod_exists,
                **(extra or {}),
            )
        except OSError as exc:
            self.call_from_thread(
                self.notify,
                shown(f"Snapshot not saved: {exc}"),
                severity="error",
                markup=False,
            )
            return
        self.last_snapshot = path
        self.call_from_thread(
            self.notify, shown(f"Snapshot saved: {path}"), title=inc.id, timeout=8, markup=False
        )

    def selection(self) -> Selection | None:
        screen = self.main_screen
        return screen.selection() if screen is not None else None

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("containment", "blocked"):
            if self.read_only or self.action_provider is None:
                return False
            if not isinstance(self.screen, MainScreen):
                return False
            selection = self.selection()
            spec = BY_NAME.get(str(parameters[0]))
            if selection is None or spec is None:
                return None if action == "containment" else False
            if selection.ref_for(spec) is None:
                # Nothing of its kind selected (no pod, no identity): not in the footer,
                # but the key still says why it does nothing.
                return action == "blocked"
            try:
                ok, _why = self.action_provider.available(spec.name, selection)
            except Exception:
                ok = False
            if action == "blocked":
                return not ok
            return True if ok else None
        return True

    def action_blocked(self, name: str) -> None:
        """A key whose action may not run now: say why, in words and with the
        `kubectl auth can-i` line that checks a missing permission."""
        provider = self.action_provider
        selection = self.selection()
        if provider is None or selection is None:
            return
        spec = BY_NAME[name]
        try:
            why = provider.explain(name, selection)
        except Exception as exc:  # the explanation must never break the app
            why = f"cannot say why: {exc}"
        title = f"{spec.key} {spec.title}: not possible now"
        screen = self.main_screen
        if screen is not None and screen.is_mounted:
            # Below the panes, not over their newest rows as a toast would be.
            screen.notice.show_notice(title, why)
        else:
            self.notify(shown(why, keep_newlines=True), title=shown(title), markup=False)

    def action_commands(self) -> list[tuple[str, str, Callable[[], Any]]]:
        """Palette entries for every action possible on the selection, from the catalog."""
        provider = self.action_provider
        selection = self.selection()
        if provider is None or selection is None or self.read_only:
            return []
        out: list[tuple[str, str, Callable[[], Any]]] = []
        for spec in CATALOG:
            ref = selection.ref_for(spec)
            if ref is None:
                continue
            try:
                ok, why = provider.available(spec.name, selection)
            except Exception:
                continue
            if not ok:
                continue
            # Undo names what it undoes (the pod's or the identity's newest action).
            on = why if spec.name == "undo" else f"{ref.kind} {ref.short()}"
            what = f"{spec.title} ({spec.key}): {on}"
            out.append((what, spec.description, partial(self._palette_action, spec.name)))
        return out

    def unavailable_action_commands(self) -> list[tuple[str, str, Callable[[], Any]]]:
        """Palette entries for the actions not possible on the selection, each saying why
        (chosen, the full reason shows below the panes)."""
        possible = {title.split(" (", 1)[0] for title, _h, _c in self.action_commands()}
        provider = self.action_provider
        selection = self.selection()
        out: list[tuple[str, str, Callable[[], Any]]] = []
        for spec in CATALOG:
            if spec.title in possible:
                continue
            if self.read_only:
                why = "ktriage runs --read-only"
            elif provider is None:
                why = (
                    "a replay has no cluster to act on"
                    if self.mode == "replay"
                    else ("actions are not available here")
                )
            elif selection is None or selection.ref_for(spec) is None:
                why = "no pod selected" if spec.acts_on == POD else "no identity acted"
            else:
                try:
                    _ok, why = provider.available(spec.name, selection)
                except Exception as exc:  # the palette must never break on a provider
                    why = f"cannot say: {exc}"
                why = why or "not possible on this selection"
            # Help text is markup to the palette: the reason may hold names from outside.
            help_text = escape_markup(clip(shown(why), 80))
            title = f"{spec.title} ({spec.key}): not possible now"
            out.append((title, help_text, partial(self._explain_unavailable, spec.name, why)))
        return out

    def _explain_unavailable(self, name: str, why: str) -> None:
        spec = BY_NAME[name]
        if self.action_provider is not None and self.selection() is not None:
            self.action_blocked(name)
            return
        screen = self.main_screen
        if screen is not None and screen.is_mounted:
            screen.notice.show_notice(f"{spec.key} {spec.title}: not possible now", why)

    def focus_pane(self, pane: str) -> None:
        screen = self.main_screen
        if screen is not None:
            screen.query_one(f"#{pane}").focus()

    def _palette_action(self, name: str) -> None:
        self.run_worker(self.action_containment(name), group="actions", exit_on_error=False)

    async def action_containment(self, name: str) -> None:
        provider = self.action_provider
        selection = self.selection()
        if provider is None or selection is None or self.read_only:
            return
        ok, _why = provider.available(name, selection)
        if not ok:
            self.action_blocked(name)
            return
        await provider.run(name, selection)


# ---- entry points -------------------------------------------------------------------


def ui_options(ui: UIOptions | None) -> dict[str, Any]:
    """KtriageApp's keyword arguments for the UI's command-line options."""
    ui = ui or UIOptions()
    return {"theme": ui.theme, "read_only": ui.read_only, "snapshot_dir": ui.snapshot_dir}


def run_live_ui(engine: Engine, options: LiveOptions) -> int:
    """`ktriage` (live): the UI over an engine whose sources are added but not started."""
    app = KtriageApp(engine, mode="live", **ui_options(options.ui))
    # With several clusters each one's client is its own (engine.client_factories).
    if engine.cluster is not None and not getattr(engine, "members", None):
        app.api_client_factory = kubeconfig_factory(options.kubeconfig, options.context)
    app.run()
    return app.return_code or 0


def replay_clock(engine: Engine) -> Callable[[], float]:
    """In replay, "now" is the end of the recording: ages read as they did then."""
    newest = max((ev.time for ev in engine.store), default=time.time())
    return lambda: newest


def run_replay_ui(files: list[Path], cfg: Config, ui: UIOptions | None = None) -> int:
    """`ktriage replay FILE...` on a terminal: the UI over recorded streams."""
    from ktriage.engine import Engine

    engine = Engine(cfg)
    engine.context_name = "replay"
    # Loaded in the background: the first incidents show while the rest loads.
    load = engine.replay_in_background(list(files))
    started = time.time()

    def clock() -> float:
        # "Now" is the end of what is loaded so far (the recording's end once complete).
        return load.loader.newest if load.loader.newest is not None else started

    app = KtriageApp(engine, mode="replay", clock=clock, **ui_options(ui))
    try:
        app.run()
    finally:
        engine.archive.close()
    return app.return_code or 0
