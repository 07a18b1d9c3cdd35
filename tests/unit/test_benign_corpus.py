"""A day of normal cluster operations opens nothing at medium or above.

The corpus is written as the cluster would write it (audit events at the
ResponseComplete stage, Falco alerts, Tetragon exports, in the shapes of the captured
fixtures): the control plane's controllers, the scheduler and the kubelets, kube-proxy
and CoreDNS, Helm installs, an Argo CD sync, cert-manager renewals, an ingress
controller and kube-state-metrics, a CI runner reading its pull secret, exec probes
fetching a health page, node-exporter's DaemonSet, and admins running kubectl get.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from k8s_records import T0, audit, falco, pod_object, tetragon_exec

from ktriage.core.allowlist import is_expected
from ktriage.core.correlate import Correlator
from ktriage.core.model import Severity
from ktriage.core.replay import Replayer

DAY = 86_400.0
NODES = {"cp-1": "172.18.0.2", "node-a": "172.18.0.3", "node-b": "172.18.0.4"}
KCM = "system:kube-controller-manager"
KCM_AGENT = "kube-controller-manager/v1.30.2 (linux/amd64) kubernetes/3968350"
CONTROLLER = "system:serviceaccount:kube-system:{}"
KUBELET_AGENT = "kubelet/v1.30.2 (linux/amd64) kubernetes/3968350"
APPS = [("shop", "storefront"), ("shop", "cart"), ("payments", "api"), ("monitoring", "grafana")]
ADMINS = ["alice@example.com", "bob@example.com"]


def _pods() -> list[tuple[str, str, str, str]]:
    """(namespace, pod, node, address) of the apps' replicas."""
    out = []
    n = 0
    for ns, app in APPS:
        for i in range(3):
            n += 1
            node = ("node-a", "node-b")[n % 2]
            out.append((ns, f"{app}-7d9f8c6b5-{i:05d}"[:30], node, f"10.244.{n % 2}.{10 + n}"))
    return out


def control_plane(rng: random.Random, t: float) -> list[bytes]:
    """Leader-election leases, controllers reconciling, the scheduler binding, kubelets
    reporting: the steady background of any cluster."""
    cp_ip = NODES["cp-1"]
    node, node_ip = rng.choice(list(NODES.items()))
    lines = [
        audit(t, KCM, "update", "leases", namespace="kube-system", name="kube-controller-manager",
              api_group="coordination.k8s.io", source_ip=cp_ip, user_agent=KCM_AGENT),
        audit(t + 0.3, "system:kube-scheduler", "update", "leases", namespace="kube-system",
              name="kube-scheduler", api_group="coordination.k8s.io", source_ip=cp_ip,
              user_agent="kube-scheduler/v1.30.2"),
        audit(t + 0.5, f"system:node:{node}", "update", "leases", namespace="kube-node-lease",
              name=node, api_group="coordination.k8s.io", source_ip=node_ip,
              user_agent=KUBELET_AGENT),
        audit(t + 0.7, f"system:node:{node}", "patch", "nodes", name=node, subresource="status",
              source_ip=node_ip, user_agent=KUBELET_AGENT),
        audit(t + 0.9, CONTROLLER.format("endpointslice-controller"), "update", "endpointslices",
              namespace="shop", name="storefront-x7kq2", api_group="discovery.k8s.io",
              source_ip=cp_ip, user_agent=KCM_AGENT),
        audit(t + 1.1, f"system:node:{node}", "get", "secrets", namespace="shop",
              name="storefront-db", source_ip=node_ip, user_agent=KUBELET_AGENT),
        audit(t + 1.2, f"system:node:{node}", "create", "serviceaccounts", namespace="shop",
              name="storefront", subresource="token", source_ip=node_ip,
              user_agent=KUBELET_AGENT),
        audit(t + 1.3, "system:serviceaccount:kube-system:kube-proxy", "watch", "endpointslices",
              query="watch=true", api_group="discovery.k8s.io", source_ip=node_ip,
              user_agent="kube-proxy/v1.30.2"),
        audit(t + 1.4, "system:serviceaccount:kube-system:coredns", "watch", "services",
              query="watch=true", source_ip="10.244.0.2", user_agent="coredns/v1.11.1"),
    ]  # fmt: skip
    return lines


def rollout(rng: random.Random, t: float, ns: str, app: str) -> list[bytes]:
    """A Deployment rollout: the controllers create a ReplicaSet's pods, the scheduler
    binds them, the kubelet reports the new pod's address."""
    cp_ip = NODES["cp-1"]
    name = f"{app}-{rng.getrandbits(32):08x}-{rng.getrandbits(20):05x}"[:40]
    node, node_ip = rng.choice([(n, ip) for n, ip in NODES.items() if n != "cp-1"])
    pod = pod_object(ns, name, account=app, owner=("ReplicaSet", f"{app}-7d9f8c6b5"))
    ip = f"10.244.{rng.randrange(2)}.{rng.randrange(2, 250)}"
    return [
        audit(t, CONTROLLER.format("deployment-controller"), "update", "replicasets",
              namespace=ns, name=f"{app}-7d9f8c6b5", api_group="apps", source_ip=cp_ip,
              user_agent=KCM_AGENT),
        audit(t + 0.1, CONTROLLER.format("replicaset-controller"), "create", "pods",
              namespace=ns, request_object=pod, response_object=pod, source_ip=cp_ip,
              user_agent=KCM_AGENT),
        audit(t + 0.2, "system:kube-scheduler", "create", "pods", namespace=ns, name=name,
              subresource="binding", source_ip=cp_ip, user_agent="kube-scheduler/v1.30.2"),
        audit(t + 2.0, f"system:node:{node}", "patch", "pods", namespace=ns, name=name,
              subresource="status", source_ip=node_ip, user_agent=KUBELET_AGENT,
              request_object={"status": {"podIP": ip, "hostIP": node_ip, "phase": "Running"}}),
    ]  # fmt: skip


def helm_install(t: float, user: str, release: str, ns: str, ip: str = "192.0.2.20") -> list[bytes]:
    """`helm upgrade --install`, by a person from their workstation or a CI runner pod."""
    selector = f"labelSelector=name%3D{release}%2Cowner%3Dhelm"
    agent = "Helm/3.15.2"
    deployment = {
        "kind": "Deployment", "apiVersion": "apps/v1",
        "metadata": {"name": release, "namespace": ns},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": release}},
                 "template": {"metadata": {"labels": {"app": release}},
                              "spec": {"containers": [{"name": release,
                                                       "image": f"ghcr.io/acme/{release}:2.1"}]}}},
    }  # fmt: skip
    return [
        audit(t, user, "list", "secrets", namespace=ns, query=selector, source_ip=ip,
              user_agent=agent),
        audit(t + 1, user, "create", "secrets", namespace=ns, source_ip=ip, user_agent=agent,
              request_object={"kind": "Secret", "type": "helm.sh/release.v1",
                              "metadata": {"name": f"sh.helm.release.v1.{release}.v4",
                                           "labels": {"owner": "helm", "name": release}}}),
        audit(t + 2, user, "create", "deployments", namespace=ns, api_group="apps",
              request_object=deployment, source_ip=ip, user_agent=agent),
        audit(t + 3, user, "get", "secrets", namespace=ns, name=f"sh.helm.release.v1.{release}.v4",
              source_ip=ip, user_agent=agent),
    ]  # fmt: skip


def node_exporter(t: float) -> list[bytes]:
    """kube-prometheus-stack's node-exporter: a Helm install by an admin, then the
    DaemonSet controller's pods on each node."""
    mounts = {"/proc": True, "/sys": True, "/": True}
    spec = pod_object("monitoring", "x", host_paths=mounts, host_network=True, host_pid=True)
    ds = {
        "kind": "DaemonSet", "apiVersion": "apps/v1",
        "metadata": {"name": "kps-prometheus-node-exporter", "namespace": "monitoring"},
        "spec": {"selector": {"matchLabels": {"app": "node-exporter"}},
                 "template": {"metadata": {"labels": {"app": "node-exporter"}},
                              "spec": spec["spec"]}},
    }  # fmt: skip
    lines = [
        audit(t, "alice@example.com", "create", "daemonsets", namespace="monitoring",
              api_group="apps", request_object=ds, source_ip="192.0.2.20",
              user_agent="Helm/3.15.2")
    ]  # fmt: skip
    for i, (node, ip) in enumerate(NODES.items()):
        pod = pod_object("monitoring", f"kps-prometheus-node-exporter-{i}x9kq", host_paths=mounts,
                         host_network=True, host_pid=True,
                         owner=("DaemonSet", "kps-prometheus-node-exporter"),
                         pod_ip=ip, host_ip=ip)  # fmt: skip
        lines.append(
            audit(t + 1 + i, CONTROLLER.format("daemon-set-controller"), "create", "pods",
                  namespace="monitoring", request_object=pod, response_object=pod,
                  source_ip=NODES["cp-1"], user_agent=KCM_AGENT)
        )  # fmt: skip
        # node-exporter's own requests come from the node's address (host network).
        lines.append(
            audit(t + 30 + i, "system:serviceaccount:monitoring:kps-prometheus-node-exporter",
                  "get", "nodes", name=node, source_ip=ip, user_agent="node_exporter")
        )  # fmt: skip
    return lines


def controllers_reading_secrets(rng: random.Random, t: float) -> list[bytes]:
    ns, app = rng.choice(APPS)
    return [
        audit(t, "system:serviceaccount:ingress-nginx:ingress-nginx", "list", "secrets",
              source_ip="10.244.1.5", user_agent="nginx-ingress-controller/v1.10.1"),
        audit(t + 1, "system:serviceaccount:ingress-nginx:ingress-nginx", "watch", "secrets",
              query="watch=true", source_ip="10.244.1.5",
              user_agent="nginx-ingress-controller/v1.10.1"),
        audit(t + 2, "system:serviceaccount:monitoring:kube-state-metrics", "list", "secrets",
              source_ip="10.244.0.9", user_agent="kube-state-metrics/v2.12.0"),
        audit(t + 3, "system:serviceaccount:argocd:argocd-application-controller", "list",
              "secrets", source_ip="10.244.0.12", user_agent="argocd-application-controller"),
        audit(t + 4, "system:serviceaccount:argocd:argocd-application-controller", "patch",
              "deployments", namespace=ns, name=app, api_group="apps", source_ip="10.244.0.12",
              user_agent="argocd-application-controller",
              request_object={"spec": {"template": {"metadata": {"annotations": {
                  "kubectl.kubernetes.io/restartedAt": "2026-12-04T01:00:00Z"}}}}}),
        audit(t + 5, "system:serviceaccount:argocd:argocd-server", "get", "secrets",
              namespace="argocd", name="argocd-secret", source_ip="10.244.1.13",
              user_agent="argocd-server"),
        audit(t + 6, "system:serviceaccount:cert-manager:cert-manager", "get", "secrets",
              namespace=ns, name=f"{app}-tls", source_ip="10.244.0.14",
              user_agent="cert-manager-certificates-issuing"),
        audit(t + 7, "system:serviceaccount:cert-manager:cert-manager", "update", "secrets",
              namespace=ns, name=f"{app}-tls", source_ip="10.244.0.14",
              user_agent="cert-manager-certificates-issuing"),
        audit(t + 8, "system:serviceaccount:cert-manager:cert-manager-cainjector", "patch",
              "validatingwebhookconfigurations", name="cert-manager-webhook",
              api_group="admissionregistration.k8s.io", source_ip="10.244.1.15",
              user_agent="cainjector",
              request_object={"webhooks": [{"name": "webhook.cert-manager.io",
                                            "clientConfig": {"caBundle": "LS0tLS1CRUdJTg=="}}]}),
        audit(t + 9, "system:serviceaccount:gitlab-runner:gitlab-runner", "get", "secrets",
              namespace="gitlab-runner", name="registry-pull-secret", source_ip="10.244.1.16",
              user_agent="gitlab-runner 17.0.0"),
    ]  # fmt: skip


def admins(rng: random.Random, t: float) -> list[bytes]:
    who = rng.choice(ADMINS)
    ns, _ = rng.choice(APPS)
    ip = "192.0.2.30"
    return [
        audit(t, who, "list", "pods", namespace=ns, source_ip=ip),
        audit(t + 1, who, "get", "deployments", namespace=ns, name="storefront", api_group="apps",
              source_ip=ip),
        audit(t + 2, who, "list", "events", namespace=ns, source_ip=ip),
        audit(t + 3, who, "get", "nodes", source_ip=ip),
        audit(t + 4, who, "get", "pods", namespace=ns, name="storefront-7d9f8c6b5-00001",
              subresource="log", source_ip=ip),
    ]  # fmt: skip


def runtime(rng: random.Random, t: float, pods: list[tuple[str, str, str, str]]) -> list[bytes]:
    """What the runtime sensors see of healthy pods: their processes, exec probes
    fetching a health page, operators talking to the API server."""
    ns, pod, node, _ = rng.choice(pods)
    lines = [
        tetragon_exec(t, "/usr/bin/wget", "-q -O- http://localhost:8080/healthz", namespace=ns,
                      pod=pod, node=node, parent="/usr/bin/runc"),
        tetragon_exec(t + 5, "/usr/bin/curl", "-fsS http://127.0.0.1:9090/-/ready",
                      namespace=ns, pod=pod, node=node, parent="/usr/bin/runc"),
        tetragon_exec(t + 9, "/usr/local/bin/node", "server.js", namespace=ns, pod=pod,
                      node=node, container_pid=1),
        falco(t + 11, "Contact K8S API Server From Container", "Notice", namespace="argocd",
              pod="argocd-application-controller-0", cmd="argocd-application-controller",
              node=node, fields={"fd.lip": "10.244.0.12", "fd.rip": "10.96.0.1"}),
    ]  # fmt: skip
    return lines


def benign_day(seed: int = 11) -> list[bytes]:
    rng = random.Random(seed)
    pods = _pods()
    lines: list[bytes] = []
    for minute in range(0, int(DAY // 60), 6):  # every 6 minutes of the day
        t = T0 + minute * 60
        lines += control_plane(rng, t)
        lines += runtime(rng, t + 20, pods)
        if minute % 60 == 0:
            lines += controllers_reading_secrets(rng, t + 30)
            lines += admins(rng, t + 40)
        if minute % 180 == 0:
            ns, app = rng.choice(APPS)
            lines += rollout(rng, t + 50, ns, app)
    lines += helm_install(T0 + 3_600, "system:serviceaccount:ci:deployer", "storefront", "shop",
                          ip="10.244.1.40")  # a CI runner pod  # fmt: skip
    lines += helm_install(T0 + 7_200, "alice@example.com", "grafana", "monitoring")
    lines += node_exporter(T0 + 10_800)
    return lines


def replay(path: Path, focus: bool) -> Correlator:
    correlator = Correlator()
    replayer = Replayer(correlator, focus=focus, focus_min_bytes=0)
    replayer.replay([path])
    assert not replayer.ingestor.skipped, replayer.ingestor.skip_log
    return correlator


@pytest.fixture(scope="module")
def day_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("benign") / "day.jsonl"
    path.write_bytes(b"\n".join(benign_day()) + b"\n")
    return path


@pytest.mark.parametrize("focus", [False, True], ids=["full", "focused"])
def test_a_day_of_normal_operations_opens_nothing_at_medium_or_above(
    day_file: Path, focus: bool
) -> None:
    c = replay(day_file, focus)
    loud = [(i.severity.label, i.title) for i in c.incidents.values() if i.severity >= 2]
    assert loud == []
    # The noise that remains is a few recurring low incidents, not one per pod.
    assert len(c.incidents) <= 5, [i.title for i in c.incidents.values()]


def test_the_corpus_exercises_the_allow_list(day_file: Path) -> None:
    """Without the allow list the same day is loud: the test would notice a corpus that
    no longer holds what it claims to."""
    from ktriage.core.allowlist import AllowList
    from ktriage.core.config import Config

    c = replay(day_file, False)
    expected = [e for e in c.store if is_expected(e)]
    assert len({e.suppressed_by for e in expected}) >= 8
    quiet_off = Correlator(config=Config(allowlist=AllowList()))
    Replayer(quiet_off).replay([day_file])
    assert any(i.severity >= Severity.HIGH for i in quiet_off.incidents.values())


def test_an_attack_inside_the_normal_day_still_stands_out(tmp_path: Path) -> None:
    """The same day with a stolen ingress-nginx-lookalike token and a shell in a pod."""
    lines = benign_day()
    lines.insert(
        len(lines) // 2,
        audit(T0 + 43_200, "system:serviceaccount:shop:ingress-nginx", "list", "secrets",
              source_ip="203.0.113.66", user_agent="nginx-ingress-controller/v1.10.1"),
    )  # fmt: skip
    path = tmp_path / "day.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    c = replay(path, False)
    loud = [i for i in c.incidents.values() if i.severity >= Severity.MEDIUM]
    assert len(loud) == 1
    assert loud[0].title == "Cluster-wide secret listing by service account shop/ingress-nginx"
