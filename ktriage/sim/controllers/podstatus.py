"""Pod spec defaults and a pod status that stays consistent, as kubelet keeps it.

A pod stored without a status is placed on a node (the first schedulable one): one
a client or a controller creates starts Pending with its containers being created
(`kubelet` starts them), one a scenario writes is reported Running at once; and
`set_container_state` moves one container through its life (running,
waiting in CrashLoopBackOff, terminated OOMKilled...) keeping the ready flags,
the Ready/ContainersReady conditions and the phase in step.
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Callable

from ktriage.sim.controllers import origin
from ktriage.sim.timefmt import minutes_seconds, rfc3339

CONDITION_TYPES = ("PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady")


def _digest(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


def full_image(image: str) -> str:
    """The name containerd reports: `nginx:1.27` → `docker.io/library/nginx:1.27`."""
    name = image
    first = name.split("/", 1)[0]
    if "/" not in name:
        name = f"docker.io/library/{name}"
    elif "." not in first and ":" not in first and first != "localhost":
        name = f"docker.io/{name}"
    last = name.rsplit("/", 1)[-1]
    if ":" not in last and "@" not in last:
        name += ":latest"
    return name


def image_id(image: str) -> str:
    repo = full_image(image).split("@", 1)[0]
    repo = repo.rsplit(":", 1)[0] if ":" in repo.rsplit("/", 1)[-1] else repo
    return f"{repo}@sha256:{_digest('image', image)}"


def container_id(pod_uid: str, container: str, restarts: int) -> str:
    return "containerd://" + _digest(pod_uid, container, str(restarts))


def _default_container(c: dict) -> None:
    image = c.get("image", "")
    last = image.rsplit("/", 1)[-1]
    untagged = ":" not in last and "@" not in last
    c.setdefault(
        "imagePullPolicy", "Always" if untagged or last.endswith(":latest") else "IfNotPresent"
    )
    for port in c.get("ports") or []:
        if isinstance(port, dict):
            port.setdefault("protocol", "TCP")
    c.setdefault("resources", {})
    c.setdefault("terminationMessagePath", "/dev/termination-log")
    c.setdefault("terminationMessagePolicy", "File")


def default_spec(spec: dict) -> None:
    """The defaults kube-apiserver fills into a pod spec."""
    for key in ("initContainers", "containers", "ephemeralContainers"):
        for c in spec.get(key) or []:
            _default_container(c)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("enableServiceLinks", True)
    spec.setdefault("preemptionPolicy", "PreemptLowerPriority")
    spec.setdefault("priority", 0)
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("securityContext", {})
    sa = spec.get("serviceAccountName") or spec.get("serviceAccount") or "default"
    spec["serviceAccountName"] = sa
    spec["serviceAccount"] = sa
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault(
        "tolerations",
        [
            {
                "effect": "NoExecute",
                "key": "node.kubernetes.io/not-ready",
                "operator": "Exists",
                "tolerationSeconds": 300,
            },
            {
                "effect": "NoExecute",
                "key": "node.kubernetes.io/unreachable",
                "operator": "Exists",
                "tolerationSeconds": 300,
            },
        ],
    )


def _running_status(pod: dict, c: dict, started: str, restarts: int = 0) -> dict:
    return {
        "containerID": container_id(pod["metadata"].get("uid", ""), c["name"], restarts),
        "image": full_image(c.get("image", "")),
        "imageID": image_id(c.get("image", "")),
        "lastState": {},
        "name": c["name"],
        "ready": True,
        "restartCount": restarts,
        "started": True,
        "state": {"running": {"startedAt": started}},
    }


def _qos(spec: dict) -> str:
    requests = limits = False
    for c in spec.get("containers") or []:
        res = c.get("resources") or {}
        requests = requests or bool(res.get("requests"))
        limits = limits or bool(res.get("limits"))
    if not requests and not limits:
        return "BestEffort"
    return "Burstable"


def fill_pod(
    pod: dict,
    old: dict | None,
    node_ip: Callable[[str], str | None],
    next_ip: Callable[[str | None], str],
    now: float,
    pick_node: Callable[[], str | None],
) -> None:
    """Fill a pod's spec defaults and, when missing, its status (see module doc)."""
    spec = pod.setdefault("spec", {})
    default_spec(spec)
    status = pod.get("status")
    if not status and old is not None and old.get("status"):
        pod["status"] = dict(old["status"])
        return
    starting = old is None and not status and origin.pods_start_pending()
    if status is None:
        status = pod["status"] = {}
    if not spec.get("nodeName") and old is None and not status:
        node = pick_node()
        if node:
            spec["nodeName"] = node
    ts = rfc3339(now)
    node = spec.get("nodeName")
    if not node:
        status.setdefault("phase", "Pending")
        status.setdefault(
            "conditions",
            [
                {
                    "lastProbeTime": None,
                    "lastTransitionTime": ts,
                    "message": "0/0 nodes are available: no nodes available to schedule pods.",
                    "reason": "Unschedulable",
                    "status": "False",
                    "type": "PodScheduled",
                }
            ],
        )
        status.setdefault("qosClass", _qos(spec))
        return
    if starting:
        _creating_status(pod, status, rfc3339(now))
    status.setdefault("phase", "Running")
    host_ip = node_ip(node)
    if host_ip and "hostIP" not in status:
        status["hostIP"] = host_ip
        status["hostIPs"] = [{"ip": host_ip}]
    if "podIP" not in status and status["phase"] in ("Running", "Pending"):
        ip = host_ip if spec.get("hostNetwork") and host_ip else next_ip(node)
        status["podIP"] = ip
        status["podIPs"] = [{"ip": ip}]
    status.setdefault("startTime", ts)
    if status["phase"] == "Running":
        known = {cs.get("name") for cs in status.get("containerStatuses") or []}
        statuses = list(status.get("containerStatuses") or [])
        for c in spec.get("containers") or []:
            if c.get("name") not in known:
                statuses.append(_running_status(pod, c, status["startTime"]))
        if statuses:
            status["containerStatuses"] = statuses
    status.setdefault("qosClass", _qos(spec))
    if "conditions" not in status:
        status["conditions"] = _conditions(status, status["startTime"])


def _creating_status(pod: dict, status: dict, ts: str) -> None:
    """Scheduled, its containers being created: what kubelet reports before they run."""
    spec = pod["spec"]
    status["phase"] = "Pending"
    status["startTime"] = ts
    status["containerStatuses"] = [
        {
            "image": c.get("image", ""),
            "imageID": "",
            "lastState": {},
            "name": c["name"],
            "ready": False,
            "restartCount": 0,
            "started": False,
            "state": {"waiting": {"reason": "ContainerCreating"}},
        }
        for c in spec.get("containers") or []
    ]
    conditions = _conditions(status, ts)
    for cond in conditions:
        if cond["type"] == "PodReadyToStartContainers":
            cond["status"] = "False"
    status["conditions"] = conditions


def start_containers(
    pod: dict, now: float, pull_failed: Callable[[dict, str], bool] | None = None
) -> None:
    """Kubelet has pulled the images and started every container still being created.

    `pull_failed(status, image)` marks a container whose image could not be pulled
    and returns True; the pod then stays Pending."""
    ts = rfc3339(now)
    status = pod.setdefault("status", {})
    uid = pod["metadata"].get("uid", "")
    specs = {c.get("name"): c for c in (pod.get("spec") or {}).get("containers") or []}
    stuck = False
    for cs in status.get("containerStatuses") or []:
        waiting = (cs.get("state") or {}).get("waiting") or {}
        if waiting.get("reason") != "ContainerCreating":
            continue
        image = (specs.get(cs["name"]) or {}).get("image", cs.get("image", ""))
        if pull_failed is not None and pull_failed(cs, image):
            stuck = True
            continue
        cs.update(
            containerID=container_id(uid, cs["name"], int(cs.get("restartCount", 0))),
            image=full_image(image),
            imageID=image_id(image),
            ready=True,
            started=True,
            state={"running": {"startedAt": ts}},
        )
    if status.get("phase") == "Pending" and not stuck:
        status["phase"] = "Running"
    for cond in status.get("conditions") or []:
        if cond.get("type") == "PodReadyToStartContainers" and cond.get("status") != "True":
            cond.update(status="True", lastTransitionTime=ts)
    refresh_conditions(status, ts)


def creating(pod: dict) -> bool:
    for cs in (pod.get("status") or {}).get("containerStatuses") or []:
        if ((cs.get("state") or {}).get("waiting") or {}).get("reason") == "ContainerCreating":
            return True
    return False


def pod_cidr(node: dict | None) -> str | None:
    if not node:
        return None
    spec = node.get("spec") or {}
    return spec.get("podCIDR") or next(iter(spec.get("podCIDRs") or []), None)


def free_ip(cidr: str, used: set) -> str | None:
    """The first address of `cidr` after the gateway's (.1) that no pod holds."""
    try:
        network = ipaddress.ip_network(cidr, strict=False)
    except ValueError:
        return None
    for index, address in enumerate(network.hosts()):
        if index >= 1 and str(address) not in used:
            return str(address)
        if index > 65536:
            break
    return None


def _conditions(status: dict, ts: str) -> list[dict]:
    statuses = status.get("containerStatuses") or []
    running = status.get("phase") == "Running"
    ready = running and bool(statuses) and all(cs.get("ready") for cs in statuses)
    out = []
    for ctype in (*CONDITION_TYPES, "PodScheduled"):
        value = True
        if ctype in ("Ready", "ContainersReady"):
            value = ready
        elif ctype == "PodReadyToStartContainers":
            value = running or status.get("phase") == "Pending"
        cond: dict = {
            "lastProbeTime": None,
            "lastTransitionTime": ts,
            "status": "True" if value else "False",
            "type": ctype,
        }
        if ctype in ("Ready", "ContainersReady") and not value:
            cond["reason"] = "ContainersNotReady"
            not_ready = [cs["name"] for cs in statuses if not cs.get("ready")]
            cond["message"] = f"containers with unready status: [{' '.join(not_ready)}]"
        out.append(cond)
    return out


def refresh_conditions(status: dict, ts: str) -> None:
    fresh = {c["type"]: c for c in _conditions(status, ts)}
    conditions = status.get("conditions") or []
    seen = set()
    for i, cond in enumerate(conditions):
        new = fresh.get(cond.get("type"))
        if new is None:
            continue
        seen.add(cond["type"])
        if cond.get("status") != new["status"]:
            conditions[i] = new
        elif new["status"] == "False":
            conditions[i] = dict(new, lastTransitionTime=cond.get("lastTransitionTime", ts))
    for ctype, cond in fresh.items():
        if ctype not in seen:
            conditions.append(cond)
    status["conditions"] = conditions


def set_container_state(
    pod: dict,
    container: str,
    state: str,
    *,
    now: float,
    reason: str | None = None,
    exit_code: int | None = None,
    message: str | None = None,
    restart: bool = False,
    ready: bool | None = None,
) -> None:
    """See `ClusterStore.set_container_state`."""
    if state not in ("running", "waiting", "terminated"):
        raise ValueError(f"unknown container state {state!r}")
    ts = rfc3339(now)
    spec = pod.get("spec") or {}
    status = pod.setdefault("status", {})
    statuses = status.setdefault("containerStatuses", [])
    cs = next((s for s in statuses if s.get("name") == container), None)
    if cs is None:
        spec_c = next((c for c in spec.get("containers") or [] if c.get("name") == container), None)
        if spec_c is None:
            raise KeyError(f"container {container} is not valid for pod {pod['metadata']['name']}")
        cs = _running_status(pod, spec_c, ts)
        statuses.append(cs)
    previous = cs.get("state") or {}
    if restart:
        last = dict(previous)
        if "running" in last:
            # The running container ended: its last state is a termination.
            started = last["running"].get("startedAt", ts)
            last = {
                "terminated": {
                    "containerID": cs.get("containerID", ""),
                    "exitCode": 1 if exit_code is None else exit_code,
                    "finishedAt": ts,
                    "reason": reason or "Error",
                    "startedAt": started,
                }
            }
        if "waiting" not in last:
            cs["lastState"] = last
        cs["restartCount"] = int(cs.get("restartCount", 0)) + 1
        cs["containerID"] = container_id(
            pod["metadata"].get("uid", ""), container, cs["restartCount"]
        )
    if state == "running":
        cs["state"] = {"running": {"startedAt": ts}}
        cs["started"] = True
        cs["ready"] = True if ready is None else ready
    elif state == "waiting":
        waiting: dict = {"reason": reason or "ContainerCreating"}
        if message:
            waiting["message"] = message
        elif waiting["reason"] == "CrashLoopBackOff":
            delay = min(10 * 2 ** max(int(cs.get("restartCount", 0)) - 1, 0), 300)
            waiting["message"] = (
                f"back-off {minutes_seconds(delay)} restarting failed container={container} "
                f"pod={pod['metadata']['name']}_{pod['metadata'].get('namespace', 'default')}"
                f"({pod['metadata'].get('uid', '')})"
            )
        cs["state"] = {"waiting": waiting}
        cs["started"] = False
        cs["ready"] = False
        if int(cs.get("restartCount", 0)) == 0:
            cs.pop("containerID", None)
    else:
        started = (previous.get("running") or {}).get("startedAt", ts)
        term: dict = {
            "containerID": cs.get("containerID", ""),
            "exitCode": 0 if exit_code is None else exit_code,
            "finishedAt": ts,
            "reason": reason or ("Completed" if not exit_code else "Error"),
            "startedAt": started,
        }
        if message:
            term["message"] = message
        cs["state"] = {"terminated": term}
        cs["started"] = False
        cs["ready"] = False
        if restart or "lastState" not in cs:
            cs.setdefault("lastState", {})
    if state == "terminated" and spec.get("restartPolicy") == "Never":
        codes = [(s.get("state") or {}).get("terminated", {}).get("exitCode") for s in statuses]
        if all(code is not None for code in codes):
            status["phase"] = "Succeeded" if all(code == 0 for code in codes) else "Failed"
    elif status.get("phase") in (None, "Pending") and state == "running":
        status["phase"] = "Running"
    refresh_conditions(status, ts)
