"""Parsers: one module per source, each turning one record into Events.

Shared here: the Skip reason a parser raises for an unusable record, a fast
timestamp reader, and small text helpers.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import NamedTuple

try:
    # CPython's own BLAKE2: `hashlib` would load OpenSSL first (3 ms of every start).
    from _blake2 import blake2b as blake2b
except ImportError:  # another interpreter
    from hashlib import blake2b as blake2b

from ktriage.core.model import (
    MAX_TIME,
    MIN_TIME,
    EntityKind,
    EntityRef,
    entity,
    parse_time,
    time_out_of_range,
)
from ktriage.core.redact import redact_text
from ktriage.core.text import clip, printable


class Skip(NamedTuple):
    """Why a record was not used: a stable short code and one plain sentence."""

    reason: str
    detail: str = ""


class SkipRecord(Exception):
    """Raised by a parser for a record it cannot use."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(detail or reason)
        self.skip = Skip(reason, detail)


# "YYYY-MM-DDTHH:MM:SS" -> epoch seconds. Lines of one stream share few distinct
# seconds, so the slow calendar arithmetic runs once per second of input.
_SECOND_CACHE: dict[str, float] = {}


def to_epoch(value: object) -> float | None:
    """Epoch seconds (UTC) from the timestamp forms found in the wild, else None."""
    if type(value) is not str:
        return parse_time(value)
    if len(value) < 20 or value[10] not in "T ":
        return parse_time(value)
    head = value[:19]
    base = _SECOND_CACHE.get(head)
    if base is None:
        base = _civil_seconds(head)
        if base is None:
            return parse_time(value)
        if len(_SECOND_CACHE) > 100_000:
            _SECOND_CACHE.clear()
        _SECOND_CACHE[head] = base
    tail = value[19:]
    last = tail[-1]
    if last == "Z" or last == "z":
        tail = tail[:-1]
    elif len(tail) >= 5 and (tail[-5] in "+-" or tail[-6:-5] in ("+", "-")):
        return parse_time(value)
    if not tail:
        return base
    if tail[0] == "." and tail[1:].isdigit():
        return base + float(tail[:10])
    return parse_time(value)


def _civil_seconds(head: str) -> float | None:
    """`YYYY-MM-DDTHH:MM:SS` (or a space for the T) as UTC epoch seconds."""
    digits = head[0:4] + head[5:7] + head[8:10] + head[11:13] + head[14:16] + head[17:19]
    if (
        head[4] != "-"
        or head[7] != "-"
        or head[13] != ":"
        or head[16] != ":"
        or not digits.isascii()
        or not digits.isdigit()
    ):
        return None
    try:
        dt = datetime(
            int(head[0:4]),
            int(head[5:7]),
            int(head[8:10]),
            int(head[11:13]),
            int(head[14:16]),
            int(head[17:19]),
            tzinfo=UTC,
        )
    except ValueError:
        return None
    t = dt.timestamp()
    # Out of range: parse_time refuses it (a fraction added later stays below year 3000).
    return t if MIN_TIME <= t < MAX_TIME - 1 else None


def short_hash(data: bytes) -> str:
    """A stable 16-hex-digit id for records that carry none."""
    return blake2b(data, digest_size=8).hexdigest()


def plain(text: str, width: int = 300) -> str:
    """Untrusted text made safe for a one-line summary: no controls, no credentials
    (redacted before it is cut, so no half of a credential is kept)."""
    return clip(printable(redact_text(text)), width)


def clipped_value(value: object, width: int = 60) -> str:
    """A record's value quoted into a skip detail: a string in quotes, anything else
    as Python shows it; redacted and escaped before it is cut, like `plain`."""
    if isinstance(value, str):
        return '"' + plain(value, width) + '"'
    return plain(repr(value), width)


def identity(username: str) -> EntityRef:
    """`system:serviceaccount:NS:SA` is a ServiceAccount; anyone else a User."""
    if username.startswith("system:serviceaccount:"):
        parts = username.split(":", 3)
        if len(parts) == 4 and parts[2] and parts[3]:
            return entity(EntityKind.SERVICE_ACCOUNT, parts[2], parts[3])
    return entity(EntityKind.USER, "", username)


def short_container_id(cid: str) -> str:
    """`containerd://0123…` / `docker://0123…` -> the 12-char short id Falco prints."""
    _, sep, rest = cid.partition("://")
    return (rest if sep else cid)[:12]


__all__ = [
    "Skip",
    "SkipRecord",
    "identity",
    "plain",
    "short_container_id",
    "short_hash",
    "time_out_of_range",
    "to_epoch",
]
