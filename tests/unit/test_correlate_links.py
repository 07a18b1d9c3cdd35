"""Correlation: recurring low signals rolled up, a pod's address and service account as
links, shared addresses that never link, and titles naming who acted."""

from __future__ import annotations

import importlib.util
import random
from pathlib import Path

import pytest
from k8s_records import T0, audit, falco, pod_object, tetragon_exec
from test_focus import _assert_same

from ktriage.core.cluster import ClusterState
from ktriage.core.config import Config, Suppression
from ktriage.core.correlate import ROLLUP_COUNTED, ROLLUP_LISTED, Correlator
from ktriage.core.ingest import Ingestor
from ktriage.core.model import EntityKind, Event, Incident, Severity, entity
from ktriage.core.replay import Replayer

CLIENT_TOOL = "Kubernetes Client Tool Launched in Container"


def add_all(correlator: Correlator, events: list[Event]) -> None:
    for ev in events:
        correlator.add(ev)


def play(lines: list[bytes], window: float | None = None) -> Correlator:
    correlator = Correlator(window=window, config=Config())
    ingestor = Ingestor(allowlist=correlator.config.allowlist)
    for line in lines:
        add_all(correlator, ingestor.feed_line(line))
    add_all(correlator, ingestor.flush())
    assert not ingestor.skipped, ingestor.skip_log
    return correlator


def shape(c: Correlator) -> set[tuple[str, str, str, int, tuple[str, ...]]]:
    return {
        (i.id, i.title, i.severity.label, i.signal_count, tuple(e.ref for e in c.events_of(i.id)))
        for i in c.incidents.values()
    }


def in_every_order(lines: list[bytes], rounds: int = 12) -> set:
    """The incidents of these lines, the same whatever order they arrive in."""
    expected = shape(play(lines))
    rng = random.Random(5)
    for _ in range(rounds):
        order = lines[:]
        rng.shuffle(order)
        assert shape(play(order)) == expected
    return expected


def only(c: Correlator) -> Incident:
    assert len(c.incidents) == 1, [i.title for i in c.incidents.values()]
    return next(iter(c.incidents.values()))


def client_tool(t: float, pod: str, ns: str = "ci") -> bytes:
    return falco(t, CLIENT_TOOL, "Notice", namespace=ns, pod=pod, cmd="kubectl get pods")


# ---- roll-up ---------------------------------------------------------------------------


def test_a_noisy_low_rule_on_many_pods_of_a_namespace_is_one_recurring_incident() -> None:
    lines = [client_tool(T0 + i * 7, f"build-{i % 40:02d}-x{i}") for i in range(200)]
    c = play(lines)
    inc = only(c)
    assert inc.severity == Severity.LOW
    assert inc.signal_count == 200
    # (The phrase is the rule's label, as the Falco classifier gives it.)
    assert "Kubernetes Client Tool Launched" in inc.title
    assert inc.title.endswith(", recurring: 200 times on 200 pods in ci")
    pods = [e for e in inc.entities if e.kind == EntityKind.POD]
    assert 0 < len(pods) <= ROLLUP_LISTED


def test_rules_and_namespaces_roll_up_apart() -> None:
    lines = [client_tool(T0 + i, f"a-{i}") for i in range(5)]
    lines += [client_tool(T0 + i, f"b-{i}", ns="dev") for i in range(5)]
    lines += [
        falco(T0 + i, "Launch Package Management Process in Container", "Notice",
              namespace="ci", pod=f"a-{i}", cmd="apt-get install curl")
        for i in range(5)
    ]  # fmt: skip
    c = play(lines)
    assert sorted(i.signal_count for i in c.incidents.values()) == [5, 5, 5]
    assert all("recurring: 5 times on 5 pods" in i.title for i in c.incidents.values())


def test_anything_above_low_on_a_pod_takes_that_pods_low_signals_into_its_own_incident() -> None:
    lines = [client_tool(T0 + i * 10, f"runner-{i}") for i in range(6)]
    shell = falco(
        T0 + 25, "Terminal shell in container", "Warning", namespace="ci", pod="runner-2",
        cmd="bash -i",
    )  # fmt: skip
    expected = in_every_order([*lines, shell])
    c = play([*lines, shell])
    by_count = sorted(c.incidents.values(), key=lambda i: i.signal_count)
    pod_incident, recurring = by_count
    assert pod_incident.signal_count == 2 and pod_incident.severity >= Severity.MEDIUM
    assert pod_incident.title.endswith("in ci/runner-2")
    assert recurring.signal_count == 5 and "recurring: 5 times on 5 pods" in recurring.title
    assert len(expected) == 2


def test_hostile_100k_distinct_pods_in_one_rollup_keep_memory_bounded() -> None:
    c = Correlator(config=Config())
    ci = entity(EntityKind.NAMESPACE, "", "ci")
    for i in range(100_000):
        pod = entity(EntityKind.POD, "ci", f"job-{i}")
        c.add(
            Event(
                time=T0 + i * 0.01, source="falco", ref=f"r{i}", kind="falco-alert",
                severity=Severity.LOW, summary="noise", entities=(pod, ci),
                signal=True, label=CLIENT_TOOL,
            )
        )  # fmt: skip
    inc = only(c)
    assert inc.signal_count == 100_000
    pods = [e for e in inc.entities if e.kind == EntityKind.POD]
    assert len(pods) == ROLLUP_LISTED and len(inc.entities) == ROLLUP_LISTED + 1
    # The same first pods whatever the order: the smallest names.
    assert pods[0].name == "job-0"
    assert inc.title.endswith(f"recurring: 100000 times on {ROLLUP_COUNTED}+ pods in ci")
    # What the incident keeps of its pods is bounded (the events are the store's).
    recurring = [g.recurring for g in c._groups.values() if g.recurring is not None]
    assert len(recurring) == 1 and len(recurring[0].pods) == ROLLUP_COUNTED
    assert all(len(lst) <= ROLLUP_LISTED for lst in recurring[0].listed.values())


# ---- a pod's address and service account link to it ------------------------------------

POD_IP = "10.244.1.7"
NODE_IP = "172.18.0.3"
API_SERVER = "10.96.0.1"
SA = "system:serviceaccount:shop:storefront"


def _shell(t: float, pod: str = "storefront-7d9f8-x2kq") -> bytes:
    return falco(t, "Terminal shell in container", "Warning", namespace="shop", pod=pod,
                 cmd="bash -i")  # fmt: skip


def _secret_list_from(t: float, ip: str, user: str = SA) -> bytes:
    """A stolen (legacy, unbound) token listing secrets: no pod claim, only the address."""
    return audit(t, user, "list", "secrets", namespace="shop", source_ip=ip,
                 user_agent="curl/8.5.0")  # fmt: skip


def _status(t: float, pod_ip: str, host_ip: str = NODE_IP, pod: str = "storefront-7d9f8-x2kq",
            host_network: bool = False) -> bytes:  # fmt: skip
    """The kubelet writing the pod's status, as the audit log records it."""
    status = {"status": {"podIP": pod_ip, "hostIP": host_ip, "phase": "Running"}}
    response = pod_object("shop", pod, account="storefront", pod_ip=pod_ip, host_ip=host_ip,
                          host_network=host_network)  # fmt: skip
    return audit(t, "system:node:node-a", "patch", "pods", namespace="shop", name=pod,
                 subresource="status", source_ip=NODE_IP, request_object=status,
                 response_object=response,
                 user_agent="kubelet/v1.30.2 (linux/amd64) kubernetes/3968350")  # fmt: skip


def test_calls_from_a_pods_address_join_its_incident_in_any_order() -> None:
    lines = [_status(T0, POD_IP), _shell(T0 + 60), _secret_list_from(T0 + 90, POD_IP)]
    in_every_order(lines)
    inc = only(play(lines))
    assert inc.signal_count == 2
    # Without the pod's status, two incidents.
    assert len(play(lines[1:]).incidents) == 2


def test_the_local_address_of_a_falco_connection_links_the_pod() -> None:
    contact = falco(
        T0 + 30, "Contact K8S API Server From Container", "Notice", namespace="shop",
        pod="storefront-7d9f8-x2kq", cmd="curl https://kubernetes.default",
        fields={"fd.lip": POD_IP, "fd.rip": API_SERVER, "fd.sip": API_SERVER,
                "fd.name": f"{POD_IP}:51234->{API_SERVER}:443"},
    )  # fmt: skip
    lines = [_shell(T0), contact, _secret_list_from(T0 + 40, POD_IP)]
    in_every_order(lines)
    inc = only(play(lines))
    assert inc.signal_count == 3
    names = {e.name for e in inc.entities if e.kind == EntityKind.IP}
    assert POD_IP in names and API_SERVER not in names


def test_hostile_api_server_address_never_links_pods() -> None:
    """Every pod talks to the API server: its address must not glue them together."""
    lines = [
        falco(T0 + i, "Contact K8S API Server From Container", "Warning", namespace=f"ns{i}",
              pod=f"p{i}", cmd="app", fields={"fd.rip": API_SERVER, "fd.sip": API_SERVER})
        for i in range(3)
    ]  # fmt: skip
    assert len(play(lines).incidents) == 3


def test_a_tetragon_sockets_source_address_links_the_pod() -> None:
    import orjson

    rec = orjson.loads(tetragon_exec(T0 + 30, "/usr/bin/curl", "-k https://10.96.0.1",
                                     namespace="shop", pod="storefront-7d9f8-x2kq"))  # fmt: skip
    body = rec.pop("process_exec")
    body["function_name"] = "tcp_connect"
    body["args"] = [{"sock_arg": {"family": "AF_INET", "type": "SOCK_STREAM",
                                  "protocol": "IPPROTO_TCP", "saddr": POD_IP, "daddr": API_SERVER,
                                  "sport": 51234, "dport": 443}}]  # fmt: skip
    body["policy_name"] = "connect"
    rec["process_kprobe"] = body
    kprobe = orjson.dumps(rec)
    lines = [_shell(T0), kprobe, _secret_list_from(T0 + 40, POD_IP)]
    in_every_order(lines)
    assert only(play(lines)).signal_count == 3


OTHER_SA = "system:serviceaccount:shop:reporting"


def test_a_host_network_pods_address_is_the_nodes_and_never_links() -> None:
    lines = [
        _status(T0, NODE_IP, host_ip=NODE_IP, host_network=True),
        _shell(T0 + 60),
        _secret_list_from(T0 + 90, NODE_IP, user=OTHER_SA),
    ]
    assert len(play(lines).incidents) == 2


@pytest.mark.parametrize(
    "garbage",
    ["999.1.1.1", "not-an-ip", "10.0.0.1\x1b[31m", "127.0.0.1", "0.0.0.0", "", "1" * 5000],
    ids=["octet", "word", "escape", "loopback", "unspecified", "empty", "long"],
)
def test_hostile_garbage_in_the_pod_address_links_nothing(garbage: str) -> None:
    lines = [_status(T0, garbage, host_ip="garbage"), _shell(T0 + 60)]
    lines.append(_secret_list_from(T0 + 90, garbage, user=OTHER_SA))
    c = play(lines)
    assert len(c.incidents) == 2
    assert not [e for e in c.store if e.kind == "pod-address"]


def test_a_service_account_links_to_the_pods_that_run_as_it() -> None:
    pod = pod_object("shop", "builder-5c4d-q9x", account="builder")
    create = audit(T0, "system:serviceaccount:kube-system:replicaset-controller", "create",
                   "pods", namespace="shop", request_object=pod, response_object=pod,
                   source_ip=NODE_IP)  # fmt: skip
    shell = _shell(T0 + 60, pod="builder-5c4d-q9x")
    # The account's token used from outside the cluster, with no pod claim.
    stolen = _secret_list_from(T0 + 120, "203.0.113.9", user="system:serviceaccount:shop:builder")
    lines = [create, shell, stolen]
    in_every_order(lines)
    assert only(play(lines)).signal_count == 2


def test_the_default_service_account_links_nothing() -> None:
    pods = [pod_object("shop", f"web-{i}", account="default") for i in range(2)]
    lines = [
        audit(T0, "system:serviceaccount:kube-system:replicaset-controller", "create", "pods",
              namespace="shop", request_object=p, response_object=p, source_ip=NODE_IP)
        for p in pods
    ]  # fmt: skip
    lines += [_shell(T0 + 60, pod="web-0"), _shell(T0 + 70, pod="web-1")]
    lines.append(
        _secret_list_from(T0 + 90, "203.0.113.9", user="system:serviceaccount:shop:default")
    )
    assert len(play(lines).incidents) == 3


def test_control_plane_requests_from_a_node_address_never_join_an_incident() -> None:
    """The bug: the control-plane node's address soaked up the controllers' traffic."""
    signal = _secret_list_from(T0, NODE_IP, user="alice@example.com")
    controllers = [
        audit(T0 + i, user, "update", "leases", namespace="kube-system", name=name,
              source_ip=NODE_IP, api_group="coordination.k8s.io")
        for i, (user, name) in enumerate(
            [("system:kube-controller-manager", "kube-controller-manager"),
             ("system:kube-scheduler", "kube-scheduler"),
             ("system:node:cp-1", "cp-1")] * 10
        )
    ]  # fmt: skip
    inc = only(play([signal, *controllers]))
    assert len(inc.timeline) == 1


def test_the_focused_replay_learns_the_same_links(tmp_path: Path) -> None:
    path = tmp_path / "day.jsonl"
    lines = [_status(T0, POD_IP), _shell(T0 + 60), _secret_list_from(T0 + 90, POD_IP)]
    lines += [client_tool(T0 + 100 + i, f"job-{i}") for i in range(30)]
    lines += [audit(T0 + 200 + i, "system:node:node-a", "get", "configmaps", namespace="shop",
                    name=f"cm-{i}", source_ip=POD_IP) for i in range(30)]  # fmt: skip
    # A shell in one of the noisy pods takes its low signals out of the recurring incident;
    # context about that pod (its status) comes before and after.
    lines.append(_status(T0 + 95, "10.244.2.9", pod="job-3").replace(b'"shop"', b'"ci"'))
    lines.append(falco(T0 + 150, "Terminal shell in container", "Warning", namespace="ci",
                       pod="job-3", cmd="sh"))  # fmt: skip
    lines.append(_status(T0 + 160, "10.244.2.9", pod="job-3").replace(b'"shop"', b'"ci"'))
    path.write_bytes(b"\n".join(lines) + b"\n")
    replayer = _assert_same([path])
    titles = sorted(i.title for i in replayer.correlator.incidents.values())
    assert any(t.endswith("recurring: 29 times on 29 pods in ci") for t in titles), titles
    pod_titles = [t for t in titles if t.endswith("in ci/job-3")]
    assert len(pod_titles) == 1 and "hell" in pod_titles[0], titles


def test_an_expected_session_covers_a_pods_low_signals_in_a_recurring_incident() -> None:
    sre = Suppression(user="sre-alice", namespace="ci", reason="on-call")
    config = Config(suppressions=[sre])
    exec_line = audit(T0 + 50, "sre-alice", "create", "pods", namespace="ci", name="job-1",
                      subresource="exec", query="command=sh&tty=true", code=101)  # fmt: skip
    # A site's own Notice rule: ktriage has no name for it, so a session covers it.
    noise = [
        falco(T0 + i * 20, "Build cache tool started", "Notice", namespace="ci",
              pod=f"job-{i % 3}", cmd="sccache --start-server")
        for i in range(9)
    ]  # fmt: skip
    for order in ([exec_line, *noise], [*noise, exec_line]):
        c = Correlator(config=config)
        ingestor = Ingestor(allowlist=config.allowlist)
        for line in order:
            add_all(c, ingestor.feed_line(line))
        covered = [e for e in c.store if e.suppressed_by.startswith("during the expected exec")]
        # job-1's alerts from 30 s before the exec on (the session's lead) are covered.
        assert sorted(e.time - T0 for e in covered) == [20.0, 80.0, 140.0]
        inc = only(c)
        assert inc.signal_count == 6 and "recurring: 6 times on 2 pods" in inc.title


@pytest.mark.parametrize(
    "garbage",
    ["10.244.1.7\x1b]52;c;aGk=\x07", "not-an-ip", "::1", "300.1.1.1"],
    ids=["osc52", "word", "loopback", "octet"],
)
def test_hostile_garbage_local_addresses_in_falco_and_tetragon_link_nothing(garbage: str) -> None:
    alert = falco(T0, "Terminal shell in container", "Warning", namespace="shop", pod="a",
                  cmd="sh", fields={"fd.lip": garbage, "k8s.pod.ip": [garbage]})  # fmt: skip
    c = play([alert])
    names = {e.name for e in only(c).entities if e.kind == EntityKind.IP}
    assert names == set()


# ---- titles --------------------------------------------------------------------------


def test_a_binding_is_titled_by_who_made_it_not_by_the_account_it_binds() -> None:
    binding = {
        "kind": "ClusterRoleBinding",
        "metadata": {"name": "default-admin"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                    "name": "cluster-admin"},
        "subjects": [{"kind": "ServiceAccount", "name": "default", "namespace": "default"}],
    }  # fmt: skip
    line = audit(T0, "bob", "create", "clusterrolebindings", api_group="rbac.authorization.k8s.io",
                 request_object=binding, source_ip="203.0.113.5")  # fmt: skip
    inc = only(play([line]))
    assert inc.title == "Cluster-admin binding by bob"


def test_a_service_account_that_acted_is_named_as_one() -> None:
    inc = only(play([_secret_list_from(T0, "203.0.113.9")]))
    assert inc.title.endswith("by service account shop/storefront")


def _rollup_benchmark():
    root = Path(__file__).resolve().parents[2]
    spec = importlib.util.spec_from_file_location("rollup_bench", root / "benchmarks" / "rollup.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_day_of_200k_lines_with_5_percent_client_tool_noise_is_a_handful_of_incidents(
    tmp_path: Path,
) -> None:
    """The issue's day: one incident per CI pod (5,000 of them) was the bug."""
    bench = _rollup_benchmark()
    path = tmp_path / "noisy-day.jsonl"
    noisy = bench.generate(path, 200_000, 0.05)
    assert noisy > 9_000
    correlator = Correlator()
    Replayer(correlator).replay([path])
    incidents = list(correlator.incidents.values())
    assert len(incidents) < 30
    recurring = [i for i in incidents if "recurring" in i.title]
    assert len(recurring) == 1
    assert recurring[0].signal_count == noisy
    assert recurring[0].title.endswith(f"recurring: {noisy} times on {noisy // 2 + 1} pods in ci")


# ---- live: the watched pods' status says the same -------------------------------------


def _watched_pod(ip: str, host_ip: str = NODE_IP, host_network: bool = False) -> dict:
    obj = pod_object("shop", "storefront-7d9f8-x2kq", account="storefront", pod_ip=ip,
                     host_ip=host_ip, host_network=host_network)  # fmt: skip
    obj["metadata"].update({"resourceVersion": "42", "creationTimestamp": "2026-09-21T12:00:00Z"})
    obj["spec"]["nodeName"] = "node-a"
    return obj


def test_live_pod_status_gives_the_same_links_as_the_audit_log() -> None:
    state = ClusterState()
    assert state.update_pod(_watched_pod(POD_IP)) == []  # facts are not changes
    facts = state.take_facts()
    assert sorted(e.kind for e in facts) == ["pod-account", "pod-address"]
    assert state.take_facts() == []
    c = Correlator(config=Config())
    ingestor = Ingestor(allowlist=c.config.allowlist)
    for line in (_shell(T0 + 60), _secret_list_from(T0 + 90, POD_IP, user=OTHER_SA)):
        add_all(c, ingestor.feed_line(line))
    assert len(c.incidents) == 2
    add_all(c, facts)  # the pod watch's facts arrive late: the incidents join
    assert only(c).signal_count == 2


def test_live_host_network_pods_and_garbage_addresses_say_no_address() -> None:
    state = ClusterState()
    state.update_pod(_watched_pod(NODE_IP, host_ip=NODE_IP, host_network=True))
    assert [e.kind for e in state.take_facts()] == ["pod-account"]
    state = ClusterState()
    state.update_pod(_watched_pod("10.0.0.300\u202e", host_ip="x"))
    assert [e.kind for e in state.take_facts()] == ["pod-account"]


@pytest.mark.parametrize("shared", ["10.96.0.1", "10.96.0.10", "172.20.0.1", "10.100.0.10"])
def test_hostile_the_cluster_api_and_dns_addresses_never_link_pods(shared: str) -> None:
    """Any rule whose remote end is the API server or the cluster DNS."""
    lines = [
        falco(T0 + i, "Unexpected outbound connection destination", "Warning",
              namespace=f"ns{i}", pod=f"p{i}", cmd="app",
              fields={"fd.rip": shared, "fd.rport": 443})
        for i in range(3)
    ]  # fmt: skip
    assert len(play(lines).incidents) == 3
