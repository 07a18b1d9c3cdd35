"""UI tests run with private config and state directories and a fixed clock.

Simulated clusters come from `make_sim_cluster` (tests/conftest.py); a module's `sim`
fixture seeds what its tests need.
"""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def private_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))


@pytest.fixture(scope="session")
def cryptominer_streams(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """The demo scenario played to the end with a fixed clock: audit, Falco, Tetragon files."""
    from ktriage.ui.screenshots import play_scenario

    return play_scenario("cryptominer", tmp_path_factory.mktemp("cryptominer"))
