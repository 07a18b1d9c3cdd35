"""The responders' workflow store: statuses, owner, notes, kept across restarts."""

from __future__ import annotations

import itertools
import stat
from pathlib import Path

import pytest

from ktriage.core.allowlist import AllowListError, entries_from_text
from ktriage.core.model import Event, Severity
from ktriage.core.workflow import (
    CONTAINED,
    DB_FILE,
    FALSE_POSITIVE,
    INVESTIGATING,
    MAX_TEXT,
    NEW,
    RESOLVED,
    Change,
    StoreUnavailable,
    WorkflowError,
    WorkflowStore,
    false_positive_rules,
    save_rules,
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


# ---- a false positive becomes allow-list entries -----------------------------------


def _audit_signal(user: str, *, ref: str = "a1", name: str = "web-1") -> Event:
    return Event(
        time=100,
        source="audit",
        ref=ref,
        kind="secret-read",
        severity=Severity.MEDIUM,
        summary=f"{user} read secret {name}",
        signal=True,
        raw_inline={
            "user": {"username": user},
            "verb": "get",
            "objectRef": {"resource": "secrets", "namespace": "shop", "name": name},
            "requestURI": f"/api/v1/namespaces/shop/secrets/{name}",
        },
    )


def _exec_signal(binary: str, args: str, *, ref: str = "t1") -> Event:
    return Event(
        time=110,
        source="tetragon",
        ref=ref,
        kind="download",
        severity=Severity.HIGH,
        summary=f"{binary} {args}",
        signal=True,
        raw_inline={
            "process_exec": {
                "process": {"binary": binary, "arguments": args},
                "parent": {"binary": "/bin/sh"},
            }
        },
    )


def test_false_positive_rules_cover_exactly_the_signals_they_were_written_for() -> None:
    events = [
        _audit_signal("system:serviceaccount:ci:backup"),
        _audit_signal("system:serviceaccount:ci:backup", ref="a2"),  # the same: one entry
        _exec_signal("/usr/bin/curl", "-s http://backup.internal/ok"),
        _exec_signal("/bin/sh", "", ref="t2"),  # a bare shell: never allowed by preview
    ]
    preview = false_positive_rules("INC-1", events, "nightly backup")
    assert preview.entries == 2
    assert len(preview.covered) == 3
    (left,) = preview.not_covered
    assert "expected in every pod" in left[1]
    entries = entries_from_text(preview.toml, "test")
    audit = next(e for e in entries if e.source == "audit")
    # Another identity, verb, namespace or object is still a signal.
    args = ("system:serviceaccount:ci:backup", "get", "secrets", "shop", "web-1", "/x")
    assert audit.matches_request(*args, lambda: None, "secret-read")
    assert not audit.matches_request("mallory", *args[1:], lambda: None, "secret-read")
    assert not audit.matches_request(args[0], "list", *args[2:], lambda: None, "secret-read")
    assert not audit.matches_request(*args[:3], "prod", *args[4:], lambda: None, "secret-read")
    assert not audit.matches_request(*args, lambda: None, "token-request")
    runtime = next(e for e in entries if e.source == "tetragon")
    assert runtime.matches_process("/usr/bin/curl", "-s http://backup.internal/ok", "/bin/sh",
                                   "download")  # fmt: skip
    assert not runtime.matches_process("/usr/bin/curl", "-s http://evil/x", "/bin/sh", "download")
    assert "An API entry matches that identity only" in "\n".join(preview.lines())


def test_hostile_names_cannot_inject_allow_list_entries(tmp_path: Path) -> None:
    """A user name or argument holding TOML (quotes, newlines, a table header) stays
    one string value: the file holds exactly the entries previewed."""
    evil_user = 'x"]\n[[allow]]\nname = "all"\nusers = ["*"]\nnames = ["*"]\n#'
    evil_args = '-c \'a""" \\u0000 \x7f \x1b[2J\' ]] [[allow]]'
    events = [_audit_signal(evil_user), _exec_signal("/usr/bin/python3", evil_args)]
    preview = false_positive_rules("INC-2", events, 'why"\n[[allow]]')
    entries = entries_from_text(preview.toml, "test")
    assert len(entries) == preview.entries == 2
    assert {e.name for e in entries} == {"INC-2 false positive 1", "INC-2 false positive 2"}
    audit = next(e for e in entries if e.source == "audit")
    assert audit.users == frozenset({evil_user})
    assert len(preview.covered) == 2
    path = save_rules(tmp_path / "cfg" / "allowlist.toml", preview, "INC-2")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    # Appending again keeps the file loadable; a broken file is refused, not overwritten.
    save_rules(path, preview, "again")
    assert len(entries_from_text(path.read_text(), "saved")) == 4
    path.write_text("[[allow]\nbroken")
    with pytest.raises(AllowListError):
        save_rules(path, preview)
    assert path.read_text() == "[[allow]\nbroken"


def test_a_change_made_while_the_database_was_locked_is_saved_with_its_time(
    tmp_path: Path,
) -> None:
    import sqlite3

    store = WorkflowStore(tmp_path, timeout=0.05)
    locker = sqlite3.connect(store.path, isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(StoreUnavailable, match="locked"):
            store.add_note("prod", "INC-7", "while locked", actor="alice")
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    saved = store.save("prod", "INC-7", Change(1234.5, "alice", "note", "while locked"))
    assert saved.row > 0
    (note,) = store.load("prod", "INC-7").notes
    assert (note.time, note.actor, note.value, note.row) == (1234.5, "alice", "while locked",
                                                             saved.row)  # fmt: skip
