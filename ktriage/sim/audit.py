"""Audit events as kube-apiserver's log backend writes them (`audit.k8s.io/v1`, one JSON
object per line, fields in the Go struct's order)."""

from __future__ import annotations

import uuid
from typing import Any

from ktriage.sim.clock import SimClock
from ktriage.sim.outputs import SimOutputs
from ktriage.sim.timefmt import rfc3339_micro

LEVELS = ("None", "Metadata", "Request", "RequestResponse")
_REF_ORDER = (
    "resource",
    "namespace",
    "name",
    "uid",
    "apiGroup",
    "apiVersion",
    "resourceVersion",
    "subresource",
)
# Never logged above Metadata: their bodies carry credentials.
_METADATA_ONLY = frozenset({"secrets", "tokenreviews", "token"})


def object_ref(
    resource: str,
    namespace: str | None,
    name: str | None,
    group: str = "",
    version: str = "v1",
    subresource: str | None = None,
) -> dict[str, Any]:
    """An event's objectRef; empty namespace, name, group and subresource are left out."""
    ref: dict[str, Any] = {"resource": resource}
    if namespace:
        ref["namespace"] = namespace
    if name:
        ref["name"] = name
    if group:
        ref["apiGroup"] = group
    ref["apiVersion"] = version
    if subresource:
        ref["subresource"] = subresource
    return ref


def _user(
    username: str,
    groups: list[str] | None,
    uid: str | None = None,
    extra: dict[str, list[str]] | None = None,
) -> dict[str, Any]:
    user: dict[str, Any] = {}
    if username:
        user["username"] = username
    if uid:
        user["uid"] = uid
    if groups:
        user["groups"] = list(groups)
    if extra:
        user["extra"] = {k: list(v) for k, v in extra.items()}
    return user


class AuditWriter:
    """Writes audit events to `outputs.audit` (the cluster's audit.log)."""

    def __init__(self, outputs: SimOutputs, clock: SimClock) -> None:
        self.outputs = outputs
        self.clock = clock

    def emit(
        self,
        *,
        user: str,
        groups: list[str],
        verb: str,
        uri: str,
        object_ref: dict | None,
        code: int,
        source_ips: list[str],
        user_agent: str = "",
        level: str = "Metadata",
        request_object: dict | None = None,
        response_object: dict | None = None,
        annotations: dict | None = None,
        time: float | None = None,
        stage: str = "ResponseComplete",
        impersonated_user: dict | None = None,
        response_status: dict | None = None,
        stage_time: float | None = None,
        audit_id: str | None = None,
        user_uid: str | None = None,
        user_extra: dict[str, list[str]] | None = None,
    ) -> dict:
        """Write one event line and return it.

        `response_status` is the metav1.Status of a failed request (its message and
        reason are logged as the real server does); by default only the code is.
        `annotations` default to the authorization decision implied by `code`.
        """
        if level not in LEVELS:
            raise ValueError(f"audit level must be one of {LEVELS}")
        received = self.clock.now() if time is None else time
        if stage_time is None:
            stage_time = received + 0.0015 if time is not None else self.clock.now()
        ref = None
        if object_ref:
            ref = {k: object_ref[k] for k in _REF_ORDER if object_ref.get(k)}
            if ref.get("resource") in _METADATA_ONLY or ref.get("subresource") in _METADATA_ONLY:
                if level in ("Request", "RequestResponse"):
                    level = "Metadata"
        event: dict[str, Any] = {
            "kind": "Event",
            "apiVersion": "audit.k8s.io/v1",
            "level": level,
            "auditID": audit_id or str(uuid.uuid4()),
            "stage": stage,
            "requestURI": uri,
            "verb": verb,
            "user": _user(user, groups, user_uid, user_extra),
        }
        if impersonated_user:
            event["impersonatedUser"] = impersonated_user
        event["sourceIPs"] = list(source_ips)
        if user_agent:
            event["userAgent"] = user_agent
        if ref:
            event["objectRef"] = ref
        if stage != "ResponseStarted" or code:
            status = {"metadata": {}, "code": code}
            if response_status:
                status = {"metadata": {}}
                for key in ("status", "message", "reason", "details"):
                    if response_status.get(key):
                        status[key] = response_status[key]
                status["code"] = code
            event["responseStatus"] = status
        if level in ("Request", "RequestResponse") and request_object is not None:
            event["requestObject"] = request_object
        if level == "RequestResponse" and response_object is not None:
            event["responseObject"] = response_object
        event["requestReceivedTimestamp"] = rfc3339_micro(received)
        event["stageTimestamp"] = rfc3339_micro(max(stage_time, received))
        if annotations is None:
            if code == 401:
                annotations = {}
            else:
                annotations = {
                    "authorization.k8s.io/decision": "forbid" if code == 403 else "allow",
                    "authorization.k8s.io/reason": "",
                }
        if annotations:
            event["annotations"] = annotations
        self.outputs.audit.write(event)
        return event
