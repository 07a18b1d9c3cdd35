"""The request filters kube-apiserver runs before a handler: authentication,
impersonation, authorization, and the audit event of every request."""

from __future__ import annotations

import logging

from aiohttp import web

from ktriage.sim.auth import impersonation
from ktriage.sim.auth.authentication import Identity
from ktriage.sim.auth.authorization import Decision, forbidden_message
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
        """`Impersonate-User`/`-Group`/`-Uid`/`-Extra-*` headers (kubectl --as/--as-group):
        the requester needs the `impersonate` verb on each; the request then runs as the
        impersonated user, whose groups are exactly the requested ones (a ServiceAccount's
        own groups when none are) plus system:authenticated."""
        request = impersonation.parse_headers(ctx.request.headers)
        if request is None:
            return
        if isinstance(request, str):
            raise errors.internal_error(request)
        real = ctx.ident
        assert real is not None
        for attrs in request.attributes():
            denied = self.faults.denied(real.name, real.username)
            decision = Decision(False, "") if denied else self.auth.authorize(real, attrs)
            if not decision.allowed:
                ctx.decision = decision
                message = forbidden_message(real.username, attrs)
                if decision.reason:
                    message += f": {decision.reason}"
                raise errors.forbidden(message, None, attrs.api_group, attrs.resource, attrs.name)
        ctx.impersonator = real
        ctx.ident = request.identity()

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
        """Write the request's audit record for `stage`; a long-running request (watch,
        exec, followed logs) writes `ResponseStarted` first, then `ResponseComplete`
        when it ends, both under one auditID."""
        if stage == "ResponseStarted" and ctx.ident is not None:
            ctx.audit_started = True
        else:
            ctx.audited = True
        if ctx.ident is None and ctx.code == 401:
            self._emit_failed_authentication_audit(ctx)
            return
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
        request_object = ctx.request_object
        if request_object is not None and ctx.request_body is not None:
            # The audit log keeps the object as the client sent it, before defaulting
            # and the fields the server sets (uid, resourceVersion, timestamps...).
            request_object = ctx.request_body
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
                request_object=request_object if isinstance(request_object, dict) else None,
                response_object=ctx.response_object,
                annotations=annotations,
                time=ctx.received,
                stage_time=self.clock.now(),
                stage=stage,
                response_status=response_status,
                impersonated_user=impersonated,
                audit_id=ctx.audit_id,
            )
        except (OSError, ValueError):
            log.exception("audit event could not be written")

    def _emit_failed_authentication_audit(self, ctx: Ctx) -> None:
        """A 401 as kube-apiserver's failed-authentication audit filter records it: one
        `ResponseStarted` record, no user, and a status carrying only the
        authentication methods tried and the code."""
        request = ctx.request
        info = ctx.info
        try:
            self.audit.emit(
                user="",
                groups=[],
                verb=info.verb if info is not None else request.method.lower(),
                uri=request.raw_path,
                object_ref=ctx.object_ref,
                code=401,
                source_ips=self._source_ips(request),
                user_agent=request.headers.get("User-Agent", ""),
                annotations={},
                time=ctx.received,
                stage_time=self.clock.now(),
                stage="ResponseStarted",
                response_status={"message": authentication_methods_message(request)},
                audit_id=ctx.audit_id,
            )
        except (OSError, ValueError):
            log.exception("audit event could not be written")


def authentication_methods_message(request: web.Request) -> str:
    """The message of a 401 audit record (kube-apiserver's getAuthMethods)."""
    methods: list[str] = []
    header = request.headers.get("Authorization", "").strip()
    if header[:6].lower() == "basic ":
        methods.append("basic")
    parts = header.split(" ")
    if len(parts) > 1 and parts[0].lower() == "bearer":
        methods.append("bearer")
    if request.query.get("access_token", "").strip():
        methods.append("access_token")
    if methods:
        return f"Authentication failed, attempted: {', '.join(methods)}"
    return "Authentication failed, no credentials provided"
