"""Undo after a restart: undoable actions are kept on disk, by cluster."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from test_actions_support import (
    SeededPod,
    engine_with_incident,
    kubectl,
    make_service,
    seed_namespace,
    seed_node,
    seed_pod,
    unique,
)
from waiting import wait_for

from ktriage.actions import OK, UNDO_KEY, UNDONE, ActionError
from ktriage.actions.base import QUARANTINE_LABEL
from ktriage.actions.journal import JOURNAL_FILE

pytestmark = pytest.mark.sim


def _isolated(sim: Any, tmp_path: Path, ns: str, pod: str) -> bool:
    policies = kubectl(sim, tmp_path, "get", "networkpolicy", "-n", ns, "-o", "json")
    labels = sim.store.get_obj("v1", "Pod", ns, pod)["metadata"].get("labels") or {}
    return bool(policies["items"]) and QUARANTINE_LABEL in labels


async def test_an_isolation_is_undone_after_a_restart(
    sim: Any, tmp_path: Path, seeded_pod: SeededPod
) -> None:
    ns, pod = seeded_pod.ns, seeded_pod.pod
    engine, incident = engine_with_incident(ns, pod)
    first = make_service(sim, engine, tmp_path)
    try:
        outcome = await first.apply(await first.prepare("i", incident, (ns, pod)))
        assert outcome.result == OK
        # What quitting now would leave in the cluster.
        assert first.in_place() == [outcome.record]
    finally:
        first.close()
    assert _isolated(sim, tmp_path, ns, pod)
    journal = tmp_path / JOURNAL_FILE
    assert journal.stat().st_mode & 0o777 == 0o600
    # Write-ahead: the intent (the exact changes, what undo needs), then the result.
    intent, line = [json.loads(x) for x in journal.read_text().splitlines()]
    assert intent["kind"] == "intent" and intent["action"] == "isolate"
    assert intent["target"]["name"] == pod
    assert [(c["verb"], c["target"]["kind"]) for c in intent["changes"]] == [
        ("create", "NetworkPolicy"),
        ("patch", "Pod"),
    ]
    assert intent["undo"]["policy"] == f"ktriage-quarantine-{pod}"
    assert intent["cluster"].startswith("https://127.0.0.1:")
    assert line["kind"] == "result" and line["intent"] == intent["uid"]
    assert line["result"] == OK and line["undoable"] is True

    # ktriage quit and started again: a new service, a new engine, no memory.
    engine2, _ = engine_with_incident(ns, pod)
    second = make_service(sim, engine2, tmp_path)
    try:
        offered = await second.refresh((ns, pod))
        assert offered[UNDO_KEY] == (
            True,
            f"undo isolate of pod {ns}/{pod} (NetworkPolicy {ns}/ktriage-quarantine-{pod})",
        )
        # Taken by the earlier run and still in place: quitting names it too.
        assert [r.uid for r in second.in_place()] == [intent["uid"]]
        outcome = await second.undo(None, (ns, pod))
        assert outcome.result == UNDONE
    finally:
        second.close()
    assert not _isolated(sim, tmp_path, ns, pod)
    undo_intent, undo_result = [json.loads(x) for x in journal.read_text().splitlines()[-2:]]
    assert undo_intent["action"] == "undo isolate"
    assert undo_intent["undo_of"] == intent["uid"]
    assert undo_result["intent"] == undo_intent["uid"] and undo_result["result"] == UNDONE

    # Once undone, it is not offered again, even after another restart.
    third = make_service(sim, None, tmp_path)
    try:
        offered = await third.refresh((ns, pod))
        assert offered[UNDO_KEY] == (False, f"nothing to undo on pod {ns}/{pod}")
        with pytest.raises(ActionError, match=f"^nothing to undo on pod {ns}/{pod}$"):
            await third.prepare_undo(None, (ns, pod))
        # New records continue the numbering instead of reusing an id.
        assert next(third._ids) > int(undo_intent["id"][1:])
    finally:
        third.close()


async def test_records_of_another_cluster_or_unreadable_lines_are_not_used(
    sim: Any, tmp_path: Path, seeded_pod: SeededPod
) -> None:
    ns, pod = seeded_pod.ns, seeded_pod.pod
    target = {"kind": "Pod", "namespace": ns, "name": pod}
    elsewhere = {
        "cluster": "https://prod.example.com:6443",
        "id": "A1",
        "action": "isolate",
        "incident": "INC-1",
        "target": target,
        "subject": {"kind": "NetworkPolicy", "namespace": ns, "name": "ktriage-quarantine-x"},
        "time": 1.0,
        "actor": "alice",
        "result": "ok",
        "summary": "isolated",
        "undo": {"namespace": ns, "pod": pod, "policy": "ktriage-quarantine-x", "value": pod},
        "undoable": True,
        "undo_note": "",
    }
    (tmp_path / JOURNAL_FILE).write_text(
        json.dumps(elsewhere) + "\n" + '{"cluster": "https://127.0.0.1", "id": \n' + "[1, 2]\n"
    )
    service = make_service(sim, None, tmp_path)
    try:
        offered = await service.refresh((ns, pod))
        # Undo on this cluster of what was done on another would act on the wrong pod.
        assert offered[UNDO_KEY] == (False, f"nothing to undo on pod {ns}/{pod}")
        assert service.records() == []
        assert service.journal_problem == (
            f"2 unreadable line(s) in {tmp_path / JOURNAL_FILE} were skipped"
        )
    finally:
        service.close()


async def test_an_unreadable_journal_is_said_once(
    sim: Any, tmp_path: Path, seeded_pod: SeededPod
) -> None:
    from ktriage.ui.screens.action_confirm import ActionsProvider

    ns, pod = seeded_pod.ns, seeded_pod.pod
    (tmp_path / JOURNAL_FILE).write_text("not json\n")
    notes: list[tuple[str, str]] = []

    class App:
        def notify(self, message: str, *, severity: str, timeout: float, markup: bool) -> None:
            assert markup is False
            notes.append((message, severity))

    service = make_service(sim, None, tmp_path)
    try:
        provider = ActionsProvider(App(), service)
        provider.service.available((ns, pod))  # checks permissions in the background
        await wait_for(lambda: bool(notes))
        service.available((ns + "-other", pod))
        await wait_for(lambda: not any(t for t in service._refreshing.values() if not t.done()))
    finally:
        service.close()
    assert notes == [
        (
            f"Earlier actions, for undo: 1 unreadable line(s) in {tmp_path / JOURNAL_FILE} "
            "were skipped",
            "warning",
        )
    ]


async def test_detach_is_journaled_before_and_after_like_every_action(
    sim: Any, tmp_path: Path
) -> None:
    ns, node, pod = unique("shop"), unique("node"), unique("web")
    seed_namespace(sim.store, ns)
    seed_node(sim.store, node)
    seed_pod(sim.store, ns, pod, node=node, labels={"app": "web", "tier": "front"})
    sim.store.apply(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "web", "namespace": ns},
            "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]},
        }
    )
    engine, incident = engine_with_incident(ns, pod)
    service = make_service(sim, engine, tmp_path)
    try:
        outcome = await service.apply(await service.prepare("D", incident, (ns, pod)))
        assert outcome.result == OK, outcome.message
    finally:
        service.close()
    labels = kubectl(sim, tmp_path, "get", "pod", pod, "-n", ns, "-o", "json")["metadata"]
    assert "app" not in labels["labels"] and labels["labels"]["tier"] == "front"
    intent, result = [json.loads(x) for x in (tmp_path / JOURNAL_FILE).read_text().splitlines()]
    assert intent["action"] == "detach" and intent["kind"] == "intent"
    (change,) = intent["changes"]
    assert change["verb"] == "patch" and change["body"]["metadata"]["labels"] == {"app": None}
    # What restoring needs is known before the patch is sent.
    assert intent["undo"]["restore"] == {"app": "web"}
    assert result["intent"] == intent["uid"] and result["result"] == OK
    # After a restart the detach is a record of this cluster (not undoable by ktriage).
    again = make_service(sim, None, tmp_path)
    try:
        await again.refresh((ns, pod))
        (record,) = again.records()
        assert record.action == "detach" and not record.can_undo
    finally:
        again.close()


async def test_leftovers_of_a_failed_undo_are_named_at_quit_even_after_a_restart(
    sim: Any, tmp_path: Path, seeded_pod: SeededPod
) -> None:
    ns, pod = seeded_pod.ns, seeded_pod.pod
    engine, incident = engine_with_incident(ns, pod)
    first = make_service(sim, engine, tmp_path)
    policy = f"ktriage-quarantine-{pod}"
    try:
        assert (await first.apply(await first.prepare("i", incident, (ns, pod)))).result == OK
        plan = await first.prepare_undo(incident, (ns, pod))
        # The label goes, then deleting the policy keeps failing.
        sim.faults.match = f"/networkpolicies/{policy}"
        sim.faults.fail_next(10, 500)
        undo = await first.apply(plan)
        sim.faults.reset()
        assert undo.result == "failed" and undo.leftovers
        left = first.still_in_place()
        assert any("left by a failed undo isolate" in x and policy in x for x in left), left
    finally:
        first.close()
    assert policy in [
        p["metadata"]["name"]
        for p in kubectl(sim, tmp_path, "get", "networkpolicy", "-n", ns, "-o", "json")["items"]
    ]
    second = make_service(sim, None, tmp_path)
    try:
        await second.refresh((ns, pod))
        assert any(
            "left by a failed undo isolate" in x and policy in x for x in second.still_in_place()
        )
        # Undone for good this time: the leftover is no longer named.
        assert (await second.undo(None, (ns, pod))).result == UNDONE
        assert not any(policy in x for x in second.still_in_place())
    finally:
        second.close()


async def test_hostile_unwritable_journal_still_contains_and_says_it_was_not_saved(
    sim: Any, tmp_path: Path, seeded_pod: SeededPod
) -> None:
    ns, pod = seeded_pod.ns, seeded_pod.pod
    (tmp_path / JOURNAL_FILE).mkdir()  # no file can be written there
    engine, incident = engine_with_incident(ns, pod)
    service = make_service(sim, engine, tmp_path)
    try:
        outcome = await service.apply(await service.prepare("c", incident, (ns, pod)))
        # During an incident containment matters more than the journal: it goes ahead,
        # and says plainly that undo will not survive a restart.
        assert outcome.result == OK
        assert outcome.message.endswith("undo works until ktriage quits)")
        assert f"not saved to {tmp_path / JOURNAL_FILE}" in outcome.message
        assert service.journal_problem.startswith("not saved to")
        assert [r.uid for r in service.in_place()] == [outcome.record.uid]
        assert (await service.undo(incident, (ns, pod))).result == UNDONE
    finally:
        service.close()
