"""A big cluster's pods on screen: 20,000 and 50,000 pods, from launch to all shown.

    .venv/bin/python benchmarks/pods.py [--pods 20000 50000] [--presses 40] [--rounds N]
    .venv/bin/python benchmarks/pods.py --quick      # 20,000 pods, no kubectl

For each size, the simulated cluster (in this process, seeded in bulk with running
pods of ReplicaSets spread over 100 nodes and 40 namespaces, ~4.4 KB of JSON each
with managed fields, as real pods carry) serves the API on loopback. Then, each as
a process of its own, timed from its launch:

- ktriage's live UI (the same engine and app `ktriage --kubeconfig ...` runs, in
  Textual's headless `run_test` at 160x45) with the Pods pane showing all pods
  (`a`), left alone while the pods load: seconds to the first frame, to the first
  pods on screen, to all pods on screen (the list complete, a frame drawn after
  it); peak RSS (VmHWM); the longest the event loop was kept from running (a 10 ms
  ticker's worst lateness);
- the same UI in runs of their own with keys pressed while the pods load (j/k one
  after another, `--presses` of them): key latency, from the press to the first
  frame showing the cursor moved (median and max), the loop's worst lateness, and
  the time to all pods on screen with the keys' work added to the load's;
- baselines in the same run against the same server: `kubectl get pods -A -o name`
  and a bare paged list with the official client (500 per page, `orjson` on the raw
  bytes, nothing kept), each timed from launch to exit.

Ratios are ktriage's time to all pods on screen (no keys pressed) over each
baseline's time (lower is better; 1.0x: as fast as the baseline). With `--rounds N`,
each of the three (ktriage alone, ktriage with keys, the paged list) runs N times,
in an order that changes round by round; the figures are medians (with their
range), the peak RSS the highest. The sim's metrics-server emulation is
off here: it recomputes every pod's usage on each change, which would only slow
the server both sides share. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
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


# ---- child: ktriage's live UI ------------------------------------------------------


async def _watch_ui(app: Any, expected: int, launched: float, presses: int) -> dict[str, Any]:
    frames: list[float] = []
    display = app._display

    def recording_display(screen: Any, renderable: Any) -> None:
        frames.append(time.time())
        display(screen, renderable)

    app._display = recording_display
    out: dict[str, Any] = {}
    lateness: list[float] = []
    loading = True

    async def ticker() -> None:
        while loading:
            t0 = time.perf_counter()
            await asyncio.sleep(0.01)
            lateness.append(time.perf_counter() - t0 - 0.01)

    async with app.run_test(size=(160, 45)) as pilot:
        ticking = asyncio.create_task(ticker())
        screen = app.main_screen
        pods = screen.pods
        pods.focus()
        # Not awaited: a press returns once the app is idle, which it is not while the
        # pods load; the rows are watched meanwhile.
        show_all = asyncio.create_task(pilot.press("a"))
        handled: list[float] = []
        move = pods.move_cursor

        def recording_move(index: int, *, user: bool = True) -> None:
            move(index, user=user)
            handled.append(time.time())

        pods.move_cursor = recording_move
        latencies: list[float] = []
        first_pods = all_seen = None
        deadline = time.time() + 600
        pressed = 0
        while time.time() < deadline:
            if first_pods is None and pods.rows:
                first_pods = time.time()
            if len(pods.rows) >= expected and pods.loading_count is None:
                all_seen = time.time()
                break
            if pressed < presses and len(pods.rows) > 2 and pods.show_all:
                # One key at a time, while the pods load: press to the frame showing it.
                handled.clear()
                t0 = time.time()
                task = asyncio.create_task(pilot.press("j" if pressed % 2 == 0 else "k"))
                seen = None
                while seen is None and time.time() - t0 < 10:
                    await asyncio.sleep(0.001)
                    if handled:
                        after = [f for f in frames if f >= handled[0]]
                        seen = after[0] if after else None
                # A press returns only once the app is idle, at the end of the load:
                # once the key is on screen its wait is dropped (it would poll the
                # app, in this process, until then) and the next key goes.
                task.cancel()
                if seen is not None and pods.loading_count is not None:
                    latencies.append((seen - t0) * 1000)
                pressed += 1
            else:
                await asyncio.sleep(0.005)
        loading = False
        await ticking
        await show_all
        if all_seen is not None:
            while not any(f >= all_seen for f in frames) and time.time() - all_seen < 10:
                await asyncio.sleep(0.002)
            shown = next((f for f in frames if f >= all_seen), None)
            out["all_on_screen"] = (shown - launched) if shown else None
        out["first_frame"] = (frames[0] - launched) if frames else None
        # The first frame drawn once the first pods were in the pane.
        shown_first = next((f for f in frames if first_pods and f >= first_pods), None)
        out["first_pods"] = (shown_first - launched) if shown_first else None
        out["rows"] = len(pods.rows)
        out["subtitle"] = pods.subtitle()
        out["health"] = [
            (s.health.name, s.health.state, s.health.last_error) for s in app.engine.sources
        ]
        out["show_all"] = pods.show_all
        out["key_ms"] = latencies
        out["loop_late_ms"] = max(lateness, default=0.0) * 1000
    return out


def child_ui(kubeconfig: str, expected: int, launched: float, presses: int) -> int:
    # As `ktriage` starts its UI (cli.main, live.run_live).
    from ktriage.cli import build_parser, preload_ui_modules

    preload_ui_modules(ui=False)
    from ktriage.live import build_live
    from ktriage.options import LiveOptions

    options = LiveOptions.from_args(build_parser().parse_args(["--kubeconfig", kubeconfig]))
    setup = build_live(options)
    setup.ask_first_pages()  # with the memory setting, as run_live does
    preload_ui_modules()
    from ktriage.ui.app import KtriageApp, kubeconfig_factory, ui_options

    engine = setup.engine
    app = KtriageApp(engine, mode="live", **ui_options(options.ui))
    app.api_client_factory = kubeconfig_factory(options.kubeconfig, options.context)
    out = asyncio.run(_watch_ui(app, expected, launched, presses))
    out["pods_in_state"] = len(engine.cluster.pods) if engine.cluster is not None else 0
    out["events"] = len(engine.store)
    out["peak_rss_mib"] = peak_rss_mib()
    if setup.connection is not None:
        setup.connection.close()
    engine.archive.close()
    print(json.dumps(out), flush=True)
    return 0


# ---- child: a bare paged list with the official client ------------------------------


def child_list(kubeconfig: str) -> int:
    import orjson
    from kubernetes import client, config

    api = client.CoreV1Api(config.new_client_from_config(kubeconfig))
    token = None
    count = 0
    while True:
        kw: dict[str, Any] = {"limit": 500, "_preload_content": False}
        if token:
            kw["_continue"] = token
        body = orjson.loads(api.list_pod_for_all_namespaces(**kw).data)
        count += len(body["items"])
        token = body["metadata"].get("continue")
        if not token:
            break
    print(json.dumps({"count": count, "peak_rss_mib": peak_rss_mib()}), flush=True)
    return 0


# ---- parent ----------------------------------------------------------------------


def _timed(cmd: list[str], env: dict[str, str]) -> tuple[float, str]:
    started = time.time()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    elapsed = time.time() - started
    if done.returncode != 0:
        raise RuntimeError(f"{cmd[0]} failed: {done.stderr[-2000:]}")
    return elapsed, done.stdout


def kubectl_binary() -> str | None:
    for candidate in (ROOT / ".venv" / "bin" / "kubectl", Path(sys.prefix) / "bin" / "kubectl"):
        if candidate.exists():
            return str(candidate)
    return shutil.which("kubectl")


def _settle(sim: Any, timeout: float = 120.0) -> None:
    """Wait until the sim's controllers have observed the seeded objects: measured
    runs then share the cores with a quiet server, not with its start-up work."""
    deadline = time.monotonic() + timeout
    quiet_since = None
    while time.monotonic() < deadline:
        manager = sim.controllers
        if manager is None or manager.settled():
            quiet_since = quiet_since or time.monotonic()
            if time.monotonic() - quiet_since > 0.5:
                return
        else:
            quiet_since = None
        time.sleep(0.05)


def run_size(
    count: int, presses: int, *, with_kubectl: bool = True, rounds: int = 1
) -> dict[str, Any]:
    import ktriage.sim.controllers.metrics as sim_metrics
    from ktriage.sim.bulk import seed_pods
    from ktriage.sim.runner import SimCluster

    async def no_metrics(store: Any, clock: Any) -> None:
        return None

    sim_metrics.run = no_metrics  # type: ignore[assignment]
    workdir = Path(tempfile.mkdtemp(prefix="ktriage-pods-bench-"))
    sim = SimCluster(workdir / "sim")
    seeded = time.perf_counter()
    seed_pods(sim.store, count)
    seeded = time.perf_counter() - seeded
    sim.start()
    _settle(sim)
    total = len(sim.store.snapshot("v1", "Pod")[0])
    env = dict(os.environ, HOME=str(workdir), KUBECACHEDIR=str(workdir / "kcache"))
    env.pop("KUBECONFIG", None)
    kubeconfig = str(sim.kubeconfig_path)
    me = str(Path(__file__).resolve())
    result: dict[str, Any] = {"pods": total, "seed_s": seeded}
    try:
        kubectl = kubectl_binary() if with_kubectl else None
        if kubectl:
            t, out = _timed(
                [kubectl, "--kubeconfig", kubeconfig, "get", "pods", "-A", "-o", "name"], env
            )
            result["kubectl_s"] = t
            result["kubectl_lines"] = out.count("\n")
        result["list_s"], result["uis"], result["keyed"] = [], [], []
        kinds = ["list", "ui", "keyed"] if presses else ["list", "ui"]
        for i in range(rounds):
            # The order changes round by round (none is always first, or always after
            # the same one).
            for which in kinds[i % len(kinds) :] + kinds[: i % len(kinds)]:
                if which == "list":
                    t, out = _timed([sys.executable, me, "--child-list", kubeconfig], env)
                    result["list_s"].append(t)
                    result["list"] = json.loads(out.strip().splitlines()[-1])
                else:
                    keys = presses if which == "keyed" else 0
                    result["uis" if keys == 0 else "keyed"].append(
                        _ui_run(me, kubeconfig, total, keys, env)
                    )
    finally:
        sim.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    return result


def _ui_run(me: str, kubeconfig: str, total: int, presses: int, env: dict[str, str]) -> Any:
    """One run of ktriage's live UI as a process of its own: its figures."""
    launched = time.time()
    cmd = [sys.executable, me, "--child-ui", kubeconfig, str(total), str(launched), str(presses)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(
            f"the ktriage child failed (exit {done.returncode}): {done.stderr[-3000:]}"
        )
    return json.loads(done.stdout.strip().splitlines()[-1])


def _median(values: list[Any]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def report(r: dict[str, Any]) -> None:
    uis = r["uis"]
    n = r["pods"]
    rounds = len(uis)
    said = f", median of {rounds} runs (range)" if rounds > 1 else ""
    print(f"\n{n:,} pods (seeded in {r['seed_s']:.1f} s){said}")

    def sec(v: float | None) -> str:
        return f"{v:6.2f} s" if v is not None else "   n/a  "

    def figure(runs: list[dict[str, Any]], key: str) -> str:
        values = [u.get(key) for u in runs]
        shown = sec(_median(values))
        present = [v for v in values if v is not None]
        if len(runs) > 1 and present:
            shown += f" ({min(present):.2f}-{max(present):.2f})"
        return shown

    print(f"  ktriage first frame        {figure(uis, 'first_frame')}")
    print(f"  ktriage first pods shown   {figure(uis, 'first_pods')}")
    print(
        f"  ktriage all pods on screen {figure(uis, 'all_on_screen')}   "
        f"({uis[-1]['rows']:,} rows; no key pressed)"
    )
    peaks = [u["peak_rss_mib"] for u in uis + r["keyed"]]
    print(f"  ktriage peak RSS           {max(peaks):6.0f} MiB (highest of the runs)")
    late = max(u["loop_late_ms"] for u in uis)
    print(f"  event loop held at most    {late:.0f} ms (10 ms ticker, while loading)")
    keyed = r["keyed"]
    if keyed:
        presses = [k for u in keyed for k in u["key_ms"]]
        print(f"  with keys pressed while loading ({len(keyed)} runs of their own):")
        if presses:
            print(
                f"    key latency              median {statistics.median(presses):.0f} ms, "
                f"max {max(presses):.0f} ms (n={len(presses)})"
            )
        else:
            print("    key latency              (no key answered before the list was complete)")
        late = max(u["loop_late_ms"] for u in keyed)
        print(f"    event loop held at most  {late:.0f} ms")
        print(f"    all pods on screen     {figure(keyed, 'all_on_screen')}")
    if "kubectl_s" in r:
        print(
            f"  baseline kubectl get -A    {sec(r['kubectl_s'])}   ({r['kubectl_lines']:,} names)"
        )
    list_s = statistics.median(r["list_s"])
    print(f"  baseline paged list        {sec(list_s)}   ({r['list']['count']:,} pods)")
    all_s = _median([u.get("all_on_screen") for u in uis])
    if all_s:
        if "kubectl_s" in r:
            print(f"  ratio to kubectl           {all_s / r['kubectl_s']:.2f}x")
        print(f"  ratio to the paged list    {all_s / list_s:.2f}x")


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--child-ui":
        kubeconfig, expected, launched, presses = sys.argv[2:6]
        return child_ui(kubeconfig, int(expected), float(launched), int(presses))
    if len(sys.argv) > 1 and sys.argv[1] == "--child-list":
        return child_list(sys.argv[2])
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pods", type=int, nargs="+", default=[20_000, 50_000])
    p.add_argument("--presses", type=int, default=40, help="keys pressed while loading")
    p.add_argument("--json", action="store_true", help="print the figures as JSON too")
    p.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="runs of each kind per size (ktriage alone, ktriage with keys, the paged list)",
    )
    p.add_argument("--no-kubectl", action="store_true", help="skip the kubectl baseline")
    p.add_argument(
        "--quick",
        action="store_true",
        help="20,000 pods only, no kubectl baseline, 10 keys in a run of their own",
    )
    args = p.parse_args()
    if args.quick:
        args.pods, args.no_kubectl, args.presses = [20_000], True, 10
    results = []
    for count in args.pods:
        r = run_size(count, args.presses, with_kubectl=not args.no_kubectl, rounds=args.rounds)
        report(r)
        results.append(r)
    if args.json:
        print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
