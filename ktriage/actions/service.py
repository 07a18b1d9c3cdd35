"""ActionService: the one object the UI talks to for containment and evidence.

See the package docstring (ktriage/actions/__init__.py) for how to use it.
"""

from __future__ import annotations

import asyncio
import itertools
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ktriage.actions.base import (
    FAILED,
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
from ktriage.actions.journal import ActionJournal
from ktriage.actions.kube import Kube, api_client_from_kubeconfig
from ktriage.actions.logs import DumpLogs
from ktriage.actions.permissions import PermissionCache, explain_missing, needs
from ktriage.actions.record import action_event, action_record, refused_event, undo_words
from ktriage.actions.revoke import RevokeCredentials
from ktriage.actions.runner import RetryPolicy, Runner
from ktriage.actions.unbind import Unbind
from ktriage.actions.workload import DeletePod, ScaleToZero
from ktriage.core.model import EntityKind
from ktriage.core.text import printable

if TYPE_CHECKING:
    from kubernetes.client import ApiClient

    from ktriage.engine import Engine

UNDO_KEY = "u"
SETUP_RETRY = 10.0  # seconds between attempts to set up a client that failed


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
        self._session = secrets.token_hex(4)  # tells this run's records apart on disk
        self._refreshing: dict[str, asyncio.Task[None]] = {}
        self._listeners: list[Callable[[], None]] = []
        self._locks: dict[Target, asyncio.Lock] = {}
        self._setup_error = ""
        self._setup_failed_at = 0.0

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
        return self._ctx  # type: ignore[return-value]

    def _build(self, client: ApiClient) -> None:
        self._api_client = client
        self.cluster = str(getattr(client.configuration, "host", "") or "")
        self._load_journal()
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
        if record is not None:
            out[UNDO_KEY] = (True, f"undo {undo_words(record)}")
        else:
            what = "pod" if target.kind == EntityKind.POD else target.words()
            out[UNDO_KEY] = (False, f"nothing to undo for this {what}")
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
            event = refused_event(label, incident_id, target, actor, error.message, self.clock())
            self.engine.attach_action(incident_id, event)

    async def apply(self, plan: Plan, progress: Progress | None = None) -> Outcome:
        """Apply a prepared plan (or undo plan), record it, and return how it went.

        Never raises for cluster failures: a failed outcome says what happened.
        """
        if self.read_only:
            raise ActionError("read-only mode: actions are disabled")
        ctx = await self.ensure_context()
        action = self._by_name[plan.action]
        started = self.clock()
        actor = await ctx.permissions.identity()
        ctx.runner.identity = actor
        lock = self._locks.setdefault(plan.subject, asyncio.Lock())
        async with lock:
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
        record = action_record(outcome, f"A{next(self._ids)}")
        outcome.record = record
        if plan.undo_of is not None:
            if outcome.result in (UNDONE, UNCHANGED):
                plan.undo_of.undone = True
        self._records.append(record)
        if self.cluster and (record.can_undo or plan.undo_of is not None):
            problem = await asyncio.to_thread(self._save, record, plan.undo_of)
            if problem:
                outcome.message += f" ({problem}: undo works until ktriage quits)"
        if self.engine is not None:
            self.engine.attach_action(plan.incident_id, action_event(outcome))
        return outcome

    # ---- the record and undo -----------------------------------------------------

    def _load_journal(self) -> None:
        """Actions taken on this cluster by earlier runs: undo still works after a
        restart. Called once, when the cluster client is set up."""
        if not self.cluster:
            return
        loaded = self.journal.load(self.cluster)
        known = {r.id for r in self._records}
        # (Actions this version does not know, from an older or newer one, are left.)
        earlier = [r for r in loaded.records if r.id not in known and r.action in self._by_name]
        self._records[:0] = earlier
        self._earlier.update(r.id for r in earlier)
        numbers = [int(r.id[1:]) for r in self._records if r.id[:1] == "A" and r.id[1:].isdigit()]
        self._ids = itertools.count(max(numbers, default=0) + 1)
        if loaded.problem:
            self.journal_problem = loaded.problem
        elif loaded.skipped:
            self.journal_problem = (
                f"{loaded.skipped} unreadable line(s) in {self.journal.path} were skipped"
            )

    def _save(self, record: ActionRecord, undone: ActionRecord | None) -> str:
        """Write what undo after a restart needs; the problem in words, or ""."""
        try:
            if record.can_undo:
                record.uid = record.uid or f"{self._session}-{record.id}"
                self.journal.record(record, self.cluster)
            if undone is not None and undone.undone:
                self.journal.undone(undone.uid or f"{self._session}-{undone.id}", self.cluster)
        except OSError as exc:
            return f"not saved to {self.journal.path} ({exc.strerror or exc})"
        return ""

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
        """Changes this run made that are still in place (undoable and not undone)."""
        return [r for r in self._records if r.can_undo and r.id not in self._earlier]

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
        if record is None:
            raise ActionError("nothing to undo here")
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
