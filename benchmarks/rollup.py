"""A day of cluster traffic with one noisy low-priority Falco rule on many pods.

    python benchmarks/rollup.py [--lines 200000] [--noise 0.05] [--keep FILE]

The lines are those of benchmarks/replay.py (audit and Tetragon traffic of a 300-pod
cluster, a few attacks among them) spread over 24 hours, with `--noise` of them a
Falco "Kubernetes Client Tool Launched in Container" alert (Notice) from short-lived
CI job pods of one namespace, two alerts per pod. Prints the incidents a full and a
focused replay give, and their times (wall and CPU).
"""

from __future__ import annotations

import argparse
import importlib.util
import random
import sys
import tempfile
import time
import uuid
from pathlib import Path

import orjson

from ktriage.core.correlate import Correlator
from ktriage.core.replay import Replayer

DAY = 86_400.0
RULE = "Kubernetes Client Tool Launched in Container"


def _replay_module():  # the traffic generator of benchmarks/replay.py
    path = Path(__file__).resolve().parent / "replay.py"
    spec = importlib.util.spec_from_file_location("replay_bench", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("replay_bench", module)
    spec.loader.exec_module(module)
    return module


def client_tool_alert(rng: random.Random, ts: float, job: int, rfc3339) -> dict:
    job_rng = random.Random(job)  # one pod and container per CI job
    pod = f"build-{job:05d}-{job_rng.getrandbits(20):05x}"
    cid = f"{job_rng.getrandbits(48):012x}"
    cmd = "kubectl apply -f deploy/"
    return {
        "uuid": str(uuid.UUID(int=rng.getrandbits(128))),
        "time": rfc3339(ts)[:-1] + "123Z",
        "rule": RULE,
        "priority": "Notice",
        "source": "syscall",
        "hostname": f"node-{rng.choice('abc')}",
        "output": f"{RULE} (user=root command={cmd} container_id={cid} k8s_pod={pod})",
        "output_fields": {
            "container.id": cid,
            "k8s.ns.name": "ci",
            "k8s.pod.name": pod,
            "proc.cmdline": cmd,
            "user.name": "root",
            "evt.time": int(ts * 1e9),
        },
        "tags": ["container", "k8s", "mitre_execution", "T1609"],
    }


def generate(path: Path, lines: int, noise: float = 0.05, seed: int = 1) -> int:
    """Write the file; returns how many noise alerts it holds."""
    bench = _replay_module()
    rng = random.Random(seed)
    step = DAY / lines
    noisy = 0
    job_rng = random.Random(seed + 1)
    with open(path, "wb") as fh:
        for i in range(lines):
            ts = bench.T0 + i * step
            r = rng.random()
            if r < noise:
                rec = client_tool_alert(job_rng, ts, noisy // 2, bench.rfc3339)
                noisy += 1
            elif r < 0.72:
                rec = bench.audit_line(rng, ts, i)
            else:
                rec = bench.tetragon_line(rng, ts, i)
            fh.write(orjson.dumps(rec) + b"\n")
    return noisy


def replay(path: Path, focus: bool) -> tuple[float, float, int, list[str]]:
    """(wall s, CPU s, incidents, titles of the five largest)."""
    correlator = Correlator()
    replayer = Replayer(correlator, focus=focus)
    start, cpu = time.perf_counter(), time.process_time()
    replayer.replay([path])
    wall, cpu_s = time.perf_counter() - start, time.process_time() - cpu
    largest = sorted(correlator.incidents.values(), key=lambda i: -i.signal_count)[:5]
    return wall, cpu_s, len(correlator.incidents), [i.title for i in largest]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=200_000)
    parser.add_argument("--noise", type=float, default=0.05)
    parser.add_argument("--keep", type=Path, help="write the generated file here and keep it")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = args.keep or Path(tmp) / "noisy-day.jsonl"
        noisy = generate(path, args.lines, args.noise)
        print(f"input: {args.lines} lines, {noisy} '{RULE}' alerts on {noisy // 2 + 1} pods")
        for label, focus in (("full", False), ("focused", True)):
            wall, cpu, incidents, titles = replay(path, focus)
            print(f"{label}: {incidents} incidents in {wall:.2f} s ({cpu:.2f} s CPU)")
            for title in titles:
                print(f"  {title}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
