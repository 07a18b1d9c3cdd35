"""The blast radius's reachability claims only what holds: "isolated" needs a policy
that closes the direction, nothing it or another lets through, nothing unreadable, and
a network plugin seen to enforce NetworkPolicy (found as the isolate action finds it)."""

from __future__ import annotations

from typing import Any

from ktriage.actions.netplugins import classify
from ktriage.blastread import _enforcement
from ktriage.core import blast
from ktriage.core.blast import ClusterView

NS = "shop"
CILIUM = {"Cilium": "daemonset kube-system/cilium"}


def pod(labels: dict[str, str], **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"namespace": NS, "name": "web-1", "labels": labels},
        "spec": {"nodeName": "w1", "containers": [{"name": "app", "image": "app:1"}], **spec},
    }


def policy(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {"namespace": NS, "name": name}, "spec": spec}


QUARANTINE = policy(
    "ktriage-quarantine-web-1",
    {
        "podSelector": {"matchLabels": {"ktriage.io/quarantine": "web-1"}},
        "policyTypes": ["Ingress", "Egress"],
    },
)
DEFAULT_DENY = policy("default-deny-ingress", {"podSelector": {}, "policyTypes": ["Ingress"]})
ALLOW_HTTP = policy(
    "storefront-allow-http",
    {
        "podSelector": {"matchLabels": {"app": "storefront"}},
        "ingress": [{"ports": [{"port": 8080, "protocol": "TCP"}]}],
    },
)
QUARANTINED = {"app": "storefront", "ktriage.io/quarantine": "web-1"}


def reach(
    policies: list[dict[str, Any]],
    enforcing: dict[str, str] | None,
    labels: dict[str, str] = QUARANTINED,
    warning: str = "",
    **spec: Any,
) -> blast.BlastResult:
    view = ClusterView(
        pods=[pod(labels, **spec)],
        network_policies=policies,
        seen={"pods", "networkpolicies"},
        enforcing=enforcing,
        enforcement_warning=warning,
    )
    return blast.compute(view, [], [(NS, "web-1")])


def test_after_an_isolation_with_no_plugin_seen_nothing_is_called_isolated() -> None:
    """The demo: the isolate dialog warned that no enforcing plugin was seen."""
    warning = classify([], {}).warning()
    result = reach([DEFAULT_DENY, QUARANTINE, ALLOW_HTTP], {}, warning=warning)
    (p,) = result.pods
    assert p.ingress == [
        "ingress: policies select it (NetworkPolicy default-deny-ingress, "
        "ktriage-quarantine-web-1, storefront-allow-http), but NetworkPolicy "
        "storefront-allow-http allows ingress from anywhere on "
        "TCP/8080; no NetworkPolicy-enforcing network plugin was seen: policies may not be "
        "enforced"
    ]
    assert p.egress == [
        "egress: NetworkPolicy ktriage-quarantine-web-1 selects it and allows nothing, but no "
        "NetworkPolicy-enforcing network plugin was seen: policies may not be enforced"
    ]
    # The isolate dialog's sentence, word for word, in NOT SEEN and in the markdown.
    assert warning in result.not_seen
    assert "isolation may not be enforced" in warning
    lines, markdown = blast.render_lines(result), blast.render_markdown(result)
    pod_part = "\n".join(lines).split("POD ", 1)[1].split("NOT SEEN", 1)[0]
    assert "isolated" not in pod_part
    assert "isolated" not in markdown.split("### Pod", 1)[1].split("### Not seen", 1)[0]
    assert markdown.count("policies may not be enforced") == 2


def test_an_allow_from_anywhere_is_never_called_isolated_even_when_enforced() -> None:
    (p,) = reach([DEFAULT_DENY, QUARANTINE, ALLOW_HTTP], CILIUM).pods
    assert p.ingress[0].startswith("ingress: policies select it (")
    assert p.ingress[0].endswith(
        "but NetworkPolicy storefront-allow-http allows ingress from anywhere on TCP/8080"
    )
    assert p.egress == [
        "egress: isolated by NetworkPolicy ktriage-quarantine-web-1; nothing allowed "
        "(enforced by Cilium)"
    ]


def test_the_widest_allowance_is_named_first_and_every_other_follows() -> None:
    narrow = policy(
        "from-frontend",
        {
            "podSelector": {},
            "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "fe"}}}]}],
        },
    )
    (p,) = reach([narrow, ALLOW_HTTP], CILIUM).pods
    assert (
        "but NetworkPolicy storefront-allow-http allows ingress from anywhere on TCP/8080"
        in p.ingress[0]
    )
    assert p.ingress[1] == (
        "NetworkPolicy from-frontend allows ingress from pods with app=fe in namespace shop "
        "on all ports"
    )


def test_not_checked_for_a_plugin_says_so() -> None:
    (p,) = reach([QUARANTINE], None).pods
    assert p.egress == [
        "egress: NetworkPolicy ktriage-quarantine-web-1 selects it and allows nothing, but "
        "whether a network plugin enforces NetworkPolicy was not checked: policies may not "
        "be enforced"
    ]


def test_hostile_host_network_pod_is_never_isolated_by_a_policy() -> None:
    (p,) = reach([QUARANTINE], CILIUM, hostNetwork=True).pods
    assert p.ingress[0].startswith("hostNetwork: NetworkPolicies do not apply")
    assert "isolated" not in " ".join(p.ingress + p.egress)
    assert p.egress[0].endswith("but NetworkPolicies do not apply to a hostNetwork pod")


def test_hostile_unreadable_policy_beside_a_deny_all_is_not_called_isolated() -> None:
    """A policy with an operator Kubernetes does not know may select the pod and allow
    anything: the deny-all beside it isolates nothing for sure."""
    broken = policy(
        "odd",
        {"podSelector": {"matchExpressions": [{"key": "app", "operator": "Like"}]}},
    )
    (p,) = reach([QUARANTINE, broken], CILIUM).pods
    lines = p.ingress + p.egress
    assert "isolated" not in " ".join(lines)
    assert p.egress[0].endswith("NetworkPolicy odd could not be evaluated: it may allow traffic")
    assert any(line.startswith("NetworkPolicy odd could not be evaluated") for line in lines)


def test_hostile_markup_in_a_policy_name_stays_text_in_the_claim() -> None:
    named = policy("[bold red]isolated[/]\x1b[2J", QUARANTINE["spec"])
    result = reach([named], {})
    text = "\n".join(blast.render_lines(result))
    assert "\x1b" not in text
    assert "[bold red]isolated[/]" in text  # shown as the characters it is
    assert "may not be enforced" in text


def test_the_plugin_evidence_is_the_isolate_actions_own() -> None:
    """blastread hands what it read to actions.netplugins.classify: the same agents
    count, and the same sentence warns when none is seen."""
    calico = {
        "metadata": {"namespace": "calico-system", "name": "calico-node"},
        "spec": {"template": {"spec": {"containers": [{"image": "calico/node:v3.27"}]}}},
    }
    kindnet = {
        "metadata": {"namespace": "kube-system", "name": "kindnet"},
        "spec": {"template": {"spec": {"containers": [{"image": "kindest/kindnetd:v1"}]}}},
    }
    view = ClusterView()
    _enforcement(view, [calico], {}, [])
    assert view.enforcing == {"Calico": "daemonset calico-system/calico-node"}
    assert view.enforcement_warning == ""
    view = ClusterView()
    _enforcement(view, [kindnet], {"apps": ["v1"]}, [])
    assert view.enforcing == {}
    expected = classify([{**kindnet, "kind": "DaemonSet"}], {"apps": ["v1"]})
    expected.looked_at = ["the DaemonSets of every namespace", "API discovery"]
    assert view.enforcement_warning == expected.warning()
    assert "kindnet (daemonset kube-system/kindnet), which does not enforce" in (
        view.enforcement_warning
    )


def test_hostile_agent_named_in_a_user_namespace_does_not_count_when_pods_are_read() -> None:
    """Without the DaemonSets, only kube-system's and calico-system's pods are read, as the
    isolate action reads them: a pod called `cilium-abcde` in a tenant's namespace is
    not a network plugin."""
    fake = {
        "metadata": {"namespace": "tenant", "name": "cilium-abcde"},
        "spec": {"containers": [{"name": "x", "image": "cilium/cilium:v1"}]},
    }
    view = ClusterView(pods=[fake], seen={"pods"})
    _enforcement(view, None, None, ["could not list daemonsets: forbidden"])
    assert view.enforcing == {}
    assert "the pods of kube-system" in view.enforcement_warning
    assert "could not list daemonsets: forbidden" in view.enforcement_warning


def cilium_deny(name: str) -> dict[str, Any]:
    return {
        "metadata": {"namespace": NS, "name": name},
        "spec": {
            "endpointSelector": {"matchLabels": {"ktriage.io/quarantine": "web-1"}},
            "ingressDeny": [{"fromEntities": ["all"]}],
            "egressDeny": [{"toEntities": ["all"]}],
        },
    }


def test_a_cilium_deny_isolation_is_read_as_the_isolate_action_reads_it() -> None:
    """Isolation with Cilium writes a deny policy: it wins over the allow from anywhere."""
    view = ClusterView(
        pods=[pod(QUARANTINED)],
        network_policies=[ALLOW_HTTP],
        cilium_policies=[cilium_deny("ktriage-quarantine-web-1")],
        seen={"pods", "networkpolicies"},
        enforcing=CILIUM,
    )
    (p,) = blast.compute(view, [], [(NS, "web-1")]).pods
    words = "isolated by CiliumNetworkPolicy ktriage-quarantine-web-1; nothing allowed"
    assert p.ingress == [f"ingress: {words} (enforced by Cilium)"]
    assert p.egress == [f"egress: {words} (enforced by Cilium)"]


def test_hostile_unreadable_policy_kind_rules_out_isolated() -> None:
    """Calico's policies are served but could not be read: one of them may allow."""
    view = ClusterView(
        pods=[pod(QUARANTINED)],
        network_policies=[QUARANTINE],
        seen={"pods", "networkpolicies"},
        enforcing={"Calico": "daemonset calico-system/calico-node"},
        policies_unread=["Calico networkpolicies"],
    )
    (p,) = blast.compute(view, [], [(NS, "web-1")]).pods
    assert p.egress == [
        "egress: NetworkPolicy ktriage-quarantine-web-1 selects it and allows nothing, but "
        "Calico networkpolicies could not be read: they may allow traffic"
    ]
