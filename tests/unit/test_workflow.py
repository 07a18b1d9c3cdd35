"""The responders' workflow store: statuses, owner, notes, kept across restarts."""

from __future__ import annotations

import itertools
import stat
from pathlib import Path

import pytest

from ktriage.core.workflow import (
    CONTAINED,
    DB_FILE,
    FALSE_POSITIVE,
    INVESTIGATING,
    MAX_TEXT,
    NEW,
    RESOLVED,
    WorkflowError,
    WorkflowStore,
)


def _store(directory: Path) -> WorkflowStore:
    ticks = itertools.count(1_800_000_000)
    return WorkflowStore(directory, clock=lambda: float(next(ticks)))


def test_an_incident_moves_through_its_statuses(tmp_path: Path) -> None:
    store = _store(tmp_path)
    assert store.load("prod", "INC-1").status == NEW
    store.acknowledge("prod", "INC-1", actor="alice")
    store.set_status("prod", "INC-1", INVESTIGATING, actor="alice")
    store.set_owner("prod", "INC-1", "bob", actor="alice")
    store.add_note("prod", "INC-1", "ci-deploy token used from 203.0.113.50", actor="bob")
    store.set_status("prod", "INC-1", CONTAINED, actor="bob")
    store.set_status("prod", "INC-1", RESOLVED, actor="bob")
    work = store.load("prod", "INC-1")
    assert (work.status, work.owner, work.acknowledged_by) == (RESOLVED, "bob", "alice")
    assert [n.value for n in work.notes] == ["ci-deploy token used from 203.0.113.50"]
    assert [c.words() for c in work.history][:3] == [
        "acknowledged",
        "status → investigating",
        "owner → bob",
    ]
    assert [c.time for c in work.history] == sorted(c.time for c in work.history)


def test_a_false_positive_needs_a_reason(tmp_path: Path) -> None:
    store = _store(tmp_path)
    with pytest.raises(WorkflowError, match="say why"):
        store.set_status("prod", "INC-2", FALSE_POSITIVE)
    store.set_status("prod", "INC-2", FALSE_POSITIVE, reason="nightly backup job")
    work = store.load("prod", "INC-2")
    assert (work.status, work.reason) == (FALSE_POSITIVE, "nightly backup job")
    with pytest.raises(WorkflowError, match="unknown status"):
        store.set_status("prod", "INC-2", "closed")


def test_the_state_survives_a_restart_and_stays_per_cluster(tmp_path: Path) -> None:
    _store(tmp_path).add_note("prod", "INC-3", "first look", actor="alice")
    _store(tmp_path).set_status("staging", "INC-3", INVESTIGATING)
    again = _store(tmp_path)
    assert [n.value for n in again.load("prod", "INC-3").notes] == ["first look"]
    assert again.load("prod", "INC-3").status == NEW
    assert again.load("staging", "INC-3").status == INVESTIGATING
    assert set(again.load_all("prod")) == {"INC-3"}


def test_two_stores_on_one_directory_see_each_others_changes(tmp_path: Path) -> None:
    first, second = _store(tmp_path), _store(tmp_path)
    first.add_note("prod", "INC-4", "from the first terminal")
    assert [n.value for n in second.load("prod", "INC-4").notes] == ["from the first terminal"]


def test_the_database_is_readable_by_the_user_alone(tmp_path: Path) -> None:
    store = _store(tmp_path / "state" / "ktriage")
    store.add_note("prod", "INC-5", "x")
    files = [p for p in (tmp_path / "state" / "ktriage").iterdir() if p.name.startswith(DB_FILE)]
    assert files
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    for d in (tmp_path / "state", tmp_path / "state" / "ktriage"):
        assert stat.S_IMODE(d.stat().st_mode) == 0o700


def test_hostile_note_text_is_kept_as_text_and_bounded(tmp_path: Path) -> None:
    store = _store(tmp_path)
    hostile = "[bold red]x[/] \x1b]52;c;aGk=\x07 '; DROP TABLE changes; -- \x00end"
    store.add_note("prod", "INC-6", hostile, actor="[b]mallory[/b]")
    (note,) = store.load("prod", "INC-6").notes
    assert note.value == hostile.replace("\x00", "")  # stored as typed, NUL aside
    assert note.actor == "[b]mallory[/b]"
    assert store.load("prod", "INC-6").history  # the table is still there
    with pytest.raises(WorkflowError, match="longer than"):
        store.add_note("prod", "INC-6", "y" * (MAX_TEXT + 1))
    with pytest.raises(WorkflowError, match="empty"):
        store.add_note("prod", "INC-6", "  \x00 ")


def test_hostile_garbage_database_gives_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / DB_FILE).write_bytes(b"\x00garbage, not SQLite" * 100)
    with pytest.raises(WorkflowError, match="move it away"):
        _store(tmp_path)
