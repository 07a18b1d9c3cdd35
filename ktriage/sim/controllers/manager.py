"""The controller manager: what reacts to the store's changes, as kube-controller-manager
and kubelet react to watch events.

Every change of the store is handed over (thread-safe) to a task on the sim's loop,
which lets each controller queue the objects to reconcile and then reconciles them,
so a burst of writes (a scenario step, a request) is seen whole before anything acts.
Time-based work (grace periods, container start, schedules) waits on the sim clock.

Scripted workloads: the scenario builds Deployments, ReplicaSets and pods itself and
plays their rollouts and scaling step by step. Controllers adopt those objects but
do not drive them (the scenario is their controller) until a client changes them
through the API; what a client does to their pods (delete, relabel) is answered as
kube-controller-manager would: a replacement starts.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from ktriage.sim.clock import SimClock
from ktriage.sim.controllers import origin
from ktriage.sim.storage.store import Change, ClusterStore

log = logging.getLogger(__name__)

ObjKey = tuple[str, str, str, str]  # apiVersion, kind, namespace, name
SLICE_SECONDS = 0.05  # controllers' work between two turns of the event loop


def key_of(obj: dict) -> ObjKey:
    meta = obj.get("metadata") or {}
    return (obj["apiVersion"], obj["kind"], meta.get("namespace") or "", meta.get("name", ""))


class Controller:
    """One controller: `observe` each change (queue keys), `reconcile` a queued key."""

    kinds: tuple[tuple[str, str], ...] = ()

    def __init__(self, manager: ControllerManager) -> None:
        self.manager = manager
        self.store = manager.store

    def observe(self, change: Change, from_api: bool) -> None:  # pragma: no cover - default
        pass

    def reconcile(self, key: ObjKey) -> None:  # pragma: no cover - default
        pass


class ControllerManager:
    """Runs the controllers on the sim's loop; see the module docstring."""

    def __init__(self, store: ClusterStore, clock: SimClock) -> None:
        self.store = store
        self.clock = clock
        # uids of workloads the controllers drive (made or changed through the API).
        self.managed: set[str] = set()
        self._controllers: list[Controller] = []
        self._inbox: list[tuple[Change, bool]] = []
        self._inbox_lock = threading.Lock()
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: dict[tuple[int, ObjKey], None] = {}
        self._task: asyncio.Task | None = None
        self._timers: set[asyncio.Task] = set()
        self._unsubscribe: Callable[[], None] | None = None
        self.errors = 0

    def add(self, controller: Controller) -> None:
        self._controllers.append(controller)

    # ------------------------------------------------------------------ running

    def start(self) -> None:
        """Start on the running loop (call from the sim's loop)."""
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        _, self._unsubscribe = self.store.watch(None, None, None, self._on_change)
        self._task = self._loop.create_task(self._run())
        self.resync()

    async def stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
        tasks = [t for t in (self._task, *self._timers) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _on_change(self, change: Change) -> None:
        # Called with the store's lock held, from whichever thread wrote: hand over only.
        with self._inbox_lock:
            self._inbox.append((change, origin.from_api()))
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            if threading.get_ident() == getattr(loop, "_thread_id", None):
                self._wake.set()  # type: ignore[union-attr]
            else:
                loop.call_soon_threadsafe(self._wake.set)  # type: ignore[union-attr]
        except RuntimeError:  # the loop is closing
            pass

    async def _run(self) -> None:
        assert self._wake is not None
        origin.mark_controller()
        while True:
            await self._wake.wait()
            self._wake.clear()
            # Let the writer finish its burst (a scenario step, a request) first.
            await asyncio.sleep(0)
            # Work in slices, so requests are served while a big burst is worked off.
            while self.drain():
                await asyncio.sleep(0)

    def drain(self, budget: float = SLICE_SECONDS) -> bool:
        """Observe every pending change, then reconcile what is queued, for about
        `budget` seconds; True if work is left."""
        deadline = time.monotonic() + budget
        while time.monotonic() < deadline:
            with self._inbox_lock:
                inbox, self._inbox = self._inbox, []
            for change, from_api in inbox:
                for controller in self._controllers:
                    kinds = controller.kinds
                    if not kinds or (change.api_version, change.kind) in kinds:
                        self._safely(controller.observe, change, from_api)
            if not self._queue:
                with self._inbox_lock:
                    if not self._inbox:
                        return False
                continue
            queue, self._queue = self._queue, {}
            for index, key in queue:
                if time.monotonic() > deadline:  # put the rest back, in order
                    self._queue[(index, key)] = None
                    continue
                self._safely(self._controllers[index].reconcile, key)
        return True

    def _safely(self, fn: Callable[..., Any], *args: Any) -> None:
        try:
            fn(*args)
        except Exception:  # a controller's bug must not stop the others
            self.errors += 1
            log.exception("simulated controller failed")

    def enqueue(self, controller: Controller, key: ObjKey) -> None:
        self._queue[(self._controllers.index(controller), key)] = None
        if self._wake is not None:
            self._wake.set()

    def resync(self) -> None:
        """Queue every object each controller watches (at start)."""
        for controller in self._controllers:
            for api_version, kind in controller.kinds:
                for obj in self.store.snapshot(api_version, kind)[0]:
                    self.enqueue(controller, key_of(obj))

    def at(self, when: float, fn: Callable[[], None]) -> None:
        """Run `fn` on the loop once the sim clock reaches `when`."""
        if self._loop is None:
            return

        async def later() -> None:
            origin.mark_controller()
            await self.clock.sleep_until(when)
            self._safely(fn)
            if self._wake is not None:
                self._wake.set()

        task = self._loop.create_task(later())
        self._timers.add(task)
        task.add_done_callback(self._timers.discard)

    # ------------------------------------------------------------------ helpers

    def is_managed(self, obj: dict) -> bool:
        return (obj.get("metadata") or {}).get("uid") in self.managed

    def delete(self, obj: dict, policy: str | None = None) -> None:
        """Delete as a controller does through the API (graceful for pods)."""
        from ktriage.sim.controllers import deletion

        api_version, kind, ns, name = key_of(obj)
        options = {"propagationPolicy": policy} if policy else {}
        deletion.delete(self.store, api_version, kind, ns or None, name, options)

    def poke(self, key: ObjKey) -> None:
        """Queue `key` for every controller that watches its kind."""
        for controller in self._controllers:
            if (key[0], key[1]) in controller.kinds:
                self.enqueue(controller, key)

    def settled(self) -> bool:
        """Nothing left to observe or reconcile (timers may still be pending)."""
        with self._inbox_lock:
            return not self._inbox and not self._queue
