"""The input mixes the replay and pipeline benchmarks measure, generated at fixed seeds.

    python benchmarks/mixes.py NAME FILE [--lines N] [--seed S]

Importable (the benchmarks and tests load this file by path):

    write_mix(name: str, path: Path, lines: int, seed: int = 1) -> None
    MIXES: the mix names, each with its default line count

- `project`: the project's own mix (audit ~70 %, Tetragon ~25 %, Falco ~5 %) of a
  300-pod cluster (50 pods in each of 6 namespaces, one long-lived container each,
  on three nodes), with a few attacks among the noise. Measured at 200k lines, and
  at 1M lines as the fourth figure.
- `small_audit_noise`: small audit lines (~650 B: kubelets patching pod status and
  renewing leases, controllers listing and watching) with 5 % Notice-level Falco
  alerts spread over 20,000 pods, and the same few attacks.
- `tetragon_heavy`: 85 % Tetragon exec/exit of 2,000 pods, the rest audit and Falco.

The same name, line count and seed always give the same bytes (a test compares the
reports of these files with recorded ones).
"""

from __future__ import annotations

import argparse
import base64
import os
import random
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

T0 = 1_790_000_000.0
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
# The mixes and the line count each is measured at by default.
MIXES: dict[str, int] = {
    "project": 200_000,
    "small_audit_noise": 400_000,
    "tetragon_heavy": 200_000,
}
# The fourth figure: the project's mix at this many lines.
PROJECT_LARGE_LINES = 1_000_000

Record = dict[str, Any]


def rfc3339(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int(ts % 1 * 1e6):06d}Z"


def audit_line(rng: random.Random, ts: float, i: int) -> Record:
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


CONTAINERS: dict[str, tuple[str, str]] = {}


def _container(ns: str, pod: str) -> tuple[str, str]:
    """The one container (64-hex id) and node of a pod: stable for the whole run."""
    key = f"{ns}/{pod}"
    found = CONTAINERS.get(key)
    if found is None:
        rng = random.Random(key)
        found = CONTAINERS[key] = (f"{rng.getrandbits(256):064x}", f"node-{rng.choice('abc')}")
    return found


def tetragon_line(rng: random.Random, ts: float, i: int, pods: int = 50) -> Record:
    ns = rng.choice(NAMESPACES)
    pod = f"app-{rng.randrange(pods):02d}"
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
    body: Record = {"process": process, "parent": dict(process, binary="/usr/bin/containerd-shim")}
    if kind == "process_exit":
        body = {"process": process, "parent": body["parent"], "signal": "", "status": 0}
    return {kind: body, "node_name": node, "time": rfc3339(ts)}


# Falco streams are dominated by a few chatty rules on a few workloads: operators
# that talk to the API server, and the sensor's own drop notices.
AGENT_PODS = [("monitoring", f"app-{i:02d}") for i in range(5)]


def _falco_alert(
    rng: random.Random, ts: float, ns: str, pod: str, rule: str, prio: str, cmd: str
) -> Record:
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


def falco_line(rng: random.Random, ts: float, i: int) -> Record:
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
    return _falco_alert(rng, ts, ns, pod, rule, prio, cmd)


# The small-line mix: 20,000 pods over 40 namespaces and 100 nodes.
SMALL_PODS = 20_000
SMALL_NAMESPACES = [f"team-{i:02d}" for i in range(40)]
SMALL_NODES = 100


def _small_pod(index: int) -> tuple[str, str, int]:
    """(namespace, name, node number) of pod `index` of the small-line mix."""
    ns = SMALL_NAMESPACES[index % len(SMALL_NAMESPACES)]
    return ns, f"svc-{index // len(SMALL_NAMESPACES):03d}-{index:05x}", index % SMALL_NODES


def small_audit_line(rng: random.Random, ts: float, i: int) -> Record:
    """A short Metadata-level record (~650 B): a kubelet patching its pods' status or
    renewing its lease, or a controller listing and watching."""
    r = rng.random()
    if r < 0.45:
        ns, pod, node = _small_pod(rng.randrange(SMALL_PODS))
        user, agent = f"system:node:node-{node:03d}", "kubelet/v1.37.0 (linux/amd64)"
        verb, res, sub, name, ip = "patch", "pods", "status", pod, f"10.1.{node}.1"
    elif r < 0.75:
        node = rng.randrange(SMALL_NODES)
        ns, name = "kube-node-lease", f"node-{node:03d}"
        user, agent = f"system:node:{name}", "kubelet/v1.37.0 (linux/amd64)"
        verb, res, sub, ip = "update", "leases", "", f"10.1.{node}.1"
    else:
        ns = rng.choice(SMALL_NAMESPACES)
        user = rng.choice(USERS[:2] + USERS[4:5])
        agent = "kube-controller-manager/v1.37.0 (linux/amd64)"
        verb, res, sub, name = rng.choice(["list", "watch", "get"]), "endpoints", "", ""
        ip = "10.0.0.1"
    obj: Record = {"resource": res, "namespace": ns, "apiVersion": "v1"}
    if name:
        obj["name"] = name
    if sub:
        obj["subresource"] = sub
    uri = (
        f"/api/v1/namespaces/{ns}/{res}" + (f"/{name}" if name else "") + (f"/{sub}" if sub else "")
    )
    return {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": "Metadata",
        "auditID": str(uuid.UUID(int=rng.getrandbits(128))),
        "stage": "ResponseComplete",
        "requestURI": uri,
        "verb": verb,
        "user": {"username": user, "groups": ["system:nodes", "system:authenticated"]},
        "sourceIPs": [ip],
        "userAgent": agent,
        "objectRef": obj,
        "responseStatus": {"metadata": {}, "code": 200},
        "requestReceivedTimestamp": rfc3339(ts - 0.002),
        "stageTimestamp": rfc3339(ts),
        "annotations": {"authorization.k8s.io/decision": "allow"},
    }


def small_falco_line(rng: random.Random, ts: float, i: int) -> Record:
    """A Notice-level alert on one of the 20,000 pods (now and then a real one)."""
    if rng.random() < 0.002:
        return _falco_alert(
            rng, ts, "shop", "storefront-7d9f8-x2kq",
            "Read sensitive file untrusted", "Warning", "cat /etc/shadow",
        )  # fmt: skip
    ns, pod, _ = _small_pod(rng.randrange(SMALL_PODS))
    rule = "Contact K8S API Server From Container"
    return _falco_alert(rng, ts, ns, pod, rule, "Notice", "operator --watch")


def _project(rng: random.Random, ts: float, i: int) -> Record:
    r = rng.random()
    if r < 0.70:
        return audit_line(rng, ts, i)
    if r < 0.95:
        return tetragon_line(rng, ts, i)
    return falco_line(rng, ts, i)


def _small_audit_noise(rng: random.Random, ts: float, i: int) -> Record:
    if i % 5_000 == 17:
        return audit_line(rng, ts, i)  # the exec attack
    if rng.random() < 0.05:
        return small_falco_line(rng, ts, i)
    return small_audit_line(rng, ts, i)


def _tetragon_heavy(rng: random.Random, ts: float, i: int) -> Record:
    r = rng.random()
    if r < 0.85:
        # 2,000 pods: 6 namespaces of 334 (app-000 .. app-333).
        return tetragon_line(rng, ts, i, pods=334)
    if r < 0.97:
        return audit_line(rng, ts, i)
    return falco_line(rng, ts, i)


_LINE: dict[str, Callable[[random.Random, float, int], Record]] = {
    "project": _project,
    "small_audit_noise": _small_audit_noise,
    "tetragon_heavy": _tetragon_heavy,
}


def write_mix(name: str, path: Path, lines: int, seed: int = 1) -> None:
    """Write `lines` JSON lines of mix `name` to `path` (the same bytes for the same
    arguments, whatever was generated before)."""
    try:
        make = _LINE[name]
    except KeyError:
        raise ValueError(f"unknown mix {name!r}; the mixes: {', '.join(MIXES)}") from None
    CONTAINERS.clear()
    rng = random.Random(seed)
    dumps = orjson.dumps
    with open(path, "wb") as fh:
        out: list[bytes] = []
        for i in range(lines):
            out.append(dumps(make(rng, T0 + i * 0.01, i)))
            if len(out) >= 4096:
                fh.write(b"\n".join(out) + b"\n")
                out.clear()
        if out:
            fh.write(b"\n".join(out) + b"\n")
        # On disk before anything is timed: hundreds of megabytes still being written
        # back in the background share the machine with the runs that read them.
        fh.flush()
        os.fsync(fh.fileno())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name", choices=sorted(MIXES))
    parser.add_argument("path", type=Path)
    parser.add_argument("--lines", type=int, help="default: the mix's own")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    write_mix(args.name, args.path, args.lines or MIXES[args.name], args.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
