"""`ktriage --headless`: the real command in a subprocess against the simulated
cluster, printing incident updates as JSON lines until SIGINT/SIGTERM; and the
printer's batching, which keeps a flood's output bounded."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from ktriage.core.model import EntityKind, Event, Severity, entity
from ktriage.engine import Engine
from ktriage.live import IncidentPrinter
from ktriage.sim.clock import ManualClock
from ktriage.sim.runner import SimCluster

REPO = Path(__file__).resolve().parents[2]
INCIDENT_KEYS = {
    "id",
    "severity",
    "title",
    "first_seen",
    "last_seen",
    "tactics",
    "entities",
    "events",
}


def _this_checkout_first(env: dict[str, str]) -> str:
    """The subprocess runs from a temporary directory: it must import this checkout's
    ktriage, not whichever one the environment has installed."""
    return os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)


class Headless:
    """A `ktriage --headless` process whose output is read in threads."""

    def __init__(self, args: list[str], home: Path) -> None:
        env = {k: v for k, v in os.environ.items() if k not in ("KUBECONFIG",)}
        env.update(HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"), PYTHONUNBUFFERED="1")
        env.pop("KUBERNETES_SERVICE_HOST", None)
        env["PYTHONPATH"] = _this_checkout_first(env)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ktriage.cli", "--headless", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=home,
            env=env,
        )
        self.lines: list[dict[str, Any]] = []
        self.err: list[str] = []
        threading.Thread(target=self._read_out, daemon=True).start()
        threading.Thread(target=self._read_err, daemon=True).start()

    def _read_out(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            self.lines.append(orjson.loads(raw))

    def _read_err(self) -> None:
        assert self.proc.stderr is not None
        for raw in self.proc.stderr:
            self.err.append(raw.decode(errors="replace").rstrip("\n"))

    def wait_for(self, cond: Callable[[], bool], timeout: float = 20.0, what: str = "") -> None:
        deadline = time.monotonic() + timeout
        while not cond():
            if self.proc.poll() is not None and not cond():
                raise AssertionError(f"ktriage exited {self.proc.returncode}: {self.err[-5:]}")
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}; stderr: {self.err[-8:]}")
            time.sleep(0.02)

    def stop(self, sig: int = signal.SIGINT, timeout: float = 10.0) -> int:
        self.proc.send_signal(sig)
        code = self.proc.wait(timeout)
        # Let the reader threads drain the pipes.
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not (self.lines and "skipped" in self.lines[-1]):
            time.sleep(0.01)
        return code

    def incidents(self) -> list[dict[str, Any]]:
        # Lines with a `type` say an id was merged or closed; incident lines have none.
        return [line for line in self.lines if "id" in line and "type" not in line]

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)


def run(args: list[str], home: Path, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
    env.update(HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"))
    env.pop("KUBERNETES_SERVICE_HOST", None)
    env["PYTHONPATH"] = _this_checkout_first(env)
    return subprocess.run(
        [sys.executable, "-m", "ktriage.cli", *args],
        capture_output=True,
        text=True,
        cwd=home,
        env=env,
        timeout=timeout,
    )


@pytest.mark.sim
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_headless_against_the_sim(
    make_sim_cluster: Callable[..., SimCluster], tmp_path: Path, sig: int
) -> None:
    sim = make_sim_cluster(scenario="cryptominer", clock=ManualClock())
    k = Headless(
        [
            "--kubeconfig",
            str(sim.kubeconfig_path),
            "--audit-log",
            str(sim.outputs.audit_path),
            "--from-start",
        ],
        tmp_path,
    )
    try:
        for name in ("kube pods", "kube nodes", "kube events", "falco auto", "tetragon auto"):
            k.wait_for(
                lambda name=name: any(f"{name}" in e and ": connected" in e for e in k.err),
                what=f"{name} connected",
            )
        started = time.monotonic()
        while not sim.player.done:
            sim.advance(2.0)

        def top() -> dict[str, Any] | None:
            lines = [i for i in k.incidents() if i["severity"] == "critical"]
            return lines[-1] if lines else None

        def complete() -> bool:
            inc = top()
            return inc is not None and {e["source"] for e in inc["events"]} == {
                "audit",
                "falco",
                "tetragon",
                "kube",
            }

        k.wait_for(complete, what="the cryptominer incident from all four sources")
        # Stay a moment so late updates are printed, then stop.
        k.wait_for(lambda: time.monotonic() - started > 1.5, what="a pause")
        code = k.stop(sig)
        elapsed = time.monotonic() - started
    finally:
        k.kill()
    assert code == 0, k.err[-5:]
    assert not any("Traceback" in line for line in k.err)
    assert "skipped" in k.lines[-1]
    incidents = k.incidents()
    assert incidents and all(set(i) == INCIDENT_KEYS for i in incidents)
    top_id = top()["id"]  # type: ignore[index]
    final = [i for i in incidents if i["id"] == top_id][-1]
    assert "storefront" in final["title"]
    assert {"oomkilled", "crashloop"} <= {e["kind"] for e in final["events"]}
    times = [e["time"] for e in final["events"]]
    assert times == sorted(times)
    # Updates of one incident are batched: at most one line per half second, plus one.
    assert len([i for i in incidents if i["id"] == top_id]) <= elapsed / 0.5 + 2


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_headless_webhook_without_a_cluster(tmp_path: Path) -> None:
    import urllib.request

    port = free_port()
    k = Headless(["--listen-audit", f"127.0.0.1:{port}", "--webhook-token", "t0k"], tmp_path)
    try:
        k.wait_for(lambda: any("audit webhook" in e and "connected" in e for e in k.err))
        assert any("not watching a cluster" in e for e in k.err)
        batch = {
            "kind": "EventList",
            "apiVersion": "audit.k8s.io/v1",
            "items": [
                {
                    "kind": "Event",
                    "apiVersion": "audit.k8s.io/v1",
                    "level": "Metadata",
                    "auditID": "a-1",
                    "stage": "ResponseComplete",
                    "requestURI": "/api/v1/namespaces/shop/pods/web-1/exec?command=sh",
                    "verb": "create",
                    "user": {"username": "mallory"},
                    "sourceIPs": ["203.0.113.9"],
                    "objectRef": {
                        "resource": "pods",
                        "subresource": "exec",
                        "namespace": "shop",
                        "name": "web-1",
                    },
                    "responseStatus": {"code": 101},
                    "requestReceivedTimestamp": "2027-01-15T10:00:00.000000Z",
                    "stageTimestamp": "2027-01-15T10:00:00.100000Z",
                }
            ],
        }
        req = urllib.request.Request(
            f"http://127.0.0.1:{port}/",
            data=orjson.dumps(batch),
            headers={"Authorization": "Bearer t0k", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=5) as resp:
            assert resp.status == 200
        k.wait_for(lambda: bool(k.incidents()), what="an incident line")
        code = k.stop()
    finally:
        k.kill()
    assert code == 0
    inc = k.incidents()[-1]
    assert inc["events"][0]["ref"] == "a-1:ResponseComplete"
    assert {"kind": "Pod", "namespace": "shop", "name": "web-1"} in inc["entities"]


def test_headless_errors_are_plain_messages(tmp_path: Path) -> None:
    result = run(["--headless", "--kubeconfig", str(tmp_path / "missing")], tmp_path)
    assert result.returncode == 2
    assert "kubeconfig not found" in result.stderr and "Traceback" not in result.stderr
    result = run(["--headless"], tmp_path)
    assert result.returncode == 2 and "nothing to watch" in result.stderr
    result = run(["--headless", "--falco", str(tmp_path / "f.jsonl"), "--falco", "off"], tmp_path)
    assert result.returncode == 2 and "--falco off cannot be combined" in result.stderr
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run(["--headless", "--listen-falco", f"127.0.0.1:{port}"], tmp_path)
    assert result.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr


def test_printer_batches_a_flood() -> None:
    engine = Engine()
    now = [0.0]
    lines: list[bytes] = []
    printer = IncidentPrinter(engine, lines.append, interval=0.5, clock=lambda: now[0])
    pod = entity(EntityKind.POD, "shop", "web-1")
    # 10,000 signals on one pod over 10 seconds, the printer ticking every 0.1 s.
    n = 0
    for tick in range(100):
        for _ in range(100):
            n += 1
            engine.add_events(
                [
                    Event(
                        time=1_800_000_000.0 + n / 1000,
                        source="falco",
                        ref=f"alert-{n}",
                        kind="shell",
                        severity=Severity.HIGH,
                        summary=f"shell {n}",
                        entities=(pod,),
                        signal=True,
                        label="Shell",
                    )
                ]
            )
        now[0] = tick * 0.1
        printer.tick()
    printer.tick(force=True)
    assert 18 <= len(lines) <= 22  # about one line per half second, not 10,000
    last = orjson.loads(lines[-1])
    assert len(last["events"]) == 10_000
    # Nothing changed since: nothing more is printed.
    now[0] += 10
    printer.tick(force=True)
    assert len(lines) <= 22
