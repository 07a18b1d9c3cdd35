"""A focused replay gives exactly what a full replay gives, for less work."""

from __future__ import annotations

import importlib.util
import json
import random
from pathlib import Path

import pytest

from ktriage.core.correlate import Correlator
from ktriage.core.replay import Replayer
from ktriage.core.report import incident_json_line
from ktriage.sim.audit import AuditWriter
from ktriage.sim.clock import ManualClock
from ktriage.sim.outputs import SimOutputs
from ktriage.sim.scenario import ScenarioPlayer, load_scenario
from ktriage.sim.store import ClusterStore

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT.parent / "shared" / "fixtures" / "real"


def _replay(paths: list[Path], *, focus: bool) -> tuple[list[bytes], dict, Replayer]:
    correlator = Correlator()
    replayer = Replayer(correlator, focus=focus, focus_min_bytes=0)
    replayer.replay(paths)
    lines = [
        incident_json_line(i, correlator.events_of(i.id)) for i in correlator.sorted_incidents()
    ]
    return lines, dict(replayer.ingestor.skipped), replayer


def _assert_same(paths: list[Path]) -> Replayer:
    full, full_skips, _ = _replay(paths, focus=False)
    focused, focused_skips, replayer = _replay(paths, focus=True)
    assert focused == full
    assert focused_skips == full_skips
    return replayer


def _benchmark_module():
    spec = importlib.util.spec_from_file_location("replay_bench", ROOT / "benchmarks" / "replay.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generated_cluster_traffic_gives_the_same_incidents(tmp_path: Path) -> None:
    path = tmp_path / "mixed.jsonl"
    _benchmark_module().generate(path, 30_000)
    replayer = _assert_same([path])
    # Most lines were checked and left out, so the test is about the focused path.
    assert replayer.stats.unrelated > 20_000
    assert len(replayer.correlator.store) < 10_000


def test_bad_and_untimed_lines_are_skipped_and_placed_the_same(tmp_path: Path) -> None:
    path = tmp_path / "mixed.jsonl"
    _benchmark_module().generate(path, 5_000)
    lines = path.read_bytes().splitlines()
    rng = random.Random(3)
    untimed = json.loads(lines[10])
    for key in ("stageTimestamp", "requestReceivedTimestamp"):
        untimed.pop(key, None)
    bad = [
        b'{"kind":"Event","auditID":"x","verb":',
        b"\x00\xffgarbage",
        b'{"kind":"Event","auditID":"y","verb":"get","stageTimestamp":12,"user":5}',
        b'{"kind":"Event","auditID":"z","verb":"get","stageTimestamp":"not a time"}',
        json.dumps(untimed).encode(),
        b'{"process_exit":{"process":{"binary":"/bin/true"}},"time":"yesterday"}',
    ]
    for item in bad:
        lines.insert(rng.randrange(len(lines)), item)
    path.write_bytes(b"\n".join(lines) + b"\n")
    _assert_same([path])


@pytest.mark.parametrize("scenario", ["cryptominer", "token-theft", "quiet-day"])
def test_scenario_streams_give_the_same_incidents(tmp_path: Path, scenario: str) -> None:
    clock = ManualClock(1_790_000_000.0)
    outputs = SimOutputs(tmp_path)
    player = ScenarioPlayer(
        load_scenario(scenario),
        store=ClusterStore(clock),
        audit=AuditWriter(outputs, clock),
        outputs=outputs,
        clock=clock,
    )
    player.play_all()
    outputs.close()
    _assert_same([outputs.audit_path, outputs.falco_path, outputs.tetragon_path])


def test_real_captured_lines_give_the_same_incidents() -> None:
    if not FIXTURES.is_dir():
        pytest.skip(f"real fixtures not found at {FIXTURES} (../shared is not beside the repo)")
    paths = sorted(FIXTURES.glob("k8s-audit-v1/*.jsonl")) + sorted(FIXTURES.glob("falco-alerts/*"))
    assert paths
    _assert_same(paths)
