"""Several clusters in one screen: one Engine per kube context, one view over all.

Each watched cluster has an Engine of its own (`MultiEngine.add_cluster`): its
sources, its ClusterState, its correlator. The correlators never see each other's
events, so an incident never spans clusters, however alike the names, addresses
and service accounts of two clusters are. The members share one EventStore (one id
space for the timeline) and one raw archive; the store keeps each cluster's refs
apart, so the same record in two clusters is two events.

`MultiEngine` is what the UI and headless mode hold: it looks like one Engine
(the incidents of every cluster, changes merged, every source's health), and
routes what belongs to an incident (actions recorded in its timeline, the pods
of its cluster) to the member the incident came from.
"""

from __future__ import annotations

import asyncio
from collections import ChainMap
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from ktriage.core.config import Config
from ktriage.core.model import EntityRef, Event, Incident
from ktriage.core.text import clip, shown
from ktriage.engine import Changes, Engine, Source, SourceHealth

if TYPE_CHECKING:
    from ktriage.core.cluster import ClusterState

# How long a cluster's name may be where it is shown in a column or the status bar.
NAME_WIDTH = 24
# States of a cluster's sources, worst last: a cluster shows its worst.
STATE_RANK = {
    "done": 0,
    "connected": 1,
    "starting": 2,
    "reconnecting": 3,
    "stalled": 4,
    "failed": 5,
}


def cluster_label(name: str, width: int = NAME_WIDTH) -> str:
    """A context name as it may be shown: hidden characters escaped, clipped."""
    return clip(shown(name), width)


class ClusterCorrelators:
    """The correlators of every member as one: what the UI asks of `engine.correlator`.

    Incident ids carry their cluster (core/correlate.incident_id), so one id names
    one incident in one member.
    """

    def __init__(self, members: dict[str, Engine]) -> None:
        self._members = members
        self.incidents: ChainMap[str, Incident] = ChainMap()
        self.renamed: ChainMap[str, str] = ChainMap()

    def _join(self, member: Engine) -> None:
        self.incidents.maps.append(member.correlator.incidents)
        self.renamed.maps.append(member.correlator.renamed)

    def owner(self, incident_id: str) -> Engine | None:
        """The member whose incident this id is (following merges and renames)."""
        for member in self._members.values():
            if member.correlator.resolve(incident_id) is not None:
                return member
        return None

    @property
    def closed(self) -> set[str]:
        out: set[str] = set()
        for member in self._members.values():
            out |= member.correlator.closed
        return out

    @property
    def suppressed(self) -> int:
        return sum(m.correlator.suppressed for m in self._members.values())

    def resolve(self, incident_id: str) -> Incident | None:
        for member in self._members.values():
            inc = member.correlator.resolve(incident_id)
            if inc is not None:
                return inc
        return None

    def incident_of_event(self, event_id: int) -> Incident | None:
        for member in self._members.values():
            inc = member.correlator.incident_of_event(event_id)
            if inc is not None:
                return inc
        return None

    def events_of(self, incident_id: str) -> list[Event]:
        member = self.owner(incident_id)
        return member.correlator.events_of(incident_id) if member is not None else []

    def attach(self, incident_id: str, event: Event) -> set[str]:
        member = self.owner(incident_id)
        if member is None:
            return set()
        return member.correlator.attach(incident_id, event)

    def add(self, event: Event) -> set[str]:
        raise TypeError("with several clusters, events go to their cluster's engine")

    def signal_entities(self) -> list[EntityRef]:
        out: list[EntityRef] = []
        for member in self._members.values():
            out.extend(member.correlator.signal_entities())
        return out

    def sorted_incidents(self) -> list[Incident]:
        """Most severe first, then most recent (as one correlator sorts them)."""
        return sorted(self.incidents.values(), key=lambda i: (-i.severity, -i.last_seen, i.id))


class MultiEngine(Engine):
    """The engines of several clusters as one (see the module docstring)."""

    def __init__(self, config: Config | None = None, *, max_events: int | None = None) -> None:
        super().__init__(config, max_events=max_events)
        self.members: dict[str, Engine] = {}
        self.correlator = ClusterCorrelators(self.members)  # type: ignore[assignment]
        # Each cluster's kubernetes ApiClient factory, for the actions (by name).
        self.client_factories: dict[str, Callable[[], Any]] = {}
        self.context_name = "0 clusters"

    def add_cluster(self, name: str) -> Engine:
        """The Engine of one more cluster, sharing this one's store and archive."""
        if name in self.members:
            raise ValueError(f"cluster {name!r} is already watched")
        member = Engine(self.config, archive=self.archive, store=self.store, cluster=name)
        member.context_name = name
        member.set_clock(self.clock)
        self.members[name] = member
        self.correlator._join(member)  # type: ignore[attr-defined]
        self.context_name = f"{len(self.members)} clusters"
        return member

    def member_of(self, incident: Incident | str | None) -> Engine | None:
        """The member an incident (or incident id) belongs to."""
        if incident is None:
            return None
        if isinstance(incident, Incident):
            member = self.members.get(incident.cluster)
            if member is not None:
                return member
            incident = incident.id
        return self.correlator.owner(incident)  # type: ignore[attr-defined,no-any-return]

    def state_for(self, incident: Incident | None) -> ClusterState | None:
        """The cluster state of the incident's cluster; the first cluster's without
        an incident (the Pods pane's "all pods")."""
        member = self.member_of(incident)
        return member.cluster if member is not None else self.cluster

    # ---- what the UI and headless mode use ------------------------------------

    def add_source(self, source: Source) -> None:
        raise TypeError("with several clusters, a source is added to its cluster: add_to")

    def add_to(self, name: str, source: Source) -> None:
        """Add a source to one cluster's engine (listed in `sources` too, for health)."""
        self.members[name].add_source(source)
        self.sources.append(source)

    def add_events(self, events: Iterable[Event]) -> set[str]:
        raise TypeError("with several clusters, events go to their cluster's engine")

    def attach_action(self, incident_id: str, event: Event) -> None:
        member = self.member_of(incident_id)
        if member is None:
            # No incident (any more): kept in the store like one correlator would.
            first = next(iter(self.members.values()), None)
            if first is None:
                return
            member = first
        member.attach_action(incident_id, event)

    def take_changes(self) -> Changes:
        incidents: set[str] = set()
        events: list[Event] = []
        renamed: dict[str, str] = {}
        for member in self.members.values():
            changes = member.take_changes()
            incidents |= changes.incidents
            events.extend(changes.events)
            renamed.update(changes.renamed)
        events.sort(key=lambda ev: ev.id)
        return Changes(incidents=incidents, events=events, renamed=renamed)

    def set_clock(self, clock: Callable[[], float]) -> None:
        super().set_clock(clock)
        for member in self.members.values():
            member.set_clock(clock)

    async def start(self) -> None:
        for member in self.members.values():
            await member.start()

    async def stop(self, timeout: float = 1.0) -> None:
        await asyncio.gather(*(m.stop(timeout) for m in self.members.values()))

    def health(self) -> list[SourceHealth]:
        return [h for m in self.members.values() for h in m.health()]

    def cluster_health(self) -> list[tuple[str, str]]:
        """(cluster, its worst source state) for each cluster, in the order added."""
        return [(name, worst_state(m.health())) for name, m in self.members.items()]


def worst_state(health: Iterable[SourceHealth]) -> str:
    """The worst of some sources' states ("starting" when there are none)."""
    states = [h.state for h in health]
    if not states:
        return "starting"
    return max(states, key=lambda st: STATE_RANK.get(st, 0))
