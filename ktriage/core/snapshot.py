"""Incident → Markdown snapshot.

Every untrusted string is escaped so it cannot inject Markdown or HTML, every
raw record is redacted, and files are written readable by the user alone.

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
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import orjson

from ktriage.core.allowlist import EXPECTED_PREFIX
from ktriage.core.containment import (
    TIME_TO_CONTAIN_DEFINITION,
    Containment,
    PodLookup,
    containment_state,
)
from ktriage.core.model import Event, Incident, iso
from ktriage.core.redact import redact
from ktriage.core.text import shown

RawLoader = Callable[[Event], Any]

MAX_APPENDIX = 20
# Rows of each Containment table, and next steps, written at most.
MAX_CONTAINMENT_ROWS = 200
MAX_NEXT_STEPS = 50
MAX_TIMELINE_ROWS = 2_000

# Characters that start Markdown constructs anywhere in a line (with `[` and `]`
# escaped no link can form, so parentheses stay as they are); `<`, `>` and `&`
# become HTML entities instead, and "://" is broken so no autolink is made.
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]#!|~^$])")


def md_escape(text: str) -> str:
    """Plain text for Markdown: no markup, no HTML, no line breaks, no controls."""
    text = shown(text)
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = _MD_SPECIAL.sub(r"\\\1", text)
    return text.replace("://", ":\\/\\/").replace("www.", "www\\.")


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


def _time_to_contain_cell(ttc: float | None, state: Containment) -> str:
    if ttc is not None:
        return (
            f"{duration(ttc)} (first signal until every pod is isolated or gone "
            "and every identity that acted is revoked)"
        )
    if state.contained:
        return "contained; when is not known (a pod was found gone, with no record of when)"
    return f"not contained yet (open: {md_escape(state.open_words())})"


def _fence(text: str) -> str:
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    return "`" * max(3, longest + 1)


def render_markdown(
    incident: Incident,
    events: Sequence[Event],
    raw_loader: RawLoader | None = None,
    *,
    generated_at: float | None = None,
    pod_exists: PodLookup | None = None,
) -> str:
    """The whole snapshot as Markdown text. `pod_exists(namespace, name)` tells
    whether a pod exists now (True/False, None when not known): live, a deleted
    pod counts as contained."""
    out: list[str] = []
    add = out.append
    add(f"# {md_escape(incident.id)}: {md_escape(incident.title)}")
    add("")
    signals = [e for e in events if e.signal]
    first_event = events[0].time if events else incident.first_seen
    state = containment_state(incident, events, pod_exists)
    ttc = time_to_contain(incident, events, state=state)
    counts = ", ".join(f"{src} {n}" for src, n in sorted(incident.counts_by_source.items()))
    add("| | |")
    add("|---|---|")
    add(f"| Severity | **{incident.severity.label.upper()}** |")
    if incident.cluster:  # several clusters watched: say which one this is
        add(f"| Cluster | {md_escape(incident.cluster)} |")
    add(f"| First seen | {iso(incident.first_seen)} |")
    add(f"| Last seen | {iso(incident.last_seen)} |")
    add(f"| Time span | {duration(incident.last_seen - incident.first_seen)} |")
    add(
        f"| Time to detect | {duration(incident.first_signal - first_event)} "
        "(first event to first signal) |"
    )
    add(f"| Time to contain | {_time_to_contain_cell(ttc, state)} |")
    add(f"| Events | {len(events)} ({md_escape(counts)}); {len(signals)} signals |")
    tactics = ", ".join(t.replace("-", " ") for t in incident.tactics) or "none mapped"
    add(f"| ATT&CK tactics | {md_escape(tactics)} |")
    if generated_at is not None:
        add(f"| Snapshot taken | {iso(generated_at)} |")
    add("")

    add("## Summary")
    add("")
    sev_first = sorted(signals, key=lambda e: (-e.severity, e.time))[:5]
    if sev_first:
        for ev in sev_first:
            add(f"- {iso(ev.time)} {ev.severity.label.upper()}: {md_escape(ev.summary)}")
    else:
        add("- No signals.")
    add("")

    _containment_section(add, incident, state, ttc)

    add("## Entities")
    add("")
    for ent in incident.entities:
        add(f"- {md_escape(ent.kind)}: {md_escape(ent.short())}")
    add("")
    if incident.entities:
        # The same, verbatim in a code block (escaping above keeps Markdown from
        # reading them; here an IP or image can be copied into a ticket as it is).
        plain_list = "\n".join(shown(f"{ent.kind}  {ent.short()}") for ent in incident.entities)
        fence = _fence(plain_list)
        add("Copyable:")
        add("")
        add(f"{fence}text")
        add(plain_list)
        add(fence)
        add("")

    add("## Timeline")
    add("")
    add("| Time (UTC) | Source | Severity | Kind | Summary |")
    add("|---|---|---|---|---|")
    rows: Sequence[Event | None] = (
        events if len(events) <= MAX_TIMELINE_ROWS else _cut_timeline(events)
    )
    for row in rows:
        if row is None:
            add(f"| … | | | | {len(events) - MAX_TIMELINE_ROWS} context events left out |")
            continue
        sev = row.severity.label.upper() if row.signal else row.severity.label
        marker = "**" if row.signal else ""
        summary = md_escape(row.summary)
        if row.suppressed_by:
            # An allow-list match reads "(expected: …)"; a user's suppression says so.
            lead = " (" if row.suppressed_by.startswith(EXPECTED_PREFIX) else " (suppressed: "
            summary += lead + md_escape(row.suppressed_by) + ")"
        add(
            f"| {iso(row.time)} | {row.source} | {marker}{sev}{marker} | "
            f"{md_escape(row.kind)} | {marker}{summary}{marker} |"
        )
    add("")

    add("## Actions taken")
    add("")
    actions = action_events(events)
    if not actions:
        add("No actions were taken.")
    else:
        add("| Time (UTC) | Who | Action | Target | Result | Detail |")
        add("|---|---|---|---|---|---|")
        for ev in actions:
            info = ev.raw_inline or {}
            detail = info.get("error") or ev.summary
            add(
                f"| {iso(ev.time)} | {md_escape(info.get('actor', ''))} | "
                f"{md_escape(info.get('action', ev.kind))} | {md_escape(info.get('target', ''))} | "
                f"{md_escape(info.get('result', ''))} | {md_escape(detail)} |"
            )
    add("")

    files = [f for ev in actions for f in (ev.raw_inline or {}).get("files", [])]
    add("## Evidence")
    add("")
    if not files:
        add("No evidence files were collected.")
    else:
        add("| File | Bytes | SHA-256 |")
        add("|---|---|---|")
        for f in files:
            path, digest = md_escape(f.get("path", "")), md_escape(f.get("sha256", ""))
            add(f"| {path} | {f.get('bytes', '')} | {digest} |")
    add("")

    add("## Appendix: key raw events")
    add("")
    key_events = sorted(signals, key=lambda e: (-e.severity, e.time))[:MAX_APPENDIX]
    if not key_events:
        add("None.")
    for ev in sorted(key_events, key=lambda e: e.time):
        raw = (
            ev.raw_inline if ev.raw_inline is not None else (raw_loader(ev) if raw_loader else None)
        )
        add(f"### {iso(ev.time)} {ev.source} {md_escape(ev.kind)}")
        add("")
        if raw is None:
            add("Raw record not available.")
        else:
            body = orjson.dumps(_compact(redact(raw)), option=orjson.OPT_INDENT_2).decode()
            body = shown(body, keep_newlines=True)
            fence = _fence(body)
            add(f"{fence}json")
            add(body)
            add(fence)
        add("")
    return "\n".join(out)


def _containment_section(
    add: Callable[[str], None], incident: Incident, state: Containment, ttc: float | None
) -> None:
    """What is contained (when, by whom), what is open, and the commands that close it."""
    add("## Containment")
    add("")
    if ttc is not None:
        add(
            f"**Contained** at {iso(incident.first_signal + ttc)}: time to contain {duration(ttc)}."
        )
    elif state.contained:
        add("**Contained**; when is not known (a pod was found gone, with no record of when).")
    else:
        add(f"**Not contained yet.** Open: {md_escape(state.open_words())}.")
    live = state.tokens_live_words()
    if live:
        add("")
        add(f"**Tokens still authenticate:** {md_escape(live)}.")
    add("")
    add(f"Time to contain is measured {TIME_TO_CONTAIN_DEFINITION}.")
    add("")
    if state.skipped:
        reasons = ", ".join(f"{n} {why}" for why, n in sorted(state.skipped.items()))
        add(
            f"{sum(state.skipped.values())} containment fact(s) in the action records "
            f"could not be read and were left out ({md_escape(reasons)})."
        )
        add("")
    add("### Done")
    add("")
    done = state.done
    if not done:
        add("Nothing is contained yet.")
    else:
        add("| Since (UTC) | Who | Action | Aspect | Subject | State | Detail |")
        add("|---|---|---|---|---|---|---|")
        for item in done[:MAX_CONTAINMENT_ROWS]:
            since = iso(item.since) if item.since is not None else "not known"
            add(
                f"| {since} | {md_escape(item.actor)} | {md_escape(item.action)} | "
                f"{item.aspect} | {md_escape(item.subject)} | {item.state} | "
                f"{md_escape(item.detail)} |"
            )
        _left_out(add, len(done))
    add("")
    add("### Still open")
    add("")
    still = state.open
    if not still:
        add("Nothing." if state.required else "No pod or acting identity was found to contain.")
    else:
        add("| Aspect | Subject | State | Detail |")
        add("|---|---|---|---|")
        for item in still[:MAX_CONTAINMENT_ROWS]:
            add(
                f"| {item.aspect} | {md_escape(item.subject)} | {item.state} | "
                f"{md_escape(item.detail)} |"
            )
        _left_out(add, len(still))
    other = [i for i in state.items if not i.done and i not in still]
    if other:
        add("")
        add("Also recorded, not counted as open:")
        add("")
        for item in other[:MAX_CONTAINMENT_ROWS]:
            add(
                f"- {item.aspect} {md_escape(item.subject)}: {item.state}"
                + (f" ({md_escape(item.detail)})" if item.detail else "")
            )
    add("")
    if state.next_steps:
        add("### Next steps")
        add("")
        add(
            "Every name below comes from the cluster or its logs: it is quoted for a "
            "POSIX shell; read each command before running it."
        )
        add("")
        for n, step in enumerate(state.next_steps[:MAX_NEXT_STEPS], 1):
            note = (
                " (a name here holds characters no Kubernetes name has: check it first)"
                if step.suspicious
                else ""
            )
            add(f"{n}. {md_escape(step.subject)}: {md_escape(step.why)}{note}")
            if step.commands:
                body = "\n".join(shown(c) for c in step.commands)
                fence = _fence(body)
                add("")
                add(f"   {fence}sh")
                for line in body.split("\n"):
                    add(f"   {line}")
                add(f"   {fence}")
            add("")
        if len(state.next_steps) > MAX_NEXT_STEPS:
            add(f"… {len(state.next_steps) - MAX_NEXT_STEPS} more steps left out.")
            add("")


def _left_out(add: Callable[[str], None], total: int) -> None:
    if total > MAX_CONTAINMENT_ROWS:
        add("")
        add(f"… {total - MAX_CONTAINMENT_ROWS} more left out.")


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
    generated_at: float | None = None,
    pod_exists: PodLookup | None = None,
) -> Path:
    """Write `<directory>/<incident id>.md` (mode 0600) and return its path."""
    text = render_markdown(
        incident, events, raw_loader, generated_at=generated_at, pod_exists=pod_exists
    )
    safe_id = re.sub(r"[^A-Za-z0-9_.-]", "_", incident.id)
    return write_private(Path(directory) / f"{safe_id}.md", text)
