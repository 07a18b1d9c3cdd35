"""The kubelet's part: stopping pods marked for deletion, starting ephemeral containers.

A pod with a `deletionTimestamp` is stopped when its containers have exited (here: at
once on SIGTERM, `STOP_SECONDS` of sim time, or at the end of the grace period if that
is shorter): its containers are reported terminated, the pod reaches a terminal
phase, and it is removed unless finalizers keep it (then the garbage collector
removes it when they are gone).
"""

from __future__ import annotations

from ktriage.sim.controllers import podstatus
from ktriage.sim.controllers.manager import Controller, ControllerManager, ObjKey, key_of
from ktriage.sim.storage.store import Change
from ktriage.sim.timefmt import parse_rfc3339, rfc3339

STOP_SECONDS = 1.0
POD = ("v1", "Pod")


class Kubelet(Controller):
    kinds = (POD,)

    def __init__(self, manager: ControllerManager) -> None:
        super().__init__(manager)
        self._stopping: set[str] = set()  # uids whose stop is scheduled

    def observe(self, change: Change, from_api: bool) -> None:
        if change.type != "DELETED":
            self.manager.enqueue(self, key_of(change.obj))
        else:
            self._stopping.discard(change.obj["metadata"].get("uid"))

    def reconcile(self, key: ObjKey) -> None:
        _, _, ns, name = key
        pod = self.store.peek(*POD, ns, name)
        if pod is None or not (pod.get("spec") or {}).get("nodeName"):
            return
        meta = pod["metadata"]
        if meta.get("deletionTimestamp"):
            uid = meta["uid"]
            if uid in self._stopping or _terminal(pod):
                return
            self._stopping.add(uid)
            now = self.manager.clock.now()
            try:
                deadline = parse_rfc3339(meta["deletionTimestamp"])
            except ValueError:
                deadline = now
            self.manager.at(min(deadline, now + STOP_SECONDS), lambda: self._stop(ns, name, uid))
            return
        self._start_ephemeral(pod)

    def _stop(self, ns: str, name: str, uid: str) -> None:
        pod = self.store.peek(*POD, ns, name)
        if pod is None or pod["metadata"].get("uid") != uid:
            return
        now = self.manager.clock.now()
        ts = rfc3339(now)

        def stop(obj: dict) -> None:
            status = obj.setdefault("status", {})
            for key in ("containerStatuses", "initContainerStatuses", "ephemeralContainerStatuses"):
                for cs in status.get(key) or []:
                    state = cs.get("state") or {}
                    if "terminated" in state:
                        continue
                    started = (state.get("running") or {}).get("startedAt", ts)
                    cs["state"] = {
                        "terminated": {
                            "containerID": cs.get("containerID", ""),
                            "exitCode": 0,
                            "finishedAt": ts,
                            "reason": "Completed",
                            "startedAt": started,
                        }
                    }
                    cs["ready"] = False
                    cs["started"] = False
            status["phase"] = "Succeeded"
            podstatus.refresh_conditions(status, ts)

        self.store.mutate(*POD, ns, name, stop)
        if not (pod["metadata"].get("finalizers")):
            self.store.delete(*POD, ns, name)

    def _start_ephemeral(self, pod: dict) -> None:
        """`kubectl debug` adds an ephemeral container; kubelet starts it."""
        ephemerals = (pod.get("spec") or {}).get("ephemeralContainers") or []
        if not ephemerals or _terminal(pod):
            return
        statuses = (pod.get("status") or {}).get("ephemeralContainerStatuses") or []
        known = {cs.get("name") for cs in statuses}
        new = [c for c in ephemerals if c.get("name") not in known]
        if not new:
            return
        ts = rfc3339(self.manager.clock.now())
        uid = pod["metadata"].get("uid", "")

        def start(obj: dict) -> None:
            statuses = obj.setdefault("status", {}).setdefault("ephemeralContainerStatuses", [])
            for c in new:
                statuses.append(
                    {
                        "containerID": podstatus.container_id(uid, c["name"], 0),
                        "image": podstatus.full_image(c.get("image", "")),
                        "imageID": podstatus.image_id(c.get("image", "")),
                        "lastState": {},
                        "name": c["name"],
                        "ready": False,
                        "restartCount": 0,
                        "state": {"running": {"startedAt": ts}},
                    }
                )

        meta = pod["metadata"]
        self.store.mutate(*POD, meta.get("namespace"), meta["name"], start)


def _terminal(pod: dict) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


def node_object(name: str, index: int, *, ip: str | None = None) -> dict:
    """A Ready worker node as its kubelet registers it, with pod range 10.244.<index>.0/24."""
    address = ip or f"10.0.1.{10 + index}"
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {
                "kubernetes.io/arch": "amd64",
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
            },
        },
        "spec": {"podCIDR": f"10.244.{index}.0/24", "podCIDRs": [f"10.244.{index}.0/24"]},
        "status": {
            "addresses": [
                {"type": "InternalIP", "address": address},
                {"type": "Hostname", "address": name},
            ],
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "reason": "KubeletReady",
                    "message": "kubelet is posting ready status",
                }
            ],
        },
    }
