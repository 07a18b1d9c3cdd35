"""Each bundled scenario's RBAC tells its story: every request a scenario's actor makes
(a person, or a service account outside kube-system) is allowed by the sim's own RBAC
authorizer when the audit log says it succeeded, and denied when it says 403."""

from __future__ import annotations

import asyncio
import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from ktriage.sim.audit import AuditWriter
from ktriage.sim.auth import bootstrap
from ktriage.sim.auth.authorization import Attributes
from ktriage.sim.auth.rbac import RBACAuthorizer
from ktriage.sim.clock import ManualClock
from ktriage.sim.controllers.clusterroleaggregation import ClusterRoleAggregationController
from ktriage.sim.outputs import SimOutputs
from ktriage.sim.scenario.format import load_scenario
from ktriage.sim.scenario.player import ScenarioPlayer
from ktriage.sim.storage.store import ClusterStore

START = 1_800_000_000.0
SCENARIOS = ["cryptominer", "token-theft", "quiet-day", "hostile"]
AGGREGATOR = "system:serviceaccount:kube-system:clusterrole-aggregation-controller"


@dataclass(frozen=True)
class Who:
    username: str
    all_groups: list[str] = field(default_factory=list)


class JudgingAuditWriter(AuditWriter):
    """An audit log that also asks the sim's RBAC, at the moment each request is logged
    (the cluster as it then was), whether it would have been allowed."""

    def __init__(self, outputs: SimOutputs, clock: ManualClock, store: ClusterStore) -> None:
        super().__init__(outputs, clock)
        self.authorizer = RBACAuthorizer(store)
        self.judged: list[tuple[dict, bool]] = []
        logged = super().emit

        # The player passes only the parameters `emit` declares: keep its signature.
        @functools.wraps(logged)
        def emit(**kw: Any) -> dict:
            rec = logged(**kw)
            if rec.get("stage") != "RequestReceived" and actor(rec):
                allowed = self.authorizer.authorize(who(rec), attributes(rec)).allowed
                self.judged.append((rec, allowed))
            return rec

        self.emit = emit  # type: ignore[method-assign]


def played(name: str, tmp: Path) -> tuple[ClusterStore, list[tuple[dict, bool]]]:
    """The cluster a scenario leaves (with the bootstrap RBAC the sim's server seeds
    first) and each actor's request with the RBAC decision it would have had."""
    clock = ManualClock(start=START)
    outputs = SimOutputs(tmp)
    store = ClusterStore(clock)
    bootstrap.seed(store, "sim-viewer")
    # admin, edit and view get their rules from the aggregation controller, as live.
    loop = asyncio.new_event_loop()
    try:
        ClusterRoleAggregationController(store, loop).sync_all()
    finally:
        loop.close()
    audit = JudgingAuditWriter(outputs, clock, store)
    player = ScenarioPlayer(
        load_scenario(name), store=store, audit=audit, outputs=outputs, clock=clock
    )
    player.play_all()
    outputs.close()
    assert player.errors == []
    return store, audit.judged


def who(rec: dict) -> Who:
    """Whose rights the request used (the impersonated identity's, when there is one)."""
    user = rec.get("impersonatedUser") or rec["user"]
    return Who(user["username"], list(user.get("groups", [])))


def actor(rec: dict) -> bool:
    """A request the scenario's story makes (not the control plane's)."""
    name = rec.get("user", {}).get("username", "")
    if name.startswith("system:serviceaccount:"):
        return not name.startswith("system:serviceaccount:kube-system:")
    return bool(name) and not name.startswith("system:")


def attributes(rec: dict) -> Attributes:
    ref = rec.get("objectRef") or {}
    return Attributes(
        verb=rec["verb"],
        resource_request=bool(ref),
        path=rec.get("requestURI", "").partition("?")[0],
        api_group=ref.get("apiGroup", ""),
        api_version=ref.get("apiVersion", ""),
        resource=ref.get("resource", ""),
        subresource=ref.get("subresource", ""),
        namespace=ref.get("namespace", ""),
        name=ref.get("name", ""),
    )


def contradictions(judged: list[tuple[dict, bool]]) -> list[str]:
    """Requests whose audited outcome the sim's RBAC would not have given."""
    wrong: list[str] = []
    for rec, allowed in judged:
        code = (rec.get("responseStatus") or {}).get("code", 200)
        if allowed != (code != 403):
            wrong.append(f"{who(rec).username} {rec['verb']} {rec.get('requestURI')} -> {code}")
    return wrong


@pytest.mark.parametrize("name", SCENARIOS)
def test_every_audited_request_matches_the_sims_rbac(name: str, tmp_path: Path) -> None:
    _, judged = played(name, tmp_path)
    assert judged
    assert contradictions(judged) == []


def test_cryptominer_ci_deploy_may_exec_in_shop_only(tmp_path: Path) -> None:
    store, _ = played("cryptominer", tmp_path)
    authorizer = RBACAuthorizer(store)
    who = Who("ci-deploy", ["ci-deployers", "system:authenticated"])
    exec_in = Attributes("create", True, resource="pods", subresource="exec", namespace="shop")
    assert authorizer.authorize(who, exec_in).allowed
    elsewhere = Attributes("create", True, resource="pods", subresource="exec",
                           namespace="kube-system")  # fmt: skip
    assert not authorizer.authorize(who, elsewhere).allowed


def test_token_theft_aggregation_controller_has_its_bootstrap_rights(tmp_path: Path) -> None:
    store, _ = played("token-theft", tmp_path)
    authorizer = RBACAuthorizer(store)
    who = Who(AGGREGATOR, ["system:serviceaccounts", "system:serviceaccounts:kube-system",
                           "system:authenticated"])  # fmt: skip
    rbac = "rbac.authorization.k8s.io"
    for verb in ("escalate", "update", "patch", "get", "list", "watch"):
        attrs = Attributes(verb, True, api_group=rbac, resource="clusterroles", name="admin")
        assert authorizer.authorize(who, attrs).allowed, verb
    assert not authorizer.authorize(who, Attributes("list", True, resource="secrets")).allowed
    role = store.get_obj(bootstrap.RBAC, "ClusterRole", None,
                         "system:controller:clusterrole-aggregation-controller")  # fmt: skip
    assert role is not None
    assert role["metadata"]["labels"] == {"kubernetes.io/bootstrapping": "rbac-defaults"}
