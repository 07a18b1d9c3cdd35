"""The Pods pane's rows of all pods, kept up to date incrementally: always the same
as rows made afresh from the cluster, through adds, changes, deletions and node
changes."""

from __future__ import annotations

import random
from typing import Any

from test_cluster_state import pod

from ktriage.core.cluster import ClusterState
from ktriage.core.store import EventStore
from ktriage.ui.pods import PodRows, RowStats, pod_rows, row_from_info


def fresh(state: ClusterState) -> list[tuple[Any, ...]]:
    rows = [row_from_info(info, state) for info in state.pods.values()]
    rows.sort(key=lambda r: r.key)
    return [(r.key, r.phase, r.node, tuple(r.flags), r.info, r.node_info) for r in rows]


def shown(state: ClusterState) -> list[tuple[Any, ...]]:
    rows = pod_rows(EventStore(), state, None, show_all=True)
    return [(r.key, r.phase, r.node, tuple(r.flags), r.info, r.node_info) for r in rows]


def node(name: str, rv: str, *, cordoned: bool = False) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "uid": name, "resourceVersion": rv},
        "spec": {"unschedulable": cordoned},
        "status": {},
    }


def test_rows_follow_every_kind_of_change() -> None:
    state = ClusterState()
    state.update_node(node("n1", "1"))
    state.begin_pod_list()
    state.apply_pod_page([pod(f"p{i:02d}", uid=f"u{i}", rv="1", ns="b") for i in range(0, 20, 2)])
    assert shown(state) == fresh(state)
    state.apply_pod_page([pod(f"p{i:02d}", uid=f"u{i}", rv="1", ns="a") for i in range(1, 20, 2)])
    state.end_pod_list()
    assert shown(state) == fresh(state) and len(shown(state)) == 20
    assert shown(state) == shown(state)  # nothing changed: the same rows
    changed = pod("p04", uid="u4", rv="2", ns="b")
    changed["status"]["phase"] = "Failed"
    state.update_pod(changed)
    assert shown(state) == fresh(state)
    assert dict((k, phase) for k, phase, *_ in shown(state))[("b", "p04")] == "Failed"
    state.delete_pod(pod("p03", uid="u3", rv="3", ns="a"))
    state.update_pod(pod("zz", uid="uz", rv="4", ns="0"))
    assert shown(state) == fresh(state) and len(shown(state)) == 20
    # The node is cordoned: every pod on it says so.
    state.update_node(node("n1", "5", cordoned=True))
    assert shown(state) == fresh(state)
    assert all("cordoned" in flags for _, _, _, flags, *_ in shown(state))


def _stats_tuple(stats: RowStats) -> tuple[Any, ...]:
    return (
        stats.flags_need,
        stats.phase_need,
        stats.has_nodes,
        stats.with_node,
        sorted(stats.phases.items()),
        sorted(stats.flag_widths.items()),
    )


def test_rows_and_their_stats_follow_random_changes() -> None:
    """Adds in order and out of order, many and few at once, changes, deletions and
    node changes: the kept rows are always the rows made afresh, and their column
    stats those counted afresh."""
    rng = random.Random(14)
    state = ClusterState()
    state.update_node(node("n1", "1"))
    state.begin_pod_list()
    rv = 1
    for step in range(60):
        rv += 1
        roll = rng.random()
        if roll < 0.4:  # a page: in order after the rest, or anywhere
            start = step * 10 if rng.random() < 0.5 else rng.randrange(0, 600)
            size = rng.choice([1, 5, 80, 150])
            objs = []
            for i in range(start, start + size):
                obj = pod(f"p{i:04d}", uid=f"u{i}", rv=str(rv), ns=rng.choice("abc"))
                if rng.random() < 0.2:
                    obj["spec"]["hostPID"] = True
                if rng.random() < 0.2:
                    obj["status"]["phase"] = "CrashLoopBackOff"
                if rng.random() < 0.1:
                    obj["spec"]["nodeName"] = ""
                objs.append(obj)
            state.apply_pod_page(objs)
        elif roll < 0.6 and state.pods:  # some changed
            for ns, name in rng.sample(sorted(state.pods), min(len(state.pods), 30)):
                obj = pod(name, uid=state.pods[(ns, name)].uid, rv=str(rv), ns=ns)
                obj["status"]["phase"] = rng.choice(["Running", "Failed", "Pending"])
                state.update_pod(obj)
        elif roll < 0.85 and state.pods:  # some deleted, few or many
            count = rng.choice([1, 3, 100])
            for ns, name in rng.sample(sorted(state.pods), min(len(state.pods), count)):
                state.delete_pod(pod(name, uid=state.pods[(ns, name)].uid, rv=str(rv), ns=ns))
        else:
            state.update_node(node("n1", str(rv), cordoned=rng.random() < 0.5))
        rows = pod_rows(EventStore(), state, None, show_all=True)
        assert shown(state) == fresh(state), step
        assert isinstance(rows, PodRows) and rows.stats is not None
        assert _stats_tuple(rows.stats) == _stats_tuple(RowStats.of(rows)), step
