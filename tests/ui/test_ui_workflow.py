"""The incident workflow from the UI: acknowledge, status, owner, notes; kept in the
state directory's database across restarts; a false positive previewed as
allow-list entries and saved only on confirmation; a corrupt or locked database."""

from __future__ import annotations

import sqlite3
import stat
from pathlib import Path

import pytest
from textual import events
from textual.widgets import Input
from ui_helpers import engine_with, make_app, miner_events, notices, screen_text, wait_for

from ktriage.core.allowlist import entries_from_text
from ktriage.core.workflow import (
    DB_FILE,
    FALSE_POSITIVE,
    INVESTIGATING,
    MAX_TEXT,
    NOTE,
    WorkflowStore,
)
from ktriage.engine import Engine
from ktriage.ui.screens.workflow import WorkflowScreen
from ktriage.ui.widgets.detail_view import DetailView
from ktriage.ui.widgets.incident_list import IncidentList

HOSTILE_NOTE = "[bold red]boom[/] \x1b[2J <b>x</b> `tick`"


def _state(tmp_path: Path) -> Path:
    return tmp_path / "state" / "ktriage"  # XDG_STATE_HOME is tmp_path/state (conftest)


def _detail(app) -> str:
    """The Detail pane's logical lines (before wrapping), as plain text."""
    return "\n".join(line.value.plain for line in app.screen.query_one(DetailView).logical)


def _notice(app) -> str:
    return app.screen.notice.text


def _toasts(app) -> str:
    """Every notification given: notices below the panes and toasts over dialogs."""
    return "\n".join(n.message for n in notices(app))


def _responder_events(app, inc_id: str) -> list:
    return [
        e
        for e in app.engine.correlator.events_of(inc_id)
        if e.kind.startswith("workflow-") and e.summary.startswith("responder ")
    ]


async def _type(pilot, text: str) -> None:
    for ch in text:
        await pilot.press(ch if ch != " " else "space")


async def test_w_sets_status_owner_and_notes_shown_in_detail_and_timeline(
    tmp_path, monkeypatch
) -> None:
    monkeypatch.setenv("USER", "alice")
    app = make_app(engine_with(miner_events()), tmp_path)
    async with app.run_test(size=(120, 36)) as pilot:
        inc = app.screen.query_one(IncidentList).selected
        await pilot.press("w")
        await wait_for(pilot, lambda: isinstance(app.screen, WorkflowScreen))
        await pilot.press("a", "2", "o")
        await pilot.press("n")
        await wait_for(pilot, lambda: app.screen.query_one(Input).has_focus)
        app.screen.query_one(Input).value = HOSTILE_NOTE
        await pilot.press("enter")
        work = app.workflow.work_for(inc.id)
        assert work is not None
        assert (work.status, work.owner, work.acknowledged_by) == (INVESTIGATING, "alice", "alice")
        assert [n.value for n in work.notes] == [HOSTILE_NOTE]
        # The dialog shows the note as text: no markup read, the escape shown escaped.
        text = screen_text(app)
        assert "[bold red]boom[/]" in text and "\\x1b[2J" in text
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, WorkflowScreen))
        # The timeline holds them as the responder's events; Detail shows them.
        await wait_for(pilot, lambda: len(_responder_events(app, inc.id)) == 4)
        kinds = [e.kind for e in _responder_events(app, inc.id)]
        assert kinds == ["workflow-ack", "workflow-status", "workflow-owner", "workflow-note"]
        assert all(e.source == "ktriage" and not e.signal for e in _responder_events(app, inc.id))
        await wait_for(pilot, lambda: "[bold red]boom[/]" in _detail(app))
        assert "investigating · owner alice · acknowledged by alice" in _detail(app)
        # The database has them, private.
        db = _state(tmp_path) / DB_FILE
        assert stat.S_IMODE(db.stat().st_mode) == 0o600
        assert stat.S_IMODE(db.parent.stat().st_mode) == 0o700
        stored = WorkflowStore(_state(tmp_path)).load("replay", inc.id)
        assert [c.kind for c in stored.history] == ["ack", "status", "owner", NOTE]


async def test_a_acknowledges_and_m_adds_a_note_from_the_main_screen(tmp_path) -> None:
    app = make_app(engine_with(miner_events()), tmp_path)
    async with app.run_test(size=(120, 36)) as pilot:
        inc = app.screen.query_one(IncidentList).selected
        await pilot.press("A")
        await wait_for(pilot, lambda: f"{inc.id} acknowledged" in _notice(app))
        await pilot.press("m")
        await wait_for(pilot, lambda: isinstance(app.screen, WorkflowScreen))
        await wait_for(pilot, lambda: app.screen.query_one(Input).has_focus)
        await _type(pilot, "checked the node")
        await pilot.press("enter")
        assert [n.value for n in app.workflow.work_for(inc.id).notes] == ["checked the node"]
        # An empty note is refused with the reason, and nothing is added.
        await pilot.press("n", "enter")
        assert "the note is empty" in screen_text(app)
        assert len(app.workflow.work_for(inc.id).notes) == 1


async def test_the_workflow_comes_back_after_a_restart_and_in_the_snapshot(tmp_path) -> None:
    first = make_app(engine_with(miner_events()), tmp_path)
    async with first.run_test(size=(120, 36)) as pilot:
        inc_id = first.screen.query_one(IncidentList).selected.id
        await pilot.press("m")
        await wait_for(pilot, lambda: isinstance(first.screen, WorkflowScreen))
        first.screen.query_one(Input).value = "ci-deploy token used from 203.0.113.50"
        await pilot.press("enter", "3", "escape")
    # A new app over a replay of the same data, on the same state directory.
    again = make_app(engine_with(miner_events()), tmp_path)
    async with again.run_test(size=(120, 36)) as pilot:
        assert again.screen.query_one(IncidentList).selected.id == inc_id
        await wait_for(pilot, lambda: "ci-deploy token used from 203.0.113.50" in _detail(again))
        assert "contained · acknowledged by" in _detail(again)
        await wait_for(pilot, lambda: len(_responder_events(again, inc_id)) == 2)
        await pilot.press("s")
        await wait_for(pilot, lambda: again.last_snapshot is not None)
        body = again.last_snapshot.read_text()
        assert "## Workflow" in body and "| Status | contained |" in body
        assert "ci-deploy token used from 203.0.113.50" in body
        assert body.count("| responder |") == 2  # in the timeline once each


async def test_false_positive_previews_allow_list_entries_and_saves_only_on_y(
    tmp_path, cryptominer_streams
) -> None:
    engine = Engine()
    engine.context_name = "replay"
    engine.replay_files(list(cryptominer_streams))
    app = make_app(engine, tmp_path)
    rules = tmp_path / "config" / "ktriage" / "allowlist.toml"
    async with app.run_test(size=(160, 45)) as pilot:
        inc = app.screen.query_one(IncidentList).selected
        await pilot.press("w")
        await wait_for(pilot, lambda: isinstance(app.screen, WorkflowScreen))
        await pilot.press("5")
        # No reason, no verdict.
        await pilot.press("enter")
        assert "say why the incident is a false-positive" in screen_text(app)
        app.screen.query_one(Input).value = "the CI image benchmark"
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.screen.preview is not None, timeout=20)
        assert app.workflow.work_for(inc.id).status == FALSE_POSITIVE
        preview = app.screen.preview
        assert preview.covered and not rules.exists()
        # The preview says what it marks as expected and what it does not cover.
        lines = "\n".join(preview.lines())
        assert 'users = ["ci-deploy"]' in lines and "Not covered" in lines
        assert "with no arguments would be expected in every pod" in lines
        # esc discards: nothing is written.
        await pilot.press("escape")
        assert app.screen.preview is None and not rules.exists()
        await pilot.press("5")
        app.screen.query_one(Input).value = "the CI image benchmark"
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.screen.preview is not None, timeout=20)
        await pilot.press("y")
        await wait_for(pilot, lambda: rules.exists())
        assert stat.S_IMODE(rules.stat().st_mode) == 0o600
        entries = entries_from_text(rules.read_text(), str(rules))
        assert len(entries) == preview.entries
        assert all(e.reason == "the CI image benchmark" for e in entries)
        assert "Saved" in screen_text(app)


async def test_hostile_megabyte_note_is_capped(tmp_path) -> None:
    app = make_app(engine_with(miner_events()), tmp_path)
    async with app.run_test(size=(120, 36)) as pilot:
        inc = app.screen.query_one(IncidentList).selected
        await pilot.press("m")
        await wait_for(pilot, lambda: isinstance(app.screen, WorkflowScreen))
        box = app.screen.query_one(Input)
        await wait_for(pilot, lambda: box.has_focus)
        box.post_message(events.Paste("[b]" + "x" * 1_000_000))
        await wait_for(pilot, lambda: len(box.value) > 0)
        assert len(box.value) == MAX_TEXT
        await pilot.press("enter")
        (note,) = app.workflow.work_for(inc.id).notes
        assert len(note.value) == MAX_TEXT and note.value.startswith("[b]")
        (event,) = [e for e in _responder_events(app, inc.id) if e.kind == "workflow-note"]
        assert len(event.summary) < 400  # the timeline row is bounded; the snapshot has it all


async def test_hostile_corrupt_database_keeps_the_ui_running_and_the_file(tmp_path) -> None:
    db = _state(tmp_path) / DB_FILE
    db.parent.mkdir(parents=True)
    garbage = b"\x00not SQLite at all" * 1000
    db.write_bytes(garbage)
    app = make_app(engine_with(miner_events()), tmp_path)
    async with app.run_test(size=(120, 36), notifications=True) as pilot:
        await wait_for(pilot, lambda: "move it away" in _toasts(app))
        inc = app.screen.query_one(IncidentList).selected
        await pilot.press("A")
        await wait_for(pilot, lambda: "kept in memory only" in _notice(app))
        # Kept in this session, on the timeline, and the broken file left as it was.
        assert app.workflow.work_for(inc.id).acknowledged
        await wait_for(pilot, lambda: len(_responder_events(app, inc.id)) == 1)
        assert db.read_bytes() == garbage


async def test_hostile_locked_database_keeps_changes_until_it_answers(tmp_path) -> None:
    store = WorkflowStore(_state(tmp_path))
    app = make_app(engine_with(miner_events()), tmp_path)
    async with app.run_test(size=(120, 36)) as pilot:
        inc = app.screen.query_one(IncidentList).selected
        app.workflow.store.timeout = 0.05  # a short wait for the test
        locker = sqlite3.connect(store.path, isolation_level=None)
        locker.execute("BEGIN EXCLUSIVE")
        try:
            await pilot.press("A")
            await wait_for(pilot, lambda: "locked by another program" in _notice(app))
            assert app.workflow.unsaved and app.workflow.work_for(inc.id).acknowledged
        finally:
            locker.execute("ROLLBACK")
            locker.close()
        await pilot.press("m")
        await wait_for(pilot, lambda: isinstance(app.screen, WorkflowScreen))
        app.screen.query_one(Input).value = "after the lock"
        await pilot.press("enter")
        assert not app.workflow.unsaved and not app.workflow.problem
    stored = WorkflowStore(_state(tmp_path)).load("replay", inc.id)
    assert [c.kind for c in stored.history] == ["ack", NOTE]


async def test_the_saved_snapshot_holds_the_blast_radius_computed_and_a_text_form(
    tmp_path,
) -> None:
    from ktriage.core.blast import BlastResult

    app = make_app(engine_with(miner_events()), tmp_path)
    async with app.run_test(size=(120, 36)) as pilot:
        inc = app.screen.query_one(IncidentList).selected
        await pilot.press("s")
        await wait_for(pilot, lambda: app.last_snapshot is not None)
        assert "Not computed for this snapshot" in app.last_snapshot.read_text()
        # As the Blast radius screen does once it has a result.
        app.remember_blast(inc.id, BlastResult(not_seen=["roles of <b>ns</b>"], elapsed=0.5))
        app.last_snapshot = None
        await pilot.press("s")
        await wait_for(pilot, lambda: app.last_snapshot is not None)
        body = app.last_snapshot.read_text()
        assert "Computed in 0.50 s from the live cluster" in body
        assert "- Not seen: `roles of <b>ns</b>`" in body or "`roles of <b>ns</b>`" in body
        app.last_snapshot = None
        app.action_save_snapshot("text")  # the palette's "Save snapshot as plain text"
        await wait_for(pilot, lambda: app.last_snapshot is not None)
        assert app.last_snapshot.suffix == ".txt"
        text = app.last_snapshot.read_text()
        assert "Blast radius\n------------" in text and "roles of <b>ns</b>" in text
        assert "**" not in text and "|---" not in text


@pytest.mark.sim
async def test_the_owner_and_author_is_the_cluster_identity_when_it_is_known(
    tmp_path, monkeypatch
) -> None:
    """Live, the author is who the cluster says we are (SelfSubjectReview), not $USER."""
    from ktriage.kubeclient import client_from_kubeconfig
    from ktriage.sim.runner import SimCluster

    monkeypatch.setenv("USER", "local-login")
    cluster = SimCluster(tmp_path / "sim").start()
    try:
        app = make_app(engine_with(miner_events()), tmp_path, mode="live")
        app.api_client_factory = lambda: client_from_kubeconfig(
            str(cluster.kubeconfig_path), "sim-admin"
        )
        async with app.run_test(size=(120, 36)) as pilot:
            await wait_for(pilot, lambda: app.cluster_identity != "", timeout=20)
            inc = app.screen.query_one(IncidentList).selected
            await pilot.press("w")
            await wait_for(pilot, lambda: isinstance(app.screen, WorkflowScreen))
            await pilot.press("o")
            work = app.workflow.work_for(inc.id)
            assert work.owner == app.cluster_identity != "local-login"
            assert work.history[-1].actor == app.cluster_identity
    finally:
        cluster.stop()


def test_notes_follow_an_incident_renamed_by_an_earlier_signal(tmp_path) -> None:
    """An incident's id comes from its first signal: a late-arriving earlier one renames
    it. Its notes, kept under the old id, still show and land in its timeline."""
    from ui_helpers import T0, signal

    from ktriage.core.model import EntityKind, Severity, entity
    from ktriage.ui.screens.workflow import WorkflowKeeper

    pod = entity(EntityKind.POD, "shop", "web-1")
    engine = engine_with([signal(T0 + 60, "falco", "f1", "shell", Severity.HIGH, "shell", (pod,))])
    (old_id,) = engine.correlator.incidents
    keeper = WorkflowKeeper(_state(tmp_path), "prod", lambda: "alice")
    assert keeper.open() == ""
    keeper.apply(old_id, NOTE, "looked at it")
    engine.add_events([signal(T0, "audit", "a0", "exec", Severity.HIGH, "exec", (pod,))])
    (new_id,) = engine.correlator.incidents
    assert new_id != old_id and engine.correlator.resolve(old_id).id == new_id
    work = keeper.work_for(new_id, engine)
    assert work is not None and [n.value for n in work.notes] == ["looked at it"]
    assert keeper.sync(engine) == 1
    events = engine.correlator.events_of(new_id)
    assert [e.summary for e in events if e.kind == "workflow-note"] == [
        "responder alice: note: looked at it"
    ]
    assert keeper.sync(engine) == 0  # once
