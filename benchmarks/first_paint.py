"""Time from launching `ktriage replay FILE` in a real terminal to the first frame that
shows the incidents list with rows, against a bare `orjson.loads` loop over the same
file in the same run (both whole processes).

    python benchmarks/first_paint.py [--lines 1000000] [--rounds 3] [--file FILE]

The replay runs in a tmux session (160x45): the screen is captured every 50 ms until
an incident row (`INC-`) is on it; then until the status line says the load is
`complete`, with the process's resident memory at that point (first round only).
Prints each round, the medians and the ratio bare loop / first paint (above 1x: the
incidents are on screen sooner than a bare parse of the file takes).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
POLL = 0.05
BARE_LOOP = (
    "import orjson, sys\n"
    "loads = orjson.loads\n"
    "with open(sys.argv[1], 'rb') as fh:\n"
    "    for line in fh:\n"
    "        loads(line)\n"
)


def write_input(path: Path, lines: int) -> None:
    """The project's mix (benchmarks/mixes.py when present, else replay.py's generator)."""
    for name in ("mixes", "replay"):
        spec = importlib.util.spec_from_file_location(f"_bench_{name}", HERE / f"{name}.py")
        if spec is None or spec.loader is None or not (HERE / f"{name}.py").exists():
            continue
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        if hasattr(module, "write_mix"):
            module.write_mix("project", path, lines, 1)
            return
        if hasattr(module, "generate"):
            module.generate(path, lines)
            return
    raise SystemExit("no input generator found next to this benchmark")


def bare_loop(path: Path) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", BARE_LOOP, str(path)], check=True)
    return time.perf_counter() - start


def _capture(session: str) -> str:
    done = subprocess.run(
        ["tmux", "capture-pane", "-p", "-t", session], capture_output=True, text=True
    )
    return done.stdout


def _rss_mib(session: str) -> float | None:
    done = subprocess.run(
        ["tmux", "list-panes", "-t", session, "-F", "#{pane_pid}"],
        capture_output=True,
        text=True,
    )
    try:
        pid = int(done.stdout.split()[0])
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except (ValueError, IndexError, OSError):
        return None
    return None


def replay_round(path: Path, wait_complete: bool, timeout: float) -> dict[str, float | None]:
    """One launch: seconds to the first incident row, and (optionally) to `complete`."""
    session = f"ktriage-paint-{os.getpid()}"
    command = f"cd {ROOT} && exec {sys.executable} -m ktriage.cli replay {path}"
    start = time.perf_counter()
    subprocess.run(
        ["tmux", "new-session", "-d", "-s", session, "-x", "160", "-y", "45", command],
        check=True,
    )
    out: dict[str, float | None] = {"paint": None, "complete": None, "rss_mib": None}
    try:
        deadline = start + timeout
        while time.perf_counter() < deadline:
            screen = _capture(session)
            if out["paint"] is None and "INC-" in screen:
                out["paint"] = time.perf_counter() - start
                if not wait_complete:
                    break
            first_line = screen.splitlines()[0] if screen else ""
            if out["paint"] is not None and "complete" in first_line:
                out["complete"] = time.perf_counter() - start
                out["rss_mib"] = _rss_mib(session)
                break
            time.sleep(POLL)
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--file", type=Path, help="replay this file instead of a generated one")
    parser.add_argument("--timeout", type=float, default=300.0)
    args = parser.parse_args()
    if shutil.which("tmux") is None:
        print("first_paint: needs tmux (a real terminal to paint in)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        path = args.file
        if path is None:
            path = Path(tmp) / "project.jsonl"
            write_input(path, args.lines)
        size = path.stat().st_size
        bare_loop(path)  # warms the page cache
        bares: list[float] = []
        paints: list[float] = []
        complete: dict[str, float | None] = {}
        for i in range(max(1, args.rounds)):
            bares.append(bare_loop(path))
            result = replay_round(path, wait_complete=i == 0, timeout=args.timeout)
            if result["paint"] is None:
                print(f"round {i + 1}: no incident on screen within {args.timeout:.0f} s")
                return 1
            paints.append(result["paint"])
            if i == 0:
                complete = result
            ratio = bares[-1] / result["paint"]
            print(
                f"round {i + 1}: bare loop {bares[-1]:.2f} s, first paint {result['paint']:.2f} s"
                f" ({ratio:.2f}x)"
            )
        bare = statistics.median(bares)
        paint = statistics.median(paints)
        print(f"input: {path.name}, {size / 1e6:.0f} MB")
        print(f"bare orjson loop (whole process): {bare:.2f} s (median of {len(bares)})")
        print(
            f"ktriage replay, launch to incidents on screen: {paint:.2f} s "
            f"(median of {len(paints)}); ratio bare loop / first paint {bare / paint:.2f}x"
        )
        if complete.get("complete") is not None:
            rss = complete.get("rss_mib")
            print(
                f"load complete (status line says so): {complete['complete']:.1f} s after launch"
                + (f", {rss:.0f} MiB resident" if rss is not None else "")
            )
        else:
            print("load complete: not seen within the timeout")
    return 0


if __name__ == "__main__":
    sys.exit(main())
