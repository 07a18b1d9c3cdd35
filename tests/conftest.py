"""Shared by every test directory: this folder is on the import path, so test modules
can import `real_fixtures`.

- `make_sim_cluster`: starts simulated clusters (SimCluster options as keywords) in
  the test's tmp_path, all stopped at teardown.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture
def make_sim_cluster(tmp_path: Path) -> Iterator[Callable[..., Any]]:
    """Start SimClusters with any options; all are stopped at teardown."""
    from ktriage.sim.runner import SimCluster

    started: list[SimCluster] = []

    def make(**options: Any) -> SimCluster:
        cluster = SimCluster(tmp_path / f"sim-{len(started)}", **options).start()
        started.append(cluster)
        return cluster

    try:
        yield make
    finally:
        for cluster in started:
            cluster.stop()
