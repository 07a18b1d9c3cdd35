"""Live-source load benchmark: the simulated cluster's background noise at 5,000
records/s for 30 s, followed live by ktriage, which must receive every record.

The simulated cluster runs in this process; ktriage's live sources run in a child
process (the same engine `ktriage --headless` builds: kube watches, the audit log
and the Tetragon export followed as files, Falco and Tetragon pod logs), so its
peak resident memory is its own. Baselines measured in the same run on the same
files: a bare line count, and `replay` (parse and correlate, no following).

    .venv/bin/python benchmarks/live_load.py [--rate 5000] [--seconds 30]

Not part of the test suite.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def peak_rss_mib() -> float:
    """VmHWM (peak resident set) of this process, in MiB."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


# ---- child: the live sources ----------------------------------------------------


def child(argv: list[str]) -> int:
    from ktriage.cli import build_parser
    from ktriage.live import build_live
    from ktriage.options import LiveOptions
    from ktriage.sources.tail import FileSource

    args = build_parser().parse_args(argv)
    setup = build_live(LiveOptions.from_args(args))
    engine = setup.engine

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGINT, stop.set)
        await engine.start()
        started = time.monotonic()
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 1.0)
            engine.take_changes()  # what the UI would take; keeps nothing pending
            by_source = Counter(ev.source for ev in engine.store)
            now = time.time()
            lags = [
                src.health.lag(now)
                for src in engine.sources
                if isinstance(src, FileSource) and src.health.newest_event_time is not None
            ]
            print(
                json.dumps(
                    {
                        "t": round(time.monotonic() - started, 2),
                        "by_source": by_source,
                        "lag": round(max(lags), 2) if lags else None,
                        "rss_mib": round(peak_rss_mib(), 1),
                    }
                ),
                flush=True,
            )
        await engine.stop()
        print(
            json.dumps(
                {
                    "final": True,
                    "by_source": Counter(ev.source for ev in engine.store),
                    "duplicates": engine.store.duplicates,
                    "dropped": engine.store.dropped,
                    "skipped": {s.health.name: dict(s.health.skipped) for s in engine.sources},
                    "incidents": len(engine.correlator.incidents),
                    "peak_rss_mib": round(peak_rss_mib(), 1),
                    "health": [(s.health.name, s.health.state) for s in engine.sources],
                }
            ),
            flush=True,
        )

    asyncio.run(main())
    return 0


# ---- parent: the cluster, the load and the figures ---------------------------------


def baseline_line_count(paths: list[Path]) -> tuple[int, float, float]:
    started = time.perf_counter()
    lines = 0
    size = 0
    for path in paths:
        with open(path, "rb") as fh:
            for _ in fh:
                lines += 1
        size += path.stat().st_size
    return lines, time.perf_counter() - started, size / (1 << 20)


def baseline_replay(paths: list[Path]) -> tuple[Counter[str], float, int]:
    from ktriage.core.correlate import Correlator
    from ktriage.core.replay import Replayer

    replayer = Replayer(Correlator())
    started = time.perf_counter()
    replayer.replay(paths)
    elapsed = time.perf_counter() - started
    counts = Counter(ev.source for ev in replayer.correlator.store)
    duplicates = replayer.correlator.store.duplicates
    replayer.archive.close()
    return counts, elapsed, duplicates


def parent(rate: float, seconds: float) -> int:
    from ktriage.sim.runner import SimCluster

    workdir = Path(tempfile.mkdtemp(prefix="ktriage-live-load-"))
    sim = SimCluster(workdir / "sim", scenario="quiet-day", noise_rate=rate).start()
    out = sim.outputs
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--child",
        "--kubeconfig",
        str(sim.kubeconfig_path),
        "--audit-log",
        str(out.audit_path),
        "--tetragon",
        str(out.tetragon_path),
        "--tetragon",
        "auto",
        "--from-start",
    ]
    env = dict(os.environ, HOME=str(workdir), XDG_CONFIG_HOME=str(workdir / ".config"))
    env.pop("KUBECONFIG", None)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
    progress: list[dict[str, Any]] = []
    errors: list[str] = []

    def read_out() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            progress.append(json.loads(line))

    def read_err() -> None:
        assert proc.stderr is not None
        errors.extend(proc.stderr)

    threading.Thread(target=read_out, daemon=True).start()
    threading.Thread(target=read_err, daemon=True).start()
    try:
        while not progress:
            if proc.poll() is not None:
                print("the live process exited:", "".join(errors[-20:]), file=sys.stderr)
                return 1
            time.sleep(0.1)
        print(f"load: {rate:g} records/s of noise for {seconds:g} s (quiet-day scenario playing)")
        noise_started = time.monotonic()
        time.sleep(seconds)
        noise = sim.player.noise
        noise.rate = 0  # no more noise from now on
        samples_during_load = len(progress)
        load_time = time.monotonic() - (getattr(noise, "started", None) or noise_started)
        written = noise.written
        time.sleep(1.0)
        sim.stop()  # the files stop growing; the kube sources start reconnecting
        paths = [out.audit_path, out.tetragon_path]
        lines, count_time, size_mib = baseline_line_count(paths)
        expected, replay_time, replay_duplicates = baseline_replay(paths)
        # Wait until the live process has every record the files hold.
        drain_started = time.monotonic()
        while True:
            latest = progress[-1]["by_source"]
            if all(latest.get(src, 0) >= n for src, n in expected.items()):
                break
            if time.monotonic() - drain_started > 120:
                print("the live process did not catch up within 120 s", file=sys.stderr)
                break
            time.sleep(0.2)
        drained = time.monotonic() - drain_started
        proc.send_signal(signal.SIGINT)
        proc.wait(30)
        time.sleep(0.2)
    finally:
        if proc.poll() is None:
            proc.kill()
        with contextlib.suppress(Exception):
            sim.stop()
    final = next((p for p in reversed(progress) if p.get("final")), None)
    if final is None:
        print("no final figures from the live process:", "".join(errors[-20:]), file=sys.stderr)
        return 1
    got = Counter(final["by_source"])
    missing = {src: n - got.get(src, 0) for src, n in expected.items() if got.get(src, 0) < n}
    total = sum(expected.values())
    print(
        f"noise written     {written} records in {load_time:.1f} s ({written / load_time:,.0f}/s)"
    )
    print(f"files             {lines:,} lines, {size_mib:.1f} MiB (audit + tetragon)")
    print(f"expected events   {dict(expected)} (replay of the same files)")
    print(f"live received     {dict(got)}")
    print(f"all arrived       {'yes' if not missing else f'NO, missing {missing}'}")
    print(
        f"duplicates        {final['duplicates']} kept once (the files hold {replay_duplicates}; "
        "scenario records reach both the Tetragon file and its pods' logs), "
        f"dropped {final['dropped']}"
    )
    print(f"caught up         {drained:.1f} s after the noise stopped")
    lags = [p["lag"] for p in progress[:samples_during_load] if p.get("lag") is not None]
    if lags:
        lags.sort()
        print(
            f"file lag          median {lags[len(lags) // 2]:.2f} s, max {lags[-1]:.2f} s "
            "during the load (now minus the newest event's time, sampled each second)"
        )
    print(f"live peak RSS     {final['peak_rss_mib']:.0f} MiB (child process, VmHWM)")
    print(
        f"baseline count    {lines:,} lines in {count_time:.2f} s "
        f"({lines / max(count_time, 1e-9):,.0f} lines/s, bare line count)"
    )
    print(
        f"baseline replay   {total:,} events in {replay_time:.2f} s "
        f"({total / max(replay_time, 1e-9):,.0f} events/s, parse + correlate)"
    )
    print(f"live throughput   {total / (load_time + drained):,.0f} events/s sustained")
    return 0 if not missing else 1


def main() -> int:
    if "--child" in sys.argv:
        argv = [a for a in sys.argv[1:] if a != "--child"]
        return child(argv)
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rate", type=float, default=5000.0, help="noise records per second")
    p.add_argument("--seconds", type=float, default=30.0, help="how long the noise runs")
    args = p.parse_args()
    return parent(args.rate, args.seconds)


if __name__ == "__main__":
    sys.exit(main())
