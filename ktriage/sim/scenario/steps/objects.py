"""Steps that change objects: create, patch, delete, a container's state, pod logs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ktriage.sim.scenario.context import StepFailed
from ktriage.sim.scenario.templates import parse_seconds
from ktriage.sim.storage.patch import merge_patch
from ktriage.sim.timefmt import minutes_seconds, rfc3339

if TYPE_CHECKING:
    from ktriage.sim.scenario.player import ScenarioPlayer


def create(player: ScenarioPlayer, body: dict[str, Any], t: float) -> None:
    for obj in player.factory.expand(body, now=t):
        player.apply(obj)
    for ns, pod, container, line, when in player.factory.initial_logs:
        player.store.append_log(ns, pod, container, line, time=when)
    player.factory.initial_logs.clear()


def patch(player: ScenarioPlayer, body: dict[str, Any], t: float) -> None:
    api_version, kind, ns, name = player.target(body)
    if player.store.get_obj(api_version, kind, ns, name) is None:
        raise StepFailed(f"{kind} {qualified_name(ns, name)} does not exist")

    def apply_patch(obj: dict[str, Any]) -> None:
        merged = merge_patch(obj, body["patch"])  # RFC 7386, as `kubectl patch --type merge`
        obj.clear()
        obj.update(merged)

    player.store.mutate(api_version, kind, ns, name, apply_patch)


def delete(player: ScenarioPlayer, body: dict[str, Any], t: float) -> None:
    api_version, kind, ns, name = player.target(body)
    if player.store.delete(api_version, kind, ns, name) is None:
        raise StepFailed(f"{kind} {qualified_name(ns, name)} does not exist")
    if kind == "Pod":
        forget_pod(player, ns or "", name)


def forget_pod(player: ScenarioPlayer, ns: str, name: str) -> None:
    for (wns, _), pods in player.factory.workload_pods.items():
        if wns == ns and name in pods:
            pods.remove(name)


def container_state(player: ScenarioPlayer, body: dict[str, Any], t: float) -> None:
    ctx = player.pod_context(body["pod"], body.get("container"))
    state = body["state"]
    reason = body.get("reason")
    restarted = False

    def change(pod: dict[str, Any]) -> None:
        nonlocal restarted
        st = next(s for s in pod["status"]["containerStatuses"] if s["name"] == ctx.container)
        current = st.get("state") or {}
        last_term = current.get("terminated") or (st.get("lastState") or {}).get("terminated")
        if state == "running":
            if "running" not in current:
                if "terminated" in current:
                    # Restarted at once (no back-off): one more restart.
                    st["restartCount"] = st.get("restartCount", 0) + 1
                    st["lastState"] = {"terminated": current["terminated"]}
                    restarted = True
                elif last_term:
                    # Out of back-off: kubelet counted this restart on entering it.
                    restarted = True
                st["containerID"] = player.factory.container_id()
                st["state"] = {"running": {"startedAt": rfc3339(t)}}
            st["ready"] = True
            st["started"] = True
        elif state == "terminated":
            code = body.get("exit_code", _EXIT_CODES.get(reason or "Error", 1))
            term: dict[str, Any] = {
                "containerID": st.get("containerID", ""),
                "exitCode": int(code),
                "reason": reason or ("Completed" if int(code) == 0 else "Error"),
                "startedAt": (current.get("running") or {}).get("startedAt", rfc3339(t)),
                "finishedAt": rfc3339(t),
            }
            if body.get("message"):
                term["message"] = body["message"]
            if body.get("signal"):
                term["signal"] = int(body["signal"])
            st["state"] = {"terminated": term}
            st["ready"] = False
            st["started"] = False
        else:  # waiting
            if "terminated" in current:
                # kubelet counts the restart it is about to make (kubectl shows it).
                st["lastState"] = {"terminated": current["terminated"]}
                st["restartCount"] = st.get("restartCount", 0) + 1
            waiting: dict[str, Any] = {"reason": reason or "ContainerCreating"}
            message = body.get("message")
            if message is None and reason == "CrashLoopBackOff":
                restarts = body.get("restart_count", st.get("restartCount", 0))
                backoff = min(10 * 2 ** max(int(restarts) - 1, 0), 300)
                message = (
                    f"back-off {minutes_seconds(backoff)} restarting failed "
                    f"container={ctx.container} pod={ctx.name}_{ctx.namespace}"
                    f"({pod['metadata'].get('uid', '')})"
                )
            if message:
                waiting["message"] = message
            st["state"] = {"waiting": waiting}
            st["ready"] = False
            st["started"] = False
            if reason in ("ErrImagePull", "ImagePullBackOff") and not last_term:
                st.pop("containerID", None)
                st["imageID"] = ""
        if "restart_count" in body:
            st["restartCount"] = int(body["restart_count"])
        _refresh_pod_status(pod, t)

    player.store.mutate("v1", "Pod", ctx.namespace, ctx.name, change)
    if restarted:
        player.store.restart_container(ctx.namespace, ctx.name, ctx.container)


def pod_log(player: ScenarioPlayer, body: dict[str, Any], t: float) -> None:
    ctx = player.pod_context(body["pod"], body.get("container"))
    lines = body["lines"] if "lines" in body else [body["line"]]
    spacing = parse_seconds(body.get("spacing", 0.25))
    for i, line in enumerate(lines):
        player.store.append_log(
            ctx.namespace, ctx.name, ctx.container, str(line), time=t + i * spacing
        )


_EXIT_CODES = {"OOMKilled": 137, "Error": 1, "Completed": 0, "ContainerCannotRun": 128}


def qualified_name(ns: str | None, name: str) -> str:
    return f"{ns}/{name}" if ns else name


def _refresh_pod_status(pod: dict[str, Any], t: float) -> None:
    status = pod["status"]
    statuses = status.get("containerStatuses") or []
    unready = [s["name"] for s in statuses if not s.get("ready")]
    policy = pod["spec"].get("restartPolicy", "Always")
    states = [s.get("state") or {} for s in statuses]
    if policy != "Always" and statuses and all("terminated" in st for st in states):
        codes = [st["terminated"].get("exitCode", 0) for st in states]
        status["phase"] = "Succeeded" if all(c == 0 for c in codes) else "Failed"
    elif any(s.get("containerID") for s in statuses):
        status["phase"] = "Running"
    else:
        status["phase"] = "Pending"
    for cond in status.get("conditions") or []:
        if cond["type"] not in ("Ready", "ContainersReady"):
            continue
        want = "False" if unready else "True"
        if cond.get("status") != want:
            cond["status"] = want
            cond["lastTransitionTime"] = rfc3339(t)
        if unready:
            cond["reason"] = (
                "PodCompleted"
                if status["phase"] in ("Succeeded", "Failed")
                else "ContainersNotReady"
            )
            if cond["reason"] == "ContainersNotReady":
                cond["message"] = f"containers with unready status: [{' '.join(unready)}]"
            else:
                cond.pop("message", None)
        else:
            cond.pop("reason", None)
            cond.pop("message", None)
