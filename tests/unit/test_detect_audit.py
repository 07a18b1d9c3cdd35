"""Audit detections: each one positive and with a benign negative."""

from __future__ import annotations

import copy

import orjson
import pytest

from ktriage.core.detect.podspec import spec_from_json_patch
from ktriage.core.ingest import Ingestor
from ktriage.core.model import EntityKind, Event, Severity, entity

T0 = 1714564800.0  # 2024-05-01T12:00:00Z


def stamp(offset: float) -> str:
    from ktriage.core.model import iso

    return iso(T0 + offset)


def audit(
    verb: str,
    resource: str | None = None,
    *,
    ns: str | None = "payments",
    name: str | None = None,
    sub: str | None = None,
    user: str = "alice",
    groups: list[str] | None = None,
    code: int = 200,
    stage: str = "ResponseComplete",
    uri: str | None = None,
    body: object = None,
    at: float = 0.0,
    aid: str = "req-1",
) -> dict:
    rec: dict = {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": "Request",
        "auditID": aid,
        "stage": stage,
        "verb": verb,
        "user": {"username": user, "groups": groups or ["system:authenticated"]},
        "sourceIPs": ["203.0.113.7"],
        "requestURI": uri or "/api/v1/whatever",
        "stageTimestamp": stamp(at),
    }
    if resource:
        ref = {"resource": resource}
        if ns:
            ref["namespace"] = ns
        if name:
            ref["name"] = name
        if sub:
            ref["subresource"] = sub
        rec["objectRef"] = ref
    if stage != "RequestReceived":
        rec["responseStatus"] = {"code": code}
    if body is not None:
        rec["requestObject"] = copy.deepcopy(body)
    return rec


def run(*records: dict, flush: bool = True) -> list[Event]:
    ing = Ingestor()
    out: list[Event] = []
    for i, rec in enumerate(records, 1):
        out.extend(ing.feed_line(orjson.dumps(rec), origin=f"t:{i}"))
    if flush:
        out.extend(ing.flush())
    assert not ing.skipped, ing.skip_log
    return out


def signals(events: list[Event]) -> list[Event]:
    return [e for e in events if e.signal]


def only_signal(*records: dict) -> Event:
    sigs = signals(run(*records))
    assert len(sigs) == 1, [(e.kind, e.summary) for e in sigs]
    return sigs[0]


# -- exec / attach / port-forward -------------------------------------------------


def test_exec_over_spdy_and_websocket() -> None:
    uri = (
        "/api/v1/namespaces/payments/pods/api-7d9f/exec"
        "?command=bash&command=-c&command=ls%20-la%20%7C%20head&stdin=true"
    )
    for verb in ("create", "get"):
        ev = only_signal(
            audit(
                verb,
                "pods",
                name="api-7d9f",
                sub="exec",
                code=101,
                stage="ResponseStarted",
                uri=uri,
            )
        )
        assert ev.kind == "exec"
        assert ev.label == "Exec into pod"
        assert ev.severity == Severity.MEDIUM
        assert ev.attack.technique == "T1609"
        assert entity(EntityKind.POD, "payments", "api-7d9f") in ev.entities
        assert ev.summary == "alice exec into payments/api-7d9f: bash -c 'ls -la | head'"


def test_exec_reading_token_is_high_and_denied_exec_is_low() -> None:
    uri = (
        "/api/v1/namespaces/p/pods/w/exec?command=cat"
        "&command=%2Fvar%2Frun%2Fsecrets%2Fkubernetes.io%2Fserviceaccount%2Ftoken"
    )
    ev = only_signal(audit("create", "pods", name="w", sub="exec", code=101, uri=uri))
    assert ev.severity == Severity.HIGH
    ev = only_signal(audit("create", "pods", name="w", sub="exec", code=403))
    assert ev.severity == Severity.LOW
    assert "denied 403" in ev.summary


def test_one_signal_per_request_across_stages() -> None:
    stages = [
        audit("create", "pods", name="w", sub="exec", stage="RequestReceived", at=0),
        audit("create", "pods", name="w", sub="exec", stage="ResponseStarted", code=101, at=0.1),
        audit("create", "pods", name="w", sub="exec", stage="ResponseComplete", code=101, at=60),
    ]
    events = run(*stages)
    assert len(events) == 3  # every stage is kept, as context
    assert [e.ref.split(":")[1] for e in signals(events)] == ["ResponseStarted"]
    # Out of order: the response stage first, then its RequestReceived.
    events = run(stages[1], stages[0])
    assert len(signals(events)) == 1


def test_request_received_only_is_released_as_the_signal() -> None:
    rr = audit("create", "pods", name="w", sub="exec", stage="RequestReceived", at=0)
    ing = Ingestor()
    assert ing.feed_line(orjson.dumps(rr)) == []  # held for its response stage
    later = audit("get", "configmaps", name="c", aid="other", at=HOLD + 1)
    out = ing.feed_line(orjson.dumps(later))
    assert [e.kind for e in out] == ["exec", "api-request"]
    assert out[0].signal
    # and at the end of input when time never moved on
    ing = Ingestor()
    ing.feed_line(orjson.dumps(rr))
    [ev] = ing.flush()
    assert ev.signal and ev.kind == "exec"


HOLD = 30.0


def test_attach_and_port_forward() -> None:
    assert only_signal(audit("create", "pods", name="w", sub="attach", code=101)).kind == "attach"
    pf = only_signal(audit("get", "pods", name="w", sub="portforward", code=101))
    assert pf.kind == "port-forward"
    assert pf.attack.tactic == "command-and-control"


def test_benign_pod_reads_are_context() -> None:
    assert signals(run(audit("get", "pods", name="w"), audit("list", "pods"))) == []
    assert signals(run(audit("get", "pods", name="w", sub="log"))) == []


def test_ephemeral_container() -> None:
    ev = only_signal(audit("patch", "pods", name="w", sub="ephemeralcontainers"))
    assert ev.kind == "ephemeral-container"
    assert ev.severity == Severity.MEDIUM and "(denied" not in ev.summary
    refused = only_signal(audit("patch", "pods", name="w", sub="ephemeralcontainers", code=403))
    assert refused.severity == Severity.LOW
    assert refused.summary.endswith("(denied 403)")
    assert refused.label == "Ephemeral container attempt (denied)"
    assert signals(run(audit("get", "pods", name="w", sub="ephemeralcontainers"))) == []


# -- secrets -------------------------------------------------------------------------


def test_secret_read_by_service_account_and_user() -> None:
    ev = only_signal(audit("get", "secrets", name="db", user="system:serviceaccount:payments:api"))
    assert ev.kind == "secret-read"
    assert ev.severity == Severity.MEDIUM
    assert ev.attack.technique == "T1552.007"
    assert entity(EntityKind.SERVICE_ACCOUNT, "payments", "api") in ev.entities
    ev = only_signal(audit("get", "secrets", name="db", user="bob"))
    assert ev.severity == Severity.LOW


def test_cluster_wide_secret_list_by_service_account_is_high() -> None:
    ev = only_signal(
        audit("list", "secrets", ns=None, user="system:serviceaccount:default:default")
    )
    assert ev.kind == "secret-list"
    assert ev.severity == Severity.HIGH
    assert "all namespaces" in ev.summary


def test_secret_reads_by_control_plane_are_context() -> None:
    events = run(
        audit("get", "secrets", name="x", user="system:kube-controller-manager"),
        # a kubelet reads (or watches, by name) the secrets of the pods bound to it
        audit("get", "secrets", name="db", user="system:node:worker-1", aid="2"),
        audit(
            "watch", "secrets", name="db", user="system:node:worker-1", aid="3",
            uri="/api/v1/namespaces/payments/secrets?fieldSelector=metadata.name%3Ddb&watch=true",
        ),
    )  # fmt: skip
    assert signals(events) == []
    assert {e.kind for e in events} == {"secret-read", "secret-list"}


def test_node_listing_all_secrets_is_high() -> None:
    ev = only_signal(audit("list", "secrets", ns=None, user="system:node:worker-1"))
    assert ev.kind == "secret-list"
    assert ev.severity == Severity.HIGH
    assert ev.label == "Node credential listing secrets"


def test_kube_system_service_account_is_a_normal_identity() -> None:
    ev = only_signal(
        audit("list", "secrets", ns=None, user="system:serviceaccount:kube-system:coredns")
    )
    assert ev.severity == Severity.HIGH
    ev = only_signal(
        audit("get", "secrets", name="x", user="system:serviceaccount:kube-system:coredns")
    )
    assert ev.severity == Severity.MEDIUM


def test_secret_create_is_not_a_read() -> None:
    assert signals(run(audit("create", "secrets", name="x", body={"type": "Opaque"}))) == []


# -- RBAC ------------------------------------------------------------------------------


def binding(role: str, *, resource: str = "clusterrolebindings", user: str = "alice") -> dict:
    body = {
        "kind": "ClusterRoleBinding",
        "metadata": {"name": "b"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
        "subjects": [{"kind": "ServiceAccount", "name": "api", "namespace": "payments"}],
    }
    ns = "payments" if resource == "rolebindings" else None
    return audit("create", resource, ns=ns, name="b", user=user, code=201, body=body)


def test_cluster_admin_binding() -> None:
    ev = only_signal(binding("cluster-admin"))
    assert ev.kind == "rbac-binding"
    assert ev.severity == Severity.HIGH
    assert ev.label == "Cluster-admin binding"
    assert ev.attack.technique == "T1098.006"
    assert entity(EntityKind.SERVICE_ACCOUNT, "payments", "api") in ev.entities
    assert "ClusterRole cluster-admin to ServiceAccount payments/api" in ev.summary


def test_admin_rolebinding_is_medium_and_view_is_context() -> None:
    assert only_signal(binding("admin", resource="rolebindings")).severity == Severity.MEDIUM
    view = only_signal(binding("view"))  # a grant to a service account: low, for the record
    assert view.severity == Severity.LOW
    assert view.label == "Role binding to service account"
    assert signals(run(binding("cluster-admin", user="system:apiserver"))) == []


def role(rules: list[dict], *, resource: str = "clusterroles", name: str = "r") -> dict:
    ns = "payments" if resource == "roles" else None
    body = {"kind": "ClusterRole", "metadata": {"name": name}, "rules": rules}
    return audit("create", resource, ns=ns, name=name, code=201, body=body, aid=f"role-{name}")


def test_wildcard_roles_and_bindings_to_them() -> None:
    ev = only_signal(role([{"apiGroups": [""], "resources": ["*"], "verbs": ["get"]}]))
    assert ev.kind == "rbac-wildcard-role"
    assert ev.severity == Severity.HIGH
    ev = only_signal(
        role([{"apiGroups": [""], "resources": ["pods"], "verbs": ["*"]}], resource="roles")
    )
    assert ev.severity == Severity.MEDIUM
    assert (
        signals(run(role([{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}])))
        == []
    )
    # a binding to a wildcard role seen earlier is flagged too
    events = run(role([{"resources": ["*"], "verbs": ["*"]}], name="godmode"), binding("godmode"))
    assert [e.kind for e in signals(events)] == ["rbac-wildcard-role", "rbac-binding"]


# -- pods and workloads reaching into the host ----------------------------------------


POD_PRIV = {
    "kind": "Pod",
    "metadata": {"name": "debug"},
    "spec": {
        "hostPID": True,
        "containers": [{"name": "c", "image": "busybox", "securityContext": {"privileged": True}}],
        "volumes": [{"name": "root", "hostPath": {"path": "/"}}],
    },
}


def test_privileged_hostpath_pod_by_user() -> None:
    ev = only_signal(audit("create", "pods", code=201, body=POD_PRIV))
    assert ev.kind == "privileged-pod"
    assert ev.severity >= Severity.HIGH
    assert ev.attack.technique == "T1611"
    assert entity(EntityKind.POD, "payments", "debug") in ev.entities
    assert "hostPath /" in ev.summary and "hostPID" in ev.summary


def test_a_pod_a_controller_creates_is_named_from_the_response() -> None:
    """A ReplicaSet's pods are created from a generateName: only the response (at
    the RequestResponse audit level) holds the name the server gave."""
    body = copy.deepcopy(POD_PRIV)
    body["metadata"] = {"generateName": "web-7d9f-"}
    rec = audit(
        "create",
        "pods",
        code=201,
        body=body,
        user="system:serviceaccount:kube-system:replicaset-controller",
    )
    rec["responseObject"] = dict(body, metadata={"name": "web-7d9f-x2kq", "namespace": "payments"})
    ev = only_signal(rec)
    assert ev.kind == "privileged-pod"
    assert ev.first(EntityKind.POD) == entity(EntityKind.POD, "payments", "web-7d9f-x2kq")
    assert "created payments/web-7d9f-x2kq" in ev.summary
    # Without a response, it still says what it knows.
    del rec["responseObject"]
    ev = only_signal(rec)
    assert ev.first(EntityKind.POD) is None
    assert "created a pod in payments" in ev.summary


@pytest.mark.parametrize(
    ("spec", "kind"),
    [
        (
            {
                "containers": [{"name": "c"}],
                "volumes": [{"name": "v", "hostPath": {"path": "/etc"}}],
            },
            "hostpath-pod",
        ),
        ({"hostNetwork": True, "containers": [{"name": "c"}]}, "host-namespace-pod"),
        ({"hostIPC": True, "containers": [{"name": "c"}]}, "host-namespace-pod"),
        (
            {
                "containers": [{"name": "c"}],
                "initContainers": [{"name": "i", "securityContext": {"privileged": True}}],
            },
            "privileged-pod",
        ),
        (
            {
                "containers": [
                    {"name": "c", "securityContext": {"capabilities": {"add": ["SYS_ADMIN"]}}}
                ]
            },
            "privileged-pod",
        ),
    ],
)
def test_pod_spec_risks(spec: dict, kind: str) -> None:
    ev = only_signal(
        audit("create", "pods", code=201, body={"metadata": {"name": "p"}, "spec": spec})
    )
    assert ev.kind == kind


def test_ordinary_pod_is_context() -> None:
    body = {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}
    events = run(audit("create", "pods", code=201, body=body))
    assert signals(events) == []
    assert events[0].kind == "pod-create"


def test_controller_made_privileged_pods() -> None:
    ctrl = "system:serviceaccount:kube-system:replicaset-controller"
    ev = only_signal(audit("create", "pods", code=201, body=POD_PRIV, user=ctrl))
    assert ev.severity == Severity.LOW  # the template's author is the real signal
    events = run(audit("create", "pods", ns="kube-system", code=201, body=POD_PRIV, user=ctrl))
    assert signals(events) == []
    assert events[0].kind == "privileged-pod"


@pytest.mark.parametrize(
    "resource", ["deployments", "daemonsets", "statefulsets", "jobs", "replicasets"]
)
def test_workload_templates(resource: str) -> None:
    body = {"metadata": {"name": "w"}, "spec": {"template": {"spec": POD_PRIV["spec"]}}}
    ev = only_signal(audit("create", resource, name="w", code=201, body=body))
    assert ev.kind == "privileged-pod"


def test_cronjob_template_and_plain_cronjob() -> None:
    spec = {
        "jobTemplate": {
            "spec": {"template": {"spec": {"hostNetwork": True, "containers": [{"name": "c"}]}}}
        }
    }
    ev = only_signal(audit("create", "cronjobs", name="cj", code=201, body={"spec": spec}))
    assert ev.kind == "host-namespace-pod"
    plain = {
        "spec": {"jobTemplate": {"spec": {"template": {"spec": {"containers": [{"name": "c"}]}}}}}
    }
    ev = only_signal(audit("create", "cronjobs", name="cj", code=201, body=plain))
    assert ev.kind == "cronjob-create"
    assert ev.attack.technique == "T1053.007"


def test_plain_deployment_is_context() -> None:
    body = {"spec": {"template": {"spec": {"containers": [{"name": "c"}]}}}}
    assert signals(run(audit("create", "deployments", name="w", code=201, body=body))) == []


# -- anonymous ------------------------------------------------------------------------


def test_anonymous_allowed() -> None:
    ev = only_signal(
        audit("get", "pods", name="p", user="system:anonymous", groups=["system:unauthenticated"])
    )
    assert ev.kind == "anonymous-allowed"
    assert ev.severity == Severity.HIGH
    assert ev.attack.tactic == "initial-access"


@pytest.mark.parametrize(
    "path", ["/healthz", "/livez", "/readyz?verbose", "/version", "/healthz/etcd"]
)
def test_anonymous_public_paths_are_context(path: str) -> None:
    assert signals(run(audit("get", user="system:anonymous", uri=path))) == []


def test_anonymous_denied_is_not_allowed() -> None:
    assert signals(run(audit("get", "pods", name="x", user="system:anonymous", code=403))) == []
    # a denied secret read is still a (low) secret-read signal, but not anonymous access
    [ev] = signals(run(audit("get", "secrets", name="x", user="system:anonymous", code=401)))
    assert ev.kind == "secret-read" and ev.severity == Severity.LOW


# -- 403 bursts -----------------------------------------------------------------------


def denied(i: int, at: float, user: str = "mallory") -> dict:
    return audit("list", "secrets", ns=f"ns{i}", user=user, code=403, at=at, aid=f"d-{user}-{i}")


def test_forbidden_burst_is_one_signal() -> None:
    events = run(*[denied(i, i * 2.0) for i in range(25)])
    bursts = [e for e in events if e.kind == "forbidden-burst"]
    assert len(bursts) == 1
    burst = bursts[0]
    assert burst.signal and burst.attack.technique == "T1613"
    assert entity(EntityKind.USER, "", "mallory") in burst.entities
    assert burst.time == T0 + 18.0  # the tenth denial


def test_forbidden_below_threshold_or_spread_out_is_no_burst() -> None:
    assert not [e for e in run(*[denied(i, i) for i in range(9)]) if e.kind == "forbidden-burst"]
    spread = [denied(i, i * 10.0) for i in range(12)]
    assert not [e for e in run(*spread) if e.kind == "forbidden-burst"]


def test_forbidden_burst_out_of_order_and_second_burst() -> None:
    recs = [denied(i, i * 1.0) for i in range(12)]
    recs.reverse()
    assert len([e for e in run(*recs) if e.kind == "forbidden-burst"]) == 1
    later = [denied(100 + i, 1000 + i) for i in range(10)]
    events = run(*[denied(i, i) for i in range(10)], *later)
    assert len([e for e in events if e.kind == "forbidden-burst"]) == 2


def test_forbidden_from_control_plane_is_ignored() -> None:
    user = "system:serviceaccount:kube-system:replicaset-controller"
    events = run(*[denied(i, i, user=user) for i in range(20)])
    assert not [e for e in events if e.kind == "forbidden-burst"]
    # any other kube-system account is judged like anyone
    user = "system:serviceaccount:kube-system:coredns"
    events = run(*[denied(i, i, user=user) for i in range(20)])
    assert len([e for e in events if e.kind == "forbidden-burst"]) == 1


# -- node proxy, tokens, security tooling ----------------------------------------------


def test_node_proxy() -> None:
    uri = "/api/v1/nodes/worker-1/proxy/run/payments/api-7d9f/api?cmd=id"
    ev = only_signal(audit("create", "nodes", ns=None, name="worker-1", sub="proxy", uri=uri))
    assert ev.kind == "node-proxy"
    assert ev.severity == Severity.HIGH
    assert entity(EntityKind.NODE, "", "worker-1") in ev.entities
    metrics = "/api/v1/nodes/worker-1/proxy/metrics"
    ev = only_signal(audit("get", "nodes", ns=None, name="worker-1", sub="proxy", uri=metrics))
    assert ev.severity == Severity.LOW
    assert signals(run(audit("get", "nodes", ns=None, name="worker-1"))) == []


def test_token_requests() -> None:
    ev = only_signal(audit("create", "serviceaccounts", name="api", sub="token", code=201))
    assert ev.kind == "token-request"
    assert ev.attack.technique == "T1528"
    assert entity(EntityKind.SERVICE_ACCOUNT, "payments", "api") in ev.entities
    body = {"type": "kubernetes.io/service-account-token", "metadata": {"name": "t"}}
    ev = only_signal(audit("create", "secrets", name="t", code=201, body=body))
    assert ev.kind == "token-request"
    kubelet = audit("create", "serviceaccounts", name="api", sub="token", user="system:node:w1")
    assert signals(run(kubelet)) == []


@pytest.mark.parametrize(
    ("resource", "ns", "name"),
    [
        ("namespaces", None, "falco"),
        ("daemonsets", "security", "tetragon"),
        ("deployments", "ops", "sysdig-agent"),
    ],
)
def test_security_tool_deleted(resource: str, ns: str | None, name: str) -> None:
    ev = only_signal(audit("delete", resource, ns=ns, name=name))
    assert ev.kind == "security-tool-deleted"
    assert ev.severity == Severity.HIGH
    assert ev.attack.technique == "T1562.001"


def test_ordinary_deletes_are_context() -> None:
    events = run(
        audit("delete", "namespaces", ns=None, name="feature-42"),
        audit("delete", "deployments", name="web", aid="2"),
    )
    assert signals(events) == []


def test_pod_created_with_a_bound_token_is_the_first_pod_and_the_token_pod_stays() -> None:
    rec = audit(
        "create", "pods", ns="kube-system", code=201, body=POD_PRIV,
        user="system:serviceaccount:ci:runner",
    )  # fmt: skip
    rec["user"]["extra"] = {
        "authentication.kubernetes.io/pod-name": ["runner-8c457c4d-d4kw5"],
        "authentication.kubernetes.io/node-name": ["worker-1"],
    }
    ev = only_signal(rec)
    assert ev.kind == "privileged-pod"
    pods = [e for e in ev.entities if e.kind == EntityKind.POD]
    assert pods == [
        entity(EntityKind.POD, "kube-system", "debug"),
        entity(EntityKind.POD, "ci", "runner-8c457c4d-d4kw5"),
    ]
    assert ev.first(EntityKind.POD) == pods[0]


def test_a_signal_says_whose_rights_an_impersonated_request_used() -> None:
    rec = audit("list", "secrets", user="system:admin", code=403)
    rec["impersonatedUser"] = {"username": "alice", "groups": ["system:authenticated"]}
    ev = only_signal(rec)
    assert ev.kind == "secret-list"
    assert ev.summary == "system:admin as alice list secrets in payments (denied 403)"
    assert entity(EntityKind.USER, "", "alice") in ev.entities


# -- JSON patches of a pod spec --------------------------------------------------------


@pytest.mark.parametrize(
    "resource,ops,want",
    [
        (
            "deployments",
            [
                {
                    "op": "add",
                    "path": "/spec/template/spec/containers/0/securityContext",
                    "value": {"privileged": True},
                }
            ],
            {"containers": [{"securityContext": {"privileged": True}}]},
        ),
        (
            "pods",
            [
                {"op": "replace", "path": "/spec/hostPID", "value": True},
                {"op": "remove", "path": "/spec/hostNetwork"},
            ],
            {"hostPID": True},
        ),
        (
            "cronjobs",
            [
                {
                    "op": "add",
                    "path": "/spec/jobTemplate/spec/template/spec/volumes/-",
                    "value": {"name": "h", "hostPath": {"path": "/"}},
                }
            ],
            {"volumes": [{"name": "h", "hostPath": {"path": "/"}}]},
        ),
        (
            "daemonsets",
            [{"op": "add", "path": "/spec/template", "value": {"spec": {"hostIPC": True}}}],
            {"hostIPC": True},
        ),
        (
            "deployments",
            [
                {
                    "op": "add",
                    "path": "/spec/template/spec/initContainers/1/securityContext"
                    "/capabilities/add/-",
                    "value": "SYS_ADMIN",
                }
            ],
            {"initContainers": [{"securityContext": {"capabilities": {"add": ["SYS_ADMIN"]}}}]},
        ),
        ("deployments", [{"op": "add", "path": "/metadata/labels/a", "value": "b"}], None),
        (
            "deployments",
            [{"op": "test", "path": "/spec/template/spec/hostPID", "value": True}],
            None,
        ),
        ("deployments", ["junk", {"op": "add", "path": 3}, {"op": "add"}], None),
    ],
)
def test_spec_from_json_patch(resource: str, ops: list, want: dict | None) -> None:
    assert spec_from_json_patch(resource, ops) == want


def test_privileged_workload_by_json_patch_is_detected_like_a_merge_patch() -> None:
    patch = [
        {
            "op": "add",
            "path": "/spec/template/spec/containers/0/securityContext",
            "value": {"privileged": True},
        }
    ]
    merge = {
        "spec": {
            "template": {
                "spec": {"containers": [{"name": "web", "securityContext": {"privileged": True}}]}
            }
        }
    }
    by_json = only_signal(audit("patch", "deployments", name="web", body=patch))
    by_merge = only_signal(audit("patch", "deployments", name="web", body=merge))
    assert by_json.kind == by_merge.kind == "privileged-pod"
    assert by_json.severity == by_merge.severity


def test_hostile_json_patch_host_namespaces_and_escaped_pointer() -> None:
    # "~1" is "/" in a JSON pointer: a key that merely looks like a path is not the spec.
    decoy = [{"op": "add", "path": "/spec~1template~1spec~1hostPID", "value": True}]
    assert spec_from_json_patch("deployments", decoy) is None
    ops = [{"op": "add", "path": "/spec/template/spec/hostPID", "value": True}]
    ev = only_signal(audit("patch", "statefulsets", name="db", body=ops))
    assert ev.kind == "host-namespace-pod" and ev.severity == Severity.HIGH


# -- a denied request is an attempt -----------------------------------------------------

_ADMIN_BINDING = {
    "metadata": {"name": "x"},
    "roleRef": {"kind": "ClusterRole", "name": "cluster-admin"},
    "subjects": [{"kind": "User", "name": "mallory"}],
}
_WILDCARD_ROLE = {"metadata": {"name": "r"}, "rules": [{"verbs": ["*"], "resources": ["*"]}]}
_NODEPORT = {"metadata": {"name": "s"}, "spec": {"type": "NodePort", "ports": [{"port": 22}]}}
_DNS = {"metadata": {"name": "coredns"}, "data": {"Corefile": ". {}"}}


@pytest.mark.parametrize(
    ("record", "kind", "summary"),
    [
        (
            audit("create", "clusterrolebindings", ns=None, body=_ADMIN_BINDING),
            "rbac-binding",
            "alice bound ClusterRole cluster-admin to User mallory (clusterrolebindings x)",
        ),
        (
            audit("delete", "clusterrolebindings", ns=None, name="system:node"),
            "rbac-system-change",
            "alice deleted ClusterRoleBinding system:node",
        ),
        (
            audit("delete", "clusterroles", ns=None, name="system:controller:x"),
            "rbac-system-change",
            "alice deleted ClusterRole system:controller:x",
        ),
        (
            audit("create", "clusterroles", ns=None, body=_WILDCARD_ROLE),
            "rbac-wildcard-role",
            None,
        ),
        (audit("create", "services", body=_NODEPORT), "service-exposed", None),
        (
            audit("update", "configmaps", ns="kube-system", name="coredns", body=_DNS),
            "dns-config-change",
            None,
        ),
        (
            audit("deletecollection", "events"),
            "events-deleted",
            None,
        ),
    ],
)
def test_a_denied_request_is_a_low_attempt_saying_its_code(
    record: dict, kind: str, summary: str | None
) -> None:
    allowed = only_signal(record)
    assert allowed.kind == kind
    assert allowed.severity > Severity.LOW
    assert "denied" not in allowed.summary and "attempt" not in allowed.label
    if summary is not None:
        assert allowed.summary == summary
    record = copy.deepcopy(record)
    record["responseStatus"] = {"code": 403}
    refused = only_signal(record)
    assert refused.kind == kind
    assert refused.severity == Severity.LOW
    assert refused.summary == f"{allowed.summary} (denied 403)"
    assert refused.label == f"{allowed.label} attempt (denied)"
