"""The blast radius computation (ktriage.core.blast) on realistic RBAC objects: the
bootstrap roles kube-apiserver creates (cluster-admin through system:masters, the
aggregated admin/edit/view), the token-theft demo's misconfiguration, and hostile
input (markup and control characters in names, 10,000 bindings, a Role with 1,000
rules, wildcards, malformed objects)."""

from __future__ import annotations

import ast
import time
from pathlib import Path
from typing import Any

from markdown_check import assert_inert

from ktriage.core import blast
from ktriage.core.blast import ClusterView, Identity
from ktriage.core.model import EntityKind, Incident, Severity, entity
from ktriage.sim.auth import bootstrap

RBAC = "rbac.authorization.k8s.io/v1"
ALL_KINDS = {"clusterroles", "clusterrolebindings", "roles", "rolebindings", "networkpolicies"}


def rule(groups: list[str], resources: list[str], verbs: list[str], **extra: Any) -> dict:
    return {"apiGroups": groups, "resources": resources, "verbs": verbs, **extra}


def cluster_role(name: str, rules: list[dict], labels: dict | None = None) -> dict:
    return {
        "apiVersion": RBAC,
        "kind": "ClusterRole",
        "metadata": {"name": name, "labels": labels or {}},
        "rules": rules,
    }


def role(namespace: str, name: str, rules: list[dict]) -> dict:
    return {
        "apiVersion": RBAC,
        "kind": "Role",
        "metadata": {"namespace": namespace, "name": name},
        "rules": rules,
    }


def sa_subject(namespace: str, name: str) -> dict:
    return {"kind": "ServiceAccount", "namespace": namespace, "name": name}


def crb(name: str, role_name: str, subjects: list[dict]) -> dict:
    return {
        "apiVersion": RBAC,
        "kind": "ClusterRoleBinding",
        "metadata": {"name": name},
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole",
            "name": role_name,
        },
        "subjects": subjects,
    }


def rb(namespace: str, name: str, kind: str, role_name: str, subjects: list[dict]) -> dict:
    return {
        "apiVersion": RBAC,
        "kind": "RoleBinding",
        "metadata": {"namespace": namespace, "name": name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": role_name},
        "subjects": subjects,
    }


def pod(
    namespace: str,
    name: str,
    sa: str = "default",
    node: str = "worker-1",
    labels: dict | None = None,
    **spec: Any,
) -> dict:
    return {
        "metadata": {"namespace": namespace, "name": name, "labels": labels or {}},
        "spec": {
            "serviceAccountName": sa,
            "nodeName": node,
            "containers": spec.pop("containers", [{"name": "app", "image": "app:1"}]),
            **spec,
        },
    }


def sa(namespace: str, name: str, **extra: Any) -> dict:
    return {"metadata": {"namespace": namespace, "name": name}, **extra}


def view(**parts: Any) -> ClusterView:
    """A view with the bootstrap roles and bindings, plus `parts`."""
    v = ClusterView(
        cluster_roles=bootstrap.cluster_roles() + parts.pop("cluster_roles", []),
        cluster_role_bindings=bootstrap.cluster_role_bindings("viewer")
        + parts.pop("cluster_role_bindings", []),
        seen=set(ALL_KINDS),
        **parts,
    )
    namespaces = {p["metadata"]["namespace"] for p in v.pods}
    namespaces |= {s["metadata"]["namespace"] for s in v.service_accounts}
    v.namespaces = sorted(namespaces | {"kube-system", "default"})
    return v


def keys(rights: list[blast.Right]) -> list[str]:
    return [r.key for r in rights]


def right(result_identity: blast.IdentityBlast, key: str) -> blast.Right:
    found = [r for r in result_identity.rights if r.key == key]
    assert found, (key, keys(result_identity.rights))
    return found[0]


# ---------------------------------------------------------------- bootstrap roles


def test_cluster_admin_through_system_masters() -> None:
    admin = Identity.from_username("kubernetes-admin", ["system:masters"])
    result = blast.compute(view(), [admin], [])
    ident = result.identities[0]
    assert ident.cluster_admin
    assert ident.rights[0].key == "cluster-admin"
    assert ident.rights[0].cites == (
        "ClusterRoleBinding cluster-admin → ClusterRole cluster-admin",
    )
    assert "Roles, ClusterRoles and bindings" in ident.method
    # Everything else follows from cluster-admin: it is not listed again.
    assert "secrets" not in keys(ident.rights)
    paths = [p for p in result.paths if p.goal == "cluster-admin"]
    assert paths and paths[0].steps[-1].cite.startswith("ClusterRoleBinding cluster-admin")


def test_user_without_the_group_is_not_admin() -> None:
    result = blast.compute(view(), [Identity.from_username("kubernetes-admin")], [])
    ident = result.identities[0]
    assert not ident.cluster_admin
    assert all(not r.dangerous for r in ident.rights)
    assert any("groups are unknown" in n for n in ident.not_seen)


def test_aggregated_edit_role_grants_exec_secrets_and_pods_in_its_namespace_only() -> None:
    # The bootstrap `edit` has no rules of its own: they come from aggregation.
    v = view(
        role_bindings=[rb("shop", "devs", "ClusterRole", "edit", [sa_subject("shop", "ci")])],
        service_accounts=[sa("shop", "ci"), sa("shop", "web")],
    )
    ident = blast.compute(v, [Identity.service_account("shop", "ci")], []).identities[0]
    for key in ("exec", "secrets", "create-pods", "sa-token", "impersonate", "workloads"):
        r = right(ident, key)
        assert r.where == ("shop",), (key, r.where)
        assert not r.critical
        assert r.cites == ("RoleBinding shop/devs → ClusterRole edit",)
    assert "cluster-admin" not in keys(ident.rights)


def test_aggregation_resolved_by_the_server_is_used_as_is() -> None:
    custom = cluster_role("team-reader", [rule([""], ["pods"], ["get"])])
    custom["aggregationRule"] = {"clusterRoleSelectors": [{"matchLabels": {"x": "y"}}]}
    secret_reader = cluster_role("secret-reader", [rule([""], ["secrets"], ["get"])], {"x": "y"})
    v = view(
        cluster_roles=[custom, secret_reader],
        cluster_role_bindings=[crb("team", "team-reader", [sa_subject("a", "b")])],
    )
    ident = blast.compute(v, [Identity.service_account("a", "b")], []).identities[0]
    # The server filled its rules (pods only): the selector is not re-applied.
    assert "secrets" not in keys(ident.rights)


def test_view_grants_no_secrets() -> None:
    v = view(role_bindings=[rb("shop", "ro", "ClusterRole", "view", [sa_subject("shop", "ro")])])
    ident = blast.compute(v, [Identity.service_account("shop", "ro")], []).identities[0]
    assert not any(r.dangerous for r in ident.rights)


def test_dangerous_rights_first_kube_system_before_other_namespaces() -> None:
    v = view(
        roles=[
            role("shop", "read-secrets", [rule([""], ["secrets"], ["get", "list"])]),
            role("kube-system", "deployer", [rule(["apps"], ["deployments"], ["create"])]),
        ],
        role_bindings=[
            rb("shop", "s", "Role", "read-secrets", [sa_subject("ci", "bot")]),
            rb("kube-system", "d", "Role", "deployer", [sa_subject("ci", "bot")]),
        ],
        cluster_roles=[cluster_role("nodes", [rule([""], ["nodes"], ["list"])])],
        cluster_role_bindings=[crb("nodes", "nodes", [sa_subject("ci", "bot")])],
    )
    ident = blast.compute(v, [Identity.service_account("ci", "bot")], []).identities[0]
    assert keys(ident.rights)[:2] == ["workloads", "secrets"]
    assert ident.rights[0].critical and ident.rights[0].where == ("kube-system",)
    assert ident.rights[1].where == ("shop",) and not ident.rights[1].critical
    last = ident.rights[-1]
    assert last.key == "cluster-wide" and not last.dangerous and "nodes" in last.title


def test_resource_names_narrow_a_right_and_are_shown() -> None:
    v = view(
        roles=[role("shop", "one", [rule([""], ["secrets"], ["get"], resourceNames=["tls"])])],
        role_bindings=[rb("shop", "one", "Role", "one", [sa_subject("shop", "x")])],
    )
    ident = blast.compute(v, [Identity.service_account("shop", "x")], []).identities[0]
    assert right(ident, "secrets").names == ("tls",)
    assert any("(only tls)" in line for line in blast.render_lines(blast.BlastResult([ident])))


def test_missing_role_is_said_not_granted() -> None:
    v = view(role_bindings=[rb("shop", "dangling", "Role", "gone", [sa_subject("shop", "x")])])
    result = blast.compute(v, [Identity.service_account("shop", "x")], [])
    assert not any(r.dangerous for r in result.identities[0].rights)
    assert any("RoleBinding shop/dangling refers to Role shop/gone" in n for n in result.notes)


# ---------------------------------------------------------------- paths


def token_theft_view(escalated: bool) -> ClusterView:
    """The token-theft demo's RBAC (its scenario file), before or after the escalation."""
    ci_runner = cluster_role(
        "ci-runner",
        [
            rule([""], ["pods", "pods/log"], ["get", "list", "watch", "create", "delete"]),
            rule([""], ["secrets"], ["get", "list"]),
            rule(["rbac.authorization.k8s.io"], ["clusterrolebindings"], ["get", "list", "create"]),
            rule(["rbac.authorization.k8s.io"], ["clusterroles"], ["bind"]),
        ],
    )
    bindings = [crb("ci-runner", "ci-runner", [sa_subject("ci", "runner")])]
    if escalated:
        bindings.append(crb("ci-runner-admin", "cluster-admin", [sa_subject("ci", "runner")]))
    return view(
        cluster_roles=[ci_runner],
        cluster_role_bindings=bindings,
        service_accounts=[
            sa("ci", "runner"),
            sa("kube-system", "clusterrole-aggregation-controller"),
        ],
        pods=[pod("ci", "runner-0", "runner")],
    )


def test_token_theft_path_before_escalation_binds_itself_to_cluster_admin() -> None:
    result = blast.compute(token_theft_view(escalated=False), [], [("ci", "runner-0")])
    path = result.paths[0]
    assert (path.start, path.goal) == ("Pod ci/runner-0", "cluster-admin")
    assert [s.text for s in path.steps] == [
        "mounts the token of ServiceAccount ci/runner",
        "may create ClusterRoleBindings and bind ClusterRole cluster-admin: "
        "binds itself to cluster-admin",
    ]
    assert path.steps[1].cite == "ClusterRoleBinding ci-runner → ClusterRole ci-runner"
    # Secrets of other namespaces are a goal too, after cluster-admin.
    assert any(p.goal == "Secrets of every namespace" for p in result.paths)
    assert result.paths.index(path) == 0


def test_token_theft_path_after_escalation_cites_the_new_binding() -> None:
    result = blast.compute(
        token_theft_view(escalated=True), [Identity.service_account("ci", "runner")], []
    )
    assert result.identities[0].cluster_admin
    path = result.paths[0]
    assert path.goal == "cluster-admin"
    assert path.steps[-1].cite == "ClusterRoleBinding ci-runner-admin → ClusterRole cluster-admin"


def test_path_through_creating_pods_in_kube_system() -> None:
    v = view(
        roles=[role("kube-system", "pod-maker", [rule([""], ["pods"], ["create"])])],
        role_bindings=[
            rb("kube-system", "pm", "Role", "pod-maker", [sa_subject("app", "deployer")])
        ],
        cluster_role_bindings=[
            crb("ops-admin", "cluster-admin", [sa_subject("kube-system", "ops")])
        ],
        service_accounts=[sa("app", "deployer"), sa("kube-system", "ops")],
        pods=[pod("app", "web-1", "deployer")],
    )
    result = blast.compute(v, [], [("app", "web-1")])
    path = result.paths[0]
    assert path.goal == "cluster-admin" and len(path.steps) == 3
    assert path.steps[1].text == (
        "may create pods in kube-system: runs a pod as ServiceAccount kube-system/ops"
    )
    assert path.steps[1].cite == "RoleBinding kube-system/pm → Role kube-system/pod-maker"
    assert path.steps[2].cite == "ClusterRoleBinding ops-admin → ClusterRole cluster-admin"


def test_no_path_beyond_three_steps() -> None:
    # app/a → create pods in b → b/x → create pods in c → c/y → create pods in d → d/admin
    v = view(
        roles=[role(ns, "pm", [rule([""], ["pods"], ["create"])]) for ns in "bcd"],
        role_bindings=[
            rb("b", "pm", "Role", "pm", [sa_subject("app", "a")]),
            rb("c", "pm", "Role", "pm", [sa_subject("b", "x")]),
            rb("d", "pm", "Role", "pm", [sa_subject("c", "y")]),
        ],
        cluster_role_bindings=[crb("adm", "cluster-admin", [sa_subject("d", "admin")])],
        service_accounts=[sa("app", "a"), sa("b", "x"), sa("c", "y"), sa("d", "admin")],
    )
    result = blast.compute(v, [Identity.service_account("app", "a")], [])
    assert not [p for p in result.paths if p.goal == "cluster-admin"]
    result = blast.compute(v, [Identity.service_account("b", "x")], [])
    assert [p for p in result.paths if p.goal == "cluster-admin"]


def test_secrets_of_another_namespace_is_a_goal_but_its_own_is_not() -> None:
    v = view(
        roles=[role(ns, "r", [rule([""], ["secrets"], ["get"])]) for ns in ("shop", "payments")],
        role_bindings=[
            rb(ns, "r", "Role", "r", [sa_subject("shop", "web")]) for ns in ("shop", "payments")
        ],
    )
    result = blast.compute(v, [Identity.service_account("shop", "web")], [])
    assert [p.goal for p in result.paths] == ["Secrets of namespace payments"]
    assert result.paths[0].steps[0].cite == "RoleBinding payments/r → Role payments/r"


def test_impersonating_system_masters_is_cluster_admin() -> None:
    imp = cluster_role("imp", [rule([""], ["groups"], ["impersonate"])])
    v = view(cluster_roles=[imp], cluster_role_bindings=[crb("imp", "imp", [sa_subject("a", "b")])])
    result = blast.compute(v, [Identity.service_account("a", "b")], [])
    assert result.paths[0].goal == "cluster-admin"
    assert "system:masters" in result.paths[0].steps[0].text


# ---------------------------------------------------------------- pods


def test_pod_secrets_token_and_no_host_access() -> None:
    spec_pod = pod(
        "shop",
        "web-1",
        "web",
        containers=[
            {
                "name": "app",
                "envFrom": [{"secretRef": {"name": "app-env"}}],
                "env": [
                    {
                        "name": "DB_PASSWORD",
                        "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}},
                    }
                ],
            }
        ],
        volumes=[{"name": "tls", "secret": {"secretName": "web-tls"}}],
        imagePullSecrets=[{"name": "regcred"}],
    )
    v = view(
        pods=[spec_pod], service_accounts=[sa("shop", "web", automountServiceAccountToken=False)]
    )
    p = blast.compute(v, [], [("shop", "web-1")]).pods[0]
    assert dict(p.secrets) == {
        "web-tls": "volume tls",
        "app-env": "all keys as environment of container app",
        "db": "key password as $DB_PASSWORD in app",
        "regcred": "image pull secret",
    }
    assert p.token.startswith("not mounted") and "ServiceAccount web" in p.token
    assert p.host_access == [] and p.neighbours == []


def test_privileged_pod_puts_its_node_and_neighbours_in_the_blast_radius() -> None:
    pwn = pod(
        "kube-system",
        "pwn",
        node="worker-2",
        hostPID=True,
        containers=[{"name": "shell", "securityContext": {"privileged": True}}],
        volumes=[{"name": "host", "hostPath": {"path": "/"}}],
    )
    v = view(
        pods=[
            pwn,
            pod("payments", "api-1", "payments-api", node="worker-2"),
            pod("shop", "web-1", node="worker-1"),
        ]
    )
    result = blast.compute(v, [], [("kube-system", "pwn")])
    p = result.pods[0]
    assert "container shell is privileged" in p.host_access
    assert "hostPath / (volume host)" in p.host_access
    assert any(h.startswith("hostPID") for h in p.host_access)
    assert p.neighbours == [("payments/api-1", "payments/payments-api")]
    assert p.neighbour_count == 1


def test_network_without_policy_is_everything_and_said_so() -> None:
    v = view(pods=[pod("shop", "web-1", labels={"app": "web"}), pod("shop", "db-1")])
    p = blast.compute(v, [], [("shop", "web-1")]).pods[0]
    assert p.ingress == [
        "ingress: no NetworkPolicy isolates it: "
        "anything in or outside the cluster may connect to it"
    ]
    assert p.egress[0].startswith("egress: no NetworkPolicy isolates it")
    assert (p.open_to_ingress, p.other_pods) == (1, 1)


def test_network_policy_evaluated_with_the_isolation_logic() -> None:
    policy = {
        "metadata": {"namespace": "payments", "name": "api-ingress"},
        "spec": {
            "podSelector": {"matchLabels": {"app": "api"}},
            "ingress": [
                {
                    "from": [{"namespaceSelector": {"matchLabels": {"team": "web"}}}],
                    "ports": [{"port": 8443, "protocol": "TCP"}],
                }
            ],
        },
    }
    v = view(
        pods=[pod("payments", "api-1", labels={"app": "api"}), pod("shop", "web-1")],
        network_policies=[policy],
        enforcing={"Calico": "daemonset calico-system/calico-node"},
    )
    result = blast.compute(v, [], [("payments", "api-1"), ("shop", "web-1")])
    api, web = result.pods
    # Closed for ingress but for what it allows: limited, not isolated.
    assert api.ingress[0] == "ingress: limited by NetworkPolicy api-ingress to what it allows"
    assert api.ingress[1].startswith("NetworkPolicy api-ingress allows ingress from ")
    assert "pods in namespaces with team=web" in api.ingress[1]
    assert "TCP/8443" in api.ingress[1]
    assert api.egress[0].startswith("egress: no NetworkPolicy")
    # web-1 sees api-1 as isolated: only itself... none of the other pods is open.
    assert (web.open_to_ingress, web.other_pods) == (0, 1)


def test_network_policies_unreadable_is_said() -> None:
    v = view(pods=[pod("shop", "web-1")])
    v.seen.discard("networkpolicies")
    p = blast.compute(v, [], [("shop", "web-1")]).pods[0]
    assert p.ingress == ["NetworkPolicies could not be read: reachability unknown"]


def test_missing_pod_is_said() -> None:
    result = blast.compute(view(), [], [("shop", "gone")])
    assert not result.pods[0].found
    assert "not found in the cluster" in "\n".join(blast.render_lines(result))


# ---------------------------------------------------------------- method 1: reviews


def test_rules_reviews_are_the_method_and_cluster_wide_rules_are_recognised() -> None:
    everywhere = rule([""], ["secrets"], ["get", "list"])
    only_shop = rule([""], ["pods/exec"], ["create"])
    reviews = {
        "system:serviceaccount:ci:bot": {
            "shop": {"resourceRules": [everywhere, only_shop]},
            "default": {
                "resourceRules": [everywhere],
                "incomplete": True,
                "evaluationError": "webhook authorizer unavailable",
            },
        }
    }
    ident = blast.compute(
        view(), [Identity.service_account("ci", "bot")], [], reviews=reviews
    ).identities[0]
    assert ident.method.startswith("SelfSubjectRulesReview while impersonating")
    assert right(ident, "secrets").where == ("",) and right(ident, "secrets").cluster_wide
    assert right(ident, "exec").where == ("shop",)
    assert any("incomplete: webhook authorizer unavailable" in n for n in ident.not_seen)


def test_rules_review_of_a_one_namespace_cluster_keeps_cluster_scoped_rights() -> None:
    reviews = {
        "system:serviceaccount:default:bot": {
            "default": {
                "resourceRules": [
                    rule([""], ["nodes/proxy"], ["get"]),
                    rule([""], ["pods/exec"], ["create"]),
                ]
            }
        }
    }
    ident = blast.compute(
        view(), [Identity.service_account("default", "bot")], [], reviews=reviews
    ).identities[0]
    assert right(ident, "nodes-proxy").cluster_wide
    assert right(ident, "exec").where == ("default",)


def test_review_problem_and_unreadable_rbac_are_said() -> None:
    v = view()
    v.seen -= {"clusterrolebindings", "rolebindings"}
    v.not_seen.append("could not list clusterrolebindings: forbidden")
    ident_user = "system:serviceaccount:ci:bot"
    result = blast.compute(
        v,
        [Identity.service_account("ci", "bot")],
        [],
        review_problems={ident_user: f"could not impersonate {ident_user}: forbidden"},
    )
    ident = result.identities[0]
    assert "Roles, ClusterRoles and bindings" in ident.method
    text = "\n".join(blast.render_lines(result))
    assert f"SelfSubjectRulesReview not used: could not impersonate {ident_user}: forbidden" in text
    assert "could not read clusterrolebindings, rolebindings" in text
    assert "could not list clusterrolebindings: forbidden" in text


def test_targets_of_an_incident() -> None:
    inc = Incident(
        id="INC-1",
        severity=Severity.HIGH,
        title="t",
        first_seen=0,
        last_seen=0,
        first_signal=0,
        tactics=(),
        entities=(
            entity(EntityKind.POD, "ci", "runner-0"),
            entity(EntityKind.SERVICE_ACCOUNT, "ci", "runner"),
            entity(EntityKind.USER, "", "system:serviceaccount:ci:runner"),
            entity(EntityKind.USER, "", "alice"),
            entity(EntityKind.NODE, "", "worker-1"),
        ),
    )
    identities, pods = blast.targets_of(inc)
    assert [i.user for i in identities] == ["system:serviceaccount:ci:runner", "alice"]
    assert pods == [("ci", "runner-0")]


# ---------------------------------------------------------------- hostile input


HOSTILE = "[bold red]x[/]\x1b]52;c;ZXZpbA==\x07\u202e"


def test_hostile_markup_and_control_characters_in_names_stay_text() -> None:
    v = view(
        roles=[role("shop", HOSTILE, [rule([""], ["secrets"], ["get"])])],
        role_bindings=[rb("shop", HOSTILE, "Role", HOSTILE, [sa_subject("ci", HOSTILE)])],
        pods=[pod("ci", HOSTILE, HOSTILE)],
    )
    result = blast.compute(v, [], [("ci", HOSTILE)])
    lines = blast.render_lines(result)
    text = "\n".join(lines)
    assert "\x1b" not in text and "\x07" not in text and "\u202e" not in text
    assert "\\x1b" in text and "[bold red]x[/]" in text  # shown literally
    assert any(p.goal == "Secrets of namespace shop" for p in result.paths)
    md = blast.render_markdown(result)
    assert "\x1b" not in md and "`Pod ci/[bold red]x[/]" in md
    assert_inert(md)  # no bracket, tag or escape outside a code span
    # The screen styles lines by position and never parses them as markup.
    from ktriage.ui.screens.blast import styled

    assert styled(lines).plain == text + "\n"


def test_hostile_ten_thousand_bindings() -> None:
    bindings = [
        rb(
            f"ns-{i % 200}",
            f"b-{i}",
            "ClusterRole",
            "view",
            [sa_subject(f"ns-{i % 200}", f"sa-{i}")],
        )
        for i in range(10_000)
    ]
    bindings.append(rb("kube-system", "evil", "ClusterRole", "edit", [sa_subject("ns-7", "sa-7")]))
    sas = [sa(f"ns-{i % 200}", f"sa-{i}") for i in range(10_000)]
    v = view(role_bindings=bindings, service_accounts=sas)
    started = time.perf_counter()
    result = blast.compute(v, [Identity.service_account("ns-7", "sa-7")], [], reviews=None)
    elapsed = time.perf_counter() - started
    ident = result.identities[0]
    assert right(ident, "secrets").where == ("kube-system",)
    assert elapsed < 5.0, elapsed


def test_hostile_role_with_a_thousand_rules() -> None:
    rules = [rule([f"g{i}.example.com"], [f"r{i}"], ["get"]) for i in range(999)]
    rules.append(rule([""], ["pods/exec"], ["create"]))
    v = view(
        roles=[role("shop", "big", rules)],
        role_bindings=[rb("shop", "big", "Role", "big", [sa_subject("shop", "x")])],
    )
    started = time.perf_counter()
    ident = blast.compute(v, [Identity.service_account("shop", "x")], []).identities[0]
    assert time.perf_counter() - started < 2.0
    assert right(ident, "exec").where == ("shop",)


def test_hostile_wildcard_everything_in_one_namespace_is_not_cluster_admin() -> None:
    v = view(
        roles=[role("shop", "all", [rule(["*"], ["*"], ["*"])])],
        role_bindings=[rb("shop", "all", "Role", "all", [sa_subject("shop", "x")])],
        cluster_roles=[cluster_role("core-star", [rule([""], ["*"], ["*"])])],
        cluster_role_bindings=[crb("core-star", "core-star", [sa_subject("shop", "y")])],
    )
    x, y = blast.compute(
        v, [Identity.service_account("shop", "x"), Identity.service_account("shop", "y")], []
    ).identities
    assert not x.cluster_admin and right(x, "secrets").where == ("shop",)
    assert right(x, "escalate").where == ("shop",)
    # Every core resource cluster-wide: not cluster-admin, but nodes/proxy and secrets everywhere.
    assert not y.cluster_admin
    assert right(y, "nodes-proxy").cluster_wide and right(y, "secrets").cluster_wide
    assert right(y, "wildcard").cluster_wide


def test_hostile_malformed_objects_are_skipped_not_fatal() -> None:
    v = view(
        roles=[{"metadata": "nope", "rules": "nope"}, {"rules": [None, 3, {"verbs": "*"}]}],
        role_bindings=[
            {"metadata": {"namespace": "shop", "name": "x"}, "subjects": None},
            {
                "metadata": {"namespace": "shop", "name": "y"},
                "roleRef": "z",
                "subjects": [None, {"kind": "ServiceAccount"}, {"kind": 5, "name": []}],
            },
        ],
        pods=[
            {
                "metadata": {"namespace": "shop", "name": "p"},
                "spec": {"volumes": "x", "containers": [None, {"env": [None, {"valueFrom": 1}]}]},
            }
        ],
        network_policies=[
            {
                "metadata": {"namespace": "shop", "name": "bad"},
                "spec": {"podSelector": {"matchExpressions": [{"operator": "Bogus"}]}},
            }
        ],
    )
    result = blast.compute(v, [Identity.service_account("shop", "x")], [("shop", "p")])
    assert result.pods[0].found
    assert any("could not be evaluated" in line for line in result.pods[0].ingress)
    assert blast.render_lines(result) and blast.render_markdown(result)


def test_core_blast_imports_no_client_and_no_ui() -> None:
    tree = ast.parse(Path(blast.__file__).read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    assert not [n for n in names if n.split(".")[0] in ("kubernetes", "textual")]
    assert not [n for n in names if n.startswith(("ktriage.ui", "ktriage.sources", "ktriage.sim"))]
