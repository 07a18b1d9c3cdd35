"""The status bar says how far behind a source is, or that it is quiet."""

from __future__ import annotations

from ktriage.engine import Engine, SourceHealth
from ktriage.ui.widgets.status_bar import QUIET_AFTER, source_freshness


def _health(arrived: float | None, newest: float | None) -> SourceHealth:
    h = SourceHealth(name="audit:/var/log/audit.log", kind="audit")
    h.last_arrival = arrived
    h.newest_event_time = newest
    return h


def test_a_flowing_source_shows_its_lag() -> None:
    # The newest event came in at 1,001.0 and happened at 1,000.0.
    h = _health(arrived=1_001.0, newest=1_000.0)
    assert source_freshness([h], now=1_001.5) == "lag 1.5s"


def test_a_quiet_source_is_quiet_not_ever_more_behind() -> None:
    h = _health(arrived=1_001.0, newest=1_000.0)
    # Ten minutes without a new event: the newest event is ten minutes old, but
    # nothing is late.
    assert source_freshness([h], now=1_601.0) == "quiet 10m"
    assert source_freshness([h], now=1_001.0 + QUIET_AFTER) == f"quiet {QUIET_AFTER:.0f}s"


def test_a_group_shows_the_lag_of_its_flowing_sources() -> None:
    flowing = _health(arrived=1_001.0, newest=1_000.0)
    quiet = _health(arrived=910.0, newest=900.0)
    assert source_freshness([quiet, flowing], now=1_002.0) == "lag 2.0s"
    quieter = _health(arrived=905.0, newest=800.0)
    assert source_freshness([quiet, quieter], now=1_001.0) == "quiet 91s"


def test_nothing_is_said_before_the_first_event() -> None:
    assert source_freshness([_health(arrived=None, newest=None)], now=5.0) == ""


class _Source:
    def __init__(self) -> None:
        self.health = SourceHealth(name="falco", kind="falco")


def test_arrivals_are_timed_on_the_engine_clock() -> None:
    """A demo's scenario clock runs faster than the wall clock; lag and quiet time
    are both read on it, so they agree."""
    scenario_time = [5_000.0]
    engine = Engine()
    source = _Source()
    engine.add_source(source)
    engine.set_clock(lambda: scenario_time[0])
    h = source.health
    assert h.quiet_for() is None
    h.count(0)
    assert h.quiet_for() is None
    h.count(3, newest=4_999.0)
    assert h.last_arrival == 5_000.0
    assert h.lag() == 1.0
    scenario_time[0] += 60.0
    assert h.quiet_for() == 60.0
    assert source_freshness([h]) == "quiet 60s"
    # A source added later runs on the same clock.
    later = _Source()
    engine.add_source(later)
    later.health.count(1, newest=5_059.5)
    assert source_freshness([later.health]) == "lag 0.5s"
