"""What the command line asked for, as typed objects.

The CLI parses its arguments once (`from_args`) and hands these to the commands:
`live.build_live` takes `LiveOptions`, the UI `UIOptions`, `demo.run_demo`
`DemoOptions`. Nothing below the CLI reads an argparse Namespace.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True, slots=True)
class UIOptions:
    """`--theme`, `--read-only`, `--snapshot-dir`."""

    theme: str | None = None
    read_only: bool = False
    snapshot_dir: Path | None = None

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> UIOptions:
        directory = getattr(args, "snapshot_dir", None)
        return cls(
            theme=getattr(args, "theme", None),
            read_only=bool(getattr(args, "read_only", False)),
            snapshot_dir=Path(directory) if directory else None,
        )


@dataclass(frozen=True, slots=True)
class LiveOptions:
    """Where the live sources come from: the cluster, files, pod logs, webhooks."""

    kubeconfig: str | None = None
    context: str | None = None  # the one context, when one is named
    # Every `--context` given, in order (several: several clusters in one screen).
    contexts: tuple[str, ...] = ()
    all_contexts: bool = False  # `--all-contexts`: every context of the kubeconfig
    namespace: str | None = None
    audit_log: tuple[str, ...] = ()
    # `--falco/--tetragon PATH|auto|off`, repeated; None when not given at all.
    falco: tuple[str, ...] | None = None
    tetragon: tuple[str, ...] | None = None
    from_start: bool = False
    since: float | None = None  # seconds back from now
    max_events: int | None = None
    webhook_token: str | None = None
    webhook_token_file: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    listen_audit: str | None = None
    listen_falco: str | None = None
    headless: bool = False
    ui: UIOptions = field(default_factory=UIOptions)

    def runtime(self, kind: str) -> tuple[str, ...] | None:
        """The `--falco` or `--tetragon` values."""
        return self.falco if kind == "falco" else self.tetragon

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> LiveOptions:
        def many(name: str) -> tuple[str, ...] | None:
            values = getattr(args, name, None)
            return tuple(values) if values is not None else None

        given = getattr(args, "context", None)
        contexts = tuple(given) if isinstance(given, list | tuple) else ((given,) if given else ())
        return cls(
            kubeconfig=getattr(args, "kubeconfig", None),
            context=contexts[0] if len(contexts) == 1 else None,
            contexts=contexts,
            all_contexts=bool(getattr(args, "all_contexts", False)),
            namespace=getattr(args, "namespace", None),
            audit_log=tuple(getattr(args, "audit_log", None) or ()),
            falco=many("falco"),
            tetragon=many("tetragon"),
            from_start=bool(getattr(args, "from_start", False)),
            since=getattr(args, "since", None),
            max_events=getattr(args, "max_events", None),
            webhook_token=getattr(args, "webhook_token", None),
            webhook_token_file=getattr(args, "webhook_token_file", None),
            tls_cert=getattr(args, "tls_cert", None),
            tls_key=getattr(args, "tls_key", None),
            listen_audit=getattr(args, "listen_audit", None),
            listen_falco=getattr(args, "listen_falco", None),
            headless=bool(getattr(args, "headless", False)),
            ui=UIOptions.from_args(args),
        )


@dataclass(frozen=True, slots=True)
class DemoOptions:
    """`ktriage demo`: the scenario, its speed, where its files go, the network plugin."""

    scenario: str = "cryptominer"
    speed: float = 5.0
    clusters: int = 1  # `--clusters N`: N simulated clusters at once
    directory: Path | None = None  # kept after the demo when given
    cni: str | None = None
    ui: UIOptions = field(default_factory=UIOptions)

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> DemoOptions:
        speed = getattr(args, "speed", None)
        directory = getattr(args, "dir", None)
        return cls(
            scenario=getattr(args, "scenario", None) or "cryptominer",
            speed=5.0 if speed is None else float(speed),
            clusters=int(getattr(args, "clusters", None) or 1),
            directory=Path(directory) if directory else None,
            cni=getattr(args, "cni", None),
            ui=UIOptions.from_args(args),
        )
