"""Incident reports: the human text report and the stable JSON-lines form.

JSON form (one object per line, one per incident; a stable interface):
`id`, `severity`, `title`, `first_seen`, `last_seen`, `tactics`,
`entities` (list of `{kind, namespace, name}`), `events` (list of
`{source, ref, time, kind, severity, summary}` in time order).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import orjson

from ktriage.core.model import EntityRef, Event, Incident, iso
from ktriage.core.text import clip_words, shown


def incident_json(incident: Incident, events: Sequence[Event]) -> dict[str, Any]:
    return {
        "id": incident.id,
        "severity": incident.severity.label,
        "title": shown(incident.title),
        "first_seen": iso(incident.first_seen),
        "last_seen": iso(incident.last_seen),
        "tactics": list(incident.tactics),
        "entities": [
            {"kind": shown(e.kind), "namespace": shown(e.namespace), "name": shown(e.name)}
            for e in incident.entities
        ],
        "events": [e.as_dict() for e in events],
    }


def incident_json_line(incident: Incident, events: Sequence[Event]) -> bytes:
    return orjson.dumps(incident_json(incident, events))


def skipped_json(
    skipped: Counter[str],
    skip_log: Sequence[tuple[str, str, str]],
    partial: Counter[str] | None = None,
) -> bytes:
    """The last line of `--json` output: what was skipped and why. `partial` counts the
    records among those that were read in part (too long or too deep to decode whole):
    their key fields made events."""
    return orjson.dumps(
        {
            "skipped": {
                "total": sum(skipped.values()),
                "by_reason": dict(sorted(skipped.items())),
                "read_in_part": dict(sorted((partial or Counter()).items())),
                "lines": [
                    {"origin": shown(o), "reason": shown(r), "detail": shown(d)}
                    for o, r, d in skip_log[:1000]
                ],
            }
        }
    )


def entity_list(entities: Sequence[EntityRef], width: int = 100, most: int = 8) -> str:
    """`Pod shop/web-1, IP 203.0.113.42 (+3 more)`: whole entities only (a cut IP or
    name would read as another valid one), and always how many were left out."""
    kept: list[str] = []
    used = 0
    for ent in entities[:most]:
        text = shown(f"{ent.kind} {ent.short()}")
        if kept and used + 2 + len(text) > width:
            break
        kept.append(text)
        used += len(text) + 2
    left = len(entities) - len(kept)
    return ", ".join(kept) + (f" (+{left} more)" if left else "")


def text_report(incidents: Sequence[Incident], events_of: Any, *, width: int = 100) -> str:
    """The plain report `ktriage replay` prints: one block per incident."""
    if not incidents:
        return "No incidents.\n"
    # Imported here: `--json` does without it (the snapshot module is large).
    from ktriage.core.snapshot import duration

    lines: list[str] = [f"{len(incidents)} incident(s)", ""]
    for inc in incidents:
        events = events_of(inc.id)
        per_source = Counter(e.source for e in events)
        lines.append(
            f"{inc.id}  {inc.severity.label.upper():8}  {clip_words(shown(inc.title), width)}"
        )
        lines.append(
            f"    time      {iso(inc.first_seen)} → {iso(inc.last_seen)}"
            f" ({duration(inc.last_seen - inc.first_seen)})"
        )
        lines.append(f"    entities  {entity_list(inc.entities, width)}")
        lines.append(f"    tactics   {', '.join(inc.tactics) or 'none mapped'}")
        lines.append(
            f"    events    {len(events)}: "
            + ", ".join(f"{src} {n}" for src, n in sorted(per_source.items()))
            + f"; {inc.signal_count} signal(s)"
        )
        lines.append("")
    return "\n".join(lines) + "\n"


def skipped_summary(
    skipped: Counter[str],
    skip_log: Sequence[tuple[str, str, str]],
    partial: Counter[str] | None = None,
) -> str:
    """One line per reason for stderr, with the first few places it happened. Records
    read in part (`partial`, counted in `skipped` too) are not called unusable."""
    total = sum(skipped.values())
    if not total:
        return "Skipped nothing: every line was read."
    in_part = sum((partial or Counter()).values())
    if in_part == total:
        out = [f"Read {in_part} line(s) in part (too long or too deep to decode whole):"]
    elif in_part:
        out = [f"Skipped {total - in_part} unusable line(s); read {in_part} in part:"]
    else:
        out = [f"Skipped {total} unusable line(s):"]
    for reason, n in sorted(skipped.items(), key=lambda kv: (-kv[1], kv[0])):
        where = [o for o, r, _ in skip_log if r == reason][:3]
        detail = next((d for _, r, d in skip_log if r == reason and d), "")
        places = f" (e.g. {', '.join(shown(w) for w in where)})" if where else ""
        out.append(f"  {n:6}  {shown(reason)}{places}" + (f": {shown(detail)}" if detail else ""))
    return "\n".join(out)
