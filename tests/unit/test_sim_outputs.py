"""A simulated cluster started in a directory an earlier run used starts new streams."""

from __future__ import annotations

from pathlib import Path

from ktriage.sim.outputs import SimOutputs


def test_an_earlier_runs_streams_are_kept_aside_not_followed_again(tmp_path: Path) -> None:
    first = SimOutputs(tmp_path)
    first.audit.write({"kind": "Event", "auditID": "old"})
    first.tetragon.write({"process_exec": {}})
    first.audit.close()
    first.falco.close()
    first.tetragon.close()

    second = SimOutputs(tmp_path)
    second.audit.write({"kind": "Event", "auditID": "new"})
    second.audit.close()
    assert b'"old"' not in second.audit_path.read_bytes()
    assert b'"new"' in second.audit_path.read_bytes()
    kept = tmp_path / "audit.log.previous"
    assert b'"old"' in kept.read_bytes() and kept.stat().st_mode & 0o077 == 0
    assert sorted(p.name for p in second.kept_previous) == [
        "audit.log.previous",
        "tetragon.jsonl.previous",
    ]
    # An empty stream (falco wrote nothing) has nothing to keep.
    assert not (tmp_path / "falco.jsonl.previous").exists()
