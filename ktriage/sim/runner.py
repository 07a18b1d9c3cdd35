"""One simulated cluster: the API server on loopback, its store, audit log, faults and
(optionally) a scenario playing, all on an event loop in a thread of their own, so
blocking clients (the `kubernetes` package, kubectl in a subprocess) can be used from
the caller's thread. `ktriage sim` runs one until Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web

from ktriage.sim.audit import AuditWriter
from ktriage.sim.auth import bootstrap
from ktriage.sim.auth.authentication import Auth, Identity
from ktriage.sim.clock import SimClock
from ktriage.sim.controllers.apis import start as start_api_controllers
from ktriage.sim.controllers.identity import start_identity_controllers
from ktriage.sim.controllers.manager import ControllerManager
from ktriage.sim.controllers.run import start_controllers
from ktriage.sim.faults import Faults
from ktriage.sim.outputs import SimOutputs
from ktriage.sim.server.app import APIServer
from ktriage.sim.storage.store import ClusterStore
from ktriage.sim.tls import ServingCert, make_serving_cert
from ktriage.sim.version import KUBE_VERSION

STOP_TIMEOUT = 1.0
# Network plugins the cluster can run (`cni=`): their agents and policy CRDs.
CNI_CHOICES = ("cilium", "calico")


class SimError(RuntimeError):
    """The simulated cluster could not start (bad scenario, port taken...)."""


def _player_class() -> tuple[Any, Any]:
    try:
        from ktriage.sim.scenario.format import load_scenario
        from ktriage.sim.scenario.player import ScenarioPlayer
    except ImportError as exc:
        raise SimError(f"scenarios are not available in this build ({exc})") from None
    return ScenarioPlayer, load_scenario


class SimCluster:
    """Everything of one simulated cluster; see the module docstring.

    Attributes: `url`, `kubeconfig_path`, `admin_token`, `readonly_token`,
    `intruder_token`, `store`, `audit`, `outputs`, `clock`, `faults`, `auth`,
    `server`, `player` (the ScenarioPlayer when a scenario runs).
    """

    def __init__(
        self,
        directory: Path,
        *,
        scenario: str | None = None,
        speed: float = 1.0,
        port: int = 0,
        clock: SimClock | None = None,
        noise_rate: float = 0.0,
        bookmark_interval: float = 30.0,
        tls: bool = True,
        cni: str | None = None,
        variant: int = 0,
    ) -> None:
        if cni is not None and cni not in CNI_CHOICES:
            raise SimError(f"unknown network plugin {cni!r} (known: {', '.join(CNI_CHOICES)})")
        self.cni = cni
        # Another cluster of the same demo (variant > 0) plays the scenario with names of
        # its own: other pod-name hashes, container ids and uids (another seed) and
        # another pod network (10.245.0.0/16 for variant 1). Nodes keep their names.
        if not 0 <= variant < 10:
            raise SimError(f"variant must be 0 to 9, not {variant}")
        self.variant = variant
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        os.chmod(self.directory, 0o700)
        self.scenario = scenario
        self.speed = speed
        self.port = port
        self.noise_rate = noise_rate
        self.clock = clock if clock is not None else SimClock(speed=speed)
        self.outputs = SimOutputs(self.directory)
        self.store = ClusterStore(self.clock)
        self.audit = AuditWriter(self.outputs, self.clock)
        self.faults = Faults()
        self.auth = Auth(self.store, self.clock)
        bootstrap.seed(self.store, self.auth.viewer.username)
        self.admin_token = self.auth.admin.token
        self.readonly_token = self.auth.viewer.token
        self.intruder_token = self.auth.intruder.token
        self.server = APIServer(
            self.store,
            self.audit,
            self.auth,
            self.faults,
            self.clock,
            bookmark_interval=bookmark_interval,
        )
        self.kubeconfig_path = self.directory / "kubeconfig"
        self.ca_path = self.directory / "ca.crt"
        # kubectl sends bearer tokens only over TLS: serve HTTPS unless told otherwise.
        self.tls: ServingCert | None = make_serving_cert() if tls else None
        self.url = ""
        self.player: Any = None
        self.controllers: ControllerManager | None = None
        self.player_error: BaseException | None = None
        self._player_task: asyncio.Task | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._started = threading.Event()
        self._start_error: BaseException | None = None
        self._stopped = False
        # The RBAC-side controllers (default ServiceAccounts, role aggregation).
        self.identity_controllers: list[Any] = []

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> SimCluster:
        """Bind 127.0.0.1:port, write the kubeconfig, start the scenario; block until ready."""
        if self._thread is not None:
            return self
        scenario_obj = None
        if self.scenario:
            _, load_scenario = _player_class()
            try:
                scenario_obj = load_scenario(self.scenario)
            except ValueError as exc:
                raise SimError(str(exc)) from None
            if self.cni:
                scenario_obj.cluster.append({self.cni: {}})
            if self.variant:
                scenario_obj.seed += 7919 * self.variant
            # Played fast, the scenario starts in the past so no timestamp is ahead of now.
            span = max([scenario_obj.duration, *(step.at for step in scenario_obj.steps)])
            hold_back = getattr(self.clock, "hold_back", None)
            if hold_back is not None:
                hold_back(span)
        self._thread = threading.Thread(
            target=self._run, args=(scenario_obj,), name="ktriage-sim", daemon=True
        )
        self._thread.start()
        if not self._started.wait(timeout=15):
            raise SimError("the simulated cluster did not start within 15 s")
        if self._start_error is not None:
            self._thread.join(timeout=2)
            self._thread = None
            raise SimError(f"the simulated cluster could not start: {self._start_error}")
        return self

    def _run(self, scenario_obj: Any) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._startup(scenario_obj))
        except BaseException as exc:  # reported to start()'s caller
            self._start_error = exc
            self._started.set()
            loop.close()
            return
        self._started.set()
        try:
            loop.run_forever()
        finally:
            pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
            for task in pending:
                task.cancel()
            if pending:
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _startup(self, scenario_obj: Any) -> None:
        runner = web.AppRunner(
            self.server.app, handler_cancellation=True, access_log=None, shutdown_timeout=0.2
        )
        await runner.setup()
        ssl_context = self.tls.ssl_context() if self.tls is not None else None
        site = web.TCPSite(runner, "127.0.0.1", self.port, ssl_context=ssl_context)
        try:
            await site.start()
        except OSError:
            await runner.cleanup()
            raise
        self._runner = runner
        sockets = getattr(site._server, "sockets", None) or []
        port = sockets[0].getsockname()[1] if sockets else self.port
        self.port = port
        self.url = f"{'https' if self.tls else 'http'}://127.0.0.1:{port}"
        self.server.server_address = f"127.0.0.1:{port}"
        self.write_kubeconfig()
        self.controllers = start_controllers(self.store, self.clock)
        if self.store.get_obj("v1", "Namespace", None, "default") is None:
            self.store.apply(
                {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "default"}}
            )
        self.identity_controllers = start_identity_controllers(
            self.store, asyncio.get_running_loop()
        )
        self._api_controllers = start_api_controllers(self.store, self.clock, self.tls)
        if self.cni and scenario_obj is None:
            # One turn of the loop first: the controllers just started register their
            # watches (the CRD controller must see the CRDs arrive to serve them).
            await asyncio.sleep(0)
            self._install_cni()
        if scenario_obj is not None:
            player_cls, _ = _player_class()
            self.player = player_cls(
                scenario_obj,
                store=self.store,
                audit=self.audit,
                outputs=self.outputs,
                clock=self.clock,
                noise_rate=self.noise_rate,
            )
            # Before the cluster is built (when it plays): its pods' addresses.
            self.player.factory.pod_network = 244 + self.variant
            self._player_task = asyncio.get_running_loop().create_task(self._play())

    def _install_cni(self) -> None:
        """The network plugin's objects in a cluster without a scenario (which adds them
        to its own cluster instead, on the nodes it has)."""
        from ktriage.sim.scenario.factory import ObjectFactory

        factory = ObjectFactory(start=self.clock.now())
        for obj in factory.expand({self.cni: {}}):
            self.store.apply(obj)

    async def _play(self) -> None:
        try:
            await self.player.run()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # kept for the caller; the cluster keeps serving
            self.player_error = exc

    def stop(self) -> None:
        """Stop serving (open watches and follows are closed) within about a second."""
        if self._thread is None or self._loop is None or self._stopped:
            return
        self._stopped = True
        loop = self._loop
        try:
            future = asyncio.run_coroutine_threadsafe(self._shutdown(), loop)
            future.result(timeout=STOP_TIMEOUT)
        except Exception:
            pass
        loop.call_soon_threadsafe(loop.stop)
        self._thread.join(timeout=STOP_TIMEOUT)
        self.outputs.close()

    async def _shutdown(self) -> None:
        for task in getattr(self, "_api_controllers", ()):
            task.cancel()
        if self._player_task is not None and not self._player_task.done():
            self._player_task.cancel()
            await asyncio.gather(self._player_task, return_exceptions=True)
        for controller in self.identity_controllers:
            controller.stop()
        if self.controllers is not None:
            await self.controllers.stop()
        self.server.close_streams()
        self._unserve_custom_resources()
        await asyncio.sleep(0)
        if self._runner is not None:
            await self._runner.cleanup()

    def _unserve_custom_resources(self) -> None:
        """The resources this cluster's CRDs made served are registered process-wide: a
        cluster started later in the same process must not serve them too."""
        from ktriage.sim.resources_more import CUSTOM

        for crd in self.store.list_objs("apiextensions.k8s.io/v1", "CustomResourceDefinition"):
            spec = crd.get("spec") or {}
            CUSTOM.remove(str(spec.get("group")), str((spec.get("names") or {}).get("plural")))

    def __enter__(self) -> SimCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ helpers

    @property
    def running(self) -> bool:
        return self._thread is not None and not self._stopped

    def call(self, coro: Coroutine[Any, Any, Any], timeout: float | None = 30.0) -> Any:
        """Run a coroutine on the sim's loop and wait for its result."""
        if self._loop is None:
            raise SimError("the simulated cluster is not running")
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=timeout)

    def call_soon(self, fn: Callable[[], Any]) -> None:
        """Run `fn` on the sim's loop (thread-safe), e.g. to move a ManualClock."""
        if self._loop is None:
            raise SimError("the simulated cluster is not running")
        self._loop.call_soon_threadsafe(fn)

    def advance(self, seconds: float) -> None:
        """Move a ManualClock forward from any thread; the player wakes on the loop."""
        advance = getattr(self.clock, "advance", None)
        if advance is None:
            raise SimError("only a ManualClock can be advanced")
        done = threading.Event()

        def move() -> None:
            advance(seconds)
            done.set()

        self.call_soon(move)
        done.wait(timeout=5)

    def add_identity(self, name: str, username: str, groups: list[str]) -> Identity:
        """Another bearer token; its rights are what RBAC grants `username` and `groups`."""
        return self.auth.add(name, username, groups)

    def kubeconfig(self) -> dict[str, Any]:
        users = (
            ("sim-admin", self.admin_token),
            ("sim-readonly", self.readonly_token),
            ("sim-intruder", self.intruder_token),
        )
        cluster: dict[str, Any] = {"server": self.url}
        if self.tls is not None:
            cluster["certificate-authority-data"] = base64.b64encode(self.tls.ca_pem).decode()
        return {
            "apiVersion": "v1",
            "kind": "Config",
            "preferences": {},
            "clusters": [{"name": n, "cluster": dict(cluster)} for n, _ in users],
            "users": [{"name": n, "user": {"token": t}} for n, t in users],
            "contexts": [
                {"name": n, "context": {"cluster": n, "user": n, "namespace": "default"}}
                for n, _ in users
            ],
            "current-context": "sim-admin",
        }

    def write_kubeconfig(self) -> Path:
        """Write kubeconfig (and ca.crt, for other clients), both mode 0600."""
        if self.tls is not None:
            fd = os.open(self.ca_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(self.tls.ca_pem)
        data = yaml.safe_dump(self.kubeconfig(), sort_keys=False).encode()
        fd = os.open(self.kubeconfig_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(self.kubeconfig_path, 0o600)
        return self.kubeconfig_path


def joint_kubeconfig(clusters: dict[str, SimCluster], user: str = "sim-admin") -> dict[str, Any]:
    """One kubeconfig naming several simulated clusters: a context per cluster (by the
    given name), each with that cluster's server, CA and `user`'s token."""
    tokens = {
        "sim-admin": lambda c: c.admin_token,
        "sim-readonly": lambda c: c.readonly_token,
        "sim-intruder": lambda c: c.intruder_token,
    }
    if user not in tokens:
        raise SimError(f"unknown simulated user {user!r}")
    entries: dict[str, list[dict[str, Any]]] = {"clusters": [], "users": [], "contexts": []}
    for i, (name, cluster) in enumerate(clusters.items()):
        server: dict[str, Any] = {"server": cluster.url}
        if cluster.tls is not None:
            server["certificate-authority-data"] = base64.b64encode(cluster.tls.ca_pem).decode()
        # Entries by index: a context's name may be anything, the references need not be.
        entries["clusters"].append({"name": f"sim-{i}", "cluster": server})
        entries["users"].append({"name": f"sim-{i}", "user": {"token": tokens[user](cluster)}})
        entries["contexts"].append(
            {"name": name, "context": {"cluster": f"sim-{i}", "user": f"sim-{i}"}}
        )
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "preferences": {},
        **entries,
        "current-context": next(iter(clusters), ""),
    }


def write_joint_kubeconfig(
    path: Path, clusters: dict[str, SimCluster], user: str = "sim-admin"
) -> Path:
    """Write `joint_kubeconfig` to `path`, mode 0600."""
    data = yaml.safe_dump(joint_kubeconfig(clusters, user), sort_keys=False).encode()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.chmod(path, 0o600)
    return path


# ---------------------------------------------------------------------- CLI


def _parser() -> argparse.ArgumentParser:
    from ktriage.sim.scenario.bundled import scenario_names

    p = argparse.ArgumentParser(
        prog="ktriage sim",
        description="Run a simulated Kubernetes cluster on loopback (kubectl works against it).",
    )
    p.add_argument(
        "--scenario",
        metavar="NAME",
        help=f"scenario to play: {', '.join(scenario_names())}, or a YAML file "
        "(default: none, an idle cluster)",
    )
    p.add_argument(
        "--speed",
        type=float,
        default=1.0,
        metavar="N",
        help="play N times faster than real time (default: 1)",
    )
    p.add_argument(
        "--port", type=int, default=0, metavar="P", help="port on 127.0.0.1 (default: a free one)"
    )
    p.add_argument(
        "--dir",
        type=Path,
        metavar="DIR",
        help="where the kubeconfig and the logs go (default: a new temporary directory)",
    )
    p.add_argument(
        "--cni",
        choices=CNI_CHOICES,
        help="run a network plugin that enforces NetworkPolicy and serves its policy kinds "
        "(CiliumNetworkPolicy, or Calico's projectcalico.org/v3 NetworkPolicy)",
    )
    p.add_argument(
        "--noise", type=float, default=0.0, metavar="RATE", help="background events per second"
    )
    p.add_argument(
        "--clusters",
        type=int,
        default=1,
        metavar="N",
        help=f"run N clusters at once (1 to {MAX_SIM_CLUSTERS}), each on its own port and in "
        "its own directory, with one kubeconfig naming a context for each (sim-1, sim-2...)",
    )
    return p


MAX_SIM_CLUSTERS = 4


def _main_clusters(args: argparse.Namespace) -> int:
    """`ktriage sim --clusters N`: N clusters (the scenario in each), one kubeconfig."""
    directory = args.dir or Path(tempfile.mkdtemp(prefix="ktriage-sim-"))
    clusters: dict[str, SimCluster] = {}
    try:
        for i in range(1, args.clusters + 1):
            clusters[f"sim-{i}"] = SimCluster(
                Path(directory) / f"sim-{i}",
                scenario=args.scenario,
                speed=args.speed,
                noise_rate=args.noise,
                cni=args.cni,
                variant=i - 1,  # names of its own in each cluster
            ).start()
        kubeconfig = write_joint_kubeconfig(Path(directory) / "kubeconfig", clusters)
    except (SimError, OSError) as exc:
        print(f"ktriage sim: {exc}", file=sys.stderr)
        for cluster in clusters.values():
            cluster.stop()
        return 2
    stop = _StopRequest()
    print(f"ktriage sim: {len(clusters)} Kubernetes {KUBE_VERSION} API servers")
    for name, cluster in clusters.items():
        out = cluster.outputs
        print(f"  {name:<10}  {cluster.url}  (audit log {out.audit_path})")
    print(f"  kubeconfig  {kubeconfig}")
    if args.scenario:
        print(f"  scenario    {args.scenario} at {args.speed:g}x speed, in each")
    print(f"  try         kubectl --kubeconfig {kubeconfig} --context sim-2 get pods -A")
    names = " ".join(f"--context {n}" for n in clusters)
    print(f"  watch       ktriage --kubeconfig {kubeconfig} {names}")
    print("Ctrl-C stops them.", flush=True)
    try:
        while not stop.wait(0.25):
            pass
    finally:
        for cluster in clusters.values():
            cluster.stop()
        stop.restore()  # after: a second Ctrl-C must not cut the shutdown short
        print("\nktriage sim: stopped.", flush=True)
    return 0


class _StopRequest(threading.Event):
    """Set by Ctrl-C or SIGTERM. Both handlers only set it, so a signal can neither
    cut the start-up lines short nor interrupt the clusters' shutdown halfway (a
    KeyboardInterrupt there left the server threads running and the process up)."""

    def __init__(self) -> None:
        super().__init__()
        self._previous = {
            sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGINT, signal.SIGTERM)
        }

    def _on_signal(self, signum: int, frame: Any) -> None:
        self.set()

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.speed <= 0:
        print("ktriage sim: --speed must be greater than 0", file=sys.stderr)
        return 2
    if args.noise < 0:
        print("ktriage sim: --noise must not be negative", file=sys.stderr)
        return 2
    if not 0 <= args.port <= 65535:
        print("ktriage sim: --port must be between 0 and 65535", file=sys.stderr)
        return 2
    if not 1 <= args.clusters <= MAX_SIM_CLUSTERS:
        print(f"ktriage sim: --clusters must be 1 to {MAX_SIM_CLUSTERS}", file=sys.stderr)
        return 2
    if args.clusters > 1:
        if args.port:
            print("ktriage sim: --port applies to one cluster only", file=sys.stderr)
            return 2
        return _main_clusters(args)
    directory = args.dir or Path(tempfile.mkdtemp(prefix="ktriage-sim-"))
    try:
        cluster = SimCluster(
            directory,
            scenario=args.scenario,
            speed=args.speed,
            port=args.port,
            noise_rate=args.noise,
            cni=args.cni,
        ).start()
    except (SimError, OSError) as exc:
        print(f"ktriage sim: {exc}", file=sys.stderr)
        return 2
    stop = _StopRequest()
    out = cluster.outputs
    print(f"ktriage sim: Kubernetes {KUBE_VERSION} API server at {cluster.url}")
    print(f"  kubeconfig  {cluster.kubeconfig_path}")
    print(f"  audit log   {out.audit_path}")
    print(f"  falco       {out.falco_path}")
    print(f"  tetragon    {out.tetragon_path}")
    if args.scenario:
        print(f"  scenario    {args.scenario} at {args.speed:g}x speed")
    if args.cni:
        print(f"  network     {args.cni} (agent DaemonSet and policy CRDs)")
    print(f"  try         kubectl --kubeconfig {cluster.kubeconfig_path} get pods -A")
    print("  contexts    sim-admin (current), sim-readonly (user viewer), sim-intruder")
    print("Ctrl-C stops it.", flush=True)
    reported = False
    try:
        while not stop.wait(0.25):
            player = cluster.player
            if player is not None and not reported and getattr(player, "done", False):
                reported = True
                print("ktriage sim: scenario finished; the cluster keeps serving.", flush=True)
            if cluster.player_error is not None and not reported:
                reported = True
                print(f"ktriage sim: scenario stopped: {cluster.player_error}", file=sys.stderr)
    finally:
        started = time.monotonic()
        cluster.stop()
        stop.restore()  # after: a second Ctrl-C must not cut the shutdown short
        print(f"\nktriage sim: stopped in {time.monotonic() - started:.1f} s.", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
