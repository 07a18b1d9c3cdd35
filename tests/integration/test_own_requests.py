"""ktriage's own requests through the simulated API server and back through its audit
log: this run's checks and dry runs are never signals; the same request under a copied
`ktriage/...` agent is. A dry-run delete changes nothing (as the API server does it, a
delete's options come from its body)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from test_actions_identity import _engine_with_actor, _sa
from test_actions_support import (
    make_service,
    seed_namespace,
    seed_node,
    seed_pod,
    unique,
)

from ktriage.actions import Target
from ktriage.actions.kube import Kube
from ktriage.actions.kube_contain import create_binding, delete_pod
from ktriage.core.ingest import Ingestor
from ktriage.core.model import EntityKind, Event, entity
from ktriage.core.parse.audit import OWN_REQUEST_KIND
from ktriage.kubeclient import USER_AGENT, client_from_kubeconfig

pytestmark = pytest.mark.sim


def _audit_events(sim: Any, offset: int) -> tuple[list[dict], list[Event]]:
    """The audit records written since byte `offset`, and what the ingestor made of them."""
    data = sim.outputs.audit_path.read_bytes()[offset:]
    ingestor = Ingestor()
    records, events = [], []
    for i, line in enumerate(data.splitlines()):
        records.append(json.loads(line))
        events.extend(ingestor.feed_line(line, origin=f"audit:{i}"))
    events.extend(ingestor.flush())
    return records, events


def _cluster_admin_binding(ns: str, name: str) -> dict:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": unique("restore")},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                    "name": "cluster-admin"},
        "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": ns}],
    }  # fmt: skip


async def test_ktriage_dry_runs_and_checks_read_back_from_the_audit_log_are_no_signal(
    sim: Any, tmp_path: Path
) -> None:
    ns, name = unique("ci"), unique("runner")
    _sa(sim, ns, name)
    sim.store.apply({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db",
                     "namespace": ns}, "data": {"password": "c2VjcmV0"}})  # fmt: skip
    offset = sim.outputs.audit_path.stat().st_size
    engine, incident = _engine_with_actor(entity(EntityKind.SERVICE_ACCOUNT, ns, name))
    service = make_service(sim, engine, tmp_path)
    try:
        plan = await service.prepare("R", incident, Target(EntityKind.SERVICE_ACCOUNT, ns, name))
        assert "dryRun=All" in plan.dry_run
    finally:
        service.close()
    api = client_from_kubeconfig(str(sim.kubeconfig_path), "sim-admin")
    try:
        create_binding(Kube(api), _cluster_admin_binding(ns, name), dry_run=True)
    finally:
        api.close()
    records, events = _audit_events(sim, offset)
    ours = [r for r in records if r.get("userAgent") == USER_AGENT]
    assert any("dryRun=All" in r.get("requestURI", "") for r in ours), ours
    assert any((r.get("objectRef") or {}).get("resource") == "secrets" for r in ours)
    assert [(e.kind, e.summary) for e in events if e.signal] == []
    assert len([e for e in events if e.kind == OWN_REQUEST_KIND]) == len(ours)


async def test_hostile_the_same_requests_under_a_copied_ktriage_agent_are_signals(
    sim: Any,
) -> None:
    from kubernetes import client

    ns, name = unique("ci"), unique("runner")
    seed_namespace(sim.store, ns)
    offset = sim.outputs.audit_path.stat().st_size
    api = client_from_kubeconfig(str(sim.kubeconfig_path), "sim-admin")
    api.user_agent = USER_AGENT.split(" ", 1)[0]  # `ktriage/<version>`, no session
    try:
        client.CoreV1Api(api).list_namespaced_secret(ns)
        create_binding(Kube(api), _cluster_admin_binding(ns, name))
    finally:
        api.close()
    _, events = _audit_events(sim, offset)
    kinds = sorted(e.kind for e in events if e.signal)
    assert "secret-list" in kinds and any("cluster-admin" in e.summary for e in events if e.signal)
    assert all(e.kind != OWN_REQUEST_KIND for e in events)


async def test_a_dry_run_pod_delete_leaves_the_pod(sim: Any) -> None:
    ns, node = unique("web"), unique("node")
    seed_namespace(sim.store, ns)
    seed_node(sim.store, node)
    pod = seed_pod(sim.store, ns, unique("api"), node=node)
    pod_name = pod["metadata"]["name"]
    api = client_from_kubeconfig(str(sim.kubeconfig_path), "sim-admin")
    try:
        delete_pod(Kube(api), ns, pod_name, uid=pod["metadata"]["uid"], dry_run=True)
    finally:
        api.close()
    kept = sim.store.get_obj("v1", "Pod", ns, pod_name)
    assert kept is not None and not kept["metadata"].get("deletionTimestamp")


async def test_hostile_delete_with_dry_run_only_in_the_query_beside_a_body_deletes(
    sim: Any,
) -> None:
    """As the API server: the body's options win, the query's dryRun is ignored."""
    from kubernetes import client

    ns, node = unique("web"), unique("node")
    seed_namespace(sim.store, ns)
    seed_node(sim.store, node)
    pod_name = seed_pod(sim.store, ns, unique("api"), node=node)["metadata"]["name"]
    api = client_from_kubeconfig(str(sim.kubeconfig_path), "sim-admin")
    try:
        client.CoreV1Api(api).delete_namespaced_pod(
            pod_name, ns, body={"apiVersion": "v1", "kind": "DeleteOptions"}, dry_run="All",
            grace_period_seconds=0,
        )  # fmt: skip
    finally:
        api.close()
    assert sim.store.get_obj("v1", "Pod", ns, pod_name) is None or (
        sim.store.get_obj("v1", "Pod", ns, pod_name)["metadata"].get("deletionTimestamp")
    )
