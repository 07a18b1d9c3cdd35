"""Each incident's containment state for the panes: computed from its events, cached.

The Incidents list asks for the mark of every visible row about once a second, and
a live incident changes all the time: a state is computed again only when the
incident or its pods' presence changed, and (for the list) not more often than its
own cost allows, so that the marks never take more than a small share of the loop.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from ktriage.core.containment import NOTHING, Containment, PodLookup, containment_state
from ktriage.core.model import EntityKind, Incident

# A state is computed again for the list at most once per this many seconds, or
# per this many times its own cost, whichever is longer.
MIN_INTERVAL = 1.0
COST_FACTOR = 20.0
MAX_CACHED = 5_000


class ContainmentTracker:
    """Containment states of an engine's incidents, with the live pod lookup."""

    def __init__(self, engine: Any, clock: Callable[[], float] = time.monotonic) -> None:
        self.engine = engine
        self.clock = clock
        # incident id -> (key, computed at, cost in seconds, state)
        self._cache: dict[str, tuple[tuple[Any, ...], float, float, Containment]] = {}

    # ---- the cluster's word on pods --------------------------------------------------

    def pod_lookup(self, inc: Incident | None = None) -> PodLookup | None:
        """Whether a pod exists now, from the live cluster state (the incident's
        cluster's when several are watched); None (no word) before the pods are
        listed, for namespaces not watched, and in replay."""
        engine = self.engine
        member_of = getattr(engine, "member_of", None)
        if member_of is not None:
            engine = member_of(inc)
        cluster = getattr(engine, "cluster", None)
        if cluster is None:
            return None
        watches = [
            s for s in getattr(engine, "sources", ()) if getattr(s, "resource", "") == "pods"
        ]
        if not watches:
            return None
        watch = watches[0]
        synced = getattr(watch, "synced", None)
        if synced is None or not synced.is_set():
            return None
        scope = getattr(watch, "namespace", None)
        pods = cluster.pods

        def exists(namespace: str, name: str) -> bool | None:
            if scope and namespace != scope:
                return None
            return (namespace, name) in pods

        return exists

    def frozen_lookup(self, inc: Incident) -> PodLookup | None:
        """The lookup's answers for the incident's pods, taken now: for a worker
        thread (a snapshot) while the loop goes on changing the cluster state."""
        lookup = self.pod_lookup(inc)
        if lookup is None:
            return None
        answers = {key: lookup(*key) for key in _pods(inc)}
        return lambda namespace, name: answers.get((namespace, name))

    # ---- states --------------------------------------------------------------------------

    def of(self, inc: Incident, *, fresh: bool = True) -> Containment:
        """The incident's state; with `fresh` False (the list) a recent state may be
        given while the incident keeps changing."""
        lookup = self.pod_lookup(inc)
        key = (inc.revision, _answers(inc, lookup))
        cached = self._cache.get(inc.id)
        now = self.clock()
        if cached is not None:
            old_key, at, cost, state = cached
            if old_key == key:
                return state
            if not fresh and now - at < max(MIN_INTERVAL, cost * COST_FACTOR):
                return state
        started = time.perf_counter()
        get = self.engine.store.get
        state = containment_state(inc, (get(eid) for _, eid in inc.timeline), lookup)
        cost = time.perf_counter() - started
        if len(self._cache) >= MAX_CACHED:
            self._cache.clear()
        self._cache[inc.id] = (key, now, cost, state)
        return state

    def level(self, inc: Incident) -> str:
        """contained / partly / none, for the Incidents list."""
        counts = inc.counts_by_source
        if not counts.get("ktriage") and not counts.get("kube") and self.pod_lookup(inc) is None:
            return NOTHING  # no action, no pod deletion, no cluster: nothing contained
        return self.of(inc, fresh=False).level


def _pods(inc: Incident) -> list[tuple[str, str]]:
    return [(e.namespace, e.name) for e in inc.entities if e.kind == EntityKind.POD]


def _answers(inc: Incident, lookup: PodLookup | None) -> tuple[bool | None, ...]:
    if lookup is None:
        return ()
    return tuple(lookup(ns, name) for ns, name in _pods(inc))
