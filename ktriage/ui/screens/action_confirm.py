"""The confirmation of an action: exactly what will change, then apply or cancel.

Shown after the server-side dry run succeeded. Everything in it (pod names,
label values, server messages) is untrusted and rendered as rich `Text`, never
as markup. `enter` applies (with progress for evidence dumps) and dismisses
with the Outcome; `esc` dismisses with None.

`ActionsProvider` connects the app's action keys (ktriage.ui.hooks) to an
ActionService: `available` for the footer and `run` for a key press.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, ClassVar

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.widgets import Static

from ktriage.actions.base import FAILED, OK, UNCHANGED, UNDONE, ActionError, Outcome, Plan
from ktriage.actions.catalog import BY_NAME, IDENTITY, POD, UNDO_NAME
from ktriage.actions.record import undo_words
from ktriage.clusters import cluster_label
from ktriage.core.containment import ISOLATED
from ktriage.core.text import shown
from ktriage.ui.screens.dialog import END_KEYS, LINE_KEYS, DialogScreen, ScrollKeys

if TYPE_CHECKING:
    from ktriage.actions.service import ActionService

NO_INCIDENT = "no-incident"


def no_client(cluster: str) -> str:
    return f"no connection to cluster {cluster_label(cluster)} to act with (see its health)"


def nothing_selected(acts_on: str) -> str:
    if acts_on == IDENTITY:
        return (
            "no identity acted in the selected incident (none of its audit records names "
            "a ServiceAccount or user)"
        )
    if acts_on == POD:
        return "no pod selected, and the selected incident names none"
    return "nothing selected"


def _plain(text: str) -> str:
    return shown(str(text), keep_newlines=True)


def plan_text(plan: Plan) -> Text:
    """The whole preview as plain styled text (no markup is ever parsed)."""
    out = Text()
    if plan.undo_of is not None:
        out.append("Undoes: ", "bold")
        out.append(_plain(undo_words(plan.undo_of)))
        out.append(f" (by {_plain(plan.undo_of.actor)})\n\n")
    if plan.unchanged:
        out.append("Nothing to change: ", "bold")
        out.append(_plain(plan.unchanged) + "\n")
        out.append("Applying records that in the incident's timeline.\n\n", "italic")
    if plan.dry_run:
        # First, not last: in a long preview the end may be below the screen.
        out.append("Dry run: ", "bold")
        out.append(_plain(plan.dry_run) + "\n\n")
    for warning in plan.warnings:
        out.append("! ", "bold red")
        out.append(_plain(warning) + "\n", "bold")
    if plan.warnings:
        out.append("\n")
    if plan.options:
        out.append("Choose (press the key)\n", "bold underline")
        for key, what in plan.options:
            chosen = key == plan.option
            out.append(f"  {'▶' if chosen else ' '} {key}  ", "bold reverse" if chosen else "bold")
            out.append(_plain(what) + "\n", "bold" if chosen else "")
        if not plan.option:
            out.append("  nothing chosen yet: enter does nothing until you choose\n", "italic")
        out.append("\n")
    for change in plan.changes:
        if change.verb == "write":  # listed under "Files to write"
            continue
        out.append(_plain(change.header()) + "\n", "bold underline")
        if change.summary:
            out.append("  " + _plain(change.summary) + "\n")
        body = change.render()
        if body:
            out.append(_plain(body.rstrip("\n")) + "\n", "dim" if change.verb == "delete" else "")
        out.append("\n")
    if plan.files:
        out.append("Files to write\n", "bold underline")
        for path in plan.files:
            out.append("  " + _plain(path) + "\n")
        out.append("\n")
    for note in plan.notes:
        out.append("· " + _plain(note) + "\n", "italic")
    return out


def progress_text(progress: dict[str, int]) -> Text:
    out = Text()
    for name, size in progress.items():
        out.append(f"  {_plain(name)}: {size / 1048576:.1f} MiB\n")
    return out


# Containment states that must not read as a plain "ok".
_DOUBTFUL = ("not-effective", "unverified", "not-applicable")


def _doubt(outcome: Outcome) -> str:
    """The first doubtful containment state the action re-read, or ""."""
    return next((f["state"] for f in outcome.containment if f.get("state") in _DOUBTFUL), "")


def outcome_severity(outcome: Outcome) -> str:
    if outcome.result == FAILED:
        return "error"
    if outcome.result == UNCHANGED or _doubt(outcome):
        return "warning"
    return "information"


def outcome_title(plan: Plan, outcome: Outcome, cluster: str = "") -> str:
    """`isolate: ok`, or what the re-read found (`isolate: not-effective`); with
    several clusters, the cluster first (`[prod-eu] cordon: ok`)."""
    state = _doubt(outcome) if outcome.result != FAILED else ""
    return in_cluster(cluster, f"{plan.label}: {state or outcome.result}")


def in_cluster(cluster: str, title: str) -> str:
    """A notice's title with its cluster first when several are watched ("" : one)."""
    return f"[{cluster_label(cluster)}] {title}" if cluster else title


class ActionConfirmScreen(DialogScreen[Outcome | None], ScrollKeys):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "confirm", "Apply"),
        Binding("escape", "cancel", "Cancel"),
        *LINE_KEYS,
        Binding("pagedown,space", "page(1)", "Page down", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
        *END_KEYS,
    ]
    DEFAULT_CSS = """
    ActionConfirmScreen #action-progress {
        height: auto;
        display: none;
        border-bottom: solid $warning;
    }
    ActionConfirmScreen #action-progress.-active { display: block; }
    """

    def __init__(
        self, service: ActionService, plan: Plan, *, optional: bool = False, cluster: str = ""
    ) -> None:
        super().__init__()
        self.service = service
        self.plan = plan
        # The cluster the action goes to, named in the title when several are watched.
        self.cluster = cluster
        self.optional = optional
        self.applying = False
        self.outcome: Outcome | None = None
        self._progress: dict[str, int] = {}
        self._last_paint = 0.0

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog -warning") as box:
            prefix = "Optional next step: " if self.optional else ""
            if self.cluster:
                prefix = f"[cluster {cluster_label(self.cluster)}] {prefix}"
            box.border_title = Text(_plain(prefix + self.plan.title))
            # The keys sit in the frame: always visible, however long the plan.
            verb = "record" if self.plan.unchanged else "apply"
            skip = "skip" if self.optional else "cancel"
            box.border_subtitle = Text(f"enter {verb} · esc {skip} · j/k scroll")
            yield Static(Text(""), id="action-progress")
            with VerticalScroll():
                yield Static(plan_text(self.plan), id="action-plan")

    def action_cancel(self) -> None:
        if self.applying:
            self.notify("Applying: wait for it to finish.", severity="warning", markup=False)
            return
        self.dismiss(None)

    def on_key(self, event: events.Key) -> None:
        """A plan's own choices (grace period, what to revoke) are single keys."""
        if self.applying or not self.plan.options:
            return
        for key, _what in self.plan.options:
            if event.character == key:
                event.stop()
                event.prevent_default()
                self.plan.option = key
                self.query_one("#action-plan", Static).update(plan_text(self.plan))
                return

    def action_confirm(self) -> None:
        if self.applying:
            return
        if self.plan.options and not self.plan.option and not self.plan.unchanged:
            keys = " or ".join(k for k, _ in self.plan.options)
            self.notify(f"Choose first: press {keys}.", severity="warning", markup=False)
            return
        self.applying = True
        self.query_one(Vertical).border_subtitle = Text("applying…")
        progress = self.query_one("#action-progress", Static)
        progress.update(Text("applying…"))
        progress.add_class("-active")
        self.run_worker(self._apply(), group="action-apply", exit_on_error=False)

    def _on_progress(self, name: str, size: int, total: int | None) -> None:
        self._progress[name] = size
        now = time.monotonic()
        if now - self._last_paint >= 0.1:  # at most ~10 repaints a second
            self._last_paint = now
            self.query_one("#action-progress", Static).update(progress_text(self._progress))

    async def _apply(self) -> None:
        try:
            outcome = await self.service.apply(self.plan, progress=self._on_progress)
        except ActionError as error:
            outcome = Outcome(
                plan=self.plan, result=FAILED, message=error.message, error=error.message
            )
        self.outcome = outcome
        self.dismiss(outcome)


class ActionsProvider:
    """The app's action provider (see ktriage.ui.hooks), backed by an ActionService;
    with several clusters, by one ActionService per cluster (`by_cluster`): an action
    goes to the cluster of the incident it is taken from, with that cluster's client,
    journal and containment state."""

    def __init__(
        self,
        app: Any,
        service: ActionService,
        *,
        by_cluster: dict[str, ActionService] | None = None,
    ) -> None:
        self.app = app
        self.service = service
        self.by_cluster = dict(by_cluster or {})
        self._warned: set[int] = set()
        refresh = getattr(app, "refresh_bindings", None)

        def refresh_keys() -> None:
            # A check may end after the app closed its screens (it is quitting).
            if refresh is not None and getattr(app, "screen_stack", None):
                refresh()

        for one in self._services():
            one.on_permissions(refresh_keys)
            one.on_permissions(lambda one=one: self._journal_warning(one))

    def _services(self) -> list[ActionService]:
        return list(self.by_cluster.values()) or [self.service]

    def service_for(self, selection: Any) -> tuple[ActionService | None, str]:
        """The service of the selection's cluster, and the cluster's name ("" with one
        cluster). Without an incident, the first cluster's (whose pods the Pods pane
        lists then). None for a cluster ktriage has no client for: an action never
        goes to another cluster than its incident's."""
        if not self.by_cluster:
            return self.service, ""
        incident = getattr(selection, "incident", None)
        cluster = getattr(incident, "cluster", "") if incident is not None else ""
        if not cluster:
            cluster = next(iter(self.by_cluster))
        return self.by_cluster.get(cluster), cluster

    def still_in_place(self) -> list[str]:
        """Every change ktriage made in the cluster and left there, in words (this
        run's and earlier runs', leftovers and actions cut short included); with
        several clusters each line names its cluster."""
        if not self.by_cluster:
            return self.service.still_in_place()
        return [
            f"[{cluster_label(name)}] {line}"
            for name, one in self.by_cluster.items()
            for line in one.still_in_place()
        ]

    def start(self) -> None:
        """At start-up: offer what an earlier run left unfinished (a dialog), and put
        earlier runs' actions into their incidents' timelines as those appear."""
        for one in self._services():
            self.app.run_worker(self._startup(one), group="actions-startup", exit_on_error=False)
            self.app.set_interval(1.0, one.attach_earlier)

    async def _startup(self, service: ActionService) -> None:
        from ktriage.ui.screens.unfinished import UnfinishedScreen

        try:
            items = await service.unfinished()
        except ActionError:
            return  # the cluster is not reachable: the keys say why
        self._journal_warning(service)
        if items:
            where = next((n for n, s in self.by_cluster.items() if s is service), "")
            self.app.push_screen(UnfinishedScreen(service, items, cluster=where))

    def _journal_warning(self, service: ActionService | None = None) -> None:
        """Say once if earlier actions could not be read back (undo after a restart)."""
        service = service or self.service
        problem = service.journal_problem
        if problem and id(service) not in self._warned:
            self._warned.add(id(service))
            where = next((n for n, s in self.by_cluster.items() if s is service), "")
            self.app.notify(
                f"Earlier actions{f' in {cluster_label(where)}' if where else ''}, for undo: "
                f"{shown(problem)}",
                severity="warning",
                timeout=15,
                markup=False,
            )

    def available(self, name: str, selection: Any) -> tuple[bool, str]:
        spec = BY_NAME.get(name)
        if spec is None:
            return False, f"unknown action {name}"
        service, cluster = self.service_for(selection)
        if service is None:
            return False, no_client(cluster)
        if service.read_only:
            return False, "read-only mode"
        ref = self._ref(spec, selection, service)
        if ref is None:
            return False, nothing_selected(spec.acts_on)
        return service.available(ref).get(spec.key, (False, "not offered"))

    def _ref(self, spec: Any, selection: Any, service: ActionService | None = None) -> Any:
        """What the key acts on: for undo, the pod or the identity whose newest action
        can be undone (an incident's identity actions are undone from it too)."""
        if spec.name != UNDO_NAME:
            return selection.ref_for(spec)
        service = service or self.service_for(selection)[0] or self.service
        refs = [r for r in (selection.pod, selection.identity) if r is not None]
        incident = getattr(selection, "incident", None)
        newest = None
        for ref in refs:
            record = service.last_undoable(incident.id if incident else None, ref)
            if record is not None and (newest is None or record.time > newest[0]):
                newest = (record.time, ref)
        if newest is not None:
            return newest[1]
        return refs[0] if refs else None

    def explain(self, name: str, selection: Any) -> str:
        """Why the key does nothing now, in full: each missing permission with its
        namespace and the `kubectl auth can-i` line; or what there is to select."""
        spec = BY_NAME.get(name)
        if spec is None:
            return f"unknown action {name}"
        service, cluster = self.service_for(selection)
        if service is None:
            return f"{spec.title}: {no_client(cluster)}"
        ref = self._ref(spec, selection, service)
        if ref is None:
            return f"{spec.title}: {nothing_selected(spec.acts_on)}"
        return service.explain(spec.key, ref)

    async def run(self, name: str, selection: Any) -> None:
        """Start the action in a worker: preparing may take a few round trips."""
        self.app.run_worker(self._run(name, selection), group="actions", exit_on_error=False)

    async def _run(self, name: str, selection: Any) -> None:
        incident = getattr(selection, "incident", None)
        incident_id = incident.id if incident is not None else NO_INCIDENT
        spec = BY_NAME.get(name)
        service, cluster = self.service_for(selection)
        if service is None:
            self.app.notify(
                no_client(cluster), title=in_cluster(cluster, name), severity="error", markup=False
            )
            return
        ref = self._ref(spec, selection, service) if spec is not None else None
        if spec is None or ref is None:
            return
        try:
            if spec.name == UNDO_NAME:
                plan = await service.prepare_undo(incident_id, ref)
            else:
                plan = await service.prepare(spec.key, incident_id, ref)
        except ActionError as error:
            self.app.notify(
                shown(error.message),
                title=in_cluster(cluster, name),
                severity="error",
                markup=False,
            )
            return
        self._confirm(plan, service, cluster)

    def _confirm(self, plan: Plan, service: ActionService | None = None, cluster: str = "") -> None:
        service = service or self.service

        def done(outcome: Outcome | None) -> None:
            if outcome is None:
                return
            self.app.notify(
                shown(outcome.message + self._detach_hint(plan, outcome, service)),
                title=shown(outcome_title(plan, outcome, cluster)),
                severity=outcome_severity(outcome),
                timeout=10,
                markup=False,
            )

        self.app.push_screen(ActionConfirmScreen(service, plan, cluster=cluster), done)

    def _detach_hint(
        self, plan: Plan, outcome: Outcome, service: ActionService | None = None
    ) -> str:
        """After an isolation that is not known to be effective, detach is a hint to
        press D, never a dialog of its own (enter there would apply what nobody asked
        for). When the pod is isolated (e.g. a Cilium or Calico deny quarantine) it is
        not needed, and not mentioned."""
        if plan.action != "isolate" or outcome.result != OK or plan.is_undo:
            return ""
        if any(f.get("state") == ISOLATED for f in outcome.containment):
            return ""
        if "(D)" in outcome.message:  # the outcome already names it as the remedy
            return ""
        ok, _why = (service or self.service).available(plan.target).get("D", (False, ""))
        if not ok:
            return ""
        return (
            f". Next, if traffic may still reach it: press D to detach pod "
            f"{plan.target.short()} from its controller and Services"
        )


__all__ = [
    "FAILED",
    "OK",
    "UNCHANGED",
    "UNDONE",
    "ActionConfirmScreen",
    "ActionsProvider",
    "plan_text",
]
