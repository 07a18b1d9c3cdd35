"""Object templates and runtime records: the shapes a real cluster and real agents produce."""

from __future__ import annotations

import base64
import re

import kubernetes_validate
import orjson
import pytest

from ktriage.sim.names import NAME_ALPHABET
from ktriage.sim.scenario.factory import ObjectFactory
from ktriage.sim.scenario.runtime_records import falco_alert, tetragon_exec_id
from ktriage.sim.scenario.templates import TemplateError, image_id, image_ref, template_hash
from ktriage.sim.storage.patch import merge_patch

NODES = [{"node": {"name": f"worker-{i}"}} for i in (1, 2, 3)]
DEPLOYMENT = {
    "deployment": {
        "namespace": "shop",
        "name": "storefront",
        "replicas": 3,
        "image": "ghcr.io/acme/storefront:2.4.1",
        "ports": [8080],
        "serviceAccount": "storefront",
        "resources": {"limits": {"memory": "512Mi"}},
    }
}


def build(*items: dict, seed: int = 7) -> tuple[ObjectFactory, list[dict]]:
    factory = ObjectFactory(seed=seed)
    objs: list[dict] = []
    for item in [*NODES, *items]:
        objs += factory.expand(item)
    return factory, objs


def test_deployment_expands_to_owned_replicaset_and_pods() -> None:
    factory, objs = build(DEPLOYMENT)
    deploy, rs, *pods = [o for o in objs if o["kind"] != "Node"]
    assert (deploy["kind"], rs["kind"]) == ("Deployment", "ReplicaSet")
    assert len(pods) == 3 and all(p["kind"] == "Pod" for p in pods)
    pth = rs["metadata"]["labels"]["pod-template-hash"]
    # Real hashes are SafeEncodeString of fnv32a's decimal digits: only these letters.
    assert re.fullmatch(r"[4-9bcdf]{6,10}", pth)
    assert rs["metadata"]["name"] == f"storefront-{pth}"
    assert rs["metadata"]["ownerReferences"][0]["uid"] == deploy["metadata"]["uid"]
    assert rs["metadata"]["ownerReferences"][0]["controller"] is True
    for pod in pods:
        assert re.fullmatch(rf"storefront-{pth}-[{NAME_ALPHABET}]{{5}}", pod["metadata"]["name"])
        assert pod["metadata"]["ownerReferences"][0]["uid"] == rs["metadata"]["uid"]
        assert pod["metadata"]["labels"]["pod-template-hash"] == pth
        assert pod["spec"]["serviceAccountName"] == "storefront"
        (status,) = pod["status"]["containerStatuses"]
        assert re.fullmatch(r"containerd://[0-9a-f]{64}", status["containerID"])
        assert status["state"]["running"]["startedAt"].endswith("Z")
        assert pod["status"]["podIP"].startswith("10.244.")
    # Spread over the nodes, and registered as the workload's pods in order.
    assert {p["spec"]["nodeName"] for p in pods} == {"worker-1", "worker-2", "worker-3"}
    assert factory.workload_pods[("shop", "storefront")] == [p["metadata"]["name"] for p in pods]
    assert pods[0]["status"]["qosClass"] == "Burstable"


def test_same_seed_same_cluster_other_seed_other_names() -> None:
    _, a = build(DEPLOYMENT, seed=3)
    _, b = build(DEPLOYMENT, seed=3)
    _, c = build(DEPLOYMENT, seed=4)
    assert orjson.dumps(a) == orjson.dumps(b)
    names = lambda objs: [o["metadata"]["name"] for o in objs if o["kind"] == "Pod"]  # noqa: E731
    assert names(a) != names(c)


def test_template_hash_follows_the_template() -> None:
    t1 = {"metadata": {"labels": {"app": "x"}}, "spec": {"containers": [{"image": "a:1"}]}}
    t2 = {"metadata": {"labels": {"app": "x"}}, "spec": {"containers": [{"image": "a:2"}]}}
    assert template_hash(t1) == template_hash(orjson.loads(orjson.dumps(t1)))
    assert template_hash(t1) != template_hash(t2)


def test_addons_give_falco_and_tetragon_pods_on_every_node() -> None:
    factory, objs = build({"kube_system": {}}, {"falco": {}}, {"tetragon": {}})
    pods = [o for o in objs if o["kind"] == "Pod"]
    falco = [p for p in pods if p["metadata"]["namespace"] == "falco"]
    tetragon = [
        p for p in pods if p["metadata"]["labels"].get("app.kubernetes.io/name") == "tetragon"
    ]
    assert sorted(p["spec"]["nodeName"] for p in falco) == ["worker-1", "worker-2", "worker-3"]
    assert all(p["metadata"]["labels"]["app.kubernetes.io/name"] == "falco" for p in falco)
    assert all("falco" in [c["name"] for c in p["spec"]["containers"]] for p in falco)
    assert all(p["metadata"]["namespace"] == "kube-system" for p in tetragon)
    assert len(tetragon) == 3
    assert [c["name"] for c in tetragon[0]["spec"]["containers"]] == ["export-stdout", "tetragon"]
    # Falco's startup lines are there, with the pod's own node.
    lines = [(pod, line) for ns, pod, _, line, _ in factory.initial_logs if ns == "falco"]
    node_of = {p["metadata"]["name"]: p["spec"]["nodeName"] for p in falco}
    hostname_lines = [(pod, line) for pod, line in lines if "overridden" in line]
    assert len(hostname_lines) == 3
    assert all(line.endswith(node_of[pod]) for pod, line in hostname_lines)


def test_built_objects_validate_against_the_official_schema() -> None:
    _, objs = build(
        {"kube_system": {}},
        {"falco": {}},
        {"tetragon": {}},
        {"namespace": "shop"},
        DEPLOYMENT,
        {"service": {"namespace": "shop", "name": "storefront", "type": "LoadBalancer",
                     "ports": ["80:8080"]}},
        {"networkpolicy": {"namespace": "shop", "name": "deny", "podSelector": {},
                           "policyTypes": ["Ingress", "Egress"]}},
        {"job": {"namespace": "shop", "name": "report", "image": "python:3.13"}},
        {"secret": {"namespace": "shop", "name": "db", "data": {"password": "x"}}},
        {"pod": {"namespace": "shop", "name": "debug", "image": "alpine:3.20", "hostPID": True,
                 "volumes": [{"name": "host", "hostPath": {"path": "/"}}]}},
    )  # fmt: skip
    for obj in objs:
        kubernetes_validate.validate(obj, "1.37", strict=True)


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ({"deployment": {"namespace": "a", "name": "b"}}, "missing required field 'image'"),
        ({"deployment": {"namespace": "a", "name": "b", "image": "x", "replica": 2}},
         "unknown field 'replica'"),
        ({"deployment": {"namespace": "a", "name": "b", "image": "x", "node": "nope"}},
         "unknown node 'nope'"),
        ({"service": {"namespace": "a", "name": "b", "type": "Magic"}}, "type must be"),
        ({"service": {"namespace": "a", "name": "b", "ports": ["x:y"]}}, "bad port"),
        ({"pod": {"namespace": "a", "name": "b", "containers": [{"name": "c"}]}},
         "containers[0]: missing required field 'image'"),
        ({"deployment": {}, "pod": {}}, "exactly one key"),
        ({"object": {"kind": "Pod", "metadata": {}}}, "metadata.name is missing"),
        ({"namespace": {"name": "a", "age": "old"}}, "age: not a duration"),
    ],
)  # fmt: skip
def test_template_errors_name_the_field(item: dict, message: str) -> None:
    with pytest.raises(TemplateError) as info:
        build(item)
    assert message in str(info.value)


def test_images_as_containerd_reports_them() -> None:
    assert image_ref("nginx:1.27") == "docker.io/library/nginx:1.27"
    assert image_ref("falcosecurity/falco:0.41.3") == "docker.io/falcosecurity/falco:0.41.3"
    assert image_ref("ghcr.io/acme/x:1") == "ghcr.io/acme/x:1"
    assert re.fullmatch(r"docker\.io/library/nginx@sha256:[0-9a-f]{64}", image_id("nginx:1.27"))


def test_merge_patch_deletes_with_null() -> None:
    target = {"a": {"b": 1, "c": 2}, "d": 3}
    target = merge_patch(target, {"a": {"b": None, "e": {"f": 4}}, "d": None})
    assert target == {"a": {"c": 2, "e": {"f": 4}}}


def test_falco_alert_shape() -> None:
    alert = falco_alert(
        rule="Terminal shell in container",
        priority="Notice",
        output_template="A shell | user=%user.name command=%proc.cmdline parent=%proc.pname",
        fields={"user.name": "root", "proc.cmdline": "sh", "k8s.pod.name": "web-1",
                "k8s.ns.name": "shop", "container.id": "0123456789ab"},
        tags=["mitre_execution", "T1059", "container"],
        hostname="worker-1",
        time_ns=1_800_000_050_123_456_789,
        alert_uuid="u-1",
    )  # fmt: skip
    assert alert["time"] == "2027-01-15T08:00:50.123456789Z"
    assert alert["output"].startswith("08:00:50.123456789: Notice A shell | user=root command=sh")
    assert "parent=<NA>" in alert["output"]
    assert "k8s_pod_name=web-1 k8s_ns_name=shop" in alert["output"]
    assert alert["output_fields"]["evt.time"] == 1_800_000_050_123_456_789
    assert alert["tags"] == ["T1059", "container", "mitre_execution"]
    assert (alert["hostname"], alert["uuid"], alert["source"]) == ("worker-1", "u-1", "syscall")


def test_tetragon_exec_id_is_base64_of_node_ktime_pid() -> None:
    exec_id = tetragon_exec_id("worker-1", 1036922000000000, 80970)
    assert base64.b64decode(exec_id).decode() == "worker-1:1036922000000000:80970"
