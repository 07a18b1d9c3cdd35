"""NetworkPolicy evaluation for one pod, in pure Python.

NetworkPolicies add up: a pod selected by any policy of a given type is
isolated for that direction, and what is allowed is the union of every
selecting policy's rules. A deny-all quarantine therefore removes nothing that
another policy allows. This module answers, from plain dicts as the API returns
them: which policies select the pod, which of them still allow traffic to or
from it and how, and which of the pod's labels hold it in a selector (so that
removing them detaches it).

Label selector semantics follow Kubernetes: `matchLabels` and
`matchExpressions` are ANDed; `In`/`NotIn`/`Exists`/`DoesNotExist`; `NotIn`
and `DoesNotExist` match a pod without the key; an empty selector `{}` matches
everything.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

INGRESS = "Ingress"
EGRESS = "Egress"
_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")


class SelectorError(ValueError):
    """A selector Kubernetes itself would reject (unknown operator, bad values)."""


def selector_matches(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """Whether a LabelSelector dict selects an object with these labels.

    `None` (an absent selector) matches nothing; `{}` matches everything.
    Raises SelectorError for a selector the API server would not accept.
    """
    if selector is None:
        return False
    if not isinstance(selector, Mapping):
        raise SelectorError(f"selector is not an object: {selector!r}")
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or ():
        if not _expression_matches(expr, labels):
            return False
    return True


def _expression_matches(expr: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    if not isinstance(expr, Mapping):
        raise SelectorError(f"matchExpressions entry is not an object: {expr!r}")
    key = expr.get("key")
    op = expr.get("operator")
    values = expr.get("values") or []
    if not isinstance(key, str) or not key:
        raise SelectorError("matchExpressions entry without a key")
    if op not in _OPERATORS:
        raise SelectorError(f"unknown selector operator {op!r} for key {key!r}")
    if op in ("In", "NotIn") and not values:
        raise SelectorError(f"operator {op} needs values (key {key!r})")
    if op in ("Exists", "DoesNotExist") and values:
        raise SelectorError(f"operator {op} takes no values (key {key!r})")
    present = key in labels
    if op == "In":
        return present and labels[key] in values
    if op == "NotIn":
        return not present or labels[key] not in values
    if op == "Exists":
        return present
    return not present


def describe_selector(selector: Mapping[str, Any] | None) -> str:
    """`app=web, tier in (a,b), !debug`; `all` for an empty selector."""
    if selector is None:
        return "none"
    parts = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    for expr in selector.get("matchExpressions") or ():
        key, op = expr.get("key", "?"), expr.get("operator", "?")
        values = ",".join(str(v) for v in expr.get("values") or ())
        if op == "In":
            parts.append(f"{key} in ({values})")
        elif op == "NotIn":
            parts.append(f"{key} notin ({values})")
        elif op == "Exists":
            parts.append(key)
        elif op == "DoesNotExist":
            parts.append(f"!{key}")
        else:
            parts.append(f"{key} {op} ({values})")
    return ", ".join(parts) if parts else "all"


def policy_types(spec: Mapping[str, Any]) -> tuple[str, ...]:
    """The directions a policy isolates, with the API server's defaulting.

    Without `policyTypes`, a policy always affects ingress, and egress only
    when it has an `egress` section.
    """
    types = spec.get("policyTypes")
    if types:
        return tuple(t for t in (INGRESS, EGRESS) if t in types)
    return (INGRESS, EGRESS) if spec.get("egress") is not None else (INGRESS,)


def describe_peer(peer: Mapping[str, Any], policy_namespace: str) -> str:
    """One `from`/`to` entry in words."""
    block = peer.get("ipBlock")
    if block:
        text = f"IPs {block.get('cidr', '?')}"
        excepts = block.get("except") or []
        if excepts:
            text += " except " + ", ".join(str(e) for e in excepts)
        return text
    pods = peer.get("podSelector")
    namespaces = peer.get("namespaceSelector")
    if namespaces is None:
        where = f"namespace {policy_namespace}"
    elif describe_selector(namespaces) == "all":
        where = "any namespace"
    else:
        where = f"namespaces with {describe_selector(namespaces)}"
    if pods is None or describe_selector(pods) == "all":
        return f"all pods in {where}"
    return f"pods with {describe_selector(pods)} in {where}"


def describe_ports(ports: Sequence[Mapping[str, Any]] | None) -> str:
    if not ports:
        return "all ports"
    out = []
    for port in ports:
        proto = port.get("protocol", "TCP")
        number = port.get("port")
        end = port.get("endPort")
        if number is None:
            out.append(f"{proto}/any")
        elif end:
            out.append(f"{proto}/{number}-{end}")
        else:
            out.append(f"{proto}/{number}")
    return ", ".join(out)


@dataclass(frozen=True, slots=True)
class Allowance:
    """One rule of a selecting policy that lets traffic through."""

    direction: str  # "Ingress" | "Egress"
    peers: tuple[str, ...]  # in words; () means from/to anywhere
    ports: str
    everything: bool  # no peer and no port restriction at all

    def describe(self) -> str:
        side = "from" if self.direction == INGRESS else "to"
        who = "anywhere" if not self.peers else "; ".join(self.peers)
        verb = "ingress" if self.direction == INGRESS else "egress"
        return f"allows {verb} {side} {who} on {self.ports}"


@dataclass(frozen=True, slots=True)
class PolicyVerdict:
    """How one NetworkPolicy applies to the pod."""

    name: str
    selects: bool
    types: tuple[str, ...]
    allowances: tuple[Allowance, ...] = ()
    selects_all_pods: bool = False  # podSelector {}: a namespace-wide default
    error: str = ""  # the policy could not be evaluated (and may allow traffic)

    @property
    def allows_traffic(self) -> bool:
        return bool(self.allowances) or bool(self.error)

    def describe(self) -> str:
        if self.error:
            return (
                f"NetworkPolicy {self.name} could not be evaluated ({self.error}); "
                "it may allow traffic"
            )
        scope = " (selects every pod in the namespace)" if self.selects_all_pods else ""
        rules = "; ".join(a.describe() for a in self.allowances)
        return f"NetworkPolicy {self.name}{scope} {rules}"


@dataclass(slots=True)
class Evaluation:
    """Every policy in the namespace, judged against one pod."""

    verdicts: list[PolicyVerdict] = field(default_factory=list)

    @property
    def selecting(self) -> list[PolicyVerdict]:
        return [v for v in self.verdicts if v.selects]

    @property
    def allowing(self) -> list[PolicyVerdict]:
        """Selecting policies that still let traffic reach or leave the pod."""
        return [v for v in self.verdicts if v.selects and v.allows_traffic]

    def isolated(self, direction: str) -> bool:
        """Whether some selecting policy isolates this direction."""
        return any(direction in v.types for v in self.selecting)

    def warnings(self) -> list[str]:
        """Plain sentences naming each policy that still allows traffic."""
        return [v.describe() for v in self.allowing]


def evaluate_policy(
    policy: Mapping[str, Any], pod_labels: Mapping[str, str], namespace: str
) -> PolicyVerdict:
    meta = policy.get("metadata") or {}
    name = str(meta.get("name", "?"))
    spec = policy.get("spec") or {}
    try:
        types = policy_types(spec)
        pod_selector = spec.get("podSelector")
        if pod_selector is None:
            pod_selector = {}  # the API defaults a missing podSelector to {}
        if not selector_matches(pod_selector, pod_labels):
            return PolicyVerdict(name=name, selects=False, types=types)
        allowances: list[Allowance] = []
        for direction, rules_key, peers_key in (
            (INGRESS, "ingress", "from"),
            (EGRESS, "egress", "to"),
        ):
            if direction not in types:
                continue
            for rule in spec.get(rules_key) or ():
                rule = rule or {}
                peers = tuple(describe_peer(p or {}, namespace) for p in rule.get(peers_key) or ())
                ports = rule.get("ports")
                allowances.append(
                    Allowance(
                        direction=direction,
                        peers=peers,
                        ports=describe_ports(ports),
                        everything=not peers and not ports,
                    )
                )
        return PolicyVerdict(
            name=name,
            selects=True,
            types=types,
            allowances=tuple(allowances),
            selects_all_pods=describe_selector(pod_selector) == "all",
        )
    except (SelectorError, AttributeError, TypeError) as exc:
        # Conservative: a policy we cannot read might select the pod and allow traffic.
        return PolicyVerdict(name=name, selects=True, types=(), error=str(exc))


def evaluate(
    pod_labels: Mapping[str, str],
    namespace: str,
    policies: Iterable[Mapping[str, Any]],
    *,
    ignore: Iterable[str] = (),
) -> Evaluation:
    """Judge every policy of the pod's namespace (except those in `ignore`).

    Policies of other namespaces are skipped: they never select this pod.
    """
    skip = set(ignore)
    result = Evaluation()
    for policy in policies:
        meta = policy.get("metadata") or {}
        if meta.get("name") in skip:
            continue
        if meta.get("namespace") not in (None, namespace):
            continue
        result.verdicts.append(evaluate_policy(policy, pod_labels, namespace))
    return result


def holding_keys(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> set[str]:
    """The pod's label keys whose removal makes `selector` stop matching it.

    Only `matchLabels` and `In`/`Exists` expressions require a label; removing
    a key under `NotIn`/`DoesNotExist` would not break the match.
    """
    if not selector or not selector_matches(selector, labels):
        return set()
    keys = {k for k in (selector.get("matchLabels") or {}) if k in labels}
    for expr in selector.get("matchExpressions") or ():
        if expr.get("operator") in ("In", "Exists") and expr.get("key") in labels:
            keys.add(expr["key"])
    return keys


def service_selector(selector: Mapping[str, str] | None) -> dict[str, Any] | None:
    """A Service's plain `spec.selector` map as a LabelSelector (None: selects nothing)."""
    if not selector:
        return None
    return {"matchLabels": dict(selector)}
