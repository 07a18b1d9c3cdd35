"""The controllers of identities and rights: `default` ServiceAccounts and aggregated
ClusterRoles, started together with the cluster."""

from __future__ import annotations

import asyncio

from ktriage.sim.controllers.clusterroleaggregation import ClusterRoleAggregationController
from ktriage.sim.controllers.serviceaccount import ServiceAccountController
from ktriage.sim.storage.store import ClusterStore


def start_identity_controllers(
    store: ClusterStore, loop: asyncio.AbstractEventLoop
) -> list[ServiceAccountController | ClusterRoleAggregationController]:
    """Start both on `loop` (they act at once on what is stored); stop each with `.stop()`."""
    controllers = [
        ServiceAccountController(store, loop),
        ClusterRoleAggregationController(store, loop),
    ]
    for controller in controllers:
        controller.start()
    return controllers
