"""Incident reports: the human text report and the stable JSON-lines form.

JSON form (one object per line, one per incident; a stable interface):
`id`, `severity`, `title`, `first_seen`, `last_seen`, `tactics`,
`entities` (list of `{kind, namespace, name}`), `events` (list of
`{source, ref, time, kind, severity, summary}` in time order).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import orjson

from ktriage.core.model import MAX_TIME, EntityRef, Event, Incident, Severity, iso
from ktriage.core.redact import redact_text
from ktriage.core.text import clip_words, printable, shown


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
        "events": [event_json(e) for e in events],
    }


def event_json(ev: Event) -> dict[str, Any]:
    """One timeline entry, as `Event.as_dict` gives it (the same keys, the same text),
    built for a report of thousands of events: its time formatted once per second,
    a ref of hex digits and dashes (a UUID, a hash) taken as it is (it holds nothing
    to redact or escape), and the other texts made safe without the cache of short
    texts (a report shows each once; the panes' texts would only be pushed out)."""
    ref = ev.ref
    return {
        "source": ev.source,
        "ref": ref if type(ref) is str and not ref.strip(_HEX_REF) else shown(ref),
        "time": iso_time(ev.time),
        "kind": shown(ev.kind),
        "severity": _SEVERITY_LABELS[ev.severity],
        "summary": _shown_once(ev.summary),
    }


def _shown_once(text: object) -> str:
    # `shown`, for a str, without its cache of short texts.
    if type(text) is not str:
        return shown(text)
    if text in _SHOWN_AS_IS:
        return text
    return printable(redact_text(text))


# Texts a parser found to be their own `shown` form as it made them safe (redaction
# found nothing to take out, nothing needed an escape, nothing was cut): a report
# shows them as they are instead of looking again. A text is kept whole, so what is
# here is its own shown form by its content, whatever event holds it. Bounded: it
# only spares work.
_SHOWN_AS_IS: set[str] = set()
SHOWN_AS_IS_MAX = 1 << 16


def mark_shown(text: str) -> None:
    """Say that `text` is its own `shown` form (`shown(text) == text`)."""
    if len(_SHOWN_AS_IS) >= SHOWN_AS_IS_MAX:
        _SHOWN_AS_IS.clear()
    _SHOWN_AS_IS.add(text)


# Text of only these characters is its own `shown` form: every pattern redaction
# looks for holds a character that is not one of them, and none needs an escape.
_HEX_REF = "0123456789abcdefABCDEF-"
_SEVERITY_LABELS = {sev: sev.label for sev in Severity}
# "YYYY-MM-DDTHH:MM:SS" of whole epoch seconds: a report's events share few seconds.
_SECOND_TEXT: dict[int, str] = {}
_SECOND_TEXT_MAX = 100_000


def iso_time(ts: float) -> str:
    """`model.iso(ts)`, the same text, with the calendar worked out once per second.

    The microseconds are rounded as `datetime.fromtimestamp` rounds them (half to
    even, on the float's own value); anything but a float in the parsers' range
    goes to `iso` itself."""
    if type(ts) is not float or not 0.0 <= ts < MAX_TIME:
        return iso(ts)
    frac, whole = math.modf(ts)
    micros = round(frac * 1e6)
    second = int(whole)
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
