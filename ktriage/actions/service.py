"""ActionService: the one object the UI talks to for containment and evidence.

See the package docstring (ktriage/actions/__init__.py) for how to use it.

Every change goes through `apply`, which journals it write-ahead (journal.py):
the intent before the first API call, the result after. On start (the first
time the service has the cluster's identity) the journal of this cluster is
read back:

    items = await service.unfinished()      # actions an earlier run was cut short in,
                                            # each read back from the cluster
    outcome = await service.resolve_unfinished(item.uid, "rollback" | "complete")
    service.still_in_place() -> [str]       # what quitting leaves in the cluster
    service.attach_earlier() -> int         # earlier actions into incidents seen again

An action may define `planned_undo(plan) -> dict` to say exactly what its undo
will need before it runs; otherwise the intent keeps the pod, its node and the
plan's own facts.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ktriage.actions.base import (
    FAILED,
    OK,
    UNCHANGED,
    UNDONE,
    Action,
    ActionError,
    ActionRecord,
    Outcome,
    Plan,
    Progress,
    Target,
    as_target,
)
from ktriage.actions.catalog import BY_KEY, IDENTITY, POD, RECORD
from ktriage.actions.context import ActionContext
from ktriage.actions.cordon import Cordon
from ktriage.actions.detach import Detach
from ktriage.actions.isolate import Isolate
from ktriage.actions.journal import (
    ActionJournal,
    Entry,
    Intent,
    Loaded,
    Result,
    change_json,
    entry_record,
)
from ktriage.actions.kube import Kube, api_client_from_kubeconfig
from ktriage.actions.logs import DumpLogs
from ktriage.actions.permissions import PermissionCache, explain_missing, needs
from ktriage.actions.record import action_event, action_record, refused_event, undo_words
from ktriage.actions.revoke import RevokeCredentials
from ktriage.actions.runner import RetryPolicy, Runner
from ktriage.actions.unbind import Unbind
from ktriage.actions.unfinished import ALL, NOTHING, Unfinished, inspect
from ktriage.actions.workload import DeletePod, ScaleToZero
from ktriage.core.model import EntityKind, Event
from ktriage.core.text import printable

if TYPE_CHECKING:
    from kubernetes.client import ApiClient

    from ktriage.engine import Engine

UNDO_KEY = "u"
SETUP_RETRY = 10.0  # seconds between attempts to set up a client that failed
ROLLBACK = "rollback"
COMPLETE = "complete"
CUT_SHORT = "cut short: ktriage stopped before the result was recorded"


def default_actions() -> list[Action]:
    return [
        Cordon(),
        Isolate(),
        DumpLogs(),
        Detach(),
        DeletePod(),
        ScaleToZero(),
        Unbind(),
        RevokeCredentials(),
    ]


def acts_on(key: str, target: Target) -> bool:
    """Whether the action of this key applies to this kind of target (catalog.py)."""
    spec = BY_KEY.get(key)
    wanted = spec.acts_on if spec is not None else POD
    if wanted == RECORD:
        return True
    is_identity = target.kind in (EntityKind.SERVICE_ACCOUNT, EntityKind.USER)
    return is_identity if wanted == IDENTITY else not is_identity


@dataclass(frozen=True, slots=True)
class ActionPolicy:
    """`read_only=True` (`--read-only`) hides every action."""

    read_only: bool = False


def kubeconfig_factory(path: str | None = None, context: str | None = None) -> Callable[[], Any]:
    """An `api_client_factory` for a kubeconfig file and context."""
    return lambda: api_client_from_kubeconfig(path, context)


class ActionService:
    def __init__(
        self,
        engine: Engine | None,
        api_client_factory: Callable[[], ApiClient],
        snapshot_dir: Path | str,
        read_only: bool = False,
        *,
        retry: RetryPolicy | None = None,
        clock: Callable[[], float] = time.time,
        permission_ttl: float = 300.0,
        actions: list[Action] | None = None,
    ) -> None:
        self.engine = engine
        self.policy = ActionPolicy(read_only=read_only)
        self.snapshot_dir = Path(snapshot_dir)
        self.clock = clock
        self._factory = api_client_factory
        self._retry = retry or RetryPolicy()
        self._permission_ttl = permission_ttl
        self.actions: dict[str, Action] = {a.key: a for a in (actions or default_actions())}
        self._by_name: dict[str, Action] = {a.name: a for a in self.actions.values()}
        self._ctx: ActionContext | None = None
        self._api_client: ApiClient | None = None
        self._records: list[ActionRecord] = []
        self._ids = itertools.count(1)
        # Undoable actions are kept on disk too, by cluster (see journal.py).
        self.journal = ActionJournal(self.snapshot_dir)
        self.cluster = ""
        self.journal_problem = ""
        self._earlier: set[str] = set()  # ids of records taken by earlier runs
        self._loaded = False
        # Journal entries of earlier runs (intents and their results) for this cluster.
        self._entries: list[Entry] = []
        # Unfinished intents of earlier runs, read back from the cluster (by uid).
        self._unfinished: dict[str, Unfinished] = {}
        self._resolved: set[str] = set()
        # This run's intents whose result is not in yet (an apply in flight).
        self._running: dict[str, Intent] = {}
        # Earlier runs' actions, as timeline events waiting for their incident.
        self._pending: list[tuple[Intent, Event]] = []
        self._leftovers: dict[str, list[str]] = {}  # by record uid
        self._seen_incidents: tuple[int, int] = (-1, -1)  # when attach_earlier last looked
        self._session = secrets.token_hex(4)  # tells this run's records apart on disk
        self._refreshing: dict[str, asyncio.Task[None]] = {}
        self._listeners: list[Callable[[], None]] = []
        self._locks: dict[Target, asyncio.Lock] = {}
        self._setup_error = ""
        self._setup_failed_at = 0.0
        # Roll-back plans of actions cut short, prepared for `u` (by id of the plan).
        self._rollbacks: dict[int, tuple[Plan, str]] = {}

    # ---- plumbing --------------------------------------------------------------

    @property
    def read_only(self) -> bool:
        return self.policy.read_only

    @property
    def context(self) -> ActionContext:
        """The action context, built on first use (the factory may read files: prefer
        `await ensure_context()` on the event loop)."""
        if self._ctx is None:
            self._build(self._factory())
        if not self._loaded:
            self._loaded = True
            self._take_journal(self.journal.load(self.cluster))
        assert self._ctx is not None
        return self._ctx

    async def ensure_context(self) -> ActionContext:
        """The context, building the ApiClient in a thread (kubeconfig exec plugins block)."""
        if self._ctx is None:
            try:
                client = await asyncio.to_thread(self._factory)
            except Exception as exc:
                raise ActionError(f"cannot set up the cluster client: {exc}") from None
            if self._ctx is None:
                self._build(client)
            else:
                client.close()
        if not self._loaded:
            # Read in a thread: a journal may be megabytes.
            self._loaded = True
            self._take_journal(await asyncio.to_thread(self.journal.load, self.cluster))
        return self._ctx  # type: ignore[return-value]

    def _build(self, client: ApiClient) -> None:
        self._api_client = client
        self.cluster = str(getattr(client.configuration, "host", "") or "")
        kube = Kube(client)
        runner = Runner(self._retry)
        self._ctx = ActionContext(
            kube=kube,
            runner=runner,
            permissions=PermissionCache(kube, runner, ttl=self._permission_ttl),
            snapshot_dir=self.snapshot_dir,
            clock=self.clock,
            incident_records=self._incident_records,
        )

    def _incident_records(self, incident_id: str) -> list[tuple[Any, Any]]:
        """The incident's audit events and their raw records (for identity actions)."""
        engine = self.engine
        if engine is None:
            return []
        out: list[tuple[Any, Any]] = []
        for ev in engine.correlator.events_of(incident_id):
            if ev.source != "audit":
                continue
            try:
                raw = engine.raw_record(ev)
            except (OSError, ValueError):
                raw = None
            out.append((ev, raw))
        return out

    def close(self) -> None:
        for task in self._refreshing.values():
            task.cancel()
        if self._api_client is not None:
            self._api_client.close()
            self._api_client = None
            self._ctx = None

    def on_permissions(self, listener: Callable[[], None]) -> None:
        """Called after permissions were checked in the background (refresh the keys shown)."""
        self._listeners.append(listener)

    def _action(self, key_or_name: str) -> Action:
        action = self.actions.get(key_or_name) or self._by_name.get(key_or_name)
        if action is None:
            raise ActionError(f"no such action: {key_or_name!r}")
        return action

    # ---- what may be offered ---------------------------------------------------

    def available(self, pod_ref: Any) -> dict[str, tuple[bool, str]]:
        """Key → (enabled, reason) for the selected pod; {} in read-only mode.

        Answers from the permission cache and never blocks: what is not cached
        yet shows as disabled ("checking permissions") while a background
        check runs; `on_permissions` listeners hear when it is done.
        """
        if self.read_only:
            return {}
        target = as_target(pod_ref)
        out: dict[str, tuple[bool, str]] = {}
        stale = False
        for key, action in self.actions.items():
            if not acts_on(key, target):
                continue
            if self._ctx is None:
                stale = True
                out[key] = (False, self._setup_error or "checking permissions")
                continue
            perms = self._ctx.permissions
            wanted = action.permissions(target)
            missing = perms.missing_cached(wanted, target.namespace)
            if missing is None:
                stale = True
                out[key] = (False, "checking permissions")
            elif missing:
                out[key] = (False, needs(missing))
            else:
                unknown = perms.unknown_cached(wanted, target.namespace)
                out[key] = (True, f"{action.title} ({unknown})" if unknown else action.title)
        record = self.last_undoable(None, target)
        cut = self._cut_short_on(target) if record is None else None
        if record is not None:
            out[UNDO_KEY] = (True, f"undo {undo_words(record)}")
        elif cut is not None:
            out[UNDO_KEY] = (True, f"roll back {cut.intent.action} {target.words()}, cut short")
        else:
            out[UNDO_KEY] = (False, f"nothing to undo on {target.words()}")
        if stale:
            self._refresh_in_background(target)
        return out

    def explain(self, key: str, pod_ref: Any) -> str:
        """Why the key's action is not offered now, in full: each missing permission
        with its scope and the `kubectl auth can-i` line that checks it."""
        if self.read_only:
            return "read-only mode: actions are disabled"
        target = as_target(pod_ref)
        offered = self.available(target)
        if key == UNDO_KEY:
            ok, why = offered.get(UNDO_KEY, (False, "nothing to undo"))
            if ok:
                return why
            done = [r for r in self.records(None) if r.target == target]
            if done:
                last = done[-1]
                note = last.undo_note or ("already undone" if last.undone else last.result)
                return f"{why}: the last action here, {undo_words(last)}, {note}"
            cut = self._cut_short_on(target, checked_empty=True)
            if cut is not None:
                return f"{why}: {cut.intent.action} was cut short here with nothing of it in place"
            return f"{why}: ktriage has taken no action on it"
        action = self.actions.get(key)
        if action is None:
            return f"no such action: {key!r}"
        if key not in offered:
            return f"{action.title}: does not apply to {target.words()}"
        ok, why = offered[key]
        if ok:
            return f"{action.title}: possible ({why})"
        if self._ctx is None or why == "checking permissions":
            return f"{action.title}: {why}; ask again in a moment"
        missing = self._ctx.permissions.missing_cached(action.permissions(target), target.namespace)
        if not missing:
            return f"{action.title}: {why}"
        who = self._ctx.runner.identity or self._ctx.permissions.known_identity
        return f"{action.title}: {needs(missing)}\n" + explain_missing(
            missing, target.namespace, who
        )

    async def refresh(self, pod_ref: Any) -> dict[str, tuple[bool, str]]:
        """Ask the server (or the cache) for every permission, then answer like `available`."""
        if self.read_only:
            return {}
        target = as_target(pod_ref)
        ctx = await self.ensure_context()
        wanted = [
            p for k, a in self.actions.items() if acts_on(k, target) for p in a.permissions(target)
        ]
        # Who we are too, so that a blocked key can name who lacks the permission.
        await asyncio.gather(
            ctx.permissions.missing(wanted, target.namespace), ctx.permissions.identity()
        )
        return self.available(target)

    def _refresh_in_background(self, target: Target) -> None:
        ns = target.namespace
        task = self._refreshing.get(ns)
        if task is not None and not task.done():
            return
        if self._setup_error and time.monotonic() - self._setup_failed_at < SETUP_RETRY:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return

        async def run() -> None:
            try:
                await self.refresh(target)
                self._setup_error = ""
            except ActionError as error:
                # Shown as the reason of every key; tried again a little later.
                self._setup_error = error.message
                self._setup_failed_at = time.monotonic()
            for listener in self._listeners:
                listener()

        self._refreshing[ns] = loop.create_task(run())

    async def identity(self) -> str:
        return await (await self.ensure_context()).permissions.identity()

    # ---- prepare / apply ---------------------------------------------------------

    async def prepare(
        self, key: str, incident_id: str, pod_ref: Any, *, offered: bool = False
    ) -> Plan:
        """Check permissions and preconditions, plan, and dry-run it on the server.

        Raises ActionError (plain words) when the action cannot go ahead; the
        refusal is written to the incident's timeline, unless ktriage is only
        preparing an offer (`offered`) the user has not asked for yet.
        """
        if self.read_only:
            raise ActionError("read-only mode: actions are disabled")
        action = self._action(key)
        target = as_target(pod_ref)
        ctx = await self.ensure_context()
        # Who we are, asked once: for the record and for naming a 403.
        who = ctx.runner.identity = await ctx.permissions.identity()
        try:
            missing = await ctx.permissions.missing(action.permissions(target), target.namespace)
            if missing:
                raise ActionError(f"{action.title}: {who} {needs(missing)}", reason="forbidden")
            facts = await action.check(ctx, target)
            plan = await action.plan(ctx, target, incident_id, facts)
            await action.dry_run(ctx, plan)
        except ActionError as error:
            if not offered:
                self._refused(action.name, incident_id, target, who, error)
            raise
        return plan

    def _refused(
        self, label: str, incident_id: str, target: Target, actor: str, error: ActionError
    ) -> None:
        """An attempt stopped before any change (permissions, the check, the dry run)
        is part of the incident's story too: when, who, and why."""
        if self.engine is not None:
            event = refused_event(
                label, incident_id, target, actor, error.message, self.clock(), error.containment
            )
            self.engine.attach_action(incident_id, event)

    async def apply(self, plan: Plan, progress: Progress | None = None) -> Outcome:
        """Apply a prepared plan (or undo plan), record it, and return how it went.

        Write-ahead: the intent (the exact planned changes, what undo would need)
        is in the journal before the first API call, the result after the last.
        Never raises for cluster failures: a failed outcome says what happened.
        """
        if self.read_only:
            raise ActionError("read-only mode: actions are disabled")
        rollback = self._rollbacks.pop(id(plan), None)
        if rollback is not None and rollback[0] is plan:
            return await self._apply_rollback(plan, rollback[1])
        ctx = await self.ensure_context()
        action = self._by_name[plan.action]
        started = self.clock()
        actor = await ctx.permissions.identity()
        ctx.runner.identity = actor
        record_id = f"A{next(self._ids)}"
        uid = f"{self._session}-{record_id}"
        intent = self._intent(action, plan, uid, record_id, actor, started)
        lock = self._locks.setdefault(plan.subject, asyncio.Lock())
        async with lock:
            self._running[uid] = intent
            unsaved = await asyncio.to_thread(self._write, self.journal.intent, intent)
            try:
                if plan.is_undo:
                    outcome = await action.undo(ctx, plan)
                else:
                    outcome = await action.apply(ctx, plan, progress)
            except ActionError as error:
                outcome = Outcome(
                    plan=plan, result=FAILED, message=error.message, error=error.message
                )
            except Exception as exc:  # never a traceback to the user
                text = f"unexpected error: {type(exc).__name__}: {printable(str(exc))}"
                outcome = Outcome(plan=plan, result=FAILED, message=text, error=text)
            outcome.actor = actor
            outcome.started = started
            outcome.finished = max(self.clock(), started)
            result = _result_of(outcome, uid)
            unsaved = unsaved or await asyncio.to_thread(self._write, self.journal.result, result)
            self._running.pop(uid, None)
        record = action_record(outcome, record_id)
        record.uid = uid
        outcome.record = record
        if plan.undo_of is not None:
            if outcome.result in (UNDONE, UNCHANGED):
                plan.undo_of.undone = True
        self._records.append(record)
        if outcome.leftovers:
            self._leftovers[uid] = list(outcome.leftovers)
        if unsaved:
            outcome.message += f" ({unsaved}: undo works until ktriage quits)"
        self._attach(plan.incident_id, outcome, uid)
        return outcome

    def _attach(self, incident_id: str, outcome: Outcome, uid: str) -> None:
        if self.engine is None:
            return
        event = action_event(outcome)
        # The same action read back from the journal after a restart has the same ref.
        event.ref = f"{event.kind}:{uid}"
        self.engine.attach_action(incident_id, event)

    def _intent(
        self, action: Action, plan: Plan, uid: str, record_id: str, actor: str, started: float
    ) -> Intent:
        return Intent(
            uid=uid,
            id=record_id,
            action=plan.label,
            incident_id=plan.incident_id,
            signal=self._signal_of(plan.incident_id),
            target=plan.target,
            subject=plan.subject,
            time=started,
            actor=actor,
            title=plan.title,
            changes=[change_json(c) for c in plan.changes],
            undo=planned_undo(action, plan),
            undo_of=(plan.undo_of.uid or plan.undo_of.id) if plan.undo_of is not None else "",
            files=list(plan.files),
        )

    def _write(self, write: Callable[[Any, str], None], line: Any) -> str:
        """Append one journal line; the problem in words, or ""."""
        if not self.cluster:
            return ""
        try:
            write(line, self.cluster)
        except (OSError, ValueError) as exc:  # ValueError: a circular value in a plan
            reason = getattr(exc, "strerror", None) or str(exc)
            problem = f"not saved to {self.journal.path} ({reason})"
            self.journal_problem = problem
            return problem
        return ""

    # ---- the record and undo -----------------------------------------------------

    def _take_journal(self, loaded: Loaded) -> None:
        """Actions taken on this cluster by earlier runs: undo still works after a
        restart, unfinished ones are offered (`unfinished`), and each is shown in
        its incident's timeline once the incident is seen (`attach_earlier`)."""
        if not self.cluster:
            return
        known = {r.id for r in self._records}
        # (Actions this version does not know, from an older or newer one, are left.)
        earlier = [
            r
            for r in loaded.records
            if r.id not in known and r.action.removeprefix("undo ") in self._by_name
        ]
        self._records[:0] = earlier
        self._earlier.update(r.id for r in earlier)
        self._entries = [e for e in loaded.entries if e.intent.base_action in self._by_name]
        numbers = [int(r.id[1:]) for r in self._records if r.id[:1] == "A" and r.id[1:].isdigit()]
        numbers += [
            int(e.intent.id[1:])
            for e in loaded.entries
            if e.intent.id[:1] == "A" and e.intent.id[1:].isdigit()
        ]
        self._ids = itertools.count(max(numbers, default=0) + 1)
        if loaded.problem:
            self.journal_problem = loaded.problem
        elif loaded.skipped:
            self.journal_problem = (
                f"{loaded.skipped} unreadable line(s) in {self.journal.path} were skipped"
            )
        by_uid = {r.uid: r for r in self._records}
        in_entries = {e.intent.uid for e in self._entries}
        for entry in self._entries:
            self._pending.append((entry.intent, earlier_event(entry, by_uid)))
        for record in earlier:
            if record.uid not in in_entries:
                intent = Intent(
                    uid=record.uid,
                    id=record.id,
                    action=record.action,
                    incident_id=record.incident_id,
                    signal="",
                    target=record.target,
                    subject=record.subject,
                    time=record.time,
                    actor=record.actor,
                    title="",
                )
                self._pending.append((intent, earlier_event(Entry(intent), by_uid, record)))
        for entry in self._entries:
            if entry.result is not None and entry.result.leftovers:
                self._leftovers[entry.intent.uid] = list(entry.result.leftovers)
        self.attach_earlier()

    # ---- earlier runs' actions in the timelines ----------------------------------------

    def _signal_of(self, incident_id: str) -> str:
        """`<source>:<ref>` of the incident's first signal: the same in the next run
        that sees it, even when the incident's id has changed by a merge."""
        correlator = getattr(self.engine, "correlator", None)
        if correlator is None:
            return ""
        inc = correlator.resolve(incident_id)
        if inc is None:
            return ""
        store = self.engine.store  # type: ignore[union-attr]
        for when, eid in inc.timeline[:5000]:
            if when > inc.first_signal:
                break
            try:
                ev = store.get(eid)
            except IndexError:
                continue
            if ev.signal:
                return f"{ev.source}:{ev.ref}"
        return ""

    def _incident_for(self, intent: Intent) -> str | None:
        correlator = getattr(self.engine, "correlator", None)
        if correlator is None:
            return None
        inc = correlator.resolve(intent.incident_id) if intent.incident_id else None
        if inc is not None:
            return str(inc.id)
        if not intent.signal:
            return None
        pod = intent.target.entity()
        store = self.engine.store  # type: ignore[union-attr]
        for candidate in correlator.incidents.values():
            if pod not in candidate.entities:
                continue
            for _when, eid in candidate.timeline[:5000]:
                try:
                    ev = store.get(eid)
                except IndexError:
                    continue
                if ev.signal and f"{ev.source}:{ev.ref}" == intent.signal:
                    return str(candidate.id)
        return None

    def attach_earlier(self) -> int:
        """Put earlier runs' actions into the timelines of incidents seen again
        (same id, or holding the same first signal); returns how many. Cheap when
        nothing waits or no incident changed: call it whenever incidents may have
        appeared."""
        if self.engine is None or not self._pending:
            return 0
        incidents = self.engine.correlator.incidents
        seen = (len(incidents), sum(i.revision for i in incidents.values()))
        if seen == self._seen_incidents:
            return 0
        self._seen_incidents = seen
        waiting: list[tuple[Intent, Event]] = []
        attached = 0
        for intent, event in self._pending:
            incident = self._incident_for(intent)
            if incident is None:
                waiting.append((intent, event))
                continue
            self.engine.attach_action(incident, event)
            attached += 1
        self._pending = waiting
        return attached

    # ---- unfinished actions --------------------------------------------------------

    async def unfinished(self) -> list[Unfinished]:
        """Earlier runs' actions cut short (an intent without a result) on this
        cluster, each read back from the cluster: what of it is in place now."""
        ctx = await self.ensure_context()
        found: list[Unfinished] = []
        for entry in self._entries:
            if entry.finished or entry.intent.uid in self._resolved:
                continue
            item = await inspect(ctx, entry, self.snapshot_dir)
            self._unfinished[entry.intent.uid] = item
            found.append(item)
        return found

    async def resolve_unfinished(self, uid: str, how: str) -> Outcome:
        """Roll back (remove what is in place) or complete (finish the plan) an
        unfinished action; both are journaled like any action, and the cut-short
        intent gets its result. Raises ActionError when it cannot be tried."""
        if self.read_only:
            raise ActionError("read-only mode: actions are disabled")
        if how not in (ROLLBACK, COMPLETE):
            raise ActionError(f"resolve how? {how!r} (rollback or complete)")
        ctx = await self.ensure_context()
        entry = next((e for e in self._entries if e.intent.uid == uid), None)
        if entry is None or entry.finished or uid in self._resolved:
            raise ActionError(f"no unfinished action {uid}")
        intent = entry.intent
        found = self._unfinished.get(uid) or await inspect(ctx, entry, self.snapshot_dir)
        action = self._by_name[intent.base_action]
        forward = not intent.is_undo
        if (how == ROLLBACK) == forward:
            # Take away what the action put in place: its own undo, planned from
            # what is there now (an orphan policy alone is deleted).
            original = _as_record(intent) if forward else self._original(intent)
            plan = await action.plan_undo(ctx, original or _as_record(intent))
            if not plan.unchanged:
                await action.dry_run(ctx, plan)
        else:
            if forward and found.verdict == ALL:
                return await self._close(entry, how, found)
            # Finish the action (or redo what an undo took away) from what is there now.
            plan = await self.prepare(action.key, intent.incident_id, intent.target)
        if plan.unchanged:
            return await self._close(entry, how, found, nothing=plan.unchanged)
        outcome = await self.apply(plan)
        await self._close(entry, how, found, by=outcome)
        return outcome

    def _cut_short_on(self, target: Target, *, checked_empty: bool = False) -> Entry | None:
        """The newest earlier action on `target` cut short and not resolved yet, with
        something of it in place (or not checked yet); with `checked_empty`, one found
        to have nothing in place instead. An undo cut short is not one: its original
        is still undoable."""
        for entry in reversed(self._entries):
            intent = entry.intent
            if entry.finished or intent.uid in self._resolved or intent.is_undo:
                continue
            if intent.target != target:
                continue
            found = self._unfinished.get(intent.uid)
            empty = found is not None and found.verdict == NOTHING
            if empty == checked_empty:
                return entry
        return None

    async def _prepare_rollback(self, entry: Entry) -> Plan:
        """`u` on an action cut short: the plan that takes away what of it is in place
        (an orphan policy alone is deleted), dry-run, for the same confirm as any undo;
        applying it resolves the cut-short intent as the start-up dialog's roll back."""
        ctx = await self.ensure_context()
        intent = entry.intent
        action = self._by_name[intent.base_action]
        if intent.uid not in self._unfinished:
            self._unfinished[intent.uid] = await inspect(ctx, entry, self.snapshot_dir)
        plan = await action.plan_undo(ctx, _as_record(intent))
        if not plan.unchanged:
            await action.dry_run(ctx, plan)
        plan.notes.insert(
            0,
            f"{intent.action} {intent.target.words()} was cut short in an earlier run; "
            f"in place now: {self._unfinished[intent.uid].summary()}",
        )
        self._rollbacks[id(plan)] = (plan, intent.uid)
        return plan

    async def _apply_rollback(self, plan: Plan, uid: str) -> Outcome:
        entry = next((e for e in self._entries if e.intent.uid == uid), None)
        if entry is None or entry.finished or uid in self._resolved:
            raise ActionError("that action cut short was resolved meanwhile")
        found = self._unfinished.get(uid) or await inspect(
            await self.ensure_context(), entry, self.snapshot_dir
        )
        if plan.unchanged:
            return await self._close(entry, ROLLBACK, found, nothing=plan.unchanged)
        outcome = await self.apply(plan)
        await self._close(entry, ROLLBACK, found, by=outcome)
        return outcome

    def _original(self, intent: Intent) -> ActionRecord | None:
        return next((r for r in self._records if r.uid == intent.undo_of), None)

    async def _close(
        self,
        entry: Entry,
        how: str,
        found: Unfinished,
        *,
        by: Outcome | None = None,
        nothing: str = "",
    ) -> Outcome:
        """Write the cut-short intent's result, saying how it was resolved."""
        intent = entry.intent
        action = self._by_name[intent.base_action]
        plan = _plan_of(intent)
        now = self.clock()
        outcome = Outcome(plan=plan, result=FAILED, message="", started=intent.time, finished=now)
        outcome.actor = intent.actor
        if by is not None and by.record is not None:
            outcome.message = f"{CUT_SHORT}; {how} by {by.record.id}: {by.result}"
        elif how == COMPLETE and intent.is_undo:
            outcome.result = UNDONE
            outcome.message = f"undo completed after a restart: {nothing or 'nothing was left'}"
            original = self._original(intent)
            if original is not None:
                original.undone = True
        elif how == COMPLETE:
            # Everything it planned is there: it is this action's doing, with its undo.
            outcome.result = OK
            outcome.undo = dict(intent.undo)
            outcome.message = "completed after a restart: everything it planned was found in place"
            try:
                await action.plan_undo(await self.ensure_context(), _as_record(intent))
                outcome.undoable = True
                outcome.undo_note = "undo after a restart, from the plan recorded before it"
            except ActionError as error:
                outcome.undo_note = error.message
        else:
            outcome.message = f"{CUT_SHORT}; rolled back after a restart: {nothing or NOTHING}"
        result = _result_of(outcome, intent.uid)
        result.resolved = how
        result.by = by.record.uid if by is not None and by.record is not None else ""
        problem = await asyncio.to_thread(self._write, self.journal.result, result)
        entry.result = result
        self._resolved.add(intent.uid)
        self._unfinished.pop(intent.uid, None)
        record = entry_record(entry)
        self._records.append(record)
        self._earlier.add(record.id)
        outcome.record = record
        if problem:
            outcome.message += f" ({problem})"
        if by is None:
            self._attach(intent.incident_id, outcome, intent.uid + "-resolved")
        return by if by is not None else outcome

    # ---- what is still in place --------------------------------------------------------

    def running(self) -> list[Intent]:
        """This run's actions being applied right now."""
        return list(self._running.values())

    def still_in_place(self) -> list[str]:
        """Every change ktriage made in this cluster and left there, in words: actions
        not undone (this run's and earlier runs'), what failures and failed rollbacks
        left behind, actions cut short with something in place, actions in flight."""
        out = [f"{undo_words(r)} ({r.id}, not undone)" for r in self.in_place()]
        for record, leftover in self.leftovers():
            out.append(f"left by a failed {record.action} ({record.id}): {leftover}")
        for item in self._unfinished.values():
            if item.verdict != NOTHING:
                out.append(f"{item.title()}: {item.summary()}")
        for entry in self._entries:
            if (
                not entry.finished
                and entry.intent.uid not in self._unfinished
                and (entry.intent.uid not in self._resolved)
            ):
                out.append(
                    f"{entry.intent.action} {entry.intent.target.words()}, cut short: "
                    "not checked yet"
                )
        for intent in self._running.values():
            out.append(f"{intent.action} {intent.target.words()}: being applied now")
        return out

    def leftovers(self) -> list[tuple[ActionRecord, str]]:
        """What failed actions (and failed undos) left behind, unless a later action on
        the same object has since succeeded."""
        out: list[tuple[ActionRecord, str]] = []
        for i, record in enumerate(self._records):
            left = self._leftovers.get(record.uid) if record.result == FAILED else None
            if not left:
                continue
            later = self._records[i + 1 :]
            if any(
                r.subject == record.subject and r.result in (OK, UNDONE, UNCHANGED) for r in later
            ):
                continue
            out.extend((record, x) for x in left)
        return out

    def _resolve(self, incident_id: str) -> str:
        correlator = getattr(self.engine, "correlator", None)
        resolve = getattr(correlator, "resolve", None)
        if resolve is None:
            return incident_id
        inc = resolve(incident_id)
        return inc.id if inc is not None else incident_id

    def records(self, incident_id: str | None = None) -> list[ActionRecord]:
        """Actions taken (oldest first), for one incident or all."""
        if incident_id is None:
            return list(self._records)
        wanted = self._resolve(incident_id)
        return [r for r in self._records if self._resolve(r.incident_id) == wanted]

    def in_place(self) -> list[ActionRecord]:
        """Changes still in place (undoable and not undone), this run's and earlier runs'."""
        return [r for r in self._records if r.can_undo]

    def last_undoable(self, incident_id: str | None, target: Any = None) -> ActionRecord | None:
        """The newest action that can still be undone, on this pod (or its node) if given."""
        pod = as_target(target) if target is not None else None
        for record in reversed(self.records(incident_id)):
            if not record.can_undo:
                continue
            if pod is None or record.target == pod:
                return record
        return None

    async def prepare_undo(self, incident_id: str | None, target: Any = None) -> Plan:
        if self.read_only:
            raise ActionError("read-only mode: actions are disabled")
        record = self.last_undoable(incident_id, target)
        cut = self._cut_short_on(as_target(target)) if record is None and target else None
        if cut is not None:
            return await self._prepare_rollback(cut)
        if record is None:
            where = as_target(target).words() if target is not None else "this incident"
            raise ActionError(f"nothing to undo on {where}")
        action = self._by_name[record.action]
        ctx = await self.ensure_context()
        who = ctx.runner.identity = await ctx.permissions.identity()
        try:
            missing = await ctx.permissions.missing(
                action.permissions(record.target), record.target.namespace
            )
            if missing:
                raise ActionError(
                    f"undo {record.action}: {who} {needs(missing)}", reason="forbidden"
                )
            plan = await action.plan_undo(ctx, record)
            await action.dry_run(ctx, plan)
        except ActionError as error:
            self._refused(f"undo {record.action}", record.incident_id, record.target, who, error)
            raise
        return plan

    async def undo(self, incident_id: str | None, target: Any = None) -> Outcome:
        """Undo the newest undoable action (on `target`, if given) without a preview."""
        return await self.apply(await self.prepare_undo(incident_id, target))


# ---- journal lines from plans and outcomes ---------------------------------------------


def _plain_json(value: Any) -> bool:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True


def planned_undo(action: Action, plan: Plan) -> dict[str, Any]:
    """What undo would need, known before the action runs (the intent keeps it, so
    that an action cut short can be rolled back after a restart).

    An action may say it exactly with `planned_undo(plan)`; otherwise it is the
    pod, its node and the plan's own facts, which is what the actions' undo reads
    (`namespace`, `pod`, `policy`, `node`...)."""
    if plan.undo_of is not None:
        return dict(plan.undo_of.undo)
    hook = getattr(action, "planned_undo", None)
    if hook is not None:
        return dict(hook(plan))
    info: dict[str, Any] = {"namespace": plan.target.namespace, "pod": plan.target.name}
    if plan.subject.kind == EntityKind.NODE:
        info["node"] = plan.subject.name
    info.update({k: v for k, v in plan.state.items() if isinstance(k, str) and _plain_json(v)})
    return info


def _result_of(outcome: Outcome, uid: str) -> Result:
    return Result(
        intent=uid,
        result=outcome.result,
        message=outcome.message,
        error=outcome.error,
        time=outcome.finished,
        started=outcome.started,
        actor=outcome.actor,
        leftovers=list(outcome.leftovers),
        undo=dict(outcome.undo) if _plain_json(outcome.undo) else {},
        undoable=outcome.undoable,
        undo_note=outcome.undo_note,
        containment=[dict(f) for f in outcome.containment],
        files=[dict(f) for f in outcome.files],
        warnings=list(outcome.plan.warnings),
    )


def _plan_of(intent: Intent) -> Plan:
    """The bare plan an intent was written for (no changes: they were sent, or not)."""
    return Plan(
        action=intent.base_action,
        incident_id=intent.incident_id,
        target=intent.target,
        subject=intent.subject,
        title=intent.title,
    )


def _as_record(intent: Intent) -> ActionRecord:
    """The record an intent would have made, for planning its undo."""
    return ActionRecord(
        id=intent.id,
        action=intent.base_action,
        incident_id=intent.incident_id,
        target=intent.target,
        subject=intent.subject,
        time=intent.time,
        actor=intent.actor,
        result=OK,
        summary="",
        undo=dict(intent.undo),
        undoable=True,
        uid=intent.uid,
    )


def earlier_event(
    entry: Entry, by_uid: dict[str, ActionRecord], record: ActionRecord | None = None
) -> Event:
    """The timeline event of an earlier run's action, as that run attached it."""
    intent, result = entry.intent, entry.result
    plan = _plan_of(intent)
    if intent.is_undo:
        plan.undo_of = by_uid.get(intent.undo_of) or _as_record(intent)
    if result is not None:
        plan.warnings = list(result.warnings)
        outcome = Outcome(
            plan=plan,
            result=result.result,
            message=result.message,
            error=result.error,
            actor=result.actor or intent.actor,
            started=result.started or intent.time,
            finished=result.time or intent.time,
            files=list(result.files),
            leftovers=list(result.leftovers),
            undo=dict(result.undo),
            undoable=result.undoable,
            undo_note=result.undo_note,
            containment=list(result.containment),
        )
    elif record is not None:  # the earlier one-line format
        if record.action.startswith("undo "):
            plan.action = record.action.removeprefix("undo ")
            plan.undo_of = _as_record(intent)
        outcome = Outcome(
            plan=plan,
            result=record.result,
            message=record.summary,
            actor=record.actor,
            started=record.time,
            finished=record.time,
            undo=dict(record.undo),
            undoable=record.undoable,
            undo_note=record.undo_note,
        )
    else:
        outcome = Outcome(
            plan=plan,
            result=FAILED,
            message=CUT_SHORT,
            error=CUT_SHORT,
            actor=intent.actor,
            started=intent.time,
            finished=intent.time,
        )
    event = action_event(outcome)
    event.ref = f"{event.kind}:{intent.uid}"
    return event
