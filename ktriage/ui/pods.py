"""Rows for the Pods pane, from live cluster state or, in replay, from the events.

Live, `engine.cluster` is a ClusterState (pods by (namespace, name), nodes by
name). In replay there is no cluster: the pods are the Pod entities the events
name, and what is known about them (their node) comes from those events.
"""

from __future__ import annotations

import bisect
import weakref
from dataclasses import dataclass, field
from typing import Any

from ktriage.core.model import EntityKind, EntityRef, Incident
from ktriage.core.store import EventStore

# How many of a pod's events are looked at to find its node in replay.
_NODE_SCAN = 200


@dataclass(slots=True)
class PodRow:
    namespace: str
    name: str
    phase: str = "-"
    ready: str = "-"
    restarts: int | None = None
    node: str = ""
    flags: list[str] = field(default_factory=list)
    # The live PodInfo when connected to a cluster (None in replay or once deleted).
    info: Any = None
    node_info: Any = None
    known: bool = True  # False: named by events but not (or no longer) in the cluster

    @property
    def ref(self) -> EntityRef:
        return EntityRef(EntityKind.POD, self.namespace, self.name)

    @property
    def key(self) -> tuple[str, str]:
        return (self.namespace, self.name)


def pod_flags(info: Any, node_info: Any) -> list[str]:
    flags = []
    if getattr(info, "privileged", False):
        flags.append("privileged")
    if getattr(info, "host_path", False):
        flags.append("hostPath")
    if getattr(info, "host_network", False):
        flags.append("hostNet")
    if getattr(info, "host_pid", False):
        flags.append("hostPID")
    if getattr(info, "host_ipc", False):
        flags.append("hostIPC")
    if getattr(info, "isolated", False):
        # The quarantine label is on the pod; whether that isolates it is the action's
        # re-read (its containment fact), not the label's presence.
        flags.append("quarantined")
    if node_info is not None and getattr(node_info, "unschedulable", False):
        flags.append("cordoned")
    return flags


def row_from_info(info: Any, cluster: Any) -> PodRow:
    node = getattr(info, "node", "") or ""
    node_info = cluster.nodes.get(node) if cluster is not None and node else None
    phase = getattr(info, "phase", "") or "-"
    reason = getattr(info, "status_reason", "") or ""
    return PodRow(
        namespace=info.namespace,
        name=info.name,
        phase=reason or phase,
        ready=getattr(info, "ready", "") or "-",
        restarts=getattr(info, "restarts", None),
        node=node,
        flags=pod_flags(info, node_info),
        info=info,
        node_info=node_info,
    )


# Rows made from a cluster's PodInfo, by pod, reused while the pod and its node are
# the same objects (a PodInfo is replaced on every change): with 50,000 pods the
# rows of a refresh are mostly the last refresh's.
_ROW_CACHE: weakref.WeakKeyDictionary[Any, dict[tuple[str, str], PodRow]] = (
    weakref.WeakKeyDictionary()
)


def _rows_cache(cluster: Any) -> dict[tuple[str, str], PodRow] | None:
    try:
        cache = _ROW_CACHE.get(cluster)
        if cache is None:
            cache = _ROW_CACHE[cluster] = {}
    except TypeError:  # not weakly referenceable: no cache
        return None
    if len(cache) > 2 * len(cluster.pods) + 1000:
        cache.clear()  # rows of pods long gone
    return cache


def _cached_row(info: Any, cluster: Any, cache: dict[tuple[str, str], PodRow] | None) -> PodRow:
    if cache is None:
        return row_from_info(info, cluster)
    key = (info.namespace, info.name)
    row = cache.get(key)
    node = getattr(info, "node", "") or ""
    node_info = cluster.nodes.get(node) if node else None
    if row is None or row.info is not info or row.node_info is not node_info:
        row = cache[key] = row_from_info(info, cluster)
    return row


class AllPodRows:
    """Every pod of a cluster as rows sorted by (namespace, name), kept up to date by
    redoing only the rows of the pods the cluster says it touched, and of the pods
    on a node that changed (its cordon shows on them). With 50,000 pods a refresh
    while they load costs a list of 50,000 references, not 50,000 rows."""

    def __init__(self) -> None:
        self.keys: list[tuple[str, str]] = []
        self.by_key: dict[tuple[str, str], PodRow] = {}
        self.rows: list[PodRow] = []
        self.nodes: dict[str, Any] = {}
        self.first = True

    def update(self, cluster: Any) -> list[PodRow]:
        pods = cluster.pods
        nodes = dict(cluster.nodes)
        touched = cluster.take_touched_pods()
        if self.first:
            touched, self.first = set(pods), False  # the first update reads them all
        old_nodes, self.nodes = self.nodes, nodes
        moved = {n for n in nodes.keys() | old_nodes.keys() if nodes.get(n) is not old_nodes.get(n)}
        if moved:
            # A node changed (cordoned, not ready): its pods' rows show it.
            touched |= {k for k, row in self.by_key.items() if row.node in moved}
        if touched:
            added: list[tuple[str, str]] = []
            removed = False
            for key in touched:
                info = pods.get(key)
                if info is None:
                    removed = self.by_key.pop(key, None) is not None or removed
                    continue
                row = row_from_info(info, cluster)
                if key in self.by_key:
                    self.by_key[key] = row
                    if not removed and not added:
                        # Changed in place: its row is where it was.
                        i = bisect.bisect_left(self.keys, key)
                        self.rows[i] = row
                else:
                    self.by_key[key] = row
                    added.append(key)
            if not added and not removed:
                return self.rows
            if removed:
                self.keys = [k for k in self.keys if k in self.by_key]
            if added:
                # Sorted runs (a list comes in order): merged in linear time.
                added.sort()
                self.keys.extend(added)
                self.keys.sort()
        else:
            return self.rows
        self.rows = [self.by_key[k] for k in self.keys]
        return self.rows


_ALL_ROWS: weakref.WeakKeyDictionary[Any, AllPodRows] = weakref.WeakKeyDictionary()


def _all_rows(cluster: Any) -> list[PodRow] | None:
    """All pods' rows, kept incrementally (None: the cluster cannot say what changed)."""
    if not hasattr(cluster, "take_touched_pods"):
        return None
    try:
        view = _ALL_ROWS.get(cluster)
        if view is None:
            view = _ALL_ROWS[cluster] = AllPodRows()
    except TypeError:  # not weakly referenceable
        return None
    return view.update(cluster)


def pods_loading(cluster: Any) -> int | None:
    """How many pods of the cluster's list under way are in (None: none under way)."""
    loading = getattr(cluster, "pods_loading", None)
    return loading if isinstance(loading, int) else None


def _node_from_events(store: EventStore, pod: EntityRef) -> str:
    for eid in store.by_entity(pod)[:_NODE_SCAN]:
        node = store.get(eid).first(EntityKind.NODE)
        if node is not None:
            return node.name
    return ""


def _pods_of_incident(incident: Incident | None) -> list[EntityRef]:
    if incident is None:
        return []
    return [e for e in incident.entities if e.kind == EntityKind.POD]


def pod_rows(
    store: EventStore, cluster: Any, incident: Incident | None, *, show_all: bool
) -> list[PodRow]:
    """The pods to show: the incident's, or every pod known."""
    rows: list[PodRow] = []
    if cluster is not None:
        pods = cluster.pods
        cache = _rows_cache(cluster)
        if show_all:
            kept = _all_rows(cluster)
            if kept is not None:
                return list(kept)  # (sorted already)
            rows = [_cached_row(info, cluster, cache) for info in pods.values()]
        else:
            for ref in _pods_of_incident(incident):
                info = pods.get((ref.namespace, ref.name))
                if info is not None:
                    rows.append(_cached_row(info, cluster, cache))
                else:
                    rows.append(PodRow(ref.namespace, ref.name, phase="Gone", known=False))
    else:
        if show_all:
            refs = [e for e in store.entities() if e.kind == EntityKind.POD]
        else:
            refs = _pods_of_incident(incident)
        rows = [
            PodRow(ref.namespace, ref.name, node=_node_from_events(store, ref), known=False)
            for ref in refs
        ]
    if show_all:
        rows.sort(key=lambda r: (r.namespace, r.name))
    # else: the incident's order, most involved pod first
    return rows
