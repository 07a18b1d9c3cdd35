"""Pod Security admission by namespace labels: enforce rejects pods with 403 and the real
message, warn answers with Warning headers (kubectl prints them), audit annotates the audit
event; workloads are warned about, never rejected."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from conformance_support import Kubectl, Target

PRIVILEGED_POD = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "priv"},
    "spec": {
        "hostPID": True,
        "containers": [{"name": "c", "image": "busybox", "securityContext": {"privileged": True}}],
    },
}
RESTRICTED_OK_POD = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "fine"},
    "spec": {
        "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [
            {
                "name": "c",
                "image": "busybox",
                "securityContext": {
                    "allowPrivilegeEscalation": False,
                    "capabilities": {"drop": ["ALL"]},
                },
            }
        ],
    },
}


def _label(api: Any, namespace: str, **modes: str) -> None:
    from kubernetes import client

    labels = {f"pod-security.kubernetes.io/{mode}": level for mode, level in modes.items()}
    client.CoreV1Api(api).patch_namespace(namespace, {"metadata": {"labels": labels}})


def _manifest(obj: dict, namespace: str) -> str:
    return json.dumps({**obj, "metadata": {**obj["metadata"], "namespace": namespace}})


def test_enforce_restricted_rejects_a_privileged_pod_with_403_and_the_message(
    api: Any, kubectl: Kubectl, namespace: str
) -> None:
    _label(api, namespace, enforce="restricted")
    result = kubectl("create", "-f", "-", input=_manifest(PRIVILEGED_POD, namespace))
    assert result.returncode != 0
    assert (
        'pods "priv" is forbidden: violates PodSecurity "restricted:latest": '
        'allowPrivilegeEscalation != false (container "c" must set '
        "securityContext.allowPrivilegeEscalation=false)" in result.stderr
    )
    assert "host namespaces (hostPID=true)" in result.stderr
    assert 'privileged (container "c" must not set securityContext.privileged=true)' in (
        result.stderr
    )
    assert (
        'seccompProfile (pod or container "c" must set securityContext.seccompProfile.type to '
        '"RuntimeDefault" or "Localhost")' in result.stderr
    )
    assert kubectl("get", "pod", "-n", namespace, "priv").returncode != 0


def test_enforce_baseline_reports_only_baseline_checks(api: Any, namespace: str) -> None:
    from kubernetes import client

    _label(api, namespace, enforce="baseline")
    pod = json.loads(json.dumps(PRIVILEGED_POD))
    pod["spec"]["volumes"] = [{"name": "root", "hostPath": {"path": "/"}}]
    with pytest.raises(client.ApiException) as info:
        client.CoreV1Api(api).create_namespaced_pod(namespace, pod)
    assert info.value.status == 403
    body = json.loads(info.value.body)
    assert body["reason"] == "Forbidden"
    assert body["details"] == {"name": "priv", "kind": "pods"}
    assert body["message"] == (
        'pods "priv" is forbidden: violates PodSecurity "baseline:latest": '
        'host namespaces (hostPID=true), hostPath volumes (volume "root"), '
        'privileged (container "c" must not set securityContext.privileged=true)'
    )


def test_enforce_restricted_admits_a_compliant_pod(api: Any, namespace: str) -> None:
    from kubernetes import client

    _label(api, namespace, enforce="restricted")
    created = client.CoreV1Api(api).create_namespaced_pod(namespace, RESTRICTED_OK_POD)
    assert created.metadata.name == "fine"


def test_warn_admits_and_kubectl_prints_the_warning(
    api: Any, kubectl: Kubectl, namespace: str
) -> None:
    _label(api, namespace, warn="baseline")
    result = kubectl("create", "-f", "-", input=_manifest(PRIVILEGED_POD, namespace))
    assert result.returncode == 0, result.stderr
    assert (
        'Warning: would violate PodSecurity "baseline:latest": host namespaces (hostPID=true), '
        'privileged (container "c" must not set securityContext.privileged=true)' in result.stderr
    )
    assert kubectl("get", "pod", "-n", namespace, "priv").returncode == 0


def test_workloads_are_warned_about_but_not_rejected_under_enforce(
    api: Any, kubectl: Kubectl, namespace: str
) -> None:
    _label(api, namespace, enforce="restricted", warn="restricted")
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "priv-deploy", "namespace": namespace},
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": {"app": "p"}},
            "template": {
                "metadata": {"labels": {"app": "p"}},
                "spec": PRIVILEGED_POD["spec"],
            },
        },
    }
    result = kubectl("create", "-f", "-", input=json.dumps(deployment))
    assert result.returncode == 0, result.stderr
    assert 'Warning: would violate PodSecurity "restricted:latest": ' in result.stderr
    assert 'privileged (container "c" must not set securityContext.privileged=true)' in (
        result.stderr
    )


def _audit_event(target: Target, namespace: str, name: str) -> dict:
    path = target.sim.outputs.audit_path
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        for line in path.read_text().splitlines():
            event = json.loads(line)
            ref = event.get("objectRef") or {}
            if (
                event.get("verb") == "create"
                and ref.get("namespace") == namespace
                and ref.get("name") == name
            ):
                return event
        time.sleep(0.05)
    raise AssertionError(f"no audit event for the pod {name}")


@pytest.mark.sim_only
def test_enforce_rejection_is_annotated_in_the_audit_event(
    api: Any, target: Target, namespace: str
) -> None:
    from kubernetes import client

    _label(api, namespace, enforce="baseline")
    with pytest.raises(client.ApiException):
        client.CoreV1Api(api).create_namespaced_pod(namespace, PRIVILEGED_POD)
    found = _audit_event(target, namespace, "priv")
    assert found["responseStatus"]["code"] == 403
    assert found["annotations"]["pod-security.kubernetes.io/enforce-policy"] == "baseline:latest"
    assert "hostPID=true" in found["responseStatus"]["message"]


@pytest.mark.sim_only
def test_audit_mode_annotates_the_audit_event(api: Any, target: Target, namespace: str) -> None:
    from kubernetes import client

    _label(api, namespace, audit="baseline")
    pod = json.loads(json.dumps(PRIVILEGED_POD))
    pod["metadata"]["name"] = "audited"
    client.CoreV1Api(api).create_namespaced_pod(namespace, pod)
    found = _audit_event(target, namespace, "audited")
    assert found["annotations"]["pod-security.kubernetes.io/audit-violations"] == (
        'would violate PodSecurity "baseline:latest": host namespaces (hostPID=true), '
        'privileged (container "c" must not set securityContext.privileged=true)'
    )


def test_hostile_unknown_level_label_is_invalid(api: Any, namespace: str) -> None:
    from kubernetes import client

    core = client.CoreV1Api(api)
    patch = {"metadata": {"labels": {"pod-security.kubernetes.io/enforce": "paranoid"}}}
    with pytest.raises(client.ApiException) as info:
        core.patch_namespace(namespace, patch)
    assert info.value.status == 422
    body = json.loads(info.value.body)
    assert [c["field"] for c in body["details"]["causes"]] == [
        "metadata.labels[pod-security.kubernetes.io/enforce]"
    ]
    # The namespace keeps no level: a privileged pod is still admitted.
    pod = json.loads(json.dumps(PRIVILEGED_POD))
    pod["metadata"]["name"] = "odd-level"
    assert core.create_namespaced_pod(namespace, pod).metadata.name == "odd-level"


def test_hostile_terminal_escapes_in_a_label_value_are_invalid(api: Any, namespace: str) -> None:
    from kubernetes import client

    patch = {"metadata": {"labels": {"team": "red\x1b[31m"}}}
    with pytest.raises(client.ApiException) as info:
        client.CoreV1Api(api).patch_namespace(namespace, patch)
    assert info.value.status == 422


def test_labelling_a_namespace_warns_about_existing_violating_pods(
    api: Any, kubectl: Kubectl, namespace: str
) -> None:
    from kubernetes import client

    client.CoreV1Api(api).create_namespaced_pod(namespace, PRIVILEGED_POD)
    result = kubectl(
        "label",
        "--dry-run=server",
        "--overwrite",
        "namespace",
        namespace,
        "pod-security.kubernetes.io/enforce=baseline",
    )
    assert result.returncode == 0, result.stderr
    assert (
        f'Warning: existing pods in namespace "{namespace}" violate the new PodSecurity '
        'enforce level "baseline:latest"' in result.stderr
    )
    assert "Warning: priv: host namespaces, privileged" in result.stderr
    labels = client.CoreV1Api(api).read_namespace(namespace).metadata.labels or {}
    assert "pod-security.kubernetes.io/enforce" not in labels


def test_baseline_forbids_unsafe_sysctls_and_unmasked_proc(api: Any, namespace: str) -> None:
    from kubernetes import client

    _label(api, namespace, enforce="baseline")
    pod = {
        "metadata": {"name": "tuned"},
        "spec": {
            "securityContext": {
                "sysctls": [
                    {"name": "net.ipv4.tcp_syncookies", "value": "1"},
                    {"name": "kernel.msgmax", "value": "65536"},
                ]
            },
            "containers": [
                {"name": "c", "image": "busybox", "securityContext": {"procMount": "Unmasked"}}
            ],
        },
    }
    with pytest.raises(client.ApiException) as info:
        client.CoreV1Api(api).create_namespaced_pod(namespace, pod)
    assert info.value.status == 403
    assert json.loads(info.value.body)["message"] == (
        'pods "tuned" is forbidden: violates PodSecurity "baseline:latest": '
        'procMount (container "c" must not set securityContext.procMount to "Unmasked"), '
        "forbidden sysctls (kernel.msgmax)"
    )
