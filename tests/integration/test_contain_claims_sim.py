"""What ktriage claims after it acts, against the simulated cluster with the real actions:
the containment level and the blast radius's reachability say only what is true, with
no network plugin (nothing enforces NetworkPolicy) and with Cilium (it does)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from test_actions_support import (
    engine_with_incident,
    make_service,
    seed_node,
    seed_pod,
    seed_policy,
    unique,
)

from ktriage.actions import OK
from ktriage.blastread import BlastReader
from ktriage.core import blast
from ktriage.core.containment import CONTAINED, NOTHING, action_result, containment_state
from ktriage.kubeclient import client_from_kubeconfig

# The module's cluster (conftest's `sim`) runs each network plugin in turn.
pytestmark = [
    pytest.mark.sim,
    pytest.mark.parametrize(
        "sim", [None, "cilium"], indirect=True, scope="module", ids=["no-plugin", "cilium"]
    ),
]


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


def _reader(sim: Any, context: str = "sim-admin") -> BlastReader:
    return BlastReader(lambda: client_from_kubeconfig(str(sim.kubeconfig_path), context))


async def test_blast_radius_after_an_isolation_claims_only_what_holds(
    sim: Any, tmp_path: Path
) -> None:
    """The on-call's case: a namespace-wide default deny, an allow from anywhere on
    TCP/8080, and ktriage's quarantine. Ingress is never called isolated (the allow
    still lets anyone in); egress is isolated only where a plugin enforces policies."""
    ns, node, pod = unique("store"), unique("node"), unique("web")
    seed_node(sim.store, node)
    seed_pod(sim.store, ns, pod, node=node, labels={"app": "storefront"})
    seed_policy(
        sim.store, ns, "default-deny-ingress", {"podSelector": {}, "policyTypes": ["Ingress"]}
    )
    seed_policy(
        sim.store,
        ns,
        "storefront-allow-http",
        {
            "podSelector": {"matchLabels": {"app": "storefront"}},
            "ingress": [{"ports": [{"port": 8080, "protocol": "TCP"}]}],
        },
    )
    # The quarantine as plain NetworkPolicy (with Cilium, the isolate action writes a
    # CiliumNetworkPolicy, which this reading does not follow).
    seed_policy(
        sim.store,
        ns,
        "quarantine",
        {
            "podSelector": {"matchLabels": {"app": "storefront"}},
            "policyTypes": ["Ingress", "Egress"],
        },
    )
    reader = _reader(sim)
    try:
        result = reader.compute([], [(ns, pod)])
    finally:
        reader.close()
    (seen,) = result.pods
    ingress, egress = seen.ingress[0], seen.egress[0]
    assert ingress.startswith(
        "ingress: policies select it (NetworkPolicy default-deny-ingress, quarantine, "
        "storefront-allow-http), but NetworkPolicy storefront-allow-http allows ingress from "
        "anywhere on TCP/8080"
    ), ingress
    markdown = blast.render_markdown(result)
    if sim.cni is None:
        assert egress == (
            "egress: NetworkPolicy quarantine selects it and allows nothing, but no "
            "NetworkPolicy-enforcing network plugin was seen: policies may not be enforced"
        )
        assert ingress.endswith("policies may not be enforced")
        # The isolate dialog's own sentence, with what was looked at.
        (warning,) = [n for n in result.not_seen if n.startswith("No NetworkPolicy-enforcing")]
        assert "the DaemonSets of every namespace" in warning and "API discovery" in warning
        assert "isolated" not in " ".join(seen.ingress + seen.egress)
        assert "isolated" not in markdown.split("### Pod", 1)[1]
        assert "may not be enforced" in markdown
    else:
        assert egress.startswith("egress: isolated by NetworkPolicy quarantine; nothing allowed")
        assert "(enforced by Cilium)" in egress
        assert "may not be enforced" not in markdown
    assert "isolated" not in ingress


async def test_hostile_plugin_evidence_unreadable_is_said_not_guessed(sim: Any) -> None:
    """The DaemonSets list refused (as to an identity without that right): the agents'
    pods in kube-system and the API groups are read instead, as the isolate action does,
    and without evidence of a plugin the pod is not called isolated on a guess."""
    ns, node, pod = unique("store"), unique("node"), unique("web")
    seed_node(sim.store, node)
    seed_pod(sim.store, ns, pod, node=node)
    seed_policy(
        sim.store, ns, "deny-all", {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    )
    sim.faults.update({"match": "/apis/apps/v1/daemonsets", "fail_next": {"n": 1, "code": 403}})
    reader = _reader(sim)
    try:
        result = reader.compute([], [(ns, pod)])
    finally:
        reader.close()
    lines = result.pods[0].ingress + result.pods[0].egress
    if sim.cni is None:
        assert all("may not be enforced" in line for line in lines), lines
        (warning,) = [n for n in result.not_seen if n.startswith("No NetworkPolicy-enforcing")]
        assert "could not list daemonsets: forbidden" in warning
        assert "the pods of kube-system" in warning
    else:
        # Its agent's pods in kube-system, or its API group, still tell.
        assert lines[0].startswith("ingress: isolated by NetworkPolicy deny-all"), lines


async def test_an_isolation_an_allow_still_beats_is_recorded_not_effective(
    sim: Any, tmp_path: Path
) -> None:
    """The API calls succeed (the record's result is "ok"); the Result shown says what
    the isolate action's own check found: an allow from anywhere still lets traffic in
    where plain NetworkPolicies add up; with Cilium its deny policy wins."""
    ns, node, pod = unique("store"), unique("node"), unique("web")
    seed_node(sim.store, node)
    seed_pod(sim.store, ns, pod, node=node, labels={"app": "storefront"})
    seed_policy(
        sim.store,
        ns,
        "storefront-allow-http",
        {
            "podSelector": {"matchLabels": {"app": "storefront"}},
            "ingress": [{"ports": [{"port": 8080, "protocol": "TCP"}]}],
        },
    )
    engine, incident = engine_with_incident(ns, pod, node)
    service = make_service(sim, engine, tmp_path / "snapshots")
    try:
        await _act(service, "i", incident, (ns, pod))
    finally:
        service.close()
    (event,) = [e for e in engine.correlator.events_of(incident) if e.kind == "action-isolate"]
    assert event.raw_inline["result"] == "ok"
    reader = _reader(sim)
    try:
        (seen,) = reader.compute([], [(ns, pod)]).pods
    finally:
        reader.close()
    ingress, egress = seen.ingress[0], seen.egress[0]
    if sim.cni is None:
        assert action_result(event) == "not effective"
        assert _level(engine, incident).level == NOTHING
        # The blast radius agrees: let in from anywhere, and nothing enforces the rest.
        assert "but NetworkPolicy storefront-allow-http allows ingress from anywhere" in ingress
        assert egress.endswith("policies may not be enforced") and "isolated" not in egress
    else:
        assert action_result(event) == "ok"
        assert _level(engine, incident).level == CONTAINED
        # The isolation is a CiliumNetworkPolicy deny: it wins over the allow, and the
        # blast radius reads it as the isolate action did.
        policy = f"CiliumNetworkPolicy ktriage-quarantine-{pod}"
        for line in (ingress, egress):
            assert line.endswith(f"isolated by {policy}; nothing allowed (enforced by Cilium)"), (
                line
            )
