"""The CronJob controller: at each time the schedule names (on the sim clock) it makes
a Job `<cronjob>-<minutes since the epoch>` from the job template, as the real
controller names them, and keeps `successfulJobsHistoryLimit` finished ones."""

from __future__ import annotations

import calendar
import time

from ktriage.sim.controllers import workloads as w
from ktriage.sim.controllers.manager import Controller, ControllerManager, ObjKey, key_of
from ktriage.sim.storage.store import AlreadyExists, Change, deep_copy
from ktriage.sim.timefmt import parse_rfc3339, rfc3339

CRONJOB = ("batch/v1", "CronJob")
JOB = ("batch/v1", "Job")
_FIELDS = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 6))
_MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
# How far ahead a schedule is searched (a year of minutes); beyond that it never fires.
_HORIZON_MINUTES = 366 * 24 * 60


def parse_schedule(text: str) -> list[set[int]] | None:
    """The five cron fields as sets of values; None if the schedule is not valid."""
    text = _MACROS.get(text.strip(), text.strip())
    if text.startswith("TZ=") or text.startswith("CRON_TZ="):
        text = text.split(None, 1)[1] if " " in text else ""
    parts = text.split()
    if len(parts) != 5:
        return None
    fields = []
    for part, (low, high) in zip(parts, _FIELDS, strict=True):
        values: set[int] = set()
        for item in part.split(","):
            step = 1
            if "/" in item:
                item, _, step_text = item.partition("/")
                if not step_text.isdigit() or int(step_text) == 0:
                    return None
                step = int(step_text)
            if item in ("*", "?"):
                start, end = low, high
            elif "-" in item:
                a, _, b = item.partition("-")
                if not (a.isdigit() and b.isdigit()):
                    return None
                start, end = int(a), int(b)
            elif item.isdigit():
                start = int(item)
                end = high if step > 1 else start
            else:
                return None
            if start < low or end > high or start > end:
                return None
            values.update(range(start, end + 1, step))
        fields.append(values)
    return fields


def next_time(fields: list[set[int]], after: float) -> float | None:
    """The first whole minute strictly after `after` (UTC) that the schedule names."""
    minute = int(after // 60) + 1
    for _ in range(_HORIZON_MINUTES):
        t = time.gmtime(minute * 60)
        weekday = (t.tm_wday + 1) % 7  # cron counts from Sunday
        if (
            t.tm_min in fields[0]
            and t.tm_hour in fields[1]
            and t.tm_mday in fields[2]
            and t.tm_mon in fields[3]
            and weekday in fields[4]
        ):
            return float(calendar.timegm(t))
        minute += 1
    return None


class CronJobController(Controller):
    kinds = (CRONJOB, JOB)

    def __init__(self, manager: ControllerManager) -> None:
        super().__init__(manager)
        self._armed: dict[ObjKey, float] = {}

    def observe(self, change: Change, from_api: bool) -> None:
        obj = change.obj
        if change.kind == "CronJob":
            w.mark_managed(self.manager, change, from_api)
            if change.type == "DELETED":
                self._armed.pop(key_of(obj), None)
            else:
                self.manager.enqueue(self, key_of(obj))
            return
        ref = w.controller_ref(obj)
        if ref is not None and ref.get("kind") == "CronJob":
            ns = obj["metadata"].get("namespace", "")
            self.manager.enqueue(self, (*CRONJOB, ns, ref.get("name", "")))

    def reconcile(self, key: ObjKey) -> None:
        cj = w.driven(self, CRONJOB, key)
        if cj is None:
            return
        ns = key[2]
        spec = cj.get("spec") or {}
        jobs = [j for j in self.store.snapshot(*JOB, ns)[0] if w.owned_by(j, cj)]
        self._status(cj, jobs)
        self._prune(spec, jobs)
        if spec.get("suspend"):
            return
        fields = parse_schedule(str(spec.get("schedule", "")))
        if fields is None:
            return
        status = cj.get("status") or {}
        since_text = status.get("lastScheduleTime") or cj["metadata"].get("creationTimestamp")
        try:
            since = parse_rfc3339(since_text)
        except (TypeError, ValueError):
            since = self.manager.clock.now()
        due = next_time(fields, since)
        if due is None:
            return
        now = self.manager.clock.now()
        if due <= now:
            # Missed times (the clock ran ahead) start one Job: the latest, as the
            # controller does.
            for _ in range(1000):
                later = next_time(fields, due)
                if later is None or later > now:
                    break
                due = later
            self._run(cj, due)
            return
        if self._armed.get(key) != due:
            self._armed[key] = due
            self.manager.at(due, lambda: self.manager.enqueue(self, key))

    def _run(self, cj: dict, due: float) -> None:
        spec = cj["spec"]
        template = deep_copy(spec.get("jobTemplate") or {})
        meta = template.get("metadata") or {}
        job = {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {
                "name": f"{cj['metadata']['name']}-{int(due // 60)}",
                "namespace": cj["metadata"]["namespace"],
                "labels": dict(meta.get("labels") or {}),
                "annotations": {
                    **(meta.get("annotations") or {}),
                    "batch.kubernetes.io/cronjob-scheduled-timestamp": rfc3339(due),
                },
                "ownerReferences": [w.owner_reference(cj)],
            },
            "spec": template.get("spec") or {},
        }
        try:
            made = self.store.create_checked(job)
        except AlreadyExists:
            made = None
        if made is not None:
            self.manager.managed.add(made["metadata"]["uid"])
        ns, name = cj["metadata"]["namespace"], cj["metadata"]["name"]

        def scheduled(o: dict) -> None:
            o.setdefault("status", {})["lastScheduleTime"] = rfc3339(due)

        self.store.mutate(*CRONJOB, ns, name, scheduled)

    def _status(self, cj: dict, jobs: list[dict]) -> None:
        active = [
            {
                "apiVersion": "batch/v1",
                "kind": "Job",
                "name": j["metadata"]["name"],
                "namespace": j["metadata"]["namespace"],
                "resourceVersion": j["metadata"].get("resourceVersion"),
                "uid": j["metadata"]["uid"],
            }
            for j in jobs
            if not _finished(j)
        ]
        status = dict(cj.get("status") or {})
        done = [j for j in jobs if _succeeded(j)]
        if active:
            status["active"] = active
        else:
            status.pop("active", None)
        if done:
            last = max((j.get("status") or {}).get("completionTime", "") for j in done)
            if last:
                status["lastSuccessfulTime"] = last
        w.write_status(self.store, cj, status)

    def _prune(self, spec: dict, jobs: list[dict]) -> None:
        for keep, pick in (
            (int(spec.get("successfulJobsHistoryLimit", 3)), _succeeded),
            (int(spec.get("failedJobsHistoryLimit", 1)), _failed),
        ):
            finished = sorted(
                (j for j in jobs if pick(j)), key=lambda j: j["metadata"]["creationTimestamp"]
            )
            for job in finished[: max(len(finished) - keep, 0)]:
                self.manager.delete(job, "Background")


def _condition(job: dict, ctype: str) -> bool:
    return any(
        c.get("type") == ctype and c.get("status") == "True"
        for c in (job.get("status") or {}).get("conditions") or []
    )


def _succeeded(job: dict) -> bool:
    return _condition(job, "Complete")


def _failed(job: dict) -> bool:
    return _condition(job, "Failed")


def _finished(job: dict) -> bool:
    return _succeeded(job) or _failed(job)
