"""UI tests run with private config and state directories and a fixed clock.

- `make_sim`: starts simulated clusters (SimCluster options as keywords) in the test's
  tmp_path, stopped at teardown; a module's `sim` fixture seeds what its tests need.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

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


@pytest.fixture
def make_sim(tmp_path: Path) -> Iterator[Callable[..., Any]]:
    from ktriage.sim.runner import SimCluster

    started: list[SimCluster] = []

    def make(**options: Any) -> SimCluster:
        directory = tmp_path / ("sim" if not started else f"sim-{len(started)}")
        started.append(SimCluster(directory, **options).start())
        return started[-1]

    try:
        yield make
    finally:
        for cluster in started:
            cluster.stop()
