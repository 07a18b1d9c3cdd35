"""The simulated API server's paged lists over HTTP: every object exactly once, in
etcd's key order ("namespace/name"), in N/limit pages read from one snapshot, with
a continue token found by position rather than by scanning the whole list."""

from __future__ import annotations

import base64
import json
from typing import Any

import orjson
import pytest
import sim_builders as builders
from kubernetes import client
from kubernetes.client import ApiException

from ktriage.sim.bulk import seed_pods
from ktriage.sim.clock import ManualClock
from ktriage.sim.runner import SimCluster
from ktriage.sim.storage.store import ClusterStore, list_key

pytestmark = pytest.mark.sim


def _pages(
    kube_api: Any, limit: int, namespace: str | None = None, **kw: Any
) -> list[dict[str, Any]]:
    """Every page of a pod list, read raw (the JSON as the server sent it)."""
    v1 = client.CoreV1Api(kube_api)
    pages: list[dict[str, Any]] = []
    token = None
    while True:
        if token:
            kw["_continue"] = token
        if namespace:
            resp = v1.list_namespaced_pod(namespace, limit=limit, _preload_content=False, **kw)
        else:
            resp = v1.list_pod_for_all_namespaces(limit=limit, _preload_content=False, **kw)
        body = orjson.loads(resp.data)
        pages.append(body)
        token = body["metadata"].get("continue")
        if not token:
            return pages
        assert len(pages) < 10_000, "the list never ends"


def _names(pages: list[dict[str, Any]]) -> list[str]:
    return [list_key(item) for page in pages for item in page["items"]]


def test_paged_list_gives_every_pod_once_in_order(kube_api: Any, sim_cluster: SimCluster) -> None:
    seed_pods(sim_cluster.store, 1_000, namespaces=7, nodes=3)
    expected = sorted(list_key(p) for p in sim_cluster.store.snapshot("v1", "Pod")[0])
    limit = 70
    pages = _pages(kube_api, limit)
    names = _names(pages)
    assert names == expected  # each pod once, in key order
    assert len(pages) == -(-len(expected) // limit)
    assert {p["metadata"]["resourceVersion"] for p in pages} == {
        pages[0]["metadata"]["resourceVersion"]
    }
    seen = 0
    for page in pages[:-1]:
        seen += len(page["items"])
        assert len(page["items"]) == limit
        assert page["metadata"]["remainingItemCount"] == len(expected) - seen
    assert "remainingItemCount" not in pages[-1]["metadata"]


def test_paged_list_orders_namespaces_by_key_not_by_pair(
    kube_api: Any, sim_cluster: SimCluster
) -> None:
    # "a-b/x" sorts before "a/x" ("-" < "/"), though the pair ("a", ...) sorts first:
    # a page boundary between them must neither lose nor repeat a pod.
    for ns in ("a", "a-b", "a.c"):
        sim_cluster.store.apply(builders.namespace(ns))
        for name in ("x", "y"):
            sim_cluster.store.apply(builders.pod(ns, name, [builders.container("c", "alpine")]))
    for limit in (1, 2, 3):
        names = [
            n for n in _names(_pages(kube_api, limit)) if n.split("/")[0] in ("a", "a-b", "a.c")
        ]
        assert names == ["a-b/x", "a-b/y", "a.c/x", "a.c/y", "a/x", "a/y"], limit


def test_paged_list_with_a_selector_pages_only_the_matches(
    kube_api: Any, sim_cluster: SimCluster
) -> None:
    keys = seed_pods(sim_cluster.store, 300, namespaces=3, nodes=2)
    wanted = sorted(
        list_key(p)
        for p in sim_cluster.store.snapshot("v1", "Pod")[0]
        if p["metadata"]["labels"].get("app") == "svc-0002"
    )
    assert len(wanted) == 50 and len(keys) == 300
    pages = _pages(kube_api, 20, label_selector="app=svc-0002")
    assert _names(pages) == wanted
    assert [len(p["items"]) for p in pages] == [20, 20, 10]
    assert [p["metadata"].get("remainingItemCount") for p in pages] == [30, 10, None]


def test_paged_list_is_one_snapshot_while_pods_change(
    kube_api: Any, sim_cluster: SimCluster
) -> None:
    seed_pods(sim_cluster.store, 200, namespaces=2, nodes=2)
    before = {
        list_key(p): p["metadata"]["resourceVersion"]
        for p in sim_cluster.store.snapshot("v1", "Pod")[0]
    }
    v1 = client.CoreV1Api(kube_api)
    first = orjson.loads(v1.list_pod_for_all_namespaces(limit=50, _preload_content=False).data)
    # Between pages: a listed pod deleted, one not yet listed deleted, one added.
    store = sim_cluster.store
    gone_early = first["items"][0]["metadata"]
    store.delete("v1", "Pod", gone_early["namespace"], gone_early["name"])
    last = sorted(before)[-1].split("/")
    store.delete("v1", "Pod", last[0], last[1])
    store.apply(builders.pod("team-00", "zz-late", [builders.container("c", "alpine")]))
    pages = [first]
    token = first["metadata"]["continue"]
    while token:
        page = orjson.loads(
            v1.list_pod_for_all_namespaces(limit=50, _continue=token, _preload_content=False).data
        )
        pages.append(page)
        token = page["metadata"].get("continue")
    listed = {list_key(i): i["metadata"]["resourceVersion"] for p in pages for i in p["items"]}
    assert listed == before


def test_list_snapshot_is_sorted_once_per_resource_version() -> None:
    # A store with no controllers: nothing else writes between the reads below.
    store = ClusterStore(ManualClock())
    seed_pods(store, 100, namespaces=2, nodes=2)
    snap = store.list_snapshot("v1", "Pod", None)
    assert store.list_snapshot("v1", "Pod", None) is snap  # the next page: no new sort
    assert store.list_snapshot("v1", "Pod", None, snap.rv) is snap
    store.apply(builders.pod("team-00", "new", [builders.container("c", "alpine")]))
    newer = store.list_snapshot("v1", "Pod", None)
    assert newer is not snap and newer.rv > snap.rv
    assert len(newer.objs) == len(snap.objs) + 1
    assert store.list_snapshot("v1", "Pod", None, snap.rv) is snap  # the older list goes on
    assert snap.keys == sorted(snap.keys) and snap.index(snap.keys[10]) == 10


def test_hostile_long_names_page_in_order(kube_api: Any, sim_cluster: SimCluster) -> None:
    # 253 characters: the most a DNS subdomain (a pod's name) may have.
    names = [f"{i:03d}-" + "n" * 247 + "-x" for i in range(30)]
    for name in names:
        assert len(name) == 253
        sim_cluster.store.apply(builders.pod("long", name, [builders.container("c", "alpine")]))
    pages = _pages(kube_api, 7, namespace="long")
    assert _names(pages) == [f"long/{n}" for n in sorted(names)]
    assert len(pages) == 5


@pytest.mark.parametrize(
    "token",
    [
        "garbage!",
        base64.urlsafe_b64encode(b"[1, 2, 3]").decode(),
        base64.urlsafe_b64encode(
            json.dumps({"v": "meta.k8s.io/v1", "rv": "1", "start": "x"}).encode()
        ).decode(),
        base64.urlsafe_b64encode(
            json.dumps({"v": "meta.k8s.io/v1", "rv": 1001, "start": ["x"]}).encode()
        ).decode(),
    ],
)
def test_hostile_garbage_continue_token_is_a_bad_request(
    kube_api: Any, sim_cluster: SimCluster, token: str
) -> None:
    with pytest.raises(ApiException) as err:
        client.CoreV1Api(kube_api).list_pod_for_all_namespaces(limit=5, _continue=token)
    assert err.value.status == 400
    status = json.loads(err.value.body)
    assert status["reason"] == "BadRequest" and "continue key is not valid" in status["message"]
