"""Workload containment: delete the pod, or scale its owning workload to zero.

- **Delete pod** (`X`): offered once the pod's evidence is saved; when no logs
  dump of it finished in this incident the plan says so first and the confirm
  needs an explicit choice. The grace period is a choice too: the pod's own, or
  0 (the containers are killed at once). The delete names the pod's uid, so a
  namesake created since is never touched. A pod owned by a controller comes
  back as a replacement from the same template: the plan says so.
- **Scale to zero** (`S`): the pod's Deployment (through its ReplicaSet),
  StatefulSet or bare ReplicaSet, through the scale subresource as `kubectl
  scale` does. A DaemonSet or a Job cannot be scaled: the check says so and
  what to do instead. Undo restores the recorded replicas. As with delete, when
  no logs dump of the pod finished in this incident the plan warns first and the
  confirm needs an explicit choice: the pods and their logs go.

Both re-read what they changed before saying what is now true.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

from ktriage.actions import kube_contain as kc
from ktriage.actions.base import (
    FAILED,
    OK,
    UNCHANGED,
    UNDONE,
    ActionError,
    ActionRecord,
    Change,
    DeclaredAction,
    Outcome,
    Plan,
    Progress,
    Target,
)
from ktriage.actions.context import ActionContext
from ktriage.actions.logs import MANIFEST, safe_name
from ktriage.actions.permissions import (
    DELETE_PODS,
    GET_DEPLOYMENTS,
    GET_PODS,
    GET_REPLICASETS,
    GET_STATEFULSETS,
    LIST_PODS,
    PATCH_DEPLOYMENT_SCALE,
    PATCH_REPLICASET_SCALE,
    PATCH_STATEFULSET_SCALE,
)
from ktriage.core.containment import DELETED, RESTORED, SCALED_DOWN, WORKLOAD, fact

GRACE = "g"
NOW = "0"
SCALE_ANYWAY = "s"
# A dump's directory: <namespace>.<pod>.<UTC stamp>[-n] (logs.py).
_STAMP = re.compile(r"\d{8}T\d{6}Z(-\d+)?")
# How long scale-to-zero waits for the pods to start terminating before saying so.
SETTLE_SECONDS = 5.0

_SCALE_PERMISSION = {
    "Deployment": PATCH_DEPLOYMENT_SCALE,
    "StatefulSet": PATCH_STATEFULSET_SCALE,
    "ReplicaSet": PATCH_REPLICASET_SCALE,
}
_READ_PERMISSION = {
    "Deployment": GET_DEPLOYMENTS,
    "StatefulSet": GET_STATEFULSETS,
    "ReplicaSet": GET_REPLICASETS,
}


def pod_subject(target: Target) -> str:
    return f"pod {target.namespace}/{target.name}"


def workload_subject(kind: str, namespace: str, name: str) -> str:
    return f"{kind.lower()} {namespace}/{name}"


def saved_evidence(ctx: ActionContext, incident_id: str, target: Target) -> list[str]:
    """The finished evidence dumps of this pod in this incident (a SHA256SUMS written)."""
    base = ctx.snapshot_dir / safe_name(incident_id) / "evidence"
    prefix = f"{safe_name(target.namespace)}.{safe_name(target.name)}."
    try:
        entries = list(base.iterdir())
    except OSError:
        return []
    found = []
    for entry in entries:
        name = entry.name
        if not name.startswith(prefix) or not _STAMP.fullmatch(name[len(prefix) :]):
            continue
        if (entry / MANIFEST).is_file():
            found.append(name)
    return sorted(found)


def _controller(obj: dict[str, Any]) -> tuple[str, str] | None:
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or ():
        if isinstance(ref, dict) and ref.get("controller"):
            return str(ref.get("kind") or ""), str(ref.get("name") or "")
    return None


def _gone_or_terminating(pod: dict[str, Any] | None) -> bool:
    return pod is None or bool((pod.get("metadata") or {}).get("deletionTimestamp"))


class DeletePod(DeclaredAction):
    name = "delete-pod"
    title = "Delete the pod"

    async def check(self, ctx: ActionContext, target: Target) -> dict[str, Any]:
        pod = await ctx.read_pod(target)
        return {"pod": pod}

    async def plan(
        self, ctx: ActionContext, target: Target, incident_id: str, facts: dict[str, Any]
    ) -> Plan:
        pod = facts["pod"]
        meta = pod.get("metadata") or {}
        spec = pod.get("spec") or {}
        grace = spec.get("terminationGracePeriodSeconds")
        grace_words = f"{grace} s" if isinstance(grace, int) else "the default, 30 s"
        plan = Plan(
            action=self.name,
            incident_id=incident_id,
            target=target,
            subject=target,
            title=f"Delete pod {target.short()}",
            state={"uid": meta.get("uid", "")},
            options=[
                (GRACE, f"delete with the pod's grace period ({grace_words})"),
                (NOW, "delete immediately (grace period 0: the containers are killed at once)"),
            ],
            option=GRACE,
        )
        if meta.get("deletionTimestamp"):
            plan.unchanged = f"pod {target.short()} is already terminating"
            return plan
        evidence = saved_evidence(ctx, incident_id, target)
        if not evidence:
            plan.warnings.append(
                "No evidence of this pod was saved in this incident: its logs, its "
                "filesystem and its process state go with it. Press l first to dump its "
                "logs, YAML and events, or choose below to delete it anyway."
            )
            plan.option = ""  # an explicit choice, not enter alone
        else:
            plan.notes.append("Evidence saved first: " + ", ".join(evidence))
        owner = _controller(pod)
        if owner is not None:
            kind, oname = owner
            plan.warnings.append(
                f"{kind} {oname} will start a replacement from the same template (the same "
                "image, the same weakness). Scale it to zero (S) to stop that."
            )
        plan.changes.append(
            Change(
                verb="delete",
                target=target,
                body={"preconditions": {"uid": meta.get("uid", "")}},
                summary=f"delete pod {target.short()} (only this pod: its uid is a precondition)",
            )
        )
        plan.notes.append("A deleted pod cannot be brought back: there is no undo.")
        return plan

    async def dry_run(self, ctx: ActionContext, plan: Plan) -> None:
        if plan.unchanged:
            plan.dry_run = "nothing to send"
            return
        t = plan.target
        await ctx.delete(
            kc.delete_pod, t, uid=plan.state["uid"], permission=DELETE_PODS, dry_run=True
        )
        plan.dry_run = "the server accepted the delete (dryRun=All): nothing was changed yet"

    async def apply(
        self, ctx: ActionContext, plan: Plan, progress: Progress | None = None
    ) -> Outcome:
        if plan.unchanged:
            return Outcome(plan=plan, result=UNCHANGED, message=plan.unchanged)
        if plan.option not in (GRACE, NOW):
            raise ActionError("choose how to delete the pod first")
        t = plan.target
        grace = 0 if plan.option == NOW else None
        try:
            await ctx.delete(
                kc.delete_pod, t, uid=plan.state["uid"], permission=DELETE_PODS, grace_period=grace
            )
        except ActionError as error:
            if error.reason != "not-found":
                return Outcome(plan=plan, result=FAILED, message=error.message, error=error.message)
        # What is true now, read back.
        try:
            pod: dict[str, Any] | None = await ctx.read_pod(t)
        except ActionError as error:
            if error.reason != "not-found":
                return Outcome(
                    plan=plan,
                    result=FAILED,
                    message=f"deleted, but could not read it back: {error.message}",
                    error=error.message,
                )
            pod = None
        if pod is not None and (pod.get("metadata") or {}).get("uid") != plan.state["uid"]:
            pod = None  # a namesake: the pod we deleted is gone
        if not _gone_or_terminating(pod):
            return Outcome(
                plan=plan,
                result=FAILED,
                message=f"pod {t.short()} is still there and not terminating",
                error="not deleted",
            )
        when = "immediately" if grace == 0 else "with its grace period"
        if pod is None:
            detail = "gone from the API server"
        else:
            detail = f"terminating ({when}) since {pod['metadata']['deletionTimestamp']}"
        outcome = Outcome(
            plan=plan,
            result=OK,
            message=f"deleted pod {t.short()} {when}: {detail}",
            undo_note="a deleted pod cannot be brought back",
        )
        outcome.containment.append(fact(WORKLOAD, pod_subject(t), DELETED, detail))
        return outcome

    async def plan_undo(self, ctx: ActionContext, record: ActionRecord) -> Plan:
        raise ActionError("a deleted pod cannot be brought back")

    async def undo(self, ctx: ActionContext, plan: Plan) -> Outcome:
        raise ActionError("a deleted pod cannot be brought back")


class ScaleToZero(DeclaredAction):
    name = "scale-zero"
    title = "Scale the pod's workload to zero"

    async def _read(self, ctx: ActionContext, kind: str, ns: str, name: str) -> dict[str, Any]:
        subject = Target(kind, ns, name)
        return await ctx.call(
            ctx.kube.get_controller,
            kind,
            ns,
            name,
            what=f"read {kind} {ns}/{name}",
            subject=subject,
            permission=_READ_PERMISSION.get(kind, GET_PODS),
        )

    async def check(self, ctx: ActionContext, target: Target) -> dict[str, Any]:
        pod = await ctx.read_pod(target)
        ns = target.namespace
        owner = _controller(pod)
        if owner is None:
            raise ActionError(
                f"pod {target.short()} has no controller, so there is no workload to scale: "
                "delete the pod instead (X)"
            )
        kind, name = owner
        if kind == "ReplicaSet":
            rs = await self._read(ctx, "ReplicaSet", ns, name)
            parent = _controller(rs)
            if parent is not None and parent[0] == "Deployment":
                kind, name = parent
        if kind == "DaemonSet":
            raise ActionError(
                f"DaemonSet {name} cannot be scaled: it runs one pod on every matching node. "
                f"Cordon the node and delete the pod, or stop it everywhere with "
                f"kubectl delete daemonset {name} -n {ns} (after saving evidence)"
            )
        if kind == "Job":
            raise ActionError(
                f"Job {name} cannot be scaled; suspend it instead: kubectl patch job {name} "
                f'-n {ns} --type merge -p \'{{"spec":{{"suspend":true}}}}\''
            )
        if kind not in _SCALE_PERMISSION:
            raise ActionError(f"{kind} {name} cannot be scaled by ktriage")
        workload = await self._read(ctx, kind, ns, name)
        return {"pod": pod, "kind": kind, "workload": workload}

    def _plan(
        self, target: Target, incident_id: str, kind: str, workload: dict[str, Any], replicas: int
    ) -> Plan:
        meta = workload.get("metadata") or {}
        name, ns = str(meta.get("name", "")), str(meta.get("namespace", target.namespace))
        current = (workload.get("spec") or {}).get("replicas")
        current = current if isinstance(current, int) else 1
        subject = Target(kind, ns, name)
        verb = "Scale" if replicas == 0 else "Restore"
        plan = Plan(
            action=self.name,
            incident_id=incident_id,
            target=target,
            subject=subject,
            title=f"{verb} {kind} {ns}/{name} to {replicas} replicas",
            state={"kind": kind, "name": name, "namespace": ns, "replicas": current},
        )
        if current == replicas:
            plan.unchanged = f"{kind} {ns}/{name} already has {replicas} replicas"
            return plan
        plan.changes.append(
            Change(
                verb="patch",
                target=Target(kind, ns, f"{name}/scale"),
                body={"spec": {"replicas": replicas}},
                content_type=kc.MERGE_PATCH,
                summary=f"spec.replicas {current} → {replicas}",
            )
        )
        return plan

    async def plan(
        self, ctx: ActionContext, target: Target, incident_id: str, facts: dict[str, Any]
    ) -> Plan:
        plan = self._plan(target, incident_id, facts["kind"], facts["workload"], 0)
        if not plan.unchanged:
            evidence = saved_evidence(ctx, incident_id, target)
            if not evidence:
                plan.warnings.append(
                    f"No evidence of pod {target.short()} was saved in this incident: its "
                    "pods and their logs will be gone; dump logs (l) first, or choose below "
                    "to scale it to zero anyway."
                )
                plan.options = [
                    (SCALE_ANYWAY, "scale to zero anyway, without saving its logs first")
                ]
                plan.option = ""  # an explicit choice, not enter alone
            else:
                plan.notes.append("Evidence saved first: " + ", ".join(evidence))
            plan.warnings.append(
                f"Every pod of {plan.subject.kind} {plan.subject.short()} stops, not only "
                f"this one: the service it provides goes down. Undo restores "
                f"{plan.state['replicas']} replicas."
            )
            plan.notes.append(
                "A HorizontalPodAutoscaler targeting it would scale it up again: "
                f"kubectl get hpa -n {plan.subject.namespace}"
            )
        return plan

    async def dry_run(self, ctx: ActionContext, plan: Plan) -> None:
        if plan.unchanged:
            plan.dry_run = "nothing to send"
            return
        await self._scale(ctx, plan, plan.changes[0].body["spec"]["replicas"], dry_run=True)
        plan.dry_run = "the server accepted the patch (dryRun=All): nothing was changed yet"

    async def _scale(
        self, ctx: ActionContext, plan: Plan, replicas: int, *, dry_run: bool = False
    ) -> dict[str, Any]:
        st = plan.state
        subject = plan.subject
        return await ctx.call(
            kc.patch_scale,
            ctx.kube,
            st["kind"],
            st["namespace"],
            st["name"],
            replicas,
            dry_run=dry_run,
            what=("dry run: " if dry_run else "") + f"scale {subject.kind} {subject.short()}",
            subject=subject,
            permission=_SCALE_PERMISSION[st["kind"]],
        )

    async def _pods_left(self, ctx: ActionContext, workload: dict[str, Any]) -> tuple[int, int]:
        """(pods still running, pods terminating) of the workload, waiting a little for
        its controller to act."""
        selector = ((workload.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
        if not selector:
            return 0, 0
        label_selector = ",".join(f"{k}={v}" for k, v in sorted(selector.items()))
        ns = (workload.get("metadata") or {}).get("namespace", "")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + SETTLE_SECONDS
        while True:
            pods = await ctx.call(
                ctx.kube.list_pods,
                ns,
                label_selector=label_selector,
                what=f"list the pods of {workload.get('kind', 'the workload')}",
                permission=LIST_PODS,
            )
            running = sum(1 for p in pods if not _gone_or_terminating(p))
            if running == 0 or loop.time() >= deadline:
                return running, len(pods) - running
            await asyncio.sleep(0.2)

    async def apply(
        self, ctx: ActionContext, plan: Plan, progress: Progress | None = None
    ) -> Outcome:
        if plan.unchanged:
            return Outcome(plan=plan, result=UNCHANGED, message=plan.unchanged)
        if plan.options and plan.option != SCALE_ANYWAY:
            raise ActionError("choose first: dump the pod's logs (l), or scale it anyway (s)")
        st = plan.state
        s = plan.subject
        try:
            await self._scale(ctx, plan, 0)
            workload = await self._read(ctx, st["kind"], st["namespace"], st["name"])
        except ActionError as error:
            return Outcome(plan=plan, result=FAILED, message=error.message, error=error.message)
        replicas = (workload.get("spec") or {}).get("replicas")
        if replicas != 0:
            return Outcome(
                plan=plan,
                result=FAILED,
                message=f"{s.kind} {s.short()} reads spec.replicas={replicas} after the patch",
                error="not scaled",
            )
        try:
            running, terminating = await self._pods_left(ctx, workload)
            pods = (
                f"{terminating} pod(s) terminating, {running} still running"
                if running
                else f"no pod left running ({terminating} terminating)"
            )
        except ActionError as error:
            pods = f"its pods could not be listed ({error.message})"
        detail = f"spec.replicas is 0 (was {st['replicas']}); {pods}"
        outcome = Outcome(
            plan=plan,
            result=OK,
            message=f"scaled {s.kind} {s.short()} to 0: {detail}",
            undo={
                "kind": st["kind"],
                "namespace": st["namespace"],
                "name": st["name"],
                "replicas": st["replicas"],
            },
            undoable=True,
            undo_note=f"undo scales {s.kind} {s.short()} back to {st['replicas']} replicas",
        )
        subject = workload_subject(st["kind"], st["namespace"], st["name"])
        outcome.containment.append(fact(WORKLOAD, subject, SCALED_DOWN, detail))
        return outcome

    async def plan_undo(self, ctx: ActionContext, record: ActionRecord) -> Plan:
        u = record.undo
        workload = await self._read(ctx, u["kind"], u["namespace"], u["name"])
        plan = self._plan(record.target, record.incident_id, u["kind"], workload, u["replicas"])
        plan.undo_of = record
        return plan

    async def undo(self, ctx: ActionContext, plan: Plan) -> Outcome:
        if plan.unchanged:
            return Outcome(plan=plan, result=UNCHANGED, message=plan.unchanged)
        st = plan.state
        s = plan.subject
        wanted = plan.changes[0].body["spec"]["replicas"]
        try:
            await self._scale(ctx, plan, wanted)
            workload = await self._read(ctx, st["kind"], st["namespace"], st["name"])
        except ActionError as error:
            return Outcome(plan=plan, result=FAILED, message=error.message, error=error.message)
        replicas = (workload.get("spec") or {}).get("replicas")
        if replicas != wanted:
            return Outcome(
                plan=plan,
                result=FAILED,
                message=f"{s.kind} {s.short()} reads spec.replicas={replicas}, not {wanted}",
                error="not restored",
            )
        outcome = Outcome(
            plan=plan, result=UNDONE, message=f"restored {s.kind} {s.short()} to {wanted} replicas"
        )
        subject = workload_subject(st["kind"], st["namespace"], st["name"])
        outcome.containment.append(
            fact(WORKLOAD, subject, RESTORED, f"spec.replicas is {wanted} again")
        )
        return outcome
