"""The clusters of one demo play the scenario with names of their own: the second
(`variant=1`) has other pod-name hashes, container ids and pod addresses (10.245/16),
read back with the official client, so a wrong-cluster view shows on screen."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client as k8s
from waiting import wait_for

from ktriage.kubeclient import client_from_kubeconfig
from ktriage.sim.runner import SimCluster, SimError

pytestmark = pytest.mark.sim


def shop_pods(sim: SimCluster) -> list[Any]:
    api = client_from_kubeconfig(str(sim.kubeconfig_path), "sim-admin")
    try:
        return list(k8s.CoreV1Api(api).list_namespaced_pod("shop").items)
    finally:
        api.close()


async def test_second_cluster_of_a_demo_has_names_of_its_own(tmp_path: Path) -> None:
    east = SimCluster(tmp_path / "east", scenario="cryptominer", speed=50).start()
    west = SimCluster(tmp_path / "west", scenario="cryptominer", speed=50, variant=1).start()
    try:
        got: dict[str, list[Any]] = {}

        def both_built() -> bool:
            for name, sim in (("east", east), ("west", west)):
                got[name] = [p for p in shop_pods(sim) if p.status.pod_ip]
            return bool(got["east"]) and len(got["east"]) == len(got["west"])

        await wait_for(lambda: both_built(), timeout=30, what=lambda: got, poll=0.2)
        east_pods, west_pods = got["east"], got["west"]
        east_names = {p.metadata.name for p in east_pods}
        west_names = {p.metadata.name for p in west_pods}
        assert not east_names & west_names, (east_names, west_names)
        # The same workloads (the story is the same), named with other hashes.
        prefixes = {n.rsplit("-", 2)[0] for n in east_names}
        assert prefixes == {n.rsplit("-", 2)[0] for n in west_names}
        assert all(p.status.pod_ip.startswith("10.244.") for p in east_pods)
        assert all(p.status.pod_ip.startswith("10.245.") for p in west_pods)
        east_ids = {s.container_id for p in east_pods for s in p.status.container_statuses or []}
        west_ids = {s.container_id for p in west_pods for s in p.status.container_statuses or []}
        assert east_ids and not east_ids & west_ids
        # Nodes keep their names.
        assert {p.spec.node_name for p in east_pods} == {p.spec.node_name for p in west_pods}
    finally:
        await asyncio.to_thread(east.stop)
        await asyncio.to_thread(west.stop)


def test_hostile_variant_out_of_range_is_refused(tmp_path: Path) -> None:
    for bad in (-1, 10, 255):
        with pytest.raises(SimError, match="variant must be 0 to 9"):
            SimCluster(tmp_path / f"v{bad}", variant=bad)
