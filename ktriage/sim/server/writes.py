"""Writing: create, update, patch (the three patch formats and apply), delete."""

from __future__ import annotations

import random
from typing import Any

import orjson
import yaml
from aiohttp import web

from ktriage.sim.admission.chain import admit
from ktriage.sim.controllers import deletion
from ktriage.sim.controllers import namespace as namespace_deletion
from ktriage.sim.names import NAME_ALPHABET
from ktriage.sim.resources import ResourceType
from ktriage.sim.server import errors, protobuf, schema
from ktriage.sim.server.errors import ApiError
from ktriage.sim.server.handler_base import HandlerBase
from ktriage.sim.server.request import Ctx
from ktriage.sim.storage import patch
from ktriage.sim.storage.store import AlreadyExists, Conflict, deep_copy
from ktriage.sim.timefmt import rfc3339

PATCH_TYPES = {
    "application/strategic-merge-patch+json",
    "application/merge-patch+json",
    "application/json-patch+json",
    "application/apply-patch+yaml",
    "application/apply-patch+cbor",
}
NAMESPACE_MISMATCH = (
    "the namespace of the provided object does not match the namespace sent on the request"
)


class WriteHandlers(HandlerBase):
    """create, update, patch, delete and deletecollection."""

    async def _read_body(self, ctx: Ctx) -> Any:
        body = await self._parse_body(ctx)
        try:
            ctx.request_body = deep_copy(body)  # for the audit log: the object as sent
        except TypeError:  # YAML types JSON has not: the audit log keeps what is stored
            ctx.request_body = None
        return body

    async def _parse_body(self, ctx: Ctx) -> Any:
        request = ctx.request
        data = await request.read()
        ctype = request.content_type
        if ctype == protobuf.CONTENT_TYPE:
            try:
                return protobuf.decode(data)
            except protobuf.UnsupportedKind:
                raise errors.unsupported_media_type(ctype) from None
            except protobuf.ProtobufError as exc:
                raise errors.bad_request(str(exc)) from None
        if not data:
            return None
        if ctype in ("application/yaml", "application/apply-patch+yaml", "text/yaml"):
            try:
                return yaml.safe_load(data)
            except yaml.YAMLError as exc:
                raise errors.bad_request(f"error decoding YAML: {exc}") from None
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise errors.bad_request(
                f"couldn't get version/kind; json parse error: {exc}"
            ) from None

    def _check_type(self, rt: ResourceType, obj: Any) -> dict:
        if not isinstance(obj, dict):
            raise errors.bad_request(f"the body of the request must be a {rt.kind} object")
        api_version = obj.get("apiVersion")
        kind = obj.get("kind")
        if api_version and api_version != rt.api_version:
            raise errors.bad_request(
                f"the API version in the data ({api_version}) does not match the expected "
                f"API version ({rt.api_version})"
            )
        if kind and kind != rt.kind:
            raise errors.bad_request(
                f'{kind} in version "{rt.version}" cannot be handled as a {rt.kind}: '
                f'no kind "{kind}" is registered for version "{rt.api_version}"'
            )
        obj["apiVersion"], obj["kind"] = rt.api_version, rt.kind
        if not isinstance(obj.get("metadata"), dict):
            obj["metadata"] = {}
        return obj

    def _field_validation(self, ctx: Ctx, obj: dict) -> None:
        """Drop unknown fields; Strict fails on them, Warn (the default) warns."""
        mode = ctx.query.get("fieldValidation", "Warn")
        if mode not in ("Strict", "Warn", "Ignore"):
            raise errors.bad_request(
                f'fieldValidation: Unsupported value: "{mode}": '
                'supported values: "Ignore", "Strict", "Warn"'
            )
        unknown = schema.unknown_fields(obj, prune=True)
        if not unknown:
            return
        if mode == "Strict":
            raise errors.bad_request(
                "strict decoding error: " + ", ".join(f'unknown field "{u}"' for u in unknown)
            )
        if mode == "Warn":
            ctx.warnings.extend(f'unknown field "{u}"' for u in unknown)

    def _dry_run(self, ctx: Ctx) -> bool:
        values = ctx.query.getall("dryRun", [])
        for value in values:
            if value != "All":
                raise errors.bad_request(
                    f'dryRun: Unsupported value: "{value}": supported values: "All"'
                )
        return bool(values)

    def _check_namespace(self, ctx: Ctx, rt: ResourceType, obj: dict) -> str:
        info = ctx.info
        assert info is not None
        meta = obj["metadata"]
        if not rt.namespaced:
            meta.pop("namespace", None)
            return ""
        body_ns = meta.get("namespace")
        if body_ns and info.namespace and body_ns != info.namespace:
            raise errors.bad_request(NAMESPACE_MISMATCH)
        namespace = info.namespace or body_ns or ""
        if not namespace:
            raise errors.bad_request("the namespace of the provided object must be set")
        meta["namespace"] = namespace
        return namespace

    async def _create(self, ctx: Ctx, rt: ResourceType, body: Any = None) -> web.Response:
        if body is None:
            body = await self._read_body(ctx)
        ctx.request_object = body
        obj = self._check_type(rt, body)
        self._field_validation(ctx, obj)
        namespace = self._check_namespace(ctx, rt, obj)
        meta = obj["metadata"]
        if meta.get("resourceVersion"):
            raise errors.internal_error(
                "resourceVersion should not be set on objects to be created"
            )
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + "".join(random.choices(NAME_ALPHABET, k=5))
        if not meta.get("name"):
            raise errors.invalid(
                rt,
                "",
                [
                    (
                        "metadata.name",
                        "FieldValueRequired",
                        "Required value: name or generateName is required",
                    )
                ],
            )
        for key in (
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "managedFields",
            "selfLink",
            "generation",
        ):
            meta.pop(key, None)
        if rt.has_status:
            obj.pop("status", None)
        name = meta["name"]
        if ctx.object_ref is not None:
            ctx.object_ref["name"] = name
        if namespace and rt.resource != "namespaces":
            ns = self.store.peek("v1", "Namespace", None, namespace)
            if ns is None:
                raise errors.namespace_not_found(namespace)
            if (ns.get("metadata") or {}).get("deletionTimestamp"):
                raise errors.ApiError(
                    errors.status(
                        403,
                        "Forbidden",
                        f'{rt.group_resource} "{name}" is forbidden: unable to create new '
                        f"content in namespace {namespace} because it is being terminated",
                        {
                            "name": name,
                            "kind": rt.resource,
                            "causes": [
                                {
                                    "reason": "NamespaceTerminating",
                                    "message": f"namespace {namespace} is being terminated",
                                    "field": "metadata.namespace",
                                }
                            ],
                        },
                    )
                )
        self._admit(ctx, rt, obj, None)
        if self._dry_run(ctx):
            if self.store.peek(rt.api_version, rt.kind, namespace or None, name) is not None:
                raise errors.already_exists(rt, name)
            self.store.prepare_new(obj, None)
            return self._object_response(ctx, rt, obj, 201)
        try:
            stored = self.store.create_checked(obj)
        except AlreadyExists:
            raise errors.already_exists(rt, name) from None
        return self._object_response(ctx, rt, stored, 201)

    def _admit(
        self, ctx: Ctx, rt: ResourceType, obj: dict, old: dict | None, subresource: str = ""
    ) -> None:
        """Validation and admission (see `admission.chain`); what they say goes with the
        response (warnings) and its audit event (annotations)."""
        decision = admit(self.store, rt, obj, old, subresource, ctx.ident, ctx.audit_annotations)
        ctx.warnings.extend(decision.warnings)
        ctx.audit_annotations.update(decision.audit_annotations)

    def _name_check(self, ctx: Ctx, obj: dict) -> None:
        info = ctx.info
        assert info is not None
        body_name = obj["metadata"].get("name")
        if body_name and body_name != info.name:
            raise errors.bad_request(
                f"the name of the object ({body_name}) does not match the name on the URL "
                f"({info.name})"
            )
        obj["metadata"]["name"] = info.name

    def _merge_status_scope(self, rt: ResourceType, old: dict, new: dict, subresource: str) -> dict:
        """The main resource cannot change status, /status changes only status."""
        if subresource == "status":
            merged = deep_copy(old)
            if "status" in new:
                merged["status"] = new["status"]
            else:
                merged.pop("status", None)
            for key in ("labels", "annotations"):
                if key in new["metadata"]:
                    merged["metadata"][key] = new["metadata"][key]
            return merged
        if subresource == "ephemeralcontainers":
            merged = deep_copy(old)
            merged.setdefault("spec", {})["ephemeralContainers"] = (new.get("spec") or {}).get(
                "ephemeralContainers", []
            )
            return merged
        if rt.has_status:
            if "status" in old:
                new["status"] = deep_copy(old["status"])
            else:
                new.pop("status", None)
        return new

    def _store_update(self, ctx: Ctx, rt: ResourceType, new: dict, expected_rv: str | None) -> dict:
        info = ctx.info
        assert info is not None
        if self._dry_run(ctx):
            old = self._get_stored(rt, info.namespace, info.name)
            if expected_rv and expected_rv != old["metadata"].get("resourceVersion"):
                raise errors.conflict(rt, info.name)
            self.store.prepare_new(new, old)
            new["metadata"]["resourceVersion"] = old["metadata"].get("resourceVersion")
            return new
        self._record_manager(ctx, rt, new)
        try:
            return self.store.replace_checked(new, expected_rv)
        except KeyError:
            raise errors.not_found(rt, info.name) from None
        except Conflict:
            raise errors.conflict(rt, info.name) from None

    def _record_manager(self, ctx: Ctx, rt: ResourceType, new: dict) -> None:
        """Keep managedFields as kube-apiserver does: who last wrote the object, and
        when (the only time a spec change such as a cordon leaves on it)."""
        info = ctx.info
        assert info is not None
        try:
            old = self._get_stored(rt, info.namespace, info.name)
        except ApiError:
            return
        agent = ctx.request.headers.get("User-Agent", "")
        manager = ctx.query.get("fieldManager") or agent.split("/", 1)[0] or "unknown"
        subresource = info.subresource or ""
        entries = [
            e
            for e in old["metadata"].get("managedFields") or []
            if not (e.get("manager") == manager and e.get("subresource", "") == subresource)
        ]
        entry = {
            "manager": manager,
            "operation": "Update",
            "apiVersion": new.get("apiVersion", "v1"),
            "time": rfc3339(self.clock.now()),
            "fieldsType": "FieldsV1",
            "fieldsV1": {},
        }
        if subresource:
            entry["subresource"] = subresource
        new["metadata"]["managedFields"] = [*entries, entry]

    async def _update(self, ctx: Ctx, rt: ResourceType, subresource: str = "") -> web.Response:
        info = ctx.info
        assert info is not None
        body = await self._read_body(ctx)
        ctx.request_object = body
        obj = self._check_type(rt, body)
        self._field_validation(ctx, obj)
        self._check_namespace(ctx, rt, obj)
        self._name_check(ctx, obj)
        old = self._get_stored(rt, info.namespace, info.name)
        expected = obj["metadata"].get("resourceVersion")
        if expected and expected != old["metadata"].get("resourceVersion"):
            raise errors.conflict(rt, info.name)
        new = self._merge_status_scope(rt, old, obj, subresource)
        for key in ("managedFields", "selfLink"):
            new["metadata"].pop(key, None)
        self._admit(ctx, rt, new, old, subresource)
        stored = self._store_update(ctx, rt, new, expected)
        return self._object_response(ctx, rt, stored)

    async def _patch(self, ctx: Ctx, rt: ResourceType, subresource: str = "") -> web.Response:
        info = ctx.info
        assert info is not None
        ctype = ctx.request.content_type
        if ctype not in PATCH_TYPES:
            raise ApiError(
                errors.status(
                    415,
                    "UnsupportedMediaType",
                    "the body of the request was in an unknown format - accepted media types "
                    f"include: {', '.join(sorted(PATCH_TYPES - {'application/apply-patch+cbor'}))}",
                    {},
                )
            )
        if ctype == "application/apply-patch+cbor":
            raise errors.unsupported_media_type(ctype)
        body = await self._read_body(ctx)
        ctx.request_object = body if isinstance(body, dict) else None
        if body is None:
            raise errors.bad_request("the body of the request was empty")
        old = self.store.peek(
            rt.api_version, rt.kind, info.namespace if rt.namespaced else None, info.name
        )
        if ctype == "application/apply-patch+yaml":
            if not ctx.query.get("fieldManager"):
                raise ApiError(
                    errors.status(
                        422,
                        "Invalid",
                        'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: '
                        "is required for apply patch",
                        {
                            "group": "meta.k8s.io",
                            "kind": "PatchOptions",
                            "causes": [
                                {
                                    "reason": "FieldValueRequired",
                                    "message": "Required value: is required for apply patch",
                                    "field": "fieldManager",
                                }
                            ],
                        },
                    )
                )
            if old is None:
                if subresource:
                    raise errors.not_found(rt, info.name)
                obj = self._check_type(rt, body)
                obj["metadata"].setdefault("name", info.name)
                self._name_check(ctx, obj)
                return await self._create(ctx, rt, body=obj)
        if old is None:
            raise errors.not_found(rt, info.name)
        if isinstance(body, dict) and ctype == "application/apply-patch+yaml":
            body = self._check_type(rt, dict(body))
        patched = self._check_type(rt, apply_patch(ctype, old, body))
        self._field_validation(ctx, patched)
        meta = patched["metadata"]
        if meta.get("name") != info.name:
            raise errors.bad_request(
                f"the name of the object ({meta.get('name')}) does not match the name on the "
                f"URL ({info.name})"
            )
        if rt.namespaced and meta.get("namespace") != info.namespace:
            raise errors.bad_request(NAMESPACE_MISMATCH)
        expected = meta.get("resourceVersion")
        if expected == old["metadata"].get("resourceVersion"):
            expected = None
        elif expected:
            raise errors.conflict(rt, info.name)
        new = self._merge_status_scope(rt, old, patched, subresource)
        new["metadata"].pop("managedFields", None)
        self._admit(ctx, rt, new, old, subresource)
        stored = self._store_update(ctx, rt, new, old["metadata"].get("resourceVersion"))
        return self._object_response(ctx, rt, stored)

    async def _delete_options(self, ctx: Ctx) -> dict:
        body = await self._read_body(ctx)
        return body if isinstance(body, dict) else {}

    def _delete_dry_run(self, ctx: Ctx, options: dict) -> bool:
        """As the API server: a delete's options come from its body when it sent one,
        and the query (its dryRun too) is then ignored."""
        if ctx.request_body is None:
            return self._dry_run(ctx)
        values = options.get("dryRun") or []
        for value in values:
            if value != "All":
                raise errors.bad_request(
                    f'dryRun: Unsupported value: "{value}": supported values: "All"'
                )
        return bool(values)

    async def _delete(self, ctx: Ctx, rt: ResourceType) -> web.Response:
        info = ctx.info
        assert info is not None
        options = await self._delete_options(ctx)
        ctx.request_object = options or None
        old = self._get_stored(rt, info.namespace, info.name)
        pre = options.get("preconditions") or {}
        if pre.get("uid") and pre["uid"] != old["metadata"].get("uid"):
            raise ApiError(
                errors.status(
                    409,
                    "Conflict",
                    f'Operation cannot be fulfilled on {rt.group_resource} "{info.name}": '
                    f"Precondition failed: UID in precondition: {pre['uid']}, "
                    f"UID in object meta: {old['metadata'].get('uid')}",
                    {
                        "name": info.name,
                        **({"group": rt.group} if rt.group else {}),
                        "kind": rt.resource,
                    },
                )
            )
        if pre.get("resourceVersion") and pre["resourceVersion"] != old["metadata"].get(
            "resourceVersion"
        ):
            raise errors.conflict(rt, info.name)
        dry_run = self._delete_dry_run(ctx, options)
        gone = deep_copy(old)
        if not dry_run:
            namespace = info.namespace if rt.namespaced else None
            if rt.kind == "Namespace" and rt.group == "":
                # Terminating: the namespace controller empties it, then removes it.
                marked = namespace_deletion.begin(self.store, info.name, self.clock.now())
                if marked is None:
                    raise errors.not_found(rt, info.name)
                return self._object_response(ctx, rt, marked)
            else:
                removed, done = deletion.delete(
                    self.store, rt.api_version, rt.kind, namespace, info.name, options
                )
                if removed is not None and not done:
                    return self._object_response(ctx, rt, removed)
            if removed is None:
                raise errors.not_found(rt, info.name)
            gone = removed
        if rt.kind in ("Pod", "Namespace") and rt.group == "":
            # Graceful deletion: the API answers with the object marked for deletion.
            gone["metadata"]["deletionTimestamp"] = rfc3339(self.clock.now())
            if rt.kind == "Pod":
                grace = options.get("gracePeriodSeconds")
                if grace is None:
                    grace = (gone.get("spec") or {}).get("terminationGracePeriodSeconds", 30)
                gone["metadata"]["deletionGracePeriodSeconds"] = grace
            else:
                gone["status"] = {"phase": "Terminating"}
            return self._object_response(ctx, rt, gone)
        details = {"name": info.name}
        if rt.group:
            details["group"] = rt.group
        details["kind"] = rt.resource
        details["uid"] = old["metadata"].get("uid", "")
        body = errors.success(details)
        ctx.response_object = body
        return self._json(ctx, body)

    async def _delete_collection(self, ctx: Ctx, rt: ResourceType) -> web.Response:
        info = ctx.info
        assert info is not None
        options = await self._delete_options(ctx)
        match = self._filters(ctx, rt)
        namespace = info.namespace if rt.namespaced and info.namespace else None
        objs, _ = self.store.snapshot(rt.api_version, rt.kind, namespace)
        targets = [o for o in objs if match is None or match(o)]
        deleted = []
        dry_run = self._delete_dry_run(ctx, options)
        for obj in targets:
            meta = obj["metadata"]
            if dry_run:
                deleted.append(deep_copy(obj))
                continue
            gone, _ = deletion.delete(
                self.store, rt.api_version, rt.kind, meta.get("namespace"), meta["name"], options
            )
            if gone is not None:
                deleted.append(gone)
        items = [{k: v for k, v in o.items() if k not in ("apiVersion", "kind")} for o in deleted]
        body = {
            "kind": rt.list_kind,
            "apiVersion": rt.api_version,
            "metadata": {"resourceVersion": str(self.store.resource_version)},
            "items": items,
        }
        return self._json(ctx, body)


def apply_patch(ctype: str, old: dict, body: Any) -> dict:
    """`old` patched by `body` in the format `ctype` names (errors as the API words them)."""
    try:
        if ctype == "application/json-patch+json":
            patched = patch.json_patch(old, body)
        elif ctype == "application/merge-patch+json":
            patched = patch.merge_patch(old, body)
        else:
            patched = patch.strategic_merge_patch(old, body)
    except patch.PatchError as exc:
        if exc.code == 400:
            raise errors.bad_request(str(exc)) from None
        if exc.code == 500:
            raise errors.internal_error(str(exc)) from None
        raise ApiError(errors.status(exc.code, "Invalid", str(exc))) from None
    if not isinstance(patched, dict):
        raise errors.bad_request("the patched object is not a JSON object")
    return patched
