"""Live mode: an Engine with the sources the command line asks for, and headless runs.

`build_live(options)` turns the options of `ktriage` (live, `LiveOptions`) into an Engine
whose sources are added but not started (the UI or `run_headless` starts them).
`run_headless(options)` runs the same sources and correlation without the UI and
prints incident updates as JSON lines, the `replay --json` format, until SIGINT
or SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import orjson

from ktriage.core.cluster import ClusterState
from ktriage.core.config import Config
from ktriage.core.gcpause import collector_paused
from ktriage.core.model import Incident
from ktriage.core.report import incident_json, incident_json_line, skipped_json
from ktriage.core.text import shown
from ktriage.engine import Engine, SourceHealth
from ktriage.options import LiveOptions
from ktriage.procmem import return_large_blocks
from ktriage.sources.http import (
    AuditWebhookSource,
    FalcoWebhookSource,
    ListenError,
    WebhookSource,
    parse_listen,
    tls_context,
)
from ktriage.sources.kube import (
    Backoff,
    KubeConfigError,
    KubeConnection,
    ListWatch,
    kube_sources,
)
from ktriage.sources.podlogs import PodLogSource
from ktriage.sources.tail import FileSource

# Headless prints one incident at most this often, so a flood stays readable.
PRINT_INTERVAL = 0.5
TOKEN_ENV = "KTRIAGE_WEBHOOK_TOKEN"


class LiveError(Exception):
    """The command line asks for something that cannot work; the message says why."""


@dataclass
class LiveSetup:
    engine: Engine
    connection: KubeConnection | None = None
    webhooks: list[WebhookSource] = field(default_factory=list)
    # With several clusters, each one's connection (`connection` is then None).
    connections: list[KubeConnection] = field(default_factory=list)

    def ask_first_pages(self) -> None:
        """Have the cluster's lists ask for their first pages now (see
        `ListWatch.ask_first_page`), before the UI, still loading, starts them. The
        UI's memory setting comes first: the replies are a few MiB each (procmem)."""
        return_large_blocks()
        for source in self.engine.sources:
            if isinstance(source, ListWatch):
                source.ask_first_page()

    def close_lists(self) -> None:
        """End the lists' requests (an early first page among them) when the UI that
        would have started them never runs."""
        for source in self.engine.sources:
            if isinstance(source, ListWatch):
                source.close()

    def close_connections(self) -> None:
        if self.connection is not None:
            self.connection.close()
        for conn in self.connections:
            conn.close()

    # Things worth telling the user before starting (stderr in headless mode).
    notes: list[str] = field(default_factory=list)


def _runtime_specs(values: list[str] | None, flag: str) -> tuple[bool, list[str], bool]:
    """(--x given at all, paths, auto) from repeated `--x PATH|auto|off`."""
    if not values:
        return False, [], False
    if any(v == "off" for v in values):
        if len(values) > 1:
            raise LiveError(f"{flag} off cannot be combined with other {flag} values")
        return True, [], False
    paths = [v for v in values if v != "auto"]
    return True, paths, "auto" in values


def build_live(
    options: LiveOptions, config: Config | None = None, *, backoff: Backoff | None = None
) -> LiveSetup:
    """An Engine with the sources `options` asks for (not started); with several
    contexts (`--context a --context b`, `--all-contexts`) a MultiEngine with one
    member per cluster (see build_clusters)."""
    names = context_names(options)
    if len(names) > 1:
        return build_clusters(options, names, config, backoff=backoff)
    if names and options.context != names[0]:
        options = dataclasses.replace(options, context=names[0])
    engine = Engine(config, max_events=options.max_events)
    setup = LiveSetup(engine)
    start = "beginning" if options.from_start else "end"
    since_seconds = options.since
    if since_seconds is not None and start == "beginning":
        raise LiveError("--since and --from-start cannot be used together")
    since = time.time() - since_seconds if since_seconds is not None else None

    # The cluster, found like kubectl finds it.
    conn: KubeConnection | None = None
    explicit = bool(options.kubeconfig or options.context)
    try:
        conn = KubeConnection.connect(options.kubeconfig, options.context)
    except KubeConfigError as exc:
        if explicit:
            raise LiveError(str(exc)) from exc
        setup.notes.append(f"not watching a cluster: {exc}")
    namespace = options.namespace
    if conn is not None:
        setup.connection = conn
        engine.context_name = conn.context_name
        engine.cluster_name = conn.cluster_name
        state = ClusterState(engine.networks)
        engine.cluster = state
        for src in kube_sources(conn, state, namespace=namespace, backoff=backoff):
            engine.add_source(src)

    for path in options.audit_log:
        engine.add_source(FileSource(Path(path), "audit", start=start, since=since))

    for flag, kind in (("--falco", "falco"), ("--tetragon", "tetragon")):
        given, paths, auto = _runtime_specs(options.runtime(kind), flag)
        if not given:
            auto = conn is not None  # the default when connected to a cluster
        for path in paths:
            engine.add_source(FileSource(Path(path), kind, start=start, since=since))
        if auto:
            if conn is None:
                setup.notes.append(f"{flag} auto needs a cluster connection; skipped")
            else:
                engine.add_source(
                    PodLogSource(conn, kind, start=start, since=since, backoff=backoff)
                )

    token = webhook_token(options)
    cert, key = options.tls_cert, options.tls_key
    if bool(cert) != bool(key):
        raise LiveError("--tls-cert and --tls-key go together")
    ssl_context = None
    if cert and key:
        try:
            ssl_context = tls_context(cert, key)
        except ListenError as exc:
            raise LiveError(str(exc)) from exc
    listeners = (
        ("--listen-audit", options.listen_audit, AuditWebhookSource),
        ("--listen-falco", options.listen_falco, FalcoWebhookSource),
    )
    bound: set[tuple[str, int]] = set()
    for flag, value, cls in listeners:
        if not value:
            continue
        try:
            host, port = parse_listen(value)
        except ValueError as exc:
            raise LiveError(f"{flag}: {exc}") from exc
        if (host, port) in bound and port != 0:
            raise LiveError("--listen-audit and --listen-falco need different ports")
        bound.add((host, port))
        hook = cls(host, port, token=token, ssl_context=ssl_context)
        setup.webhooks.append(hook)
        engine.add_source(hook)
    if (setup.webhooks and token is None) and any(h.host not in _LOOPBACK for h in setup.webhooks):
        # Anyone who can reach the port could feed the triage false events.
        raise LiveError(
            f"webhooks listening beyond loopback need a shared token: set {TOKEN_ENV} "
            "(or --webhook-token)"
        )
    if not engine.sources:
        raise LiveError(
            "nothing to watch: no cluster found and no --audit-log, --falco, --tetragon "
            "or --listen-* given"
        )
    return setup


_LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})


# ---- several clusters ----------------------------------------------------------

# More contexts than this in one screen is a mistake (a kubeconfig of a whole fleet
# given to --all-contexts), not a triage: each cluster costs watches and threads.
MAX_CLUSTERS = 16


def context_names(options: LiveOptions) -> list[str]:
    """The contexts to watch: `--context` (repeatable, in order, once each), or every
    context of the kubeconfig with `--all-contexts`; [] for kubectl's current one."""
    if options.all_contexts:
        if options.contexts:
            raise LiveError("--all-contexts and --context cannot be used together")
        names = kubeconfig_contexts(options.kubeconfig)
        if not names:
            raise LiveError("--all-contexts: the kubeconfig names no context")
    else:
        names = list(dict.fromkeys(options.contexts))
        if not names and options.context:
            names = [options.context]
    if len(names) > MAX_CLUSTERS:
        raise LiveError(
            f"{len(names)} contexts: ktriage watches at most {MAX_CLUSTERS} clusters at once; "
            "name them with --context"
        )
    for name in names:
        if not name:
            raise LiveError("--context: an empty context name")
    return names


def kubeconfig_contexts(kubeconfig: str | None) -> list[str]:
    """Every context the kubeconfig (as kubectl finds it) names, in its order."""
    from kubernetes.config import ConfigException, list_kube_config_contexts

    from ktriage.sources.kube import _kubeconfig_paths

    existing = [p for p in _kubeconfig_paths(kubeconfig) if os.path.exists(p)]
    if not existing:
        where = f" at {kubeconfig}" if kubeconfig else ""
        raise LiveError(f"--all-contexts: no kubeconfig found{where}")
    try:
        contexts, _active = list_kube_config_contexts(os.pathsep.join(existing))
    except (ConfigException, OSError, ValueError) as exc:
        raise LiveError(f"--all-contexts: cannot read the kubeconfig: {exc}") from exc
    return list(dict.fromkeys(str(c.get("name") or "") for c in contexts if c.get("name")))


def for_cluster(
    value: str, names: list[str], flag: str, *, shared: tuple[str, ...] = ()
) -> tuple[str | None, str]:
    """(cluster, rest) of a per-cluster value `CONTEXT=REST`; (None, value) for one of
    the `shared` values, which apply to every cluster. The longest context name that
    prefixes the value wins, so a context name may hold `=` too."""
    for name in sorted(names, key=len, reverse=True):
        if value.startswith(name + "="):
            return name, value[len(name) + 1 :]
    if value in shared:
        return None, value
    raise LiveError(
        f"{flag} {shown(value)!r}: with several clusters, say which one: {flag} CONTEXT=VALUE "
        f"(contexts: {', '.join(shown(n) for n in names)})"
    )


class UnreachableCluster:
    """Stands for a cluster ktriage could not even set up a client for: its health
    says why (the other clusters start as usual)."""

    def __init__(self, why: str) -> None:
        self.health = SourceHealth(name="kube", kind="kube", state="failed", last_error=why)

    async def run(self, engine: Engine) -> None:
        return None


def build_clusters(
    options: LiveOptions,
    names: list[str],
    config: Config | None = None,
    *,
    backoff: Backoff | None = None,
) -> LiveSetup:
    """A MultiEngine watching each context with its own sources: its pods, nodes and
    events, Falco and Tetragon pod logs (auto, the default), and the files and
    webhooks given for it as `CONTEXT=...`."""
    from ktriage.actions.service import kubeconfig_factory
    from ktriage.clusters import MultiEngine

    engine = MultiEngine(config, max_events=options.max_events)
    setup = LiveSetup(engine)
    start = "beginning" if options.from_start else "end"
    if options.since is not None and start == "beginning":
        raise LiveError("--since and --from-start cannot be used together")
    since = time.time() - options.since if options.since is not None else None

    audit: dict[str, list[str]] = {n: [] for n in names}
    for value in options.audit_log:
        name, path = for_cluster(value, names, "--audit-log")
        audit[name or ""].append(path)
    runtime: dict[tuple[str, str], list[str]] = {}
    for flag, kind in (("--falco", "falco"), ("--tetragon", "tetragon")):
        for value in options.runtime(kind) or ():
            name, spec = for_cluster(value, names, flag, shared=("auto", "off"))
            for target in [name] if name is not None else names:
                runtime.setdefault((target, kind), []).append(spec)
    hooks: dict[tuple[str, str], str] = {}
    listen = (("--listen-audit", options.listen_audit), ("--listen-falco", options.listen_falco))
    for flag, value in listen:
        for item in (value or "").split(","):
            if item.strip():
                name, address = for_cluster(item.strip(), names, flag)
                hooks[(name or "", flag)] = address

    for name in names:
        member = engine.add_cluster(name)
        try:
            conn = KubeConnection.connect(options.kubeconfig, name)
        except KubeConfigError as exc:
            setup.notes.append(f"cluster {shown(name)}: {exc}")
            engine.add_to(name, UnreachableCluster(str(exc)))
            conn = None
        if conn is not None:
            setup.connections.append(conn)
            member.cluster_name = conn.cluster_name
            state = ClusterState(member.networks)
            member.cluster = state
            for src in kube_sources(conn, state, namespace=options.namespace, backoff=backoff):
                engine.add_to(name, src)
            engine.client_factories[name] = kubeconfig_factory(options.kubeconfig, name)
        for path in audit[name]:
            engine.add_to(name, FileSource(Path(path), "audit", start=start, since=since))
        for flag, kind in (("--falco", "falco"), ("--tetragon", "tetragon")):
            given, paths, auto = _runtime_specs(runtime.get((name, kind)), f"{flag} {name}=")
            if not given:
                auto = conn is not None
            for path in paths:
                engine.add_to(name, FileSource(Path(path), kind, start=start, since=since))
            if auto and conn is not None:
                logs = PodLogSource(conn, kind, start=start, since=since, backoff=backoff)
                engine.add_to(name, logs)
    first = engine.members[names[0]]
    engine.cluster = first.cluster

    token = webhook_token(options)
    ssl_context = _ssl_context(options)
    bound: set[tuple[str, int]] = set()
    for (name, flag), value in hooks.items():
        try:
            host, port = parse_listen(value)
        except ValueError as exc:
            raise LiveError(f"{flag} {shown(name)}=: {exc}") from exc
        if (host, port) in bound and port != 0:
            raise LiveError(f"{flag} {shown(name)}=: every webhook needs a port of its own")
        bound.add((host, port))
        cls = AuditWebhookSource if flag == "--listen-audit" else FalcoWebhookSource
        hook = cls(host, port, token=token, ssl_context=ssl_context)
        setup.webhooks.append(hook)
        engine.add_to(name, hook)
    if (setup.webhooks and token is None) and any(h.host not in _LOOPBACK for h in setup.webhooks):
        raise LiveError(
            f"webhooks listening beyond loopback need a shared token: set {TOKEN_ENV} "
            "(or --webhook-token)"
        )
    return setup


def _ssl_context(options: LiveOptions) -> Any:
    cert, key = options.tls_cert, options.tls_key
    if bool(cert) != bool(key):
        raise LiveError("--tls-cert and --tls-key go together")
    if not (cert and key):
        return None
    try:
        return tls_context(cert, key)
    except ListenError as exc:
        raise LiveError(str(exc)) from exc


def webhook_token(options: LiveOptions) -> str | None:
    """--webhook-token, else the first line of --webhook-token-file, else the
    environment's KTRIAGE_WEBHOOK_TOKEN."""
    token = options.webhook_token
    path = options.webhook_token_file
    if not token and path:
        try:
            with open(path, encoding="utf-8") as fh:
                token = fh.readline().strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise LiveError(f"--webhook-token-file: cannot read {path}: {exc}") from exc
        if not token:
            raise LiveError(f"--webhook-token-file: {path} holds no token on its first line")
    return token or os.environ.get(TOKEN_ENV) or None


# ---- headless -----------------------------------------------------------------


class IncidentPrinter:
    """Prints each incident as a JSON line when it opens or changes, at most once
    per `interval` seconds per incident.

    An id it printed that stops naming an incident gets one line saying where it
    went: `{"type": "merged", "id": old, "into": new}` (merged into another, or
    renamed when an earlier signal arrived) or `{"type": "closed", "id": old}`
    (every signal it had turned out to be expected). A consumer that keeps the last
    line per id and drops the ids these lines name holds the incidents a replay of
    the same input gives."""

    def __init__(
        self,
        engine: Engine,
        write: Callable[[bytes], None],
        *,
        interval: float = PRINT_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.engine = engine
        self.write = write
        self.interval = interval
        self.clock = clock
        self.pending: dict[str, None] = {}
        self.last_print: dict[str, float] = {}
        self.printed_revision: dict[str, int] = {}
        # Ids printed and not since said merged or closed: what the consumer holds.
        self.printed_ids: set[str] = set()
        self.lines = 0

    def tick(self, *, force: bool = False) -> None:
        changes = self.engine.take_changes()
        correlator = self.engine.correlator
        for old in changes.renamed:
            self.pending.pop(old, None)
        for iid in sorted(changes.incidents):
            self.pending[iid] = None
        now = self.clock()
        # Ids the consumer holds that went away: their successor is printed first
        # (whatever the interval), then the line that retires the old id, so the
        # consumer never holds fewer incidents than it should.
        gone = sorted(iid for iid in self.printed_ids if iid not in correlator.incidents)
        retire: list[bytes] = []
        for iid in gone:
            inc = correlator.resolve(iid)
            self.printed_ids.discard(iid)
            if inc is None:
                retire.append(orjson.dumps({"type": "closed", "id": iid}))
                continue
            self._print(inc, now)
            self.pending.pop(inc.id, None)
            retire.append(orjson.dumps({"type": "merged", "id": iid, "into": inc.id}))
        for line in retire:
            self.write(line + b"\n")
            self.lines += 1
        for iid in list(self.pending):
            inc = correlator.resolve(iid)
            if inc is None:
                del self.pending[iid]
                continue
            if not force and now - self.last_print.get(inc.id, -1e18) < self.interval:
                continue
            del self.pending[iid]
            self._print(inc, now)

    def _print(self, inc: Incident, now: float) -> None:
        if self.printed_revision.get(inc.id) == inc.revision and inc.id in self.printed_ids:
            return
        correlator = self.engine.correlator
        events = correlator.events_of(inc.id)
        if inc.cluster:
            # With several clusters each line names its cluster (a key of its own, so
            # one cluster's output reads exactly as before).
            record = incident_json(inc, events)
            record["cluster"] = shown(inc.cluster)
            self.write(orjson.dumps(record) + b"\n")
        else:
            self.write(incident_json_line(inc, events) + b"\n")
        self.lines += 1
        self.last_print[inc.id] = now
        self.printed_revision[inc.id] = inc.revision
        self.printed_ids.add(inc.id)


class HealthReporter:
    """Says on stderr whenever a source's state or last problem changes."""

    def __init__(self, engine: Engine, err: TextIO) -> None:
        self.engine = engine
        self.err = err
        self._seen: dict[int, tuple[str, str]] = {}
        self._dropped = 0

    def tick(self) -> None:
        for src in self.engine.sources:
            h = src.health
            now = (h.state, h.last_error)
            if self._seen.get(id(src)) != now:
                self._seen[id(src)] = now
                detail = f": {shown(h.last_error)}" if h.last_error else ""
                where = f"{shown(h.cluster)}: " if h.cluster else ""
                print(
                    f"ktriage: {where}{shown(h.name)}: {h.state}{detail}",
                    file=self.err,
                    flush=True,
                )
        dropped = self.engine.store.dropped
        if dropped != self._dropped:
            self._dropped = dropped
            print(
                f"ktriage: event store full ({self.engine.store.max_events} events): "
                f"{dropped} event(s) not kept",
                file=self.err,
                flush=True,
            )


async def headless(
    setup: LiveSetup,
    *,
    out: Callable[[bytes], None],
    err: TextIO,
    stop: asyncio.Event | None = None,
    interval: float = PRINT_INTERVAL,
) -> int:
    """Run until `stop` is set (or SIGINT/SIGTERM); returns the exit code."""
    engine = setup.engine
    loop = asyncio.get_running_loop()
    stop = stop or asyncio.Event()
    installed = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set)
            installed.append(sig)
    for note in setup.notes:
        print(f"ktriage: {note}", file=err, flush=True)
    printer = IncidentPrinter(engine, out, interval=interval)
    reporter = HealthReporter(engine, err)
    try:
        for hook in setup.webhooks:
            try:
                await hook.start(engine)
            except ListenError as exc:
                print(f"ktriage: {exc}", file=err, flush=True)
                return 2
        await engine.start()
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), min(0.1, interval))
            printer.tick()
            reporter.tick()
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)
        await engine.stop()
        for hook in setup.webhooks:
            await hook.aclose()
        for src in engine.sources:
            join = getattr(src, "join", None)
            if join is not None:
                await asyncio.to_thread(join, 1.0)
        printer.tick(force=True)
        reporter.tick()
        skipped, log, partial = _skipped(engine)
        out(skipped_json(skipped, log, partial) + b"\n")
        setup.close_connections()
        engine.archive.close()
    return 0


def _skipped(engine: Engine) -> tuple[Any, list[tuple[str, str, str]], Any]:
    from collections import Counter

    total: Counter[str] = Counter()
    partial: Counter[str] = Counter()
    log: list[tuple[str, str, str]] = []
    for src in engine.sources:
        total.update(src.health.skipped)
        ingestor = getattr(src, "ingestor", None)
        if ingestor is not None:
            partial.update(ingestor.partial)
            where = f"{src.health.cluster}: " if src.health.cluster else ""
            log.extend((f"{where}{src.health.name}: {o}", r, d) for o, r, d in ingestor.skip_log)
    return total, log, partial


def run_headless(options: LiveOptions, config: Config | None = None) -> int:
    """`ktriage --headless`: JSON lines on stdout until interrupted; 0 on a clean stop."""
    try:
        setup = build_live(options, config)
    except LiveError as exc:
        print(f"ktriage: {exc}", file=sys.stderr)
        return 2
    stdout = sys.stdout.buffer

    def write(data: bytes) -> None:
        stdout.write(data)
        stdout.flush()

    try:
        return asyncio.run(headless(setup, out=write, err=sys.stderr))
    except BrokenPipeError:
        # Output piped into `head` and friends: not an error.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def run_live(options: LiveOptions, config: Config | None = None) -> int:
    """`ktriage` (live): the UI over the live sources, or headless."""
    if options.headless:
        return run_headless(options, config)
    try:
        setup = build_live(options, config)
    except LiveError as exc:
        print(f"ktriage: {exc}", file=sys.stderr)
        return 2
    # The server builds the lists' first pages while the UI's modules load.
    setup.ask_first_pages()
    try:
        with collector_paused():
            from ktriage.ui.app import run_live_ui
    except ImportError as exc:
        setup.close_lists()
        setup.close_connections()
        setup.engine.archive.close()
        print(
            f"ktriage: the terminal UI is not available ({exc}); use --headless for JSON output",
            file=sys.stderr,
        )
        return 2
    for note in setup.notes:
        print(f"ktriage: {note}", file=sys.stderr)
    if setup.connection is not None and setup.connection.context:
        # `--all-contexts` with one context: act on the one it watches.
        options = dataclasses.replace(options, context=setup.connection.context)
    try:
        return int(run_live_ui(setup.engine, options) or 0)
    finally:
        setup.close_lists()  # the app stops what it started; this, what it did not
        setup.close_connections()
        setup.engine.archive.close()
