"""Runtime security records: Falco alerts and Tetragon process events."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ktriage.sim.scenario.context import PodContext, StepFailed
from ktriage.sim.scenario.format import TETRAGON_TYPES
from ktriage.sim.scenario.runtime_records import (
    DEFAULT_CAPS,
    PRIVILEGED_CAPS,
    TetragonProcess,
    falco_alert,
    falco_priority,
    tetragon_exec_id,
    tetragon_pod_info,
    tetragon_record,
)
from ktriage.sim.timefmt import parse_rfc3339_or_none, rfc3339_ns

if TYPE_CHECKING:
    from ktriage.sim.scenario.player import ScenarioPlayer


def falco(player: ScenarioPlayer, body: dict[str, Any], t: float) -> None:
    rule_name = body["rule"]
    rule = player.scenario.falco_rules.get(rule_name) or {}
    priority = falco_priority(str(body.get("priority") or rule.get("priority")))
    fields: dict[str, Any] = {}
    node = body.get("node")
    if body.get("pod"):
        ctx = player.pod_context(body["pod"], body.get("container"))
        node = ctx.node
        repo, _, tag = ctx.status.get("image", "").rpartition(":")
        fields.update(
            {
                "container.id": ctx.container_id[:12],
                "container.name": ctx.container,
                "container.image.repository": repo,
                "container.image.tag": tag,
                "k8s.ns.name": ctx.namespace,
                "k8s.pod.name": ctx.name,
            }
        )
    else:
        fields.update({"container.id": "host", "container.name": "host"})
        fields.update({"k8s.ns.name": None, "k8s.pod.name": None})
    extra = dict(body.get("fields") or {})
    cmdline = extra.get("proc.cmdline")
    if cmdline and "proc.name" not in extra:
        extra["proc.name"] = str(cmdline).split()[0].rsplit("/", 1)[-1]
    defaults = {"evt.type": "execve", "user.name": "root", "user.uid": 0, "proc.tty": 0}
    for key, value in defaults.items():
        extra.setdefault(key, value)
    fields.update(extra)
    fields = dict(sorted(fields.items()))
    time_ns = _record_ns(player, t)
    alert = falco_alert(
        rule=rule_name,
        priority=priority,
        output_template=str(body.get("output") or rule.get("output", rule_name)),
        fields=fields,
        tags=list(body.get("tags") or rule.get("tags") or []),
        hostname=node or "",
        time_ns=time_ns,
        alert_uuid=player.factory.uid(),
        source=body.get("source", "syscall"),
    )
    line = player.outputs.falco.write(alert)
    falco_pod = player.daemon_pod("falco", "falco", node or "")
    if falco_pod:
        text = line.decode().rstrip("\n")
        player.store.append_log("falco", falco_pod, "falco", text, time=t)


def _record_ns(player: ScenarioPlayer, t: float) -> int:
    # Sub-millisecond digits so records do not all end in zeros; order is kept.
    return int(t * 1000) * 1_000_000 + player.factory.rng.randrange(1_000_000)


def _processes_of(player: ScenarioPlayer, ctx: PodContext) -> list[TetragonProcess]:
    key = (ctx.namespace, ctx.name, ctx.container_id)
    procs = player.processes.get(key)
    if procs is None:
        node = player.node_info(ctx.node)
        started = parse_rfc3339_or_none(
            ((ctx.status.get("state") or {}).get("running") or {}).get("startedAt")
        )
        started = started if started is not None else player.start - 3600
        ktime = max(int((started - node.boot_time) * 1e9), 1)
        host_pid = player.factory.rng.randint(2000, 90000)
        shim = tetragon_exec_id(node.name, ktime - 40_000_000, host_pid - 3)
        spec = next((c for c in ctx.pod["spec"]["containers"] if c["name"] == ctx.container), {})
        argv = [*(spec.get("command") or []), *(spec.get("args") or [])]
        binary = argv[0] if argv else f"/usr/local/bin/{ctx.container}"
        if not binary.startswith("/"):
            binary = f"/usr/bin/{binary}"
        privileged = bool((spec.get("securityContext") or {}).get("privileged"))
        caps = PRIVILEGED_CAPS if privileged else DEFAULT_CAPS
        # Exec sessions (kubectl exec, probes) start from the container's shim.
        player.shims[key] = TetragonProcess(
            exec_id=shim,
            pid=host_pid - 3,
            binary="/usr/bin/containerd-shim-runc-v2",
            arguments=(
                f"-namespace k8s.io -id {ctx.container_id} -address /run/containerd/containerd.sock"
            ),
            start_ns=int(started * 1e9) - 40_000_000,
            parent_exec_id=tetragon_exec_id(node.name, 1_000_000_000, 1),
            pod=None,
            cwd=f"/run/containerd/io.containerd.runtime.v2.task/k8s.io/{ctx.container_id}",
        )
        init = TetragonProcess(
            exec_id=tetragon_exec_id(node.name, ktime, host_pid),
            pid=host_pid,
            binary=binary,
            arguments=" ".join(argv[1:]),
            start_ns=int(started * 1e9),
            parent_exec_id=shim,
            pod=tetragon_pod_info(ctx.pod, ctx.status, 1),
            flags="execve rootcwd clone",
            in_init_tree=True,
            caps=caps,
        )
        procs = player.processes[key] = [init]
    return procs


def _find_process(procs: list[TetragonProcess], binary: str) -> TetragonProcess | None:
    for p in reversed(procs):
        if not p.exited and (p.binary == binary or p.binary.rsplit("/", 1)[-1] == binary):
            return p
    return None


def tetragon(player: ScenarioPlayer, body: dict[str, Any], t: float) -> None:
    ctx = player.pod_context(body["pod"], body.get("container"))
    node = player.node_info(ctx.node)
    procs = _processes_of(player, ctx)
    kind = body["type"]
    event_type = TETRAGON_TYPES[kind]
    time_ns = _record_ns(player, t)
    binary = str(body["binary"])
    if event_type == "process_exec":
        parent_name = body.get("parent")
        if parent_name == "shim":
            parent = player.shims[(ctx.namespace, ctx.name, ctx.container_id)]
        else:
            parent = _find_process(procs, parent_name) if parent_name else None
        if parent is None:
            if parent_name and parent_name != "init":
                raise StepFailed(
                    f"no running process {parent_name!r} in {ctx.namespace}/{ctx.name}"
                )
            parent = procs[0]
        pid = max(p.pid for p in procs) + player.factory.rng.randint(3, 40)
        ktime = max(int((t - node.boot_time) * 1e9), 1)
        proc = TetragonProcess(
            exec_id=tetragon_exec_id(node.name, ktime, pid),
            pid=pid,
            binary=binary,
            arguments=str(body.get("arguments", "")),
            start_ns=time_ns,
            parent_exec_id=parent.exec_id,
            pod=_with_container_pid(procs[0].pod, len(procs) * 7 + 1),
            caps=procs[0].caps,
            uid=int(body.get("uid", 0)),
            cwd=str(body.get("cwd", "/")),
            flags="execve clone" if body.get("cwd", "/") != "/" else "execve rootcwd clone",
        )
        procs.append(proc)
        record_body = {"process": proc.to_json(), "parent": parent.to_json()}
    else:
        proc = _find_process(procs, binary)
        if proc is None:
            raise StepFailed(f"no running process {binary!r} in {ctx.namespace}/{ctx.name}")
        shim = player.shims[(ctx.namespace, ctx.name, ctx.container_id)]
        parent = next((p for p in [*procs, shim] if p.exec_id == proc.parent_exec_id), shim)
        record_body = {"process": proc.to_json(), "parent": parent.to_json()}
        if event_type == "process_exit":
            proc.exited = True
            if body.get("signal"):
                record_body["signal"] = str(body["signal"])
            if body.get("status"):
                record_body["status"] = int(body["status"])
            record_body["time"] = record_body.get("time") or rfc3339_ns(time_ns)
        else:
            record_body.update(_kprobe(player, kind, body, ctx))
    record = tetragon_record(event_type, record_body, node=node.name, time_ns=time_ns)
    line = player.outputs.tetragon.write(record)
    tetragon_pod = player.daemon_pod("kube-system", "tetragon", node.name)
    if tetragon_pod:
        text = line.decode().rstrip("\n")
        player.store.append_log("kube-system", tetragon_pod, "export-stdout", text, time=t)


def _kprobe(
    player: ScenarioPlayer, kind: str, body: dict[str, Any], ctx: PodContext
) -> dict[str, Any]:
    if kind == "connect":
        host, _, port = str(body["destination"]).rpartition(":")
        args = [
            {
                "sock_arg": {
                    "family": "AF_INET",
                    "type": "SOCK_STREAM",
                    "protocol": "IPPROTO_TCP",
                    "saddr": (ctx.pod.get("status") or {}).get("podIP", ""),
                    "daddr": host,
                    "sport": player.factory.rng.randint(32768, 60999),
                    "dport": int(port),
                    "state": "TCP_SYN_SENT",
                }
            }
        ]
        function, policy = "tcp_connect", "monitor-network-activity"
    elif kind == "file":
        args = [{"file_arg": {"path": str(body["file"]), "permission": "-rw-r--r--"}}]
        args.append({"int_arg": 4})
        function, policy = "security_file_permission", "file-monitoring"
    else:
        args = body.get("args") or []
        function = body.get("function_name", "")
        policy = ""
    out: dict[str, Any] = {
        "function_name": body.get("function_name", function),
        "args": args,
        "action": body.get("action", "KPROBE_ACTION_POST"),
    }
    if body.get("policy_name", policy):
        out["policy_name"] = body.get("policy_name", policy)
    out["return_action"] = "KPROBE_ACTION_POST"
    return out


def _with_container_pid(pod: dict[str, Any] | None, pid: int) -> dict[str, Any] | None:
    """The pod block with the process's PID as seen inside its container."""
    if pod is None:
        return None
    return {**pod, "container": {**pod["container"], "pid": pid}}
