"""The read-only reader behind `:` views, `d` describe and `L` logs, with the official
client against the simulated cluster: rows as kubectl shows them, failures in words
(403, 401, 404, a server that does not answer), log streams that end or are closed."""

from __future__ import annotations

import time
from typing import Any

import pytest
from waiting import wait_for

from ktriage.kubeclient import client_from_kubeconfig
from ktriage.resourceread import KINDS, LogFollower, ResourceReader, resolve

pytestmark = pytest.mark.sim


def reader(cluster: Any, context: str = "sim-admin", **kwargs: Any) -> ResourceReader:
    return ResourceReader(
        lambda: client_from_kubeconfig(str(cluster.kubeconfig_path), context), **kwargs
    )


def test_every_view_lists_with_the_official_client(sim_cluster: Any) -> None:
    r = reader(sim_cluster)
    pods = r.list(resolve("pods"))
    assert pods.problems == []
    web = next(row for row in pods.rows if row.name == "web-1")
    # READY, STATUS, RESTARTS and NODE as `kubectl get pods` shows them.
    assert web.cells[:5] == ("shop", "web-1", "2/2", "Running", "1")
    assert web.cells[6] == "worker-1"
    nodes = r.list(resolve("no"))
    assert sorted(row.name for row in nodes.rows) == ["worker-1", "worker-2"]
    assert all(row.cells[1] == "Ready" for row in nodes.rows)
    events = r.list(resolve("ev"))
    assert any(row.cells[3] == "BackOff" and row.cells[4] == "pod/web-1" for row in events.rows)
    rbac = r.list(resolve("rbac"))
    assert {row.kind for row in rbac.rows} >= {"ClusterRole", "ClusterRoleBinding"}
    for name in ("sa", "netpol"):
        assert r.list(resolve(name)).problems == []
    r.close()


def test_forbidden_identity_gets_a_403_line_per_kind(sim_cluster: Any) -> None:
    listing = reader(sim_cluster, "sim-intruder").list(resolve("rbac"))
    assert listing.rows == []
    assert len(listing.problems) == 4  # every kind tried, each said
    assert all(p.startswith("forbidden (403) to list ") for p in listing.problems)
    assert any("clusterroles" in p for p in listing.problems)


def test_rejected_credentials_are_a_401_in_words(sim_cluster: Any) -> None:
    sim_cluster.faults.expire_token("viewer")
    listing = reader(sim_cluster, "sim-readonly").list(resolve("pods"))
    assert listing.problems and "credentials rejected (401)" in listing.problems[0]


def test_a_server_that_does_not_answer_is_a_timeout_not_a_hang(sim_cluster: Any) -> None:
    r = reader(sim_cluster, timeout=1.5)
    r.list(resolve("nodes"))  # connected first: the hang is in the answer
    sim_cluster.faults.hang(True)
    try:
        started = time.monotonic()
        listing = r.list(resolve("pods"))
        assert time.monotonic() - started < 10
        assert listing.problems and "timed out" in listing.problems[0]
    finally:
        sim_cluster.faults.hang(False)


def test_describe_is_redacted_and_has_the_events(sim_cluster: Any) -> None:
    desc = reader(sim_cluster).describe("Pod", "shop", "web-1")
    assert desc.problems == []
    assert "name: web-1" in desc.yaml and "managedFields" not in desc.yaml
    assert any(row.cells[3] == "BackOff" for row in desc.events)
    assert [(s.container, s.previous) for s in desc.containers] == [
        ("web", False),
        ("web", True),
        ("sidecar", False),
    ]


def test_describe_of_a_pod_that_is_gone_says_404(sim_cluster: Any) -> None:
    desc = reader(sim_cluster).describe("Pod", "shop", "no-such-pod")
    assert desc.yaml == ""
    assert desc.problems[0].startswith("not found (404): get pods shop/no-such-pod")


def test_describe_every_kind_reads_one_object(sim_cluster: Any) -> None:
    r = reader(sim_cluster)
    for kind, namespace, name in (
        ("Node", "", "worker-1"),
        ("ClusterRole", "", "cluster-admin"),
        ("ServiceAccount", "shop", "default"),
    ):
        desc = r.describe(kind, namespace, name)
        assert desc.problems == [], (kind, desc.problems)
        assert f"kind: {kind}" in desc.yaml
    assert set(KINDS) >= {"Pod", "Node", "Event", "NetworkPolicy", "ServiceAccount"}


async def test_log_follower_reads_follows_and_closes_on_stop(sim_cluster: Any) -> None:
    follower = LogFollower(reader(sim_cluster), "shop", "web-1", "web").start()
    lines: list[str] = []

    def got(text: str) -> bool:
        lines.extend(follower.take()[0])
        return any(text in line for line in lines)

    await wait_for(lambda: got("GET /cart 200 line 3"), timeout=10)
    sim_cluster.store.append_log("shop", "web-1", "web", "new line while following")
    await wait_for(lambda: got("new line while following"), timeout=10)
    follower.stop()
    follower.thread.join(5)
    assert not follower.thread.is_alive()
    assert follower.ended == "closed"


def test_log_stream_that_ends_says_why(sim_cluster: Any) -> None:
    follower = LogFollower(reader(sim_cluster), "shop", "web-1", "web").start()
    assert follower.opened.wait(10)
    sim_cluster.store.restart_container("shop", "web-1", "web")
    follower.thread.join(10)
    assert follower.ended is not None and "log stream ended" in follower.ended


def test_previous_log_and_forbidden_and_gone_pods(sim_cluster: Any) -> None:
    previous = LogFollower(reader(sim_cluster), "shop", "web-1", "web", previous=True).start()
    previous.thread.join(10)
    assert previous.ended == "the log ended"
    assert "previous run line 5" in previous.take()[0]
    forbidden = LogFollower(reader(sim_cluster, "sim-intruder"), "shop", "web-1", "web").start()
    forbidden.thread.join(10)
    assert forbidden.ended is not None and forbidden.ended.startswith("forbidden (403)")
    gone = LogFollower(reader(sim_cluster), "shop", "gone-1", "web").start()
    gone.thread.join(10)
    assert gone.ended is not None and gone.ended.startswith("not found (404)")


async def test_hostile_log_flood_is_bounded_before_the_ui_takes_it(sim_cluster: Any) -> None:
    follower = LogFollower(reader(sim_cluster), "shop", "api-1", "api", capacity=100).start()
    assert follower.opened.wait(10)
    for i in range(5_000):
        sim_cluster.store.append_log("shop", "api-1", "api", f"flood {i}")
    kept: list[str] = []
    dropped = 0

    def done() -> bool:
        nonlocal dropped
        lines, lost, _ = follower.take()
        kept.extend(lines)
        dropped += lost
        return "flood 4999" in kept

    await wait_for(done, timeout=30)
    follower.stop()
    # Never more than `capacity` waiting; what did not fit is counted, not lost silently.
    assert len(kept) + dropped == 5_001
