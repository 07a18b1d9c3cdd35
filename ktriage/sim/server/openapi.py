"""OpenAPI v3 documents, enough for kubectl.

`kubectl apply` (default validation) reads `/openapi/v3` and the group version's
document to learn that PATCH takes `fieldValidation` (then the server validates),
and, when an object already exists, the kind's schema to compute a strategic merge
patch. The schemas come from the official client's models (field names and types)
with the list merge keys of the Kubernetes API; there are no descriptions.
"""

from __future__ import annotations

import functools
import hashlib
import re
from typing import Any

import orjson
from kubernetes.client import models

from ktriage.sim.resources import (
    GROUP_ORDER,
    ResourceType,
    group_versions,
    resources_of,
    served_groups,
)
from ktriage.sim.server.schema import model_name
from ktriage.sim.storage.patch import MERGE_KEYS, MERGED_SCALAR_LISTS
from ktriage.sim.version import KUBE_VERSION

_LIST_RE = re.compile(r"^List\[(.+)\]$")
_DICT_RE = re.compile(r"^Dict\[str, (.+)\]$")
_SCALAR = {
    "str": {"type": "string"},
    "int": {"type": "integer", "format": "int64"},
    "float": {"type": "number", "format": "double"},
    "bool": {"type": "boolean"},
    "datetime": {"type": "string", "format": "date-time"},
    "date": {"type": "string", "format": "date"},
    "bytearray": {"type": "string", "format": "byte"},
    "object": {"x-kubernetes-int-or-string": True},
}
# Fields that hold arbitrary JSON (RawExtension) rather than int-or-string.
_FREEFORM = {"object"}


def _gv_path(group: str, version: str) -> str:
    return f"api/{version}" if not group else f"apis/{group}/{version}"


def _type_schema(typ: str, field: str, schemas: dict[str, Any]) -> dict[str, Any]:
    if typ in _SCALAR:
        return dict(_SCALAR[typ])
    m = _LIST_RE.match(typ)
    if m:
        out: dict[str, Any] = {"type": "array", "items": _type_schema(m.group(1), field, schemas)}
        if field == "ports" and m.group(1) in ("V1ContainerPort",):
            out["x-kubernetes-patch-merge-key"] = "containerPort"
            out["x-kubernetes-patch-strategy"] = "merge"
        elif field == "ports" and m.group(1) == "V1ServicePort":
            out["x-kubernetes-patch-merge-key"] = "port"
            out["x-kubernetes-patch-strategy"] = "merge"
        elif field in MERGE_KEYS and m.group(1) not in _SCALAR:
            out["x-kubernetes-patch-merge-key"] = MERGE_KEYS[field]
            out["x-kubernetes-patch-strategy"] = "merge"
        elif field in MERGED_SCALAR_LISTS:
            out["x-kubernetes-patch-strategy"] = "merge"
        return out
    m = _DICT_RE.match(typ)
    if m:
        return {"type": "object", "additionalProperties": _type_schema(m.group(1), "", schemas)}
    _model_schema(typ, schemas)
    return {"allOf": [{"$ref": f"#/components/schemas/{typ}"}]}


def _model_schema(name: str, schemas: dict[str, Any]) -> None:
    if name in schemas:
        return
    cls = getattr(models, name, None)
    if cls is None or not hasattr(cls, "openapi_types"):
        schemas[name] = {"type": "object"}
        return
    schemas[name] = {}  # placeholder: recursive types
    props = {}
    for attr, typ in cls.openapi_types.items():
        field = cls.attribute_map[attr]
        props[field] = _type_schema(typ, field, schemas)
    schemas[name] = {"type": "object", "properties": props}


_PARAMS = {
    name: {"name": name, "in": "query", "schema": {"type": "string", "uniqueItems": True}}
    for name in (
        "dryRun",
        "fieldManager",
        "fieldValidation",
        "force",
        "pretty",
        "labelSelector",
        "fieldSelector",
        "resourceVersion",
        "limit",
        "continue",
        "watch",
        "timeoutSeconds",
        "gracePeriodSeconds",
        "propagationPolicy",
    )
}


def _op(rt: ResourceType, action: str, params: tuple[str, ...]) -> dict[str, Any]:
    return {
        "operationId": f"{action}{rt.kind}",
        "parameters": [_PARAMS[p] for p in params],
        "responses": {
            "200": {
                "content": {
                    "application/json": {
                        "schema": {
                            "$ref": f"#/components/schemas/{model_name(rt.api_version, rt.kind)}"
                        }
                    }
                }
            }
        },
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": {
            "group": rt.group,
            "version": rt.version,
            "kind": rt.kind,
        },
    }


def _paths(rt: ResourceType) -> dict[str, Any]:
    base = "/" + _gv_path(rt.group, rt.version)
    collection = (
        f"{base}/namespaces/{{namespace}}/{rt.resource}"
        if rt.namespaced
        else f"{base}/{rt.resource}"
    )
    write = ("dryRun", "fieldManager", "fieldValidation", "pretty")
    out: dict[str, Any] = {}
    coll: dict[str, Any] = {}
    if "list" in rt.verbs:
        list_params = ("labelSelector", "fieldSelector", "limit", "continue")
        coll["get"] = _op(rt, "list", (*list_params, "resourceVersion", "watch", "timeoutSeconds"))
    if "create" in rt.verbs:
        coll["post"] = _op(rt, "post", write)
    out[collection] = coll
    if "get" in rt.verbs:
        out[collection + "/{name}"] = {
            "get": _op(rt, "get", ("pretty",)),
            "put": _op(rt, "put", write),
            "patch": _op(rt, "patch", (*write, "force")),
            "delete": _op(rt, "delete", ("dryRun", "gracePeriodSeconds", "propagationPolicy")),
        }
    return out


def _gv_document(group: str, version: str) -> bytes:
    if group in GROUP_ORDER:
        return _static_gv_document(group, version)
    return _build_gv_document(group, version)  # custom resources change: not cached


@functools.cache
def _static_gv_document(group: str, version: str) -> bytes:
    return _build_gv_document(group, version)


def _build_gv_document(group: str, version: str) -> bytes:
    schemas: dict[str, Any] = {}
    paths: dict[str, Any] = {}
    for rt in resources_of(group, version):
        paths.update(_paths(rt))
        name = model_name(rt.api_version, rt.kind)
        _model_schema(name, schemas)
        schemas[name] = dict(
            schemas[name],
            **{
                "x-kubernetes-group-version-kind": [
                    {"group": rt.group, "kind": rt.kind, "version": rt.version}
                ]
            },
        )
    doc = {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": KUBE_VERSION},
        "paths": paths,
        "components": {"schemas": schemas},
    }
    return orjson.dumps(doc)


def _hash(data: bytes) -> str:
    return hashlib.sha512(data).hexdigest().upper()


def index() -> dict[str, Any]:
    paths = {}
    for group in served_groups():
        for version in group_versions(group):
            path = _gv_path(group, version)
            digest = _hash(_gv_document(group, version))
            paths[path] = {"serverRelativeURL": f"/openapi/v3/{path}?hash={digest}"}
    return {"paths": paths}


def document(path: str) -> bytes | None:
    """The JSON body for an /openapi path, or None (404)."""
    path = path.rstrip("/")
    if path == "/openapi/v3":
        return orjson.dumps(index())
    prefix = "/openapi/v3/"
    if not path.startswith(prefix):
        return None
    rest = path[len(prefix) :].split("/")
    if rest[0] == "api" and len(rest) == 2:
        group, version = "", rest[1]
    elif rest[0] == "apis" and len(rest) == 3:
        group, version = rest[1], rest[2]
    else:
        return None
    if version not in group_versions(group):
        return None
    return _gv_document(group, version)
