"""Cordon the node a pod runs on: no new pods land there; running pods stay.

The patch is the one kubectl sends, a strategic merge of
`{"spec": {"unschedulable": true}}`; undo sends `false`. A node that is already
cordoned is left alone and the record says so (and that undo would not
uncordon what ktriage did not cordon).
"""

from __future__ import annotations

from typing import Any

from ktriage.actions.base import (
    FAILED,
    OK,
    STRATEGIC_MERGE,
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
from ktriage.actions.permissions import GET_NODES, PATCH_NODES
from ktriage.core.containment import CORDONED, NODE, RESTORED, fact
from ktriage.core.model import EntityKind


def _unschedulable(node: dict[str, Any]) -> bool:
    return bool((node.get("spec") or {}).get("unschedulable"))


async def _read_node(ctx: ActionContext, node: Target, verb: str = "read") -> dict[str, Any]:
    """The node as the server has it now."""
    return await ctx.read(ctx.kube.get_node, node, node.name, permission=GET_NODES, verb=verb)


class Cordon(DeclaredAction):
    name = "cordon"
    title = "Cordon the pod's node"

    async def check(self, ctx: ActionContext, target: Target) -> dict[str, Any]:
        pod = await ctx.read_pod(target)
        node_name = (pod.get("spec") or {}).get("nodeName")
        if not node_name:
            raise ActionError(f"{target.words()} is not scheduled on a node: nothing to cordon")
        node = await _read_node(ctx, Target(EntityKind.NODE, "", node_name))
        return {"node": node, "host_network": (pod.get("spec") or {}).get("hostNetwork") is True}

    def _plan(
        self,
        target: Target,
        incident_id: str,
        node: dict[str, Any],
        *,
        cordon: bool,
        host_network: bool = False,
    ) -> Plan:
        name = node["metadata"]["name"]
        subject = Target(EntityKind.NODE, "", name)
        verb = "Cordon" if cordon else "Uncordon"
        plan = Plan(
            action=self.name,
            incident_id=incident_id,
            target=target,
            subject=subject,
            title=f"{verb} node {name}",
            state={"node": name},
        )
        if _unschedulable(node) == cordon:
            state = "already cordoned" if cordon else "not cordoned"
            plan.unchanged = f"node {name} is {state}"
            return plan
        plan.changes.append(
            Change(
                verb="patch",
                target=subject,
                body={"spec": {"unschedulable": cordon}},
                content_type=STRATEGIC_MERGE,
                summary=(
                    f"mark node {name} unschedulable: no new pods are placed on it; "
                    "the pods running there keep running"
                    if cordon
                    else f"mark node {name} schedulable again"
                ),
            )
        )
        if cordon and host_network:
            # Isolation refuses such a pod: the words must not send the user back to it.
            plan.notes.append(
                "The pod keeps running: cordoning stops new pods only. It uses the host's "
                "network, where NetworkPolicy cannot apply: save its evidence (l), then "
                "delete it (X)."
            )
        elif cordon:
            pods_note = "The pod keeps running: cordoning stops new pods only; isolate it too."
            plan.notes.append(pods_note)
        return plan

    async def plan(
        self, ctx: ActionContext, target: Target, incident_id: str, facts: dict[str, Any]
    ) -> Plan:
        return self._plan(
            target,
            incident_id,
            facts["node"],
            cordon=True,
            host_network=facts.get("host_network") is True,
        )

    async def dry_run(self, ctx: ActionContext, plan: Plan) -> None:
        if not plan.changes:
            plan.dry_run = "nothing to send"
            return
        for change in plan.changes:
            await ctx.call(
                ctx.kube.patch_node,
                change.target.name,
                change.body,
                dry_run=True,
                what=f"dry run: patch {change.target.words()}",
                subject=change.target,
                permission=PATCH_NODES,
            )
        plan.dry_run = "the server accepted the patch (dryRun=All): nothing was changed yet"

    async def _set(self, ctx: ActionContext, plan: Plan, *, cordon: bool) -> str:
        """Patch the node; returns OK or UNCHANGED (found in the wanted state on a retry)."""
        subject = plan.subject

        async def attempt(refresh: bool) -> str:
            if refresh:
                node = await _read_node(ctx, subject, "re-read")
                if _unschedulable(node) == cordon:
                    return UNCHANGED
            reply = await ctx.call(
                ctx.kube.patch_node,
                subject.name,
                {"spec": {"unschedulable": cordon}},
                what=f"patch {subject.words()}",
                subject=subject,
                permission=PATCH_NODES,
            )
            if _unschedulable(reply) != cordon:
                raise ActionError(
                    f"patch {subject.words()}: the server answered but spec.unschedulable "
                    f"is not {str(cordon).lower()}"
                )
            return OK

        return await ctx.runner.retry_on_conflict(attempt)

    async def _facts(self, ctx: ActionContext, subject: Target) -> list[dict[str, str]]:
        """What is true of the node now, re-read from the server after the change
        (nothing when it cannot be read: no claim without a reading)."""
        try:
            node = await _read_node(ctx, subject, "re-read")
        except ActionError:
            return []
        if _unschedulable(node):
            detail = (
                f"re-read: node {subject.name} is unschedulable; no new pods are placed "
                "on it, the pods running there keep running"
            )
            return [fact(NODE, subject.words(), CORDONED, detail)]
        detail = f"re-read: node {subject.name} is schedulable"
        return [fact(NODE, subject.words(), RESTORED, detail)]

    def _failed(self, plan: Plan, error: ActionError) -> Outcome:
        check = (
            f"kubectl get node {plan.subject.name} -o jsonpath='{{.spec.unschedulable}}'"
            if error.reason in ("timeout", "network", "server", "throttled")
            else ""
        )
        message = error.message + (
            f"; it may or may not have applied: check with {check}" if check else ""
        )
        return Outcome(plan=plan, result=FAILED, message=message, error=error.message)

    async def apply(
        self, ctx: ActionContext, plan: Plan, progress: Progress | None = None
    ) -> Outcome:
        if plan.unchanged:
            return Outcome(
                plan=plan,
                result=UNCHANGED,
                message=plan.unchanged,
                undo_note=("ktriage did not cordon it, so undo will not uncordon it"),
                containment=_only(await self._facts(ctx, plan.subject), CORDONED),
            )
        try:
            result = await self._set(ctx, plan, cordon=True)
        except ActionError as error:
            return self._failed(plan, error)
        name = plan.subject.name
        facts = _only(await self._facts(ctx, plan.subject), CORDONED)
        if result == UNCHANGED:
            return Outcome(
                plan=plan,
                result=UNCHANGED,
                message=f"node {name} was cordoned meanwhile by someone else: nothing changed",
                containment=facts,
            )
        return Outcome(
            plan=plan,
            result=OK,
            message=f"cordoned node {name}: no new pods will be scheduled on it",
            undo={"node": name},
            undoable=True,
            undo_note=f"undo uncordons node {name}",
            containment=facts,
        )

    async def plan_undo(self, ctx: ActionContext, record: ActionRecord) -> Plan:
        name = record.undo["node"]
        subject = Target(EntityKind.NODE, "", name)
        node = await _read_node(ctx, subject)
        plan = self._plan(record.target, record.incident_id, node, cordon=False)
        plan.undo_of = record
        return plan

    async def undo(self, ctx: ActionContext, plan: Plan) -> Outcome:
        if plan.unchanged:
            facts = await self._facts(ctx, plan.subject)
            return Outcome(plan=plan, result=UNCHANGED, message=plan.unchanged, containment=facts)
        try:
            result = await self._set(ctx, plan, cordon=False)
        except ActionError as error:
            return self._failed(plan, error)
        name = plan.subject.name
        facts = await self._facts(ctx, plan.subject)
        if result == UNCHANGED:
            return Outcome(
                plan=plan,
                result=UNCHANGED,
                message=f"node {name} was uncordoned meanwhile",
                containment=facts,
            )
        return Outcome(
            plan=plan, result=UNDONE, message=f"uncordoned node {name}", containment=facts
        )


def _only(facts: list[dict[str, str]], state: str) -> list[dict[str, str]]:
    """After a cordon, only a cordoned node is worth a fact: one found schedulable
    again (uncordoned by someone else meanwhile) was not restored by an undo."""
    return [f for f in facts if f["state"] == state]
