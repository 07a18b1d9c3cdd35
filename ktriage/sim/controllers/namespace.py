"""The namespace controller: a namespace being deleted (Terminating, `deletionTimestamp`
set, `spec.finalizers: ["kubernetes"]`) has its content deleted, each object through
graceful deletion; only when nothing is left in it is the finalizer removed and the
namespace itself removed, as kube-controller-manager's namespace controller does."""

from __future__ import annotations

from ktriage.sim.controllers.manager import Controller, ObjKey
from ktriage.sim.storage.store import Change, ClusterStore
from ktriage.sim.timefmt import rfc3339

NAMESPACE = ("v1", "Namespace")


def terminating(ns: dict | None) -> bool:
    return ns is not None and bool((ns.get("metadata") or {}).get("deletionTimestamp"))


class NamespaceController(Controller):
    kinds = (NAMESPACE,)

    def observe(self, change: Change, from_api: bool) -> None:
        if (change.api_version, change.kind) == NAMESPACE:
            if change.type != "DELETED" and terminating(change.obj):
                self.manager.enqueue(self, ("v1", "Namespace", "", change.obj["metadata"]["name"]))
            return
        namespace = (change.obj.get("metadata") or {}).get("namespace")
        if namespace and change.type == "DELETED":
            # Content went away: the namespace may now be empty.
            ns = self.store.peek("v1", "Namespace", None, namespace)
            if terminating(ns):
                self.manager.enqueue(self, ("v1", "Namespace", "", namespace))

    def _content(self, namespace: str) -> list[dict]:
        with self.store._lock:
            return [
                obj
                for objs in list(self.store._objects.values())
                for (ns, _), obj in list(objs.items())
                if ns == namespace
            ]

    def reconcile(self, key: ObjKey) -> None:
        name = key[3]
        ns = self.store.peek("v1", "Namespace", None, name)
        if not terminating(ns):
            return
        content = self._content(name)
        for obj in content:
            if not (obj.get("metadata") or {}).get("deletionTimestamp"):
                self.manager.delete(obj, "Background")
        if self._content(name):
            # Terminating pods, finalizers: look again in a second, as the real one requeues.
            self.manager.at(self.manager.clock.now() + 1, lambda: self.manager.enqueue(self, key))
            return

        def finalize(obj: dict) -> None:
            spec = obj.setdefault("spec", {})
            spec["finalizers"] = [f for f in spec.get("finalizers") or [] if f != "kubernetes"]

        self.store.mutate("v1", "Namespace", None, name, finalize)
        if (
            not (self.store.peek("v1", "Namespace", None, name) or {})
            .get("metadata", {})
            .get("finalizers")
        ):
            self.store.delete("v1", "Namespace", None, name)


def begin(store: ClusterStore, name: str, now: float) -> dict | None:
    """Mark namespace `name` for deletion (a DELETE of it); None if absent. A second
    DELETE of a terminating namespace leaves it as it is."""
    with store._lock:
        ns = store.peek("v1", "Namespace", None, name)
        if ns is None:
            return None
        if terminating(ns):
            return store.get_obj("v1", "Namespace", None, name)

        def mark(obj: dict) -> None:
            obj["metadata"]["deletionTimestamp"] = rfc3339(now)
            obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
            obj.setdefault("status", {})["phase"] = "Terminating"

        return store.mutate("v1", "Namespace", None, name, mark)
