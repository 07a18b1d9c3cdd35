"""`ktriage replay`: reports, JSON lines, Markdown snapshots and bad input."""

from __future__ import annotations

import gzip
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from markdown_check import assert_inert, code_spans

from ktriage.cli import main

EXEC = {
    "kind": "Event",
    "apiVersion": "audit.k8s.io/v1",
    "level": "Metadata",
    "auditID": "0b8c6f3e-1111-4a55-9a3e-6d2c1c1b0001",
    "stage": "ResponseStarted",
    "requestURI": "/api/v1/namespaces/shop/pods/web-1/exec?command=sh&container=web&stdin=true",
    "verb": "create",
    "user": {"username": "mallory", "groups": ["system:authenticated"]},
    "sourceIPs": ["203.0.113.50"],
    "objectRef": {
        "resource": "pods",
        "namespace": "shop",
        "name": "web-1",
        "apiVersion": "v1",
        "subresource": "exec",
    },
    "responseStatus": {"metadata": {}, "code": 101},
    "requestReceivedTimestamp": "2026-11-27T03:00:00.000000Z",
    "stageTimestamp": "2026-11-27T03:00:00.100000Z",
}
FALCO = {
    "uuid": "8e2c0a52-9d0d-4a6a-8b0c-0e5f8d6c1a01",
    "time": "2026-11-27T03:00:05.123456789Z",
    "rule": "Terminal shell in container",
    "priority": "Notice",
    "source": "syscall",
    "hostname": "node-a",
    "output": "03:00:05.123456789: Notice A shell was spawned (user=root k8s.pod=web-1 "
    "shell=sh cmdline=[bold red]sh -c id[/] \x1b]52;c;ZXZpbA==\x07)",
    "output_fields": {
        "k8s.ns.name": "shop",
        "k8s.pod.name": "web-1",
        "container.id": "0123456789ab",
        "proc.cmdline": "sh -c id",
    },
    "tags": ["container", "shell", "mitre_execution", "T1059"],
}


def _write_lines(path: Path, records: list, extra: list[bytes] = ()) -> Path:
    with open(path, "wb") as fh:
        for rec in records:
            fh.write(json.dumps(rec).encode() + b"\n")
        for raw in extra:
            fh.write(raw + b"\n")
    return path


def test_json_lines_are_the_stable_format(tmp_path: Path, capsysbinary) -> None:
    audit = _write_lines(tmp_path / "audit.log", [EXEC])
    falco = _write_lines(tmp_path / "falco.jsonl", [FALCO])
    assert main(["replay", "--json", str(audit), str(falco)]) == 0
    out = capsysbinary.readouterr().out.decode().splitlines()
    incidents = [json.loads(line) for line in out[:-1]]
    assert len(incidents) == 1
    inc = incidents[0]
    assert set(inc) == {
        "id", "severity", "title", "first_seen", "last_seen", "tactics", "entities", "events",
    }  # fmt: skip
    assert inc["id"].startswith("INC-")
    assert "shop/web-1" in inc["title"]
    assert {"kind": "Pod", "namespace": "shop", "name": "web-1"} in inc["entities"]
    assert [e["source"] for e in inc["events"]] == ["audit", "falco"]
    assert set(inc["events"][0]) == {"source", "ref", "time", "kind", "severity", "summary"}
    assert inc["first_seen"] == "2026-11-27T03:00:00.100000Z"
    assert "execution" in inc["tactics"]
    # Corroborated by two sources: raised above the strongest single signal.
    assert inc["severity"] in ("high", "critical")
    assert json.loads(out[-1]) == {
        "skipped": {"total": 0, "by_reason": {}, "read_in_part": {}, "lines": []}
    }


def test_same_input_same_output_in_any_file_order(tmp_path: Path, capsysbinary) -> None:
    audit = _write_lines(tmp_path / "a.log", [EXEC])
    falco = _write_lines(tmp_path / "f.jsonl", [FALCO])
    main(["replay", "--json", str(audit), str(falco)])
    first = capsysbinary.readouterr().out
    main(["replay", "--json", str(falco), str(audit)])
    assert capsysbinary.readouterr().out == first


def test_bad_lines_are_skipped_counted_and_named(tmp_path: Path, capsysbinary) -> None:
    bad = [
        b'{"kind": "Event", "auditID": "x", "verb": ',  # truncated
        b"not json at all",
        b"\x00\xff\xfe\x01garbage",
        b"[1, 2, 3]",
        b'{"hello": "world"}',
        b'{"rule": "x", "priority": "Warning", "time": 12, "output": 5}',
        b"{" + b'"a":"' + b"x" * (1 << 20) + b'"}',
    ]
    path = _write_lines(tmp_path / "mixed.log", [EXEC], bad)
    assert main(["replay", "--json", str(path)]) == 0
    captured = capsysbinary.readouterr()
    lines = captured.out.decode().splitlines()
    skipped = json.loads(lines[-1])["skipped"]
    assert skipped["total"] == len(bad)
    assert skipped["by_reason"]["too-long"] == 1
    assert skipped["by_reason"]["unknown-format"] == 1
    origins = sorted(entry["origin"] for entry in skipped["lines"])
    assert origins == sorted(f"mixed.log:{n}" for n in range(2, 2 + len(bad)))
    assert len(lines) == 2  # the exec incident was still found
    assert b"Skipped 7 unusable line(s)" in captured.err


def test_gzip_and_documents(tmp_path: Path, capsysbinary) -> None:
    gz = tmp_path / "audit.log.gz"
    with gzip.open(gz, "wb") as fh:
        fh.write(json.dumps(EXEC).encode() + b"\n")
    doc = tmp_path / "falco.json"
    doc.write_text(json.dumps([FALCO], indent=2))
    assert main(["replay", "--json", str(gz), str(doc)]) == 0
    inc = json.loads(capsysbinary.readouterr().out.decode().splitlines()[0])
    assert [e["source"] for e in inc["events"]] == ["audit", "falco"]


def test_markdown_snapshots_are_private_and_escaped(tmp_path: Path) -> None:
    path = _write_lines(tmp_path / "in.log", [EXEC, FALCO])
    out_dir = tmp_path / "snaps"
    assert main(["replay", "--markdown", str(out_dir), str(path)]) == 0
    files = list(out_dir.glob("INC-*.md"))
    assert len(files) == 1
    text = files[0].read_text()
    assert stat.S_IMODE(files[0].stat().st_mode) == 0o600
    assert "## Actions taken" in text and "No actions were taken." in text
    assert "\x1b" not in text
    # Outside the appendix's code blocks, markup-like text is in code spans.
    prose = text.split("## Appendix")[0]
    assert any("[bold red]" in span for span in _spans(prose))
    assert_inert(prose)


def _spans(markdown: str) -> list[str]:
    return [span for line in markdown.splitlines() for span in code_spans(line)]


def test_snapshot_format_text_writes_plain_text(tmp_path: Path) -> None:
    path = _write_lines(tmp_path / "in.log", [EXEC, FALCO])
    out_dir = tmp_path / "snaps"
    args = ["replay", "--markdown", str(out_dir), "--snapshot-format", "text", str(path)]
    assert main(args) == 0
    (snapshot,) = out_dir.glob("INC-*")
    assert snapshot.suffix == ".txt" and stat.S_IMODE(snapshot.stat().st_mode) == 0o600
    text = snapshot.read_text()
    assert "\nInitial access\n--------------\n" in text and "\nIndicators\n" in text
    assert "**" not in text and "|---" not in text and "\x1b" not in text


def test_missing_file_is_a_clear_error_without_traceback(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "ktriage.cli", "replay", "--json", str(tmp_path / "nope.log")],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert "nope.log: no such file" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stdout == ""


def test_directory_is_refused(tmp_path: Path, capsys) -> None:
    assert main(["replay", "--json", str(tmp_path)]) == 2
    assert "is a directory" in capsys.readouterr().err


def test_text_report(tmp_path: Path, capsys) -> None:
    path = _write_lines(tmp_path / "in.log", [EXEC, FALCO])
    assert main(["replay", "--text", str(path)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("1 incident(s)")
    assert "Pod shop/web-1" in out
    assert "audit 1, falco 1" in out


@pytest.mark.parametrize("window", ["1s", "30m"])
def test_window_option_changes_linking(tmp_path: Path, capsysbinary, window: str) -> None:
    late = dict(FALCO, time="2026-11-27T03:10:00Z", uuid="late-one")
    path = _write_lines(tmp_path / "in.log", [EXEC, late])
    main(["replay", "--json", "--window", window, str(path)])
    incidents = capsysbinary.readouterr().out.decode().splitlines()[:-1]
    assert len(incidents) == (2 if window == "1s" else 1)


def test_replayer_restores_the_garbage_collector_and_places_untimed_records(
    tmp_path: Path,
) -> None:
    import gc

    from ktriage.core.correlate import Correlator
    from ktriage.core.replay import Replayer

    untimed = {k: v for k, v in EXEC.items() if not k.endswith("Timestamp")}
    first = _write_lines(tmp_path / "a.log", [EXEC, dict(untimed, auditID="u-1")])
    # A file that starts untimed has nothing to place its record after.
    second = _write_lines(tmp_path / "b.log", [dict(untimed, auditID="u-2")])
    correlator = Correlator()
    replayer = Replayer(correlator)
    assert gc.isenabled()
    stats = replayer.replay([first, second])
    assert gc.isenabled()
    assert (stats.files, stats.lines, stats.events) == (2, 3, 2)
    assert [(o, r) for o, r, _ in replayer.ingestor.skip_log] == [("b.log:1", "missing-field")]
    placed = [e for e in correlator.store if e.ref.startswith("u-1:")]
    assert len(placed) == 1 and placed[0].summary.endswith("placed after the previous record)")
    # Every stored event reads its raw line back from the file.
    for ev in correlator.store:
        assert json.loads(replayer.archive.read(ev.raw))["auditID"] in (EXEC["auditID"], "u-1")
    gc.disable()
    try:
        Replayer(Correlator()).replay([first])
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_json_output_has_no_raw_control_characters(tmp_path: Path, capsysbinary) -> None:
    hostile = dict(EXEC, auditID="ctl-1")
    hostile["objectRef"] = dict(EXEC["objectRef"], name="web\u009b31m\u202e1")
    path = _write_lines(tmp_path / "audit.log", [hostile])
    assert main(["replay", "--json", str(path)]) == 0
    out = capsysbinary.readouterr().out
    assert "\u009b".encode() not in out and "\u202e".encode() not in out
    assert b"\\\\x9b" in out or b"\\\\u009b" in out


def test_a_bad_markdown_directory_is_said_before_the_replay(tmp_path: Path, capsys) -> None:
    path = _write_lines(tmp_path / "in.log", [EXEC, FALCO])
    a_file = tmp_path / "afile"
    a_file.write_text("x")
    assert main(["replay", "--markdown", str(a_file), str(path)]) == 2
    assert "afile: exists and is not a directory" in capsys.readouterr().err
    # (Under a file: refused even to root, who may write anywhere else.)
    assert main(["replay", "--markdown", str(a_file / "deeper"), str(path)]) == 2
    assert "deeper: cannot create it: Not a directory" in capsys.readouterr().err
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    shared.chmod(0o755)
    assert main(["replay", "--markdown", str(shared), str(path)]) == 0
    assert "readable by others (mode 755)" in capsys.readouterr().err


def test_a_markdown_directory_that_fails_midway_is_a_clear_error() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "ktriage.cli", "replay", "--markdown", "/proc/nope", "/dev/null"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert "--markdown /proc/nope: cannot create it" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_the_text_report_never_cuts_an_entity() -> None:
    from ktriage.core.model import EntityKind, entity
    from ktriage.core.report import entity_list

    ents = [
        entity(EntityKind.USER, "", "attacker@example.com"),
        entity(EntityKind.POD, "shop", "storefront-7d9f8-x2kq"),
        entity(EntityKind.IP, "", "203.0.113.42"),
        entity(EntityKind.NAMESPACE, "", "shop"),
    ]
    text = entity_list(ents, width=60)
    assert text == "User attacker@example.com, Pod shop/storefront-7d9f8-x2kq (+2 more)"
    assert entity_list(ents, width=200).endswith("IP 203.0.113.42, Namespace shop")
    # A single long name is shown whole rather than cut.
    long_one = [entity(EntityKind.POD, "ns", "p" * 150)]
    assert entity_list(long_one, width=40) == "Pod ns/" + "p" * 150
    assert entity_list(ents * 3, width=1000).endswith("(+4 more)")


def test_a_demo_that_cannot_start_leaves_nothing_behind(
    tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    assert main(["demo", "--scenario", "nosuch"]) == 2
    assert "unknown scenario 'nosuch'" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_a_cut_compressed_document_keeps_its_complete_records(tmp_path: Path, capsysbinary) -> None:
    """A pretty-printed array in a .gz cut short: what came before the cut is read."""
    # Random outputs, so that the 200 bytes cut off hold about one record.
    noise = [os.urandom(150).hex() for _ in range(50)]
    records = [EXEC, FALCO] + [
        dict(FALCO, uuid=f"more-{i}", output=f"shell {noise[i]}") for i in range(50)
    ]
    whole = gzip.compress(json.dumps(records, indent=2).encode())
    path = tmp_path / "alerts.json.gz"
    path.write_bytes(whole[:-200])
    assert main(["replay", "--json", str(path)]) == 0
    lines = capsysbinary.readouterr().out.splitlines()
    incident, skipped = json.loads(lines[0]), json.loads(lines[-1])["skipped"]
    assert {e["ref"] for e in incident["events"]} >= {
        EXEC["auditID"] + ":ResponseStarted",
        FALCO["uuid"],
    }
    assert len(incident["events"]) >= 49  # all but the last one or two of 52
    assert skipped["by_reason"] == {"truncated-json": 1, "unreadable-file": 1}


def test_standard_input_is_replayed(tmp_path: Path) -> None:
    piped = (json.dumps(EXEC) + "\n" + json.dumps(FALCO) + "\nnot json\n").encode()
    proc = subprocess.run(
        [sys.executable, "-m", "ktriage.cli", "replay", "--json", "-"],
        input=piped,
        capture_output=True,
    )
    assert proc.returncode == 0, proc.stderr
    first, skipped = proc.stdout.splitlines()[0], proc.stdout.splitlines()[-1]
    assert json.loads(first)["entities"][0]["name"] == "web-1"
    assert json.loads(skipped)["skipped"]["lines"][0]["origin"] == "stdin:3"
    # Without an output option it prints the text report (the UI needs the keyboard).
    proc = subprocess.run(
        [sys.executable, "-m", "ktriage.cli", "replay", "-"], input=piped, capture_output=True
    )
    assert proc.returncode == 0 and proc.stdout.startswith(b"1 incident(s)")


def test_snapshots_include_the_workflow_noted_in_the_ui_on_the_same_data(
    tmp_path: Path, monkeypatch, capsysbinary
) -> None:
    from ktriage.core.sessions import default_state_dir
    from ktriage.core.workflow import INVESTIGATING, WorkflowStore

    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    path = _write_lines(tmp_path / "in.log", [EXEC, FALCO])
    assert main(["replay", "--json", str(path)]) == 0
    inc_id = json.loads(capsysbinary.readouterr().out.splitlines()[0])["id"]
    # What a responder did in the replay UI ("replay" is its cluster key).
    store = WorkflowStore(default_state_dir())
    store.set_status("replay", inc_id, INVESTIGATING, actor="alice")
    store.add_note("replay", inc_id, "seen before: the backup job", actor="alice")
    out_dir = tmp_path / "snaps"
    assert main(["replay", "--markdown", str(out_dir), str(path)]) == 0
    text = (out_dir / f"{inc_id}.md").read_text()
    assert "| Status | investigating |" in text
    assert "alice: seen before: the backup job" in text


PROGRAM = [sys.executable, "-m", "ktriage.cli"]


def _program_env(home: Path, **more: str) -> dict[str, str]:
    """The environment of `ktriage` run as the program: a home and configuration of
    its own (no sessions or settings of this machine's user)."""
    return dict(os.environ, HOME=str(home), XDG_CONFIG_HOME=str(home), **more)


def _program(args: list[str], tmp: Path, **kw: object) -> subprocess.CompletedProcess[bytes]:
    """`ktriage` itself in a fresh interpreter, with its own temporary folder."""
    return subprocess.run(
        [*PROGRAM, *args],
        env=_program_env(tmp, TMPDIR=str(tmp)),
        capture_output=True,
        timeout=120,
        **kw,  # type: ignore[call-overload]
    )


def _started(args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    """`ktriage` started as the program, its output and errors through pipes."""
    return subprocess.Popen(
        [*PROGRAM, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
    )


@pytest.mark.parametrize("output", ["--json", "--text", "--markdown"])
def test_the_program_ends_at_once_after_a_replay_with_all_its_output_and_nothing_left(
    tmp_path: Path, capsysbinary, output: str
) -> None:
    """A replay run as the program ends without the interpreter freeing its objects
    one by one: first everything it printed is out, its snapshots are written, and
    what it spooled to disk (a compressed file's lines) is removed."""
    gz = tmp_path / "audit.log.gz"
    with gzip.open(gz, "wb") as fh:
        fh.write(json.dumps(EXEC).encode() + b"\nnot json\n")
    falco = _write_lines(tmp_path / "falco.jsonl", [FALCO])
    args = ["replay", output, str(gz), str(falco)]
    snaps = tmp_path / "snaps"
    if output == "--markdown":
        args.insert(2, str(snaps))
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    done = _program(args, tmp)
    assert done.returncode == 0, done.stderr
    assert b"Traceback" not in done.stderr and b"Exception ignored" not in done.stderr
    assert b"Skipped 1 unusable line(s)" in done.stderr  # printed last, and flushed
    assert list(tmp.iterdir()) == []  # the spool is gone
    if output == "--markdown":
        (snapshot,) = snaps.glob("INC-*.md")
        assert snapshot.read_text().rstrip().endswith("```")  # written whole
        return
    # The same report as the command gives run in this process, to its last byte.
    assert main(args) == 0
    assert done.stdout == capsysbinary.readouterr().out


def test_the_program_ends_quietly_when_its_reader_stops_early(tmp_path: Path) -> None:
    """Output piped into `head`: the reader goes away with most of the report still
    to come, and the program still ends at once, with no error."""
    records = []
    for i in range(3_000):
        rec = dict(FALCO, uuid=f"8e2c0a52-9d0d-4a6a-8b0c-{i:012d}")
        rec["output_fields"] = dict(FALCO["output_fields"], **{"k8s.pod.name": f"web-{i}"})
        records.append(rec)
    path = _write_lines(tmp_path / "falco.jsonl", records)
    proc = _started(["replay", "--json", str(path)], _program_env(tmp_path))
    assert proc.stdout is not None and proc.stderr is not None
    first = proc.stdout.read(100)
    proc.stdout.close()
    err = proc.stderr.read()
    assert proc.wait(timeout=120) == 0, err
    assert first.startswith(b'{"id":"INC-')
    assert b"Traceback" not in err and b"Exception ignored" not in err


def test_the_program_skips_the_interpreters_own_ending_after_a_replay(tmp_path: Path) -> None:
    """Run as the program, a replay that printed its report ends at once: what the
    interpreter would do at its end (here an exit handler) does not run. The same
    command called from code returns, and the handler runs."""
    path = _write_lines(tmp_path / "in.log", [EXEC, FALCO])
    marker = tmp_path / "ended-slowly"
    driver = (
        "import atexit, sys\n"
        "marker = sys.argv[1]\n"
        "atexit.register(lambda: open(marker, 'w').close())\n"
        "from ktriage.cli import main\n"
        "sys.argv = ['ktriage', *sys.argv[2:]]\n"
        "sys.exit(main() if sys.argv[1] == 'replay' else main(sys.argv[2:]))\n"
    )
    env = _program_env(tmp_path)
    done = subprocess.run(
        [sys.executable, "-c", driver, str(marker), "replay", "--json", str(path)],
        env=env,
        capture_output=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.count(b"\n") == 2  # the incident and the skipped line
    assert not marker.exists()
    # As a command called from code (`main(argv)`), it returns as before.
    done = subprocess.run(
        [sys.executable, "-c", driver, str(marker), "as-code", "replay", "--json", str(path)],
        env=env,
        capture_output=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert marker.exists()


def test_the_program_ends_well_when_its_reader_went_away_first(tmp_path: Path) -> None:
    """A text report still in the program's buffer when it ends, and the reader of
    the pipe already gone (`| head` that quit at once): the report cannot be written,
    and the program still ends with status 0, its summary said, no traceback."""
    path = _write_lines(tmp_path / "in.log", [EXEC, FALCO])
    env = _program_env(tmp_path)
    env.pop("PYTHONUNBUFFERED", None)  # the report stays in the buffer until the end
    proc = _started(["replay", "--text", str(path)], env)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # long before the program has read its input
    err = proc.stderr.read()
    assert proc.wait(timeout=120) == 0, err
    assert b"Traceback" not in err and b"Exception ignored" not in err
    assert b"Skipped nothing" in err


@pytest.mark.parametrize("output", ["--markdown", "--text", "--json"])
def test_the_program_started_with_its_output_closed(tmp_path: Path, output: str) -> None:
    """Started with its standard output closed (`>&-`): snapshots, which need none,
    are written and the program ends with status 0; a report for that output is
    refused at once with a clear message. No traceback either way."""
    path = _write_lines(tmp_path / "in.log", [EXEC, FALCO])
    snaps = tmp_path / "snaps"
    args = ["replay", output, *([str(snaps)] if output == "--markdown" else []), str(path)]
    done = _program(args, tmp_path, preexec_fn=lambda: os.close(1))  # `>&-`
    assert b"Traceback" not in done.stderr and b"Exception ignored" not in done.stderr
    if output == "--markdown":
        assert done.returncode == 0, done.stderr
        assert len(list(snaps.glob("INC-*.md"))) == 1
    else:
        assert done.returncode == 2
        assert b"standard output is closed" in done.stderr
