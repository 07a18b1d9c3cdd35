"""The real captured fixtures (`../shared/fixtures/real`, beside the repository).

Where they are absent a test that needs them skips with the reason on a developer's
machine, and fails in CI (`CI` or `KTRIAGE_REQUIRE_SHARED` set), where they are always
present: a missing folder there must not turn into a quiet row of skips.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REAL_FIXTURES = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures" / "real"


def required() -> bool:
    return bool(os.environ.get("CI") or os.environ.get("KTRIAGE_REQUIRE_SHARED"))


def require_real_fixtures(path: Path = REAL_FIXTURES, *, module: bool = False) -> Path:
    """`path` (the fixtures folder or a file in it), or skip/fail with the reason."""
    if path.exists():
        return path
    reason = f"real fixtures not found at {path} (../shared is not beside the repository)"
    if required():
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason, allow_module_level=module)
