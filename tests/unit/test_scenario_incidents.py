"""Each bundled scenario, played by the sim and replayed through ktriage's pipeline,
gives the incidents a security engineer would expect."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from ktriage.core.config import Config, config_from_dict
from ktriage.core.correlate import Correlator
from ktriage.core.model import EntityKind, Event, Incident, Severity
from ktriage.core.replay import Replayer
from ktriage.sim.audit import AuditWriter
from ktriage.sim.clock import ManualClock
from ktriage.sim.outputs import SimOutputs
from ktriage.sim.scenario.format import load_scenario
from ktriage.sim.scenario.player import ScenarioPlayer
from ktriage.sim.storage.store import ClusterStore

START = 1_800_000_000.0
SRE_CONFIG = {
    "suppress": [{"user": "sre-alice", "namespace": "dev", "reason": "expected SRE access"}]
}


@pytest.fixture(scope="module")
def streams(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], list[Path]]:
    """The audit, Falco and Tetragon files of a scenario played to its end."""
    cache: dict[str, list[Path]] = {}

    def get(name: str) -> list[Path]:
        if name not in cache:
            clock = ManualClock(start=START)
            outputs = SimOutputs(tmp_path_factory.mktemp(name))
            player = ScenarioPlayer(
                load_scenario(name),
                store=ClusterStore(clock),
                audit=AuditWriter(outputs, clock),
                outputs=outputs,
                clock=clock,
            )
            player.play_all()
            outputs.close()
            assert player.errors == []
            cache[name] = [outputs.audit_path, outputs.falco_path, outputs.tetragon_path]
        return cache[name]

    return get


def replay(paths: list[Path], config: Config | None = None) -> Correlator:
    correlator = Correlator(config=config)
    replayer = Replayer(correlator)
    replayer.replay(paths)
    assert not replayer.ingestor.skipped, replayer.ingestor.skip_log
    return correlator


def above_low(c: Correlator) -> list[Incident]:
    return [i for i in c.incidents.values() if i.severity > Severity.LOW]


def signals_of(c: Correlator, inc: Incident) -> list[Event]:
    return [e for e in c.events_of(inc.id) if e.signal]


def test_quiet_day_with_the_expected_sre_exec_gives_no_incident(streams) -> None:
    c = replay(streams("quiet-day"), config_from_dict(SRE_CONFIG))
    assert above_low(c) == []
    assert c.incidents == {}, [i.title for i in c.incidents.values()]
    hidden = [e for e in c.store if e.suppressed_by.startswith("during the expected exec")]
    assert {e.source for e in hidden} == {"falco", "tetragon"}
    assert all("sre-alice" in e.suppressed_by for e in hidden)


def test_quiet_day_without_the_suppression_shows_the_exec(streams) -> None:
    c = replay(streams("quiet-day"))
    (inc,) = above_low(c)
    assert inc.severity == Severity.HIGH
    # Falco's rule named verbatim beside ktriage's own phrases
    title = "Exec into pod, shell and “Terminal shell in container” in dev/api-"
    assert inc.title.startswith(title)


def test_cryptominer_is_one_critical_incident_in_the_storefront_pod(streams) -> None:
    c = replay(streams("cryptominer"))
    (inc,) = above_low(c)
    assert inc.severity == Severity.CRITICAL
    pods = [e for e in inc.entities if e.kind == EntityKind.POD]
    assert pods[0].namespace == "shop" and pods[0].name.startswith("storefront-")
    assert pods[0].short() in inc.title
    assert {"execution", "impact"} <= set(inc.tactics)
    kinds = {e.kind for e in signals_of(c, inc)}
    assert {"miner", "mining-pool-egress"} <= kinds


def test_token_theft_links_the_stolen_tokens_use_to_the_pod_it_was_read_in(streams) -> None:
    c = replay(streams("token-theft"))
    (inc,) = above_low(c)
    assert len(c.incidents) == 1
    assert inc.severity == Severity.CRITICAL
    assert {"credential-access", "privilege-escalation"} <= set(inc.tactics)
    sigs = signals_of(c, inc)
    # In the runner pod: the token read (Tetragon and Falco).
    reads = [e for e in sigs if e.kind in ("sa-token-read", "sensitive-file-read")]
    assert {e.source for e in reads} == {"tetragon", "falco"}
    assert all(e.first(EntityKind.POD).name.startswith("runner-") for e in reads)
    # From outside, with the token: the cluster-admin binding and the privileged pod.
    outside = [e for e in sigs if e.source == "audit" and e.kind != "forbidden-burst"]
    assert all(any(x.name == "198.51.100.23" for x in e.entities) for e in outside)
    assert "rbac-binding" in {e.kind for e in outside}
    assert "privileged-pod" in {e.kind for e in outside}
    # And what the privileged pod was for.
    assert any(e.kind == "nsenter" and e.source == "tetragon" for e in sigs)
