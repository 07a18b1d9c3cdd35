"""The scenario player: builds a scenario's cluster and plays its steps into the sim.

The `ScenarioPlayer` builds the cluster in a `ClusterStore`, then plays each step at
its scenario time through the handler `steps.STEP_HANDLERS` names for its action: it
changes objects, writes audit events through the `AuditWriter`, and writes Falco and
Tetragon records both to their JSON-line files and to the stdout logs of the
`falco` / `tetragon` pods on the node where they happened.
"""

from __future__ import annotations

import asyncio
import heapq
import inspect
import logging
import re
from collections.abc import Callable
from typing import Any

from ktriage.sim.clock import ManualClock, SimClock
from ktriage.sim.outputs import SimOutputs
from ktriage.sim.scenario.context import PodContext, StepFailed
from ktriage.sim.scenario.factory import ObjectFactory
from ktriage.sim.scenario.format import PLACEHOLDER_RE, Scenario, Step
from ktriage.sim.scenario.runtime_records import TetragonProcess
from ktriage.sim.scenario.steps import STEP_HANDLERS
from ktriage.sim.scenario.templates import NodeInfo, TemplateError, api_version_of

log = logging.getLogger(__name__)

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
        self.processes: dict[tuple[str, str, str], list[TetragonProcess]] = {}
        self.shims: dict[tuple[str, str, str], TetragonProcess] = {}
        self.event_names: dict[tuple[str, str, str], str] = {}
        self.emit_params = set(inspect.signature(audit.emit).parameters)
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
        handler = STEP_HANDLERS[step.action]

        def run(t: float) -> None:
            handler(self, self._fill(step.body, step), t)

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
                self.apply(obj)
        for ns, pod, container, line, t in self.factory.initial_logs:
            self.store.append_log(ns, pod, container, line, time=min(t, self.start))
        self.factory.initial_logs.clear()

    def apply(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Store a built object, its ownerReferences pointing at the stored owners."""
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

            return PLACEHOLDER_RE.sub(one, text)

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

    def target(self, body: dict[str, Any]) -> tuple[str, str, str | None, str]:
        """(apiVersion, kind, namespace, name) a step names by `pod` or `kind`/`name`."""
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

    def daemon_pod(self, namespace: str, app: str, node: str) -> str | None:
        """The pod of a DaemonSet (`falco`, `tetragon`) that runs on `node`."""
        for pod in self.store.list_objs("v1", "Pod", namespace):
            labels = pod["metadata"].get("labels") or {}
            if labels.get("app.kubernetes.io/name") == app and pod["spec"].get("nodeName") == node:
                return pod["metadata"]["name"]
        return None
