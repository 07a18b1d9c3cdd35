"""The StatefulSet controller: pods `<set>-0 … <set>-(n-1)`, made in order (each once
the one before is Ready), removed from the highest ordinal, replaced under the same
name, and updated one at a time from the highest ordinal when the template changes."""

from __future__ import annotations

from ktriage.sim.controllers import workloads as w
from ktriage.sim.controllers.manager import Controller, ObjKey
from ktriage.sim.storage.store import Change

STS = ("apps/v1", "StatefulSet")
REVISION_LABEL = "controller-revision-hash"


class StatefulSetController(Controller):
    kinds = (STS, ("v1", "Pod"))

    def observe(self, change: Change, from_api: bool) -> None:
        w.observe_workload(self, change, from_api, STS)

    def reconcile(self, key: ObjKey) -> None:
        _, _, ns, name = key
        sts = w.driven(self, STS, key)
        if sts is None:
            return
        spec = sts.get("spec") or {}
        want = int(spec.get("replicas", 1))
        template = spec.get("template") or {}
        revision = f"{name}-{w.template_hash(w.without_hash(template))}"
        parallel = spec.get("podManagementPolicy") == "Parallel"
        pods = {p["metadata"]["name"]: p for p in w.owned_pods(self.store, sts)}
        busy = False  # OrderedReady: one pod in transition at a time
        for ordinal in range(want):
            pod_name = f"{name}-{ordinal}"
            pod = pods.get(pod_name)
            if pod is None:
                if self.store.peek("v1", "Pod", ns, pod_name) is not None:
                    busy = True  # the old one is still Terminating under that name
                    break
                self._create(sts, template, pod_name, ordinal, revision)
                busy = True
                if not parallel:
                    break
                continue
            if w.terminating(pod) or (pod.get("status") or {}).get("phase") in ("Failed",):
                if not w.terminating(pod):
                    self.manager.delete(pod)
                busy = True
                if not parallel:
                    break
                continue
            if not w.pod_ready(pod) and not parallel:
                busy = True
                break
        extra = sorted(
            (p for n, p in pods.items() if _ordinal(n, name) >= want),
            key=lambda p: -_ordinal(p["metadata"]["name"], name),
        )
        if extra and not busy:
            victim = extra[0]
            if not w.terminating(victim):
                self.manager.delete(victim)
            busy = True
        if not busy:
            # Rolling update: the highest ordinal still on an old revision goes first.
            for ordinal in reversed(range(want)):
                pod = pods.get(f"{name}-{ordinal}")
                labels = (pod or {}).get("metadata", {}).get("labels") or {}
                if pod is not None and labels.get(REVISION_LABEL) != revision:
                    self.manager.delete(pod)
                    break
        self._status(sts, revision, want)

    def _create(self, sts: dict, template: dict, pod_name: str, ordinal: int, rev: str) -> None:
        spec_extra: dict = {"hostname": pod_name}
        service = (sts.get("spec") or {}).get("serviceName")
        if service:
            spec_extra["subdomain"] = service
        w.create_pod(
            self.store,
            sts,
            template,
            name=pod_name,
            labels={
                REVISION_LABEL: rev,
                "statefulset.kubernetes.io/pod-name": pod_name,
                "apps.kubernetes.io/pod-index": str(ordinal),
            },
            spec_extra=spec_extra,
        )

    def _status(self, sts: dict, revision: str, want: int) -> None:
        ns, name = sts["metadata"]["namespace"], sts["metadata"]["name"]
        current = self.store.peek(*STS, ns, name) or sts
        pods = [p for p in w.owned_pods(self.store, sts) if w.pod_active(p)]
        updated = [
            p for p in pods if (p["metadata"].get("labels") or {}).get(REVISION_LABEL) == revision
        ]
        ready = sum(1 for p in pods if w.pod_ready(p))
        old = current.get("status") or {}
        status = {
            "availableReplicas": ready,
            "collisionCount": 0,
            "currentReplicas": len(updated),
            "currentRevision": revision
            if len(updated) == len(pods)
            else old.get("currentRevision", revision),
            "observedGeneration": current["metadata"].get("generation", 1),
            "readyReplicas": ready,
            "replicas": len(pods),
            "updateRevision": revision,
            "updatedReplicas": len(updated),
        }
        if len(updated) == want == len(pods):
            status["currentRevision"] = revision
        status = {k: v for k, v in status.items() if v != 0 or k in ("replicas", "collisionCount")}
        w.write_status(self.store, current, status)


def _ordinal(pod_name: str, set_name: str) -> int:
    tail = pod_name[len(set_name) + 1 :]
    return int(tail) if tail.isdigit() else -1
