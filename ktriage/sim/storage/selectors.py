"""Label and field selectors, parsed and matched as kube-apiserver does."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from ktriage.sim.resources import ResourceType


class SelectorError(ValueError):
    """A selector that does not parse; the message is the API server's."""


_KEY_RE = re.compile(
    r"^([a-z0-9A-Z]([-a-z0-9A-Z_.]*[a-z0-9A-Z])?/)?[a-z0-9A-Z]([-a-z0-9A-Z_.]*[a-z0-9A-Z])?$"
)
_VALUE_RE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


@dataclass(frozen=True)
class Requirement:
    key: str
    op: str  # = != in notin exists !exists gt lt
    values: tuple[str, ...] = ()

    def matches(self, labels: dict[str, str]) -> bool:
        has = self.key in labels
        value = labels.get(self.key)
        if self.op == "=":
            return has and value == self.values[0]
        if self.op == "!=":
            return not has or value != self.values[0]
        if self.op == "in":
            return has and value in self.values
        if self.op == "notin":
            return not has or value not in self.values
        if self.op == "exists":
            return has
        if self.op == "!exists":
            return not has
        if not has:
            return False
        try:
            number = int(value or "")
        except ValueError:
            return False
        bound = int(self.values[0])
        return number > bound if self.op == "gt" else number < bound


def _split_top(text: str) -> list[str]:
    """Split on commas outside parentheses."""
    parts, depth, cur = [], 0, []
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return parts


def _check_key(key: str) -> str:
    if not _KEY_RE.match(key) or len(key.rsplit("/", 1)[-1]) > 63:
        raise SelectorError(
            f"unable to parse requirement: {key!r}: name part must consist of alphanumeric "
            "characters, '-', '_' or '.', and must start and end with an alphanumeric character"
        )
    return key


def _check_value(value: str) -> str:
    if len(value) > 63 or not _VALUE_RE.match(value):
        raise SelectorError(
            f"unable to parse requirement: values[0][{value}]: Invalid value: {value!r}: "
            "a valid label must be an empty string or consist of alphanumeric characters, "
            "'-', '_' or '.', and must start and end with an alphanumeric character"
        )
    return value


_SET_RE = re.compile(r"^\s*(\S+?)\s+(in|notin)\s*\((.*)\)\s*$")


def parse_label_selector(text: str | None) -> list[Requirement]:
    """`app=web,tier in (a,b),!canary` → requirements (all must match)."""
    if not text or not text.strip():
        return []
    reqs = []
    for raw in _split_top(text):
        part = raw.strip()
        if not part:
            raise SelectorError(f"found '', expected: identifier in label selector {text!r}")
        m = _SET_RE.match(part)
        if m:
            values = tuple(_check_value(v.strip()) for v in m.group(3).split(",") if v.strip())
            if not values:
                raise SelectorError("for 'in', 'notin' operators, values set can't be empty")
            reqs.append(Requirement(_check_key(m.group(1)), m.group(2), values))
            continue
        for op, name in (("==", "="), ("!=", "!="), ("=", "="), (">", "gt"), ("<", "lt")):
            if op in part:
                key, value = part.split(op, 1)
                value = value.strip()
                if name in ("gt", "lt") and not value.lstrip("-").isdigit():
                    raise SelectorError(
                        f"for 'Gt', 'Lt' operators, the value must be an integer: {value!r}"
                    )
                reqs.append(Requirement(_check_key(key.strip()), name, (_check_value(value),)))
                break
        else:
            if part.startswith("!"):
                reqs.append(Requirement(_check_key(part[1:].strip()), "!exists"))
            else:
                reqs.append(Requirement(_check_key(part), "exists"))
    return reqs


def labels_match(reqs: list[Requirement], obj: dict) -> bool:
    labels = (obj.get("metadata") or {}).get("labels") or {}
    return all(r.matches(labels) for r in reqs)


# ------------------------------------------------------------------ fields


def _path(obj: dict, dotted: str) -> str:
    cur: object = obj
    for part in dotted.split("."):
        if not isinstance(cur, dict):
            return ""
        cur = cur.get(part)
    if cur is None:
        return ""
    if isinstance(cur, bool):
        return "true" if cur else "false"
    return str(cur)


def _event_source(obj: dict) -> str:
    return _path(obj, "source.component") or _path(obj, "deprecatedSource.component")


def _field_value(rt: ResourceType, obj: dict, label: str) -> str:
    if label == "source" and rt.kind == "Event":
        return _event_source(obj)
    if rt.group == "events.k8s.io":
        # The new Event API answers the core field labels too (same storage).
        if label.startswith("involvedObject."):
            label = "regarding." + label.split(".", 1)[1]
        elif label == "reportingComponent":
            label = "reportingController"
        elif label == "reason" or label == "type":
            pass
    if label == "spec.unschedulable":
        return _path(obj, label) or "false"
    if label == "spec.hostNetwork":
        return _path(obj, label) or "false"
    return _path(obj, label)


@dataclass(frozen=True)
class FieldRequirement:
    label: str
    equal: bool
    value: str


def parse_field_selector(text: str | None, rt: ResourceType) -> list[FieldRequirement]:
    if not text or not text.strip():
        return []
    allowed = {"metadata.name", "metadata.namespace", *rt.field_labels}
    out = []
    for raw in text.split(","):
        part = raw.strip()
        if not part:
            continue
        op = next((o for o in ("!=", "==", "=") if o in part), None)
        if op is None:
            raise SelectorError(f"invalid selector: '{text}'; can't understand '{part}'")
        label, value = part.split(op, 1)
        label = label.strip()
        equal = op != "!="
        if label not in allowed:
            raise SelectorError(f"field label not supported: {label}")
        out.append(FieldRequirement(label, equal, value.strip()))
    return out


def fields_match(reqs: list[FieldRequirement], rt: ResourceType, obj: dict) -> bool:
    for r in reqs:
        value = _field_value(rt, obj, r.label)
        if (value == r.value) != r.equal:
            return False
    return True


def matcher(
    rt: ResourceType, label_selector: str | None, field_selector: str | None
) -> Callable[[dict], bool] | None:
    """A predicate for both selectors, or None when there is nothing to filter."""
    labels = parse_label_selector(label_selector)
    fields = parse_field_selector(field_selector, rt)
    if not labels and not fields:
        return None

    def match(obj: dict) -> bool:
        return labels_match(labels, obj) and fields_match(fields, rt, obj)

    return match
