"""Guardrails and failures: permissions, read-only, 401/403/404/409/429/500, timeouts, rollback."""

from __future__ import annotations

import re
import shlex
import time
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from test_actions_support import (
    FAST_RETRY,
    audit_lines,
    engine_with_incident,
    kubectl,
    make_service,
    seed_node,
    seed_pod,
    unique,
)

from ktriage.actions import (
    FAILED,
    OK,
    ActionError,
    ActionService,
    kubeconfig_factory,
)
from ktriage.actions.base import QUARANTINE_LABEL, REFUSED
from ktriage.core.snapshot import render_markdown, time_to_contain
from ktriage.ui.hooks import make_provider

pytestmark = pytest.mark.sim


def _node_cordoned(sim: Any, node: str) -> bool:
    return bool(sim.store.get_obj("v1", "Node", None, node).get("spec", {}).get("unschedulable"))


def _pod_labels(sim: Any, ns: str, pod: str) -> dict[str, str]:
    return sim.store.get_obj("v1", "Pod", ns, pod)["metadata"].get("labels") or {}


def _policy_names(sim: Any, ns: str) -> list[str]:
    return [
        p["metadata"]["name"]
        for p in sim.store.list_objs("networking.k8s.io/v1", "NetworkPolicy", ns)
    ]


def _codes(sim: Any, verb: str, name: str) -> list[int]:
    return [
        a["responseStatus"]["code"]
        for a in audit_lines(sim)
        if a["verb"] == verb
        and (a.get("objectRef") or {}).get("name") == name
        and "dryRun" not in a["requestURI"]
    ]


@pytest.fixture
def cordon_target(sim: Any) -> tuple[str, str]:
    node, pod = unique("node"), unique("web")
    seed_node(sim.store, node)
    seed_pod(sim.store, "shop", pod, node=node)
    return node, pod


# ---- who may do what ----------------------------------------------------------------


async def test_read_only_identity_sees_actions_disabled_with_the_reason(
    sim: Any, tmp_path: Path, cordon_target: tuple[str, str]
) -> None:
    node, pod = cordon_target
    service = make_service(sim, None, tmp_path, context="sim-readonly")
    try:
        first = service.available(("shop", pod))
        assert first["c"] == (False, "checking permissions")
        offered = await service.refresh(("shop", pod))
        assert offered["c"] == (False, "needs patch on nodes")
        assert offered["i"] == (
            False,
            "needs create on networkpolicies, delete on networkpolicies and patch on pods",
        )
        assert offered["D"] == (False, "needs patch on pods")
        # Reading logs and events is allowed to a viewer: evidence can still be collected.
        assert offered["l"][0] is True
        # Cached: asking again sends no more reviews.
        sent = service.context.permissions.reviews_sent
        assert (await service.refresh(("shop", pod))) == offered
        assert service.context.permissions.reviews_sent == sent
        with pytest.raises(ActionError, match="viewer needs patch on nodes"):
            await service.prepare("c", "INC-1", ("shop", pod))
        assert not _node_cordoned(sim, node)
    finally:
        service.close()


async def test_a_refused_attempt_is_told_in_the_incident(
    sim: Any, tmp_path: Path, cordon_target: tuple[str, str]
) -> None:
    """Trying to contain and being refused is part of the story: the timeline and
    the snapshot say who tried what, when, and why it did not start."""
    node, pod = cordon_target
    engine, incident_id = engine_with_incident("shop", pod, node)
    service = make_service(sim, engine, tmp_path, context="sim-readonly")
    try:
        with pytest.raises(ActionError, match="viewer needs patch on nodes"):
            await service.prepare("c", incident_id, ("shop", pod))
        # An offer ktriage prepares on its own (detach after isolation) that cannot
        # go ahead is simply not made: nobody tried anything.
        with pytest.raises(ActionError, match="viewer needs patch on pods"):
            await service.prepare("D", incident_id, ("shop", pod), offered=True)
    finally:
        service.close()
    assert not _node_cordoned(sim, node)
    events = engine.correlator.events_of(incident_id)
    (refused,) = [e for e in events if e.source == "ktriage"]
    assert refused.kind == "action-cordon"
    assert refused.raw_inline is not None
    assert refused.raw_inline["result"] == REFUSED
    assert refused.raw_inline["actor"] == "viewer"
    assert "needs patch on nodes" in refused.raw_inline["error"]
    assert refused.summary.startswith(f"cordon pod shop/{pod}: not started:")
    incident = engine.correlator.resolve(incident_id)
    assert incident is not None
    markdown = render_markdown(incident, events)
    assert "| viewer | cordon |" in markdown
    assert "refused" in markdown
    # A refusal contains nothing: the time to contain is still open.
    assert time_to_contain(incident, events) is None


async def test_permission_answers_expire(
    sim: Any, tmp_path: Path, cordon_target: tuple[str, str]
) -> None:
    _node, pod = cordon_target
    factory = kubeconfig_factory(str(sim.kubeconfig_path), "sim-admin")
    service = ActionService(None, factory, tmp_path, permission_ttl=0.0)
    try:
        await service.refresh(("shop", pod))
        sent = service.context.permissions.reviews_sent
        await service.refresh(("shop", pod))
        assert service.context.permissions.reviews_sent > sent
    finally:
        service.close()


async def test_read_only_mode_hides_every_action(
    sim: Any, tmp_path: Path, cordon_target: tuple[str, str]
) -> None:
    _node, pod = cordon_target
    service = make_service(sim, None, tmp_path, read_only=True)
    try:
        assert service.available(("shop", pod)) == {}
        with pytest.raises(ActionError, match="read-only"):
            await service.prepare("c", "INC-1", ("shop", pod))
        with pytest.raises(ActionError, match="read-only"):
            await service.prepare_undo("INC-1", ("shop", pod))
    finally:
        service.close()
    app = SimpleNamespace(read_only=True, engine=None, api_client_factory=lambda: None)
    assert make_provider(app) is None


# ---- HTTP failures ------------------------------------------------------------------


async def test_403_names_the_missing_permission(
    sim: Any, tmp_path: Path, cordon_target: tuple[str, str]
) -> None:
    node, pod = cordon_target
    engine, incident = engine_with_incident("shop", pod)
    service = make_service(sim, engine, tmp_path)
    try:
        plan = await service.prepare("c", incident, ("shop", pod))
        sim.faults.deny("admin")
        outcome = await service.apply(plan)
        assert outcome.result == FAILED
        assert "forbidden: kubernetes-admin needs patch on nodes" in outcome.message
        assert not _node_cordoned(sim, node)
        (event,) = [e for e in engine.correlator.events_of(incident) if e.source == "ktriage"]
        assert event.raw_inline["result"] == "failed"
        assert "needs patch on nodes" in event.raw_inline["error"]
    finally:
        service.close()


async def test_401_says_the_credentials_were_rejected(
    sim: Any, tmp_path: Path, cordon_target: tuple[str, str]
) -> None:
    node, pod = cordon_target
    service = make_service(sim, None, tmp_path)
    try:
        plan = await service.prepare("c", "INC-1", ("shop", pod))
        sim.faults.expire_token("admin")
        outcome = await service.apply(plan)
        assert outcome.result == FAILED and "credentials were rejected" in outcome.message
        assert not _node_cordoned(sim, node)
    finally:
        service.close()


async def test_404_says_the_node_is_gone(
    sim: Any, tmp_path: Path, cordon_target: tuple[str, str]
) -> None:
    node, pod = cordon_target
    service = make_service(sim, None, tmp_path)
    try:
        plan = await service.prepare("c", "INC-1", ("shop", pod))
        sim.store.delete("v1", "Node", None, node)
        outcome = await service.apply(plan)
        assert outcome.result == FAILED and f"node {node} is gone" in outcome.message
    finally:
        service.close()


async def test_409_refreshes_and_retries_once(
    sim: Any, tmp_path: Path, cordon_target: tuple[str, str]
) -> None:
    node, pod = cordon_target
    service = make_service(sim, None, tmp_path)
    try:
        plan = await service.prepare("c", "INC-1", ("shop", pod))
        sim.faults.fail_next(1, code=409)
        outcome = await service.apply(plan)
        assert outcome.result == OK, outcome.message
        assert _node_cordoned(sim, node)
        assert _codes(sim, "patch", node) == [409, 200]
        assert _codes(sim, "get", node)  # it re-read the node between the two
    finally:
        service.close()


async def test_500_is_retried_then_reported(
    sim: Any, tmp_path: Path, cordon_target: tuple[str, str]
) -> None:
    node, pod = cordon_target
    service = make_service(sim, None, tmp_path)
    try:
        plan = await service.prepare("c", "INC-1", ("shop", pod))
        sim.faults.fail_next(2, code=500)
        outcome = await service.apply(plan)
        assert outcome.result == OK, outcome.message
        assert _codes(sim, "patch", node) == [500, 500, 200]

        undo = await service.prepare_undo("INC-1", ("shop", pod))
        sim.faults.fail_next(10, code=503)
        failed = await service.apply(undo)
        assert failed.result == FAILED
        assert "server error 503" in failed.message and "after 3 attempts" in failed.message
        assert f"kubectl get node {node}" in failed.message  # how to check what happened
        assert _node_cordoned(sim, node)
        assert sim.faults.state()["fail_next"] == [503] * 7  # bounded: three tries, no more
    finally:
        service.close()


async def test_429_honours_retry_after(
    sim: Any, tmp_path: Path, cordon_target: tuple[str, str]
) -> None:
    node, pod = cordon_target
    service = make_service(sim, None, tmp_path)
    try:
        plan = await service.prepare("c", "INC-1", ("shop", pod))
        sim.faults.throttle(1, retry_after=1)
        started = time.monotonic()
        outcome = await service.apply(plan)
        elapsed = time.monotonic() - started
        assert outcome.result == OK, outcome.message
        assert elapsed >= 0.9  # waited as the server asked (FAST_RETRY's backoff is 0.05 s)
        assert _codes(sim, "patch", node) == [429, 200]
    finally:
        service.close()


async def test_timeout_mid_action_is_reported_and_state_stays_consistent(
    sim: Any, tmp_path: Path, cordon_target: tuple[str, str]
) -> None:
    node, pod = cordon_target
    retry = replace(FAST_RETRY, attempts=2, timeout=0.4)
    service = make_service(sim, None, tmp_path, retry=retry)
    try:
        plan = await service.prepare("c", "INC-1", ("shop", pod))
        sim.faults.latency = 1.0
        started = time.monotonic()
        outcome = await service.apply(plan)
        assert time.monotonic() - started < 3.0  # bounded: two tries of 0.4 s and a backoff
        assert outcome.result == FAILED
        assert "timed out" in outcome.message and "after 2 attempts" in outcome.message
        assert "may or may not have applied" in outcome.message
        sim.faults.latency = 0.0
        # The server dropped the abandoned requests: nothing changed, and a new plan says so.
        assert not _node_cordoned(sim, node)
        again = await service.prepare("c", "INC-1", ("shop", pod))
        assert again.changes and not again.unchanged
    finally:
        service.close()


# ---- isolation that fails half-way ------------------------------------------------------


@pytest.fixture
def isolate_target(sim: Any) -> tuple[str, str]:
    ns, pod = unique("iso"), unique("web")
    seed_pod(sim.store, ns, pod, node="n1", labels={"app": "web"})
    return ns, pod


async def test_label_failure_after_policy_created_rolls_back(
    sim: Any, tmp_path: Path, isolate_target: tuple[str, str]
) -> None:
    ns, pod = isolate_target
    engine, incident = engine_with_incident(ns, pod)
    service = make_service(sim, engine, tmp_path)
    try:
        plan = await service.prepare("i", incident, (ns, pod))
        sim.faults.match = f"/pods/{pod}"  # only the pod's label patch fails
        sim.faults.fail_next(3, code=500)
        outcome = await service.apply(plan)
        assert outcome.result == FAILED
        assert "isolation failed at 'label pod" in outcome.message
        assert "rolled back: create NetworkPolicy" in outcome.message
        assert "nothing is left behind" in outcome.message
        assert outcome.leftovers == []
        assert _policy_names(sim, ns) == []
        assert QUARANTINE_LABEL not in _pod_labels(sim, ns, pod)
        name = f"ktriage-quarantine-{pod}"
        writes = [
            (a["verb"], a["objectRef"]["resource"], a["responseStatus"]["code"])
            for a in audit_lines(sim)
            if (a.get("objectRef") or {}).get("namespace") == ns
            and a["verb"] in ("create", "patch", "delete")
            and "dryRun" not in a["requestURI"]
        ]
        # Created, the label failed three times (bounded retries), then the policy deleted.
        assert writes == [
            ("create", "networkpolicies", 201),
            ("patch", "pods", 500),
            ("patch", "pods", 500),
            ("patch", "pods", 500),
            ("delete", "networkpolicies", 200),
        ]
        assert _codes(sim, "delete", name) == [200]
        assert not service.records(incident)[-1].can_undo
    finally:
        service.close()


async def test_failed_rollback_says_what_is_left_and_how_to_remove_it(
    sim: Any, tmp_path: Path, isolate_target: tuple[str, str]
) -> None:
    ns, pod = isolate_target
    service = make_service(sim, None, tmp_path)
    try:
        plan = await service.prepare("i", "INC-9", (ns, pod))
        # The pod's name is in the label patch's and the policy delete's paths, not the create's.
        sim.faults.match = pod
        sim.faults.fail_next(2, code=403)
        outcome = await service.apply(plan)
        assert outcome.result == FAILED
        (leftover,) = outcome.leftovers
        name = f"ktriage-quarantine-{pod}"
        assert f"NetworkPolicy {ns}/{name}" in leftover and "rollback failed" in leftover
        assert "left behind" in outcome.message
        assert _policy_names(sim, ns) == [name]
        assert QUARANTINE_LABEL not in _pod_labels(sim, ns, pod)  # it selects nothing
        # The command given removes it.
        sim.faults.reset()
        command = re.search(r"remove it with: (kubectl [^(]+?) \(", leftover)
        assert command is not None
        args = shlex.split(command.group(1))[1:]
        kubectl(sim, tmp_path, *args)
        assert _policy_names(sim, ns) == []
    finally:
        service.close()


async def test_isolation_timeout_names_what_may_be_left(
    sim: Any, tmp_path: Path, isolate_target: tuple[str, str]
) -> None:
    ns, pod = isolate_target
    retry = replace(FAST_RETRY, attempts=1, timeout=0.4)
    service = make_service(sim, None, tmp_path, retry=retry)
    try:
        plan = await service.prepare("i", "INC-10", (ns, pod))
        sim.faults.latency = 1.0
        outcome = await service.apply(plan)
        sim.faults.latency = 0.0
        assert outcome.result == FAILED and "timed out" in outcome.message
        (leftover,) = outcome.leftovers
        assert leftover.startswith("possibly NetworkPolicy") and "kubectl delete" in leftover
        # The abandoned requests were dropped by the server: nothing is half-done.
        assert _policy_names(sim, ns) == []
        assert QUARANTINE_LABEL not in _pod_labels(sim, ns, pod)
    finally:
        service.close()
