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
import gc
import multiprocessing
import os
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from queue import Empty
from typing import TypeVar

import orjson

from ktriage.core.correlate import Correlator
from ktriage.core.replay import Replayer

# The mixes' generator beside this file (also when this file is loaded by path).
sys.path.insert(0, str(Path(__file__).resolve().parent))
import mixes
from mixes import T0, audit_line, rfc3339, tetragon_line  # noqa: F401

T = TypeVar("T")


def generate(path: Path, lines: int, seed: int = 1) -> None:
    """The project's mix (benchmarks/mixes.py)."""
    mixes.write_mix("project", path, lines, seed)


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
