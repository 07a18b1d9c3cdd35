"""Read-only views of the live cluster: the `:` resource tables, `d` describe, `L` logs.

Every read goes through the official client (an ApiClient from the app's
factory), in the caller's worker thread, bounded in time: a list is paginated
and stops at MAX_ROWS or its deadline; an answer that does not come is a
timeout in words, never a hung screen. Nothing here writes to the cluster.

What comes back is data, not text to trust: rows hold the server's strings as
they are and the UI escapes them; a described object is redacted
(`core.redact`) before it is turned into YAML. Failures (401, 403, 404, a
timeout, a refused connection) are said per kind in `problems`, and the rest of
the view is still shown.

A pod's log is followed by `LogFollower` in a thread of its own; its lines wait
in a bounded buffer the UI drains on a timer, so a log of a million lines never
blocks the UI and never grows memory past the buffer.
"""

from __future__ import annotations

import collections
import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import urllib3
import yaml
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from ktriage.actions.logs import LogStream, log_streams
from ktriage.core.model import parse_time
from ktriage.core.redact import redact
from ktriage.kubeclient import KeptClient
from ktriage.sources.kube import describe_api_error, describe_connection_error, stream_read_timeout

PAGE = 500
MAX_ROWS = 5_000  # per kind: a table past this is cut, and says so
MAX_EVENTS = 200  # events shown under a described object
READ_TIMEOUT = 10.0  # seconds for a whole view
CONNECT_TIMEOUT = 5.0
MAX_LOG_LINE = 16 * 1024  # bytes of one log line kept: the rest is cut, and said
LOG_BUFFER = 10_000  # lines kept by a log view


@dataclass(frozen=True, slots=True)
class Kind:
    """One API kind: how to list it everywhere and read one object of it."""

    kind: str
    api: str  # the client class
    list_all: str
    read: str
    namespaced: bool
    resource: str  # the plural, for messages ("list pods")


KINDS: dict[str, Kind] = {
    k.kind: k
    for k in (
        Kind(
            "Pod", "CoreV1Api", "list_pod_for_all_namespaces", "read_namespaced_pod", True, "pods"
        ),
        Kind("Node", "CoreV1Api", "list_node", "read_node", False, "nodes"),
        Kind(
            "Event",
            "CoreV1Api",
            "list_event_for_all_namespaces",
            "read_namespaced_event",
            True,
            "events",
        ),
        Kind(
            "NetworkPolicy",
            "NetworkingV1Api",
            "list_network_policy_for_all_namespaces",
            "read_namespaced_network_policy",
            True,
            "networkpolicies",
        ),
        Kind(
            "ServiceAccount",
            "CoreV1Api",
            "list_service_account_for_all_namespaces",
            "read_namespaced_service_account",
            True,
            "serviceaccounts",
        ),
        Kind(
            "Role",
            "RbacAuthorizationV1Api",
            "list_role_for_all_namespaces",
            "read_namespaced_role",
            True,
            "roles",
        ),
        Kind(
            "RoleBinding",
            "RbacAuthorizationV1Api",
            "list_role_binding_for_all_namespaces",
            "read_namespaced_role_binding",
            True,
            "rolebindings",
        ),
        Kind(
            "ClusterRole",
            "RbacAuthorizationV1Api",
            "list_cluster_role",
            "read_cluster_role",
            False,
            "clusterroles",
        ),
        Kind(
            "ClusterRoleBinding",
            "RbacAuthorizationV1Api",
            "list_cluster_role_binding",
            "read_cluster_role_binding",
            False,
            "clusterrolebindings",
        ),
    )
}


@dataclass(frozen=True, slots=True)
class When:
    """A cell holding a time: the UI shows it as an age (`5m`)."""

    t: float | None


Cell = str | When


@dataclass(frozen=True, slots=True)
class Row:
    kind: str
    namespace: str
    name: str
    cells: tuple[Cell, ...]
    # For events: the object they are about (describe opens that object).
    about: tuple[str, str, str] | None = None


@dataclass(frozen=True, slots=True)
class Resource:
    """One `:` view: its name, aliases, the kinds it lists and its columns."""

    name: str
    aliases: tuple[str, ...]
    kinds: tuple[str, ...]
    columns: tuple[str, ...]
    title: str


RESOURCES: tuple[Resource, ...] = (
    Resource(
        "pods",
        ("po", "pod"),
        ("Pod",),
        ("NAMESPACE", "NAME", "READY", "STATUS", "RESTARTS", "AGE", "NODE"),
        "Pods",
    ),
    Resource(
        "nodes", ("no", "node"), ("Node",), ("NAME", "STATUS", "ROLES", "AGE", "VERSION"), "Nodes"
    ),
    Resource(
        "events",
        ("ev", "event"),
        ("Event",),
        ("NAMESPACE", "LAST SEEN", "TYPE", "REASON", "OBJECT", "COUNT", "MESSAGE"),
        "Events",
    ),
    Resource(
        "netpol",
        ("networkpolicies", "networkpolicy", "np"),
        ("NetworkPolicy",),
        ("NAMESPACE", "NAME", "POD-SELECTOR", "AGE"),
        "NetworkPolicies",
    ),
    Resource(
        "sa",
        ("serviceaccounts", "serviceaccount"),
        ("ServiceAccount",),
        ("NAMESPACE", "NAME", "SECRETS", "AGE"),
        "ServiceAccounts",
    ),
    Resource(
        "rbac",
        ("roles", "clusterroles", "rolebindings", "clusterrolebindings", "role", "clusterrole"),
        ("ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"),
        ("KIND", "NAMESPACE", "NAME", "ROLE", "SUBJECTS", "AGE"),
        "RBAC (roles, cluster roles and their bindings)",
    ),
)
INCIDENTS = "incidents"
BY_NAME: dict[str, Resource] = {}
for _resource in RESOURCES:
    for _name in (_resource.name, *_resource.aliases):
        BY_NAME[_name] = _resource
# Every word the `:` prompt completes, the main view's own name included.
PROMPT_WORDS: tuple[str, ...] = (
    *(r.name for r in RESOURCES),
    INCIDENTS,
    *sorted({a for r in RESOURCES for a in r.aliases}),
)


def resolve(text: str) -> Resource | None:
    """The view a prompt word names (`:po`, `Pods`, ` netpol `), or None."""
    return BY_NAME.get(text.strip().lstrip(":").strip().lower())


# ---- rows -----------------------------------------------------------------------------


def _dict(value: Any) -> dict[str, Any]:
    """`value` when it is a mapping, else empty: a malformed object makes a row, not a crash."""
    return value if isinstance(value, dict) else {}


def _meta(obj: dict[str, Any]) -> dict[str, Any]:
    return _dict(obj.get("metadata"))


def _created(obj: dict[str, Any]) -> When:
    return When(parse_time(_meta(obj).get("creationTimestamp")))


def pod_status(pod: dict[str, Any]) -> tuple[str, str, int]:
    """READY (`1/2`), STATUS and RESTARTS as `kubectl get pods` shows them (the usual cases)."""
    spec = _dict(pod.get("spec"))
    status = _dict(pod.get("status"))
    containers = spec.get("containers") or []
    statuses = [cs for cs in status.get("containerStatuses") or [] if isinstance(cs, dict)]
    ready = sum(1 for cs in statuses if cs.get("ready"))
    restarts = sum(int(cs.get("restartCount") or 0) for cs in statuses)
    reason = str(status.get("reason") or status.get("phase") or "Unknown")
    for cs in status.get("initContainerStatuses") or []:
        state = _dict(_dict(cs).get("state"))
        waiting = _dict(state.get("waiting"))
        terminated = _dict(state.get("terminated"))
        if terminated.get("exitCode"):
            reason = f"Init:{terminated.get('reason') or 'Error'}"
            break
        if waiting.get("reason") and waiting.get("reason") != "PodInitializing":
            reason = f"Init:{waiting['reason']}"
            break
    else:
        for cs in reversed(statuses):
            state = _dict(cs.get("state"))
            waiting = _dict(state.get("waiting"))
            terminated = _dict(state.get("terminated"))
            if waiting.get("reason"):
                reason = str(waiting["reason"])
            elif terminated.get("reason"):
                reason = str(terminated["reason"])
    if _meta(pod).get("deletionTimestamp"):
        reason = "Terminating"
    return f"{ready}/{len(containers)}", reason, restarts


def _node_status(node: dict[str, Any]) -> str:
    ready = "Unknown"
    for cond in _dict(node.get("status")).get("conditions") or []:
        if isinstance(cond, dict) and cond.get("type") == "Ready":
            ready = "Ready" if cond.get("status") == "True" else "NotReady"
    if _dict(node.get("spec")).get("unschedulable"):
        ready += ",SchedulingDisabled"
    return ready


def _node_roles(node: dict[str, Any]) -> str:
    prefix = "node-role.kubernetes.io/"
    labels = _dict(_meta(node).get("labels"))
    roles = sorted(str(k)[len(prefix) :] for k in labels if str(k).startswith(prefix))
    return ",".join(r for r in roles if r) or "<none>"


def _selector(selector: Any) -> str:
    if not isinstance(selector, dict):
        return "<none>"
    labels = _dict(selector.get("matchLabels"))
    parts = sorted(f"{k}={v}" for k, v in labels.items())
    for expr in selector.get("matchExpressions") or []:
        if isinstance(expr, dict):
            values = ",".join(str(v) for v in expr.get("values") or [])
            parts.append(f"{expr.get('key')} {expr.get('operator')} ({values})")
    return ",".join(parts) or "<none>"


def _subjects(binding: dict[str, Any]) -> str:
    out = []
    for subject in binding.get("subjects") or []:
        if not isinstance(subject, dict):
            continue
        ns = subject.get("namespace")
        name = f"{ns}/{subject.get('name')}" if ns else str(subject.get("name"))
        out.append(f"{subject.get('kind')} {name}")
    return ", ".join(out) or "<none>"


def _event_time(ev: dict[str, Any]) -> float | None:
    for key in ("lastTimestamp", "eventTime", "firstTimestamp"):
        t = parse_time(ev.get(key))
        if t is not None:
            return t
    series = _dict(ev.get("series"))
    return parse_time(series.get("lastObservedTime")) or _created(ev).t


def _event_object(ev: dict[str, Any]) -> tuple[str, str, str]:
    obj = ev.get("involvedObject") or ev.get("regarding") or {}
    if not isinstance(obj, dict):
        obj = {}
    return str(obj.get("kind") or ""), str(obj.get("namespace") or ""), str(obj.get("name") or "")


MAX_COUNT = 10**12  # a larger (or odd) count from the server is not believed


def event_count(ev: dict[str, Any]) -> int:
    """How many times the event happened, as kubectl counts it: `count` (core/v1), or
    `series.count` (events that are a series); 1 when neither is a sane number."""
    counts = [ev.get("count"), _dict(ev.get("series")).get("count")]
    sane = [c for c in counts if type(c) is int and 0 < c < MAX_COUNT]
    return max(sane, default=1)


def event_row(ev: dict[str, Any]) -> Row:
    meta = _meta(ev)
    kind, ns, name = _event_object(ev)
    message = str(ev.get("message") or ev.get("note") or "")
    return Row(
        "Event",
        str(meta.get("namespace") or ""),
        str(meta.get("name") or ""),
        (
            str(meta.get("namespace") or ""),
            When(_event_time(ev)),
            str(ev.get("type") or ""),
            str(ev.get("reason") or ""),
            f"{kind.lower()}/{name}",
            f"x{event_count(ev)}",
            message,
        ),
        about=(kind, ns, name),
    )


def make_row(kind: str, obj: dict[str, Any], resource: Resource) -> Row:
    """The table row of one object, in the view's columns."""
    meta = _meta(obj)
    ns = str(meta.get("namespace") or "")
    name = str(meta.get("name") or "")
    cells: tuple[Cell, ...]
    if kind == "Pod":
        ready, status, restarts = pod_status(obj)
        node = str(_dict(obj.get("spec")).get("nodeName") or "<none>")
        cells = (ns, name, ready, status, str(restarts), _created(obj), node)
    elif kind == "Node":
        info = _dict(_dict(obj.get("status")).get("nodeInfo"))
        version = str(info.get("kubeletVersion") or "")
        cells = (name, _node_status(obj), _node_roles(obj), _created(obj), version)
    elif kind == "Event":
        return event_row(obj)
    elif kind == "NetworkPolicy":
        selector = _selector(_dict(obj.get("spec")).get("podSelector"))
        cells = (ns, name, selector, _created(obj))
    elif kind == "ServiceAccount":
        cells = (ns, name, str(len(obj.get("secrets") or [])), _created(obj))
    else:  # RBAC
        ref = obj.get("roleRef") or {}
        role = f"{ref.get('kind')}/{ref.get('name')}" if isinstance(ref, dict) and ref else ""
        subjects = _subjects(obj) if kind.endswith("Binding") else ""
        cells = (kind, ns, name, role, subjects, _created(obj))
    return Row(kind, ns, name, cells)


# ---- reading ---------------------------------------------------------------------------


@dataclass(slots=True)
class Listing:
    resource: Resource
    rows: list[Row] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Description:
    kind: str
    namespace: str
    name: str
    yaml: str = ""  # redacted
    events: list[Row] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    containers: list[LogStream] = field(default_factory=list)  # pods only


class TimedOut(Exception):
    pass


def why(exc: BaseException, action: str) -> str:
    """A failed read in words (401, 403, 404, timeouts, refused connections)."""
    if isinstance(exc, ApiException):
        if exc.status == 404:
            return f"not found (404): {action}: it is gone or never existed"
        return describe_api_error(exc, action)
    if isinstance(exc, TimedOut):
        return f"timed out: {action}"
    if isinstance(exc, urllib3.exceptions.HTTPError | OSError):
        return f"{describe_connection_error(exc)}: {action}"
    return f"{action}: {type(exc).__name__}: {exc}"[:300]


def _decode(response: Any) -> dict[str, Any]:
    body = json.loads(response.data)
    if not isinstance(body, dict):
        raise ValueError("the answer is not an object")
    return body


class ResourceReader:
    """Reads views of one cluster; one ApiClient, made on first use and kept."""

    def __init__(
        self,
        api_client_factory: Callable[[], Any],
        *,
        timeout: float = READ_TIMEOUT,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.factory = api_client_factory
        self.timeout = timeout
        self.clock = clock
        self._client = KeptClient(api_client_factory)

    def api(self) -> Any:
        return self._client.get()

    def close(self) -> None:
        self._client.close()

    def _left(self, deadline: float, action: str) -> float:
        left = deadline - self.clock()
        if left <= 0:
            raise TimedOut(action)
        return left

    def list_kind(self, kind: str, deadline: float) -> tuple[list[dict[str, Any]], bool]:
        """Every object of a kind in every namespace (pages of PAGE; at most MAX_ROWS),
        and whether the list was cut short."""
        spec = KINDS[kind]
        lister = getattr(getattr(k8s, spec.api)(self.api()), spec.list_all)
        items: list[dict[str, Any]] = []
        token = ""
        while True:
            left = self._left(deadline, f"list {spec.resource}")
            options: dict[str, Any] = {"limit": PAGE}
            if token:
                options["_continue"] = token
            body = _decode(
                lister(**options, _preload_content=False, _request_timeout=(CONNECT_TIMEOUT, left))
            )
            items += [i for i in body.get("items") or [] if isinstance(i, dict)]
            token = str(_meta(body).get("continue") or "")
            if len(items) >= MAX_ROWS:
                return items[:MAX_ROWS], True
            if not token:
                return items, False

    def list(self, resource: Resource) -> Listing:
        """The view's rows, every kind it shows; a kind that cannot be read is a problem."""
        listing = Listing(resource)
        deadline = self.clock() + self.timeout
        for kind in resource.kinds:
            spec = KINDS[kind]
            action = f"list {spec.resource}" + (" in all namespaces" if spec.namespaced else "")
            try:
                items, cut = self.list_kind(kind, deadline)
            except Exception as exc:  # each kind on its own: the others are still shown
                listing.problems.append(why(exc, action))
                continue
            if cut:
                listing.problems.append(f"{KINDS[kind].resource}: only the first {MAX_ROWS} shown")
            unreadable = 0
            for obj in items:
                try:
                    listing.rows.append(make_row(kind, obj, resource))
                except (TypeError, ValueError, AttributeError):
                    unreadable += 1  # a malformed object: counted, the rest shown
            if unreadable:
                listing.problems.append(f"{spec.resource}: {unreadable} malformed objects skipped")
        if resource.name == "events":
            listing.rows.sort(key=lambda r: -(_when(r.cells[1]) or 0.0))
        else:
            listing.rows.sort(key=lambda r: (r.kind, r.namespace, r.name))
        return listing

    def read(self, kind: str, namespace: str, name: str, deadline: float) -> dict[str, Any]:
        spec = KINDS[kind]
        reader = getattr(getattr(k8s, spec.api)(self.api()), spec.read)
        args = (name, namespace) if spec.namespaced else (name,)
        left = self._left(deadline, f"get {spec.resource}")
        return _decode(
            reader(*args, _preload_content=False, _request_timeout=(CONNECT_TIMEOUT, left))
        )

    def events_of(self, kind: str, namespace: str, name: str, deadline: float) -> list[Row]:
        """The events about one object (`involvedObject` field selector), newest first."""
        core = k8s.CoreV1Api(self.api())
        selector = f"involvedObject.kind={kind},involvedObject.name={name}"
        left = self._left(deadline, "list events")
        options: dict[str, Any] = {
            "field_selector": selector,
            "limit": MAX_EVENTS,
            "_preload_content": False,
            "_request_timeout": (CONNECT_TIMEOUT, left),
        }
        if namespace:
            body = _decode(core.list_namespaced_event(namespace, **options))
        else:
            body = _decode(core.list_event_for_all_namespaces(**options))
        rows = [event_row(e) for e in body.get("items") or [] if isinstance(e, dict)]
        rows.sort(key=lambda r: -(_when(r.cells[1]) or 0.0))
        return rows

    def describe(self, kind: str, namespace: str, name: str) -> Description:
        """The object as redacted YAML, and its events; each part said when unreadable."""
        out = Description(kind, namespace, name)
        if kind not in KINDS:
            out.problems.append(f"{kind} objects cannot be described here")
            return out
        deadline = self.clock() + self.timeout
        where = f"{namespace}/{name}" if namespace else name
        try:
            obj = self.read(kind, namespace, name, deadline)
        except Exception as exc:
            out.problems.append(why(exc, f"get {KINDS[kind].resource} {where}"))
        else:
            out.yaml = object_yaml(obj)
            if kind == "Pod":
                out.containers = log_streams(obj)
        try:
            out.events = self.events_of(kind, namespace, name, deadline)
        except Exception as exc:
            out.problems.append(why(exc, f"list the events of {where}"))
        return out

    def containers(self, namespace: str, name: str) -> list[LogStream]:
        """The pod's log streams (every container; the previous instance where one is)."""
        deadline = self.clock() + self.timeout
        return log_streams(self.read("Pod", namespace, name, deadline))

    def open_log(
        self,
        namespace: str,
        name: str,
        container: str,
        *,
        follow: bool,
        previous: bool,
        tail_lines: int | None,
    ) -> Any:
        """The log response, streaming (urllib3); the answer waited for at most the
        reader's timeout, the stream after it without a limit (a log may be quiet)."""
        core = k8s.CoreV1Api(self.api())
        options: dict[str, Any] = {"container": container, "follow": follow, "previous": previous}
        if tail_lines is not None:
            options["tail_lines"] = tail_lines
        response = core.read_namespaced_pod_log(
            name,
            namespace,
            **options,
            _preload_content=False,
            _request_timeout=(CONNECT_TIMEOUT, self.timeout),
        )
        if not 200 <= response.status <= 299:
            exc = ApiException(status=response.status, reason=response.reason)
            exc.body = response.data
            exc.headers = response.headers
            _close(response)
            raise exc
        stream_read_timeout(response, None)
        return response


def _when(cell: Cell) -> float | None:
    return cell.t if isinstance(cell, When) else None


def object_yaml(obj: dict[str, Any]) -> str:
    """The object as kubectl's `-o yaml` shows it (no managedFields), redacted."""
    obj = dict(obj)
    meta = dict(_meta(obj))
    meta.pop("managedFields", None)
    if meta:
        obj["metadata"] = meta
    # Non-ASCII and control characters as YAML escapes: nothing invisible hides.
    return str(yaml.safe_dump(redact(obj), sort_keys=False, allow_unicode=False, width=1000))


def _close(response: Any) -> None:
    # A half-read stream must not go back to the pool; shutdown unblocks a reader.
    for method in ("shutdown", "close", "release_conn"):
        with contextlib.suppress(Exception):
            getattr(response, method)()


# ---- following a log ------------------------------------------------------------------


class LogFollower:
    """Reads one container's log in a thread into a bounded buffer.

    `take()` hands the UI what arrived since (a batch of lines, how many were
    dropped because the UI fell behind by more than `capacity` lines, and
    whether the stream ended and why). `stop()` closes the stream.
    """

    def __init__(
        self,
        reader: ResourceReader,
        namespace: str,
        name: str,
        container: str,
        *,
        follow: bool = True,
        previous: bool = False,
        tail_lines: int | None = None,
        capacity: int = LOG_BUFFER,
        max_line: int = MAX_LOG_LINE,
        transform: Callable[[str], str] | None = None,
    ) -> None:
        self.reader = reader
        self.namespace = namespace
        self.name = name
        self.container = container
        self.follow = follow and not previous
        self.previous = previous
        self.tail_lines = tail_lines
        self.max_line = max_line
        # Applied to every line in this thread (the UI's `shown`), not on the UI's.
        self.transform = transform
        self._lines: collections.deque[str] = collections.deque(maxlen=capacity)
        self._dropped = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._response: Any = None
        self.ended: str | None = None  # why the stream ended, once it has
        self.opened = threading.Event()
        self.thread = threading.Thread(
            target=self._main, name=f"ktriage-podlog-{namespace}/{name}", daemon=True
        )

    def start(self) -> LogFollower:
        self.thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        with self._lock:
            response = self._response
        if response is not None:
            _close(response)

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def take(self) -> tuple[list[str], int, str | None]:
        with self._lock:
            lines = list(self._lines)
            self._lines.clear()
            dropped, self._dropped = self._dropped, 0
            ended = self.ended
        return lines, dropped, ended

    def _put(self, lines: Iterable[str]) -> None:
        if self.transform is not None:
            lines = [self.transform(line) for line in lines]
        with self._lock:
            for line in lines:
                if len(self._lines) == self._lines.maxlen:
                    self._dropped += 1
                self._lines.append(line)

    def _main(self) -> None:
        what = f"get pods/log {self.namespace}/{self.name} container {self.container}"
        ended = "the log ended"
        try:
            response = self.reader.open_log(
                self.namespace,
                self.name,
                self.container,
                follow=self.follow,
                previous=self.previous,
                tail_lines=self.tail_lines,
            )
            with self._lock:
                self._response = response
            self.opened.set()
            if self._stop.is_set():
                return
            splitter = HeadSplitter(self.max_line)
            for chunk in response.stream(64 * 1024, decode_content=False):
                if self._stop.is_set():
                    return
                if chunk:
                    self._put(splitter.feed(chunk))
            self._put(splitter.finish())
            if self.follow:
                ended = "the log stream ended (the container stopped or the connection closed)"
        except Exception as exc:  # said in the view, in words
            if not self._stop.is_set():
                ended = why(exc, what)
        finally:
            with self._lock:
                response, self._response = self._response, None
                self.ended = "closed" if self._stop.is_set() else ended
            self.opened.set()
            if response is not None:
                _close(response)


class HeadSplitter:
    """Cuts a byte stream into text lines, keeping at most `max_line` bytes of each:
    a longer line keeps its head and says how much was cut, so memory stays bounded
    however long a line an attacker writes."""

    def __init__(self, max_line: int) -> None:
        self.max_line = max_line
        self._head = bytearray()
        self._cut = 0  # bytes of the current line past max_line

    def feed(self, data: bytes) -> list[str]:
        lines: list[str] = []
        pos = 0
        while True:
            nl = data.find(b"\n", pos)
            end = len(data) if nl == -1 else nl
            room = self.max_line - len(self._head)
            piece = data[pos:end]
            self._head += piece[: max(room, 0)]
            self._cut += max(len(piece) - max(room, 0), 0)
            if nl == -1:
                return lines
            lines.append(self._line())
            pos = nl + 1

    def finish(self) -> list[str]:
        return [self._line()] if self._head or self._cut else []

    def _line(self) -> str:
        text = bytes(self._head).rstrip(b"\r").decode("utf-8", errors="replace")
        if self._cut:
            text += f" ⟨{self._cut:,} more bytes of this line not shown⟩"
        self._head.clear()
        self._cut = 0
        return text
