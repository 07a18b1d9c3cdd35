"""Headless output a consumer can apply: when incidents merge, are renamed or close,
`IncidentPrinter` says which id went where, so the consumer ends with the incidents
the correlator holds (and a replay of the same input gives)."""

from __future__ import annotations

import itertools
from typing import Any

import orjson

from ktriage.core.config import Config, Suppression
from ktriage.core.model import Attack, EntityRef, Event, Severity, entity
from ktriage.engine import Engine
from ktriage.live import IncidentPrinter

POD = entity("Pod", "shop", "web-1")
T0 = 1_800_000_000.0
WINDOW = 1800.0  # the default correlation window (30 min)
_refs = itertools.count()


def signal(t: float, *ents: EntityRef, source: str = "falco", label: str = "Shell") -> Event:
    return Event(
        time=T0 + t,
        source=source,
        ref=f"{source}-{next(_refs)}",
        kind=label.lower().replace(" ", "-"),
        severity=Severity.HIGH,
        summary=f"{label} at {t}",
        entities=ents or (POD,),
        attack=Attack("execution", "T1059"),
        signal=True,
        label=label,
    )


class Consumer:
    """Applies headless lines the way the README says: the last line per id wins,
    a merged or closed line drops its id."""

    def __init__(self) -> None:
        self.incidents: dict[str, dict[str, Any]] = {}
        self.retired: list[dict[str, Any]] = []

    def apply(self, raw: bytes) -> None:
        line = orjson.loads(raw)
        if line.get("type") in ("merged", "closed"):
            self.retired.append(line)
            self.incidents.pop(line["id"], None)
        elif "id" in line:
            self.incidents[line["id"]] = line


def printer_and_consumer(engine: Engine) -> tuple[IncidentPrinter, Consumer, list[float]]:
    consumer = Consumer()
    now = [0.0]
    printer = IncidentPrinter(engine, consumer.apply, interval=0.5, clock=lambda: now[0])
    return printer, consumer, now


def held(engine: Engine) -> dict[str, str]:
    return {i.id: i.title for i in engine.correlator.incidents.values()}


def seen(consumer: Consumer) -> dict[str, str]:
    return {iid: line["title"] for iid, line in consumer.incidents.items()}


def test_headless_merge_between_ticks_retires_the_merged_ids() -> None:
    engine = Engine()
    printer, consumer, now = printer_and_consumer(engine)
    # Three signals on one pod, each beyond the window of the others: three incidents.
    engine.add_events([signal(0), signal(2 * WINDOW * 0.9), signal(4 * WINDOW * 0.9)])
    printer.tick()
    assert len(consumer.incidents) == 3
    first = min(engine.correlator.incidents.values(), key=lambda i: i.first_seen).id
    # Two bridges arrive: everything is one incident, the earliest one's.
    now[0] += 0.1  # within the print interval: the retiring lines are not held back
    engine.add_events([signal(WINDOW * 0.9), signal(3 * WINDOW * 0.9)])
    printer.tick()
    assert list(held(engine)) == [first]
    assert seen(consumer) == held(engine)
    assert sorted(r["id"] for r in consumer.retired) == sorted(set(printer.last_print) - {first})
    assert all(r == {"type": "merged", "id": r["id"], "into": first} for r in consumer.retired)
    # The surviving incident's line carries every signal.
    assert len(consumer.incidents[first]["events"]) == 5


def test_headless_merge_within_one_tick_needs_no_line_for_an_id_never_printed() -> None:
    engine = Engine()
    printer, consumer, now = printer_and_consumer(engine)
    engine.add_events([signal(0)])
    printer.tick()
    (first,) = consumer.incidents
    # Between two ticks a second incident opens and a bridge merges it away.
    engine.add_events([signal(2 * WINDOW * 0.9)])
    engine.add_events([signal(WINDOW * 0.9)])
    now[0] += 1
    printer.tick()
    assert consumer.retired == []  # the consumer never saw the other id
    assert seen(consumer) == held(engine) and list(held(engine)) == [first]


def test_headless_merge_rename_by_an_earlier_signal_names_the_new_id() -> None:
    engine = Engine()
    printer, consumer, _ = printer_and_consumer(engine)
    engine.add_events([signal(100)])
    printer.tick()
    (old,) = consumer.incidents
    # A signal from before arrives late: the incident takes that signal's id.
    engine.add_events([signal(50, source="audit", label="Exec into pod")])
    printer.tick()
    (new,) = held(engine)
    assert new != old
    assert consumer.retired == [{"type": "merged", "id": old, "into": new}]
    assert seen(consumer) == held(engine)


def test_headless_merge_chain_in_one_tick_retires_each_printed_id_once() -> None:
    engine = Engine()
    printer, consumer, now = printer_and_consumer(engine)
    engine.add_events([signal(0), signal(2 * WINDOW * 0.9)])
    printer.tick()
    engine.add_events([signal(4 * WINDOW * 0.9)])
    now[0] += 1
    printer.tick()
    assert len(consumer.incidents) == 3
    # Within one tick: the last two merge, then an earlier signal renames the result's
    # head and a bridge joins everything.
    engine.add_events([signal(3 * WINDOW * 0.9)])
    engine.add_events([signal(-10, source="audit", label="Exec into pod")])
    engine.add_events([signal(WINDOW * 0.9)])
    printer.tick()
    (survivor,) = held(engine)
    assert sorted(r["id"] for r in consumer.retired) == sorted(
        i for i in printer.last_print if i != survivor
    )
    assert {r["into"] for r in consumer.retired} == {survivor}
    assert seen(consumer) == held(engine)
    # Nothing changed since: no line more.
    before = printer.lines
    now[0] += 5
    printer.tick(force=True)
    assert printer.lines == before


def test_headless_merge_closed_incident_is_retired() -> None:
    alice = entity("User", "", "sre-alice")
    dev = entity("Namespace", "", "dev")
    pod = entity("Pod", "dev", "api-1")
    rule = Suppression(user="sre-alice", namespace="dev", reason="expected SRE access")
    engine = Engine(Config(suppressions=[rule]))
    printer, consumer, _ = printer_and_consumer(engine)
    shell = signal(0.7, pod, dev, source="falco", label="Shell")
    shell.severity = Severity.LOW  # a plain shell: what an expected exec covers
    engine.add_events([shell])
    printer.tick()
    (opened,) = consumer.incidents
    # The exec that explains the shell arrives late: the incident closes.
    exec_event = signal(0, alice, pod, dev, source="audit", label="Exec into pod")
    exec_event.kind = "exec"
    exec_event.severity = Severity.MEDIUM
    engine.add_events([exec_event])
    printer.tick()
    assert held(engine) == {}
    assert consumer.retired == [{"type": "closed", "id": opened}]
    assert consumer.incidents == {}
