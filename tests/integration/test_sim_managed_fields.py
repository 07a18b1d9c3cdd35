"""A spec change leaves its time in managedFields, as on a real API server, so the
events ktriage derives from it are dated when it happened, not when the object was made."""

from __future__ import annotations

from kubernetes import client, config

from ktriage.core.cluster import ClusterState
from ktriage.core.model import parse_time
from ktriage.sim.clock import ManualClock


def test_cordon_is_dated_by_the_write_not_the_node_creation(make_sim_cluster) -> None:
    start = 1_800_000_000.0
    sim = make_sim_cluster(clock=ManualClock(start))
    sim.store.apply({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"}})
    api = config.new_client_from_config(str(sim.kubeconfig_path))
    core = client.CoreV1Api(api)
    state = ClusterState()
    state.update_node(api.sanitize_for_serialization(core.read_node("n1")))
    sim.advance(3600)
    core.patch_node("n1", {"spec": {"unschedulable": True}})
    after = api.sanitize_for_serialization(core.read_node("n1"))
    written = [parse_time(e["time"]) for e in after["metadata"]["managedFields"]]
    assert max(written) >= start + 3600
    cordon = [e for e in state.update_node(after) if "cordon" in e.summary.lower()]
    assert cordon, "no cordon event"
    assert cordon[0].time >= start + 3600  # not the node's creation time
    api.close()
