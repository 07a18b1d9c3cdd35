"""Scenario time for the simulated cluster.

`SimClock` runs from a start time at `speed` times wall-clock speed; `ManualClock`
only moves when told to, so tests never wait on wall time.
"""

from __future__ import annotations

import asyncio
import time

# Real seconds a fast scenario may lose to startup and load before its clock would
# catch up with the wall clock (see `SimClock.hold_back`).
STARTUP_ALLOWANCE = 5.0


class SimClock:
    """Scenario time: `start + elapsed_wall_time * speed`.

    A live clock (no `start` given) is the server's clock for every timestamp it
    writes, and clients judge those against their own wall clock (kubectl's ages, the
    `Date` header): so it is never ahead of the wall clock. Played faster than real
    time, it starts in the past (`hold_back`) and catches up; once it has, it runs at
    wall-clock speed. A clock given a `start` is a test's and runs as told.
    """

    def __init__(self, start: float | None = None, speed: float = 1.0) -> None:
        self.live = start is None
        self.start = time.time() if start is None else start
        self.speed = speed
        self._t0 = time.monotonic()

    def _raw(self) -> float:
        return self.start + (time.monotonic() - self._t0) * self.speed

    def now(self) -> float:
        t = self._raw()
        return min(t, time.time()) if self.live else t

    def hold_back(self, span: float) -> None:
        """Start far enough in the past that `span` seconds of scenario time played at
        `speed` end before the wall clock's now, even when the cluster takes
        `STARTUP_ALLOWANCE` real seconds to start and build (a live clock faster than
        real time only; call before anything reads the clock). Were the clock to catch
        up sooner, the rest would play at real-time speed."""
        if self.live and self.speed > 1 and span > 0:
            lead = span * (1 - 1 / self.speed) + STARTUP_ALLOWANCE * (self.speed - 1)
            self.start = time.time() - lead
            self._t0 = time.monotonic()

    async def sleep_until(self, t: float) -> None:
        """Sleep until scenario time `t` (returns at once if it has passed)."""
        while True:
            now = self.now()
            rate = self.speed if not self.live or self._raw() < time.time() else 1.0
            remaining = (t - now) / rate
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
