"""Benchmark: dump a pod's large log through ktriage's evidence action.

Starts a simulated cluster on loopback, appends `--mib` MiB of log lines to one
container, and runs the dump in a separate process (so only the client's memory
is measured): wall time, throughput, tracemalloc peak and the growth of the
process's resident high-water mark.

    .venv/bin/python benchmarks/logs_dump.py --mib 50
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ktriage.sim.runner import SimCluster

LINE = 1023  # characters per line; with the newline, 1 KiB

CLIENT = """
import asyncio, json, sys, time, tracemalloc
from pathlib import Path
from ktriage.actions import ActionService, kubeconfig_factory

def vm(key):
    for line in open("/proc/self/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0

async def main():
    kubeconfig, snapshots = sys.argv[1:3]
    service = ActionService(None, kubeconfig_factory(kubeconfig, "sim-admin"), Path(snapshots))
    plan = await service.prepare("l", "INC-BENCH", ("bench", "big"))
    tracemalloc.start()
    hwm = vm("VmHWM")
    started = time.perf_counter()
    outcome = await service.apply(plan)
    seconds = time.perf_counter() - started
    print(json.dumps({"result": outcome.result, "seconds": seconds,
                      "peak": tracemalloc.get_traced_memory()[1],
                      "hwm_growth_kib": vm("VmHWM") - hwm,
                      "bytes": sum(f["bytes"] for f in outcome.files)}))
    service.close()

asyncio.run(main())
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=50, help="log size in MiB (default 50)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        with SimCluster(Path(tmp) / "sim") as sim:
            sim.store.apply(
                {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "bench"}}
            )
            sim.store.apply(
                {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "metadata": {"name": "big", "namespace": "bench"},
                    "spec": {"nodeName": "n1", "containers": [{"name": "app", "image": "x:1"}]},
                }
            )
            lines = args.mib * 1024
            for i in range(lines):
                sim.store.append_log("bench", "big", "app", f"{i:08d} " + "x" * (LINE - 9))
            repo = Path(__file__).resolve().parents[1]
            env = dict(os.environ, PYTHONPATH=str(repo))
            done = subprocess.run(
                [sys.executable, "-c", CLIENT, str(sim.kubeconfig_path), str(Path(tmp) / "s")],
                capture_output=True,
                text=True,
                env=env,
                check=False,
            )
            if done.returncode != 0:
                print(done.stderr, file=sys.stderr)
                return 1
            stats = json.loads(done.stdout.strip().splitlines()[-1])
    mib = stats["bytes"] / 1048576
    print(
        f"{time.strftime('%Y-%m-%d')} log dump of {mib:.1f} MiB: {stats['result']}, "
        f"{stats['seconds']:.2f} s ({mib / stats['seconds']:.0f} MiB/s), "
        f"tracemalloc peak {stats['peak'] / 1024:.0f} KiB, "
        f"RSS high-water +{stats['hwm_growth_kib']} KiB"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
