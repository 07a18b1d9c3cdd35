"""The sim's one LabelSelector matcher, as the workload controllers, role aggregation and
the disruption controller use it."""

from __future__ import annotations

from typing import Any

import pytest

from ktriage.sim.controllers.clusterroleaggregation import aggregated_rules
from ktriage.sim.controllers.disruption import budget_status
from ktriage.sim.controllers.workloads import selector_matches

LABELS = {"app": "web", "tier": "front"}


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ({"matchLabels": {"app": "web"}}, True),
        ({"matchLabels": {"app": "db"}}, False),
        ({"matchExpressions": [{"key": "tier", "operator": "In", "values": ["front"]}]}, True),
        ({"matchExpressions": [{"key": "gone", "operator": "In", "values": [None]}]}, False),
        ({"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["front"]}]}, False),
        ({"matchExpressions": [{"key": "app", "operator": "Exists"}]}, True),
        ({"matchExpressions": [{"key": "app", "operator": "DoesNotExist"}]}, False),
    ],
)
def test_selector_matches_labels_and_expressions(selector: dict, expected: bool) -> None:
    assert selector_matches(selector, LABELS) is expected
    assert selector_matches(selector, LABELS, empty_matches=True) is expected


def test_empty_selector_matches_only_where_the_caller_says_so() -> None:
    for empty in ({}, {"matchLabels": {}}, {"matchLabels": None, "matchExpressions": []}):
        assert not selector_matches(empty, LABELS)
        assert selector_matches(empty, LABELS, empty_matches=True)


@pytest.mark.parametrize(
    "selector",
    [
        None,
        "app=web",
        {"matchLabels": ["app", "web"]},
        {"matchExpressions": {"key": "app", "operator": "Exists"}},
        {"matchExpressions": ["app"]},
        {"matchExpressions": [{"key": "app", "operator": "Matches", "values": ["web"]}]},
    ],
)
def test_hostile_malformed_selector_matches_nothing(selector: Any) -> None:
    assert not selector_matches(selector, LABELS)
    assert not selector_matches(selector, LABELS, empty_matches=True)


def test_hostile_labels_that_are_not_a_mapping_match_no_label() -> None:
    assert not selector_matches({"matchLabels": {"app": "web"}}, ["app", "web"])
    assert selector_matches(
        {"matchExpressions": [{"key": "app", "operator": "DoesNotExist"}]}, "app=web"
    )


def _pod(name: str, labels: Any) -> dict:
    return {
        "metadata": {"name": name, "labels": labels},
        "status": {"conditions": [{"type": "Ready", "status": "True"}]},
    }


def test_hostile_budget_selector_counts_no_pod_instead_of_failing() -> None:
    pods = [_pod("a", {"app": "web"}), _pod("b", "not-a-map")]
    pdb = {"metadata": {"name": "x"}, "spec": {"selector": {"matchLabels": ["app"]}}}
    assert budget_status(pdb, pods, 0.0)["expectedPods"] == 0
    everyone = {"metadata": {"name": "y"}, "spec": {"selector": {}, "minAvailable": 1}}
    assert budget_status(everyone, pods, 0.0)["expectedPods"] == 2


def test_aggregation_skips_roles_an_unknown_operator_would_select() -> None:
    source = {"metadata": {"name": "src", "labels": LABELS}, "rules": [{"verbs": ["get"]}]}
    role = {
        "metadata": {"name": "agg"},
        "aggregationRule": {
            "clusterRoleSelectors": [
                {"matchExpressions": [{"key": "app", "operator": "Near", "values": ["web"]}]}
            ]
        },
    }
    assert aggregated_rules(role, [role, source]) == []
    role["aggregationRule"]["clusterRoleSelectors"] = [{"matchLabels": {"app": "web"}}]
    assert aggregated_rules(role, [role, source]) == [{"verbs": ["get"]}]
