"""Discovery documents: /version, /api, /apis, the group versions, and the
aggregated discovery (`apidiscovery.k8s.io/v2`) that kubectl asks for first."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

from ktriage.sim.resources import ResourceType, group_versions, resources_of, served_groups
from ktriage.sim.version import KUBE_VERSION

VERSION_INFO = {
    "major": "1",
    "minor": "37",
    "emulationMajor": "1",
    "emulationMinor": "37",
    "minCompatibilityMajor": "1",
    "minCompatibilityMinor": "36",
    "gitVersion": KUBE_VERSION,
    "gitCommit": "4f2d7a1e9c3b5a8d6e0f1c2b3a4d5e6f7a8b9c0d",
    "gitTreeState": "clean",
    "buildDate": "2026-03-18T12:00:00Z",
    "goVersion": "go1.25.7",
    "compiler": "gc",
    "platform": "linux/amd64",
}
AGGREGATED_TYPE = "application/json;g=apidiscovery.k8s.io;v={version};as=APIGroupDiscoveryList"


def _storage_hash(rt: ResourceType) -> str:
    digest = hashlib.sha256(f"{rt.group}/{rt.version}/{rt.kind}".encode()).digest()
    return base64.b64encode(digest[:8]).decode()


def api_versions(server_address: str) -> dict[str, Any]:
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [
            {"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}
        ],
    }


def _group(name: str) -> dict[str, Any]:
    versions = [{"groupVersion": f"{name}/{v}", "version": v} for v in group_versions(name)]
    return {"name": name, "versions": versions, "preferredVersion": versions[0]}


def api_group_list() -> dict[str, Any]:
    return {
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": [_group(g) for g in served_groups() if g],
    }


def api_group(name: str) -> dict[str, Any] | None:
    if name not in served_groups() or not name:
        return None
    return {"kind": "APIGroup", "apiVersion": "v1", **_group(name)}


def _names_and_categories(rt: ResourceType) -> dict[str, list[str]]:
    """A resource's short names and categories, each only when it has some (both
    discovery formats leave an empty list out)."""
    out: dict[str, list[str]] = {}
    if rt.short_names:
        out["shortNames"] = list(rt.short_names)
    if rt.categories:
        out["categories"] = list(rt.categories)
    return out


def api_resource_list(group: str, version: str) -> dict[str, Any] | None:
    rts = resources_of(group, version)
    if not rts:
        return None
    resources: list[dict[str, Any]] = []
    for rt in rts:
        entry: dict[str, Any] = {
            "name": rt.resource,
            "singularName": rt.singular,
            "namespaced": rt.namespaced,
            "kind": rt.kind,
            "verbs": list(rt.verbs),
        }
        entry.update(_names_and_categories(rt))
        if rt.stored:
            entry["storageVersionHash"] = _storage_hash(rt)
        resources.append(entry)
        for sub in rt.subresources:
            sub_entry: dict[str, Any] = {
                "name": f"{rt.resource}/{sub.name}",
                "singularName": "",
                "namespaced": rt.namespaced,
            }
            if sub.group is not None:
                sub_entry["group"] = sub.group
                sub_entry["version"] = sub.version
            sub_entry["kind"] = sub.kind
            sub_entry["verbs"] = list(sub.verbs)
            resources.append(sub_entry)
    resources.sort(key=lambda r: r["name"])
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": f"{group}/{version}" if group else version,
        "resources": resources,
    }


def _aggregated_resource(rt: ResourceType) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "resource": rt.resource,
        "responseKind": {"group": rt.group, "version": rt.version, "kind": rt.kind},
        "scope": "Namespaced" if rt.namespaced else "Cluster",
        "singularResource": rt.singular,
        "verbs": list(rt.verbs),
    }
    entry.update(_names_and_categories(rt))
    if rt.subresources:
        entry["subresources"] = [
            {
                "subresource": sub.name,
                "responseKind": {
                    "group": rt.group if sub.group is None else sub.group,
                    "version": rt.version if sub.version is None else sub.version,
                    "kind": sub.kind,
                },
                "verbs": list(sub.verbs),
            }
            for sub in rt.subresources
        ]
    return entry


def aggregated(core: bool, version: str = "v2") -> dict[str, Any]:
    """The APIGroupDiscoveryList for /api (core) or /apis (the named groups)."""
    items = []
    for group in served_groups():
        if bool(group) == core:
            continue
        meta: dict[str, Any] = {"creationTimestamp": None}
        if group:
            meta = {"name": group, "creationTimestamp": None}
        versions = [
            {
                "version": v,
                "resources": [
                    _aggregated_resource(rt)
                    for rt in sorted(resources_of(group, v), key=lambda r: r.resource)
                ],
                "freshness": "Current",
            }
            for v in group_versions(group)
        ]
        items.append({"metadata": meta, "versions": versions})
    return {
        "kind": "APIGroupDiscoveryList",
        "apiVersion": f"apidiscovery.k8s.io/{version}",
        "metadata": {},
        "items": items,
    }


def wants_aggregated(accept: str) -> str | None:
    """The aggregated discovery version the Accept header asks for first (JSON only)."""
    for part in accept.split(","):
        params = [p.strip() for p in part.split(";")]
        if params[0] not in ("application/json", "*/*"):
            continue
        opts = dict(p.split("=", 1) for p in params[1:] if "=" in p)
        if opts.get("g") == "apidiscovery.k8s.io" and opts.get("as") == "APIGroupDiscoveryList":
            if opts.get("v") in ("v2", "v2beta1"):
                return opts["v"]
        elif not opts:
            return None
    return None
