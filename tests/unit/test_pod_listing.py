"""A big pod list read fast: pods read off the loop (`listed_pod`) apply exactly as
the objects themselves do, the quick reading of plain IPv4 addresses agrees with the
exact one, and hostile pods (thousands of containers or labels) stay linear."""

from __future__ import annotations

import time
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_cluster_state import _listed, pod

from ktriage.core.cluster import ClusterState, _own_address, listed_pod, object_addresses, pod_info
from ktriage.core.detect.identity import ClusterNetworks
from ktriage.core.parse.podfacts import own_address


@pytest.mark.parametrize(
    "text",
    [
        "10.244.1.7",
        "0.0.0.0",
        "0.1.2.3",
        "127.0.0.1",
        "127.255.255.254",
        "169.254.3.4",
        "169.253.3.4",
        "224.0.0.1",
        "239.255.255.255",
        "240.0.0.1",
        "255.255.255.255",
        "01.2.3.4",  # a leading zero: not an address to ipaddress
        "1.2.3.256",
        "1.2.3",
        "1.2.3.4\n",
        " 1.2.3.4",
        "١.٢.٣.٤",  # Arabic-Indic digits
        "::1",
        "fe80::1",
        "2001:db8::7",
        "::ffff:10.0.0.1",
        "",
        "garbage",
        None,
        7,
    ],
)
def test_quick_own_address_agrees_with_the_exact_one(text: Any) -> None:
    assert _own_address(text) == own_address(text)


@given(st.lists(st.integers(0, 300), min_size=4, max_size=4))
def test_quick_own_address_agrees_on_any_dotted_quad(parts: list[int]) -> None:
    text = ".".join(map(str, parts))
    assert _own_address(text) == own_address(text)


def _public_page(n: int) -> list[dict[str, Any]]:
    objs = _listed(n)
    for i, obj in enumerate(objs):
        public = i % 3 == 0
        ip = f"203.0.{i // 250}.{i % 250 + 1}" if public else f"10.9.{i // 250}.{i % 250 + 1}"
        obj["status"].update(podIP=ip, hostIP=f"198.51.100.{i % 4 + 1}")
        obj["status"]["podIPs"] = [{"ip": ip}]
    return objs


def test_listed_pods_apply_as_the_objects_do() -> None:
    objs = _public_page(60)
    by_object, by_listing = ClusterState(ClusterNetworks()), ClusterState(ClusterNetworks())
    events_a = by_object.resync_pods(objs)
    by_listing.begin_pod_list()
    events_b = by_listing.apply_pod_page([listed_pod(o) for o in objs]) + by_listing.end_pod_list()
    assert by_object.pods == by_listing.pods
    assert [(e.kind, e.ref) for e in events_a] == [(e.kind, e.ref) for e in events_b]
    facts_a, facts_b = by_object.take_facts(), by_listing.take_facts()
    assert facts_a and [e.ref for e in facts_a] == [e.ref for e in facts_b]
    a, b = by_object.networks, by_listing.networks
    assert a is not None and b is not None and a.known and b.known
    probes = ["203.0.0.200", "203.0.1.9", "198.51.100.200", "8.8.8.8", "10.9.0.1"]
    assert [a.outside(p) for p in probes] == [b.outside(p) for p in probes]
    assert not b.outside("203.0.0.200") and b.outside("8.8.8.8")


def test_listed_pod_reads_private_addresses_only_until_something_is_known() -> None:
    learnt: list[str] = []

    class Counting(ClusterNetworks):
        def learn(self, text: object) -> None:
            learnt.append(str(text))
            super().learn(text)

    state = ClusterState(Counting())
    objs = _public_page(9)  # pods 0, 3 and 6 have public addresses
    state.begin_pod_list()
    state.apply_pod_page([listed_pod(o) for o in objs])
    public = {f"203.0.0.{i + 1}" for i in (0, 3, 6)} | {f"198.51.100.{i}" for i in (1, 2, 3, 4)}
    # The first address tells it something is known; after that only the public ones.
    assert learnt[0] == "203.0.0.1" and set(learnt) == public
    assert state.networks is not None and state.networks.known


def test_object_addresses_read_what_learn_object_reads() -> None:
    obj = pod("a", uid="u", rv="1")
    obj["status"].update(
        podIP="10.1.1.1",
        hostIP=5,
        podIPs=[{"ip": "10.1.1.1"}, "x", {"ip": None}],
        addresses=[
            {"type": "InternalIP", "address": "10.0.0.2"},
            {"type": "Hostname", "address": "node-a"},
        ],
    )
    assert object_addresses(obj) == ["10.1.1.1", "10.1.1.1", "10.0.0.2"]
    assert object_addresses({"status": "nope"}) == []


def test_hostile_pod_with_30000_containers_is_read_in_linear_time() -> None:
    obj = pod("wide", uid="u", rv="1")
    containers = [{"name": f"c{i}", "image": f"registry.example/img-{i}:1"} for i in range(30_000)]
    obj["spec"]["containers"] = containers
    obj["metadata"]["labels"] = {f"label-{i}": "v" * 63 for i in range(30_000)}
    started = time.process_time()
    info = pod_info(obj)
    took = time.process_time() - started
    assert len(info.images) == 30_000 and info.images[:2] == (
        "registry.example/img-0:1",
        "registry.example/img-1:1",
    )
    assert len(info.containers) == 30_000 and len(info.labels) == 30_000
    # Each image tested against the ones before it was 450 million comparisons (seconds).
    assert took < 1.5, f"{took:.2f} s for one pod"


def test_images_keep_their_first_order_once_each() -> None:
    obj = pod("dup", uid="u", rv="1")
    obj["spec"]["initContainers"] = [{"name": "i", "image": "b:1"}]
    obj["spec"]["containers"] = [
        {"name": "x", "image": "a:1"},
        {"name": "y", "image": "b:1"},
        {"name": "z", "image": ""},
        {"name": "w", "image": "a:1"},
    ]
    assert pod_info(obj).images == ("b:1", "a:1")


def _latest_time_as_before(obj: dict[str, Any]) -> float | None:
    """latest_time as it read every value one by one (the reference)."""
    from ktriage.core.timeparse import object_time

    def d(v: Any) -> dict[str, Any]:
        return v if isinstance(v, dict) else {}

    def lst(v: Any) -> list[Any]:
        return v if isinstance(v, list) else []

    best: float | None = None

    def see(value: Any) -> None:
        nonlocal best
        t = object_time(value)
        if t is not None and (best is None or t > best):
            best = t

    meta = d(obj.get("metadata"))
    for mf in lst(meta.get("managedFields")):
        see(d(mf).get("time"))
    status = d(obj.get("status"))
    see(status.get("startTime"))
    for cond in lst(status.get("conditions")):
        see(d(cond).get("lastTransitionTime"))
        see(d(cond).get("lastProbeTime"))
    for key in ("containerStatuses", "initContainerStatuses", "ephemeralContainerStatuses"):
        for cs in lst(status.get(key)):
            for state_key in ("state", "lastState"):
                for one in d(d(cs).get(state_key)).values():
                    see(d(one).get("startedAt"))
                    see(d(one).get("finishedAt"))
    if best is None:
        see(meta.get("creationTimestamp"))
    return best


_TIMES = st.one_of(
    st.none(),
    st.sampled_from(
        [
            "2027-03-01T08:00:00Z",
            "2027-03-01T08:00:00.5Z",
            "2027-03-01T09:00:00+02:00",
            "2026-12-31T23:59:59Z",
            "not a time",
            "",
        ]
    ),
    st.integers(-5, 2_000_000_000_000),
    st.just({"x": 1}),
    st.just([1]),
    st.booleans(),
)


@given(
    st.lists(_TIMES, max_size=4),
    st.lists(st.tuples(_TIMES, _TIMES), max_size=3),
    st.lists(st.tuples(_TIMES, _TIMES, _TIMES), max_size=3),
    _TIMES,
    _TIMES,
)
def test_latest_time_reads_as_it_did(
    managed: list[Any],
    conditions: list[tuple[Any, Any]],
    states: list[tuple[Any, Any, Any]],
    start: Any,
    created: Any,
) -> None:
    from ktriage.core.cluster import latest_time

    obj = {
        "metadata": {
            "creationTimestamp": created,
            "managedFields": [{"time": t} for t in managed] + ["junk"],
        },
        "status": {
            "startTime": start,
            "conditions": [{"lastTransitionTime": a, "lastProbeTime": b} for a, b in conditions]
            + [7],
            "containerStatuses": [
                {"state": {"running": {"startedAt": a}}, "lastState": {"terminated": {
                    "startedAt": b, "finishedAt": c}}}
                for a, b, c in states
            ]
            + [None, {"state": "odd"}],
        },
    }  # fmt: skip
    assert latest_time(obj) == _latest_time_as_before(obj)
