"""Replay throughput and memory, against a bare `orjson.loads` loop in the same run.

    python benchmarks/replay.py [--lines 200000] [--keep FILE]

Generates a mixed file (audit ~70 %, Tetragon ~25 %, Falco ~5 %, with realistic
record sizes and a few attacks among the noise), then measures:

The workload is a cluster of 300 pods (50 per namespace in 6 namespaces), each
with one long-lived container on one of three nodes: Tetragon and Falco events
name those few hundred containers again and again, as a real node's would (every
exec still has its own exec_id).

- baseline: read the file line by line and `orjson.loads` each line, nothing else;
- replay: ktriage's whole pipeline (format detection, parsing, detection,
  store, correlation) on the same file;
- resident memory per retained event (RSS growth over the replay / events kept).

Prints the figures and the ratio replay/baseline (higher is better; >1 beats the
bare parse), by wall time and by CPU time (steadier on a shared machine).
"""

from __future__ import annotations

import argparse
import base64
import gc
import multiprocessing
import os
import random
import resource
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from queue import Empty
from typing import TypeVar

import orjson

from ktriage.core.correlate import Correlator
from ktriage.core.replay import Replayer

T0 = 1_790_000_000.0
T = TypeVar("T")
NAMESPACES = ["shop", "billing", "payments", "dev", "monitoring", "ci"]
VERBS = ["get", "list", "watch", "update", "patch", "create"]
RESOURCES = ["pods", "configmaps", "leases", "endpoints", "services", "deployments", "events"]
USERS = [
    "system:kube-controller-manager",
    "system:serviceaccount:kube-system:replicaset-controller",
    "system:node:node-a",
    "system:node:node-b",
    "system:kube-scheduler",
    "alice@example.com",
]


def rfc3339(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int(ts % 1 * 1e6):06d}Z"


def audit_line(rng: random.Random, ts: float, i: int) -> dict:
    ns = rng.choice(NAMESPACES)
    res = rng.choice(RESOURCES)
    verb = rng.choice(VERBS)
    user = rng.choice(USERS)
    name = f"{res[:-1]}-{rng.randrange(10_000):04d}"
    exec_attack = i % 5_000 == 17
    if exec_attack:
        res, verb, user, ns, name = "pods", "create", "mallory", "shop", "storefront-7d9f8-x2kq"
    obj = {
        "resource": res,
        "namespace": ns,
        "name": name,
        "apiVersion": "v1" if res in ("pods", "configmaps", "endpoints", "services") else "apps/v1",
    }
    if exec_attack:
        obj["subresource"] = "exec"
    return {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": "Metadata",
        "auditID": str(uuid.UUID(int=rng.getrandbits(128))),
        "stage": "ResponseComplete",
        "requestURI": f"/api/v1/namespaces/{ns}/{res}/{name}"
        + ("/exec?command=sh&container=web&stdin=true&tty=true" if exec_attack else ""),
        "verb": verb,
        "user": {"username": user, "groups": ["system:authenticated"]},
        # Control-plane clients and kubelets come from a few node addresses; the
        # attacker from outside.
        "sourceIPs": ["203.0.113.50" if exec_attack else f"10.0.0.{USERS.index(user) + 1}"],
        "userAgent": "kube-controller-manager/v1.37.0 (linux/amd64) kubernetes/abc1234",
        "objectRef": obj,
        "responseStatus": {"metadata": {}, "code": 101 if exec_attack else 200},
        "requestReceivedTimestamp": rfc3339(ts - 0.003),
        "stageTimestamp": rfc3339(ts),
        "annotations": {
            "authorization.k8s.io/decision": "allow",
            "authorization.k8s.io/reason": (
                'RBAC: allowed by ClusterRoleBinding "system:controller"'
            ),
        },
    }


def _container(ns: str, pod: str) -> tuple[str, str]:
    """The one container (64-hex id) and node of a pod: stable for the whole run."""
    key = f"{ns}/{pod}"
    found = CONTAINERS.get(key)
    if found is None:
        rng = random.Random(key)
        found = CONTAINERS[key] = (f"{rng.getrandbits(256):064x}", f"node-{rng.choice('abc')}")
    return found


CONTAINERS: dict[str, tuple[str, str]] = {}


def tetragon_line(rng: random.Random, ts: float, i: int) -> dict:
    ns = rng.choice(NAMESPACES)
    pod = f"app-{rng.randrange(50):02d}"
    binary = rng.choice(["/usr/bin/python3", "/usr/local/bin/node", "/bin/date", "/usr/bin/env"])
    if i % 4_000 == 11:
        ns, pod, binary = "shop", "storefront-7d9f8-x2kq", "/bin/sh"
    cid, node = _container(ns, pod)
    exec_id = base64.b64encode(f"{node}:{rng.getrandbits(40)}:{rng.randrange(99999)}".encode())
    process = {
        "exec_id": exec_id.decode(),
        "pid": rng.randrange(1, 99999),
        "uid": 1000,
        "cwd": "/app",
        "binary": binary,
        "arguments": "-m app.worker --queue default",
        "flags": "execve clone",
        "start_time": rfc3339(ts),
        "auid": 4294967295,
        "pod": {
            "namespace": ns,
            "name": pod,
            "container": {
                "id": f"containerd://{cid}",
                "name": "app",
                "image": {"id": f"docker.io/library/app@sha256:{cid}", "name": "app:1.4.2"},
                "start_time": rfc3339(ts - 3600),
                "pid": 12,
            },
            "pod_labels": {"app": pod.rsplit("-", 1)[0], "pod-template-hash": "7d9f8"},
        },
        "docker": cid[:31],
        "parent_exec_id": exec_id.decode(),
        "refcnt": 1,
    }
    kind = "process_exec" if rng.random() < 0.55 else "process_exit"
    body: dict = {"process": process, "parent": dict(process, binary="/usr/bin/containerd-shim")}
    if kind == "process_exit":
        body = {"process": process, "parent": body["parent"], "signal": "", "status": 0}
    return {kind: body, "node_name": node, "time": rfc3339(ts)}


# Falco streams are dominated by a few chatty rules on a few workloads: operators
# that talk to the API server, and the sensor's own drop notices.
AGENT_PODS = [("monitoring", f"app-{i:02d}") for i in range(5)]


def falco_line(rng: random.Random, ts: float, i: int) -> dict:
    r = rng.random()
    if r < 0.005:
        ns, pod = "shop", "storefront-7d9f8-x2kq"
        rule, prio, cmd = "Read sensitive file untrusted", "Warning", "cat /etc/shadow"
    elif r < 0.60:
        ns, pod = rng.choice(AGENT_PODS)
        rule, prio, cmd = "Contact K8S API Server From Container", "Notice", "operator --watch"
    else:
        return {
            "uuid": str(uuid.UUID(int=rng.getrandbits(128))),
            "time": rfc3339(ts)[:-1] + "123Z",
            "rule": "Falco internal: syscall event drop",
            "priority": "Debug",
            "source": "syscall",
            "hostname": f"node-{rng.choice('abc')}",
            "output": "Falco internal: syscall event drop. "
            "1520 system calls dropped in last second.",
            "output_fields": {"n_drops": 1520, "n_evts": 2270350},
        }
    cid, node = _container(ns, pod)
    cid = cid[:12]
    return {
        "uuid": str(uuid.UUID(int=rng.getrandbits(128))),
        "time": rfc3339(ts)[:-1] + "123Z",
        "rule": rule,
        "priority": prio,
        "source": "syscall",
        "hostname": node,
        "output": f"{rule} (user=root command={cmd} container_id={cid} k8s_pod={pod})",
        "output_fields": {
            "container.id": cid,
            "k8s.ns.name": ns,
            "k8s.pod.name": pod,
            "proc.cmdline": cmd,
            "user.name": "root",
            "evt.time": int(ts * 1e9),
        },
        "tags": ["filesystem", "mitre_credential_access", "T1555"],
    }


def generate(path: Path, lines: int, seed: int = 1) -> None:
    rng = random.Random(seed)
    with open(path, "wb") as fh:
        for i in range(lines):
            ts = T0 + i * 0.01
            r = rng.random()
            if r < 0.70:
                rec = audit_line(rng, ts, i)
            elif r < 0.95:
                rec = tetragon_line(rng, ts, i)
            else:
                rec = falco_line(rng, ts, i)
            fh.write(orjson.dumps(rec) + b"\n")


def rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def baseline(path: Path) -> tuple[float, float, int]:
    """(wall seconds, CPU seconds, lines) of the bare parse."""
    start, cpu = time.perf_counter(), cpu_seconds()
    n = 0
    loads = orjson.loads
    with open(path, "rb") as fh:
        for line in fh:
            loads(line)
            n += 1
    return time.perf_counter() - start, cpu_seconds() - cpu, n


def cpu_seconds() -> float:
    """CPU time of this process and of its helper processes that have ended."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    helpers = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + helpers.ru_utime + helpers.ru_stime


def replay(path: Path, focus: bool) -> tuple[float, float, int, int, int, int]:
    """(wall s, CPU s, events kept, RSS growth, lines skipped, incidents).

    Focused as `ktriage replay` runs it: pass 1 of a large file shared with a
    helper process, whose CPU time is counted too."""
    gc.collect()
    before = rss_bytes()
    correlator = Correlator()
    replayer = Replayer(correlator, focus=focus, parallel=focus)
    start, cpu = time.perf_counter(), cpu_seconds()
    replayer.replay([path])
    elapsed, cpu_s = time.perf_counter() - start, cpu_seconds() - cpu
    gc.collect()
    grown = rss_bytes() - before
    skipped = sum(replayer.ingestor.skipped.values())
    return elapsed, cpu_s, len(correlator.store), grown, skipped, len(correlator.incidents)


def in_child(target: Callable[..., T], *args: object) -> T:
    """Run one measurement in a fresh process, so memory figures do not mix."""
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    proc = ctx.Process(target=lambda: queue.put(target(*args)))
    proc.start()
    while True:
        try:
            result = queue.get(timeout=1.0)
            break
        except Empty:
            if not proc.is_alive():
                raise RuntimeError(
                    f"the measuring process failed (exit code {proc.exitcode})"
                ) from None
    proc.join()
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=200_000)
    parser.add_argument(
        "--rounds",
        type=int,
        default=5,
        help="baseline and focused replay alternate this many times; the fastest of "
        "each counts (other work on the machine only ever slows a run down)",
    )
    parser.add_argument("--keep", type=Path, help="write the generated file here and keep it")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = args.keep or Path(tmp) / "mixed.jsonl"
        generate(path, args.lines)
        size = path.stat().st_size
        baseline(path)  # warms the page cache
        bases, focused = [], []
        for _ in range(max(1, args.rounds)):
            bases.append(in_child(baseline, path))
            focused.append(in_child(replay, path, True))
        full = in_child(replay, path, False)
        n = bases[0][2]
        base_s = min(r[0] for r in bases)
        base_cpu = min(r[1] for r in bases)
        print(f"input: {n} lines, {size / 1e6:.1f} MB; {len(bases)} rounds")
        print(f"baseline orjson.loads: {n / base_s:,.0f} lines/s ({base_s:.2f} s)")
        round_ratios = sorted(b[0] / f[0] for b, f in zip(bases, focused, strict=True))
        for label, runs in (
            ("ktriage replay (focused, as replay --json/--markdown/--text)", focused),
            ("full pipeline (every line an event, as the UI loads a replay)", [full]),
        ):
            rep_s = min(r[0] for r in runs)
            rep_cpu = min(r[1] for r in runs)
            _, _, events, grown, skipped, incidents = min(runs)
            print(f"{label}:")
            print(
                f"  {n / rep_s:,.0f} lines/s ({rep_s:.2f} s); {events} events kept, "
                f"{incidents} incidents, {skipped} lines skipped"
            )
            # CPU time is steadier than wall time when other work shares the cores.
            print(
                f"  ratio to baseline: {base_s / rep_s:.2f}x by wall time, "
                f"{base_cpu / rep_cpu:.2f}x by CPU time"
            )
            if len(runs) > 1:
                print(
                    f"  ratio round by round: {round_ratios[0]:.2f}x to "
                    f"{round_ratios[-1]:.2f}x (median {round_ratios[len(round_ratios) // 2]:.2f}x)"
                )
            print(
                f"  memory: {grown / 1e6:.1f} MB RSS growth, "
                f"{grown / max(events, 1):.0f} bytes per kept event, "
                f"{grown / n:.0f} bytes per input line"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
