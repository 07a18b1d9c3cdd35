"""Tetragon events: refs, entities, suspicious execs, policy hits and connections."""

from __future__ import annotations

import copy

import orjson
import pytest

from ktriage.core.ingest import Ingestor
from ktriage.core.model import EntityKind, Severity, entity, iso

POD = {
    "namespace": "payments",
    "name": "api-7d9f",
    "container": {
        "id": "containerd://0123456789abcdef0123456789abcdef",
        "name": "api",
        "image": {"id": "registry.example/api@sha256:00", "name": "registry.example/api:1.4.2"},
        "pid": 42,
    },
}


def process(binary: str, arguments: str = "", **extra: object) -> dict:
    proc = {
        "exec_id": f"bm9kZTo{binary}",
        "pid": 4242,
        "uid": 0,
        "binary": binary,
        "arguments": arguments,
        "start_time": "2024-05-01T12:00:00.000Z",
        "pod": copy.deepcopy(POD),
    }
    proc.update(extra)
    return proc


def exec_event(binary: str, arguments: str = "", parent: str = "/usr/bin/python3", **extra) -> dict:
    return {
        "process_exec": {
            "process": process(binary, arguments, **extra),
            "parent": {"exec_id": "cGFyZW50", "binary": parent},
        },
        "node_name": "worker-2",
        "time": "2024-05-01T12:00:03.123Z",
    }


def feed(rec: dict, ing: Ingestor | None = None) -> list:
    return (ing or Ingestor()).feed_line(orjson.dumps(rec), origin="tetragon.jsonl:1")


def test_plain_exec_is_context_with_entities_and_ref() -> None:
    [ev] = feed(exec_event("/usr/bin/ls", "-la", parent="/bin/bash"))
    assert ev.source == "tetragon"
    assert ev.kind == "process-exec"
    assert ev.signal is False
    assert ev.ref == "bm9kZTo/usr/bin/ls:process_exec:2024-05-01T12:00:03.123Z"
    assert iso(ev.time) == "2024-05-01T12:00:03.123000Z"
    ents = set(ev.entities)
    assert entity(EntityKind.POD, "payments", "api-7d9f") in ents
    assert entity(EntityKind.CONTAINER, "", "0123456789ab") in ents  # same 12 chars as Falco
    assert entity(EntityKind.NODE, "", "worker-2") in ents
    assert entity(EntityKind.IMAGE, "", "registry.example/api:1.4.2") in ents
    assert entity(EntityKind.NAMESPACE, "", "payments") in ents


@pytest.mark.parametrize(
    ("binary", "args", "parent", "kind", "severity"),
    [
        ("/bin/sh", "-c id", "/usr/bin/python3", "shell", Severity.HIGH),  # app spawned a shell
        ("/bin/bash", "", "/usr/bin/runc", "shell", Severity.MEDIUM),  # interactive exec
        ("/usr/bin/curl", "http://203.0.113.9/x -o /tmp/x", "/bin/sh", "download", Severity.HIGH),
        ("/usr/bin/wget", "http://example.com/", "/bin/sh", "download", Severity.MEDIUM),
        ("/tmp/xmrig", "-o pool:3333", "/bin/sh", "miner", Severity.CRITICAL),
        ("/usr/bin/nc", "198.51.100.3 4444", "/bin/sh", "netcat", Severity.HIGH),
        ("/usr/local/bin/kubectl", "get secrets -A", "/bin/sh", "kubectl-in-pod", Severity.MEDIUM),
        (
            "/bin/cat",
            "/var/run/secrets/kubernetes.io/serviceaccount/token",
            "/bin/sh",
            "sa-token-read",
            Severity.HIGH,
        ),
        ("/usr/bin/nsenter", "-t 1 -m -u -n -i -p bash", "/bin/bash", "nsenter", Severity.HIGH),
    ],
)
def test_suspicious_execs(binary, args, parent, kind, severity) -> None:
    [ev] = feed(exec_event(binary, args, parent=parent))
    assert ev.signal is True
    assert ev.kind == kind
    assert ev.severity == severity
    assert ev.attack is not None
    assert ev.label


def test_nsenter_with_privileged_caps_is_critical() -> None:
    caps = {"effective": ["CAP_SYS_ADMIN", "CAP_NET_ADMIN"], "permitted": ["CAP_SYS_ADMIN"]}
    [ev] = feed(
        exec_event("/usr/bin/nsenter", "-t 1 -m -u -n -i -p bash", parent="/bin/bash", cap=caps)
    )
    assert ev.severity == Severity.CRITICAL
    assert ev.attack.technique == "T1611"


def test_benign_shells_are_context() -> None:
    # a shell run by a shell
    [ev] = feed(exec_event("/bin/sh", "lifecycle.sh", parent="/bin/bash"))
    assert ev.signal is False
    # the container's own entrypoint (pid 1 in the container)
    rec = exec_event("/bin/sh", "-c nginx", parent="/usr/bin/containerd-shim-runc-v2")
    rec["process_exec"]["process"]["pod"]["container"]["pid"] = 1
    [ev] = feed(rec)
    assert ev.signal is False
    # a shell on the host, outside any container
    rec = exec_event("/bin/bash", parent="/usr/sbin/sshd")
    del rec["process_exec"]["process"]["pod"]
    [ev] = feed(rec)
    assert ev.signal is False


def test_exit_is_context() -> None:
    rec = {
        "process_exit": {
            "process": process("/bin/bash"),
            "parent": {"binary": "/usr/bin/runc"},
            "status": 1,
        },
        "node_name": "worker-2",
        "time": "2024-05-01T12:00:09Z",
    }
    [ev] = feed(rec)
    assert ev.kind == "process-exit"
    assert ev.signal is False
    assert ev.ref.endswith(":process_exit:2024-05-01T12:00:09Z")


def kprobe(function: str, args: list, policy: str | None = None) -> dict:
    body = {
        "process": process("/usr/bin/vi", "/etc/passwd"),
        "function_name": function,
        "args": args,
    }
    if policy:
        body["policy_name"] = policy
    return {"process_kprobe": body, "node_name": "worker-2", "time": "2024-05-01T12:00:04Z"}


@pytest.mark.parametrize(
    ("function", "args", "kind", "severity"),
    [
        (
            "__x64_sys_write",
            [{"file_arg": {"path": "etc/passwd"}}],
            "sensitive-file-write",
            Severity.HIGH,
        ),
        (
            "security_file_permission",
            [{"file_arg": {"path": "/etc/shadow"}}],
            "shadow-read",
            Severity.HIGH,
        ),
        # root asking for root changes nothing (non-root to root: test_detect_tetragon)
        ("__x64_sys_setuid", [{"int_arg": 0}], "setuid", Severity.LOW),
        (
            "tcp_connect",
            [{"sock_arg": {"daddr": "198.51.100.3", "dport": 3333}}],
            "mining-pool-egress",
            Severity.HIGH,
        ),
        (
            "tcp_connect",
            [{"sock_arg": {"daddr": "10.0.0.3", "dport": 5432}}],
            "network-connect",
            Severity.LOW,
        ),
        (
            "__x64_sys_read",
            [{"file_arg": {"path": "/srv/app/data.txt"}}],
            "process-kprobe",
            Severity.LOW,
        ),
    ],
)
def test_kprobe_hits_are_signals(function, args, kind, severity) -> None:
    [ev] = feed(kprobe(function, args))
    assert ev.signal is True
    assert ev.kind == kind
    assert ev.severity == severity


def test_kprobe_policy_name_in_summary_and_raises_unknown_hooks() -> None:
    [ev] = feed(kprobe("some_hook", [], policy="watch-things"))
    assert ev.severity == Severity.MEDIUM
    assert "watch-things" in ev.summary


def test_tracepoint_and_lsm() -> None:
    tp = {
        "process_tracepoint": {
            "process": process("/bin/x"),
            "subsys": "syscalls",
            "event": "sys_enter_ptrace",
        },
        "node_name": "n",
        "time": "2024-05-01T12:00:04Z",
    }
    [ev] = feed(tp)
    assert ev.signal is True and ev.kind == "ptrace"
    tp["process_tracepoint"]["event"] = "sys_enter_openat"
    [ev] = feed(tp)
    assert ev.signal is True and ev.kind == "process-tracepoint"
    lsm = {
        "process_lsm": {
            "process": process("/bin/cat"),
            "function_name": "security_file_open",
            "args": [{"file_arg": {"path": "/etc/shadow"}}],
            "policy_name": "files",
        },
        "node_name": "n",
        "time": "2024-05-01T12:00:04Z",
    }
    [ev] = feed(lsm)
    assert ev.kind == "shadow-read"


def connect(binary: str, port: int) -> dict:
    return {
        "process_connect": {
            "process": process(binary),
            "destination_ip": "198.51.100.3",
            "destination_port": port,
            "protocol": "TCP",
        },
        "node_name": "n",
        "time": "2024-05-01T12:00:05Z",
    }


def test_connections() -> None:
    [ev] = feed(connect("/tmp/kworker", 14444))
    assert ev.kind == "mining-pool-egress" and ev.signal and ev.severity == Severity.HIGH
    assert entity(EntityKind.IP, "", "198.51.100.3") in ev.entities
    [ev] = feed(connect("/usr/bin/nc", 443))
    assert ev.signal and ev.kind == "network-connect"
    [ev] = feed(connect("/usr/bin/curl", 443))
    assert ev.signal is False


def test_docker_short_id_without_pod() -> None:
    rec = exec_event("/bin/sh", "-c id", parent="/opt/agent/main")
    proc = rec["process_exec"]["process"]
    del proc["pod"]
    proc["docker"] = "a51959123c3ba99a9f50a700"
    [ev] = feed(rec)
    assert entity(EntityKind.CONTAINER, "", "a51959123c3b") in ev.entities
    assert ev.signal is True


def test_exec_without_time_uses_process_start() -> None:
    rec = exec_event("/usr/bin/ls")
    del rec["time"]
    [ev] = feed(rec)
    assert iso(ev.time) == "2024-05-01T12:00:00.000000Z"


def test_bad_tetragon_records() -> None:
    ing = Ingestor()
    rec = kprobe("x", [])
    del rec["time"]
    assert feed(rec, ing) == []
    rec = exec_event("/bin/ls")
    rec["process_exec"]["process"]["pid"] = "many"
    assert feed(rec, ing) == []
    assert (
        feed({"process_throttle": {}, "node_name": "n", "time": "2024-05-01T12:00:00Z"}, ing) == []
    )
    assert ing.skipped == {"missing-field": 1, "wrong-type": 1, "unknown-format": 1}
