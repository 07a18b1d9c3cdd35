"""Rollouts and scaling: ReplicaSets and pods changing one by one over time."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ktriage.sim.scenario.context import StepFailed
from ktriage.sim.scenario.steps.audit import audit_one, system_audit
from ktriage.sim.scenario.steps.events import record_event
from ktriage.sim.scenario.steps.objects import forget_pod
from ktriage.sim.scenario.templates import (
    ContainerSpec,
    deployment_status,
    parse_seconds,
    replicaset_status,
    template_hash,
)
from ktriage.sim.version import KUBECTL_AGENT

if TYPE_CHECKING:
    from ktriage.sim.scenario.player import ScenarioPlayer


def _deployment(player: ScenarioPlayer, ref: str) -> dict[str, Any]:
    if "/" not in str(ref):
        raise StepFailed(f"deployment must be NS/NAME, got {ref!r}")
    ns, name = str(ref).split("/", 1)
    dep = player.store.get_obj("apps/v1", "Deployment", ns, name)
    if dep is None:
        raise StepFailed(f"deployment {ns}/{name} does not exist")
    return dep


def rollout(player: ScenarioPlayer, body: dict[str, Any], t: float) -> None:
    """A rolling update: new ReplicaSet, new pods one by one, old pods terminated."""
    dep = _deployment(player, body["deployment"])
    ns, name = dep["metadata"]["namespace"], dep["metadata"]["name"]
    template = copy.deepcopy(dep["spec"]["template"])
    images = dict(body.get("images") or {})
    if body.get("image"):
        images[template["spec"]["containers"][0]["name"]] = body["image"]
    if not images:
        raise StepFailed("rollout needs image or images")
    for c in template["spec"]["containers"]:
        if c["name"] in images:
            c["image"] = images.pop(c["name"])
    if images:
        raise StepFailed(f"deployment {ns}/{name} has no container {next(iter(images))!r}")
    old_rs_name = f"{name}-{template_hash(dep['spec']['template'])}"
    revision = int(dep["metadata"].get("annotations", {}).get(_REVISION, "1")) + 1
    replicas = int(dep["spec"].get("replicas", 1))
    interval = parse_seconds(body.get("interval", 8))
    user = body.get("user")

    def update(d: dict[str, Any]) -> None:
        d["spec"]["template"] = template
        d["metadata"]["generation"] = int(d["metadata"].get("generation", 1)) + 1
        d["metadata"].setdefault("annotations", {})[_REVISION] = str(revision)
        d["status"]["updatedReplicas"] = 0
        d["status"]["observedGeneration"] = d["metadata"]["generation"]

    if user:
        audit_one(
            player,
            {
                "user": user,
                "verb": "patch",
                "resource": "deployments",
                "namespace": ns,
                "name": name,
                "query": {"fieldManager": "kubectl-set"},
                "source_ips": ["10.0.8.15"],
                "user_agent": KUBECTL_AGENT,
            },
            t,
        )
    dep = player.store.mutate("apps/v1", "Deployment", ns, name, update)
    tpl = _template_params(template, body.get("logs"))
    containers = _container_specs(template)
    rs, _ = player.factory.replicaset_with_pods(
        dep, tpl, containers, [], replicas, revision, t, make_pods=False
    )
    rs["spec"]["replicas"] = 0
    rs["status"] = replicaset_status(0)
    player.apply(rs)
    dc = "system:serviceaccount:kube-system:deployment-controller"
    system_audit(player, t, dc, "create", "replicasets", ns, rs["metadata"]["name"])
    record_event(
        player,
        dep,
        t + 0.01,
        reason="ScalingReplicaSet",
        message=f"Scaled up replica set {rs['metadata']['name']} from 0 to 1",
        component="deployment-controller",
    )
    old_pods = list(player.factory.workload_pods.get((ns, name), []))
    player.factory.workload_pods[(ns, name)] = []
    for i in range(replicas):
        start = t + 0.5 + i * interval
        player.later(
            start, _new_pod_step(player, ns, name, rs["metadata"]["name"], tpl, containers)
        )
        if i < len(old_pods):
            player.later(
                start + interval * 0.6,
                _remove_pod_step(player, ns, name, old_rs_name, old_pods[i]),
            )
    for extra in old_pods[replicas:]:
        player.later(
            t + replicas * interval, _remove_pod_step(player, ns, name, old_rs_name, extra)
        )
    done_at = t + replicas * interval + 1

    def finish(t2: float) -> None:
        _set_rs_replicas(player, ns, old_rs_name, 0)
        _set_rs_replicas(player, ns, rs["metadata"]["name"], replicas)

        def status(d: dict[str, Any]) -> None:
            d["status"] = deployment_status(replicas, int(d["metadata"]["generation"]), t2)

        player.store.mutate("apps/v1", "Deployment", ns, name, status)
        system_audit(player, t2, dc, "update", "deployments", ns, name, "status")

    player.later(done_at, finish)


def _set_rs_replicas(player: ScenarioPlayer, ns: str, rs_name: str, replicas: int) -> None:
    if player.store.get_obj("apps/v1", "ReplicaSet", ns, rs_name) is None:
        return

    def change(rs: dict[str, Any]) -> None:
        rs["spec"]["replicas"] = replicas
        rs["metadata"].setdefault("annotations", {})[
            "deployment.kubernetes.io/desired-replicas"
        ] = str(replicas)
        rs["status"] = replicaset_status(replicas)

    player.store.mutate("apps/v1", "ReplicaSet", ns, rs_name, change)


def _new_pod_step(
    player: ScenarioPlayer,
    ns: str,
    deployment: str,
    rs_name: str,
    tpl: dict[str, Any],
    containers: list[ContainerSpec],
) -> Callable[[float], None]:
    def run(t: float) -> None:
        rs = player.store.get_obj("apps/v1", "ReplicaSet", ns, rs_name)
        if rs is None:
            raise StepFailed(f"replicaset {ns}/{rs_name} is gone")
        pod = player.factory.replicaset_pod(rs, tpl, containers, [], t)
        pod_name = pod["metadata"]["name"]
        node = pod["spec"]["nodeName"]
        rc = "system:serviceaccount:kube-system:replicaset-controller"
        system_audit(player, t, rc, "create", "pods", ns, pod_name)
        player.apply(pod)
        system_audit(
            player, t + 0.02, "system:kube-scheduler", "create", "pods", ns, pod_name, "binding"
        )
        stored = player.store.get_obj("v1", "Pod", ns, pod_name) or pod
        record_event(
            player,
            rs,
            t,
            reason="SuccessfulCreate",
            message=f"Created pod: {pod_name}",
            component="replicaset-controller",
        )
        record_event(
            player,
            stored,
            t + 0.02,
            reason="Scheduled",
            message=f"Successfully assigned {ns}/{pod_name} to {node}",
            component="default-scheduler",
        )
        for c in containers:
            path = f"spec.containers{{{c.name}}}"
            record_event(
                player,
                stored,
                t + 0.3,
                reason="Pulling",
                message=f'Pulling image "{c.image}"',
                host=node,
                field_path=path,
            )
            secs = 1.2 + player.factory.rng.random() * 3
            record_event(
                player,
                stored,
                t + 0.3 + secs,
                reason="Pulled",
                message=(
                    f'Successfully pulled image "{c.image}" in {secs:.3f}s '
                    f"({secs:.3f}s including waiting). Image size: "
                    f"{player.factory.rng.randint(20, 400) * 1048576 + 4711} bytes."
                ),
                host=node,
                field_path=path,
            )
            record_event(
                player,
                stored,
                t + 0.4 + secs,
                reason="Created",
                message=f"Created container: {c.name}",
                host=node,
                field_path=path,
            )
            record_event(
                player,
                stored,
                t + 0.5 + secs,
                reason="Started",
                message=f"Started container {c.name}",
                host=node,
                field_path=path,
            )

        system_audit(
            player,
            t + 4,
            f"system:node:{node}",
            "patch",
            "pods",
            ns,
            pod_name,
            "status",
            source_ip=player.node_info(node).ip,
        )
        for pns, pname, container, line, when in player.factory.initial_logs:
            player.store.append_log(pns, pname, container, line, time=when)
        player.factory.initial_logs.clear()

    return run


def _remove_pod_step(
    player: ScenarioPlayer, ns: str, deployment: str, rs_name: str, pod_name: str
) -> Callable[[float], None]:
    def run(t: float) -> None:
        pod = player.store.get_obj("v1", "Pod", ns, pod_name)
        if pod is None:
            return  # already gone (someone deleted it): nothing to do
        rc = "system:serviceaccount:kube-system:replicaset-controller"
        system_audit(player, t, rc, "delete", "pods", ns, pod_name)
        for c in pod["spec"]["containers"]:
            record_event(
                player,
                pod,
                t,
                reason="Killing",
                message=f"Stopping container {c['name']}",
                host=pod["spec"].get("nodeName", ""),
                field_path=f"spec.containers{{{c['name']}}}",
            )
        rs = player.store.get_obj("apps/v1", "ReplicaSet", ns, rs_name)
        if rs is not None:
            record_event(
                player,
                rs,
                t,
                reason="SuccessfulDelete",
                message=f"Deleted pod: {pod_name}",
                component="replicaset-controller",
            )
        player.store.delete("v1", "Pod", ns, pod_name)
        forget_pod(player, ns, pod_name)

    return run


def scale(player: ScenarioPlayer, body: dict[str, Any], t: float) -> None:
    """A scale change (by default the HPA's): pods added or removed one by one."""
    dep = _deployment(player, body["deployment"])
    ns, name = dep["metadata"]["namespace"], dep["metadata"]["name"]
    old = int(dep["spec"].get("replicas", 1))
    new = int(body["replicas"])
    if new < 0:
        raise StepFailed("replicas must not be negative")
    rs_name = f"{name}-{template_hash(dep['spec']['template'])}"
    interval = parse_seconds(body.get("interval", 2))
    by = body.get("by", "hpa")
    if by == "hpa":
        actor = "system:serviceaccount:kube-system:horizontal-pod-autoscaler"
        system_audit(player, t, actor, "update", "deployments", ns, name, "scale")
        metric = body.get("metric", "cpu resource utilization (percentage of request)")
        direction = "above" if new > old else "below"
        hpa = {
            "apiVersion": "autoscaling/v2",
            "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": name, "namespace": ns, "uid": _hpa_uid(player, ns, name)},
        }
        record_event(
            player,
            hpa,
            t,
            reason="SuccessfulRescale",
            message=f"New size: {new}; reason: {metric} {direction} target",
            component="horizontal-pod-autoscaler",
        )
    else:
        audit_one(
            player,
            {
                "user": by,
                "verb": "patch",
                "resource": "deployments",
                "namespace": ns,
                "name": name,
                "subresource": "scale",
                "source_ips": ["10.0.8.15"],
                "user_agent": KUBECTL_AGENT,
            },
            t,
        )

    def set_replicas(d: dict[str, Any]) -> None:
        d["spec"]["replicas"] = new
        d["status"] = deployment_status(new, int(d["metadata"].get("generation", 1)), t)

    dep = player.store.mutate("apps/v1", "Deployment", ns, name, set_replicas)
    word = "up" if new > old else "down"
    record_event(
        player,
        dep,
        t + 0.01,
        reason="ScalingReplicaSet",
        message=f"Scaled {word} replica set {rs_name} from {old} to {new}",
        component="deployment-controller",
    )
    _set_rs_replicas(player, ns, rs_name, new)
    template = dep["spec"]["template"]
    tpl = _template_params(template, body.get("logs"))
    containers = _container_specs(template)
    if new > old:
        for i in range(new - old):
            player.later(
                t + 0.5 + i * interval, _new_pod_step(player, ns, name, rs_name, tpl, containers)
            )
    else:
        current = list(player.factory.workload_pods.get((ns, name), []))
        for i, pod_name in enumerate(reversed(current[new:])):
            player.later(
                t + 0.5 + i * interval, _remove_pod_step(player, ns, name, rs_name, pod_name)
            )


def _hpa_uid(player: ScenarioPlayer, ns: str, name: str) -> str:
    key = ("hpa", ns, name)
    if key not in player.event_names:
        player.event_names[key] = player.factory.uid()
    return player.event_names[key]


_REVISION = "deployment.kubernetes.io/revision"


def _template_params(template: dict[str, Any], logs: Any = None) -> dict[str, Any]:
    """The factory parameters that rebuild pods like those of a pod template."""
    spec = template["spec"]
    tpl: dict[str, Any] = {
        "serviceAccount": spec.get("serviceAccountName", "default"),
        "podSecurityContext": spec.get("securityContext") or {},
    }
    for key in ("volumes", "tolerations", "priorityClassName", "hostNetwork", "hostPID", "hostIPC"):
        if spec.get(key):
            tpl[key] = spec[key]
    if logs:
        tpl["logs"] = list(logs)
    return tpl


def _container_specs(template: dict[str, Any]) -> list[ContainerSpec]:
    return [
        ContainerSpec(
            name=c["name"],
            image=c["image"],
            command=c.get("command"),
            args=c.get("args"),
            ports=[p["containerPort"] for p in c.get("ports") or []],
            resources=c.get("resources") or None,
            security_context=c.get("securityContext"),
            env=c.get("env"),
            volume_mounts=c.get("volumeMounts"),
        )
        for c in template["spec"]["containers"]
    ]
