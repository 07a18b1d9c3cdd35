"""Failures the simulated API server can be told to produce, at start or while running.

Everything is deterministic (counts, not dice) so tests can be exact:

- `fail_next(n, code=500)`: the next n API requests fail with `code`;
- `error_rate`: a fraction of requests fail with 500, spread evenly (0.25 = every 4th);
- `throttle(n, retry_after=1)`: the next n requests get 429 with `Retry-After`;
- `latency`: seconds added before every answer;
- `throttle` answers as API Priority and Fairness does: plain text
  `Too many requests, please try again later.` with `Retry-After`, not a JSON Status;
- `reset_next(n)`: the next n API requests lose their connection (a TCP reset, no answer);
- `cut_watches()`: every open watch loses its connection now (a reset, as when a
  load balancer or the server goes away, never a clean end of the stream);
  `cut_after_events`: each watch is ended cleanly after that many events;
- `expire_next_watch()`: the next watch that gives a resourceVersion (other than "0")
  gets one ERROR event with a 410 Expired Status, as a compacted history answers;
- `expire_token(name)`: that identity's token is rejected with 401 from now on;
- `deny(name)`: that identity gets 403 for everything.
- `blackhole(method, match, n=1)`: the next n requests of that HTTP method whose path
  contains `match` (dry runs aside) are lost: never applied, never answered, until
  `reset()` ends their connections. `state()["held"]` counts those waiting (a test can
  kill a client while its request hangs there, between two steps of an action).
- `hang(True)`: the server accepts connections and stops answering: requests wait
  without a reply, open watches send nothing (not even bookmarks), until `hang(False)`
  (or `reset()`); `/_sim/` requests are still answered.

`match` restricts the request faults (fail/throttle/error_rate/reset) to request paths
containing that text. Health checks (`/healthz`, `/livez`, `/readyz`), `/version` and
the fault API itself (`/_sim/`) are never failed, throttled, slowed or reset: a real
server's failures leave its probes to say so. The HTTP endpoint `POST /_sim/faults`
(admin token only) takes the same settings as JSON, see `Faults.update`.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

# Never given a request fault (see the module docstring).
EXEMPT_PATHS = frozenset({"/healthz", "/livez", "/readyz", "/version"})


def exempt_from_faults(path: str) -> bool:
    """Whether the request faults (fail, throttle, error rate, latency, reset) skip `path`."""
    if path.startswith("/_sim/"):
        return True
    trimmed = path.rstrip("/") or "/"
    return trimmed in EXEMPT_PATHS or trimmed.startswith(("/healthz/", "/livez/", "/readyz/"))


@dataclass(frozen=True)
class InjectedFailure:
    code: int  # 0: reset the connection instead of answering
    retry_after: int | None = None

    @property
    def reset(self) -> bool:
        return self.code == 0


class Faults:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.error_rate: float = 0.0
        self.latency: float = 0.0
        self.cut_after_events: int | None = None
        self.match: str | None = None
        self._error_acc = 0.0
        self._fail_queue: list[int] = []
        self._throttle_left = 0
        self._retry_after = 1
        self._reset_left = 0
        self._expire_watches = 0
        self._expired_tokens: set[str] = set()
        self._denied: set[str] = set()
        self._cut_hooks: set[Callable[[], None]] = set()
        self.injected = 0  # how many requests a fault has failed so far
        self.hanging = False
        self._blackholes: list[list[Any]] = []  # [method, match, left]
        self.held = 0  # requests lost in a blackhole, waiting now
        self._released = 0  # bumped by reset(): lost requests' connections end

    # ------------------------------------------------------------- hang

    def hang(self, on: bool = True) -> None:
        self.hanging = on

    async def hold(self) -> None:
        """Wait while the server is told to hang (polled: set from any thread)."""
        while self.hanging:
            await asyncio.sleep(0.05)

    # ------------------------------------------------------------- blackhole

    def blackhole(self, method: str, match: str, n: int = 1) -> None:
        with self._lock:
            self._blackholes.append([method.upper(), match, n])

    def take_blackhole(self, method: str, path: str) -> bool:
        """Whether this request is to be lost (consumes one count)."""
        with self._lock:
            for hole in self._blackholes:
                if hole[0] == method.upper() and hole[1] in path and hole[2] > 0:
                    hole[2] -= 1
                    self.held += 1
                    self.injected += 1
                    return True
        return False

    async def swallow(self) -> None:
        """Wait, never answering, until `reset()` (polled: set from any thread)."""
        released = self._released
        try:
            while self._released == released:
                await asyncio.sleep(0.05)
        finally:
            with self._lock:
                self.held -= 1

    # ------------------------------------------------------------- settings

    def fail_next(self, n: int = 1, code: int = 500) -> None:
        with self._lock:
            self._fail_queue.extend([code] * n)

    def throttle(self, n: int = 1, retry_after: int = 1) -> None:
        with self._lock:
            self._throttle_left += n
            self._retry_after = retry_after

    def reset_next(self, n: int = 1) -> None:
        """The next n API requests lose their connection before any answer."""
        with self._lock:
            self._reset_left += n

    def expire_next_watch(self, n: int = 1) -> None:
        with self._lock:
            self._expire_watches += n

    def expire_token(self, name: str) -> None:
        with self._lock:
            self._expired_tokens.add(name)

    def restore_token(self, name: str) -> None:
        with self._lock:
            self._expired_tokens.discard(name)

    def deny(self, name: str) -> None:
        with self._lock:
            self._denied.add(name)

    def allow(self, name: str) -> None:
        with self._lock:
            self._denied.discard(name)

    def cut_watches(self) -> int:
        """Close every open watch stream now; returns how many were open."""
        with self._lock:
            hooks = list(self._cut_hooks)
        for hook in hooks:
            hook()
        return len(hooks)

    def reset(self) -> None:
        with self._lock:
            self.error_rate = 0.0
            self.latency = 0.0
            self.cut_after_events = None
            self.match = None
            self._error_acc = 0.0
            self._fail_queue.clear()
            self._throttle_left = 0
            self._reset_left = 0
            self._expire_watches = 0
            self._expired_tokens.clear()
            self._denied.clear()
            self._blackholes.clear()
            self._released += 1
        self.hanging = False

    def update(self, settings: dict[str, Any]) -> dict[str, Any]:
        """Apply settings from JSON, e.g. `{"fail_next": {"n": 2, "code": 503},
        "throttle": {"n": 1, "retry_after": 2}, "latency": 0.1, "error_rate": 0.5,
        "cut_watches": true, "cut_after_events": 3, "expire_next_watch": 1, "reset_next": 1,
        "expire_token": "viewer", "restore_token": "viewer", "deny": "intruder",
        "allow": "intruder", "match": "/pods", "reset": true}`. Returns `state()`.
        Raises ValueError on an unknown key or a bad value."""
        known = {
            "reset", "error_rate", "latency", "cut_after_events", "match", "fail_next",
            "throttle", "expire_next_watch", "expire_token", "restore_token", "deny",
            "allow", "cut_watches", "hang", "reset_next", "blackhole",
        }  # fmt: skip
        unknown = sorted(set(settings) - known)
        if unknown:
            raise ValueError(f"unknown fault settings: {', '.join(unknown)}")
        try:
            if settings.get("reset"):
                self.reset()
            if "error_rate" in settings:
                rate = float(settings["error_rate"])
                if not 0.0 <= rate <= 1.0:
                    raise ValueError("error_rate must be between 0 and 1")
                self.error_rate = rate
            if "latency" in settings:
                self.latency = max(0.0, float(settings["latency"]))
            if "cut_after_events" in settings:
                value = settings["cut_after_events"]
                self.cut_after_events = None if value is None else int(value)
            if "match" in settings:
                self.match = settings["match"] or None
            if "fail_next" in settings:
                spec = settings["fail_next"]
                if isinstance(spec, int):
                    spec = {"n": spec}
                self.fail_next(int(spec.get("n", 1)), int(spec.get("code", 500)))
            if "throttle" in settings:
                spec = settings["throttle"]
                if isinstance(spec, int):
                    spec = {"n": spec}
                self.throttle(int(spec.get("n", 1)), int(spec.get("retry_after", 1)))
            if "reset_next" in settings:
                self.reset_next(int(settings["reset_next"] or 0))
            if "blackhole" in settings:
                spec = settings["blackhole"]
                self.blackhole(str(spec["method"]), str(spec["match"]), int(spec.get("n", 1)))
            if "expire_next_watch" in settings:
                self.expire_next_watch(int(settings["expire_next_watch"] or 0))
            for key, fn in (
                ("expire_token", self.expire_token),
                ("restore_token", self.restore_token),
                ("deny", self.deny),
                ("allow", self.allow),
            ):
                if key in settings:
                    names = settings[key]
                    for name in [names] if isinstance(names, str) else list(names):
                        fn(str(name))
        except (TypeError, AttributeError, KeyError) as exc:
            raise ValueError(f"bad fault settings: {exc}") from exc
        if settings.get("cut_watches"):
            self.cut_watches()
        if "hang" in settings:
            self.hang(bool(settings["hang"]))
        return self.state()

    def state(self) -> dict[str, Any]:
        with self._lock:
            return {
                "error_rate": self.error_rate,
                "latency": self.latency,
                "cut_after_events": self.cut_after_events,
                "match": self.match,
                "fail_next": list(self._fail_queue),
                "throttle": self._throttle_left,
                "reset_next": self._reset_left,
                "retry_after": self._retry_after,
                "expire_next_watch": self._expire_watches,
                "expired_tokens": sorted(self._expired_tokens),
                "denied": sorted(self._denied),
                "open_watches": len(self._cut_hooks),
                "injected": self.injected,
                "hang": self.hanging,
                "held": self.held,
            }

    # ------------------------------------------------------------- server side

    def token_expired(self, *names: str) -> bool:
        with self._lock:
            return any(n in self._expired_tokens for n in names)

    def denied(self, *names: str) -> bool:
        with self._lock:
            return any(n in self._denied for n in names)

    def request_failure(self, path: str) -> InjectedFailure | None:
        """The failure the next request gets, if any (consumes one count)."""
        with self._lock:
            if exempt_from_faults(path) or (self.match and self.match not in path):
                return None
            if self._reset_left > 0:
                self._reset_left -= 1
                self.injected += 1
                return InjectedFailure(0)
            if self._fail_queue:
                self.injected += 1
                return InjectedFailure(self._fail_queue.pop(0))
            if self._throttle_left > 0:
                self._throttle_left -= 1
                self.injected += 1
                return InjectedFailure(429, self._retry_after)
            if self.error_rate > 0:
                self._error_acc += self.error_rate
                if self._error_acc >= 1.0 - 1e-9:
                    self._error_acc -= 1.0
                    self.injected += 1
                    return InjectedFailure(500)
            return None

    def take_watch_expiry(self) -> bool:
        with self._lock:
            if self._expire_watches > 0:
                self._expire_watches -= 1
                return True
            return False

    def register_watch(self, cut: Callable[[], None]) -> Callable[[], None]:
        with self._lock:
            self._cut_hooks.add(cut)

        def unregister() -> None:
            with self._lock:
                self._cut_hooks.discard(cut)

        return unregister
