"""Revoking a ServiceAccount's credentials when its Secrets are not what they seem: token
Secrets of another account or of an earlier namesake are left alone, the recreated account
keeps no reference to a deleted token, and a token already deleted by someone else is not
a failure. Against the simulated cluster on loopback."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from test_actions_identity import _engine_with_actor
from test_actions_support import (
    make_service,
    seed_namespace,
    unique,
)

from ktriage.actions import OK
from ktriage.actions.base import Target
from ktriage.core.model import EntityKind, entity

pytestmark = pytest.mark.sim


def _token_secret(sim: Any, ns: str, name: str, account: str, uid: str) -> dict:
    return sim.store.apply(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "kubernetes.io/service-account-token",
            "metadata": {
                "name": name,
                "namespace": ns,
                "annotations": {
                    "kubernetes.io/service-account.name": account,
                    "kubernetes.io/service-account.uid": uid,
                },
            },
            "data": {"token": "c3RvbGVu"},
        }
    )


async def test_hostile_lookalike_token_secrets_are_left_alone_and_references_dropped(
    sim: Any, tmp_path: Path
) -> None:
    ns, name = unique("ci"), unique("runner")
    seed_namespace(sim.store, ns)
    mine = f"{name}-token-mine1"
    sa = sim.store.apply(
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": name, "namespace": ns},
            # The legacy reference to its token, and one to a Secret that is not a token.
            "secrets": [{"name": mine}, {"name": "registry-pull"}],
        }
    )
    uid = sa["metadata"]["uid"]
    _token_secret(sim, ns, mine, name, uid)
    # A token of another account, and one of an earlier account of the same name.
    _token_secret(sim, ns, f"{name}-token-other", "someone-else", "uid-of-someone-else")
    _token_secret(sim, ns, f"{name}-token-old", name, "uid-of-an-earlier-namesake")
    engine, incident = _engine_with_actor(entity(EntityKind.SERVICE_ACCOUNT, ns, name))
    service = make_service(sim, engine, tmp_path)
    target = Target(EntityKind.SERVICE_ACCOUNT, ns, name)
    try:
        plan = await service.prepare("R", incident, target)
        deleted = [c.target.name for c in plan.changes if c.verb == "delete"]
        assert deleted == [mine, name]
        # Someone deletes the token first: its 404 is what revoking wanted anyway.
        sim.store.delete("v1", "Secret", ns, mine)
        outcome = await service.apply(plan)
        assert outcome.result == OK, outcome.message
    finally:
        service.close()
    now = sim.store.get_obj("v1", "ServiceAccount", ns, name)
    assert now["metadata"]["uid"] != uid
    assert now.get("secrets") == [{"name": "registry-pull"}]
    left = {s["metadata"]["name"] for s in sim.store.list_objs("v1", "Secret", ns)}
    assert {f"{name}-token-other", f"{name}-token-old"} <= left


async def test_revoke_in_kube_system_warns_before_anything_is_done(
    sim: Any, tmp_path: Path
) -> None:
    name = unique("addon")
    seed_namespace(sim.store, "kube-system")
    sim.store.apply(
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": name, "namespace": "kube-system"},
        }
    )
    engine, incident = _engine_with_actor(entity(EntityKind.SERVICE_ACCOUNT, "kube-system", name))
    service = make_service(sim, engine, tmp_path)
    try:
        plan = await service.prepare(
            "R", incident, Target(EntityKind.SERVICE_ACCOUNT, "kube-system", name)
        )
        assert any(
            "lives in kube-system: a cluster component may run as it" in w for w in plan.warnings
        ), plan.warnings
        assert sim.store.get_obj("v1", "ServiceAccount", "kube-system", name) is not None
    finally:
        service.close()
