"""Every real captured fixture goes through the Ingestor: what is skipped is named
here line by line with the reason it is genuinely unusable; everything else parses,
and the detections an engineer would expect are there."""

from __future__ import annotations

from pathlib import Path

import pytest

from ktriage.core.ingest import Ingestor
from ktriage.core.model import EntityKind, Event, Severity, entity

REAL = Path(__file__).resolve().parents[2] / ".." / "shared" / "fixtures" / "real"

if not REAL.is_dir():
    pytest.skip(
        f"real-data fixtures not found at {REAL} (they live next to the repository)",
        allow_module_level=True,
    )

PANTHER = "k8s-audit-v1/panther-analysis__rules-tests.jsonl"

# (file, line, reason). Panther's test logs keep only the fields one rule reads:
# a log with no verb is not an audit event we can describe, and one with no
# timestamp anywhere cannot be placed on a timeline. The names are the upstream
# test names (see SOURCES.md).
EXPECTED_SKIPS = {
    # The Falco regression test for "bad input": the whole file is `{"kind": 0}`.
    ("falco-k8s-audit/fal_01_003.json", 1, "unknown-format"),
    (PANTHER, 1, "missing-field"),  # no verb: "Anonymous API Access"
    (PANTHER, 2, "missing-field"),  # no verb: "Non-Anonymous API Access"
    (PANTHER, 4, "missing-field"),  # no verb: "ELB Health Check from 10.0.0.0/8"
    (PANTHER, 5, "missing-field"),  # no verb: "ELB Health Check from 172.16.0.0/12"
    (PANTHER, 6, "missing-field"),  # no verb: "ELB Health Check from 192.168.0.0/16"
    (PANTHER, 7, "missing-field"),  # no verb: "ELB Health Check from Public IP"
    (
        PANTHER,
        21,
        "missing-field",
    ),  # no timestamp at all: "EKS MutatingWebhookConfiguration Created"
    (PANTHER, 22, "missing-field"),  # no verb: "EKS Anonymous API Access"
    (PANTHER, 23, "missing-field"),  # no verb: "Non-Anonymous API Access"
    (PANTHER, 24, "missing-field"),  # no verb: "Localhost Access"
    (PANTHER, 25, "missing-field"),  # no verb: "ELB Health Checker (excluded)"
    (PANTHER, 26, "missing-field"),  # no verb: "kube-probe Health Check (excluded)"
    (PANTHER, 27, "missing-field"),  # no timestamp at all: "EKS client certificate CSR created"
    (
        PANTHER,
        28,
        "missing-field",
    ),  # no timestamp at all: "EKS ClusterRoleBinding to cluster-admin"
    (PANTHER, 29, "missing-field"),  # no timestamp at all: "EKS CronJob Created"
    (
        PANTHER,
        30,
        "missing-field",
    ),  # no timestamp at all: "System controller creating CronJob in kube-system (excluded)"
    (PANTHER, 31, "missing-field"),  # no timestamp at all: "EKS DaemonSet Created"
    (
        PANTHER,
        32,
        "missing-field",
    ),  # no timestamp at all: "System controller creating DaemonSet in kube-system (excluded)"
    (PANTHER, 33, "missing-field"),  # no timestamp at all: "EKS Exec Into Pod"
    (PANTHER, 34, "missing-field"),  # no timestamp at all: "EKS Ingress without TLS"
    (PANTHER, 35, "missing-field"),  # no timestamp at all: "EKS Activity from Tor Exit Node"
    (
        PANTHER,
        36,
        "missing-field",
    ),  # no timestamp at all: "EKS kubectl cp from pod (requestURI format)"
    (PANTHER, 37, "missing-field"),  # no timestamp at all: "EKS 403 from Public IP"
    (PANTHER, 38, "missing-field"),  # no timestamp at all: "EKS pod created in kube-system"
    (
        PANTHER,
        39,
        "missing-field",
    ),  # no timestamp at all: "EKS pod eviction in kube-system (excluded)"
    (PANTHER, 40, "missing-field"),  # no timestamp at all: "EKS Pod with SYS_ADMIN Capability"
    (PANTHER, 41, "missing-field"),  # no timestamp at all: "EKS Pod with HostIPC"
    (PANTHER, 42, "missing-field"),  # no timestamp at all: "EKS Pod With Host Network"
    (PANTHER, 43, "missing-field"),  # no timestamp at all: "EKS Pod With Host PID"
    (PANTHER, 44, "missing-field"),  # no timestamp at all: "EKS Pod With Suspicious HostPath"
    (PANTHER, 46, "missing-field"),  # no timestamp at all: "Run-As-Root Pod Created"
    (PANTHER, 47, "missing-field"),  # no timestamp at all: "Pod with runAsUser=0 (root)"
    (PANTHER, 48, "missing-field"),  # no timestamp at all: "Non-Privileged Pod Created"
    (
        PANTHER,
        49,
        "missing-field",
    ),  # no timestamp at all: "EKS ClusterRole with nodes/proxy permission"
    (PANTHER, 50, "missing-field"),  # no timestamp at all: "EKS ClusterRole with pods/exec"
    (
        PANTHER,
        51,
        "missing-field",
    ),  # no timestamp at all: "EKS ClusterRole with wildcard resources and verbs"
    (
        PANTHER,
        52,
        "missing-field",
    ),  # no timestamp at all: "EKS ClusterRole with delete permissions on secrets"
    (PANTHER, 53, "missing-field"),  # no timestamp at all: "EKS failed secret get (403 Forbidden)"
    (PANTHER, 54, "missing-field"),  # no timestamp at all: "EKS failed secret get (404 Not Found)"
    (PANTHER, 55, "missing-field"),  # no timestamp at all: "User Gets a Secret"
    (PANTHER, 56, "missing-field"),  # no timestamp at all: "User Lists Secrets"
    (PANTHER, 57, "missing-field"),  # no timestamp at all: "User Watches Secrets"
    (PANTHER, 58, "missing-field"),  # no timestamp at all: "User Gets Secret - Access Denied"
    (PANTHER, 59, "missing-field"),  # no timestamp at all: "System Principal Excluded"
    (PANTHER, 60, "missing-field"),  # no timestamp at all: "Non-Secret Resource"
    (PANTHER, 61, "missing-field"),  # no timestamp at all: "Write Verb Excluded"
    (PANTHER, 62, "missing-field"),  # no timestamp at all: "EKS cluster-wide secret list"
    (PANTHER, 63, "missing-field"),  # no timestamp at all: "EKS NodePort Service Created"
    (PANTHER, 64, "missing-field"),  # no timestamp at all: "EKS long-lived token created"
    (PANTHER, 65, "missing-field"),  # no timestamp at all: "EKS cat service account token"
    (PANTHER, 66, "missing-field"),  # no timestamp at all: "EKS IRSA token theft"
    (
        PANTHER,
        67,
        "missing-field",
    ),  # no timestamp at all: "EKS System ServiceAccount from Non-AWS Public IP"
    (PANTHER, 68, "missing-field"),  # no timestamp at all: "EKS Legitimate Node from AWS IP"
    (PANTHER, 69, "missing-field"),  # no timestamp at all: "EKS system ClusterRole modified"
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
    assert len(priv) == 1
    assert entity(EntityKind.POD, "default", "test-privileged-pod") in priv[0].entities
    assert priv[0].severity >= Severity.HIGH


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
