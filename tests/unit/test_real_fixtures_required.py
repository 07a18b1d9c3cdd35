"""Tests that need the real fixtures skip on a developer's machine without them, and
fail in CI, where `../shared` is always present."""

from __future__ import annotations

from pathlib import Path

import pytest
from real_fixtures import REAL_FIXTURES, require_real_fixtures


def test_missing_fixtures_skip_outside_ci(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("KTRIAGE_REQUIRE_SHARED", raising=False)
    with pytest.raises(pytest.skip.Exception, match="real fixtures not found"):
        require_real_fixtures(tmp_path / "absent")


@pytest.mark.parametrize("variable", ["CI", "KTRIAGE_REQUIRE_SHARED"])
def test_missing_fixtures_fail_in_ci(monkeypatch, tmp_path: Path, variable: str) -> None:
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("KTRIAGE_REQUIRE_SHARED", raising=False)
    monkeypatch.setenv(variable, "1")
    with pytest.raises(pytest.fail.Exception, match="real fixtures not found"):
        require_real_fixtures(tmp_path / "absent")


def test_present_fixtures_are_returned(tmp_path: Path) -> None:
    assert require_real_fixtures(tmp_path) == tmp_path
    assert REAL_FIXTURES.name == "real" and REAL_FIXTURES.parent.name == "fixtures"
