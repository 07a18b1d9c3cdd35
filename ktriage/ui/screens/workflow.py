"""The responders' workflow of an incident: acknowledge, status, owner, notes.

`WorkflowKeeper` holds the app's workflow store (core/workflow.py: SQLite under the
state directory) and what it says, by incident; it turns every change into a
timeline event of source `ktriage` whose summary starts with "responder", so the
responders' steps read apart from the cluster's. When the database cannot be
opened or written (corrupt, locked, a full disk) the change is kept in memory,
said so, and saved with its own time once the database answers again.

`WorkflowScreen` is the dialog (`w`): `a` acknowledges, `1`-`5` set the status,
`o` takes the incident, `O` names an owner, `n` adds a note; a false positive asks
for the reason, then previews the allow-list entries that would keep its signals
quiet, and saves them to the user's allow-list file only on `y`.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.message import Message
from textual.widgets import Input, Static

from ktriage.core.allowlist import AllowListError
from ktriage.core.model import Event, Incident, Severity, iso
from ktriage.core.text import shown
from ktriage.core.workflow import (
    ACK,
    CONTAINED,
    FALSE_POSITIVE,
    INVESTIGATING,
    MAX_TEXT,
    NEW,
    NOTE,
    OWNER,
    RESOLVED,
    STATUS,
    Change,
    IncidentWork,
    RulePreview,
    StoreUnavailable,
    WorkflowError,
    WorkflowStore,
    check,
    default_actor,
    false_positive_rules,
    save_rules,
    user_allowlist,
)
from ktriage.ui.screens.dialog import LINE_KEYS, DialogScreen

if TYPE_CHECKING:
    from ktriage.engine import Engine

EVENT_KIND_PREFIX = "workflow-"
SUMMARY_CHARS = 300  # of a note in its timeline event (the snapshot has it whole)
STATUS_KEYS = {"1": NEW, "2": INVESTIGATING, "3": CONTAINED, "4": RESOLVED, "5": FALSE_POSITIVE}
NOTES_SHOWN = 20


class WorkflowKeeper:
    """The workflow of one cluster's incidents, from the store and this session."""

    def __init__(
        self,
        directory: Path,
        cluster: str,
        actor: Callable[[], str],
        clock: Callable[[], float] = time.time,
        *,
        timeout: float = 1.0,
    ) -> None:
        self.directory = directory
        self.cluster = cluster
        self.actor = actor
        self.clock = clock
        self.timeout = timeout
        self.store: WorkflowStore | None = None
        self.problem = ""  # why changes are not being saved, or ""
        self.error = ""  # the database's own words for it
        self.works: dict[str, IncidentWork] = {}
        # Changes made while the database could not be written: (incident, change).
        self.unsaved: list[tuple[str, Change]] = []
        self._attached: set[tuple[str, float, str, str]] = set()

    # ---- the store -------------------------------------------------------------------

    def open(self) -> str:
        """Open the database and read this cluster's workflow; the problem, or ""."""
        try:
            store = WorkflowStore(self.directory, self.clock, timeout=self.timeout)
            loaded = store.load_all(self.cluster)
        except WorkflowError as exc:
            self.error = str(exc)
            self.problem = f"incident workflow is not saved: {exc}"
            return self.problem
        self.store = store
        for incident, work in loaded.items():
            mine = self.works.get(incident)
            if mine is not None:  # changed before the database answered: keep both
                for change in mine.history:
                    work.apply(change)
            self.works[incident] = work
        self.problem = ""
        return ""

    def _flush(self) -> None:
        """Save what was kept in memory, oldest first, while the database answers."""
        if self.store is None and self.open():
            raise StoreUnavailable(self.error)
        assert self.store is not None
        while self.unsaved:
            incident, change = self.unsaved[0]
            self.store.save(self.cluster, incident, change)
            self.unsaved.pop(0)
        self.problem = ""

    # ---- changes ---------------------------------------------------------------------

    def apply(self, incident_id: str, kind: str, value: str = "", reason: str = "") -> Change:
        """Make one change (WorkflowError when it cannot be made at all). Saved when
        the database answers, else kept in memory and `problem` says so."""
        value, reason = check(kind, value, reason)
        actor = self.actor() or default_actor()
        change = Change(self.clock(), actor, kind, value, reason)
        self.unsaved.append((incident_id, change))
        try:
            self._flush()
        except StoreUnavailable as exc:
            n = len(self.unsaved)
            self.problem = (
                f"{n} workflow change(s) kept in memory only, not saved: {exc}. "
                "They are saved when the database answers again; a restart before that "
                "loses them."
            )
        self.works.setdefault(incident_id, IncidentWork(incident_id)).apply(change)
        return change

    def work_for(self, incident_id: str, engine: Engine | None = None) -> IncidentWork | None:
        """The incident's workflow, with that of incidents merged into it since."""
        direct = self.works.get(incident_id)
        if engine is None:
            return direct
        resolve = engine.correlator.resolve
        merged = []
        for key, work in self.works.items():
            if key != incident_id and _resolves(resolve, key, incident_id):
                merged.append(work)
        if not merged:
            return direct
        out = IncidentWork(incident_id)
        changes = [c for w in [*merged, *([direct] if direct else [])] for c in w.history]
        for change in sorted(changes, key=lambda c: c.time):
            out.apply(change)
        return out

    # ---- the timeline ----------------------------------------------------------------

    def sync(self, engine: Engine) -> int:
        """Put every change not yet in its incident's timeline there (when the
        incident is known); how many were added."""
        added = 0
        correlator = engine.correlator
        for incident_id, work in self.works.items():
            pending = [c for c in work.history if _key(incident_id, c) not in self._attached]
            if not pending:
                continue
            inc = correlator.resolve(incident_id)
            if inc is None:
                continue  # not (yet) in this session
            for change in pending:
                self._attached.add(_key(incident_id, change))
                engine.attach_action(inc.id, self.event_for(incident_id, change))
                added += 1
        return added

    def event_for(self, incident_id: str, change: Change) -> Event:
        words = change.words()
        if len(words) > SUMMARY_CHARS:
            words = words[:SUMMARY_CHARS] + "…"
        return Event(
            time=change.time,
            source="ktriage",
            # Stable across restarts: the same change is the same event.
            ref=f"workflow:{self.cluster}:{incident_id}:{change.time:.6f}:{change.kind}:"
            + hashlib.blake2b(change.value.encode(), digest_size=6).hexdigest(),
            kind=EVENT_KIND_PREFIX + change.kind,
            severity=Severity.INFO,
            summary=f"responder {change.actor}: {words}",
        )


def _key(incident_id: str, change: Change) -> tuple[str, float, str, str]:
    return (incident_id, change.time, change.kind, change.value)


def _resolves(resolve: Callable[[str], Incident | None], key: str, target: str) -> bool:
    inc = resolve(key)
    return inc is not None and inc.id == target


def status_line(work: IncidentWork | None) -> str:
    """`investigating · owner bob · acknowledged by alice` (or `new · not acknowledged`)."""
    if work is None:
        return "new · not acknowledged"
    parts = [work.status + (f" ({work.reason})" if work.reason else "")]
    if work.owner:
        parts.append(f"owner {work.owner}")
    parts.append(
        f"acknowledged by {work.acknowledged_by}" if work.acknowledged else "not acknowledged"
    )
    return " · ".join(parts)


# ---- the dialog ----------------------------------------------------------------------


class NoteInput(Input):
    """An Input whose paste is cut to fit (Textual's refuses a paste that does not):
    a megabyte pasted becomes the first MAX_TEXT characters, its lines joined."""

    def _on_paste(self, event: events.Paste) -> None:
        event.stop()
        text = " ".join(event.text.splitlines())
        start, end = sorted(self.selection)
        room = MAX_TEXT - (len(self.value) - (end - start))
        if len(text) > room:
            text = text[: max(0, room)]
            self.post_message(self.Cut(self))
        if text:
            self.replace(text, start, end)

    class Cut(Message):
        def __init__(self, box: NoteInput) -> None:
            super().__init__()
            self.box = box


class WorkflowScreen(DialogScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Close", key_display="esc"),
        Binding("a", "acknowledge", "Acknowledge"),
        *(Binding(k, f"status('{s}')", s, show=False) for k, s in STATUS_KEYS.items()),
        Binding("o", "take", "Take it"),
        Binding("O", "ask('owner')", "Owner"),
        Binding("n", "ask('note')", "Note"),
        Binding("y", "save_rules", "Save rules", show=False),
        *LINE_KEYS,
    ]
    DEFAULT_CSS = """
    WorkflowScreen > .dialog { width: 110; max-width: 96%; max-height: 92%; }
    WorkflowScreen > .dialog VerticalScroll { max-height: 70vh; }
    WorkflowScreen #workflow-input { display: none; }
    WorkflowScreen #workflow-input.-asking { display: block; }
    WorkflowScreen #workflow-message { color: $warning; }
    """
    HINT = "a acknowledge · 1-5 status · o take it · O owner · n note · esc close"

    def __init__(
        self,
        incident: Incident,
        keeper: WorkflowKeeper,
        events: Callable[[], list[Event]],
        raw_loader: Callable[[Event], Any] | None = None,
        *,
        ask: str = "",
    ) -> None:
        super().__init__()
        self.incident = incident
        self.keeper = keeper
        self.events = events
        self.raw_loader = raw_loader
        self.asking = ""  # "note" | "owner" | "reason" while the input is open
        self.first_ask = ask
        self.preview: RulePreview | None = None
        self.message = ""

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog") as box:
            box.border_title = Text(f"Workflow · {self.incident.id}")
            box.border_subtitle = Text(self.HINT)
            with VerticalScroll():
                yield Static(self.body_text(), id="workflow-body")
            yield Static(Text(shown(self.keeper.problem)), id="workflow-message")
            yield NoteInput(id="workflow-input", max_length=MAX_TEXT)

    def on_mount(self) -> None:
        self.refresh_body()
        if self.first_ask:
            self.action_ask(self.first_ask)

    # ---- what it shows ---------------------------------------------------------------

    def work(self) -> IncidentWork | None:
        return self.keeper.work_for(self.incident.id)

    def body_text(self) -> Text:
        work = self.work()
        out = Text()
        out.append(shown(self.incident.title) + "\n\n", "bold")
        out.append("Status  ", "dim")
        out.append(shown(status_line(work)) + "\n")
        out.append(
            "1 new · 2 investigating · 3 contained · 4 resolved · 5 false positive\n",
            "dim",
        )
        if self.preview is not None:
            out.append("\nSuppression preview (nothing is saved until y)\n", "bold")
            for line in self.preview.lines():
                out.append(shown(line) + "\n")
            path, listed = user_allowlist()
            out.append(f"\ny appends them to {shown(path)} (readable by you alone)", "bold")
            if not listed:
                out.append(
                    "; it is read once config.toml has [allowlist] files = "
                    '["allowlist.toml"], from the next start',
                )
            out.append(" · esc discards\n", "bold")
            return out
        notes = work.notes if work is not None else []
        out.append(f"\nNotes ({len(notes)})\n", "bold")
        if not notes:
            out.append("none yet: n adds one\n", "dim")
        for note in notes[-NOTES_SHOWN:]:
            out.append(f"{iso(note.time)} ", "dim")
            out.append(shown(note.actor), "bold")
            out.append(" " + shown(note.value) + "\n")
        history = [c for c in (work.history if work else []) if c.kind != NOTE]
        if history:
            out.append("\nChanges\n", "bold")
            for change in history[-NOTES_SHOWN:]:
                out.append(f"{iso(change.time)} ", "dim")
                out.append(shown(change.actor), "bold")
                out.append(" " + shown(change.words()) + "\n")
        return out

    def refresh_body(self) -> None:
        if not self.is_mounted:
            return
        self.query_one("#workflow-body", Static).update(self.body_text())
        message = self.message or self.keeper.problem
        self.query_one("#workflow-message", Static).update(Text(shown(message)))

    def _say(self, message: str) -> None:
        self.message = message
        self.refresh_body()

    # ---- changes ---------------------------------------------------------------------

    def _change(self, kind: str, value: str = "", reason: str = "") -> bool:
        try:
            self.keeper.apply(self.incident.id, kind, value, reason)
        except WorkflowError as exc:
            self._say(str(exc))
            return False
        engine = getattr(self.app, "engine", None)
        if engine is not None:
            self.keeper.sync(engine)  # on the timeline at the next refresh
        self.message = ""
        self.refresh_body()
        return True

    def action_acknowledge(self) -> None:
        if self.asking:
            return
        self._change(ACK)

    def action_status(self, status: str) -> None:
        if self.asking:
            return
        if status == FALSE_POSITIVE:
            self.action_ask("reason")
            return
        self.preview = None
        self._change(STATUS, status)

    def action_take(self) -> None:
        if self.asking:
            return
        self._change(OWNER, self.keeper.actor() or default_actor())

    def action_ask(self, what: str) -> None:
        prompts = {
            "note": "Note (enter saves, esc cancels)",
            "owner": "Owner (enter saves, esc cancels)",
            "reason": "Why is it a false positive? (enter saves, esc cancels)",
        }
        self.asking = what
        box = self.query_one("#workflow-input", Input)
        box.value = ""
        box.placeholder = prompts[what]
        box.add_class("-asking")
        box.focus()
        self._say(prompts[what])

    def on_note_input_cut(self, event: NoteInput.Cut) -> None:
        self._say(f"The pasted text was cut to {MAX_TEXT} characters.")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        what, text = self.asking, event.value
        if what == "note":
            done = self._change(NOTE, text)
        elif what == "owner":
            done = self._change(OWNER, text)
        else:
            done = self._change(STATUS, FALSE_POSITIVE, text)
            if done:
                self._preview(text)
        if done:
            self._close_input()

    def _close_input(self) -> None:
        self.asking = ""
        box = self.query_one("#workflow-input", Input)
        box.value = ""
        box.remove_class("-asking")
        self.query_one(VerticalScroll).focus()

    # ---- false positive → allow-list entries ------------------------------------------

    def _preview(self, reason: str) -> None:
        self._say("Working out the allow-list entries…")
        events = self.events()
        self.run_worker(
            lambda: self._compute_preview(events, reason),
            thread=True,
            group="workflow-preview",
            exit_on_error=False,
        )

    def _compute_preview(self, events: list[Event], reason: str) -> None:
        try:
            preview = false_positive_rules(self.incident.id, events, reason, self.raw_loader)
        except Exception as exc:  # the preview must never take the UI down
            self.app.call_from_thread(self._say, f"No preview: {exc}")
            return
        self.app.call_from_thread(self._show_preview, preview)

    def _show_preview(self, preview: RulePreview) -> None:
        if not preview.entries:
            self.preview = None
            why = "; ".join(sorted({w for _e, w in preview.not_covered})) or "no signals"
            self._say(f"No allow-list entry can cover this incident ({why}).")
            return
        self.preview = preview
        self._say("Read the preview: y saves these entries, esc discards them.")

    def action_save_rules(self) -> None:
        preview = self.preview
        if preview is None or self.asking:
            return
        path, listed = user_allowlist()
        work = self.work()
        header = f"{self.incident.id}: false positive ({work.reason if work else ''})"
        try:
            saved = save_rules(path, preview, header)
        except (AllowListError, OSError) as exc:
            self._say(f"Not saved: {exc}")
            return
        self.preview = None
        then = (
            "read from the next start"
            if listed
            else 'add [allowlist] files = ["allowlist.toml"] to config.toml, then restart'
        )
        self._say(f"Saved {preview.entries} allow-list entries to {saved}: {then}.")

    # ---- closing ---------------------------------------------------------------------

    def action_back(self) -> None:
        if self.asking:
            self._close_input()
            self._say("")
            return
        if self.preview is not None:
            self.preview = None
            self._say("Preview discarded: nothing was saved.")
            return
        self.dismiss(None)

    def action_scroll(self, step: int) -> None:
        if not self.asking:
            self.query_one(VerticalScroll).scroll_relative(y=step, animate=False)


def acknowledge(keeper: WorkflowKeeper, engine: Engine, incident: Incident) -> tuple[str, str]:
    """Acknowledge an incident (the `A` key): a notice's title and body."""
    try:
        change = keeper.apply(incident.id, ACK)
    except WorkflowError as exc:
        return f"{incident.id}: not acknowledged", str(exc)
    keeper.sync(engine)
    body = f"by {change.actor}; w opens its workflow (status, owner, notes)"
    if keeper.problem:
        body += f"\n{keeper.problem}"
    return f"{incident.id} acknowledged", body


def open_workflow(app: Any, incident: Incident | None, *, ask: str = "") -> None:
    """Push the workflow dialog for an incident (`w`, `m`, the palette)."""
    keeper: WorkflowKeeper | None = getattr(app, "workflow", None)
    if incident is None or keeper is None:
        app.notify("No incident selected.", severity="warning")
        return
    engine = app.engine
    app.push_screen(
        WorkflowScreen(
            incident,
            keeper,
            lambda: engine.correlator.events_of(incident.id),
            engine.raw_record,
            ask=ask,
        )
    )
