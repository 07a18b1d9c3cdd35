"""Rows for the Pods pane, from live cluster state or, in replay, from the events.

Live, `engine.cluster` is a ClusterState (pods by (namespace, name), nodes by
name). In replay there is no cluster: the pods are the Pod entities the events
name, and what is known about them (their node) comes from those events.
"""

from __future__ import annotations

import bisect
import weakref
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
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
    flags: tuple[str, ...] = ()
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


def pod_flags(info: Any, node_info: Any) -> tuple[str, ...]:
    flags: list[str] = []
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
    return tuple(flags) if flags else ()  # (one shared empty tuple)


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


class RowStats:
    """What the Pods pane's column widths depend on, over a set of rows: their phases,
    the widths of their flags and how many name a node. Kept as counts, so the stats
    of all pods follow each change without a pass over 50,000 rows."""

    __slots__ = ("flag_widths", "phases", "with_node")

    def __init__(self) -> None:
        self.phases: Counter[str] = Counter()
        self.flag_widths: Counter[int] = Counter()
        self.with_node = 0

    @classmethod
    def of(cls, rows: Iterable[PodRow]) -> RowStats:
        stats = cls()
        for row in rows:
            stats.add(row)
        return stats

    def add(self, row: PodRow) -> None:
        self.phases[row.phase] += 1
        self.flag_widths[_flags_width(row)] += 1
        self.with_node += 1 if row.node else 0

    def remove(self, row: PodRow) -> None:
        _decrement(self.phases, row.phase)
        _decrement(self.flag_widths, _flags_width(row))
        self.with_node -= 1 if row.node else 0

    @property
    def flags_need(self) -> int:
        """The width the widest flags take ("privileged hostPath")."""
        return max(self.flag_widths, default=0)

    @property
    def phase_need(self) -> int:
        return max((len(p) for p in self.phases), default=0)

    @property
    def has_nodes(self) -> bool:
        return self.with_node > 0


def _flags_width(row: PodRow) -> int:
    return len(" ".join(row.flags))


def _decrement(counts: Counter[Any], key: Any) -> None:
    left = counts[key] - 1
    if left > 0:
        counts[key] = left
    else:
        del counts[key]  # gone from the max


class PodRows(list[PodRow]):
    """Rows, with their `RowStats` when those were kept as the rows changed (None:
    the pane counts them itself)."""

    stats: RowStats | None = None


# More added or removed pods than this at once: the sorted rows are rebuilt in one
# pass rather than each put in (or taken out of) its place.
_IN_PLACE_MAX = 64


class AllPodRows:
    """Every pod of a cluster as rows sorted by (namespace, name), kept up to date by
    redoing only the rows of the pods the cluster says it touched, and of the pods
    on a node that changed (its cordon shows on them). A refresh while 50,000 pods
    load costs the rows of the pods that came since the last one: a list arrives
    in order, so they go at the end (or each into its place, found by bisection),
    and the column stats are counts that follow each row."""

    def __init__(self) -> None:
        self.keys: list[tuple[str, str]] = []
        self.by_key: dict[tuple[str, str], PodRow] = {}
        self.rows: list[PodRow] = []
        self.nodes: dict[str, Any] = {}
        self.stats = RowStats()
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
        if not touched:
            return self.rows
        by_key, stats = self.by_key, self.stats
        added: list[tuple[str, str]] = []
        removed: list[tuple[str, str]] = []
        changed: list[tuple[tuple[str, str], PodRow]] = []
        for key in touched:
            info = pods.get(key)
            old = by_key.get(key)
            if old is not None:
                stats.remove(old)
            if info is None:
                if old is not None:
                    del by_key[key]
                    removed.append(key)
                continue
            row = by_key[key] = row_from_info(info, cluster)
            stats.add(row)
            if old is None:
                added.append(key)
            else:
                changed.append((key, row))
        keys, rows = self.keys, self.rows
        scattered = bool(added and keys) and min(added) < keys[-1]
        if len(removed) > _IN_PLACE_MAX or (scattered and len(added) > _IN_PLACE_MAX):
            # Many at once, not at the end: one sort of the keys, the rows rebuilt.
            keys = [k for k in keys if k in by_key] if removed else keys
            keys.extend(added)
            keys.sort()
            self.keys, self.rows = keys, [by_key[k] for k in keys]
            return self.rows
        for key in removed:
            i = bisect.bisect_left(keys, key)
            del keys[i]
            del rows[i]
        for key, row in changed:
            rows[bisect.bisect_left(keys, key)] = row
        if added:
            added.sort()
            if not keys or added[0] > keys[-1]:
                keys.extend(added)  # a list comes in order: its pods go at the end
                rows.extend(by_key[k] for k in added)
            else:
                for key in added:
                    i = bisect.bisect_left(keys, key)
                    keys.insert(i, key)
                    rows.insert(i, by_key[key])
        return rows


_ALL_ROWS: weakref.WeakKeyDictionary[Any, AllPodRows] = weakref.WeakKeyDictionary()


def _all_rows(cluster: Any) -> AllPodRows | None:
    """All pods' rows, kept incrementally (None: the cluster cannot say what changed)."""
    if not hasattr(cluster, "take_touched_pods"):
        return None
    try:
        view = _ALL_ROWS.get(cluster)
        if view is None:
            view = _ALL_ROWS[cluster] = AllPodRows()
    except TypeError:  # not weakly referenceable
        return None
    view.update(cluster)
    return view


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
            view = _all_rows(cluster)
            if view is not None:
                kept = PodRows(view.rows)  # (sorted already)
                kept.stats = view.stats
                return kept
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
