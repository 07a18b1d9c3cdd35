"""The garbage collector: dependents follow their owners through ownerReferences.

- an owner removed (Background): dependents with no owner left are deleted;
- an owner Terminating with `orphan`: its dependents lose the reference, then it goes;
- an owner Terminating with `foregroundDeletion`: its dependents are deleted first,
  and it goes once none is left;
- an object Terminating with no finalizer left is removed (a pod once kubelet stopped it).
"""

from __future__ import annotations

from ktriage.sim.controllers import deletion
from ktriage.sim.controllers.manager import Controller, ControllerManager, ObjKey, key_of
from ktriage.sim.controllers.workloads import owner_refs
from ktriage.sim.storage.store import Change


class GarbageCollector(Controller):
    kinds = ()  # every type

    def __init__(self, manager: ControllerManager) -> None:
        super().__init__(manager)
        self._dependents: dict[str, set[ObjKey]] = {}  # owner uid -> dependents
        self._uids: dict[str, ObjKey] = {}  # every live object's uid
        # Dependents whose owner was removed: only those are collected (a dangling
        # reference written on purpose is left alone until its owner's removal is seen).
        self._owner_gone: set[ObjKey] = set()
        with self.store._lock:  # objects stored before the collector started
            for (api_version, kind), bucket in list(self.store._objects.items()):
                for obj in bucket.values():
                    self._index(dict(obj, apiVersion=api_version, kind=kind), None)

    def _index(self, obj: dict, old: dict | None) -> None:
        key = key_of(obj)
        for ref in _refs(old):
            self._dependents.get(ref.get("uid"), set()).discard(key)
        for ref in _refs(obj):
            self._dependents.setdefault(ref.get("uid"), set()).add(key)
        uid = (obj.get("metadata") or {}).get("uid")
        if uid:
            self._uids[uid] = key

    def observe(self, change: Change, from_api: bool) -> None:
        obj = change.obj
        if change.type == "DELETED":
            key = key_of(obj)
            for ref in _refs(obj):
                deps = self._dependents.get(ref.get("uid"))
                if deps is not None:
                    deps.discard(key)
                owner = self._uids.get(ref.get("uid"))
                if owner is not None:  # a foreground owner may be waiting for this one
                    self.manager.enqueue(self, owner)
            uid = obj["metadata"].get("uid")
            self._uids.pop(uid, None)
            for dep in list(self._dependents.pop(uid, ())):
                self._owner_gone.add(dep)
                self.manager.enqueue(self, dep)
            return
        self._index(obj, change.old)
        if deletion_pending(obj):
            self.manager.enqueue(self, key_of(obj))

    def reconcile(self, key: ObjKey) -> None:
        api_version, kind, ns, name = key
        obj = self.store.peek(api_version, kind, ns or None, name)
        if obj is None:
            self._owner_gone.discard(key)
            return
        meta = obj["metadata"]
        refs = _refs(obj)
        if key in self._owner_gone and refs:
            self._owner_gone.discard(key)
            live = [r for r in refs if r.get("uid") in self._uids]
            if not live and not meta.get("deletionTimestamp"):
                self.manager.delete(obj, "Background")
                return
            if len(live) < len(refs):
                self._drop_refs(key, {r.get("uid") for r in refs} - {r.get("uid") for r in live})
        if not meta.get("deletionTimestamp"):
            return
        finalizers = list(meta.get("finalizers") or [])
        uid = meta["uid"]
        dependents = [d for d in self._dependents.get(uid, ()) if self._exists(d)]
        if deletion.ORPHAN in finalizers:
            for dep in dependents:
                self._drop_refs(dep, {uid})
            self._remove_finalizer(key, deletion.ORPHAN)
            return
        if deletion.FOREGROUND in finalizers:
            for dep in dependents:
                dep_obj = self.store.peek(dep[0], dep[1], dep[2] or None, dep[3])
                if dep_obj is not None and not dep_obj["metadata"].get("deletionTimestamp"):
                    self.manager.delete(dep_obj, "Foreground")
            if not dependents:
                self._remove_finalizer(key, deletion.FOREGROUND)
            return
        if not finalizers and _stopped(obj):
            self.store.delete(api_version, kind, ns or None, name)

    def _exists(self, key: ObjKey) -> bool:
        return self.store.peek(key[0], key[1], key[2] or None, key[3]) is not None

    def _drop_refs(self, key: ObjKey, uids: set) -> None:
        def drop(obj: dict) -> None:
            refs = [r for r in _refs(obj) if r.get("uid") not in uids]
            if refs:
                obj["metadata"]["ownerReferences"] = refs
            else:
                obj["metadata"].pop("ownerReferences", None)

        if self._exists(key):
            self.store.mutate(key[0], key[1], key[2] or None, key[3], drop)

    def _remove_finalizer(self, key: ObjKey, finalizer: str) -> None:
        def drop(obj: dict) -> None:
            left = [f for f in obj["metadata"].get("finalizers") or [] if f != finalizer]
            if left:
                obj["metadata"]["finalizers"] = left
            else:
                obj["metadata"].pop("finalizers", None)

        self.store.mutate(key[0], key[1], key[2] or None, key[3], drop)


def deletion_pending(obj: dict) -> bool:
    return bool((obj.get("metadata") or {}).get("deletionTimestamp"))


def _stopped(obj: dict) -> bool:
    """Anything but a pod is done at once; a pod once kubelet has stopped it; a namespace
    once the namespace controller emptied it and dropped its `spec.finalizers`."""
    if (obj.get("apiVersion"), obj.get("kind")) == ("v1", "Namespace"):
        return not (obj.get("spec") or {}).get("finalizers")
    if (obj.get("apiVersion"), obj.get("kind")) != ("v1", "Pod"):
        return True
    if not (obj.get("spec") or {}).get("nodeName"):
        return True
    status = obj.get("status") or {}
    return status.get("phase") in ("Succeeded", "Failed")


def _refs(obj: dict | None) -> list[dict]:
    return owner_refs(obj)
