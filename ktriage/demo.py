"""`ktriage demo`: the simulated cluster under attack, watched by the live sources, in the UI.

The simulated cluster runs in this process (its own thread and loop, a real
HTTP server on loopback); ktriage connects to it exactly as it would to a real
cluster: kubeconfig, pod/node/event watches, and the audit, Falco and Tetragon
streams the scenario writes.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ktriage.core.config import Config
from ktriage.options import DemoOptions, LiveOptions

if TYPE_CHECKING:
    from ktriage.live import LiveSetup


def live_options(sim: Any, options: DemoOptions) -> LiveOptions:
    """What `ktriage --kubeconfig ... --audit-log ... --falco ... --tetragon ...` would give."""
    out = sim.outputs
    return LiveOptions(
        kubeconfig=str(sim.kubeconfig_path),
        audit_log=(str(out.audit_path),),
        falco=(str(out.falco_path),),
        tetragon=(str(out.tetragon_path),),
        from_start=True,
        ui=options.ui,
    )


def how_to_use(sim: Any, scenario: str, speed: float) -> list[str]:
    out = sim.outputs
    return [
        f"Simulated cluster at {sim.url}, playing {scenario!r} at {speed:g}x speed.",
        f"In another terminal: kubectl --kubeconfig {sim.kubeconfig_path} get pods -A",
        f"Streams: {out.audit_path}, {out.falco_path}, {out.tetragon_path}",
    ]


# The contexts of `ktriage demo --clusters 2`, one simulated cluster each.
DEMO_CONTEXTS = ("demo-east", "demo-west")


def cluster_live_options(
    sims: dict[str, Any], kubeconfig: Path, options: DemoOptions
) -> LiveOptions:
    """What `ktriage --kubeconfig K --context east --context west --audit-log east=...`
    would give: each cluster with its own streams."""

    def each(kind: str) -> tuple[str, ...]:
        return tuple(f"{n}={getattr(sim.outputs, f'{kind}_path')}" for n, sim in sims.items())

    return LiveOptions(
        kubeconfig=str(kubeconfig),
        contexts=tuple(sims),
        audit_log=each("audit"),
        falco=each("falco"),
        tetragon=each("tetragon"),
        from_start=True,
        ui=options.ui,
    )


def run_demo(options: DemoOptions, cfg: Config) -> int:
    """Start the simulated cluster with the scenario and open the UI on it."""
    from ktriage.sim.runner import SimCluster, SimError

    scenario, speed = options.scenario, options.speed
    if not speed > 0:
        print("ktriage demo: --speed must be greater than 0", file=sys.stderr)
        return 2
    if options.clusters != 1:
        return run_demo_clusters(options, cfg)
    keep = options.directory
    directory = keep or Path(tempfile.mkdtemp(prefix="ktriage-demo-"))
    try:
        sim = SimCluster(directory, scenario=scenario, speed=speed, cni=options.cni).start()
    except (SimError, OSError) as exc:
        print(f"ktriage demo: {exc}", file=sys.stderr)
        if not keep:
            shutil.rmtree(directory, ignore_errors=True)
        return 2
    notes = how_to_use(sim, scenario, speed)
    try:
        if keep:
            for line in notes:
                print(f"ktriage demo: {line}", file=sys.stderr)
        return _run_ui(sim, options, cfg, notes if keep else notes[:1])
    finally:
        sim.stop()
        if not keep:
            shutil.rmtree(directory, ignore_errors=True)
        else:
            print(f"ktriage demo: the streams and kubeconfig stay in {directory}", file=sys.stderr)


def _run_ui(sim: Any, options: DemoOptions, cfg: Config, notes: list[str]) -> int:
    from ktriage.actions.service import kubeconfig_factory
    from ktriage.live import LiveError, build_live

    try:
        setup = build_live(live_options(sim, options), cfg)
    except LiveError as exc:
        print(f"ktriage demo: {exc}", file=sys.stderr)
        return 2
    setup.engine.context_name = "demo"
    factory = kubeconfig_factory(str(sim.kubeconfig_path))
    return _run_app(setup, options, sim.clock.now, notes, factory)


def _run_app(
    setup: LiveSetup,
    options: DemoOptions,
    clock: Callable[[], float],
    notes: list[str],
    api_client_factory: Any = None,
) -> int:
    """The UI on the setup's engine until it quits; then its connections and archive
    are closed. The UI (ages, lag, action times, time to contain) runs on the
    scenario's clock, which may run faster than the wall clock."""
    from ktriage.ui.app import KtriageApp, ui_options

    engine = setup.engine
    engine.set_clock(clock)
    app = KtriageApp(
        engine, mode="demo", clock=clock, startup_notes=notes, **ui_options(options.ui)
    )
    if api_client_factory is not None:
        app.api_client_factory = api_client_factory
    try:
        app.run()
    finally:
        setup.close_connections()
        engine.archive.close()
    return app.return_code or 0


def run_demo_clusters(options: DemoOptions, cfg: Config) -> int:
    """`ktriage demo --clusters 2`: two simulated clusters on two loopback ports, each
    playing the scenario, one kubeconfig with a context for each, watched in one screen."""
    from ktriage.sim.runner import SimCluster, SimError, write_joint_kubeconfig

    count = options.clusters
    if not 1 < count <= len(DEMO_CONTEXTS):
        print(f"ktriage demo: --clusters must be 1 to {len(DEMO_CONTEXTS)}", file=sys.stderr)
        return 2
    keep = options.directory
    directory = keep or Path(tempfile.mkdtemp(prefix="ktriage-demo-"))
    sims: dict[str, Any] = {}
    try:
        for variant, name in enumerate(DEMO_CONTEXTS[:count]):
            # Each with names of its own (pod hashes, container ids, pod network), so a
            # view or an action on the wrong cluster shows on screen.
            sims[name] = SimCluster(
                directory / name,
                scenario=options.scenario,
                speed=options.speed,
                cni=options.cni,
                variant=variant,
            ).start()
        kubeconfig = write_joint_kubeconfig(directory / "kubeconfig", sims)
    except (SimError, OSError) as exc:
        print(f"ktriage demo: {exc}", file=sys.stderr)
        for sim in sims.values():
            sim.stop()
        if not keep:
            shutil.rmtree(directory, ignore_errors=True)
        return 2
    where = ", ".join(f"{n} at {s.url}" for n, s in sims.items())
    notes = [
        f"{len(sims)} simulated clusters ({where}), "
        f"each playing {options.scenario!r} at {options.speed:g}x speed.",
        f"In another terminal: kubectl --kubeconfig {kubeconfig} --context {DEMO_CONTEXTS[1]} "
        "get pods -A",
    ]
    try:
        if keep:
            for line in notes:
                print(f"ktriage demo: {line}", file=sys.stderr)
        return _run_clusters_ui(sims, kubeconfig, options, cfg, notes if keep else notes[:1])
    finally:
        for sim in sims.values():
            sim.stop()
        if not keep:
            shutil.rmtree(directory, ignore_errors=True)
        else:
            print(f"ktriage demo: the streams and kubeconfig stay in {directory}", file=sys.stderr)


def _run_clusters_ui(
    sims: dict[str, Any], kubeconfig: Path, options: DemoOptions, cfg: Config, notes: list[str]
) -> int:
    from ktriage.live import LiveError, build_live

    try:
        setup = build_live(cluster_live_options(sims, kubeconfig, options), cfg)
    except LiveError as exc:
        print(f"ktriage demo: {exc}", file=sys.stderr)
        return 2
    # Both scenarios run on clocks started together: the first one's is the UI's.
    return _run_app(setup, options, next(iter(sims.values())).clock.now, notes)
