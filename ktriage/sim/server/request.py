"""What the server knows of one request: its attributes (kube-apiserver's RequestInfo),
its context on the way through the pipeline, and the content types it accepts."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

import orjson
from aiohttp import web

from ktriage.sim.auth.authentication import Identity
from ktriage.sim.auth.authorization import Attributes, Decision
from ktriage.sim.resources import ResourceType, lookup
from ktriage.sim.server import protobuf

JSON = "application/json"


def dumps(obj: Any) -> bytes:
    return orjson.dumps(obj)


def truthy(value: str | None) -> bool:
    return value is not None and value.lower() in ("1", "true", "yes", "")


@dataclass
class RequestInfo:
    resource_request: bool
    verb: str
    path: str
    group: str = ""
    version: str = ""
    resource: str = ""
    subresource: str = ""
    namespace: str = ""
    name: str = ""
    rt: ResourceType | None = None

    def attributes(self) -> Attributes:
        return Attributes(
            verb=self.verb,
            resource_request=self.resource_request,
            path=self.path,
            api_group=self.group,
            api_version=self.version,
            resource=self.resource,
            subresource=self.subresource,
            namespace=self.namespace,
            name=self.name,
        )


def parse_request_info(method: str, path: str, query: dict[str, str]) -> RequestInfo:
    """Verb and resource attributes of a request, as kube-apiserver's RequestInfoFactory."""
    segs = [unquote(s) for s in path.strip("/").split("/") if s]
    non_resource = RequestInfo(False, method.lower(), path)
    if not segs or segs[0] not in ("api", "apis"):
        return non_resource
    if segs[0] == "api":
        if len(segs) < 3:
            return non_resource
        group, version, rest = "", segs[1], segs[2:]
    else:
        if len(segs) < 4:
            return non_resource
        group, version, rest = segs[1], segs[2], segs[3:]
    info = RequestInfo(True, "", path, group=group, version=version)
    if rest[0] == "namespaces" and len(rest) > 1:
        info.namespace = rest[1]
        if len(rest) > 2 and rest[2] not in ("status", "finalize"):
            rest = rest[2:]
    info.resource = rest[0]
    if len(rest) > 1:
        info.name = rest[1]
    if len(rest) > 2:
        info.subresource = rest[2]
    info.rt = lookup(group, version, info.resource)
    watch = truthy(query.get("watch")) if "watch" in query else False
    if method in ("GET", "HEAD"):
        info.verb = "watch" if watch else ("get" if info.name else "list")
    elif method == "POST":
        info.verb = "create"
    elif method == "PUT":
        info.verb = "update"
    elif method == "PATCH":
        info.verb = "patch"
    elif method == "DELETE":
        info.verb = "delete" if info.name else "deletecollection"
    else:
        info.verb = ""
    if info.verb in ("list", "watch") and not info.name:
        # A list narrowed to one name by fieldSelector authorizes as that name.
        for part in (query.get("fieldSelector") or "").split(","):
            if part.startswith("metadata.name="):
                info.name = part.split("=", 1)[1]
    return info


@dataclass
class Ctx:
    """One request on its way through the server (what the audit event needs)."""

    request: web.Request
    received: float
    ident: Identity | None = None
    impersonator: Identity | None = None  # who authenticated, when acting as `ident`
    info: RequestInfo | None = None
    decision: Decision | None = None
    code: int = 200
    response_status: dict | None = None
    request_object: Any = None
    response_object: Any = None
    object_ref: dict | None = None
    audited: bool = False  # its last audit stage is written
    audit_started: bool = False  # `ResponseStarted` is written (a long-running request)
    audit_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    request_body: Any = None  # the body as the client sent it (parsed, never changed)
    warnings: list[str] = field(default_factory=list)
    audit_annotations: dict[str, str] = field(default_factory=dict)  # set by admission

    @property
    def query(self) -> Any:
        return self.request.query


def accept_table(accept: str) -> str | None:
    for part in accept.split(","):
        params = [p.strip() for p in part.split(";")]
        opts = dict(p.split("=", 1) for p in params[1:] if "=" in p)
        if opts.get("as") == "Table" and opts.get("g") == "meta.k8s.io":
            if opts.get("v") in ("v1", "v1beta1"):
                return opts["v"]
    return None


def accept_partial(accept: str) -> bool:
    return "as=PartialObjectMetadata" in accept


def accept_protobuf(accept: str) -> bool:
    first = accept.split(",")[0].split(";")[0].strip()
    return first == protobuf.CONTENT_TYPE


def escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')
