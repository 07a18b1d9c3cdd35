"""Shared helpers for the action tests (no tests here): seeded objects, an engine with an
incident, an ActionService on the admin or read-only context, and kubectl.

The fixtures built on them are in `conftest.py`: `sim` (a simulated cluster of the test
module's own on loopback: module scope, a few hundred milliseconds), `seeded_pod` and
`acting`. Tests seed the objects they need under unique names, so they neither share
state nor depend on the scenario's seed objects.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, NamedTuple

from ktriage.actions import ActionService, RetryPolicy, kubeconfig_factory
from ktriage.core.model import EntityKind, Event, Severity, entity
from ktriage.engine import Engine

REPO = Path(__file__).resolve().parents[2]
KUBECTL = REPO / ".venv" / "bin" / "kubectl"
if not KUBECTL.exists():
    KUBECTL = Path(sys.prefix) / "bin" / "kubectl"

# Short and bounded, so fault tests finish fast.
FAST_RETRY = RetryPolicy(
    attempts=3, base_delay=0.05, max_delay=0.2, max_retry_after=1.5, timeout=2.0
)
_names = itertools.count(1)


class SeededPod(NamedTuple):
    """conftest's `seeded_pod`."""

    ns: str
    node: str
    pod: str


class Acting(NamedTuple):
    """conftest's `acting`: a seeded pod, an incident about it, a service to act with."""

    ns: str
    node: str
    pod: str
    incident: str
    service: ActionService


def unique(prefix: str) -> str:
    return f"{prefix}-{next(_names)}"


def seed_namespace(store: Any, ns: str) -> None:
    if store.get_obj("v1", "Namespace", None, ns) is None:
        store.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})


def seed_node(store: Any, name: str, *, unschedulable: bool = False) -> dict:
    node: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
        "spec": {"unschedulable": True} if unschedulable else {},
        "status": {
            "addresses": [{"type": "InternalIP", "address": "10.0.0.9"}],
            "conditions": [{"type": "Ready", "status": "True"}],
        },
    }
    return store.apply(node)


def seed_pod(
    store: Any,
    ns: str,
    name: str,
    *,
    node: str,
    labels: dict[str, str] | None = None,
    containers: tuple[str, ...] = ("app",),
    init: tuple[str, ...] = (),
    owner: dict[str, Any] | None = None,
) -> dict:
    seed_namespace(store, ns)
    meta: dict[str, Any] = {
        "name": name,
        "namespace": ns,
        "labels": dict(labels or {"app": name}),
    }
    if owner is not None:
        meta["ownerReferences"] = [owner]
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": meta,
        "spec": {
            "nodeName": node,
            "initContainers": [{"name": c, "image": "busybox:1.36"} for c in init],
            "containers": [{"name": c, "image": "nginx:1.27"} for c in containers],
        },
    }
    if not init:
        del pod["spec"]["initContainers"]
    return store.apply(pod)


def seed_policy(store: Any, ns: str, name: str, spec: dict[str, Any]) -> dict:
    return store.apply(
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": name, "namespace": ns},
            "spec": spec,
        }
    )


def seed_cluster_role_binding(
    store: Any, name: str, role: str, subjects: list[dict[str, str]]
) -> dict:
    return store.apply(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": name},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": role,
            },
            "subjects": subjects,
        }
    )


def engine_with_incident(ns: str, pod: str, node: str = "") -> tuple[Engine, str]:
    """An engine holding one incident about the pod (a shell alert)."""
    engine = Engine()
    entities = [entity(EntityKind.POD, ns, pod)]
    if node:
        entities.append(entity(EntityKind.NODE, None, node))
    signal = Event(
        time=time.time() - 60,
        source="falco",
        ref=unique("falco-alert"),
        kind="shell",
        severity=Severity.HIGH,
        summary=f"Shell spawned in {ns}/{pod}",
        entities=tuple(entities),
        signal=True,
        label="Shell",
    )
    engine.add_events([signal])
    (incident,) = engine.correlator.incidents.values()
    return engine, incident.id


def make_service(
    sim: Any,
    engine: Engine | None,
    snapshot_dir: Path,
    *,
    context: str = "sim-admin",
    read_only: bool = False,
    retry: RetryPolicy = FAST_RETRY,
) -> ActionService:
    return ActionService(
        engine,
        kubeconfig_factory(str(sim.kubeconfig_path), context),
        snapshot_dir,
        read_only=read_only,
        retry=retry,
    )


def kubectl(sim: Any, tmp_path: Path, *args: str) -> Any:
    """Run the real kubectl against the simulated cluster; JSON output decoded."""
    env = dict(os.environ, KUBECACHEDIR=str(tmp_path / f"kubecache-{next(_names)}"))
    done = subprocess.run(
        [str(KUBECTL), "--kubeconfig", str(sim.kubeconfig_path), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    return json.loads(out) if out.lstrip().startswith("{") else out


def audit_lines(sim: Any) -> list[dict]:
    path = Path(sim.outputs.audit_path)
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
