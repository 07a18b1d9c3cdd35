"""The apiextensions controllers' part: a CustomResourceDefinition makes its resource
served (discovery, list/watch, CRUD), its status says the names were accepted and it is
Established; deleting it removes the resource and its objects."""

from __future__ import annotations

import asyncio
from typing import Any

from ktriage.sim.resources import STATUS_VERBS, ResourceType, Subresource
from ktriage.sim.resources_more import CUSTOM
from ktriage.sim.timefmt import rfc3339

CRD_VERSION = "apiextensions.k8s.io/v1"


def resource_types(crd: dict) -> list[ResourceType]:
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    group, plural, kind = spec.get("group"), names.get("plural"), names.get("kind")
    if not (isinstance(group, str) and isinstance(plural, str) and isinstance(kind, str)):
        return []
    out = []
    for version in spec.get("versions") or []:
        if not isinstance(version, dict) or not version.get("served") or not version.get("name"):
            continue
        subs: tuple[Subresource, ...] = ()
        if "status" in (version.get("subresources") or {}):
            subs = (Subresource("status", kind, STATUS_VERBS),)
        out.append(
            ResourceType(
                group,
                str(version["name"]),
                plural,
                kind,
                spec.get("scope") == "Namespaced",
                short_names=tuple(str(s) for s in names.get("shortNames") or ()),
                categories=tuple(str(c) for c in names.get("categories") or ()),
                subresources=subs,
                generation=True,
            )
        )
    return out


def serve(crd: dict) -> None:
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    CUSTOM.remove(str(spec.get("group")), str(names.get("plural")))
    for rt in resource_types(crd):
        CUSTOM.add(rt)


def status_for(crd: dict, now: float) -> dict:
    spec = crd.get("spec") or {}
    names = dict(spec.get("names") or {})
    names.setdefault("singular", str(names.get("kind", "")).lower())
    names.setdefault("listKind", f"{names.get('kind', '')}List")
    stamp = rfc3339(now)
    storage = [v.get("name") for v in spec.get("versions") or [] if isinstance(v, dict)]
    stored = [v.get("name") for v in spec.get("versions") or [] if v.get("storage")] or storage[:1]
    return {
        "acceptedNames": names,
        "conditions": [
            {
                "type": "NamesAccepted",
                "status": "True",
                "lastTransitionTime": stamp,
                "reason": "NoConflicts",
                "message": "no conflicts found",
            },
            {
                "type": "Established",
                "status": "True",
                "lastTransitionTime": stamp,
                "reason": "InitialNamesAccepted",
                "message": "the initial names have been accepted",
            },
        ],
        "storedVersions": stored,
    }


async def run(store: Any, clock: Any) -> None:
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[Any] = asyncio.Queue()

    def changed(change: Any) -> None:
        # Served at once (no store access here: the store's lock is held).
        if change.type == "DELETED":
            spec = change.obj.get("spec") or {}
            CUSTOM.remove(str(spec.get("group")), str((spec.get("names") or {}).get("plural")))
        else:
            serve(change.obj)
        try:
            loop.call_soon_threadsafe(queue.put_nowait, change)
        except RuntimeError:  # the loop is closing
            pass

    _, stop = store.watch(CRD_VERSION, "CustomResourceDefinition", None, changed)
    try:
        while True:
            change = await queue.get()
            meta = change.obj["metadata"]
            if change.type == "DELETED":
                for rt in resource_types(change.obj):
                    for obj in store.list_objs(rt.api_version, rt.kind):
                        m = obj["metadata"]
                        store.delete(rt.api_version, rt.kind, m.get("namespace"), m["name"])
                continue
            current = store.get_obj(CRD_VERSION, "CustomResourceDefinition", None, meta["name"])
            if current is None:
                continue
            wanted = status_for(current, clock.now())
            old = current.get("status") or {}
            if old.get("acceptedNames") == wanted["acceptedNames"] and old.get("conditions"):
                continue

            def put(obj: dict, status: dict = wanted) -> None:
                obj["status"] = status

            try:
                store.mutate(CRD_VERSION, "CustomResourceDefinition", None, meta["name"], put)
            except KeyError:
                continue
    finally:
        stop()
