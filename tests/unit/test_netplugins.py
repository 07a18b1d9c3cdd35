"""Network plugin detection from DaemonSets, pods and API groups (pure part)."""

from __future__ import annotations

from ktriage.actions.netplugins import classify


def daemonset(ns: str, name: str, image: str) -> dict:
    return {
        "kind": "DaemonSet",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"template": {"spec": {"containers": [{"name": "c", "image": image}]}}},
    }


def pod(ns: str, name: str, image: str) -> dict:
    return {
        "kind": "Pod",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"containers": [{"name": "c", "image": image}]},
    }


def test_enforcing_agents_by_name_or_image() -> None:
    found = classify(
        [
            daemonset("kube-system", "cilium", "quay.io/cilium/cilium:v1.18.2"),
            daemonset("calico-system", "calico-node", "docker.io/calico/node:v3.30.3"),
            pod("kube-system", "antrea-agent-x7k2p", "antrea/antrea-agent-ubuntu:v2.2.0"),
            daemonset("kube-system", "weave-net", "weaveworks/weave-kube:2.8.1"),
            daemonset("kube-system", "kube-router", "docker.io/cloudnativelabs/kube-router"),
        ],
        {},
    )
    assert list(found.enforcing) == ["Cilium", "Calico", "Antrea", "Weave Net", "kube-router"]
    assert found.enforcing["Cilium"] == "daemonset kube-system/cilium"
    assert found.seen and found.warning() == ""
    assert "Cilium (daemonset kube-system/cilium)" in found.note()


def test_api_groups_count_as_seen() -> None:
    found = classify([], {"cilium.io": ["v2"]})
    assert found.enforcing == {"Cilium": "API group cilium.io"}


def test_nothing_enforcing_warns_and_names_what_was_seen() -> None:
    found = classify([daemonset("kube-flannel", "kube-flannel-ds", "flannel/flannel:v0.26")], {})
    found.looked_at = ["the DaemonSets of every namespace"]
    assert not found.seen
    warning = found.warning()
    assert warning.startswith("No NetworkPolicy-enforcing network plugin was seen")
    assert "isolation may not be enforced" in warning
    assert "flannel (daemonset kube-flannel/kube-flannel-ds)" in warning


def test_hostile_lookalike_names_are_not_plugins() -> None:
    """An attacker's workload named like an agent, without being one, does not count."""
    found = classify(
        [
            daemonset("default", "not-cilium-at-all", "evil/miner:1"),
            pod("default", "ciliumx", "evil/ciliumish:1"),
            pod("default", "calico-node-evil-miner", "evil/miner:1"),
            {"kind": "Pod", "metadata": None, "spec": "junk"},
            "not an object",  # type: ignore[list-item]
        ],
        {},
    )
    assert not found.seen, found.enforcing
