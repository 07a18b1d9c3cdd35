"""The blast radius against the simulated cluster: its RBAC authorizer is real, so
SelfSubjectRulesReview, impersonation and 403s are served as kube-apiserver serves
them. The token-theft demo's incident must show the path from the stolen CI token
to cluster-admin, before the attacker took it (bind + create ClusterRoleBindings)
and after (the new ClusterRoleBinding), and the reader must notice that change."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import orjson
import pytest

from ktriage.blastread import REVIEW_TTL, BlastReader
from ktriage.core import blast
from ktriage.core.correlate import Correlator
from ktriage.core.model import EntityKind
from ktriage.core.replay import Replayer
from ktriage.kubeclient import client_from_kubeconfig
from ktriage.sim.clock import ManualClock
from ktriage.sim.runner import SimCluster
from ktriage.sim.scenario.format import load_scenario

pytestmark = pytest.mark.sim

RUNNER = blast.Identity.service_account("ci", "runner")
ESCALATION_AT = 150  # the scenario's ClusterRoleBinding to cluster-admin


def factory(sim: SimCluster, context: str = "sim-admin") -> Callable[[], Any]:
    return lambda: client_from_kubeconfig(str(sim.kubeconfig_path), context)


def play_until(sim: SimCluster, steps: int, timeout: float = 60.0) -> None:
    """Move the ManualClock a second at a time until `steps` scenario steps have run."""
    deadline = time.monotonic() + timeout
    while sim.player is None or sim.player.steps_done < steps:
        assert time.monotonic() < deadline, "the scenario did not get there in time"
        sim.advance(1.0)


def runner_pod(sim: SimCluster) -> tuple[str, str]:
    pods = sim.store.list_objs("v1", "Pod", "ci")
    assert pods, "no pod in namespace ci"
    return "ci", pods[0]["metadata"]["name"]


def cluster_admin_paths(result: blast.BlastResult) -> list[blast.Path]:
    return [p for p in result.paths if p.goal == "cluster-admin"]


@pytest.fixture
def token_theft(make_sim_cluster: Callable[..., SimCluster]) -> SimCluster:
    return make_sim_cluster(scenario="token-theft", clock=ManualClock())


def test_token_theft_path_to_cluster_admin_before_and_after_the_escalation(
    token_theft: SimCluster,
) -> None:
    sim = token_theft
    steps = load_scenario("token-theft").steps
    play_until(sim, sum(1 for s in steps if s.at < ESCALATION_AT))
    reader = BlastReader(factory(sim))
    before = reader.compute([RUNNER], [runner_pod(sim)])

    ident = before.identities[0]
    assert ident.method.startswith("SelfSubjectRulesReview while impersonating")
    assert not ident.cluster_admin
    assert {"bind", "write-bindings", "create-pods", "secrets"} <= {r.key for r in ident.rights}
    path = cluster_admin_paths(before)[0]
    assert path.start.startswith("Pod ci/runner-")
    assert path.steps[0].text == "mounts the token of ServiceAccount ci/runner"
    assert "binds itself to cluster-admin" in path.steps[1].text
    assert path.steps[1].cite == "ClusterRoleBinding ci-runner → ClusterRole ci-runner"
    calls = reader.review_calls
    assert calls >= 3  # one review per namespace

    # Unchanged RBAC: the reviews are reused.
    reader.compute([RUNNER], [runner_pod(sim)])
    assert reader.review_calls == calls

    play_until(sim, len(steps))
    after = reader.compute([RUNNER], [runner_pod(sim)])
    assert reader.review_calls > calls, "a new ClusterRoleBinding must refresh the reviews"
    assert after.identities[0].cluster_admin
    path = cluster_admin_paths(after)[0]
    assert path.steps[-1].cite == "ClusterRoleBinding ci-runner-admin → ClusterRole cluster-admin"


def test_token_theft_incident_blast_radius(token_theft: SimCluster) -> None:
    """The demo's incident, as replay finds it in the sim's streams: its identities and
    pods, the path from the CI token, and the attacker's privileged pod's node."""
    sim = token_theft
    play_until(sim, len(load_scenario("token-theft").steps))
    replay = Replayer(Correlator())
    replay.replay([sim.outputs.audit_path, sim.outputs.falco_path, sim.outputs.tetragon_path])
    incident = next(
        inc
        for inc in replay.correlator.incidents.values()
        if any(e.kind == EntityKind.SERVICE_ACCOUNT and e.name == "runner" for e in inc.entities)
    )
    identities, _ = blast.targets_of(incident)
    assert RUNNER.user in [i.user for i in identities]
    result = BlastReader(factory(sim)).compute_incident(incident)

    paths = cluster_admin_paths(result)
    assert paths, blast.render_lines(result)
    assert any(p.start.startswith("Pod ci/runner-") or p.start == RUNNER.label for p in paths)
    text = "\n".join(blast.render_lines(result))
    assert "ClusterRoleBinding ci-runner-admin → ClusterRole cluster-admin" in text
    # The attacker's privileged pod is in the incident: its node is in the blast radius.
    pwn = next(p for p in result.pods if p.name == "pwn-x7k2q")
    assert any("privileged" in h for h in pwn.host_access)
    assert pwn.node == "worker-2" and pwn.neighbour_count > 0
    on_worker_2 = {
        f"{o['metadata']['namespace']}/{o['metadata']['name']}"
        for o in sim.store.list_objs("v1", "Pod")
        if o["spec"].get("nodeName") == "worker-2"
    }
    assert {other for other, _ in pwn.neighbours} == on_worker_2 - {"kube-system/pwn-x7k2q"}
    # The runner's namespace has no NetworkPolicy: said, not guessed.
    runner = next(p for p in result.pods if p.namespace == "ci")
    assert any("no NetworkPolicy" in line for line in runner.ingress)


def test_server_resolved_aggregation_both_methods(sim_cluster: SimCluster, kube_api: Any) -> None:
    from kubernetes import client as k8s

    rbac = k8s.RbacAuthorizationV1Api(kube_api)
    rbac.create_namespaced_role_binding(
        "shop",
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": "ci-edit"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "edit",
            },
            "subjects": [{"kind": "ServiceAccount", "name": "default", "namespace": "shop"}],
        },
    )
    edit = rbac.read_cluster_role("edit")
    assert edit.rules, "the aggregation controller fills edit"
    who = blast.Identity.service_account("shop", "default")
    for impersonate in (True, False):
        reader = BlastReader(factory(sim_cluster), impersonate=impersonate)
        ident = reader.compute([who], []).identities[0]
        rights = {r.key: r for r in ident.rights}
        assert rights["exec"].where == ("shop",), (impersonate, rights["exec"])
        assert rights["secrets"].where == ("shop",)
        assert "RoleBinding shop/ci-edit → ClusterRole edit" in rights["exec"].cites
        assert ident.method.startswith(
            "SelfSubjectRulesReview" if impersonate else "evaluated from the Roles"
        )


def test_hostile_impersonation_forbidden_and_rbac_unreadable_are_said(
    sim_cluster: SimCluster,
) -> None:
    # The read-only context: `view` (no RBAC objects, no Secrets) and no impersonation.
    reader = BlastReader(factory(sim_cluster, "sim-readonly"))
    who = blast.Identity.service_account("shop", "default")
    result = reader.compute([who], [("shop", "web-1")])
    ident = result.identities[0]
    assert ident.method.startswith("evaluated from the Roles")
    assert any(
        n.startswith(
            f"SelfSubjectRulesReview not used: could not impersonate {who.user}: forbidden"
        )
        for n in ident.not_seen
    ), ident.not_seen
    assert "could not list clusterrolebindings: forbidden" in " ".join(result.not_seen)
    assert any("rights may be missing" in n for n in ident.not_seen)
    # What it could read is still used: the pod, its node, its network.
    assert result.pods[0].found and result.pods[0].node == "worker-1"


def test_reads_no_secret_by_default_and_only_metadata_when_asked(sim_cluster: SimCluster) -> None:
    reader = BlastReader(factory(sim_cluster))
    view = reader.read(reader._client(), time.monotonic() + 10)
    assert view.secrets == [] and "secrets" not in view.seen
    assert any("Secrets were not listed" in n for n in view.not_seen)

    def audited() -> list[dict[str, Any]]:
        lines = sim_cluster.outputs.audit_path.read_bytes().splitlines()
        return [orjson.loads(line) for line in lines]

    def lists_of(resource: str) -> list[dict[str, Any]]:
        return [
            r
            for r in audited()
            if r.get("verb") == "list" and (r.get("objectRef") or {}).get("resource") == resource
        ]

    # The reader's lists are in the audit log (so the log is being written)...
    deadline = time.monotonic() + 10
    while not lists_of("clusterrolebindings"):
        assert time.monotonic() < deadline, "the reader's lists never reached the audit log"
        time.sleep(0.05)
    # ...and none of them is a list of Secrets.
    assert lists_of("pods") and not lists_of("secrets")

    with_secrets = BlastReader(factory(sim_cluster), read_secrets=True)
    view = with_secrets.read(with_secrets._client(), time.monotonic() + 10)
    assert "secrets" in view.seen and view.secrets
    assert all("data" not in s and "stringData" not in s for s in view.secrets)
    assert "db-password" in {s["metadata"]["name"] for s in view.secrets}


def test_hostile_deadline_already_passed(sim_cluster: SimCluster) -> None:
    reader = BlastReader(factory(sim_cluster), timeout=0.0)
    result = reader.compute([blast.Identity.service_account("shop", "default")], [("shop", "x")])
    assert "could not list pods: timed out" in result.not_seen
    assert result.identities[0].method.startswith("evaluated from the Roles")
    assert blast.render_lines(result)


def test_hostile_cluster_gone_in_the_middle(make_sim_cluster: Callable[..., SimCluster]) -> None:
    sim = make_sim_cluster()
    reader = BlastReader(factory(sim), timeout=5.0)
    who = blast.Identity.service_account("default", "default")
    assert reader.compute([who], []).identities[0].method.startswith("SelfSubjectRulesReview")
    sim.stop()
    started = time.monotonic()
    result = reader.compute([who], [("default", "x")])
    assert time.monotonic() - started < 10
    assert any(n.startswith("could not list pods:") for n in result.not_seen), result.not_seen
    assert not result.pods[0].found


def test_reviews_expire_when_rbac_cannot_be_read(sim_cluster: SimCluster) -> None:
    # sim-readonly cannot list RBAC objects, so a change of them cannot be seen:
    # what the reviews said (here: impersonation forbidden) holds for a while only.
    now = [1000.0]
    reader = BlastReader(factory(sim_cluster, "sim-readonly"), clock=lambda: now[0])
    who = [blast.Identity.service_account("shop", "default")]
    reader.compute(who, [])
    assert reader.review_calls == 1
    reader.compute(who, [])
    assert reader.review_calls == 1
    now[0] += REVIEW_TTL + 1
    reader.compute(who, [])
    assert reader.review_calls == 2


def test_hostile_ten_thousand_bindings_read_in_pages(sim_cluster: SimCluster) -> None:
    ref = {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"}
    for i in range(10_000):
        sim_cluster.store.apply(
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "RoleBinding",
                "metadata": {"namespace": "shop", "name": f"flood-{i:05d}"},
                "roleRef": ref,
                "subjects": [{"kind": "ServiceAccount", "namespace": "shop", "name": f"sa-{i}"}],
            }
        )
    sim_cluster.store.apply(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"namespace": "shop", "name": "zz-edit"},
            "roleRef": dict(ref, name="edit"),
            "subjects": [{"kind": "ServiceAccount", "namespace": "shop", "name": "sa-7"}],
        }
    )
    reader = BlastReader(factory(sim_cluster), impersonate=False, timeout=30)
    view = reader.read(reader._client(), time.monotonic() + 30)
    assert len(view.role_bindings) >= 10_001  # every page of PAGE was read
    started = time.monotonic()
    result = reader.compute([blast.Identity.service_account("shop", "sa-7")], [])
    assert time.monotonic() - started < 15
    rights = {r.key: r for r in result.identities[0].rights}
    assert rights["exec"].cites == ("RoleBinding shop/zz-edit → ClusterRole edit",)
