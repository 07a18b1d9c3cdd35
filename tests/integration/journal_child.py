"""A ktriage process that isolates one pod, for the tests that kill it in the middle.

Not a test: `test_actions_unfinished.py` runs it as a subprocess
(`python journal_child.py KUBECONFIG SNAPSHOT_DIR NAMESPACE POD SIGNAL_REF`) and
sends it SIGKILL while the simulated cluster holds its label patch. It goes
through ActionService exactly as the UI does: prepare (check, plan, dry run),
then apply.
"""

from __future__ import annotations

import asyncio
import sys
import time

from ktriage.actions import ActionService, kubeconfig_factory
from ktriage.core.model import EntityKind, Event, Severity, entity
from ktriage.engine import Engine


def incident_engine(ns: str, pod: str, ref: str, when: float) -> tuple[Engine, str]:
    """An engine holding one incident about the pod, opened by a Falco alert `ref`."""
    engine = Engine()
    signal = Event(
        time=when,
        source="falco",
        ref=ref,
        kind="shell",
        severity=Severity.HIGH,
        summary=f"Shell spawned in {ns}/{pod}",
        entities=(entity(EntityKind.POD, ns, pod),),
        signal=True,
        label="Shell",
    )
    engine.add_events([signal])
    (incident,) = engine.correlator.incidents.values()
    return engine, incident.id


async def isolate(kubeconfig: str, directory: str, ns: str, pod: str, ref: str) -> None:
    engine, incident = incident_engine(ns, pod, ref, time.time() - 60)
    service = ActionService(engine, kubeconfig_factory(kubeconfig, "sim-admin"), directory)
    plan = await service.prepare("i", incident, (ns, pod))
    print("applying", flush=True)
    outcome = await service.apply(plan)
    print(outcome.result, outcome.message, flush=True)


if __name__ == "__main__":
    asyncio.run(isolate(*sys.argv[1:6]))
