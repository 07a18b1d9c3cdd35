"""ClusterState: parsing pods and nodes, and re-list differences (pure, no server)."""

from __future__ import annotations

from typing import Any

from ktriage.core.cluster import ClusterState, node_info, pod_info
from ktriage.core.model import parse_time

T0 = "2027-03-01T08:00:00Z"


def pod(name: str, *, uid: str, rv: str, ns: str = "web", **extra: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "metadata": {
            "namespace": ns,
            "name": name,
            "uid": uid,
            "resourceVersion": rv,
            "creationTimestamp": T0,
            "labels": {"app": name},
        },
        "spec": {
            "nodeName": "n1",
            "serviceAccountName": "web",
            "containers": [{"name": "main", "image": "nginx:1.27"}],
        },
        "status": {
            "phase": "Running",
            "containerStatuses": [
                {
                    "name": "main",
                    "image": "nginx:1.27",
                    "ready": True,
                    "restartCount": 0,
                    "state": {"running": {"startedAt": T0}},
                }
            ],
        },
    }
    for key, value in extra.items():
        obj[key].update(value)
    return obj


def test_pod_info_fields() -> None:
    obj = pod("front", uid="u1", rv="5")
    obj["metadata"]["labels"]["ktriage.io/quarantine"] = "INC-1"
    obj["metadata"]["ownerReferences"] = [{"kind": "ReplicaSet", "name": "front-1"}]
    obj["spec"]["ephemeralContainers"] = [
        {"name": "debugger", "image": "busybox", "securityContext": {"privileged": True}}
    ]
    obj["spec"]["containers"].append({"name": "sidecar", "image": "envoy:1"})
    obj["status"]["containerStatuses"].append(
        {
            "name": "sidecar",
            "image": "envoy:1",
            "ready": False,
            "restartCount": 4,
            "state": {"waiting": {"reason": "CrashLoopBackOff"}},
        }
    )
    info = pod_info(obj)
    assert (info.namespace, info.name, info.uid, info.phase) == ("web", "front", "u1", "Running")
    assert info.ready == "1/2" and info.restarts == 4
    assert info.node == "n1" and info.service_account == "web"
    assert info.images == ("nginx:1.27", "envoy:1", "busybox")
    assert info.containers == ("main", "sidecar", "debugger")
    assert info.owner == "ReplicaSet/front-1" and info.created == parse_time(T0)
    assert info.privileged and info.privileged_containers == ("debugger",)
    assert info.isolated and info.status_reason == "CrashLoopBackOff"


def test_pod_info_tolerates_missing_and_wrong_types() -> None:
    info = pod_info({"metadata": {"name": "x", "labels": None}, "spec": {"containers": "nope"}})
    assert info.name == "x" and info.containers == () and info.ready == "0/0"
    assert pod_info({}).name == ""
    assert ClusterState().update_pod({"kind": "Pod"}) == []


def test_node_info() -> None:
    info = node_info(
        {
            "metadata": {
                "name": "cp-1",
                "labels": {"node-role.kubernetes.io/control-plane": ""},
                "creationTimestamp": T0,
            },
            "spec": {"unschedulable": True},
            "status": {"conditions": [{"type": "Ready", "status": "True"}]},
        }
    )
    assert info.ready and info.unschedulable and info.roles == ("control-plane",)


def test_resync_emits_only_differences() -> None:
    state = ClusterState()
    a = pod("a", uid="ua", rv="1")
    b = pod("b", uid="ub", rv="2")
    c = pod("c", uid="uc", rv="3")
    for obj in (a, b, c):
        assert state.update_pod(obj) == []
    revision = state.revision

    # While disconnected: b went into OOM, c was deleted, d (privileged) appeared.
    b2 = pod("b", uid="ub", rv="7")
    b2["status"]["containerStatuses"][0]["state"] = {
        "terminated": {
            "reason": "OOMKilled",
            "exitCode": 137,
            "finishedAt": "2027-03-01T08:10:00Z",
        }
    }
    d = pod("d", uid="ud", rv="8")
    d["spec"]["containers"][0]["securityContext"] = {"privileged": True}
    events = state.resync_pods([a, b2, d])
    got = sorted((e.kind, e.ref) for e in events)
    assert got == [
        ("oomkilled", "ub:7:oomkilled:main"),
        ("pod-deleted", "uc:3:deleted"),
        ("privileged-pod", "ud:8:risky"),
    ]
    deleted = next(e for e in events if e.kind == "pod-deleted")
    # No deletion time is known: bounded by the newest time in the list.
    assert deleted.time == parse_time("2027-03-01T08:10:00Z")
    assert "re-list" in deleted.summary
    assert set(state.pods) == {("web", "a"), ("web", "b"), ("web", "d")}
    assert state.revision > revision
    # The same list again changes nothing.
    assert state.resync_pods([a, b2, d]) == []


def test_resync_nodes_and_queries() -> None:
    state = ClusterState()
    n1 = {"metadata": {"name": "n1", "uid": "n1", "resourceVersion": "1"}, "status": {}}
    n2 = {"metadata": {"name": "n2", "uid": "n2", "resourceVersion": "1"}, "status": {}}
    # A node without a Ready condition is reported NotReady at first sight.
    assert [e.kind for e in state.update_node(n1)] == ["node-notready"]
    state.update_node(n2)
    events = state.resync_nodes([n1])
    assert [e.kind for e in events] == ["node-deleted"]
    assert set(state.nodes) == {"n1"}
    state.update_pod(pod("a", uid="ua", rv="1"))
    assert [p.name for p in state.pods_on_node("n1")] == ["a"]
    assert state.pod("web", "a") is not None and state.pod("web", "zz") is None


def _listed(n: int, rv: str = "1") -> list[dict[str, Any]]:
    return [pod(f"p{i:03d}", uid=f"u{i}", rv=rv) for i in range(n)]


def test_pages_are_applied_as_they_arrive() -> None:
    state = ClusterState()
    assert state.pods_loading == 0  # nothing listed yet
    state.begin_pod_list()
    seen = []
    objs = _listed(25)
    for start in range(0, 25, 10):
        revision = state.revision
        state.apply_pod_page(objs[start : start + 10])
        seen.append((len(state.pods), state.pods_loading))
        assert state.revision > revision  # a reader redraws the growing list
    assert seen == [(10, 10), (20, 20), (25, 25)]
    assert not state.pods_complete
    assert state.end_pod_list() == []
    assert state.pods_loading is None and state.pods_complete
    assert len(state.pods) == 25


def test_paged_relist_equals_the_list_in_one_piece() -> None:
    def first_state() -> ClusterState:
        state = ClusterState()
        state.resync_pods(_listed(30))
        return state

    later = _listed(30, rv="9")
    del later[7]  # gone while away
    privileged = pod("new", uid="un", rv="10")
    privileged["spec"]["containers"][0]["securityContext"] = {"privileged": True}
    later.append(privileged)

    whole = first_state()
    whole_events = whole.resync_pods(later)
    paged = first_state()
    paged.begin_pod_list()
    paged_events = []
    for start in range(0, len(later), 4):
        paged_events += paged.apply_pod_page(later[start : start + 4])
    # Until the list ends, a pod it has not named yet is not taken for gone.
    assert ("web", "p007") in paged.pods
    paged_events += paged.end_pod_list()
    assert [(e.kind, e.ref) for e in paged_events] == [(e.kind, e.ref) for e in whole_events]
    assert {k: p.resource_version for k, p in paged.pods.items()} == {
        k: p.resource_version for k, p in whole.pods.items()
    }
    assert ("web", "p007") not in paged.pods


def test_a_list_started_again_midway_forgets_the_first_attempt() -> None:
    """A continue token expired (410) or the connection was lost mid-list: the list
    starts over at a newer snapshot; what the first attempt applied and the new one
    does not name is gone at its end."""
    state = ClusterState()
    state.resync_pods(_listed(10))
    state.begin_pod_list()
    state.apply_pod_page(_listed(10, rv="5")[:5])  # then the list broke
    fresh = [p for p in _listed(10, rv="6") if p["metadata"]["name"] != "p002"]
    state.begin_pod_list()
    state.apply_pod_page(fresh[:6])
    state.apply_pod_page(fresh[6:])
    events = state.end_pod_list()
    assert [(e.kind, e.ref) for e in events] == [("pod-deleted", "u2:5:deleted")]
    assert sorted(n for _, n in state.pods) == sorted(p["metadata"]["name"] for p in fresh)
    assert all(p.resource_version == "6" for p in state.pods.values())


def test_addresses_are_learnt_once() -> None:
    from ktriage.core.detect.identity import ClusterNetworks

    learnt: list[str] = []

    class Counting(ClusterNetworks):
        def learn(self, text: object) -> None:
            learnt.append(str(text))
            super().learn(text)

    state = ClusterState(Counting())
    objs = _listed(3)
    for i, obj in enumerate(objs):
        obj["status"].update(podIP=f"203.0.113.{i + 1}", hostIP="198.51.100.7")
        obj["status"]["podIPs"] = [{"ip": f"203.0.113.{i + 1}"}]
    state.resync_pods(objs)
    assert sorted(learnt) == ["198.51.100.7", "203.0.113.1", "203.0.113.2", "203.0.113.3"]
    assert state.networks is not None and state.networks.known
    assert not state.networks.outside("203.0.113.200")  # a learnt neighbour
