"""Killed in the middle of an action: the journal's intent survives, and the next start
reads back what is in place and rolls it back or completes it.

A real `kill -9` of a ktriage process (journal_child.py) while the simulated
cluster holds its label patch (the `blackhole` fault): the quarantine policy was
created, the pod was never labelled. Every claim is checked with the real kubectl.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from journal_child import incident_engine
from test_actions_support import (
    REPO,
    SeededPod,
    kubectl,
    make_service,
    unique,
)
from waiting import wait_for

from ktriage.actions import OK, UNDO_KEY, UNDONE
from ktriage.actions.base import QUARANTINE_LABEL
from ktriage.actions.journal import JOURNAL_FILE
from ktriage.actions.unfinished import NOTHING, PARTLY
from ktriage.core.snapshot import render_markdown

pytestmark = pytest.mark.sim

CHILD = Path(__file__).with_name("journal_child.py")


def _policies(sim: Any, tmp_path: Path, ns: str) -> list[str]:
    found = kubectl(sim, tmp_path, "get", "networkpolicy", "-n", ns, "-o", "json")
    return [p["metadata"]["name"] for p in found["items"]]


def _labels(sim: Any, tmp_path: Path, ns: str, pod: str) -> dict[str, str]:
    found = kubectl(sim, tmp_path, "get", "pod", pod, "-n", ns, "-o", "json")
    return found["metadata"].get("labels") or {}


class CutShort(NamedTuple):
    ns: str
    pod: str
    ref: str  # the alert the isolation answered


@pytest.fixture
async def cut_short(sim: Any, tmp_path: Path, seeded_pod: SeededPod) -> CutShort:
    """An isolation of the seeded pod, killed between its policy and its label."""
    ns, pod, ref = seeded_pod.ns, seeded_pod.pod, unique("falco-alert")
    await _kill_between_policy_and_label(sim, tmp_path, ns, pod, ref)
    return CutShort(ns, pod, ref)


async def _kill_between_policy_and_label(
    sim: Any, tmp_path: Path, ns: str, pod: str, ref: str
) -> None:
    """Run an isolation in another process and SIGKILL it while its label patch hangs."""
    sim.faults.blackhole("PATCH", f"/namespaces/{ns}/pods/{pod}", n=10)
    env = dict(os.environ, PYTHONPATH=str(REPO))
    argv = [sys.executable, str(CHILD), str(sim.kubeconfig_path), str(tmp_path), ns, pod, ref]
    child = subprocess.Popen(
        argv, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        await wait_for(
            lambda: sim.faults.held >= 1 or child.poll() is not None,
            timeout=60,
            what="the label patch to reach the cluster",
        )
        assert child.poll() is None, child.communicate()
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL
    sim.faults.reset()  # the lost request's connection ends: it was never applied
    await wait_for(lambda: sim.faults.held == 0, what="the lost request to end")


@pytest.mark.parametrize("how", ["rollback", "complete"])
async def test_killed_between_policy_and_label_is_rolled_back_or_completed_after_restart(
    sim: Any, tmp_path: Path, how: str, cut_short: CutShort
) -> None:
    ns, pod, ref = cut_short

    # What the kill left: an orphan policy, and a journal intent with no result.
    policy = f"ktriage-quarantine-{pod}"
    assert _policies(sim, tmp_path, ns) == [policy]
    assert QUARANTINE_LABEL not in _labels(sim, tmp_path, ns, pod)
    lines = [json.loads(x) for x in (tmp_path / JOURNAL_FILE).read_text().splitlines()]
    assert [line["kind"] for line in lines] == ["intent"]

    # ktriage starts again on the same cluster and snapshot directory.
    engine, incident = incident_engine(ns, pod, ref, time.time() - 60)
    service = make_service(sim, engine, tmp_path)
    try:
        (item,) = await service.unfinished()
        assert item.uid == lines[0]["uid"]
        assert item.verdict == PARTLY
        assert item.summary() == (
            f"done: create NetworkPolicy {ns}/{policy}; not done: patch pod {ns}/{pod} "
            "(an orphan policy: it selects no pod)"
        )
        assert any("cut short" in x and "orphan policy" in x for x in service.still_in_place())
        # The cut-short action is in its incident's timeline, for Detail and snapshots.
        events = engine.correlator.events_of(incident)
        (cut,) = [e for e in events if e.source == "ktriage"]
        assert cut.raw_inline is not None and "cut short" in cut.raw_inline["message"]

        outcome = await service.resolve_unfinished(item.uid, how)
        assert await service.unfinished() == []
    finally:
        service.close()

    if how == "rollback":
        assert outcome.result == UNDONE, outcome.message
        assert _policies(sim, tmp_path, ns) == []
        assert QUARANTINE_LABEL not in _labels(sim, tmp_path, ns, pod)
    else:
        assert outcome.result == OK, outcome.message
        assert _policies(sim, tmp_path, ns) == [policy]
        assert _labels(sim, tmp_path, ns, pod)[QUARANTINE_LABEL] == pod

    # Both paths are journaled: the resolving action's intent and result, then the
    # cut-short intent's own result; nothing is offered again after another restart.
    lines = [json.loads(x) for x in (tmp_path / JOURNAL_FILE).read_text().splitlines()]
    assert [line["kind"] for line in lines] == ["intent", "intent", "result", "result"]
    assert lines[-1]["intent"] == lines[0]["uid"] and lines[-1]["resolved"] == how
    assert lines[-1]["by"] == lines[1]["uid"]
    again = make_service(sim, None, tmp_path)
    try:
        assert await again.unfinished() == []
        kept = [r.uid for r in again.in_place()]
        # Completed: the new isolation is in place (and undoable); rolled back: nothing.
        assert kept == ([] if how == "rollback" else [lines[1]["uid"]])
    finally:
        again.close()


async def test_u_on_the_pod_of_an_action_cut_short_rolls_it_back(
    sim: Any, tmp_path: Path, cut_short: CutShort
) -> None:
    ns, pod, ref = cut_short
    policy = f"ktriage-quarantine-{pod}"
    assert _policies(sim, tmp_path, ns) == [policy]
    (cut,) = [json.loads(x) for x in (tmp_path / JOURNAL_FILE).read_text().splitlines()]

    engine, incident = incident_engine(ns, pod, ref, time.time() - 60)
    service = make_service(sim, engine, tmp_path)
    try:
        # Offered before the start-up check too: the journal says it was cut short.
        offered = await service.refresh((ns, pod))
        assert offered[UNDO_KEY] == (True, f"roll back isolate pod {ns}/{pod}, cut short")
        assert "taken no action" not in service.explain(UNDO_KEY, (ns, pod))

        plan = await service.prepare_undo(incident, (ns, pod))
        assert plan.is_undo and not plan.unchanged
        assert any("cut short" in n and "orphan policy" in n for n in plan.notes)
        assert [(c.verb, c.target.name) for c in plan.changes] == [("delete", policy)]
        assert _policies(sim, tmp_path, ns) == [policy]  # the dry run deleted nothing

        outcome = await service.apply(plan)
        assert outcome.result == UNDONE, outcome.message
        assert _policies(sim, tmp_path, ns) == []
        assert QUARANTINE_LABEL not in _labels(sim, tmp_path, ns, pod)
        assert await service.unfinished() == []
        assert not any("cut short" in x for x in service.still_in_place())
        offered = await service.refresh((ns, pod))
        assert offered[UNDO_KEY] == (False, f"nothing to undo on pod {ns}/{pod}")
    finally:
        service.close()
    # Journaled as the start-up dialog's roll back: the undo's intent and result,
    # then the cut-short intent's result naming it.
    lines = [json.loads(x) for x in (tmp_path / JOURNAL_FILE).read_text().splitlines()]
    assert [line["kind"] for line in lines] == ["intent", "intent", "result", "result"]
    assert lines[-1]["intent"] == cut["uid"] and lines[-1]["resolved"] == "rollback"
    assert lines[-1]["by"] == lines[1]["uid"]


async def test_u_on_an_action_cut_short_with_nothing_in_place_says_so(
    sim: Any, tmp_path: Path, cut_short: CutShort
) -> None:
    ns, pod = cut_short.ns, cut_short.pod
    # Someone removed the orphan policy by hand: nothing of the action is left.
    kubectl(sim, tmp_path, "delete", "networkpolicy", f"ktriage-quarantine-{pod}", "-n", ns)
    service = make_service(sim, None, tmp_path)
    try:
        (item,) = await service.unfinished()
        assert item.verdict == NOTHING
        offered = await service.refresh((ns, pod))
        assert offered[UNDO_KEY] == (False, f"nothing to undo on pod {ns}/{pod}")
        assert service.explain(UNDO_KEY, (ns, pod)) == (
            f"nothing to undo on pod {ns}/{pod}: isolate was cut short here with nothing "
            "of it in place"
        )
    finally:
        service.close()


async def test_snapshot_after_a_restart_lists_earlier_actions_and_evidence(
    sim: Any, tmp_path: Path, seeded_pod: SeededPod
) -> None:
    ns, pod = seeded_pod.ns, seeded_pod.pod
    sim.store.append_log(ns, pod, "app", "GET / 200")
    ref = unique("falco-alert")
    when = time.time() - 60
    engine, incident = incident_engine(ns, pod, ref, when)
    first = make_service(sim, engine, tmp_path)
    try:
        isolated = await first.apply(await first.prepare("i", incident, (ns, pod)))
        dumped = await first.apply(await first.prepare("l", incident, (ns, pod)))
        assert isolated.result == OK and dumped.result == OK
    finally:
        first.close()
    files = [f["path"] for f in dumped.files]

    # A new engine sees the same incident again (the same first signal), and a new
    # service on the same snapshot directory.
    engine2, incident2 = incident_engine(ns, pod, ref, when)
    assert incident2 == incident
    second = make_service(sim, engine2, tmp_path)
    try:
        await second.refresh((ns, pod))
        inc = engine2.correlator.resolve(incident2)
        assert inc is not None
        text = render_markdown(inc, engine2.correlator.events_of(incident2))
    finally:
        second.close()
    assert "No actions were taken" not in text
    assert "No evidence files" not in text
    assert f"NetworkPolicy {ns}/ktriage-quarantine-{pod}" in text
    for path in files:
        assert path in text
    for entry in dumped.files:
        assert entry["sha256"] in text


async def test_an_incident_seen_again_under_another_id_gets_its_earlier_actions(
    sim: Any, tmp_path: Path, seeded_pod: SeededPod
) -> None:
    """An earlier signal arrived after the action in the first run: the incident was
    renamed. The next run sees it under its final id; the first signal still matches."""
    ns, pod = seeded_pod.ns, seeded_pod.pod
    ref = unique("falco-alert")
    engine, incident = incident_engine(ns, pod, ref, time.time() - 60)
    first = make_service(sim, engine, tmp_path)
    try:
        outcome = await first.apply(await first.prepare("c", incident, (ns, pod)))
        assert outcome.result == OK
    finally:
        first.close()
    # The second run reads an earlier alert on the same pod first: another id.
    engine2, _ = incident_engine(ns, pod, unique("earlier-alert"), time.time() - 120)
    later, _ = incident_engine(ns, pod, ref, time.time() - 60)
    engine2.add_events([e for e in later.store if e.signal])
    (inc,) = engine2.correlator.incidents.values()
    assert inc.id != incident
    second = make_service(sim, engine2, tmp_path)
    try:
        await second.refresh((ns, pod))
        actions = [e for e in engine2.correlator.events_of(inc.id) if e.source == "ktriage"]
        assert [e.raw_inline["action"] for e in actions if e.raw_inline] == ["cordon"]
        undo = await second.undo(None, (ns, pod))
        assert undo.result == UNDONE
    finally:
        second.close()


async def test_earlier_actions_wait_for_their_incident_to_show_up(
    sim: Any, tmp_path: Path, seeded_pod: SeededPod
) -> None:
    ns, pod = seeded_pod.ns, seeded_pod.pod
    ref, when = unique("falco-alert"), time.time() - 60
    engine, incident = incident_engine(ns, pod, ref, when)
    first = make_service(sim, engine, tmp_path)
    try:
        assert (await first.apply(await first.prepare("c", incident, (ns, pod)))).result == OK
    finally:
        first.close()
    # The next run starts before its sources have read anything.
    later, _ = incident_engine(ns, pod, ref, when)
    engine2 = type(later)()
    second = make_service(sim, engine2, tmp_path)
    try:
        await second.refresh((ns, pod))
        assert second.attach_earlier() == 0
        engine2.add_events([e for e in later.store if e.signal])
        assert second.attach_earlier() == 1
        assert second.attach_earlier() == 0  # once only
        actions = [e for e in engine2.correlator.events_of(incident) if e.source == "ktriage"]
        assert [e.raw_inline["action"] for e in actions if e.raw_inline] == ["cordon"]
    finally:
        second.close()


def _drop_last_line(path: Path) -> dict[str, Any]:
    """As if ktriage was killed after the change but before writing its result."""
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:-1]))
    return json.loads(lines[-1])


async def test_cut_short_after_every_change_completes_by_recording_it_undoable(
    sim: Any, tmp_path: Path, seeded_pod: SeededPod
) -> None:
    ns, pod = seeded_pod.ns, seeded_pod.pod
    first = make_service(sim, None, tmp_path)
    try:
        assert (await first.apply(await first.prepare("i", "INC-1", (ns, pod)))).result == OK
    finally:
        first.close()
    dropped = _drop_last_line(tmp_path / JOURNAL_FILE)
    assert dropped["kind"] == "result"
    service = make_service(sim, None, tmp_path)
    try:
        (item,) = await service.unfinished()
        assert item.summary() == (
            "everything it planned is in place; only its result was not recorded"
        )
        outcome = await service.resolve_unfinished(item.uid, "complete")
        assert outcome.result == OK and outcome.record is not None
        assert outcome.record.can_undo
        # Nothing was sent: both changes were there already.
        assert [
            json.loads(x)["kind"] for x in (tmp_path / JOURNAL_FILE).read_text().splitlines()
        ] == [
            "intent",
            "result",
        ]
        assert (await service.undo(None, (ns, pod))).result == UNDONE
    finally:
        service.close()
    assert _policies(sim, tmp_path, ns) == []
    assert QUARANTINE_LABEL not in _labels(sim, tmp_path, ns, pod)


async def test_an_undo_cut_short_half_way_is_completed(
    sim: Any, tmp_path: Path, seeded_pod: SeededPod
) -> None:
    ns, pod = seeded_pod.ns, seeded_pod.pod
    first = make_service(sim, None, tmp_path)
    try:
        assert (await first.apply(await first.prepare("i", "INC-1", (ns, pod)))).result == OK
        policy = sim.store.get_obj(
            "networking.k8s.io/v1", "NetworkPolicy", ns, f"ktriage-quarantine-{pod}"
        )
        assert (await first.undo(None, (ns, pod))).result == UNDONE
    finally:
        first.close()
    _drop_last_line(tmp_path / JOURNAL_FILE)
    # Killed after the label was removed, before the policy was deleted.
    policy["metadata"].pop("resourceVersion", None)
    policy["metadata"].pop("uid", None)
    sim.store.apply(policy)
    service = make_service(sim, None, tmp_path)
    try:
        (item,) = await service.unfinished()
        assert item.entry.intent.action == "undo isolate"
        assert item.verdict == PARTLY
        assert [c.state for c in item.checks] == ["in place", "not in place"]
        # The isolation it was undoing is still offered for undo, and named at quit.
        assert len(service.in_place()) == 1
        outcome = await service.resolve_unfinished(item.uid, "complete")
        assert outcome.result == UNDONE, outcome.message
        assert service.in_place() == []
    finally:
        service.close()
    assert _policies(sim, tmp_path, ns) == []
    again = make_service(sim, None, tmp_path)
    try:
        assert await again.unfinished() == []
        assert again.in_place() == []
    finally:
        again.close()
