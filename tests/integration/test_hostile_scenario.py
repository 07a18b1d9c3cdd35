"""The bundled `hostile` scenario, as an attacker plays it: records nested thousands
of levels deep, a privileged pod over a megabyte, times out of range, credentials in
every field and hidden characters. Replayed from its files and followed live with
`--headless`, ktriage keeps every source running, still sees the attack, and shows
no secret and no hidden character."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from test_headless import Headless, run

from ktriage.sim.audit import AuditWriter
from ktriage.sim.clock import ManualClock
from ktriage.sim.outputs import SimOutputs
from ktriage.sim.runner import SimCluster
from ktriage.sim.scenario.format import load_scenario
from ktriage.sim.scenario.player import ScenarioPlayer
from ktriage.sim.storage.store import ClusterStore

# What the scenario hides in its records: none of it may come out.
SECRETS = (
    "hunter2",
    "s3cret",
    "ghp_0123456789abcdef",
    "abcd1234secret",
    "eyJzdWIiOiJtYWxsb3J5In0",
    "eyJzdWIiOiJydW5uZXIifQ",
    "eyJzdWIiOiJleGVjIn0",
    "eyJzdWIiOiJlbmNvZGVkIn0",
    "ghp_ZYXWVUTSRQPONMLKJ",
    "wJalrXUtnFEMI",
    "AKIAIOSFODNN7EXAMPLE",
    "Sup3rS3cret",
)
HIDDEN = ("\u200b", "\u202e", "\u202c", "\u2028", "\x1b", "\x07", "\t")
PRIVILEGED_POD = {"kind": "Pod", "namespace": "kube-system", "name": "node-debugger"}


def play_to_files(directory: Path) -> list[Path]:
    clock = ManualClock(start=1_800_000_000.0)
    outputs = SimOutputs(directory)
    player = ScenarioPlayer(
        load_scenario("hostile"),
        store=ClusterStore(clock),
        audit=AuditWriter(outputs, clock),
        outputs=outputs,
        clock=clock,
    )
    player.play_all()
    outputs.close()
    assert player.errors == []
    return [outputs.audit_path, outputs.falco_path, outputs.tetragon_path]


def assert_nothing_leaks(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text, secret
    # JSON escapes would hide a raw character from the check: look at decoded text.
    for ch in HIDDEN:
        assert ch not in text, repr(ch)


def decoded_strings(lines: list[dict]) -> str:
    """Every string value of the JSON lines, decoded, one per line."""
    out: list[str] = []

    def walk(v: object) -> None:
        if isinstance(v, str):
            out.append(v)
        elif isinstance(v, dict):
            for k, x in v.items():
                walk(k)
                walk(x)
        elif isinstance(v, list):
            for x in v:
                walk(x)

    for line in lines:
        walk(line)
    return "\n".join(out)


def test_hostile_scenario_replayed_from_its_files(tmp_path: Path) -> None:
    paths = [str(p) for p in play_to_files(tmp_path / "out")]
    assert (tmp_path / "out" / "audit.log").stat().st_size > 1 << 20
    result = run(["replay", "--json", *paths], tmp_path, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    incidents = [line for line in lines if "id" in line]
    skipped = lines[-1]["skipped"]["by_reason"]
    # The deep and the oversized records are read in part and counted, not lost.
    assert skipped == {"too-deep": 1, "too-long": 1}
    assert lines[-1]["skipped"]["read_in_part"] == skipped
    assert "Read 2 line(s) in part" in result.stderr
    events = [e for inc in incidents for e in inc["events"]]
    kinds = {e["kind"] for e in events}
    # The oversized pod still raises its detection, and the attack after it is seen.
    assert any(PRIVILEGED_POD in inc["entities"] for inc in incidents)
    privileged = [e for e in events if e["kind"] == "privileged-pod"]
    assert privileged and privileged[0]["severity"] == "critical"
    assert "over 1 MiB" in privileged[0]["summary"]
    assert {"exec", "download", "shell"} <= kinds
    assert any("nested too deeply" in e["summary"] for e in events)
    assert any("time out of range" in e["summary"] for e in events)
    assert_nothing_leaks(decoded_strings(lines))
    assert "<redacted>" in result.stdout
    assert "kube\\\\u200b-system" in result.stdout  # shown escaped, inside JSON

    text = run(["replay", "--text", *paths], tmp_path, timeout=120)
    assert text.returncode == 0 and "Traceback" not in text.stderr
    assert_nothing_leaks(text.stdout + text.stderr)
    snapshots = tmp_path / "snapshots"
    md = run(["replay", "--markdown", str(snapshots), *paths], tmp_path, timeout=120)
    assert md.returncode == 0, md.stderr[-2000:]
    written = list(snapshots.glob("*.md"))
    assert written
    for path in written:
        assert_nothing_leaks(path.read_text())
        assert path.stat().st_mode & 0o077 == 0


@pytest.mark.sim
def test_hostile_scenario_followed_live(
    make_sim_cluster: Callable[..., SimCluster], tmp_path: Path
) -> None:
    sim = make_sim_cluster(scenario="hostile", clock=ManualClock())
    k = Headless(
        [
            "--kubeconfig",
            str(sim.kubeconfig_path),
            "--audit-log",
            str(sim.outputs.audit_path),
            "--from-start",
        ],
        tmp_path,
    )
    try:
        for name in ("kube pods", "falco auto", "tetragon auto"):
            k.wait_for(
                lambda name=name: any(name in e and ": connected" in e for e in k.err),
                what=f"{name} connected",
            )
        while not sim.player.done:
            sim.advance(2.0)

        def seen() -> bool:
            events = [e for inc in k.incidents() for e in inc["events"]]
            kinds = {e["kind"] for e in events}
            return {"privileged-pod", "exec", "download"} <= kinds

        k.wait_for(seen, timeout=60, what="the attack behind the hostile records")
        started = time.monotonic()
        k.wait_for(lambda: time.monotonic() - started > 1.0, what="late updates")
        code = k.stop()
    finally:
        k.kill()
    assert code == 0, k.err[-5:]
    assert not any("Traceback" in line for line in k.err)
    # No source failed because of what it read.
    assert not any(": failed" in line for line in k.err), k.err
    assert_nothing_leaks(decoded_strings(k.lines))
    assert_nothing_leaks("\n".join(k.err))
    reasons = k.lines[-1]["skipped"]["by_reason"]
    assert reasons.get("too-deep") == 1 and reasons.get("too-long") == 1
    assert k.lines[-1]["skipped"]["read_in_part"] == {"too-deep": 1, "too-long": 1}
