"""Identity containment: the RBAC bindings of the identity that acted, and its credentials.

- **Unbind** (`B`): the RoleBindings and ClusterRoleBindings that name the
  identity (read from the cluster), and those it created during the incident
  (from the incident's audit events). A binding the identity alone is bound by,
  or that it created, is deleted; one it shares with others has it taken out of
  its subjects. The full objects are written first to the incident's evidence
  folder (0600), and undo recreates them exactly (without server-set fields).
- **Revoke** (`R`) a ServiceAccount's credentials: its legacy token Secrets are
  deleted; bound tokens (TokenRequest, projected) stay valid until they expire
  unless the ServiceAccount is recreated, which changes its uid: then every
  token issued for it stops authenticating. The plan names the pods that use it
  (they must restart to get a working token). For a user or a client
  certificate Kubernetes has no revocation: the action says so and what to do.

Identities of the cluster itself (`system:anonymous`, `system:node:...`, control
plane components) are refused with the reason.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
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
    Outcome,
    Plan,
    Progress,
    Target,
)
from ktriage.actions.catalog import permissions_of
from ktriage.actions.context import ActionContext
from ktriage.actions.logs import _mkdir_private, _private_opener, safe_name
from ktriage.actions.permissions import (
    CREATE_CLUSTERROLEBINDINGS,
    CREATE_ROLEBINDINGS,
    CREATE_SERVICEACCOUNTS,
    DELETE_CLUSTERROLEBINDINGS,
    DELETE_ROLEBINDINGS,
    DELETE_SECRETS,
    DELETE_SERVICEACCOUNTS,
    GET_SERVICEACCOUNTS,
    LIST_CLUSTERROLEBINDINGS,
    LIST_PODS,
    LIST_SECRETS,
    UPDATE_CLUSTERROLEBINDINGS,
    UPDATE_ROLEBINDINGS,
    Permission,
)
from ktriage.actions.runner import Step, run_steps
from ktriage.core.containment import (
    BINDINGS_REMOVED,
    CANNOT_REVOKE,
    CREDENTIALS_REVOKED,
    IDENTITY,
    RESTORED,
    fact,
)
from ktriage.core.model import EntityKind
from ktriage.core.redact import redact

SA = EntityKind.SERVICE_ACCOUNT
USER = EntityKind.USER
BINDING_RESOURCES = {"rolebindings": "RoleBinding", "clusterrolebindings": "ClusterRoleBinding"}
SA_NAME_ANNOTATION = "kubernetes.io/service-account.name"
SA_UID_ANNOTATION = "kubernetes.io/service-account.uid"
# How many pods a plan names before counting the rest.
NAMED_PODS = 10
# How long the recreation waits for the old ServiceAccount to be gone.
GONE_SECONDS = 10.0
# Fields the server sets; a recreated object leaves them out.
_SERVER_META = (
    "uid",
    "resourceVersion",
    "creationTimestamp",
    "generation",
    "managedFields",
    "selfLink",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "ownerReferences",
)


def username(target: Target) -> str:
    """The name the API server knows the identity by."""
    if target.kind == SA:
        return f"system:serviceaccount:{target.namespace}:{target.name}"
    return target.name


def identity_subject(target: Target) -> str:
    """The containment fact's subject: `serviceaccount ns/name` or `user name`."""
    if target.kind == SA:
        return f"serviceaccount {target.namespace}/{target.name}"
    return f"user {target.name}"


def refuse_unrevocable(target: Target) -> None:
    """Raise, saying why, for an identity that is the cluster's own or nobody's."""
    name = username(target)
    if target.kind not in (SA, USER):
        raise ActionError(f"{target.words()} is not an identity")
    if name in ("system:anonymous", "system:unauthenticated"):
        raise ActionError(
            f"{name} is not a revocable identity: it is every request without credentials. "
            "Remove what it is granted by hand (kubectl get clusterrolebindings,rolebindings "
            "-A -o wide | grep -e system:anonymous -e system:unauthenticated) and turn "
            "anonymous authentication off (kube-apiserver --anonymous-auth=false)"
        )
    if name.startswith("system:node:"):
        raise ActionError(
            f"{name} is not a revocable identity: it is the kubelet of node "
            f"{name.removeprefix('system:node:')}, and the Node authorizer (not RBAC) gives it "
            "its rights. Cordon and drain that node, then rotate the kubelet's client "
            "certificate or replace the node"
        )
    if target.kind == USER and name.startswith("system:"):
        raise ActionError(
            f"{name} is not a revocable identity: it is a component of the control plane. "
            "Its rights come from the cluster's bootstrap policy; removing them breaks the "
            "cluster"
        )


async def refuse_self(ctx: ActionContext, target: Target) -> None:
    """Raise when the identity is the one ktriage acts as: it would lock itself out."""
    who = await ctx.permissions.identity()
    if username(target) == who:
        raise ActionError(
            f"{who} is the identity ktriage itself acts as: containing it would lock "
            "ktriage (and you) out. Use another identity to contain this one"
        )


def clean(obj: dict[str, Any]) -> dict[str, Any]:
    """The object without the fields the server sets, ready to be created again."""
    # apiVersion and kind first, as kubectl shows an object.
    head = {k: obj[k] for k in ("apiVersion", "kind") if k in obj}
    out = {**head, **copy.deepcopy({k: v for k, v in obj.items() if k not in head})}
    out.pop("status", None)
    meta = out.get("metadata") or {}
    for key in _SERVER_META:
        meta.pop(key, None)
    annotations = meta.get("annotations") or {}
    annotations.pop("kubectl.kubernetes.io/last-applied-configuration", None)
    if not annotations:
        meta.pop("annotations", None)
    return out


def _key(obj: dict[str, Any]) -> tuple[str, str, str]:
    meta = obj.get("metadata") or {}
    return str(obj.get("kind", "")), str(meta.get("namespace", "")), str(meta.get("name", ""))


def binding_target(obj: dict[str, Any]) -> Target:
    kind, ns, name = _key(obj)
    return Target(kind, ns, name)


def names_identity(subject: Any, target: Target) -> bool:
    """Whether a binding subject is this identity (groups are not matched). A
    ServiceAccount may also be named as a User by its full username: RBAC matches that."""
    if not isinstance(subject, dict):
        return False
    kind = subject.get("kind")
    if kind == "User":
        return subject.get("name") == username(target)
    return (
        target.kind == SA
        and kind == "ServiceAccount"
        and subject.get("name") == target.name
        and subject.get("namespace") == target.namespace
    )


def created_by(records: list[tuple[Any, Any]], target: Target) -> list[tuple[str, str, str]]:
    """(kind, namespace, name) of the bindings the identity created or changed in the
    incident, from its audit records that succeeded."""
    who = username(target)
    found: list[tuple[str, str, str]] = []
    for _event, raw in records:
        if not isinstance(raw, dict):
            continue
        user = raw.get("user") if isinstance(raw.get("user"), dict) else {}
        if user.get("username") != who:
            continue
        if raw.get("verb") not in ("create", "update", "patch"):
            continue
        ref = raw.get("objectRef") if isinstance(raw.get("objectRef"), dict) else {}
        kind = BINDING_RESOURCES.get(str(ref.get("resource") or ""))
        status = raw.get("responseStatus") if isinstance(raw.get("responseStatus"), dict) else {}
        code = status.get("code")
        if kind is None or (isinstance(code, int) and code >= 300):
            continue
        name = str(ref.get("name") or "")
        if not name:
            obj = raw.get("responseObject") or raw.get("requestObject")
            if isinstance(obj, dict):
                name = str((obj.get("metadata") or {}).get("name") or "")
        if name:
            ns = "" if kind == "ClusterRoleBinding" else str(ref.get("namespace") or "")
            key = (kind, ns, name)
            if key not in found:
                found.append(key)
    return found


def groups_of(records: list[tuple[Any, Any]], target: Target) -> list[str]:
    """The groups the API server said the identity had, in the incident's audit records."""
    who = username(target)
    groups: list[str] = []
    for _event, raw in records:
        user = raw.get("user") if isinstance(raw, dict) else None
        if not isinstance(user, dict) or user.get("username") != who:
            continue
        for group in user.get("groups") or ():
            if isinstance(group, str) and group not in groups:
                groups.append(group)
    return groups


def evidence_dir(ctx: ActionContext, incident_id: str, what: str) -> Path:
    stamp = datetime.fromtimestamp(ctx.clock(), UTC).strftime("%Y%m%dT%H%M%SZ")
    base = ctx.snapshot_dir / safe_name(incident_id) / "evidence"
    path = base / f"{safe_name(what)}.{stamp}"
    n = 2
    while path.exists():
        path = base / f"{safe_name(what)}.{stamp}-{n}"
        n += 1
    return path


def write_evidence(directory: Path, base: Path, name: str, data: Any) -> dict[str, Any]:
    """One JSON file, 0600 in 0700 directories; exact, so undo can trust it. Returns its
    entry for the record: {path (relative to `base`), sha256, bytes}."""
    _mkdir_private(directory)
    path = directory / name
    text = (json.dumps(data, indent=2, sort_keys=True) + "\n").encode()
    with open(path, "wb", opener=_private_opener) as fh:
        fh.write(text)
    digest = hashlib.sha256(text).hexdigest()
    return {"path": str(path.relative_to(base)), "sha256": digest, "bytes": len(text)}


_DELETE = {"ClusterRoleBinding": DELETE_CLUSTERROLEBINDINGS, "RoleBinding": DELETE_ROLEBINDINGS}
_UPDATE = {"ClusterRoleBinding": UPDATE_CLUSTERROLEBINDINGS, "RoleBinding": UPDATE_ROLEBINDINGS}
_CREATE = {"ClusterRoleBinding": CREATE_CLUSTERROLEBINDINGS, "RoleBinding": CREATE_ROLEBINDINGS}


class Unbind:
    name = "unbind"
    key = "B"
    title = "Remove the identity's RBAC bindings"

    def permissions(self, target: Target) -> list[Permission]:
        return permissions_of(self.name)

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
        by_key = {_key(b): b for b in bindings}
        chosen: list[tuple[str, dict[str, Any]]] = []  # ("delete" | "update", binding)
        for b in bindings:
            subjects = b.get("subjects") or []
            mine = [s for s in subjects if names_identity(s, target)]
            if not mine and _key(b) not in created:
                continue
            others = [s for s in subjects if not names_identity(s, target)]
            if _key(b) in created or not others:
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
                    if _key(b) in created
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
            state.append({"verb": verb, "object": b})
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
            return ctx.call(
                kc.delete_binding,
                ctx.kube,
                bt.kind,
                bt.namespace,
                bt.name,
                uid=uid,
                dry_run=dry,
                what=f"{prefix}delete {bt.words()}",
                subject=bt,
                permission=_DELETE[bt.kind],
            )
        body = copy.deepcopy(b)
        body["subjects"] = [s for s in b.get("subjects") or [] if not names_identity(s, target)]
        return ctx.call(
            kc.replace_binding,
            ctx.kube,
            body,
            dry_run=dry,
            what=f"{prefix}update {bt.words()}",
            subject=bt,
            permission=_UPDATE[bt.kind],
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
                await ctx.call(
                    kc.create_binding,
                    ctx.kube,
                    saved,
                    dry_run=True,
                    what=f"dry run: create {bt.words()}",
                    subject=bt,
                    permission=_CREATE[bt.kind],
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
                await ctx.call(
                    kc.create_binding,
                    ctx.kube,
                    saved,
                    what=f"recreate {bt.words()}",
                    subject=bt,
                    permission=_CREATE[bt.kind],
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
            await ctx.call(
                kc.replace_binding,
                ctx.kube,
                current,
                what=f"put {username(target)} back into {bt.words()}",
                subject=bt,
                permission=_UPDATE[bt.kind],
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
                    do=lambda item=item: self._do(ctx, item, target, dry=False),
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
            "bindings": [{"verb": i["verb"], "object": clean(i["object"])} for i in items],
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
            bt = binding_target(item["object"])
            verb = "create" if item["verb"] == "delete" else "update"
            plan.changes.append(
                Change(verb=verb, target=bt, body=item["object"], summary="as it was before")
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


def _uses(pod: dict[str, Any], name: str) -> bool:
    spec = pod.get("spec") or {}
    return (spec.get("serviceAccountName") or spec.get("serviceAccount") or "default") == name


class RevokeCredentials:
    name = "revoke"
    key = "R"
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
        sa = await ctx.call(
            kc.get_service_account,
            ctx.kube,
            ns,
            target.name,
            what=f"read {target.words()}",
            subject=target,
            permission=GET_SERVICEACCOUNTS,
        )
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
            kc.list_pods, ctx.kube, ns, what=f"list pods in namespace {ns}", permission=LIST_PODS
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
            await ctx.call(
                kc.delete_secret,
                ctx.kube,
                t.namespace,
                token["name"],
                uid=token["uid"],
                dry_run=True,
                what=f"dry run: delete {st.words()}",
                subject=st,
                permission=DELETE_SECRETS,
            )
        await ctx.call(
            kc.delete_service_account,
            ctx.kube,
            t.namespace,
            t.name,
            uid=plan.state["uid"],
            dry_run=True,
            what=f"dry run: delete {t.words()}",
            subject=t,
            permission=DELETE_SERVICEACCOUNTS,
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
                sa = await ctx.call(
                    kc.get_service_account,
                    ctx.kube,
                    target.namespace,
                    target.name,
                    what=f"re-read {target.words()}",
                    subject=target,
                    permission=GET_SERVICEACCOUNTS,
                )
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
                    await ctx.call(
                        kc.delete_secret,
                        ctx.kube,
                        ns,
                        token["name"],
                        uid=token["uid"],
                        what=f"delete {secret.words()}",
                        subject=secret,
                        permission=DELETE_SECRETS,
                    )
                except ActionError as error:
                    if error.reason != "not-found":
                        raise
                deleted.append(token["name"])
            new_uid = ""
            if plan.option == self.RECREATE:
                await ctx.call(
                    kc.delete_service_account,
                    ctx.kube,
                    ns,
                    target.name,
                    uid=st["uid"],
                    what=f"delete {target.words()}",
                    subject=target,
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
            now = await ctx.call(
                kc.get_service_account,
                ctx.kube,
                ns,
                target.name,
                what=f"re-read {target.words()}",
                subject=target,
                permission=GET_SERVICEACCOUNTS,
            )
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
