"""The containment state of an incident, computed from its events' facts."""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

import pytest
from markdown_check import assert_inert, code_spans

from ktriage.core import containment as cs
from ktriage.core.containment import (
    CONTAINED,
    NOTHING,
    PARTLY,
    containment_state,
    fact,
)
from ktriage.core.correlate import Correlator
from ktriage.core.model import EntityKind, Event, Severity, entity
from ktriage.core.snapshot import render_markdown, time_to_contain

POD = entity(EntityKind.POD, "shop", "web-1")
NODE = entity(EntityKind.NODE, "", "w2")
SA = entity(EntityKind.SERVICE_ACCOUNT, "ci", "runner")
ALICE = entity(EntityKind.USER, "", "alice@example.com")


class Case:
    """An incident built from signals, with action events attached as record.py makes them."""

    def __init__(self, *signals: Event) -> None:
        self.c = Correlator()
        for ev in signals:
            self.c.add(ev)
        self.id = next(iter(self.c.incidents))
        self._n = 0

    def act(self, when: float, action: str, *facts: dict, raw: dict | None = None) -> None:
        self._n += 1
        info = {"action": action, "actor": "oncall", "result": "ok", "pod": "shop/web-1"}
        if raw is None:
            info["containment"] = list(facts)
        else:
            info = raw
        self.c.attach(
            self.id,
            Event(
                time=when,
                source="ktriage",
                ref=f"a{self._n}",
                kind=f"action-{action}",
                severity=Severity.INFO,
                summary=action,
                entities=(POD,),
                raw_inline=info,
            ),
        )

    def add(self, ev: Event) -> None:
        self.c.add(ev)

    @property
    def incident(self):
        return self.c.resolve(self.id)

    def state(self, lookup=None) -> cs.Containment:
        return containment_state(self.incident, self.c.events_of(self.id), lookup)

    def ttc(self, lookup=None) -> float | None:
        return time_to_contain(self.incident, self.c.events_of(self.id), lookup)


def shell(when: float, *entities, ref: str = "s1") -> Event:
    return Event(
        time=when,
        source="falco",
        ref=ref,
        kind="shell",
        severity=Severity.HIGH,
        summary="Shell",
        entities=entities or (POD, NODE),
        signal=True,
        label="Shell",
    )


def request(when: float, actor, *targets, ref: str = "r1", source: str = "audit") -> Event:
    return Event(
        time=when,
        source=source,
        ref=ref,
        kind="exec",
        severity=Severity.HIGH,
        summary="exec",
        entities=(actor, *targets),
        signal=True,
        label="Exec",
    )


def isolated(subject: str = "pod shop/web-1") -> dict:
    return fact("network", subject, "isolated", "no NetworkPolicy allows traffic to or from it")


def state_of(state: cs.Containment, aspect: str, subject: str) -> cs.Item:
    (item,) = [i for i in state.of(aspect) if i.subject == subject]
    return item


# ---- pods ----------------------------------------------------------------------------------


def test_a_pod_with_no_fact_is_open_and_the_incident_not_contained() -> None:
    case = Case(shell(100))
    state = case.state()
    item = state_of(state, "network", "pod shop/web-1")
    assert (item.state, item.required, item.done) == ("open", True, False)
    assert state.level == NOTHING and not state.contained and state.contained_at is None
    assert state.open_words() == "pod shop/web-1 not isolated"
    assert case.ttc() is None


def test_a_cordon_alone_contains_nothing() -> None:
    case = Case(shell(100))
    case.act(150, "cordon", fact("node", "node w2", "cordoned", "re-read: unschedulable"))
    state = case.state()
    assert state_of(state, "node", "node w2").done
    # Not "partly" either: the pod runs on as it was.
    assert state.level == NOTHING and case.ttc() is None


def test_a_cordon_a_drain_a_detach_and_saved_logs_together_still_contain_nothing() -> None:
    """Each is shown done in its own aspect; none stops the pod or the identity."""
    case = Case(shell(100), request(110, SA, POD))
    case.act(150, "cordon", fact("node", "node w2", "cordoned", "re-read: unschedulable"))
    case.act(160, "drain", fact("node", "node w2", "drained", "evicted"))
    case.act(170, "detach", fact("workload", "pod shop/web-1", "detached", "labels removed"))
    case.act(180, "logs", fact("evidence", "pod shop/web-1", "logs-dumped", "2 file(s)"))
    state = case.state(lambda *_: True)
    assert sorted(i.aspect for i in state.done) == ["evidence", "node", "workload"]
    assert state.level == NOTHING and not state.contained


def test_an_isolation_not_effective_or_unverified_is_not_partly_contained() -> None:
    case = Case(shell(100), request(110, SA, POD))
    case.act(150, "isolate", fact("network", "pod shop/web-1", "not-effective", "x allows"))
    assert case.state().level == NOTHING
    case.act(160, "isolate", fact("network", "pod shop/web-1", "unverified", "no plugin seen"))
    assert case.state().level == NOTHING
    case.act(170, "isolate", isolated())
    assert case.state().level == PARTLY  # the identity is still open


def test_a_revoked_identity_alone_is_partly_contained() -> None:
    case = Case(shell(100), request(110, SA, POD))
    case.act(150, "cordon", fact("node", "node w2", "cordoned", "re-read: unschedulable"))
    case.act(
        200, "revoke", fact("identity", "serviceaccount ci/runner", "credentials-revoked", "x")
    )
    assert case.state().level == PARTLY


def test_an_effective_isolation_contains_the_pod_and_times_it() -> None:
    case = Case(shell(100))
    case.act(150, "cordon", fact("node", "node w2", "cordoned", "re-read"))
    case.act(340, "isolate", isolated())
    state = case.state()
    assert state.level == CONTAINED and state.contained_at == 340
    assert case.ttc() == 240


@pytest.mark.parametrize(
    "state_name", ["not-effective", "not-applicable", "unverified", "restored"]
)
def test_isolation_that_is_not_effective_does_not_contain(state_name: str) -> None:
    case = Case(shell(100))
    case.act(200, "isolate", fact("network", "pod shop/web-1", state_name, "why"))
    assert not case.state().contained and case.ttc() is None


def test_the_later_fact_for_the_same_subject_wins() -> None:
    case = Case(shell(100))
    case.act(200, "isolate", isolated())
    case.act(250, "undo isolate", fact("network", "pod shop/web-1", "restored", "policy deleted"))
    assert case.ttc() is None
    assert state_of(case.state(), "network", "pod shop/web-1").state == "restored"
    case.act(400, "isolate", isolated())
    # The clock stops when it became contained for good, not at the first isolation.
    assert case.ttc() == 300


def test_a_second_isolated_fact_keeps_the_time_it_was_first_isolated() -> None:
    case = Case(shell(100))
    case.act(200, "isolate", isolated())
    case.act(500, "isolate", isolated())  # isolated again ("unchanged"), re-checked
    assert case.ttc() == 100


def test_a_pod_the_cluster_reports_deleted_counts_as_contained_from_then() -> None:
    case = Case(shell(100))
    case.add(
        Event(
            time=180,
            source="kube",
            ref="uid:9:deleted",
            kind="pod-deleted",
            severity=Severity.INFO,
            summary="Pod shop/web-1 was deleted",
            entities=(POD, NODE),
        )
    )
    item = state_of(case.state(), "network", "pod shop/web-1")
    assert (item.state, item.since) == ("gone", 180)
    assert case.ttc() == 80
    # Unless the cluster shows a pod of that name now (recreated, or still terminating).
    assert case.ttc(lambda ns, name: True) is None


def test_a_pod_the_lookup_says_gone_counts_as_contained_at_a_time_not_known() -> None:
    case = Case(shell(100))
    state = case.state(lambda ns, name: False)
    item = state_of(state, "network", "pod shop/web-1")
    assert (item.state, item.since, item.done) == ("gone", None, True)
    assert state.contained and state.contained_at is None and case.ttc(lambda *_: False) is None
    assert item.detail == "not in the cluster now (deleted, or never created)"
    md = render_markdown(case.incident, case.c.events_of(case.id), pod_exists=lambda *_: False)
    assert "| Time to contain | contained; when is not known" in md
    # Isolated before it vanished: contained since the isolation.
    case.act(150, "isolate", isolated())
    assert case.ttc(lambda *_: False) == 50


def test_a_pod_absent_beside_one_that_exists_is_not_partly_contained() -> None:
    """Absent with no record of when (a create that was denied, perhaps): nothing
    anyone contained, so the mark does not say partly."""
    other = entity(EntityKind.POD, "shop", "web-2")
    case = Case(shell(100), shell(101, POD, other, ref="s2"))
    state = case.state(lambda ns, name: name == "web-2")
    assert state_of(state, "network", "pod shop/web-1").state == "gone"
    assert not state.contained and state.level == NOTHING


def test_a_deleted_pod_fact_contains_it_unless_the_pod_still_exists() -> None:
    case = Case(shell(100))
    case.act(300, "delete", fact("workload", "pod shop/web-1", "deleted", "gone after re-read"))
    assert case.ttc() == 200
    assert state_of(case.state(), "network", "pod shop/web-1").state == "gone"
    # Still terminating: its processes run until it is gone.
    assert case.ttc(lambda *_: True) is None


def test_facts_about_pods_outside_the_incident_are_shown_not_required() -> None:
    case = Case(shell(100))
    case.act(200, "isolate", isolated(), isolated("pod shop/other"))
    case.act(210, "isolate", fact("network", "pod shop/third", "not-effective", "x allows"))
    state = case.state()
    third = state_of(state, "network", "pod shop/third")
    assert not third.required and third not in state.open
    assert state.contained


# ---- identities ------------------------------------------------------------------------------


def test_every_identity_that_acted_must_be_revoked() -> None:
    case = Case(shell(100), request(110, SA, POD), request(120, ALICE, POD, ref="r2"))
    case.act(200, "isolate", isolated())
    state = case.state()
    subjects = {i.subject for i in state.of("identity")}
    assert subjects == {"serviceaccount ci/runner", "user alice@example.com"}
    assert not state.contained and state.level == PARTLY
    case.act(
        300, "revoke", fact("identity", "serviceaccount ci/runner", "credentials-revoked", "x")
    )
    case.act(
        400, "unbind", fact("identity", "user alice@example.com", "bindings-removed", "2 removed")
    )
    assert case.ttc() == 300


def test_an_identity_kubernetes_cannot_revoke_keeps_the_incident_open() -> None:
    case = Case(shell(100), request(110, ALICE, POD))
    case.act(200, "isolate", isolated())
    case.act(
        210,
        "revoke",
        fact("identity", "user alice@example.com", "cannot-revoke", "a client certificate"),
    )
    state = case.state()
    assert case.ttc() is None
    assert "user alice@example.com cannot be revoked by Kubernetes" in state.open_words()
    (step,) = [s for s in state.next_steps if s.subject == "user alice@example.com"]
    assert step.why.startswith("a client certificate. ") and "rotate the cluster's CA" in step.why
    md = render_markdown(case.incident, case.c.events_of(case.id))
    open_words = "`user alice@example.com cannot be revoked by Kubernetes`"
    assert f"not contained yet (open: {open_words})" in md


def test_only_the_actor_of_a_signal_is_an_identity_that_acted() -> None:
    # A binding's subjects follow its actor; a pod's own account (kube source) acted not.
    binding = request(110, ALICE, entity(EntityKind.SERVICE_ACCOUNT, "ci", "backdoor"), POD)
    pod_state = Event(
        time=120,
        source="kube",
        ref="p1",
        kind="privileged-pod",
        severity=Severity.HIGH,
        summary="privileged",
        entities=(POD, SA),
        signal=True,
        label="Privileged",
    )
    controller = request(
        130, entity(EntityKind.USER, "", "system:kube-controller-manager"), POD, ref="r3"
    )
    rs = request(
        140,
        entity(EntityKind.SERVICE_ACCOUNT, "kube-system", "replicaset-controller"),
        POD,
        ref="r4",
    )
    stolen = request(150, entity(EntityKind.SERVICE_ACCOUNT, "kube-system", "pwn"), POD, ref="r5")
    case = Case(shell(100), binding, pod_state, controller, rs, stolen)
    subjects = {i.subject for i in case.state().of("identity") if i.required}
    assert subjects == {"user alice@example.com", "serviceaccount kube-system/pwn"}


def test_nothing_found_to_contain_is_not_contained() -> None:
    node_only = Event(
        time=100,
        source="tetragon",
        ref="n1",
        kind="exec",
        severity=Severity.HIGH,
        summary="exec on the node",
        entities=(NODE, entity(EntityKind.IP, "", "203.0.113.9")),
        signal=True,
        label="Exec",
    )
    case = Case(node_only)
    state = case.state()
    assert not state.contained and state.level == NOTHING
    assert state.open_words() == "no pod or acting identity found to contain"


# ---- evidence and legacy records -------------------------------------------------------------


def test_evidence_is_open_until_logs_are_dumped_and_does_not_count_for_containment() -> None:
    case = Case(shell(100))
    assert state_of(case.state(), "evidence", "pod shop/web-1").state == "open"
    case.act(
        150, "logs", fact("evidence", "pod shop/web-1", "logs-dumped", "3 file(s): a sha256 ab")
    )
    state = case.state()
    item = state_of(state, "evidence", "pod shop/web-1")
    assert item.done and item.detail == "3 file(s): a sha256 ab"
    assert state.level == NOTHING  # evidence is not containment


def test_records_made_before_facts_existed_say_what_their_result_still_says() -> None:
    case = Case(shell(100))
    base = {"actor": "oncall", "result": "ok", "pod": "shop/web-1"}
    case.act(150, "isolate", raw={**base, "action": "isolate", "target": "pod shop/web-1"})
    case.act(160, "cordon", raw={**base, "action": "cordon", "target": "node w2"})
    files = [{"path": "e/app.log", "sha256": "ab" * 32, "bytes": 1}]
    case.act(170, "logs", raw={**base, "action": "logs", "files": files})
    state = case.state()
    assert state_of(state, "network", "pod shop/web-1").state == "unverified"
    assert state_of(state, "node", "node w2").state == "cordoned"
    assert state_of(state, "evidence", "pod shop/web-1").state == "logs-dumped"
    assert case.ttc() is None


# ---- next steps ---------------------------------------------------------------------------


def test_a_host_network_pod_gets_node_level_steps_in_order() -> None:
    case = Case(shell(100))
    case.act(
        150,
        "isolate",
        fact("network", "pod shop/web-1", "not-applicable", "hostNetwork: NetworkPolicy cannot"),
    )
    (step,) = [s for s in case.state().next_steps if s.subject == "pod shop/web-1"]
    commands = list(step.commands)
    assert commands[0] == "kubectl cordon -- w2"
    assert commands[1].startswith("kubectl --namespace=shop logs pod/web-1 --all-containers")
    assert commands[-1] == "kubectl --namespace=shop delete pod/web-1"
    # Once the node is cordoned and the evidence saved, only the deletion is left.
    case.act(160, "cordon", fact("node", "node w2", "cordoned", "re-read"))
    case.act(170, "logs", fact("evidence", "pod shop/web-1", "logs-dumped", "3 files"))
    (step,) = [s for s in case.state().next_steps if s.subject == "pod shop/web-1"]
    assert step.commands == ("kubectl --namespace=shop delete pod/web-1",)


def test_an_unknown_node_is_asked_of_the_cluster_in_the_command() -> None:
    case = Case(shell(100, POD))
    case.act(150, "isolate", fact("network", "pod shop/web-1", "not-applicable", "hostNetwork"))
    (step,) = [s for s in case.state().next_steps if s.subject == "pod shop/web-1"]
    find = "kubectl --namespace=shop get pod/web-1 -o jsonpath='{.spec.nodeName}'"
    assert step.commands[0] == f'kubectl cordon -- "$({find})"'


def test_the_by_hand_isolation_is_the_policy_the_isolate_action_creates() -> None:
    from ktriage.actions import isolate

    for name in ("web-1", "A" * 70, "web_1.x", "-bad-", "x" * 63, "ünïcode"):
        assert cs.policy_name(name) == isolate.policy_name(name)
        assert cs.quarantine_value(name) == isolate.quarantine_value(name)
    policy = isolate.quarantine_policy("shop", "web-1", "INC-1")
    commands = cs.isolate_commands("shop", "web-1")
    body = shlex.split(commands[0].split(" | ")[0])[2]
    import json

    sent = json.loads(body)
    assert sent["spec"] == policy["spec"]
    assert sent["metadata"]["name"] == policy["metadata"]["name"]


# ---- hostile ----------------------------------------------------------------------------------


def test_hostile_facts_of_unknown_aspects_states_and_wrong_types_are_skipped_and_counted() -> None:
    case = Case(shell(100))
    good = isolated()
    junk = [
        1,
        None,
        "isolated",
        [good],
        {"aspect": "orbit", "subject": "pod shop/web-1", "state": "isolated", "detail": ""},
        {"aspect": "network", "subject": "pod shop/web-1", "state": "exploded", "detail": ""},
        {"aspect": "network", "subject": "pod shop/web-1", "state": "cordoned", "detail": ""},
        {"aspect": ["network"], "subject": "pod shop/web-1", "state": "isolated"},
        {"aspect": "network", "subject": 5, "state": "isolated", "detail": ""},
        {"aspect": "network", "subject": "", "state": "isolated", "detail": ""},
        {"aspect": "network", "subject": "p" * 5000, "state": "isolated", "detail": ""},
        {"aspect": "network", "subject": "pod shop/web-1", "state": "isolated", "detail": {}},
        {"aspect": "network", "subject": "pod shop/web-1", "state": {"x": 1}, "detail": ""},
    ]
    case.act(150, "isolate", raw={"action": "isolate", "result": "ok", "containment": junk})
    case.act(160, "isolate", raw={"action": "isolate", "result": "ok", "containment": "all"})
    case.act(170, "isolate", raw={"action": 7, "result": None, "containment": {"a": 1}})
    case.act(180, "isolate", raw={"containment": [good] * (cs.MAX_FACTS_PER_EVENT + 5)})
    state = case.state()
    assert dict(state.skipped) == {
        "not-an-object": 4,
        "unknown-aspect": 2,
        "unknown-state": 3,
        "bad-subject": 3,
        "bad-detail": 1,
        "not-a-list": 2,
        "too-many": 5,
    }
    # The one readable fact still counts; nothing crashed on the rest.
    assert state.contained and case.ttc() == 80
    md = render_markdown(case.incident, case.c.events_of(case.id))
    assert "containment fact(s) in the action records could not be read" in md


HOSTILE_NAMES = [
    ("shop", "web;touch PWNED1"),
    ("shop$(touch PWNED2)", "web-1"),
    ("shop", "`touch PWNED3`"),
    ("x' ; touch PWNED4 ; '", "web"),
    ("shop", "--kubeconfig=/tmp/PWNED5"),
    ("shop", "a\nb\rc\x1b]52;c;aGk=\x07"),
    ("shop", "[bold red]x[/] *y* <b>z</b> ```"),
]


@pytest.mark.parametrize(("namespace", "name"), HOSTILE_NAMES)
def test_hostile_names_in_next_step_commands_stay_one_argument(
    namespace: str, name: str, tmp_path: Path
) -> None:
    """Every command runs in a POSIX shell with a stand-in kubectl that writes its
    arguments: each name arrives as it is, inside one argument, and nothing runs."""
    pod = entity(EntityKind.POD, namespace, name)
    sa = entity(EntityKind.SERVICE_ACCOUNT, namespace, name)
    user = entity(EntityKind.USER, "", name)
    node = entity(EntityKind.NODE, "", name)
    case = Case(
        shell(100, pod, node),
        request(110, sa, pod, ref="r1"),
        request(120, user, pod, ref="r2"),
    )
    subject = cs.pod_subject(namespace, name)
    case.act(150, "isolate", fact("network", subject, "not-applicable", "hostNetwork"))
    state = case.state()
    commands = [c for step in state.next_steps for c in step.commands]
    assert len(commands) >= 8
    assert all(step.suspicious for step in state.next_steps) == (not name.isprintable())
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("kubectl", "sha256sum", "grep"):
        stub = bin_dir / tool
        stub.write_text(
            f'#!/bin/sh\nfor a in "$@"; do printf "%s\\0" "$a"; done >> ../{tool}.args\n'
        )
        stub.chmod(0o755)
    work = tmp_path / "work"
    work.mkdir()
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(tmp_path)}
    for command in commands:
        done = subprocess.run(
            ["/bin/sh", "-c", command], cwd=work, env=env, capture_output=True, timeout=10
        )
        assert done.returncode == 0, (command, done.stderr)
    assert not list(tmp_path.rglob("PWNED*"))
    args = (tmp_path / "kubectl.args").read_bytes().decode().split("\0")
    assert f"--namespace={namespace}" in args
    assert f"pod/{name}" in args
    assert f"--as=system:serviceaccount:{namespace}:{name}" in args
    assert f"--as={name}" in args
    assert name in args  # the node, after `--`
    assert args[args.index("cordon") + 1] == "--"
    # Written files have safe names, in the working directory only.
    assert all("/" not in p.name for p in work.iterdir())


def test_hostile_names_stay_text_in_the_snapshot() -> None:
    name = "[bold red]x[/] *y* <b>z</b> ``` \x1b[2J\nnext"
    pod = entity(EntityKind.POD, "shop", name)
    case = Case(shell(100, pod))
    md = render_markdown(case.incident, case.c.events_of(case.id))
    assert "\x1b" not in md
    section = md.split("## Containment", 1)[1].split("\n## ", 1)[0]
    # In prose, HTML and Markdown are in a code span; in the code blocks they are inert.
    (prose,) = [line for line in section.splitlines() if line.startswith("1. ")]
    assert code_spans(prose) == ["pod shop/[bold red]x[/] *y* <b>z</b> ``` \\x1b[2J\\nnext"]
    assert_inert(section)
    # Fences are longer than any backticks inside; the newline is shown, never kept.
    assert "````sh" in section
    assert "next'" in section and "\\nnext" in section
    for line in section.splitlines():
        assert not line.startswith("next")


def test_hostile_many_pods_are_bounded_in_the_snapshot() -> None:
    pods = [entity(EntityKind.POD, "shop", f"web-{i}") for i in range(400)]
    ip = entity(EntityKind.IP, "", "203.0.113.9")  # one C2 address links them all
    case = Case(*(shell(100 + i, p, ip, ref=f"s{i}") for i, p in enumerate(pods)))
    state = case.state()
    assert len(state.required) == 400
    md = render_markdown(case.incident, case.c.events_of(case.id))
    assert "more left out." in md and "more steps left out." in md


def test_hostile_control_characters_are_escaped_when_commands_are_shown() -> None:
    """The state holds the text as it is; the views escape it (here: shown())."""
    from ktriage.core.text import shown

    name = "evil\x1b]52;c;aGk=\x07"
    case = Case(shell(100, entity(EntityKind.POD, "shop", name)))
    for step in case.state().next_steps:
        for command in step.commands:
            assert "\x1b" not in shown(command) and "\x07" not in shown(command)


def test_a_host_network_pod_seen_by_the_cluster_is_offered_node_level_steps_first() -> None:
    """Before any action: the pod-state event's copy of the pod says hostNetwork, so
    isolation by NetworkPolicy is not what is offered."""
    pwn = entity(EntityKind.POD, "kube-system", "pwn-x7k2q")
    created = Event(
        time=100,
        source="kube",
        ref="uid:1",
        kind="pod-created",
        severity=Severity.HIGH,
        summary="New pod kube-system/pwn-x7k2q: privileged, hostNetwork",
        entities=(pwn,),
        signal=True,
        label="Privileged pod",
        raw_inline={
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"namespace": "kube-system", "name": "pwn-x7k2q"},
            "spec": {"nodeName": "worker-1", "hostNetwork": True, "hostPID": True},
        },
    )
    state = Case(created).state()
    item = state_of(state, "network", "pod kube-system/pwn-x7k2q")
    assert item.state == "open" and "hostNetwork" in item.detail
    (step,) = state.next_steps
    assert "NetworkPolicy cannot isolate it" in step.why
    assert step.commands[0] == "kubectl cordon -- worker-1"
    assert step.commands[-1] == "kubectl --namespace=kube-system delete pod/pwn-x7k2q"
    assert not any("networking.k8s.io" in c for c in step.commands)


def test_our_own_words_and_commands_survive_redaction_unchanged() -> None:
    """Every view shows text through the redactor: nothing ktriage writes may look
    like a secret to it (`credentials: ...`), or the user would read <redacted>."""
    from ktriage.core.text import shown

    case = Case(shell(100), request(110, SA, POD), request(120, ALICE, POD, ref="r2"))
    case.act(150, "revoke", fact("identity", "user alice@example.com", "cannot-revoke", "x"))
    case.act(160, "isolate", fact("network", "pod shop/web-1", "not-effective", "x"))
    state = case.state()
    assert len(state.next_steps) == 3
    for step in state.next_steps:
        assert shown(step.why) == step.why
        for command in step.commands:
            assert shown(command) == command
    for item in state.items:
        assert shown(item.detail) == item.detail
    assert shown(state.open_words()) == state.open_words()
    assert shown(cs.TIME_TO_CONTAIN_DEFINITION) == cs.TIME_TO_CONTAIN_DEFINITION


def test_hostile_fact_text_cannot_break_the_snapshot_tables() -> None:
    case = Case(shell(100))
    detail = "a | b\n## Injected heading\n<script>x</script> [l](http://evil) \x1b[2J"
    case.act(150, "cordon", fact("node", "node w2|`x`\nnode", "cordoned", detail))
    md = render_markdown(case.incident, case.c.events_of(case.id))
    section = md.split("## Containment", 1)[1].split("\n## ", 1)[0]
    assert not any(line.startswith("## ") for line in section.splitlines())
    assert_inert(section)
    (row,) = [line for line in section.splitlines() if "cordoned" in line and line.startswith("|")]
    assert row.count(" | ") == 6  # seven cells: the pipes inside are escaped
    assert "\x1b" not in section  # `<script>` is inside a code span (assert_inert)


def test_a_pod_detached_after_a_not_effective_isolation_is_to_be_checked_again() -> None:
    """Detach removes the labels other policies select, but only a new check says the
    isolation now holds: until then it stays not effective, with the check to do."""
    case = Case(shell(100))
    allows = "NetworkPolicy shop/allow-web allows ingress from anywhere on TCP/8080"
    case.act(150, "isolate", fact("network", "pod shop/web-1", "not-effective", allows))
    case.act(160, "detach", fact("workload", "pod shop/web-1", "replaced", "web-2 replaces it"))
    state = case.state()
    assert state_of(state, "network", "pod shop/web-1").state == "not-effective"
    assert not state.contained
    step = state.next_steps[0]
    assert step.why.startswith("detached since its isolation was found not effective")
    assert step.commands == (
        "kubectl --namespace=shop get pod/web-1 --show-labels",
        "kubectl --namespace=shop get networkpolicies -o wide",
    )
    case.act(170, "isolate", isolated())
    assert case.ttc() == 70


def test_an_unverified_isolation_is_checked_again_or_the_pod_deleted() -> None:
    """The policy is in place but nothing proves it holds (no enforcing network plugin
    seen): creating it again would prove nothing; deleting the pod would."""
    case = Case(shell(100))
    detail = "no NetworkPolicy-enforcing network plugin was seen: it may not be enforced"
    case.act(150, "isolate", fact("network", "pod shop/web-1", "unverified", detail))
    (step,) = case.state().next_steps
    assert step.why.startswith(f"isolation is not verified ({detail}): check it again")
    assert step.commands[0].startswith("kubectl --namespace=shop logs pod/web-1")
    assert step.commands[-1] == "kubectl --namespace=shop delete pod/web-1"
    assert not any("networking.k8s.io" in c for c in step.commands)


# ---- credentials the attacker obtained, and the two parts of an identity -----------------

CONTROLLER = entity(EntityKind.SERVICE_ACCOUNT, "kube-system", "clusterrole-aggregation-controller")
KUBE_SYSTEM = entity(EntityKind.NAMESPACE, "", "kube-system")


def token_request(when: float, actor, target, *, severity=Severity.CRITICAL, ref="t1") -> Event:
    """As core/detect/audit.py makes it: the actor, the request's object, its namespace."""
    return Event(
        time=when,
        source="audit",
        ref=ref,
        kind="token-request",
        severity=severity,
        summary="token",
        entities=(actor, target, KUBE_SYSTEM, POD),  # the pod its token was bound to
        signal=True,
        label="Token for a controller account",
    )


def kubelet_read(when: float, *entities, ref: str = "k1") -> Event:
    return Event(
        time=when,
        source="tetragon",
        ref=ref,
        kind="kubelet-credentials-read",
        severity=Severity.HIGH,
        summary="Kubelet credentials read: /usr/bin/cat /var/lib/kubelet/kubeconfig",
        entities=entities or (POD, NODE),
        signal=True,
        label="Kubelet credentials read",
    )


def revoked(subject: str = "serviceaccount ci/runner") -> dict:
    return fact("identity", subject, "credentials-revoked", "recreated with a new uid")


def unbound(subject: str = "serviceaccount ci/runner") -> dict:
    return fact("identity", subject, "bindings-removed", "1 binding(s) removed")


def rebound(subject: str = "serviceaccount ci/runner") -> dict:
    return fact("identity", subject, "restored", "bindings restored")


def test_a_token_minted_for_another_account_is_open_until_its_credentials_are_revoked() -> None:
    case = Case(shell(100), token_request(110, SA, CONTROLLER))
    case.act(200, "isolate", isolated())
    case.act(210, "unbind", unbound())
    subject = "serviceaccount kube-system/clusterrole-aggregation-controller"
    state = case.state()
    item = state_of(state, "identity", subject)
    assert (item.state, item.required, item.done) == ("open", True, False)
    assert "obtained by serviceaccount ci/runner" in item.detail
    assert f"{subject} not revoked" in state.open_words()
    (step,) = [s for s in state.next_steps if s.subject == subject]
    assert "kube-controller-manager requests a new token" in step.why
    assert any(
        "delete serviceaccount/clusterrole-aggregation-controller" in c for c in step.commands
    )
    # Removing its bindings does not end a token already minted.
    case.act(220, "unbind", unbound(subject))
    assert not case.state().contained and case.ttc() is None
    assert not state_of(case.state(), "identity", subject).done
    case.act(300, "revoke", revoked(subject))
    assert case.state().contained and case.ttc() == 200


def test_a_denied_token_request_obtained_nothing() -> None:
    case = Case(shell(100), token_request(110, SA, CONTROLLER, severity=Severity.LOW))
    subjects = {i.subject for i in case.state().of("identity")}
    assert subjects == {"serviceaccount ci/runner"}


def test_hostile_token_request_naming_no_other_account_adds_no_identity() -> None:
    # Only the actor as a ServiceAccount: nothing says which account got a token.
    ev = token_request(110, SA, KUBE_SYSTEM)
    case = Case(shell(100), ev)
    assert {i.subject for i in case.state().of("identity")} == {"serviceaccount ci/runner"}


def test_a_kubelet_credentials_read_keeps_the_node_identity_open_with_node_steps() -> None:
    case = Case(shell(100), kubelet_read(120))
    case.act(200, "isolate", isolated())
    state = case.state()
    item = state_of(state, "identity", "user system:node:w2")
    assert (item.state, item.required, item.done) == ("cannot-revoke", True, False)
    assert "in pod shop/web-1" in item.detail
    assert not state.contained and case.ttc() is None
    assert "user system:node:w2 cannot be revoked by Kubernetes" in state.open_words()
    (step,) = [s for s in state.next_steps if s.subject == "user system:node:w2"]
    assert step.commands == (
        "kubectl cordon -- w2",
        "kubectl drain --ignore-daemonsets --delete-emptydir-data -- w2",
    )
    assert "leaves the stolen one valid" in step.why
    md = render_markdown(case.incident, case.c.events_of(case.id))
    assert "| identity | user system:node:w2 | cannot-revoke |" in md


def test_a_kubelet_credentials_read_with_no_node_asks_the_cluster_for_it() -> None:
    case = Case(shell(100, POD), kubelet_read(120, POD))
    (step,) = [s for s in case.state().next_steps if "kubelet" in s.subject]
    assert step.subject == "the kubelet of the node of pod shop/web-1"
    assert all("get pod/web-1 -o jsonpath='{.spec.nodeName}'" in c for c in step.commands)


def test_hostile_node_name_in_kubelet_steps_stays_one_argument() -> None:
    node = entity(EntityKind.NODE, "", "w2; rm -rf / #")
    case = Case(shell(100), kubelet_read(120, POD, node))
    (step,) = [s for s in case.state().next_steps if s.subject.startswith("user system:node:")]
    for command in step.commands:
        assert shlex.split(command)[-1] == "w2; rm -rf / #"
    assert not step.suspicious  # printable: quoting is enough


def test_bindings_removed_alone_contains_but_says_the_tokens_still_authenticate() -> None:
    case = Case(shell(100), request(110, SA, POD))
    case.act(200, "isolate", isolated())
    case.act(210, "unbind", unbound())
    state = case.state()
    item = state_of(state, "identity", "serviceaccount ci/runner")
    assert item.done and "its tokens still authenticate until revoked (R)" in item.detail
    assert state.contained and case.ttc() == 110
    (step,) = [s for s in state.next_steps if s.subject == "serviceaccount ci/runner"]
    assert "delete serviceaccount/runner" in step.commands[0]
    md = render_markdown(case.incident, case.c.events_of(case.id))
    assert (
        "**Tokens still authenticate:** serviceaccount ci/runner: bindings removed; "
        "its tokens still authenticate until revoked (R)." in md
    )
    case.act(220, "revoke", revoked())
    assert not case.state().tokens_live
    md = render_markdown(case.incident, case.c.events_of(case.id))
    assert "Tokens still authenticate" not in md


def test_undoing_an_unbind_after_a_revoke_keeps_the_credentials_revoked() -> None:
    case = Case(shell(100), request(110, SA, POD))
    case.act(200, "isolate", isolated())
    case.act(210, "revoke", revoked())
    case.act(220, "unbind", unbound())
    case.act(230, "undo unbind", rebound())
    state = case.state()
    item = state_of(state, "identity", "serviceaccount ci/runner")
    assert (item.state, item.done, item.since) == ("credentials-revoked", True, 210)
    assert state.contained and case.ttc() == 110
    assert "restored, not revoked" not in state.open_words()


def test_undoing_an_unbind_made_before_a_revoke_keeps_the_credentials_revoked() -> None:
    case = Case(shell(100), request(110, SA, POD))
    case.act(200, "isolate", isolated())
    case.act(210, "unbind", unbound())
    case.act(220, "revoke", revoked())
    case.act(230, "undo unbind", rebound())
    item = state_of(case.state(), "identity", "serviceaccount ci/runner")
    # Contained without a break since the unbind.
    assert (item.state, item.done, item.since) == ("credentials-revoked", True, 210)
    assert case.ttc() == 110


def test_undoing_the_only_unbind_reopens_the_identity() -> None:
    case = Case(shell(100), request(110, SA, POD))
    case.act(200, "isolate", isolated())
    case.act(210, "unbind", unbound())
    case.act(230, "undo unbind", rebound())
    state = case.state()
    item = state_of(state, "identity", "serviceaccount ci/runner")
    assert (item.state, item.done) == ("restored", False)
    assert "serviceaccount ci/runner restored, not revoked" in state.open_words()


def test_new_words_survive_redaction_unchanged() -> None:
    from ktriage.core.text import shown

    case = Case(shell(100), request(110, SA, POD), token_request(115, SA, CONTROLLER))
    case.add(kubelet_read(120))
    case.act(210, "unbind", unbound())
    state = case.state()
    assert len(state.next_steps) >= 3
    for step in state.next_steps:
        assert shown(step.why) == step.why
        for command in step.commands:
            assert shown(command) == command
    for item in state.items:
        assert shown(item.detail) == item.detail
    assert shown(state.tokens_live_words()) == state.tokens_live_words()


def test_hostile_many_kubelet_reads_make_one_item_per_node() -> None:
    case = Case(shell(100))
    for n in range(2_000):
        case.add(kubelet_read(120 + n / 1000, ref=f"k{n}"))
    state = case.state()
    nodes = [i for i in state.of("identity") if i.subject == "user system:node:w2"]
    assert len(nodes) == 1
    assert len([s for s in state.next_steps if s.subject == "user system:node:w2"]) == 1
