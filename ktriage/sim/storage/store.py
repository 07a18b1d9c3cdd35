"""The simulated cluster's state: objects, their change history and pod logs.

`ClusterStore` is the single source of truth. The API server reads and writes it,
the scenario player writes it directly, and tests inspect it; all of them may run
on different threads, so every method takes the lock. The resourceVersion is one
global counter, as etcd's revision is. A bounded history of changes per resource
type (`watchcache`) serves watches that resume from a resourceVersion and lists of
a type as it was at one (a paged list is one snapshot); older versions are gone
(410 Expired), as after an etcd compaction.
"""

from __future__ import annotations

import bisect
import threading
import uuid
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import orjson

from ktriage.sim.clock import SimClock
from ktriage.sim.controllers import defaults, podstatus
from ktriage.sim.resources import by_kind
from ktriage.sim.storage.watchcache import WatchCache, state_at
from ktriage.sim.timefmt import rfc3339

FIRST_RESOURCE_VERSION = 1000
# Sorted states kept for paged lists: the pages of one list read one sort, not one each.
LIST_SNAPSHOTS_KEPT = 8

Key = tuple[str, str]  # (namespace or "", name)
TypeKey = tuple[str, str]  # (apiVersion, kind)


def deep_copy(obj: Any) -> Any:
    """A deep copy of JSON data (also normalizes datetimes and tuples to JSON)."""
    return orjson.loads(orjson.dumps(obj, option=orjson.OPT_UTC_Z | orjson.OPT_NON_STR_KEYS))


@dataclass(frozen=True, slots=True)
class Change:
    """One write, as a watch reports it. `obj` and `old` are never mutated."""

    rv: int
    type: str  # ADDED | MODIFIED | DELETED
    api_version: str
    kind: str
    obj: dict
    old: dict | None


class Expired(Exception):
    """The requested resourceVersion is older than the kept history."""

    def __init__(self, requested: int, oldest: int) -> None:
        super().__init__(f"too old resource version: {requested} ({oldest})")
        self.requested = requested
        self.oldest = oldest


@dataclass(slots=True)
class LogLine:
    time: float
    text: str


class _ContainerLog:
    __slots__ = ("current", "previous")

    def __init__(self) -> None:
        self.current: deque[LogLine] = deque()
        self.previous: list[LogLine] | None = None


@dataclass(frozen=True, slots=True)
class ListSnapshot:
    """A type's objects (read-only!) at one resourceVersion, in the order a list
    serves them: by "namespace/name", as etcd orders its keys. `keys` are those
    strings, so a continue token's page is found by bisection, not by a scan."""

    rv: int
    keys: list[str]
    objs: list[dict]

    def index(self, start: str) -> int:
        """The position of the first object whose key is `start` or after it."""
        return bisect.bisect_left(self.keys, start) if start else 0


def list_key(obj: dict) -> str:
    """An object's place in a list ("namespace/name"; "/name" when cluster-scoped)."""
    meta = obj["metadata"]
    return f"{meta.get('namespace') or ''}/{meta['name']}"


def _sorted_snapshot(rv: int, objs: Iterable[dict]) -> ListSnapshot:
    pairs = sorted((list_key(o), o) for o in objs)
    return ListSnapshot(rv, [k for k, _ in pairs], [o for _, o in pairs])


LogListener = Callable[[LogLine | None], None]  # None: the stream ended
ChangeListener = Callable[[Change], None]


class ClusterStore:
    """Thread-safe object store with a global resourceVersion, watch history and logs."""

    def __init__(
        self,
        clock: SimClock,
        *,
        history_limit: int = 10_000,
        log_limit: int = 100_000,
    ) -> None:
        self.clock = clock
        self._lock = threading.RLock()
        self._objects: dict[TypeKey, dict[Key, dict]] = {}
        self._rv = FIRST_RESOURCE_VERSION
        self._history = WatchCache(history_limit, FIRST_RESOURCE_VERSION)
        self._listeners: dict[TypeKey | None, set[ChangeListener]] = {}
        self._logs: dict[tuple[str, str, str], _ContainerLog] = {}
        self._log_listeners: dict[tuple[str, str, str], set[LogListener]] = {}
        self._log_limit = log_limit
        self._ips = 0
        self._list_snapshots: OrderedDict[tuple[str, str, str | None, int], ListSnapshot] = (
            OrderedDict()
        )

    # ----------------------------------------------------------------- objects

    @property
    def resource_version(self) -> int:
        with self._lock:
            return self._rv

    @property
    def oldest_resource_version(self) -> int:
        """Watches of any type may resume from this resourceVersion or any later one."""
        with self._lock:
            return self._history.oldest(None)

    def oldest_resource_version_of(self, api_version: str, kind: str) -> int:
        """Watches of this type may resume from this resourceVersion or any later one."""
        with self._lock:
            return self._history.oldest((api_version, kind))

    def apply(self, obj: dict) -> dict:
        """Create or replace an object, filling the fields the API server owns."""
        obj = deep_copy(obj)
        api_version, kind, namespace, name = _identity(obj)
        with self._lock:
            old = self._objects.get((api_version, kind), {}).get((namespace, name))
            self._prepare(obj, old)
            return deep_copy(self._commit(api_version, kind, namespace, name, obj, old))

    def get_obj(self, api_version: str, kind: str, namespace: str | None, name: str) -> dict | None:
        with self._lock:
            obj = self._objects.get((api_version, kind), {}).get((namespace or "", name))
            return deep_copy(obj) if obj is not None else None

    def list_objs(self, api_version: str, kind: str, namespace: str | None = None) -> list[dict]:
        with self._lock:
            return deep_copy(self._list(api_version, kind, namespace))

    def mutate(
        self,
        api_version: str,
        kind: str,
        namespace: str | None,
        name: str,
        fn: Callable[[dict], None],
    ) -> dict:
        """Edit a copy of the object with `fn` and store it under a new resourceVersion."""
        with self._lock:
            old = self._objects.get((api_version, kind), {}).get((namespace or "", name))
            if old is None:
                raise KeyError(f"{kind} {namespace + '/' if namespace else ''}{name} not found")
            obj = deep_copy(old)
            fn(obj)
            obj = deep_copy(obj)
            meta = obj.setdefault("metadata", {})
            meta["name"] = name
            if namespace:
                meta["namespace"] = namespace
            obj["apiVersion"], obj["kind"] = api_version, kind
            self._prepare(obj, old)
            return deep_copy(self._commit(api_version, kind, namespace or "", name, obj, old))

    def delete(self, api_version: str, kind: str, namespace: str | None, name: str) -> dict | None:
        """Remove an object (a namespace takes its objects with it); None if absent."""
        with self._lock:
            bucket = self._objects.get((api_version, kind), {})
            old = bucket.get((namespace or "", name))
            if old is None:
                return None
            if (api_version, kind) == ("v1", "Namespace"):
                for (av, k), objs in list(self._objects.items()):
                    for ns, n in [key for key in objs if key[0] == name]:
                        self._remove(av, k, ns, n)
            return deep_copy(self._remove(api_version, kind, namespace or "", name))

    # Internal versions for the API server, called with the lock held or not: they
    # return the stored objects themselves, which nobody may mutate.

    def _list(self, api_version: str, kind: str, namespace: str | None) -> list[dict]:
        bucket = self._objects.get((api_version, kind), {})
        keys = sorted(k for k in bucket if namespace is None or k[0] == namespace)
        return [bucket[k] for k in keys]

    def snapshot(
        self, api_version: str, kind: str, namespace: str | None = None
    ) -> tuple[list[dict], int]:
        """The stored objects (read-only!) and the resourceVersion they are current at."""
        with self._lock:
            return self._list(api_version, kind, namespace), self._rv

    def snapshot_at(
        self, api_version: str, kind: str, namespace: str | None, rv: int
    ) -> list[dict]:
        """The type's objects (read-only!) as they were at resourceVersion `rv`, sorted.

        Raises `Expired` if the history no longer reaches back to `rv`; `rv` newer than
        the store's is the caller's to refuse.
        """
        type_key = (api_version, kind)
        with self._lock:
            oldest = self._history.oldest(type_key)
            if rv < oldest:
                raise Expired(rv, oldest)
            current = self._objects.get(type_key, {})
            state = state_at(current, self._history.changes_after(type_key, rv))
        keys = sorted(k for k in state if namespace is None or k[0] == namespace)
        return [state[k] for k in keys]

    def list_snapshot(
        self, api_version: str, kind: str, namespace: str | None, rv: int | None = None
    ) -> ListSnapshot:
        """The type's objects as a list serves them, now (`rv` None) or as they were at
        resourceVersion `rv` (`Expired` once the history no longer reaches it; `rv`
        newer than the store's is the caller's to refuse).

        A state at a resourceVersion never changes (objects are replaced, never
        edited), so it is sorted once and kept for the next pages of the same list:
        a paged list of n objects costs one sort, not one per page.
        """
        type_key = (api_version, kind)
        with self._lock:
            if rv is None:
                rv = self._rv
            else:
                oldest = self._history.oldest(type_key)
                if rv < oldest:
                    raise Expired(rv, oldest)
            cache_key = (api_version, kind, namespace, rv)
            found = self._list_snapshots.get(cache_key)
            if found is not None:
                self._list_snapshots.move_to_end(cache_key)
                return found
            current = self._objects.get(type_key, {})
            if rv == self._rv:
                state = current
            else:
                state = state_at(current, self._history.changes_after(type_key, rv))
            picked = [o for k, o in state.items() if namespace is None or k[0] == namespace]
        snap = _sorted_snapshot(rv, picked)
        with self._lock:
            self._list_snapshots[cache_key] = snap
            while len(self._list_snapshots) > LIST_SNAPSHOTS_KEPT:
                self._list_snapshots.popitem(last=False)
        return snap

    def peek(self, api_version: str, kind: str, namespace: str | None, name: str) -> dict | None:
        """The stored object itself (read-only!)."""
        with self._lock:
            return self._objects.get((api_version, kind), {}).get((namespace or "", name))

    def replace_checked(self, obj: dict, expected_rv: str | None) -> dict:
        """Replace an existing object if its resourceVersion still is `expected_rv`.

        Raises KeyError if absent, `Conflict` if the version moved on. Returns the
        stored object (read-only).
        """
        api_version, kind, namespace, name = _identity(obj)
        with self._lock:
            old = self._objects.get((api_version, kind), {}).get((namespace, name))
            if old is None:
                raise KeyError(name)
            if expected_rv and expected_rv != old["metadata"].get("resourceVersion"):
                raise Conflict(name)
            self._prepare(obj, old)
            return self._commit(api_version, kind, namespace, name, obj, old)

    def create_checked(self, obj: dict) -> dict:
        """Create an object; `AlreadyExists` if the name is taken. Returns it (read-only)."""
        api_version, kind, namespace, name = _identity(obj)
        with self._lock:
            if (namespace, name) in self._objects.get((api_version, kind), {}):
                raise AlreadyExists(name)
            self._prepare(obj, None)
            return self._commit(api_version, kind, namespace, name, obj, None)

    def prepare_new(self, obj: dict, old: dict | None) -> None:
        """Fill server-owned fields as a create/update would, without storing (dry run)."""
        with self._lock:
            self._prepare(obj, old, dry_run=True)

    def _prepare(self, obj: dict, old: dict | None, *, dry_run: bool = False) -> None:
        meta = obj.setdefault("metadata", {})
        rt = by_kind(obj["apiVersion"], obj["kind"])
        if old is None:
            meta.setdefault("uid", str(uuid.uuid4()))
            meta.setdefault("creationTimestamp", rfc3339(self.clock.now()))
            if rt is not None and rt.generation:
                meta["generation"] = 1
        else:
            old_meta = old["metadata"]
            meta["uid"] = old_meta["uid"]
            meta["creationTimestamp"] = old_meta["creationTimestamp"]
            if rt is not None and rt.generation:
                gen = old_meta.get("generation", 1)
                meta["generation"] = gen + 1 if obj.get("spec") != old.get("spec") else gen
        for key in ("labels", "annotations"):
            if meta.get(key) == {}:
                del meta[key]
        if obj["kind"] == "Pod" and obj["apiVersion"] == "v1":
            podstatus.fill_pod(
                obj, old, self._node_ip, self._next_pod_ip, self.clock.now(), self._pick_node
            )
        elif obj["apiVersion"] in ("apps/v1", "batch/v1"):
            defaults.fill_workload(obj)
        elif obj["kind"] == "Namespace" and obj["apiVersion"] == "v1":
            obj.setdefault("spec", {"finalizers": ["kubernetes"]})
            obj.setdefault("status", {"phase": "Active"})
            meta.setdefault("labels", {})["kubernetes.io/metadata.name"] = meta["name"]

    def _node_ip(self, node: str) -> str | None:
        obj = self._objects.get(("v1", "Node"), {}).get(("", node))
        if obj is None:
            return None
        for addr in obj.get("status", {}).get("addresses", []):
            if addr.get("type") == "InternalIP":
                return addr.get("address")
        return None

    def _pick_node(self) -> str | None:
        """Where the absent scheduler would put a new pod: the first schedulable node."""
        for (_, name), node in sorted(self._objects.get(("v1", "Node"), {}).items()):
            if not node.get("spec", {}).get("unschedulable"):
                return name
        return None

    def _next_pod_ip(self, node: str | None = None) -> str:
        node_obj = self._objects.get(("v1", "Node"), {}).get(("", node or ""))
        cidr = podstatus.pod_cidr(node_obj)
        if cidr:  # as the node's CNI does: a free address of the node's pod range
            pods = self._objects.get(("v1", "Pod"), {}).values()
            ip = podstatus.free_ip(cidr, {(p.get("status") or {}).get("podIP") for p in pods})
            if ip:
                return ip
        self._ips += 1
        return f"10.244.{(self._ips // 250) % 250}.{self._ips % 250 + 2}"

    def _commit(
        self, api_version: str, kind: str, namespace: str, name: str, obj: dict, old: dict | None
    ) -> dict:
        self._rv += 1
        obj["metadata"]["resourceVersion"] = str(self._rv)
        self._objects.setdefault((api_version, kind), {})[(namespace, name)] = obj
        self._publish(
            Change(self._rv, "ADDED" if old is None else "MODIFIED", api_version, kind, obj, old)
        )
        return obj

    def _remove(self, api_version: str, kind: str, namespace: str, name: str) -> dict:
        old = self._objects[(api_version, kind)].pop((namespace, name))
        self._rv += 1
        gone = dict(old)
        gone["metadata"] = dict(old["metadata"], resourceVersion=str(self._rv))
        self._publish(Change(self._rv, "DELETED", api_version, kind, gone, old))
        if (api_version, kind) == ("v1", "Pod"):
            for key in [k for k in self._logs if k[0] == namespace and k[1] == name]:
                del self._logs[key]
                for listener in list(self._log_listeners.pop(key, ())):
                    listener(None)
        return gone

    def _publish(self, change: Change) -> None:
        self._history.record((change.api_version, change.kind), change)
        for key in ((change.api_version, change.kind), None):
            for listener in list(self._listeners.get(key, ())):
                listener(change)

    def compact(self) -> None:
        """Forget the change history, as an etcd compaction does: older watches get 410."""
        with self._lock:
            self._history.compact(self._rv)
            self._list_snapshots.clear()

    # ----------------------------------------------------------------- watches

    def watch(
        self,
        api_version: str | None,
        kind: str | None,
        since: int | None,
        listener: ChangeListener,
    ) -> tuple[list[Change], Callable[[], None]]:
        """Subscribe to changes of one type (or all, with None).

        Returns the kept changes after resourceVersion `since` (none if `since` is None)
        and an unsubscribe function; `listener` gets every later change, called with
        the store's lock held, so it must only hand the change over (never block).
        Raises `Expired` if `since` is older than the kept history.
        """
        key = (api_version, kind) if kind is not None and api_version is not None else None
        with self._lock:
            backlog: list[Change] = []
            if since is not None:
                oldest = self._history.oldest(key)
                if since < oldest:
                    raise Expired(since, oldest)
                backlog = self._history.changes_after(key, since)
            self._listeners.setdefault(key, set()).add(listener)

        def unsubscribe() -> None:
            with self._lock:
                self._listeners.get(key, set()).discard(listener)

        return backlog, unsubscribe

    def watch_state(
        self, api_version: str, kind: str, namespace: str | None, listener: ChangeListener
    ) -> tuple[list[dict], int, Callable[[], None]]:
        """Atomically: the current objects (read-only), their resourceVersion, and a
        subscription to every later change."""
        with self._lock:
            objs, rv = self.snapshot(api_version, kind, namespace)
            _, unsubscribe = self.watch(api_version, kind, None, listener)
            return objs, rv, unsubscribe

    # ----------------------------------------------------------------- pods

    def set_container_state(
        self,
        namespace: str,
        pod: str,
        container: str,
        state: str,
        *,
        reason: str | None = None,
        exit_code: int | None = None,
        message: str | None = None,
        restart: bool = False,
        ready: bool | None = None,
    ) -> dict:
        """Move one container to `state` (running | waiting | terminated), keeping the
        pod's status consistent (ready flags, Ready condition, phase).

        With `restart=True` the container's current state becomes its lastState, its
        restartCount grows by one and its current log becomes the previous log.
        """
        now = self.clock.now()

        def change(obj: dict) -> None:
            podstatus.set_container_state(
                obj,
                container,
                state,
                now=now,
                reason=reason,
                exit_code=exit_code,
                message=message,
                restart=restart,
                ready=ready,
            )

        with self._lock:
            result = self.mutate("v1", "Pod", namespace, pod, change)
            if restart:
                self.restart_container(namespace, pod, container)
            return result

    # ----------------------------------------------------------------- logs

    def append_log(
        self, namespace: str, pod: str, container: str, line: str, *, time: float | None = None
    ) -> None:
        entry = LogLine(self.clock.now() if time is None else time, line.rstrip("\n"))
        key = (namespace, pod, container)
        with self._lock:
            log = self._logs.get(key)
            if log is None:
                log = self._logs[key] = _ContainerLog()
            log.current.append(entry)
            if len(log.current) > self._log_limit:
                log.current.popleft()
            for listener in list(self._log_listeners.get(key, ())):
                listener(entry)

    def restart_container(self, namespace: str, pod: str, container: str) -> None:
        key = (namespace, pod, container)
        with self._lock:
            log = self._logs.get(key)
            if log is None:
                log = self._logs[key] = _ContainerLog()
            log.previous = list(log.current)
            log.current = deque()
            # The running container is gone: its follow streams end, as kubelet's do.
            for listener in list(self._log_listeners.pop(key, ())):
                listener(None)

    def log_lines(
        self, namespace: str, pod: str, container: str, *, previous: bool = False
    ) -> list[LogLine] | None:
        """The container's current (or previous) log; None for no previous log."""
        with self._lock:
            log = self._logs.get((namespace, pod, container))
            if previous:
                return None if log is None or log.previous is None else list(log.previous)
            return [] if log is None else list(log.current)

    def follow_log(
        self, namespace: str, pod: str, container: str, listener: LogListener
    ) -> tuple[list[LogLine], Callable[[], None]]:
        """Atomically: the current log and a subscription to the lines appended later."""
        key = (namespace, pod, container)
        with self._lock:
            log = self._logs.get(key)
            lines = [] if log is None else list(log.current)
            self._log_listeners.setdefault(key, set()).add(listener)

        def unsubscribe() -> None:
            with self._lock:
                self._log_listeners.get(key, set()).discard(listener)

        return lines, unsubscribe


class Conflict(Exception):
    pass


class AlreadyExists(Exception):
    pass


def _identity(obj: dict) -> tuple[str, str, str, str]:
    try:
        api_version = obj["apiVersion"]
        kind = obj["kind"]
        meta = obj["metadata"]
        name = meta["name"]
    except (KeyError, TypeError) as exc:
        raise ValueError("object needs apiVersion, kind and metadata.name") from exc
    rt = by_kind(api_version, kind)
    namespace = meta.get("namespace") or ""
    if rt is not None:
        if rt.namespaced and not namespace:
            namespace = meta["namespace"] = "default"
        elif not rt.namespaced:
            namespace = ""
            meta.pop("namespace", None)
    return api_version, kind, namespace, name
