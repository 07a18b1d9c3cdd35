"""The RBAC authorizer: decisions from the Roles, ClusterRoles and their bindings in the
store, matched as `k8s.io/kubernetes/plugin/pkg/auth/authorizer/rbac` matches them.

- `system:masters` is allowed everything first, without a reason (kube-apiserver's
  privileged-group authorizer runs before RBAC);
- ClusterRoleBindings are visited first, then the RoleBindings of the request's namespace;
  a RoleBinding to a ClusterRole grants that role's rules in its namespace only;
- a rule allows a request when verb, API group, resource (`*`, `pods/exec`,
  `*/scale`), resourceName and, for non-resource requests, the URL (`/apis/*`) match;
- a binding to a role that does not exist grants nothing and is reported in the reason
  (`RBAC: clusterrole.rbac.authorization.k8s.io "x" not found`), as kube-apiserver does.

The authorizer reads the store at every request, so a new binding takes effect at once.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

from ktriage.sim.auth.authorization import Attributes, Decision
from ktriage.sim.storage.store import ClusterStore

RBAC = "rbac.authorization.k8s.io/v1"
PRIVILEGED_GROUP = "system:masters"
SA_PREFIX = "system:serviceaccount:"


class Subject(Protocol):
    """Who asks: a user name and all of its groups."""

    @property
    def username(self) -> str: ...

    @property
    def all_groups(self) -> list[str]: ...


@dataclass(frozen=True)
class Grant:
    """One rule and the binding that grants it (its description is the allow reason)."""

    source: str
    rule: dict


def _str_list(value: object) -> list[str]:
    if not isinstance(value, list):
        return []
    return [v for v in value if isinstance(v, str)]


def verb_matches(rule: dict, verb: str) -> bool:
    return any(v in ("*", verb) for v in _str_list(rule.get("verbs")))


def api_group_matches(rule: dict, group: str) -> bool:
    return any(g in ("*", group) for g in _str_list(rule.get("apiGroups")))


def resource_matches(rule: dict, combined: str, subresource: str) -> bool:
    for resource in _str_list(rule.get("resources")):
        if resource in ("*", combined):
            return True
        # `*/scale` matches the scale subresource of every resource.
        if subresource and resource == "*/" + subresource:
            return True
    return False


def resource_name_matches(rule: dict, name: str) -> bool:
    names = rule.get("resourceNames")
    if names is None or names == []:
        return True
    # A malformed list narrows to nothing rather than widening to every name.
    return isinstance(names, list) and name in _str_list(names)


def non_resource_url_matches(rule: dict, path: str) -> bool:
    for url in _str_list(rule.get("nonResourceURLs")):
        if url in ("*", path):
            return True
        if url.endswith("*") and path.startswith(url.rstrip("*")):
            return True
    return False


def rule_allows(attrs: Attributes, rule: dict) -> bool:
    """Whether one PolicyRule allows the request (RBAC's RuleAllows)."""
    if not isinstance(rule, dict):
        return False
    if attrs.resource_request:
        combined = attrs.resource + (f"/{attrs.subresource}" if attrs.subresource else "")
        return (
            verb_matches(rule, attrs.verb)
            and api_group_matches(rule, attrs.api_group)
            and resource_matches(rule, combined, attrs.subresource)
            and resource_name_matches(rule, attrs.name)
        )
    return verb_matches(rule, attrs.verb) and non_resource_url_matches(rule, attrs.path)


def applies_to(subject: dict, username: str, groups: list[str], namespace: str) -> bool:
    """Whether a binding's subject names this user (RBAC's appliesToUser)."""
    if not isinstance(subject, dict):
        return False
    kind = subject.get("kind")
    name = subject.get("name")
    if not isinstance(name, str):
        return False
    if kind == "User":
        return username == name
    if kind == "Group":
        return name in groups
    if kind == "ServiceAccount":
        # A subject without a namespace means the binding's own namespace.
        sa_namespace = subject.get("namespace") or namespace
        if not isinstance(sa_namespace, str) or not sa_namespace:
            return False
        return username == f"{SA_PREFIX}{sa_namespace}:{name}"
    return False


def describe_subject(subject: dict, binding_namespace: str) -> str:
    kind, name = subject.get("kind"), subject.get("name")
    if kind == "ServiceAccount":
        return f'{kind} "{name}/{subject.get("namespace") or binding_namespace}"'
    return f'{kind} "{name}"'


class RBACAuthorizer:
    """Decides every request and review from the RBAC objects in the store."""

    def __init__(self, store: ClusterStore) -> None:
        self.store = store

    def _objects(self, kind: str, namespace: str | None = None) -> list[dict]:
        objs, _ = self.store.snapshot(RBAC, kind, namespace)
        return objs

    def _role_rules(self, ref: dict, namespace: str) -> tuple[list[dict], str | None]:
        kind, name = ref.get("kind"), ref.get("name")
        if kind == "ClusterRole":
            role = self.store.peek(RBAC, "ClusterRole", None, str(name))
            missing = f'clusterrole.rbac.authorization.k8s.io "{name}" not found'
        elif kind == "Role" and namespace:
            role = self.store.peek(RBAC, "Role", namespace, str(name))
            missing = f'role.rbac.authorization.k8s.io "{name}" not found'
        else:
            return [], f'unsupported role reference kind: "{kind}"'
        if role is None:
            return [], missing
        rules = role.get("rules")
        return [r for r in rules if isinstance(r, dict)] if isinstance(rules, list) else [], None

    def _visit(self, who: Subject, namespace: str) -> Iterator[tuple[Grant | None, str | None]]:
        """Every rule granted to `who` in `namespace` (cluster-wide first), or an error."""
        username, groups = who.username, who.all_groups
        for binding in self._objects("ClusterRoleBinding"):
            subject = self._matching_subject(binding, username, groups, "")
            if subject is None:
                continue
            ref = binding.get("roleRef") or {}
            rules, error = self._role_rules(ref, "")
            if error:
                yield None, error
                continue
            source = (
                f'ClusterRoleBinding "{binding["metadata"]["name"]}" of {ref.get("kind")} '
                f'"{ref.get("name")}" to {describe_subject(subject, "")}'
            )
            for rule in rules:
                yield Grant(source, rule), None
        if not namespace:
            return
        for binding in self._objects("RoleBinding", namespace):
            subject = self._matching_subject(binding, username, groups, namespace)
            if subject is None:
                continue
            ref = binding.get("roleRef") or {}
            rules, error = self._role_rules(ref, namespace)
            if error:
                yield None, error
                continue
            source = (
                f'RoleBinding "{binding["metadata"]["name"]}/{namespace}" of {ref.get("kind")} '
                f'"{ref.get("name")}" to {describe_subject(subject, namespace)}'
            )
            for rule in rules:
                yield Grant(source, rule), None

    @staticmethod
    def _matching_subject(
        binding: dict, username: str, groups: list[str], namespace: str
    ) -> dict | None:
        subjects = binding.get("subjects")
        if not isinstance(subjects, list):
            return None
        return next((s for s in subjects if applies_to(s, username, groups, namespace)), None)

    def authorize(self, who: Subject, attrs: Attributes) -> Decision:
        """Allowed or not, with the reason kube-apiserver records."""
        if PRIVILEGED_GROUP in who.all_groups:
            return Decision(True, "")
        errors: list[str] = []
        for grant, error in self._visit(who, attrs.namespace):
            if error is not None:
                errors.append(error)
            elif grant is not None and rule_allows(attrs, grant.rule):
                return Decision(True, f"RBAC: allowed by {grant.source}")
        if errors:
            joined = errors[0] if len(errors) == 1 else "[" + ", ".join(errors) + "]"
            return Decision(False, f"RBAC: {joined}")
        return Decision(False, "")

    def rules(self, who: Subject, namespace: str) -> tuple[list[dict], list[dict], list[str]]:
        """(resourceRules, nonResourceRules, errors) as a SelfSubjectRulesReview lists them."""
        resource_rules: list[dict] = []
        non_resource_rules: list[dict] = []
        errors: list[str] = []
        for grant, error in self._visit(who, namespace):
            if error is not None:
                errors.append(error)
                continue
            assert grant is not None
            rule = grant.rule
            verbs = _str_list(rule.get("verbs"))
            if _str_list(rule.get("resources")):
                out: dict = {"verbs": verbs}
                for key in ("apiGroups", "resources", "resourceNames"):
                    if _str_list(rule.get(key)):
                        out[key] = _str_list(rule.get(key))
                resource_rules.append(out)
            if _str_list(rule.get("nonResourceURLs")):
                non_resource_rules.append(
                    {"verbs": verbs, "nonResourceURLs": _str_list(rule.get("nonResourceURLs"))}
                )
        return resource_rules, non_resource_rules, errors
