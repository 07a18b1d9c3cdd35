"""Replay speed on the four input mixes, against a bare `orjson.loads` loop run in the
same process tree; then in process, with resident memory per retained event.

    python benchmarks/replay.py [--lines N] [--pairs 5] [--mixes a,b] [--skip-in-process]

The mixes (benchmarks/mixes.py): `project` at 200k lines, `small_audit_noise` at
400k, `tetragon_heavy` at 200k, and `project` at 1M (`project_1m`). `--lines` sets
every mix's line count at once (a quick run).

Whole process first, as a user runs it: `ktriage replay --json FILE > /dev/null`
in a subprocess, paired with a subprocess that reads the same file and only calls
`orjson.loads` on each line; the pairs alternate (which of the two goes first
alternates too) and each pair gives a ratio, baseline time / replay time (above
1x the replay is faster than the bare loop). The median of the pairs is the figure.

In process second, as the README measured before: the same file through
`Replayer` in a forked child, against the loop in a forked child, and the full
pipeline (every line an event, as the UI loads a replay) with its resident memory
growth per retained event.
"""

from __future__ import annotations

import argparse
import gc
import multiprocessing
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from queue import Empty
from typing import TypeVar

import orjson

# The mixes' generator beside this file (also when this file is loaded by path), and
# the ktriage of this checkout.
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parents[1]))
import mixes
from mixes import T0, audit_line, rfc3339, tetragon_line  # noqa: F401

from ktriage.core.correlate import Correlator
from ktriage.core.replay import Replayer

ROOT = Path(__file__).resolve().parents[1]
T = TypeVar("T")
# (label, mix, default lines)
CASES = [
    ("project", "project", mixes.MIXES["project"]),
    ("small_audit_noise", "small_audit_noise", mixes.MIXES["small_audit_noise"]),
    ("tetragon_heavy", "tetragon_heavy", mixes.MIXES["tetragon_heavy"]),
    ("project_1m", "project", mixes.PROJECT_LARGE_LINES),
]
# What the baseline process runs: read the file, orjson.loads each line, nothing else.
BASELINE_CODE = (
    "import sys, orjson\n"
    "loads = orjson.loads\n"
    "with open(sys.argv[1], 'rb') as fh:\n"
    "    for line in fh:\n"
    "        loads(line)\n"
)


def generate(path: Path, lines: int, seed: int = 1) -> None:
    """The project's mix (benchmarks/mixes.py)."""
    mixes.write_mix("project", path, lines, seed)


def _env() -> dict[str, str]:
    """This checkout's ktriage, with its compiled bytecode kept (as an installed
    package has it): a process that compiles every module at start measures the
    compiler, not the replay."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def _children_cpu() -> float:
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def _timed(cmd: list[str], cpu: list[float] | None = None) -> float:
    """Wall seconds of one run; its CPU seconds (helper processes included) are
    appended to `cpu`."""
    env = _env()
    cpu_before = _children_cpu()
    start = time.perf_counter()
    subprocess.run(
        cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True
    )
    elapsed = time.perf_counter() - start
    if cpu is not None:
        cpu.append(_children_cpu() - cpu_before)
    return elapsed


def whole_process(path: Path, pairs: int) -> tuple[float, float, list[float], float]:
    """(median baseline s, median replay s, ratio of each pair, ratio of the median
    CPU seconds: steadier when other work shares the cores, but blind to the
    helper process's gain in wall time)."""
    base_cmd = [sys.executable, "-c", BASELINE_CODE, str(path)]
    replay_cmd = [sys.executable, "-m", "ktriage.cli", "replay", "--json", str(path)]
    _timed(base_cmd)  # the file into the page cache
    _timed(replay_cmd)  # and the bytecode written
    bases, replays, ratios = [], [], []
    base_cpu: list[float] = []
    replay_cpu: list[float] = []
    for i in range(pairs):
        if i % 2:
            r = _timed(replay_cmd, replay_cpu)
            b = _timed(base_cmd, base_cpu)
        else:
            b = _timed(base_cmd, base_cpu)
            r = _timed(replay_cmd, replay_cpu)
        bases.append(b)
        replays.append(r)
        ratios.append(b / r)
    cpu_ratio = statistics.median(base_cpu) / statistics.median(replay_cpu)
    return statistics.median(bases), statistics.median(replays), ratios, cpu_ratio


def startup(pairs: int) -> tuple[float, float, list[float]]:
    """`ktriage --help` against `python -c "import orjson"`: (median s of each,
    ratio of each pair, ktriage / bare)."""
    bare = [sys.executable, "-c", "import orjson"]
    cli = [sys.executable, "-m", "ktriage.cli", "--help"]
    _timed(cli)
    bares, clis, ratios = [], [], []
    for _ in range(pairs):
        b, c = _timed(bare), _timed(cli)
        bares.append(b)
        clis.append(c)
        ratios.append(c / b)
    return statistics.median(bares), statistics.median(clis), ratios


def rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def baseline(path: Path) -> tuple[float, int]:
    """(wall seconds, lines) of the bare parse, in process."""
    start = time.perf_counter()
    n = 0
    loads = orjson.loads
    with open(path, "rb") as fh:
        for line in fh:
            loads(line)
            n += 1
    return time.perf_counter() - start, n


def replay(path: Path, focus: bool) -> tuple[float, int, int, int]:
    """(wall s, events kept, RSS growth, incidents), focused as `ktriage replay` reads
    (pass 1 of a large file shared with a helper process) or full."""
    gc.collect()
    before = rss_bytes()
    correlator = Correlator()
    replayer = Replayer(correlator, focus=focus, parallel=focus)
    start = time.perf_counter()
    replayer.replay([path])
    elapsed = time.perf_counter() - start
    gc.collect()
    grown = rss_bytes() - before
    return elapsed, len(correlator.store), grown, len(correlator.incidents)


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


def in_process(path: Path, pairs: int, full: bool) -> dict[str, float]:
    ratios = []
    for _ in range(pairs):
        base_s, _ = in_child(baseline, path)
        rep_s = in_child(replay, path, True)[0]
        ratios.append(base_s / rep_s)
    out = {"focused": statistics.median(ratios)}
    if full:
        base_s, _ = in_child(baseline, path)
        full_s, events, grown, _ = in_child(replay, path, False)
        out.update(full=base_s / full_s, bytes_per_event=grown / max(events, 1), events=events)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, help="every mix at this many lines (quick runs)")
    parser.add_argument("--pairs", type=int, default=5, help="pairs per figure (default 5)")
    parser.add_argument(
        "--mixes", help=f"comma-separated, of {', '.join(c[0] for c in CASES)} (default all)"
    )
    parser.add_argument("--skip-in-process", action="store_true")
    parser.add_argument("--keep", type=Path, help="keep the generated files in this folder")
    args = parser.parse_args()
    chosen = [c for c in CASES if not args.mixes or c[0] in args.mixes.split(",")]
    if args.lines and any(c[0] == "project_1m" for c in chosen):
        chosen = [c for c in chosen if c[0] != "project_1m"] + [
            ("project_1m", "project", args.lines * 5)
        ]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        print(f"whole process: {args.pairs} pairs per mix (baseline/replay; above 1x is faster)")
        for label, mix, default in chosen:
            lines = args.lines or default
            if label != "project_1m" and args.lines is None:
                lines = default
            path = folder / f"{label}.jsonl"
            if not path.exists():
                mixes.write_mix(mix, path, lines, 1)
            base_s, rep_s, ratios, cpu_ratio = whole_process(path, args.pairs)
            row = {
                "mix": label,
                "lines": lines,
                "mb": path.stat().st_size / 1e6,
                "base": base_s,
                "replay": rep_s,
                "ratio": statistics.median(ratios),
                "lo": min(ratios),
                "hi": max(ratios),
                "cpu": cpu_ratio,
            }
            print(
                f"  {label:18} {lines:>9,} lines {row['mb']:7.1f} MB  "
                f"orjson {base_s:6.2f} s  replay --json {rep_s:6.2f} s  "
                f"{row['ratio']:.2f}x (pairs {row['lo']:.2f}x-{row['hi']:.2f}x; "
                f"by CPU time {cpu_ratio:.2f}x)",
                flush=True,
            )
            rows.append((row, path))
        bare_s, help_s, help_ratios = startup(max(args.pairs, 5))
        print(
            f"start-up: `ktriage --help` {help_s * 1000:.0f} ms, `python -c 'import orjson'` "
            f"{bare_s * 1000:.0f} ms: {statistics.median(help_ratios):.2f}x the bare "
            "interpreter (median of pairs; the target is 2x or less)",
            flush=True,
        )
        if not args.skip_in_process:
            print("in process: Replayer in a forked child against the loop in a forked child")
            for row, path in rows:
                if row["lines"] > 400_000:
                    continue  # the whole-process figure above is the one for 1M lines
                got = in_process(path, max(1, args.pairs // 2 + 1), full=row["lines"] <= 400_000)
                line = f"  {row['mix']:18} focused {got['focused']:.2f}x"
                if "full" in got:
                    line += (
                        f"; full pipeline {got['full']:.2f}x, {got['events']:,.0f} events, "
                        f"{got['bytes_per_event']:.0f} bytes per retained event"
                    )
                print(line, flush=True)
        print()
        print(
            "| mix | lines | MB | orjson loop | `replay --json` | ratio (median of pairs) "
            "| by CPU time |"
        )
        print("|---|---:|---:|---:|---:|---:|---:|")
        for row, _ in rows:
            print(
                f"| {row['mix']} | {row['lines']:,} | {row['mb']:.0f} | {row['base']:.2f} s | "
                f"{row['replay']:.2f} s | **{row['ratio']:.2f}x** | {row['cpu']:.2f}x |"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
