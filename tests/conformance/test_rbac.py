"""RBAC: every request and review decided from the stored Roles, ClusterRoles and
bindings; bindings take effect at once; aggregation; impersonation with groups."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from conformance_support import Kubectl, Target
from identity_support import can_i, request_token, status_of, token_client, wait_until, whoami

RBAC = "rbac.authorization.k8s.io"


def _rbac(api: Any) -> Any:
    from kubernetes import client

    return client.RbacAuthorizationV1Api(api)


def _core(api: Any) -> Any:
    from kubernetes import client

    return client.CoreV1Api(api)


def _uid() -> str:
    return uuid.uuid4().hex[:8]


def _rule(groups: list[str], resources: list[str], verbs: list[str], **more: Any) -> dict:
    return {"apiGroups": groups, "resources": resources, "verbs": verbs, **more}


def _ref(kind: str, name: str) -> dict:
    return {"apiGroup": RBAC, "kind": kind, "name": name}


class ClusterObjects:
    """Cluster-scoped RBAC objects made by a test, deleted after it."""

    def __init__(self, api: Any) -> None:
        self.rbac = _rbac(api)
        self.made: list[tuple[str, str]] = []

    def role(self, name: str, rules: list[dict], labels: dict | None = None, **more: Any) -> str:
        body = {"metadata": {"name": name, "labels": labels or {}}, "rules": rules, **more}
        self.rbac.create_cluster_role(body)
        self.made.append(("role", name))
        return name

    def binding(self, name: str, role: str, subjects: list[dict]) -> str:
        body = {"metadata": {"name": name}, "roleRef": _ref("ClusterRole", role),
                "subjects": subjects}  # fmt: skip
        self.rbac.create_cluster_role_binding(body)
        self.made.append(("binding", name))
        return name

    def cleanup(self) -> None:
        from kubernetes import client

        for kind, name in reversed(self.made):
            try:
                if kind == "role":
                    self.rbac.delete_cluster_role(name)
                else:
                    self.rbac.delete_cluster_role_binding(name)
            except client.ApiException as exc:
                if exc.status != 404:
                    raise


@pytest.fixture
def cluster_objects(api: Any) -> Iterator[ClusterObjects]:
    made = ClusterObjects(api)
    yield made
    made.cleanup()


def _service_account_client(api: Any, namespace: str) -> tuple[str, Any]:
    name = f"sa-{_uid()}"
    _core(api).create_namespaced_service_account(namespace, {"metadata": {"name": name}})
    return name, token_client(api, request_token(api, namespace, name))


def _role_binding(api: Any, namespace: str, name: str, role_ref: dict, subjects: list) -> None:
    body = {"metadata": {"name": name}, "roleRef": role_ref, "subjects": subjects}
    _rbac(api).create_namespaced_role_binding(namespace, body)


def _can_i(kubectl: Kubectl, *args: str) -> str:
    out = kubectl("auth", "can-i", *args)
    assert out.returncode in (0, 1), out.stderr
    return out.stdout.strip()


def test_a_rolebinding_takes_effect_at_once_and_only_in_its_namespace(
    api: Any, namespace: str
) -> None:
    sa, sa_api = _service_account_client(api, namespace)
    user = f"system:serviceaccount:{namespace}:{sa}"
    pods = _core(sa_api)
    try:
        from kubernetes import client

        with pytest.raises(client.ApiException) as denied:
            pods.list_namespaced_pod(namespace)
        assert denied.value.status == 403
        assert json.loads(denied.value.body)["message"] == (
            f'pods is forbidden: User "{user}" cannot list resource "pods" in API group "" '
            f'in the namespace "{namespace}"'
        )
        _role_binding(api, namespace, "sa-view", _ref("ClusterRole", "view"),
                      [{"kind": "ServiceAccount", "name": sa, "namespace": namespace}])  # fmt: skip
        wait_until(lambda: status_of(lambda: pods.list_namespaced_pod(namespace)) == 200,
                   what="the binding to take effect")  # fmt: skip
        # A RoleBinding to a ClusterRole grants its rules in the binding's namespace only.
        assert status_of(lambda: pods.list_namespaced_pod("kube-system")) == 403
        assert status_of(lambda: pods.list_pod_for_all_namespaces()) == 403
        _rbac(api).delete_namespaced_role_binding("sa-view", namespace)
        wait_until(lambda: status_of(lambda: pods.list_namespaced_pod(namespace)) == 403,
                   what="the unbinding to take effect")  # fmt: skip
    finally:
        sa_api.close()


def test_the_view_role_reads_workloads_but_not_secrets_nodes_or_rbac(
    kubectl: Kubectl, cluster_objects: ClusterObjects, namespace: str
) -> None:
    user = f"e2e-viewer-{_uid()}"
    cluster_objects.binding(f"e2e-view-{_uid()}", "view", [{"kind": "User", "name": user}])
    as_user = ["-n", namespace, "--as", user]
    wait_until(lambda: _can_i(kubectl, "list", "pods", *as_user) == "yes", what="view")
    assert _can_i(kubectl, "get", "pods", "--subresource=log", *as_user) == "yes"
    assert _can_i(kubectl, "list", "deployments.apps", *as_user) == "yes"
    assert _can_i(kubectl, "get", "secrets", *as_user) == "no"
    assert _can_i(kubectl, "list", "nodes", "--as", user) == "no"
    assert _can_i(kubectl, "list", "clusterroles.rbac.authorization.k8s.io", "--as", user) == "no"
    assert _can_i(kubectl, "list", "rolebindings.rbac.authorization.k8s.io", *as_user) == "no"
    assert _can_i(kubectl, "create", "pods", "--subresource=exec", *as_user) == "no"
    assert _can_i(kubectl, "delete", "pods", *as_user) == "no"


def test_edit_in_a_namespace_allows_exec_and_secrets_there_only(
    api: Any, kubectl: Kubectl, namespace: str
) -> None:
    user = f"e2e-editor-{_uid()}"
    _role_binding(api, namespace, "editor", _ref("ClusterRole", "edit"),
                  [{"kind": "User", "name": user, "apiGroup": RBAC}])  # fmt: skip
    here = ["-n", namespace, "--as", user]
    wait_until(lambda: _can_i(kubectl, "create", "pods", "--subresource=exec", *here) == "yes",
               what="edit")  # fmt: skip
    assert _can_i(kubectl, "get", "secrets", *here) == "yes"
    assert _can_i(kubectl, "create", "serviceaccounts", "--subresource=token", *here) == "yes"
    assert _can_i(kubectl, "create", "roles.rbac.authorization.k8s.io", *here) == "no"
    elsewhere = ["-n", "kube-system", "--as", user]
    assert _can_i(kubectl, "create", "pods", "--subresource=exec", *elsewhere) == "no"
    assert _can_i(kubectl, "get", "secrets", *elsewhere) == "no"


def test_resource_names_limit_a_rule_to_those_objects(
    api: Any, kubectl: Kubectl, namespace: str
) -> None:
    user = f"e2e-named-{_uid()}"
    _rbac(api).create_namespaced_role(namespace, {
        "metadata": {"name": "one-configmap"},
        "rules": [_rule([""], ["configmaps"], ["get"], resourceNames=["allowed"])],
    })  # fmt: skip
    _role_binding(api, namespace, "one-configmap", _ref("Role", "one-configmap"),
                  [{"kind": "User", "name": user, "apiGroup": RBAC}])  # fmt: skip
    here = ["-n", namespace, "--as", user]
    wait_until(lambda: _can_i(kubectl, "get", "configmaps/allowed", *here) == "yes", what="grant")
    assert _can_i(kubectl, "get", "configmaps/other", *here) == "no"
    assert _can_i(kubectl, "list", "configmaps", *here) == "no"


def test_a_binding_to_a_missing_role_grants_nothing_and_says_why(api: Any, namespace: str) -> None:
    from kubernetes import client

    sa, sa_api = _service_account_client(api, namespace)
    missing = f"e2e-missing-{_uid()}"
    try:
        _role_binding(api, namespace, "dangling", _ref("ClusterRole", missing),
                      [{"kind": "ServiceAccount", "name": sa}])  # fmt: skip
        status = can_i(sa_api, "list", "pods", namespace)
        assert status.allowed is False
        assert f'clusterrole.rbac.authorization.k8s.io "{missing}" not found' in (
            status.reason or ""
        )
        assert status_of(lambda: client.CoreV1Api(sa_api).list_namespaced_pod(namespace)) == 403
    finally:
        sa_api.close()


def test_a_clusterrolebinding_to_a_group_grants_its_members(
    kubectl: Kubectl, cluster_objects: ClusterObjects
) -> None:
    tag = _uid()
    role = cluster_objects.role(f"e2e-node-reader-{tag}", [_rule([""], ["nodes"], READ)])
    group = f"e2e-group-{tag}"
    cluster_objects.binding(f"e2e-nodes-{tag}", role, [{"kind": "Group", "name": group}])
    member = ["--as", f"e2e-member-{tag}", "--as-group", group]
    wait_until(lambda: _can_i(kubectl, "list", "nodes", *member) == "yes", what="the grant")
    assert _can_i(kubectl, "delete", "nodes", *member) == "no"
    # The same user without the group: impersonation gives exactly the groups asked for.
    assert _can_i(kubectl, "list", "nodes", "--as", f"e2e-member-{tag}") == "no"


READ = ["get", "list", "watch"]


def test_impersonated_groups_are_exactly_the_requested_ones(kubectl: Kubectl) -> None:
    out = kubectl("auth", "whoami", "-o", "json", "--as", "bob",
                  "--as-group", "devs", "--as-group", "ops")  # fmt: skip
    assert out.returncode == 0, out.stderr
    info = json.loads(out.stdout)["status"]["userInfo"]
    assert info["username"] == "bob"
    assert info["groups"] == ["devs", "ops", "system:authenticated"]
    out = kubectl("auth", "whoami", "-o", "json", "--as", "system:serviceaccount:ci:runner")
    assert out.returncode == 0, out.stderr
    info = json.loads(out.stdout)["status"]["userInfo"]
    assert info["groups"] == [
        "system:serviceaccounts",
        "system:serviceaccounts:ci",
        "system:authenticated",
    ]


def test_impersonation_needs_the_impersonate_verb_on_each_thing(
    api: Any, namespace: str, cluster_objects: ClusterObjects
) -> None:
    sa, sa_api = _service_account_client(api, namespace)
    user = f"system:serviceaccount:{namespace}:{sa}"
    tag = _uid()
    target_user = f"e2e-someone-{tag}"
    try:
        sa_api.default_headers["Impersonate-User"] = target_user
        from kubernetes import client

        with pytest.raises(client.ApiException) as denied:
            whoami(sa_api)
        assert denied.value.status == 403
        assert json.loads(denied.value.body)["message"] == (
            f'users "{target_user}" is forbidden: User "{user}" cannot impersonate resource '
            '"users" in API group "" at the cluster scope'
        )
        role = cluster_objects.role(f"e2e-impersonator-{tag}", [
            _rule([""], ["users"], ["impersonate"], resourceNames=[target_user])])  # fmt: skip
        subject = {"kind": "ServiceAccount", "name": sa, "namespace": namespace}
        cluster_objects.binding(f"e2e-impersonator-{tag}", role, [subject])
        me = wait_until(lambda: status_of(lambda: whoami(sa_api)) == 200 and whoami(sa_api),
                        what="the impersonation grant")  # fmt: skip
        assert me["username"] == target_user
        assert me["groups"] == ["system:authenticated"]
        # A group needs its own grant.
        sa_api.default_headers["Impersonate-Group"] = "system:masters"
        with pytest.raises(client.ApiException) as denied:
            whoami(sa_api)
        assert denied.value.status == 403
        assert json.loads(denied.value.body)["message"].startswith(
            f'groups "system:masters" is forbidden: User "{user}" cannot impersonate resource '
            '"groups" in API group "" at the cluster scope'
        )
    finally:
        sa_api.close()


def test_self_subject_rules_review_lists_the_namespace_grants(
    api: Any, kubectl: Kubectl, namespace: str
) -> None:
    sa, sa_api = _service_account_client(api, namespace)
    try:
        _role_binding(api, namespace, "sa-edit", _ref("ClusterRole", "edit"),
                      [{"kind": "ServiceAccount", "name": sa, "namespace": namespace}])  # fmt: skip
        from kubernetes import client

        def rules(ns: str) -> Any:
            body = {"spec": {"namespace": ns}}
            review = client.AuthorizationV1Api(sa_api).create_self_subject_rules_review(body)
            return review.status

        def grants_exec(status: Any) -> bool:
            return any(
                "create" in r.verbs and "pods/exec" in (r.resources or [])
                for r in status.resource_rules
            )

        here = wait_until(lambda: grants_exec(rules(namespace)) and rules(namespace), what="edit")
        assert here.incomplete is False
        assert any("/api" in (r.non_resource_urls or []) for r in here.non_resource_rules)
        assert not grants_exec(rules("kube-system"))
    finally:
        sa_api.close()
    listed = kubectl("auth", "can-i", "--list", "-n", namespace,
                     "--as", f"system:serviceaccount:{namespace}:{sa}")  # fmt: skip
    assert listed.returncode == 0, listed.stderr
    rows = [line.split() for line in listed.stdout.splitlines()]
    assert rows[0][:2] == ["Resources", "Non-Resource"]
    exec_rows = [row for row in rows if row[0] == "pods/exec"]
    assert len(exec_rows) == 1
    assert "create" in " ".join(exec_rows[0][3:]).strip("[]").split()
    assert not any(row[0] == "roles.rbac.authorization.k8s.io" for row in rows)


def test_aggregation_fills_view_edit_and_admin_and_follows_changes(
    api: Any, cluster_objects: ClusterObjects
) -> None:
    tag = _uid()
    rule = _rule(["e2e.ktriage.io"], [f"widgets{tag}"], READ)
    labels = {"rbac.authorization.k8s.io/aggregate-to-view": "true"}
    source = cluster_objects.role(f"e2e-aggregate-to-view-{tag}", [rule], labels)

    def has_rule(role: str) -> bool:
        got = _rbac(api).read_cluster_role(role).rules or []
        return any(f"widgets{tag}" in (r.resources or []) for r in got)

    for role in ("view", "edit", "admin"):
        wait_until(lambda r=role: has_rule(r), what=f"{role} to aggregate the new rule")
    _rbac(api).delete_cluster_role(source)
    wait_until(lambda: not has_rule("view"), what="view to drop the rule")


def test_a_custom_aggregated_role_collects_its_labelled_roles(
    api: Any, cluster_objects: ClusterObjects
) -> None:
    tag = _uid()
    label = f"e2e.ktriage.io/aggregate-{tag}"
    cluster_objects.role(f"e2e-part-a-{tag}", [_rule([""], ["configmaps"], ["get"])],
                         {label: "true"})  # fmt: skip
    cluster_objects.role(f"e2e-part-b-{tag}", [_rule([""], ["services"], ["list"])],
                         {label: "true"})  # fmt: skip
    whole = cluster_objects.role(
        f"e2e-whole-{tag}", [], aggregationRule={"clusterRoleSelectors": [
            {"matchLabels": {label: "true"}}]},
    )  # fmt: skip

    def resources() -> list[list[str]]:
        return [r.resources for r in _rbac(api).read_cluster_role(whole).rules or []]

    wait_until(lambda: resources() == [["configmaps"], ["services"]], what="aggregation")


@pytest.mark.sim_only
def test_kubectl_auth_can_i_for_each_kubeconfig_identity(kubectl: Kubectl) -> None:
    def can(context: str, *args: str) -> str:
        out = kubectl("auth", "can-i", *args, context=context)
        assert out.returncode in (0, 1), out.stderr
        return out.stdout.strip()

    assert can("sim-admin", "*", "*") == "yes"
    assert can("sim-readonly", "list", "pods", "-A") == "yes"
    assert can("sim-readonly", "list", "nodes") == "yes"
    assert can("sim-readonly", "get", "secrets", "-n", "default") == "no"
    assert can("sim-readonly", "list", "clusterroles.rbac.authorization.k8s.io") == "no"
    assert can("sim-readonly", "patch", "nodes") == "no"
    assert can("sim-intruder", "list", "pods", "-n", "default") == "no"
    assert can("sim-intruder", "create", "selfsubjectaccessreviews.authorization.k8s.io") == "yes"


@pytest.mark.sim_only
def test_kubectl_auth_can_i_list_for_each_kubeconfig_identity(kubectl: Kubectl) -> None:
    def listed(context: str) -> list[list[str]]:
        out = kubectl("auth", "can-i", "--list", "-n", "default", context=context)
        assert out.returncode == 0, out.stderr
        return [line.split() for line in out.stdout.splitlines()[1:]]

    admin = listed("sim-admin")
    assert ["*.*", "[]", "[]", "[*]"] in admin
    viewer = listed("sim-readonly")
    assert ["pods", "[]", "[]", "[get", "list", "watch]"] in viewer
    assert ["nodes", "[]", "[]", "[get", "list", "watch]"] in viewer
    assert not any(row[0] in ("secrets", "*.*") for row in viewer)
    intruder = listed("sim-intruder")
    resources = {row[0] for row in intruder if not row[0].startswith("[")}
    assert resources == {
        "selfsubjectreviews.authentication.k8s.io",
        "selfsubjectaccessreviews.authorization.k8s.io",
        "selfsubjectrulesreviews.authorization.k8s.io",
    }


@pytest.mark.sim_only
def test_hostile_malformed_rbac_objects_grant_nothing_and_break_nothing(
    target: Target, api: Any, namespace: str
) -> None:
    """Objects no API validation would let in, written straight into the store: subjects
    without names or of unknown kinds, rules of the wrong types, a roleRef to nowhere,
    two roles aggregating each other. Requests keep being answered; nothing is granted."""
    store = target.sim.store
    sa, sa_api = _service_account_client(api, namespace)
    tag = _uid()
    try:
        store.apply(
            {
                "apiVersion": f"{RBAC}/v1",
                "kind": "ClusterRole",
                "metadata": {"name": f"e2e-bad-{tag}"},
                "rules": [
                    None,
                    "x",
                    {"verbs": "list", "resources": "pods"},
                    {"verbs": None, "apiGroups": [""], "resources": ["pods"]},
                ],
            }
        )
        store.apply(
            {
                "apiVersion": f"{RBAC}/v1",
                "kind": "RoleBinding",
                "metadata": {"name": "bad", "namespace": namespace},
                "roleRef": {"kind": "ClusterRole", "name": f"e2e-bad-{tag}"},
                "subjects": [
                    None,
                    {"kind": "ServiceAccount"},
                    {"kind": "Robot", "name": sa},
                    {"kind": "ServiceAccount", "name": sa},
                ],
            }
        )
        store.apply(
            {
                "apiVersion": f"{RBAC}/v1",
                "kind": "RoleBinding",
                "metadata": {"name": "nowhere", "namespace": namespace},
                "roleRef": {"kind": "Spell", "name": 7},
                "subjects": "everyone",
            }
        )
        for me, other in (("a", "b"), ("b", "a")):
            store.apply({"apiVersion": f"{RBAC}/v1", "kind": "ClusterRole",
                         "metadata": {"name": f"e2e-loop-{me}-{tag}",
                                      "labels": {f"e2e-loop-{tag}": me}},
                         "aggregationRule": {"clusterRoleSelectors": [
                             {"matchLabels": {f"e2e-loop-{tag}": other}}, None]},
                         "rules": [_rule([""], [f"thing-{me}"], ["get"])]})  # fmt: skip
        assert can_i(sa_api, "list", "pods", namespace).allowed is False
        assert can_i(sa_api, "create", "selfsubjectaccessreviews",
                     group="authorization.k8s.io").allowed is True  # fmt: skip

        def looped() -> bool:
            a = store.get_obj(f"{RBAC}/v1", "ClusterRole", None, f"e2e-loop-a-{tag}")
            return [r["resources"] for r in a["rules"]] == [["thing-b"]]

        wait_until(looped, what="the looped aggregation to settle")
        assert whoami(sa_api)["username"] == f"system:serviceaccount:{namespace}:{sa}"
    finally:
        sa_api.close()
        for name in (f"e2e-bad-{tag}", f"e2e-loop-a-{tag}", f"e2e-loop-b-{tag}"):
            store.delete(f"{RBAC}/v1", "ClusterRole", None, name)


def test_impersonated_extras_are_reported_by_whoami(kubectl: Kubectl) -> None:
    out = kubectl("auth", "whoami", "-o", "json", "--as", "bob",
                  "--as-user-extra", "reason=incident-42")  # fmt: skip
    assert out.returncode == 0, out.stderr
    info = json.loads(out.stdout)["status"]["userInfo"]
    assert info["extra"] == {"reason": ["incident-42"]}
    assert info["groups"] == ["system:authenticated"]


def test_hostile_impersonation_of_groups_without_a_user_is_refused(
    api: Any, namespace: str
) -> None:
    """Groups asked for without a user: the real filter answers 500 and runs nothing."""
    _, sa_api = _service_account_client(api, namespace)
    try:
        sa_api.default_headers["Impersonate-Group"] = "system:masters"
        assert status_of(lambda: whoami(sa_api)) == 500
        del sa_api.default_headers["Impersonate-Group"]
        sa_api.default_headers["Impersonate-User"] = "system:serviceaccount:kube-system:x:y"
        assert status_of(lambda: whoami(sa_api)) == 403
    finally:
        sa_api.close()


def test_a_service_account_bound_to_cluster_admin_may_do_everything(
    api: Any, namespace: str, cluster_objects: ClusterObjects
) -> None:
    """What the token-theft scenario does: its binding now really grants."""
    from kubernetes import client

    sa, sa_api = _service_account_client(api, namespace)
    try:
        secrets = client.CoreV1Api(sa_api)
        assert status_of(lambda: secrets.list_secret_for_all_namespaces()) == 403
        subject = {"kind": "ServiceAccount", "name": sa, "namespace": namespace}
        cluster_objects.binding(f"e2e-backdoor-{_uid()}", "cluster-admin", [subject])
        wait_until(lambda: status_of(lambda: secrets.list_secret_for_all_namespaces()) == 200,
                   what="cluster-admin to take effect")  # fmt: skip
        assert can_i(sa_api, "delete", "nodes").allowed is True
    finally:
        sa_api.close()
