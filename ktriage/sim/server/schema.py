"""Which fields an object may carry, from the official client's generated models.

The `kubernetes` package ships one model class per API type with `openapi_types`
and `attribute_map`: exactly the schema kube-apiserver decodes into. That is
enough to find unknown fields (for `fieldValidation`) and to prune them, as the
real server drops whatever its Go structs do not know.
"""

from __future__ import annotations

import functools
import re
from typing import Any

from kubernetes.client import models

_SPECIAL = {
    ("v1", "Event"): "CoreV1Event",
    ("events.k8s.io/v1", "Event"): "EventsV1Event",
}
_LIST_RE = re.compile(r"^List\[(.+)\]$")
_DICT_RE = re.compile(r"^Dict\[str, (.+)\]$")
_SCALARS = frozenset({"str", "int", "float", "bool", "datetime", "date", "bytearray"})


def model_name(api_version: str, kind: str) -> str:
    special = _SPECIAL.get((api_version, kind))
    if special:
        return special
    version = api_version.rsplit("/", 1)[-1]
    return version[0].upper() + version[1:] + kind


@functools.cache
def _fields(model: str) -> dict[str, str] | None:
    cls = getattr(models, model, None)
    if cls is None or not hasattr(cls, "openapi_types"):
        return None
    return {cls.attribute_map[attr]: typ for attr, typ in cls.openapi_types.items()}


def _walk(value: Any, typ: str, path: str, unknown: list[str], prune: bool) -> None:
    if typ in _SCALARS or typ == "object" or value is None:
        return
    m = _LIST_RE.match(typ)
    if m:
        if isinstance(value, list):
            for i, item in enumerate(value):
                _walk(item, m.group(1), f"{path}[{i}]", unknown, prune)
        return
    m = _DICT_RE.match(typ)
    if m:
        if isinstance(value, dict):
            for key, item in value.items():
                _walk(item, m.group(1), f"{path}.{key}" if path else key, unknown, prune)
        return
    fields = _fields(typ)
    if fields is None or not isinstance(value, dict):
        return
    for key in list(value):
        sub = f"{path}.{key}" if path else key
        if key not in fields:
            unknown.append(sub)
            if prune:
                del value[key]
            continue
        _walk(value[key], fields[key], sub, unknown, prune)


def unknown_fields(obj: dict, *, prune: bool = False) -> list[str]:
    """Paths of the fields the object's type does not declare (`spec.containers[0].foo`).

    With `prune` they are also removed from `obj`. Kinds without a model pass as is.
    """
    model = model_name(str(obj.get("apiVersion", "")), str(obj.get("kind", "")))
    if _fields(model) is None:
        return []
    unknown: list[str] = []
    _walk(obj, model, "", unknown, prune)
    return unknown
