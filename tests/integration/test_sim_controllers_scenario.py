"""Controllers and a scenario's scripted workloads agree: the controllers adopt the
scenario's ReplicaSets and pods without making or removing any while the scenario
rolls out and scales them, and still answer a client who deletes or relabels a pod."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kubernetes import client, config

from ktriage.sim.runner import SimCluster


def _until(cond: Callable[[], Any], what: str, timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := cond()):
        assert time.monotonic() < deadline, f"timed out after {timeout} s waiting for {what}"
        time.sleep(0.02)
    return value


def _owned_pods(store: Any, rs: dict) -> list[dict]:
    uid = rs["metadata"]["uid"]
    return [
        p
        for p in store.list_objs("v1", "Pod", rs["metadata"]["namespace"])
        if any(r.get("uid") == uid for r in p["metadata"].get("ownerReferences") or [])
        and not p["metadata"].get("deletionTimestamp")
    ]


def test_scripted_rollouts_and_scaling_are_left_to_the_scenario(tmp_path: Path) -> None:
    with SimCluster(tmp_path, scenario="quiet-day", speed=400) as sim:
        _until(lambda: sim.player is not None and sim.player.done, "the scenario to finish")
        _until(sim.controllers.settled, "the controllers to settle")
        store = sim.store
        for rs in store.list_objs("apps/v1", "ReplicaSet"):
            pods = _owned_pods(store, rs)
            assert len(pods) == rs["spec"]["replicas"], rs["metadata"]["name"]
        for (ns, _), names in sim.player.factory.workload_pods.items():
            for name in names:
                assert store.get_obj("v1", "Pod", ns, name) is not None, f"{ns}/{name}"
        assert sim.controllers.errors == 0


def test_a_client_deleting_or_relabelling_a_scripted_pod_gets_a_replacement(
    tmp_path: Path,
) -> None:
    with SimCluster(tmp_path, scenario="quiet-day", speed=400) as sim:
        _until(lambda: sim.player is not None and sim.player.done, "the scenario to finish")
        _until(sim.controllers.settled, "the controllers to settle")
        api = config.new_client_from_config(str(sim.kubeconfig_path), context="sim-admin")
        core = client.CoreV1Api(api)
        store = sim.store
        rs = next(
            r for r in store.list_objs("apps/v1", "ReplicaSet", "shop") if r["spec"]["replicas"]
        )
        want = rs["spec"]["replicas"]
        first, second = sorted(p["metadata"]["name"] for p in _owned_pods(store, rs))[:2]

        core.delete_namespaced_pod(first, "shop")
        _until(
            lambda: (
                len(_owned_pods(store, rs)) == want
                and first not in {p["metadata"]["name"] for p in _owned_pods(store, rs)}
            ),
            "a replacement for the deleted pod",
        )
        selector = rs["spec"]["selector"]["matchLabels"]
        key = next(k for k in selector if k != "pod-template-hash")
        core.patch_namespaced_pod(second, "shop", {"metadata": {"labels": {key: None}}})
        released = _until(
            lambda: (
                (p := store.get_obj("v1", "Pod", "shop", second))
                and not p["metadata"].get("ownerReferences")
                and p
            ),
            "the relabelled pod released",
        )
        assert not released["metadata"].get("deletionTimestamp")
        _until(lambda: len(_owned_pods(store, rs)) == want, "a replacement for the released pod")
        _until(sim.controllers.settled, "the controllers to settle")
        # One replacement each, no more.
        assert len(_owned_pods(store, rs)) == want
        assert sim.controllers.errors == 0
        api.close()
