"""The write-ahead journal on disk: intents and results, the earlier format, and what an
attacker or a kill can do to the file (torn lines, garbage, another cluster, size)."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

from ktriage.actions.base import Change, Target
from ktriage.actions.journal import (
    JOURNAL_FILE,
    MAX_JOURNAL_BYTES,
    MAX_LINE_BYTES,
    ActionJournal,
    Intent,
    Result,
    change_json,
)

CLUSTER = "https://127.0.0.1:6443"
POD = Target("Pod", "shop", "web-1")
POLICY = Target("NetworkPolicy", "shop", "ktriage-quarantine-web-1")


def _intent(uid: str = "s1-A1", **kw: object) -> Intent:
    fields: dict[str, object] = {
        "uid": uid,
        "id": uid.rpartition("-")[2],
        "action": "isolate",
        "incident_id": "INC-1A2B3C",
        "signal": "falco:alert-1",
        "target": POD,
        "subject": POLICY,
        "time": 1_800_000_000.0,
        "actor": "alice",
        "title": "Isolate pod shop/web-1",
        "changes": [
            change_json(Change("create", POLICY, {"kind": "NetworkPolicy"}, summary="deny all")),
            change_json(Change("patch", POD, {"metadata": {"labels": {"q": "web-1"}}})),
        ],
        "undo": {"namespace": "shop", "pod": "web-1", "policy": POLICY.name},
    }
    fields.update(kw)
    return Intent(**fields)  # type: ignore[arg-type]


def _result(uid: str = "s1-A1", **kw: object) -> Result:
    fields: dict[str, object] = {
        "intent": uid,
        "result": "ok",
        "message": "isolated",
        "time": 1_800_000_010.0,
        "undo": {"namespace": "shop", "pod": "web-1", "policy": POLICY.name},
        "undoable": True,
        "files": [],
    }
    fields.update(kw)
    return Result(**fields)  # type: ignore[arg-type]


def _lines(path: Path) -> list[bytes]:
    return (path / JOURNAL_FILE).read_bytes().split(b"\n")


def test_intent_then_result_is_a_completed_record_in_a_private_file(tmp_path: Path) -> None:
    directory = tmp_path / "state" / "snapshots"
    journal = ActionJournal(directory)
    journal.intent(_intent(), CLUSTER)
    loaded = journal.load(CLUSTER)
    assert [e.intent.uid for e in loaded.unfinished()] == ["s1-A1"]
    assert loaded.records == []  # no result yet: not a record, not offered for undo
    journal.result(_result(), CLUSTER)
    loaded = journal.load(CLUSTER)
    assert loaded.unfinished() == []
    (record,) = loaded.records
    assert (record.uid, record.action, record.result, record.can_undo) == (
        "s1-A1",
        "isolate",
        "ok",
        True,
    )
    assert record.undo["policy"] == POLICY.name
    assert stat.S_IMODE((directory / JOURNAL_FILE).stat().st_mode) == 0o600
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700


def test_an_undo_result_marks_the_record_undone(tmp_path: Path) -> None:
    journal = ActionJournal(tmp_path)
    journal.intent(_intent(), CLUSTER)
    journal.result(_result(), CLUSTER)
    journal.intent(_intent("s2-A2", action="undo isolate", undo_of="s1-A1"), CLUSTER)
    assert journal.load(CLUSTER).records[0].undone is False
    journal.result(_result("s2-A2", result="undone", undoable=False), CLUSTER)
    first, undo = journal.load(CLUSTER).records
    assert first.undone is True and first.can_undo is False
    assert undo.action == "undo isolate"


def test_lines_of_the_earlier_format_are_completed_records(tmp_path: Path) -> None:
    journal = ActionJournal(tmp_path)
    # One line per completed action, as the earlier format wrote it.
    old = {
        "cluster": CLUSTER,
        "id": "A3",
        "uid": "old-A3",
        "action": "cordon",
        "incident": "INC-1",
        "target": {"kind": "Pod", "namespace": "shop", "name": "web-1"},
        "subject": {"kind": "Node", "namespace": "", "name": "worker-1"},
        "time": 1.0,
        "actor": "bob",
        "result": "ok",
        "summary": "cordoned node worker-1",
        "undo": {"node": "worker-1"},
        "undoable": True,
        "undo_note": "undo uncordons node worker-1",
    }
    (tmp_path / JOURNAL_FILE).write_text(json.dumps(old) + "\n")
    (record,) = journal.load(CLUSTER).records
    assert record.can_undo and record.undo == {"node": "worker-1"}
    with open(tmp_path / JOURNAL_FILE, "a") as fh:
        fh.write(json.dumps({"cluster": CLUSTER, "undone": "old-A3"}) + "\n")
    (record,) = journal.load(CLUSTER).records
    assert record.undone is True


def test_free_text_is_redacted_and_names_undo_acts_on_are_kept(tmp_path: Path) -> None:
    journal = ActionJournal(tmp_path)
    token = "Authorization: Bearer abcdefghijklmnopqrstuvwxyz0123"
    journal.intent(_intent(title=f"Isolate {token}"), CLUSTER)
    journal.result(_result(message=f"isolated; server said {token}"), CLUSTER)
    text = (tmp_path / JOURNAL_FILE).read_text()
    assert "abcdefghijklmnopqrstuvwxyz0123" not in text
    assert POLICY.name in text and '"name": "web-1"' in text


def test_evidence_files_are_recorded_with_path_sha256_and_bytes(tmp_path: Path) -> None:
    journal = ActionJournal(tmp_path)
    files = [{"path": "INC-1/shop.web-1/app.log", "sha256": "ab" * 32, "bytes": 12}]
    journal.intent(_intent(action="logs"), CLUSTER)
    journal.result(_result(files=files, undoable=False), CLUSTER)
    (entry,) = journal.load(CLUSTER).entries
    assert entry.result is not None and entry.result.files == files


def test_hostile_torn_last_line_is_skipped_and_the_next_line_stays_whole(tmp_path: Path) -> None:
    journal = ActionJournal(tmp_path)
    journal.intent(_intent(), CLUSTER)
    # Killed in the middle of writing a line: no newline at the end of the file.
    with open(tmp_path / JOURNAL_FILE, "ab") as fh:
        fh.write(b'{"v": 2, "kind": "result", "cluster": "' + CLUSTER.encode() + b'", "inte')
    loaded = journal.load(CLUSTER)
    assert loaded.skipped == 1 and len(loaded.unfinished()) == 1
    # The next write starts on a line of its own instead of gluing onto the torn one.
    journal.result(_result(), CLUSTER)
    loaded = journal.load(CLUSTER)
    assert loaded.skipped == 1
    assert loaded.unfinished() == [] and loaded.records[0].result == "ok"


def test_hostile_garbage_lines_are_skipped_and_counted(tmp_path: Path) -> None:
    journal = ActionJournal(tmp_path)
    good = _intent()
    journal.intent(good, CLUSTER)
    garbage = [
        b"\xff\xfe\x00binary",
        b"[1, 2]",
        b'"a string"',
        json.dumps({"cluster": CLUSTER, "kind": "intent"}).encode(),
        json.dumps({"cluster": CLUSTER, "kind": "intent", "uid": "x", "action": "isolate",
                    "target": "shop/web-1", "subject": {}, "time": 1}).encode(),
        json.dumps({"cluster": CLUSTER, "kind": "intent", "uid": "y", "action": "isolate",
                    "target": {"kind": "Pod", "namespace": "shop", "name": "w"},
                    "subject": {"kind": "Pod", "namespace": "shop", "name": "w"},
                    "time": True}).encode(),
        json.dumps({"cluster": CLUSTER, "kind": "result", "intent": "no-such-intent",
                    "result": "ok"}).encode(),
        json.dumps({"cluster": CLUSTER, "kind": "result", "intent": good.uid,
                    "result": "ok", "files": "not a list"}).encode(),
        json.dumps({"cluster": CLUSTER, "kind": "surprise"}).encode(),
        b"[" * 100_000 + b"]" * 100_000,
    ]  # fmt: skip
    with open(tmp_path / JOURNAL_FILE, "ab") as fh:
        fh.write(b"\n".join(garbage) + b"\n")
    loaded = journal.load(CLUSTER)
    assert loaded.skipped == len(garbage)
    assert [e.intent.uid for e in loaded.unfinished()] == [good.uid]


def test_hostile_line_claiming_another_cluster_is_never_used(tmp_path: Path) -> None:
    journal = ActionJournal(tmp_path)
    journal.intent(_intent("s1-A1"), "https://prod.example.com:6443")
    journal.result(_result("s1-A1"), CLUSTER)  # a result here for an intent there
    loaded = journal.load(CLUSTER)
    assert loaded.entries == [] and loaded.records == []
    assert loaded.skipped == 1  # the orphan result
    other = journal.load("https://prod.example.com:6443")
    assert [e.intent.uid for e in other.unfinished()] == ["s1-A1"]


def test_hostile_huge_journal_is_read_from_its_end_and_says_so(tmp_path: Path) -> None:
    path = tmp_path / JOURNAL_FILE
    filler = json.dumps({"cluster": "https://elsewhere", "undone": "x" * 200}).encode() + b"\n"
    with open(path, "wb") as fh:
        fh.write(filler * (MAX_JOURNAL_BYTES // len(filler) + 1000))
    os.chmod(path, 0o600)
    journal = ActionJournal(tmp_path)
    journal.intent(_intent(), CLUSTER)
    assert path.stat().st_size > MAX_JOURNAL_BYTES
    loaded = journal.load(CLUSTER)
    assert [e.intent.uid for e in loaded.unfinished()] == ["s1-A1"]
    assert "only its last lines were read" in loaded.problem
    assert loaded.skipped == 0  # the line cut by reading from the middle is not counted


def test_hostile_huge_line_is_skipped(tmp_path: Path) -> None:
    journal = ActionJournal(tmp_path)
    huge = json.dumps({"cluster": CLUSTER, "kind": "intent", "pad": "x" * MAX_LINE_BYTES})
    with open(tmp_path / JOURNAL_FILE, "w") as fh:
        fh.write(huge + "\n")
    journal.intent(_intent(), CLUSTER)
    loaded = journal.load(CLUSTER)
    assert loaded.skipped == 1 and len(loaded.unfinished()) == 1


def test_a_change_body_too_large_is_kept_as_its_size(tmp_path: Path) -> None:
    body = {"data": "x" * 100_000}
    kept = change_json(Change("create", POLICY, body))
    assert kept["body"] == {"omitted": f"{len(json.dumps(body))} bytes"}
    assert change_json(Change("create", POLICY, {"a": 1}))["body"] == {"a": 1}


def test_hostile_plan_values_json_has_no_type_for_are_kept_as_text(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    journal = ActionJournal(tmp_path)
    when = datetime(2026, 1, 2, tzinfo=UTC)
    journal.intent(_intent(undo={"pod": "web-1", "since": when, "set": {1}}), CLUSTER)
    (entry,) = journal.load(CLUSTER).unfinished()
    assert entry.intent.undo == {"pod": "web-1", "since": str(when), "set": "{1}"}


def test_custom_resource_plurals_are_named_as_crds_name_them() -> None:
    from ktriage.actions.unfinished import _CUSTOM, _plural

    assert _plural("NetworkPolicy") == "networkpolicies"
    assert _plural("Lease") == "leases"
    assert _plural("Ingress") == "ingresses"
    assert _plural("Gateway") == "gateways"
    assert _CUSTOM["NetworkPolicy.projectcalico.org"][2] == "networkpolicies"
