"""Kubernetes time formats: metav1.Time (seconds), MicroTime (audit), RFC 3339 nanos (logs)."""

from __future__ import annotations

from datetime import UTC, datetime


def rfc3339(t: float) -> str:
    """metav1.Time: `2026-01-02T03:04:05Z`."""
    return datetime.fromtimestamp(int(t), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def rfc3339_micro(t: float) -> str:
    """metav1.MicroTime, as audit events carry it: `2026-01-02T03:04:05.123456Z`."""
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def rfc3339_nano(t: float) -> str:
    """The timestamp kubelet puts before each log line with `timestamps=true`."""
    seconds = int(t)
    nanos = round((t - seconds) * 1e9)
    if nanos >= 1_000_000_000:
        seconds, nanos = seconds + 1, nanos - 1_000_000_000
    return _with_nanos(seconds, nanos)


def rfc3339_ns(ns: int) -> str:
    """RFC 3339 with nanoseconds from whole nanoseconds, as Falco and Tetragon write it."""
    return _with_nanos(*divmod(ns, 1_000_000_000))


def _with_nanos(seconds: int, nanos: int) -> str:
    base = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{base}.{nanos:09d}Z"


def parse_rfc3339(text: str) -> float:
    """Seconds since the epoch from an RFC 3339 time (with or without fractions)."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def parse_rfc3339_or_none(text: str | None) -> float | None:
    """Like `parse_rfc3339`, but None for an empty or malformed time."""
    if not text:
        return None
    try:
        return parse_rfc3339(text)
    except ValueError:
        return None


def minutes_seconds(seconds: int) -> str:
    """`40s`, `5m0s`: whole seconds as Go prints a duration under an hour (kubelet back-off)."""
    minutes, secs = divmod(seconds, 60)
    if minutes:
        return f"{minutes}m{secs}s"
    return f"{secs}s"


def human_duration(seconds: float) -> str:
    """kubectl's AGE column (k8s.io/apimachinery/pkg/util/duration.HumanDuration)."""
    if seconds < -1:
        return "<invalid>"
    if seconds < 0:
        return "0s"
    s = int(seconds)
    if s < 120:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        rest = s % 60
        return f"{minutes}m" if rest == 0 else f"{minutes}m{rest}s"
    if minutes < 180:
        return f"{minutes}m"
    hours = s // 3600
    if hours < 8:
        rest = (s % 3600) // 60
        return f"{hours}h" if rest == 0 else f"{hours}h{rest}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 192:
        rest = hours % 24
        return f"{hours // 24}d" if rest == 0 else f"{hours // 24}d{rest}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        days = (hours // 24) % 365
        return f"{hours // 24 // 365}y" if days == 0 else f"{hours // 24 // 365}y{days}d"
    return f"{hours // 24 // 365}y"
