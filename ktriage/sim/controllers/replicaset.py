"""The ReplicaSet controller: keeps `spec.replicas` pods that match the selector,
adopting orphans, releasing pods whose labels no longer match, replacing lost ones."""

from __future__ import annotations

from ktriage.sim.controllers import workloads as w
from ktriage.sim.controllers.manager import Controller, ObjKey, key_of
from ktriage.sim.storage.store import Change

RS = ("apps/v1", "ReplicaSet")


class ReplicaSetController(Controller):
    kinds = (RS, ("v1", "Pod"))

    def observe(self, change: Change, from_api: bool) -> None:
        obj = change.obj
        if change.kind == "ReplicaSet":
            if from_api and change.type != "DELETED":
                self.manager.managed.add(obj["metadata"]["uid"])
            self.manager.enqueue(self, key_of(obj))
            return
        # A pod: queue its owner (old and new), and the sets that may adopt it.
        ns = obj["metadata"].get("namespace", "")
        owners = {r.get("name") for o in (obj, change.old) if o for r in _rs_refs(o)}
        if not owners and change.type != "DELETED":
            labels = (obj["metadata"].get("labels")) or {}
            for rs in self.store.snapshot(*RS, ns)[0]:
                if w.selector_matches(rs["spec"].get("selector"), labels):
                    owners.add(rs["metadata"]["name"])
        for name in owners:
            rs = self.store.peek(*RS, ns, name)
            if rs is None:
                continue
            if not self.manager.is_managed(rs):
                if from_api:
                    self._answer_scripted(rs, change)
                continue
            self.manager.enqueue(self, (*RS, ns, name))

    def _answer_scripted(self, rs: dict, change: Change) -> None:
        """A client deleted or relabelled a pod of a scripted set: release it and
        start one replacement, leaving the rest to the scenario."""
        old = change.old
        if old is None or not w.owned_by(old, rs):
            return
        was_active = w.pod_active(old)
        if change.type == "DELETED" or (change.type == "MODIFIED" and w.terminating(change.obj)):
            lost = was_active and (change.type == "DELETED" or not w.terminating(old))
        else:
            labels = change.obj["metadata"].get("labels")
            still = w.selector_matches(rs["spec"].get("selector"), labels)
            if still or not w.owned_by(change.obj, rs):
                return
            self._release(change.obj, rs)
            lost = was_active
        if lost:
            w.create_pod(self.store, rs, rs["spec"].get("template") or {})

    def _release(self, pod: dict, rs: dict) -> None:
        uid = rs["metadata"]["uid"]

        def drop(p: dict) -> None:
            refs = [r for r in w.owner_refs(p) if r.get("uid") != uid]
            if refs:
                p["metadata"]["ownerReferences"] = refs
            else:
                p["metadata"].pop("ownerReferences", None)

        meta = pod["metadata"]
        self.store.mutate("v1", "Pod", meta.get("namespace"), meta["name"], drop)

    def reconcile(self, key: ObjKey) -> None:
        rs = w.driven(self, RS, key)
        if rs is None:
            return
        ns = key[2]
        spec = rs.get("spec") or {}
        selector = spec.get("selector")
        uid = rs["metadata"]["uid"]
        active = []
        for pod in self.store.snapshot("v1", "Pod", ns)[0]:
            labels = pod["metadata"].get("labels") or {}
            ref = w.controller_ref(pod)
            matches = w.selector_matches(selector, labels)
            if ref is not None and ref.get("uid") == uid:
                if not matches:
                    self._release(pod, rs)
                    continue
            elif ref is None and matches and not w.terminating(pod):
                pod = self._adopt(pod, rs)
            else:
                continue
            if w.pod_active(pod):
                active.append(pod)
        want = max(int(spec.get("replicas", 1)), 0)
        if len(active) < want:
            missing = want - len(active)
            if missing > w.BURST:
                self.manager.enqueue(self, key)  # the rest in a later pass
            for _ in range(min(missing, w.BURST)):
                made = w.create_pod(self.store, rs, spec.get("template") or {})
                if made is not None:
                    active.append(made)
        elif len(active) > want:
            # Not-ready pods go first, then the newest, as the controller ranks them.
            ranked = sorted(
                active,
                key=lambda p: (w.pod_ready(p), p["metadata"].get("creationTimestamp", "")),
            )
            doomed = ranked[: len(active) - want]
            for pod in doomed:
                self.manager.delete(pod)
            active = [p for p in active if p not in doomed]
        self._status(rs, active)

    def _adopt(self, pod: dict, rs: dict) -> dict:
        def add(p: dict) -> None:
            refs = p["metadata"].setdefault("ownerReferences", [])
            refs.append(w.owner_reference(rs))

        meta = pod["metadata"]
        return self.store.mutate("v1", "Pod", meta.get("namespace"), meta["name"], add)

    def _status(self, rs: dict, active: list[dict]) -> None:
        ready = sum(1 for p in active if w.pod_ready(p))
        status = {
            "replicas": len(active),
            "fullyLabeledReplicas": len(active),
            "readyReplicas": ready,
            "availableReplicas": ready,
            "observedGeneration": rs["metadata"].get("generation", 1),
        }
        if not ready:
            del status["readyReplicas"], status["availableReplicas"]
        old = rs.get("status") or {}
        if {k: v for k, v in old.items() if k != "conditions"} == status:
            return
        meta = rs["metadata"]

        def write(obj: dict) -> None:
            obj["status"] = status

        self.store.mutate(*RS, meta.get("namespace"), meta["name"], write)


def _rs_refs(obj: dict) -> list[dict]:
    return [r for r in w.owner_refs(obj) if r.get("kind") == "ReplicaSet" and r.get("controller")]
