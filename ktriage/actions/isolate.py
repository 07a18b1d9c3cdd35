"""Isolate a pod with a deny-all NetworkPolicy.

Isolation creates `ktriage-quarantine-<pod>` first (Ingress and Egress, no
rules, selecting `ktriage.io/quarantine=<pod>`), then puts that label on the
pod: until the label lands nothing is selected, so a failure in between never
cuts the wrong pods off. If the label fails, the policy is deleted again, or
the outcome says exactly what is left and the command that removes it.

NetworkPolicies add up, so the plan evaluates every other policy of the
namespace against the pod (ktriage.core.netpol) and names those that still let
traffic through. Detach (detach.py) is a separate action that removes the labels
those policies, its Services and its controller select.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from ktriage.actions.base import (
    FAILED,
    INCIDENT_ANNOTATION,
    MANAGED_BY,
    MANAGED_BY_LABEL,
    OK,
    QUARANTINE_LABEL,
    STRATEGIC_MERGE,
    UNCHANGED,
    UNDONE,
    ActionError,
    ActionRecord,
    Change,
    Outcome,
    Plan,
    Progress,
    Target,
)
from ktriage.actions.context import ActionContext
from ktriage.actions.permissions import (
    CREATE_NETPOL,
    DELETE_NETPOL,
    GET_DAEMONSETS,
    GET_JOBS,
    GET_PODS,
    GET_REPLICASETS,
    GET_STATEFULSETS,
    LIST_NETPOL,
    PATCH_PODS,
    Permission,
)
from ktriage.actions.runner import Step, run_steps
from ktriage.core.model import EntityKind
from ktriage.core.netpol import (
    evaluate,
)

POLICY_PREFIX = "ktriage-quarantine-"
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
# Controllers whose selector holds a pod, and the permission to read each.
_READ_CONTROLLER = {
    "ReplicaSet": GET_REPLICASETS,
    "StatefulSet": GET_STATEFULSETS,
    "DaemonSet": GET_DAEMONSETS,
    "Job": GET_JOBS,
}
_CONTROLLERS = tuple(_READ_CONTROLLER)


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:10]


def quarantine_value(pod_name: str) -> str:
    """The quarantine label's value: the pod name, or a hashed cut of it (63 chars at most)."""
    if len(pod_name) <= 63 and re.fullmatch(r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?", pod_name):
        return pod_name
    head = re.sub(r"[^A-Za-z0-9_.-]", "-", pod_name)[:52].strip("-_.") or "pod"
    return f"{head}-{_digest(pod_name)}"


def policy_name(pod_name: str) -> str:
    """`ktriage-quarantine-<pod>`, a legal DNS label of 63 characters at most."""
    name = POLICY_PREFIX + pod_name
    if len(name) <= 63 and _DNS_LABEL.fullmatch(name):
        return name
    room = 63 - len(POLICY_PREFIX) - 11
    head = re.sub(r"[^a-z0-9-]", "-", pod_name.lower())[:room].strip("-") or "pod"
    return f"{POLICY_PREFIX}{head}-{_digest(pod_name)}"


def quarantine_policy(namespace: str, pod_name: str, incident_id: str) -> dict[str, Any]:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {
            "name": policy_name(pod_name),
            "namespace": namespace,
            "labels": {MANAGED_BY_LABEL: MANAGED_BY},
            "annotations": {INCIDENT_ANNOTATION: incident_id},
        },
        "spec": {
            "podSelector": {"matchLabels": {QUARANTINE_LABEL: quarantine_value(pod_name)}},
            "policyTypes": ["Ingress", "Egress"],
        },
    }


def _labels(obj: dict[str, Any]) -> dict[str, str]:
    return dict((obj.get("metadata") or {}).get("labels") or {})


def _managed(obj: dict[str, Any]) -> bool:
    return _labels(obj).get(MANAGED_BY_LABEL) == MANAGED_BY


def _rv(obj: dict[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion") or "")


def _delete_cmd(namespace: str, name: str) -> str:
    return f"kubectl delete networkpolicy {name} -n {namespace}"


def _label_cmd(target: Target, labels: dict[str, str | None]) -> str:
    parts = [f"{k}-" if v is None else f"{k}={v}" for k, v in labels.items()]
    return f"kubectl label pod {target.name} -n {target.namespace} " + " ".join(parts)


class Isolate:
    name = "isolate"
    key = "i"
    title = "Isolate the pod (deny-all NetworkPolicy)"

    def permissions(self, target: Target) -> list[Permission]:
        return [GET_PODS, LIST_NETPOL, CREATE_NETPOL, DELETE_NETPOL, PATCH_PODS]

    async def check(self, ctx: ActionContext, target: Target) -> dict[str, Any]:
        pod = await ctx.read_pod(target)
        policies = await ctx.call(
            ctx.kube.list_network_policies,
            target.namespace,
            what=f"list NetworkPolicies in namespace {target.namespace}",
            permission=LIST_NETPOL,
        )
        return {"pod": pod, "policies": policies}

    async def plan(
        self, ctx: ActionContext, target: Target, incident_id: str, facts: dict[str, Any]
    ) -> Plan:
        pod, policies = facts["pod"], facts["policies"]
        ns, pod_name = target.namespace, target.name
        pname = policy_name(pod_name)
        value = quarantine_value(pod_name)
        wanted = quarantine_policy(ns, pod_name, incident_id)
        subject = Target("NetworkPolicy", ns, pname)
        plan = Plan(
            action=self.name,
            incident_id=incident_id,
            target=target,
            subject=subject,
            title=f"Isolate pod {target.short()}",
            state={"policy": pname, "value": value, "pod_rv": _rv(pod)},
        )
        existing = next(
            (p for p in policies if (p.get("metadata") or {}).get("name") == pname), None
        )
        if existing is not None:
            if not _managed(existing):
                raise ActionError(
                    f"NetworkPolicy {ns}/{pname} exists and is not managed by ktriage; "
                    "ktriage will not touch it"
                )
            if (existing.get("spec") or {}).get("podSelector") != wanted["spec"]["podSelector"]:
                raise ActionError(
                    f"NetworkPolicy {ns}/{pname} exists with another pod selector; "
                    f"delete it first: {_delete_cmd(ns, pname)}"
                )
        labelled = _labels(pod).get(QUARANTINE_LABEL) == value
        plan.state["create_policy"] = existing is None
        plan.state["add_label"] = not labelled
        if existing is None:
            plan.changes.append(
                Change(
                    verb="create",
                    target=subject,
                    body=wanted,
                    summary=(
                        f"deny all ingress and egress for pods labelled {QUARANTINE_LABEL}={value} "
                        "(none yet)"
                    ),
                )
            )
        if not labelled:
            plan.changes.append(
                Change(
                    verb="patch",
                    target=target,
                    body=self._label_patch(value, _rv(pod)),
                    content_type=STRATEGIC_MERGE,
                    summary=f"label the pod {QUARANTINE_LABEL}={value}: the policy now selects it",
                )
            )
        if not plan.changes:
            plan.unchanged = f"pod {target.short()} is already isolated by NetworkPolicy {pname}"

        # Policies add up: name every other policy that still lets traffic through.
        ours = {pname} | {
            (p.get("metadata") or {}).get("name", "")
            for p in policies
            if _managed(p)
            and str((p.get("metadata") or {}).get("name", "")).startswith(POLICY_PREFIX)
        }
        verdicts = evaluate(_labels(pod), ns, policies, ignore=ours)
        allowing = verdicts.allowing
        plan.state["allowing"] = [v.name for v in allowing]
        for verdict in allowing:
            plan.warnings.append("Still allowed after isolation: " + verdict.describe() + ".")
        if any(v.selects_all_pods for v in allowing):
            plan.warnings.append(
                "A policy that selects every pod in the namespace cannot be escaped by "
                "relabelling the pod: edit or delete it to cut that traffic."
            )
        if allowing:
            plan.notes.append(
                "Detach (a separate action) removes the labels those policies, the pod's "
                "ReplicaSet and its Services select."
            )
        else:
            plan.notes.append(
                "No other NetworkPolicy selects this pod: once isolated it can neither "
                "receive nor send traffic."
            )
        plan.notes.append(
            "NetworkPolicies take effect only where the network plugin enforces them; "
            "some plugins keep connections that are already open."
        )
        return plan

    @staticmethod
    def _label_patch(value: str | None, rv: str) -> dict[str, Any]:
        meta: dict[str, Any] = {"labels": {QUARANTINE_LABEL: value}}
        if rv:
            meta["resourceVersion"] = rv  # 409 if the pod changed since the preview
        return {"metadata": meta}

    async def dry_run(self, ctx: ActionContext, plan: Plan) -> None:
        if not plan.changes:
            plan.dry_run = "nothing to send"
            return
        for change in plan.changes:
            t = change.target
            if change.verb == "create":
                await ctx.call(
                    ctx.kube.create_network_policy,
                    t.namespace,
                    change.body,
                    dry_run=True,
                    what=f"dry run: create NetworkPolicy {t.short()}",
                    permission=CREATE_NETPOL,
                )
            elif change.verb == "patch":
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
            elif change.verb == "delete":
                await ctx.call(
                    ctx.kube.delete_network_policy,
                    t.namespace,
                    t.name,
                    dry_run=True,
                    what=f"dry run: delete NetworkPolicy {t.short()}",
                    subject=t,
                    permission=DELETE_NETPOL,
                )
        plan.dry_run = "the server accepted every change (dryRun=All): nothing was changed yet"

    # ---- steps ---------------------------------------------------------------

    async def _create_policy(self, ctx: ActionContext, body: dict[str, Any]) -> None:
        ns, name = body["metadata"]["namespace"], body["metadata"]["name"]
        try:
            await ctx.call(
                ctx.kube.create_network_policy,
                ns,
                body,
                what=f"create NetworkPolicy {ns}/{name}",
                permission=CREATE_NETPOL,
            )
        except ActionError as error:
            if error.reason != "already-exists":
                raise
            # Our own earlier attempt may have landed (a timeout); anything else is not ours.
            found = await ctx.call(
                ctx.kube.get_network_policy, ns, name, what=f"read NetworkPolicy {ns}/{name}"
            )
            same = (found.get("spec") or {}).get("podSelector") == body["spec"]["podSelector"]
            if not (_managed(found) and same):
                raise ActionError(
                    f"NetworkPolicy {ns}/{name} appeared meanwhile and is not ktriage's"
                ) from None

    async def _delete_policy(self, ctx: ActionContext, ns: str, name: str) -> bool:
        """Delete our policy; False when it was already gone."""
        target = Target("NetworkPolicy", ns, name)
        try:
            await ctx.call(
                ctx.kube.delete_network_policy,
                ns,
                name,
                what=f"delete NetworkPolicy {ns}/{name}",
                subject=target,
                permission=DELETE_NETPOL,
            )
        except ActionError as error:
            if error.reason == "not-found":
                return False
            raise
        return True

    async def _set_label(
        self, ctx: ActionContext, target: Target, value: str | None, rv: str
    ) -> str:
        """Add (value) or remove (None) the quarantine label; OK or UNCHANGED."""

        async def attempt(refresh: bool) -> str:
            version = rv
            if refresh:
                pod = await ctx.call(
                    ctx.kube.get_pod,
                    target.namespace,
                    target.name,
                    what=f"re-read {target.words()}",
                    subject=target,
                    permission=GET_PODS,
                )
                if _labels(pod).get(QUARANTINE_LABEL) == value:
                    return UNCHANGED
                version = _rv(pod)
            reply = await ctx.call(
                ctx.kube.patch_pod,
                target.namespace,
                target.name,
                self._label_patch(value, version),
                what=f"label {target.words()}" if value else f"unlabel {target.words()}",
                subject=target,
                permission=PATCH_PODS,
            )
            if _labels(reply).get(QUARANTINE_LABEL) != value:
                raise ActionError(f"patch {target.words()}: the label did not take")
            return OK

        return await ctx.runner.retry_on_conflict(attempt)

    # ---- apply / undo ----------------------------------------------------------

    async def apply(
        self, ctx: ActionContext, plan: Plan, progress: Progress | None = None
    ) -> Outcome:
        if plan.unchanged:
            return Outcome(plan=plan, result=UNCHANGED, message=plan.unchanged)
        target = plan.target
        ns, pname, value = target.namespace, plan.state["policy"], plan.state["value"]
        body = next((c.body for c in plan.changes if c.verb == "create"), None)
        steps: list[Step] = []
        if plan.state["create_policy"] and body is not None:

            async def create() -> None:
                await self._create_policy(ctx, body)

            async def remove() -> None:
                await self._delete_policy(ctx, ns, pname)

            steps.append(
                Step(
                    description=f"create NetworkPolicy {ns}/{pname}",
                    do=create,
                    undo=remove,
                    leftover=(
                        f"NetworkPolicy {ns}/{pname} (selects no pod yet); "
                        f"remove it with: {_delete_cmd(ns, pname)}"
                    ),
                )
            )
        if plan.state["add_label"]:

            async def label() -> str:
                return await self._set_label(ctx, target, value, plan.state["pod_rv"])

            steps.append(
                Step(
                    description=f"label pod {target.short()} {QUARANTINE_LABEL}={value}",
                    do=label,
                )
            )
        result = await run_steps(steps)
        undo = {
            "namespace": ns,
            "pod": target.name,
            "policy": pname,
            "value": value,
        }
        if not result.ok:
            error = result.error
            assert error is not None
            parts = [f"isolation failed at '{result.failed_step}': {error.message}"]
            if result.rolled_back:
                parts.append("rolled back: " + "; ".join(result.rolled_back))
            if result.leftovers:
                parts.append("left behind: " + "; ".join(result.leftovers))
            elif not result.done or result.rolled_back:
                parts.append("nothing is left behind")
            return Outcome(
                plan=plan,
                result=FAILED,
                message=". ".join(parts),
                error=error.message,
                leftovers=result.leftovers,
            )
        message = f"isolated pod {target.short()}: NetworkPolicy {pname} denies all its traffic"
        allowing = plan.state.get("allowing") or []
        if allowing:
            message += "; but still allowed by " + ", ".join(allowing)
        return Outcome(
            plan=plan,
            result=OK,
            message=message,
            undo=undo,
            undoable=True,
            undo_note=f"undo removes the label, then NetworkPolicy {pname}",
        )

    async def plan_undo(self, ctx: ActionContext, record: ActionRecord) -> Plan:
        info = record.undo
        ns, pod_name, pname = info["namespace"], info["pod"], info["policy"]
        target = Target(EntityKind.POD, ns, pod_name)
        subject = Target("NetworkPolicy", ns, pname)
        plan = Plan(
            action=self.name,
            incident_id=record.incident_id,
            target=record.target,
            subject=subject,
            title=f"Undo isolation of pod {target.short()}",
            undo_of=record,
            state={"policy": pname, "namespace": ns},
        )
        try:
            pod = await ctx.call(
                ctx.kube.get_pod,
                ns,
                pod_name,
                what=f"read {target.words()}",
                subject=target,
                permission=GET_PODS,
            )
        except ActionError as error:
            if error.reason != "not-found":
                raise
            pod = None
            plan.notes.append(f"{target.words()} is gone: only the policy remains to remove.")
        try:
            policy = await ctx.call(
                ctx.kube.get_network_policy,
                ns,
                pname,
                what=f"read NetworkPolicy {ns}/{pname}",
                subject=subject,
            )
        except ActionError as error:
            if error.reason != "not-found":
                raise
            policy = None
        if pod is not None and QUARANTINE_LABEL in _labels(pod):
            plan.state["pod_rv"] = _rv(pod)
            plan.changes.append(
                Change(
                    verb="patch",
                    target=target,
                    body=self._label_patch(None, _rv(pod)),
                    content_type=STRATEGIC_MERGE,
                    summary=f"remove the label {QUARANTINE_LABEL} from the pod",
                )
            )
        if policy is not None:
            if not _managed(policy):
                plan.warnings.append(
                    f"NetworkPolicy {ns}/{pname} is no longer marked as ktriage's: left alone."
                )
            else:
                plan.changes.append(
                    Change(
                        verb="delete",
                        target=subject,
                        summary="the deny-all policy ktriage created for this pod",
                    )
                )
        if not plan.changes:
            plan.unchanged = f"pod {target.short()} is not isolated any more: nothing to undo"
        return plan

    async def undo(self, ctx: ActionContext, plan: Plan) -> Outcome:
        if plan.unchanged:
            return Outcome(plan=plan, result=UNCHANGED, message=plan.unchanged)
        steps: list[Step] = []
        for change in plan.changes:
            t = change.target
            if change.verb == "patch":

                async def unlabel(t: Target = t) -> str:
                    return await self._set_label(ctx, t, None, plan.state.get("pod_rv", ""))

                # The label goes first: if removing it fails, the pod stays isolated.
                steps.append(Step(description=change.summary, do=unlabel))
            elif change.verb == "delete":

                async def delete(t: Target = t) -> bool:
                    return await self._delete_policy(ctx, t.namespace, t.name)

                steps.append(Step(description=change.summary, do=delete))
        result = await run_steps(steps)
        pname, ns = plan.state["policy"], plan.state["namespace"]
        if not result.ok:
            error = result.error
            assert error is not None
            if result.done:
                left = f"NetworkPolicy {ns}/{pname} is still there (it selects no pod); " + (
                    f"remove it with: {_delete_cmd(ns, pname)}"
                )
            else:
                left = "the pod is still isolated; nothing was changed"
            return Outcome(
                plan=plan,
                result=FAILED,
                message=f"undo failed at '{result.failed_step}': {error.message}. {left}",
                error=error.message,
                leftovers=[left] if result.done else [],
            )
        return Outcome(
            plan=plan,
            result=UNDONE,
            message=f"isolation of pod {plan.target.short()} undone: label and policy removed",
        )
