"""NetworkPolicy evaluation: selector semantics, defaulting, what still allows traffic."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ktriage.core.netpol import (
    EGRESS,
    INGRESS,
    SelectorError,
    describe_selector,
    evaluate,
    holding_keys,
    policy_types,
    selector_matches,
    service_selector,
)

POD = {"app": "web", "tier": "front", "pod-template-hash": "7d9f"}


def policy(name: str, spec: dict, namespace: str = "shop") -> dict:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


# ---- selectors ---------------------------------------------------------------


def test_empty_selector_matches_everything_and_none_matches_nothing() -> None:
    assert selector_matches({}, POD)
    assert selector_matches({}, {})
    assert not selector_matches(None, POD)


def test_match_labels_are_anded() -> None:
    assert selector_matches({"matchLabels": {"app": "web", "tier": "front"}}, POD)
    assert not selector_matches({"matchLabels": {"app": "web", "tier": "back"}}, POD)
    assert not selector_matches({"matchLabels": {"missing": "x"}}, POD)


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ({"key": "app", "operator": "In", "values": ["web", "api"]}, True),
        ({"key": "app", "operator": "In", "values": ["api"]}, False),
        ({"key": "absent", "operator": "In", "values": ["x"]}, False),
        ({"key": "app", "operator": "NotIn", "values": ["api"]}, True),
        ({"key": "app", "operator": "NotIn", "values": ["web"]}, False),
        # NotIn and DoesNotExist match an object without the key at all.
        ({"key": "absent", "operator": "NotIn", "values": ["x"]}, True),
        ({"key": "tier", "operator": "Exists"}, True),
        ({"key": "absent", "operator": "Exists"}, False),
        ({"key": "absent", "operator": "DoesNotExist"}, True),
        ({"key": "tier", "operator": "DoesNotExist"}, False),
    ],
)
def test_match_expressions(expr: dict, expected: bool) -> None:
    assert selector_matches({"matchExpressions": [expr]}, POD) is expected


def test_labels_and_expressions_are_anded() -> None:
    sel = {
        "matchLabels": {"app": "web"},
        "matchExpressions": [{"key": "tier", "operator": "In", "values": ["back"]}],
    }
    assert not selector_matches(sel, POD)


@pytest.mark.parametrize(
    "expr",
    [
        {"key": "app", "operator": "Equals", "values": ["web"]},
        {"key": "app", "operator": "In", "values": []},
        {"key": "app", "operator": "Exists", "values": ["web"]},
        {"operator": "Exists"},
    ],
)
def test_invalid_expressions_raise(expr: dict) -> None:
    with pytest.raises(SelectorError):
        selector_matches({"matchExpressions": [expr]}, POD)


def test_describe_selector() -> None:
    assert describe_selector({}) == "all"
    sel = {
        "matchLabels": {"app": "web"},
        "matchExpressions": [
            {"key": "tier", "operator": "In", "values": ["a", "b"]},
            {"key": "debug", "operator": "DoesNotExist"},
        ],
    }
    assert describe_selector(sel) == "app=web, tier in (a,b), !debug"


labels_st = st.dictionaries(
    st.sampled_from(["a", "b", "c"]), st.sampled_from(["1", "2"]), max_size=3
)


@given(labels_st, labels_st)
def test_match_labels_equals_subset(selector_labels: dict, labels: dict) -> None:
    expected = all(labels.get(k) == v for k, v in selector_labels.items())
    assert selector_matches({"matchLabels": selector_labels}, labels) is expected


@given(
    labels_st,
    st.sampled_from(["a", "b", "c"]),
    st.lists(st.sampled_from(["1", "2"]), min_size=1, max_size=2),
)
def test_in_and_notin_are_complements(labels: dict, key: str, values: list) -> None:
    inside = selector_matches(
        {"matchExpressions": [{"key": key, "operator": "In", "values": values}]}, labels
    )
    outside = selector_matches(
        {"matchExpressions": [{"key": key, "operator": "NotIn", "values": values}]}, labels
    )
    assert inside != outside


# ---- policy types ------------------------------------------------------------


def test_policy_types_default_like_the_api_server() -> None:
    assert policy_types({"podSelector": {}}) == (INGRESS,)
    assert policy_types({"podSelector": {}, "egress": []}) == (INGRESS, EGRESS)
    assert policy_types({"policyTypes": ["Egress"]}) == (EGRESS,)


# ---- evaluation --------------------------------------------------------------


def test_deny_all_policy_selects_but_allows_nothing() -> None:
    deny = policy("deny", {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]})
    result = evaluate(POD, "shop", [deny])
    assert [v.name for v in result.selecting] == ["deny"]
    assert result.allowing == []
    assert result.isolated(INGRESS) and result.isolated(EGRESS)
    assert result.warnings() == []


def test_policy_for_other_pods_is_ignored() -> None:
    other = policy("db-only", {"podSelector": {"matchLabels": {"app": "db"}}, "ingress": [{}]})
    result = evaluate(POD, "shop", [other])
    assert result.selecting == [] and result.allowing == []
    assert not result.isolated(INGRESS)


def test_policy_in_another_namespace_is_skipped() -> None:
    elsewhere = policy("allow-all", {"podSelector": {}, "ingress": [{}]}, namespace="other")
    assert evaluate(POD, "shop", [elsewhere]).verdicts == []


def test_allowing_policy_is_named_with_its_peers_and_ports() -> None:
    allow = policy(
        "allow-frontend",
        {
            "podSelector": {"matchLabels": {"app": "web"}},
            "ingress": [
                {
                    "from": [
                        {"podSelector": {"matchLabels": {"role": "lb"}}},
                        {"namespaceSelector": {"matchLabels": {"team": "edge"}}},
                        {"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.1.0.0/16"]}},
                    ],
                    "ports": [{"protocol": "TCP", "port": 8080}],
                }
            ],
        },
    )
    result = evaluate(POD, "shop", [allow])
    assert [v.name for v in result.allowing] == ["allow-frontend"]
    (warning,) = result.warnings()
    assert "allow-frontend" in warning
    assert "pods with role=lb in namespace shop" in warning
    assert "all pods in namespaces with team=edge" in warning
    assert "IPs 10.0.0.0/8 except 10.1.0.0/16" in warning
    assert "TCP/8080" in warning
    assert "ingress" in warning


def test_namespace_wide_allow_all_is_called_out() -> None:
    allow_all = policy("allow-all", {"podSelector": {}, "ingress": [{}], "egress": [{}]})
    result = evaluate(POD, "shop", [allow_all])
    (verdict,) = result.allowing
    assert verdict.selects_all_pods
    assert {a.direction for a in verdict.allowances} == {INGRESS, EGRESS}
    assert all(a.everything for a in verdict.allowances)
    text = verdict.describe()
    assert "selects every pod in the namespace" in text
    assert "allows ingress from anywhere on all ports" in text
    assert "allows egress to anywhere on all ports" in text


def test_egress_rules_ignored_when_policy_does_not_cover_egress() -> None:
    # policyTypes says Ingress only: its egress section has no effect.
    spec = {"podSelector": {}, "policyTypes": ["Ingress"], "egress": [{}]}
    result = evaluate(POD, "shop", [policy("ingress-only", spec)])
    assert result.allowing == []
    assert not result.isolated(EGRESS)


def test_ignore_skips_our_own_quarantine_policy() -> None:
    ours = policy("ktriage-quarantine-web", {"podSelector": {}, "ingress": [{}]})
    assert evaluate(POD, "shop", [ours], ignore=["ktriage-quarantine-web"]).verdicts == []


def test_unreadable_policy_is_treated_as_possibly_allowing() -> None:
    bad = policy(
        "weird",
        {
            "podSelector": {
                "matchExpressions": [{"key": "app", "operator": "Like", "values": ["w"]}]
            }
        },
    )
    result = evaluate(POD, "shop", [bad])
    (verdict,) = result.allowing
    assert verdict.error and "could not be evaluated" in verdict.describe()


def test_match_expression_policy_selects_via_notin() -> None:
    spec = {
        "podSelector": {
            "matchExpressions": [{"key": "app", "operator": "NotIn", "values": ["db"]}]
        },
        "egress": [{"to": [{"namespaceSelector": {}}], "ports": [{"port": 53, "protocol": "UDP"}]}],
    }
    (verdict,) = evaluate(POD, "shop", [policy("dns", spec)]).allowing
    assert verdict.describe().endswith("allows egress to all pods in any namespace on UDP/53")


# ---- detaching -----------------------------------------------------------------


def test_holding_keys_are_the_labels_a_selector_needs() -> None:
    rs = {"matchLabels": {"app": "web", "pod-template-hash": "7d9f"}}
    assert holding_keys(rs, POD) == {"app", "pod-template-hash"}
    expr = {
        "matchExpressions": [
            {"key": "tier", "operator": "Exists"},
            {"key": "debug", "operator": "DoesNotExist"},
            {"key": "app", "operator": "NotIn", "values": ["db"]},
        ]
    }
    assert holding_keys(expr, POD) == {"tier"}
    assert holding_keys({"matchLabels": {"app": "db"}}, POD) == set()
    assert holding_keys({}, POD) == set()


def test_removing_holding_keys_breaks_the_match() -> None:
    sel = {
        "matchLabels": {"app": "web"},
        "matchExpressions": [{"key": "tier", "operator": "In", "values": ["front"]}],
    }
    keys = holding_keys(sel, POD)
    assert not selector_matches(sel, {k: v for k, v in POD.items() if k not in keys})


def test_service_selector() -> None:
    assert service_selector(None) is None
    assert service_selector({}) is None
    assert selector_matches(service_selector({"app": "web"}), POD)
