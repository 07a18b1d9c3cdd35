"""What every audit detection module shares: turning an event into a signal, and a
few words about requests."""

from __future__ import annotations

import bisect

from ktriage.core.attack import attack_for
from ktriage.core.model import Event, Severity
from ktriage.core.parse import plain
from ktriage.core.parse.audit import AuditRecord

RESPONSE_STAGES = frozenset({"ResponseStarted", "ResponseComplete", "Panic", ""})
WRITE_VERBS = frozenset({"create", "update", "patch"})
READ_VERBS = frozenset({"get", "list", "watch"})
DELETE_VERBS = frozenset({"delete", "deletecollection"})
WORKLOADS = frozenset(
    {
        "deployments",
        "daemonsets",
        "statefulsets",
        "replicasets",
        "jobs",
        "cronjobs",
        "replicationcontrollers",
    }
)


def signal(
    ev: Event,
    kind: str,
    severity: Severity,
    label: str,
    summary: str,
    technique: str,
    tactic: str | None = None,
    *,
    request: AuditRecord | None = None,
) -> None:
    """Make `ev` a signal; of a `request` the server denied, an attempt: low, its
    summary saying `(denied <code>)`."""
    if request is not None and denied(request):
        severity, summary = Severity.LOW, f"{summary} (denied {request.code})"
    ev.kind = kind
    ev.severity = severity
    # A refused request is an attempt: the incident's title must not claim success.
    ev.label = f"{label} attempt (denied)" if "(denied " in summary else label
    ev.summary = plain(summary)
    ev.attack = attack_for(technique, tactic)
    ev.signal = True


def denied(rec: AuditRecord) -> bool:
    return rec.code >= 400


def answered(rec: AuditRecord) -> bool:
    """A response stage (or a record with no stage): what counts once per request."""
    return (rec.stage or "") in RESPONSE_STAGES


def past(verb: str) -> str:
    """create -> created, patch -> patched."""
    return f"{verb}d" if verb.endswith("e") else f"{verb}ed"


def object_name(oref_name: str | None, obj: object) -> str:
    """The object's name from its reference, else from the request's metadata."""
    if oref_name:
        return oref_name
    meta = obj.get("metadata") if isinstance(obj, dict) else None
    name = meta.get("name") if isinstance(meta, dict) else None
    return name if isinstance(name, str) else ""


_MAX_TIMES = 2000


class Window:
    """Times (and distinct keys) of one identity's requests of one sort, to find a
    burst: `count` distinct keys within `window` seconds. Order-tolerant within a few
    windows; one burst is reported once while it lasts."""

    __slots__ = ("keys", "open_until", "times")

    def __init__(self) -> None:
        self.times: list[tuple[float, str]] = []
        self.keys: dict[str, None] = {}
        self.open_until = -1.0

    def add(self, t: float, key: str, count: int, window: float) -> tuple[float, float] | None:
        """Add one request; (first, last) of a new burst it completes, else None."""
        bisect.insort(self.times, (t, key))
        newest = self.times[-1][0]
        if self.times[0][0] < newest - 5 * window:
            del self.times[: bisect.bisect(self.times, (newest - 5 * window, ""))]
        if len(self.times) > _MAX_TIMES:
            del self.times[: len(self.times) - _MAX_TIMES]
        if t <= self.open_until:
            self.open_until = max(self.open_until, t + window)
            return None
        # The distinct keys in the window ending at t.
        lo = bisect.bisect_left(self.times, (t - window, ""))
        hi = bisect.bisect_right(self.times, (t, "\U0010ffff"))
        seen: dict[str, float] = {}
        for when, k in self.times[lo:hi]:
            if when > self.open_until:
                seen.setdefault(k, when)
        if len(seen) >= count:
            self.keys = dict.fromkeys(list(seen)[:6])
            first = min(seen.values())
            self.open_until = t + window
            return first, t
        return None
