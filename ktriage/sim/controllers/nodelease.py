"""Each kubelet's heartbeat: a Lease per node in `kube-node-lease`, renewed every 10 s
(of the sim's clock), as `kubectl describe node` expects to find it."""

from __future__ import annotations

import asyncio
from typing import Any

from ktriage.sim.controllers.watching import wake_on_changes
from ktriage.sim.timefmt import rfc3339_micro

NAMESPACE = "kube-node-lease"
RENEW_SECONDS = 10.0
LEASE_DURATION = 40


def renew(store: Any, clock: Any) -> None:
    nodes = store.list_objs("v1", "Node")
    if not nodes:
        return
    if store.get_obj("v1", "Namespace", None, NAMESPACE) is None:
        store.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}})
    now = rfc3339_micro(clock.now())
    for node in nodes:
        meta = node["metadata"]
        name = meta["name"]
        lease = store.get_obj("coordination.k8s.io/v1", "Lease", NAMESPACE, name)
        if lease is None:
            store.apply(
                {
                    "apiVersion": "coordination.k8s.io/v1",
                    "kind": "Lease",
                    "metadata": {
                        "name": name,
                        "namespace": NAMESPACE,
                        "ownerReferences": [
                            {
                                "apiVersion": "v1",
                                "kind": "Node",
                                "name": name,
                                "uid": meta.get("uid", ""),
                            }
                        ],
                    },
                    "spec": {
                        "holderIdentity": name,
                        "leaseDurationSeconds": LEASE_DURATION,
                        "renewTime": now,
                    },
                }
            )
            continue

        def bump(obj: dict, now: str = now) -> None:
            obj.setdefault("spec", {})["renewTime"] = now

        store.mutate("coordination.k8s.io/v1", "Lease", NAMESPACE, name, bump)


async def run(store: Any, clock: Any) -> None:
    """Renew every RENEW_SECONDS, and at once when a node appears."""
    with wake_on_changes(store, [("v1", "Node")], lambda change: change.type == "ADDED") as wake:
        while True:
            wake.clear()
            renew(store, clock)
            timer = asyncio.ensure_future(clock.sleep_until(clock.now() + RENEW_SECONDS))
            woken = asyncio.ensure_future(wake.wait())
            try:
                await asyncio.wait((timer, woken), return_when=asyncio.FIRST_COMPLETED)
            finally:
                timer.cancel()
                woken.cancel()
