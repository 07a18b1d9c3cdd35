"""The Job controller: runs pods until `completions` succeed (at most `parallelism` at
once) or more than `backoffLimit` fail, then marks the Job Complete or Failed."""

from __future__ import annotations

from ktriage.sim.controllers import workloads as w
from ktriage.sim.controllers.manager import Controller, ObjKey, key_of
from ktriage.sim.storage.store import Change
from ktriage.sim.timefmt import rfc3339

JOB = ("batch/v1", "Job")


def _finished(job: dict) -> bool:
    return any(
        c.get("type") in ("Complete", "Failed") and c.get("status") == "True"
        for c in (job.get("status") or {}).get("conditions") or []
    )


class JobController(Controller):
    kinds = (JOB, ("v1", "Pod"))

    def observe(self, change: Change, from_api: bool) -> None:
        obj = change.obj
        if change.kind == "Job":
            if from_api and change.type == "ADDED":
                self.manager.managed.add(obj["metadata"]["uid"])
            if change.type != "DELETED":
                self.manager.enqueue(self, key_of(obj))
            return
        w.enqueue_owner(self, change, JOB)

    def reconcile(self, key: ObjKey) -> None:
        job = w.driven(self, JOB, key)
        if job is None:
            return
        name = key[3]
        if _finished(job):
            return
        spec = job.get("spec") or {}
        completions = int(spec.get("completions", 1))
        parallelism = int(spec.get("parallelism", 1))
        backoff_limit = int(spec.get("backoffLimit", 6))
        pods = w.owned_pods(self.store, job)
        phases = [(p.get("status") or {}).get("phase") for p in pods]
        succeeded = phases.count("Succeeded")
        failed = phases.count("Failed")
        active = [p for p in pods if w.pod_active(p)]
        now = rfc3339(self.manager.clock.now())
        status = dict(job.get("status") or {})
        status.setdefault("startTime", now)
        conditions = list(status.get("conditions") or [])

        def condition(ctype: str, reason: str, message: str) -> dict:
            return {
                "type": ctype,
                "status": "True",
                "reason": reason,
                "message": message,
                "lastProbeTime": now,
                "lastTransitionTime": now,
            }

        if succeeded >= completions:
            conditions += [
                condition(
                    "SuccessCriteriaMet",
                    "CompletionsReached",
                    "Reached expected number of succeeded pods",
                ),
                condition(
                    "Complete", "CompletionsReached", "Reached expected number of succeeded pods"
                ),
            ]
            status["completionTime"] = now
        elif failed > backoff_limit:
            message = "Job has reached the specified backoff limit"
            conditions += [
                condition("FailureTarget", "BackoffLimitExceeded", message),
                condition("Failed", "BackoffLimitExceeded", message),
            ]
            for pod in active:
                self.manager.delete(pod)
            active = []
        else:
            labels = {
                "batch.kubernetes.io/controller-uid": job["metadata"]["uid"],
                "batch.kubernetes.io/job-name": name,
                "controller-uid": job["metadata"]["uid"],
                "job-name": name,
            }
            missing = min(parallelism, completions - succeeded) - len(active)
            if missing > w.BURST:
                self.manager.enqueue(self, key)
            for _ in range(min(missing, w.BURST)):
                made = w.create_pod(self.store, job, spec.get("template") or {}, labels=labels)
                if made is not None:
                    active.append(made)
        status.update(
            active=len(active),
            ready=sum(1 for p in active if w.pod_ready(p)),
            succeeded=succeeded,
            failed=failed,
            terminating=0,
            uncountedTerminatedPods={},
        )
        for field in ("active", "succeeded", "failed"):
            if not status[field]:
                del status[field]
        if conditions:
            status["conditions"] = conditions
        w.write_status(self.store, job, status)
