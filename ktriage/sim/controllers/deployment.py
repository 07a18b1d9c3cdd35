"""The Deployment controller: one ReplicaSet per pod template, rollouts and rollbacks.

The ReplicaSet whose template equals the Deployment's (ignoring `pod-template-hash`)
is the new one; if there is none it is made, named `<deployment>-<hash>`, with the
next `deployment.kubernetes.io/revision`. The new set is scaled to the wanted
replicas and the old ones to zero once the new pods are available; the status
(observedGeneration, updated/ready/available replicas, conditions) is what
`kubectl rollout status` reads. `rollout undo` puts an old template back: its set
becomes the new one again, under a new revision.
"""

from __future__ import annotations

from ktriage.sim.controllers import workloads as w
from ktriage.sim.controllers.manager import Controller, ObjKey, key_of
from ktriage.sim.storage.store import AlreadyExists, Change, deep_copy
from ktriage.sim.timefmt import rfc3339

DEPLOY = ("apps/v1", "Deployment")
RS = ("apps/v1", "ReplicaSet")
REVISION = "deployment.kubernetes.io/revision"


def revision(obj: dict) -> int:
    try:
        return int(((obj.get("metadata") or {}).get("annotations") or {}).get(REVISION, 0))
    except ValueError:
        return 0


class DeploymentController(Controller):
    kinds = (DEPLOY, RS)

    def observe(self, change: Change, from_api: bool) -> None:
        w.observe_workload(self, change, from_api, DEPLOY)

    def reconcile(self, key: ObjKey) -> None:
        dep = w.driven(self, DEPLOY, key)
        if dep is None:
            return
        ns = key[2]
        spec = dep.get("spec") or {}
        template = spec.get("template") or {}
        uid = dep["metadata"]["uid"]
        sets = []
        for rs in self.store.snapshot(*RS, ns)[0]:
            ref = w.controller_ref(rs)
            if ref is None and not w.terminating(rs):
                labels = rs["metadata"].get("labels") or {}
                if w.selector_matches(spec.get("selector"), labels):
                    rs = self._adopt(rs, dep)
                    sets.append(rs)
            elif ref is not None and ref.get("uid") == uid:
                sets.append(rs)
        for rs in sets:
            if rs["metadata"]["uid"] not in self.manager.managed:
                self.manager.managed.add(rs["metadata"]["uid"])
                self.manager.poke(key_of(rs))
        top = max((revision(rs) for rs in sets), default=0)
        new = next((rs for rs in sets if w.same_template(rs["spec"]["template"], template)), None)
        want = int(spec.get("replicas", 1))
        if new is None:
            new = self._new_set(dep, template, top + 1, want)
            if new is None:
                return
            sets.append(new)
        elif revision(new) < top:
            new = self._annotate(new, {REVISION: str(top + 1)})
        old_sets = [rs for rs in sets if rs["metadata"]["uid"] != new["metadata"]["uid"]]
        if not spec.get("paused"):
            if int(new["spec"].get("replicas", 0)) != want:
                new = self._scale(new, want, want)
            available = int((new.get("status") or {}).get("availableReplicas", 0))
            if available >= want:
                for rs in old_sets:
                    if int(rs["spec"].get("replicas", 0)) != 0:
                        self._scale(rs, 0, want)
        if str(revision(new)) != (dep["metadata"].get("annotations") or {}).get(REVISION):
            dep = self._annotate(dep, {REVISION: str(revision(new))})
        self._prune(dep, old_sets)
        self._status(dep, new, old_sets)

    def _adopt(self, rs: dict, dep: dict) -> dict:
        def add(obj: dict) -> None:
            obj["metadata"].setdefault("ownerReferences", []).append(w.owner_reference(dep))

        return self.store.mutate(*RS, rs["metadata"]["namespace"], rs["metadata"]["name"], add)

    def _new_set(self, dep: dict, template: dict, rev: int, want: int) -> dict | None:
        pth = w.template_hash(w.without_hash(template))
        tpl = deep_copy(template)
        tpl.setdefault("metadata", {}).setdefault("labels", {})[w.TEMPLATE_HASH_LABEL] = pth
        selector = deep_copy(dep["spec"].get("selector") or {})
        selector.setdefault("matchLabels", {})[w.TEMPLATE_HASH_LABEL] = pth
        surge = max(1, want // 4)
        rs = {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {
                "name": f"{dep['metadata']['name']}-{pth}",
                "namespace": dep["metadata"]["namespace"],
                "labels": dict(tpl["metadata"]["labels"]),
                "annotations": {
                    "deployment.kubernetes.io/desired-replicas": str(want),
                    "deployment.kubernetes.io/max-replicas": str(want + surge),
                    REVISION: str(rev),
                },
                "ownerReferences": [w.owner_reference(dep)],
            },
            "spec": {"replicas": want, "selector": selector, "template": tpl},
        }
        try:
            made = self.store.create_checked(rs)
        except AlreadyExists:
            return None
        self.manager.managed.add(made["metadata"]["uid"])
        return made

    def _annotate(self, obj: dict, annotations: dict) -> dict:
        def add(o: dict) -> None:
            o["metadata"].setdefault("annotations", {}).update(annotations)

        meta = obj["metadata"]
        av, kind = obj["apiVersion"], obj["kind"]
        return self.store.mutate(av, kind, meta["namespace"], meta["name"], add)

    def _scale(self, rs: dict, replicas: int, want: int) -> dict:
        def scale(o: dict) -> None:
            o["spec"]["replicas"] = replicas
            o["metadata"].setdefault("annotations", {})[
                "deployment.kubernetes.io/desired-replicas"
            ] = str(want)

        return self.store.mutate(*RS, rs["metadata"]["namespace"], rs["metadata"]["name"], scale)

    def _prune(self, dep: dict, old_sets: list[dict]) -> None:
        limit = int((dep.get("spec") or {}).get("revisionHistoryLimit", 10))
        idle = [
            rs
            for rs in old_sets
            if int(rs["spec"].get("replicas", 0)) == 0
            and int((rs.get("status") or {}).get("replicas", 0)) == 0
        ]
        idle.sort(key=revision)
        for rs in idle[: max(len(idle) - limit, 0)]:
            self.manager.delete(rs, "Background")

    def _status(self, dep: dict, new: dict, old_sets: list[dict]) -> None:
        want = int(dep["spec"].get("replicas", 1))
        every = [new, *old_sets]

        def total(field: str, sets: list[dict]) -> int:
            return sum(int((rs.get("status") or {}).get(field, 0)) for rs in sets)

        updated = total("replicas", [new])
        available = total("availableReplicas", every)
        status: dict = {
            "observedGeneration": dep["metadata"].get("generation", 1),
            "replicas": total("replicas", every),
            "updatedReplicas": updated,
            "readyReplicas": total("readyReplicas", every),
            "availableReplicas": available,
        }
        if want - available > 0:
            status["unavailableReplicas"] = want - available
        status = {k: v for k, v in status.items() if v or k == "observedGeneration"}
        complete = (
            updated == want
            and status.get("replicas", 0) == want
            and total("availableReplicas", [new]) >= want
        )
        rs_name = new["metadata"]["name"]
        now = rfc3339(self.manager.clock.now())
        old = dep.get("status") or {}
        old_conditions = {c.get("type"): c for c in old.get("conditions") or []}
        max_unavailable = max(want // 4, 0)

        def condition(ctype: str, value: bool, reason: str, message: str) -> dict:
            before = old_conditions.get(ctype) or {}
            same = before.get("status") == ("True" if value else "False")
            return {
                "lastTransitionTime": before.get("lastTransitionTime", now) if same else now,
                "lastUpdateTime": now,
                "message": message,
                "reason": reason,
                "status": "True" if value else "False",
                "type": ctype,
            }

        minimum = available >= want - max_unavailable
        available_cond = condition(
            "Available",
            minimum,
            "MinimumReplicasAvailable" if minimum else "MinimumReplicasUnavailable",
            "Deployment has minimum availability."
            if minimum
            else "Deployment does not have minimum availability.",
        )
        progressing = condition(
            "Progressing",
            True,
            "NewReplicaSetAvailable" if complete else "ReplicaSetUpdated",
            f'ReplicaSet "{rs_name}" has successfully progressed.'
            if complete
            else f'ReplicaSet "{rs_name}" is progressing.',
        )
        status["conditions"] = [available_cond, progressing]
        if _same_status(old, status):
            return
        meta = dep["metadata"]

        def write(o: dict) -> None:
            o["status"] = status

        self.store.mutate(*DEPLOY, meta["namespace"], meta["name"], write)


def _same_status(old: dict, new: dict) -> bool:
    def strip(status: dict) -> dict:
        out = {k: v for k, v in status.items() if k != "conditions"}
        out["conditions"] = [
            {k: v for k, v in c.items() if k not in ("lastUpdateTime", "lastTransitionTime")}
            for c in status.get("conditions") or []
        ]
        return out

    return strip(old) == strip(new)
