"""A node's OOM kill report names the process it killed: the helper the correlator can
use to tie the report to the incident whose pods ran that process."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from ktriage.core.correlate import Correlator
from ktriage.core.detect.podstate import killed_process, warning_event
from ktriage.core.model import EntityKind, Severity
from ktriage.core.replay import Replayer
from ktriage.sim.audit import AuditWriter
from ktriage.sim.clock import ManualClock
from ktriage.sim.outputs import SimOutputs
from ktriage.sim.scenario.format import load_scenario
from ktriage.sim.scenario.player import ScenarioPlayer
from ktriage.sim.storage.store import ClusterStore

START = 1_800_000_000.0

MESSAGE = (
    "Memory cgroup out of memory: Killed process 33760 (xmrig) total-vm:2734560kB, "
    "anon-rss:502112kB, file-rss:3008kB, shmem-rss:0kB, UID:0 pgtables:1168kB oom_score_adj:984"
)


def node_oom(message: str = MESSAGE) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"namespace": "default", "name": "worker-1.1", "uid": "u1",
                     "resourceVersion": "7", "creationTimestamp": "2027-01-02T08:02:40Z"},
        "involvedObject": {"kind": "Node", "name": "worker-1"},
        "type": "Warning",
        "reason": "OOMKilling",
        "message": message,
        "source": {"component": "kernel-monitor", "host": "worker-1"},
        "lastTimestamp": "2027-01-02T08:02:40Z",
    }  # fmt: skip


def test_the_node_oom_event_names_the_killed_process() -> None:
    (ev,) = warning_event(node_oom())
    assert ev.kind == "oomkilled" and not ev.signal
    assert killed_process(ev.summary) == (33760, "xmrig")


@pytest.mark.parametrize(
    "text",
    ["Killed process 12 ()", "Killed process x (xmrig)", "Killed process 1 (a\x1b[2Jb)",
     "Killed process 99999999999 (xmrig)", "killed process 1 (xmrig)"],
)  # fmt: skip
def test_hostile_malformed_kill_reports_name_no_process(text: str) -> None:
    assert killed_process(text) is None


def test_hostile_huge_kill_report_is_read_briefly() -> None:
    """A crafted message cannot make the pattern slow, nor hide a name far away."""
    text = "Killed process 1 (" * 200_000 + "x" * 1_000_000
    start = time.perf_counter()
    assert killed_process(text) is None
    assert killed_process("x" * 2000 + "Killed process 5 (xmrig)") is None
    assert time.perf_counter() - start < 0.5


def test_cryptominer_node_oom_reports_join_the_miners_incident(tmp_path: Path) -> None:
    """Tetragon and Falco saw xmrig in the storefront pod on worker-1; the kernel's
    reports that it killed xmrig on worker-1 are that incident's context."""
    correlator = played_and_replayed("cryptominer", tmp_path)
    reports = [e for e in correlator.store if e.kind == "oomkilled" and e.first(EntityKind.NODE)
               and killed_process(e.summary)]  # fmt: skip
    assert len(reports) == 4
    (miner,) = [i for i in correlator.incidents.values() if i.severity >= Severity.HIGH]
    in_incident = {e.id for e in correlator.events_of(miner.id)}
    assert all(e.id in in_incident for e in reports)


def test_a_node_oom_report_of_a_process_no_incident_ran_stays_apart(tmp_path: Path) -> None:
    """Nodes are weak: a report naming another process on the same node links nothing."""
    correlator = played_and_replayed("cryptominer", tmp_path)
    before = {i.id: len(correlator.events_of(i.id)) for i in correlator.incidents.values()}
    other = warning_event(node_oom(MESSAGE.replace("(xmrig)", "(postgres)")))[0]
    other.time = max(e.time for e in correlator.store)
    correlator.add(other)
    after = {i.id: len(correlator.events_of(i.id)) for i in correlator.incidents.values()}
    assert after == before


def played_and_replayed(name: str, tmp: Path) -> Correlator:
    clock = ManualClock(start=START)
    outputs = SimOutputs(tmp)
    store = ClusterStore(clock)
    player = ScenarioPlayer(
        load_scenario(name), store=store, audit=AuditWriter(outputs, clock),
        outputs=outputs, clock=clock,
    )  # fmt: skip
    player.play_all()
    outputs.close()
    correlator = Correlator()
    Replayer(correlator).replay([outputs.audit_path, outputs.falco_path, outputs.tetragon_path])
    # What the kube source reads live: the cluster's Warning events.
    for obj in sorted(store.list_objs("v1", "Event"), key=lambda o: o.get("lastTimestamp", "")):
        for ev in warning_event(obj):
            correlator.add(ev)
    return correlator
