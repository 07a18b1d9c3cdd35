"""metrics-server's part: NodeMetrics and PodMetrics with plausible usage derived from the
pods' requests (a steady fraction, varied per container by a hash of its name), kept in
the store so `kubectl top` reads them like any object."""

from __future__ import annotations

import asyncio
import hashlib
import re
from typing import Any

from ktriage.sim.controllers.watching import wake_on_changes
from ktriage.sim.timefmt import rfc3339

VERSION = "metrics.k8s.io/v1beta1"
_QUANTITY = re.compile(r"^([0-9.]+)([a-zA-Z]*)$")
_SUFFIX = {
    "": 1,
    "n": 1e-9,
    "u": 1e-6,
    "m": 1e-3,
    "k": 1e3,
    "M": 1e6,
    "G": 1e9,
    "T": 1e12,
    "Ki": 1024,
    "Mi": 1024**2,
    "Gi": 1024**3,
    "Ti": 1024**4,
}
DEFAULT_CPU = 0.01  # cores a container without requests is shown using at most
DEFAULT_MEMORY = 24 * 1024**2
NODE_BASE_CPU = 0.12  # the node's own daemons
NODE_BASE_MEMORY = 700 * 1024**2


def quantity(text: Any) -> float:
    """A resource.Quantity as a number (cores, bytes); 0 for what does not parse."""
    m = _QUANTITY.match(str(text or "").strip())
    if not m or m.group(2) not in _SUFFIX:
        return 0.0
    try:
        return float(m.group(1)) * _SUFFIX[m.group(2)]
    except ValueError:
        return 0.0


def _fraction(*parts: str) -> float:
    """A stable 0.2-0.7 per container, so the numbers differ but do not move."""
    digest = hashlib.sha256("\0".join(parts).encode()).digest()
    return 0.2 + (digest[0] / 255) * 0.5


def container_usage(namespace: str, pod: str, container: dict) -> tuple[float, float]:
    requests = (container.get("resources") or {}).get("requests") or {}
    share = _fraction(namespace, pod, container.get("name", ""))
    cpu = quantity(requests.get("cpu")) or DEFAULT_CPU
    memory = quantity(requests.get("memory")) or DEFAULT_MEMORY
    return cpu * share, memory * share


def cpu_text(cores: float) -> str:
    return f"{round(cores * 1e9)}n"


def memory_text(octets: float) -> str:
    return f"{round(octets / 1024)}Ki"


def pod_metrics(pod: dict, now: float) -> dict:
    meta = pod["metadata"]
    containers = []
    for c in (pod.get("spec") or {}).get("containers") or []:
        cpu, memory = container_usage(meta.get("namespace", ""), meta["name"], c)
        containers.append(
            {
                "name": c.get("name", ""),
                "usage": {"cpu": cpu_text(cpu), "memory": memory_text(memory)},
            }
        )
    return {
        "apiVersion": VERSION,
        "kind": "PodMetrics",
        "metadata": {
            "name": meta["name"],
            "namespace": meta.get("namespace", ""),
            "labels": dict(meta.get("labels") or {}),
        },
        "timestamp": rfc3339(now),
        "window": "15s",
        "containers": containers,
    }


def node_metrics(node: dict, pods: list[dict], now: float) -> dict:
    name = node["metadata"]["name"]
    cpu, memory = NODE_BASE_CPU, NODE_BASE_MEMORY
    for pod in pods:
        if (pod.get("spec") or {}).get("nodeName") != name:
            continue
        meta = pod["metadata"]
        for c in (pod.get("spec") or {}).get("containers") or []:
            c_cpu, c_mem = container_usage(meta.get("namespace", ""), meta["name"], c)
            cpu, memory = cpu + c_cpu, memory + c_mem
    return {
        "apiVersion": VERSION,
        "kind": "NodeMetrics",
        "metadata": {"name": name, "labels": dict(node["metadata"].get("labels") or {})},
        "timestamp": rfc3339(now),
        "window": "20s",
        "usage": {"cpu": cpu_text(cpu), "memory": memory_text(memory)},
    }


def _same(a: dict | None, b: dict) -> bool:
    if a is None:
        return False
    keys = ("containers", "usage")
    return all(a.get(k) == b.get(k) for k in keys) and (a["metadata"].get("labels") or {}) == (
        b["metadata"].get("labels") or {}
    )


def refresh(store: Any, clock: Any) -> None:
    now = clock.now()
    pods = [
        p
        for p in store.list_objs("v1", "Pod")
        if (p.get("status") or {}).get("phase") == "Running"
        and not p["metadata"].get("deletionTimestamp")
    ]
    wanted = {(p["metadata"].get("namespace", ""), p["metadata"]["name"]): p for p in pods}
    for old in store.list_objs(VERSION, "PodMetrics"):
        key = (old["metadata"].get("namespace", ""), old["metadata"]["name"])
        if key not in wanted:
            store.delete(VERSION, "PodMetrics", key[0], key[1])
    for (namespace, name), pod in wanted.items():
        fresh = pod_metrics(pod, now)
        if not _same(store.get_obj(VERSION, "PodMetrics", namespace, name), fresh):
            store.apply(fresh)
    nodes = store.list_objs("v1", "Node")
    names = {n["metadata"]["name"] for n in nodes}
    for old in store.list_objs(VERSION, "NodeMetrics"):
        if old["metadata"]["name"] not in names:
            store.delete(VERSION, "NodeMetrics", None, old["metadata"]["name"])
    for node in nodes:
        fresh = node_metrics(node, pods, now)
        if not _same(store.get_obj(VERSION, "NodeMetrics", None, node["metadata"]["name"]), fresh):
            store.apply(fresh)


async def run(store: Any, clock: Any) -> None:
    """Refresh on every pod or node change (what a scrape would see)."""
    with wake_on_changes(store, [("v1", "Pod"), ("v1", "Node")]) as wake:
        wake.set()
        while True:
            await wake.wait()
            wake.clear()
            refresh(store, clock)
            await asyncio.sleep(0.05)  # let a burst of changes settle into one refresh
