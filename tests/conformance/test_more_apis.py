"""The APIs beyond the core workloads: Leases (node heartbeats), PodDisruptionBudgets with
the Eviction subresource (what `kubectl drain` relies on), CertificateSigningRequests with
approval, admission webhook configurations and the metrics API (`kubectl top`)."""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from conformance_support import Kubectl, Target


def wait_until(cond: Callable[[], Any], timeout: float = 20.0, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what or cond}")
        time.sleep(0.05)


@pytest.fixture
def node_name(api: Any, target: Target) -> Iterator[str]:
    """A node to place pods on: the first one, or (in the sim) one made for the test."""
    from kubernetes import client

    core = client.CoreV1Api(api)
    nodes = core.list_node().items
    if nodes:
        yield nodes[0].metadata.name
        return
    if not target.is_sim:
        pytest.skip("the target cluster has no node")
    name = f"node-{uuid.uuid4().hex[:6]}"
    core.create_node(
        {
            "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
            "status": {
                "capacity": {"cpu": "4", "memory": "8Gi", "pods": "110"},
                "allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"},
            },
        }
    )
    yield name
    core.delete_node(name)


def _pod(name: str, node: str, labels: dict[str, str], requests: dict | None = None) -> dict:
    container: dict[str, Any] = {"name": "app", "image": "registry.k8s.io/pause:3.9"}
    if requests:
        container["resources"] = {"requests": requests}
    return {
        "metadata": {"name": name, "labels": labels},
        "spec": {"nodeName": node, "containers": [container]},
    }


def _wait_running(api: Any, namespace: str, name: str) -> None:
    from kubernetes import client

    core = client.CoreV1Api(api)
    wait_until(
        lambda: any(
            c.type == "Ready" and c.status == "True"
            for c in core.read_namespaced_pod(name, namespace).status.conditions or []
        ),
        60,
        f"pod {name} ready",
    )


def _budget(api: Any, namespace: str, name: str) -> Any:
    from kubernetes import client

    return client.PolicyV1Api(api).read_namespaced_pod_disruption_budget(name, namespace)


def test_node_lease_is_renewed_and_describe_node_shows_it(
    api: Any, kubectl: Kubectl, node_name: str
) -> None:
    from kubernetes import client

    coord = client.CoordinationV1Api(api)
    lease = wait_until(
        lambda: next(
            (
                item
                for item in coord.list_namespaced_lease("kube-node-lease").items
                if item.metadata.name == node_name
            ),
            None,
        ),
        30,
        "the node's lease",
    )
    assert lease.spec.holder_identity == node_name
    assert lease.spec.renew_time is not None
    result = kubectl("describe", "node", node_name)
    assert result.returncode == 0, result.stderr
    assert "Lease:" in result.stdout
    assert f"HolderIdentity:  {node_name}" in result.stdout
    assert "Failed to get lease" not in result.stdout + result.stderr


def test_leases_are_served_for_leader_election(api: Any, namespace: str) -> None:
    from kubernetes import client

    coord = client.CoordinationV1Api(api)
    coord.create_namespaced_lease(
        namespace,
        {
            "metadata": {"name": "leader"},
            "spec": {"holderIdentity": "a", "leaseDurationSeconds": 15},
        },
    )
    coord.patch_namespaced_lease("leader", namespace, {"spec": {"holderIdentity": "b"}})
    assert coord.read_namespaced_lease("leader", namespace).spec.holder_identity == "b"


def test_pdb_status_is_computed_and_eviction_is_429_when_it_blocks(
    api: Any, namespace: str, node_name: str
) -> None:
    from kubernetes import client

    core = client.CoreV1Api(api)
    core.create_namespaced_pod(namespace, _pod("guarded", node_name, {"app": "guarded"}))
    _wait_running(api, namespace, "guarded")
    client.PolicyV1Api(api).create_namespaced_pod_disruption_budget(
        namespace,
        {
            "metadata": {"name": "keep-one"},
            "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "guarded"}}},
        },
    )
    status = wait_until(
        lambda: (s := _budget(api, namespace, "keep-one").status) and s.current_healthy == 1 and s,
        30,
        "the budget's status",
    )
    assert (status.desired_healthy, status.disruptions_allowed, status.expected_pods) == (1, 0, 1)
    assert [(c.type, c.status, c.reason) for c in status.conditions] == [
        ("DisruptionAllowed", "False", "InsufficientPods")
    ]
    eviction = {
        "apiVersion": "policy/v1",
        "kind": "Eviction",
        "metadata": {"name": "guarded", "namespace": namespace},
    }
    with pytest.raises(client.ApiException) as info:
        core.create_namespaced_pod_eviction("guarded", namespace, eviction)
    assert info.value.status == 429
    body = json.loads(info.value.body)
    assert body["reason"] == "TooManyRequests"
    assert body["message"] == "Cannot evict pod as it would violate the pod's disruption budget."
    assert body["details"]["causes"] == [
        {
            "reason": "DisruptionBudget",
            "message": "The disruption budget keep-one needs 1 healthy pods and has 1 currently",
        }
    ]
    assert core.read_namespaced_pod("guarded", namespace).metadata.name == "guarded"


def test_kubectl_drain_is_blocked_by_a_pdb_then_allowed(
    api: Any, kubectl: Kubectl, namespace: str, node_name: str
) -> None:
    from kubernetes import client

    core = client.CoreV1Api(api)
    core.create_namespaced_pod(namespace, _pod("drained", node_name, {"app": "drained"}))
    _wait_running(api, namespace, "drained")
    policy = client.PolicyV1Api(api)
    policy.create_namespaced_pod_disruption_budget(
        namespace,
        {
            "metadata": {"name": "guard"},
            "spec": {"maxUnavailable": 0, "selector": {"matchLabels": {"app": "drained"}}},
        },
    )
    wait_until(
        lambda: (s := _budget(api, namespace, "guard").status) and s.current_healthy == 1,
        30,
        "the budget's status",
    )
    drain = ("drain", node_name, "--pod-selector", "app=drained", "--force")
    drain += ("--ignore-daemonsets", "--delete-emptydir-data")
    try:
        blocked = kubectl(*drain, "--timeout", "2s")
        assert blocked.returncode != 0
        assert "Cannot evict pod as it would violate the pod's disruption budget." in (
            blocked.stderr
        )
        assert core.read_namespaced_pod("drained", namespace).metadata.name == "drained"
        policy.patch_namespaced_pod_disruption_budget(
            "guard", namespace, {"spec": {"maxUnavailable": 1}}
        )
        wait_until(
            lambda: _budget(api, namespace, "guard").status.disruptions_allowed == 1,
            30,
            "the budget to allow a disruption",
        )
        allowed = kubectl(*drain, "--timeout", "60s", timeout=90)
        assert allowed.returncode == 0, allowed.stderr
        assert "pod/drained evicted" in allowed.stdout
        assert f"node/{node_name} drained" in allowed.stdout
        with pytest.raises(client.ApiException) as info:
            core.read_namespaced_pod("drained", namespace)
        assert info.value.status == 404
    finally:
        kubectl("uncordon", node_name)


def _csr_request() -> str:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ktriage-e2e-user")]))
        .sign(key, hashes.SHA256())
    )
    return base64.b64encode(csr.public_bytes(serialization.Encoding.PEM)).decode()


def test_csr_is_created_approved_with_kubectl_and_signed(api: Any, kubectl: Kubectl) -> None:
    from cryptography import x509
    from kubernetes import client

    name = f"ktriage-e2e-{uuid.uuid4().hex[:8]}"
    certs = client.CertificatesV1Api(api)
    certs.create_certificate_signing_request(
        {
            "metadata": {"name": name},
            "spec": {
                "request": _csr_request(),
                "signerName": "kubernetes.io/kube-apiserver-client",
                "expirationSeconds": 600,
                "usages": ["client auth"],
            },
        }
    )
    try:
        listed = kubectl("get", "csr", name)
        assert listed.returncode == 0, listed.stderr
        assert "Pending" in listed.stdout
        approved = kubectl("certificate", "approve", name)
        assert approved.returncode == 0, approved.stderr
        assert f"certificatesigningrequest.certificates.k8s.io/{name} approved" in (approved.stdout)
        csr = certs.read_certificate_signing_request(name)
        conditions = [(c.type, c.status, c.reason) for c in csr.status.conditions]
        assert ("Approved", "True", "KubectlApprove") in conditions
        issued = wait_until(
            lambda: certs.read_certificate_signing_request(name).status.certificate,
            30,
            "the signer to issue the certificate",
        )
        cert = x509.load_pem_x509_certificate(base64.b64decode(issued))
        assert cert.subject.rfc4514_string() == "CN=ktriage-e2e-user"
        assert "Approved,Issued" in kubectl("get", "csr", name).stdout
    finally:
        certs.delete_certificate_signing_request(name)


def test_webhook_configurations_are_stored(api: Any, kubectl: Kubectl) -> None:
    from kubernetes import client

    name = f"ktriage-e2e-{uuid.uuid4().hex[:8]}"
    reg = client.AdmissionregistrationV1Api(api)
    reg.create_validating_webhook_configuration(
        {
            "metadata": {"name": name},
            "webhooks": [
                {
                    "name": "deny.ktriage.example.com",
                    "clientConfig": {"url": "https://127.0.0.1:1/validate"},
                    "rules": [
                        {
                            "apiGroups": [""],
                            "apiVersions": ["v1"],
                            "operations": ["CREATE"],
                            "resources": ["configmaps"],
                        }
                    ],
                    "namespaceSelector": {"matchLabels": {"ktriage-e2e-never": "true"}},
                    "sideEffects": "None",
                    "admissionReviewVersions": ["v1"],
                    "failurePolicy": "Ignore",
                }
            ],
        }
    )
    try:
        result = kubectl("get", "validatingwebhookconfigurations", name, "-o", "json")
        assert result.returncode == 0, result.stderr
        stored = json.loads(result.stdout)
        assert stored["webhooks"][0]["name"] == "deny.ktriage.example.com"
    finally:
        reg.delete_validating_webhook_configuration(name)


def test_kubectl_top_nodes_and_pods(
    api: Any, kubectl: Kubectl, namespace: str, node_name: str
) -> None:
    from kubernetes import client

    client.CoreV1Api(api).create_namespaced_pod(
        namespace, _pod("busy", node_name, {"app": "busy"}, {"cpu": "200m", "memory": "128Mi"})
    )
    _wait_running(api, namespace, "busy")

    def top_pods() -> Any:
        result = kubectl("top", "pods", "-n", namespace, "--no-headers")
        return result if result.returncode == 0 and "busy" in result.stdout else None

    pods = wait_until(top_pods, 90, "kubectl top pods to show the pod")
    fields = pods.stdout.split()
    assert fields[0] == "busy"
    assert fields[1].endswith("m") and 0 < int(fields[1][:-1]) <= 200
    assert fields[2].endswith("Mi") and 0 < int(fields[2][:-2]) <= 128
    nodes = kubectl("top", "nodes", "--no-headers")
    assert nodes.returncode == 0, nodes.stderr
    assert any(line.split()[0] == node_name for line in nodes.stdout.splitlines())


def _crd(group: str, version: str, kind: str, plural: str, short: list[str]) -> dict:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{group}"},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {
                "kind": kind,
                "listKind": f"{kind}List",
                "plural": plural,
                "singular": kind.lower(),
                "shortNames": short,
            },
            "versions": [
                {
                    "name": version,
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "x-kubernetes-preserve-unknown-fields": True,
                        }
                    },
                }
            ],
        },
    }


CILIUM_CRD = _crd("cilium.io", "v2", "CiliumNetworkPolicy", "ciliumnetworkpolicies", ["cnp"])
CALICO_CRD = _crd("projectcalico.org", "v3", "NetworkPolicy", "networkpolicies", ["cnp3"])


@pytest.mark.parametrize(
    ("crd", "obj"),
    [
        (
            CILIUM_CRD,
            {
                "apiVersion": "cilium.io/v2",
                "kind": "CiliumNetworkPolicy",
                "metadata": {"name": "deny-egress"},
                "spec": {"endpointSelector": {"matchLabels": {"app": "web"}}, "egress": []},
            },
        ),
        (
            CALICO_CRD,
            {
                "apiVersion": "projectcalico.org/v3",
                "kind": "NetworkPolicy",
                "metadata": {"name": "allow-dns"},
                "spec": {"selector": "app == 'web'", "types": ["Egress"]},
            },
        ),
    ],
    ids=["cilium", "calico"],
)
def test_crd_makes_custom_objects_served_for_kubectl(
    kubectl: Kubectl, namespace: str, crd: dict, obj: dict
) -> None:
    name = crd["metadata"]["name"]
    plural = crd["spec"]["names"]["plural"]
    resource = f"{plural}.{crd['spec']['group']}"
    created = kubectl("apply", "-f", "-", input=json.dumps(crd))
    assert created.returncode == 0, created.stderr
    try:
        established = kubectl(
            "wait", "--for", "condition=Established", f"crd/{name}", "--timeout", "30s"
        )
        assert established.returncode == 0, established.stderr
        manifest = json.dumps({**obj, "metadata": {**obj["metadata"], "namespace": namespace}})
        applied = kubectl("apply", "-f", "-", input=manifest)
        assert applied.returncode == 0, applied.stderr
        got = kubectl("get", resource, "-n", namespace, "-o", "json")
        assert got.returncode == 0, got.stderr
        items = json.loads(got.stdout)["items"]
        assert [i["metadata"]["name"] for i in items] == [obj["metadata"]["name"]]
        assert items[0]["spec"] == obj["spec"]
        patched = kubectl(
            "patch",
            resource,
            obj["metadata"]["name"],
            "-n",
            namespace,
            "--type",
            "merge",
            "-p",
            json.dumps({"metadata": {"labels": {"edited": "yes"}}}),
        )
        assert patched.returncode == 0, patched.stderr
        shown = kubectl("get", resource, "-n", namespace, "-l", "edited=yes", "-o", "name")
        singular = f"{obj['kind'].lower()}.{crd['spec']['group']}"
        assert shown.stdout.strip() == f"{singular}/{obj['metadata']['name']}"
        deleted = kubectl("delete", resource, obj["metadata"]["name"], "-n", namespace)
        assert deleted.returncode == 0, deleted.stderr
        assert kubectl("get", resource, "-n", namespace, "-o", "name").stdout.strip() == ""
    finally:
        kubectl("delete", "crd", name, "--wait=false")


def test_hostile_crd_without_names_is_invalid_and_serves_nothing(api: Any) -> None:
    from kubernetes import client

    ext = client.ApiextensionsV1Api(api)
    body = json.loads(json.dumps(CILIUM_CRD))
    body["metadata"]["name"] = "wrong.example.com"
    body["spec"]["names"]["kind"] = ""
    with pytest.raises(client.ApiException) as info:
        ext.create_custom_resource_definition(body)
    assert info.value.status == 422
    causes = {c["field"] for c in json.loads(info.value.body)["details"]["causes"]}
    assert causes == {"spec.names.kind", "metadata.name"}
    with pytest.raises(client.ApiException) as missing:
        client.CustomObjectsApi(api).list_cluster_custom_object(
            "cilium.io", "v2", "ciliumnetworkpolicies"
        )
    assert missing.value.status == 404


def test_hostile_budgets_overlapping_or_impossible_never_let_a_pod_go(
    api: Any, namespace: str, node_name: str
) -> None:
    from kubernetes import client

    core = client.CoreV1Api(api)
    policy = client.PolicyV1Api(api)
    core.create_namespaced_pod(namespace, _pod("twice", node_name, {"app": "twice"}))
    _wait_running(api, namespace, "twice")
    policy.create_namespaced_pod_disruption_budget(
        namespace,
        {
            "metadata": {"name": "impossible"},
            "spec": {"minAvailable": "200%", "selector": {"matchLabels": {"app": "twice"}}},
        },
    )
    status = wait_until(
        lambda: (s := _budget(api, namespace, "impossible").status) and s.expected_pods == 1 and s,
        30,
        "the budget's status",
    )
    assert (status.desired_healthy, status.disruptions_allowed) == (2, 0)
    eviction = {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": "twice"}}
    with pytest.raises(client.ApiException) as blocked:
        core.create_namespaced_pod_eviction("twice", namespace, eviction)
    assert blocked.value.status == 429
    policy.create_namespaced_pod_disruption_budget(
        namespace,
        {
            "metadata": {"name": "lenient"},
            "spec": {"maxUnavailable": "100%", "selector": {"matchLabels": {"app": "twice"}}},
        },
    )
    with pytest.raises(client.ApiException) as both:
        core.create_namespaced_pod_eviction("twice", namespace, eviction)
    assert both.value.status == 500
    assert json.loads(both.value.body)["message"] == (
        "Internal error occurred: This pod has more than one PodDisruptionBudget, which the "
        "eviction subresource does not support."
    )
    assert core.read_namespaced_pod("twice", namespace).metadata.name == "twice"
