"""The controllers behind the extra APIs (PodDisruptionBudget status, node leases, the
metrics API, custom resources), started together with the cluster."""

from __future__ import annotations

import asyncio
from typing import Any

from ktriage.sim.controllers import crd, disruption, metrics, nodelease


def start(store: Any, clock: Any) -> list[asyncio.Task]:
    loop = asyncio.get_running_loop()
    return [
        loop.create_task(disruption.run(store, clock)),
        loop.create_task(nodelease.run(store, clock)),
        loop.create_task(metrics.run(store, clock)),
        loop.create_task(crd.run(store, clock)),
    ]
