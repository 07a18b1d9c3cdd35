"""Falco alerts: priorities, kinds, entities, ATT&CK from tags, refs and bad input."""

from __future__ import annotations

import orjson
import pytest

from ktriage.core.attack import attack_for, from_falco_tags, tactic_rank
from ktriage.core.ingest import Ingestor
from ktriage.core.model import Attack, EntityKind, Severity, entity, iso

SHELL = {
    "hostname": "worker-2",
    "output": "12:00:01.123456789: Notice A shell was spawned in a container with an attached "
    "terminal (user=root k8s.ns=payments k8s.pod=api-7d9f container=0123456789ab shell=bash)",
    "priority": "Notice",
    "rule": "Terminal shell in container",
    "source": "syscall",
    "tags": ["container", "mitre_execution", "shell", "T1059"],
    "time": "2024-05-01T12:00:01.123456789Z",
    "output_fields": {
        "container.id": "0123456789ab",
        "container.image.repository": "registry.example/api",
        "container.image.tag": "1.4.2",
        "k8s.ns.name": "payments",
        "k8s.pod.name": "api-7d9f",
        "proc.cmdline": "bash",
    },
}


def alert(**changes: object) -> dict:
    rec = orjson.loads(orjson.dumps(SHELL))
    for key, value in changes.items():
        if value is None:
            rec.pop(key, None)
        else:
            rec[key] = value
    return rec


def feed(rec: dict, ing: Ingestor | None = None) -> list:
    ing = ing or Ingestor()
    return ing.feed_line(orjson.dumps(rec), origin="falco.jsonl:1")


def test_shell_alert() -> None:
    [ev] = feed(alert())
    assert ev.source == "falco"
    assert ev.kind == "shell"
    assert ev.label == "“Terminal shell in container”"  # the rule's name, verbatim
    assert ev.signal is True
    assert ev.severity == Severity.MEDIUM  # Notice, raised to ktriage's rating of a shell
    assert iso(ev.time) == "2024-05-01T12:00:01.123457Z"  # nanoseconds, rounded
    assert ev.summary.startswith("Terminal shell in container: A shell was spawned")
    assert "Notice" not in ev.summary.split(":")[1]
    assert ev.attack == Attack("execution", "T1059", "Command and Scripting Interpreter")
    ents = set(ev.entities)
    assert entity(EntityKind.POD, "payments", "api-7d9f") in ents
    assert entity(EntityKind.CONTAINER, "", "0123456789ab") in ents
    assert entity(EntityKind.NODE, "", "worker-2") in ents
    assert entity(EntityKind.IMAGE, "", "registry.example/api:1.4.2") in ents
    assert entity(EntityKind.NAMESPACE, "", "payments") in ents


@pytest.mark.parametrize(
    ("priority", "severity", "signal"),
    [
        ("Emergency", Severity.CRITICAL, True),
        ("Alert", Severity.CRITICAL, True),
        ("Critical", Severity.CRITICAL, True),
        ("Error", Severity.HIGH, True),
        ("Warning", Severity.MEDIUM, True),
        ("Notice", Severity.LOW, True),
        ("Informational", Severity.LOW, True),
        ("Info", Severity.LOW, True),
        ("Debug", Severity.INFO, False),
    ],
)
def test_priority_to_severity(priority: str, severity: Severity, signal: bool) -> None:
    # A rule ktriage does not rate itself: Falco's priority stands.
    [ev] = feed(alert(priority=priority, rule="Payments team custom rule"))
    assert ev.severity == severity
    assert ev.signal is signal


def test_falco_internal_is_context() -> None:
    [ev] = feed(
        {
            "hostname": "host",
            "output": "Falco internal: syscall event drop. 815508 system calls dropped.",
            "output_fields": {"n_drops": 815508},
            "priority": "Critical",
            "rule": "Falco internal: syscall event drop",
            "time": "2023-03-03T03:03:03.000000003Z",
        }
    )
    assert ev.signal is False
    assert ev.attack is None


def test_uuid_is_the_ref_else_a_stable_hash() -> None:
    [a] = feed(alert(uuid="6c1f-uuid"))
    assert a.ref == "6c1f-uuid"
    [b] = feed(alert())
    [c] = feed(alert())
    [d] = feed(alert(time="2024-05-01T12:00:02Z"))
    assert b.ref == c.ref
    assert len(b.ref) == 16
    assert b.ref != d.ref


def test_null_and_missing_k8s_fields() -> None:
    fields = {"container.id": "host", "k8s.ns.name": None, "k8s.pod.name": None}
    [ev] = feed(alert(output_fields=fields))
    kinds = {e.kind for e in ev.entities}
    assert EntityKind.POD not in kinds
    assert EntityKind.CONTAINER not in kinds  # "host" is not a container
    [ev] = feed(alert(output_fields={"k8s.pod.name": "lonely", "container.id": "<NA>"}))
    assert entity(EntityKind.POD, "", "lonely") in ev.entities


def test_time_from_output_fields_when_top_level_missing() -> None:
    [ev] = feed(alert(time=None, output_fields={"evt.time": 1513792138590038385}))
    assert iso(ev.time) == "2017-12-20T17:48:58.590038Z"


def test_bad_alerts_are_skipped() -> None:
    ing = Ingestor()
    assert feed(alert(time=None, output_fields={}), ing) == []
    assert feed(alert(priority=5), ing) == []
    assert feed(alert(time={"when": "now"}), ing) == []
    assert ing.skipped == {"missing-field": 1, "wrong-type": 2}


def test_k8saudit_plugin_alert() -> None:
    rec = {
        "time": "2024-05-01T12:00:05.000000000Z",
        "rule": "Attach/Exec Pod",
        "priority": "Notice",
        "source": "k8s_audit",
        "output": "12:00:05.000000000: Notice Attach/Exec to pod (user=alice pod=api-7d9f "
        "resource=pods ns=payments action=exec command=bash)",
        "output_fields": {
            "ka.user.name": "alice",
            "ka.target.name": "api-7d9f",
            "ka.target.namespace": "payments",
            "ka.target.resource": "pods",
            "ka.target.subresource": "exec",
        },
        "tags": ["k8s"],
    }
    [ev] = feed(rec)
    assert ev.kind == "exec"
    assert ev.attack == attack_for("T1609")
    assert entity(EntityKind.USER, "", "alice") in ev.entities
    assert entity(EntityKind.POD, "payments", "api-7d9f") in ev.entities


def test_miner_rule_kind() -> None:
    [ev] = feed(alert(rule="Detect outbound connections to common miner pool ports", tags=None))
    assert ev.kind == "mining-pool-egress"
    assert ev.attack is not None and ev.attack.technique == "T1496"


def test_from_falco_tags() -> None:
    assert from_falco_tags(["mitre_execution", "T1059.004", "T1059"]) == Attack(
        "execution", "T1059.004", "Unix Shell"
    )
    assert from_falco_tags(["mitre_privilege_escalation"]) == Attack("privilege-escalation", "", "")
    assert from_falco_tags(["T1611"]) == attack_for("T1611")
    # the tagged tactic wins over the technique's usual one
    assert from_falco_tags(["mitre_defense_evasion", "T1611"]).tactic == "defense-evasion"
    assert from_falco_tags(["filesystem", "process"]) is None
    assert from_falco_tags([]) is None


def test_tactic_rank_is_the_progression_order() -> None:
    assert tactic_rank("initial-access") < tactic_rank("execution")
    assert tactic_rank("execution") < tactic_rank("privilege-escalation")
    assert tactic_rank("privilege-escalation") < tactic_rank("credential-access")
    assert tactic_rank("credential-access") < tactic_rank("lateral-movement")
    assert tactic_rank("lateral-movement") < tactic_rank("impact")
    assert tactic_rank("mitre_execution") == tactic_rank("execution")
    assert tactic_rank("no-such-tactic") == -1
