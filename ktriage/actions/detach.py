"""Detach a pod from its workload, its Services and the policies that allow its traffic.

Detach removes the labels the pod's controller, its Services and the allowing
NetworkPolicies select, so the controller starts a clean replica while this pod
is kept for forensics. It is offered with isolation (see isolate.py).
"""

from __future__ import annotations

from typing import Any

from ktriage.actions.base import (
    FAILED,
    OK,
    QUARANTINE_LABEL,
    STRATEGIC_MERGE,
    UNCHANGED,
    ActionError,
    ActionRecord,
    Change,
    Outcome,
    Plan,
    Progress,
    Target,
)
from ktriage.actions.context import ActionContext
from ktriage.actions.isolate import (
    _CONTROLLERS,
    _READ_CONTROLLER,
    _label_cmd,
    _labels,
    _managed,
    _rv,
)
from ktriage.actions.permissions import (
    GET_PODS,
    LIST_NETPOL,
    LIST_SERVICES,
    PATCH_PODS,
    Permission,
)
from ktriage.core.netpol import (
    describe_selector,
    evaluate,
    holding_keys,
    selector_matches,
    service_selector,
)


class Detach:
    """Remove the labels that tie the pod to its controller, Services and allowing policies."""

    name = "detach"
    key = "D"
    title = "Detach the pod from its workload"

    def permissions(self, target: Target) -> list[Permission]:
        # Reading the pod's controller is not required: without it the plan says
        # which labels are unknown (see check), and the other holders still go.
        return [GET_PODS, PATCH_PODS, LIST_SERVICES, LIST_NETPOL]

    async def check(self, ctx: ActionContext, target: Target) -> dict[str, Any]:
        pod = await ctx.read_pod(target)
        controller = None
        for ref in (pod.get("metadata") or {}).get("ownerReferences") or ():
            if ref.get("controller") and ref.get("kind") in _CONTROLLERS:
                owner = Target(ref["kind"], target.namespace, ref.get("name", ""))
                try:
                    controller = await ctx.call(
                        ctx.kube.get_controller,
                        ref["kind"],
                        target.namespace,
                        ref.get("name", ""),
                        what=f"read {ref['kind']} {owner.short()}",
                        subject=owner,
                        permission=_READ_CONTROLLER[ref["kind"]],
                    )
                except ActionError as error:
                    if error.reason not in ("not-found", "forbidden"):
                        raise
                    controller = {"unreadable": f"{ref['kind']} {ref.get('name', '')}"}
                    controller["why"] = error.message
        services = await ctx.call(
            ctx.kube.list_services,
            target.namespace,
            what=f"list Services in namespace {target.namespace}",
            permission=LIST_SERVICES,
        )
        policies = await ctx.call(
            ctx.kube.list_network_policies,
            target.namespace,
            what=f"list NetworkPolicies in namespace {target.namespace}",
            permission=LIST_NETPOL,
        )
        return {"pod": pod, "controller": controller, "services": services, "policies": policies}

    async def plan(
        self, ctx: ActionContext, target: Target, incident_id: str, facts: dict[str, Any]
    ) -> Plan:
        pod = facts["pod"]
        labels = _labels(pod)
        holders: dict[str, list[str]] = {}
        plan = Plan(
            action=self.name,
            incident_id=incident_id,
            target=target,
            subject=target,
            title=f"Detach pod {target.short()} from its workload",
        )

        def hold(keys: set[str], why: str) -> None:
            for key in sorted(keys):
                if key != QUARANTINE_LABEL:
                    holders.setdefault(key, []).append(why)

        controller = facts.get("controller")
        if controller is not None and "unreadable" in controller:
            plan.warnings.append(
                f"Could not read {controller['unreadable']} ({controller['why']}): the labels "
                "its selector uses are not known; the pod may stay attached to it."
            )
        elif controller is not None:
            kind = controller.get("kind", "controller")
            cname = (controller.get("metadata") or {}).get("name", "?")
            selector = (controller.get("spec") or {}).get("selector")
            hold(holding_keys(selector, labels), f"{kind} {cname}")
            if kind == "Job":
                plan.warnings.append(
                    f"Job {cname} will no longer count this pod and may start another to "
                    "finish its work; this pod keeps running, kept for forensics."
                )
            else:
                plan.warnings.append(
                    f"{kind} {cname} will let go of this pod and start a replacement; "
                    "this pod keeps running, kept for forensics."
                )
        for svc in facts.get("services") or ():
            selector = service_selector((svc.get("spec") or {}).get("selector"))
            if selector and selector_matches(selector, labels):
                hold(holding_keys(selector, labels), f"Service {svc['metadata']['name']}")
        verdicts = evaluate(labels, target.namespace, facts.get("policies") or ())
        for verdict in verdicts.allowing:
            policy = next(
                p
                for p in facts["policies"]
                if (p.get("metadata") or {}).get("name") == verdict.name
            )
            if _managed(policy):
                continue
            selector = (policy.get("spec") or {}).get("podSelector") or {}
            if verdict.selects_all_pods:
                plan.warnings.append(
                    f"NetworkPolicy {verdict.name} selects every pod in the namespace "
                    f"({describe_selector(selector)}): no label change detaches the pod from it."
                )
                continue
            hold(holding_keys(selector, labels), f"NetworkPolicy {verdict.name}")
        if labels.get(QUARANTINE_LABEL) is None:
            plan.warnings.append(
                "The pod is not isolated: once detached it keeps its network access. "
                "Isolate it too."
            )
        if not holders:
            plan.unchanged = (
                f"pod {target.short()} is not held by a controller, Service or allowing policy"
            )
            return plan
        remove = {key: None for key in sorted(holders)}
        restore = {key: labels[key] for key in sorted(holders)}
        body = {"metadata": {"labels": remove, "resourceVersion": _rv(pod)}}
        plan.changes.append(
            Change(
                verb="patch",
                target=target,
                body=body,
                content_type=STRATEGIC_MERGE,
                summary="remove labels " + ", ".join(f"{k}={labels[k]}" for k in remove),
            )
        )
        for key in sorted(holders):
            plan.notes.append(f"{key}={labels[key]} is selected by " + ", ".join(holders[key]))
        plan.notes.append("To restore the labels by hand: " + _label_cmd(target, restore))
        plan.state = {"remove": list(remove), "restore": restore, "pod_rv": _rv(pod)}
        return plan

    async def dry_run(self, ctx: ActionContext, plan: Plan) -> None:
        if not plan.changes:
            plan.dry_run = "nothing to send"
            return
        change = plan.changes[0]
        t = change.target
        await ctx.call(
            ctx.kube.patch_pod,
            t.namespace,
            t.name,
            change.body,
            dry_run=True,
            what=f"dry run: patch {t.words()}",
            subject=t,
            permission=PATCH_PODS,
        )
        plan.dry_run = "the server accepted the patch (dryRun=All): nothing was changed yet"

    async def apply(
        self, ctx: ActionContext, plan: Plan, progress: Progress | None = None
    ) -> Outcome:
        if plan.unchanged:
            return Outcome(plan=plan, result=UNCHANGED, message=plan.unchanged)
        target = plan.target
        keys: list[str] = plan.state["remove"]

        async def attempt(refresh: bool) -> str:
            version = plan.state["pod_rv"]
            remaining = keys
            if refresh:
                pod = await ctx.call(
                    ctx.kube.get_pod,
                    target.namespace,
                    target.name,
                    what=f"re-read {target.words()}",
                    subject=target,
                    permission=GET_PODS,
                )
                version = _rv(pod)
                remaining = [k for k in keys if k in _labels(pod)]
                if not remaining:
                    return UNCHANGED
            body = {"metadata": {"labels": dict.fromkeys(remaining), "resourceVersion": version}}
            reply = await ctx.call(
                ctx.kube.patch_pod,
                target.namespace,
                target.name,
                body,
                what=f"unlabel {target.words()}",
                subject=target,
                permission=PATCH_PODS,
            )
            if any(k in _labels(reply) for k in remaining):
                raise ActionError(f"patch {target.words()}: the labels are still there")
            return OK

        try:
            result = await ctx.runner.retry_on_conflict(attempt)
        except ActionError as error:
            return Outcome(plan=plan, result=FAILED, message=error.message, error=error.message)
        restore = _label_cmd(target, plan.state["restore"])
        if result == UNCHANGED:
            return Outcome(
                plan=plan, result=UNCHANGED, message="the labels were already gone: nothing changed"
            )
        return Outcome(
            plan=plan,
            result=OK,
            message=f"detached pod {target.short()}: removed " + ", ".join(keys),
            undo={"restore": plan.state["restore"]},
            undoable=False,
            undo_note=(
                "not undone by ktriage: with its labels back, the controller would adopt the "
                f"pod and delete a replica. To restore by hand: {restore}"
            ),
        )

    async def plan_undo(self, ctx: ActionContext, record: ActionRecord) -> Plan:
        raise ActionError(record.undo_note or "detach cannot be undone by ktriage")

    async def undo(self, ctx: ActionContext, plan: Plan) -> Outcome:
        raise ActionError("detach cannot be undone by ktriage")
