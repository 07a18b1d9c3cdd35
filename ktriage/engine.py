"""The engine: sources in, correlated incidents out, changes handed to the UI in batches.

Everything runs on one asyncio loop (the UI's, or headless mode's). Sources
push events with `add_events`; the UI takes what changed with `take_changes`
a few times a second, so a flood of events costs one redraw, not thousands.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from ktriage.core import allowlist
from ktriage.core.archive import RawArchive
from ktriage.core.config import Config
from ktriage.core.correlate import Correlator
from ktriage.core.detect.identity import ClusterNetworks
from ktriage.core.ingest import Ingestor
from ktriage.core.model import Event, Incident
from ktriage.core.store import EventStore

if TYPE_CHECKING:
    from ktriage.core.cluster import ClusterState


@dataclass(slots=True)
class SourceHealth:
    """What the status bar shows for one source."""

    name: str  # e.g. "audit:/var/log/kube-audit.log", "kube pods", "falco auto"
    kind: str  # "audit" | "falco" | "tetragon" | "kube" | "replay"
    # The kube context the source watches when several clusters are watched; "" with one.
    cluster: str = ""
    # starting | connected | reconnecting | stalled | failed | done; `stalled`: the
    # server (the API server) accepts connections but has not answered for a while.
    state: str = "starting"
    last_error: str = ""  # the last problem, in words
    events_total: int = 0
    newest_event_time: float | None = None
    skipped: Counter[str] = field(default_factory=Counter)
    # What a loading source has read ("loading 34%"), and "complete" once it has all.
    progress: str = ""
    # When events last came in, by `clock` (the clock event times are compared
    # with: the wall clock, or a demo scenario's): a quiet source is said to be
    # quiet, not lagging more and more.
    last_arrival: float | None = None
    clock: Callable[[], float] = time.time
    # Recent (wall time, count) samples for the events/s rate.
    _samples: deque[tuple[float, int]] = field(default_factory=lambda: deque(maxlen=64))

    def count(self, n: int, newest: float | None = None) -> None:
        self.events_total += n
        if n:
            self.last_arrival = self.clock()
        if newest is not None and (
            self.newest_event_time is None or newest > self.newest_event_time
        ):
            self.newest_event_time = newest
        self._samples.append((time.monotonic(), self.events_total))

    def rate(self, horizon: float = 5.0) -> float:
        """Events per second over the last few seconds."""
        now = time.monotonic()
        recent = [(t, n) for t, n in self._samples if now - t <= horizon]
        if len(recent) < 2:
            return 0.0
        (t0, n0), (t1, n1) = recent[0], recent[-1]
        return (n1 - n0) / max(t1 - t0, 1e-3) if t1 > t0 else 0.0

    def quiet_for(self, now: float | None = None) -> float | None:
        """Seconds since events last came in (None before the first)."""
        if self.last_arrival is None:
            return None
        return max(0.0, (now if now is not None else self.clock()) - self.last_arrival)

    def lag(self, now: float | None = None) -> float | None:
        """Seconds between now and the newest event's own time: how far behind the
        source is while events flow (see quiet_for when they do not)."""
        if self.newest_event_time is None:
            return None
        return max(0.0, (now if now is not None else self.clock()) - self.newest_event_time)


class Source(Protocol):
    """An async producer of events. `run` returns when the source is done or stopped."""

    health: SourceHealth

    async def run(self, engine: Engine) -> None: ...


@dataclass(slots=True)
class Changes:
    """What happened since the UI last looked."""

    incidents: set[str]
    events: list[Event]
    renamed: dict[str, str]


class Engine:
    """Owns the store, the correlator and the sources."""

    def __init__(
        self,
        config: Config | None = None,
        *,
        archive: RawArchive | None = None,
        max_events: int | None = None,
        store: EventStore | None = None,
        cluster: str = "",
    ) -> None:
        self.config = config or Config()
        # With several clusters each has an Engine of its own (ktriage.clusters); they
        # share one store (one id space) and archive, and `cluster` keeps them apart.
        self.store = store if store is not None else EventStore(max_events=max_events)
        self.correlator = Correlator(self.store, config=self.config, cluster=cluster)
        self.archive = archive or RawArchive()
        # The cluster's addresses, shared by every source's audit detections.
        self.networks = ClusterNetworks(self.config.networks)
        # Live sources build their own Ingestor: they take the configured allow list.
        allowlist.use(self.config.allowlist)
        self.ingestor = Ingestor(self.networks, allowlist=self.config.allowlist)
        self.sources: list[Source] = []
        self.clock: Callable[[], float] = time.time
        # The live cluster state when connected to a cluster.
        self.cluster: ClusterState | None = None
        self.context_name = ""  # kube context or "replay" / "demo"
        self.cluster_name = ""
        self._tasks: list[asyncio.Task[None]] = []
        self._changed: set[str] = set()
        self._new_events: list[Event] = []

    # ---- feeding -------------------------------------------------------------

    def add_events(self, events: Iterable[Event]) -> set[str]:
        """Correlate events (on the loop thread); returns the incidents they changed."""
        changed = self.correlator.add_many(events, self._new_events)
        if changed:
            self._changed |= changed
        return changed

    def attach_action(self, incident_id: str, event: Event) -> None:
        """Record one of our own actions in an incident's timeline."""
        changed = self.correlator.attach(incident_id, event)
        self._new_events.append(event)
        self._changed |= changed

    def take_changes(self) -> Changes:
        renamed = dict(self.correlator.renamed)
        incidents = {renamed.get(i, i) for i in self._changed}
        changes = Changes(incidents=incidents, events=self._new_events, renamed=renamed)
        self._changed = set()
        self._new_events = []
        return changes

    # ---- replay ------------------------------------------------------------

    def replay_files(self, paths: list[Path]) -> None:
        """Load recorded files synchronously (before the UI starts)."""
        from ktriage.core.replay import Replayer

        replayer = Replayer(self.correlator, self.ingestor, self.archive)
        replayer.replay(paths)
        self._new_events = list(self.store)
        self._changed = set(self.correlator.incidents)
        health = SourceHealth(name=f"replay ({len(paths)} file(s))", kind="replay", state="done")
        health.events_total = len(self.store)
        health.skipped = self.ingestor.skipped
        self.sources.append(_DoneSource(health))

    def replay_in_background(self, paths: list[Path]) -> ReplayLoad:
        """Load recorded files a slice at a time once the sources start (the UI's
        replay): incidents show while the rest loads."""
        load = ReplayLoad(self, paths)
        self.sources.append(load)
        return load

    # ---- sources -----------------------------------------------------------

    def add_source(self, source: Source) -> None:
        source.health.clock = self.clock
        if self.correlator.cluster:
            source.health.cluster = self.correlator.cluster
        ingestor = getattr(source, "ingestor", None)
        if isinstance(ingestor, Ingestor):
            ingestor.audit.networks = self.networks
        self.sources.append(source)

    def set_clock(self, clock: Callable[[], float]) -> None:
        """The clock event times are compared with (a demo runs on its scenario's)."""
        self.clock = clock
        for source in self.sources:
            source.health.clock = clock

    async def start(self) -> None:
        for source in self.sources:
            if isinstance(source, _DoneSource):
                continue
            self._tasks.append(asyncio.create_task(self._run_source(source)))

    async def _run_source(self, source: Source) -> None:
        try:
            await source.run(self)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a broken source must not take the others down
            source.health.state = "failed"
            source.health.last_error = f"{type(exc).__name__}: {exc}"

    async def stop(self, timeout: float = 1.0) -> None:
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=timeout)
        self._tasks.clear()
        for source in self.sources:
            close = getattr(source, "close", None)
            if close is not None:
                close()

    def health(self) -> list[SourceHealth]:
        return [s.health for s in self.sources]

    def state_for(self, incident: Incident | None) -> ClusterState | None:
        """The live cluster state an incident's pods are looked up in (with several
        clusters, its own cluster's: see ktriage.clusters)."""
        return self.cluster

    def raw_record(self, event: Event) -> object:
        """The raw record behind an event, or None when it is gone."""
        return self.archive.record(event)


class _DoneSource:
    def __init__(self, health: SourceHealth) -> None:
        self.health = health

    async def run(self, engine: Engine) -> None:
        return None


# Seconds of loading between two looks at the UI's own work (keys, repaints), and
# between two hand-overs of what was loaded (each costs the UI a repaint).
LOAD_SLICE_SECONDS = 0.05
LOAD_PUBLISH_SECONDS = 0.25


class ReplayLoad:
    """A replay loaded on the engine's loop in slices (see core/stepload.py): after
    each few milliseconds of loading the loop runs the UI, and the status bar says
    how much is loaded, and "complete" only once all of it is."""

    def __init__(self, engine: Engine, paths: list[Path]) -> None:
        from ktriage.core.stepload import SteppedReplay

        self.loader = SteppedReplay(engine.correlator, engine.ingestor, engine.archive, paths)
        self.health = SourceHealth(
            name=f"replay ({len(paths)} file(s))",
            kind="replay",
            state="loading",
            progress="loading 0%",
        )
        self.health.skipped = engine.ingestor.skipped

    @property
    def complete(self) -> bool:
        return self.loader.complete

    async def run(self, engine: Engine) -> None:
        await asyncio.sleep(0)  # the first frame first
        deadline = time.monotonic() + LOAD_SLICE_SECONDS
        publish = 0.0  # the first slice is handed over at once: the first incidents
        for _ in self.loader.steps():
            now = time.monotonic()
            if now >= deadline:
                if now >= publish:
                    self._publish(engine)
                    publish = now + LOAD_PUBLISH_SECONDS
                await asyncio.sleep(0)
                deadline = time.monotonic() + LOAD_SLICE_SECONDS
        self._publish(engine)
        self.health.progress = "complete"
        self.health.state = "done"

    def _publish(self, engine: Engine) -> None:
        changed, events = self.loader.take_changed()
        if events:
            engine._new_events.extend(events)
        if changed:
            engine._changed |= changed
        self.health.events_total = len(engine.store)
        if not self.loader.complete:
            self.health.progress = f"loading {self.loader.fraction() * 100:.0f}%"
