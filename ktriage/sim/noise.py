"""Background noise: the benign traffic of a busy cluster, at a chosen rate.

Audit events from controllers, the scheduler, kubelets and watchers, and Tetragon
exec/exit pairs of exec probes in application pods, each with a unique auditID or
exec_id and a time from the scenario clock. Records are built from templates made
once from the cluster's current objects and written in batches, so thousands per
second cost little. Noise goes to the files only, not to the `tetragon` pods' logs
(it would only grow them).
"""

from __future__ import annotations

import asyncio
import base64
import random
import threading
import time
from datetime import UTC, datetime
from typing import Any

from ktriage.sim.audit import object_ref as _ref
from ktriage.sim.clock import SimClock
from ktriage.sim.names import safe_encode
from ktriage.sim.outputs import SimOutputs
from ktriage.sim.scenario.runtime_records import tetragon_pod_info
from ktriage.sim.timefmt import parse_rfc3339_or_none
from ktriage.sim.version import CONTROL_PLANE_IP, component_agent
from ktriage.sim.version import KUBE_CONTROLLER_AGENT as _KCM
from ktriage.sim.version import KUBELET_AGENT as _KUBELET

_SA_GROUPS = [
    "system:serviceaccounts",
    "system:serviceaccounts:kube-system",
    "system:authenticated",
]
# Pods whose processes are not application traffic.
_AGENT_APPS = {"falco", "tetragon", "kube-proxy"}
# What kubelet's exec probes and sidecars run: nothing a detection should care about.
_PROBES = {
    "redis": ("/usr/local/bin/redis-cli", "ping"),
    "postgres": ("/usr/bin/pg_isready", "-U postgres"),
    "coredns": ("/coredns", "-version"),
    "prometheus": ("/bin/promtool", "check healthy"),
}
_GENERIC_PROBES = (
    ("/bin/grpc_health_probe", "-addr=:8080"),
    ("/bin/cat", "/tmp/healthy"),
    ("/app/healthcheck", "--timeout=2s"),
)


class _Capture:
    """Stands in for SimOutputs so the AuditWriter formats events without writing them."""

    def __init__(self) -> None:
        self.audit = self

    def write(self, record: dict[str, Any]) -> bytes:
        return b""


class _TimeText:
    """Fast RFC 3339 formatting: the seconds part is cached."""

    def __init__(self) -> None:
        self._sec = -1
        self._prefix = ""

    def _base(self, sec: int) -> str:
        if sec != self._sec:
            self._sec = sec
            self._prefix = datetime.fromtimestamp(sec, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        return self._prefix

    def micro(self, t: float) -> str:
        sec = int(t)
        return f"{self._base(sec)}.{int((t - sec) * 1e6):06d}Z"

    def nano(self, ns: int) -> str:
        sec, frac = divmod(ns, 1_000_000_000)
        return f"{self._base(sec)}.{frac:09d}Z"


class NoiseGenerator:
    """Writes benign audit and Tetragon records at `rate` per wall-clock second."""

    def __init__(
        self,
        *,
        store: Any,
        audit: Any,
        outputs: SimOutputs,
        clock: SimClock,
        rate: float,
        seed: int = 1,
        audit_share: float = 0.6,  # of the records written
        tick: float = 0.05,
    ) -> None:
        if rate < 0:
            raise ValueError("noise rate must not be negative")
        self.store = store
        self.audit_writer = audit
        self.outputs = outputs
        self.clock = clock
        self.rate = rate
        self.audit_share = audit_share
        # A probe is two records (exec, exit): choose audit more often to get the share.
        self._audit_p = 2 * audit_share / (1 + audit_share)
        self.started: float | None = None  # time.monotonic() when run() began writing
        self.tick = tick
        self.rng = random.Random(seed ^ 0x5EED)
        self.written = 0  # records written so far
        self._time = _TimeText()
        # A random uuid4-shaped prefix; a counter makes each auditID unique.
        h = f"{self.rng.getrandbits(64):016x}{self.rng.getrandbits(16):04x}"
        self._id_prefix = f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-"
        self._counter = 0
        self._audit_templates: list[dict[str, Any]] = []
        self._procs: list[tuple[str, dict[str, Any], str, str, str]] = []
        self._shim_ids: dict[str, str] = {}
        self._templates_at = -1e9
        self._pid = 40000

    # ------------------------------------------------------------ templates

    def refresh(self) -> None:
        """Rebuild the templates from the cluster as it is now."""
        self._audit_templates = self._build_audit_templates()
        self._shim_ids = {}
        self._procs = self._build_process_templates()
        self._templates_at = time.monotonic()

    def _build_audit_templates(self) -> list[dict[str, Any]]:
        writer_cls = type(self.audit_writer)
        fmt = writer_cls(_Capture(), self.clock)  # same format as the real writer
        now = self.clock.now()
        specs: list[dict[str, Any]] = []

        def add(user: str, groups: list[str], verb: str, uri: str, ref: dict[str, Any],
                ip: str = CONTROL_PLANE_IP, agent: str = _KCM) -> None:  # fmt: skip
            specs.append(
                {
                    "user": user,
                    "groups": groups,
                    "verb": verb,
                    "uri": uri,
                    "object_ref": ref,
                    "code": 200,
                    "source_ips": [ip],
                    "user_agent": agent,
                }
            )

        for holder in ("kube-controller-manager", "kube-scheduler"):
            add(
                f"system:{holder}",
                ["system:authenticated"],
                "update",
                f"/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/{holder}",
                _ref("leases", "kube-system", holder, "coordination.k8s.io"),
                agent=component_agent(holder) + "/leader-election",
            )
        for node in self.store.list_objs("v1", "Node"):
            name = node["metadata"]["name"]
            ip = next(
                (
                    a["address"]
                    for a in node.get("status", {}).get("addresses", [])
                    if a.get("type") == "InternalIP"
                ),
                CONTROL_PLANE_IP,
            )
            groups = ["system:nodes", "system:authenticated"]
            user = f"system:node:{name}"
            add(
                user,
                groups,
                "update",
                f"/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{name}",
                _ref("leases", "kube-node-lease", name, "coordination.k8s.io"),
                ip,
                _KUBELET,
            )
            add(user, groups, "get", f"/api/v1/nodes/{name}?resourceVersion=0",
                _ref("nodes", None, name), ip, _KUBELET)  # fmt: skip
            add(user, groups, "watch",
                f"/api/v1/pods?allowWatchBookmarks=true&fieldSelector=spec.nodeName%3D{name}"
                "&resourceVersion=48211&timeoutSeconds=529&watch=true",
                _ref("pods", None, None), ip, _KUBELET)  # fmt: skip
        for pod in self.store.list_objs("v1", "Pod")[:200]:
            ns = pod["metadata"].get("namespace", "default")
            node = pod["spec"].get("nodeName")
            if not node:
                continue
            add(f"system:node:{node}", ["system:nodes", "system:authenticated"], "get",
                f"/api/v1/namespaces/{ns}/configmaps/kube-root-ca.crt",
                _ref("configmaps", ns, "kube-root-ca.crt"),
                pod.get("status", {}).get("hostIP", CONTROL_PLANE_IP), _KUBELET)  # fmt: skip
        for svc in self.store.list_objs("v1", "Service")[:100]:
            ns, name = svc["metadata"].get("namespace", "default"), svc["metadata"]["name"]
            user = "system:serviceaccount:kube-system:endpointslice-controller"
            add(f"{user}", _SA_GROUPS, "update",
                f"/apis/discovery.k8s.io/v1/namespaces/{ns}/endpointslices/{name}-{_tail(name)}",
                _ref("endpointslices", ns, f"{name}-{_tail(name)}", "discovery.k8s.io"),
                agent=f"{_KCM}/{user}")  # fmt: skip
        for sa, resource, group in (
            ("kube-proxy", "endpointslices", "discovery.k8s.io"),
            ("kube-proxy", "services", ""),
            ("coredns", "endpointslices", "discovery.k8s.io"),
            ("coredns", "namespaces", ""),
            ("generic-garbage-collector", "replicasets", "apps"),
            ("replicaset-controller", "pods", ""),
            ("deployment-controller", "deployments", "apps"),
            ("daemon-set-controller", "daemonsets", "apps"),
        ):
            user = f"system:serviceaccount:kube-system:{sa}"
            prefix = f"/apis/{group}/v1" if group else "/api/v1"
            add(user, _SA_GROUPS, "watch",
                f"{prefix}/{resource}?allowWatchBookmarks=true&resourceVersion=48211"
                "&timeoutSeconds=486&watch=true",
                _ref(resource, None, None, group), agent=f"{_KCM}/{user}")  # fmt: skip
            add(user, _SA_GROUPS, "list", f"{prefix}/{resource}?limit=500&resourceVersion=0",
                _ref(resource, None, None, group), agent=f"{_KCM}/{user}")  # fmt: skip
        out = []
        for spec in specs:
            event = fmt.emit(**spec, level="Metadata", time=now)
            event.pop("auditID", None)
            out.append(event)
        return out

    def _build_process_templates(self) -> list[tuple[str, dict[str, Any], str, str, str]]:
        procs = []
        for pod in self.store.list_objs("v1", "Pod"):
            labels = pod["metadata"].get("labels") or {}
            app = labels.get("app.kubernetes.io/name") or labels.get("app") or ""
            node = pod["spec"].get("nodeName")
            if app in _AGENT_APPS or not node or pod.get("status", {}).get("phase") != "Running":
                continue
            for st in pod["status"].get("containerStatuses") or []:
                if "running" not in (st.get("state") or {}) or not st.get("containerID"):
                    continue
                info = tetragon_pod_info(pod, st, 23)
                cid = st["containerID"].split("://", 1)[-1]
                image = st.get("image", "")
                probe = next((v for k, v in _PROBES.items() if k in image), None)
                binary, args = probe or _GENERIC_PROBES[len(procs) % len(_GENERIC_PROBES)]
                started = parse_rfc3339_or_none(st["state"]["running"].get("startedAt")) or 0.0
                # The container's shim: the parent of every exec probe in it.
                self._shim_ids[cid] = _exec_id(node, int(started * 1e9) % 10**15, 2000 + len(procs))
                procs.append((node, info, cid, binary, args))
        return procs

    # ------------------------------------------------------------ generating

    def _audit_id(self) -> str:
        self._counter += 1
        return f"{self._id_prefix}{self._counter:012x}"

    def generate(self, n: int, t0: float, t1: float) -> tuple[list[dict], list[dict]]:
        """`n` records with times spread over [t0, t1]: (audit events, Tetragon events)."""
        if time.monotonic() - self._templates_at > 10 or not self._audit_templates:
            self.refresh()
        audits: list[dict] = []
        tetragon: list[dict] = []
        span = max(t1 - t0, 0.0)
        step = span / n if n else 0.0
        rnd = self.rng.random
        templates = self._audit_templates
        procs = self._procs
        fmt = self._time
        i = 0
        while i < n:
            t = t0 + i * step
            if rnd() < self._audit_p or not procs:
                tpl = templates[int(rnd() * len(templates))]
                event = dict(tpl)
                event["auditID"] = self._audit_id()
                event["requestReceivedTimestamp"] = fmt.micro(t)
                event["stageTimestamp"] = fmt.micro(t + 0.0012)
                audits.append(event)
                i += 1
                continue
            # One probe: exec and exit (two records).
            node, info, cid, binary, args = procs[int(rnd() * len(procs))]
            self._pid += 1
            if self._pid > 4_000_000:
                self._pid = 40000
            ns = int(t * 1e9)
            exec_id = _exec_id(node, ns % 10**15, self._pid)
            stamp = fmt.nano(ns)
            process = {
                "exec_id": exec_id,
                "pid": self._pid,
                "uid": 0,
                "cwd": "/",
                "binary": binary,
                "arguments": args,
                "flags": "execve rootcwd clone",
                "start_time": stamp,
                "auid": 4294967295,
                "pod": info,
                "docker": cid[:31],
                "parent_exec_id": self._shim_ids[cid],
                "tid": self._pid,
            }
            tetragon.append(
                {"process_exec": {"process": process}, "node_name": node, "time": stamp}
            )
            end = fmt.nano(ns + 4_000_000)
            tetragon.append(
                {"process_exit": {"process": process, "time": end}, "node_name": node, "time": end}
            )
            i += 2
        return audits, tetragon

    def emit(self, n: int, t0: float, t1: float) -> int:
        """Generate and write `n` records; returns how many were written."""
        audits, tetragon = self.generate(n, t0, t1)
        if audits:
            self.outputs.audit.write_many(audits)
        if tetragon:
            self.outputs.tetragon.write_many(tetragon)
        written = len(audits) + len(tetragon)
        self.written += written
        return written

    async def run(self) -> None:
        """Write noise until cancelled; the count follows wall-clock time exactly."""
        if self.rate <= 0:
            return
        await asyncio.to_thread(self.refresh)
        start_wall = self.started = time.monotonic()
        last_t = self.clock.now()
        due_written = 0  # records owed up to the last tick

        # A cancelled to_thread() leaves its thread running: the final catch-up waits.
        lock = threading.Lock()

        def catch_up() -> None:
            nonlocal last_t, due_written
            with lock:
                due = int(self.rate * (time.monotonic() - start_wall))
                n = due - due_written
                now_t = self.clock.now()
                if n > 0:
                    due_written += self.emit(n, last_t, now_t)
                last_t = now_t

        try:
            while True:
                await asyncio.sleep(self.tick)
                await asyncio.to_thread(catch_up)
        except asyncio.CancelledError:
            catch_up()
            raise


def _exec_id(node: str, ktime: int, pid: int) -> str:
    return base64.b64encode(f"{node}:{ktime}:{pid}".encode()).decode()


def _tail(name: str) -> str:
    return safe_encode((name * 5)[:5])
