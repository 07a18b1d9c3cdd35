"""The request filters kube-apiserver runs before a handler: authentication,
impersonation, authorization, and the audit event of every request."""

from __future__ import annotations

import logging
from dataclasses import replace

from aiohttp import web

from ktriage.sim.auth.authentication import Identity
from ktriage.sim.auth.authorization import Attributes, Decision, forbidden_message
from ktriage.sim.server import errors
from ktriage.sim.server.handler_base import HandlerBase
from ktriage.sim.server.request import Ctx, RequestInfo

log = logging.getLogger("ktriage.sim")


class RequestFilters(HandlerBase):
    """Authentication, impersonation, authorization and audit."""

    def _authenticate(self, request: web.Request) -> Identity:
        header = request.headers.get("Authorization", "")
        if not header.lower().startswith("bearer "):
            raise errors.unauthorized()
        ident = self.auth.authenticate(header[7:].strip())
        if ident is None or self.faults.token_expired(ident.name, ident.username):
            raise errors.unauthorized()
        return ident

    def _impersonate(self, ctx: Ctx) -> None:
        """`Impersonate-User`/`-Group` headers (kubectl --as/--as-group): the requester
        needs the `impersonate` verb; the request then runs as the impersonated user."""
        headers = ctx.request.headers
        user = headers.get("Impersonate-User")
        groups = headers.getall("Impersonate-Group", [])
        if user is None:
            if groups:
                raise errors.internal_error(f"requested {groups} without impersonating a user")
            return
        real = ctx.ident
        assert real is not None
        targets = [("users", "", user)]
        if user.startswith("system:serviceaccount:") and user.count(":") == 3:
            _, _, sa_ns, sa_name = user.split(":")
            targets = [("serviceaccounts", sa_ns, sa_name)]
        targets += [("groups", "", g) for g in groups]
        for resource, namespace, name in targets:
            attrs = Attributes(
                verb="impersonate",
                resource_request=True,
                resource=resource,
                namespace=namespace,
                name=name,
                api_version="v1",
            )
            denied = self.faults.denied(real.name, real.username)
            decision = Decision(False, "") if denied else self.auth.authorize(real, attrs)
            if not decision.allowed:
                ctx.decision = decision
                message = forbidden_message(real.username, attrs)
                raise errors.forbidden(message, None, "", resource, name)
        known = self.auth.get(user)
        if known is not None and known.username == user:
            effective = known if not groups else replace(known, groups=tuple(groups))
        else:
            role = "admin" if "system:masters" in groups else "basic"
            effective = Identity(
                name=user, username=user, groups=tuple(groups), role=role, token=""
            )
        ctx.impersonator = real
        ctx.ident = effective

    def _authorize(self, ctx: Ctx) -> None:
        assert ctx.ident is not None and ctx.info is not None
        info = ctx.info
        if self.faults.denied(ctx.ident.name, ctx.ident.username):
            decision = Decision(False, "")
        else:
            decision = self.auth.authorize(ctx.ident, info.attributes())
        ctx.decision = decision
        if info.resource_request:
            ctx.object_ref = self._object_ref(info)
        if not decision.allowed:
            message = forbidden_message(ctx.ident.username, info.attributes())
            if decision.reason:
                message += f": {decision.reason}"
            raise errors.forbidden(message, info.rt, info.group, info.resource, info.name)

    @staticmethod
    def _object_ref(info: RequestInfo) -> dict:
        ref = {"resource": info.resource, "namespace": info.namespace, "name": info.name}
        if info.group:
            ref["apiGroup"] = info.group
        ref["apiVersion"] = info.version
        if info.subresource:
            ref["subresource"] = info.subresource
        return ref

    def _source_ips(self, request: web.Request) -> list[str]:
        ips: list[str] = []
        for part in request.headers.get("X-Forwarded-For", "").split(","):
            if part.strip():
                ips.append(part.strip())
        real = request.headers.get("X-Real-Ip", "").strip()
        if real and real not in ips:
            ips.append(real)
        remote = request.remote or ""
        if remote and remote not in ips:
            ips.append(remote)
        return ips

    def _emit_audit(self, ctx: Ctx, stage: str = "ResponseComplete") -> None:
        ctx.audited = True
        request = ctx.request
        info = ctx.info
        ident = ctx.ident
        level = "Metadata"
        if info is not None and info.group == "rbac.authorization.k8s.io":
            level = "RequestResponse"
        annotations: dict[str, str] | None
        if ctx.decision is None:
            annotations = {}
        else:
            annotations = {
                "authorization.k8s.io/decision": "allow" if ctx.decision.allowed else "forbid",
                "authorization.k8s.io/reason": ctx.decision.reason,
            }
        annotations.update(ctx.audit_annotations)
        verb = info.verb if info is not None else request.method.lower()
        impersonated = None
        if ctx.impersonator is not None and ident is not None:
            impersonated = {"username": ident.username, "groups": ident.all_groups}
            ident = ctx.impersonator
        response_status = None
        if ctx.response_status is not None and ctx.code >= 300:
            response_status = ctx.response_status
        try:
            self.audit.emit(
                user=ident.username if ident else "",
                groups=ident.all_groups if ident else [],
                user_uid=ident.uid if ident else None,
                verb=verb,
                uri=request.raw_path,
                object_ref=ctx.object_ref,
                code=ctx.code,
                source_ips=self._source_ips(request),
                user_agent=request.headers.get("User-Agent", ""),
                level=level,
                request_object=ctx.request_object if isinstance(ctx.request_object, dict) else None,
                response_object=ctx.response_object,
                annotations=annotations,
                time=ctx.received,
                stage_time=self.clock.now(),
                stage=stage,
                response_status=response_status,
                impersonated_user=impersonated,
            )
        except (OSError, ValueError):
            log.exception("audit event could not be written")
