"""Live-source lag: how long a record takes from being written to being in the engine.

    .venv/bin/python benchmarks/live_load.py [--rates 20000 40000 80000 120000]
                                             [--seconds 10]

For each rate, a fresh ktriage process follows an audit log (the same `FileSource`
`ktriage --audit-log FILE` runs, from the file's end) while this process appends
Kubernetes audit records to it at that fixed rate, in 10 ms slices, for `--seconds`.
Each record's timestamps are the moment it is written (wall clock, microseconds);
the ktriage process notes, for every event it ingests, the time then minus the
event's time: the lag. Reported per rate: records written and ingested, the rate
achieved, lag p50/p99/max, how long after the last write the last record was in
(drain), peak RSS of the ktriage process; and the first rate whose lag passes 2 s
(the pipeline no longer keeps up). The records are the noise of a busy cluster
(kubelets, controllers and service accounts reading and writing objects across
2,000 pods), with a Warning-free mix and no signals.

Baseline in the same run: the same lines read back with a bare `orjson.loads` loop
(lines per second), the ceiling of any follower written in Python.

Not part of the test suite.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

LAG_LIMIT = 2.0


def peak_rss_mib() -> float:
    """VmHWM (peak resident set) of this process, in MiB."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


# ---- the records ------------------------------------------------------------------

_VERBS = ("get", "list", "watch", "update", "patch")
_RESOURCES = ("pods", "configmaps", "endpointslices", "leases", "nodes", "secrets")
_USERS = (
    ("system:node:node-{n}", ["system:nodes", "system:authenticated"]),
    ("system:kube-controller-manager", ["system:authenticated"]),
    ("system:serviceaccount:team-{ns}:app", ["system:serviceaccounts", "system:authenticated"]),
)


def templates(count: int = 512) -> list[str]:
    """Audit lines with `@@TIME@@` where the write time goes; varied users, verbs,
    resources, namespaces and pods (2,000 pods over 20 namespaces)."""
    out = []
    for i in range(count):
        user, groups = _USERS[i % len(_USERS)]
        ns = f"team-{i % 20:02d}"
        pod = f"svc-{i % 97:03d}-{i:05x}"
        verb = _VERBS[i % len(_VERBS)]
        resource = _RESOURCES[(i // 5) % len(_RESOURCES)]
        name = pod if resource == "pods" else f"{resource[:-1]}-{i % 13}"
        record = {
            "kind": "Event",
            "apiVersion": "audit.k8s.io/v1",
            "level": "Metadata",
            "auditID": f"@@ID@@-{i}",
            "stage": "ResponseComplete",
            "requestURI": f"/api/v1/namespaces/{ns}/{resource}/{name}",
            "verb": verb,
            "user": {"username": user.format(n=i % 50, ns=i % 20), "groups": groups},
            "sourceIPs": [f"10.1.0.{i % 50 + 1}"],
            "userAgent": "kubelet/v1.31.2 (linux/amd64) kubernetes/abcdef",
            "objectRef": {
                "resource": resource,
                "namespace": ns,
                "name": name,
                "apiVersion": "v1",
            },
            "responseStatus": {"metadata": {}, "code": 200},
            "requestReceivedTimestamp": "@@TIME@@",
            "stageTimestamp": "@@TIME@@",
            "annotations": {"authorization.k8s.io/decision": "allow"},
        }
        out.append(json.dumps(record, separators=(",", ":")))
    return out


def stamp(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# ---- child: ktriage following the file ----------------------------------------------


def child(path: str) -> int:
    from ktriage.engine import Engine
    from ktriage.live import build_live
    from ktriage.options import LiveOptions

    lags: list[float] = []
    add_events = Engine.add_events

    def timed_add(self: Engine, events: Any) -> Any:
        now = time.time()
        lags.extend(now - ev.time for ev in events)
        return add_events(self, events)

    Engine.add_events = timed_add  # type: ignore[method-assign]
    setup = build_live(LiveOptions(audit_log=(path,), falco=("off",), tetragon=("off",)))
    engine = setup.engine

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGINT, stop.set)
        await engine.start()
        print(json.dumps({"ready": True}), flush=True)
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), 0.2)
            except TimeoutError:
                pass
            engine.take_changes()  # what the UI would take; keeps nothing pending
            skipped = sum(sum(s.health.skipped.values()) for s in engine.sources)
            print(json.dumps({"handled": len(lags) + skipped}), flush=True)
        await engine.stop()

    asyncio.run(main())
    lags.sort()
    n = len(lags)

    def q(p: float) -> float | None:
        return lags[min(n - 1, int(n * p))] if n else None

    print(
        json.dumps(
            {
                "final": True,
                "ingested": n,
                "p50": q(0.5),
                "p99": q(0.99),
                "max": lags[-1] if n else None,
                "skipped": {s.health.name: dict(s.health.skipped) for s in engine.sources},
                "peak_rss_mib": peak_rss_mib(),
            }
        ),
        flush=True,
    )
    engine.archive.close()
    return 0


# ---- parent: the writer and the figures -------------------------------------------


def write_at_rate(path: Path, lines: list[str], rate: float, seconds: float) -> tuple[int, float]:
    """Append records at `rate` per second for `seconds`; (written, seconds taken)."""
    parts = [line.split("@@TIME@@") for line in lines]
    written = 0
    started = time.time()
    with open(path, "a", encoding="utf-8") as fh:
        while True:
            now = time.time()
            elapsed = now - started
            if elapsed >= seconds:
                break
            due = int(elapsed * rate) - written
            if due > 0:
                t = stamp(now)
                batch = []
                for i in range(written, written + due):
                    a, b, c = parts[i % len(parts)]
                    batch.append(f"{a}{t}{b}{t}{c}".replace("@@ID@@", str(i), 1))
                fh.write("\n".join(batch) + "\n")
                fh.flush()
                written += due
            time.sleep(0.01)
    return written, time.time() - started


def baseline_loads(path: Path) -> float:
    """Lines per second of a bare `orjson.loads` loop over the file."""
    import orjson

    started = time.perf_counter()
    n = 0
    with open(path, "rb") as fh:
        for line in fh:
            orjson.loads(line)
            n += 1
    return n / max(time.perf_counter() - started, 1e-9)


def run_rate(rate: float, seconds: float, lines: list[str], workdir: Path) -> dict[str, Any]:
    path = workdir / f"audit-{int(rate)}.log"
    path.touch()
    env = dict(os.environ, HOME=str(workdir), XDG_CONFIG_HOME=str(workdir / ".config"))
    env.pop("KUBECONFIG", None)
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", str(path)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
    assert proc.stdout is not None
    try:
        first = json.loads(proc.stdout.readline() or "{}")
        if not first.get("ready"):
            raise RuntimeError(f"the ktriage process did not start: {proc.stderr.read()}")
        written, took = write_at_rate(path, lines, rate, seconds)
        wrote_last = time.time()
        drained = None
        handled, progressed = 0, time.time()
        for line in proc.stdout:
            got = json.loads(line)
            if got.get("handled", 0) > handled:
                handled, progressed = got["handled"], time.time()
            if handled >= written:
                drained = progressed - wrote_last
                break
            if time.time() - progressed > 3:
                # No progress for 3 s: what is in is all there will be (a record the
                # engine keeps once, say); drained when the last one came in.
                drained = progressed - wrote_last
                break
        proc.send_signal(signal.SIGINT)
        final: dict[str, Any] = {}
        for line in proc.stdout:
            got = json.loads(line)
            if got.get("final"):
                final = got
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    return {
        "rate": rate,
        "written": written,
        "achieved": written / took,
        "drained_s": drained,
        "path": path,
        **final,
    }


def main() -> int:
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        return child(sys.argv[2])
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rates", type=float, nargs="+", default=[20_000, 40_000, 80_000, 120_000])
    p.add_argument("--seconds", type=float, default=10.0, help="how long each rate runs")
    args = p.parse_args()
    lines = templates()
    workdir = Path(tempfile.mkdtemp(prefix="ktriage-live-lag-"))
    try:
        print(f"audit records appended to a followed file, {args.seconds:g} s per rate")
        print(
            f"{'rate/s':>8} {'written':>9} {'achieved/s':>10} {'ingested':>9} "
            f"{'p50 s':>6} {'p99 s':>6} {'max s':>6} {'drain s':>7} {'RSS MiB':>7}"
        )
        passed_at = None
        last_path = None
        for rate in args.rates:
            r = run_rate(rate, args.seconds, lines, workdir)
            last_path = r["path"]

            def f(v: float | None) -> str:
                return f"{v:6.2f}" if v is not None else "   n/a"

            drain = f"{r['drained_s']:7.2f}" if r["drained_s"] is not None else "  >120"
            print(
                f"{rate:8.0f} {r['written']:9,} {r['achieved']:10,.0f} {r.get('ingested', 0):9,} "
                f"{f(r.get('p50'))} {f(r.get('p99'))} {f(r.get('max'))} {drain} "
                f"{r.get('peak_rss_mib', float('nan')):7.0f}"
            )
            if passed_at is None and (r.get("max") or 0) > LAG_LIMIT:
                passed_at = rate
            if r.get("skipped") and any(r["skipped"].values()):
                print(f"         skipped (not events): {r['skipped']}")
        if passed_at is None:
            print(f"lag stayed under {LAG_LIMIT:g} s at every rate tried")
        else:
            print(f"lag passes {LAG_LIMIT:g} s at {passed_at:,.0f} records/s")
        if last_path is not None:
            per_second = baseline_loads(last_path)
            print(f"baseline: a bare orjson.loads loop reads {per_second:,.0f} lines/s")
    finally:
        # Gigabytes of generated audit lines: removed however the run ends.
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
