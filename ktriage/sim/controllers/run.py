"""Starting every controller of the simulated cluster (see `manager`)."""

from __future__ import annotations

from ktriage.sim.clock import SimClock
from ktriage.sim.controllers.cronjob import CronJobController
from ktriage.sim.controllers.daemonset import DaemonSetController
from ktriage.sim.controllers.deployment import DeploymentController
from ktriage.sim.controllers.garbagecollector import GarbageCollector
from ktriage.sim.controllers.job import JobController
from ktriage.sim.controllers.kubelet import Kubelet
from ktriage.sim.controllers.manager import ControllerManager
from ktriage.sim.controllers.namespace import NamespaceController
from ktriage.sim.controllers.replicaset import ReplicaSetController
from ktriage.sim.controllers.statefulset import StatefulSetController
from ktriage.sim.storage.store import ClusterStore


def start_controllers(store: ClusterStore, clock: SimClock) -> ControllerManager:
    """A ControllerManager with every controller, started on the running loop."""
    manager = ControllerManager(store, clock)
    for controller in (
        DeploymentController,
        ReplicaSetController,
        DaemonSetController,
        StatefulSetController,
        JobController,
        CronJobController,
        GarbageCollector,
        Kubelet,
        NamespaceController,
    ):
        manager.add(controller(manager))
    manager.start()
    return manager
