"""The controllers under hostile input: a huge replica count, ownership cycles,
malformed ownerReferences and selectors, and a cluster stopped in the middle of a
burst. Nothing may crash the controller manager, hang the API or outlive a stop."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kubernetes import client, config

from ktriage.sim.controllers.kubelet import node_object
from ktriage.sim.runner import SimCluster


def _until(cond: Callable[[], Any], what: str, timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := cond()):
        assert time.monotonic() < deadline, f"timed out after {timeout} s waiting for {what}"
        time.sleep(0.02)
    return value


def _replicaset(name: str, replicas: int) -> dict:
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "main", "image": "registry.k8s.io/pause:3.9"}]},
            },
        },
    }


def _apis(sim: SimCluster) -> tuple[Any, Any, Any]:
    api = config.new_client_from_config(str(sim.kubeconfig_path), context="sim-admin")
    return api, client.CoreV1Api(api), client.AppsV1Api(api)


def test_hostile_huge_replicas_keep_the_api_serving_and_stop_promptly(tmp_path: Path) -> None:
    sim = SimCluster(tmp_path).start()
    try:
        sim.store.apply(node_object("worker-1", 1))
        api, core, apps = _apis(sim)
        apps.create_namespaced_replica_set("default", _replicaset("flood", 1_000_000))
        _until(lambda: len(sim.store.list_objs("v1", "Pod", "default")) >= 250, "a burst")
        # The API still answers while the controller works through the burst.
        started = time.monotonic()
        core.read_namespace("default", _request_timeout=5)
        assert time.monotonic() - started < 3
        api.close()
    finally:
        started = time.monotonic()
        sim.stop()
        stopped_in = time.monotonic() - started
    assert stopped_in < 3, f"stopping took {stopped_in:.1f} s"
    assert sim.controllers is not None and sim.controllers.errors == 0


def test_hostile_ownership_cycle_is_collected_without_spinning(tmp_path: Path) -> None:
    with SimCluster(tmp_path) as sim:
        store = sim.store
        a = store.apply(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "a", "namespace": "default"},
            }
        )
        b = store.apply(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {
                    "name": "b",
                    "namespace": "default",
                    "ownerReferences": [_ref(a)],
                },
            }
        )

        def owned_by_b(obj: dict) -> None:
            obj["metadata"]["ownerReferences"] = [_ref(b)]

        store.mutate("v1", "ConfigMap", "default", "a", owned_by_b)
        api, core, _ = _apis(sim)
        core.delete_namespaced_config_map("a", "default")
        _until(
            lambda: store.get_obj("v1", "ConfigMap", "default", "b") is None,
            "b collected after its owner a",
        )
        _until(sim.controllers.settled, "the controllers to settle")
        assert sim.controllers.errors == 0
        api.close()


def test_hostile_malformed_owner_references_and_selectors_are_ignored(tmp_path: Path) -> None:
    with SimCluster(tmp_path) as sim:
        store = sim.store
        store.apply(node_object("worker-1", 1))
        api, _, apps = _apis(sim)
        weird = store.apply(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {
                    "name": "weird",
                    "namespace": "default",
                    "labels": {"app": "good"},
                    "ownerReferences": ["not a reference", {"uid": 7}, None, {"kind": "X"}],
                },
                "spec": {"containers": [{"name": "main", "image": "busybox"}]},
            }
        )
        bad_rs = _replicaset("bad", 2)
        bad_rs["spec"]["selector"] = {"matchLabels": ["app"], "matchExpressions": "all"}
        store.apply({**bad_rs, "metadata": {"name": "bad", "namespace": "default"}})
        apps.create_namespaced_replica_set("default", _replicaset("good", 2))

        def good_pods() -> list[dict]:
            return [
                p
                for p in store.list_objs("v1", "Pod", "default")
                if p["metadata"].get("labels", {}).get("app") == "good"
            ]

        # The odd pod matches "good": it is adopted despite its junk references.
        _until(lambda: len(good_pods()) == 2, "two good pods")
        adopted = store.get_obj("v1", "Pod", "default", "weird")
        assert adopted is not None and adopted["metadata"]["uid"] == weird["metadata"]["uid"]
        _until(sim.controllers.settled, "the controllers to settle")
        assert not [
            p for p in store.list_objs("v1", "Pod", "default") if "bad" in p["metadata"]["name"]
        ]
        assert sim.controllers.errors == 0
        api.close()


def _ref(obj: dict) -> dict:
    return {
        "apiVersion": obj["apiVersion"],
        "kind": obj["kind"],
        "name": obj["metadata"]["name"],
        "uid": obj["metadata"]["uid"],
    }
