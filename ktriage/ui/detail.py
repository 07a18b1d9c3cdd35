"""What the Detail pane says about an event, a pod or an incident.

Builders return logical lines: (label, value) pairs, where the value is a rich
Text built from plain strings (never markup). The Detail widget wraps them to
its width. Raw records are redacted (core.redact) and pretty-printed as JSON.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from rich.style import Style
from rich.text import Text

from ktriage.core.allowlist import EXPECTED_PREFIX
from ktriage.core.model import Event, Incident, iso
from ktriage.core.redact import redact
from ktriage.core.snapshot import duration
from ktriage.core.text import shown
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
    inc: Incident, events_by_source: dict[str, int], styles: DetailStyles
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
    for ent in inc.entities[:40]:
        lines.append(_field(ent.kind, ent.short()))
    if len(inc.entities) > 40:
        lines.append(_field("", f"+{len(inc.entities) - 40} more entities", styles.muted))
    lines.append(DetailLine(Text("")))
    lines.append(DetailLine(Text("enter: timeline · s: save snapshot · ?: all keys", styles.muted)))
    return lines
