"""What ktriage claims after it acts, against the simulated cluster with the real actions:
the containment level and the blast radius's reachability say only what is true, with
no network plugin (nothing enforces NetworkPolicy) and with Cilium (it does)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_actions_support import (  # noqa: F401  (fixtures)
    engine_with_incident,
    make_service,
    reset_faults_fixture,
    seed_node,
    seed_pod,
    unique,
)

from ktriage.actions import OK
from ktriage.core.containment import CONTAINED, NOTHING, containment_state

pytestmark = pytest.mark.sim


@pytest.fixture(scope="module", name="sim", params=[None, "cilium"], ids=["no-plugin", "cilium"])
def plugin_sim_fixture(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Any]:
    from ktriage.sim.runner import SimCluster

    cluster = SimCluster(tmp_path_factory.mktemp("sim"), cni=request.param)
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


def _level(engine: Any, incident: str) -> Any:
    inc = engine.correlator.resolve(incident)
    return containment_state(inc, engine.correlator.events_of(incident))


async def _act(service: Any, key: str, incident: str, target: tuple[str, str]) -> None:
    plan = await service.prepare(key, incident, target)
    outcome = await service.apply(plan)
    assert outcome.result == OK, (key, outcome.message)


async def test_a_cordon_in_the_cluster_contains_nothing_until_an_isolation_holds(
    sim: Any, tmp_path: Path
) -> None:
    node, pod = unique("node"), unique("web")
    seed_node(sim.store, node)
    seed_pod(sim.store, "shop", pod, node=node)
    engine, incident = engine_with_incident("shop", pod, node)
    service = make_service(sim, engine, tmp_path / "snapshots")
    try:
        await _act(service, "c", incident, ("shop", pod))
        assert sim.store.get_obj("v1", "Node", None, node)["spec"]["unschedulable"] is True
        state = _level(engine, incident)
        assert [i.state for i in state.of("node")] == ["cordoned"]
        assert state.level == NOTHING and not state.contained

        await _act(service, "i", incident, ("shop", pod))
        state = _level(engine, incident)
        (net,) = [i for i in state.of("network") if i.subject == f"pod shop/{pod}"]
        if sim.cni is None:
            # Nothing enforces the policy: not verified, so still nothing contained.
            assert net.state == "unverified" and "may not be enforced" in net.detail
            assert state.level == NOTHING
        else:
            assert net.state == "isolated"
            assert state.level == CONTAINED
    finally:
        service.close()
