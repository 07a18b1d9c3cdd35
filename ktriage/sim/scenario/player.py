"""Scenarios: incidents written as data, and the player that plays them into the sim.

A scenario file (YAML, format in `scenarios/README.md`) has an initial `cluster:`
(object templates that `objects.ObjectFactory` expands) and timed `steps:`. The
`ScenarioPlayer` builds the cluster in a `ClusterStore`, then plays each step at its
scenario time: it changes objects, writes audit events through the `AuditWriter`,
and writes Falco and Tetragon records both to their JSON-line files and to the
stdout logs of the `falco` / `tetragon` pods on the node where they happened.
"""

from __future__ import annotations

import asyncio
import copy
import heapq
import inspect
import logging
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import yaml

from ktriage.sim.clock import ManualClock, SimClock
from ktriage.sim.outputs import SimOutputs
from ktriage.sim.scenario.factory import (
    DEFAULT_CAPS,
    PRIVILEGED_CAPS,
    RESOURCE_KINDS,
    ContainerSpec,
    NodeInfo,
    ObjectFactory,
    TemplateError,
    TetragonProcess,
    api_version_of,
    deployment_status,
    falco_alert,
    falco_priority,
    k8s_time,
    merge_patch,
    micro_time,
    nano_time,
    parse_k8s_time,
    parse_seconds,
    replicaset_status,
    template_hash,
    tetragon_exec_id,
    tetragon_pod_info,
    tetragon_record,
)

log = logging.getLogger(__name__)

SCENARIO_PACKAGE = "ktriage.sim.scenarios"
CONTROL_PLANE_IP = "10.0.0.10"
KUBE_CONTROLLER_AGENT = "kube-controller-manager/v1.37.1 (linux/amd64) kubernetes/5b7e0f3"
KUBELET_AGENT = "kubelet/v1.37.1 (linux/amd64) kubernetes/5b7e0f3"
SCHEDULER_AGENT = "kube-scheduler/v1.37.1 (linux/amd64) kubernetes/5b7e0f3/scheduler"
KUBECTL_AGENT = "kubectl/v1.37.1 (linux/amd64) kubernetes/5b7e0f3"


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


def scenario_names() -> list[str]:
    """The bundled scenarios (files in `ktriage/sim/scenarios/` not starting with `_`)."""
    root = resources.files(SCENARIO_PACKAGE)
    return sorted(
        p.name[: -len(".yaml")]
        for p in root.iterdir()
        if p.name.endswith(".yaml") and not p.name.startswith("_")
    )


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
        return _PLACEHOLDER_RE.sub("x", value)
    return value


_FALCO_RULES: dict[str, Any] | None = None


def falco_rules() -> dict[str, Any]:
    global _FALCO_RULES
    if _FALCO_RULES is None:
        text = resources.files(SCENARIO_PACKAGE).joinpath("_falco_rules.yaml").read_text()
        _FALCO_RULES = yaml.safe_load(text) or {}
    return _FALCO_RULES


# ------------------------------------------------------------------------ player

_PLACEHOLDER_RE = re.compile(r"\$\{([a-z_]+)(?::([^}]+))?\}")


@dataclass
class PodContext:
    """What a step knows about the pod it acts on (for placeholders and records)."""

    namespace: str
    name: str
    pod: dict[str, Any]
    container: str
    status: dict[str, Any]

    @property
    def node(self) -> str:
        return self.pod["spec"].get("nodeName", "")

    @property
    def container_id(self) -> str:
        return self.status.get("containerID", "").split("://", 1)[-1]

    def values(self) -> dict[str, str]:
        st = self.pod.get("status") or {}
        return {
            "pod": self.name,
            "namespace": self.namespace,
            "node": self.node,
            "container": self.container,
            "container_id": self.container_id,
            "cid": self.container_id[:12],
            "image": self.status.get("image", ""),
            "pod_ip": st.get("podIP", ""),
            "host_ip": st.get("hostIP", ""),
            "pod_uid": self.pod["metadata"].get("uid", ""),
            "service_account": self.pod["spec"].get("serviceAccountName", "default"),
        }


class StepFailed(RuntimeError):
    """A step could not be applied (its target is gone, ...)."""


_Item = tuple[float, int, Callable[[float], None], Step | None]


class ScenarioPlayer:
    """Plays a scenario into the simulated cluster (see the module docstring)."""

    def __init__(
        self,
        scenario: Scenario,
        *,
        store: Any,
        audit: Any,
        outputs: SimOutputs,
        clock: SimClock,
        noise_rate: float = 0.0,
    ) -> None:
        self.scenario = scenario
        self.store = store
        self.audit = audit
        self.outputs = outputs
        self.clock = clock
        self.noise_rate = noise_rate
        self.factory = ObjectFactory(seed=scenario.seed, start=clock.now())
        self.start = self.factory.start
        self.total_steps = len(scenario.steps)
        self.steps_done = 0
        self.errors: list[str] = []
        self.finished = asyncio.Event()
        self._queue: list[_Item] = []
        self._seq = 0
        self._built = False
        self._uid_map: dict[str, str] = {}
        # (namespace, pod, container id) → processes Tetragon has seen, oldest first.
        self._procs: dict[tuple[str, str, str], list[TetragonProcess]] = {}
        self._shims: dict[tuple[str, str, str], TetragonProcess] = {}
        self._event_names: dict[tuple[str, str, str], str] = {}
        self._emit_params = set(inspect.signature(audit.emit).parameters)
        self.noise: Any = None

    @property
    def done(self) -> bool:
        return self.finished.is_set()

    # ------------------------------------------------------------- running

    async def run(self) -> None:
        """Build the cluster, play every step at its time, then keep noise going."""
        self.build_cluster()
        noise_task = None
        if self.noise_rate > 0:
            from ktriage.sim.noise import NoiseGenerator

            self.noise = NoiseGenerator(
                store=self.store,
                audit=self.audit,
                outputs=self.outputs,
                clock=self.clock,
                rate=self.noise_rate,
                seed=self.scenario.seed,
            )
            noise_task = asyncio.create_task(self.noise.run(), name="sim-noise")
        try:
            self._schedule_steps()
            while self._queue:
                t = self._queue[0][0]
                await self.clock.sleep_until(t)
                self._run_next(strict=False)
            self.finished.set()
            if noise_task is not None:
                await noise_task
        finally:
            if noise_task is not None and not noise_task.done():
                noise_task.cancel()
                try:
                    await noise_task
                except asyncio.CancelledError:
                    pass

    def play_all(self) -> None:
        """Apply every step at once, in order, with its scenario time; no noise.

        A ManualClock is moved along so the store's timestamps agree. Raises
        StepFailed on the first step that cannot be applied.
        """
        self.build_cluster()
        self._schedule_steps()
        while self._queue:
            if isinstance(self.clock, ManualClock):
                self.clock.set(self._queue[0][0])
            self._run_next(strict=True)
        self.finished.set()

    def _schedule_steps(self) -> None:
        for step in self.scenario.steps:
            self._push(self.start + step.at, self._step_runner(step), step)

    def _step_runner(self, step: Step) -> Callable[[float], None]:
        handler = getattr(self, f"_do_{step.action}")

        def run(t: float) -> None:
            handler(self._fill(step.body, step), t)

        return run

    def _push(self, t: float, fn: Callable[[float], None], step: Step | None = None) -> None:
        self._seq += 1
        heapq.heappush(self._queue, (t, self._seq, fn, step))

    def later(self, t: float, fn: Callable[[float], None]) -> None:
        """Schedule follow-up work (a rollout's next pod) at scenario time `t`."""
        self._push(t, fn)

    def _run_next(self, *, strict: bool) -> None:
        t, _, fn, step = heapq.heappop(self._queue)
        try:
            fn(t)
        except Exception as exc:  # one bad step must not stop the cluster
            where = step.where() if step else "follow-up"
            msg = f"{self.scenario.source}: {where}: {exc}"
            if strict:
                raise StepFailed(msg) from exc
            log.warning("scenario step skipped: %s", msg)
            self.errors.append(msg)
        finally:
            if step is not None:
                self.steps_done += 1

    # -------------------------------------------------------- the cluster

    def build_cluster(self) -> None:
        """Create the scenario's initial objects (idempotent)."""
        if self._built:
            return
        self._built = True
        for item in self.scenario.cluster:
            for obj in self.factory.expand(item, now=self.start):
                self._apply(obj)
        for ns, pod, container, line, t in self.factory.initial_logs:
            self.store.append_log(ns, pod, container, line, time=min(t, self.start))
        self.factory.initial_logs.clear()

    def _apply(self, obj: dict[str, Any]) -> dict[str, Any]:
        meta = obj.get("metadata") or {}
        for ref in meta.get("ownerReferences") or []:
            ref["uid"] = self._uid_map.get(ref.get("uid", ""), ref.get("uid", ""))
        wanted = meta.get("uid")
        stored = self.store.apply(obj)
        got = ((stored or {}).get("metadata") or {}).get("uid")
        if wanted and got and got != wanted:
            self._uid_map[wanted] = got
        return stored

    # --------------------------------------------------------- placeholders

    def _fill(self, body: Any, step: Step) -> Any:
        ctx_ref = body.get("pod") if isinstance(body, dict) else None
        cache: dict[str, dict[str, str]] = {}

        def values(ref: str | None) -> dict[str, str]:
            key = ref or ""
            if key not in cache:
                if not ref:
                    raise StepFailed("a placeholder without :POD needs the step's pod")
                cache[key] = self.pod_context(ref, None).values()
            return cache[key]

        def sub(text: str) -> str:
            def one(m: re.Match[str]) -> str:
                name, ref = m.group(1), m.group(2)
                if name == "pod" and ref:
                    return self.resolve_pod(ref)[1]
                vals = values(ref or (self._plain(ctx_ref) if ctx_ref else None))
                if name not in vals:
                    raise StepFailed(f"unknown placeholder ${{{name}}} (known: {', '.join(vals)})")
                return vals[name]

            return _PLACEHOLDER_RE.sub(one, text)

        def walk(v: Any) -> Any:
            if isinstance(v, str):
                return sub(v) if "${" in v else v
            if isinstance(v, list):
                return [walk(x) for x in v]
            if isinstance(v, dict):
                return {k: walk(x) for k, x in v.items()}
            return v

        # The step's own pod reference is resolved, not substituted into.
        if isinstance(body, dict) and ctx_ref:
            rest = walk({k: v for k, v in body.items() if k != "pod"})
            return {"pod": ctx_ref, **rest}
        return walk(body)

    @staticmethod
    def _plain(ref: Any) -> str | None:
        return ref if isinstance(ref, str) and "${" not in ref else None

    # ------------------------------------------------------------- targets

    def resolve_pod(self, ref: str) -> tuple[str, str]:
        """`NS/NAME` or `NS/WORKLOAD#i` (i-th current pod of a workload) → (ns, name)."""
        if not isinstance(ref, str) or "/" not in ref:
            raise StepFailed(f"pod must be NS/NAME or NS/WORKLOAD#INDEX, got {ref!r}")
        ns, name = ref.split("/", 1)
        if "#" in name:
            workload, _, index = name.partition("#")
            pods = self.factory.workload_pods.get((ns, workload))
            if not pods:
                raise StepFailed(f"no workload {ns}/{workload} with pods")
            try:
                return ns, pods[int(index)]
            except (ValueError, IndexError):
                raise StepFailed(
                    f"{ref}: {ns}/{workload} has {len(pods)} pod(s), no index {index!r}"
                ) from None
        return ns, name

    def pod_context(self, ref: str, container: str | None) -> PodContext:
        ns, name = self.resolve_pod(ref)
        pod = self.store.get_obj("v1", "Pod", ns, name)
        if pod is None:
            raise StepFailed(f"pod {ns}/{name} does not exist")
        statuses = (pod.get("status") or {}).get("containerStatuses") or []
        if not statuses:
            raise StepFailed(f"pod {ns}/{name} has no container statuses")
        status = statuses[0]
        if container:
            for st in statuses:
                if st["name"] == container:
                    status = st
                    break
            else:
                names = ", ".join(s["name"] for s in statuses)
                raise StepFailed(f"pod {ns}/{name} has no container {container!r} ({names})")
        return PodContext(ns, name, pod, status["name"], status)

    def _target(self, body: dict[str, Any]) -> tuple[str, str, str | None, str]:
        if body.get("pod"):
            ns, name = self.resolve_pod(body["pod"])
            return "v1", "Pod", ns, name
        kind = body.get("kind")
        if not kind:
            raise StepFailed("give kind with name")
        api_version = body.get("apiVersion") or api_version_of(kind)
        return api_version, kind, body.get("namespace"), body["name"]

    def node_info(self, name: str) -> NodeInfo:
        try:
            return self.factory.node(name)
        except TemplateError:
            # A node created outside the scenario: give it a layout entry.
            info = NodeInfo(
                name=name,
                ip="10.0.1.250",
                index=len(self.factory.nodes) + 1,
                boot_time=self.start - 86400,
            )
            self.factory.nodes.append(info)
            return info

    def _daemon_pod(self, namespace: str, app: str, node: str) -> str | None:
        for pod in self.store.list_objs("v1", "Pod", namespace):
            labels = pod["metadata"].get("labels") or {}
            if labels.get("app.kubernetes.io/name") == app and pod["spec"].get("nodeName") == node:
                return pod["metadata"]["name"]
        return None

    # ------------------------------------------------------ object actions

    def _do_create(self, body: dict[str, Any], t: float) -> None:
        for obj in self.factory.expand(body, now=t):
            self._apply(obj)
        for ns, pod, container, line, when in self.factory.initial_logs:
            self.store.append_log(ns, pod, container, line, time=when)
        self.factory.initial_logs.clear()

    def _do_patch(self, body: dict[str, Any], t: float) -> None:
        api_version, kind, ns, name = self._target(body)
        if self.store.get_obj(api_version, kind, ns, name) is None:
            raise StepFailed(f"{kind} {_qual(ns, name)} does not exist")
        self.store.mutate(api_version, kind, ns, name, lambda o: merge_patch(o, body["patch"]))

    def _do_delete(self, body: dict[str, Any], t: float) -> None:
        api_version, kind, ns, name = self._target(body)
        if self.store.delete(api_version, kind, ns, name) is None:
            raise StepFailed(f"{kind} {_qual(ns, name)} does not exist")
        if kind == "Pod":
            self._forget_pod(ns or "", name)

    def _forget_pod(self, ns: str, name: str) -> None:
        for (wns, _), pods in self.factory.workload_pods.items():
            if wns == ns and name in pods:
                pods.remove(name)

    # ---------------------------------------------------- container states

    def _do_container_state(self, body: dict[str, Any], t: float) -> None:
        ctx = self.pod_context(body["pod"], body.get("container"))
        state = body["state"]
        reason = body.get("reason")
        restarted = False

        def change(pod: dict[str, Any]) -> None:
            nonlocal restarted
            st = next(s for s in pod["status"]["containerStatuses"] if s["name"] == ctx.container)
            current = st.get("state") or {}
            last_term = current.get("terminated") or (st.get("lastState") or {}).get("terminated")
            if state == "running":
                if "running" not in current:
                    if "terminated" in current:
                        # Restarted at once (no back-off): one more restart.
                        st["restartCount"] = st.get("restartCount", 0) + 1
                        st["lastState"] = {"terminated": current["terminated"]}
                        restarted = True
                    elif last_term:
                        # Out of back-off: kubelet counted this restart on entering it.
                        restarted = True
                    st["containerID"] = self.factory.container_id()
                    st["state"] = {"running": {"startedAt": k8s_time(t)}}
                st["ready"] = True
                st["started"] = True
            elif state == "terminated":
                code = body.get("exit_code", _EXIT_CODES.get(reason or "Error", 1))
                term: dict[str, Any] = {
                    "containerID": st.get("containerID", ""),
                    "exitCode": int(code),
                    "reason": reason or ("Completed" if int(code) == 0 else "Error"),
                    "startedAt": (current.get("running") or {}).get("startedAt", k8s_time(t)),
                    "finishedAt": k8s_time(t),
                }
                if body.get("message"):
                    term["message"] = body["message"]
                if body.get("signal"):
                    term["signal"] = int(body["signal"])
                st["state"] = {"terminated": term}
                st["ready"] = False
                st["started"] = False
            else:  # waiting
                if "terminated" in current:
                    # kubelet counts the restart it is about to make (kubectl shows it).
                    st["lastState"] = {"terminated": current["terminated"]}
                    st["restartCount"] = st.get("restartCount", 0) + 1
                waiting: dict[str, Any] = {"reason": reason or "ContainerCreating"}
                message = body.get("message")
                if message is None and reason == "CrashLoopBackOff":
                    restarts = body.get("restart_count", st.get("restartCount", 0))
                    backoff = min(10 * 2 ** max(int(restarts) - 1, 0), 300)
                    message = (
                        f"back-off {_backoff_text(backoff)} restarting failed "
                        f"container={ctx.container} pod={ctx.name}_{ctx.namespace}"
                        f"({pod['metadata'].get('uid', '')})"
                    )
                if message:
                    waiting["message"] = message
                st["state"] = {"waiting": waiting}
                st["ready"] = False
                st["started"] = False
                if reason in ("ErrImagePull", "ImagePullBackOff") and not last_term:
                    st.pop("containerID", None)
                    st["imageID"] = ""
            if "restart_count" in body:
                st["restartCount"] = int(body["restart_count"])
            _refresh_pod_status(pod, t)

        self.store.mutate("v1", "Pod", ctx.namespace, ctx.name, change)
        if restarted:
            self.store.restart_container(ctx.namespace, ctx.name, ctx.container)

    # ------------------------------------------------------------- pod logs

    def _do_pod_log(self, body: dict[str, Any], t: float) -> None:
        ctx = self.pod_context(body["pod"], body.get("container"))
        lines = body["lines"] if "lines" in body else [body["line"]]
        spacing = parse_seconds(body.get("spacing", 0.25))
        for i, line in enumerate(lines):
            self.store.append_log(
                ctx.namespace, ctx.name, ctx.container, str(line), time=t + i * spacing
            )

    # ---------------------------------------------------------------- audit

    def _do_audit(self, body: dict[str, Any], t: float) -> None:
        variants = body.get("each") or [{}]
        spacing = parse_seconds(body.get("spacing", 0.15))
        base = {k: v for k, v in body.items() if k not in ("each", "spacing")}
        for i, override in enumerate(variants):
            self._audit_one({**base, **override}, t + i * spacing)

    def _audit_one(self, spec: dict[str, Any], t: float) -> dict[str, Any]:
        user = str(spec["user"])
        verb = spec["verb"]
        code = int(spec.get("code", 201 if verb == "create" else 200))
        created: dict[str, Any] | None = None
        request_object = spec.get("request_object")
        response_object = spec.get("response_object")
        resource = spec.get("resource")
        namespace = spec.get("namespace")
        name = spec.get("name")
        if spec.get("creates"):
            objs = self.factory.expand(spec["creates"], now=t)
            created = objs[0]
            meta = created["metadata"]
            resource = resource or _resource_of(created["kind"])
            namespace = namespace or meta.get("namespace")
            name = name or meta["name"]
            if request_object is None:
                ((_, written),) = spec["creates"].items()
                request_object = _request_form(created, written)
            if code < 300:
                for obj in objs:
                    stored = self._apply(obj)
                    if obj is created:
                        created = stored or obj
                for ns, pod, container, line, when in self.factory.initial_logs:
                    self.store.append_log(ns, pod, container, line, time=when)
                self.factory.initial_logs.clear()
                if response_object is None:
                    response_object = created
            else:
                self.factory.initial_logs.clear()
        group, version = spec.get("api_group"), spec.get("api_version")
        if resource in RESOURCE_KINDS:
            g, v, _, namespaced = RESOURCE_KINDS[resource]
            group = g if group is None else group
            version = version or v
            if not namespaced:
                namespace = None
        group = group or ""
        version = version or "v1"
        subresource = spec.get("subresource")
        exec_spec = spec.get("exec")
        if exec_spec is not None:
            subresource = "exec"
            resource = resource or "pods"
            verb = spec.get("verb", "create")
        object_ref: dict[str, Any] | None = None
        if resource:
            object_ref = {"resource": resource}
            if namespace:
                object_ref["namespace"] = namespace
            if name:
                object_ref["name"] = name
            if group:
                object_ref["apiGroup"] = group
            object_ref["apiVersion"] = version
            if subresource:
                object_ref["subresource"] = subresource
        uri = spec.get("uri") or _request_uri(
            verb,
            group,
            version,
            resource or "",
            namespace,
            name,
            subresource,
            spec.get("query"),
            exec_spec,
        )
        stage = spec.get("stage") or ("ResponseStarted" if code == 101 else "ResponseComplete")
        level = spec.get("level") or (
            "RequestResponse" if request_object is not None or resource in _RBAC else "Metadata"
        )
        if level == "Metadata":
            request_object = response_object = None
        elif level == "Request":
            response_object = None
        if code >= 400:
            response_object = None
        groups = spec.get("groups")
        if groups is None:
            groups = _default_groups(user)
        ips = spec.get("source_ips") or [CONTROL_PLANE_IP]
        if isinstance(ips, str):
            ips = [ips]
        kwargs: dict[str, Any] = {
            "user": user,
            "groups": list(groups),
            "verb": verb,
            "uri": uri,
            "object_ref": object_ref,
            "code": code,
            "source_ips": [str(ip) for ip in ips],
            "user_agent": spec.get("user_agent") or _default_agent(user),
            "level": level,
            "request_object": request_object,
            "response_object": response_object,
            "annotations": spec.get("annotations"),
            "time": t,
            "stage": stage,
        }
        if code >= 400:
            kwargs["response_status"] = _failure_status(
                code, user, verb, resource or "", subresource, group, namespace, name
            )
        if user.startswith("system:serviceaccount:") and user.count(":") == 3:
            _, _, sa_ns, sa_name = user.split(":")
            sa = self.store.get_obj("v1", "ServiceAccount", sa_ns, sa_name)
            if sa is not None:
                kwargs["user_uid"] = sa["metadata"].get("uid")
        if spec.get("bound_pod"):
            kwargs["user_extra"] = self._bound_token_claims(str(spec["bound_pod"]))
        if spec.get("impersonate"):
            kwargs["impersonated_user"] = {
                "username": spec["impersonate"],
                "groups": ["system:authenticated"],
            }
        return self.audit.emit(**{k: v for k, v in kwargs.items() if k in self._emit_params})

    def _bound_token_claims(self, pod_ref: str) -> dict[str, list[str]]:
        """The `user.extra` of a request made with a pod's bound service-account
        token: kube-apiserver records the pod and node the token was issued for,
        which is what ties a stolen token back to the pod it was taken from."""
        ns, name = self.resolve_pod(pod_ref)
        pod = self.store.get_obj("v1", "Pod", ns, name)
        if pod is None:
            raise StepFailed(f"bound_pod {pod_ref}: pod {ns}/{name} does not exist")
        node = pod.get("spec", {}).get("nodeName", "")
        node_obj = self.store.get_obj("v1", "Node", None, node) if node else None
        pod_uid = pod["metadata"].get("uid", "")
        claims = {
            "authentication.kubernetes.io/credential-id": [
                f"JTI={uuid.uuid5(uuid.NAMESPACE_URL, pod_uid)}"
            ],
            "authentication.kubernetes.io/pod-name": [name],
            "authentication.kubernetes.io/pod-uid": [pod_uid],
        }
        if node:
            claims["authentication.kubernetes.io/node-name"] = [node]
            if node_obj is not None:
                claims["authentication.kubernetes.io/node-uid"] = [
                    node_obj["metadata"].get("uid", "")
                ]
        return claims

    def system_audit(
        self,
        t: float,
        user: str,
        verb: str,
        resource: str,
        namespace: str | None,
        name: str | None = None,
        subresource: str | None = None,
        code: int | None = None,
        source_ip: str = CONTROL_PLANE_IP,
    ) -> None:
        """A request the control plane makes (controllers, scheduler, kubelets)."""
        spec: dict[str, Any] = {
            "user": user,
            "verb": verb,
            "resource": resource,
            "namespace": namespace,
            "source_ips": [source_ip],
            "level": "Metadata",
        }
        if name:
            spec["name"] = name
        if subresource:
            spec["subresource"] = subresource
        if code is not None:
            spec["code"] = code
        self._audit_one(spec, t)

    # ---------------------------------------------------------------- falco

    def _do_falco(self, body: dict[str, Any], t: float) -> None:
        rule_name = body["rule"]
        rule = self.scenario.falco_rules.get(rule_name) or {}
        priority = falco_priority(str(body.get("priority") or rule.get("priority")))
        fields: dict[str, Any] = {}
        node = body.get("node")
        if body.get("pod"):
            ctx = self.pod_context(body["pod"], body.get("container"))
            node = ctx.node
            repo, _, tag = ctx.status.get("image", "").rpartition(":")
            fields.update(
                {
                    "container.id": ctx.container_id[:12],
                    "container.name": ctx.container,
                    "container.image.repository": repo,
                    "container.image.tag": tag,
                    "k8s.ns.name": ctx.namespace,
                    "k8s.pod.name": ctx.name,
                }
            )
        else:
            fields.update({"container.id": "host", "container.name": "host"})
            fields.update({"k8s.ns.name": None, "k8s.pod.name": None})
        extra = dict(body.get("fields") or {})
        cmdline = extra.get("proc.cmdline")
        if cmdline and "proc.name" not in extra:
            extra["proc.name"] = str(cmdline).split()[0].rsplit("/", 1)[-1]
        defaults = {"evt.type": "execve", "user.name": "root", "user.uid": 0, "proc.tty": 0}
        for key, value in defaults.items():
            extra.setdefault(key, value)
        fields.update(extra)
        fields = dict(sorted(fields.items()))
        time_ns = self._ns(t)
        alert = falco_alert(
            rule=rule_name,
            priority=priority,
            output_template=str(body.get("output") or rule.get("output", rule_name)),
            fields=fields,
            tags=list(body.get("tags") or rule.get("tags") or []),
            hostname=node or "",
            time_ns=time_ns,
            alert_uuid=self.factory.uid(),
            source=body.get("source", "syscall"),
        )
        line = self.outputs.falco.write(alert)
        falco_pod = self._daemon_pod("falco", "falco", node or "")
        if falco_pod:
            text = line.decode().rstrip("\n")
            self.store.append_log("falco", falco_pod, "falco", text, time=t)

    def _ns(self, t: float) -> int:
        # Sub-millisecond digits so records do not all end in zeros; order is kept.
        return int(t * 1000) * 1_000_000 + self.factory.rng.randrange(1_000_000)

    # ------------------------------------------------------------- tetragon

    def _procs_of(self, ctx: PodContext) -> list[TetragonProcess]:
        key = (ctx.namespace, ctx.name, ctx.container_id)
        procs = self._procs.get(key)
        if procs is None:
            node = self.node_info(ctx.node)
            started = parse_k8s_time(
                ((ctx.status.get("state") or {}).get("running") or {}).get("startedAt")
            )
            started = started if started is not None else self.start - 3600
            ktime = max(int((started - node.boot_time) * 1e9), 1)
            host_pid = self.factory.rng.randint(2000, 90000)
            shim = tetragon_exec_id(node.name, ktime - 40_000_000, host_pid - 3)
            spec = next(
                (c for c in ctx.pod["spec"]["containers"] if c["name"] == ctx.container), {}
            )
            argv = [*(spec.get("command") or []), *(spec.get("args") or [])]
            binary = argv[0] if argv else f"/usr/local/bin/{ctx.container}"
            if not binary.startswith("/"):
                binary = f"/usr/bin/{binary}"
            privileged = bool((spec.get("securityContext") or {}).get("privileged"))
            caps = PRIVILEGED_CAPS if privileged else DEFAULT_CAPS
            # Exec sessions (kubectl exec, probes) start from the container's shim.
            self._shims[key] = TetragonProcess(
                exec_id=shim,
                pid=host_pid - 3,
                binary="/usr/bin/containerd-shim-runc-v2",
                arguments=(
                    f"-namespace k8s.io -id {ctx.container_id} "
                    "-address /run/containerd/containerd.sock"
                ),
                start_ns=int(started * 1e9) - 40_000_000,
                parent_exec_id=tetragon_exec_id(node.name, 1_000_000_000, 1),
                pod=None,
                cwd=f"/run/containerd/io.containerd.runtime.v2.task/k8s.io/{ctx.container_id}",
            )
            init = TetragonProcess(
                exec_id=tetragon_exec_id(node.name, ktime, host_pid),
                pid=host_pid,
                binary=binary,
                arguments=" ".join(argv[1:]),
                start_ns=int(started * 1e9),
                parent_exec_id=shim,
                pod=tetragon_pod_info(ctx.pod, ctx.status, 1),
                flags="execve rootcwd clone",
                in_init_tree=True,
                caps=caps,
            )
            procs = self._procs[key] = [init]
        return procs

    def _find_proc(self, procs: list[TetragonProcess], binary: str) -> TetragonProcess | None:
        for p in reversed(procs):
            if not p.exited and (p.binary == binary or p.binary.rsplit("/", 1)[-1] == binary):
                return p
        return None

    def _do_tetragon(self, body: dict[str, Any], t: float) -> None:
        ctx = self.pod_context(body["pod"], body.get("container"))
        node = self.node_info(ctx.node)
        procs = self._procs_of(ctx)
        kind = body["type"]
        event_type = TETRAGON_TYPES[kind]
        time_ns = self._ns(t)
        binary = str(body["binary"])
        if event_type == "process_exec":
            parent_name = body.get("parent")
            if parent_name == "shim":
                parent = self._shims[(ctx.namespace, ctx.name, ctx.container_id)]
            else:
                parent = self._find_proc(procs, parent_name) if parent_name else None
            if parent is None:
                if parent_name and parent_name != "init":
                    raise StepFailed(
                        f"no running process {parent_name!r} in {ctx.namespace}/{ctx.name}"
                    )
                parent = procs[0]
            pid = max(p.pid for p in procs) + self.factory.rng.randint(3, 40)
            ktime = max(int((t - node.boot_time) * 1e9), 1)
            proc = TetragonProcess(
                exec_id=tetragon_exec_id(node.name, ktime, pid),
                pid=pid,
                binary=binary,
                arguments=str(body.get("arguments", "")),
                start_ns=time_ns,
                parent_exec_id=parent.exec_id,
                pod=_with_container_pid(procs[0].pod, len(procs) * 7 + 1),
                caps=procs[0].caps,
                uid=int(body.get("uid", 0)),
                cwd=str(body.get("cwd", "/")),
                flags="execve clone" if body.get("cwd", "/") != "/" else "execve rootcwd clone",
            )
            procs.append(proc)
            record_body = {"process": proc.to_json(), "parent": parent.to_json()}
        else:
            proc = self._find_proc(procs, binary)
            if proc is None:
                raise StepFailed(f"no running process {binary!r} in {ctx.namespace}/{ctx.name}")
            shim = self._shims[(ctx.namespace, ctx.name, ctx.container_id)]
            parent = next((p for p in [*procs, shim] if p.exec_id == proc.parent_exec_id), shim)
            record_body = {"process": proc.to_json(), "parent": parent.to_json()}
            if event_type == "process_exit":
                proc.exited = True
                if body.get("signal"):
                    record_body["signal"] = str(body["signal"])
                if body.get("status"):
                    record_body["status"] = int(body["status"])
                record_body["time"] = record_body.get("time") or nano_time(time_ns)
            else:
                record_body.update(self._kprobe(kind, body, ctx))
        record = tetragon_record(event_type, record_body, node=node.name, time_ns=time_ns)
        line = self.outputs.tetragon.write(record)
        tetragon_pod = self._daemon_pod("kube-system", "tetragon", node.name)
        if tetragon_pod:
            text = line.decode().rstrip("\n")
            self.store.append_log("kube-system", tetragon_pod, "export-stdout", text, time=t)

    def _kprobe(self, kind: str, body: dict[str, Any], ctx: PodContext) -> dict[str, Any]:
        if kind == "connect":
            host, _, port = str(body["destination"]).rpartition(":")
            args = [
                {
                    "sock_arg": {
                        "family": "AF_INET",
                        "type": "SOCK_STREAM",
                        "protocol": "IPPROTO_TCP",
                        "saddr": (ctx.pod.get("status") or {}).get("podIP", ""),
                        "daddr": host,
                        "sport": self.factory.rng.randint(32768, 60999),
                        "dport": int(port),
                        "state": "TCP_SYN_SENT",
                    }
                }
            ]
            function, policy = "tcp_connect", "monitor-network-activity"
        elif kind == "file":
            args = [{"file_arg": {"path": str(body["file"]), "permission": "-rw-r--r--"}}]
            args.append({"int_arg": 4})
            function, policy = "security_file_permission", "file-monitoring"
        else:
            args = body.get("args") or []
            function = body.get("function_name", "")
            policy = ""
        out: dict[str, Any] = {
            "function_name": body.get("function_name", function),
            "args": args,
            "action": body.get("action", "KPROBE_ACTION_POST"),
        }
        if body.get("policy_name", policy):
            out["policy_name"] = body.get("policy_name", policy)
        out["return_action"] = "KPROBE_ACTION_POST"
        return out

    # ----------------------------------------------------------- k8s events

    def _do_k8s_event(self, body: dict[str, Any], t: float) -> None:
        if body.get("pod"):
            ctx = self.pod_context(body["pod"], body.get("container"))
            involved = ctx.pod
            host = body.get("host") or ctx.node
            field_path = body.get("field_path", f"spec.containers{{{ctx.container}}}")
        else:
            kind = body.get("kind")
            if not kind or not body.get("name"):
                raise StepFailed("k8s_event needs pod, or kind and name")
            api_version = api_version_of(kind)
            involved = self.store.get_obj(api_version, kind, body.get("namespace"), body["name"])
            if involved is None:
                raise StepFailed(f"{kind} {_qual(body.get('namespace'), body['name'])} not found")
            host = body.get("host") or ""
            field_path = body.get("field_path", "")
        self.k8s_event(
            involved,
            t,
            reason=str(body["reason"]),
            message=str(body["message"]),
            event_type=body.get("type", "Normal"),
            component=body.get("component", "kubelet"),
            host=host,
            field_path=field_path,
        )

    def k8s_event(
        self,
        involved: dict[str, Any],
        t: float,
        *,
        reason: str,
        message: str,
        event_type: str = "Normal",
        component: str = "kubelet",
        host: str = "",
        field_path: str = "",
    ) -> None:
        """Record (or count again) a core v1 Event, and its events.k8s.io/v1 form."""
        meta = involved["metadata"]
        namespace = meta.get("namespace") or "default"
        key = (meta.get("uid", meta["name"]), reason, message)
        ref = {
            "kind": involved["kind"],
            "namespace": meta.get("namespace"),
            "name": meta["name"],
            "uid": meta.get("uid", ""),
            "apiVersion": involved["apiVersion"],
            "resourceVersion": meta.get("resourceVersion", ""),
        }
        if not ref["namespace"]:
            ref.pop("namespace")
        if field_path:
            ref["fieldPath"] = field_path
        name = self._event_names.get(key)
        existing = self.store.get_obj("v1", "Event", namespace, name) if name else None
        if existing is not None and name is not None:
            count = int(existing.get("count", 1)) + 1

            def bump(ev: dict[str, Any]) -> None:
                ev["count"] = count
                ev["lastTimestamp"] = k8s_time(t)

            self.store.mutate("v1", "Event", namespace, name, bump)

            def bump_new(ev: dict[str, Any]) -> None:
                ev["deprecatedCount"] = count
                ev["deprecatedLastTimestamp"] = k8s_time(t)
                ev["series"] = {"count": count, "lastObservedTime": micro_time(t)}

            if self.store.get_obj("events.k8s.io/v1", "Event", namespace, name) is not None:
                self.store.mutate("events.k8s.io/v1", "Event", namespace, name, bump_new)
            return
        name = f"{meta['name']}.{int(t * 1e9):x}"
        self._event_names[key] = name
        source: dict[str, str] = {"component": component}
        if host:
            source["host"] = host
        instance = host or f"{component}-{self.factory.suffix(5)}"
        core = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": name, "namespace": namespace},
            "involvedObject": ref,
            "reason": reason,
            "message": message,
            "source": source,
            "firstTimestamp": k8s_time(t),
            "lastTimestamp": k8s_time(t),
            "count": 1,
            "type": event_type,
            "eventTime": None,
            "reportingComponent": component,
            "reportingInstance": host,
        }
        self.store.apply(core)
        regarding = dict(ref)
        self.store.apply(
            {
                "apiVersion": "events.k8s.io/v1",
                "kind": "Event",
                "metadata": {"name": name, "namespace": namespace},
                "eventTime": micro_time(t),
                "reportingController": component,
                "reportingInstance": instance,
                "action": _EVENT_ACTIONS.get(reason, reason),
                "reason": reason,
                "regarding": regarding,
                "note": message,
                "type": event_type,
                "deprecatedSource": source,
                "deprecatedFirstTimestamp": k8s_time(t),
                "deprecatedLastTimestamp": k8s_time(t),
                "deprecatedCount": 1,
            }
        )

    # ------------------------------------------------- rollouts and scaling

    def _deployment(self, ref: str) -> dict[str, Any]:
        if "/" not in str(ref):
            raise StepFailed(f"deployment must be NS/NAME, got {ref!r}")
        ns, name = str(ref).split("/", 1)
        dep = self.store.get_obj("apps/v1", "Deployment", ns, name)
        if dep is None:
            raise StepFailed(f"deployment {ns}/{name} does not exist")
        return dep

    def _do_rollout(self, body: dict[str, Any], t: float) -> None:
        """A rolling update: new ReplicaSet, new pods one by one, old pods terminated."""
        dep = self._deployment(body["deployment"])
        ns, name = dep["metadata"]["namespace"], dep["metadata"]["name"]
        template = copy.deepcopy(dep["spec"]["template"])
        images = dict(body.get("images") or {})
        if body.get("image"):
            images[template["spec"]["containers"][0]["name"]] = body["image"]
        if not images:
            raise StepFailed("rollout needs image or images")
        for c in template["spec"]["containers"]:
            if c["name"] in images:
                c["image"] = images.pop(c["name"])
        if images:
            raise StepFailed(f"deployment {ns}/{name} has no container {next(iter(images))!r}")
        old_rs_name = f"{name}-{template_hash(dep['spec']['template'])}"
        revision = int(dep["metadata"].get("annotations", {}).get(_REVISION, "1")) + 1
        replicas = int(dep["spec"].get("replicas", 1))
        interval = parse_seconds(body.get("interval", 8))
        user = body.get("user")

        def update(d: dict[str, Any]) -> None:
            d["spec"]["template"] = template
            d["metadata"]["generation"] = int(d["metadata"].get("generation", 1)) + 1
            d["metadata"].setdefault("annotations", {})[_REVISION] = str(revision)
            d["status"]["updatedReplicas"] = 0
            d["status"]["observedGeneration"] = d["metadata"]["generation"]

        if user:
            self._audit_one(
                {
                    "user": user,
                    "verb": "patch",
                    "resource": "deployments",
                    "namespace": ns,
                    "name": name,
                    "query": {"fieldManager": "kubectl-set"},
                    "source_ips": ["10.0.8.15"],
                    "user_agent": KUBECTL_AGENT,
                },
                t,
            )
        dep = self.store.mutate("apps/v1", "Deployment", ns, name, update)
        tpl = _template_params(template, body.get("logs"))
        containers = _container_specs(template)
        rs, _ = self.factory.replicaset_with_pods(
            dep, tpl, containers, [], replicas, revision, t, make_pods=False
        )
        rs["spec"]["replicas"] = 0
        rs["status"] = replicaset_status(0)
        self._apply(rs)
        dc = "system:serviceaccount:kube-system:deployment-controller"
        self.system_audit(t, dc, "create", "replicasets", ns, rs["metadata"]["name"])
        self.k8s_event(
            dep,
            t + 0.01,
            reason="ScalingReplicaSet",
            message=f"Scaled up replica set {rs['metadata']['name']} from 0 to 1",
            component="deployment-controller",
        )
        old_pods = list(self.factory.workload_pods.get((ns, name), []))
        self.factory.workload_pods[(ns, name)] = []
        for i in range(replicas):
            start = t + 0.5 + i * interval
            self.later(start, self._new_pod_step(ns, name, rs["metadata"]["name"], tpl, containers))
            if i < len(old_pods):
                self.later(
                    start + interval * 0.6,
                    self._remove_pod_step(ns, name, old_rs_name, old_pods[i]),
                )
        for extra in old_pods[replicas:]:
            self.later(t + replicas * interval, self._remove_pod_step(ns, name, old_rs_name, extra))
        done_at = t + replicas * interval + 1

        def finish(t2: float) -> None:
            self._set_rs_replicas(ns, old_rs_name, 0)
            self._set_rs_replicas(ns, rs["metadata"]["name"], replicas)

            def status(d: dict[str, Any]) -> None:
                d["status"] = deployment_status(replicas, int(d["metadata"]["generation"]), t2)

            self.store.mutate("apps/v1", "Deployment", ns, name, status)
            self.system_audit(t2, dc, "update", "deployments", ns, name, "status")

        self.later(done_at, finish)

    def _set_rs_replicas(self, ns: str, rs_name: str, replicas: int) -> None:
        if self.store.get_obj("apps/v1", "ReplicaSet", ns, rs_name) is None:
            return

        def change(rs: dict[str, Any]) -> None:
            rs["spec"]["replicas"] = replicas
            rs["metadata"].setdefault("annotations", {})[
                "deployment.kubernetes.io/desired-replicas"
            ] = str(replicas)
            rs["status"] = replicaset_status(replicas)

        self.store.mutate("apps/v1", "ReplicaSet", ns, rs_name, change)

    def _new_pod_step(
        self,
        ns: str,
        deployment: str,
        rs_name: str,
        tpl: dict[str, Any],
        containers: list[ContainerSpec],
    ) -> Callable[[float], None]:
        def run(t: float) -> None:
            rs = self.store.get_obj("apps/v1", "ReplicaSet", ns, rs_name)
            if rs is None:
                raise StepFailed(f"replicaset {ns}/{rs_name} is gone")
            pod = self.factory.replicaset_pod(rs, tpl, containers, [], t)
            pod_name = pod["metadata"]["name"]
            node = pod["spec"]["nodeName"]
            rc = "system:serviceaccount:kube-system:replicaset-controller"
            self.system_audit(t, rc, "create", "pods", ns, pod_name)
            self._apply(pod)
            self.system_audit(
                t + 0.02, "system:kube-scheduler", "create", "pods", ns, pod_name, "binding"
            )
            stored = self.store.get_obj("v1", "Pod", ns, pod_name) or pod
            self.k8s_event(
                rs,
                t,
                reason="SuccessfulCreate",
                message=f"Created pod: {pod_name}",
                component="replicaset-controller",
            )
            self.k8s_event(
                stored,
                t + 0.02,
                reason="Scheduled",
                message=f"Successfully assigned {ns}/{pod_name} to {node}",
                component="default-scheduler",
            )
            for c in containers:
                path = f"spec.containers{{{c.name}}}"
                self.k8s_event(
                    stored,
                    t + 0.3,
                    reason="Pulling",
                    message=f'Pulling image "{c.image}"',
                    host=node,
                    field_path=path,
                )
                secs = 1.2 + self.factory.rng.random() * 3
                self.k8s_event(
                    stored,
                    t + 0.3 + secs,
                    reason="Pulled",
                    message=(
                        f'Successfully pulled image "{c.image}" in {secs:.3f}s '
                        f"({secs:.3f}s including waiting). Image size: "
                        f"{self.factory.rng.randint(20, 400) * 1048576 + 4711} bytes."
                    ),
                    host=node,
                    field_path=path,
                )
                self.k8s_event(
                    stored,
                    t + 0.4 + secs,
                    reason="Created",
                    message=f"Created container: {c.name}",
                    host=node,
                    field_path=path,
                )
                self.k8s_event(
                    stored,
                    t + 0.5 + secs,
                    reason="Started",
                    message=f"Started container {c.name}",
                    host=node,
                    field_path=path,
                )

            self.system_audit(
                t + 4,
                f"system:node:{node}",
                "patch",
                "pods",
                ns,
                pod_name,
                "status",
                source_ip=self.node_info(node).ip,
            )
            for pns, pname, container, line, when in self.factory.initial_logs:
                self.store.append_log(pns, pname, container, line, time=when)
            self.factory.initial_logs.clear()

        return run

    def _remove_pod_step(
        self, ns: str, deployment: str, rs_name: str, pod_name: str
    ) -> Callable[[float], None]:
        def run(t: float) -> None:
            pod = self.store.get_obj("v1", "Pod", ns, pod_name)
            if pod is None:
                return  # already gone (someone deleted it): nothing to do
            rc = "system:serviceaccount:kube-system:replicaset-controller"
            self.system_audit(t, rc, "delete", "pods", ns, pod_name)
            for c in pod["spec"]["containers"]:
                self.k8s_event(
                    pod,
                    t,
                    reason="Killing",
                    message=f"Stopping container {c['name']}",
                    host=pod["spec"].get("nodeName", ""),
                    field_path=f"spec.containers{{{c['name']}}}",
                )
            rs = self.store.get_obj("apps/v1", "ReplicaSet", ns, rs_name)
            if rs is not None:
                self.k8s_event(
                    rs,
                    t,
                    reason="SuccessfulDelete",
                    message=f"Deleted pod: {pod_name}",
                    component="replicaset-controller",
                )
            self.store.delete("v1", "Pod", ns, pod_name)
            self._forget_pod(ns, pod_name)

        return run

    def _do_scale(self, body: dict[str, Any], t: float) -> None:
        """A scale change (by default the HPA's): pods added or removed one by one."""
        dep = self._deployment(body["deployment"])
        ns, name = dep["metadata"]["namespace"], dep["metadata"]["name"]
        old = int(dep["spec"].get("replicas", 1))
        new = int(body["replicas"])
        if new < 0:
            raise StepFailed("replicas must not be negative")
        rs_name = f"{name}-{template_hash(dep['spec']['template'])}"
        interval = parse_seconds(body.get("interval", 2))
        by = body.get("by", "hpa")
        if by == "hpa":
            actor = "system:serviceaccount:kube-system:horizontal-pod-autoscaler"
            self.system_audit(t, actor, "update", "deployments", ns, name, "scale")
            metric = body.get("metric", "cpu resource utilization (percentage of request)")
            direction = "above" if new > old else "below"
            hpa = {
                "apiVersion": "autoscaling/v2",
                "kind": "HorizontalPodAutoscaler",
                "metadata": {"name": name, "namespace": ns, "uid": self._hpa_uid(ns, name)},
            }
            self.k8s_event(
                hpa,
                t,
                reason="SuccessfulRescale",
                message=f"New size: {new}; reason: {metric} {direction} target",
                component="horizontal-pod-autoscaler",
            )
        else:
            self._audit_one(
                {
                    "user": by,
                    "verb": "patch",
                    "resource": "deployments",
                    "namespace": ns,
                    "name": name,
                    "subresource": "scale",
                    "source_ips": ["10.0.8.15"],
                    "user_agent": KUBECTL_AGENT,
                },
                t,
            )

        def set_replicas(d: dict[str, Any]) -> None:
            d["spec"]["replicas"] = new
            d["status"] = deployment_status(new, int(d["metadata"].get("generation", 1)), t)

        dep = self.store.mutate("apps/v1", "Deployment", ns, name, set_replicas)
        word = "up" if new > old else "down"
        self.k8s_event(
            dep,
            t + 0.01,
            reason="ScalingReplicaSet",
            message=f"Scaled {word} replica set {rs_name} from {old} to {new}",
            component="deployment-controller",
        )
        self._set_rs_replicas(ns, rs_name, new)
        template = dep["spec"]["template"]
        tpl = _template_params(template, body.get("logs"))
        containers = _container_specs(template)
        if new > old:
            for i in range(new - old):
                self.later(
                    t + 0.5 + i * interval, self._new_pod_step(ns, name, rs_name, tpl, containers)
                )
        else:
            current = list(self.factory.workload_pods.get((ns, name), []))
            for i, pod_name in enumerate(reversed(current[new:])):
                self.later(
                    t + 0.5 + i * interval, self._remove_pod_step(ns, name, rs_name, pod_name)
                )

    def _hpa_uid(self, ns: str, name: str) -> str:
        key = ("hpa", ns, name)
        if key not in self._event_names:
            self._event_names[key] = self.factory.uid()
        return self._event_names[key]


# ------------------------------------------------------------------------ utilities

_REVISION = "deployment.kubernetes.io/revision"
_RBAC = {"roles", "rolebindings", "clusterroles", "clusterrolebindings"}
_EXIT_CODES = {"OOMKilled": 137, "Error": 1, "Completed": 0, "ContainerCannotRun": 128}
_EVENT_ACTIONS = {
    "Scheduled": "Binding",
    "Pulling": "Pulling",
    "Pulled": "Pulled",
    "Created": "Created",
    "Started": "Started",
    "Killing": "Killing",
    "BackOff": "BackOff",
    "SuccessfulCreate": "Create",
    "SuccessfulDelete": "Delete",
    "ScalingReplicaSet": "Scaling",
    "SuccessfulRescale": "Scaling",
}


def _failure_status(
    code: int,
    user: str,
    verb: str,
    resource: str,
    subresource: str | None,
    group: str,
    namespace: str | None,
    name: str | None,
) -> dict[str, Any]:
    """The metav1.Status kube-apiserver answers a failed request with."""
    what = f"{resource}.{group}" if group else resource
    named = f'{what} "{name}"' if name else what
    details: dict[str, Any] = {"kind": resource}
    if name:
        details = {"name": name, **({"group": group} if group else {}), "kind": resource}
    if code == 403:
        res = f"{resource}/{subresource}" if subresource else resource
        scope = f'in the namespace "{namespace}"' if namespace else "at the cluster scope"
        message = (
            f'{named} is forbidden: User "{user}" cannot {verb} resource "{res}" '
            f'in API group "{group}" {scope}'
        )
        return {"status": "Failure", "message": message, "reason": "Forbidden", "details": details}
    if code == 404:
        return {
            "status": "Failure",
            "message": f"{named} not found",
            "reason": "NotFound",
            "details": details,
        }
    if code == 409:
        return {
            "status": "Failure",
            "message": f"{named} already exists",
            "reason": "AlreadyExists",
            "details": details,
        }
    if code == 401:
        return {"status": "Failure", "message": "Unauthorized", "reason": "Unauthorized"}
    return {"status": "Failure", "message": f"request failed with code {code}"}


def _qual(ns: str | None, name: str) -> str:
    return f"{ns}/{name}" if ns else name


def _backoff_text(seconds: int) -> str:
    return f"{seconds // 60}m{seconds % 60}s" if seconds >= 60 else f"{seconds}s"


def _with_container_pid(pod: dict[str, Any] | None, pid: int) -> dict[str, Any] | None:
    """The pod block with the process's PID as seen inside its container."""
    if pod is None:
        return None
    return {**pod, "container": {**pod["container"], "pid": pid}}


def _resource_of(kind: str) -> str:
    for resource, (_, _, k, _) in RESOURCE_KINDS.items():
        if k == kind:
            return resource
    return kind.lower() + "s"


def _request_form(obj: dict[str, Any], written: dict[str, Any]) -> dict[str, Any]:
    """What a client sends to create `obj` from the template `written`: no status, no
    server-set metadata, no defaults the client did not write."""
    req = {k: copy.deepcopy(v) for k, v in obj.items() if k not in ("status",)}
    meta = req.get("metadata") or {}
    for key in ("uid", "resourceVersion", "creationTimestamp", "generation", "managedFields"):
        meta.pop(key, None)
    spec = req.get("spec")
    if isinstance(spec, dict) and obj.get("kind") == "Pod":
        # The client sends the pod as written; the server adds defaults and the token volume.
        if not written.get("node"):
            spec.pop("nodeName", None)
        for c in spec.get("containers", []):
            c["volumeMounts"] = [
                m for m in c.get("volumeMounts", []) if not m["name"].startswith("kube-api-access")
            ]
            if not c["volumeMounts"]:
                c.pop("volumeMounts")
            for key in ("terminationMessagePath", "terminationMessagePolicy", "imagePullPolicy"):
                c.pop(key, None)
            if not c.get("resources"):
                c.pop("resources", None)
        spec["volumes"] = [
            v for v in spec.get("volumes", []) if not v["name"].startswith("kube-api-access")
        ]
        if not spec["volumes"]:
            spec.pop("volumes")
        for key in (
            "dnsPolicy",
            "enableServiceLinks",
            "preemptionPolicy",
            "priority",
            "schedulerName",
            "serviceAccount",
            "terminationGracePeriodSeconds",
        ):
            spec.pop(key, None)
        if not written.get("tolerations"):
            spec.pop("tolerations", None)
        if not spec.get("securityContext"):
            spec.pop("securityContext", None)
        if spec.get("serviceAccountName") == "default":
            spec.pop("serviceAccountName")
    return req


def _request_uri(
    verb: str,
    group: str,
    version: str,
    resource: str,
    namespace: str | None,
    name: str | None,
    subresource: str | None,
    query: Any,
    exec_spec: dict[str, Any] | None,
) -> str:
    """The requestURI kube-apiserver logs for this request (kubectl's query params)."""
    prefix = f"/apis/{group}/{version}" if group else f"/api/{version}"
    path = prefix
    if namespace:
        path += f"/namespaces/{namespace}"
    path += f"/{resource}"
    collection = verb in ("list", "watch", "create", "deletecollection") and not subresource
    if name and not collection:
        path += f"/{name}"
    elif name and verb == "watch":
        query = {"fieldSelector": f"metadata.name={name}", **(query or {})}
    if subresource:
        if name and collection:
            path += f"/{name}"
        path += f"/{subresource}"
    params: list[tuple[str, str]] = []
    if exec_spec is not None:
        for arg in exec_spec["command"]:
            params.append(("command", str(arg)))
        if exec_spec.get("container"):
            params.append(("container", str(exec_spec["container"])))
        tty = bool(exec_spec.get("tty", True))
        if not tty:
            params.append(("stderr", "true"))
        if exec_spec.get("stdin", True):
            params.append(("stdin", "true"))
        params.append(("stdout", "true"))
        if tty:
            params.append(("tty", "true"))
    elif query is not None:
        items = query.items() if isinstance(query, dict) else query
        for key, value in items:
            values = value if isinstance(value, list) else [value]
            params += [(str(key), _qv(v)) for v in values]
    elif verb == "list":
        params.append(("limit", "500"))
    elif verb == "watch":
        params += [("allowWatchBookmarks", "true"), ("watch", "true")]
    elif verb == "create" and not subresource:
        params += [("fieldManager", "kubectl-create"), ("fieldValidation", "Strict")]
    if verb == "watch" and query is not None and "watch" not in dict(params):
        params.append(("watch", "true"))
    return path + ("?" + urlencode(params) if params else "")


def _qv(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def _default_groups(user: str) -> list[str]:
    if user.startswith("system:serviceaccount:"):
        ns = user.split(":")[2]
        return ["system:serviceaccounts", f"system:serviceaccounts:{ns}", "system:authenticated"]
    if user.startswith("system:node:"):
        return ["system:nodes", "system:authenticated"]
    if user.startswith("system:kube-") or user == "system:apiserver":
        return ["system:authenticated"]
    if user == "system:anonymous":
        return ["system:unauthenticated"]
    return ["system:authenticated"]


def _default_agent(user: str) -> str:
    if user.startswith("system:serviceaccount:kube-system:"):
        return f"{KUBE_CONTROLLER_AGENT}/{user}"
    if user == "system:kube-controller-manager":
        return f"{KUBE_CONTROLLER_AGENT}/leader-election"
    if user.startswith("system:node:"):
        return KUBELET_AGENT
    if user == "system:kube-scheduler":
        return SCHEDULER_AGENT
    return KUBECTL_AGENT


def _refresh_pod_status(pod: dict[str, Any], t: float) -> None:
    status = pod["status"]
    statuses = status.get("containerStatuses") or []
    unready = [s["name"] for s in statuses if not s.get("ready")]
    policy = pod["spec"].get("restartPolicy", "Always")
    states = [s.get("state") or {} for s in statuses]
    if policy != "Always" and statuses and all("terminated" in st for st in states):
        codes = [st["terminated"].get("exitCode", 0) for st in states]
        status["phase"] = "Succeeded" if all(c == 0 for c in codes) else "Failed"
    elif any(s.get("containerID") for s in statuses):
        status["phase"] = "Running"
    else:
        status["phase"] = "Pending"
    for cond in status.get("conditions") or []:
        if cond["type"] not in ("Ready", "ContainersReady"):
            continue
        want = "False" if unready else "True"
        if cond.get("status") != want:
            cond["status"] = want
            cond["lastTransitionTime"] = k8s_time(t)
        if unready:
            cond["reason"] = (
                "PodCompleted"
                if status["phase"] in ("Succeeded", "Failed")
                else "ContainersNotReady"
            )
            if cond["reason"] == "ContainersNotReady":
                cond["message"] = f"containers with unready status: [{' '.join(unready)}]"
            else:
                cond.pop("message", None)
        else:
            cond.pop("reason", None)
            cond.pop("message", None)


def _template_params(template: dict[str, Any], logs: Any = None) -> dict[str, Any]:
    """The factory parameters that rebuild pods like those of a pod template."""
    spec = template["spec"]
    tpl: dict[str, Any] = {
        "serviceAccount": spec.get("serviceAccountName", "default"),
        "podSecurityContext": spec.get("securityContext") or {},
    }
    for key in ("volumes", "tolerations", "priorityClassName", "hostNetwork", "hostPID", "hostIPC"):
        if spec.get(key):
            tpl[key] = spec[key]
    if logs:
        tpl["logs"] = list(logs)
    return tpl


def _container_specs(template: dict[str, Any]) -> list[ContainerSpec]:
    return [
        ContainerSpec(
            name=c["name"],
            image=c["image"],
            command=c.get("command"),
            args=c.get("args"),
            ports=[p["containerPort"] for p in c.get("ports") or []],
            resources=c.get("resources") or None,
            security_context=c.get("securityContext"),
            env=c.get("env"),
            volume_mounts=c.get("volumeMounts"),
        )
        for c in template["spec"]["containers"]
    ]
