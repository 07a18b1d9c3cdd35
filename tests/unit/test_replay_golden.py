"""`ktriage replay` gives the same bytes as the recorded reports, on every benchmark mix.

The mixes of benchmarks/mixes.py are generated again at the recorded seeds and read
by the command (`--json` and `--text`, standard output and standard error), and in
process through both of its paths (focused with pass 1 shared with a helper, and
full): each must give exactly the recorded report. Of standard error, one number
is left out: how many valid lines a focused replay read and left out as naming
nothing of any incident (a full replay prints no such line; the lines an incident
holds are in the report). Every skipped line is still counted exactly. The real
captured fixtures are compared by digest (their text stays out of the repository).

The recorded reports change only with an intended change of behaviour; then:

    PYTHONPATH=.:tests python tests/unit/test_replay_golden.py --record
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import orjson
import pytest
from real_fixtures import REAL_FIXTURES, require_real_fixtures

from ktriage.core.correlate import Correlator
from ktriage.core.replay import Replayer
from ktriage.core.report import incident_json_line, skipped_json, text_report

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "golden" / "replay"
# (case, mix, lines, seed). Every file is above the size a focused replay starts at.
CASES = [
    ("project", "project", 20_000, 1),
    ("small_audit_noise", "small_audit_noise", 20_000, 1),
    ("tetragon_heavy", "tetragon_heavy", 20_000, 1),
    # The fourth figure is the project's mix at 1M lines: here another seed of it.
    ("project_large", "project", 12_000, 7),
]
OUTPUTS = ("json", "text")


def _mixes() -> ModuleType:
    spec = importlib.util.spec_from_file_location("mixes", ROOT / "benchmarks" / "mixes.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _real_files() -> list[Path]:
    return sorted(p for p in REAL_FIXTURES.rglob("*") if p.suffix in (".json", ".jsonl"))


_LEFT_OUT = re.compile(rb"^\d+ (valid line\(s\) named nothing any incident involves)", re.M)


def _masked(output: bytes) -> bytes:
    """The command's output without the count of lines a focused replay left out."""
    return _LEFT_OUT.sub(rb"(some) \1", output)


def _cli(files: list[Path], output: str, home: Path) -> bytes:
    """The command's standard output, then a marker, then its standard error."""
    env = dict(os.environ, XDG_CONFIG_HOME=str(home), HOME=str(home), PYTHONPATH=str(ROOT))
    done = subprocess.run(
        [sys.executable, "-m", "ktriage.cli", "replay", f"--{output}", *map(str, files)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    return done.stdout + b"\n--- stderr ---\n" + done.stderr


def _in_process(files: list[Path], *, focus: bool) -> bytes:
    """What `--json` and `--text` print, from a replay in this process: focused with
    pass 1 shared with a helper whatever the size, or full."""
    correlator = Correlator()
    replayer = Replayer(
        correlator, focus=focus, focus_min_bytes=0, parallel=focus, parallel_min_bytes=0
    )
    replayer.replay(files)
    incidents = correlator.sorted_incidents()
    ing = replayer.ingestor
    out = [incident_json_line(i, correlator.events_of(i.id)) + b"\n" for i in incidents]
    out.append(skipped_json(ing.skipped, ing.skip_log, ing.partial) + b"\n")
    out.append(b"--- text ---\n")
    out.append(text_report(incidents, correlator.events_of).encode())
    return b"".join(out)


def _golden_in_process(case: str) -> bytes:
    return _read(case, "json").split(b"\n--- stderr ---\n")[0] + (
        b"--- text ---\n" + _read(case, "text").split(b"\n--- stderr ---\n")[0]
    )


def _path(case: str, output: str) -> Path:
    return GOLDEN / f"{case}.{output}.gz"


def _read(case: str, output: str) -> bytes:
    return gzip.decompress(_path(case, output).read_bytes())


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module")
def mix_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    mixes = _mixes()
    folder = tmp_path_factory.mktemp("mixes")
    files = {}
    for case, mix, lines, seed in CASES:
        files[case] = folder / f"{case}.jsonl"
        mixes.write_mix(mix, files[case], lines, seed)
    return files


@pytest.mark.parametrize("case", [c[0] for c in CASES])
@pytest.mark.parametrize("output", OUTPUTS)
def test_command_report_is_byte_identical(
    mix_files: dict[str, Path], tmp_path: Path, case: str, output: str
) -> None:
    got = _masked(_cli([mix_files[case]], output, tmp_path))
    want = _masked(_read(case, output))
    assert got == want, f"{case} --{output} differs from {_path(case, output).name}"


@pytest.mark.parametrize("case", [c[0] for c in CASES])
@pytest.mark.parametrize("focus", [True, False], ids=["focused-shared", "full"])
def test_in_process_report_is_byte_identical(
    mix_files: dict[str, Path], case: str, focus: bool
) -> None:
    assert _in_process([mix_files[case]], focus=focus) == _golden_in_process(case)


def test_mixes_are_what_was_recorded(mix_files: dict[str, Path]) -> None:
    """The generator itself did not change (else the reports above prove nothing)."""
    recorded = orjson.loads((GOLDEN / "inputs.json").read_bytes())
    for case, *_ in CASES:
        assert _digest(mix_files[case].read_bytes()) == recorded[case], case


def test_real_fixture_reports_are_byte_identical(tmp_path: Path) -> None:
    require_real_fixtures()
    files = _real_files()
    recorded = orjson.loads((GOLDEN / "real.json").read_bytes())
    for output in OUTPUTS:
        assert _digest(_cli(files, output, tmp_path)) == recorded[output], output
    assert _digest(_in_process(files, focus=True)) == recorded["in_process"]
    assert _digest(_in_process(files, focus=False)) == recorded["in_process"]


def _record() -> None:
    """Write the recorded reports from the code as it is now."""
    import tempfile

    mixes = _mixes()
    GOLDEN.mkdir(parents=True, exist_ok=True)
    inputs = {}
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        home.mkdir()
        for case, mix, lines, seed in CASES:
            path = Path(tmp) / f"{case}.jsonl"
            mixes.write_mix(mix, path, lines, seed)
            inputs[case] = _digest(path.read_bytes())
            for output in OUTPUTS:
                data = _cli([path], output, home)
                _path(case, output).write_bytes(gzip.compress(data, 9, mtime=0))
        (GOLDEN / "inputs.json").write_bytes(orjson.dumps(inputs, option=orjson.OPT_INDENT_2))
        if REAL_FIXTURES.exists():
            files = _real_files()
            real = {o: _digest(_cli(files, o, home)) for o in OUTPUTS}
            real["in_process"] = _digest(_in_process(files, focus=False))
            (GOLDEN / "real.json").write_bytes(orjson.dumps(real, option=orjson.OPT_INDENT_2))


if __name__ == "__main__":
    if sys.argv[1:] != ["--record"]:
        sys.exit("usage: PYTHONPATH=.:tests python tests/unit/test_replay_golden.py --record")
    _record()
