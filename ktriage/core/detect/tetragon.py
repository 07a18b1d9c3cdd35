"""Which Tetragon events are signals, and how risky.

core/parse/tetragon.py decodes a record and names its entities, then asks this
module whether an exec, a kprobe/tracepoint/LSM hit or a connection is a signal.
The tables here are also what a focused replay (core/focus.py) uses to decide
which execs might be signals, so the two can never drift apart.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ktriage.core.model import Severity

if TYPE_CHECKING:
    from ktriage.core.parse.tetragon import TBody, TParent, TProcess

SHELLS = frozenset({"sh", "bash", "dash", "zsh", "ash", "ksh", "mksh", "tcsh", "csh", "fish"})
_RUNTIMES = ("containerd-shim", "runc", "crun", "conmon", "docker-containerd-shim")
MINERS = frozenset(
    {
        "xmrig",
        "minerd",
        "cpuminer",
        "xmr-stak",
        "ethminer",
        "cgminer",
        "bfgminer",
        "ccminer",
        "nanominer",
        "t-rex",
        "nbminer",
        "lolminer",
        "kdevtmpfsi",
        "kinsing",
    }
)
_MINER_ARGUMENTS = ("stratum+tcp", "stratum+ssl")
MINING_PORTS = frozenset({3333, 4444, 5555, 7777, 14444, 45700})
_NETCAT = frozenset({"nc", "ncat", "netcat", "socat"})
_ESCAPE = frozenset({"nsenter", "chroot", "unshare"})
_DOWNLOAD = frozenset({"curl", "wget"})
_KUBECTL = frozenset({"kubectl"})
_TOKEN_PATHS = (
    "/var/run/secrets/kubernetes.io",
    "/run/secrets/kubernetes.io",
    "serviceaccount/token",
    "/var/run/secrets/eks.amazonaws.com",
)
_SHADOW = ("/etc/shadow", "/etc/gshadow")
_WRITE_SENSITIVE = (
    "/etc/passwd",
    "/etc/shadow",
    "/etc/sudoers",
    "/etc/cron",
    "/etc/ld.so.preload",
    "/root/.ssh",
    "/etc/ssh",
    "/etc/kubernetes",
    "/var/spool/cron",
)
_KEY_SUFFIXES = (
    ".key",
    ".pem",
    ".keystore",
    ".jks",
    ".p12",
    ".pfx",
    "id_rsa",
    "id_ed25519",
    "id_ecdsa",
    ".kube/config",
)


def _base(path: str | None) -> str:
    return path.rpartition("/")[2] if path else ""


def _in_container(proc: TProcess) -> bool:
    return proc.pod is not None or bool(proc.docker)


def classify_exec(proc: TProcess, parent: TParent | None) -> tuple[str, Severity, str, str] | None:
    """(kind, severity, label, technique) for a suspicious exec, else None."""
    name = _base(proc.binary)
    args = proc.arguments or ""
    pname = _base(parent.binary) if parent is not None else ""
    if name in MINERS or any(p in args for p in _MINER_ARGUMENTS):
        return "miner", Severity.CRITICAL, "Miner", "T1496"
    if not _in_container(proc):
        return None
    if name in _ESCAPE:
        privileged = bool(proc.cap) and b"CAP_SYS_ADMIN" in bytes(proc.cap)
        to_init = "-t 1" in args or "--target 1" in args or "--target=1" in args
        sev = Severity.CRITICAL if privileged and (to_init or name != "nsenter") else Severity.HIGH
        return "nsenter", sev, "Host namespace entry", "T1611"
    if any(p in args for p in _TOKEN_PATHS):
        return "sa-token-read", Severity.HIGH, "Token theft", "T1528"
    if name in SHELLS:
        if pname in SHELLS:
            return None
        container = proc.pod.container if proc.pod is not None else None
        if container is not None and container.pid == 1:
            return None  # the container's own entrypoint
        if pname in _ESCAPE:
            return "shell", Severity.HIGH, "Host shell", "T1611"
        if pname.startswith(_RUNTIMES):
            return "shell", Severity.MEDIUM, "Shell", "T1059.004"
        # A shell spawned by an application (web server, agent): remote code execution.
        return "shell", Severity.HIGH, "Shell", "T1059.004"
    if name in _DOWNLOAD:
        risky = any(s in args for s in ("| sh", "|sh", "| bash", "|bash", "-o /tmp", "-O /tmp"))
        sev = Severity.HIGH if risky else Severity.MEDIUM
        return "download", sev, "Download tool", "T1105"
    if name in _NETCAT:
        return "netcat", Severity.HIGH, "Netcat", "T1095"
    if name in _KUBECTL:
        return "kubectl-in-pod", Severity.MEDIUM, "Kubectl in pod", "T1613"
    return None


def _arg_path(args: list[Any] | None) -> str:
    if not args:
        return ""
    for a in args:
        if not isinstance(a, dict):
            continue
        for key in ("file_arg", "path_arg", "linux_binprm_arg"):
            v = a.get(key)
            if isinstance(v, dict) and isinstance(v.get("path"), str):
                p = v["path"]
                return p if p.startswith("/") else "/" + p
        v = a.get("string_arg")
        if isinstance(v, str) and v.startswith("/"):
            return v
    return ""


def _arg_port(args: list[Any] | None) -> int | None:
    if not args:
        return None
    for a in args:
        if isinstance(a, dict) and isinstance(a.get("sock_arg"), dict):
            port = a["sock_arg"].get("dport")
            if isinstance(port, int):
                return port
    return None


def classify_hook(body: TBody) -> tuple[str, Severity, str, str, str]:
    """(kind, severity, label, technique, detail) of a kprobe/tracepoint/lsm hit."""
    fn = body.function_name or (f"{body.subsys}/{body.event}" if body.event else "hook")
    low = fn.lower()
    path = _arg_path(body.args)
    detail = f"{fn}({path})" if path else fn
    if "setuid" in low or "setreuid" in low or "setresuid" in low or "commit_creds" in low:
        return "setuid", Severity.HIGH, "Setuid", "T1068", detail
    if "ptrace" in low:
        return "ptrace", Severity.HIGH, "Ptrace", "T1055", detail
    if "module" in low:
        return "kernel-module", Severity.HIGH, "Kernel module load", "T1547.006", detail
    if any(k in low for k in ("mount", "unshare", "setns")):
        return "container-escape", Severity.HIGH, "Namespace change", "T1611", detail
    if "connect" in low:
        port = _arg_port(body.args)
        if port in MINING_PORTS:
            return "mining-pool-egress", Severity.HIGH, "Mining-pool egress", "T1496", detail
        return "network-connect", Severity.LOW, "Outbound connection", "T1071", detail
    if path:
        writing = "write" in low or "truncate" in low or "rename" in low or "unlink" in low
        if writing and path.startswith(_WRITE_SENSITIVE):
            return "sensitive-file-write", Severity.HIGH, "Sensitive file write", "T1098", detail
        if path.startswith(_SHADOW):
            return "shadow-read", Severity.HIGH, "Shadow file read", "T1003.008", detail
        if any(p in path for p in _TOKEN_PATHS):
            return "sa-token-read", Severity.HIGH, "Token theft", "T1528", detail
        if path.endswith(_KEY_SUFFIXES):
            return "sensitive-file-read", Severity.MEDIUM, "Key file read", "T1552.001", detail
        if path.startswith(_WRITE_SENSITIVE):
            return (
                "sensitive-file-read",
                Severity.MEDIUM,
                "Sensitive file access",
                "T1552.001",
                detail,
            )
    sev = Severity.MEDIUM if body.policy_name else Severity.LOW
    return "process-kprobe", sev, "Policy hit", "", detail


def classify_connect(
    proc: TProcess | None, port: int | None
) -> tuple[str, Severity, str, str] | None:
    """(kind, severity, label, technique) for a suspicious connection, else None."""
    if port in MINING_PORTS:
        return "mining-pool-egress", Severity.HIGH, "Mining-pool egress", "T1496"
    if _base(proc.binary if proc is not None else None) in _NETCAT:
        return "network-connect", Severity.HIGH, "Netcat connection", "T1095"
    return None


# What a focused replay (core/focus.py) reads to leave out execs that cannot be
# signals: every binary classify_exec may call a signal whatever its arguments,
# and every piece of the arguments that may make any exec one.
SUSPECT_EXEC_BINARIES = MINERS | SHELLS | _ESCAPE | _DOWNLOAD | _NETCAT | _KUBECTL
SUSPECT_EXEC_ARGUMENTS = (*_MINER_ARGUMENTS, *_TOKEN_PATHS)
