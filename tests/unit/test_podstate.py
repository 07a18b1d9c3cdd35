"""Pod, node and Warning-event changes → events (pure, no server)."""

from __future__ import annotations

import copy
from typing import Any

from ktriage.core.cluster import ClusterState
from ktriage.core.model import EntityKind, Severity, parse_time

T0 = "2027-01-15T10:00:00Z"
T1 = "2027-01-15T10:05:00Z"
T2 = "2027-01-15T10:06:30Z"


def pod(
    name: str = "api-7d9f",
    ns: str = "shop",
    *,
    uid: str = "uid-1",
    rv: str = "100",
    statuses: list[dict[str, Any]] | None = None,
    containers: list[dict[str, Any]] | None = None,
    phase: str = "Running",
    **spec: Any,
) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "namespace": ns,
            "name": name,
            "uid": uid,
            "resourceVersion": rv,
            "creationTimestamp": T0,
            "labels": {"app": "api"},
            "ownerReferences": [
                {"kind": "ReplicaSet", "name": "api-7d9f", "controller": True, "uid": "rs"}
            ],
        },
        "spec": {
            "nodeName": "node-1",
            "serviceAccountName": "api",
            "containers": containers or [{"name": "app", "image": "shop/api:1.4"}],
            **spec,
        },
        "status": {
            "phase": phase,
            "startTime": T0,
            "containerStatuses": statuses
            if statuses is not None
            else [running("app", restarts=0, started=T0)],
        },
    }


def running(name: str, *, restarts: int = 0, started: str = T0, last: dict | None = None) -> dict:
    st: dict[str, Any] = {
        "name": name,
        "image": "shop/api:1.4",
        "ready": True,
        "restartCount": restarts,
        "state": {"running": {"startedAt": started}},
    }
    if last:
        st["lastState"] = {"terminated": last}
    return st


def waiting(name: str, reason: str, *, restarts: int = 0, last: dict | None = None) -> dict:
    st: dict[str, Any] = {
        "name": name,
        "image": "shop/api:1.4",
        "ready": False,
        "restartCount": restarts,
        "state": {"waiting": {"reason": reason, "message": "back-off 40s"}},
    }
    if last:
        st["lastState"] = {"terminated": last}
    return st


def terminated(reason: str, code: int, started: str = T0, finished: str = T1) -> dict:
    return {"reason": reason, "exitCode": code, "startedAt": started, "finishedAt": finished}


def kinds(events) -> list[str]:  # type: ignore[no-untyped-def]
    return [e.kind for e in events]


def test_plain_new_pod_yields_nothing() -> None:
    state = ClusterState()
    assert state.update_pod(pod()) == []
    info = state.pods[("shop", "api-7d9f")]
    assert info.ready == "1/1" and info.owner == "ReplicaSet/api-7d9f"
    assert info.status_reason == "Running" and not info.risky


def test_oomkilled_then_crashloop_reported_once_each() -> None:
    state = ClusterState()
    state.update_pod(pod())
    # The container is killed: state terminated OOMKilled.
    oom = pod(
        rv="101",
        statuses=[
            {
                "name": "app",
                "image": "shop/api:1.4",
                "ready": False,
                "restartCount": 0,
                "state": {"terminated": terminated("OOMKilled", 137)},
            }
        ],
    )
    events = state.update_pod(oom)
    assert kinds(events) == ["oomkilled"]
    ev = events[0]
    assert ev.source == "kube" and ev.ref == "uid-1:101:oomkilled:app"
    assert ev.severity == Severity.MEDIUM and ev.signal
    assert ev.time == parse_time(T1)  # the termination's finishedAt, not the clock
    assert ev.first(EntityKind.POD).name == "api-7d9f"
    assert state.pods[("shop", "api-7d9f")].status_reason == "OOMKilled"

    # The kubelet restarts it and it goes into back-off: the same termination is now
    # lastState, which must not be reported again; the crash loop is new.
    loop = pod(
        rv="102",
        statuses=[
            waiting("app", "CrashLoopBackOff", restarts=1, last=terminated("OOMKilled", 137))
        ],
    )
    events = state.update_pod(loop)
    assert kinds(events) == ["crashloop"]
    assert events[0].ref == "uid-1:102:crashloop:app"
    assert events[0].time == parse_time(T1)
    assert "restarts 1" in events[0].summary and "OOMKilled" in events[0].summary

    # Still in back-off, a later resourceVersion: nothing new.
    again = copy.deepcopy(loop)
    again["metadata"]["resourceVersion"] = "103"
    assert state.update_pod(again) == []
    # The same version delivered twice (watch replay): nothing at all.
    assert state.update_pod(loop) == []


def test_new_oom_in_last_state_after_restart() -> None:
    state = ClusterState()
    state.update_pod(pod(statuses=[running("app", restarts=2, started=T0)]))
    events = state.update_pod(
        pod(
            rv="200",
            statuses=[running("app", restarts=3, started=T2, last=terminated("OOMKilled", 137))],
        )
    )
    # The OOM kill explains the restart: one event, not two.
    assert kinds(events) == ["oomkilled"]
    assert events[0].ref == "uid-1:200:oomkilled:app:last"


def test_restart_jump_and_abnormal_exit() -> None:
    state = ClusterState()
    state.update_pod(pod(statuses=[running("app", restarts=0)]))
    events = state.update_pod(
        pod(rv="150", statuses=[running("app", restarts=3, started=T2, last=None)])
    )
    assert kinds(events) == ["restart"]
    assert events[0].severity == Severity.LOW and not events[0].signal
    assert "0 → 3" in events[0].summary
    assert events[0].time == parse_time(T2)

    events = state.update_pod(
        pod(
            rv="151",
            statuses=[running("app", restarts=4, started=T2, last=terminated("Error", 2, T1, T2))],
        )
    )
    assert kinds(events) == ["container-exit"]
    assert "Error, exit code 2" in events[0].summary and not events[0].signal


def test_completed_init_container_is_not_abnormal() -> None:
    state = ClusterState()
    obj = pod(initContainers=[{"name": "migrate", "image": "shop/migrate:1"}])
    obj["status"]["initContainerStatuses"] = [
        {
            "name": "migrate",
            "image": "shop/migrate:1",
            "ready": False,
            "restartCount": 0,
            "state": {"terminated": terminated("Completed", 0)},
        }
    ]
    assert state.update_pod(obj) == []
    assert state.pods[("shop", "api-7d9f")].containers == ("migrate", "app")


def test_image_pull_failure_once_across_backoff_flips() -> None:
    state = ClusterState()
    e1 = state.update_pod(pod(statuses=[waiting("app", "ErrImagePull")], phase="Pending"))
    assert kinds(e1) == ["imagepull"] and e1[0].severity == Severity.LOW and e1[0].signal
    e2 = state.update_pod(
        pod(rv="101", statuses=[waiting("app", "ImagePullBackOff")], phase="Pending")
    )
    assert e2 == []
    assert state.pods[("shop", "api-7d9f")].status_reason == "ImagePullBackOff"


def test_evicted_and_unschedulable() -> None:
    state = ClusterState()
    state.update_pod(pod())
    evicted = pod(rv="300", phase="Failed", statuses=[])
    evicted["status"].update(
        {
            "reason": "Evicted",
            "message": "The node was low on resource: memory.",
            "conditions": [{"type": "Ready", "status": "False", "lastTransitionTime": T2}],
        }
    )
    events = state.update_pod(evicted)
    assert kinds(events) == ["evicted"]
    assert events[0].time == parse_time(T2) and "low on resource" in events[0].summary

    pending = pod("batch-1", uid="uid-2", phase="Pending", statuses=[])
    pending["spec"].pop("nodeName")
    pending["status"]["conditions"] = [
        {
            "type": "PodScheduled",
            "status": "False",
            "reason": "Unschedulable",
            "message": "0/3 nodes are available: 3 Insufficient cpu.",
            "lastTransitionTime": T1,
        }
    ]
    events = state.update_pod(pending)
    assert kinds(events) == ["unschedulable"]
    assert not events[0].signal and events[0].time == parse_time(T1)
    assert "Insufficient cpu" in events[0].summary


def test_new_privileged_hostpath_pod_is_a_high_signal() -> None:
    state = ClusterState()
    obj = pod(
        "node-debugger",
        "default",
        uid="uid-x",
        containers=[{"name": "shell", "image": "alpine", "securityContext": {"privileged": True}}],
        volumes=[{"name": "host", "hostPath": {"path": "/"}}],
        hostPID=True,
    )
    obj["metadata"].pop("ownerReferences")
    obj["spec"]["serviceAccountName"] = "builder"
    events = state.update_pod(obj)
    assert kinds(events) == ["privileged-pod"]
    ev = events[0]
    assert ev.severity == Severity.HIGH and ev.signal
    assert ev.attack is not None and ev.attack.technique == "T1611"
    assert ev.time == parse_time(T0)  # creation time
    assert "hostPath /" in ev.summary and "host PID namespace" in ev.summary
    assert any(e.kind == EntityKind.SERVICE_ACCOUNT and e.name == "builder" for e in ev.entities)
    info = state.pods[("default", "node-debugger")]
    assert info.privileged and info.host_path and info.host_pid and not info.host_network
    # Changes to the same pod do not report it again.
    obj["metadata"]["resourceVersion"] = "101"
    assert state.update_pod(obj) == []


def test_host_network_daemonset_in_kube_system_is_context() -> None:
    state = ClusterState()
    obj = pod("kube-proxy-abc", "kube-system", uid="uid-kp", hostNetwork=True)
    obj["metadata"]["ownerReferences"] = [
        {"kind": "DaemonSet", "name": "kube-proxy", "controller": True, "uid": "ds"}
    ]
    events = state.update_pod(obj)
    assert kinds(events) == ["host-namespace-pod"]
    assert not events[0].signal and events[0].severity == Severity.INFO


def test_pod_deleted_and_uid_reuse() -> None:
    state = ClusterState()
    state.update_pod(pod())
    final = pod(rv="400")
    final["metadata"]["deletionTimestamp"] = "2027-01-15T10:07:00Z"
    final["metadata"]["deletionGracePeriodSeconds"] = 30
    events = state.delete_pod(final)
    assert kinds(events) == ["pod-deleted"]
    assert events[0].ref == "uid-1:400:deleted" and events[0].severity == Severity.INFO
    assert events[0].time == parse_time("2027-01-15T10:06:30Z")
    assert ("shop", "api-7d9f") not in state.pods
    # A late DELETED for a pod we no longer have is ignored.
    assert state.delete_pod(final) == []

    # Same name, new uid, without having seen the deletion: the old one is reported gone.
    state.update_pod(pod())
    events = state.update_pod(pod(uid="uid-2", rv="500"))
    assert kinds(events) == ["pod-deleted"]
    assert state.pods[("shop", "api-7d9f")].uid == "uid-2"


def node(
    name: str = "node-1",
    *,
    rv: str = "10",
    ready: str = "True",
    unschedulable: bool = False,
    since: str = T0,
) -> dict[str, Any]:
    spec: dict[str, Any] = {}
    if unschedulable:
        spec["unschedulable"] = True
        spec["taints"] = [
            {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule", "timeAdded": T2}
        ]
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "uid": f"uid-{name}",
            "resourceVersion": rv,
            "creationTimestamp": T0,
            "labels": {"node-role.kubernetes.io/worker": ""},
        },
        "spec": spec,
        "status": {
            "conditions": [
                {
                    "type": "Ready",
                    "status": ready,
                    "reason": "KubeletReady" if ready == "True" else "NodeStatusUnknown",
                    "message": "Kubelet stopped posting node status."
                    if ready != "True"
                    else "kubelet is posting ready status",
                    "lastTransitionTime": since,
                }
            ],
            "nodeInfo": {"kubeletVersion": "v1.37.0"},
        },
    }


def test_node_notready_cordon_and_back() -> None:
    state = ClusterState()
    assert state.update_node(node()) == []
    info = state.nodes["node-1"]
    assert info.ready and info.roles == ("worker",) and info.version == "v1.37.0"

    events = state.update_node(node(rv="11", ready="Unknown", since=T1))
    assert kinds(events) == ["node-notready"]
    assert events[0].severity == Severity.LOW and events[0].signal
    assert events[0].time == parse_time(T1) and "Kubelet stopped" in events[0].summary

    events = state.update_node(node(rv="12", ready="Unknown", since=T1, unschedulable=True))
    assert kinds(events) == ["node-cordoned"]
    assert not events[0].signal and events[0].time == parse_time(T2)

    events = state.update_node(node(rv="13", ready="True", since=T2))
    assert sorted(kinds(events)) == ["node-ready", "node-uncordoned"]


def core_event(
    reason: str,
    message: str,
    *,
    kind: str = "Pod",
    uid: str = "ev-1",
    rv: str = "900",
    count: int = 1,
    etype: str = "Warning",
) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {
            "namespace": "shop",
            "name": "api-7d9f.17a",
            "uid": uid,
            "resourceVersion": rv,
            "creationTimestamp": T0,
        },
        "involvedObject": {"kind": kind, "namespace": "shop", "name": "api-7d9f"},
        "reason": reason,
        "message": message,
        "type": etype,
        "count": count,
        "firstTimestamp": T0,
        "lastTimestamp": T1 if count == 1 else T2,
        "source": {"component": "kubelet", "host": "node-1"},
    }


def test_warning_events() -> None:
    state = ClusterState()
    assert state.update_event(core_event("Pulled", "ok", etype="Normal", uid="ev-0")) == []
    events = state.update_event(
        core_event("BackOff", "Back-off restarting failed container app in pod api-7d9f")
    )
    assert kinds(events) == ["crashloop"] and events[0].signal
    assert events[0].ref == "ev-1:900" and events[0].time == parse_time(T1)
    # The same event object updated without a new occurrence: nothing.
    assert state.update_event(core_event("BackOff", "Back-off", rv="901")) == []
    # It happened again (count 2): reported once more, at its lastTimestamp.
    events = state.update_event(core_event("BackOff", "Back-off restarting", rv="902", count=2))
    assert len(events) == 1 and events[0].time == parse_time(T2) and "(x2)" in events[0].summary

    other = state.update_event(
        core_event("FailedMount", "MountVolume.SetUp failed", uid="ev-2", rv="903")
    )
    assert kinds(other) == ["k8s-warning"]
    assert not other[0].signal and other[0].severity == Severity.LOW

    # events.k8s.io/v1 shape.
    new_style = {
        "apiVersion": "events.k8s.io/v1",
        "kind": "Event",
        "metadata": {"namespace": "shop", "name": "x", "uid": "ev-3", "resourceVersion": "904"},
        "regarding": {"kind": "Pod", "namespace": "shop", "name": "api-7d9f"},
        "reason": "Failed",
        "note": 'Failed to pull image "shop/api:9": not found',
        "type": "Warning",
        "eventTime": "2027-01-15T10:02:00.123456Z",
        "reportingController": "kubelet",
    }
    events = state.update_event(new_style)
    assert kinds(events) == ["imagepull"]
    assert events[0].time == parse_time("2027-01-15T10:02:00.123456Z")
    assert events[0].first(EntityKind.POD).name == "api-7d9f"


def test_node_warning_is_context_and_names_no_namespace() -> None:
    state = ClusterState()
    obj = core_event(
        "OOMKilling",
        "Memory cgroup out of memory: Killed process 31877 (xmrig)",
        kind="Node",
        uid="ev-node",
    )
    obj["involvedObject"] = {"kind": "Node", "name": "worker-1", "namespace": "default"}
    events = state.update_event(obj)
    assert kinds(events) == ["oomkilled"]
    ev = events[0]
    # A kernel OOM kill on a node names no pod: context, not a signal of its own.
    assert not ev.signal and ev.severity == Severity.LOW
    assert "Node worker-1" in ev.summary and "default/" not in ev.summary
    assert [e.kind for e in ev.entities] == [EntityKind.NODE]


def test_grace_zero_delete_is_dated_by_arrival_not_the_objects_last_change() -> None:
    # A grace-0 delete's final object has no deletionTimestamp; its newest inner time
    # (here the container's start) is long before the delete.
    state = ClusterState()
    state.update_pod(pod())
    final = pod(rv="401")
    assert "deletionTimestamp" not in final["metadata"]
    arrived = parse_time("2027-01-15T10:40:00Z")
    events = state.delete_pod(final, seen_at=arrived)
    assert kinds(events) == ["pod-deleted"] and events[0].time == arrived

    # A deletionTimestamp still wins over arrival (a watch can deliver late).
    state.update_pod(pod())
    final = pod(rv="402")
    final["metadata"]["deletionTimestamp"] = "2027-01-15T10:07:00Z"
    events = state.delete_pod(final, seen_at=arrived)
    assert events[0].time == parse_time("2027-01-15T10:07:00Z")

    # A replay without arrival time falls back to the newest time in the object.
    state.update_pod(pod())
    events = state.delete_pod(pod(rv="403"))
    assert events[0].time is not None and events[0].time < arrived


def test_node_delete_is_dated_by_arrival() -> None:
    state = ClusterState()
    state.update_node(node())
    arrived = parse_time("2027-01-15T11:00:00Z")
    events = state.delete_node(node(rv="11"), seen_at=arrived)
    assert kinds(events) == ["node-deleted"] and events[0].time == arrived
