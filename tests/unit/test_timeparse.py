"""The fast RFC 3339 reader: the same value as `parse_time`/`datetime` on what the API
server writes, and a clear refusal (None, then `parse_time`'s answer) on the rest."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest

from ktriage.core.model import parse_time
from ktriage.core.timeparse import object_time, rfc3339_seconds


def strptime_seconds(text: str) -> float:
    base = datetime.strptime(text[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
    return base.timestamp()


@pytest.mark.parametrize(
    "text",
    [
        "2026-01-02T03:04:05Z",
        "1970-01-01T00:00:00Z",
        "2024-02-29T23:59:59Z",
        "2999-12-31T23:59:59Z",
        "2026-06-30T12:00:00.5Z",
        "2026-06-30T12:00:00.123456Z",
        "2026-06-30T12:00:00.123456789Z",
        "2026-06-30T12:00:00+02:00",
        "2026-06-30T12:00:00.25-05:30",
        "2026-06-30t12:00:00z",
    ],
)
def test_equals_parse_time_and_fromisoformat(text: str) -> None:
    fast = rfc3339_seconds(text)
    assert fast is not None
    assert fast == parse_time(text)
    if "." not in text and text[-1] in "Zz":
        assert fast == strptime_seconds(text.upper())
    if "." not in text or len(text.split(".")[1].rstrip("Zz").split("+")[0].split("-")[0]) == 6:
        # fromisoformat reads whole microseconds only.
        iso = datetime.fromisoformat(text.upper().replace("Z", "+00:00"))
        assert fast == pytest.approx(iso.timestamp(), abs=1e-6)


def test_random_valid_times_equal_parse_time() -> None:
    rng = random.Random(14)
    for _ in range(20_000):
        text = (
            f"{rng.randint(1970, 2999):04d}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
            f"T{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}"
        )
        if rng.random() < 0.3:
            text += "." + "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 9)))
        text += rng.choice(["Z", "+00:00", "+05:45", "-08:00"])
        assert rfc3339_seconds(text) == parse_time(text), text


@pytest.mark.parametrize(
    "text",
    [
        "2016-12-31T23:59:60Z",  # a leap second: datetime refuses it too
        "2026-13-01T00:00:00Z",  # month 13
        "2026-02-30T00:00:00Z",  # a day February does not have
        "2025-02-29T00:00:00Z",  # not a leap year
        "2026-01-01T24:00:00Z",
        "2026-01-01T00:60:00Z",
        "0000-01-01T00:00:00Z",  # year 0
        "1969-12-31T23:59:59Z",  # before the range
        "3000-01-01T00:00:00Z",  # past the range
        "99999-01-01T00:00:00Z",  # a huge year
        "9" * 400 + "-01-01T00:00:00Z",
        "٢٠٢٦-٠١-٠١T00:00:00Z",  # Arabic-Indic digits
        "２０２６-01-01T00:00:00Z",  # fullwidth digits
        "2026-01-01T00:00:00.1234567890Z",  # ten fraction digits
        "2026-01-01T00:00:00+24:00",
        "2026-01-01T00:00:00+99:99",
        "2026-01-01T00:00:00",  # no zone
        "2026-01-01 00:00:00Z",  # a space (another layout)
        " 2026-01-01T00:00:00Z",
        "2026-01-01T00:00:00Z\n",
        "",
    ],
)
def test_hostile_times_are_refused(text: str) -> None:
    assert rfc3339_seconds(text) is None
    # The fallback gives what parse_time gives (None, or its reading of another layout).
    assert object_time(text) == parse_time(text)


def test_hostile_out_of_range_and_unicode_fall_back_to_none() -> None:
    for text in ("3000-01-01T00:00:00Z", "٢٠٢٦-٠١-٠١T00:00:00Z", "2016-12-31T23:59:60Z"):
        assert object_time(text) is None


def test_fallback_reads_other_layouts_and_numbers() -> None:
    assert object_time("2026-01-01 00:00:00") == parse_time("2026-01-01 00:00:00") is not None
    assert object_time(1767225600) == 1767225600.0
    assert object_time(None) is None and object_time("") is None and object_time(0) is None


def test_hostile_many_distinct_times_keep_the_memo_bounded() -> None:
    from ktriage.core import timeparse

    for i in range(10_000):
        rfc3339_seconds(f"2026-01-01T00:{i // 60 % 60:02d}:{i % 60:02d}.{i:06d}Z")
    assert len(timeparse._MEMO) <= timeparse._MEMO_MAX
