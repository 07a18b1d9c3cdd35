"""What is true of one pod's network, from every policy kind that governs it.

`judge` reads, as plain dicts from the API, the namespace's Kubernetes
NetworkPolicies and, where the cluster serves them, Cilium's
CiliumNetworkPolicies (`cilium.io/v2`) and Calico's NetworkPolicies
(`projectcalico.org/v3`), and says for each direction whether something closes
it and what still lets traffic through:

- Kubernetes NetworkPolicies only add allows: a direction is closed once any
  selecting policy covers it, and every selecting policy's rules stay open.
- Cilium deny rules (`ingressDeny`/`egressDeny`) win over every allow, of any
  kind; a deny of `all` entities closes the direction whatever else allows.
- Calico policies are ordered (`order`, lowest first, then by name); the
  first rule that matches decides. A Deny of everything closes the direction
  for every policy after it, including the Kubernetes NetworkPolicies, which
  Calico places at order 1000. An Allow or Pass before it stays open.

What cannot be read (an unknown selector syntax, a malformed rule) counts as
possibly open: a claim of isolation must never rest on a guess.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ktriage.core.netpol import (
    EGRESS,
    INGRESS,
    SelectorError,
    describe_ports,
    evaluate,
    selector_matches,
)

DIRECTIONS = (INGRESS, EGRESS)
CILIUM_NAMESPACE_LABEL = "io.kubernetes.pod.namespace"
CALICO_NAMESPACE_LABEL = "projectcalico.org/namespace"
# Calico renders each Kubernetes NetworkPolicy as a policy of this order.
CALICO_K8S_ORDER = 1000.0
# Bounds for selectors written by someone else (an attacker may create policies too).
MAX_SELECTOR_CHARS = 4096
MAX_SELECTOR_DEPTH = 40


def _name(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("name", "?"))


def _in_namespace(obj: Mapping[str, Any], namespace: str) -> bool:
    return (obj.get("metadata") or {}).get("namespace") in (None, namespace)


# ---- Cilium -------------------------------------------------------------------


def cilium_labels(pod_labels: Mapping[str, str], namespace: str) -> dict[str, str]:
    """The labels a Cilium endpoint selector sees for a pod (its own, plus its namespace)."""
    labels = dict(pod_labels)
    labels[CILIUM_NAMESPACE_LABEL] = namespace
    return labels


def _cilium_key(key: str) -> str | None:
    """A selector key without its source prefix; None for sources no pod label has."""
    source, sep, rest = key.partition(":")
    if not sep:
        return key
    if source in ("k8s", "any"):
        return rest
    return None  # reserved:, cidr:, fqdn:... never a pod's label


def cilium_selector_matches(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """Whether a Cilium EndpointSelector selects an endpoint with these labels."""
    if selector is None:
        return False
    if not isinstance(selector, Mapping):
        raise SelectorError(f"endpointSelector is not an object: {selector!r}")
    plain: dict[str, Any] = {}
    for key, value in (selector.get("matchLabels") or {}).items():
        stripped = _cilium_key(str(key))
        if stripped is None:
            return False
        plain[stripped] = value
    exprs = []
    for expr in selector.get("matchExpressions") or ():
        if not isinstance(expr, Mapping):
            raise SelectorError(f"matchExpressions entry is not an object: {expr!r}")
        stripped = _cilium_key(str(expr.get("key", "")))
        if stripped is None:
            if expr.get("operator") in ("In", "Exists"):
                return False
            continue
        exprs.append({**expr, "key": stripped})
    return selector_matches({"matchLabels": plain, "matchExpressions": exprs}, labels)


def _cilium_rules(policy: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    spec = policy.get("spec")
    rules = [spec] if isinstance(spec, Mapping) else []
    rules += [r for r in policy.get("specs") or () if isinstance(r, Mapping)]
    return rules


def _entities_all(entities: Any) -> bool:
    names = {str(e) for e in entities or ()}
    return "all" in names or {"world", "cluster"} <= names


def _cilium_denies_all(rule: Mapping[str, Any], direction: str) -> bool:
    """A deny rule with no port restriction against every entity."""
    peers = "fromEntities" if direction == INGRESS else "toEntities"
    if rule.get("toPorts") or rule.get("icmps"):
        return False
    return _entities_all(rule.get(peers))


def _cilium_peer_words(rule: Mapping[str, Any], direction: str) -> str:
    side = "from" if direction == INGRESS else "to"
    parts = []
    for key in ("Entities", "Endpoints", "CIDR", "CIDRSet", "FQDNs", "Services", "Groups", "Nodes"):
        value = rule.get(side + key)
        if value:
            shown = ", ".join(str(v) for v in value) if key == "Entities" else f"{len(value)}"
            parts.append(f"{side}{key}: {shown}")
    ports = []
    for port_rule in rule.get("toPorts") or ():
        ports += list((port_rule or {}).get("ports") or ())
    where = "; ".join(parts) if parts else "anywhere"
    return f"{where} on {describe_ports(ports)}"


# ---- Calico -------------------------------------------------------------------

_TOKEN = re.compile(
    r"\s*(?:(?P<op>==|!=|&&|\|\||!|\(|\)|\{|\}|,)|(?P<str>'[^']*'|\"[^\"]*\")"
    r"|(?P<word>[A-Za-z0-9_./\-]+))"
)


def _tokens(text: str) -> list[str]:
    out: list[str] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            raise SelectorError(f"cannot read the Calico selector at {text[pos : pos + 20]!r}")
        out.append(m.group(m.lastgroup or "word"))
        pos = m.end()
    return out


class _CalicoParser:
    """A recursive-descent reader of Calico's selector language (the parts in use:
    ==, !=, in, not in, has(), all(), !, &&, ||, parentheses, contains/starts/ends with)."""

    def __init__(self, text: str, labels: Mapping[str, str]) -> None:
        if len(text) > MAX_SELECTOR_CHARS:
            raise SelectorError(f"Calico selector longer than {MAX_SELECTOR_CHARS} characters")
        self.toks = _tokens(text)
        self.i = 0
        self.labels = labels
        self.depth = 0

    def peek(self, ahead: int = 0) -> str:
        j = self.i + ahead
        return self.toks[j] if j < len(self.toks) else ""

    def take(self, want: str | None = None) -> str:
        tok = self.peek()
        if not tok or (want is not None and tok != want):
            raise SelectorError(f"Calico selector: expected {want or 'more'}, found {tok!r}")
        self.i += 1
        return tok

    def run(self) -> bool:
        if not self.toks:
            return True  # an empty selector selects everything
        value = self.or_()
        if self.i != len(self.toks):
            raise SelectorError(f"Calico selector: unexpected {self.peek()!r}")
        return value

    def or_(self) -> bool:
        value = self.and_()
        while self.peek() == "||":
            self.take()
            value = self.and_() or value
        return value

    def and_(self) -> bool:
        value = self.unary()
        while self.peek() == "&&":
            self.take()
            value = self.unary() and value
        return value

    def unary(self) -> bool:
        self.depth += 1
        if self.depth > MAX_SELECTOR_DEPTH:
            raise SelectorError("Calico selector nested too deeply")
        try:
            if self.peek() == "!":
                self.take()
                return not self.unary()
            return self.primary()
        finally:
            self.depth -= 1

    @staticmethod
    def _literal(tok: str) -> str:
        if len(tok) >= 2 and tok[0] == tok[-1] and tok[0] in "'\"":
            return tok[1:-1]
        raise SelectorError(f"Calico selector: expected a quoted value, found {tok!r}")

    def primary(self) -> bool:
        tok = self.peek()
        if tok == "(":
            self.take()
            value = self.or_()
            self.take(")")
            return value
        if tok in ("all", "global") and self.peek(1) == "(":
            self.take()
            self.take("(")
            self.take(")")
            return True
        if tok == "has" and self.peek(1) == "(":
            self.take()
            self.take("(")
            key = self.take()
            self.take(")")
            return key in self.labels
        key = self.take()
        if key[:1] in "'\"(){},!" or key in ("&&", "||", "==", "!="):
            raise SelectorError(f"Calico selector: expected a label name, found {key!r}")
        op = self.take()
        present = key in self.labels
        actual = self.labels.get(key, "")
        # Every operand is read before it is used: `and`/`or` must not skip tokens.
        if op in ("==", "!=", "contains"):
            literal = self._literal(self.take())
            if op == "==":
                return present and actual == literal
            if op == "!=":
                return not present or actual != literal
            return present and literal in actual
        if op == "in":
            values = self._set()
            return present and actual in values
        if op == "not" and self.peek() == "in":
            self.take()
            values = self._set()
            return not present or actual not in values
        if op in ("starts", "ends") and self.peek() == "with":
            self.take()
            literal = self._literal(self.take())
            if not present:
                return False
            return actual.startswith(literal) if op == "starts" else actual.endswith(literal)
        raise SelectorError(f"Calico selector: unknown operator {op!r}")

    def _set(self) -> set[str]:
        self.take("{")
        values: set[str] = set()
        while self.peek() != "}":
            values.add(self._literal(self.take()))
            if self.peek() == ",":
                self.take()
        self.take("}")
        return values


def calico_selector_matches(selector: Any, labels: Mapping[str, str]) -> bool:
    """Whether a Calico selector expression selects an endpoint with these labels."""
    if selector is None:
        return True
    if not isinstance(selector, str):
        raise SelectorError(f"Calico selector is not a string: {selector!r}")
    return _CalicoParser(selector, labels).run()


def calico_labels(pod_labels: Mapping[str, str], namespace: str) -> dict[str, str]:
    labels = dict(pod_labels)
    labels[CALICO_NAMESPACE_LABEL] = namespace
    labels["projectcalico.org/orchestrator"] = "k8s"
    return labels


def calico_types(spec: Mapping[str, Any]) -> tuple[str, ...]:
    """Calico's defaulting: Ingress unless the policy has egress rules only."""
    types = spec.get("types")
    if types:
        return tuple(t for t in DIRECTIONS if t in types)
    has_in, has_out = bool(spec.get("ingress")), bool(spec.get("egress"))
    if has_out and not has_in:
        return (EGRESS,)
    return (INGRESS, EGRESS) if has_out else (INGRESS,)


def calico_order(spec: Mapping[str, Any]) -> float:
    """A policy's order; none means last."""
    order = spec.get("order")
    if order is None:
        return math.inf
    value = float(order)
    if math.isnan(value):
        raise SelectorError("Calico order is not a number")
    return value


_MATCH_KEYS = ("source", "destination", "protocol", "notProtocol", "icmp", "notICMP", "http")


def _calico_matches_everything(rule: Mapping[str, Any]) -> bool:
    return not any(rule.get(k) for k in _MATCH_KEYS) and not rule.get("ipVersion")


def calico_deny_all_rules() -> list[dict[str, str]]:
    """The rule list that denies every packet of one direction."""
    return [{"action": "Deny"}]


# ---- the verdict --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Opening:
    """Something that still lets traffic reach or leave the pod."""

    direction: str
    policy: str  # `NetworkPolicy allow-web`, `CiliumNetworkPolicy x`, ...
    text: str  # one sentence

    @property
    def short(self) -> str:
        return self.policy


@dataclass(slots=True)
class NetworkVerdict:
    """Per direction, what closes it (if anything) and what still lets traffic through."""

    closed: dict[str, str] = field(default_factory=dict)  # direction -> the policy closing it
    openings: list[Opening] = field(default_factory=list)
    # Directions closed by a deny that overrides allows (Cilium deny, Calico ordered Deny).
    denied: dict[str, str] = field(default_factory=dict)

    @property
    def isolated(self) -> bool:
        return all(d in self.closed for d in DIRECTIONS) and not self.openings

    def open_directions(self) -> list[str]:
        return [d for d in DIRECTIONS if d not in self.closed]

    def problems(self) -> list[str]:
        """Plain sentences: every way traffic still gets through."""
        out = [o.text for o in self.openings]
        for direction in self.open_directions():
            word = direction.lower()
            out.append(f"no policy isolates its {word}: all {word} is allowed")
        return out

    def allowing_policies(self) -> list[str]:
        return list(dict.fromkeys(o.policy for o in self.openings))

    def words(self) -> str:
        if self.isolated:
            return "no policy allows traffic to or from it"
        return "; ".join(self.problems())


def _k8s_part(
    verdict: NetworkVerdict, pod_labels: Mapping[str, str], namespace: str, netpols: Iterable[Any]
) -> None:
    for v in evaluate(pod_labels, namespace, netpols).selecting:
        label = f"NetworkPolicy {v.name}"
        for direction in v.types:
            verdict.closed.setdefault(direction, label)
        if v.error:
            for direction in DIRECTIONS:
                verdict.openings.append(Opening(direction, label, v.describe()))
            continue
        for allowance in v.allowances:
            verdict.openings.append(
                Opening(allowance.direction, label, f"{label} {allowance.describe()}")
            )


def _cilium_part(
    verdict: NetworkVerdict,
    pod_labels: Mapping[str, str],
    namespace: str,
    policies: Iterable[Any],
) -> None:
    labels = cilium_labels(pod_labels, namespace)
    for policy in policies:
        if not isinstance(policy, Mapping) or not _in_namespace(policy, namespace):
            continue
        label = f"CiliumNetworkPolicy {_name(policy)}"
        try:
            for rule in _cilium_rules(policy):
                if rule.get("nodeSelector") is not None:
                    continue  # a host policy: not about pods
                if not cilium_selector_matches(rule.get("endpointSelector"), labels):
                    continue
                for direction, allow_key, deny_key in (
                    (INGRESS, "ingress", "ingressDeny"),
                    (EGRESS, "egress", "egressDeny"),
                ):
                    if rule.get(allow_key) is not None or rule.get(deny_key) is not None:
                        verdict.closed.setdefault(direction, label)
                    for deny in rule.get(deny_key) or ():
                        if isinstance(deny, Mapping) and _cilium_denies_all(deny, direction):
                            verdict.denied.setdefault(direction, label)
                    verb = "ingress" if direction == INGRESS else "egress"
                    for allow in rule.get(allow_key) or ():
                        allow = allow if isinstance(allow, Mapping) else {}
                        text = f"{label} allows {verb} {_cilium_peer_words(allow, direction)}"
                        verdict.openings.append(Opening(direction, label, text))
        except (SelectorError, AttributeError, TypeError, ValueError) as exc:
            for direction in DIRECTIONS:
                text = f"{label} could not be evaluated ({exc}); it may allow traffic"
                verdict.openings.append(Opening(direction, label, text))


def _calico_part(
    verdict: NetworkVerdict,
    pod_labels: Mapping[str, str],
    namespace: str,
    policies: Iterable[Any],
) -> dict[str, float]:
    """Calico's ordered evaluation; returns, per direction, the order of the first deny-all."""
    labels = calico_labels(pod_labels, namespace)
    ordered: list[tuple[float, str, Mapping[str, Any]]] = []
    for policy in policies:
        if not isinstance(policy, Mapping) or not _in_namespace(policy, namespace):
            continue
        spec = policy.get("spec") or {}
        label = f"Calico NetworkPolicy {_name(policy)}"
        try:
            if not isinstance(spec, Mapping):
                raise SelectorError("spec is not an object")
            order = calico_order(spec)
            # (A serviceAccountSelector narrows it further: judged as if it applied.)
            if not calico_selector_matches(spec.get("selector"), labels):
                continue
        except (SelectorError, TypeError, ValueError) as exc:
            for direction in DIRECTIONS:
                text = f"{label} could not be evaluated ({exc}); it may allow traffic"
                verdict.openings.append(Opening(direction, label, text))
            continue
        ordered.append((order, _name(policy), policy))
    ordered.sort(key=lambda item: (item[0], item[1]))
    deny_order: dict[str, float] = {}
    for direction, key in ((INGRESS, "ingress"), (EGRESS, "egress")):
        verb = key
        for order, name, policy in ordered:
            spec = policy.get("spec") or {}
            if direction not in calico_types(spec):
                continue
            shown = "none" if math.isinf(order) else f"{order:g}"
            label = f"Calico NetworkPolicy {name}"
            verdict.closed.setdefault(direction, label)
            decided = False
            for rule in spec.get(key) or ():
                rule = rule if isinstance(rule, Mapping) else {}
                action = str(rule.get("action", ""))
                if action == "Deny" and _calico_matches_everything(rule):
                    verdict.denied.setdefault(direction, f"{label} (order {shown})")
                    deny_order[direction] = order
                    decided = True
                    break
                if action in ("Allow", "Pass"):
                    what = "allows" if action == "Allow" else "passes (to the next tier)"
                    text = f"{label} (order {shown}) {what} {verb} before any deny"
                    verdict.openings.append(Opening(direction, label, text))
            if decided:
                break
    return deny_order


def judge(
    pod_labels: Mapping[str, str],
    namespace: str,
    *,
    netpols: Iterable[Mapping[str, Any]] = (),
    cilium: Iterable[Mapping[str, Any]] = (),
    calico: Iterable[Mapping[str, Any]] = (),
) -> NetworkVerdict:
    """Every policy of the pod's namespace, of every kind given, judged together."""
    verdict = NetworkVerdict()
    _k8s_part(verdict, pod_labels, namespace, netpols)
    _cilium_part(verdict, pod_labels, namespace, cilium)
    calico_deny = _calico_part(verdict, pod_labels, namespace, calico)
    kept: list[Opening] = []
    for opening in verdict.openings:
        direction = opening.direction
        if verdict.denied.get(direction, "").startswith("Cilium"):
            continue  # a Cilium deny wins over every allow, of any kind
        if (
            direction in calico_deny
            and opening.policy.startswith("NetworkPolicy ")
            and calico_deny[direction] < CALICO_K8S_ORDER
        ):
            continue  # Calico evaluates Kubernetes policies after its own, at order 1000
        kept.append(opening)
    verdict.openings = kept
    for direction, by in verdict.denied.items():
        verdict.closed[direction] = by
    return verdict
