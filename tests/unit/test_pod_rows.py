"""The Pods pane's rows of all pods, kept up to date incrementally: always the same
as rows made afresh from the cluster, through adds, changes, deletions and node
changes."""

from __future__ import annotations

from typing import Any

from test_cluster_state import pod

from ktriage.core.cluster import ClusterState
from ktriage.core.store import EventStore
from ktriage.ui.pods import pod_rows, row_from_info


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
