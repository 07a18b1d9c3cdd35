"""Revoke the credentials of the identity that acted in an incident (`R`).

A ServiceAccount's legacy token Secrets are deleted; its bound tokens
(TokenRequest, projected) stay valid until they expire unless it is recreated,
which changes its uid: then every token issued for it stops authenticating. The
plan names the pods that use it (they must restart to get a working token). For
a user or a client certificate Kubernetes has no revocation: the action records
that (`cannot-revoke`) and what to do instead.
"""

from __future__ import annotations

import asyncio
from typing import Any

from ktriage.actions import kube_contain as kc
from ktriage.actions.base import (
    FAILED,
    OK,
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
from ktriage.actions.catalog import permissions_of
from ktriage.actions.context import ActionContext
from ktriage.actions.identity import (
    GONE_SECONDS,
    NAMED_PODS,
    SA_NAME_ANNOTATION,
    SA_UID_ANNOTATION,
    USER,
    clean,
    evidence_dir,
    identity_subject,
    refuse_self,
    refuse_unrevocable,
    write_evidence,
)
from ktriage.actions.permissions import (
    CREATE_SERVICEACCOUNTS,
    DELETE_SECRETS,
    DELETE_SERVICEACCOUNTS,
    GET_SERVICEACCOUNTS,
    LIST_PODS,
    LIST_SECRETS,
    Permission,
)
from ktriage.core.containment import (
    CANNOT_REVOKE,
    CREDENTIALS_REVOKED,
    IDENTITY,
    fact,
)
from ktriage.core.redact import redact


def _uses(pod: dict[str, Any], name: str) -> bool:
    spec = pod.get("spec") or {}
    return (spec.get("serviceAccountName") or spec.get("serviceAccount") or "default") == name


async def _read_account(ctx: ActionContext, target: Target, verb: str = "read") -> dict[str, Any]:
    """The ServiceAccount as the server has it now."""
    return await ctx.read(
        kc.get_service_account,
        target,
        ctx.kube,
        target.namespace,
        target.name,
        permission=GET_SERVICEACCOUNTS,
        verb=verb,
    )


class RevokeCredentials(DeclaredAction):
    name = "revoke"
    title = "Revoke the identity's credentials"

    RECREATE = "r"
    TOKENS_ONLY = "t"

    def permissions(self, target: Target) -> list[Permission]:
        if target.kind == USER:
            return []  # nothing to ask: the action only says what Kubernetes cannot do
        return permissions_of(self.name)

    async def check(self, ctx: ActionContext, target: Target) -> dict[str, Any]:
        refuse_unrevocable(target)
        await refuse_self(ctx, target)
        if target.kind == USER:
            return {}
        ns = target.namespace
        sa = await _read_account(ctx, target)
        uid = (sa.get("metadata") or {}).get("uid", "")
        secrets = await ctx.call(
            kc.list_secrets,
            ctx.kube,
            ns,
            what=f"list token Secrets in namespace {ns}",
            permission=LIST_SECRETS,
        )
        tokens = []
        for s in secrets:
            ann = (s.get("metadata") or {}).get("annotations") or {}
            if ann.get(SA_NAME_ANNOTATION) != target.name:
                continue
            if ann.get(SA_UID_ANNOTATION) not in (None, "", uid):
                continue  # a token of an earlier namesake: it no longer authenticates
            tokens.append(s)
        pods = await ctx.call(
            ctx.kube.list_pods, ns, what=f"list pods in namespace {ns}", permission=LIST_PODS
        )
        users = [p for p in pods if _uses(p, target.name)]
        return {"sa": sa, "tokens": tokens, "pods": users}

    async def plan(
        self, ctx: ActionContext, target: Target, incident_id: str, facts: dict[str, Any]
    ) -> Plan:
        plan = Plan(
            action=self.name,
            incident_id=incident_id,
            target=target,
            subject=target,
            title=f"Revoke the credentials of {target.words()}",
        )
        if target.kind == USER:
            plan.unchanged = (
                f"Kubernetes cannot revoke the credentials of user {target.name}: a client "
                "certificate is valid until it expires, and tokens of an external identity "
                "provider are the provider's to revoke"
            )
            plan.notes.extend(
                [
                    "Remove its RBAC bindings now (B): that takes its rights away.",
                    "A client certificate: rotate the cluster's client CA, or, if its "
                    "issuer allows, deny its name in every binding until it expires.",
                    "A cloud identity (EKS aws-auth / access entries, GKE IAM, AKS Entra ID): "
                    "remove its mapping or disable it at the provider.",
                ]
            )
            return plan
        sa = facts["sa"]
        meta = sa.get("metadata") or {}
        tokens: list[dict[str, Any]] = facts["tokens"]
        pods: list[dict[str, Any]] = facts["pods"]
        names = [t["metadata"]["name"] for t in tokens]
        recreated = clean(sa)
        recreated.setdefault("apiVersion", "v1")
        recreated.setdefault("kind", "ServiceAccount")
        # Its references to the deleted token Secrets would point at nothing.
        if recreated.get("secrets"):
            recreated["secrets"] = [
                s for s in recreated["secrets"] if (s or {}).get("name") not in names
            ] or None
            if recreated["secrets"] is None:
                del recreated["secrets"]
        plan.options = [
            (self.RECREATE, "delete its token Secrets and recreate it: every token dies"),
            (self.TOKENS_ONLY, "delete its legacy token Secrets only (bound tokens live on)"),
        ]
        plan.option = self.RECREATE
        for t in tokens:
            tt = Target("Secret", target.namespace, t["metadata"]["name"])
            plan.changes.append(
                Change(verb="delete", target=tt, summary="a legacy token of the ServiceAccount")
            )
        plan.changes.append(
            Change(
                verb="delete",
                target=target,
                summary=f"uid {meta.get('uid', '?')}: its bound tokens stop authenticating "
                f"(only with {self.RECREATE})",
            )
        )
        plan.changes.append(
            Change(
                verb="create",
                target=target,
                body=recreated,
                summary=f"the same ServiceAccount, with a new uid (only with {self.RECREATE})",
            )
        )
        if not tokens:
            plan.notes.append("It has no legacy token Secrets.")
        if pods:
            shown = ", ".join(p["metadata"]["name"] for p in pods[:NAMED_PODS])
            more = f" and {len(pods) - NAMED_PODS} more" if len(pods) > NAMED_PODS else ""
            plan.warnings.append(
                f"{len(pods)} pod(s) run as it and lose their API access when it is "
                f"recreated until they restart: {shown}{more}"
            )
        if target.namespace == "kube-system":
            plan.warnings.append(
                f"{target.words()} lives in kube-system: a cluster component may run as it"
            )
        plan.notes.append(
            "A token bound to a pod also dies with that pod: deleting the pod (X) revokes "
            "that one token only."
        )
        plan.notes.append(
            "Its RBAC bindings stay: a recreated ServiceAccount keeps them (remove them with B)."
        )
        plan.notes.append("Revoked tokens cannot be brought back: there is no undo.")
        plan.state = {
            "uid": meta.get("uid", ""),
            "tokens": [
                {"name": n, "uid": t["metadata"].get("uid", "")}
                for n, t in zip(names, tokens, strict=True)
            ],
            "recreate": recreated,
            "pods": len(pods),
            "sa": sa,
        }
        return plan

    async def dry_run(self, ctx: ActionContext, plan: Plan) -> None:
        if plan.unchanged:
            plan.dry_run = "nothing to send"
            return
        t = plan.target
        for token in plan.state["tokens"]:
            st = Target("Secret", t.namespace, token["name"])
            await ctx.delete(
                kc.delete_secret, st, uid=token["uid"], permission=DELETE_SECRETS, dry_run=True
            )
        await ctx.delete(
            kc.delete_service_account,
            t,
            uid=plan.state["uid"],
            permission=DELETE_SERVICEACCOUNTS,
            dry_run=True,
        )
        plan.dry_run = (
            "the server accepted the deletes (dryRun=All): nothing was changed yet (the "
            "create cannot be tried while the ServiceAccount exists)"
        )

    async def _wait_gone(self, ctx: ActionContext, target: Target, uid: str) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + GONE_SECONDS
        while True:
            try:
                sa = await _read_account(ctx, target, "re-read")
            except ActionError as error:
                if error.reason == "not-found":
                    return
                raise
            if (sa.get("metadata") or {}).get("uid") != uid:
                return
            if loop.time() >= deadline:
                raise ActionError(f"{target.words()} is still there {GONE_SECONDS:g} s later")
            await asyncio.sleep(0.1)

    async def apply(
        self, ctx: ActionContext, plan: Plan, progress: Progress | None = None
    ) -> Outcome:
        target = plan.target
        if plan.unchanged:
            outcome = Outcome(plan=plan, result=UNCHANGED, message=plan.unchanged)
            if target.kind == USER:
                detail = "Kubernetes cannot revoke a user's credentials: " + " ".join(plan.notes)
                outcome.containment.append(
                    fact(IDENTITY, identity_subject(target), CANNOT_REVOKE, detail)
                )
            return outcome
        if plan.option not in (self.RECREATE, self.TOKENS_ONLY):
            raise ActionError("choose what to revoke first")
        st = plan.state
        ns = target.namespace
        directory = evidence_dir(ctx, plan.incident_id, f"serviceaccount.{ns}.{target.name}")
        try:
            # The ServiceAccount as it was (no token Secret data: those are credentials).
            saved = await asyncio.to_thread(
                write_evidence, directory, ctx.snapshot_dir, "serviceaccount.json", redact(st["sa"])
            )
        except OSError as exc:
            message = f"not started: the ServiceAccount could not be saved first ({exc})"
            return Outcome(plan=plan, result=FAILED, message=message, error=message)
        files = [saved]
        deleted: list[str] = []
        try:
            for token in st["tokens"]:
                secret = Target("Secret", ns, token["name"])
                try:
                    await ctx.delete(
                        kc.delete_secret, secret, uid=token["uid"], permission=DELETE_SECRETS
                    )
                except ActionError as error:
                    if error.reason != "not-found":
                        raise
                deleted.append(token["name"])
            new_uid = ""
            if plan.option == self.RECREATE:
                await ctx.delete(
                    kc.delete_service_account,
                    target,
                    uid=st["uid"],
                    permission=DELETE_SERVICEACCOUNTS,
                )
                try:
                    await self._wait_gone(ctx, target, st["uid"])
                    created = await ctx.call(
                        kc.create_service_account,
                        ctx.kube,
                        ns,
                        st["recreate"],
                        what=f"create {target.words()}",
                        subject=target,
                        permission=CREATE_SERVICEACCOUNTS,
                    )
                except ActionError as error:
                    path_words = files[0]["path"]
                    left = (
                        f"{target.words()} was deleted and not recreated: kubectl create "
                        f"serviceaccount {target.name} -n {ns} (its old spec: {path_words})"
                    )
                    return Outcome(
                        plan=plan,
                        result=FAILED,
                        message=error.message,
                        error=error.message,
                        leftovers=[left],
                        files=files,
                    )
                new_uid = (created.get("metadata") or {}).get("uid", "")
            # What is true now, read back.
            remaining = [
                t["metadata"]["name"]
                for t in await ctx.call(
                    kc.list_secrets,
                    ctx.kube,
                    ns,
                    what="re-list token Secrets",
                    permission=LIST_SECRETS,
                )
                if ((t.get("metadata") or {}).get("annotations") or {}).get(SA_NAME_ANNOTATION)
                == target.name
                and t["metadata"]["name"] in deleted
            ]
            now = await _read_account(ctx, target, "re-read")
        except ActionError as error:
            message = error.message
            if deleted:
                message += f" (token Secrets deleted before: {', '.join(deleted)})"
            return Outcome(
                plan=plan, result=FAILED, message=message, error=error.message, files=files
            )
        current_uid = (now.get("metadata") or {}).get("uid", "")
        if remaining:
            return Outcome(
                plan=plan,
                result=FAILED,
                message="token Secrets still there: " + ", ".join(remaining),
                error="not revoked",
                files=files,
            )
        tokens = f"{len(deleted)} legacy token Secret(s) deleted"
        outcome = Outcome(
            plan=plan,
            result=OK,
            message="",
            files=files,
            undo_note="revoked tokens cannot be brought back",
        )
        if plan.option == self.RECREATE:
            if current_uid == st["uid"] or not new_uid:
                outcome.result = FAILED
                outcome.message = f"{target.words()} still has its old uid: tokens live on"
                outcome.error = "not recreated"
                return outcome
            restart = f"; {st['pods']} pod(s) using it must restart" if st["pods"] else ""
            detail = (
                f"{tokens}; recreated with a new uid: every token issued before no longer "
                f"authenticates{restart}"
            )
            outcome.message = f"revoked the credentials of {target.words()}: {detail}"
            outcome.containment.append(
                fact(IDENTITY, identity_subject(target), CREDENTIALS_REVOKED, detail)
            )
        else:
            outcome.message = (
                f"{tokens} of {target.words()}; its bound tokens still authenticate until "
                "they expire (recreate it to revoke them)"
            )
        return outcome

    async def plan_undo(self, ctx: ActionContext, record: ActionRecord) -> Plan:
        raise ActionError("revoked credentials cannot be brought back")

    async def undo(self, ctx: ActionContext, plan: Plan) -> Outcome:
        raise ActionError("revoked credentials cannot be brought back")
