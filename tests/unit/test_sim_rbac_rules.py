"""The sim's RBAC rule matching, case by case as kube-apiserver's RuleAllows."""

from __future__ import annotations

import pytest

from ktriage.sim.auth.authorization import Attributes
from ktriage.sim.auth.rbac import applies_to, rule_allows


def _res(verb: str, resource: str, sub: str = "", group: str = "", name: str = "") -> Attributes:
    return Attributes(verb, True, api_group=group, resource=resource, subresource=sub, name=name)


def _path(verb: str, path: str) -> Attributes:
    return Attributes(verb, False, path=path)


@pytest.mark.parametrize(
    ("rule", "attrs", "allowed"),
    [
        ({"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]}, _res("get", "pods"), True),
        ({"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]}, _res("list", "pods"), False),
        ({"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}, _res("delete", "x", "y", "g"),
         True),
        # A resource does not cover its subresources, nor the other way round.
        ({"verbs": ["create"], "apiGroups": [""], "resources": ["pods"]},
         _res("create", "pods", "exec"), False),
        ({"verbs": ["create"], "apiGroups": [""], "resources": ["pods/exec"]},
         _res("create", "pods", "exec"), True),
        ({"verbs": ["create"], "apiGroups": [""], "resources": ["pods/exec"]},
         _res("create", "pods"), False),
        ({"verbs": ["get"], "apiGroups": ["apps"], "resources": ["*/scale"]},
         _res("get", "deployments", "scale", "apps"), True),
        ({"verbs": ["get"], "apiGroups": ["apps"], "resources": ["*/scale"]},
         _res("get", "deployments", "status", "apps"), False),
        ({"verbs": ["get"], "apiGroups": ["apps"], "resources": ["deployments"]},
         _res("get", "deployments", group="extensions"), False),
        ({"verbs": ["get"], "apiGroups": [""], "resources": ["configmaps"],
          "resourceNames": ["a"]}, _res("get", "configmaps", name="a"), True),
        ({"verbs": ["get"], "apiGroups": [""], "resources": ["configmaps"],
          "resourceNames": ["a"]}, _res("get", "configmaps", name="b"), False),
        ({"verbs": ["list"], "apiGroups": [""], "resources": ["configmaps"],
          "resourceNames": ["a"]}, _res("list", "configmaps"), False),
        ({"verbs": ["get"], "nonResourceURLs": ["/apis/*"]}, _path("get", "/apis/apps/v1"), True),
        ({"verbs": ["get"], "nonResourceURLs": ["/apis"]}, _path("get", "/apis/apps"), False),
        ({"verbs": ["get"], "nonResourceURLs": ["*"]}, _path("get", "/metrics"), True),
        # A resource rule never allows a path, a path rule never a resource.
        ({"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}, _path("get", "/metrics"),
         False),
        ({"verbs": ["*"], "nonResourceURLs": ["*"]}, _res("get", "pods"), False),
    ],
)  # fmt: skip
def test_rule_allows_as_kube_apiserver(rule: dict, attrs: Attributes, allowed: bool) -> None:
    assert rule_allows(attrs, rule) is allowed


def test_service_account_subjects_default_to_the_binding_namespace() -> None:
    subject = {"kind": "ServiceAccount", "name": "runner"}
    assert applies_to(subject, "system:serviceaccount:ci:runner", [], "ci")
    assert not applies_to(subject, "system:serviceaccount:ci:runner", [], "prod")
    # In a ClusterRoleBinding a ServiceAccount subject must name its namespace.
    assert not applies_to(subject, "system:serviceaccount:ci:runner", [], "")


@pytest.mark.parametrize(
    "rule",
    [None, "x", 7, {"verbs": "get", "apiGroups": "", "resources": "pods"},
     {"verbs": [None, 3], "apiGroups": [""], "resources": ["pods"]},
     {"verbs": ["get"], "apiGroups": [""], "resources": ["pods"], "resourceNames": "web"}],
)  # fmt: skip
def test_hostile_malformed_rules_allow_nothing(rule: object) -> None:
    assert rule_allows(_res("get", "pods", name="other"), rule) is False  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "subject",
    [None, "alice", {"kind": "User"}, {"kind": "User", "name": 5}, {"kind": "Robot", "name": "a"},
     {"kind": "ServiceAccount", "name": "a", "namespace": 3}],
)  # fmt: skip
def test_hostile_malformed_subjects_match_nobody(subject: object) -> None:
    assert not applies_to(subject, "alice", ["alice"], "ns")  # type: ignore[arg-type]
