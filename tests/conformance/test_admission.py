"""Validation as kube-apiserver does it: 422 Invalid Status bodies whose causes name each
field, for names, labels, pod specs, NetworkPolicies and fields an update may not change."""

from __future__ import annotations

import json
from typing import Any

import pytest
from conformance_support import Kubectl


def _status(exc: Any) -> dict:
    return json.loads(exc.body)


def _invalid(call: Any) -> dict:
    from kubernetes import client

    with pytest.raises(client.ApiException) as info:
        call()
    assert info.value.status == 422, info.value.body
    body = _status(info.value)
    assert body["kind"] == "Status" and body["reason"] == "Invalid" and body["code"] == 422
    return body


def _causes(body: dict) -> set[tuple[str, str]]:
    return {(c["field"], c["reason"]) for c in body["details"]["causes"]}


def _pod(name: str, **spec: Any) -> dict:
    base = {"containers": [{"name": "app", "image": "nginx:1.27"}]}
    base.update(spec)
    return {"metadata": {"name": name}, "spec": base}


def test_invalid_name_is_422_with_the_dns_subdomain_cause(api: Any, namespace: str) -> None:
    from kubernetes import client

    core = client.CoreV1Api(api)
    body = _invalid(
        lambda: core.create_namespaced_config_map(
            namespace, {"metadata": {"name": "Bad_Name"}, "data": {}}
        )
    )
    assert body["message"].startswith(
        'ConfigMap "Bad_Name" is invalid: metadata.name: Invalid value: "Bad_Name": '
        "a lowercase RFC 1123 subdomain"
    )
    assert _causes(body) == {("metadata.name", "FieldValueInvalid")}


def test_invalid_label_key_and_value_are_each_a_cause(api: Any, namespace: str) -> None:
    from kubernetes import client

    core = client.CoreV1Api(api)
    body = _invalid(
        lambda: core.create_namespaced_config_map(
            namespace,
            {"metadata": {"name": "labels", "labels": {"bad key!": "ok", "app": "bad value!"}}},
        )
    )
    messages = [c["message"] for c in body["details"]["causes"]]
    assert all(c["field"] == "metadata.labels" for c in body["details"]["causes"])
    assert any(m.startswith('Invalid value: "bad key!": name part must consist') for m in messages)
    assert any(m.startswith('Invalid value: "bad value!": a valid label must be') for m in messages)
    assert body["message"].startswith('ConfigMap "labels" is invalid: [metadata.labels: ')


def test_pod_spec_ports_volumes_and_names_are_validated(api: Any, namespace: str) -> None:
    from kubernetes import client

    pod = _pod("badpod")
    pod["spec"]["containers"] = [
        {
            "name": "app",
            "image": "nginx",
            "ports": [{"containerPort": 70000}],
            "volumeMounts": [{"name": "missing", "mountPath": "/data"}],
        },
        {"name": "app", "image": "nginx"},
    ]
    body = _invalid(lambda: client.CoreV1Api(api).create_namespaced_pod(namespace, pod))
    assert _causes(body) >= {
        ("spec.containers[0].ports[0].containerPort", "FieldValueInvalid"),
        ("spec.containers[0].volumeMounts[0].name", "FieldValueNotFound"),
        ("spec.containers[1].name", "FieldValueDuplicate"),
    }
    assert (
        "spec.containers[0].ports[0].containerPort: Invalid value: 70000: "
        "must be between 1 and 65535, inclusive" in body["message"]
    )


def test_invalid_network_policy_is_422_naming_each_field(api: Any, namespace: str) -> None:
    from kubernetes import client

    policy = {
        "metadata": {"name": "bad"},
        "spec": {
            "podSelector": {},
            "policyTypes": ["Ingress", "Sideways"],
            "ingress": [
                {
                    "from": [{"ipBlock": {"cidr": "10.0.0.0/33"}}],
                    "ports": [{"protocol": "XTP", "port": 0}],
                }
            ],
            "egress": [{"to": [{"ipBlock": {"cidr": "10.0.0.0/8", "except": ["192.168.0.0/16"]}}]}],
        },
    }
    net = client.NetworkingV1Api(api)
    body = _invalid(lambda: net.create_namespaced_network_policy(namespace, policy))
    assert body["details"]["group"] == "networking.k8s.io"
    assert body["details"]["kind"] == "NetworkPolicy"
    assert body["message"].startswith('NetworkPolicy.networking.k8s.io "bad" is invalid: [')
    assert _causes(body) == {
        ("spec.policyTypes[1]", "FieldValueNotSupported"),
        ("spec.ingress[0].from[0].ipBlock.cidr", "FieldValueInvalid"),
        ("spec.ingress[0].ports[0].protocol", "FieldValueNotSupported"),
        ("spec.ingress[0].ports[0].port", "FieldValueInvalid"),
        ("spec.egress[0].to[0].ipBlock.except[0]", "FieldValueInvalid"),
    }
    assert (
        'spec.egress[0].to[0].ipBlock.except[0]: Invalid value: "192.168.0.0/16": '
        "must be a strict subset of `cidr`" in body["message"]
    )


def test_invalid_network_policy_with_kubectl_is_rejected_with_the_message(
    kubectl: Kubectl, namespace: str
) -> None:
    manifest = json.dumps(
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": "bad", "namespace": namespace},
            "spec": {"podSelector": {}, "policyTypes": ["Sideways"]},
        }
    )
    result = kubectl("create", "-f", "-", input=manifest)
    assert result.returncode != 0
    assert (
        'The NetworkPolicy "bad" is invalid: spec.policyTypes[0]: Unsupported value: '
        '"Sideways": supported values: "Egress", "Ingress"' in result.stderr
    )
    assert kubectl("get", "networkpolicy", "-n", namespace, "bad").returncode != 0


def test_pod_spec_change_other_than_image_is_forbidden(api: Any, namespace: str) -> None:
    from kubernetes import client

    core = client.CoreV1Api(api)
    core.create_namespaced_pod(namespace, _pod("immutable"))
    patch = {"spec": {"containers": [{"name": "app", "command": ["sh"]}]}}
    body = _invalid(lambda: core.patch_namespaced_pod("immutable", namespace, patch))
    assert _causes(body) == {("spec", "FieldValueForbidden")}
    assert body["message"].startswith(
        'Pod "immutable" is invalid: spec: Forbidden: pod updates may not change fields other '
        "than `spec.containers[*].image`"
    )
    # The image may change.
    image = {"spec": {"containers": [{"name": "app", "image": "nginx:1.28"}]}}
    updated = core.patch_namespaced_pod("immutable", namespace, image)
    assert updated.spec.containers[0].image == "nginx:1.28"


def test_deployment_selector_is_immutable(api: Any, namespace: str) -> None:
    from kubernetes import client

    apps = client.AppsV1Api(api)
    template = {
        "metadata": {"labels": {"app": "a", "tier": "web"}},
        "spec": {"containers": [{"name": "app", "image": "nginx"}]},
    }
    apps.create_namespaced_deployment(
        namespace,
        {
            "metadata": {"name": "web"},
            "spec": {
                "replicas": 0,
                "selector": {"matchLabels": {"app": "a"}},
                "template": template,
            },
        },
    )
    patch = {"spec": {"selector": {"matchLabels": {"app": "a", "tier": "web"}}}}
    body = _invalid(lambda: apps.patch_namespaced_deployment("web", namespace, patch))
    assert ("spec.selector", "FieldValueInvalid") in _causes(body)
    assert body["message"].startswith('Deployment.apps "web" is invalid: spec.selector: ')
    assert body["message"].endswith("field is immutable")


def test_immutable_configmap_data_cannot_change(api: Any, namespace: str) -> None:
    from kubernetes import client

    core = client.CoreV1Api(api)
    core.create_namespaced_config_map(
        namespace, {"metadata": {"name": "frozen"}, "data": {"a": "1"}, "immutable": True}
    )
    body = _invalid(
        lambda: core.patch_namespaced_config_map("frozen", namespace, {"data": {"a": "2"}})
    )
    assert _causes(body) == {("data", "FieldValueForbidden")}
    assert "data: Forbidden: field is immutable when `immutable` is set" in body["message"]
    # Labels may still change.
    core.patch_namespaced_config_map("frozen", namespace, {"metadata": {"labels": {"x": "y"}}})


def test_hostile_oversized_annotations_are_rejected(api: Any, namespace: str) -> None:
    from kubernetes import client

    core = client.CoreV1Api(api)
    big = {"metadata": {"name": "big", "annotations": {"a": "x" * (300 * 1024)}}}
    body = _invalid(lambda: core.create_namespaced_config_map(namespace, big))
    assert _causes(body) == {("metadata.annotations", "FieldValueTooLong")}


def test_hostile_non_string_and_nested_values_are_invalid_not_a_crash(
    api: Any, namespace: str
) -> None:
    from kubernetes import client

    policy = {
        "metadata": {"name": "odd"},
        "spec": {
            "podSelector": {
                "matchExpressions": [{"key": "a", "operator": "Near", "values": ["x"]}]
            },
            "ingress": [{"from": [{}], "ports": [{"port": "no--way"}]}],
        },
    }
    net = client.NetworkingV1Api(api)
    body = _invalid(lambda: net.create_namespaced_network_policy(namespace, policy))
    fields = {c["field"] for c in body["details"]["causes"]}
    assert "spec.podSelector.matchExpressions[0].operator" in fields
    assert "spec.ingress[0].from[0]" in fields
    assert "spec.ingress[0].ports[0].port" in fields
