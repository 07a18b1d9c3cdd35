"""What the sim's controllers share: a store subscription whose changes are handed to
the event loop, so a controller never writes from inside another write's listener."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from ktriage.sim.storage.store import Change, ClusterStore


class StoreWatcher:
    """Calls `on_change(change)` on `loop` for every change of the given types."""

    def __init__(
        self,
        store: ClusterStore,
        loop: asyncio.AbstractEventLoop,
        types: list[tuple[str, str]],
        on_change: Callable[[Change], None],
    ) -> None:
        self.store = store
        self._loop = loop
        self._types = types
        self._on_change = on_change
        self._unsubscribe: list[Callable[[], None]] = []

    def start(self) -> None:
        for api_version, kind in self._types:
            _, unsubscribe = self.store.watch(api_version, kind, None, self._hand_over)
            self._unsubscribe.append(unsubscribe)

    def stop(self) -> None:
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe.clear()

    def _hand_over(self, change: Change) -> None:
        # Called with the store's lock held, maybe from another thread: only schedule.
        if self._loop.is_closed():
            return
        try:
            self._loop.call_soon_threadsafe(self._on_change, change)
        except RuntimeError:  # the loop closed in between: the cluster is stopping
            pass


@contextmanager
def wake_on_changes(
    store: ClusterStore,
    types: list[tuple[str, str]],
    wanted: Callable[[Change], bool] = lambda _change: True,
) -> Iterator[asyncio.Event]:
    """An event set on the running loop at every `wanted` change of the given types,
    for a controller that recomputes everything when woken; unsubscribed on exit."""
    wake = asyncio.Event()

    def on_change(change: Change) -> None:
        if wanted(change):
            wake.set()

    watcher = StoreWatcher(store, asyncio.get_running_loop(), types, on_change)
    watcher.start()
    try:
        yield wake
    finally:
        watcher.stop()
