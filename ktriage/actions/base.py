"""What every action is made of: a target, a plan, an outcome, a record.

An action has the same four steps (as Falco Talon's actionners have parameters,
checks and the action, plus what they lack: a preview and an undo):

- **check**: read the live objects and the preconditions (the pod is scheduled,
  a policy of the same name is ours...). Permissions are checked before the
  key is even offered (permissions.py).
- **plan**: the exact objects and patch bodies, shown to the user, then sent
  to the server with `dryRun=All` before the user confirms.
- **apply**: send them for real, with retries and rollback (runner.py).
- **undo**: plan and apply the reverse, from the record of what was done.

Everything here is plain data; nothing blocks the event loop.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import yaml

from ktriage.actions import catalog
from ktriage.core.model import EntityKind, EntityRef

if TYPE_CHECKING:
    from ktriage.actions.context import ActionContext
    from ktriage.actions.permissions import Permission

# Labels and annotations on everything ktriage creates or sets.
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY = "ktriage"
QUARANTINE_LABEL = "ktriage.io/quarantine"
INCIDENT_ANNOTATION = "ktriage.io/incident"
FIELD_MANAGER = "ktriage"
STRATEGIC_MERGE = "application/strategic-merge-patch+json"

# Results, as core/snapshot.py reads them.
OK = "ok"
FAILED = "failed"
UNCHANGED = "unchanged"
UNDONE = "undone"
# Stopped before any change: missing permissions, the check, or the dry run.
REFUSED = "refused"

# (file name, bytes so far, bytes expected or None) while evidence is written.
Progress = Callable[[str, int, int | None], None]


class ActionError(Exception):
    """A failure to report in plain words (never a traceback)."""

    def __init__(
        self,
        message: str,
        *,
        status: int = 0,
        reason: str = "",
        containment: list[dict[str, str]] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.reason = reason  # forbidden | not-found | conflict | throttled | server | ...
        # What the refusal found true (core/containment.py facts), e.g. a hostNetwork
        # pod's network is `not-applicable`: recorded with the refused attempt.
        self.containment = list(containment or [])


@dataclass(frozen=True, slots=True)
class Target:
    """A pod or node, as the user selected it or as an action changes it."""

    kind: str  # "Pod" | "Node" | "NetworkPolicy"
    namespace: str
    name: str

    def short(self) -> str:
        return f"{self.namespace}/{self.name}" if self.namespace else self.name

    def words(self) -> str:
        """`pod shop/web-1`, `node worker-2`, `NetworkPolicy shop/x`, `file a/b.log`."""
        kind = self.kind.lower() if self.kind in ("Pod", "Node", "File") else self.kind
        return f"{kind} {self.short()}"

    def entity(self) -> EntityRef:
        from ktriage.core.model import entity

        return entity(self.kind, self.namespace or None, self.name)

    def kubectl(self) -> str:
        """`pod web-1 -n shop`: the arguments kubectl takes to name this object."""
        kind = self.kind.lower()
        return (
            f"{kind} {self.name} -n {self.namespace}" if self.namespace else f"{kind} {self.name}"
        )


def as_target(ref: Any) -> Target:
    """Accept a Target, an EntityRef of a pod/node, a (namespace, name) pair or `ns/name`."""
    if isinstance(ref, Target):
        return ref
    if isinstance(ref, EntityRef):
        return Target(str(ref.kind), ref.namespace, ref.name)
    if isinstance(ref, tuple) and len(ref) == 2:
        return Target(EntityKind.POD, str(ref[0]), str(ref[1]))
    if isinstance(ref, str) and "/" in ref:
        ns, _, name = ref.partition("/")
        return Target(EntityKind.POD, ns, name)
    raise ActionError(f"not a pod reference: {ref!r}")


@dataclass(slots=True)
class Change:
    """One change a plan makes, shown to the user exactly as it will be sent."""

    verb: str  # create | patch | delete | write
    target: Target
    body: Any = None  # the object to create or the patch body; None for delete/write
    content_type: str = ""
    summary: str = ""  # one line in words

    def render(self) -> str:
        """The body as YAML (objects) or JSON (patches), for the preview."""
        if self.body is None:
            return ""
        if self.verb == "patch":
            return json.dumps(self.body, indent=2, sort_keys=True)
        return str(yaml.safe_dump(self.body, sort_keys=False, default_flow_style=False))

    def header(self) -> str:
        ctype = f" ({self.content_type})" if self.content_type else ""
        return f"{self.verb} {self.target.words()}{ctype}"


@dataclass(slots=True)
class Plan:
    """What an action will do, after its check and its server-side dry run."""

    action: str  # cordon | isolate | detach | logs
    incident_id: str
    target: Target  # the pod the user selected
    subject: Target  # what changes (the node for cordon)
    title: str  # "Cordon node worker-2"
    changes: list[Change] = field(default_factory=list)
    files: list[str] = field(default_factory=list)  # evidence files to write
    warnings: list[str] = field(default_factory=list)  # say plainly; shown first
    notes: list[str] = field(default_factory=list)
    unchanged: str = ""  # set when nothing needs doing: the reason ("already cordoned")
    dry_run: str = ""  # what the server-side dry run said
    undo_of: ActionRecord | None = None
    # Choices the confirm offers, (key, what it does), and the one chosen: "" when the
    # user must choose before applying (deleting a pod whose evidence was not saved).
    options: list[tuple[str, str]] = field(default_factory=list)
    option: str = ""
    # Action-private facts from the check (resourceVersions, labels...).
    state: dict[str, Any] = field(default_factory=dict)
    created: float = field(default_factory=time.time)

    @property
    def is_undo(self) -> bool:
        return self.undo_of is not None

    @property
    def label(self) -> str:
        """`cordon`, `undo cordon`: the action's name in the record."""
        return f"undo {self.action}" if self.is_undo else self.action


@dataclass(slots=True)
class ActionRecord:
    """One applied action, kept so that it can be listed and undone."""

    id: str
    action: str
    incident_id: str
    target: Target
    subject: Target
    time: float
    actor: str
    result: str
    summary: str
    undo: dict[str, Any] = field(default_factory=dict)  # what undo needs
    undoable: bool = False
    undo_note: str = ""  # why it cannot be undone, or what undo will do
    undone: bool = False
    # Unique across runs (ids restart at A1 in each), for the journal.
    uid: str = ""

    @property
    def can_undo(self) -> bool:
        return self.undoable and not self.undone and self.result == OK


@dataclass(slots=True)
class Outcome:
    """How an apply (or undo) ended; `message` is one plain sentence for the user."""

    plan: Plan
    result: str
    message: str
    error: str = ""
    actor: str = ""
    started: float = 0.0
    finished: float = 0.0
    files: list[dict[str, Any]] = field(default_factory=list)
    # What a failure left behind, each with the command that removes it.
    leftovers: list[str] = field(default_factory=list)
    record: ActionRecord | None = None
    undo: dict[str, Any] = field(default_factory=dict)
    undoable: bool = False
    undo_note: str = ""
    # What is now true, re-read from the cluster after the change
    # (core/containment.py facts: aspect, subject, state, detail).
    containment: list[dict[str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.result in (OK, UNCHANGED, UNDONE)


class DeclaredAction:
    """An action's key and permissions, read from its declaration in catalog.py so
    that no action class repeats them (an action may narrow `permissions` by target)."""

    name: str
    key: str

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.key = catalog.spec(cls.name).key

    def permissions(self, target: Target) -> list[Permission]:
        return catalog.permissions_of(self.name)


class Action(Protocol):
    """The four steps every action implements."""

    name: str  # cordon
    key: str  # the key that offers it
    title: str  # "Cordon node"

    def permissions(self, target: Target) -> list[Permission]:
        """What the identity must be allowed to do, for the check before the key is offered."""
        ...

    async def check(self, ctx: ActionContext, target: Target) -> dict[str, Any]:
        """Read the live objects; raise ActionError when the action cannot apply."""
        ...

    async def plan(
        self, ctx: ActionContext, target: Target, incident_id: str, facts: dict[str, Any]
    ) -> Plan:
        """The exact changes; then `dry_run` sends them with dryRun=All."""
        ...

    async def dry_run(self, ctx: ActionContext, plan: Plan) -> None: ...

    async def apply(
        self, ctx: ActionContext, plan: Plan, progress: Progress | None = None
    ) -> Outcome: ...

    async def plan_undo(self, ctx: ActionContext, record: ActionRecord) -> Plan: ...

    async def undo(self, ctx: ActionContext, plan: Plan) -> Outcome: ...
