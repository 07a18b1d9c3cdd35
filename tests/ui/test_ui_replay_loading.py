"""`ktriage replay FILE` loads in the background: the first incidents show at once, keys
are answered while the rest loads, and the status line says "complete" only when it is."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import orjson
from pilot_waiting import until
from ui_helpers import make_app, screen_text

from ktriage.core.config import Config
from ktriage.engine import Engine
from ktriage.ui.screens.help import HelpScreen
from ktriage.ui.widgets.incident_list import IncidentList
from ktriage.ui.widgets.status_bar import StatusBar
from ktriage.ui.widgets.timeline import Timeline

T0 = 1_790_000_000.0


def _stamp(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1e6):06d}Z"


def _audit(
    i: int, user: str, verb: str, name: str, subresource: str = "", ip: str = "10.0.0.2"
) -> bytes:
    ref = {"resource": "pods", "namespace": "shop", "name": name, "apiVersion": "v1"}
    if subresource:
        ref["subresource"] = subresource
    t = T0 + i * 0.01
    return orjson.dumps(
        {
            "kind": "Event",
            "apiVersion": "audit.k8s.io/v1",
            "level": "Metadata",
            "auditID": str(uuid.UUID(int=i + 1)),
            "stage": "ResponseComplete",
            "requestURI": f"/api/v1/namespaces/shop/pods/{name}"
            + (f"/{subresource}?command=sh&stdin=true&tty=true" if subresource else ""),
            "verb": verb,
            "user": {"username": user, "groups": ["system:authenticated"]},
            "sourceIPs": [ip],
            "objectRef": ref,
            "responseStatus": {"code": 101 if subresource else 200},
            "requestReceivedTimestamp": _stamp(t),
            "stageTimestamp": _stamp(t),
        }
    )


def _recording(path: Path, lines: int) -> Path:
    """Two execs into pods (two incidents) early, then ordinary reads."""
    out = [
        _audit(0, "mallory", "create", "web-1", "exec", "203.0.113.50"),
        _audit(1, "eve", "create", "db-0", "exec", "198.51.100.7"),
    ]
    out += [_audit(i, "alice@example.com", "get", f"web-{i % 9}") for i in range(2, lines)]
    path.write_bytes(b"\n".join(out) + b"\n")
    return path


def _gated(load, after: int, gate: dict[str, bool]) -> None:
    """Hold the background load after `after` slices until the test opens the gate: the
    load is then provably unfinished while the test presses keys."""
    real = load.loader.steps

    def steps() -> Iterator[None]:
        for i, step in enumerate(real()):
            yield step
            while i == after and not gate["open"]:
                yield None

    load.loader.steps = steps


def _status(app) -> str:
    bar = app.screen.query_one(StatusBar)
    return bar.render().plain


async def test_keys_answered_while_a_big_replay_loads_and_complete_only_when_loaded(tmp_path):
    path = _recording(tmp_path / "big.jsonl", 20_000)
    engine = Engine(Config())
    engine.context_name = "replay"
    load = engine.replay_in_background([path])
    gate = {"open": False}
    _gated(load, after=2, gate=gate)
    app = make_app(engine, tmp_path, start_sources=True, clock=lambda: T0 + 300)
    async with app.run_test(size=(160, 45)) as pilot:
        incidents = app.screen.query_one(IncidentList)
        await until(pilot, lambda: len(incidents.shown) == 2, 10, "the first incidents")
        await until(pilot, lambda: "loading" in _status(app), 5, "the loading status")
        assert not load.complete
        assert "complete" not in _status(app)
        assert len(engine.store) < 20_000
        # Keys work while the load is held unfinished: move, open help, close it.
        timeline = app.screen.query_one(Timeline)
        first = incidents.selected
        await pilot.press("j")
        await until(pilot, lambda: incidents.selected is not first, 5, "the next incident")
        assert timeline.incident.id == incidents.selected.id
        await pilot.press("question_mark")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen), 5, "the help screen")
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, HelpScreen), 5, "help closed")
        assert not load.complete
        assert "complete" not in _status(app)
        gate["open"] = True
        await until(pilot, lambda: load.complete, 60, "the load to finish")
        await until(pilot, lambda: "complete" in _status(app), 5, "the complete status")
        assert "loading" not in _status(app)
        assert len(engine.store) == 20_000
        assert "INC-" in screen_text(app)


async def test_background_load_ends_with_what_a_synchronous_replay_shows(tmp_path):
    path = _recording(tmp_path / "r.jsonl", 3_000)
    whole = Engine(Config())
    whole.replay_files([path])
    engine = Engine(Config())
    load = engine.replay_in_background([path])
    app = make_app(engine, tmp_path, start_sources=True)
    async with app.run_test(size=(120, 36)) as pilot:
        await until(pilot, lambda: load.complete, 60, "the load to finish")
        incidents = app.screen.query_one(IncidentList)
        want = [(i.id, i.title, i.event_count) for i in whole.correlator.sorted_incidents()]
        await until(
            pilot,
            lambda: [(i.id, i.title, i.event_count) for i in incidents.all_incidents] == want,
            5,
            "the same incidents as a whole replay",
        )
    assert [ev.ref for ev in engine.store] == [ev.ref for ev in whole.store]
