"""Every real captured fixture goes through the Ingestor: what is skipped is named
here line by line with the reason it is genuinely unusable; everything else parses,
and the detections an engineer would expect are there."""

from __future__ import annotations

import pytest
from real_fixtures import require_real_fixtures

from ktriage.core.ingest import Ingestor
from ktriage.core.model import EntityKind, Event, Severity, entity, parse_time

REAL = require_real_fixtures(module=True)

PANTHER = "k8s-audit-v1/panther-analysis__rules-tests.jsonl"

# (file, line, reason), each genuinely unusable. Panther's test logs keep only the
# fields one rule reads: a log with no verb is still read when it names its URI or
# object, and one with no timestamp is placed after the previous timed record of the
# file; only a log that says nothing about the request is left. The names are the
# upstream test names (see SOURCES.md).
EXPECTED_SKIPS = {
    # The Falco regression test for "bad input": the whole file is `{"kind": 0}`, an
    # object that is no audit event, Falco alert or Tetragon event.
    ("falco-k8s-audit/fal_01_003.json", 1, "unknown-format"),
    # "Localhost Access": only a user and a source IP; no verb, requestURI, objectRef
    # or time, so there is no request to describe or place.
    (PANTHER, 24, "missing-field"),
}


class Replay:
    """Each file through its own Ingestor: the fixtures are independent captures, and
    several Falco trace files reuse one auditID for variants of the same request."""

    def __init__(self) -> None:
        self.skip_log: list[tuple[str, str, str]] = []
        self.skipped = 0
        self.formats: set[str] = set()
        self.by_file: dict[str, list[Event]] = {}
        for path in sorted(REAL.rglob("*")):
            rel = path.relative_to(REAL).as_posix()
            if not path.is_file() or rel.startswith("rules/") or rel == "SOURCES.md":
                continue
            ing = Ingestor()
            events = ing.feed_document(path.read_bytes(), origin=rel)
            events += ing.flush()
            self.by_file[rel] = events
            self.skip_log += ing.skip_log
            self.skipped += sum(ing.skipped.values())
            self.formats |= set(ing.formats)


@pytest.fixture(scope="module")
def replayed() -> tuple[Replay, dict[str, list[Event]]]:
    replay = Replay()
    return replay, replay.by_file


def test_exactly_the_unusable_lines_are_skipped(replayed) -> None:
    ing, _ = replayed
    got = set()
    for origin, reason, detail in ing.skip_log:
        name, _, line = origin.rpartition(":")
        got.add((name, int(line), reason))
        assert detail
    assert got == EXPECTED_SKIPS
    assert ing.skipped == len(EXPECTED_SKIPS)


def test_every_file_yields_events_in_all_three_formats(replayed) -> None:
    ing, by_file = replayed
    assert ing.formats == {"audit", "falco", "tetragon"}
    empty = [f for f, evs in by_file.items() if not evs]
    assert empty == ["falco-k8s-audit/fal_01_003.json"]
    for events in by_file.values():
        for ev in events:
            assert ev.time > 946684800  # after 2000-01-01: a real time was read
            assert ev.ref and ev.summary and ev.summary.isprintable()


def signals_of(by_file: dict[str, list[Event]], name: str) -> list[Event]:
    return [e for e in by_file[name] if e.signal]


def test_exec_pod(replayed) -> None:
    _, by_file = replayed
    [ev] = signals_of(by_file, "falco-k8s-audit/exec_pod.json")
    assert ev.kind == "exec"
    assert entity(EntityKind.POD, "default", "nginx-deployment-7998647bdf-phvq7") in ev.entities
    assert entity(EntityKind.USER, "", "minikube-user") in ev.entities
    assert ev.summary.endswith(": bash")


def test_attach_cluster_admin_role(replayed) -> None:
    _, by_file = replayed
    [ev] = signals_of(by_file, "falco-k8s-audit/attach_cluster_admin_role.json")
    assert ev.kind == "rbac-binding"
    assert ev.severity == Severity.HIGH
    assert entity(EntityKind.USER, "", "minikube") in ev.entities  # the subject


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("falco-k8s-audit/create_nginx_pod_privileged.json", "privileged-pod"),
        ("falco-k8s-audit/create_nginx_pod_privileged_2nd_container.json", "privileged-pod"),
        (
            "falco-k8s-audit/create_nginx_pod_no_secctx_1st_container_privileged_2nd_container.json",
            "privileged-pod",
        ),
        ("falco-k8s-audit/create_nginx_pod_sensitive_mount.json", "hostpath-pod"),
        ("falco-k8s-audit/create_nginx_pod_hostnetwork.json", "host-namespace-pod"),
        ("falco-k8s-audit/attach_pod.json", "attach"),
        ("falco-k8s-audit/anonymous_creates_namespace_foo.json", "anonymous-allowed"),
        ("falco-k8s-audit/create_cluster_role_wildcard_verbs.json", "rbac-wildcard-role"),
        ("falco-k8s-audit/create_cluster_role_wildcard_resources.json", "rbac-wildcard-role"),
    ],
)
def test_audit_detections(replayed, name: str, kind: str) -> None:
    _, by_file = replayed
    assert [e.kind for e in signals_of(by_file, name)] == [kind]


@pytest.mark.parametrize(
    "name",
    [
        "falco-k8s-audit/create_nginx_pod_unprivileged.json",
        "falco-k8s-audit/create_nginx_pod_nohostnetwork.json",
        "falco-k8s-audit/create_nginx_pod_unsensitive_mount.json",
        "falco-k8s-audit/create_configmap.json",
        "falco-k8s-audit/create_clusterrolebinding.json",  # to system:basic-user
        "falco-k8s-audit/delete_namespace_foo.json",
        "falco-k8s-audit/create_service_account_token_secret.json",  # by the controller
    ],
)
def test_benign_audit_fixtures_are_context(replayed, name: str) -> None:
    _, by_file = replayed
    assert by_file[name]
    assert signals_of(by_file, name) == []


def test_panther_privileged_pod_and_time_forms(replayed) -> None:
    _, by_file = replayed
    sigs = signals_of(by_file, PANTHER)
    priv = [e for e in sigs if e.kind == "privileged-pod"]
    pods = {e.first(EntityKind.POD) for e in priv}
    assert pods == {
        entity(EntityKind.POD, "default", "test-privileged-pod"),  # privileged: true
        entity(EntityKind.POD, "default", "test-pod"),  # adds SYS_ADMIN
    }
    assert all(e.severity >= Severity.HIGH for e in priv)


def _panther_signal(by_file: dict[str, list[Event]], kind: str, text: str) -> Event:
    found = [e for e in signals_of(by_file, PANTHER) if e.kind == kind and text in e.summary]
    assert len(found) == 1, [e.summary for e in signals_of(by_file, PANTHER)]
    return found[0]


PLACED = "(time not recorded; placed after the previous record)"


def test_panther_untimed_logs_are_placed_and_detected(replayed) -> None:
    _, by_file = replayed
    events = by_file[PANTHER]
    # "EKS ClusterRoleBinding to cluster-admin": no timestamp anywhere
    binding = _panther_signal(by_file, "rbac-binding", "cluster-admin")
    assert binding.severity == Severity.HIGH
    assert binding.summary.endswith(PLACED)
    assert entity(EntityKind.USER, "", "attacker@example.com") in binding.entities
    # placed at the time of the last timed record before it in the file (line 23,
    # "Non-Anonymous API Access", stamped 2022-11-29 00:09:04.38 by Panther)
    before = events[: events.index(binding)]
    last_timed = [e for e in before if not e.summary.endswith(PLACED)][-1]
    assert last_timed.summary.startswith("kubernetes-admin requested pods default/test-pod")
    assert binding.time == last_timed.time == parse_time("2022-11-29T00:09:04.38Z")
    # "EKS Exec Into Pod" and "EKS kubectl cp from pod": exec into pods
    exec_pod = _panther_signal(by_file, "exec", "john.doe@example.com exec into default/nginx-pod")
    assert entity(EntityKind.POD, "default", "nginx-pod") in exec_pod.entities
    cp = _panther_signal(by_file, "exec", "tar cf - /app/secrets/credentials.json")
    assert entity(EntityKind.POD, "production", "webapp-pod") in cp.entities
    # "EKS Pod With Host PID", "EKS ClusterRole with wildcard resources and verbs"
    assert _panther_signal(by_file, "host-namespace-pod", "hostPID").severity == Severity.HIGH
    _panther_signal(by_file, "rbac-wildcard-role", "ClusterRole super-admin")


def test_panther_logs_without_verb_are_read(replayed) -> None:
    _, by_file = replayed
    # "Anonymous API Access": no verb, but the URI, the object and the user are there.
    anon = _panther_signal(by_file, "anonymous-allowed", "from 8.8.8.8")
    assert anon.severity == Severity.HIGH
    assert entity(EntityKind.IP, "", "8.8.8.8") in anon.entities
    assert not anon.summary.endswith(PLACED)  # it carries requestReceivedTimestamp
    # ELB health checks (no verb, no time): read as context, not signals
    health = [e for e in by_file[PANTHER] if "/healthz" in e.summary]
    assert len(health) == 6
    assert all(not e.signal and "(verb not recorded)" in e.summary for e in health)


def test_tetragon_nsenter_escape(replayed) -> None:
    _, by_file = replayed
    name = (
        "tetragon/03_chapter__03_security_observability_events__01_reaching_the_host_namespace"
        "__privileged-pod-nsenter.json"
    )
    [ev] = signals_of(by_file, name)
    assert ev.kind == "nsenter"
    assert ev.severity == Severity.CRITICAL  # CAP_SYS_ADMIN and -t 1
    assert entity(EntityKind.POD, "default", "privileged-pod") in ev.entities
    assert entity(EntityKind.CONTAINER, "", "85f791fd8dfa") in ev.entities
    assert ev.attack is not None and ev.attack.technique == "T1611"


def test_tetragon_chain(replayed) -> None:
    _, by_file = replayed
    prefix = "tetragon/03_chapter__"
    kinds = {
        name.removeprefix(prefix): [e.kind for e in events if e.signal]
        for name, events in by_file.items()
        if name.startswith(prefix)
    }
    assert kinds["00_four_golden_signals__process_kprobe.json"] == ["sensitive-file-write"]
    assert kinds["00_process_lifecycle__nc_process_exec.json"] == ["netcat"]
    assert kinds["00_process_lifecycle__nc_process_connect.json"] == ["network-connect"]
    host_bash = (
        "03_security_observability_events__01_reaching_the_host_namespace__host-namespace-bash.json"
    )
    assert kinds[host_bash] == ["shell"]
    # plain process lifecycle events are context
    assert kinds["00_process_lifecycle__cat_process_exit.json"] == []
    assert kinds["00_four_golden_signals__process_listen.json"] == []


def test_tetragon_exec_without_time_uses_process_start(replayed) -> None:
    _, by_file = replayed
    events = by_file["tetragon/testdata__events.json"]
    assert len(events) == 3
    assert all(e.kind == "process-exec" for e in events)


def test_falco_alerts(replayed) -> None:
    _, by_file = replayed
    events = by_file["falco-alerts/falco_alerts.jsonl"]
    assert len(events) == 8
    shell = [e for e in events if e.kind == "shell"]
    assert len(shell) == 1 and shell[0].signal
    assert entity(EntityKind.POD, "", "falco-74htl") in shell[0].entities
    assert entity(EntityKind.CONTAINER, "", "a98c2aa8e670") in shell[0].entities
    shadow = [e for e in events if "/etc/shadow" in e.summary]
    assert shadow[0].attack is not None and shadow[0].attack.tactic == "credential-access"
    # Debug alerts and Falco's own drop notices are context
    context = [e for e in events if not e.signal]
    assert len(context) == 3
    # the same alert in two files has the same ref, so replays dedupe
    cat = by_file["falco-alerts/falco_test_output_single_rule_with_cat_write.json"]
    assert cat[0].ref == events[0].ref


def test_one_ingestor_over_everything_skips_the_same_lines(replayed) -> None:
    ing = Ingestor()
    for name in replayed[1]:
        ing.feed_document((REAL / name).read_bytes(), origin=name)
    ing.flush()
    got = {(o.rpartition(":")[0], int(o.rpartition(":")[2]), r) for o, r, _ in ing.skip_log}
    assert got == EXPECTED_SKIPS
