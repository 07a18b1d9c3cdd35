"""Remove the RBAC bindings of the identity that acted in an incident (`B`).

The RoleBindings and ClusterRoleBindings that name the identity (read from the
cluster), and those it created during the incident (from the incident's audit
events). A binding the identity alone is bound by, or that it created, is
deleted; one it shares with others has it taken out of its subjects. The full
objects are written first to the incident's evidence folder (0600), and undo
recreates them exactly (without server-set fields). Half-done, it rolls back.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Callable
from functools import partial
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
from ktriage.actions.identity import (
    SA,
    binding_key,
    binding_target,
    clean,
    created_by,
    evidence_dir,
    groups_of,
    identity_subject,
    names_identity,
    refuse_self,
    refuse_unrevocable,
    username,
    write_evidence,
)
from ktriage.actions.permissions import (
    CREATE_CLUSTERROLEBINDINGS,
    CREATE_ROLEBINDINGS,
    DELETE_CLUSTERROLEBINDINGS,
    DELETE_ROLEBINDINGS,
    LIST_CLUSTERROLEBINDINGS,
    UPDATE_CLUSTERROLEBINDINGS,
    UPDATE_ROLEBINDINGS,
    Permission,
)
from ktriage.actions.runner import Step, run_steps
from ktriage.core.containment import (
    BINDINGS_REMOVED,
    IDENTITY,
    RESTORED,
    fact,
)

_DELETE = {"ClusterRoleBinding": DELETE_CLUSTERROLEBINDINGS, "RoleBinding": DELETE_ROLEBINDINGS}
_UPDATE = {"ClusterRoleBinding": UPDATE_CLUSTERROLEBINDINGS, "RoleBinding": UPDATE_ROLEBINDINGS}
_CREATE = {"ClusterRoleBinding": CREATE_CLUSTERROLEBINDINGS, "RoleBinding": CREATE_ROLEBINDINGS}


# Roles whose return to an identity that acted deserves a warning before undo.
_POWERFUL_ROLES = frozenset({"cluster-admin", "admin", "edit"})


async def _write_binding(
    ctx: ActionContext,
    send: Callable[..., dict[str, Any]],
    obj: dict[str, Any],
    what: str,
    permissions: dict[str, Permission],
    *,
    dry_run: bool = False,
) -> dict[str, Any]:
    """Create or replace (`send`) a binding; the permission is the one for its kind."""
    subject = binding_target(obj)
    return await ctx.call(
        send,
        ctx.kube,
        obj,
        dry_run=dry_run,
        what=what,
        subject=subject,
        permission=permissions[subject.kind],
    )


class Unbind(DeclaredAction):
    name = "unbind"
    title = "Remove the identity's RBAC bindings"

    async def _bindings(self, ctx: ActionContext) -> list[dict[str, Any]]:
        return await ctx.call(
            kc.list_bindings,
            ctx.kube,
            what="list RoleBindings and ClusterRoleBindings",
            permission=LIST_CLUSTERROLEBINDINGS,
        )

    async def check(self, ctx: ActionContext, target: Target) -> dict[str, Any]:
        refuse_unrevocable(target)
        await refuse_self(ctx, target)
        return {"bindings": await self._bindings(ctx)}

    async def plan(
        self, ctx: ActionContext, target: Target, incident_id: str, facts: dict[str, Any]
    ) -> Plan:
        bindings: list[dict[str, Any]] = facts["bindings"]
        records = ctx.incident_records(incident_id)
        created = set(created_by(records, target))
        plan = Plan(
            action=self.name,
            incident_id=incident_id,
            target=target,
            subject=target,
            title=f"Remove the RBAC bindings of {target.words()}",
        )
        by_key = {binding_key(b): b for b in bindings}
        chosen: list[tuple[str, dict[str, Any]]] = []  # ("delete" | "update", binding)
        for b in bindings:
            subjects = b.get("subjects") or []
            mine = [s for s in subjects if names_identity(s, target)]
            if not mine and binding_key(b) not in created:
                continue
            others = [s for s in subjects if not names_identity(s, target)]
            if binding_key(b) in created or not others:
                chosen.append(("delete", b))
            else:
                chosen.append(("update", b))
        for key in sorted(created - set(by_key)):
            plan.notes.append(
                f"{key[0]} {'/'.join(p for p in key[1:] if p)} was created by "
                "it in the incident and is gone already"
            )
        if not chosen:
            plan.unchanged = (
                f"no RoleBinding or ClusterRoleBinding names {username(target)}, and it "
                "created none that still exists"
            )
            return plan
        state: list[dict[str, Any]] = []
        for verb, b in chosen:
            bt = binding_target(b)
            role = b.get("roleRef") or {}
            grants = f"{role.get('kind', '?')} {role.get('name', '?')}"
            if verb == "delete":
                others = [s for s in b.get("subjects") or [] if not names_identity(s, target)]
                why = (
                    f"created by it in this incident; grants {grants}"
                    if binding_key(b) in created
                    else f"grants {grants} to it alone"
                )
                plan.changes.append(
                    Change(
                        verb="delete",
                        target=bt,
                        body=clean(b),
                        summary=f"delete: {why}",
                    )
                )
                if others:
                    names = ", ".join(
                        f"{s.get('kind')} {s.get('name')}" for s in others if isinstance(s, dict)
                    )
                    plan.warnings.append(
                        f"{bt.kind} {bt.short()} (created by it) also grants {grants} to "
                        f"{names}: they lose it too"
                    )
            else:
                body = copy.deepcopy(b)
                body["subjects"] = [
                    s for s in b.get("subjects") or [] if not names_identity(s, target)
                ]
                plan.changes.append(
                    Change(
                        verb="update",
                        target=bt,
                        body={"subjects": body["subjects"]},
                        summary=f"take {username(target)} out of its subjects (it grants {grants})",
                    )
                )
            if bt.name.startswith("system:"):
                plan.warnings.append(
                    f"{bt.kind} {bt.short()} is part of the cluster's own policy: check "
                    "nothing of the control plane relies on it"
                )
            state.append({"verb": verb, "object": b, "created": binding_key(b) in created})
        if target.kind == SA and target.namespace == "kube-system":
            plan.warnings.append(
                f"{target.words()} lives in kube-system: a cluster component may run as it"
            )
        if "system:masters" in groups_of(records, target):
            plan.warnings.append(
                "It is in the group system:masters, which is allowed everything without "
                "any binding: removing bindings does not take its rights away. Rotate the "
                "credential that carries that group (a client certificate: the cluster's CA)."
            )
        plan.notes.append(
            "Rights it has through its groups (system:serviceaccounts, system:authenticated...) "
            "are not removed: bindings to groups are shared by everyone in them."
        )
        plan.notes.append(
            "The full bindings are written to the incident's evidence folder first; undo "
            "recreates them exactly."
        )
        if target.kind == SA:
            plan.notes.append(
                "Its tokens still authenticate (with the rights of its groups): revoke them with R."
            )
        plan.state = {"bindings": state}
        return plan

    def _do(self, ctx: ActionContext, item: dict[str, Any], target: Target, *, dry: bool) -> Any:
        b = item["object"]
        bt = binding_target(b)
        uid = (b.get("metadata") or {}).get("uid", "")
        prefix = "dry run: " if dry else ""
        if item["verb"] == "delete":
            return ctx.delete(
                kc.delete_binding,
                bt,
                uid=uid,
                permission=_DELETE[bt.kind],
                dry_run=dry,
                kind=bt.kind,
            )
        body = copy.deepcopy(b)
        body["subjects"] = [s for s in b.get("subjects") or [] if not names_identity(s, target)]
        return _write_binding(
            ctx, kc.replace_binding, body, f"{prefix}update {bt.words()}", _UPDATE, dry_run=dry
        )

    async def dry_run(self, ctx: ActionContext, plan: Plan) -> None:
        if plan.unchanged:
            plan.dry_run = "nothing to send"
            return
        if plan.is_undo:
            await self._dry_run_restore(ctx, plan)
            return
        for item in plan.state["bindings"]:
            await self._do(ctx, item, plan.target, dry=True)
        plan.dry_run = "the server accepted every change (dryRun=All): nothing was changed yet"

    async def _dry_run_restore(self, ctx: ActionContext, plan: Plan) -> None:
        """Recreating a deleted binding is tried on the server; one that exists again
        (someone recreated it) is left to the undo, which then only adds the subject."""
        there: list[str] = []
        for item in plan.state["bindings"]:
            saved = clean(item["object"])
            bt = binding_target(saved)
            if item["verb"] != "delete":
                continue
            try:
                await _write_binding(
                    ctx,
                    kc.create_binding,
                    saved,
                    f"dry run: create {bt.words()}",
                    _CREATE,
                    dry_run=True,
                )
            except ActionError as error:
                if error.reason != "already-exists":
                    raise
                there.append(bt.words())
        plan.dry_run = "the server accepted the creates (dryRun=All): nothing was changed yet"
        if there:
            plan.dry_run += "; exists again already: " + ", ".join(there)

    def _restore_step(self, ctx: ActionContext, item: dict[str, Any], target: Target) -> Any:
        """Put one binding back as it was (recreate it, or put the identity back)."""
        saved = clean(item["object"])
        bt = binding_target(saved)

        async def restore() -> str:
            try:
                await _write_binding(
                    ctx, kc.create_binding, saved, f"recreate {bt.words()}", _CREATE
                )
                return "recreated"
            except ActionError as error:
                if error.reason != "already-exists":
                    raise
            current = await ctx.call(
                kc.get_binding,
                ctx.kube,
                bt.kind,
                bt.namespace,
                bt.name,
                what=f"read {bt.words()}",
                subject=bt,
            )
            subjects = list(current.get("subjects") or [])
            missing = [s for s in saved.get("subjects") or [] if s not in subjects]
            if not missing:
                return "already there"
            current["subjects"] = subjects + missing
            await _write_binding(
                ctx,
                kc.replace_binding,
                current,
                f"put {username(target)} back into {bt.words()}",
                _UPDATE,
            )
            return "subjects restored"

        return restore

    async def _remaining(self, ctx: ActionContext, target: Target) -> list[str]:
        return [
            binding_target(b).words()
            for b in await self._bindings(ctx)
            if any(names_identity(s, target) for s in b.get("subjects") or [])
        ]

    async def apply(
        self, ctx: ActionContext, plan: Plan, progress: Progress | None = None
    ) -> Outcome:
        if plan.unchanged:
            return Outcome(plan=plan, result=UNCHANGED, message=plan.unchanged)
        target = plan.target
        items = plan.state["bindings"]
        directory = evidence_dir(ctx, plan.incident_id, f"rbac.{username(target)}")
        try:
            saved = await asyncio.to_thread(
                write_evidence,
                directory,
                ctx.snapshot_dir,
                "bindings.json",
                [i["object"] for i in items],
            )
        except OSError as exc:
            message = f"not started: the bindings could not be saved first ({exc})"
            return Outcome(plan=plan, result=FAILED, message=message, error=message)
        steps = []
        for item in items:
            bt = binding_target(item["object"])
            steps.append(
                Step(
                    description=f"{item['verb']} {bt.words()}",
                    do=partial(self._do, ctx, item, target, dry=False),
                    undo=self._restore_step(ctx, item, target),
                    leftover=f"{bt.words()} changed: the saved copy is {saved['path']}",
                )
            )
        result = await run_steps(steps)
        rel = saved["path"]
        files = [saved]
        if not result.ok:
            assert result.error is not None
            message = f"{result.failed_step} failed: {result.error.message}"
            if result.rolled_back:
                message += "; put back: " + ", ".join(result.rolled_back)
            return Outcome(
                plan=plan,
                result=FAILED,
                message=message,
                error=result.error.message,
                leftovers=result.leftovers,
                files=files,
            )
        undo = {
            "bindings": [
                {"verb": i["verb"], "object": clean(i["object"]), "created": bool(i.get("created"))}
                for i in items
            ],
            "evidence": rel,
        }
        try:
            remaining = await self._remaining(ctx, target)
        except ActionError as error:
            remaining = [f"(could not check: {error.message})"]
        names = ", ".join(s for s in result.done)
        outcome = Outcome(
            plan=plan,
            result=OK,
            message=f"removed the bindings of {username(target)}: {names}",
            files=files,
            undo=undo,
            undoable=True,
            undo_note=f"undo recreates {len(items)} binding(s) from {rel}",
        )
        if remaining:
            outcome.message += "; still naming it: " + ", ".join(remaining)
        else:
            detail = (
                f"{len(items)} binding(s) removed; no RoleBinding or ClusterRoleBinding "
                "names it now (its groups' rights remain)"
            )
            outcome.containment.append(
                fact(IDENTITY, identity_subject(target), BINDINGS_REMOVED, detail)
            )
        return outcome

    async def plan_undo(self, ctx: ActionContext, record: ActionRecord) -> Plan:
        target = record.target
        items = record.undo.get("bindings") or []
        plan = Plan(
            action=self.name,
            incident_id=record.incident_id,
            target=target,
            subject=target,
            title=f"Restore the RBAC bindings of {target.words()}",
            undo_of=record,
            state={"bindings": items},
        )
        for item in items:
            obj = item["object"]
            bt = binding_target(obj)
            verb = "create" if item["verb"] == "delete" else "update"
            plan.changes.append(Change(verb=verb, target=bt, body=obj, summary="as it was before"))
            role = obj.get("roleRef") or {}
            grants = f"{role.get('kind', '?')} {role.get('name', '?')}"
            if item.get("created"):
                plan.warnings.append(
                    f"{bt.kind} {bt.short()} was created by {username(target)} during the "
                    f"incident: restoring it gives {grants} back to the identity that acted"
                )
            elif role.get("name") in _POWERFUL_ROLES:
                plan.warnings.append(
                    f"{bt.kind} {bt.short()} grants {grants}: restoring it gives that back "
                    f"to {username(target)}"
                )
        return plan

    async def undo(self, ctx: ActionContext, plan: Plan) -> Outcome:
        target = plan.target
        done: list[str] = []
        for item in plan.state["bindings"]:
            try:
                how = await self._restore_step(ctx, item, target)()
            except ActionError as error:
                message = error.message + (f" (restored so far: {', '.join(done)})" if done else "")
                return Outcome(plan=plan, result=FAILED, message=message, error=error.message)
            done.append(f"{binding_target(item['object']).words()} {how}")
        outcome = Outcome(plan=plan, result=UNDONE, message="; ".join(done))
        remaining = await self._remaining(ctx, target)
        outcome.containment.append(
            fact(
                IDENTITY,
                identity_subject(target),
                RESTORED,
                f"bindings restored; named by {len(remaining)} binding(s) again",
            )
        )
        return outcome
