"""Audit detections on RBAC, certificates, admission webhooks, ConfigMaps, Events,
Services, workloads, static pods, bursts of secret reads and of deletions: each one
firing (severity, technique) and its near miss."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from test_detect_audit import audit, only_signal, run, signals

from ktriage.core.ingest import Ingestor
from ktriage.core.model import Event, Severity

REAL = Path(__file__).resolve().parents[2] / ".." / "shared" / "fixtures" / "real"
FALCO_AUDIT = REAL / "falco-k8s-audit"


def real(name: str) -> list[Event]:
    path = FALCO_AUDIT / name
    if not path.exists():
        pytest.skip(f"real fixtures not present ({path})")
    ing = Ingestor()
    out: list[Event] = []
    for line in path.read_bytes().splitlines():
        if line.strip():
            out.extend(ing.feed_line(line))
    out.extend(ing.flush())
    assert not ing.skipped
    return out


def one(events: list[Event]) -> Event:
    sigs = signals(events)
    assert len(sigs) == 1, [(e.kind, e.summary) for e in sigs]
    return sigs[0]


# -- RBAC ------------------------------------------------------------------------------


def role(rules: list[dict], *, resource: str = "clusterroles", name: str = "r",
         user: str = "alice", verb: str = "create") -> dict:  # fmt: skip
    ns = "payments" if resource == "roles" else None
    body = {"kind": "ClusterRole", "metadata": {"name": name}, "rules": rules}
    return audit(verb, resource, ns=ns, name=name, code=201, body=body, user=user,
                 aid=f"role-{name}")  # fmt: skip


@pytest.mark.parametrize(
    ("rule", "words"),
    [
        ({"resources": ["pods/exec"], "verbs": ["create"]}, "exec into pods"),
        ({"resources": ["pods/attach"], "verbs": ["get"]}, "attach to pods"),
        ({"resources": ["nodes/proxy"], "verbs": ["get"]}, "kubelet API"),
        ({"resources": ["secrets"], "verbs": ["list"]}, "read secrets in every namespace"),
        ({"resources": ["clusterroles"], "verbs": ["escalate"]}, "escalate"),
        ({"resources": ["clusterrolebindings"], "verbs": ["bind"]}, "bind"),
        ({"resources": ["users", "groups"], "verbs": ["impersonate"]}, "impersonate"),
        ({"resources": ["serviceaccounts/token"], "verbs": ["create"]}, "mint"),
    ],
)
def test_cluster_role_with_dangerous_rights_without_wildcards(rule: dict, words: str) -> None:
    ev = only_signal(role([{"apiGroups": [""], **rule}]))
    assert ev.kind == "rbac-dangerous-role"
    assert ev.severity == Severity.HIGH
    assert ev.attack.technique == "T1098.006"
    assert words in ev.summary


def test_dangerous_role_in_a_namespace_is_medium_and_ordinary_roles_are_context() -> None:
    ev = only_signal(role([{"resources": ["pods/exec"], "verbs": ["create"]}], resource="roles"))
    assert ev.severity == Severity.MEDIUM
    # Near misses: reading pods and logs; secrets in its own namespace only.
    assert signals(run(role([{"resources": ["pods", "pods/log"], "verbs": ["get", "list"]}]))) == []
    ns_secrets = role([{"resources": ["secrets"], "verbs": ["get"]}], resource="roles")
    assert signals(run(ns_secrets)) == []
    # The aggregation controller keeps admin/edit (which hold pods/exec) up to date.
    aggregator = "system:serviceaccount:kube-system:clusterrole-aggregation-controller"
    agg = role([{"resources": ["pods/exec"], "verbs": ["create"]}], name="edit", user=aggregator)
    assert signals(run(agg)) == []


def test_binding_to_a_dangerous_role_is_flagged() -> None:
    body = {
        "roleRef": {"kind": "ClusterRole", "name": "exec-all"},
        "subjects": [{"kind": "User", "name": "mallory"}],
    }
    bind = audit("create", "clusterrolebindings", ns=None, name="b", code=201, body=body,
                 aid="bind", at=1)  # fmt: skip
    events = run(role([{"resources": ["pods/exec"], "verbs": ["create"]}], name="exec-all"), bind)
    assert [(e.kind, e.label) for e in signals(events)] == [
        ("rbac-dangerous-role", "Role with dangerous rights"),
        ("rbac-binding", "Dangerous role binding"),
    ]


def test_real_falco_pod_exec_cluster_role() -> None:
    ev = one(real("create_cluster_role_pod_exec.json"))
    assert ev.kind == "rbac-dangerous-role"
    assert ev.severity == Severity.HIGH
    assert "minikube-user created ClusterRole some-reader granting exec into pods" in ev.summary


def test_real_falco_system_cluster_role_modified_and_deleted() -> None:
    ev = one(real("modify_cluster_role_node_problem_detector.json"))
    assert ev.kind == "rbac-system-change"
    assert ev.severity == Severity.HIGH
    assert "system:node-problem-detector" in ev.summary
    ev = one(real("delete_cluster_role_kube_aggregator.json"))
    assert ev.kind == "rbac-system-change"
    assert ev.severity == Severity.MEDIUM
    assert ev.label == "System role deleted"


def test_real_falco_ordinary_cluster_role_is_context() -> None:
    assert signals(real("create_clusterrole.json")) == []


def sa_binding(subject_ns: str, *, ns: str = "payments", role: str = "view") -> dict:
    body = {
        "roleRef": {"kind": "ClusterRole", "name": role},
        "subjects": [{"kind": "ServiceAccount", "name": "builder", "namespace": subject_ns}],
    }
    return audit("create", "rolebindings", ns=ns, name="b", code=201, body=body)


def test_role_binding_to_service_account() -> None:
    ev = only_signal(sa_binding("payments"))
    assert (ev.kind, ev.severity) == ("rbac-binding", Severity.LOW)
    ev = only_signal(sa_binding("ci"))  # a grant to another namespace's account
    assert (ev.severity, ev.label) == (
        Severity.LOW,
        "Cross-namespace role binding to service account",
    )
    ev = only_signal(sa_binding("kube-system"))
    assert ev.severity == Severity.LOW
    ctrl = "system:serviceaccount:kube-system:namespace-controller"
    rec = sa_binding("ci")
    rec["user"]["username"] = ctrl
    assert signals(run(rec)) == []


def test_binding_for_anonymous_or_every_caller() -> None:
    body = {
        "roleRef": {"kind": "ClusterRole", "name": "cluster-admin"},
        "subjects": [{"kind": "User", "name": "system:anonymous"}],
    }
    rec = audit("create", "clusterrolebindings", ns=None, name="oops", code=201, body=body)
    assert only_signal(rec).severity == Severity.CRITICAL
    body["roleRef"]["name"] = "view"
    body["subjects"] = [{"kind": "Group", "name": "system:unauthenticated"}]
    rec = audit("create", "clusterrolebindings", ns=None, name="oops", code=201, body=body)
    ev = only_signal(rec)
    assert (ev.severity, ev.label) == (Severity.HIGH, "Binding for anyone")


def test_system_binding_change_by_a_person() -> None:
    body = {
        "roleRef": {"kind": "ClusterRole", "name": "system:node"},
        "subjects": [{"kind": "Group", "name": "system:nodes"}, {"kind": "User", "name": "eve"}],
    }
    rec = audit("update", "clusterrolebindings", ns=None, name="system:node", body=body)
    ev = only_signal(rec)
    assert (ev.kind, ev.severity) == ("rbac-system-change", Severity.HIGH)
    rec["user"]["username"] = "system:apiserver"
    assert signals(run(rec)) == []


# -- certificate signing requests ---------------------------------------------------------


def csr_body(cn: str, orgs: tuple[str, ...] = (),
             signer: str = "kubernetes.io/kube-apiserver-client") -> dict:  # fmt: skip
    key = ec.generate_private_key(ec.SECP256R1())
    names = [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    names += [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in orgs]
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name(names))
        .sign(key, hashes.SHA256())
    )
    pem = csr.public_bytes(serialization.Encoding.PEM)
    return {
        "apiVersion": "certificates.k8s.io/v1",
        "kind": "CertificateSigningRequest",
        "metadata": {"name": "req"},
        "spec": {"request": base64.b64encode(pem).decode(), "signerName": signer,
                 "usages": ["client auth"]},
    }  # fmt: skip


def csr_create(body: dict, user: str = "mallory") -> dict:
    return audit("create", "certificatesigningrequests", ns=None, name="req", code=201,
                 body=body, user=user, aid="csr-c")  # fmt: skip


def csr_approve(body: dict, user: str) -> dict:
    approved = dict(body)
    approved["status"] = {"conditions": [{"type": "Approved", "status": "True"}]}
    return audit("update", "certificatesigningrequests", ns=None, name="req", sub="approval",
                 body=approved, user=user, aid="csr-a", at=2)  # fmt: skip


def test_csr_for_system_masters_is_critical_and_its_approval_too() -> None:
    body = csr_body("mallory-admin", ("system:masters",))
    events = run(csr_create(body), csr_approve(body, "mallory"))
    created, approved = signals(events)
    assert (created.kind, created.severity) == ("csr-create", Severity.CRITICAL)
    assert created.attack.technique == "T1649"
    assert "system:masters" in created.summary
    assert (approved.kind, approved.severity) == ("csr-approval", Severity.CRITICAL)


def test_csr_for_another_node_is_critical() -> None:
    body = csr_body("system:node:worker-9", ("system:nodes",),
                    "kubernetes.io/kube-apiserver-client-kubelet")  # fmt: skip
    ev = only_signal(csr_create(body, user="system:node:worker-1"))
    assert ev.severity == Severity.CRITICAL


def test_kubelet_bootstrap_csr_approved_by_the_controller_is_context() -> None:
    body = csr_body("system:node:worker-1", ("system:nodes",),
                    "kubernetes.io/kube-apiserver-client-kubelet")  # fmt: skip
    events = run(
        csr_create(body, user="system:bootstrap:abcdef"),
        csr_create(body, user="system:node:worker-1"),  # rotation of its own certificate
        csr_approve(body, "system:serviceaccount:kube-system:certificate-controller"),
    )
    assert signals(events) == []


def test_ordinary_user_csr_is_low_and_its_approval_medium() -> None:
    body = csr_body("alice", ("dev-team",))
    ev = only_signal(csr_create(body, user="alice"))
    assert ev.severity == Severity.LOW
    ev = only_signal(csr_approve(body, "bob"))
    assert ev.severity == Severity.MEDIUM


def test_hostile_csr_with_garbage_request_is_context() -> None:
    body = {"spec": {"request": "bm90IGEgY3Ny" * 1000, "signerName": "x"}}
    events = run(csr_create(body))
    assert signals(events) == []
    assert events[0].kind == "csr-create"


# -- admission webhooks --------------------------------------------------------------------


def webhook(verb: str, resource: str, body: object = None, user: str = "alice") -> dict:
    return audit(verb, resource, ns=None, name="inject", code=201, body=body, user=user)


def test_mutating_webhook_created_is_medium_and_validating_low() -> None:
    body = {"webhooks": [{"name": "inject.example.net", "clientConfig": {"url": "https://x"}}]}
    ev = only_signal(webhook("create", "mutatingwebhookconfigurations", body))
    assert (ev.kind, ev.severity) == ("admission-webhook", Severity.MEDIUM)
    assert ev.attack.technique == "T1546"
    ev = only_signal(webhook("create", "validatingwebhookconfigurations", body))
    assert ev.severity == Severity.LOW


def test_validating_webhook_deleted_is_medium_defense_evasion() -> None:
    ev = only_signal(webhook("delete", "validatingwebhookconfigurations"))
    assert ev.severity == Severity.MEDIUM
    assert ev.attack.technique == "T1562.001"
    assert ev.attack.tactic == "defense-evasion"


def test_webhook_ca_bundle_refresh_is_context() -> None:
    merge = {"webhooks": [{"name": "w", "clientConfig": {"caBundle": "LS0t"}}]}
    json_patch = [{"op": "replace", "path": "/webhooks/0/clientConfig/caBundle", "value": "x"}]
    user = "system:serviceaccount:cert-manager:cert-manager-cainjector"
    events = run(
        webhook("patch", "validatingwebhookconfigurations", merge, user=user),
        webhook("patch", "mutatingwebhookconfigurations", json_patch, user=user),
    )
    assert signals(events) == []
    changed = [{"op": "replace", "path": "/webhooks/0/failurePolicy", "value": "Ignore"}]
    ev = only_signal(webhook("patch", "mutatingwebhookconfigurations", changed, user=user))
    assert ev.severity == Severity.MEDIUM


# -- ConfigMaps -----------------------------------------------------------------------------


def configmap(name: str, data: dict, ns: str = "kube-system", user: str = "alice") -> dict:
    return audit("update", "configmaps", ns=ns, name=name, body={"data": data}, user=user)


def test_coredns_configmap_change_is_high() -> None:
    ev = only_signal(configmap("coredns", {"Corefile": ".:53 { rewrite name x y }"}))
    assert (ev.kind, ev.severity) == ("dns-config-change", Severity.HIGH)
    assert ev.attack.technique == "T1557"
    # the same name elsewhere is someone's app
    assert signals(run(configmap("coredns", {"a": "b"}, ns="payments"))) == []


def test_aws_auth_change_granting_masters_is_critical() -> None:
    roles = "- rolearn: arn:aws:iam::111122223333:role/x\n  groups:\n  - system:masters\n"
    ev = only_signal(configmap("aws-auth", {"mapRoles": roles}))
    assert (ev.kind, ev.severity) == ("aws-auth-change", Severity.CRITICAL)
    ev = only_signal(configmap("aws-auth", {"mapRoles": "- rolearn: r\n  groups: [dev]\n"}))
    assert ev.severity == Severity.HIGH
    eks = configmap("aws-auth", {"mapRoles": roles}, user="eks:node-manager")
    assert signals(run(eks)) == []


def test_real_falco_configmap_with_credentials_and_without() -> None:
    sigs = signals(real("create_configmap_sensitive_values.json"))
    assert sigs and all(e.kind == "configmap-credentials" for e in sigs)
    assert all(e.severity == Severity.MEDIUM for e in sigs)
    assert "aws_access_key_id" in sigs[0].summary
    assert signals(real("create_configmap_no_sensitive_values.json")) == []
    assert signals(real("create_configmap.json")) == []


# -- Events, Services ----------------------------------------------------------------------


def test_events_deleted() -> None:
    ev = only_signal(audit("delete", "events", name="web.17a"))
    assert (ev.kind, ev.severity) == ("events-deleted", Severity.MEDIUM)
    assert ev.attack.technique == "T1070"
    ev = only_signal(audit("deletecollection", "events"))
    assert ev.severity == Severity.HIGH
    gc = audit("delete", "events", name="x", user="system:serviceaccount:kube-system:"
               "namespace-controller")  # fmt: skip
    assert signals(run(gc)) == []


def test_real_falco_nodeport_service_and_cluster_ip_service() -> None:
    ev = one(real("create_nginx_service_nodeport.json"))
    assert (ev.kind, ev.severity) == ("service-exposed", Severity.LOW)
    assert ev.attack.technique == "T1133"
    assert signals(real("create_nginx_service_nonodeport.json")) == []


def test_exposing_the_kubelet_port_is_medium() -> None:
    body = {"spec": {"type": "LoadBalancer", "ports": [{"port": 443, "targetPort": 10250}]}}
    ev = only_signal(audit("create", "services", name="k", code=201, body=body))
    assert ev.severity == Severity.MEDIUM
    assert "10250" in ev.summary


# -- workloads --------------------------------------------------------------------------


def deployment(containers: list[dict], verb: str = "create", **kw: object) -> dict:
    body = {"metadata": {"name": "web"}, "spec": {"template": {"spec": {"containers": containers}}}}
    return audit(verb, "deployments", name="web", code=201, body=body, **kw)  # type: ignore[arg-type]


def test_sidecar_injected_into_an_existing_deployment() -> None:
    events = run(
        deployment([{"name": "web", "image": "shop/web:1"}], user="ci", aid="c"),
        deployment([{"name": "web", "image": "shop/web:1"}, {"name": "helper", "image": "x"}],
                   verb="patch", user="mallory", aid="p", at=5),
    )  # fmt: skip
    ev = one(events)
    assert (ev.kind, ev.severity) == ("container-injected", Severity.MEDIUM)
    assert ev.attack.technique == "T1610"
    assert "helper" in ev.summary


def test_init_container_added_by_json_patch() -> None:
    ops = [{"op": "add", "path": "/spec/template/spec/initContainers/-",
            "value": {"name": "pre", "image": "x"}}]  # fmt: skip
    ev = only_signal(audit("patch", "deployments", name="web", body=ops))
    assert ev.kind == "container-injected"
    assert "pre" in ev.summary


def test_image_update_is_not_an_injection() -> None:
    events = run(
        deployment([{"name": "web", "image": "shop/web:1"}], user="ci", aid="c"),
        deployment([{"name": "web", "image": "shop/web:2"}], verb="update", user="ci", aid="u"),
    )
    assert signals(events) == []


def test_daemonset_in_kube_system_by_a_person() -> None:
    body = {"spec": {"template": {"spec": {"containers": [{"name": "agent"}]}}}}
    rec = audit("create", "daemonsets", ns="kube-system", name="agent", code=201, body=body)
    ev = only_signal(rec)
    assert (ev.kind, ev.severity) == ("daemonset-kube-system", Severity.MEDIUM)
    assert ev.attack.technique == "T1543.005"
    rec = audit("create", "daemonsets", ns="monitoring", name="agent", code=201, body=body)
    assert signals(run(rec)) == []


# -- static pods -------------------------------------------------------------------------


def mirror_pod(user: str, ns: str = "kube-system", privileged: bool = False) -> dict:
    sc = {"securityContext": {"privileged": True}} if privileged else {}
    body = {
        "metadata": {"name": "kube-apiserver-cp1", "annotations": {
            "kubernetes.io/config.mirror": "3f2c", "kubernetes.io/config.source": "file"}},
        "spec": {"hostNetwork": True, "nodeName": "cp1",
                 "containers": [{"name": "c", **sc}],
                 "volumes": [{"name": "k8s-certs",
                              "hostPath": {"path": "/etc/kubernetes/pki"}}]},
    }  # fmt: skip
    return audit("create", "pods", ns=ns, name="kube-apiserver-cp1", code=201, body=body,
                 user=user)  # fmt: skip


def test_control_plane_static_pods_are_context() -> None:
    assert signals(run(mirror_pod("system:node:cp1"))) == []


def test_privileged_static_pod_or_one_outside_kube_system() -> None:
    ev = only_signal(mirror_pod("system:node:cp1", privileged=True))
    assert (ev.kind, ev.label) == ("static-pod", "Privileged static pod")
    assert ev.severity == Severity.MEDIUM  # as some distributions' kube-proxy
    assert ev.attack.technique == "T1543.005"
    ev = only_signal(mirror_pod("system:node:worker-2", ns="shop"))
    assert ev.severity == Severity.MEDIUM
    ev = only_signal(mirror_pod("system:node:worker-2", ns="shop", privileged=True))
    assert ev.severity >= Severity.HIGH


def test_mirror_pod_forged_by_a_non_node() -> None:
    ev = only_signal(mirror_pod("mallory"))
    assert (ev.label, ev.severity) == ("Forged mirror pod", Severity.HIGH)


# -- bursts ------------------------------------------------------------------------------


def test_twenty_secret_reads_in_forty_seconds_is_a_burst() -> None:
    user = "system:serviceaccount:payments:api"
    reads = [audit("get", "secrets", ns=f"ns{i % 4}", name=f"s{i}", user=user, aid=f"r{i}",
                   at=i * 1.5) for i in range(25)]  # fmt: skip
    bursts = [e for e in run(*reads) if e.kind == "secret-burst"]
    assert len(bursts) == 1
    assert bursts[0].severity == Severity.HIGH
    assert bursts[0].attack.technique == "T1552.007"


def test_same_secret_read_repeatedly_or_slowly_is_no_burst() -> None:
    user = "system:serviceaccount:payments:api"
    same = [audit("get", "secrets", name="db", user=user, aid=f"r{i}", at=i) for i in range(40)]
    slow = [audit("get", "secrets", name=f"s{i}", user=user, aid=f"s{i}", at=i * 3.0)
            for i in range(25)]  # fmt: skip
    assert not [e for e in run(*same) if e.kind == "secret-burst"]
    assert not [e for e in run(*slow) if e.kind == "secret-burst"]


def test_bulk_namespace_and_deployment_deletion() -> None:
    nss = [audit("delete", "namespaces", ns=None, name=f"team-{i}", aid=f"n{i}", at=i * 5)
           for i in range(6)]  # fmt: skip
    bulk = [e for e in run(*nss) if e.kind == "bulk-delete"]
    assert len(bulk) == 1
    assert (bulk[0].severity, bulk[0].attack.technique) == (Severity.HIGH, "T1485")
    deps = [audit("delete", "deployments", ns=f"ns{i % 3}", name=f"d{i}", aid=f"d{i}", at=i)
            for i in range(10)]  # fmt: skip
    assert len([e for e in run(*deps) if e.kind == "bulk-delete"]) == 1
    ev = only_signal(audit("deletecollection", "deployments", ns="shop"))
    assert (ev.kind, ev.severity) == ("bulk-delete", Severity.HIGH)


def test_a_few_deletions_or_the_namespace_controller_are_no_burst() -> None:
    few = [audit("delete", "namespaces", ns=None, name=f"pr-{i}", aid=f"n{i}", at=i * 5)
           for i in range(4)]  # fmt: skip
    assert signals(run(*few)) == []
    ctrl = "system:serviceaccount:kube-system:namespace-controller"
    gc = [audit("delete", "deployments", name=f"d{i}", user=ctrl, aid=f"g{i}", at=i)
          for i in range(30)]  # fmt: skip
    assert signals(run(*gc)) == []


# -- tokens --------------------------------------------------------------------------------


def test_token_for_a_controller_account_is_critical() -> None:
    rec = audit("create", "serviceaccounts", ns="kube-system", name="generic-garbage-collector",
                sub="token", code=201)  # fmt: skip
    ev = only_signal(rec)
    assert (ev.kind, ev.severity) == ("token-request", Severity.CRITICAL)
    rec = audit("create", "serviceaccounts", ns="kube-system", name="coredns", sub="token")
    assert only_signal(rec).severity == Severity.HIGH
    kcm = dict(rec, user={"username": "system:kube-controller-manager"})
    assert signals(run(kcm)) == []


def test_hostile_deep_rules_and_huge_subject_lists_are_bounded() -> None:
    rules = [{"resources": ["pods"], "verbs": ["get"]}] * 5000 + [
        {"resources": ["pods/exec"], "verbs": ["create"]}
    ]
    # past the rules read: the dangerous one is not seen, and nothing breaks
    assert signals(run(role(rules))) == []
    body = {"roleRef": {"kind": "ClusterRole", "name": "view"},
            "subjects": [{"kind": "ServiceAccount", "name": f"s{i}", "namespace": "x"}
                         for i in range(10_000)]}  # fmt: skip
    rec = audit("create", "clusterrolebindings", ns=None, name="b", code=201, body=body)
    ev = only_signal(rec)
    assert len(ev.summary) <= 400
    assert json.dumps(ev.as_dict())
