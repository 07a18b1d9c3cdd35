"""The event model shared by every layer: Event, EntityRef, Severity, Attack, Incident.

Pure data. Times are UTC epoch seconds (floats) taken from the source record, never
from the clock, so the same input always gives the same result.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple, cast

from ktriage.core.detect.identity import CONTROLLER_ACCOUNTS, CONTROLLER_USERS
from ktriage.core.text import _SHOWN_AS_IS, shown

SOURCES = ("audit", "falco", "tetragon", "kube", "ktriage")

# Times the parsers accept: from 1970 to before the year 3000 (epoch seconds). A
# record claiming a time outside is hostile or broken, and no formatter need
# handle year 10000 or NaN from a record.
MIN_TIME = 0.0
MAX_TIME = 32503680000.0  # 3000-01-01T00:00:00Z


class Severity(enum.IntEnum):
    INFO = 0
    LOW = 1
    MEDIUM = 2
    HIGH = 3
    CRITICAL = 4

    @property
    def label(self) -> str:
        return _SEVERITY_LABELS[self]

    @classmethod
    def parse(cls, text: str) -> Severity:
        return cls[text.strip().upper()]

    def raised(self, steps: int = 1) -> Severity:
        return Severity(min(int(self) + steps, int(Severity.CRITICAL)))


_SEVERITY_LABELS = {sev: sev.name.lower() for sev in Severity}


class EntityKind(enum.StrEnum):
    POD = "Pod"
    NODE = "Node"
    NAMESPACE = "Namespace"
    SERVICE_ACCOUNT = "ServiceAccount"
    USER = "User"
    CONTAINER = "Container"
    IMAGE = "Image"
    IP = "IP"


# Strong entities link signals into one incident; weak ones only add context
# (a busy node or namespace would otherwise glue unrelated incidents together).
STRONG_KINDS = frozenset(
    {
        EntityKind.POD,
        EntityKind.CONTAINER,
        EntityKind.SERVICE_ACCOUNT,
        EntityKind.USER,
        EntityKind.IP,
    }
)


# Identities that act for the cluster itself: they touch everything, so they never
# link incidents (they still show as entities). Of kube-system's service accounts
# only the control plane's controllers are such (CONTROLLER_USERS): any other is an
# identity like any other, and a stolen one links what it did.
SYSTEM_USER_PREFIXES = (
    "system:kube-",
    "system:node:",
    "system:apiserver",
    "system:volume-scheduler",
    "system:unsecured",
    "eks:",
    "aws:",
)
# Addresses shared by every pod never link: loopback, "not set", and the default
# in-cluster addresses of the API server (the `kubernetes` Service) and of the
# cluster DNS in kubeadm, kind and minikube (10.96.0.0/12) and EKS (10.100.0.0/16,
# 172.20.0.0/16) clusters.
NON_LINKING_IPS = frozenset(
    {
        "127.0.0.1",
        "::1",
        "",
        "<NA>",
        "10.96.0.1",
        "10.96.0.10",
        "10.100.0.1",
        "10.100.0.10",
        "172.20.0.1",
        "172.20.0.10",
    }
)


def is_system_identity(name: str) -> bool:
    return name.startswith(SYSTEM_USER_PREFIXES) or name in CONTROLLER_USERS


class EntityRef(NamedTuple):
    kind: str
    namespace: str
    name: str

    @property
    def strong(self) -> bool:
        """Whether this entity links signals into one incident."""
        kind = self[0]
        if kind in _ALWAYS_STRONG:
            # Pods and containers always link: no cache entry for each of them (short-
            # lived job pods are as many as their events).
            return True
        if kind not in STRONG_KINDS:
            return False
        known = _STRONG_CACHE.get(self)
        if known is None:
            known = _STRONG_CACHE[self] = self._links()
        return known

    def _links(self) -> bool:
        if self.kind not in STRONG_KINDS:
            return False
        if self.kind == EntityKind.USER:
            return not is_system_identity(self.name)
        if self.kind == EntityKind.SERVICE_ACCOUNT:
            return not (self.namespace == "kube-system" and self.name in CONTROLLER_ACCOUNTS)
        if self.kind == EntityKind.IP:
            return self.name not in NON_LINKING_IPS
        return True

    def short(self) -> str:
        """Human form: `ns/name` for namespaced things, `name` otherwise."""
        return f"{self.namespace}/{self.name}" if self.namespace else self.name

    def as_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "namespace": self.namespace, "name": self.name}


# Keyed by the EntityRef itself (a tuple equal to, and hashing as, its plain key
# tuple): no second tuple per entity.
_ENTITY_CACHE: dict[tuple[str, str, str], EntityRef] = {}
# Whether a user, service account or address links (they take a look at the name).
_STRONG_CACHE: dict[EntityRef, bool] = {}
_ALWAYS_STRONG = frozenset({EntityKind.POD, EntityKind.CONTAINER})


# Kinds as plain strings, one object each: str() of an EntityKind makes a new string
# every time, which a new entity would keep.
_KIND_TEXT: dict[str, str] = {k: str(k) for k in EntityKind}
# Namespace names, one object each for the entities that name them (a decoded
# record's namespace is a new string every time). Bounded: sharing, not meaning.
_NAMESPACE_TEXT: dict[str, str] = {}
_NAMESPACE_TEXT_MAX = 50_000


def _shared_namespace(ns: str) -> str:
    if not ns:
        return ns
    shared = _NAMESPACE_TEXT.get(ns)
    if shared is None:
        if len(_NAMESPACE_TEXT) >= _NAMESPACE_TEXT_MAX:
            _NAMESPACE_TEXT.clear()
        shared = _NAMESPACE_TEXT[ns] = ns
    return shared


def entity(kind: str, namespace: str | None, name: str) -> EntityRef:
    """Interned EntityRef: millions of events share a few thousand entities."""
    key = (_KIND_TEXT.get(kind) or str(kind), namespace or "", name)
    ref = _ENTITY_CACHE.get(key)
    if ref is None:
        if len(_ENTITY_CACHE) > 500_000:
            _ENTITY_CACHE.clear()
            _STRONG_CACHE.clear()
        ref = EntityRef(key[0], _shared_namespace(key[1]), name)
        _ENTITY_CACHE[ref] = ref
    return ref


def unshared_entity(kind: str, namespace: str | None, name: str) -> EntityRef:
    """An EntityRef kept out of the interning table (its kind and namespace strings are
    still shared): for entities a parser shares itself, per container, and that are
    most often seen in one event only (short-lived job pods and their containers). In
    the table each would cost ~250 bytes (entry, ref, name) for as long as it lasts."""
    return EntityRef(_KIND_TEXT.get(kind) or str(kind), _shared_namespace(namespace or ""), name)


class Attack(NamedTuple):
    """A MITRE ATT&CK (containers matrix) tactic and technique."""

    tactic: str  # e.g. "execution"
    technique: str  # e.g. "T1609"
    name: str = ""  # e.g. "Container Administration Command"


class RawRef(NamedTuple):
    """Where the raw record lives: an archive id, a byte offset and a length."""

    archive: int
    offset: int
    length: int


@dataclass(slots=True, eq=False)
class Event:
    """One normalized observation. `summary` is plain text, never markup."""

    time: float
    source: str
    ref: str
    kind: str
    severity: Severity
    summary: str
    entities: tuple[EntityRef, ...] = ()
    attack: Attack | None = None
    signal: bool = False
    # Short phrase for incident titles ("Shell", "Miner download"); signals only.
    label: str = ""
    raw: RawRef | None = None
    # Small raw records (actions, pod-state changes) may be kept inline instead.
    raw_inline: dict[str, Any] | None = None
    # Set when a suppression rule matched: the event stays visible as context.
    suppressed_by: str = ""
    # Explicit incident link (actions taken on an incident); "" when none.
    incident_hint: str = ""
    id: int = 0

    @property
    def dt(self) -> datetime:
        return to_datetime(self.time)

    @property
    def key(self) -> tuple[str, str]:
        """Identity used for de-duplication across reconnects and replays."""
        return (self.source, self.ref)

    def first(self, kind: str) -> EntityRef | None:
        for e in self.entities:
            if e.kind == kind:
                return e
        return None

    def as_dict(self) -> dict[str, Any]:
        """The stable `replay --json` form of one timeline entry (text as shown:
        secrets redacted, hidden characters escaped). A report holds thousands: a
        ref of hex digits and dashes (a UUID, a hash) is taken as it is (it holds
        nothing to redact or escape), and the texts are shown without the cache of
        short texts (a report shows each once)."""
        # The slots read directly (a CompactEvent's properties are a call each), the
        # properties only for texts an event shed.
        ref = _REF_SLOT.__get__(self, Event)
        if ref is None:
            ref = self.ref
        summary = _SUMMARY_SLOT.__get__(self, Event)
        if summary is None:
            summary = self.summary
        kind = self.kind
        ts = self.time
        as_is = _SHOWN_AS_IS  # (shown's own first test, without a call per text)
        # iso's common case, inlined: a time of a second already written out.
        head = None
        if type(ts) is float and 0.0 <= ts < MAX_TIME:
            second = int(ts)
            micros = round((ts - second) * 1e6)
            if micros < 1_000_000:
                head = _SECOND_TEXT.get(second)
        return {
            "source": self.source,
            "ref": ref
            if type(ref) is str and ref.isascii() and not ref.encode().translate(None, _HEX_BYTES)
            else shown(ref),
            "time": iso(ts) if head is None else f"{head}.{micros:06d}Z",
            "kind": kind if type(kind) is str and kind in as_is else shown(kind),
            "severity": _SEVERITY_LABELS[self.severity],
            "summary": summary
            if type(summary) is str and summary in as_is
            else shown(summary, cache=False),
        }


# Text of only these characters is its own `shown` form: every pattern redaction
# looks for holds a character that is not one of them, and none needs an escape.
_HEX_BYTES = b"0123456789abcdefABCDEF-"


# A raw reference packed into one int: archive << 60 | offset << 24 | length. One
# int costs a third of a RawRef tuple and its two ints, for every line replayed.
_OFFSET_BITS = 36
_LENGTH_BITS = 24
_LENGTH_MASK = (1 << _LENGTH_BITS) - 1
_OFFSET_MASK = (1 << _OFFSET_BITS) - 1
_ARCHIVE_SHIFT = _OFFSET_BITS + _LENGTH_BITS


RAW_PACK_SHIFTS = (_ARCHIVE_SHIFT, _LENGTH_BITS)  # (archive, offset) bit positions
RAW_PACK_OFFSET_LIMIT = 1 << _OFFSET_BITS  # offsets below this pack (lengths of lines always do)


def pack_raw(archive: int, offset: int, length: int) -> int | RawRef:
    """The compact form of RawRef(archive, offset, length) that CompactEvent keeps
    (the RawRef itself when the numbers do not fit)."""
    if 0 <= offset <= _OFFSET_MASK and 0 <= length <= _LENGTH_MASK and archive >= 0:
        return archive << _ARCHIVE_SHIFT | offset << _LENGTH_BITS | length
    return RawRef(archive, offset, length)


_RAW_SLOT = Event.__dict__["raw"]  # the slot that holds Event.raw


def _compact_raw(ev: Event) -> RawRef | None:
    value = _RAW_SLOT.__get__(ev, Event)
    if type(value) is int:
        return RawRef(
            value >> _ARCHIVE_SHIFT, value >> _LENGTH_BITS & _OFFSET_MASK, value & _LENGTH_MASK
        )
    return cast("RawRef | None", value)


_REF_SLOT = Event.__dict__["ref"]
_SUMMARY_SLOT = Event.__dict__["summary"]
_ENTITIES_SLOT = Event.__dict__["entities"]
# What is built again from an event's raw line: (ref, summary, entities).
Derived = tuple[str, str, tuple[EntityRef, ...]]
# Reads an event's raw line again and builds its (ref, summary, entities) as the parser
# did, or None when the line is not there any more (set by core/ingest.py, which knows
# the parsers; the model does not import them).
derive_text: Callable[[CompactEvent], Derived | None] | None = None
# The texts derived lately, by packed raw reference: a pane repainting the same rows
# reads the same events again and again.
_DERIVED: dict[int, Derived] = {}
_DERIVED_MAX = 4096
UNREADABLE_SUMMARY = "(raw record no longer readable)"
# Sources whose plain events' entities are their parser's alone (no detection adds
# one after the event is built): a stored event of these that shed its texts may shed
# its entities too (see EventStore), built again from its line with the texts.
DERIVED_ENTITY_SOURCES = frozenset({"tetragon"})


def _derived(ev: CompactEvent) -> Derived:
    key = _RAW_SLOT.__get__(ev, Event)
    found = _DERIVED.get(key) if type(key) is int else None
    if found is not None:
        return found
    texts = derive_text(ev) if derive_text is not None else None
    if texts is None:
        # Never raises: a file removed or rewritten under a replay leaves a plain word
        # (and no entities).
        texts = (f"unreadable:{key}", UNREADABLE_SUMMARY, ())
    if type(key) is int:
        if len(_DERIVED) >= _DERIVED_MAX:
            _DERIVED.clear()
        _DERIVED[key] = texts
    return texts


def _compact_ref(ev: Event) -> str:
    value = _REF_SLOT.__get__(ev, Event)
    return value if value is not None else _derived(cast("CompactEvent", ev))[0]


def _compact_summary(ev: Event) -> str:
    value = _SUMMARY_SLOT.__get__(ev, Event)
    return value if value is not None else _derived(cast("CompactEvent", ev))[1]


class CompactEvent(Event):
    """An Event that may keep its raw reference packed (see pack_raw): reading `raw`
    gives a RawRef as for any Event. Parsers build these; a replay holds millions.

    A plain event read from a line of a replayed file may also shed its `ref` and
    `summary` (see `shed`): they are built again from that line when read, the same
    strings as the parser built, and most of a replay's events are never read."""

    __slots__ = ()
    raw = property(_compact_raw, _RAW_SLOT.__set__)
    ref = property(_compact_ref, _REF_SLOT.__set__)
    summary = property(_compact_summary, _SUMMARY_SLOT.__set__)

    def shed(self, ref: str, summary: str) -> None:
        """Drop `ref` and `summary` when they are still the parser's own (the strings
        given): anything that changed either keeps them."""
        if _REF_SLOT.__get__(self, Event) is ref and _SUMMARY_SLOT.__get__(self, Event) is summary:
            _REF_SLOT.__set__(self, None)
            _SUMMARY_SLOT.__set__(self, None)

    @property
    def shed_text(self) -> bool:
        """Whether ref and summary are built again from the raw line when read."""
        return _SUMMARY_SLOT.__get__(self, Event) is None


def _derived_entities(ev: Event) -> tuple[EntityRef, ...]:
    value = _ENTITIES_SLOT.__get__(ev, Event)
    return value if value is not None else _derived(cast("CompactEvent", ev))[2]


class ShedEvent(CompactEvent):
    """A stored event read back from the store's columns (see EventStore) that shed its
    entities as well as its texts: they are built again from its raw line when read,
    with the texts. Parsers never build these (reading `entities` of a CompactEvent
    stays a plain slot read on the hot path)."""

    __slots__ = ()
    entities = property(_derived_entities, _ENTITIES_SLOT.__set__)


@dataclass(slots=True)
class Incident:
    """A connected component of signals plus the context attached to it."""

    id: str
    severity: Severity
    title: str
    first_seen: float
    last_seen: float
    first_signal: float
    tactics: tuple[str, ...]
    entities: tuple[EntityRef, ...]
    # (time, event id) of signals and context, in time order. Shared with the
    # correlator, which keeps it sorted; read it, do not change it.
    timeline: list[tuple[float, int]] = field(default_factory=list)
    signal_count: int = 0
    counts_by_source: dict[str, int] = field(default_factory=dict)
    # Bumped every time the incident changes; the UI uses it to mark updates.
    revision: int = 0
    # Set when the severity went up since the previous revision.
    escalated: bool = False
    # The kube context it was seen in when several clusters are watched; "" with one.
    cluster: str = ""

    @property
    def event_count(self) -> int:
        return len(self.timeline)


def iso(ts: float) -> str:
    """RFC 3339 with microseconds and a Z, as Kubernetes writes it; for a value no
    calendar holds (NaN, infinite, beyond year 9999), a plain phrase saying so.

    The calendar of each second is worked out once (a report's events share few
    seconds); the microseconds are rounded as `datetime.fromtimestamp` rounds them
    (half to even, on the float's own value)."""
    if type(ts) is not float or not 0.0 <= ts < MAX_TIME:
        try:
            return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        except (OverflowError, ValueError, OSError, TypeError):
            return bad_time(ts)
    second = int(ts)
    micros = round((ts - second) * 1e6)  # (the subtraction is exact, as modf's)
    if micros >= 1_000_000:
        micros -= 1_000_000
        second += 1
    head = _SECOND_TEXT.get(second)
    if head is None:
        if len(_SECOND_TEXT) >= _SECOND_TEXT_MAX:
            _SECOND_TEXT.clear()
        head = _SECOND_TEXT[second] = datetime.fromtimestamp(second, UTC).strftime(
            "%Y-%m-%dT%H:%M:%S"
        )
    return f"{head}.{micros:06d}Z"


# "YYYY-MM-DDTHH:MM:SS" of whole epoch seconds (see iso). Bounded: it only spares work.
_SECOND_TEXT: dict[int, str] = {}
_SECOND_TEXT_MAX = 100_000


def bad_time(ts: object) -> str:
    """What a formatter shows for a time no calendar holds."""
    try:
        shown = f"{float(ts):.6g}"  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        shown = "?"
    return f"(time out of range: {shown})"


def to_datetime(ts: float) -> datetime:
    """The UTC datetime of epoch seconds, held to what datetime can represent."""
    try:
        return datetime.fromtimestamp(ts, UTC)
    except (OverflowError, ValueError, OSError, TypeError):
        if isinstance(ts, int | float) and ts < 0:
            return datetime.min.replace(tzinfo=UTC)
        return datetime.max.replace(tzinfo=UTC)


def parse_time(value: Any) -> float | None:
    """Parse the timestamps found in the wild into epoch seconds (UTC).

    Accepts RFC 3339 with any number of fractional digits (Falco writes
    nanoseconds), `Z` or an offset, a space instead of `T` (Panther exports),
    and integers in seconds, milliseconds or nanoseconds since the epoch.
    Returns None when the value is not a time, or one outside MIN_TIME..MAX_TIME
    (`time_out_of_range` tells the two apart).
    """
    t = _parse_time(value)
    return t if t is not None and MIN_TIME <= t < MAX_TIME else None


def time_out_of_range(value: Any) -> bool:
    """Whether a value is written as a time, but one parsers refuse as out of range."""
    t = _parse_time(value)
    return t is not None and not MIN_TIME <= t < MAX_TIME


def _parse_time(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        try:
            v = float(value)
        except OverflowError:  # an integer beyond any float
            return float("inf")
        if v != v:  # NaN
            return None
        if v > 1e17:  # nanoseconds
            return v / 1e9
        if v > 1e14:  # microseconds
            return v / 1e6
        if v > 1e11:  # milliseconds
            return v / 1e3
        # Zero is "not set"; a negative time is one out of range.
        return v if v != 0 else None
    if not isinstance(value, str) or len(value) < 10:
        return None
    text = value.strip()
    tz = 0.0
    if text.endswith(("Z", "z")):
        text = text[:-1]
    else:
        # A trailing +hh:mm / -hhmm offset after the time part.
        for i in range(len(text) - 1, 9, -1):
            c = text[i]
            if c in "+-":
                off = text[i + 1 :].replace(":", "")
                if len(off) == 4 and off.isdigit():
                    sign = 1 if c == "+" else -1
                    tz = sign * (int(off[:2]) * 3600 + int(off[2:]) * 60)
                    text = text[:i]
                break
            if c in "T ":
                break
    frac = 0.0
    if "." in text:
        text, _, digits = text.partition(".")
        if not digits.isdigit():
            return None
        frac = int(digits[:9].ljust(9, "0")) / 1e9
    text = text.replace(" ", "T")
    try:
        base = datetime.strptime(text, "%Y-%m-%dT%H:%M:%S")
    except ValueError:
        try:
            base = datetime.strptime(text, "%Y-%m-%d")
        except ValueError:
            return None
    return base.replace(tzinfo=UTC).timestamp() + frac - tz
