"""Judging a pod's network from every policy kind: Kubernetes, Cilium (deny wins), Calico
(ordered, first match decides); what cannot be read counts as open."""

from __future__ import annotations

import pytest

from ktriage.core.netpol import EGRESS, INGRESS, SelectorError
from ktriage.core.netverdict import (
    calico_selector_matches,
    calico_types,
    cilium_selector_matches,
    judge,
)

NS = "shop"
POD = {"app": "web", "ktriage.io/quarantine": "web-1"}


def netpol(name: str, spec: dict) -> dict:
    return {"metadata": {"name": name, "namespace": NS}, "spec": spec}


QUARANTINE_NP = netpol(
    "ktriage-quarantine-web-1",
    {
        "podSelector": {"matchLabels": {"ktriage.io/quarantine": "web-1"}},
        "policyTypes": ["Ingress", "Egress"],
    },
)
ALLOW_EVERYTHING_IN = netpol("allow-all", {"podSelector": {}, "ingress": [{}]})
QUARANTINE_CNP = {
    "metadata": {"name": "ktriage-quarantine-web-1", "namespace": NS},
    "spec": {
        "endpointSelector": {"matchLabels": {"ktriage.io/quarantine": "web-1"}},
        "ingressDeny": [{"fromEntities": ["all"]}],
        "egressDeny": [{"toEntities": ["all"]}],
    },
}
QUARANTINE_CALICO = {
    "metadata": {"name": "ktriage-quarantine-web-1", "namespace": NS},
    "spec": {
        "order": 0,
        "selector": "ktriage.io/quarantine == 'web-1'",
        "types": ["Ingress", "Egress"],
        "ingress": [{"action": "Deny"}],
        "egress": [{"action": "Deny"}],
    },
}


def test_deny_all_networkpolicy_alone_isolates() -> None:
    verdict = judge(POD, NS, netpols=[QUARANTINE_NP])
    assert verdict.isolated
    assert verdict.words() == "no policy allows traffic to or from it"


def test_nothing_selecting_the_pod_leaves_both_directions_open() -> None:
    verdict = judge(POD, NS)
    assert not verdict.isolated
    assert verdict.open_directions() == [INGRESS, EGRESS]
    assert "all ingress is allowed" in verdict.words()


def test_hostile_allow_everything_policy_beats_a_plain_quarantine() -> None:
    verdict = judge(POD, NS, netpols=[QUARANTINE_NP, ALLOW_EVERYTHING_IN])
    assert not verdict.isolated
    assert verdict.allowing_policies() == ["NetworkPolicy allow-all"]
    assert "allows ingress from anywhere on all ports" in verdict.words()


def test_cilium_deny_wins_over_every_allow() -> None:
    allow_cnp = {
        "metadata": {"name": "allow-web", "namespace": NS},
        "spec": {"endpointSelector": {"matchLabels": {"app": "web"}}, "ingress": [{}]},
    }
    verdict = judge(POD, NS, netpols=[ALLOW_EVERYTHING_IN], cilium=[QUARANTINE_CNP, allow_cnp])
    assert verdict.isolated, verdict.words()
    assert verdict.closed[INGRESS] == "CiliumNetworkPolicy ktriage-quarantine-web-1"


def test_cilium_deny_of_one_port_does_not_close_the_direction() -> None:
    partial = {
        "metadata": {"name": "deny-80", "namespace": NS},
        "spec": {
            "endpointSelector": {},
            "ingressDeny": [{"fromEntities": ["all"], "toPorts": [{"ports": [{"port": "80"}]}]}],
        },
    }
    verdict = judge(POD, NS, netpols=[ALLOW_EVERYTHING_IN], cilium=[partial])
    assert not verdict.isolated
    assert INGRESS not in verdict.denied


def test_cilium_selector_prefixes_and_namespace_label() -> None:
    labels = {"app": "web", "io.kubernetes.pod.namespace": NS}
    assert cilium_selector_matches({"matchLabels": {"k8s:app": "web"}}, labels)
    assert cilium_selector_matches({"matchLabels": {"any:app": "web"}}, labels)
    assert cilium_selector_matches({"matchLabels": {"k8s:io.kubernetes.pod.namespace": NS}}, labels)
    assert not cilium_selector_matches({"matchLabels": {"reserved:host": ""}}, labels)
    assert cilium_selector_matches({}, labels)


def test_calico_deny_at_order_zero_beats_kubernetes_allows() -> None:
    verdict = judge(POD, NS, netpols=[ALLOW_EVERYTHING_IN], calico=[QUARANTINE_CALICO])
    assert verdict.isolated, verdict.words()
    assert verdict.denied[EGRESS].startswith("Calico NetworkPolicy ktriage-quarantine-web-1")


def test_hostile_calico_allow_ordered_before_the_deny_stays_open() -> None:
    sneaky = {
        "metadata": {"name": "aaa-allow", "namespace": NS},
        "spec": {"order": 0, "selector": "app == 'web'", "ingress": [{"action": "Allow"}]},
    }
    verdict = judge(POD, NS, calico=[QUARANTINE_CALICO, sneaky])
    assert not verdict.isolated
    assert "Calico NetworkPolicy aaa-allow (order 0) allows ingress" in verdict.words()


def test_calico_allow_after_the_deny_is_irrelevant() -> None:
    later = {
        "metadata": {"name": "later", "namespace": NS},
        "spec": {"order": 100, "selector": "all()", "ingress": [{"action": "Allow"}]},
    }
    assert judge(POD, NS, calico=[QUARANTINE_CALICO, later]).isolated


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("", True),
        ("all()", True),
        ("app == 'web'", True),
        ('app == "web"', True),
        ("app != 'web'", False),
        ("has(app) && !has(debug)", True),
        ("app in {'api', 'web'}", True),
        ("app not in {'api', 'web'}", False),
        ("(app == 'db' || tier == 'x') && has(app)", False),
        ("app starts with 'we'", True),
        ("app contains 'e'", True),
        ("missing != 'x'", True),
    ],
)
def test_calico_selectors(selector: str, expected: bool) -> None:
    assert calico_selector_matches(selector, {"app": "web"}) is expected


@pytest.mark.parametrize(
    "selector", ["app ==", "app === 'x'", "(app == 'x'", "app ~ 'x'", "&& app == 'x'", "'x'"]
)
def test_calico_selector_syntax_errors_raise(selector: str) -> None:
    with pytest.raises(SelectorError):
        calico_selector_matches(selector, {"app": "web"})


def test_hostile_deep_nesting_calico_selector_is_refused_not_crashed() -> None:
    deep = "!" * 5000 + "has(app)"
    with pytest.raises(SelectorError):
        calico_selector_matches(deep, {"app": "web"})
    nested = "(" * 200 + "all()" + ")" * 200
    with pytest.raises(SelectorError):
        calico_selector_matches(nested, {})


def test_hostile_unreadable_calico_policy_counts_as_open() -> None:
    bad = {
        "metadata": {"name": "weird", "namespace": NS},
        "spec": {"order": 0, "selector": "app =~ 'w.*'", "ingress": [{"action": "Allow"}]},
    }
    verdict = judge(POD, NS, calico=[QUARANTINE_CALICO, bad])
    assert not verdict.isolated
    assert "could not be evaluated" in verdict.words()


def test_hostile_unreadable_cilium_policy_counts_as_open() -> None:
    bad = {"metadata": {"name": "odd", "namespace": NS}, "spec": {"endpointSelector": "all"}}
    verdict = judge(POD, NS, netpols=[QUARANTINE_NP], cilium=[bad])
    assert not verdict.isolated and "CiliumNetworkPolicy odd" in verdict.words()


def test_hostile_pod_labels_that_look_like_selector_syntax() -> None:
    labels = {"app": "web' || all() || '", "ktriage.io/quarantine": "web-1"}
    assert not calico_selector_matches("app == 'web'", labels)
    assert judge(labels, NS, calico=[QUARANTINE_CALICO]).isolated


def test_calico_types_default() -> None:
    assert calico_types({}) == (INGRESS,)
    assert calico_types({"egress": [{"action": "Allow"}]}) == (EGRESS,)
    assert calico_types({"ingress": [{}], "egress": [{}]}) == (INGRESS, EGRESS)
    assert calico_types({"types": ["Egress"]}) == (EGRESS,)


def test_policies_of_other_namespaces_are_ignored() -> None:
    elsewhere = dict(QUARANTINE_CNP, metadata={"name": "x", "namespace": "other"})
    assert not judge(POD, NS, cilium=[elsewhere]).isolated
