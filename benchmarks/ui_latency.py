"""Key-press latency of the UI while events pour in.

    python benchmarks/ui_latency.py [--rate 5000] [--presses 60] [--sim]

Measures the time from `pilot.press(key)` to the first frame the app renders
that shows the key's effect (the cursor on its new row), for:

- baseline: the same presses with nothing arriving;
- load: events arriving at `--rate` per second, fed into the engine on the
  UI's own event loop, as live sources do. By default a synthetic feeder makes
  the events (noise across many pods, with signals now and then, some of it
  landing in the incident on screen); with `--sim` the simulated cluster's
  background noise is followed from its files by the live file sources.

Frames are observed where the app hands them to the terminal driver, so the
figure includes the batching timer, layout and rendering, and excludes
Pilot's own settling waits. Prints median and p95 per key for both runs.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from ktriage.core.model import Attack, EntityKind, Event, Severity, entity
from ktriage.engine import Engine
from ktriage.ui.app import KtriageApp

NAMESPACES = ["shop", "billing", "payments", "dev", "monitoring", "ci"]


class Feeder:
    """Adds synthetic events to the engine at a steady rate, in 10 ms slices."""

    def __init__(self, engine: Engine, rate: float, seed: int = 7) -> None:
        self.engine = engine
        self.rate = rate
        self.rng = random.Random(seed)
        self.sent = 0
        self.pods = [
            entity(EntityKind.POD, ns, f"web-{i:03d}") for ns in NAMESPACES for i in range(60)
        ]
        self.node = entity(EntityKind.NODE, "", "node-a")

    def event(self, n: int, now: float) -> Event:
        if n % 500 == 0:
            # Signals on a few pods: a handful of incidents to move between.
            pod = self.pods[(n // 500) % 8]
            return Event(
                time=now,
                source="falco",
                ref=f"sig-{n}",
                kind="shell",
                severity=Severity.HIGH,
                summary=f"Shell spawned in {pod.namespace}/{pod.name}: /bin/sh -c id",
                entities=(pod, self.node),
                attack=Attack("execution", "T1609", ""),
                signal=True,
                label="Shell",
            )
        # One event in five lands on the first incident's pod (its timeline grows).
        pod = self.pods[n % len(self.pods)] if n % 5 else self.pods[0]
        return Event(
            time=now,
            source="tetragon" if n % 3 else "audit",
            ref=f"ev-{n}",
            kind="process",
            severity=Severity.INFO,
            summary=f"exec /usr/bin/curl -s http://svc-{n % 97}.local/health in {pod.name}",
            entities=(pod, self.node),
        )

    async def run(self) -> None:
        start = time.monotonic()
        while True:
            await asyncio.sleep(0.01)
            due = int((time.monotonic() - start) * self.rate)
            now = time.time()
            batch = [self.event(n, now) for n in range(self.sent, due)]
            self.sent = due
            self.engine.add_events(batch)


async def measure(
    app: KtriageApp, presses: int, feeder: Feeder | None = None
) -> dict[str, list[float]]:
    """Press j/k alternately in the Incidents and Timeline panes; latency per press (ms)."""
    frames: list[float] = []
    display = app._display

    def recording_display(screen: Any, renderable: Any) -> None:
        frames.append(time.perf_counter())
        display(screen, renderable)

    app._display = recording_display  # type: ignore[method-assign]
    results: dict[str, list[float]] = {"incidents j/k": [], "timeline j/k": []}
    async with app.run_test(size=(160, 45)) as pilot:
        # The feeder runs on the app's loop, as live sources do.
        feeding = asyncio.create_task(feeder.run()) if feeder is not None else None
        screen = app.main_screen
        assert screen is not None
        deadline = time.monotonic() + 20
        while len(screen.incidents.shown) < 2 and time.monotonic() < deadline:
            await pilot.pause(0.05)
        for pane, label in ((screen.incidents, "incidents j/k"), (screen.timeline, "timeline j/k")):
            pane.focus()
            await pilot.pause(0.2)
            if pane is screen.timeline:
                await pilot.press("g")
            handled: list[float] = []
            move = pane.move_cursor

            def recording_move(
                index: int, *, user: bool = True, _move: Any = move, _handled: Any = handled
            ) -> None:
                _move(index, user=user)
                _handled.append(time.perf_counter())

            pane.move_cursor = recording_move  # type: ignore[method-assign]
            for i in range(presses):
                key = "j" if i % 2 == 0 else "k"
                handled.clear()
                frames.clear()
                t0 = time.perf_counter()
                task = asyncio.create_task(pilot.press(key))
                seen = None
                while seen is None:
                    await asyncio.sleep(0.0005)
                    if handled:
                        # The first frame composed after the key was handled.
                        after = [f for f in frames if f >= handled[0]]
                        if after:
                            seen = after[0]
                    if time.perf_counter() - t0 > 5:
                        raise RuntimeError(f"{label}: no frame within 5 s")
                results[label].append((seen - t0) * 1000)
                await task
        if feeding is not None:
            feeding.cancel()
    return results


class GcPauses:
    """Durations of the garbage collector's full (generation 2) collections."""

    def __init__(self) -> None:
        self.pauses: list[float] = []
        self._start = 0.0
        gc.callbacks.append(self._callback)

    def _callback(self, phase: str, info: dict[str, Any]) -> None:
        if info.get("generation") != 2:
            return
        if phase == "start":
            self._start = time.perf_counter()
        else:
            self.pauses.append((time.perf_counter() - self._start) * 1000)

    def report(self) -> str:
        if not self.pauses:
            return "no full collections"
        return f"{len(self.pauses)} full collections, longest {max(self.pauses):.0f} ms"


def summary(name: str, results: dict[str, list[float]]) -> None:
    for label, values in results.items():
        values = sorted(values)
        p95 = values[min(len(values) - 1, int(len(values) * 0.95))]
        print(
            f"  {name:9} {label:14} median {statistics.median(values):6.1f} ms"
            f"   p95 {p95:6.1f} ms   max {values[-1]:6.1f} ms   (n={len(values)})"
        )


def seeded_engine() -> Engine:
    engine = Engine()
    engine.context_name = "benchmark"
    feeder = Feeder(engine, 0)
    engine.add_events([feeder.event(n, time.time() - 60 + n / 100) for n in range(0, 3001)])
    return engine


async def run_synthetic(rate: float, presses: int) -> None:
    base_app = KtriageApp(seeded_engine(), mode="live", start_sources=False)
    baseline = await measure(base_app, presses)
    engine = seeded_engine()
    feeder = Feeder(engine, rate)
    feeder.sent = 10_000
    load_app = KtriageApp(engine, mode="live", start_sources=False)
    pauses = GcPauses()
    t0 = time.monotonic()
    loaded = await measure(load_app, presses, feeder)
    elapsed = time.monotonic() - t0
    print(f"UI key latency, 160x45, synthetic feeder at {rate:.0f} events/s")
    print(f"  fed {feeder.sent - 10_000} events in {elapsed:.1f} s; gc: {pauses.report()}")
    summary("baseline", baseline)
    summary("load", loaded)


def run_sim(rate: float, presses: int) -> None:
    from ktriage.demo import live_options
    from ktriage.live import build_live
    from ktriage.options import DemoOptions
    from ktriage.sim.runner import SimCluster

    with tempfile.TemporaryDirectory() as tmp:
        sim = SimCluster(Path(tmp), scenario="cryptominer", speed=20.0, noise_rate=rate).start()
        try:
            baseline = asyncio.run(
                measure(KtriageApp(seeded_engine(), mode="live", start_sources=False), presses)
            )
            # The same sources as `ktriage demo`: watches, and the three stream files.
            setup = build_live(live_options(sim, DemoOptions()), None)
            engine = setup.engine
            t0 = time.monotonic()
            loaded = asyncio.run(measure(KtriageApp(engine, mode="demo"), presses))
            elapsed = time.monotonic() - t0
            print(f"UI key latency, 160x45, sim noise at {rate:.0f} events/s (live sources)")
            print(f"  events stored: {len(engine.store)} in {elapsed:.1f} s")
            summary("baseline", baseline)
            summary("load", loaded)
            if setup.connection is not None:
                setup.connection.close()
        finally:
            sim.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rate", type=float, default=5000.0)
    parser.add_argument("--presses", type=int, default=60)
    parser.add_argument("--sim", action="store_true", help="use the sim's noise via file sources")
    args = parser.parse_args(argv)
    if args.sim:
        run_sim(args.rate, args.presses)
    else:
        asyncio.run(run_synthetic(args.rate, args.presses))
    return 0


if __name__ == "__main__":
    sys.exit(main())
