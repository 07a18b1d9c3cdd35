"""Where containment actions plug into the UI.

The app binds one key per action of `ktriage.actions.catalog.CATALOG` in the main
screen and asks the *action provider* what they do. The provider is made by
`make_provider(app)` below (None when the app is `--read-only` or has no cluster:
the keys are then listed in the help screen as not available and hidden from the
footer).

A provider implements:

    def available(self, name: str, selection: Selection) -> tuple[bool, str]:
        '''(True, "") when the action can run on this selection, else (False, why).'''

    def explain(self, name: str, selection: Selection) -> str:
        '''Why a blocked key does nothing: the missing permission and the
        `kubectl auth can-i` line that checks it, or "nothing to undo".'''

    async def run(self, name: str, selection: Selection) -> None:
        '''Preview, confirm, apply; record the outcome with engine.attach_action.'''

    def still_in_place(self) -> list[str]:
        '''Every change ktriage made in the cluster and left there, in words: this
        run's and earlier runs', leftovers and actions cut short included (the app
        names them in a dialog before it quits).'''

    def start(self) -> None:
        '''Called once the app is mounted (the start-up dialog for actions an
        earlier run was cut short in).'''
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

from ktriage.actions.catalog import CATALOG, IDENTITY, POD, ActionSpec
from ktriage.core.model import EntityKind, EntityRef, Event, Incident


class ActionKey(NamedTuple):
    key: str
    name: str
    description: str


ACTION_KEYS: tuple[ActionKey, ...] = tuple(ActionKey(s.key, s.name, s.description) for s in CATALOG)


@dataclass(slots=True)
class Selection:
    """What the user is pointing at when an action key is pressed."""

    pane: str  # "incidents" | "timeline" | "pods" | "live" | "detail"
    incident: Incident | None
    event: Event | None
    # The selected pod (Pods pane) or the incident's main pod otherwise.
    pod: EntityRef | None
    # The live PodInfo for `pod` when connected to a cluster.
    pod_info: Any = None
    # The identity (ServiceAccount or User) that acted in the incident, if any.
    identity: EntityRef | None = None

    @staticmethod
    def main_pod(incident: Incident | None) -> EntityRef | None:
        if incident is None:
            return None
        return next((e for e in incident.entities if e.kind == EntityKind.POD), None)

    def ref_for(self, spec: ActionSpec) -> EntityRef | None:
        """What this action acts on in the selection (the pod, or the identity)."""
        if spec.acts_on == IDENTITY:
            return self.identity
        if spec.acts_on == POD:
            return self.pod
        return self.pod if self.pod is not None else self.identity


class ActionProvider(Protocol):
    def available(self, name: str, selection: Selection) -> tuple[bool, str]: ...

    def explain(self, name: str, selection: Selection) -> str: ...

    async def run(self, name: str, selection: Selection) -> None: ...


def make_provider(app: Any) -> ActionProvider | None:
    """The UI's action provider, or None when actions cannot run (read-only, no cluster).

    Builds an ActionService from `app.api_client_factory` (or
    `app.engine.api_client_factory`), a zero-argument callable returning a
    kubernetes ApiClient.
    """
    if getattr(app, "read_only", False):
        return None
    members = getattr(getattr(app, "engine", None), "members", None)
    if members:
        return _cluster_provider(app, members)
    factory = getattr(app, "api_client_factory", None) or getattr(
        getattr(app, "engine", None), "api_client_factory", None
    )
    if factory is None:
        return None
    from ktriage.actions.service import ActionService
    from ktriage.ui.screens.action_confirm import ActionsProvider

    service = ActionService(
        app.engine,
        factory,
        app.snapshot_dir,
        read_only=False,
        clock=getattr(app, "clock", None) or time.time,
    )
    return ActionsProvider(app, service)


def client_factory(app: Any, cluster: str = "") -> Callable[[], Any] | None:
    """The ApiClient factory of a watched cluster (the app's one cluster with ""), or
    None: a replay, or a cluster ktriage has no client for."""
    if cluster:
        return getattr(getattr(app, "engine", None), "client_factories", {}).get(cluster)
    return getattr(app, "api_client_factory", None)


def _cluster_provider(app: Any, members: dict[str, Any]) -> ActionProvider | None:
    """With several clusters: one ActionService per cluster, each with its member
    engine (its incidents) and its own client; the provider routes by incident."""
    from ktriage.actions.service import ActionService
    from ktriage.ui.screens.action_confirm import ActionsProvider

    factories = getattr(app.engine, "client_factories", {})
    services = {
        name: ActionService(
            member,
            factories[name],
            app.snapshot_dir,
            read_only=False,
            clock=getattr(app, "clock", None) or time.time,
        )
        for name, member in members.items()
        if name in factories
    }
    if not services:
        return None
    return ActionsProvider(app, next(iter(services.values())), by_cluster=services)


def incident_actor(events: Iterable[Event]) -> EntityRef | None:
    """The identity that acted most in these events: the user of their audit records
    (a ServiceAccount or a User; an audit event names its actor first), else None.

    ktriage's own requests and actions are not the incident's actors.
    """
    counts: dict[EntityRef, int] = {}
    for ev in events:
        if ev.source != "audit" or not ev.entities or ev.kind == "ktriage-request":
            continue
        actor = ev.entities[0]
        if actor.kind in (EntityKind.SERVICE_ACCOUNT, EntityKind.USER):
            counts[actor] = counts.get(actor, 0) + (3 if ev.signal else 1)
    if not counts:
        return None
    return max(counts, key=lambda ref: (counts[ref], ref))


class ActorCache:
    """The actor of each incident. Computed again when the incident changed, at most
    every `every` seconds: the footer asks many times a second, and a busy incident
    changes as often."""

    def __init__(
        self,
        get_event: Callable[[int], Event],
        *,
        every: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._get = get_event
        self._every = every
        self._clock = clock
        self._cache: dict[str, tuple[int, float, EntityRef | None]] = {}

    def actor(self, incident: Incident | None) -> EntityRef | None:
        if incident is None:
            return None
        hit = self._cache.get(incident.id)
        now = self._clock()
        if hit is not None and (hit[0] == incident.revision or now - hit[1] < self._every):
            return hit[2]
        # The timeline as it is (no sorting needed to count who acted).
        actor = incident_actor(self._get(eid) for _, eid in list(incident.timeline))
        if len(self._cache) > 1000:
            self._cache.clear()
        self._cache[incident.id] = (incident.revision, now, actor)
        return actor
