"""The step handlers, one per scenario action, in an explicit table.

A handler takes the player, the step's body (placeholders filled) and the step's
scenario time. `format.ACTIONS` says which keys each action takes; the two tables
name the same actions (a test checks it).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ktriage.sim.scenario.steps import audit, events, objects, raw, runtime, workloads

if TYPE_CHECKING:
    from ktriage.sim.scenario.player import ScenarioPlayer

StepHandler = Callable[["ScenarioPlayer", dict[str, Any], float], None]

STEP_HANDLERS: dict[str, StepHandler] = {
    "create": objects.create,
    "patch": objects.patch,
    "delete": objects.delete,
    "container_state": objects.container_state,
    "pod_log": objects.pod_log,
    "audit": audit.audit,
    "falco": runtime.falco,
    "tetragon": runtime.tetragon,
    "k8s_event": events.k8s_event,
    "rollout": workloads.rollout,
    "scale": workloads.scale,
    "raw": raw.raw,
}
