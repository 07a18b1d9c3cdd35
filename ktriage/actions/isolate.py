"""Isolate a pod with a quarantine policy, then check what is true.

Isolation creates `ktriage-quarantine-<pod>` first, selecting
`ktriage.io/quarantine=<pod>`, then puts that label on the pod: until the label
lands nothing is selected, so a failure in between never cuts the wrong pods
off. If the label fails, the policy is deleted again, or the outcome says
exactly what is left and the command that removes it.

The policy's kind follows the cluster (quarantine_crd.py): a deny-based
CiliumNetworkPolicy or Calico policy where those are served (they win over
allow rules), else a deny-all Kubernetes NetworkPolicy, which other policies'
allows still get through (detach.py removes the labels they select).

Every claim is a reading. Before offering isolation the check refuses a
hostNetwork pod (NetworkPolicy does not apply to it) and looks for a network
plugin that enforces NetworkPolicy (netplugins.py). After applying, and after
undoing, the pod and every policy of its namespace are read again and judged
together (ktriage.core.netverdict); the outcome and its containment fact say
what is now true: `isolated`, `not-effective` (naming what still allows
traffic), `unverified` (no enforcing plugin seen, or the re-read failed) or
`restored`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from ktriage.actions import catalog
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
    DeclaredAction,
    Outcome,
    Plan,
    Progress,
    Target,
)
from ktriage.actions.context import ActionContext
from ktriage.actions.netplugins import NetworkPlugins, detect
from ktriage.actions.permissions import (
    GET_DAEMONSETS,
    GET_JOBS,
    GET_REPLICASETS,
    GET_STATEFULSETS,
    needs,
)
from ktriage.actions.quarantine_crd import (
    BY_NAME,
    CALICO_QUARANTINE,
    CILIUM_QUARANTINE,
    NETWORKPOLICY,
    PLAIN,
    Quarantine,
)
from ktriage.actions.runner import Step, run_steps
from ktriage.core import containment as cf

# The names of the quarantine policy and label live in core (the containment state
# names them in its next steps), once.
from ktriage.core.containment import policy_name, quarantine_value
from ktriage.core.model import EntityKind
from ktriage.core.netpol import evaluate
from ktriage.core.netverdict import NetworkVerdict, judge

# Controllers whose selector holds a pod, and the permission to read each.
_READ_CONTROLLER = {
    "ReplicaSet": GET_REPLICASETS,
    "StatefulSet": GET_STATEFULSETS,
    "DaemonSet": GET_DAEMONSETS,
    "Job": GET_JOBS,
}
_CONTROLLERS = tuple(_READ_CONTROLLER)


def _key_of(name: str) -> str:
    """` (X)`: the key of an action in the actions' catalog."""
    spec = catalog.BY_NAME.get(name)
    return f" ({spec.key})" if spec is not None else ""


def node_level_steps() -> str:
    """The next steps for a pod NetworkPolicy cannot isolate, with the keys that take them."""
    return (
        "contain it at the node instead: cordon its node (c) so nothing new lands there, "
        f"save its evidence (l), then delete{_key_of('delete-pod')} or evict the pod"
    )


def quarantine_policy(namespace: str, pod_name: str, incident_id: str) -> dict[str, Any]:
    """The plain deny-all NetworkPolicy for one pod."""
    return PLAIN.body(namespace, policy_name(pod_name), quarantine_value(pod_name), incident_id)


def _labels(obj: dict[str, Any]) -> dict[str, str]:
    return dict((obj.get("metadata") or {}).get("labels") or {})


def _managed(obj: dict[str, Any]) -> bool:
    return _labels(obj).get(MANAGED_BY_LABEL) == MANAGED_BY


def _rv(obj: dict[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion") or "")


def _name_of(obj: dict[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("name", ""))


def _label_cmd(target: Target, labels: Mapping[str, str | None]) -> str:
    parts = [f"{k}-" if v is None else f"{k}={v}" for k, v in labels.items()]
    return f"kubectl label pod {target.name} -n {target.namespace} " + " ".join(parts)


def pod_subject(target: Target) -> str:
    """The containment fact's subject for a pod: `pod shop/web-1`."""
    return f"pod {target.namespace}/{target.name}"


def host_network_refusal(pod: dict[str, Any], target: Target) -> ActionError | None:
    """The refusal for a pod NetworkPolicy cannot isolate (hostNetwork), or None."""
    spec = pod.get("spec") or {}
    if not spec.get("hostNetwork"):
        return None
    node = spec.get("nodeName") or "its node"
    why = (
        f"NetworkPolicy does not apply to hostNetwork pods: {target.words()} uses the network "
        f"of node {node} directly, so no NetworkPolicy (nor a CiliumNetworkPolicy or Calico "
        "NetworkPolicy for pods) can cut its traffic"
    )
    fact = cf.fact(cf.NETWORK, pod_subject(target), cf.NOT_APPLICABLE, why)
    return ActionError(f"{why}; {node_level_steps()}.", reason="not-applicable", containment=[fact])


class Isolate(DeclaredAction):
    name = "isolate"
    title = "Isolate the pod (quarantine NetworkPolicy)"

    def __init__(self) -> None:
        # What the cluster's network plugin is: read once per session (one service).
        self._plugins: NetworkPlugins | None = None
        self._plugins_lock = asyncio.Lock()

    # ---- what governs the pod ---------------------------------------------------

    async def plugins(self, ctx: ActionContext) -> NetworkPlugins:
        """The network plugin and the policy kinds served, read once and kept."""
        async with self._plugins_lock:
            if self._plugins is None:
                found = await detect(ctx)
                if found.problems and not found.looked_at:
                    return found  # nothing could be read: ask again next time
                self._plugins = found
            return self._plugins

    async def _choose(
        self, ctx: ActionContext, plugins: NetworkPlugins, namespace: str
    ) -> tuple[Quarantine, str]:
        """The quarantine kind to use, and why a deny-based one was passed over ("")."""
        for served, backend in (
            (plugins.cilium_policies, CILIUM_QUARANTINE),
            (plugins.calico_policies, CALICO_QUARANTINE),
        ):
            if not served:
                continue
            wanted = [backend.create_perm, backend.delete_perm, backend.list_perm]
            missing = await ctx.permissions.missing(wanted, namespace)
            if not missing:
                return backend, ""
            who = ctx.runner.identity or "the current identity"
            return PLAIN, (
                f"The cluster serves {backend.words()}, which would override allow rules, but "
                f"{who} {needs(missing)}: a plain NetworkPolicy is used instead, and other "
                "policies' allows still get through it."
            )
        return PLAIN, ""

    async def _read_policies(
        self, ctx: ActionContext, namespace: str, plugins: NetworkPlugins
    ) -> tuple[dict[str, list[dict[str, Any]]], list[str]]:
        """Every policy of the namespace, by kind; and what could not be read."""
        kinds = [PLAIN]
        if plugins.cilium_policies:
            kinds.append(CILIUM_QUARANTINE)
        if plugins.calico_policies:
            kinds.append(CALICO_QUARANTINE)
        out: dict[str, list[dict[str, Any]]] = {}
        problems: list[str] = []
        for kind in kinds:
            try:
                out[kind.name] = await kind.read_all(ctx, namespace)
            except ActionError as error:
                if kind is PLAIN:
                    raise
                problems.append(error.message)
                out[kind.name] = []
        return out, problems

    @staticmethod
    def _judge(
        labels: dict[str, str], namespace: str, policies: dict[str, list[Any]]
    ) -> NetworkVerdict:
        return judge(
            labels,
            namespace,
            netpols=policies.get(NETWORKPOLICY, ()),
            cilium=policies.get(CILIUM_QUARANTINE.name, ()),
            calico=policies.get(CALICO_QUARANTINE.name, ()),
        )

    async def check(self, ctx: ActionContext, target: Target) -> dict[str, Any]:
        pod = await ctx.read_pod(target)
        refusal = host_network_refusal(pod, target)
        if refusal is not None:
            raise refusal
        plugins = await self.plugins(ctx)
        backend, passed_over = await self._choose(ctx, plugins, target.namespace)
        policies, problems = await self._read_policies(ctx, target.namespace, plugins)
        return {
            "pod": pod,
            "policies": policies.get(NETWORKPOLICY, []),
            "by_kind": policies,
            "problems": problems,
            "plugins": plugins,
            "backend": backend,
            "passed_over": passed_over,
        }

    # ---- plan ---------------------------------------------------------------------

    async def plan(
        self, ctx: ActionContext, target: Target, incident_id: str, facts: dict[str, Any]
    ) -> Plan:
        pod = facts["pod"]
        backend: Quarantine = facts.get("backend") or PLAIN
        plugins: NetworkPlugins = facts.get("plugins") or NetworkPlugins()
        by_kind: dict[str, list[dict[str, Any]]] = facts.get("by_kind") or {
            NETWORKPOLICY: facts["policies"]
        }
        ns, pod_name = target.namespace, target.name
        pname = policy_name(pod_name)
        value = quarantine_value(pod_name)
        wanted = backend.body(ns, pname, value, incident_id)
        subject = backend.subject(ns, pname)
        plan = Plan(
            action=self.name,
            incident_id=incident_id,
            target=target,
            subject=subject,
            title=f"Isolate pod {target.short()}",
            state={
                "policy": pname,
                "value": value,
                "pod_rv": _rv(pod),
                "backend": backend.name,
                "enforced": plugins.seen,
                "plugins": plugins.names() if plugins.seen else "",
            },
        )
        existing = next((p for p in by_kind.get(backend.name, []) if _name_of(p) == pname), None)
        if existing is not None:
            if not _managed(existing):
                raise ActionError(
                    f"{backend.words()} {ns}/{pname} exists and is not managed by ktriage; "
                    "ktriage will not touch it"
                )
            if backend.selector(existing) != backend.selector(wanted):
                raise ActionError(
                    f"{backend.words()} {ns}/{pname} exists with another pod selector; "
                    f"delete it first: {backend.delete_cmd(ns, pname)}"
                )
        labelled = _labels(pod).get(QUARANTINE_LABEL) == value
        plan.state["create_policy"] = existing is None
        plan.state["add_label"] = not labelled
        what = (
            "deny all ingress and egress, ahead of every allow rule,"
            if backend.deny_based
            else "deny all ingress and egress"
        )
        if existing is None:
            plan.changes.append(
                Change(
                    verb="create",
                    target=subject,
                    body=wanted,
                    summary=f"{what} for pods labelled {QUARANTINE_LABEL}={value} (none yet)",
                )
            )
        if not labelled:
            plan.changes.append(
                self._label_change(
                    target,
                    value,
                    pod,
                    f"label the pod {QUARANTINE_LABEL}={value}: the policy now selects it",
                )
            )

        # What will be true afterwards: the pod labelled, our policy among the others.
        after_labels = {**_labels(pod), QUARANTINE_LABEL: value}
        after = {kind: list(items) for kind, items in by_kind.items()}
        after.setdefault(backend.name, [])
        if existing is None:
            after[backend.name].append(wanted)
        verdict = self._judge(after_labels, ns, after)
        plan.state["allowing"] = verdict.allowing_policies()
        if not plan.changes:
            now = self._judge(_labels(pod), ns, by_kind)
            plan.unchanged = (
                f"pod {target.short()} is already quarantined by {backend.words()} {pname}; "
                + ("no policy allows traffic to or from it" if now.isolated else now.words())
            )
        warning = plugins.warning()
        if warning:
            plan.warnings.append(warning)
        for problem in facts.get("problems") or ():
            plan.warnings.append(f"Could not read every policy ({problem}): the check is partial.")
        if facts.get("passed_over"):
            plan.warnings.append(facts["passed_over"])
        for problem in verdict.problems():
            plan.warnings.append("Still allowed after isolation: " + problem + ".")
        if backend is PLAIN:
            every_pod = [
                v
                for v in evaluate(_labels(pod), ns, by_kind.get(NETWORKPOLICY, [])).allowing
                if v.selects_all_pods
            ]
            if every_pod:
                names = ", ".join(v.name for v in every_pod)
                plan.warnings.append(
                    f"NetworkPolicy {names} selects every pod in the namespace: it cannot be "
                    "escaped by relabelling the pod; edit or delete it to cut that traffic."
                )
        if verdict.isolated:
            plan.notes.append(
                "Once isolated, no policy allows traffic to or from this pod (checked again "
                "after applying)."
            )
        elif backend is PLAIN:
            plan.notes.append(
                "Detach (a separate action) removes the labels those policies, the pod's "
                "ReplicaSet and its Services select."
            )
        if backend.deny_based:
            plan.notes.append(
                f"A {backend.words()} denies: it wins over allow rules of other policies, so "
                "detach is not needed to cut traffic (it still hands the workload a clean "
                "replica). The pod's own labels are left as they are."
            )
            plan.notes.append(
                "Traffic from the node is cut too: a liveness probe will fail and the kubelet "
                "may restart the container."
            )
        if backend is CALICO_QUARANTINE:
            plan.notes.append(
                "Order 0 comes first in its tier; GlobalNetworkPolicies and policies of earlier "
                "tiers were not read."
            )
        note = plugins.note()
        if note:
            plan.notes.append(note)
        plan.notes.append("Some network plugins keep connections that are already open.")
        return plan

    @staticmethod
    def _label_patch(value: str | None, rv: str) -> dict[str, Any]:
        meta: dict[str, Any] = {"labels": {QUARANTINE_LABEL: value}}
        if rv:
            meta["resourceVersion"] = rv  # 409 if the pod changed since the preview
        return {"metadata": meta}

    @classmethod
    def _label_change(
        cls, target: Target, value: str | None, pod: dict[str, Any], summary: str
    ) -> Change:
        """The planned patch that sets (value) or removes (None) the quarantine label."""
        return Change(
            verb="patch",
            target=target,
            body=cls._label_patch(value, _rv(pod)),
            content_type=STRATEGIC_MERGE,
            summary=summary,
        )

    @staticmethod
    def _backend(plan: Plan) -> Quarantine:
        return BY_NAME.get(str(plan.state.get("backend") or NETWORKPOLICY), PLAIN)

    async def dry_run(self, ctx: ActionContext, plan: Plan) -> None:
        if not plan.changes:
            plan.dry_run = "nothing to send"
            return
        backend = self._backend(plan)
        for change in plan.changes:
            t = change.target
            if change.verb == "create":
                await backend.send_create(ctx, t.namespace, change.body, dry_run=True)
            elif change.verb == "patch":
                await ctx.patch_pod(t, change.body, verb="patch", dry_run=True)
            elif change.verb == "delete":
                await backend.send_delete(ctx, t.namespace, t.name, dry_run=True)
        plan.dry_run = "the server accepted every change (dryRun=All): nothing was changed yet"

    # ---- steps ---------------------------------------------------------------

    async def _create_policy(
        self, ctx: ActionContext, backend: Quarantine, body: dict[str, Any]
    ) -> None:
        ns, name = body["metadata"]["namespace"], body["metadata"]["name"]
        try:
            await backend.send_create(ctx, ns, body)
        except ActionError as error:
            if error.reason != "already-exists":
                raise
            # Our own earlier attempt may have landed (a timeout); anything else is not ours.
            found = await backend.read(ctx, ns, name)
            same = backend.selector(found) == backend.selector(body)
            if not (_managed(found) and same):
                raise ActionError(
                    f"{backend.words()} {ns}/{name} appeared meanwhile and is not ktriage's"
                ) from None

    async def _delete_policy(
        self, ctx: ActionContext, ns: str, name: str, backend: Quarantine = PLAIN
    ) -> bool:
        """Delete our policy; False when it was already gone."""
        try:
            await backend.send_delete(ctx, ns, name)
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
                pod = await ctx.read_pod(target, verb="re-read")
                if _labels(pod).get(QUARANTINE_LABEL) == value:
                    return UNCHANGED
                version = _rv(pod)
            reply = await ctx.patch_pod(
                target, self._label_patch(value, version), verb="label" if value else "unlabel"
            )
            if _labels(reply).get(QUARANTINE_LABEL) != value:
                raise ActionError(f"patch {target.words()}: the label did not take")
            return OK

        return await ctx.runner.retry_on_conflict(attempt)

    # ---- verify ------------------------------------------------------------------

    async def verify(
        self, ctx: ActionContext, plan: Plan, *, undone: bool = False
    ) -> tuple[str, dict[str, str]]:
        """Re-read the pod and every policy of its namespace; say what is now true.

        Returns (a sentence for the outcome, the network containment fact).
        """
        target = plan.target
        subject = pod_subject(target)
        backend = self._backend(plan)
        pname = str(plan.state.get("policy", ""))
        try:
            pod = await ctx.read_pod(target)
            plugins = await self.plugins(ctx)
            policies, problems = await self._read_policies(ctx, target.namespace, plugins)
        except ActionError as error:
            if undone and error.reason == "not-found":
                detail = f"{target.words()} is gone"
                return detail, cf.fact(cf.NETWORK, subject, cf.RESTORED, detail)
            detail = f"could not read back what governs the pod: {error.message}"
            return detail, cf.fact(cf.NETWORK, subject, cf.UNVERIFIED, detail)
        verdict = self._judge(_labels(pod), target.namespace, policies)
        ours_left = _labels(pod).get(QUARANTINE_LABEL) or any(
            _name_of(p) == pname for p in policies.get(backend.name, [])
        )
        partial = f" ({'; '.join(problems)})" if problems else ""
        if undone and not ours_left:
            now = "no policy isolates it" if not verdict.closed else verdict.words()
            detail = f"the quarantine label and {backend.words()} {pname} are gone; now: {now}"
            return detail, cf.fact(cf.NETWORK, subject, cf.RESTORED, detail)
        if not verdict.isolated:
            remedy = (
                "detach the pod (D) or edit those policies"
                if backend is PLAIN
                else "edit or delete those policies"
            )
            detail = f"not effective: {verdict.words()}; {remedy}"
            return detail, cf.fact(cf.NETWORK, subject, cf.NOT_EFFECTIVE, detail)
        closed = sorted(set(verdict.closed.values()))
        if problems:
            detail = (
                "no policy read allows traffic to or from it, but not every policy kind could "
                f"be read{partial}"
            )
            return detail, cf.fact(cf.NETWORK, subject, cf.UNVERIFIED, detail)
        if not plugins.seen:
            detail = (
                f"no policy allows traffic to or from it ({', '.join(closed)}), but no "
                "NetworkPolicy-enforcing network plugin was seen: it may not be enforced"
            )
            return detail, cf.fact(cf.NETWORK, subject, cf.UNVERIFIED, detail)
        detail = (
            f"no policy allows traffic to or from it ({', '.join(closed)}; "
            f"enforced by {plugins.names()})"
        )
        return detail, cf.fact(cf.NETWORK, subject, cf.ISOLATED, detail)

    # ---- apply / undo ----------------------------------------------------------

    async def apply(
        self, ctx: ActionContext, plan: Plan, progress: Progress | None = None
    ) -> Outcome:
        if plan.unchanged:
            # Nothing to send, but the claim is read again: a policy may have appeared.
            detail, fact = await self.verify(ctx, plan)
            return Outcome(
                plan=plan,
                result=UNCHANGED,
                message=f"pod {plan.target.short()} was already quarantined; now: {detail}",
                containment=[fact],
            )
        target = plan.target
        backend = self._backend(plan)
        ns, pname, value = target.namespace, plan.state["policy"], plan.state["value"]
        body = next((c.body for c in plan.changes if c.verb == "create"), None)
        steps: list[Step] = []
        if plan.state["create_policy"] and body is not None:

            async def create() -> None:
                await self._create_policy(ctx, backend, body)

            async def remove() -> None:
                await self._delete_policy(ctx, ns, pname, backend)

            steps.append(
                Step(
                    description=f"create {backend.words()} {ns}/{pname}",
                    do=create,
                    undo=remove,
                    leftover=(
                        f"{backend.words()} {ns}/{pname} (selects no pod yet); "
                        f"remove it with: {backend.delete_cmd(ns, pname)}"
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
            "backend": backend.name,
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
        detail, fact = await self.verify(ctx, plan)
        applied = f"{backend.words()} {pname} created and the pod labelled"
        if fact["state"] == cf.ISOLATED:
            message = f"isolated pod {target.short()}: {detail}"
        elif fact["state"] == cf.NOT_EFFECTIVE:
            message = f"isolation of pod {target.short()} is NOT effective ({applied}): " + (
                detail.removeprefix("not effective: ")
            )
        else:
            message = f"isolation of pod {target.short()} unverified ({applied}): {detail}"
        return Outcome(
            plan=plan,
            result=OK,
            message=message,
            undo=undo,
            undoable=True,
            undo_note=f"undo removes the label, then {backend.words()} {pname}",
            containment=[fact],
        )

    async def plan_undo(self, ctx: ActionContext, record: ActionRecord) -> Plan:
        info = record.undo
        ns, pod_name, pname = info["namespace"], info["pod"], info["policy"]
        backend = BY_NAME.get(str(info.get("backend") or NETWORKPOLICY), PLAIN)
        target = Target(EntityKind.POD, ns, pod_name)
        subject = backend.subject(ns, pname)
        plan = Plan(
            action=self.name,
            incident_id=record.incident_id,
            target=record.target,
            subject=subject,
            title=f"Undo isolation of pod {target.short()}",
            undo_of=record,
            state={"policy": pname, "namespace": ns, "backend": backend.name},
        )
        try:
            pod = await ctx.read_pod(target)
        except ActionError as error:
            if error.reason != "not-found":
                raise
            pod = None
            plan.notes.append(f"{target.words()} is gone: only the policy remains to remove.")
        try:
            policy = await backend.read(ctx, ns, pname)
        except ActionError as error:
            if error.reason != "not-found":
                raise
            policy = None
        if pod is not None and QUARANTINE_LABEL in _labels(pod):
            plan.state["pod_rv"] = _rv(pod)
            plan.changes.append(
                self._label_change(
                    target, None, pod, f"remove the label {QUARANTINE_LABEL} from the pod"
                )
            )
        if policy is not None:
            if not _managed(policy):
                plan.warnings.append(
                    f"{backend.words()} {ns}/{pname} is no longer marked as ktriage's: left alone."
                )
            else:
                plan.changes.append(
                    Change(
                        verb="delete",
                        target=subject,
                        summary=f"the quarantine {backend.words()} ktriage created for this pod",
                    )
                )
        if not plan.changes:
            plan.unchanged = f"pod {target.short()} is not isolated any more: nothing to undo"
        return plan

    async def undo(self, ctx: ActionContext, plan: Plan) -> Outcome:
        if plan.unchanged:
            return Outcome(plan=plan, result=UNCHANGED, message=plan.unchanged)
        backend = self._backend(plan)
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
                    return await self._delete_policy(ctx, t.namespace, t.name, backend)

                steps.append(Step(description=change.summary, do=delete))
        result = await run_steps(steps)
        pname, ns = plan.state["policy"], plan.state["namespace"]
        if not result.ok:
            error = result.error
            assert error is not None
            if result.done:
                left = f"{backend.words()} {ns}/{pname} is still there (it selects no pod); " + (
                    f"remove it with: {backend.delete_cmd(ns, pname)}"
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
        detail, fact = await self.verify(ctx, plan, undone=True)
        return Outcome(
            plan=plan,
            result=UNDONE,
            message=f"isolation of pod {plan.target.short()} undone: {detail}",
            containment=[fact],
        )


__all__ = [
    "INCIDENT_ANNOTATION",
    "Isolate",
    "host_network_refusal",
    "policy_name",
    "quarantine_policy",
    "quarantine_value",
]
