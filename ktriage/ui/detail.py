"""What the Detail pane says about an event, a pod or an incident.

Builders return logical lines: (label, value) pairs, where the value is a rich
Text built from plain strings (never markup). The Detail widget wraps them to
its width. Raw records are redacted (core.redact) and pretty-printed as JSON.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from rich.style import Style
from rich.text import Text

from ktriage.core import containment as cs
from ktriage.core.allowlist import EXPECTED_PREFIX
from ktriage.core.model import Event, Incident, iso
from ktriage.core.redact import redact
from ktriage.core.snapshot import duration
from ktriage.core.text import shown
from ktriage.core.workflow import IncidentWork
from ktriage.ui.format import SEVERITY_BADGES
from ktriage.ui.pods import PodRow

# A raw record longer than this is cut (the Markdown snapshot has it whole).
MAX_JSON_LINES = 2_000
_JSON_KEY = re.compile(r'^(\s*)("(?:[^"\\]|\\.)*")(: )')


@dataclass(slots=True)
class DetailStyles:
    label: Style
    muted: Style
    key: Style
    heading: Style
    severity: dict[int, Style]
    # Containment: what is done, what is open.
    ok: Style = field(default_factory=Style)
    warning: Style = field(default_factory=Style)


@dataclass(slots=True)
class DetailLine:
    """One logical line: an optional label column and a value that may wrap."""

    value: Text
    label: str = ""
    # JSON lines keep their own indentation when wrapped.
    code: bool = False


def _safe(text: object) -> Text:
    return Text(shown(text), end="")


def _field(label: str, value: object, style: Style | str = "") -> DetailLine:
    t = value if isinstance(value, Text) else _safe(value)
    if style:
        t.stylize(style)
    return DetailLine(t, label)


def json_lines(record: Any, styles: DetailStyles) -> list[DetailLine]:
    """A raw record, redacted, as pretty JSON lines with keys highlighted."""
    # Redacted as a whole first: a line alone no longer says what its value is (a
    # JSON patch's `path` and `value` are two lines).
    cleaned = redact(record)
    try:
        body = orjson.dumps(
            cleaned, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS, default=str
        ).decode()
    except (TypeError, orjson.JSONEncodeError):
        body = shown(repr(cleaned))
    lines = body.split("\n")
    out = []
    for line in lines[:MAX_JSON_LINES]:
        text = Text(shown(line), end="")
        m = _JSON_KEY.match(line)
        if m:
            text.stylize(styles.key, m.start(2), m.end(2))
        out.append(DetailLine(text, code=True))
    if len(lines) > MAX_JSON_LINES:
        out.append(
            DetailLine(
                Text(f"… {len(lines) - MAX_JSON_LINES} more lines (the snapshot has them all)")
            )
        )
    return out


def event_detail(
    ev: Event, raw: Any, incident: Incident | None, styles: DetailStyles
) -> list[DetailLine]:
    sev = styles.severity[int(ev.severity)]
    head = Text.assemble(
        (SEVERITY_BADGES[ev.severity].strip(), sev),
        " ",
        _safe(ev.kind),
        (" · ", styles.muted),
        _safe(ev.source),
        (" · ", styles.muted),
        ("signal" if ev.signal else "context", styles.heading if ev.signal else styles.muted),
    )
    lines = [DetailLine(head)]
    lines.append(_field("Time", iso(ev.time)))
    lines.append(_field("Summary", ev.summary))
    if ev.entities:
        ents = Text(end="")
        for i, e in enumerate(ev.entities):
            if i:
                ents.append(" · ", styles.muted)
            ents.append(e.kind + " ", styles.muted)
            ents.append_text(_safe(e.short()))
        lines.append(DetailLine(ents, "Entities"))
    if ev.attack is not None:
        a = ev.attack
        lines.append(_field("ATT&CK", f"{a.tactic} · {a.technique} {a.name}".strip()))
    if incident is not None:
        lines.append(
            DetailLine(
                Text.assemble((incident.id, styles.key), " ", _safe(incident.title)), "Incident"
            )
        )
    if ev.suppressed_by:
        expected = ev.suppressed_by.startswith(EXPECTED_PREFIX)
        label = "Expected" if expected else "Suppressed"
        text = ev.suppressed_by.removeprefix(EXPECTED_PREFIX) if expected else ev.suppressed_by
        lines.append(_field(label, text, styles.muted))
    lines.append(_field("Ref", ev.ref, styles.muted))
    lines.append(DetailLine(Text("")))
    if raw is None:
        lines.append(DetailLine(Text("No raw record kept for this event.", styles.muted)))
    else:
        lines.append(DetailLine(Text("Raw record (secrets redacted)", styles.heading)))
        lines.extend(json_lines(raw, styles))
    return lines


def pod_detail(
    row: PodRow, incidents: Sequence[Incident], event_count: int, styles: DetailStyles
) -> list[DetailLine]:
    info = row.info
    lines = [DetailLine(Text.assemble(("Pod ", styles.heading), _safe(row.ref.short())))]
    if info is None:
        note = (
            "Not in the cluster's current state (deleted, or not watched)."
            if row.phase == "Gone"
            else "Known from recorded events only: no live state in replay."
        )
        lines.append(DetailLine(Text(note, styles.muted)))
    lines.append(_field("Phase", row.phase))
    if info is not None:
        lines.append(_field("Ready", row.ready))
        lines.append(_field("Restarts", "-" if row.restarts is None else row.restarts))
    node_text = row.node or "-"
    if row.node_info is not None and getattr(row.node_info, "unschedulable", False):
        node_text += " (cordoned)"
    lines.append(_field("Node", node_text))
    if info is not None:
        sa = getattr(info, "service_account", "")
        if sa:
            lines.append(_field("SA", sa))
        images = getattr(info, "images", ()) or ()
        if images:
            lines.append(_field("Images", ", ".join(map(str, images))))
        owner = getattr(info, "owner", "")
        if owner:
            lines.append(_field("Owner", owner))
        labels = getattr(info, "labels", {}) or {}
        if labels:
            lines.append(_field("Labels", ", ".join(f"{k}={v}" for k, v in labels.items())))
        created = getattr(info, "created", None)
        if isinstance(created, int | float):
            lines.append(_field("Created", iso(created)))
        elif created:
            lines.append(_field("Created", created))
        containers = getattr(info, "containers", ()) or ()
        for c in containers:
            lines.append(_field("Container", _describe_container(c)))
    flags = ", ".join(row.flags) if row.flags else "none"
    lines.append(_field("Flags", flags, styles.severity[4] if row.flags else ""))
    lines.append(_field("Events", event_count))
    for inc in incidents:
        lines.append(
            DetailLine(
                Text.assemble(
                    (SEVERITY_BADGES[inc.severity].strip(), styles.severity[int(inc.severity)]),
                    " ",
                    (inc.id, styles.key),
                    " ",
                    _safe(inc.title),
                ),
                "Incident",
            )
        )
    return lines


def _describe_container(c: Any) -> str:
    if isinstance(c, str):
        return c
    if isinstance(c, dict):
        name = c.get("name", "?")
        rest = ", ".join(f"{k}={v}" for k, v in c.items() if k != "name")
        return f"{name} ({rest})" if rest else str(name)
    name = getattr(c, "name", None)
    if name is None:
        return str(c)
    parts = []
    for attr in ("image", "state", "reason", "restarts", "ready"):
        value = getattr(c, attr, None)
        if value not in (None, ""):
            parts.append(f"{attr}={value}")
    return f"{name} ({', '.join(parts)})" if parts else str(name)


def incident_detail(
    inc: Incident,
    events_by_source: dict[str, int],
    styles: DetailStyles,
    containment: cs.Containment | None = None,
    work: IncidentWork | None = None,
) -> list[DetailLine]:
    sev = styles.severity[int(inc.severity)]
    per_source = ", ".join(f"{s} {n}" for s, n in sorted(events_by_source.items()))
    lines = [
        DetailLine(
            Text.assemble((SEVERITY_BADGES[inc.severity].strip(), sev), " ", (inc.id, styles.key))
        ),
        DetailLine(_safe(inc.title), ""),
        _field("First", iso(inc.first_seen)),
        _field("Last", iso(inc.last_seen)),
        _field("Span", duration(inc.last_seen - inc.first_seen)),
        _field("Events", f"{inc.event_count} ({per_source})"),
        _field("Signals", inc.signal_count),
        _field("ATT&CK", " → ".join(inc.tactics) or "none mapped"),
    ]
    if inc.cluster:  # several clusters watched
        lines.insert(2, _field("Cluster", inc.cluster))
    if work is not None:
        lines.extend(workflow_lines(work, styles))
    for ent in inc.entities[:40]:
        lines.append(_field(ent.kind, ent.short()))
    if len(inc.entities) > 40:
        lines.append(_field("", f"+{len(inc.entities) - 40} more entities", styles.muted))
    if containment is not None:
        lines.extend(containment_lines(inc, containment, styles))
    lines.append(DetailLine(Text("")))
    lines.append(DetailLine(Text("enter: timeline · s: save snapshot · ?: all keys", styles.muted)))
    return lines


NOTES_IN_DETAIL = 3  # the newest notes; `w` shows more, the snapshot all


def workflow_lines(work: IncidentWork, styles: DetailStyles) -> list[DetailLine]:
    """The responders' status, owner, acknowledgement and newest notes (text they
    typed: shown as plain text, never markup)."""
    status = work.status + (f" ({work.reason})" if work.reason else "")
    value = Text.assemble((status, styles.heading), end="")
    if work.owner:
        value.append(" · owner ", styles.muted)
        value.append_text(_safe(work.owner))
    if work.acknowledged:
        value.append(" · acknowledged by ", styles.muted)
        value.append_text(_safe(work.acknowledged_by))
    else:
        value.append(" · not acknowledged (A)", styles.muted)
    lines = [DetailLine(value, "Status")]
    for note in work.notes[-NOTES_IN_DETAIL:]:
        text = Text.assemble((iso(note.time)[:19].replace("T", " ") + " ", styles.muted), end="")
        text.append_text(_safe(note.actor))
        text.append(": ")
        text.append_text(_safe(note.value[:500]))
        lines.append(DetailLine(text, "Note"))
    if len(work.notes) > NOTES_IN_DETAIL:
        more = len(work.notes) - NOTES_IN_DETAIL
        lines.append(_field("", f"+{more} earlier notes (w shows them)", styles.muted))
    return lines


# Subjects listed per aspect, and next steps, in the Detail pane (the snapshot has more).
MAX_CONTAINMENT_ITEMS = 40
MAX_NEXT_STEPS = 12
CONTAINMENT_MARKS = {cs.CONTAINED: "✓", cs.PARTLY: "◒", cs.NOTHING: "·"}
_ASPECT_LABELS = {
    cs.NETWORK: "Network",
    cs.WORKLOAD: "Workload",
    cs.NODE: "Node",
    cs.IDENTITY: "Identity",
    cs.EVIDENCE: "Evidence",
}


def containment_lines(
    inc: Incident, state: cs.Containment, styles: DetailStyles
) -> list[DetailLine]:
    """The Containment block: the verdict, each aspect's subjects, the next steps."""
    lines = [DetailLine(Text("")), DetailLine(Text("Containment", styles.heading))]
    level = state.level
    mark = CONTAINMENT_MARKS[level]
    if state.contained and state.contained_at is not None:
        ttc = duration(max(0.0, state.contained_at - inc.first_signal))
        verdict = Text.assemble((f"{mark} contained", styles.ok), f" · time to contain {ttc}")
    elif state.contained:
        verdict = Text.assemble((f"{mark} contained", styles.ok), " · when is not known")
    else:
        word = "partly contained" if level == cs.PARTLY else "not contained yet"
        verdict = Text.assemble((f"{mark} {word}", styles.warning), " · open: ")
        verdict.append_text(_safe(state.open_words()))
    lines.append(DetailLine(verdict, "State"))
    for aspect in cs.ASPECTS:
        items = state.of(aspect)
        for n, item in enumerate(items[:MAX_CONTAINMENT_ITEMS]):
            lines.append(
                DetailLine(_item_text(item, styles), _ASPECT_LABELS[aspect] if not n else " ")
            )
        if len(items) > MAX_CONTAINMENT_ITEMS:
            more = f"+{len(items) - MAX_CONTAINMENT_ITEMS} more (the snapshot lists them all)"
            lines.append(_field(" ", more, styles.muted))
    if state.skipped:
        count = sum(state.skipped.values())
        lines.append(_field(" ", f"{count} unreadable fact(s) left out", styles.muted))
    for n, step in enumerate(state.next_steps[:MAX_NEXT_STEPS], 1):
        text = Text.assemble(f"{n}. ", _safe(step.subject), ": ", _safe(step.why))
        if step.suspicious:
            text.append(" (a name holds characters no Kubernetes name has)", styles.warning)
        lines.append(DetailLine(text, "Next" if n == 1 else " "))
        for command in step.commands:
            lines.append(DetailLine(Text.assemble(("$ ", styles.muted), _safe(command)), " "))
    if len(state.next_steps) > MAX_NEXT_STEPS:
        more = f"+{len(state.next_steps) - MAX_NEXT_STEPS} more steps (in the snapshot)"
        lines.append(_field(" ", more, styles.muted))
    lines.append(_field(" ", f"Time to contain: {cs.TIME_TO_CONTAIN_DEFINITION}.", styles.muted))
    return lines


def _item_text(item: cs.Item, styles: DetailStyles) -> Text:
    """`pod shop/web-1  isolated · no NetworkPolicy allows… (oncall 12:03:04)`."""
    counted = item.required or item.aspect == cs.EVIDENCE
    style = styles.ok if item.done else (styles.warning if counted else styles.muted)
    text = Text.assemble(_safe(item.subject), " ", (item.state, style))
    if item.detail:
        text.append(" · ", styles.muted)
        text.append_text(_safe(item.detail))
    who = " ".join(
        part
        for part in (
            shown(item.actor),
            iso(item.since)[11:19] if item.since is not None and item.actor else "",
        )
        if part
    )
    if who:
        text.append(f" ({who})", styles.muted)
    return text
