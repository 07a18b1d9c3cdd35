"""Bytes per retained event of the full pipeline (what the UI loads for `ktriage replay
FILE`: every line an event, stored and correlated), on every input mix.

    python benchmarks/pipeline_memory.py [--mix NAME ...] [--lines N] [--keep DIR]

Each mix is generated (benchmarks/mixes.py: `project`, `small_audit_noise`,
`tetragon_heavy`; and here `tetragon_new_pods`, Tetragon exec/exit where every event
names a pod never seen before), then loaded in a fresh process, twice:

- resident memory: RSS growth over the load / events retained;
- tracemalloc: bytes the load allocated and still holds / events retained.

A bare `orjson.loads` loop over the same file runs in the same run as the time
baseline (whole processes both). Prints one line per mix and measure.
"""

from __future__ import annotations

import argparse
import base64
import gc
import importlib.util
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType

import orjson

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
T0 = 1_790_000_000.0
NEW_PODS = "tetragon_new_pods"
DEFAULT_LINES = {
    "project": 200_000,
    "small_audit_noise": 400_000,
    "tetragon_heavy": 200_000,
    NEW_PODS: 200_000,
}
BARE_LOOP = (
    "import orjson, sys\n"
    "loads = orjson.loads\n"
    "with open(sys.argv[1], 'rb') as fh:\n"
    "    for line in fh:\n"
    "        loads(line)\n"
)


def _mixes() -> ModuleType | None:
    path = HERE / "mixes.py"
    if not path.exists():
        return None
    spec = importlib.util.spec_from_file_location("_bench_mixes", path)
    if spec is None or spec.loader is None:
        return None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _stamp(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int(ts % 1 * 1e6):06d}Z"


def write_new_pods(path: Path, lines: int, seed: int = 1) -> None:
    """Tetragon exec/exit, each naming a pod (and container) never seen before: the
    worst case for per-entity state (short-lived job pods)."""
    rng = random.Random(seed)
    with open(path, "wb") as fh:
        for i in range(lines):
            ts = T0 + i * 0.01
            ns = f"jobs-{i % 40}"
            pod = f"batch-{i:08d}-{rng.getrandbits(20):05x}"
            cid = f"{rng.getrandbits(256):064x}"
            node = f"node-{i % 50}"
            exec_id = base64.b64encode(f"{node}:{rng.getrandbits(40)}:{i}".encode()).decode()
            process = {
                "exec_id": exec_id,
                "pid": rng.randrange(1, 99999),
                "uid": 1000,
                "cwd": "/work",
                "binary": "/usr/local/bin/worker",
                "arguments": f"--task {i}",
                "flags": "execve clone",
                "start_time": _stamp(ts),
                "pod": {
                    "namespace": ns,
                    "name": pod,
                    "container": {
                        "id": f"containerd://{cid}",
                        "name": "worker",
                        "image": {"id": f"registry.example/worker@sha256:{cid}", "name": "w:2"},
                        "start_time": _stamp(ts - 1),
                        "pid": 1,
                    },
                    "pod_labels": {"job-name": pod.rsplit("-", 1)[0]},
                },
                "parent_exec_id": exec_id,
            }
            parent = dict(process, binary="/usr/bin/containerd-shim")
            kind = "process_exec" if i % 2 == 0 else "process_exit"
            body: dict[str, object] = {"process": process, "parent": parent}
            if kind == "process_exit":
                body.update(signal="", status=0)
            fh.write(orjson.dumps({kind: body, "node_name": node, "time": _stamp(ts)}) + b"\n")


def write_input(name: str, path: Path, lines: int) -> bool:
    if name == NEW_PODS:
        write_new_pods(path, lines)
        return True
    mixes = _mixes()
    if mixes is not None:
        mixes.write_mix(name, path, lines, 1)
        return True
    if name == "project":
        spec = importlib.util.spec_from_file_location("_bench_replay", HERE / "replay.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        module.generate(path, lines)
        return True
    return False


def _rss() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def child(path: Path, mode: str) -> dict[str, float]:
    """Load `path` as the UI does (slice by slice, changes taken and dropped) and say
    what it holds afterwards."""
    sys.path.insert(0, str(ROOT))
    import tracemalloc

    from ktriage.core.config import Config
    from ktriage.core.stepload import SteppedReplay
    from ktriage.engine import Engine

    engine = Engine(Config())
    gc.collect()
    if mode == "tracemalloc":
        tracemalloc.start(1)
    before = _rss()
    start = time.perf_counter()
    loader = SteppedReplay(engine.correlator, engine.ingestor, engine.archive, [path])
    for _ in loader.steps():
        loader.take_changed()  # the UI takes them and keeps at most its live pane's
    seconds = time.perf_counter() - start
    gc.collect()
    events = len(engine.store)
    held = float(_rss() - before)
    if mode == "tracemalloc":
        held = float(tracemalloc.get_traced_memory()[0])
        tracemalloc.stop()
    return {
        "events": events,
        "bytes": held,
        "seconds": seconds,
        "incidents": len(engine.correlator.incidents),
    }


def _run_child(path: Path, mode: str) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, __file__, "--child", str(path), mode],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def _bare(path: Path) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", BARE_LOOP, str(path)], check=True)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mix", action="append", choices=sorted(DEFAULT_LINES))
    parser.add_argument("--lines", type=int, help="lines per mix (default: each mix's own)")
    parser.add_argument("--keep", type=Path, help="write the generated files here")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(Path(args.child[0]), args.child[1])))
        return 0
    names = args.mix or list(DEFAULT_LINES)
    with tempfile.TemporaryDirectory() as tmp:
        directory = args.keep or Path(tmp)
        directory.mkdir(parents=True, exist_ok=True)
        worst = 0.0
        for name in names:
            path = directory / f"{name}.jsonl"
            lines = args.lines or DEFAULT_LINES[name]
            if not path.exists() and not write_input(name, path, lines):
                print(f"{name}: skipped (needs benchmarks/mixes.py)")
                continue
            _bare(path)  # warms the page cache
            bare = _bare(path)
            rss = _run_child(path, "rss")
            traced = _run_child(path, "tracemalloc")
            per_rss = rss["bytes"] / max(rss["events"], 1)
            per_traced = traced["bytes"] / max(traced["events"], 1)
            worst = max(worst, per_rss, per_traced)
            print(
                f"{name}: {int(rss['events']):,} events, {int(rss['incidents'])} incidents; "
                f"{per_rss:.0f} B/event by RSS growth, {per_traced:.0f} B/event by "
                f"tracemalloc; load {rss['seconds']:.1f} s (bare orjson loop {bare:.1f} s, "
                f"{bare / rss['seconds']:.2f}x)"
            )
        print(f"worst: {worst:.0f} bytes per retained event (target: 300)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
