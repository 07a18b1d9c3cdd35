"""The kubelet's part: stopping pods marked for deletion, starting ephemeral containers.

A pod with a `deletionTimestamp` is stopped when its containers have exited (here: at
once on SIGTERM, `STOP_SECONDS` of sim time, or at the end of the grace period if that
is shorter): its containers are reported terminated, the pod reaches a terminal
phase, and it is removed unless finalizers keep it (then the garbage collector
removes it when they are gone).
"""

from __future__ import annotations

from functools import partial

from ktriage.sim.controllers import images, lifecycle, podstatus
from ktriage.sim.controllers.manager import Controller, ControllerManager, ObjKey, key_of
from ktriage.sim.storage.store import Change
from ktriage.sim.timefmt import parse_rfc3339, rfc3339

STOP_SECONDS = 1.0
START_SECONDS = 1.0  # from creation to running: pulling images, starting containers
POD = ("v1", "Pod")


class Kubelet(Controller):
    kinds = (POD,)

    def __init__(self, manager: ControllerManager) -> None:
        super().__init__(manager)
        self._stopping: set[str] = set()  # uids whose stop is scheduled
        # Per pod uid: the starts and exits already scheduled (forgotten with the pod).
        self._planned: dict[str, set[tuple[str, ...]]] = {}

    def observe(self, change: Change, from_api: bool) -> None:
        if change.type != "DELETED":
            self.manager.enqueue(self, key_of(change.obj))
        else:
            uid = change.obj["metadata"].get("uid")
            self._stopping.discard(uid)
            self._planned.pop(uid, None)

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
        if podstatus.creating(pod):
            self._schedule_start(pod)
        else:
            self._plan_exits(pod)
        self._start_ephemeral(pod)

    def _schedule_start(self, pod: dict) -> None:
        meta = pod["metadata"]
        uid = meta["uid"]
        planned = self._planned.setdefault(uid, set())
        if ("start",) in planned:
            return
        planned.add(("start",))
        ns, name = meta.get("namespace", ""), meta["name"]
        try:
            created = parse_rfc3339(meta["creationTimestamp"])
        except (KeyError, ValueError):
            created = self.manager.clock.now()

        def start() -> None:
            current = self.store.peek(*POD, ns, name)
            if current is None or current["metadata"].get("uid") != uid:
                return
            if current["metadata"].get("deletionTimestamp") or not podstatus.creating(current):
                return
            now = self.manager.clock.now()
            failed: list[tuple[str, str]] = []

            def pull_failed(cs: dict, image: str) -> bool:
                error = images.pull_error(image)
                if error is None:
                    return False
                images.failed_pull_status(cs, error)
                failed.append((cs["name"], image))
                return True

            self.store.mutate(
                *POD, ns, name, lambda p: podstatus.start_containers(p, now, pull_failed)
            )
            if failed:
                self._back_off_pulls(ns, name, uid, "containerStatuses", failed)

        self.manager.at(created + START_SECONDS, start)

    def _back_off_pulls(
        self, ns: str, name: str, uid: str, key: str, failed: list[tuple[str, str]]
    ) -> None:
        """After a failed pull kubelet reports its back-off (the pull is never retried
        here: the simulated registry will not have the image later either)."""

        def report() -> None:
            current = self.store.peek(*POD, ns, name)
            if current is None or current["metadata"].get("uid") != uid:
                return

            def back_off(obj: dict) -> None:
                statuses = (obj.get("status") or {}).get(key) or []
                for container, image in failed:
                    cs = next((s for s in statuses if s.get("name") == container), None)
                    if cs is not None:
                        images.backing_off(cs, image)

            self.store.mutate(*POD, ns, name, back_off)

        self.manager.at(self.manager.clock.now() + images.BACK_OFF_SECONDS, report)

    def _plan_exits(self, pod: dict) -> None:
        """Containers whose command ends (see `lifecycle.exit_plan`) exit on time; then
        the restart policy decides: restarted after a back-off, or the pod is done."""
        status = pod.get("status") or {}
        if status.get("phase") != "Running":
            return
        meta = pod["metadata"]
        uid = meta["uid"]
        policy = (pod.get("spec") or {}).get("restartPolicy", "Always")
        specs = {c.get("name"): c for c in (pod.get("spec") or {}).get("containers") or []}
        for cs in status.get("containerStatuses") or []:
            running = (cs.get("state") or {}).get("running")
            spec = specs.get(cs.get("name"))
            if not running or spec is None:
                continue
            plan = lifecycle.exit_plan(spec, policy)
            key = ("exit", uid, cs["name"], str(cs.get("restartCount", 0)))
            planned = self._planned.setdefault(uid, set())
            if plan is None or key in planned:
                continue
            planned.add(key)
            try:
                started = parse_rfc3339(running.get("startedAt", ""))
            except ValueError:
                started = self.manager.clock.now()
            seconds, code = plan
            exit_ = partial(
                self._exit,
                meta.get("namespace", ""),
                meta["name"],
                uid,
                cs["name"],
                code,
                int(cs.get("restartCount", 0)),
            )
            self.manager.at(started + seconds, exit_)

    def _exit(self, ns: str, name: str, uid: str, container: str, code: int, count: int) -> None:
        pod = self.store.peek(*POD, ns, name)
        if pod is None or pod["metadata"].get("uid") != uid or w_terminating(pod):
            return
        now = self.manager.clock.now()
        policy = (pod.get("spec") or {}).get("restartPolicy", "Always")
        reason = "Completed" if code == 0 else "Error"

        def exit_(p: dict) -> None:
            podstatus.set_container_state(
                p, container, "terminated", now=now, exit_code=code, reason=reason
            )
            lifecycle.settle_phase(p)

        pod = self.store.mutate(*POD, ns, name, exit_)
        if not lifecycle.restarts(policy, code):
            return
        delay = lifecycle.back_off(count)

        def back_off(p: dict) -> None:
            statuses = (p.get("status") or {}).get("containerStatuses") or []
            cs = next((s for s in statuses if s.get("name") == container), {})
            ended = dict(cs.get("state") or {})
            podstatus.set_container_state(
                p, container, "waiting", now=now, reason="CrashLoopBackOff"
            )
            cs["lastState"] = ended  # the exit it is backing off from

        if delay:
            self.store.mutate(*POD, ns, name, back_off)

        def restart() -> None:
            current = self.store.peek(*POD, ns, name)
            if current is None or current["metadata"].get("uid") != uid or w_terminating(current):
                return
            later = self.manager.clock.now()
            self.store.mutate(
                *POD,
                ns,
                name,
                lambda p: podstatus.set_container_state(
                    p,
                    container,
                    "running",
                    now=later,
                    restart=True,
                    exit_code=code,
                    reason=reason,
                ),
            )
            self.store.restart_container(ns, name, container)

        self.manager.at(now + delay, restart)

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
        """`kubectl debug` adds an ephemeral container; kubelet starts it, or reports
        the failed pull of its image. A pod that has finished runs nothing more: kubelet
        no longer syncs it, so the container stays in the spec with no status."""
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

        failed: list[tuple[str, str]] = []

        def start(obj: dict) -> None:
            statuses = obj.setdefault("status", {}).setdefault("ephemeralContainerStatuses", [])
            for c in new:
                image = c.get("image", "")
                cs = {
                    "containerID": podstatus.container_id(uid, c["name"], 0),
                    "image": podstatus.full_image(image),
                    "imageID": podstatus.image_id(image),
                    "lastState": {},
                    "name": c["name"],
                    "ready": False,
                    "restartCount": 0,
                    "state": {"running": {"startedAt": ts}},
                }
                error = images.pull_error(image)
                if error is not None:
                    cs["image"] = image
                    images.failed_pull_status(cs, error)
                    cs.pop("started", None)
                    failed.append((c["name"], image))
                statuses.append(cs)

        meta = pod["metadata"]
        ns, name = meta.get("namespace", ""), meta["name"]
        self.store.mutate(*POD, ns, name, start)
        if failed:
            self._back_off_pulls(ns, name, uid, "ephemeralContainerStatuses", failed)


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


def w_terminating(pod: dict) -> bool:
    return bool(pod["metadata"].get("deletionTimestamp")) or _terminal(pod)
