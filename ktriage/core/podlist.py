"""Decoding a page of a pod list lean: only what ktriage reads of a pod.

A listed pod is ~4-5 KB of JSON, half of it managed fields, environment, probes,
resources and projected volumes that nothing here reads. Decoded with typed
structs that name only the fields `cluster.pod_info`, the pod detections
(`podstate.pod_raw`) and the address learning read, a page decodes in about half
the time into dicts half the size; those dicts are what `ClusterState` takes,
with the same values as a full decode for every field it reads.

Untrusted input: a page whose shape the structs refuse (a `metadata` that is not
an object, containers that are not a list...) is decoded again in full by the
tolerant path, which skips what is not an object; bad JSON, and nesting too deep
to decode, raise ValueError as `orjson.loads` does (the list is tried again).
"""

from __future__ import annotations

from typing import Any

import msgspec
import orjson


class _Struct(msgspec.Struct, omit_defaults=True, gc=False):
    pass


class _ManagedFields(_Struct):
    time: Any = None  # the newest time an object records (cluster.latest_time)


class _Meta(_Struct):
    name: Any = None
    namespace: Any = None
    uid: Any = None
    resourceVersion: Any = None
    creationTimestamp: Any = None
    deletionTimestamp: Any = None
    labels: Any = None
    ownerReferences: Any = None
    managedFields: list[_ManagedFields] | None = None


class _Container(_Struct):
    name: Any = None
    image: Any = None
    command: Any = None
    args: Any = None
    securityContext: Any = None
    volumeMounts: Any = None


class _Volume(_Struct):
    name: Any = None
    hostPath: Any = None


class _Spec(_Struct):
    nodeName: Any = None
    serviceAccountName: Any = None
    serviceAccount: Any = None
    hostNetwork: Any = None
    hostPID: Any = None
    hostIPC: Any = None
    initContainers: list[_Container] | None = None
    containers: list[_Container] | None = None
    ephemeralContainers: list[_Container] | None = None
    volumes: list[_Volume] | None = None


class _Pod(_Struct):
    metadata: _Meta | None = None
    spec: _Spec | None = None
    status: Any = None  # whole: conditions, container states, addresses


class _ListMeta(_Struct):
    resourceVersion: Any = None
    continue_: Any = msgspec.field(default=None, name="continue")


class _PodList(_Struct):
    metadata: _ListMeta | None = None
    items: list[_Pod] | None = None


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
    meta = page.metadata or _ListMeta()
    items = msgspec.to_builtins(page.items or [])
    return items, meta.resourceVersion, meta.continue_


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
