"""The scenario format: loading and checking scenario files (see `scenarios/README.md`).

A scenario file (YAML) has an initial `cluster:` (object templates that
`factory.ObjectFactory` expands) and timed `steps:`, one action each. Every error
names the file, the step and the problem.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from ktriage.sim.scenario.bundled import SCENARIO_PACKAGE, scenario_names
from ktriage.sim.scenario.factory import ObjectFactory
from ktriage.sim.scenario.runtime_records import falco_priority
from ktriage.sim.scenario.templates import TemplateError, parse_seconds

PLACEHOLDER_RE = re.compile(r"\$\{([a-z_]+)(?::([^}]+))?\}")


class ScenarioError(ValueError):
    """A scenario file that cannot be used; the message says where and why."""


# ------------------------------------------------------------------------ format

# action → (required keys, optional keys). `pod` is `NS/NAME` or `NS/WORKLOAD#i`.
_TARGET = ("kind", "apiVersion", "namespace", "name", "pod")
ACTIONS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "create": ((), ()),  # one object template; checked by the factory
    "patch": (("patch",), _TARGET),
    "delete": ((), _TARGET),
    "container_state": (
        ("pod", "state"),
        ("container", "reason", "message", "exit_code", "signal", "restart_count"),
    ),
    "pod_log": (("pod",), ("container", "line", "lines", "spacing")),
    "audit": (
        ("user", "verb"),
        (
            "groups",
            "source_ips",
            "user_agent",
            "resource",
            "api_group",
            "api_version",
            "namespace",
            "name",
            "subresource",
            "code",
            "query",
            "uri",
            "level",
            "stage",
            "request_object",
            "response_object",
            "annotations",
            "creates",
            "exec",
            "each",
            "spacing",
            "impersonate",
            "bound_pod",
        ),
    ),
    "falco": (
        ("rule",),
        ("pod", "container", "node", "priority", "output", "fields", "tags", "source"),
    ),
    "tetragon": (
        ("type", "binary"),
        (
            "pod",
            "container",
            "node",
            "arguments",
            "cwd",
            "uid",
            "parent",
            "status",
            "signal",
            "function_name",
            "args",
            "policy_name",
            "action",
            "destination",
            "file",
        ),
    ),
    "k8s_event": (
        ("reason", "message"),
        ("pod", "kind", "namespace", "name", "type", "component", "field_path", "host"),
    ),
    "rollout": (("deployment",), ("image", "images", "interval", "logs", "user")),
    "scale": (("deployment", "replicas"), ("interval", "by", "metric", "logs")),
    "raw": (("to", "line"), ("fill", "node")),
}
TETRAGON_TYPES = {
    "exec": "process_exec",
    "process_exec": "process_exec",
    "exit": "process_exit",
    "process_exit": "process_exit",
    "kprobe": "process_kprobe",
    "process_kprobe": "process_kprobe",
    "connect": "process_kprobe",
    "file": "process_kprobe",
}
CONTAINER_STATES = ("running", "waiting", "terminated")
TOP_KEYS = ("name", "description", "duration", "seed", "cluster", "steps")


@dataclass(frozen=True)
class Step:
    index: int  # position in the file, 1-based
    at: float  # seconds after the scenario starts
    action: str
    body: Any
    line: int = 0  # 1-based line in the file, 0 when unknown

    def where(self) -> str:
        line = f" (line {self.line})" if self.line else ""
        return f"step {self.index}{line}, at {self.at:g}s, {self.action}"


@dataclass
class Scenario:
    name: str
    description: str
    duration: float
    seed: int
    cluster: list[dict[str, Any]]
    steps: list[Step]
    source: str = ""
    falco_rules: dict[str, Any] = field(default_factory=dict)


def load_scenario(name_or_path: str | Path) -> Scenario:
    """A bundled scenario by name (`cryptominer`) or a scenario file by path.

    Raises ScenarioError (a ValueError) naming the file, step and problem.
    """
    text, source = _read_source(str(name_or_path))
    return parse_scenario(text, source=source)


def _read_source(name_or_path: str) -> tuple[str, str]:
    if name_or_path in scenario_names():
        res = resources.files(SCENARIO_PACKAGE).joinpath(f"{name_or_path}.yaml")
        return res.read_text(encoding="utf-8"), f"{name_or_path}.yaml"
    path = Path(name_or_path)
    if not path.suffix and not path.exists():
        known = ", ".join(scenario_names())
        raise ScenarioError(f"unknown scenario {name_or_path!r} (bundled: {known})")
    try:
        return path.read_text(encoding="utf-8"), str(path)
    except OSError as exc:
        raise ScenarioError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ScenarioError(f"{path}: not a UTF-8 text file") from None


def parse_scenario(text: str, *, source: str = "<scenario>") -> Scenario:
    """Parse and check a scenario document; every error names the step and the problem."""
    try:
        loader = yaml.SafeLoader(text)
        try:
            node = loader.get_single_node()
            data = loader.construct_document(node) if node is not None else None
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        raise ScenarioError(f"{source}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ScenarioError(f"{source}: a scenario is a mapping with {', '.join(TOP_KEYS)}")
    unknown = sorted(set(data) - set(TOP_KEYS))
    if unknown:
        raise ScenarioError(
            f"{source}: unknown top-level key {unknown[0]!r} (allowed: {', '.join(TOP_KEYS)})"
        )
    step_lines = _step_lines(node)

    def fail(msg: str) -> ScenarioError:
        return ScenarioError(f"{source}: {msg}")

    name = data.get("name") or Path(source).stem
    try:
        duration = parse_seconds(data.get("duration", 0))
    except ValueError as exc:
        raise fail(f"duration: {exc}") from None
    seed = data.get("seed", 1)
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise fail("seed must be an integer")
    cluster = data.get("cluster") or []
    if not isinstance(cluster, list):
        raise fail("cluster must be a list of object templates")
    raw_steps = data.get("steps") or []
    if not isinstance(raw_steps, list):
        raise fail("steps must be a list")

    rules = falco_rules()
    steps: list[Step] = []
    for i, raw in enumerate(raw_steps, start=1):
        line = step_lines[i - 1] if i - 1 < len(step_lines) else 0
        where = f"step {i}" + (f" (line {line})" if line else "")
        if not isinstance(raw, dict):
            raise fail(f"{where}: a step is a mapping like {{at: 30s, pod_log: {{...}}}}")
        if "at" not in raw:
            raise fail(f"{where}: missing 'at' (when the step happens, e.g. 90 or 1m30s)")
        try:
            at = parse_seconds(raw["at"])
        except ValueError as exc:
            raise fail(f"{where}: at: {exc}") from None
        actions = [k for k in raw if k != "at"]
        if len(actions) != 1:
            got = ", ".join(actions) or "none"
            raise fail(
                f"{where}: a step has exactly one action besides 'at' "
                f"({', '.join(sorted(ACTIONS))}); got {got}"
            )
        action = actions[0]
        if action not in ACTIONS:
            raise fail(f"{where}: unknown action {action!r} (known: {', '.join(sorted(ACTIONS))})")
        step = Step(index=i, at=at, action=action, body=raw[action], line=line)
        try:
            _check_step(step, rules)
        except (ValueError, TemplateError) as exc:
            raise fail(f"{step.where()}: {exc}") from None
        steps.append(step)
    if duration and steps and max(s.at for s in steps) > duration:
        last = max(steps, key=lambda s: s.at)
        raise fail(f"{last.where()}: happens after the scenario's duration ({duration:g}s)")

    scenario = Scenario(
        name=str(name),
        description=str(data.get("description") or ""),
        duration=duration or (max((s.at for s in steps), default=0.0)),
        seed=seed,
        cluster=cluster,
        steps=sorted(steps, key=lambda s: s.at),  # stable: same `at` keeps file order
        source=source,
        falco_rules=rules,
    )
    _dry_build(scenario, fail)
    return scenario


def _step_lines(node: yaml.Node | None) -> list[int]:
    if not isinstance(node, yaml.MappingNode):
        return []
    for key, value in node.value:
        if getattr(key, "value", None) == "steps" and isinstance(value, yaml.SequenceNode):
            return [item.start_mark.line + 1 for item in value.value]
    return []


def _check_step(step: Step, rules: dict[str, Any]) -> None:
    body = step.body
    required, optional = ACTIONS[step.action]
    if step.action == "create":
        if not isinstance(body, dict) or len(body) != 1:
            raise ValueError("create takes one object template, e.g. {pod: {...}}")
        return
    if not isinstance(body, dict):
        raise ValueError(f"expected a mapping, got {type(body).__name__}")
    unknown = sorted(set(body) - set(required) - set(optional))
    if unknown:
        raise ValueError(
            f"unknown key {unknown[0]!r} (allowed: {', '.join(sorted({*required, *optional}))})"
        )
    missing = [k for k in required if k not in body]
    if missing:
        raise ValueError(f"missing required key {missing[0]!r}")
    if step.action in ("patch", "delete") and "pod" not in body and "name" not in body:
        raise ValueError("give the object as pod: NS/NAME or kind/namespace/name")
    if step.action == "patch" and not isinstance(body["patch"], dict):
        raise ValueError("patch must be a mapping (a JSON merge patch)")
    if step.action == "container_state" and body["state"] not in CONTAINER_STATES:
        raise ValueError(f"state must be one of {', '.join(CONTAINER_STATES)}")
    if step.action == "pod_log" and ("line" in body) == ("lines" in body):
        raise ValueError("give either line or lines")
    if step.action == "falco":
        if body["rule"] not in rules and not ("output" in body and "priority" in body):
            raise ValueError(
                f"rule {body['rule']!r} is not in _falco_rules.yaml: give output and priority"
            )
        if "priority" in body:
            falco_priority(str(body["priority"]))
        if "pod" not in body and "node" not in body:
            raise ValueError("give pod (or node for a host alert)")
    if step.action == "tetragon":
        if body["type"] not in TETRAGON_TYPES:
            raise ValueError(f"type must be one of {', '.join(sorted(TETRAGON_TYPES))}")
        if "pod" not in body:
            raise ValueError("give pod: NS/NAME")
        if body["type"] == "connect" and "destination" not in body:
            raise ValueError("connect needs destination: IP:PORT")
        if body["type"] == "file" and "file" not in body:
            raise ValueError("file needs file: PATH")
    if step.action == "audit":
        _check_audit(body)
    for key in ("spacing", "interval"):
        if key in body:
            parse_seconds(body[key])


def _check_audit(body: dict[str, Any]) -> None:
    if "resource" not in body and "uri" not in body and "creates" not in body:
        raise ValueError("give resource (or uri, or creates)")
    if "code" in body and not isinstance(body["code"], int):
        raise ValueError("code must be an HTTP status number")
    if "each" in body:
        if not isinstance(body["each"], list) or not all(isinstance(e, dict) for e in body["each"]):
            raise ValueError("each must be a list of mappings (overrides)")
        allowed = set(ACTIONS["audit"][0]) | set(ACTIONS["audit"][1])
        for i, e in enumerate(body["each"], start=1):
            bad = sorted(set(e) - allowed)
            if bad:
                raise ValueError(f"each[{i}]: unknown key {bad[0]!r}")
    if "exec" in body:
        ex = body["exec"]
        if not isinstance(ex, dict) or not isinstance(ex.get("command"), list):
            raise ValueError("exec needs command: [argv...]")
    if "creates" in body and (not isinstance(body["creates"], dict) or len(body["creates"]) != 1):
        raise ValueError("creates takes one object template, e.g. {pod: {...}}")


def _dry_build(scenario: Scenario, fail: Callable[[str], ScenarioError]) -> None:
    """Expand every template once so a bad field fails at load, not mid-play."""
    factory = ObjectFactory(seed=scenario.seed)
    for i, item in enumerate(scenario.cluster, start=1):
        try:
            factory.expand(item)
        except TemplateError as exc:
            raise fail(f"cluster item {i}: {exc}") from None
    for step in scenario.steps:
        template = step.body if step.action == "create" else None
        if step.action == "audit" and "creates" in step.body:
            template = step.body["creates"]
        if template is None:
            continue
        try:
            factory.expand(_strip_placeholders(template))
        except TemplateError as exc:
            raise fail(f"{step.where()}: {exc}") from None


def _strip_placeholders(value: Any) -> Any:
    # Placeholders are filled at play time; for the dry build any text will do.
    if isinstance(value, dict):
        out = {k: _strip_placeholders(v) for k, v in value.items()}
        if "node" in out and isinstance(out["node"], str) and "${" in value["node"]:
            out.pop("node")
        return out
    if isinstance(value, list):
        return [_strip_placeholders(v) for v in value]
    if isinstance(value, str):
        return PLACEHOLDER_RE.sub("x", value)
    return value


_FALCO_RULES: dict[str, Any] | None = None


def falco_rules() -> dict[str, Any]:
    global _FALCO_RULES
    if _FALCO_RULES is None:
        text = resources.files(SCENARIO_PACKAGE).joinpath("_falco_rules.yaml").read_text()
        _FALCO_RULES = yaml.safe_load(text) or {}
    return _FALCO_RULES
