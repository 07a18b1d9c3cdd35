"""`--falco auto` and `--tetragon auto`: runtime alerts streamed from the sensors'
own pod logs through the API server.

Falco pods (label `app.kubernetes.io/name=falco`, container `falco`) print one
JSON alert per line with `json_output: true`; Tetragon pods (label
`app.kubernetes.io/name=tetragon`) print their JSON export on the stdout of the
`export-stdout` container. The pods are found with a list/watch on that label
(in all namespaces, or the sensor's usual namespace when listing every namespace
is not allowed), and each pod's log is followed in a thread of its own.

Lines are requested with timestamps. A stream that ends (the container restarted,
the connection dropped) is opened again with `sinceTime` at the last line seen,
and lines up to that instant that were already read are dropped, so nothing is
read twice and nothing in between is missed; the store also de-duplicates by ref.
Lines that are not alerts (the sensor's start-up messages) are counted as
"non-alert" and are not errors.

A log may rightly be silent for hours, so only the wait for a log request's answer
is bounded (`WatchTimeouts.stall`): one that times out says the source is
`stalled`. When the sensor-pod watch finds the API server not answering, every log
stream is dropped too and opened again, from the last line read, once it answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import urllib3
from kubernetes.client.exceptions import ApiException

from ktriage.core.ingest import MAX_LINE, Ingestor
from ktriage.core.model import Event
from ktriage.engine import Engine, SourceHealth
from ktriage.kubeclient import raw_get, retry_after, status_message
from ktriage.sources.base import deliver
from ktriage.sources.kube import (
    Backoff,
    KubeConnection,
    ListWatch,
    WatchTimeouts,
    describe_api_error,
    describe_connection_error,
    is_timeout,
    stream_read_timeout,
)
from ktriage.sources.tail import LineSplitter


@dataclass(frozen=True, slots=True)
class Sensor:
    kind: str  # "falco" | "tetragon"
    selector: str
    container: str
    fallback_namespace: str

    def is_alert(self, line: bytes) -> bool:
        """Cheap check that a log line is the sensor's JSON output, not a message."""
        if not line.startswith(b"{"):
            return False
        if self.kind == "falco":
            return b'"rule"' in line and (b'"priority"' in line or b'"output"' in line)
        return b'"process_' in line or b'"node_name"' in line


FALCO = Sensor("falco", "app.kubernetes.io/name=falco", "falco", "falco")
TETRAGON = Sensor("tetragon", "app.kubernetes.io/name=tetragon", "export-stdout", "kube-system")
SENSORS = {"falco": FALCO, "tetragon": TETRAGON}


def _ts_ns(text: bytes) -> int | None:
    """RFC 3339 (nanoseconds) → integer nanoseconds since the epoch."""
    try:
        s = text.decode("ascii")
    except UnicodeDecodeError:
        return None
    if not s.endswith("Z"):
        return None
    s = s[:-1]
    whole, _, frac = s.partition(".")
    try:
        base = datetime.strptime(whole, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
    except ValueError:
        return None
    if frac and not frac.isdigit():
        return None
    return int(base.timestamp()) * 1_000_000_000 + int((frac or "0")[:9].ljust(9, "0"))


def _since_time(ns: int) -> str:
    # sinceTime has one-second precision: ask from the start of that second.
    return datetime.fromtimestamp(ns // 1_000_000_000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class _Position:
    """Where one container's log was read up to, to resume without duplicates."""

    __slots__ = ("last_ns", "seen_at_last")

    def __init__(self) -> None:
        self.last_ns: int | None = None
        self.seen_at_last: set[bytes] = set()

    def fresh(self, ts: int, line: bytes) -> bool:
        if self.last_ns is not None:
            if ts < self.last_ns:
                return False
            if ts == self.last_ns:
                digest = hashlib.blake2b(line, digest_size=8).digest()
                if digest in self.seen_at_last:
                    return False
                self.seen_at_last.add(digest)
                return True
        self.last_ns = ts
        self.seen_at_last = {hashlib.blake2b(line, digest_size=8).digest()}
        return True


class _PodLogFollower:
    """Follows one pod's sensor container in a thread."""

    def __init__(
        self, source: PodLogSource, namespace: str, name: str, *, from_start: bool
    ) -> None:
        self.source = source
        self.namespace = namespace
        self.name = name
        self.from_start = from_start
        self.position = _Position()
        self.lines = 0
        self.opens = 0  # log requests answered (1 + reconnects)
        # Set once a log stream is open (tests wait on it before writing lines).
        self.opened = threading.Event()
        self._stop = threading.Event()
        self._resp: Any = None
        self._lock = threading.Lock()
        self._last_answer = time.monotonic()
        self.said_stalled = False  # told the source this stream gets no answer
        self.thread = threading.Thread(
            target=self._main, name=f"ktriage-logs-{namespace}/{name}", daemon=True
        )

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self._stop.set()
        with self._lock:
            resp = self._resp
        if resp is not None:
            with contextlib.suppress(Exception):
                resp.shutdown()

    @property
    def streaming(self) -> bool:
        """Whether a log stream is open now."""
        with self._lock:
            return self._resp is not None

    def cut(self) -> None:
        """Drop the open stream (its server stopped answering): it is opened again,
        from the last line read, once the server answers."""
        with self._lock:
            resp = self._resp
        if resp is not None:
            with contextlib.suppress(Exception):
                resp.shutdown()

    def _params(self, first: bool) -> list[tuple[str, str]]:
        src = self.source
        params = [
            ("container", src.sensor.container),
            ("follow", "true"),
            ("timestamps", "true"),
        ]
        if self.position.last_ns is not None:
            params.append(("sinceTime", _since_time(self.position.last_ns)))
        elif first and not self.from_start:
            if src.since is not None:
                params.append(("sinceTime", _since_time(int(src.since * 1e9))))
            else:
                params.append(("tailLines", "0"))
        return params

    def _open(self, params: list[tuple[str, str]]) -> Any:
        timeouts = self.source.timeouts
        # The answer is waited for a bounded time; the log after it may rightly be
        # silent for hours (no alerts), so its reads wait without a limit.
        raw = raw_get(
            self.source.conn.api_client,
            "/api/v1/namespaces/{namespace}/pods/{name}/log",
            params,
            path_params={"namespace": self.namespace, "name": self.name},
            accept="text/plain",
            timeout=(timeouts.connect, timeouts.stall),
        )
        self._last_answer = time.monotonic()
        stream_read_timeout(raw, None)
        return raw

    def _main(self) -> None:
        src = self.source
        backoff = src.backoff.copy()
        first = True
        try:
            while not self._stop.is_set():
                try:
                    raw = self._open(self._params(first))
                    first = False
                    with self._lock:
                        self._resp = raw
                    self.opens += 1
                    self.opened.set()
                    src._answered_threadsafe(self)
                    if self._stop.is_set():
                        break
                    got = self._read(raw)
                    # How long nothing answered is counted from here (a lower bound
                    # when the stream was dropped for its server's silence).
                    self._last_answer = time.monotonic()
                    if got:
                        backoff.reset()
                    # The container restarted or the stream was cut: resume.
                    if self._stop.wait(0.05 if got else backoff.next()):
                        break
                except ApiException as exc:
                    if self._stop.is_set():
                        break
                    code = int(exc.status or 0)
                    if code:
                        self._last_answer = time.monotonic()
                        src._answered_threadsafe(self)
                    if code == 404:
                        return  # the pod is gone; discovery will say if it comes back
                    delay = retry_after(exc) if code == 429 else None
                    if delay is None:
                        delay = backoff.next()
                    message = status_message(exc)
                    if code == 400 and "waiting to start" in message:
                        # Not running yet (or restarting): not a problem worth a word.
                        if self._stop.wait(delay):
                            break
                        continue
                    action = f"get pods/log in {self.namespace}"
                    src._say_threadsafe(
                        f"logs of {self.namespace}/{self.name}: "
                        f"{describe_api_error(exc, action)}; retrying in {delay:.1f} s"
                    )
                    if self._stop.wait(delay):
                        break
                except (urllib3.exceptions.HTTPError, OSError, ValueError) as exc:
                    if self._stop.is_set():
                        break
                    delay = backoff.next()
                    reason = describe_connection_error(exc)
                    where = f"logs of {self.namespace}/{self.name}"
                    if is_timeout(exc):
                        silent = time.monotonic() - self._last_answer
                        src._stalled_threadsafe(
                            self,
                            f"{where}: no answer from the API server at {src.conn.server} "
                            f"for {silent:.0f} s ({reason}); retrying in {delay:.1f} s",
                        )
                    else:
                        src._say_threadsafe(f"{where}: {reason}; retrying in {delay:.1f} s")
                    if self._stop.wait(delay):
                        break
                finally:
                    with self._lock:
                        resp, self._resp = self._resp, None
                    if resp is not None:
                        with contextlib.suppress(Exception):
                            resp.release_conn()
        finally:
            src._follower_done_threadsafe(self)

    def _read(self, raw: Any) -> bool:
        got = False
        # Holds at most one partial line: a line without end is skipped and counted,
        # not kept growing.
        splitter = LineSplitter(self.source.max_line, self._too_long)
        for chunk in raw.stream(None, decode_content=False):
            if self._stop.is_set():
                return got
            if not chunk:
                continue
            self._last_answer = time.monotonic()
            batch = self._select([line for _, line in splitter.feed(chunk, 0)])
            if batch:
                got = True
                self.source._deliver_threadsafe(self, batch)
        batch = self._select([line for _, line in splitter.finish()])
        if batch:
            got = True
            self.source._deliver_threadsafe(self, batch)
        return got

    def _too_long(self, offset: int, size: int) -> None:
        self.source._too_long_threadsafe(self, size)

    def _select(self, lines: list[bytes]) -> list[tuple[int, bytes]]:
        out = []
        for line in lines:
            line = line.rstrip(b"\r")
            if not line:
                continue
            stamp, _, text = line.partition(b" ")
            ts = _ts_ns(stamp)
            if ts is None:  # no timestamp: take the line as it is
                ts, text = -1, line
            elif not self.position.fresh(ts, text):
                continue
            self.lines += 1
            out.append((ts, text))
        return out


class _SensorPods(ListWatch):
    """Watches the sensor's pods and starts/stops their log followers."""

    def __init__(self, source: PodLogSource, namespace: str | None) -> None:
        super().__init__(
            source.conn,
            "pods",
            namespace=namespace,
            label_selector=source.sensor.selector,
            backoff=source.backoff,
            timeouts=source.timeouts,
            health=source.health,
        )
        self.source = source

    def on_list(self, items: list[dict[str, Any]]) -> int:
        return self.source._pods_listed(items)

    def on_watch(self, batch: list[tuple[str, dict[str, Any]]]) -> None:
        for etype, obj in batch:
            self.source._pod_event(etype, obj)

    def _server_stalled(self) -> None:
        # The log streams go through the same server: drop them too, so they are
        # opened again (from the last line read) once it answers.
        super()._server_stalled()
        self.source._cut_followers_threadsafe()

    def _apply_status(self, state: str, message: str) -> None:
        super()._apply_status(state, message)
        if state == "connected" and self.source._stalled_followers:
            self.health.state = "stalled"  # some log streams still get no answer

    def _api_error(self, exc: ApiException, backoff: Backoff, rv: str) -> str:
        if int(exc.status or 0) == 403 and self.namespace is None:
            # Not allowed cluster-wide: look where the sensor usually runs.
            self.namespace = self.source.sensor.fallback_namespace
            self._note(
                f"not allowed to list pods in all namespaces; looking for "
                f"{self.source.sensor.kind} pods in namespace {self.namespace}"
            )
            return ""
        return super()._api_error(exc, backoff, rv)


class PodLogSource:
    """Falco or Tetragon alerts from their pods' logs (`--falco auto`)."""

    def __init__(
        self,
        conn: KubeConnection,
        kind: str,
        *,
        namespace: str | None = None,
        start: str = "end",
        since: float | None = None,
        backoff: Backoff | None = None,
        timeouts: WatchTimeouts | None = None,
    ) -> None:
        self.sensor = SENSORS[kind]
        self.conn = conn
        self.kind = kind
        self.start_at = start
        self.since = since
        self.backoff = backoff or Backoff()
        self.timeouts = timeouts or WatchTimeouts()
        self.ingestor = Ingestor()
        self.max_line = MAX_LINE  # longer log lines are skipped and counted
        self.health = SourceHealth(name=f"{kind} auto (pod logs)", kind=kind)
        self.health.skipped = self.ingestor.skipped
        self.non_alert = 0  # lines that are not alerts (start-up messages and such)
        self.followers: dict[tuple[str, str], _PodLogFollower] = {}
        # Followers whose server gave no answer: the source is stalled while any is.
        self._stalled_followers: set[tuple[str, str]] = set()
        self.pods_seen: Counter[str] = Counter()
        self._watch = _SensorPods(self, namespace)
        self._engine: Engine | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._initial = True
        self._closed = False

    @property
    def synced(self) -> asyncio.Event:
        return self._watch.synced

    @property
    def history(self) -> Any:
        return self._watch.history

    async def run(self, engine: Engine) -> None:
        self._engine = engine
        self._loop = asyncio.get_running_loop()
        self._watch.start(engine)
        try:
            assert self._watch._done is not None
            await self._watch._done.wait()
        finally:
            self.close()

    def close(self) -> None:
        self._closed = True
        self._watch.close()
        for follower in list(self.followers.values()):
            follower.stop()

    def join(self, timeout: float = 1.0) -> bool:
        deadline = time.monotonic() + timeout
        ok = self._watch.join(max(0.0, deadline - time.monotonic()))
        for follower in list(self.followers.values()):
            follower.thread.join(max(0.0, deadline - time.monotonic()))
            ok = ok and not follower.thread.is_alive()
        return ok

    def streams_open(self) -> int:
        """How many followed pods have had their log stream opened."""
        return sum(1 for f in list(self.followers.values()) if f.opened.is_set())

    # ---- pods (loop side) ----------------------------------------------------------

    def _wanted(self, obj: dict[str, Any]) -> bool:
        spec = obj.get("spec") or {}
        names = [c.get("name") for c in spec.get("containers") or [] if isinstance(c, dict)]
        status = obj.get("status") or {}
        meta = obj.get("metadata") or {}
        return (
            self.sensor.container in names
            and status.get("phase") not in ("Succeeded", "Failed")
            and not meta.get("deletionTimestamp")
        )

    def _follow(self, obj: dict[str, Any], *, from_start: bool) -> bool:
        meta = obj.get("metadata") or {}
        key = (str(meta.get("namespace") or ""), str(meta.get("name") or ""))
        if key in self.followers or self._closed:
            return False
        follower = _PodLogFollower(self, key[0], key[1], from_start=from_start)
        self.followers[key] = follower
        self.pods_seen[f"{key[0]}/{key[1]}"] += 1
        follower.start()
        return True

    def _unfollow(self, obj: dict[str, Any]) -> None:
        meta = obj.get("metadata") or {}
        key = (str(meta.get("namespace") or ""), str(meta.get("name") or ""))
        follower = self.followers.pop(key, None)
        if follower is not None:
            follower.stop()

    def _pods_listed(self, items: list[dict[str, Any]]) -> int:
        from_start = not self._initial or self.start_at == "beginning"
        self._initial = False
        present = set()
        started = 0
        for obj in items:
            meta = obj.get("metadata") or {}
            present.add((str(meta.get("namespace") or ""), str(meta.get("name") or "")))
            if self._wanted(obj):
                started += self._follow(obj, from_start=from_start)
        for key in [k for k in self.followers if k not in present]:
            self.followers.pop(key).stop()
        if not self.followers:
            self.health.last_error = (
                f"no {self.kind} pods found (label {self.sensor.selector}); waiting for some"
            )
        else:
            self.health.last_error = ""
        return started

    def _pod_event(self, etype: str, obj: dict[str, Any]) -> None:
        if etype == "DELETED" or not self._wanted(obj):
            self._unfollow(obj)
        else:
            # A pod that appears after we started: all of its log is new.
            if self._follow(obj, from_start=True) and self.health.last_error.startswith("no "):
                self.health.last_error = ""

    # ---- lines (thread → loop) ---------------------------------------------------------

    def _post(self, callback: Callable[..., None], *args: Any) -> None:
        """Run `callback(*args)` on the event loop, from a reader thread; dropped once
        the source is closed (or its loop is gone)."""
        loop = self._loop
        if loop is None or self._closed:
            return
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(callback, *args)

    def _deliver_threadsafe(
        self, follower: _PodLogFollower, batch: list[tuple[int, bytes]]
    ) -> None:
        self._post(self._apply_lines, follower, batch)

    def _say_threadsafe(self, message: str) -> None:
        self._post(self._apply_problem, message)

    def _follower_done_threadsafe(self, follower: _PodLogFollower) -> None:
        self._post(self._follower_done, follower)

    def _follower_done(self, follower: _PodLogFollower) -> None:
        key = (follower.namespace, follower.name)
        if self.followers.get(key) is follower:
            del self.followers[key]
        self._apply_answered(follower)

    def _stalled_threadsafe(self, follower: _PodLogFollower, message: str) -> None:
        follower.said_stalled = True
        self._post(self._apply_stalled, follower, message)

    def _answered_threadsafe(self, follower: _PodLogFollower) -> None:
        if not follower.said_stalled:
            return  # the common case: nothing to undo
        follower.said_stalled = False
        self._post(self._apply_answered, follower)

    def _too_long_threadsafe(self, follower: _PodLogFollower, size: int) -> None:
        self._post(self._apply_too_long, follower, size)

    def _apply_too_long(self, follower: _PodLogFollower, size: int) -> None:
        how_long = f"{size} bytes" if size >= 0 else "cut off when the stream ended"
        self.ingestor.count_skip(
            f"{follower.namespace}/{follower.name}",
            "too-long",
            f"the log line is {how_long}, over {self.max_line} bytes",
        )

    def _cut_followers_threadsafe(self) -> None:
        for follower in list(self.followers.values()):
            follower.cut()

    def _apply_stalled(self, follower: _PodLogFollower, message: str) -> None:
        self._stalled_followers.add((follower.namespace, follower.name))
        self.health.state = "stalled"
        self._apply_problem(message)

    def _apply_answered(self, follower: _PodLogFollower) -> None:
        key = (follower.namespace, follower.name)
        if key not in self._stalled_followers:
            return
        self._stalled_followers.discard(key)
        if not self._stalled_followers and self.health.state == "stalled":
            if not self._watch._stalled:
                self.health.state = "connected"
                self._watch._remember(f"logs of {key[0]}/{key[1]}: answered again")

    def _apply_problem(self, message: str) -> None:
        self.health.last_error = message
        self._watch._remember(message)

    def _apply_lines(self, follower: _PodLogFollower, batch: list[tuple[int, bytes]]) -> None:
        engine = self._engine
        if engine is None:
            return
        spool = engine.archive.spool
        feed = self.ingestor.feed_line
        is_alert = self.sensor.is_alert
        origin = f"{follower.namespace}/{follower.name}"
        events: list[Event] = []
        for ts, text in batch:
            if not is_alert(text):
                self.non_alert += 1
                continue
            events.extend(feed(text, origin=f"{origin}@{ts}", raw=spool(text)))
        if self.since is not None:
            events = [e for e in events if e.time >= self.since]
        if events:
            deliver(engine, self.health, events)
