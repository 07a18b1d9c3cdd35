"""Resuming a sensor pod's log without duplicates: the timestamp the server puts before
each line, read strictly (anything else is no time at all), and the position that
drops what was already read when a stream is opened again."""

from __future__ import annotations

import pytest

from ktriage.sources.podlogs import _Position, _ts_ns

SECOND = 1_000_000_000


def test_a_server_timestamp_is_read_to_the_nanosecond() -> None:
    assert _ts_ns(b"2026-01-01T00:00:01.123456789Z") == 1_767_225_601 * SECOND + 123_456_789
    # Fewer digits are a fraction all the same; none at all is the whole second.
    assert _ts_ns(b"2026-01-01T00:00:01.5Z") == 1_767_225_601 * SECOND + 500_000_000
    assert _ts_ns(b"2026-01-01T00:00:01Z") == 1_767_225_601 * SECOND


@pytest.mark.parametrize(
    "stamp",
    [
        b"\xff\xfe2026-01-01T00:00:01Z",  # not ASCII
        b"2026-01-01T00:00:01",  # no zone
        b"2026-01-01T00:00:01+02:00",  # another zone than the server's Z
        b"2026-13-45T99:00:01Z",  # no such date
        b"2026-01-01T00:00:01.12a4Z",  # a fraction with a letter in it
        b'{"rule":',  # a line without a timestamp at all
    ],
)
def test_hostile_timestamps_are_no_time_at_all(stamp: bytes) -> None:
    assert _ts_ns(stamp) is None


def test_a_reopened_stream_gives_only_what_was_not_read() -> None:
    position = _Position()
    t = 1_767_225_601 * SECOND
    assert position.fresh(t, b"first")
    assert position.fresh(t, b"second, same nanosecond")
    # Opened again from that second: both come again and are dropped, a third is new.
    assert not position.fresh(t, b"first")
    assert not position.fresh(t, b"second, same nanosecond")
    assert position.fresh(t, b"third, same nanosecond")
    # Older lines are never given twice; a later one starts a new instant.
    assert not position.fresh(t - 1, b"older")
    assert position.fresh(t + 1, b"later")
    assert position.fresh(t + 1, b"first")  # the same text at another time is another line
