"""The secret corpus in every attacker-controlled field reaches no output: replay
--json, --text, --markdown (snapshots and their appendix) and headless JSON lines."""

from __future__ import annotations

import json
from pathlib import Path

from hostile_records import HIDDEN, SECRETS, leaks, write_inputs
from secret_corpus import OPAQUE

from ktriage.cli import main
from ktriage.core.ingest import Ingestor
from ktriage.engine import Engine
from ktriage.live import IncidentPrinter


def test_hostile_secret_corpus_reaches_no_replay_json(tmp_path: Path, capsysbinary) -> None:
    inputs = write_inputs(tmp_path)
    # A record of no known format: its keys are named in the skipped-line details.
    odd = tmp_path / "odd.jsonl"
    odd.write_text(json.dumps({f"Authorization: Bearer {OPAQUE}{HIDDEN}": 1}) + "\n")
    assert main(["replay", "--json", *map(str, inputs), str(odd)]) == 0
    captured = capsysbinary.readouterr()
    out, err = captured.out.decode(), captured.err.decode()
    assert leaks(err) == [] and "Skipped 1" in err
    lines = [json.loads(line) for line in out.splitlines()]  # still valid JSON
    assert lines[-1]["skipped"]["total"] == 1
    incidents = [line for line in lines if "events" in line]
    assert incidents, out
    events = [e for inc in incidents for e in inc["events"]]
    # Every record became an event of an incident: each was checked, none left out.
    assert {e["source"] for e in events} == {"audit", "falco", "tetragon"}
    assert len(events) == 4
    assert leaks(out) == []
    assert "<redacted>" in out
    # Hidden characters are shown as escapes (a JSON string holding `\u200b`).
    assert "\\\\u200b" in out


def test_hostile_secret_corpus_reaches_no_text_report(tmp_path: Path, capsys) -> None:
    inputs = write_inputs(tmp_path)
    assert main(["replay", "--text", *map(str, inputs)]) == 0
    captured = capsys.readouterr()
    assert "INC-" in captured.out
    assert "User ci-bot:<redacted>" in captured.out  # the entity list, redacted
    assert leaks(captured.out) == [] and leaks(captured.err) == []


def test_hostile_secret_corpus_reaches_no_markdown_snapshot(tmp_path: Path) -> None:
    inputs = write_inputs(tmp_path)
    out_dir = tmp_path / "snapshots"
    assert main(["replay", "--markdown", str(out_dir), *map(str, inputs)]) == 0
    snapshots = list(out_dir.glob("*.md"))
    assert snapshots
    text = "\n".join(p.read_text() for p in snapshots)
    # The appendix holds the raw records: the exec URI, user agent, pod spec, alert.
    assert "## Appendix: key raw events" in text
    assert "requestURI" in text and "userAgent" in text and "output_fields" in text
    assert "DB_PASSWORD" in text and "last-applied-configuration" in text
    assert leaks(text) == []
    assert "\\u200b" in text


def test_hostile_secret_corpus_reaches_no_headless_line(tmp_path: Path) -> None:
    ingestor = Ingestor()
    events = []
    for path in write_inputs(tmp_path):
        for n, line in enumerate(path.read_bytes().splitlines(), 1):
            events += ingestor.feed_line(line, origin=f"{path.name}:{n}")
    events += ingestor.flush()
    engine = Engine()
    engine.add_events(events)
    written: list[bytes] = []
    printer = IncidentPrinter(engine, written.append, clock=lambda: 0.0)
    printer.tick(force=True)
    assert written
    out = b"".join(written).decode()
    for line in out.splitlines():
        json.loads(line)
    assert "tetragon" in out and "falco" in out
    assert leaks(out) == []
    # The records really held the secrets (the check above is not vacuous).
    raw = "".join(p.read_text() for p in tmp_path.glob("*.jsonl"))
    assert len(leaks(raw)) > len(SECRETS) // 2
