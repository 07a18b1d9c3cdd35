"""Property: no mutation of a real captured line makes any output raise, and the
valid lines after it are still read. The mutations are benchmarks/fuzz_replay.py's
(which runs 20,000 cases); here a hundred, drawn by hypothesis."""

from __future__ import annotations

import importlib.util
import random
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from real_fixtures import require_real_fixtures

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT.parent / "shared" / "fixtures" / "real"


def _fuzz_module():
    spec = importlib.util.spec_from_file_location(
        "fuzz_replay", ROOT / "benchmarks" / "fuzz_replay.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


fuzz = _fuzz_module()


def _fixture_lines() -> list[bytes]:
    require_real_fixtures(FIXTURES)
    lines = fuzz.fixture_lines(FIXTURES)
    assert len(lines) > 100
    return lines


@pytest.fixture(scope="module")
def fixture_lines() -> list[bytes]:
    return _fixture_lines()


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(seed=st.integers(0, 2**32 - 1), mutation=st.sampled_from(sorted(fuzz.MUTATIONS)))
def test_hostile_mutations_of_real_lines_crash_no_output(
    fixture_lines: list[bytes], seed: int, mutation: str
) -> None:
    data = fuzz.make_case(random.Random(seed), fixture_lines, mutation)
    with tempfile.TemporaryDirectory(prefix="ktriage-fuzz-test-") as tmp:
        workdir = Path(tmp)
        workdir.chmod(0o700)
        problems = fuzz.check_case(data, workdir)
    assert problems == [], "\n".join(problems)


def test_hostile_mutations_through_the_real_command(
    fixture_lines: list[bytes], tmp_path: Path
) -> None:
    """One file with a line of every mutation class, through `ktriage replay` as a
    separate process: exit 0, no traceback, the valid lines' events reported."""
    rng = random.Random(7)
    hostile = [fuzz.MUTATIONS[name](rng, rng.choice(fixture_lines)) for name in fuzz.MUTATIONS]
    # A custom resource audited with a body 5,000 levels deep.
    deep = fuzz.after_lines()[0][0].replace(b'"auditID": "fuzz-after-audit"', b'"auditID": "d"')
    hostile.append(deep[:-1] + b', "requestObject": ' + b"[" * 5000 + b"]" * 5000 + b"}")
    path = tmp_path / "hostile.log"
    path.write_bytes(b"\n".join([*hostile, *(a for a, _ in fuzz.after_lines())]) + b"\n")
    result = subprocess.run(
        [sys.executable, "-m", "ktriage.cli", "replay", "--json", str(path)],
        cwd=ROOT,
        capture_output=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert b"Traceback" not in result.stderr
    for _, ref in fuzz.after_lines():
        assert ref.encode() in result.stdout
    assert b"too-long" in result.stdout and b"too-deep" in result.stdout
