"""Benchmark: an incident's containment state, as the Detail pane and the snapshot compute it.

Builds one incident of `--signals` audit signals (one acting ServiceAccount, spread
over `--pods` pods), fed with ten times as many runtime context events, attaches
`--actions` isolation records, and times the computation (best of `--repeat`).

    .venv/bin/python benchmarks/containment_state.py --signals 20000
"""

from __future__ import annotations

import argparse
import time

from ktriage.core.containment import containment_state, fact
from ktriage.core.correlate import Correlator
from ktriage.core.model import EntityKind, Event, Severity, entity


def build(signals: int, pods: int, actions: int) -> tuple[Correlator, str]:
    correlator = Correlator()
    refs = [entity(EntityKind.POD, "shop", f"web-{i}") for i in range(pods)]
    actor = entity(EntityKind.SERVICE_ACCOUNT, "ci", "runner")
    for i in range(signals * 10):
        pod = refs[i % pods]
        signal = i % 10 == 0
        correlator.add(
            Event(
                time=1_000 + i * 0.01,
                source="audit" if signal else "tetragon",
                ref=f"e{i}",
                kind="exec",
                severity=Severity.HIGH if signal else Severity.INFO,
                summary="exec",
                entities=(actor, pod) if signal else (pod,),
                signal=signal,
                label="Exec" if signal else "",
            )
        )
    (incident,) = correlator.incidents
    for i in range(actions):
        subject = f"pod shop/web-{i % pods}"
        correlator.attach(
            incident,
            Event(
                time=1_000 + signals * 0.1 + i,
                source="ktriage",
                ref=f"a{i}",
                kind="action-isolate",
                severity=Severity.INFO,
                summary="isolate",
                entities=(refs[i % pods],),
                raw_inline={
                    "action": "isolate",
                    "result": "ok",
                    "actor": "oncall",
                    "containment": [fact("network", subject, "isolated", "checked")],
                },
            ),
        )
    return correlator, incident


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--signals", type=int, default=20_000)
    parser.add_argument("--pods", type=int, default=50)
    parser.add_argument("--actions", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    correlator, incident_id = build(args.signals, args.pods, args.actions)
    incident = correlator.resolve(incident_id)
    assert incident is not None
    get = correlator.store.get
    best = float("inf")
    state = None
    for _ in range(args.repeat):
        started = time.perf_counter()
        events = [get(eid) for _, eid in incident.timeline]
        state = containment_state(incident, events)
        best = min(best, time.perf_counter() - started)
    assert state is not None
    print(
        f"{incident.event_count} events ({incident.signal_count} signals, {args.pods} pods, "
        f"{args.actions} action records): containment state in {best * 1000:.1f} ms "
        f"(best of {args.repeat}); {len(state.items)} items, {len(state.next_steps)} next "
        f"steps, {state.level}"
    )


if __name__ == "__main__":
    main()
