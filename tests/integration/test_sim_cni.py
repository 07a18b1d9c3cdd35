"""The simulated cluster with a network plugin (`cni=`): its agent and its policy kinds are
served, seen by the real kubectl; a cluster started later in the same process does not
serve them."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from test_actions_support import kubectl
from waiting import wait_for

from ktriage.sim.runner import SimCluster, SimError

pytestmark = pytest.mark.sim


def _kinds(sim: Any, tmp_path: Path, group: str) -> str:
    return kubectl(sim, tmp_path, "api-resources", f"--api-group={group}", "-o", "name")


def test_cilium_is_served_then_gone_with_its_cluster(tmp_path: Path) -> None:
    with SimCluster(tmp_path / "a", cni="cilium") as sim:
        assert "ciliumnetworkpolicies.cilium.io" in _kinds(sim, tmp_path, "cilium.io")
        ds = kubectl(sim, tmp_path, "get", "daemonset", "cilium", "-n", "kube-system", "-o", "json")
        image = ds["spec"]["template"]["spec"]["containers"][0]["image"]
        assert image.startswith("quay.io/cilium/cilium:")
    with SimCluster(tmp_path / "b") as plain:
        assert _kinds(plain, tmp_path, "cilium.io").strip() == ""


def test_unknown_cni_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SimError, match="unknown network plugin 'weave'"):
        SimCluster(tmp_path, cni="weave")


async def test_calico_in_a_scenario_runs_calico_node_on_every_node(tmp_path: Path) -> None:
    sim = SimCluster(tmp_path / "c", scenario="token-theft", speed=50, cni="calico").start()
    try:

        def calico_pods() -> list[dict]:
            return [
                p
                for p in sim.store.list_objs("v1", "Pod", "calico-system")
                if p["metadata"]["name"].startswith("calico-node-")
            ]

        await wait_for(lambda: len(calico_pods()) == 3, what="a calico-node pod on each node")
        assert "networkpolicies.projectcalico.org" in _kinds(sim, tmp_path, "projectcalico.org")
        await asyncio.to_thread(
            kubectl, sim, tmp_path, "get", "networkpolicies.projectcalico.org", "-A"
        )
    finally:
        sim.stop()
