"""Kubernetes Events (core v1 and events.k8s.io/v1), counted again when repeated."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ktriage.sim.scenario.context import StepFailed
from ktriage.sim.scenario.steps.objects import qualified_name
from ktriage.sim.scenario.templates import api_version_of
from ktriage.sim.timefmt import rfc3339, rfc3339_micro

if TYPE_CHECKING:
    from ktriage.sim.scenario.player import ScenarioPlayer


def k8s_event(player: ScenarioPlayer, body: dict[str, Any], t: float) -> None:
    if body.get("pod"):
        ctx = player.pod_context(body["pod"], body.get("container"))
        involved = ctx.pod
        host = body.get("host") or ctx.node
        field_path = body.get("field_path", f"spec.containers{{{ctx.container}}}")
    else:
        kind = body.get("kind")
        if not kind or not body.get("name"):
            raise StepFailed("k8s_event needs pod, or kind and name")
        api_version = api_version_of(kind)
        involved = player.store.get_obj(api_version, kind, body.get("namespace"), body["name"])
        if involved is None:
            raise StepFailed(
                f"{kind} {qualified_name(body.get('namespace'), body['name'])} not found"
            )
        host = body.get("host") or ""
        field_path = body.get("field_path", "")
    record_event(
        player,
        involved,
        t,
        reason=str(body["reason"]),
        message=str(body["message"]),
        event_type=body.get("type", "Normal"),
        component=body.get("component", "kubelet"),
        host=host,
        field_path=field_path,
    )


def record_event(
    player: ScenarioPlayer,
    involved: dict[str, Any],
    t: float,
    *,
    reason: str,
    message: str,
    event_type: str = "Normal",
    component: str = "kubelet",
    host: str = "",
    field_path: str = "",
) -> None:
    """Record (or count again) a core v1 Event, and its events.k8s.io/v1 form."""
    meta = involved["metadata"]
    namespace = meta.get("namespace") or "default"
    key = (meta.get("uid", meta["name"]), reason, message)
    ref = {
        "kind": involved["kind"],
        "namespace": meta.get("namespace"),
        "name": meta["name"],
        "uid": meta.get("uid", ""),
        "apiVersion": involved["apiVersion"],
        "resourceVersion": meta.get("resourceVersion", ""),
    }
    if not ref["namespace"]:
        ref.pop("namespace")
    if field_path:
        ref["fieldPath"] = field_path
    name = player.event_names.get(key)
    existing = player.store.get_obj("v1", "Event", namespace, name) if name else None
    if existing is not None and name is not None:
        count = int(existing.get("count", 1)) + 1

        def bump(ev: dict[str, Any]) -> None:
            ev["count"] = count
            ev["lastTimestamp"] = rfc3339(t)

        player.store.mutate("v1", "Event", namespace, name, bump)

        def bump_new(ev: dict[str, Any]) -> None:
            ev["deprecatedCount"] = count
            ev["deprecatedLastTimestamp"] = rfc3339(t)
            ev["series"] = {"count": count, "lastObservedTime": rfc3339_micro(t)}

        if player.store.get_obj("events.k8s.io/v1", "Event", namespace, name) is not None:
            player.store.mutate("events.k8s.io/v1", "Event", namespace, name, bump_new)
        return
    name = f"{meta['name']}.{int(t * 1e9):x}"
    player.event_names[key] = name
    source: dict[str, str] = {"component": component}
    if host:
        source["host"] = host
    instance = host or f"{component}-{player.factory.suffix(5)}"
    core = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": name, "namespace": namespace},
        "involvedObject": ref,
        "reason": reason,
        "message": message,
        "source": source,
        "firstTimestamp": rfc3339(t),
        "lastTimestamp": rfc3339(t),
        "count": 1,
        "type": event_type,
        "eventTime": None,
        "reportingComponent": component,
        "reportingInstance": host,
    }
    player.store.apply(core)
    regarding = dict(ref)
    player.store.apply(
        {
            "apiVersion": "events.k8s.io/v1",
            "kind": "Event",
            "metadata": {"name": name, "namespace": namespace},
            "eventTime": rfc3339_micro(t),
            "reportingController": component,
            "reportingInstance": instance,
            "action": _EVENT_ACTIONS.get(reason, reason),
            "reason": reason,
            "regarding": regarding,
            "note": message,
            "type": event_type,
            "deprecatedSource": source,
            "deprecatedFirstTimestamp": rfc3339(t),
            "deprecatedLastTimestamp": rfc3339(t),
            "deprecatedCount": 1,
        }
    )


_EVENT_ACTIONS = {
    "Scheduled": "Binding",
    "Pulling": "Pulling",
    "Pulled": "Pulled",
    "Created": "Created",
    "Started": "Started",
    "Killing": "Killing",
    "BackOff": "BackOff",
    "SuccessfulCreate": "Create",
    "SuccessfulDelete": "Delete",
    "ScalingReplicaSet": "Scaling",
    "SuccessfulRescale": "Scaling",
}
