"""The serviceaccount controller: every namespace has a `default` ServiceAccount, created
with the namespace and again if it is deleted while the namespace is active."""

from __future__ import annotations

import asyncio

from ktriage.sim.controllers.watching import StoreWatcher
from ktriage.sim.storage.store import AlreadyExists, Change, ClusterStore

DEFAULT = "default"


class ServiceAccountController:
    def __init__(self, store: ClusterStore, loop: asyncio.AbstractEventLoop) -> None:
        self.store = store
        self._watcher = StoreWatcher(
            store, loop, [("v1", "Namespace"), ("v1", "ServiceAccount")], self._on_change
        )

    def start(self) -> None:
        self._watcher.start()
        for ns in self.store.list_objs("v1", "Namespace"):
            self.ensure(ns["metadata"]["name"])

    def stop(self) -> None:
        self._watcher.stop()

    def _on_change(self, change: Change) -> None:
        if change.kind == "Namespace" and change.type != "DELETED":
            self.ensure(change.obj["metadata"]["name"])
        elif change.kind == "ServiceAccount" and change.type == "DELETED":
            meta = change.obj["metadata"]
            if meta.get("name") == DEFAULT:
                self.ensure(meta.get("namespace", ""), with_namespace=False)

    def ensure(self, namespace: str, *, with_namespace: bool = True) -> None:
        """Create `default` in `namespace` unless it exists or the namespace is going away.
        Made `with_namespace`, it is as old as the namespace (a real controller creates it
        within a second), so namespaces a scenario built long ago do not get a new one."""
        ns = self.store.peek("v1", "Namespace", None, namespace)
        if ns is None or ns["metadata"].get("deletionTimestamp"):
            return
        if (ns.get("status") or {}).get("phase") == "Terminating":
            return
        if self.store.peek("v1", "ServiceAccount", namespace, DEFAULT) is not None:
            return
        sa = {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": DEFAULT, "namespace": namespace},
        }
        created = ns["metadata"].get("creationTimestamp")
        if with_namespace and created:
            sa["metadata"]["creationTimestamp"] = created
        try:
            self.store.create_checked(sa)
        except AlreadyExists:  # created meanwhile by someone else: theirs stands
            pass
