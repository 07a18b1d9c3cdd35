"""Pods as kubelet runs them: created Pending with their containers being created, then
Running with an IP from their node's pod range; containers that exit do so by their
restart policy; `kubectl debug` starts an ephemeral container, or reports why not
(an image that cannot be pulled; a pod that has finished runs nothing more)."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest
from conformance_support import Kubectl, Target
from workload_support import ensure_nodes, wait_until

PAUSE = "registry.k8s.io/pause:3.9"


@pytest.fixture
def core(api: Any, target: Target) -> Any:
    from kubernetes import client

    ensure_nodes(target)
    return client.CoreV1Api(api)


def _pod(name: str, *, command: list[str] | None = None, restart: str = "Always") -> dict:
    container: dict[str, Any] = {"name": "main", "image": "busybox:1.36" if command else PAUSE}
    if command:
        container["command"] = command
    return {
        "metadata": {"name": name, "labels": {"test": name}},
        "spec": {
            "restartPolicy": restart,
            "terminationGracePeriodSeconds": 1,
            "containers": [container],
        },
    }


def _running(core: Any, namespace: str, name: str) -> Any:
    def running() -> Any:
        pod = core.read_namespaced_pod(name, namespace)
        return pod.status.phase == "Running" and pod.status.pod_ip and pod

    return wait_until(running, f"pod {name} Running with an IP")


def test_a_new_pod_starts_pending_then_runs(core: Any, namespace: str) -> None:
    made = core.create_namespaced_pod(namespace, _pod("starter"))
    # The create answer is what the API stored: nothing has run yet.
    assert made.status.phase == "Pending"
    states = [cs.state.waiting for cs in made.status.container_statuses or []]
    assert all(s is None or s.reason == "ContainerCreating" for s in states)
    pod = _running(core, namespace, "starter")
    (cs,) = pod.status.container_statuses
    assert cs.ready and cs.started and cs.state.running is not None
    assert cs.container_id
    ready = {c.type: c.status for c in pod.status.conditions}
    assert ready["Ready"] == "True" and ready["PodScheduled"] == "True"


def test_a_pod_ip_is_inside_its_nodes_pod_range(core: Any, namespace: str) -> None:
    core.create_namespaced_pod(namespace, _pod("addressed"))
    pod = _running(core, namespace, "addressed")
    node = core.read_node(pod.spec.node_name)
    ranges = [ipaddress.ip_network(c) for c in (node.spec.pod_cidrs or [node.spec.pod_cidr])]
    assert any(ipaddress.ip_address(pod.status.pod_ip) in r for r in ranges), (
        pod.status.pod_ip,
        ranges,
    )


def test_a_container_that_exits_is_restarted_by_policy(core: Any, namespace: str) -> None:
    core.create_namespaced_pod(
        namespace, _pod("done", command=["sh", "-c", "echo done; exit 0"], restart="Never")
    )
    core.create_namespaced_pod(
        namespace, _pod("crashing", command=["sh", "-c", "exit 3"], restart="Always")
    )

    def phase(name: str) -> str:
        return core.read_namespaced_pod(name, namespace).status.phase

    wait_until(lambda: phase("done") == "Succeeded", "the Never pod to succeed")
    (cs,) = core.read_namespaced_pod("done", namespace).status.container_statuses
    assert cs.state.terminated.exit_code == 0
    assert cs.state.terminated.reason == "Completed"
    assert cs.restart_count == 0

    def restarted() -> Any:
        (c,) = core.read_namespaced_pod("crashing", namespace).status.container_statuses
        return c.restart_count >= 1 and c

    cs = wait_until(restarted, "the Always pod's container to restart", timeout=60)
    assert cs.last_state.terminated.exit_code == 3
    assert cs.last_state.terminated.reason == "Error"
    assert phase("crashing") == "Running"


def test_kubectl_debug_starts_an_ephemeral_container(
    core: Any, kubectl: Kubectl, namespace: str
) -> None:
    core.create_namespaced_pod(namespace, _pod("target"))
    _running(core, namespace, "target")
    result = kubectl(
        "debug",
        "target",
        "-n",
        namespace,
        "--image=busybox:1.36",
        "-c",
        "debugger",
        "--target=main",
        "--",
        "sleep",
        "3600",
    )
    assert result.returncode == 0, result.stderr

    def started() -> Any:
        pod = core.read_namespaced_pod("target", namespace)
        statuses = pod.status.ephemeral_container_statuses or []
        return next((s for s in statuses if s.name == "debugger" and s.state.running), None)

    status = wait_until(started, "the ephemeral container running")
    assert status.image.endswith("busybox:1.36")
    pod = core.read_namespaced_pod("target", namespace)
    (ephemeral,) = pod.spec.ephemeral_containers
    assert ephemeral.target_container_name == "main"


# A host under `.invalid` never resolves (RFC 2606): the pull fails on any cluster.
UNPULLABLE = "registry.invalid/ktriage/nothing:1"


def _waiting(statuses: Any, name: str) -> Any:
    cs = next((s for s in statuses or [] if s.name == name), None)
    return cs.state.waiting if cs is not None and cs.state.waiting else None


def test_an_unpullable_image_backs_off_and_the_pod_stays_pending(
    core: Any, kubectl: Kubectl, namespace: str
) -> None:
    pod = _pod("unpullable")
    pod["spec"]["containers"][0]["image"] = UNPULLABLE
    core.create_namespaced_pod(namespace, pod)

    def backing_off() -> Any:
        read = core.read_namespaced_pod("unpullable", namespace)
        waiting = _waiting(read.status.container_statuses, "main")
        return waiting is not None and waiting.reason == "ImagePullBackOff" and (read, waiting)

    read, waiting = wait_until(backing_off, "the container in ImagePullBackOff", timeout=90)
    assert UNPULLABLE in waiting.message
    assert read.status.phase == "Pending"
    (cs,) = read.status.container_statuses
    assert not cs.ready and not cs.started and cs.state.running is None
    ready = {c.type: c.status for c in read.status.conditions}
    assert ready["Ready"] == "False"
    listed = kubectl("get", "pod", "unpullable", "-n", namespace, "--no-headers")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.split()[2] in ("ImagePullBackOff", "ErrImagePull"), listed.stdout


def test_kubectl_debug_with_an_unpullable_image_never_starts(
    core: Any, kubectl: Kubectl, namespace: str
) -> None:
    core.create_namespaced_pod(namespace, _pod("debugged"))
    _running(core, namespace, "debugged")
    result = kubectl("debug", "debugged", "-n", namespace, f"--image={UNPULLABLE}", "-c", "broken")
    assert result.returncode == 0, result.stderr
    seen: set[str] = set()

    def backing_off() -> Any:
        read = core.read_namespaced_pod("debugged", namespace)
        waiting = _waiting(read.status.ephemeral_container_statuses, "broken")
        if waiting is not None:
            seen.add(waiting.reason)
        return waiting is not None and waiting.reason == "ImagePullBackOff" and waiting

    waiting = wait_until(backing_off, "the debug container in ImagePullBackOff", timeout=90)
    assert UNPULLABLE in waiting.message
    assert seen <= {"ErrImagePull", "ImagePullBackOff"}, seen
    read = core.read_namespaced_pod("debugged", namespace)
    (cs,) = read.status.ephemeral_container_statuses
    assert cs.state.running is None and not cs.ready
    # The pod's own container is untouched by the failed debug container.
    assert read.status.phase == "Running"


def test_kubectl_debug_on_a_finished_pod_never_starts(
    core: Any, kubectl: Kubectl, namespace: str
) -> None:
    core.create_namespaced_pod(
        namespace, _pod("finished", command=["sh", "-c", "exit 0"], restart="Never")
    )
    wait_until(
        lambda: core.read_namespaced_pod("finished", namespace).status.phase == "Succeeded",
        "the pod to finish",
    )
    core.create_namespaced_pod(namespace, _pod("witness"))
    _running(core, namespace, "witness")
    for pod, container in (("finished", "late"), ("witness", "onlooker")):
        result = kubectl(
            "debug", pod, "-n", namespace, "--image=busybox:1.36", "-c", container,
            "--", "sleep", "3600",
        )  # fmt: skip
        assert result.returncode == 0, result.stderr

    def witness_started() -> Any:
        read = core.read_namespaced_pod("witness", namespace)
        statuses = read.status.ephemeral_container_statuses or []
        return any(s.name == "onlooker" and s.state.running for s in statuses)

    # The debug container of the running pod, added after, has started: kubelet has
    # had every chance to start the finished pod's one, and must not have.
    wait_until(witness_started, "the running pod's debug container to start")
    read = core.read_namespaced_pod("finished", namespace)
    assert [c.name for c in read.spec.ephemeral_containers] == ["late"]
    statuses = read.status.ephemeral_container_statuses or []
    assert not any(s.name == "late" and s.state.running for s in statuses), statuses
    assert read.status.phase == "Succeeded"
