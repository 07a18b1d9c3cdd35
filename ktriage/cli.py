"""Command line: `ktriage [live] | demo | replay | sim`."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from ktriage import __version__

if TYPE_CHECKING:
    from ktriage.core.config import Config

# The bundled scenarios, listed from their files: `--help` runs no code of the sim.
SCENARIOS = Path(__file__).resolve().parent / "sim" / "scenarios"


def _duration(text: str) -> float:
    from ktriage.core.config import parse_duration

    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def _window(text: str) -> float:
    from ktriage.core.config import parse_window

    try:
        return parse_window(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--config", metavar="PATH", help="config file (default: ~/.config/ktriage/config.toml)"
    )
    p.add_argument(
        "--window",
        type=_window,
        metavar="DURATION",
        help="correlation window, e.g. 30m (default 30m or the config's)",
    )


def _add_ui(p: argparse.ArgumentParser, *, top: bool = False) -> None:
    """UI options, accepted before or after the subcommand."""
    default = None if top else argparse.SUPPRESS
    p.add_argument(
        "--theme",
        metavar="NAME",
        default=default,
        help="ktriage-dark (default), ktriage-light, ktriage-high-contrast or a user theme",
    )
    p.add_argument(
        "--read-only",
        action="store_true",
        default=False if top else argparse.SUPPRESS,
        help="hide every containment action",
    )
    p.add_argument(
        "--snapshot-dir",
        type=Path,
        metavar="DIR",
        default=default,
        help="where `s` saves snapshots (default: $XDG_STATE_HOME/ktriage/snapshots)",
    )


def _add_live(p: argparse.ArgumentParser, *, top: bool = False) -> None:
    """Live-mode options: `ktriage [OPTIONS]` or `ktriage live [OPTIONS]`."""

    def default(value: object) -> object:
        return value if top else argparse.SUPPRESS

    g = p.add_argument_group("cluster")
    g.add_argument(
        "--kubeconfig", metavar="PATH", default=default(None), help="kubeconfig (like kubectl)"
    )
    g.add_argument(
        "--context",
        action="append",
        metavar="NAME",
        default=default(None),
        help="kubeconfig context; repeat it to watch several clusters in one screen",
    )
    g.add_argument(
        "--all-contexts",
        action="store_true",
        default=default(False),
        help="watch every context of the kubeconfig, each cluster with its own sources",
    )
    scope = g.add_mutually_exclusive_group()
    scope.add_argument(
        "-n", "--namespace", metavar="NS", default=default(None), help="watch one namespace"
    )
    scope.add_argument(
        "-A",
        "--all-namespaces",
        action="store_true",
        default=default(True),
        help="watch every namespace (the default)",
    )
    g = p.add_argument_group("streams")
    g.add_argument(
        "--audit-log",
        action="append",
        metavar="PATH",
        default=default(None),
        help="follow an API-server audit log file (repeatable); with several clusters CONTEXT=PATH",
    )
    g.add_argument(
        "--since",
        type=_duration,
        metavar="DURATION",
        default=default(None),
        help="read files and pod logs from this long ago (e.g. 15m) instead of from now",
    )
    g.add_argument(
        "--from-start",
        action="store_true",
        default=default(False),
        help="read files and pod logs from their beginning",
    )
    g.add_argument(
        "--falco",
        action="append",
        metavar="PATH|auto|off",
        default=default(None),
        help="Falco alerts: a JSON-lines file, auto (Falco pods' logs; the default with a "
        "cluster) or off (repeatable); with several clusters CONTEXT=PATH|auto|off, or "
        "auto/off for all",
    )
    g.add_argument(
        "--tetragon",
        action="append",
        metavar="PATH|auto|off",
        default=default(None),
        help="Tetragon events: an export file, auto (export-stdout of Tetragon pods) or off; "
        "with several clusters as for --falco",
    )
    g = p.add_argument_group("webhooks")
    g.add_argument(
        "--listen-audit",
        metavar="HOST:PORT",
        default=default(None),
        help="receive the audit webhook backend (EventList POSTs); with several clusters "
        "CONTEXT=HOST:PORT[,CONTEXT=HOST:PORT...]",
    )
    g.add_argument(
        "--listen-falco",
        metavar="HOST:PORT",
        default=default(None),
        help="receive Falco http_output / Falcosidekick webhook POSTs; with several "
        "clusters as for --listen-audit",
    )
    g.add_argument("--tls-cert", metavar="PATH", default=default(None), help="PEM certificate")
    g.add_argument("--tls-key", metavar="PATH", default=default(None), help="PEM private key")
    g.add_argument(
        "--webhook-token",
        metavar="TOKEN",
        default=default(None),
        help="bearer token webhook senders must present (visible to other local users in "
        "the process list: prefer --webhook-token-file or $KTRIAGE_WEBHOOK_TOKEN)",
    )
    g.add_argument(
        "--webhook-token-file",
        metavar="PATH",
        default=default(None),
        help="read the webhook bearer token from this file (its first line)",
    )
    g = p.add_argument_group("output")
    g.add_argument(
        "--headless",
        action="store_true",
        default=default(False),
        help="no UI: print incident updates as JSON lines until interrupted",
    )
    g.add_argument(
        "--max-events",
        type=int,
        metavar="N",
        default=default(None),
        help="keep at most N events in memory (what is not kept is counted)",
    )
    p.add_argument(
        "--config",
        metavar="PATH",
        default=default(None),
        help="config file (default: ~/.config/ktriage/config.toml)",
    )
    p.add_argument(
        "--window",
        type=_window,
        metavar="DURATION",
        default=default(None),
        help="correlation window, e.g. 30m (default 30m or the config's)",
    )


def _terminal_columns() -> int:
    """The terminal's width as `shutil.get_terminal_size` gives it (COLUMNS, else the
    terminal of standard output, else 80), without importing shutil (with bz2 and
    lzma, 2 ms of every start: argparse imports it to size its help)."""
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns or 80


class _HelpFormatter(argparse.HelpFormatter):
    def __init__(
        self,
        prog: str,
        indent_increment: int = 2,
        max_help_position: int = 24,
        width: int | None = None,
    ) -> None:
        if width is None:
            width = _terminal_columns() - 2  # as argparse does
        super().__init__(prog, indent_increment, max_help_position, width)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ktriage",
        description="Kubernetes security incident triage in the terminal.",
        formatter_class=_HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"ktriage {__version__}")
    _add_ui(parser, top=True)
    _add_live(parser, top=True)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    live = sub.add_parser(
        "live",
        formatter_class=_HelpFormatter,
        help="watch a cluster and its streams (the default command)",
        description="Watch a cluster's pods, nodes and events, audit logs and runtime alerts.",
    )
    _add_live(live)
    _add_ui(live)

    replay = sub.add_parser(
        "replay",
        formatter_class=_HelpFormatter,
        help="correlate recorded audit/Falco/Tetragon files",
        description="Read recorded streams (JSON lines, JSON documents, .gz) and report "
        "incidents. With none of --json, --markdown or --text, on a terminal, the incidents "
        "open in the UI (where --theme, --read-only and --snapshot-dir apply).",
    )
    replay.add_argument(
        "files",
        nargs="+",
        type=Path,
        metavar="FILE",
        help="audit logs, Falco or Tetragon JSON (lines, a document or an array; .gz too; "
        "- for standard input); formats are told apart line by line",
    )
    out = replay.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="one JSON object per incident per line")
    replay.add_argument(
        "--markdown", type=Path, metavar="DIR", help="write one Markdown snapshot per incident"
    )
    replay.add_argument(
        "--snapshot-format",
        choices=("markdown", "text"),
        default="markdown",
        help="what --markdown writes: Markdown (.md, the default) or plain text (.txt) for a "
        "ticket system that renders no Markdown",
    )
    out.add_argument("--text", action="store_true", help="print the text report (no UI)")
    _add_common(replay)
    _add_ui(replay)

    sim = sub.add_parser(
        "sim", help="run the simulated cluster", add_help=False, formatter_class=_HelpFormatter
    )
    sim.add_argument("rest", nargs=argparse.REMAINDER)

    demo = sub.add_parser(
        "demo",
        formatter_class=_HelpFormatter,
        help="the simulated cluster under attack, in the UI",
        description="Start the simulated cluster on loopback, play an attack on it, and "
        "watch it in the UI as a live cluster: every key works, actions included.",
    )
    demo.add_argument(
        "--scenario",
        default="cryptominer",
        metavar="NAME",
        help=f"the attack to play: {', '.join(scenario_names())} (default: cryptominer)",
    )
    # The scenario starts quietly; at 5x its first signal shows about 10 s in.
    demo.add_argument(
        "--speed",
        type=float,
        default=5.0,
        metavar="N",
        help="play N times faster than real time (default: 5)",
    )
    demo.add_argument(
        "--clusters",
        type=int,
        choices=(1, 2),
        default=1,
        metavar="N",
        help="run N simulated clusters at once (1 or 2), each playing the scenario, as "
        "contexts demo-east and demo-west watched in one screen; the second has pod names, "
        "container ids and a pod network (10.245.0.0/16) of its own (default: 1)",
    )
    demo.add_argument(
        "--cni",
        choices=("cilium", "calico"),
        help="the simulated cluster runs this network plugin (its agent and policy kinds): "
        "isolation then uses a deny-based CiliumNetworkPolicy or Calico policy",
    )
    demo.add_argument(
        "--dir",
        type=Path,
        metavar="DIR",
        help="keep the streams and the kubeconfig here (default: a temporary directory, "
        "removed at the end)",
    )
    _add_common(demo)
    _add_ui(demo)
    return parser


def scenario_names() -> list[str]:
    """The names `demo --scenario` takes (as `ktriage.sim.scenario.bundled` lists them)."""
    return sorted(
        p.name[: -len(".yaml")] for p in SCENARIOS.glob("*.yaml") if not p.name.startswith("_")
    )


def _load_config(args: argparse.Namespace) -> Config:
    from ktriage.core.config import load_config

    cfg = load_config(args.config) if args.config else load_config()
    if getattr(args, "window", None) is not None:
        cfg.window = args.window
    return cfg


def cmd_replay(args: argparse.Namespace) -> int:
    """`ktriage replay`; `-` reads standard input (kept in a private temporary file
    while the replay runs, as raw records are read back by offset)."""
    if not any(str(f) == "-" for f in args.files):
        return _cmd_replay(args)
    if sum(str(f) == "-" for f in args.files) > 1:
        print("ktriage replay: `-` (standard input) can be given once", file=sys.stderr)
        return 2
    if sys.stdin.isatty():
        print("ktriage replay: -: nothing piped to standard input", file=sys.stderr)
        return 2
    import shutil
    import tempfile

    with tempfile.TemporaryDirectory(prefix="ktriage-stdin-") as tmp:
        os.chmod(tmp, 0o700)
        path = Path(tmp) / "stdin"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            shutil.copyfileobj(sys.stdin.buffer, out, 1 << 20)
        args.files = [path if str(f) == "-" else f for f in args.files]
        if not (args.json or args.markdown or args.text):
            args.text = True  # the UI reads keys from standard input: it is taken
        return _cmd_replay(args)


def _cmd_replay(args: argparse.Namespace) -> int:
    from ktriage.core.correlate import Correlator
    from ktriage.core.detect.identity import ClusterNetworks
    from ktriage.core.ingest import Ingestor
    from ktriage.core.replay import InputError, Replayer
    from ktriage.core.report import (
        incident_json_line,
        skipped_json,
        skipped_summary,
        text_report,
    )

    cfg = _load_config(args)
    correlator = Correlator(config=cfg)
    # Reports need incidents only: large files are read focused (core/focus.py),
    # the largest with a helper process (this command runs no other threads).
    ingestor = Ingestor(ClusterNetworks(cfg.networks), allowlist=cfg.allowlist)
    replayer = Replayer(correlator, ingestor, focus=True, parallel=True)
    try:
        replayer.check(args.files)
    except InputError as exc:
        print(f"ktriage replay: {exc}", file=sys.stderr)
        return 2
    if sys.stdout is None and (args.json or args.text or not args.markdown):
        # Started with its standard output closed (`>&-`): said before the replay.
        print(
            "ktriage replay: standard output is closed, so the report has nowhere to go "
            "(--markdown DIR writes it to files instead)",
            file=sys.stderr,
        )
        return 2
    if not (args.json or args.markdown or args.text) and sys.stdout.isatty():
        return _replay_ui(args, cfg)
    if args.markdown:
        # Checked before the replay, which may take a while.
        problem = _snapshot_dir_problem(args.markdown)
        if problem:
            print(f"ktriage replay: --markdown {args.markdown}: {problem}", file=sys.stderr)
            return 2
    replayer.replay(args.files)
    ingestor = replayer.ingestor
    incidents = correlator.sorted_incidents()
    if args.json:
        out = sys.stdout.buffer
        for inc in incidents:
            out.write(incident_json_line(inc, correlator.events_of(inc.id)) + b"\n")
        out.write(skipped_json(ingestor.skipped, ingestor.skip_log, ingestor.partial) + b"\n")
        out.flush()
    elif not args.markdown or args.text:
        sys.stdout.write(text_report(incidents, correlator.events_of))
    if args.markdown:
        from ktriage.core.snapshot import write_snapshot
        from ktriage.core.workflow import saved_workflow

        # What responders noted in the UI on this same data comes back with it.
        work, problem = saved_workflow("replay")
        if problem:
            print(f"ktriage replay: workflow not included: {problem}", file=sys.stderr)
        for inc in incidents:
            try:
                path = write_snapshot(
                    args.markdown,
                    inc,
                    correlator.events_of(inc.id),
                    replayer.archive.record,
                    fmt=args.snapshot_format,
                    work=work.get(inc.id),
                )
            except OSError as exc:
                print(
                    f"ktriage replay: cannot write a snapshot to {args.markdown}: "
                    f"{exc.strerror or exc}",
                    file=sys.stderr,
                )
                return 1
            if not args.json:
                print(f"wrote {path}")
    print(skipped_summary(ingestor.skipped, ingestor.skip_log, ingestor.partial), file=sys.stderr)
    if replayer.stats.unrelated:
        print(
            f"{replayer.stats.unrelated} valid line(s) named nothing any incident involves "
            "and were counted, not kept.",
            file=sys.stderr,
        )
    replayer.archive.close()
    global _REPLAY_CLEANED_UP
    _REPLAY_CLEANED_UP = True
    return 0


# Set once a replay wrote its whole report and removed what it kept on disk: the
# program may then end at once (see _end_now).
_REPLAY_CLEANED_UP = False


def _end_now(code: int) -> NoReturn:
    """End the program without tearing down what it built, once everything it
    printed is flushed: after a large replay, freeing its objects one by one (the
    interpreter's own ending) took longer than many a whole small replay."""
    try:
        if sys.stdout is not None:  # (None: started with its standard output closed)
            sys.stdout.flush()
    except BrokenPipeError:
        code = 0  # output piped into `head` and friends: not an error (see main)
    with contextlib.suppress(OSError, ValueError):
        if sys.stderr is not None:
            sys.stderr.flush()
    os._exit(code)


def _snapshot_dir_problem(directory: Path) -> str:
    """Why snapshots cannot be written to `directory` (created 0700 if missing), or ""."""
    from ktriage.core.snapshot import make_private_dirs

    if directory.exists() and not directory.is_dir():
        return "exists and is not a directory"
    try:
        make_private_dirs(directory)
    except OSError as exc:
        return f"cannot create it: {exc.strerror or exc}"
    if not os.access(directory, os.W_OK | os.X_OK):
        return "not writable"
    mode = directory.stat().st_mode & 0o777
    if mode & 0o077:
        # Snapshots are 0600 themselves; say that the directory shows their names.
        print(
            f"ktriage replay: note: {directory} is readable by others (mode {mode:o}); "
            "the snapshots themselves are private (0600)",
            file=sys.stderr,
        )
    return ""


def _replay_ui(args: argparse.Namespace, cfg: Config) -> int:
    try:
        from ktriage.ui.app import run_replay_ui
    except ImportError:
        args.text = True
        return cmd_replay(args)
    from ktriage.options import UIOptions

    return run_replay_ui(args.files, cfg, UIOptions.from_args(args))


def _trust_earlier_sessions() -> None:
    """Recognise the requests of the earlier ktriage sessions recorded in the state
    directory (core/sessions.py); a damaged file is said, and costs only that."""
    from ktriage.core.sessions import default_state_dir, load_sessions

    read = load_sessions(default_state_dir())
    if read.problem:
        print(f"ktriage: {read.problem}", file=sys.stderr)
    elif read.skipped:
        print(
            f"ktriage: {read.skipped} unreadable line(s) in the sessions file skipped",
            file=sys.stderr,
        )


def preload_ui_modules(*, ui: bool = True) -> None:
    """Import the live sources' modules, and the UI's unless `ui` is False, the
    collector paused while they load (core/gcpause.py; the figures are in
    ktriage/procmem.py). A UI that cannot be imported is left for the caller to
    report."""
    import importlib

    from ktriage.core.gcpause import collector_paused

    with collector_paused():
        importlib.import_module("ktriage.live")
        if ui:
            with contextlib.suppress(ImportError):
                importlib.import_module("ktriage.ui.app")


def main(argv: list[str] | None = None) -> int:
    """The program (`argv` None: its command line), or one command of it."""
    program = argv is None
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if argv and argv[0] == "sim":
        from ktriage.sim.runner import main as sim_main

        return sim_main(argv[1:])
    args = parser.parse_args(argv)
    from ktriage.core.config import ConfigError

    _trust_earlier_sessions()

    try:
        if args.command == "replay":
            code = cmd_replay(args)
            if program and _REPLAY_CLEANED_UP:
                _end_now(code)
            return code
        if args.command == "demo":
            preload_ui_modules(ui=not getattr(args, "headless", False))
            from ktriage.demo import run_demo
            from ktriage.options import DemoOptions

            return run_demo(DemoOptions.from_args(args), _load_config(args))
        # The UI's own modules load later, while the cluster's first pages are built
        # (live.run_live).
        preload_ui_modules(ui=False)
        from ktriage.live import run_live
        from ktriage.options import LiveOptions

        return run_live(LiveOptions.from_args(args), _load_config(args))
    except ConfigError as exc:
        print(f"ktriage: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # Output piped into `head` and friends: not an error.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
