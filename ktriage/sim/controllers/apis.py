"""The controllers behind the extra APIs (PodDisruptionBudget status, node leases, the
metrics API, custom resources), started together with the cluster."""

from __future__ import annotations

import asyncio
from typing import Any

from ktriage.sim.controllers import crd, disruption, metrics, nodelease, signer


def start(store: Any, clock: Any, tls: Any = None) -> list[asyncio.Task]:
    """Start them on the running loop; `tls` (the cluster's CA) lets approved CSRs be
    signed."""
    loop = asyncio.get_running_loop()
    tasks = [
        loop.create_task(disruption.run(store, clock)),
        loop.create_task(nodelease.run(store, clock)),
        loop.create_task(metrics.run(store, clock)),
        loop.create_task(crd.run(store, clock)),
    ]
    if tls is not None and tls.ca_key_pem:
        tasks.append(loop.create_task(signer.run(store, clock, tls.ca_pem, tls.ca_key_pem)))
    return tasks
