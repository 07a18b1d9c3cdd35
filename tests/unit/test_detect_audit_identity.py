"""Audit identities: who is the control plane, system credentials used from outside the
cluster's networks, anonymous access always judged, privileged impersonation."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from test_detect_audit import audit, only_signal, run, signals

from ktriage.core.config import ConfigError, config_from_dict
from ktriage.core.detect.audit import might_signal
from ktriage.core.detect.identity import (
    CONTROLLER_ACCOUNTS,
    ClusterNetworks,
    is_control_plane,
    is_public_address,
)
from ktriage.core.ingest import Ingestor
from ktriage.core.model import Event, Severity
from ktriage.core.parse.audit import DECODER

REAL = Path(__file__).resolve().parents[2] / ".." / "shared" / "fixtures" / "real"
NODE = "system:node:ip-192-168-3-178.us-west-2.compute.internal"
POD_STATUS = {
    "status": {
        "podIP": "10.244.1.17",
        "podIPs": [{"ip": "10.244.1.17"}],
        "hostIP": "192.168.3.178",
        "hostIPs": [{"ip": "192.168.3.178"}],
    }
}


def from_ip(rec: dict, *ips: str) -> dict:
    rec["sourceIPs"] = list(ips)
    return rec


def kubelet_status_patch(aid: str = "st-1", at: float = 0.0) -> dict:
    """A kubelet patching its pod's status: the cluster's addresses, learnt."""
    rec = audit(
        "patch", "pods", ns="payments", name="api-7d9f", sub="status", user=NODE,
        body=POD_STATUS, aid=aid, at=at,
    )  # fmt: skip
    return from_ip(rec, "192.168.3.178")


def feed(ing: Ingestor, *records: dict) -> list[Event]:
    out: list[Event] = []
    for rec in records:
        out.extend(ing.feed_line(orjson.dumps(rec)))
    out.extend(ing.flush())
    return out


# -- control-plane identities ------------------------------------------------------------


def test_controller_accounts_come_from_kube_controller_manager() -> None:
    for name in ("replicaset-controller", "deployment-controller", "generic-garbage-collector"):
        assert name in CONTROLLER_ACCOUNTS
        assert is_control_plane(f"system:serviceaccount:kube-system:{name}")
    assert is_control_plane("system:kube-scheduler")
    assert not is_control_plane("system:serviceaccount:kube-system:coredns")
    assert not is_control_plane("system:serviceaccount:kube-system:default")
    assert not is_control_plane("system:serviceaccount:payments:replicaset-controller")
    assert not is_control_plane("system:kube-controller-manager-evil")


def test_replicaset_controller_creating_pods_is_context() -> None:
    body = {"metadata": {"generateName": "web-7d9f-"}, "spec": {"containers": [{"name": "c"}]}}
    ctrl = "system:serviceaccount:kube-system:replicaset-controller"
    assert signals(run(audit("create", "pods", code=201, body=body, user=ctrl))) == []


def test_stolen_kube_system_token_dumping_secrets_is_a_signal() -> None:
    user = "system:serviceaccount:kube-system:default"
    ev = only_signal(audit("list", "secrets", ns=None, user=user))
    assert ev.severity == Severity.HIGH
    priv = {"spec": {"containers": [{"name": "x", "securityContext": {"privileged": True}}]}}
    ev = only_signal(audit("create", "pods", ns="kube-system", name="x", code=201, body=priv,
                           user=user, aid="p"))  # fmt: skip
    assert ev.kind == "privileged-pod"
    assert ev.severity == Severity.HIGH


def test_hostile_spoofed_system_names_in_user_agent_and_object_names() -> None:
    # The user agent and the object's name are the caller's to choose; only the
    # authenticated username decides.
    rec = audit("list", "secrets", ns=None, user="mallory")
    rec["userAgent"] = "kube-controller-manager/v1.30.0 (system:kube-controller-manager)"
    assert only_signal(rec).severity == Severity.MEDIUM
    body = {
        "metadata": {"name": "system:kube-controller-manager"},
        "roleRef": {"kind": "ClusterRole", "name": "cluster-admin"},
        "subjects": [{"kind": "User", "name": "system:kube-controller-manager"}],
    }
    rec = audit("create", "clusterrolebindings", ns=None, name="system:kube-controller-manager",
                code=201, body=body, user="mallory")  # fmt: skip
    ev = only_signal(rec)
    assert ev.label == "Cluster-admin binding"
    assert ev.summary.startswith("mallory bound ClusterRole cluster-admin")
    # a user name that only looks like a controller's
    user = "system:serviceaccount:kube-system:replicaset-controller "
    assert only_signal(audit("list", "secrets", ns=None, user=user)).signal


# -- system credentials from outside ------------------------------------------------------


def test_system_credential_from_public_ip_is_high_once_networks_are_known() -> None:
    ing = Ingestor()
    token_use = from_ip(
        audit("list", "pods", ns=None, user="system:serviceaccount:kube-system:coredns",
              aid="x1", at=5),
        "8.8.8.8",
    )  # fmt: skip
    events = feed(ing, kubelet_status_patch(), token_use)
    [ev] = signals(events)
    assert ev.kind == "system-credential-outside"
    assert ev.severity == Severity.HIGH
    assert ev.attack.technique == "T1078"
    assert "8.8.8.8" in ev.summary
    assert ev.label == "Service-account token used from outside"


def test_system_credential_outside_says_nothing_until_a_network_is_known() -> None:
    rec = from_ip(audit("get", "nodes", ns=None, name="n1", user=NODE), "8.8.8.8")
    assert signals(run(rec)) == []


def test_system_credential_from_inside_or_private_is_quiet() -> None:
    ing = Ingestor()
    inside = [
        from_ip(audit("get", "nodes", ns=None, name="n", user=NODE, aid=f"i{i}", at=i), ip)
        for i, ip in enumerate(["192.168.3.178", "10.244.1.17", "127.0.0.1", "169.254.1.1",
                                "172.20.0.5", "fd00::1", "not-an-ip"])
    ]  # fmt: skip
    assert signals(feed(ing, kubelet_status_patch(), *inside)) == []


def test_nodes_with_public_addresses_vouch_for_their_neighbours() -> None:
    node_status = audit(
        "patch", "nodes", ns=None, name="n1", sub="status", user=NODE,
        body={"status": {"addresses": [{"type": "ExternalIP", "address": "198.51.100.20"},
                                       {"type": "Hostname", "address": "8.8.8.8"}]}},
    )  # fmt: skip
    node_status = from_ip(node_status, "198.51.100.20")
    near = from_ip(audit("get", "nodes", ns=None, name="n1", user=NODE, aid="a"), "198.51.100.21")
    far = from_ip(audit("get", "nodes", ns=None, name="n1", user=NODE, aid="b"), "8.8.8.8")
    events = feed(Ingestor(), node_status, near, far)
    assert [e.summary.split(" used from ")[1][:7] for e in signals(events)] == ["8.8.8.8"]
    assert signals(events)[0].label == "Node credential used from outside"


def test_configured_networks_count_as_inside_and_make_networks_known() -> None:
    networks = ClusterNetworks(["198.51.100.0/24"])
    ing = Ingestor(networks)
    inside = from_ip(audit("get", "nodes", ns=None, user=NODE, aid="a"), "198.51.100.77")
    outside = from_ip(audit("get", "nodes", ns=None, user=NODE, aid="b", at=1), "203.0.113.9")
    [ev] = signals(feed(ing, inside, outside))
    assert "203.0.113.9" in ev.summary


def test_outside_use_repeats_after_an_hour_and_raises_another_signal() -> None:
    ing = Ingestor(ClusterNetworks(["10.0.0.0/8"]))
    user = "system:serviceaccount:payments:api"
    uses = [
        from_ip(audit("get", "configmaps", name="c", user=user, aid=f"u{i}", at=t), "8.8.4.4")
        for i, t in enumerate([0, 10, 4000])
    ]
    secret = from_ip(audit("get", "secrets", name="db", user=user, aid="s", at=20), "8.8.4.4")
    sigs = signals(feed(ing, uses[0], uses[1], secret, uses[2]))
    assert [e.kind for e in sigs] == ["system-credential-outside", "secret-read",
                                      "system-credential-outside"]  # fmt: skip
    assert sigs[1].severity == Severity.HIGH  # raised: the token is used from outside
    assert "outside the cluster's networks" in sigs[1].summary


def test_hostile_spoofed_forwarded_for_does_not_hide_the_real_peer() -> None:
    # sourceIPs lists X-Forwarded-For first (the caller's to write), the peer last.
    ing = Ingestor(ClusterNetworks(["10.0.0.0/8"]))
    rec = from_ip(audit("get", "nodes", ns=None, user=NODE), "10.0.0.5", "8.8.8.8")
    assert [e.kind for e in signals(feed(ing, rec))] == ["system-credential-outside"]


def test_public_address_classes() -> None:
    assert is_public_address("8.8.8.8")
    assert is_public_address("203.0.113.7")  # documentation ranges stand for the internet
    assert is_public_address("2001:db8::1")
    assert not is_public_address("::ffff:10.1.2.3")
    assert not is_public_address("100.64.3.2")
    assert not is_public_address("fe80::1%eth0")
    assert not is_public_address("1.2.3.4.5")


def test_networks_config() -> None:
    cfg = config_from_dict({"networks": {"cluster": ["10.0.0.0/8", "2001:db8::/32"]}})
    assert cfg.networks == ["10.0.0.0/8", "2001:db8::/32"]
    with pytest.raises(ConfigError, match="not a network"):
        config_from_dict({"networks": {"cluster": ["10.0.0.0/33"]}})
    with pytest.raises(ConfigError, match="one key"):
        config_from_dict({"networks": {"pods": ["10.0.0.0/8"]}})


def test_focus_filter_keeps_system_credentials_from_public_addresses() -> None:
    def rec(user: str, ip: str, resource: str = "configmaps") -> object:
        return DECODER.decode(orjson.dumps(from_ip(audit("get", resource, user=user), ip)))

    assert might_signal(rec(NODE, "8.8.8.8"))
    assert not might_signal(rec(NODE, "192.168.3.178"))
    assert not might_signal(rec("alice", "8.8.8.8"))
    status = DECODER.decode(orjson.dumps(kubelet_status_patch()))
    assert might_signal(status)  # it teaches the cluster's addresses


# -- anonymous --------------------------------------------------------------------------


def test_anonymous_secret_list_is_critical() -> None:
    ev = only_signal(
        audit("list", "secrets", ns=None, user="system:anonymous",
              groups=["system:unauthenticated"])
    )  # fmt: skip
    assert ev.kind == "anonymous-allowed"
    assert ev.severity == Severity.CRITICAL
    assert "Cluster-wide secret listing" in ev.summary


def test_anonymous_read_of_a_pod_is_high_and_public_paths_quiet() -> None:
    ev = only_signal(audit("get", "pods", name="p", user="system:anonymous"))
    assert ev.severity == Severity.HIGH
    assert signals(run(audit("get", user="system:anonymous", uri="/livez"))) == []


# -- impersonation ------------------------------------------------------------------------


def impersonating(username: str, groups: list[str] | None = None, **kw: object) -> dict:
    rec = audit("get", "configmaps", name="c", user="alice", **kw)  # type: ignore[arg-type]
    rec["impersonatedUser"] = {"username": username, "groups": groups or []}
    return rec


def test_impersonating_system_masters_is_critical() -> None:
    ev = only_signal(impersonating("anyone", ["system:masters"]))
    assert ev.kind == "impersonation"
    assert ev.severity == Severity.CRITICAL
    assert "system:masters" in ev.summary


def test_impersonating_a_controller_or_node_is_high() -> None:
    ev = only_signal(impersonating("system:serviceaccount:kube-system:generic-garbage-collector"))
    assert ev.severity == Severity.HIGH
    assert only_signal(impersonating("system:node:worker-1")).severity == Severity.HIGH


def test_impersonating_a_cluster_admin_bound_user_is_critical() -> None:
    body = {
        "roleRef": {"kind": "ClusterRole", "name": "cluster-admin"},
        "subjects": [{"kind": "User", "name": "ops-bot"}],
    }
    bind = audit("create", "clusterrolebindings", ns=None, name="ops", code=201, body=body,
                 user="root-admin", aid="b")  # fmt: skip
    events = run(bind, impersonating("ops-bot", aid="i", at=1))
    assert [e.severity for e in signals(events)] == [Severity.HIGH, Severity.CRITICAL]


def test_impersonating_an_ordinary_user_is_context() -> None:
    assert signals(run(impersonating("bob", ["system:authenticated"]))) == []


def test_hostile_network_learning_is_bounded_and_ignores_junk() -> None:
    networks = ClusterNetworks()
    junk = {
        "status": {
            "podIP": ["not", "a", "string"],
            "podIPs": [{"ip": f"198.51.{i // 256}.{i % 256}"} for i in range(100_000)],
            "hostIP": "999.1.1.1",
            "addresses": "nope",
        }
    }
    networks.learn_object(junk)
    networks.learn_object([1, 2, 3])
    networks.learn_object({"status": {"hostIP": "0.0.0.0"}})
    assert networks.known  # the first 64 addresses were read
    assert not networks.outside("198.51.0.9")
    assert networks.outside("198.51.200.9")  # beyond what was read
    assert not networks.outside("x" * 10_000)


def test_real_panther_node_token_request_from_a_public_ip() -> None:
    path = REAL / "k8s-audit-v1" / "panther-analysis__rules-tests.jsonl"
    if not path.exists():
        pytest.skip(f"real fixtures not present ({path})")
    lines = [ln for ln in path.read_bytes().splitlines() if b"system:node:suspicious-node" in ln]
    assert lines
    # A kubelet minting its pods' tokens is its normal work: no signal while the
    # cluster's networks are unknown...
    ing = Ingestor()
    assert signals([e for ln in lines for e in ing.feed_line(ln)] + ing.flush()) == []
    # ...and the node credential used from a public address outside them, once known.
    ing = Ingestor(ClusterNetworks(["192.168.0.0/16", "54.212.0.0/16"]))
    sigs = signals([e for ln in lines for e in ing.feed_line(ln)] + ing.flush())
    assert sigs
    assert all(e.kind == "system-credential-outside" for e in sigs)
    assert sigs[0].label == "Node credential used from outside"
    assert "1.2.3.4" in sigs[0].summary


def test_engine_shares_its_networks_with_every_source_and_the_cluster_state(
    tmp_path: Path,
) -> None:
    from ktriage.core.cluster import ClusterState
    from ktriage.core.config import Config
    from ktriage.engine import Engine
    from ktriage.sources.tail import FileSource

    engine = Engine(Config(networks=["198.51.100.0/24"]))
    source = FileSource(tmp_path / "audit.log", "audit")
    engine.add_source(source)
    assert source.ingestor.audit.networks is engine.networks
    assert engine.ingestor.audit.networks is engine.networks
    assert not engine.networks.outside("198.51.100.9")
    assert engine.networks.outside("203.0.113.9")
    # The live cluster state teaches the same object its pods' and nodes' addresses.
    state = ClusterState(engine.networks)
    state.update_pod(
        {"metadata": {"name": "web", "namespace": "shop", "uid": "u1"},
         "status": {"podIP": "10.1.2.3", "hostIP": "203.0.113.40"}}
    )  # fmt: skip
    assert not engine.networks.outside("203.0.113.9")


def rights_review(imp: str, groups: list[str] | None = None, *, resource: str, group: str,
                  aid: str = "r", at: float = 0.0) -> dict:  # fmt: skip
    """`kubectl auth can-i ... --as IMP`: a review of IMP's rights, made as IMP."""
    rec = audit("create", resource, ns=None, user="kubernetes-admin", aid=aid, at=at,
                uri=f"/apis/{group}/v1/{resource}", code=201)  # fmt: skip
    rec["objectRef"]["apiGroup"] = group
    rec["impersonatedUser"] = {"username": imp, "groups": groups or []}
    return rec


AGGREGATOR = "system:serviceaccount:kube-system:clusterrole-aggregation-controller"


@pytest.mark.parametrize("resource", ["selfsubjectrulesreviews", "selfsubjectaccessreviews"])
def test_auth_can_i_as_a_kube_system_identity_is_at_most_low(resource: str) -> None:
    ev = only_signal(rights_review(AGGREGATOR, resource=resource, group="authorization.k8s.io"))
    assert ev.kind == "impersonation"
    assert ev.severity == Severity.LOW
    masters = rights_review("x", ["system:masters"], resource=resource,
                            group="authorization.k8s.io")  # fmt: skip
    assert only_signal(masters).severity == Severity.LOW


def test_the_identity_reviewed_then_used_for_anything_else_is_high() -> None:
    review = rights_review(AGGREGATOR, resource="selfsubjectrulesreviews",
                           group="authorization.k8s.io")  # fmt: skip
    use = audit("list", "secrets", ns="kube-system", user="kubernetes-admin", aid="u", at=1.0)
    use["impersonatedUser"] = {"username": AGGREGATOR, "groups": []}
    assert [e.severity for e in signals(run(review, use))] == [Severity.LOW, Severity.HIGH]


def test_hostile_lookalike_review_resource_of_another_group_stays_high() -> None:
    """A custom resource named like a review may act on anything: not a rights review."""
    fake = rights_review(AGGREGATOR, resource="selfsubjectrulesreviews", group="evil.example.io")
    assert only_signal(fake).severity == Severity.HIGH
    no_group = rights_review(AGGREGATOR, resource="selfsubjectaccessreviews", group="")
    assert only_signal(no_group).severity == Severity.HIGH


def test_a_rights_review_under_impersonation_names_no_impersonated_identity() -> None:
    """`kubectl auth can-i --as X` (a responder checking X's rights) acts on nothing as X,
    so it must not join X's incident through X; any other use of X still names X."""
    review = rights_review(AGGREGATOR, resource="selfsubjectrulesreviews",
                           group="authorization.k8s.io")  # fmt: skip
    use = audit("list", "secrets", ns="kube-system", user="kubernetes-admin", aid="u", at=1.0)
    use["impersonatedUser"] = {"username": AGGREGATOR, "groups": []}
    reviewed, used = run(review, use)[:2]
    names = [{e.name for e in ev.entities} for ev in (reviewed, used)]
    assert AGGREGATOR.rsplit(":", 1)[-1] not in " ".join(names[0]), names[0]
    assert any(AGGREGATOR.rsplit(":", 1)[-1] in n for n in names[1]), names[1]
    fake = rights_review(AGGREGATOR, resource="selfsubjectrulesreviews", group="evil.example.io")
    (faked,) = run(fake)[:1]
    assert any(AGGREGATOR.rsplit(":", 1)[-1] in e.name for e in faked.entities)
