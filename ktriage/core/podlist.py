"""Decoding a page of a pod list lean: only what ktriage reads of a pod.

A listed pod is ~4-5 KB of JSON, half of it managed fields, environment, probes,
resources and projected volumes that nothing here reads. Decoded with typed
dicts that name only the fields `cluster.pod_info`, the pod detections
(`podstate.pod_raw`) and the address learning read, a page decodes in under half
the time of a full decode into dicts half the size; those dicts are what
`ClusterState` takes, with the same values as a full decode for every field it
reads.

Untrusted input: a page whose shape the typed dicts refuse (a `metadata` that is not
an object, containers that are not a list...) is decoded again in full by the
tolerant path, which skips what is not an object; bad JSON, and nesting too deep
to decode, raise ValueError as `orjson.loads` does (the list is tried again).
"""

from __future__ import annotations

from typing import Any, TypedDict

import msgspec
import orjson

# TypedDicts: msgspec decodes straight into plain dicts and skips the keys they do not
# name (typed structs, converted back with `to_builtins`, took two and a half times as
# long). `total=False`: any key may be missing, as in a full decode.


class _ManagedFields(TypedDict, total=False):
    time: Any  # the newest time an object records (cluster.latest_time)


class _Meta(TypedDict, total=False):
    name: Any
    namespace: Any
    uid: Any
    resourceVersion: Any
    creationTimestamp: Any
    deletionTimestamp: Any
    labels: Any
    ownerReferences: Any
    managedFields: list[_ManagedFields] | None


class _Container(TypedDict, total=False):
    name: Any
    image: Any
    command: Any
    args: Any
    securityContext: Any
    volumeMounts: Any


class _Volume(TypedDict, total=False):
    name: Any
    hostPath: Any


class _Spec(TypedDict, total=False):
    nodeName: Any
    serviceAccountName: Any
    serviceAccount: Any
    hostNetwork: Any
    hostPID: Any
    hostIPC: Any
    initContainers: list[_Container] | None
    containers: list[_Container] | None
    ephemeralContainers: list[_Container] | None
    volumes: list[_Volume] | None


class _Pod(TypedDict, total=False):
    metadata: _Meta | None
    spec: _Spec | None
    status: Any  # whole: conditions, container states, addresses


_ListMeta = TypedDict("_ListMeta", {"resourceVersion": Any, "continue": Any}, total=False)


class _PodList(TypedDict, total=False):
    metadata: _ListMeta | None
    items: list[_Pod] | None


_DECODER = msgspec.json.Decoder(_PodList)


def decode_pod_page(data: bytes) -> tuple[list[dict[str, Any]], Any, Any]:
    """A pod list reply: its pods (as lean dicts), resourceVersion and continue token
    (both as sent: the caller checks their types)."""
    try:
        page = _DECODER.decode(data)
    except msgspec.ValidationError:
        return decode_list_reply(data)
    except msgspec.DecodeError as exc:
        raise ValueError(f"the list reply is not JSON: {exc}") from None
    except RecursionError:  # nesting deeper than any pod: refused, as orjson refuses it
        raise ValueError("the list reply is nested too deeply") from None
    meta = page.get("metadata") or {}
    items: list[dict[str, Any]] = page.get("items") or []  # type: ignore[assignment]
    return items, meta.get("resourceVersion"), meta.get("continue")


def decode_list_reply(data: bytes) -> tuple[list[dict[str, Any]], Any, Any]:
    """Any list reply, fully decoded: its objects, and its resourceVersion and continue
    token as sent."""
    body = orjson.loads(data)
    if not isinstance(body, dict):
        raise ValueError("the list reply is not a JSON object")
    items = body.get("items")
    page = [i for i in items if isinstance(i, dict)] if isinstance(items, list) else []
    meta = body.get("metadata")
    meta = meta if isinstance(meta, dict) else {}
    return page, meta.get("resourceVersion"), meta.get("continue")
