"""The lean decoding of a pod list page: the same PodInfo and the same raw record of
the pod detections as a full decode, and hostile pages handled like before."""

from __future__ import annotations

import time
from typing import Any

import orjson
import pytest

from ktriage.core.cluster import ClusterState, pod_info
from ktriage.core.detect.podstate import pod_raw
from ktriage.core.podlist import decode_pod_page
from ktriage.sim.bulk import _pod


def bulk_pods(n: int) -> list[dict[str, Any]]:
    rs = {
        "metadata": {"name": "web-5d8f", "uid": "rs-uid"},
        "spec": {"selector": {"matchLabels": {"app": "web", "pod-template-hash": "5d8f"}}},
    }
    now = time.time()
    return [
        _pod("shop", f"web-5d8f-{i}", rs, "node-1", "10.1.0.1", f"10.100.0.{i + 2}", now - i)
        for i in range(n)
    ]


def risky_pod() -> dict[str, Any]:
    obj = bulk_pods(1)[0]
    spec = obj["spec"]
    spec.update(hostPID=True, hostNetwork=False, serviceAccount="legacy")
    spec["containers"][0]["securityContext"] = {"privileged": True}
    spec["containers"][0]["command"] = ["/bin/sh", "-c", "sleep 1d"]
    spec["initContainers"] = [{"name": "init", "image": "busybox", "args": ["x"]}]
    spec["ephemeralContainers"] = [{"name": "debugger", "image": "busybox"}]
    spec["volumes"].append({"name": "root", "hostPath": {"path": "/", "type": "Directory"}})
    obj["metadata"]["deletionTimestamp"] = "2027-01-01T00:00:00Z"
    obj["status"]["containerStatuses"][0]["state"] = {
        "terminated": {"reason": "OOMKilled", "exitCode": 137, "finishedAt": "2027-01-01T00:00:01Z"}
    }
    return obj


def page(items: list[Any], **meta: Any) -> bytes:
    return orjson.dumps({"kind": "PodList", "metadata": meta, "items": items})


def test_lean_page_reads_the_same_as_the_full_objects() -> None:
    objs = [*bulk_pods(5), risky_pod()]
    items, rv, token = decode_pod_page(page(objs, resourceVersion="77", **{"continue": "abc"}))
    assert (rv, token) == ("77", "abc")
    assert len(items) == len(objs)
    for lean, full in zip(items, objs, strict=True):
        # Of the managed fields, only their times (the newest time the pod records).
        assert all(set(mf) == {"time"} for mf in lean["metadata"]["managedFields"])
        assert "env" not in lean["spec"]["containers"][0]
        info = pod_info(lean)
        assert info == pod_info(full)
        assert pod_raw(lean, info) == pod_raw(full, info)
    # Smaller: the managed fields, environment, probes and projected volumes are not kept.
    assert len(orjson.dumps(items)) < 0.7 * len(orjson.dumps(objs))


def test_lean_pages_give_the_same_events() -> None:
    objs = [*bulk_pods(3), risky_pod()]
    lean_state, full_state = ClusterState(), ClusterState()
    lean_events = lean_state.resync_pods(decode_pod_page(page(objs))[0])
    full_events = full_state.resync_pods(objs)
    assert [(e.kind, e.ref, e.summary, e.raw) for e in lean_events] == [
        (e.kind, e.ref, e.summary, e.raw) for e in full_events
    ]
    assert any(e.kind == "privileged-pod" for e in lean_events)


@pytest.mark.parametrize(
    "items",
    [
        [1, "two", None, {"metadata": {"name": "ok", "namespace": "x", "uid": "u"}}],
        [{"metadata": ["not", "an", "object"]}, {"metadata": {"name": "ok", "uid": "u"}}],
        [{"metadata": {"name": "ok"}, "spec": {"containers": "not a list"}}],
        [{"metadata": {"name": "ok", "managedFields": [{"time": 5}, "junk"]}}],
    ],
)
def test_hostile_page_shapes_fall_back_to_the_tolerant_decode(items: list[Any]) -> None:
    got, rv, _ = decode_pod_page(page(items, resourceVersion="9"))
    assert rv == "9"
    assert got == [i for i in items if isinstance(i, dict)]
    for obj in got:
        pod_info(obj)  # reads without failing


def test_hostile_not_json_and_not_an_object_raise_value_error() -> None:
    with pytest.raises(ValueError):
        decode_pod_page(b'{"items": [')
    with pytest.raises(ValueError):
        decode_pod_page(b"[1, 2, 3]")
    items, rv, token = decode_pod_page(b'{"items": null, "metadata": null}')
    assert (items, rv, token) == ([], None, None)


def test_hostile_deep_nesting_in_status_raises_value_error() -> None:
    deep = b'{"items": [{"metadata": {"name": "x"}, "status": ' + b"[" * 5000 + b"]" * 5000
    with pytest.raises(ValueError):
        decode_pod_page(deep + b"}]}")


@pytest.mark.parametrize("bad", [1e308, "not a list", 7, {"name": "x"}])
def test_hostile_lists_of_the_wrong_type_keep_the_signal_and_its_record(bad: Any) -> None:
    # A privileged pod whose volumes and init containers are not lists: its signal is
    # still raised, with a raw record that holds what could be read.
    obj = risky_pod()
    obj["spec"]["volumes"] = bad
    obj["spec"]["initContainers"] = bad
    lean = decode_pod_page(page([obj]))[0][0]
    events = ClusterState().resync_pods([lean])
    (signal,) = [e for e in events if e.kind == "privileged-pod"]
    assert signal.raw_inline == pod_raw(obj, pod_info(obj))


def test_a_listed_pods_own_address_is_called_public_as_the_exact_check_calls_it() -> None:
    """A pod's own address is judged by its /16 (remembered per /16): exact only while
    every IPv4 network the exact check excludes is a /16 or wider."""
    import ipaddress
    import random

    from ktriage.core import cluster
    from ktriage.core.detect import identity

    v4 = [n for n in identity._NEVER_OUTSIDE if n.version == 4]
    assert v4 and all(n.prefixlen <= 16 for n in v4)
    rng = random.Random(5)
    samples = [str(ipaddress.IPv4Address(rng.getrandbits(32))) for _ in range(5000)]
    for n in v4:  # each excluded network's edges and just outside them
        first, last = int(n.network_address), int(n.broadcast_address)
        for value in (first - 1, first, last, last + 1):
            if 0 <= value < 1 << 32:
                samples.append(str(ipaddress.IPv4Address(value)))
    samples += ["010.0.0.1", "10.0.0.256", "::ffff:8.8.8.8", "fe80::1%eth0", " 8.8.8.8", "x"]
    cluster._PUBLIC_BY_16.clear()
    for value in samples * 2:  # the second time from what was remembered
        assert cluster._own_is_public(value) == identity.is_public_address(value), value
