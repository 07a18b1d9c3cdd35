"""Outcomes become events (source `ktriage`) in the incident's timeline.

`raw_inline` follows core/snapshot.py: action, target, actor, result, error,
undoable and, for evidence, files [{path, sha256, bytes}]; plus the time the
action started and what undo needs, so the record alone tells the story.
"""

from __future__ import annotations

import itertools
from typing import Any

from ktriage.actions.base import REFUSED, ActionRecord, Outcome, Target
from ktriage.core.model import EntityKind, Event, Severity, entity, iso

_SEQUENCE = itertools.count(1)


def _event(
    label: str,
    target: Target,
    subject: Target,
    actor: str,
    when: float,
    summary: str,
    raw: dict[str, Any],
) -> Event:
    """A timeline event of source `ktriage`: an action (or an attempt at one)."""
    # The pod, or the identity (ServiceAccount, User) the action was about.
    entities = [target.entity()]
    if subject.kind == EntityKind.NODE:
        entities.append(entity(EntityKind.NODE, None, subject.name))
    if actor and not actor.startswith("unknown"):
        entities.append(entity(EntityKind.USER, None, actor))
    kind = "action-" + label.replace(" ", "-")
    return Event(
        time=when,
        source="ktriage",
        ref=f"{kind}:{subject.short()}:{when:.6f}:{next(_SEQUENCE)}",
        kind=kind,
        severity=Severity.INFO,
        summary=summary,
        entities=tuple(entities),
        signal=False,
        raw_inline=raw,
    )


def action_event(outcome: Outcome) -> Event:
    """The timeline event for one applied (or undone, or failed) action."""
    plan = outcome.plan
    target = plan.target
    subject = plan.subject.words()
    label = plan.label
    summary = f"{label} {subject}: {outcome.message or outcome.result}"
    raw: dict[str, Any] = {
        "action": label,
        "target": subject,
        "actor": outcome.actor,
        "result": outcome.result,
        "error": outcome.error,
        "undoable": bool(outcome.undoable),
        "started": iso(outcome.started) if outcome.started else "",
        "incident": plan.incident_id,
        "pod": target.short(),
        "message": outcome.message,
    }
    if outcome.files:
        raw["files"] = list(outcome.files)
    if outcome.leftovers:
        raw["leftovers"] = list(outcome.leftovers)
    if outcome.undo:
        raw["undo"] = dict(outcome.undo)
    if outcome.undo_note:
        raw["undo_note"] = outcome.undo_note
    if plan.undo_of is not None:
        raw["undoes"] = plan.undo_of.id
    if plan.warnings:
        raw["warnings"] = list(plan.warnings)
    if outcome.containment:
        raw["containment"] = [dict(f) for f in outcome.containment]
    return _event(label, target, plan.subject, outcome.actor, outcome.finished, summary, raw)


def refused_event(
    label: str,
    incident_id: str,
    target: Target,
    actor: str,
    message: str,
    when: float,
    containment: list[dict[str, str]] | None = None,
) -> Event:
    """The timeline event for an attempt stopped before any change was made: by
    missing permissions, the action's own check, or the server's dry run."""
    raw: dict[str, Any] = {
        "action": label,
        "target": target.words(),
        "actor": actor,
        "result": REFUSED,
        "error": message,
        "undoable": False,
        "started": iso(when),
        "incident": incident_id,
        "pod": target.short(),
        "message": f"not started: {message}",
    }
    if containment:
        raw["containment"] = [dict(f) for f in containment]
    summary = f"{label} {target.words()}: not started: {message}"
    return _event(label, target, target, actor, when, summary, raw)


def undo_words(record: ActionRecord) -> str:
    """`isolate of pod shop/web-1 (NetworkPolicy shop/ktriage-quarantine-web-1)`."""
    text = f"{record.action} of {record.target.words()}"
    if record.subject != record.target:
        text += f" ({record.subject.words()})"
    return text


def action_record(outcome: Outcome, record_id: str) -> ActionRecord:
    plan = outcome.plan
    return ActionRecord(
        id=record_id,
        action=plan.label,
        incident_id=plan.incident_id,
        target=plan.target,
        subject=plan.subject,
        time=outcome.finished,
        actor=outcome.actor,
        result=outcome.result,
        summary=outcome.message,
        undo=dict(outcome.undo),
        undoable=outcome.undoable,
        undo_note=outcome.undo_note,
    )
