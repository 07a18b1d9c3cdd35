"""`ktriage --help` and `ktriage replay --json` start without what they do not use:
the simulated cluster, Textual, the kubernetes client, and (for a small file with no
certificate request) the multiprocessing and cryptography libraries."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from fresh_python import run_fresh

ROOT = Path(__file__).resolve().parents[2]
# Runs the command in a fresh interpreter and reports the modules it loaded.
DRIVER = """
import json, sys
from ktriage.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
print(json.dumps({"code": code, "modules": sorted(sys.modules)}), file=sys.stderr)
"""
NEVER = ("ktriage.sim", "textual", "kubernetes", "ktriage.ui")


def _modules(args: list[str], tmp_path: Path) -> list[str]:
    env = dict(os.environ, XDG_CONFIG_HOME=str(tmp_path), HOME=str(tmp_path))
    env["PYTHONPATH"] = str(ROOT)
    done = subprocess.run(
        [sys.executable, "-c", DRIVER, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        timeout=120,
        check=False,
    )
    report = json.loads(done.stderr.decode().strip().splitlines()[-1])
    assert report["code"] in (0, None), done.stderr.decode(errors="replace")
    modules: list[str] = report["modules"]
    return modules


@pytest.mark.parametrize("args", [["--help"], ["replay", "--help"]], ids=["help", "replay-help"])
def test_help_loads_no_sim_ui_or_client(tmp_path: Path, args: list[str]) -> None:
    modules = _modules(args, tmp_path)
    assert not [m for m in modules if m.startswith(NEVER)]
    assert "ktriage.core.correlate" not in modules  # --help runs no replay code


def test_replay_json_loads_no_sim_ui_client_or_helpers(tmp_path: Path) -> None:
    path = tmp_path / "small.jsonl"
    line = {
        "kind": "Event",
        "auditID": "a1",
        "verb": "get",
        "stage": "ResponseComplete",
        "user": {"username": "alice"},
        "objectRef": {"resource": "configmaps", "namespace": "shop", "name": "c"},
        "stageTimestamp": "2026-09-21T14:13:20.000000Z",
    }
    path.write_text(json.dumps(line) + "\n")
    modules = _modules(["replay", "--json", str(path)], tmp_path)
    assert "ktriage.core.correlate" in modules  # it did replay
    assert not [m for m in modules if m.startswith(NEVER)]
    # Loaded only when needed: a helper process for a large file, a CSR to read,
    # snapshots to write, and the workflow database they include; the TOML parser
    # for a config file (there is none here: the shipped allow list is JSON); and
    # OpenSSL's hashes (ids are BLAKE2, which CPython has without it).
    lazy_modules = ("multiprocessing", "cryptography", "ktriage.core.snapshot", "sqlite3")
    for lazy in (*lazy_modules, "ktriage.core.workflow", "tomllib", "importlib.resources"):
        assert lazy not in modules, lazy
    if sys.implementation.name == "cpython":
        assert "_hashlib" not in modules
    # Nor threads, nor a spool (a plain file's lines are read where they are), nor
    # shutil (argparse's way to the terminal's width).
    assert "threading" not in modules and "tempfile" not in modules
    assert "shutil" not in modules


@pytest.mark.parametrize("columns", ["", "50", "133", "junk", "-4"])
def test_help_is_as_wide_as_shutil_says_the_terminal_is(
    monkeypatch: pytest.MonkeyPatch, columns: str
) -> None:
    import shutil

    from ktriage.cli import _terminal_columns, build_parser

    monkeypatch.setenv("COLUMNS", columns)
    assert _terminal_columns() == shutil.get_terminal_size().columns
    width = _terminal_columns() - 2
    for line in build_parser().format_help().splitlines():
        assert len(line) <= max(width, 40) or " " not in line.strip(), line


REDACTION_DRIVER = """
import sys
from ktriage.core import redact
before = redact._patterns.cache_info().currsize
plain = redact.redact_text("pod shop/web-1 started on node-a")
after_plain = redact._patterns.cache_info().currsize
secret = redact.redact_text("curl -H 'Authorization: Bearer abc.def.ghi' http://x")
print(before, after_plain, redact._patterns.cache_info().currsize, "<redacted>" in secret)
"""


def test_the_secret_patterns_are_compiled_only_for_text_that_needs_them() -> None:
    """Compiling them takes about 5 ms at every start: text without a trigger word
    never needs them; text with one gets them, and is redacted."""
    assert run_fresh(REDACTION_DRIVER).split() == ["0", "0", "1", "True"]
