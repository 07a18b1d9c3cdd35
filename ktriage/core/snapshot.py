"""Incident → snapshot, as Markdown or plain text.

Every untrusted string is written so it cannot inject Markdown or HTML (as it is
when it holds nothing Markdown reads, else in a code span: plain text pasted
from it reads as the original, with no backslashes), every raw record is
redacted, and files are written readable by the user alone.

Sections: a summary table, Summary, Initial access (the first event, the entry
request: actor, source IP, user agent), Workflow (status, owner, notes),
Containment, Indicators (core/indicators.py), Entities, Blast radius (when one was
computed), Timeline (with the responders' changes), Actions taken, Evidence and
the key raw events that tell the story.

Actions taken by ktriage are events of source `ktriage` whose `raw_inline`
holds `action`, `target`, `actor`, `result` ("ok", "failed", "unchanged",
"undone"), `error`, `undoable`, for evidence `files` (a list of
`{"path", "sha256", "bytes"}`) and `containment`, the facts the action checked
(core/containment.py): the Containment section and the time to contain come
from those facts, never from an action's name.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict, Unpack

import orjson

from ktriage.core import indicators
from ktriage.core.allowlist import EXPECTED_PREFIX
from ktriage.core.containment import (
    TIME_TO_CONTAIN_DEFINITION,
    Containment,
    PodLookup,
    action_result,
    containment_state,
)
from ktriage.core.model import EntityKind, Event, Incident, iso
from ktriage.core.redact import redact
from ktriage.core.text import shown
from ktriage.core.workflow import NOTE, Change, IncidentWork

if TYPE_CHECKING:
    from ktriage.core.blast import BlastResult

RawLoader = Callable[[Event], Any]

MARKDOWN = "markdown"
TEXT = "text"
FORMATS = (MARKDOWN, TEXT)
SUFFIXES = {MARKDOWN: ".md", TEXT: ".txt"}

# Key raw events written at most (the first signal of each source, every identity
# change and the incident's entry come first; then the most severe).
MAX_APPENDIX = 40
# Rows of each Containment table, and next steps, written at most.
MAX_CONTAINMENT_ROWS = 200
MAX_NEXT_STEPS = 50
MAX_TIMELINE_ROWS = 2_000
MAX_NOTES = 200
# Signals that change who can do what: each one is in the key raw events.
IDENTITY_CHANGE_KINDS = frozenset(
    {
        "token-request",
        "rbac-binding",
        "rbac-system-change",
        "impersonation",
        "system-credential-outside",
        "csr-create",
        "csr-approval",
        "sa-token-read",
        "kubelet-credentials-read",
        "anonymous-allowed",
    }
)
# Events ktriage attaches for the responders' workflow (core/workflow.py): the
# snapshot writes the workflow's own history instead.
WORKFLOW_KIND_PREFIX = "workflow-"

# Text written as it is in Markdown: letters, digits, spaces, the punctuation no
# Markdown or HTML construct starts with mid-line, and any non-ASCII character
# (`shown` has already escaped the invisible ones). Anything else goes in a code
# span, which Markdown shows verbatim and which reads well pasted as plain text.
_PLAIN = re.compile(r"[A-Za-z0-9 .,:;/()'\"=+?%\-\u0080-\U0010ffff]*")
_AUTOLINK = re.compile(r"://|www\.", re.IGNORECASE)


def code_span(text: str, *, cell: bool = False) -> str:
    """`text` as one Markdown code span: delimited by one backtick more than its
    longest run of backticks, padded when it starts or ends with one. In a table
    cell `|` is escaped (GFM splits cells before reading code spans, and shows
    `\\|` in a cell's code span as `|`)."""
    if not text:
        return ""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    ticks = "`" * (longest + 1)
    if cell:
        text = text.replace("|", "\\|")
    pad = " " if text[0] in "` " or text[-1] in "` " else ""
    return f"{ticks}{pad}{text}{pad}{ticks}"


def md_escape(text: object, *, cell: bool = False) -> str:
    """Untrusted text for Markdown, on one line: as it is when it holds nothing
    Markdown or HTML would read, else in a code span (no markup, no HTML, no link,
    no line break, no control character either way). `cell=True` in a table."""
    plain = shown(text)
    if _PLAIN.fullmatch(plain) and not _AUTOLINK.search(plain):
        return plain
    return code_span(plain, cell=cell)


class Safe(str):
    """Text ktriage composed itself (times, numbers, escaped parts): written as is."""

    __slots__ = ()


class _Out:
    """One snapshot being written, as Markdown or as plain text: the sections call
    the same methods, and the format decides the syntax and the escaping."""

    def __init__(self, fmt: str) -> None:
        if fmt not in FORMATS:
            raise ValueError(f"unknown snapshot format {fmt!r} (use {', '.join(FORMATS)})")
        self.md = fmt == MARKDOWN
        self.lines: list[str] = []

    def add(self, line: str = "") -> None:
        self.lines.append(line)

    def esc(self, text: object, *, cell: bool = False) -> Safe:
        return Safe(md_escape(text, cell=cell) if self.md else shown(text))

    def _cell(self, value: str) -> str:
        return value if isinstance(value, Safe) else self.esc(value, cell=True)

    def bold(self, text: str) -> Safe:
        return Safe(f"**{text}**" if self.md and text else text)

    def heading(self, level: int, text: str) -> None:
        if self.md:
            self.add(f"{'#' * level} {text}")
        else:
            if level == 1:
                self.add(text)
                self.add("=" * min(len(text), 100))
            elif level == 2:
                self.add(text)
                self.add("-" * min(len(text), 100))
            else:
                self.add(f"[{text}]")
        self.add()

    def kv(self, rows: Sequence[tuple[str, str]]) -> None:
        """Two columns: a key ktriage names and a value (escaped unless Safe)."""
        if self.md:
            self.add("| | |")
            self.add("|---|---|")
            for key, value in rows:
                self.add(f"| {key} | {self._cell(value)} |")
        else:
            width = max((len(k) for k, _ in rows), default=0) + 2
            for key, value in rows:
                self.add(f"{key + ':':<{width}}{self._cell(value)}")
        self.add()

    def table(self, headers: Sequence[str], rows: Iterable[Sequence[str]]) -> None:
        if self.md:
            self.add("| " + " | ".join(headers) + " |")
            self.add("|" + "---|" * len(headers))
            for row in rows:
                self.add("| " + " | ".join(self._cell(v) for v in row) + " |")
            self.add()
            return
        cells = [[self._cell(v) for v in row] for row in rows]
        # Columns as wide as their widest value (at most 40); the last runs on.
        widths = [
            min(40, max([len(h), *(len(r[i]) for r in cells)])) for i, h in enumerate(headers[:-1])
        ]

        def line(values: Sequence[str]) -> str:
            head = "  ".join(f"{v:<{w}}" for v, w in zip(values[:-1], widths, strict=True))
            return f"{head}  {values[-1]}".rstrip()

        self.add(line(list(headers)))
        self.add(line(["-" * w for w in widths] + ["-" * len(headers[-1])]))
        for row in cells:
            self.add(line(row))
        self.add()

    def item(self, text: str, level: int = 0) -> None:
        self.add(f"{'  ' * level}- {text}")

    def code(self, body: str, lang: str = "", indent: str = "") -> None:
        """Verbatim lines (already made safe with `shown`)."""
        if self.md:
            fence = _fence(body)
            self.add(f"{indent}{fence}{lang}")
            for line in body.split("\n"):
                self.add(f"{indent}{line}")
            self.add(f"{indent}{fence}")
        else:
            for line in body.split("\n"):
                self.add(f"{indent}    {line}".rstrip())

    def text(self) -> str:
        return "\n".join(self.lines)


def duration(seconds: float) -> str:
    """`1h 02m`, `3m 05s`, `12s`."""
    if not -1e15 < seconds < 1e15:  # NaN or beyond any calendar
        return "?" if seconds != seconds or seconds < 0 else "∞"
    seconds = max(0, round(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    if h:
        return f"{h}h {m:02d}m"
    if m:
        return f"{m}m {s:02d}s"
    return f"{s}s"


def action_events(events: Sequence[Event]) -> list[Event]:
    return [e for e in events if e.source == "ktriage" and e.raw_inline is not None]


def time_to_contain(
    incident: Incident,
    events: Sequence[Event],
    pod_exists: PodLookup | None = None,
    *,
    state: Containment | None = None,
) -> float | None:
    """Seconds from the first signal until every pod of the incident was isolated
    effectively or gone and every identity that acted was revoked; None while it
    is not, or when the moment is not known."""
    if state is None:
        state = containment_state(incident, events, pod_exists)
    if state.contained_at is None:
        return None
    return max(0.0, state.contained_at - incident.first_signal)


def _time_to_contain_cell(o: _Out, ttc: float | None, state: Containment) -> Safe:
    if ttc is not None:
        return Safe(
            f"{duration(ttc)} (first signal until every pod is isolated or gone "
            "and every identity that acted is revoked)"
        )
    if state.contained:
        return Safe("contained; when is not known (a pod was found gone, with no record of when)")
    return Safe(f"not contained yet (open: {o.esc(state.open_words(), cell=True)})")


def _fence(text: str) -> str:
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    return "`" * max(3, longest + 1)


def _raw_of(ev: Event, raw_loader: RawLoader | None) -> Any:
    if ev.raw_inline is not None:
        return ev.raw_inline
    if raw_loader is None or ev.raw is None:
        return None
    try:
        return raw_loader(ev)
    except Exception:  # a raw record that cannot be read is "not available"
        return None


class RenderOptions(TypedDict, total=False):
    """What `render` takes besides the incident, its events and the raw loader."""

    generated_at: float | None
    pod_exists: PodLookup | None
    work: IncidentWork | None
    blast: BlastResult | None
    cluster: str


def render_markdown(
    incident: Incident,
    events: Sequence[Event],
    raw_loader: RawLoader | None = None,
    **options: Unpack[RenderOptions],
) -> str:
    """The whole snapshot as Markdown text. `pod_exists(namespace, name)` tells
    whether a pod exists now (True/False, None when not known): live, a deleted
    pod counts as contained. `work` is the responders' workflow of the incident,
    `blast` its blast radius when one was computed."""
    return render(incident, events, raw_loader, fmt=MARKDOWN, **options)


def render_text(
    incident: Incident,
    events: Sequence[Event],
    raw_loader: RawLoader | None = None,
    **options: Unpack[RenderOptions],
) -> str:
    """The snapshot as plain text, for a ticket system that renders no Markdown."""
    return render(incident, events, raw_loader, fmt=TEXT, **options)


def render(
    incident: Incident,
    events: Sequence[Event],
    raw_loader: RawLoader | None = None,
    *,
    fmt: str = MARKDOWN,
    generated_at: float | None = None,
    pod_exists: PodLookup | None = None,
    work: IncidentWork | None = None,
    blast: BlastResult | None = None,
    cluster: str = "",
) -> str:
    """The snapshot in `fmt` (MARKDOWN or TEXT)."""
    o = _Out(fmt)
    events = [e for e in events if not e.kind.startswith(WORKFLOW_KIND_PREFIX)]
    o.heading(1, f"{o.esc(incident.id)}: {o.esc(incident.title)}")
    signals = [e for e in events if e.signal]
    first_event = events[0].time if events else incident.first_seen
    state = containment_state(incident, events, pod_exists)
    ttc = time_to_contain(incident, events, state=state)
    counts = ", ".join(f"{src} {n}" for src, n in sorted(incident.counts_by_source.items()))
    tactics = ", ".join(t.replace("-", " ") for t in incident.tactics) or "none mapped"
    rows: list[tuple[str, str]] = [
        ("Severity", o.bold(incident.severity.label.upper())),
    ]
    # Several clusters watched: the incident's own, never the engine's summary of them.
    cluster = incident.cluster or cluster
    if cluster:
        rows.append(("Cluster", cluster))
    if work is not None:
        rows.append(("Status", _status_words(work)))
    rows += [
        ("First seen", Safe(iso(incident.first_seen))),
        ("Last seen", Safe(iso(incident.last_seen))),
        ("Time span", Safe(duration(incident.last_seen - incident.first_seen))),
        (
            "Time to detect",
            Safe(f"{duration(incident.first_signal - first_event)} (first event to first signal)"),
        ),
        ("Time to contain", _time_to_contain_cell(o, ttc, state)),
        (
            "Events",
            Safe(f"{len(events)} ({o.esc(counts, cell=True)}); {len(signals)} signals"),
        ),
        ("ATT&CK tactics", tactics),
    ]
    if generated_at is not None:
        rows.append(("Snapshot taken", Safe(iso(generated_at))))
    o.kv(rows)

    o.heading(2, "Summary")
    sev_first = sorted(signals, key=lambda e: (-e.severity, e.time))[:5]
    if sev_first:
        for ev in sev_first:
            o.item(f"{iso(ev.time)} {ev.severity.label.upper()}: {o.esc(ev.summary)}")
    else:
        o.item("No signals.")
    o.add()

    # The entry event is looked for once (it may read many raw records).
    entry = entry_event(events, raw_loader)
    _initial_access_section(o, events, entry)
    _workflow_section(o, work)
    _containment_section(o, incident, state, ttc)
    _indicators_section(o, events, raw_loader)

    o.heading(2, "Entities")
    for ent in incident.entities:
        o.item(f"{o.esc(ent.kind)}: {o.esc(ent.short())}")
    o.add()
    if incident.entities and o.md:
        # The same, verbatim in a code block: an IP or image copied into a ticket
        # as it is.
        plain_list = "\n".join(shown(f"{ent.kind}  {ent.short()}") for ent in incident.entities)
        o.add("Copyable:")
        o.add()
        o.code(plain_list, "text")
        o.add()

    _blast_section(o, blast)
    _timeline_section(o, events, work)

    o.heading(2, "Actions taken")
    actions = action_events(events)
    if not actions:
        o.add("No actions were taken.")
        o.add()
    else:
        o.table(
            ("Time (UTC)", "Who", "Action", "Target", "Result", "Detail"),
            (
                (
                    Safe(iso(ev.time)),
                    str((ev.raw_inline or {}).get("actor", "")),
                    str((ev.raw_inline or {}).get("action", ev.kind)),
                    str((ev.raw_inline or {}).get("target", "")),
                    action_result(ev),
                    str((ev.raw_inline or {}).get("error") or ev.summary),
                )
                for ev in actions
            ),
        )

    files = [f for ev in actions for f in (ev.raw_inline or {}).get("files", [])]
    o.heading(2, "Evidence")
    if not files:
        o.add("No evidence files were collected.")
        o.add()
    else:
        o.table(
            ("File", "Bytes", "SHA-256"),
            (
                (str(f.get("path", "")), Safe(str(int(f.get("bytes") or 0))),
                 str(f.get("sha256", "")))
                for f in files
                if isinstance(f, dict)
            ),
        )  # fmt: skip

    _key_events_section(o, incident, events, raw_loader, entry)
    return o.text()


def _status_words(work: IncidentWork) -> str:
    words = work.status + (f" ({work.reason})" if work.reason else "")
    if work.owner:
        words += f", owner {work.owner}"
    if work.acknowledged:
        words += f", acknowledged by {work.acknowledged_by}"
    return words


def entry_event(events: Sequence[Event], raw_loader: RawLoader | None) -> tuple[Event, Any] | None:
    """The event through which the incident came in: its first API request by an
    identity (audit), else its first event naming an identity, else its first event."""
    observed = [e for e in events if e.source != "ktriage"]
    for ev in observed[:5_000]:
        if ev.source == "audit":
            raw = _raw_of(ev, raw_loader)
            if isinstance(raw, dict) and isinstance(raw.get("user"), dict):
                return ev, raw
    for ev in observed[:5_000]:
        if ev.first(EntityKind.USER) or ev.first(EntityKind.SERVICE_ACCOUNT):
            return ev, _raw_of(ev, raw_loader)
    return (observed[0], _raw_of(observed[0], raw_loader)) if observed else None


def _initial_access_section(
    o: _Out, events: Sequence[Event], found: tuple[Event, Any] | None
) -> None:
    o.heading(2, "Initial access")
    observed = [e for e in events if e.source != "ktriage"]
    if not observed or found is None:
        o.add("No event was recorded.")
        o.add()
        return
    first = observed[0]
    ev, raw = found
    raw = raw if isinstance(raw, dict) else {}
    actor = ""
    user = raw.get("user")
    if isinstance(user, dict) and isinstance(user.get("username"), str):
        actor = user["username"]
    else:
        ident = ev.first(EntityKind.USER) or ev.first(EntityKind.SERVICE_ACCOUNT)
        actor = ident.short() if ident else ""
    imp = raw.get("impersonatedUser")
    if isinstance(imp, dict) and isinstance(imp.get("username"), str):
        actor += f" as {imp['username']}"
    ips = [ip for ip in raw.get("sourceIPs") or [] if isinstance(ip, str)][:4]
    if not ips:
        ips = [e.name for e in ev.entities if e.kind == EntityKind.IP][:4]
    agent = raw.get("userAgent") if isinstance(raw.get("userAgent"), str) else ""
    first_signal = next((e for e in observed if e.signal), None)
    rows: list[tuple[str, str]] = [
        (
            "First event",
            Safe(f"{iso(first.time)} {first.source}: {o.esc(first.summary, cell=True)}"),
        ),
    ]
    if ev is not first:
        rows.append(("Entry", Safe(f"{iso(ev.time)} {ev.source}: {o.esc(ev.summary, cell=True)}")))
    rows += [
        ("Actor", actor or Safe("not known")),
        ("Source IP", ", ".join(ips) if ips else Safe("not recorded")),
        ("User agent", agent or Safe("not recorded")),
    ]
    if first_signal is not None:
        rows.append(
            (
                "First signal",
                Safe(
                    f"{iso(first_signal.time)} {first_signal.source}: "
                    f"{o.esc(first_signal.summary, cell=True)}"
                ),
            )
        )
    o.kv(rows)


def _workflow_section(o: _Out, work: IncidentWork | None) -> None:
    o.heading(2, "Workflow")
    if work is None:
        o.add("No workflow was recorded for this incident.")
        o.add()
        return
    o.kv(
        [
            ("Status", work.status + (f" ({work.reason})" if work.reason else "")),
            ("Owner", work.owner or Safe("nobody yet")),
            (
                "Acknowledged",
                f"by {work.acknowledged_by}" if work.acknowledged else Safe("not yet"),
            ),
        ]
    )
    o.heading(3, "Notes")
    if not work.notes:
        o.add("No notes.")
    for note in work.notes[-MAX_NOTES:]:
        o.item(f"{iso(note.time)} {o.esc(note.actor)}: {o.esc(note.value)}")
    if len(work.notes) > MAX_NOTES:
        o.add(f"… {len(work.notes) - MAX_NOTES} earlier notes left out.")
    o.add()
    changes = [c for c in work.history if c.kind != NOTE]
    if changes:
        o.heading(3, "Changes")
        for change in changes[-MAX_NOTES:]:
            o.item(f"{iso(change.time)} {o.esc(change.actor)}: {o.esc(change.words())}")
        o.add()


def _indicators_section(o: _Out, events: Sequence[Event], raw_loader: RawLoader | None) -> None:
    o.heading(2, "Indicators")
    found = indicators.extract(events, raw_loader)
    if not found.items:
        o.add("None found in the incident's events.")
        o.add()
        return
    o.add(
        "Values seen in the incident's events (secrets redacted), with the first "
        "time each was seen and where: source and field."
    )
    o.add()
    for kind in indicators.KINDS:
        items = found.of_kind(kind)
        if not items:
            continue
        o.heading(3, indicators.KIND_TITLES[kind])
        o.table(
            ("Value", "Seen", "First seen (UTC)", "Where"),
            (
                (
                    i.value,
                    Safe(f"{i.count}×"),
                    Safe(iso(i.first.time)),
                    "; ".join(f"{p.source} {p.field}" for p in i.places),
                )
                for i in items
            ),
        )
    if found.left_out:
        o.add(f"… {found.left_out} more indicators left out.")
        o.add()
    if found.raw_skipped:
        o.add(f"{found.raw_skipped} raw records were not read for indicators.")
        o.add()


def _blast_section(o: _Out, blast: BlastResult | None) -> None:
    if blast is None:
        o.heading(2, "Blast radius")
        o.add("Not computed for this snapshot (`b` computes it from the live cluster).")
        o.add()
        return
    from ktriage.core import blast as blast_mod

    if o.md:
        for line in blast_mod.render_markdown(blast).rstrip("\n").split("\n"):
            o.add(line)
        o.add()
        return
    o.heading(2, "Blast radius")
    for line in blast_mod.render_lines(blast):
        o.add(shown(line))
    o.add()


def _timeline_section(o: _Out, events: Sequence[Event], work: IncidentWork | None) -> None:
    o.heading(2, "Timeline")
    rows: list[Sequence[str]] = []
    merged: list[tuple[float, int, Event | Change | None]] = [
        (e.time, n, e) for n, e in enumerate(events)
    ]
    if len(events) > MAX_TIMELINE_ROWS:
        merged = [(e.time if e else 0.0, n, e) for n, e in enumerate(_cut_timeline(events))]
    if work is not None:
        # The responders' notes and status changes, in time order with the cluster's.
        merged += [(c.time, -1, c) for c in work.history[-MAX_NOTES:]]
        merged.sort(key=lambda r: (r[0], r[1]) if r[2] is not None else (float("inf"), 0))
    for _t, _n, row in merged:
        if row is None:
            rows.append(
                (Safe("…"), Safe(""), Safe(""), Safe(""),
                 Safe(f"{len(events) - MAX_TIMELINE_ROWS} context events left out"))
            )  # fmt: skip
            continue
        if isinstance(row, Change):
            rows.append(
                (
                    Safe(iso(row.time)),
                    Safe("responder"),
                    Safe(""),
                    Safe(row.kind),
                    Safe(f"{o.esc(row.actor, cell=True)}: {o.esc(row.words(), cell=True)}"),
                )
            )
            continue
        sev = row.severity.label.upper() if row.signal else row.severity.label
        summary = o.esc(row.summary, cell=True)
        if row.suppressed_by:
            # An allow-list match reads "(expected: …)"; a user's suppression says so.
            lead = " (" if row.suppressed_by.startswith(EXPECTED_PREFIX) else " (suppressed: "
            summary = Safe(summary + lead + o.esc(row.suppressed_by, cell=True) + ")")
        if row.signal:
            sev, summary = o.bold(sev), o.bold(summary)
        rows.append((Safe(iso(row.time)), row.source, Safe(sev), row.kind, Safe(summary)))
    o.table(("Time (UTC)", "Source", "Severity", "Kind", "Summary"), rows)


def key_events(
    incident: Incident,
    events: Sequence[Event],
    raw_loader: RawLoader | None = None,
    *,
    entry: tuple[Event, Any] | bool | None = True,
) -> tuple[list[Event], int]:
    """The raw events that tell the story, in time order, and how many signals were
    left out: the entry event, the first signal of each source, every identity
    change (token requests, bindings, impersonation, credentials used from
    outside), one signal of each kind, then the most severe, MAX_APPENDIX at most."""
    signals = [e for e in events if e.signal and e.source != "ktriage"]
    chosen: dict[int, Event] = {}

    def take(ev: Event) -> None:
        if len(chosen) < MAX_APPENDIX:
            chosen.setdefault(id(ev), ev)

    if entry is True:  # not looked for by the caller
        entry = entry_event(events, raw_loader)
    if isinstance(entry, tuple):
        take(entry[0])
    firsts: dict[str, Event] = {}
    for ev in signals:
        firsts.setdefault(ev.source, ev)
    for ev in firsts.values():
        take(ev)
    for ev in signals:
        if ev.kind in IDENTITY_CHANGE_KINDS or " as " in ev.summary[:200]:
            take(ev)
    by_severity = sorted(signals, key=lambda e: (-e.severity, e.time))
    # One of each kind of step (a repeated miner start is told once), most severe
    # first; then more of the most severe, up to half the budget.
    kinds_seen: set[tuple[str, str, int]] = set()
    for ev in by_severity:
        what = (ev.source, ev.kind, int(ev.severity))
        if what not in kinds_seen:
            kinds_seen.add(what)
            take(ev)
    for ev in by_severity:
        if len(chosen) >= MAX_APPENDIX // 2:
            break
        take(ev)
    picked = sorted(chosen.values(), key=lambda e: e.time)
    left = sum(1 for e in signals if id(e) not in chosen)
    return picked, left


def _key_events_section(
    o: _Out,
    incident: Incident,
    events: Sequence[Event],
    raw_loader: RawLoader | None,
    entry: tuple[Event, Any] | None,
) -> None:
    o.heading(2, "Appendix: key raw events")
    picked, left = key_events(incident, events, raw_loader, entry=entry)
    if not picked:
        o.add("None.")
        o.add()
    else:
        o.add(
            "Chosen to tell the story: the entry, the first signal of each source, every "
            "identity change, one signal of each kind, then the most severe (secrets "
            "redacted)."
        )
        o.add()
    for ev in picked:
        raw = _raw_of(ev, raw_loader)
        o.heading(3, f"{iso(ev.time)} {ev.source} {o.esc(ev.kind)}")
        o.add(o.esc(ev.summary))
        o.add()
        if raw is None:
            o.add("Raw record not available.")
        else:
            body = orjson.dumps(_compact(redact(raw)), option=orjson.OPT_INDENT_2).decode()
            o.code(shown(body, keep_newlines=True), "json")
        o.add()
    if left:
        o.add(f"… {left} more signals left out (the timeline above lists every one).")
        o.add()


def _containment_section(
    o: _Out, incident: Incident, state: Containment, ttc: float | None
) -> None:
    """What is contained (when, by whom), what is open, and the commands that close it."""
    o.heading(2, "Containment")
    if ttc is not None:
        o.add(
            f"{o.bold('Contained')} at {iso(incident.first_signal + ttc)}: "
            f"time to contain {duration(ttc)}."
        )
    elif state.contained:
        o.add(
            f"{o.bold('Contained')}; when is not known (a pod was found gone, with no "
            "record of when)."
        )
    else:
        o.add(f"{o.bold('Not contained yet.')} Open: {o.esc(state.open_words())}.")
    live = state.tokens_live_words()
    if live:
        o.add()
        o.add(f"{o.bold('Tokens still authenticate:')} {o.esc(live)}.")
    o.add()
    o.add(f"Time to contain is measured {TIME_TO_CONTAIN_DEFINITION}.")
    o.add()
    if state.skipped:
        reasons = ", ".join(f"{n} {why}" for why, n in sorted(state.skipped.items()))
        o.add(
            f"{sum(state.skipped.values())} containment fact(s) in the action records "
            f"could not be read and were left out ({o.esc(reasons)})."
        )
        o.add()
    o.heading(3, "Done")
    done = state.done
    if not done:
        o.add("Nothing is contained yet.")
        o.add()
    else:
        o.table(
            ("Since (UTC)", "Who", "Action", "Aspect", "Subject", "State", "Detail"),
            (
                (
                    Safe(iso(item.since) if item.since is not None else "not known"),
                    item.actor,
                    item.action,
                    item.aspect,
                    item.subject,
                    item.state,
                    item.detail,
                )
                for item in done[:MAX_CONTAINMENT_ROWS]
            ),
        )
        _left_out(o, len(done))
    o.heading(3, "Still open")
    still = state.open
    if not still:
        o.add("Nothing." if state.required else "No pod or acting identity was found to contain.")
        o.add()
    else:
        o.table(
            ("Aspect", "Subject", "State", "Detail"),
            (
                (item.aspect, item.subject, item.state, item.detail)
                for item in still[:MAX_CONTAINMENT_ROWS]
            ),
        )
        _left_out(o, len(still))
    other = [i for i in state.items if not i.done and i not in still]
    if other:
        o.add("Also recorded, not counted as open:")
        o.add()
        for item in other[:MAX_CONTAINMENT_ROWS]:
            o.item(
                f"{o.esc(item.aspect)} {o.esc(item.subject)}: {o.esc(item.state)}"
                + (f" ({o.esc(item.detail)})" if item.detail else "")
            )
        o.add()
    if state.next_steps:
        o.heading(3, "Next steps")
        o.add(
            "Every name below comes from the cluster or its logs: it is quoted for a "
            "POSIX shell; read each command before running it."
        )
        o.add()
        for n, step in enumerate(state.next_steps[:MAX_NEXT_STEPS], 1):
            note = (
                " (a name here holds characters no Kubernetes name has: check it first)"
                if step.suspicious
                else ""
            )
            o.add(f"{n}. {o.esc(step.subject)}: {o.esc(step.why)}{note}")
            if step.commands:
                o.add()
                o.code("\n".join(shown(c) for c in step.commands), "sh", indent="   ")
            o.add()
        if len(state.next_steps) > MAX_NEXT_STEPS:
            o.add(f"… {len(state.next_steps) - MAX_NEXT_STEPS} more steps left out.")
            o.add()


def _left_out(o: _Out, total: int) -> None:
    if total > MAX_CONTAINMENT_ROWS:
        o.add(f"… {total - MAX_CONTAINMENT_ROWS} more left out.")
        o.add()


def _compact(value: Any, limit: int = 16) -> Any:
    """Long lists of plain values (capability sets, env lists) shortened for reading."""
    if isinstance(value, dict):
        return {k: _compact(v, limit) for k, v in value.items()}
    if isinstance(value, list):
        if len(value) > limit and all(not isinstance(v, dict | list) for v in value):
            return [*value[: limit // 2], f"… {len(value) - limit // 2} more"]
        return [_compact(v, limit) for v in value]
    return value


def _cut_timeline(events: Sequence[Event]) -> list[Event | None]:
    """Keep every signal and action, and context up to the row limit."""
    keep_ids = {id(e) for e in events if e.signal or e.source == "ktriage"}
    budget = MAX_TIMELINE_ROWS - len(keep_ids)
    out: list[Event | None] = []
    for ev in events:
        if id(ev) in keep_ids:
            out.append(ev)
        elif budget > 0:
            out.append(ev)
            budget -= 1
    out.append(None)
    return out


def make_private_dirs(directory: Path) -> None:
    """Create `directory` and any missing parents, each readable by the owner alone."""
    missing = []
    d = directory
    while not d.exists():
        missing.append(d)
        d = d.parent
    for d in reversed(missing):
        d.mkdir(mode=0o700, exist_ok=True)
        os.chmod(d, 0o700)


def write_private(path: Path, text: str) -> Path:
    """Write a file only its owner can read (0600), creating 0700 directories.

    The text goes to a new temporary file renamed over `path`, so a symbolic link
    planted at `path` is replaced, never followed."""
    make_private_dirs(path.parent)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path


def write_snapshot(
    directory: Path | str,
    incident: Incident,
    events: Sequence[Event],
    raw_loader: RawLoader | None = None,
    *,
    fmt: str = MARKDOWN,
    **options: Unpack[RenderOptions],
) -> Path:
    """Write `<directory>/<incident id>.md` (`.txt` for TEXT; mode 0600) and return
    its path."""
    text = render(incident, events, raw_loader, fmt=fmt, **options)
    safe_id = re.sub(r"[^A-Za-z0-9_.-]", "_", incident.id)
    return write_private(Path(directory) / f"{safe_id}{SUFFIXES[fmt]}", text)
