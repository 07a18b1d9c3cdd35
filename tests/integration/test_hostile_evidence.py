"""Evidence and the actions journal are exits too: the pod's YAML keeps no secret and
hides no character; the container logs stay byte-exact (forensics needs them) and
private; the journal's free text is redacted and its names stay exact."""

from __future__ import annotations

import json
import stat
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from test_actions_support import (
    engine_with_incident,
    make_service,
    seed_pod,
    unique,
)

from ktriage.actions import OK
from ktriage.actions.base import Target
from ktriage.actions.journal import JOURNAL_FILE, ActionJournal, Intent, Result
from ktriage.core.snapshot import render_markdown

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit"))
from hostile_records import ALL, ENV_SECRETS, HIDDEN, leaks
from secret_corpus import JWT, OPAQUE

LOG_LINE = f"login with Authorization: Bearer {JWT} password={OPAQUE}\t{HIDDEN}\n"


def _seed_hostile_pod(sim: Any, ns: str, pod: str) -> None:
    seed_pod(sim.store, ns, pod, node="n1", containers=("app",))

    def hostile(obj: dict) -> None:
        container = obj["spec"]["containers"][0]
        container["env"] = [
            {"name": "DB_PASSWORD", "value": ENV_SECRETS[0]},
            {"name": "AWS_SECRET_ACCESS_KEY", "value": ENV_SECRETS[1]},
            {"name": "apiKey", "value": ENV_SECRETS[2]},
            {"name": "HOME", "value": "/root"},
        ]
        container["args"] = ["--token", OPAQUE, "sh", "-c", ALL]
        obj["metadata"].setdefault("annotations", {})["note"] = HIDDEN + ALL

    sim.store.mutate("v1", "Pod", ns, pod, hostile)
    sim.store.append_log(ns, pod, "app", LOG_LINE.rstrip("\n"))


@pytest.mark.sim
async def test_hostile_secret_evidence_pod_yaml_is_redacted_and_logs_exact(
    sim: Any, tmp_path: Path
) -> None:
    ns, pod = unique("shop"), unique("web")
    _seed_hostile_pod(sim, ns, pod)
    engine, incident = engine_with_incident(ns, pod)
    snapshots = tmp_path / "snapshots"
    service = make_service(sim, engine, snapshots)
    try:
        plan = await service.prepare("l", incident, (ns, pod))
        outcome = await service.apply(plan)
        assert outcome.result == OK, outcome.message
        directory = Path(plan.state["directory"])
        pod_yaml = (directory / "pod.yaml").read_text()
        assert leaks(pod_yaml) == []
        assert pod_yaml.isascii()  # hidden characters written as YAML escapes
        doc = yaml.safe_load(pod_yaml)
        env = {e["name"]: e["value"] for e in doc["spec"]["containers"][0]["env"]}
        assert env == {
            "DB_PASSWORD": "<redacted>",
            "AWS_SECRET_ACCESS_KEY": "<redacted>",
            "apiKey": "<redacted>",
            "HOME": "/root",
        }
        # Loading the YAML gives the (redacted) text back exactly, escapes and all.
        assert doc["metadata"]["annotations"]["note"].startswith(HIDDEN)
        # The container's log is evidence: byte-exact, readable by the user alone.
        log = directory / "app.log"
        assert log.read_bytes() == LOG_LINE.encode()
        for path in directory.iterdir():
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
        for d in (directory, directory.parent, directory.parent.parent, snapshots):
            assert stat.S_IMODE(d.stat().st_mode) == 0o700, d
        # The action's record, in the snapshot, holds nothing either.
        events = engine.correlator.events_of(incident)
        markdown = render_markdown(engine.correlator.resolve(incident), events)
        assert leaks(markdown) == []
    finally:
        service.close()


def test_hostile_secret_journal_free_text_is_redacted_and_names_exact(tmp_path: Path) -> None:
    target = Target("Pod", "shop", "web-1")
    policy = Target("NetworkPolicy", "shop", "ktriage-quarantine-web-1")
    undo = {"namespace": "shop", "pod": "web-1", "policy": policy.name, "value": "web-1"}
    journal = ActionJournal(tmp_path / "state")
    cluster = "https://127.0.0.1:6443"
    # Written before the change (intent) and after it (result), as every action is.
    journal.intent(
        Intent(
            uid="s-1",
            id="1",
            action="isolate",
            incident_id="INC-1",
            signal="",
            target=target,
            subject=policy,
            time=1.0,
            actor=f"bob token={OPAQUE}",
            title=f"Isolate pod shop/web-1 ({ALL})",
            undo=undo,
        ),
        cluster,
    )
    journal.result(
        Result(
            intent="s-1",
            result="ok",
            message=f"isolated; the server said: {ALL}",
            time=2.0,
            actor=f"bob token={OPAQUE}",
            undo=undo,
            undoable=True,
            undo_note=f"undo with kubectl --token {OPAQUE} delete ...",
        ),
        cluster,
    )
    path = tmp_path / "state" / JOURNAL_FILE
    text = path.read_text()
    assert leaks(text) == [] and OPAQUE not in text
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    intent_line, result_line = [json.loads(x) for x in text.splitlines()]
    assert intent_line["undo"] == undo and intent_line["target"]["name"] == "web-1"
    assert result_line["undo"] == undo
    # Read back after a restart: still offered for undo, on the same objects.
    (loaded,) = journal.load(cluster).records
    assert loaded.target == target and loaded.subject == policy and loaded.undo == undo
