"""Detach a pod from its workload, its Services and the policies that allow its traffic.

Detach removes the labels the pod's controller, its Services and the allowing
NetworkPolicies select, so the controller starts a clean replica while this pod
is kept for forensics. It is offered with isolation (see isolate.py).
"""

from __future__ import annotations

import asyncio
import time
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
    DeclaredAction,
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
    LIST_NETPOL,
    LIST_SERVICES,
)
from ktriage.core import containment as cf
from ktriage.core.netpol import (
    describe_selector,
    evaluate,
    holding_keys,
    selector_matches,
    service_selector,
)

# How long apply looks for the controller's replacement pod (a bounded wait, in the
# apply worker: the UI keeps running and shows "applying…").
REPLACEMENT_WAIT = 3.0
REPLACEMENT_POLL = 0.2


def selector_string(selector: dict[str, Any] | None) -> str:
    """A LabelSelector as kubectl's `-l` takes it: `app=web,tier in (a,b),!debug`."""
    if not selector:
        return ""
    parts = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    for expr in selector.get("matchExpressions") or ():
        key, op = expr.get("key", ""), expr.get("operator", "")
        values = ",".join(str(v) for v in expr.get("values") or ())
        parts.append(
            {
                "In": f"{key} in ({values})",
                "NotIn": f"{key} notin ({values})",
                "Exists": key,
                "DoesNotExist": f"!{key}",
            }.get(op, key)
        )
    return ",".join(parts)


def _owned_by(pod: dict[str, Any], uid: str) -> bool:
    refs = (pod.get("metadata") or {}).get("ownerReferences") or ()
    return any(isinstance(r, dict) and r.get("uid") == uid for r in refs)


class Detach(DeclaredAction):
    """Remove the labels that tie the pod to its controller, Services and allowing policies."""

    name = "detach"
    title = "Detach the pod from its workload"
    replacement_wait = REPLACEMENT_WAIT

    # Its permissions (catalog.py) leave out reading the pod's controller: without it
    # the plan says which labels are unknown (see check), and the other holders still go.

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
        owner: dict[str, str] = {}
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
            owner = {
                "kind": kind,
                "name": cname,
                "uid": (controller.get("metadata") or {}).get("uid", ""),
                "selector": selector_string(selector),
            }
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
        plan.state = {
            "remove": list(remove),
            "restore": restore,
            "pod_rv": _rv(pod),
            "owner": owner,
            "holders": {k: holders[k] for k in sorted(holders)},
        }
        return plan

    async def dry_run(self, ctx: ActionContext, plan: Plan) -> None:
        if not plan.changes:
            plan.dry_run = "nothing to send"
            return
        change = plan.changes[0]
        await ctx.patch_pod(change.target, change.body, verb="patch", dry_run=True)
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
                pod = await ctx.read_pod(target, verb="re-read")
                version = _rv(pod)
                remaining = [k for k in keys if k in _labels(pod)]
                if not remaining:
                    return UNCHANGED
            body = {"metadata": {"labels": dict.fromkeys(remaining), "resourceVersion": version}}
            reply = await ctx.patch_pod(target, body, verb="unlabel")
            if any(k in _labels(reply) for k in remaining):
                raise ActionError(f"patch {target.words()}: the labels are still there")
            return OK

        owner = plan.state.get("owner") or {}
        before = await self._owned_pods(ctx, target.namespace, owner)
        try:
            result = await ctx.runner.retry_on_conflict(attempt)
        except ActionError as error:
            return Outcome(plan=plan, result=FAILED, message=error.message, error=error.message)
        restore = _label_cmd(target, plan.state["restore"])
        facts = await self.verify(ctx, plan, before)
        if result == UNCHANGED:
            return Outcome(
                plan=plan,
                result=UNCHANGED,
                message="the labels were already gone: nothing changed",
                containment=facts,
            )
        return Outcome(
            plan=plan,
            result=OK,
            containment=facts,
            message=f"detached pod {target.short()}: " + "; ".join(f["detail"] for f in facts),
            undo={"restore": plan.state["restore"]},
            undoable=False,
            undo_note=(
                "not undone by ktriage: with its labels back, the controller would adopt the "
                f"pod and delete a replica. To restore by hand: {restore}"
            ),
        )

    # ---- verify ------------------------------------------------------------------

    async def _owned_pods(
        self, ctx: ActionContext, namespace: str, owner: dict[str, str]
    ) -> set[str] | None:
        """Names of the pods the controller owns now; None when they cannot be listed."""
        if not owner.get("uid") or not owner.get("selector"):
            return None
        try:
            pods = await ctx.call(
                ctx.kube.list_pods,
                namespace,
                label_selector=owner["selector"],
                what=f"list the pods of {owner['kind']} {namespace}/{owner['name']}",
            )
        except ActionError:
            return None
        return {
            str(p["metadata"]["name"])
            for p in pods
            if _owned_by(p, owner["uid"]) and not p["metadata"].get("deletionTimestamp")
        }

    async def verify(
        self, ctx: ActionContext, plan: Plan, before: set[str] | None
    ) -> list[dict[str, str]]:
        """Re-read the pod (its labels gone?) and look, for a few seconds, for the
        controller's replacement; the workload facts that are now true."""
        target = plan.target
        subject = f"pod {target.namespace}/{target.name}"
        keys: list[str] = plan.state.get("remove") or []
        holders: dict[str, list[str]] = plan.state.get("holders") or {}
        try:
            pod = await ctx.read_pod(target)
        except ActionError as error:
            detail = f"could not read the pod back: {error.message}"
            return [cf.fact(cf.WORKLOAD, subject, cf.DETACHED, detail)]
        left = [k for k in keys if k in _labels(pod)]
        if left:
            # Someone put them back meanwhile: say so rather than claim a detach.
            detail = "labels " + ", ".join(left) + " are on the pod again: it is not detached"
            return [cf.fact(cf.WORKLOAD, subject, cf.RESTORED, detail)]
        released = sorted({h for k in keys for h in holders.get(k, ())})
        detail = "removed " + ", ".join(keys)
        if released:
            detail += "; no longer selected by " + ", ".join(released)
        facts = [cf.fact(cf.WORKLOAD, subject, cf.DETACHED, detail)]
        owner = plan.state.get("owner") or {}
        if not owner or owner.get("kind") == "Job":
            return facts
        what = f"{owner['kind']} {owner['name']}"
        if before is None:
            facts[0]["detail"] += f"; could not look for {what}'s replacement"
            return facts
        deadline = time.monotonic() + self.replacement_wait
        while True:
            now = await self._owned_pods(ctx, target.namespace, owner)
            new = sorted((now or set()) - before - {target.name})
            if new:
                detail = f"{what} started pod {new[0]} in its place"
                facts.append(cf.fact(cf.WORKLOAD, subject, cf.REPLACED, detail))
                return facts
            if time.monotonic() >= deadline:
                break
            await asyncio.sleep(REPLACEMENT_POLL)
        selector = owner.get("selector", "")
        facts[0]["detail"] += (
            f"; {what}'s replacement has not appeared yet (looked for "
            f"{self.replacement_wait:g} s): kubectl get pods -n {target.namespace} -l {selector}"
        )
        return facts

    async def plan_undo(self, ctx: ActionContext, record: ActionRecord) -> Plan:
        raise ActionError(record.undo_note or "detach cannot be undone by ktriage")

    async def undo(self, ctx: ActionContext, plan: Plan) -> Outcome:
        raise ActionError("detach cannot be undone by ktriage")
