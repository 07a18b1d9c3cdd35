"""The review APIs: TokenReview, SelfSubjectReview and the (Self)SubjectAccess/RulesReviews."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ktriage.sim.auth.authentication import Identity
from ktriage.sim.auth.authorization import Attributes, Decision
from ktriage.sim.resources import ResourceType
from ktriage.sim.server import errors, protobuf
from ktriage.sim.server.handler_base import HandlerBase
from ktriage.sim.server.request import Ctx, accept_protobuf


class ReviewHandlers(HandlerBase):
    """Reviews: answered, never stored."""

    async def _review(self, ctx: Ctx, rt: ResourceType) -> web.Response:
        info = ctx.info
        assert info is not None and ctx.ident is not None
        if info.verb != "create":
            raise errors.method_not_allowed()
        body = await self._read_body(ctx)
        was_protobuf = ctx.request.content_type == protobuf.CONTENT_TYPE
        obj = self._check_type(rt, body if isinstance(body, dict) else {})
        if not was_protobuf:
            self._field_validation(ctx, obj)
        ctx.request_object = obj
        spec = obj.get("spec") or {}
        out: dict[str, Any] = {
            "kind": rt.kind,
            "apiVersion": rt.api_version,
            "metadata": {"creationTimestamp": None},
        }
        if rt.kind in (
            "SelfSubjectAccessReview",
            "SubjectAccessReview",
            "LocalSubjectAccessReview",
        ):
            who = ctx.ident
            if rt.kind != "SelfSubjectAccessReview":
                who = self._subject(spec)
                if rt.kind == "LocalSubjectAccessReview":
                    ns = (spec.get("resourceAttributes") or {}).get("namespace")
                    if ns != info.namespace:
                        raise errors.bad_request(
                            "spec.resourceAttributes.namespace must match namespace"
                        )
                    out["metadata"]["namespace"] = info.namespace
            status = self._access_review(who, spec)
            out["spec"] = spec
            out["status"] = status
        elif rt.kind == "SelfSubjectRulesReview":
            namespace = spec.get("namespace") if isinstance(spec.get("namespace"), str) else ""
            resource_rules, non_resource_rules, failures = self.auth.rules(ctx.ident, namespace)
            out["spec"] = spec
            out["status"] = {
                "resourceRules": resource_rules,
                "nonResourceRules": non_resource_rules,
                "incomplete": bool(failures),
            }
            if failures:
                out["status"]["evaluationError"] = "[" + ", ".join(failures) + "]"
        elif rt.kind == "SelfSubjectReview":
            out["status"] = {"userInfo": _user_info(ctx.ident)}
        elif rt.kind == "TokenReview":
            token = spec.get("token", "")
            who = self.auth.authenticate(token)
            status: dict[str, Any] = {"authenticated": who is not None}
            if who is not None and not self.faults.token_expired(who.name, who.username):
                status["user"] = _user_info(who)
                status["audiences"] = spec.get("audiences") or [
                    "https://kubernetes.default.svc.cluster.local"
                ]
            else:
                status = {"authenticated": False, "error": "invalid bearer token"}
            out["spec"] = {"token": spec.get("token", "")}
            out["status"] = status
        ctx.code = 201
        ctx.response_object = out
        accept = ctx.request.headers.get("Accept", "")
        if (was_protobuf or accept_protobuf(accept)) and protobuf.supports(rt.api_version, rt.kind):
            encoded = dict(out, metadata={})
            if rt.kind == "SelfSubjectReview":
                encoded["status"] = {"userInfo": protobuf.wrap_extra(out["status"]["userInfo"])}
            return web.Response(
                body=protobuf.encode(encoded), status=201, content_type=protobuf.CONTENT_TYPE
            )
        if rt.kind == "TokenReview":
            # The token a client sent is not echoed into logs or responses beyond its own.
            ctx.request_object = None
        return self._json(ctx, out, 201)

    def _subject(self, spec: dict) -> Identity:
        """A SubjectAccessReview's user: exactly the user and groups it names."""
        username = spec.get("user") if isinstance(spec.get("user"), str) else ""
        groups = spec.get("groups") if isinstance(spec.get("groups"), list) else []
        extra = spec.get("extra") if isinstance(spec.get("extra"), dict) else {}
        return Identity(
            name=username,
            username=username,
            groups=tuple(g for g in groups if isinstance(g, str)),
            uid=spec.get("uid") if isinstance(spec.get("uid"), str) else "",
            extra=tuple(sorted((k, tuple(v)) for k, v in extra.items() if isinstance(v, list))),
        )

    def _access_review(self, who: Identity, spec: dict) -> dict[str, Any]:
        ra = spec.get("resourceAttributes")
        nra = spec.get("nonResourceAttributes")
        if ra:
            attrs = Attributes(
                verb=ra.get("verb", ""),
                resource_request=True,
                api_group=ra.get("group", ""),
                api_version=ra.get("version", ""),
                resource=ra.get("resource", ""),
                subresource=ra.get("subresource", ""),
                namespace=ra.get("namespace", ""),
                name=ra.get("name", ""),
            )
        elif nra:
            attrs = Attributes(
                verb=nra.get("verb", ""), resource_request=False, path=nra.get("path", "")
            )
        else:
            raise errors.bad_request(
                "spec: Invalid value: exactly one of nonResourceAttributes or "
                "resourceAttributes must be specified"
            )
        if self.faults.denied(who.name, who.username):
            decision = Decision(False, "")
        else:
            decision = self.auth.authorize(who, attrs)
        status: dict[str, Any] = {"allowed": decision.allowed}
        if decision.reason:
            status["reason"] = decision.reason
        return status


def _user_info(who: Identity) -> dict[str, Any]:
    info: dict[str, Any] = {"username": who.username, "uid": who.uid, "groups": who.all_groups}
    if not who.uid:
        del info["uid"]
    if who.extra:
        info["extra"] = who.extra_dict
    return info
