"""Running a snippet of Python in a fresh interpreter: what a start loads and does
shows only there (a module already imported by the test process hides it)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_fresh(
    code: str,
    *args: str,
    env: dict[str, str] | None = None,
    cwd: Path = ROOT,
    timeout: float = 120,
) -> str:
    """The snippet's standard output. It runs with this checkout importable (unless
    `env` is given whole) and must succeed: its standard error is shown when not."""
    done = subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env if env is not None else dict(os.environ, PYTHONPATH=str(ROOT)),
        timeout=timeout,
    )
    assert done.returncode == 0, f"the snippet failed:\n{done.stderr[-3000:]}"
    return done.stdout
