"""The DaemonSet controller: one pod per schedulable node, replaced when its template
changes (RollingUpdate) or when it is lost."""

from __future__ import annotations

from ktriage.sim.controllers import workloads as w
from ktriage.sim.controllers.manager import Controller, ObjKey, key_of
from ktriage.sim.storage.store import Change

DS = ("apps/v1", "DaemonSet")
REVISION_LABEL = "controller-revision-hash"


class DaemonSetController(Controller):
    kinds = (DS, ("v1", "Pod"), ("v1", "Node"))

    def observe(self, change: Change, from_api: bool) -> None:
        if change.kind == "Node":
            for ds in self.store.snapshot(*DS)[0]:
                self.manager.enqueue(self, key_of(ds))
        else:
            w.observe_workload(self, change, from_api, DS)

    def reconcile(self, key: ObjKey) -> None:
        _, _, ns, name = key
        ds = w.driven(self, DS, key)
        if ds is None:
            return
        template = (ds.get("spec") or {}).get("template") or {}
        revision = w.template_hash(w.without_hash(template))
        nodes = [
            n["metadata"]["name"]
            for n in self.store.snapshot("v1", "Node")[0]
            if not w.terminating(n)
        ]
        by_node: dict[str, list[dict]] = {}
        for pod in w.owned_pods(self.store, ds):
            if w.pod_active(pod):
                by_node.setdefault((pod.get("spec") or {}).get("nodeName", ""), []).append(pod)
        for node, pods in by_node.items():
            # A pod on a node that is gone, a second pod, or an old template's: delete.
            keep = node in nodes
            for pod in pods:
                current = (pod["metadata"].get("labels") or {}).get(REVISION_LABEL) == revision
                if keep and current:
                    keep = False
                    continue
                self.manager.delete(pod)
        for node in nodes:
            if not any(
                (p["metadata"].get("labels") or {}).get(REVISION_LABEL) == revision
                for p in by_node.get(node, [])
            ):
                w.create_pod(
                    self.store,
                    ds,
                    template,
                    labels={
                        REVISION_LABEL: revision,
                        "pod-template-generation": str(ds["metadata"].get("generation", 1)),
                    },
                    spec_extra={"nodeName": node},
                )
        pods = [p for p in w.owned_pods(self.store, ds) if w.pod_active(p)]
        current = [
            p for p in pods if (p["metadata"].get("labels") or {}).get(REVISION_LABEL) == revision
        ]
        ready = sum(1 for p in pods if w.pod_ready(p))
        status = {
            "currentNumberScheduled": len({p["spec"].get("nodeName") for p in pods}),
            "desiredNumberScheduled": len(nodes),
            "numberMisscheduled": 0,
            "numberReady": ready,
            "numberAvailable": ready,
            "observedGeneration": ds["metadata"].get("generation", 1),
            "updatedNumberScheduled": len(current),
        }
        if len(nodes) - ready > 0:
            status["numberUnavailable"] = len(nodes) - ready
        w.write_status(self.store, self.store.peek(*DS, ns, name) or ds, status)
