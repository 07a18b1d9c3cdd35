"""Watching a cluster's pods, nodes and events with the official `kubernetes` client.

Each resource is listed, then watched from the list's resourceVersion with
bookmarks, in a thread of its own (the client blocks); results are handed to the
event loop with `call_soon_threadsafe`, where `ClusterState` turns them into
events. A list is applied page by page as the pages arrive (a cluster of 20,000
pods shows while it loads, and only one page of decoded objects is held, with the
next page's reply being read meanwhile); the watch starts from the list's
resourceVersion. Replies are read raw (`_preload_content=False`) and decoded as
plain dicts, the form `ClusterState` takes; listed pods are read in full in the
watch thread (`cluster.listed_pod`), so the loop only applies them.

Faults, as a long-running watcher meets them:
- a stream that ends or is cut: watch again from the last resourceVersion seen,
  after a jittered exponential backoff when it keeps failing;
- 410 Expired (the resourceVersion is too old): list again and apply only the
  differences (`ClusterState.resync_*`);
- 429: wait as long as Retry-After says;
- 401/403 and 5xx: say so in words in the source's health and keep retrying,
  re-reading the kubeconfig's credentials after a 401 (tokens get rotated);
- an untrusted certificate (the cluster's CA changed), DNS failures, refused
  connections: named in words, not as the client's exception;
- a server that accepts connections but stops answering: every wait for an
  answer is bounded (`WatchTimeouts.stall`), and a watch that is silent for half
  that long is checked with a cheap list (`limit=1`) of the same resource; no
  answer at all for `stall` seconds shows as the health state `stalled`, the
  silent stream is dropped and opened again once the server answers. A watch that
  is silent while its server answers is normal and stays `connected`.

Stopping shuts the open response's socket down, so every watch thread ends
within a second even on a quiet stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import socket
import ssl
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import urllib3
import yaml
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

from ktriage.core.cluster import ClusterState, listed_pod
from ktriage.core.model import Event
from ktriage.core.podlist import decode_list_reply, decode_pod_page
from ktriage.engine import Engine, SourceHealth
from ktriage.kubeclient import (
    USER_AGENT,
    client_from_kubeconfig,
    raw_get,
    retry_after,
    status_message,
    tune,
)
from ktriage.sources import listgc
from ktriage.sources.base import deliver

RESOURCES = ("pods", "nodes", "events")
# Most watch events handed to the loop at once; the watch thread waits while
# this many are still queued there (backpressure instead of unbounded memory).
MAX_BATCH = 500
MAX_QUEUED = 20_000
# Listed objects applied on the loop at once (a list's pages are cut into slices).
APPLY_SLICE = 100
# Listed objects handed over and not applied yet, at most, when the next slice goes.
LIST_AHEAD = APPLY_SLICE
# A watch event line longer than this is not held: etcd keeps objects under
# ~1.5 MiB, so only a broken or hostile server sends one; the resource is listed
# again instead (nothing is missed, the list has the object).
MAX_WATCH_LINE = 64 * 1024 * 1024


class KubeConfigError(Exception):
    """No usable cluster configuration; the message says what was tried."""


# ---- connection ----------------------------------------------------------------


def _kubeconfig_paths(kubeconfig: str | None) -> list[str]:
    value = kubeconfig or os.environ.get("KUBECONFIG") or "~/.kube/config"
    return [os.path.expanduser(p) for p in value.split(os.pathsep) if p]


class KubeConnection:
    """An ApiClient made the way kubectl finds its cluster: `--kubeconfig`, then
    `$KUBECONFIG`, then `~/.kube/config`, then the in-cluster service account."""

    def __init__(
        self,
        api_client: k8s.ApiClient,
        *,
        kubeconfig: str | None = None,
        context: str | None = None,
        context_name: str = "",
        cluster_name: str = "",
        namespace: str = "",
        in_cluster: bool = False,
    ) -> None:
        self.api_client = api_client
        self.kubeconfig = kubeconfig
        self.context = context
        self.context_name = context_name
        self.cluster_name = cluster_name
        self.namespace = namespace  # the context's default namespace
        self.in_cluster = in_cluster
        self._lock = threading.Lock()
        self.reloads = 0

    @property
    def server(self) -> str:
        return str(self.api_client.configuration.host)

    @classmethod
    def connect(cls, kubeconfig: str | None = None, context: str | None = None) -> KubeConnection:
        paths = _kubeconfig_paths(kubeconfig)
        existing = [p for p in paths if os.path.exists(p)]
        if kubeconfig and not existing:
            raise KubeConfigError(f"kubeconfig not found: {kubeconfig}")
        if existing:
            config_file = os.pathsep.join(existing)
            try:
                contexts, active = k8s_config.list_kube_config_contexts(config_file)
                chosen = active
                if context:
                    chosen = next((c for c in contexts if c.get("name") == context), None)
                    if chosen is None:
                        names = ", ".join(sorted(str(c.get("name")) for c in contexts))
                        raise KubeConfigError(
                            f"context {context!r} not found in {config_file} "
                            f"(contexts: {names or 'none'})"
                        )
                api_client = client_from_kubeconfig(config_file, context)
            except ConfigException as exc:
                raise KubeConfigError(f"cannot use kubeconfig {config_file}: {exc}") from exc
            except (OSError, ValueError, yaml.YAMLError) as exc:
                # YAMLError: a kubeconfig that is not YAML at all (the client lets it through).
                raise KubeConfigError(f"cannot read kubeconfig {config_file}: {exc}") from exc
            ctx = (chosen or {}).get("context") or {}
            return cls(
                api_client,
                kubeconfig=config_file,
                context=context,
                context_name=str((chosen or {}).get("name") or ""),
                cluster_name=str(ctx.get("cluster") or ""),
                namespace=str(ctx.get("namespace") or ""),
            )
        if os.environ.get("KUBERNETES_SERVICE_HOST"):
            configuration = k8s.Configuration()
            try:
                k8s_config.load_incluster_config(client_configuration=configuration)
            except ConfigException as exc:
                raise KubeConfigError(f"in-cluster configuration unusable: {exc}") from exc
            tune(configuration)
            ns_file = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
            namespace = ns_file.read_text().strip() if ns_file.exists() else ""
            in_cluster = k8s.ApiClient(configuration)
            in_cluster.user_agent = USER_AGENT
            return cls(
                in_cluster,
                context_name="in-cluster",
                cluster_name="in-cluster",
                namespace=namespace,
                in_cluster=True,
            )
        raise KubeConfigError(
            f"no kubeconfig found (looked for {', '.join(paths)}) and not running in a "
            "cluster; use --kubeconfig or set KUBECONFIG"
        )

    def reload(self) -> bool:
        """Re-read credentials (after a 401: tokens and exec plugins rotate)."""
        if self.in_cluster or not self.kubeconfig:
            return False
        with self._lock:
            try:
                fresh = client_from_kubeconfig(self.kubeconfig, self.context)
            except (ConfigException, OSError, ValueError):
                return False
            # Swap the credentials in place: open responses keep their sockets.
            old = self.api_client.configuration
            new = fresh.configuration
            old.api_key = new.api_key
            old.api_key_prefix = new.api_key_prefix
            old.refresh_api_key_hook = new.refresh_api_key_hook
            self.reloads += 1
            return True

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.api_client.close()


# ---- retry policy ---------------------------------------------------------------


@dataclass(slots=True)
class Backoff:
    """Jittered exponential backoff: initial, initial*factor, ... up to cap."""

    initial: float = 0.5
    cap: float = 30.0
    factor: float = 2.0
    jitter: float = 0.2
    attempt: int = 0
    rng: random.Random = field(default_factory=random.Random)

    def next(self) -> float:
        base = min(self.cap, self.initial * self.factor**self.attempt)
        self.attempt += 1
        return min(self.cap, base * self.rng.uniform(1 - self.jitter, 1 + self.jitter))

    def reset(self) -> None:
        self.attempt = 0

    def copy(self) -> Backoff:
        return Backoff(self.initial, self.cap, self.factor, self.jitter)


# Seconds without any answer from the API server, while waiting for one, after
# which a source says it is stalled (the promise is "within 30 s").
STALL_AFTER = 25.0


@dataclass(slots=True)
class WatchTimeouts:
    connect: float = 5.0
    # How long the server keeps one watch open (spread a little, like client-go).
    watch: float = 300.0
    # How long an open watch stream may go without a byte before it is dropped
    # (after its planned length); silence shorter than that is checked by probes.
    read: float = 60.0
    # The longest wait for an answer (a reply's headers, a list's next bytes, a
    # probe) before the server is said not to answer.
    stall: float = STALL_AFTER


class _Expired(Exception):
    """The resourceVersion is too old (410): list again."""


class _Stopped(Exception):
    pass


class _Oversized(Exception):
    """A watch event line over `max_line` bytes: list again."""


UNTRUSTED = (
    "the API server's certificate is not trusted ({detail}): has the cluster's CA "
    "changed? check the kubeconfig's certificate-authority-data"
)


def describe_connection_error(exc: BaseException) -> str:
    """A short reason for a network failure ("connection refused", "read timed out",
    an untrusted certificate, a name that does not resolve)."""
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, ssl.SSLCertVerificationError):
            reason = getattr(cur, "verify_message", None) or getattr(cur, "reason", None)
            reason = reason or cur.strerror or "verification failed"
            return UNTRUSTED.format(detail=f"certificate verify failed: {reason}")
        if isinstance(cur, urllib3.exceptions.NameResolutionError | socket.gaierror):
            return f"the API server's host name does not resolve (DNS): {_dns_detail(cur)}"
        if isinstance(cur, ConnectionRefusedError):
            return "connection refused"
        # NewConnectionError is a ConnectTimeoutError in urllib3 2: test it first.
        if isinstance(cur, urllib3.exceptions.NewConnectionError):
            return "connection refused" if "refused" in str(cur).lower() else "cannot connect"
        if isinstance(cur, urllib3.exceptions.ConnectTimeoutError):
            return "connect timed out"
        if isinstance(cur, urllib3.exceptions.ReadTimeoutError | TimeoutError):
            return "read timed out"
        if isinstance(
            cur,
            urllib3.exceptions.ProtocolError
            | urllib3.exceptions.IncompleteRead
            | urllib3.exceptions.InvalidChunkLength
            | ConnectionResetError,
        ):
            return "the connection was closed mid-stream"
        reason = getattr(cur, "reason", None)
        if not isinstance(reason, BaseException):
            # urllib3's SSLError carries the ssl module's error as its argument.
            args = getattr(cur, "args", ())
            reason = args[0] if args and isinstance(args[0], BaseException) else None
        cur = reason if isinstance(reason, BaseException) else (cur.__cause__ or cur.__context__)
    text = str(exc)
    if "CERTIFICATE_VERIFY_FAILED" in text or "certificate verify failed" in text:
        return UNTRUSTED.format(detail="certificate verify failed")
    if isinstance(exc, ApiException) and not exc.status and exc.reason:
        # The client's SSLError and friends: "SSLError\n<text>".
        text = " ".join(str(exc.reason).split())
        return f"cannot talk to the API server: {text[:200]}"
    return text[:200] if text else type(exc).__name__


def _dns_detail(exc: BaseException) -> str:
    while not isinstance(exc, socket.gaierror):
        inner = exc.__cause__ or exc.__context__ or getattr(exc, "reason", None)
        if not isinstance(inner, BaseException):
            break
        exc = inner
    if isinstance(exc, socket.gaierror) and exc.strerror:
        return exc.strerror
    return str(exc)[:200]


def is_timeout(exc: BaseException) -> bool:
    """Whether a failure is the server not answering in time (not a refusal)."""
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, urllib3.exceptions.NewConnectionError):
            return False
        if isinstance(cur, urllib3.exceptions.TimeoutError | TimeoutError):
            return True
        reason = getattr(cur, "reason", None)
        cur = reason if isinstance(reason, BaseException) else (cur.__cause__ or cur.__context__)
    return False


def describe_api_error(exc: ApiException, action: str) -> str:
    """An error answer (or the client's status-0 wrapper of a TLS failure) in words;
    `action` says what was asked, e.g. "list/watch pods in shop"."""
    code = int(exc.status or 0)
    if code == 0:
        return describe_connection_error(exc)
    message = status_message(exc)
    if code == 401:
        return (
            "credentials rejected (401): the API server did not accept the kubeconfig's "
            "token or client certificate; check your kubeconfig credentials"
        )
    if code == 403:
        return f"forbidden (403) to {action}: {message}"
    if code == 429:
        return "throttled by the API server (429)"
    if code >= 500:
        return f"API server error {code}: {message or exc.reason}"
    return f"API error {code} on {action}: {message}"


def stream_read_timeout(resp: Any, seconds: float | None) -> None:
    """The reply came within the short answer timeout; the stream after it may
    rightly be silent for much longer (a quiet watch, a quiet log)."""
    sock = getattr(getattr(resp, "connection", None), "sock", None)
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.settimeout(seconds)


# ---- the watch -----------------------------------------------------------------


class _PageFetch:
    """The request of a list's next page, made in a thread while the last page is
    decoded and applied (or of its first page, asked for before the watch starts:
    `ListWatch.ask_first_page`); `result` gives its bytes or raises what it raised."""

    def __init__(self, source: ListWatch, token: str | None) -> None:
        self._data: bytes | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(
            target=self._run,
            args=(source, token),
            name=f"ktriage-list-{source.resource}",
            daemon=True,
        )
        self._thread.start()

    def _run(self, source: ListWatch, token: str | None) -> None:
        try:
            self._data = source._request_page(token)
        except BaseException as exc:  # handed to the list's thread, which handles it
            self._error = exc

    def result(self) -> bytes:
        # Bounded: the request has its timeouts, and stopping shuts its socket down.
        self._thread.join()
        if self._error is not None:
            raise self._error
        assert self._data is not None
        return self._data

    def abandon(self) -> None:
        """The list failed meanwhile: wait for the request to end, its answer unread,
        so that no two requests of this resource are ever in flight."""
        self._thread.join()
        self._data = self._error = None


class ListWatch:
    """List then watch one resource in a thread of its own; subclasses apply the
    results on the loop (`on_list_begin`, `on_list_page`, `on_list_end`, or `on_list`
    with the whole list; `on_watch`)."""

    def __init__(
        self,
        conn: KubeConnection,
        resource: str,
        *,
        namespace: str | None = None,
        label_selector: str | None = None,
        backoff: Backoff | None = None,
        timeouts: WatchTimeouts | None = None,
        page_size: int = 500,
        health: SourceHealth | None = None,
    ) -> None:
        if resource not in RESOURCES:
            raise ValueError(f"resource must be one of {RESOURCES}, not {resource!r}")
        self.conn = conn
        self.resource = resource
        self.namespace = namespace if resource != "nodes" else None
        self.label_selector = label_selector
        self.backoff = backoff or Backoff()
        self.timeouts = timeouts or WatchTimeouts()
        self.page_size = page_size
        self.max_line = MAX_WATCH_LINE
        scope = f" in {namespace}" if namespace and resource != "nodes" else ""
        self.health = health or SourceHealth(name=f"kube {resource}{scope}", kind="kube")
        # What happened, in words, newest last (the status bar shows the last one).
        self.history: deque[tuple[float, str]] = deque(maxlen=100)
        self.lists = 0  # lists done (the first one and each re-list)
        self.relists = 0  # lists after a 410 Expired
        self.reconnects = 0  # watches started again from a resourceVersion
        self.errors: Counter[str] = Counter()  # by HTTP code or "network"
        self.watch_events = 0  # ADDED/MODIFIED/DELETED applied
        self.resource_version = ""
        self.synced = asyncio.Event()
        self._events_api = "events.k8s.io/v1"
        self._stop = threading.Event()
        self._resp_lock = threading.Lock()
        self._resp: Any = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._engine: Engine | None = None
        self._done: asyncio.Event | None = None
        self._queued = 0
        self._queued_cv = threading.Condition()
        self._listed: list[dict[str, Any]] = []  # the pages of a list, when kept whole
        self._list_changes = 0
        # Is the server answering? The watch thread says when it waits for an answer
        # and when one comes; a watchdog thread probes a silent stream and says when
        # nothing came for `timeouts.stall` seconds.
        self.stalls = 0  # times the server was found not answering
        self.probes = 0  # probes sent to a silent watch's server
        self._live = threading.Lock()
        # Since when an answer is wanted and none came (monotonic; None when none is
        # wanted): kept across retries, so backoff after a timeout counts too.
        self._unanswered_since: float | None = None
        self._in_request = False
        self._streaming = False
        self._last_answer = time.monotonic()
        self._stalled = False
        self._probing = False
        self._dropped_silent = False  # the watchdog shut the open stream down
        self._early: _PageFetch | None = None  # the first page, asked for before start

    # ---- lifecycle ---------------------------------------------------------------

    def ask_first_page(self) -> None:
        """Ask for the first page of the list now, before the watch starts (while the
        UI starts): the server builds it meanwhile, and the first list takes this
        answer, or the error it got, as its first request's. Once, before `start`."""
        if self._early is None and self._thread is None and self.lists == 0:
            self._early = _PageFetch(self, None)

    async def run(self, engine: Engine) -> None:
        self.start(engine)
        assert self._done is not None
        try:
            await self._done.wait()
        finally:
            self.close()

    def start(self, engine: Engine | None = None) -> None:
        """Start the watch thread (from the loop's thread)."""
        self._loop = asyncio.get_running_loop()
        self._engine = engine
        self._done = asyncio.Event()
        self._thread = threading.Thread(
            target=self._thread_main, name=f"ktriage-watch-{self.resource}", daemon=True
        )
        self._thread.start()
        threading.Thread(
            target=self._watchdog_main, name=f"ktriage-watchdog-{self.resource}", daemon=True
        ).start()

    def close(self) -> None:
        """Stop the watch thread: it ends within a second."""
        self._stop.set()
        with self._queued_cv:
            self._queued_cv.notify_all()
        with self._resp_lock:
            resp = self._resp
        if resp is not None:
            with contextlib.suppress(Exception):
                resp.shutdown()

    def join(self, timeout: float = 1.0) -> bool:
        """Wait for the thread to end; True when it has."""
        if self._thread is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # ---- thread side -------------------------------------------------------------

    def _post(self, fn: Callable[..., None], *args: Any) -> None:
        loop = self._loop
        if loop is None or self._stop.is_set():
            raise _Stopped
        try:
            loop.call_soon_threadsafe(fn, *args)
        except RuntimeError:  # the loop is closed
            raise _Stopped from None

    def _say(self, state: str, message: str) -> None:
        self._post(self._apply_status, state, message)

    def _wait(self, seconds: float) -> None:
        if self._stop.wait(seconds):
            raise _Stopped

    def _thread_main(self) -> None:
        try:
            self._loop_forever()
        except _Stopped:
            pass
        except Exception as exc:  # a bug must show, not kill the thread silently
            with contextlib.suppress(_Stopped):
                self._say("failed", f"watch stopped by an unexpected error: {exc!r}")
        finally:
            loop, done = self._loop, self._done
            if loop is not None and done is not None:
                with contextlib.suppress(RuntimeError):
                    loop.call_soon_threadsafe(done.set)

    def _loop_forever(self) -> None:
        backoff = self.backoff.copy()
        rv = ""
        while not self._stop.is_set():
            try:
                if not rv:
                    rv = self._list()
                    backoff.reset()
                started = time.monotonic()
                got, planned = self._watch(rv)
                rv = self.resource_version or rv
                lasted = time.monotonic() - started
                self.reconnects += 1
                if self._dropped_silent:
                    self._dropped_silent = False  # by the watchdog, which said why
                elif lasted < planned - 2:
                    self._note(
                        f"watch stream closed by the server after {lasted:.1f} s; "
                        f"resuming from resourceVersion {rv}"
                    )
                if got:
                    backoff.reset()
                elif lasted < 1.0:
                    # Ended at once with nothing: do not spin.
                    self._wait(backoff.next())
            except _Expired:
                self.relists += 1
                self._note("resourceVersion expired (410 Gone): listing again")
                rv = ""
            except _Oversized:
                self._answered()  # too much of an answer, but one
                self.relists += 1
                self.errors["oversized-watch-event"] += 1
                delay = backoff.next()
                self._note(
                    f"a watch event over {self.max_line} bytes was not read; "
                    f"listing again in {delay:.1f} s"
                )
                self._wait(delay)
                rv = ""
            except ApiException as exc:
                if self._stop.is_set():
                    raise _Stopped from None
                rv = self._api_error(exc, backoff, rv)
            except _Stopped:
                raise
            except (urllib3.exceptions.HTTPError, OSError, ValueError) as exc:
                if self._stop.is_set():
                    raise _Stopped from None
                self.errors["network"] += 1
                delay = backoff.next()
                reason = describe_connection_error(exc)
                where = f"resuming from resourceVersion {rv}" if rv else "listing again"
                silent = self._silent_for()
                timeout = is_timeout(exc)
                if not timeout and not self._dropped_silent:
                    self._peer_answered()  # refused, reset: the other end is there
                if self._dropped_silent:
                    reason = "the silent watch was dropped"
                if self._dropped_silent or (
                    timeout and (self._stalled or silent >= self.timeouts.stall)
                ):
                    self._stalled = True
                    self._dropped_silent = False
                    self._say(
                        "stalled",
                        f"{self._stall_words(silent)} ({reason}); {where} in {delay:.1f} s",
                    )
                else:
                    self._say(
                        "reconnecting",
                        f"lost the API server at {self.conn.server}: {reason}; "
                        f"{where} in {delay:.1f} s",
                    )
                self._wait(delay)

    def _api_error(self, exc: ApiException, backoff: Backoff, rv: str) -> str:
        code = int(exc.status or 0)
        self.errors[str(code)] += 1
        if code:
            self._answered()  # an error is an answer: the server is there
        else:
            self._peer_answered()  # a TLS failure: there, but not trusted
        what = f"{self.resource}" + (f" in {self.namespace}" if self.namespace else "")
        if code == 410:
            self.relists += 1
            self._note("resourceVersion expired (410 Gone): listing again")
            return ""
        if (
            code in (403, 404)
            and self.resource == "events"
            and self._events_api == "events.k8s.io/v1"
        ):
            # A read-only identity (the `view` role) may list core events and not
            # events.k8s.io: the same events, so fall back rather than retry forever.
            self._events_api = "v1"
            why = "is not served (404)" if code == 404 else "may not be listed (403 forbidden)"
            self._note(f"events.k8s.io/v1 {why}; using core v1 events")
            return ""
        if code == 429:
            delay = retry_after(exc)
            if delay is None:
                delay = backoff.next()
                how = f"retrying in {delay:.1f} s"
            else:
                how = f"retrying after {delay:g} s as Retry-After asks"
            self._say("reconnecting", f"throttled by the API server (429): {how}")
            self._wait(delay)
            return rv
        delay = backoff.next()
        if self.resource == "events":
            api = "core v1" if self._events_api == "v1" else self._events_api
            what = f"{api} {what}"  # which of the two events APIs refused
        text = describe_api_error(exc, f"list/watch {what}")
        if code == 401 and self.conn.reload():
            text += " (credentials re-read from the kubeconfig)"
        self._say("reconnecting", f"{text}; retrying in {delay:.1f} s")
        self._wait(delay)
        return rv

    def _note(self, message: str) -> None:
        self._post(self._apply_note, message)

    # -- is the server answering? --

    def _begin_wait(self, *, streaming: bool = False) -> None:
        with self._live:
            if self._unanswered_since is None:
                self._unanswered_since = time.monotonic()
            self._in_request = True
            self._streaming = streaming

    def _end_wait(self, *, answered: bool) -> None:
        with self._live:
            self._in_request = False
            self._streaming = False
        if answered:
            self._answered()

    def _answered(self) -> None:
        with self._live:
            now = time.monotonic()
            self._last_answer = now
            self._stalled = False
            # Within a request (an open stream) the next bytes are wanted from now.
            self._unanswered_since = now if self._in_request else None

    def _peer_answered(self) -> None:
        """A refusal or a reset: not an answer, but not silence either."""
        with self._live:
            self._unanswered_since = None

    def _silent_for(self) -> float:
        with self._live:
            return time.monotonic() - self._last_answer

    def _stall_words(self, silent: float) -> str:
        return f"no answer from the API server at {self.conn.server} for {silent:.0f} s"

    def _watchdog_main(self) -> None:
        """Probe a silent watch's server; say `stalled` when nothing answers."""
        stall = self.timeouts.stall
        while not self._stop.wait(min(1.0, stall / 10)):
            now = time.monotonic()
            with self._live:
                since = self._unanswered_since
                if since is None:
                    continue
                quiet = now - since
                silent = now - self._last_answer
                declare = quiet >= stall and not self._stalled
                probe = not declare and self._streaming and quiet >= stall / 2
                probe = probe and not self._probing
                self._stalled = self._stalled or declare
                self._probing = self._probing or probe
            if declare:
                self.stalls += 1
                try:
                    self._say("stalled", f"{self._stall_words(silent)}; waiting for it")
                except _Stopped:
                    return
                self._server_stalled()
            elif probe:
                threading.Thread(
                    target=self._probe, name=f"ktriage-probe-{self.resource}", daemon=True
                ).start()

    def _server_stalled(self) -> None:
        """Drop the open stream: it is silent and its server does not answer, so it
        may be dead; the watch thread opens it again, waiting a bounded time."""
        with self._resp_lock:
            resp = self._resp
        if resp is not None:
            self._dropped_silent = True
            with contextlib.suppress(Exception):
                resp.shutdown()

    def _probe(self) -> None:
        """A cheap list of the same resource (one item): any answer, even an error,
        shows the server is there and the silent watch is just quiet."""
        self.probes += 1
        try:
            resp = self._call([("limit", "1")], (self.timeouts.connect, self.timeouts.stall))
            try:
                resp.data  # noqa: B018  (read the answer)
            finally:
                with contextlib.suppress(Exception):
                    resp.release_conn()
            self._answered()
        except ApiException as exc:
            if exc.status:
                self._answered()
        except Exception:  # no answer: the watchdog sees the silence grow
            pass
        finally:
            with self._live:
                self._probing = False

    # -- requests --

    def _call(self, query: list[tuple[str, str]], timeout: Any) -> Any:
        """The list/watch request for this resource with `query`, its raw response
        (not read)."""
        ns = self.namespace
        if self.label_selector:
            query = [*query, ("labelSelector", self.label_selector)]
        if self.resource == "nodes":
            path = "/api/v1/nodes"
        else:
            events_v1 = self.resource == "events" and self._events_api == "events.k8s.io/v1"
            group = "/apis/events.k8s.io/v1" if events_v1 else "/api/v1"
            kind = "pods" if self.resource == "pods" else "events"
            path = f"{group}/namespaces/{{namespace}}/{kind}" if ns else f"{group}/{kind}"
        return raw_get(
            self.conn.api_client,
            path,
            query,
            path_params={"namespace": ns} if ns else None,
            timeout=timeout,
        )

    def _hold(self, resp: Any) -> None:
        with self._resp_lock:
            self._resp = resp
        if self._stop.is_set():
            with contextlib.suppress(Exception):
                resp.shutdown()
            raise _Stopped

    def _release(self) -> None:
        with self._resp_lock:
            resp, self._resp = self._resp, None
        if resp is not None:
            with contextlib.suppress(Exception):
                resp.release_conn()

    def _list(self) -> str:
        """List the resource page by page, each page handed to the loop as it arrives
        (a big cluster shows while it loads); then the end of the list, which makes
        the state that list's snapshot.

        The next page is asked for as soon as this one's continue token is read, in a
        thread of its own: the server builds and sends it while this one is prepared
        and applied (one request in flight at a time, as before)."""
        rv = ""
        first = True
        total = 0
        early, self._early = self._early, None
        data = early.result() if early is not None else self._request_page(None)
        first_list = self.lists == 0
        while True:
            ahead = None
            try:
                with listgc.listed_page(first_list):
                    page, rv, token = self._decode_page(data, rv)
                    del data
                    ahead = _PageFetch(self, token) if token else None
                    prepared = self.prepare_page(page)
                # Handed over a slice at a time, at most one waiting while one is
                # applied: the loop never runs a whole page at once (keys are answered
                # between two slices).
                for start in range(0, max(len(prepared), 1), APPLY_SLICE):
                    part = prepared[start : start + APPLY_SLICE]
                    self._wait_for_room(len(part), limit=LIST_AHEAD)
                    self._post(self._apply_page, part, first)
                    first = False
            except BaseException:
                if ahead is not None:
                    ahead.abandon()
                raise
            total += len(page)
            if ahead is None:
                break
            data = ahead.result()
        self.lists += 1
        self.resource_version = rv
        self._post(self._apply_list_end, total, rv)
        return rv

    def _request_page(self, token: str | None) -> bytes:
        """One page of the list (the first when `token` is None), its reply's bytes."""
        query = [("limit", str(self.page_size))]
        if token:
            query.append(("continue", token))
        self._begin_wait()
        try:
            resp = self._call(query, (self.timeouts.connect, self.timeouts.stall))
            self._answered()
            self._hold(resp)
            try:
                data: bytes = resp.data
            finally:
                self._release()
        except BaseException:
            self._end_wait(answered=False)
            raise
        self._end_wait(answered=True)
        return data

    def _decode_page(self, data: bytes, rv: str) -> tuple[list[dict[str, Any]], str, str | None]:
        """A list reply's objects, resourceVersion and continue token."""
        page, got_rv, token = self.decode_page(data)
        rv = str(got_rv or rv)
        return page, rv, token if isinstance(token, str) and token else None

    def decode_page(self, data: bytes) -> tuple[list[dict[str, Any]], Any, Any]:
        """A list reply's objects, and its resourceVersion and continue token as sent."""
        return decode_list_reply(data)

    def prepare_page(self, page: list[dict[str, Any]]) -> list[Any]:
        """Work on a page done in the watch thread, before the loop applies it (what
        needs no shared state: the loop is left free for the UI)."""
        return page

    def _watch(self, rv: str) -> tuple[bool, int]:
        """One watch request from `rv`: whether it delivered anything, and how long
        the server was asked to keep it open."""
        seconds = int(self.timeouts.watch * random.uniform(0.8, 1.0)) or 1
        self._begin_wait()
        try:
            query = [
                ("watch", "true"),
                ("resourceVersion", rv),
                ("allowWatchBookmarks", "true"),
                ("timeoutSeconds", str(seconds)),
            ]
            resp = self._call(query, (self.timeouts.connect, self.timeouts.stall))
        except BaseException:
            self._end_wait(answered=False)
            raise
        self._begin_wait(streaming=True)
        self._answered()
        stream_read_timeout(resp, seconds + self.timeouts.read)
        try:
            self._hold(resp)
            self._say("connected", "")
        except BaseException:
            self._end_wait(answered=False)
            raise
        got = False
        buf = b""
        try:
            for chunk in resp.stream(None, decode_content=False):
                if self._stop.is_set():
                    raise _Stopped
                if not chunk:
                    continue
                self._answered()
                buf += chunk
                if b"\n" not in chunk:  # (the held part has none)
                    if len(buf) > self.max_line:
                        raise _Oversized
                    continue
                *lines, buf = buf.split(b"\n")
                batch: list[tuple[str, dict[str, Any]]] = []
                for line in lines:
                    if len(line) > self.max_line:
                        raise _Oversized  # (the list again covers the batch too)
                    if not line.strip():
                        continue
                    item = self._decode(line)
                    if item is None:
                        continue
                    batch.append(item)
                    if len(batch) >= MAX_BATCH:
                        self._deliver(batch)
                        batch = []
                if batch:
                    self._deliver(batch)
                got = True
        except _Stopped:
            self._end_wait(answered=False)
            raise
        except Exception:
            self._end_wait(answered=False)
            if self._stop.is_set():
                raise _Stopped from None
            raise
        else:
            # The server ended the stream (its timeoutSeconds): an answer, unless the
            # watchdog dropped it for its silence.
            self._end_wait(answered=not self._dropped_silent)
        finally:
            self._release()
        if buf.strip():
            item = self._decode(buf)
            if item is not None:
                self._deliver([item])
        return got, seconds

    def _decode(self, line: bytes) -> tuple[str, dict[str, Any]] | None:
        try:
            event = orjson.loads(line)
        except orjson.JSONDecodeError:
            self.errors["bad-watch-line"] += 1
            return None
        if not isinstance(event, dict):
            return None
        etype = event.get("type")
        obj = event.get("object")
        if not isinstance(obj, dict):
            return None
        if etype == "ERROR":
            code = obj.get("code")
            if code == 410 or obj.get("reason") in ("Expired", "Gone"):
                raise _Expired
            exc = ApiException(status=code or 500, reason=str(obj.get("reason") or "Error"))
            exc.body = orjson.dumps(obj).decode()
            raise exc
        rv = (obj.get("metadata") or {}).get("resourceVersion")
        if rv:
            self.resource_version = str(rv)
        if etype == "BOOKMARK":
            return None
        if etype not in ("ADDED", "MODIFIED", "DELETED"):
            return None
        return (etype, obj)

    def _wait_for_room(self, n: int, limit: int = MAX_QUEUED) -> None:
        with self._queued_cv:
            while self._queued > limit and not self._stop.is_set():
                self._queued_cv.wait(0.5)
            if self._stop.is_set():
                raise _Stopped
            self._queued += n

    def _deliver(self, batch: list[tuple[str, dict[str, Any]]]) -> None:
        self._wait_for_room(len(batch))
        self._post(self._apply_watch, batch)

    # ---- loop side ---------------------------------------------------------------

    def _taken(self, n: int) -> None:
        with self._queued_cv:
            self._queued -= n
            self._queued_cv.notify_all()

    def _emit(self, events: list[Event]) -> None:
        if events and self._engine is not None:
            deliver(self._engine, self.health, events)

    def _apply_page(self, items: list[Any], first: bool) -> None:
        self._taken(len(items))
        if first:
            self._apply_status("connected", "")
            self._list_changes = 0
            self.on_list_begin()
        self._list_changes += self.on_list_page(items)

    def _apply_list_end(self, total: int, rv: str) -> None:
        self._apply_status("connected", "")
        changes = self._list_changes + self.on_list_end()
        if self.lists > 1:
            self._apply_note(
                f"listed {self.resource} again ({total} objects at resourceVersion {rv}); "
                f"{changes} change(s) since the last watch"
            )
        self.synced.set()

    def _apply_watch(self, batch: list[tuple[str, dict[str, Any]]]) -> None:
        self._taken(len(batch))
        self.watch_events += len(batch)
        self.on_watch(batch)

    def on_list_begin(self) -> None:
        """A full list starts (the first or after a 410); its pages follow."""
        self._listed = []

    def on_list_page(self, items: list[Any]) -> int:
        """One page of the list (as `prepare_page` made it); returns how many changes
        it made. By default the pages are kept and `on_list` gets them all at the end."""
        self._listed.extend(items)
        return 0

    def on_list_end(self) -> int:
        """The list is complete; returns how many changes its end made."""
        items, self._listed = self._listed, []
        return self.on_list(items)

    def on_list(self, items: list[dict[str, Any]]) -> int:
        """A full list in one piece (when the pages are not applied as they come)."""
        raise NotImplementedError

    def on_watch(self, batch: list[tuple[str, dict[str, Any]]]) -> None:
        """Watch events (type, object) in order."""
        raise NotImplementedError

    def _apply_status(self, state: str, message: str) -> None:
        health = self.health
        if state == "connected":
            if health.state != "connected" and health.last_error:
                self._remember(f"connected again after: {health.last_error}")
            health.state = "connected"
            return
        health.state = state
        health.last_error = message
        self._remember(message)

    def _apply_note(self, message: str) -> None:
        self._remember(message)
        self.health.last_error = message

    def _remember(self, message: str) -> None:
        self.history.append((time.time(), message))


class KubeWatchSource(ListWatch):
    """Pods, nodes or events of a cluster into a ClusterState, and the events that
    their changes imply into the engine."""

    def __init__(
        self,
        conn: KubeConnection,
        resource: str,
        state: ClusterState,
        *,
        namespace: str | None = None,
        backoff: Backoff | None = None,
        timeouts: WatchTimeouts | None = None,
        page_size: int = 500,
    ) -> None:
        super().__init__(
            conn,
            resource,
            namespace=namespace,
            backoff=backoff,
            timeouts=timeouts,
            page_size=page_size,
        )
        self.state = state

    def start(self, engine: Engine | None = None) -> None:
        if engine is not None and engine.cluster is None:
            engine.cluster = self.state
        super().start(engine)

    # Pods and nodes are applied page by page: a big cluster shows while it loads,
    # and no more than a page of decoded objects is held at once.

    def on_list_begin(self) -> None:
        if self.resource == "pods":
            self.state.begin_pod_list()
        elif self.resource == "nodes":
            self.state.begin_node_list()

    def decode_page(self, data: bytes) -> tuple[list[dict[str, Any]], Any, Any]:
        if self.resource == "pods":
            return decode_pod_page(data)  # only the fields read: half the time and size
        return super().decode_page(data)

    def prepare_page(self, page: list[dict[str, Any]]) -> list[Any]:
        if self.resource == "pods":
            # Parsed here, not on the loop: a page of 500 pods keeps no key waiting.
            return [listed_pod(obj) for obj in page]
        return page

    def on_list_page(self, items: list[Any]) -> int:
        state = self.state
        if self.resource == "pods":
            events = state.apply_pod_page(items) + state.take_facts()
        elif self.resource == "nodes":
            events = state.apply_node_page(items)
        else:
            events = state.resync_events(items)
        self._emit(events)
        return len(events)

    def on_list_end(self) -> int:
        state = self.state
        if self.resource == "pods":
            events = state.end_pod_list()
        elif self.resource == "nodes":
            events = state.end_node_list()
        else:
            events = []
        self._emit(events)
        return len(events)

    def on_watch(self, batch: list[tuple[str, dict[str, Any]]]) -> None:
        state = self.state
        events: list[Event] = []
        # A grace-0 delete's object has no deletionTimestamp: arrival dates it.
        seen_at = time.time()
        for etype, obj in batch:
            if self.resource == "pods":
                got = (
                    state.delete_pod(obj, seen_at) if etype == "DELETED" else state.update_pod(obj)
                )
            elif self.resource == "nodes":
                got = (
                    state.delete_node(obj, seen_at)
                    if etype == "DELETED"
                    else state.update_node(obj)
                )
            else:
                got = [] if etype == "DELETED" else state.update_event(obj)
            events.extend(got)
        if self.resource == "pods":
            events.extend(state.take_facts())
        self._emit(events)


def kube_sources(
    conn: KubeConnection,
    state: ClusterState,
    *,
    namespace: str | None = None,
    backoff: Backoff | None = None,
    timeouts: WatchTimeouts | None = None,
) -> list[KubeWatchSource]:
    """Watches of pods, nodes and events sharing one ClusterState."""
    return [
        KubeWatchSource(
            conn, resource, state, namespace=namespace, backoff=backoff, timeouts=timeouts
        )
        for resource in RESOURCES
    ]
