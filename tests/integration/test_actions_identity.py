"""Identity containment against the simulated cluster's RBAC authorizer and token issuer:
remove an identity's bindings (and undo them exactly), revoke a ServiceAccount's
credentials (a token minted before answers 401 afterwards), and what cannot be revoked."""

from __future__ import annotations

import copy
import json
import os
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_actions_support import (
    KUBECTL,
    kubectl,
    make_service,
    seed_namespace,
    seed_node,
    seed_pod,
    unique,
)
from waiting import wait_for

from ktriage.actions import OK, UNCHANGED, UNDONE, ActionError, Target
from ktriage.actions.identity import clean
from ktriage.core.model import EntityKind, Event, Severity, entity
from ktriage.engine import Engine
from ktriage.ui.screens.action_confirm import plan_text

pytestmark = pytest.mark.sim

RBAC = "rbac.authorization.k8s.io/v1"


@pytest.fixture
def admin(sim: Any) -> Iterator[Any]:
    from kubernetes import config

    api = config.new_client_from_config(str(sim.kubeconfig_path), context="sim-admin")
    yield api
    api.close()


def _can_i(sim: Any, tmp_path: Path, *args: str, context: str = "sim-admin") -> str:
    """`kubectl auth can-i ...`: "yes" or "no" (kubectl exits 1 on "no")."""
    import subprocess

    env = dict(os.environ, KUBECACHEDIR=str(tmp_path / f"kubecache-{unique('c')}"))
    done = subprocess.run(
        [
            str(KUBECTL),
            "--kubeconfig",
            str(sim.kubeconfig_path),
            "--context",
            context,
            "auth",
            "can-i",
            *args,
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
        check=False,
    )
    return done.stdout.strip()


def _sa(sim: Any, ns: str, name: str) -> dict:
    seed_namespace(sim.store, ns)
    return sim.store.apply(
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name, "namespace": ns}}
    )


def _binding(sim: Any, kind: str, name: str, role: str, subjects: list[dict], ns: str = "") -> dict:
    meta: dict[str, Any] = {"name": name, "labels": {"team": "platform"}}
    if ns:
        meta["namespace"] = ns
    return sim.store.apply(
        {
            "apiVersion": RBAC,
            "kind": kind,
            "metadata": meta,
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": role,
            },
            "subjects": subjects,
        }
    )


def _sa_subject(ns: str, name: str) -> dict:
    return {"kind": "ServiceAccount", "name": name, "namespace": ns}


def _engine_with_actor(actor: Any, audit: list[dict] | None = None) -> tuple[Engine, str]:
    """An engine with one incident whose actor is `actor` (its audit records inline)."""
    engine = Engine()
    events = []
    for i, raw in enumerate(audit or [{"verb": "list", "objectRef": {"resource": "secrets"}}]):
        events.append(
            Event(
                time=time.time() - 60 + i,
                source="audit",
                ref=unique("audit"),
                kind="secrets-list",
                severity=Severity.HIGH,
                summary="a request by the actor",
                entities=(actor,),
                signal=True,
                label="Secrets listed",
                raw_inline=raw,
            )
        )
    engine.add_events(events)
    (incident,) = engine.correlator.incidents.values()
    return engine, incident.id


def _token(admin: Any, ns: str, name: str) -> str:
    from kubernetes import client

    body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {}}
    out = client.CoreV1Api(admin).create_namespaced_service_account_token(name, ns, body)
    return out.status.token


def _whoami_status(admin: Any, token: str) -> int:
    from kubernetes import client

    conf = copy.copy(admin.configuration)
    conf.api_key = {"authorization": token}
    conf.api_key_prefix = {"authorization": "Bearer"}
    conf.refresh_api_key_hook = None
    conf.cert_file = conf.key_file = None
    api = client.ApiClient(conf)
    body = {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
    try:
        client.AuthenticationV1Api(api).create_self_subject_review(body)
    except client.ApiException as exc:
        return int(exc.status)
    finally:
        api.close()
    return 200


async def test_unbind_removes_the_bindings_and_undo_recreates_them_exactly(
    sim: Any, tmp_path: Path
) -> None:
    ns, name = unique("ci"), unique("runner")
    _sa(sim, ns, name)
    me = _sa_subject(ns, name)
    other = _sa_subject(ns, "bystander")
    sole = _binding(sim, "ClusterRoleBinding", unique("pwn-admin"), "cluster-admin", [me])
    shared = _binding(sim, "RoleBinding", unique("readers"), "view", [me, other], ns=ns)
    # The same identity, named as a User by its full username: RBAC grants it too.
    as_user = {"kind": "User", "name": f"system:serviceaccount:{ns}:{name}"}
    by_username = _binding(sim, "RoleBinding", unique("by-name"), "edit", [as_user], ns=ns)
    unrelated = _binding(sim, "RoleBinding", unique("others"), "view", [other], ns=ns)
    who = f"system:serviceaccount:{ns}:{name}"
    assert _can_i(sim, tmp_path, "delete", "nodes", f"--as={who}") == "yes"
    engine, incident = _engine_with_actor(entity(EntityKind.SERVICE_ACCOUNT, ns, name))
    service = make_service(sim, engine, tmp_path)
    target = Target(EntityKind.SERVICE_ACCOUNT, ns, name)
    try:
        plan = await service.prepare("B", incident, target)
        verbs = {(c.verb, c.target.name) for c in plan.changes}
        assert verbs == {
            ("delete", sole["metadata"]["name"]),
            ("update", shared["metadata"]["name"]),
            ("delete", by_username["metadata"]["name"]),
        }
        assert "dryRun" in plan.dry_run
        # The dry run changed nothing.
        assert _can_i(sim, tmp_path, "delete", "nodes", f"--as={who}") == "yes"

        outcome = await service.apply(plan)
        assert outcome.result == OK, outcome.message
        (removed,) = outcome.containment
        assert removed == {
            "aspect": "identity",
            "subject": f"serviceaccount {ns}/{name}",
            "state": "bindings-removed",
            "detail": removed["detail"],
        }
        assert "no RoleBinding or ClusterRoleBinding names it" in removed["detail"]
        # Checked with the real kubectl against the RBAC authorizer.
        assert _can_i(sim, tmp_path, "delete", "nodes", f"--as={who}") == "no"
        assert _can_i(sim, tmp_path, "list", "pods", "-n", ns, f"--as={who}") == "no"
        left = kubectl(sim, tmp_path, "get", "rolebindings", "-n", ns, "-o", "json")
        by_name = {b["metadata"]["name"]: b for b in left["items"]}
        assert by_name[shared["metadata"]["name"]]["subjects"] == [other]
        assert unrelated["metadata"]["name"] in by_name
        # The full objects were saved first, privately.
        (saved,) = outcome.files
        path = tmp_path / saved["path"]
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        kept = json.loads(path.read_text())
        assert {b["metadata"]["uid"] for b in kept} == {
            sole["metadata"]["uid"],
            shared["metadata"]["uid"],
            by_username["metadata"]["uid"],
        }

        undo = await service.undo(incident, target)
        assert undo.result == UNDONE, undo.message
        assert undo.containment[0]["state"] == "restored"
    finally:
        service.close()
    assert _can_i(sim, tmp_path, "delete", "nodes", f"--as={who}") == "yes"
    back = kubectl(
        sim, tmp_path, "get", "clusterrolebinding", sole["metadata"]["name"], "-o", "json"
    )
    assert clean(back)["roleRef"] == clean(sole)["roleRef"]
    assert back["subjects"] == sole["subjects"]
    assert back["metadata"]["labels"] == sole["metadata"]["labels"]
    shared_back = kubectl(
        sim, tmp_path, "get", "rolebinding", shared["metadata"]["name"], "-n", ns, "-o", "json"
    )
    assert sorted(map(json.dumps, shared_back["subjects"])) == sorted(map(json.dumps, [me, other]))


async def test_unbind_deletes_a_binding_the_actor_created_in_the_incident(
    sim: Any, tmp_path: Path
) -> None:
    """The attacker bound cluster-admin to another account: that binding goes too,
    found from the incident's audit records, and the plan says who else loses it."""
    ns, name = unique("ci"), unique("runner")
    _sa(sim, ns, name)
    planted = _binding(
        sim, "ClusterRoleBinding", unique("backdoor"), "cluster-admin", [_sa_subject(ns, "sleeper")]
    )
    created = {
        "verb": "create",
        "user": {"username": f"system:serviceaccount:{ns}:{name}"},
        "objectRef": {"resource": "clusterrolebindings", "name": planted["metadata"]["name"]},
        "responseStatus": {"code": 201},
    }
    denied = dict(created, objectRef={"resource": "clusterrolebindings", "name": "not-made"})
    denied["responseStatus"] = {"code": 403}
    engine, incident = _engine_with_actor(
        entity(EntityKind.SERVICE_ACCOUNT, ns, name), [created, denied]
    )
    service = make_service(sim, engine, tmp_path)
    try:
        plan = await service.prepare("B", incident, Target(EntityKind.SERVICE_ACCOUNT, ns, name))
        assert [(c.verb, c.target.name) for c in plan.changes] == [
            ("delete", planted["metadata"]["name"])
        ]
        assert any("sleeper" in w and "lose it too" in w for w in plan.warnings)
        assert (await service.apply(plan)).result == OK
        assert (
            sim.store.get_obj(RBAC, "ClusterRoleBinding", None, planted["metadata"]["name"]) is None
        )
        # Undoing would give the attacker's own binding back: the preview says so first.
        target = Target(EntityKind.SERVICE_ACCOUNT, ns, name)
        undo = await service.prepare_undo(incident, target)
        warning = next(w for w in undo.warnings if planted["metadata"]["name"] in w)
        assert "created by" in warning and "ClusterRole cluster-admin back" in warning
    finally:
        service.close()


async def test_revoke_recreates_the_service_account_so_old_tokens_fail(
    sim: Any, tmp_path: Path, admin: Any
) -> None:
    ns, name, node = unique("ci"), unique("runner"), unique("node")
    sa = _sa(sim, ns, name)
    seed_node(sim.store, node)
    legacy = sim.store.apply(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "kubernetes.io/service-account-token",
            "metadata": {
                "name": f"{name}-token-abcde",
                "namespace": ns,
                "annotations": {
                    "kubernetes.io/service-account.name": name,
                    "kubernetes.io/service-account.uid": sa["metadata"]["uid"],
                },
            },
            "data": {"token": "c3RvbGVu"},
        }
    )
    user_pod = seed_pod(sim.store, ns, unique("build"), node=node)
    user_pod["spec"]["serviceAccountName"] = name
    sim.store.apply(user_pod)
    token = _token(admin, ns, name)
    assert _whoami_status(admin, token) == 200
    engine, incident = _engine_with_actor(entity(EntityKind.SERVICE_ACCOUNT, ns, name))
    service = make_service(sim, engine, tmp_path)
    target = Target(EntityKind.SERVICE_ACCOUNT, ns, name)
    try:
        plan = await service.prepare("R", incident, target)
        assert plan.option == "r"
        deleted = [c.target.name for c in plan.changes if c.verb == "delete"]
        assert deleted == [legacy["metadata"]["name"], name]
        assert any(user_pod["metadata"]["name"] in w and "restart" in w for w in plan.warnings)
        assert _whoami_status(admin, token) == 200  # the dry run revoked nothing

        outcome = await service.apply(plan)
        assert outcome.result == OK, outcome.message
        (revoked,) = outcome.containment
        assert revoked["state"] == "credentials-revoked"
        assert revoked["subject"] == f"serviceaccount {ns}/{name}"
        assert outcome.undoable is False
    finally:
        service.close()
    # The token minted before no longer authenticates, with the official client.
    await wait_for(lambda: _whoami_status(admin, token) == 401, what="a 401 for the old token")
    now = kubectl(sim, tmp_path, "get", "serviceaccount", name, "-n", ns, "-o", "json")
    assert now["metadata"]["uid"] != sa["metadata"]["uid"]
    secrets = kubectl(sim, tmp_path, "get", "secrets", "-n", ns, "-o", "json")
    assert legacy["metadata"]["name"] not in [s["metadata"]["name"] for s in secrets["items"]]
    # A token of the new ServiceAccount works.
    assert _whoami_status(admin, _token(admin, ns, name)) == 200


async def test_revoke_tokens_only_says_bound_tokens_live_on(sim: Any, tmp_path: Path) -> None:
    ns, name = unique("ci"), unique("runner")
    sa = _sa(sim, ns, name)
    engine, incident = _engine_with_actor(entity(EntityKind.SERVICE_ACCOUNT, ns, name))
    service = make_service(sim, engine, tmp_path)
    try:
        plan = await service.prepare("R", incident, Target(EntityKind.SERVICE_ACCOUNT, ns, name))
        plan.option = "t"
        outcome = await service.apply(plan)
        assert outcome.result == OK, outcome.message
        assert "bound tokens still authenticate" in outcome.message
        assert outcome.containment == []  # nothing was revoked that would make it true
    finally:
        service.close()
    now = sim.store.get_obj("v1", "ServiceAccount", ns, name)
    assert now["metadata"]["uid"] == sa["metadata"]["uid"]


async def test_a_user_cannot_be_revoked_and_the_record_says_what_to_do(
    sim: Any, tmp_path: Path
) -> None:
    user = unique("alice")
    engine, incident = _engine_with_actor(entity(EntityKind.USER, None, user))
    service = make_service(sim, engine, tmp_path)
    try:
        plan = await service.prepare("R", incident, Target(EntityKind.USER, "", user))
        assert "cannot revoke" in plan.unchanged
        outcome = await service.apply(plan)
        assert outcome.result == UNCHANGED
        (cannot,) = outcome.containment
        assert cannot["state"] == "cannot-revoke" and cannot["subject"] == f"user {user}"
        assert "rotate" in cannot["detail"] and "(B)" in cannot["detail"]
    finally:
        service.close()


@pytest.mark.parametrize(
    ("kind", "name", "why"),
    [
        (EntityKind.USER, "system:anonymous", "every request without credentials"),
        (EntityKind.USER, "system:node:worker-1", "the kubelet of node worker-1"),
        (EntityKind.USER, "system:kube-scheduler", "a component of the control plane"),
    ],
)
async def test_hostile_unrevocable_identities_are_refused_saying_why(
    sim: Any, tmp_path: Path, kind: str, name: str, why: str
) -> None:
    engine, incident = _engine_with_actor(entity(kind, None, name))
    service = make_service(sim, engine, tmp_path)
    try:
        for key in ("B", "R"):
            with pytest.raises(ActionError, match="not a revocable identity") as caught:
                await service.prepare(key, incident, Target(kind, "", name))
            assert why in caught.value.message
    finally:
        service.close()
    refused = [e for e in engine.correlator.events_of(incident) if e.source == "ktriage"]
    assert len(refused) == 2 and all(e.raw_inline["result"] == "refused" for e in refused)


async def test_hostile_the_responders_own_identity_is_refused(sim: Any, tmp_path: Path) -> None:
    """An incident whose actor is ktriage's own identity (its own requests flagged, or an
    attacker acting as the admin): containing it would lock ktriage out."""
    admin_user = Target(EntityKind.USER, "", "kubernetes-admin")
    before = kubectl(sim, tmp_path, "get", "clusterrolebindings", "-o", "json")["items"]
    engine, incident = _engine_with_actor(entity(EntityKind.USER, None, admin_user.name))
    service = make_service(sim, engine, tmp_path)
    try:
        for key in ("B", "R"):
            with pytest.raises(ActionError, match="lock ktriage"):
                await service.prepare(key, incident, admin_user)
    finally:
        service.close()
    after = kubectl(sim, tmp_path, "get", "clusterrolebindings", "-o", "json")["items"]
    assert {b["metadata"]["uid"] for b in before} <= {b["metadata"]["uid"] for b in after}


async def test_unbind_warns_that_system_masters_needs_no_binding(sim: Any, tmp_path: Path) -> None:
    user = unique("mallory")
    _binding(
        sim, "ClusterRoleBinding", unique("mallory-view"), "view", [{"kind": "User", "name": user}]
    )
    seen = {
        "verb": "get",
        "user": {"username": user, "groups": ["system:masters", "system:authenticated"]},
        "objectRef": {"resource": "secrets", "namespace": "shop", "name": "db"},
    }
    engine, incident = _engine_with_actor(entity(EntityKind.USER, None, user), [seen])
    service = make_service(sim, engine, tmp_path)
    try:
        plan = await service.prepare("B", incident, Target(EntityKind.USER, "", user))
    finally:
        service.close()
    assert any(
        "system:masters" in w and "does not take its rights away" in w for w in plan.warnings
    )


async def test_hostile_subject_name_with_markup_and_control_characters(
    sim: Any, tmp_path: Path
) -> None:
    """A User named with Rich markup and terminal escapes, bound by a binding whose own
    name is markup with a control character (RBAC names only forbid `/` and `%`): the
    plan shows both as text, and both bindings are found and removed all the same."""
    user = "[bold red]root[/] [link=https://evil.example]x[/link]\x1b]52;c;ZXZpbA==\x07"
    binding = _binding(
        sim, "ClusterRoleBinding", unique("odd"), "view", [{"kind": "User", "name": user}]
    )
    odd_name = unique("[blink]pwn[link=evil.example]\x1b[2J")
    odd = _binding(sim, "RoleBinding", odd_name, "view", [{"kind": "User", "name": user}], "shop")
    engine, incident = _engine_with_actor(entity(EntityKind.USER, None, user))
    service = make_service(sim, engine, tmp_path)
    try:
        plan = await service.prepare("B", incident, Target(EntityKind.USER, "", user))
        text = plan_text(plan)
        assert "\x1b" not in text.plain and "[bold red]root[/]" in text.plain
        assert "[blink]pwn[link=evil.example]\\x1b[2J" in text.plain
        assert all("link" not in str(span.style) for span in text.spans)
        outcome = await service.apply(plan)
        assert outcome.result == OK, outcome.message
    finally:
        service.close()
    names = kubectl(sim, tmp_path, "get", "clusterrolebindings", "-o", "json")["items"]
    assert binding["metadata"]["name"] not in [b["metadata"]["name"] for b in names]
    assert sim.store.get_obj(RBAC, "RoleBinding", "shop", odd["metadata"]["name"]) is None


async def test_hostile_service_account_used_by_500_pods(sim: Any, tmp_path: Path) -> None:
    ns, name, node = unique("ci"), unique("runner"), unique("node")
    _sa(sim, ns, name)
    seed_node(sim.store, node)
    for i in range(500):
        sim.store.apply(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": f"job-{i:03d}", "namespace": ns},
                "spec": {
                    "nodeName": node,
                    "serviceAccountName": name,
                    "containers": [{"name": "app", "image": "busybox:1.36"}],
                },
            }
        )
    engine, incident = _engine_with_actor(entity(EntityKind.SERVICE_ACCOUNT, ns, name))
    service = make_service(sim, engine, tmp_path)
    try:
        started = time.monotonic()
        plan = await service.prepare("R", incident, Target(EntityKind.SERVICE_ACCOUNT, ns, name))
        assert time.monotonic() - started < 20
    finally:
        service.close()
    (warning,) = [w for w in plan.warnings if "pod(s) run as it" in w]
    assert warning.startswith("500 pod(s)") and warning.endswith("and 490 more")
    assert len(warning) < 400  # named, not all listed


async def test_permissions_against_real_rbac_name_the_missing_one(sim: Any, tmp_path: Path) -> None:
    """The read-only identity may not remove bindings: the key says which permission is
    missing and the kubectl line, and kubectl agrees."""
    ns, name = unique("ci"), unique("runner")
    _sa(sim, ns, name)
    engine, incident = _engine_with_actor(entity(EntityKind.SERVICE_ACCOUNT, ns, name))
    service = make_service(sim, engine, tmp_path, context="sim-readonly")
    target = Target(EntityKind.SERVICE_ACCOUNT, ns, name)
    try:
        offered = await service.refresh(target)
        assert set(offered) == {"B", "R", "u"}  # no pod action on an identity
        assert offered["B"][0] is False and "delete on rolebindings" in offered["B"][1]
        text = service.explain("B", target)
        line = "kubectl auth can-i delete rolebindings.rbac.authorization.k8s.io --all-namespaces"
        assert f"viewer may not delete rolebindings (cluster-wide); check: {line}" in text
        assert "nothing to undo on ServiceAccount " in service.explain("u", target)
        with pytest.raises(ActionError, match="viewer needs"):
            await service.prepare("B", incident, target)
    finally:
        service.close()
    verb = "delete"
    res = "rolebindings.rbac.authorization.k8s.io"
    assert _can_i(sim, tmp_path, verb, res, "--all-namespaces", context="sim-readonly") == "no"
    assert _can_i(sim, tmp_path, verb, res, "--all-namespaces") == "yes"  # the admin may


# ---- rights taken away between the preview and the apply ------------------------------


def _responder(sim: Any, admin: Any, rules: list[dict]) -> tuple[Any, str]:
    """A static identity with exactly these rules (a ClusterRole bound to it), and an
    ActionService client factory for it."""
    from kubernetes import client

    name = unique("responder")
    ident = sim.auth.add(name, name, [])
    sim.store.apply(
        {"apiVersion": RBAC, "kind": "ClusterRole", "metadata": {"name": name}, "rules": rules}
    )
    _binding(sim, "ClusterRoleBinding", name, name, [{"kind": "User", "name": name}])

    def factory() -> Any:
        conf = copy.copy(admin.configuration)
        conf.api_key = {"authorization": ident.token}
        conf.api_key_prefix = {"authorization": "Bearer"}
        conf.refresh_api_key_hook = None
        conf.cert_file = conf.key_file = None
        return client.ApiClient(conf)

    return factory, name


def _rule(group: str, resources: list[str], verbs: list[str]) -> dict:
    return {"apiGroups": [group], "resources": resources, "verbs": verbs}


def _drop_verb(sim: Any, role: str, resource: str, verb: str) -> None:
    obj = sim.store.get_obj(RBAC, "ClusterRole", None, role)
    for rule in obj["rules"]:
        if resource in rule["resources"] and verb in rule["verbs"]:
            rule["verbs"] = [v for v in rule["verbs"] if v != verb]
    sim.store.apply(obj)


async def test_hostile_unbind_interrupted_rolls_back_what_it_removed(
    sim: Any, tmp_path: Path, admin: Any
) -> None:
    """The second binding cannot be removed (its right was taken away after the
    preview): the first one is recreated, and nothing is claimed."""
    from test_actions_support import FAST_RETRY

    from ktriage.actions import ActionService

    ns, name = unique("ci"), unique("runner")
    _sa(sim, ns, name)
    me = _sa_subject(ns, name)
    crb = _binding(sim, "ClusterRoleBinding", unique("first"), "view", [me])
    rb = _binding(sim, "RoleBinding", unique("second"), "view", [me], ns=ns)
    verbs = ["get", "list", "create", "update", "delete", "bind", "escalate"]
    factory, role = _responder(
        sim,
        admin,
        [
            _rule("rbac.authorization.k8s.io", ["rolebindings"], verbs),
            _rule("rbac.authorization.k8s.io", ["clusterrolebindings"], verbs),
            _rule("rbac.authorization.k8s.io", ["clusterroles"], ["bind"]),
            _rule("authorization.k8s.io", ["selfsubjectaccessreviews"], ["create"]),
        ],
    )
    engine, incident = _engine_with_actor(entity(EntityKind.SERVICE_ACCOUNT, ns, name))
    service = ActionService(engine, factory, tmp_path, retry=FAST_RETRY)
    try:
        plan = await service.prepare("B", incident, Target(EntityKind.SERVICE_ACCOUNT, ns, name))
        assert [c.target.kind for c in plan.changes] == ["ClusterRoleBinding", "RoleBinding"]
        _drop_verb(sim, role, "rolebindings", "delete")
        outcome = await service.apply(plan)
    finally:
        service.close()
    assert outcome.result == "failed"
    assert "forbidden" in outcome.message and "put back" in outcome.message
    assert outcome.containment == []
    back = kubectl(
        sim, tmp_path, "get", "clusterrolebinding", crb["metadata"]["name"], "-o", "json"
    )
    assert back["subjects"] == [me]
    assert sim.store.get_obj(RBAC, "RoleBinding", ns, rb["metadata"]["name"]) is not None


async def test_hostile_revoke_interrupted_names_the_deleted_service_account(
    sim: Any, tmp_path: Path, admin: Any
) -> None:
    """Deleted, then the create is refused: the outcome says what is left behind and the
    command that puts it back, with the saved spec."""
    from test_actions_support import FAST_RETRY

    from ktriage.actions import ActionService

    ns, name = unique("ci"), unique("runner")
    _sa(sim, ns, name)
    factory, role = _responder(
        sim,
        admin,
        [
            _rule("", ["serviceaccounts"], ["get", "create", "delete"]),
            _rule("", ["secrets", "pods"], ["list", "delete"]),
            _rule("authorization.k8s.io", ["selfsubjectaccessreviews"], ["create"]),
        ],
    )
    engine, incident = _engine_with_actor(entity(EntityKind.SERVICE_ACCOUNT, ns, name))
    service = ActionService(engine, factory, tmp_path, retry=FAST_RETRY)
    try:
        plan = await service.prepare("R", incident, Target(EntityKind.SERVICE_ACCOUNT, ns, name))
        _drop_verb(sim, role, "serviceaccounts", "create")
        outcome = await service.apply(plan)
    finally:
        service.close()
    assert outcome.result == "failed" and "forbidden" in outcome.message
    (left,) = outcome.leftovers
    assert f"kubectl create serviceaccount {name} -n {ns}" in left
    (saved,) = outcome.files
    assert json.loads((tmp_path / saved["path"]).read_text())["metadata"]["name"] == name
    assert sim.store.get_obj("v1", "ServiceAccount", ns, name) is None
    assert outcome.containment == []
