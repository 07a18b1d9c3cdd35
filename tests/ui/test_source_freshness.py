"""The status bar says how far behind a source is, or that it is quiet."""

from __future__ import annotations

from ktriage.engine import SourceHealth
from ktriage.ui.widgets.status_bar import QUIET_AFTER, source_freshness


def _health(arrived: float | None, newest: float | None) -> SourceHealth:
    h = SourceHealth(name="audit:/var/log/audit.log", kind="audit")
    h.last_arrival = arrived
    h.newest_event_time = newest
    return h


def test_a_flowing_source_shows_its_lag() -> None:
    h = _health(arrived=100.0, newest=1_000.0)
    assert source_freshness([h], lag_now=1_001.5, now=101.0) == "lag 1.5s"


def test_a_quiet_source_is_quiet_not_ever_more_behind() -> None:
    h = _health(arrived=100.0, newest=1_000.0)
    # Ten minutes without a new event: the newest event is ten minutes old, but
    # nothing is late.
    assert source_freshness([h], lag_now=1_600.0, now=700.0) == "quiet 10m"
    assert source_freshness([h], lag_now=1_000.0 + QUIET_AFTER, now=100.0 + QUIET_AFTER) == (
        f"quiet {QUIET_AFTER:.0f}s"
    )


def test_a_group_shows_the_lag_of_its_flowing_sources() -> None:
    flowing = _health(arrived=100.0, newest=1_000.0)
    quiet = _health(arrived=10.0, newest=900.0)
    assert source_freshness([quiet, flowing], lag_now=1_002.0, now=101.0) == "lag 2.0s"
    quieter = _health(arrived=5.0, newest=800.0)
    assert source_freshness([quiet, quieter], lag_now=1_002.0, now=101.0) == "quiet 91s"


def test_nothing_is_said_before_the_first_event() -> None:
    assert source_freshness([_health(arrived=None, newest=None)], lag_now=5.0, now=5.0) == ""


def test_counting_events_marks_their_arrival() -> None:
    h = SourceHealth(name="falco", kind="falco")
    assert h.quiet_for() is None
    h.count(0)
    assert h.quiet_for() is None
    h.count(3, newest=1_000.0)
    quiet = h.quiet_for()
    assert quiet is not None and quiet < 1.0
    assert h.newest_event_time == 1_000.0
