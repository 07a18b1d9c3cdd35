"""Scenario time for the simulated cluster.

`SimClock` runs from a start time at `speed` times wall-clock speed; `ManualClock`
only moves when told to, so tests never wait on wall time.
"""

from __future__ import annotations

import asyncio
import time


class SimClock:
    """Scenario time: `start + elapsed_wall_time * speed`."""

    def __init__(self, start: float | None = None, speed: float = 1.0) -> None:
        self.start = time.time() if start is None else start
        self.speed = speed
        self._t0 = time.monotonic()

    def now(self) -> float:
        return self.start + (time.monotonic() - self._t0) * self.speed

    async def sleep_until(self, t: float) -> None:
        """Sleep until scenario time `t` (returns at once if it has passed)."""
        while True:
            remaining = (t - self.now()) / self.speed
            if remaining <= 0:
                return
            await asyncio.sleep(min(remaining, 0.5))


class ManualClock(SimClock):
    """A clock that moves only through `advance`/`set`; `sleep_until` waits for it."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        super().__init__(start=start, speed=1.0)
        self._now = start
        self._changed = asyncio.Event()

    def now(self) -> float:
        return self._now

    def set(self, t: float) -> None:
        self._now = max(self._now, t)
        self._changed.set()

    def advance(self, seconds: float) -> None:
        self.set(self._now + seconds)

    async def sleep_until(self, t: float) -> None:
        while self._now < t:
            self._changed.clear()
            await self._changed.wait()
