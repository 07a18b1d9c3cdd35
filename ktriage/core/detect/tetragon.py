"""Which Tetragon events are signals, and how risky.

core/parse/tetragon.py decodes a record and names its entities, then asks this
module whether an exec (`classify_exec`), a kprobe/tracepoint/LSM hit
(`classify_hook`) or a connection (`classify_connect`) is a signal.

A focused replay (core/focus.py) leaves out the execs that cannot be signals by
this module's own tables, SUSPECT_EXEC_BINARIES and SUSPECT_EXEC_ARGUMENTS:
`classify_exec` itself looks no further at an exec that runs none of those binaries
and has none of those pieces in its arguments, so the two cannot drift apart.

Every field of a record comes from the watched side and may have any type: the
readers below take what has the expected type and ignore the rest.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, NamedTuple

from ktriage.core.model import Severity

if TYPE_CHECKING:
    from ktriage.core.parse.tetragon import TBody, TParent, TProcess

_CRITICAL, _HIGH, _MEDIUM, _LOW = Severity.CRITICAL, Severity.HIGH, Severity.MEDIUM, Severity.LOW


class Finding(NamedTuple):
    kind: str
    severity: Severity
    label: str
    technique: str  # ATT&CK id, "" for none
    tactic: str = ""  # when not the technique's usual one


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
_RECON = frozenset({"nmap", "masscan", "zmap", "nping", "rustscan", "naabu", "hping3"})
_SSH_SERVERS = frozenset({"sshd", "dropbear"})
_SSH_CLIENTS = frozenset({"ssh"})
_REMOTE_COPY = frozenset({"scp", "rsync", "sftp", "rclone"})
_MODULE_LOADERS = frozenset({"insmod", "modprobe"})
_MODULE_UNLOADERS = frozenset({"rmmod"})
_LOG_TOOLS = frozenset({"truncate", "shred", "rm", "unlink", "wipe"})
_CHMOD = frozenset({"chmod"})

_TOKEN_PATHS = (
    "/var/run/secrets/kubernetes.io",
    "/run/secrets/kubernetes.io",
    "serviceaccount/token",
    "/var/run/secrets/eks.amazonaws.com",
)
_SHADOW = ("/etc/shadow", "/etc/gshadow")
# The kubelet's own credentials on its node: whoever reads them can act as the node
# (core/containment.py keeps that node's identity open).
KUBELET_CREDENTIAL_PATHS = (
    "/var/lib/kubelet/kubeconfig",
    "/var/lib/kubelet/pki/",
    "/etc/kubernetes/kubelet.conf",
)
# Cloud instance metadata endpoints (AWS, GCP, Azure, Alibaba, ECS task credentials).
_METADATA = (
    "169.254.169.254",
    "metadata.google.internal",
    "100.100.100.200",
    "fd00:ec2::254",
    "169.254.170.2",
)
# A shell's standard streams sent to a socket: the bash/sh form needs a redirection
# or -i with it (a probe such as `</dev/tcp/127.0.0.1/5432` is none); the other
# forms are reverse shells on their own.
_DEV_SOCKETS = ("/dev/tcp/", "/dev/udp/")
_SOCKET_REDIRECTS = (">&", "<&", " -i")
_REVERSE_SHELL_CODE = ("pty.spawn(", "os.dup2(", "fsockopen(", "TCPSocket.new(", "TCPSocket.open(")
# A shell piped into netcat: `sh -i 2>&1 | nc HOST PORT`, the mkfifo form.
_PIPE_TO_NETCAT = ("| nc ", "|nc ", "| ncat ", "|ncat ", "| socat ", "|socat ", "| telnet ")
_INTERACTIVE_SHELL = (" -i", "/bin/sh", "/bin/bash")
_LOCAL_TARGETS = ("/dev/tcp/127.", "/dev/tcp/localhost/", "/dev/udp/127.", "/dev/udp/localhost/")
_NETCAT_EXEC = ("-e /", "-c /", "--exec", "--sh-exec", "exec:", "EXEC:", "system:")
_LOG_MARKERS = ("/var/log", "_history")
_LOG_REDIRECT = re.compile(r"(?:^|[;&|\s(\"']):?\s*>\s*(?:/var/log/|\S*_history\b)")
_SETUID_MODE = re.compile(r"\A(?:[ugoa]*[+=][rwxXt]*s[rwxXt]*|[2-7][0-7]{3})\Z")
_SSH_TUNNEL_FLAGS = frozenset({"-R", "-L", "-D", "-w"})
_PIPE_TO_SHELL = ("| sh", "|sh", "| bash", "|bash")
_TO_TMP = ("-o /tmp", "-O /tmp")

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
_STATIC_POD_DIRS = ("/etc/kubernetes/manifests/", "/etc/kubernetes/manifests")
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
_MODULE_SUFFIXES = (".ko", ".ko.xz", ".ko.zst", ".ko.gz")

# What a focused replay (core/focus.py) reads to leave out execs that cannot be
# signals: every binary classify_exec may call a signal whatever its arguments,
# and every piece of the arguments that may make any exec one.
SUSPECT_EXEC_BINARIES = (
    MINERS
    | SHELLS
    | _ESCAPE
    | _DOWNLOAD
    | _NETCAT
    | _KUBECTL
    | _RECON
    | _SSH_SERVERS
    | _SSH_CLIENTS
    | _REMOTE_COPY
    | _MODULE_LOADERS
    | _MODULE_UNLOADERS
    | _LOG_TOOLS
    | _CHMOD
)
SUSPECT_EXEC_ARGUMENTS = (
    *_MINER_ARGUMENTS,
    *_DEV_SOCKETS,
    *_REVERSE_SHELL_CODE,
    *_PIPE_TO_NETCAT,
    *_TOKEN_PATHS,
    *_METADATA,
    *_SHADOW,
    *KUBELET_CREDENTIAL_PATHS,
    *_LOG_MARKERS,
)
SUSPECT_ARGUMENTS_RE = re.compile("|".join(re.escape(p) for p in SUSPECT_EXEC_ARGUMENTS))


def _base(path: str | None) -> str:
    return path.rpartition("/")[2] if path else ""


def _in_container(proc: TProcess) -> bool:
    return proc.pod is not None or bool(proc.docker)


def _any_in(text: str, pieces: tuple[str, ...]) -> bool:
    return any(p in text for p in pieces)


def _is_entrypoint(proc: TProcess) -> bool:
    container = proc.pod.container if proc.pod is not None else None
    return container is not None and container.pid == 1


def classify_exec(proc: TProcess, parent: TParent | None) -> Finding | None:
    """The finding for a suspicious exec, else None."""
    name = _base(proc.binary)
    args = proc.arguments or ""
    if name not in SUSPECT_EXEC_BINARIES and SUSPECT_ARGUMENTS_RE.search(args) is None:
        return None  # most execs: one lookup and one scan, as the focused replay tests
    pname = _base(parent.binary) if parent is not None else ""
    if name in MINERS or _any_in(args, _MINER_ARGUMENTS):
        return Finding("miner", _CRITICAL, "Miner", "T1496")
    if _reverse_shell(name, args):
        return Finding("reverse-shell", _CRITICAL, "Reverse shell", "T1059.004")
    if not _in_container(proc):
        return None
    if name in _ESCAPE:
        privileged = bool(proc.cap) and b"CAP_SYS_ADMIN" in bytes(proc.cap)
        to_init = "-t 1" in args or "--target 1" in args or "--target=1" in args
        sev = _CRITICAL if privileged and (to_init or name != "nsenter") else _HIGH
        return Finding("nsenter", sev, "Host namespace entry", "T1611")
    if _any_in(args, _TOKEN_PATHS):
        return Finding("sa-token-read", _HIGH, "Token theft", "T1528")
    if _any_in(args, _METADATA):
        return Finding("metadata-access", _HIGH, "Cloud metadata access", "T1552.005")
    if _any_in(args, _SHADOW):
        return Finding("shadow-read", _HIGH, "Shadow file read", "T1003.008")
    if _any_in(args, KUBELET_CREDENTIAL_PATHS):
        return Finding("kubelet-credentials-read", _HIGH, "Kubelet credentials read", "T1552.001")
    found = _log_clearing(name, args)
    if found is not None:
        return found
    if name in SHELLS:
        if pname in SHELLS or _is_entrypoint(proc):
            return None  # a script's own shells; the container's own entrypoint
        if pname in _ESCAPE:
            return Finding("shell", _HIGH, "Host shell", "T1611")
        if pname.startswith(_RUNTIMES):
            return Finding("shell", _MEDIUM, "Shell", "T1059.004")
        # A shell spawned by an application (web server, agent): remote code execution.
        return Finding("shell", _HIGH, "Shell", "T1059.004")
    if name in _REMOTE_COPY:
        remote = name == "rclone" or any(
            not word.startswith("-") and (":" in word or "@" in word) for word in args.split()
        )
        return Finding("exfil-tool", _HIGH if remote else _MEDIUM, "Remote copy", "T1048")
    if name in _SSH_CLIENTS:
        words = set(args.split())
        if words & _SSH_TUNNEL_FLAGS:
            return Finding("ssh-tunnel", _HIGH, "SSH tunnel", "T1572")
        if "scp -t" in args or "scp -f" in args:
            return Finding("exfil-tool", _HIGH, "Remote copy", "T1048")
        return Finding("ssh-client", _MEDIUM, "SSH client", "T1021.004")
    if name in _SSH_SERVERS:
        if _is_entrypoint(proc):
            return None  # an image built to run sshd
        return Finding("sshd-in-container", _HIGH, "SSH server started", "T1133", "persistence")
    if name in _RECON:
        return Finding("network-scan", _MEDIUM, "Network scan", "T1046")
    if name in _MODULE_LOADERS:
        # modprobe is also how CNI and kube-proxy agents check for their modules.
        sev = _HIGH if name == "insmod" else _MEDIUM
        return Finding("kernel-module", sev, "Kernel module load", "T1547.006")
    if name in _MODULE_UNLOADERS:
        return Finding("kernel-module", _MEDIUM, "Kernel module unload", "T1547.006")
    if name in _CHMOD:
        if any(_SETUID_MODE.match(word) for word in args.split()):
            return Finding("setuid-bit", _MEDIUM, "Setuid bit set", "T1548.001")
        return None
    if name in _DOWNLOAD:
        risky = _any_in(args, _PIPE_TO_SHELL) or _any_in(args, _TO_TMP)
        return Finding("download", _HIGH if risky else _MEDIUM, "Download tool", "T1105")
    if name in _NETCAT:
        return Finding("netcat", _HIGH, "Netcat", "T1095")
    if name in _KUBECTL:
        return Finding("kubectl-in-pod", _MEDIUM, "Kubectl in pod", "T1613")
    return None


def _reverse_shell(name: str, args: str) -> bool:
    """A shell's streams sent to a remote socket."""
    if _any_in(args, _DEV_SOCKETS):
        if _any_in(args, _SOCKET_REDIRECTS) and not _any_in(args, _LOCAL_TARGETS):
            return True
    if _any_in(args, _REVERSE_SHELL_CODE):
        return True
    if _any_in(args, _PIPE_TO_NETCAT) and _any_in(args, _INTERACTIVE_SHELL):
        return True
    return name in _NETCAT and _any_in(args, _NETCAT_EXEC)


def _log_clearing(name: str, args: str) -> Finding | None:
    """Logs or shell history truncated, shredded or removed."""
    if not _any_in(args, _LOG_MARKERS):
        return None
    if name in _LOG_TOOLS or (name in SHELLS and _LOG_REDIRECT.search(args)):
        if "/var/log" in args:
            return Finding("log-clear", _HIGH, "Log clearing", "T1070.002")
        return Finding("log-clear", _MEDIUM, "History clearing", "T1070.003")
    return None


# -- kprobe, tracepoint and LSM hits ---------------------------------------------

# security_file_permission's mask (include/linux/fs.h).
_MAY_EXEC, _MAY_WRITE, _MAY_READ, _MAY_APPEND = 1, 2, 4, 8
_WRITING_CALLS = (
    "write",
    "truncate",
    "rename",
    "unlink",
    "mkdir",
    "rmdir",
    "chmod",
    "chown",
    "symlink",
    "path_link",
    "inode_link",
    "sys_link",
    "linkat",
    "create",
    "setattr",
)
_MASKED_CALLS = ("file_permission", "inode_permission")
# open(2) flags: O_WRONLY or O_RDWR, and O_CREAT or O_TRUNC.
_O_ACCMODE = 0o3
_O_WRITE_FLAGS = 0o100 | 0o1000
# kernel_read_file_id (include/linux/kernel_read_file.h): READING_MODULE.
_READING_MODULE = 2
_MODULE_LOAD_CALLS = ("init_module", "load_module", "finit_module")
_MODULE_UNLOAD_CALLS = ("free_module", "delete_module")
_SETUID_CALLS = ("setuid", "setreuid", "setresuid", "commit_creds", "setfsuid")
_CRED_KEYS = ("uid", "euid", "suid", "fsuid")
_CRED_ARGS = ("process_credentials_arg", "cred_arg")


def _as_int(value: object) -> int | None:
    """An integer argument: Tetragon writes 64-bit numbers as strings."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and len(value) < 24:
        try:
            return int(value, 0)
        except ValueError:
            return None
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
                p = str(v["path"])
                return p if p.startswith("/") else "/" + p
        v = a.get("string_arg")
        if isinstance(v, str) and v.startswith("/"):
            return v
    return ""


def _arg_ints(args: list[Any] | None) -> list[int]:
    """The int arguments, in order."""
    found: list[int] = []
    for a in args or ():
        if isinstance(a, dict):
            for key in ("int_arg", "uint_arg", "long_arg"):
                if key in a:
                    v = _as_int(a[key])
                    if v is not None:
                        found.append(v)
    return found


def _arg_port(args: list[Any] | None) -> int | None:
    for a in args or ():
        if isinstance(a, dict) and isinstance(a.get("sock_arg"), dict):
            port = _as_int(a["sock_arg"].get("dport"))
            if port is not None:
                return port
    return None


def _arg_module(args: list[Any] | None) -> str:
    for a in args or ():
        if isinstance(a, dict):
            v = a.get("module_arg")
            if isinstance(v, dict) and isinstance(v.get("name"), str):
                return str(v["name"])
            v = a.get("string_arg")
            if isinstance(v, str) and v and not v.startswith("/"):
                return v
    return ""


def _target_uids(low: str, args: list[Any] | None) -> set[int] | None:
    """The user ids a setuid-family call asks for, None when the record does not say."""
    uids: set[int] = set()
    if "commit_creds" in low:
        for a in args or ():
            if isinstance(a, dict):
                # The new credentials (a user_ns_arg beside them names the namespace's owner).
                for name in _CRED_ARGS:
                    v = a.get(name)
                    if isinstance(v, dict):
                        for key in _CRED_KEYS:
                            uid = _as_int(v.get(key))
                            if uid is not None:
                                uids.add(uid)
    else:
        # -1 leaves an id unchanged (setreuid, setresuid).
        uids = {v for v in _arg_ints(args) if v not in (-1, 0xFFFFFFFF)}
    return uids or None


def _access(low: str, args: list[Any] | None) -> str:
    """ "write", "read" or "" (unknown: an open, an fd_install) for a file hook."""
    if any(m in low for m in _MASKED_CALLS):
        for mask in _arg_ints(args):
            if mask & (_MAY_WRITE | _MAY_APPEND):
                return "write"
            if mask & (_MAY_READ | _MAY_EXEC):
                return "read"
        return ""
    if any(w in low for w in _WRITING_CALLS):
        return "write"
    if "open" in low and "file_open" not in low:
        # sys_open(path, flags), sys_openat(dfd, path, flags): the flags come last.
        ints = _arg_ints(args)
        if ints:
            flags = ints[-1]
            return "write" if flags & _O_ACCMODE or flags & _O_WRITE_FLAGS else "read"
        return ""
    if "read" in low or "mmap" in low:
        return "read"
    return ""


def classify_hook(body: TBody, proc: TProcess | None = None) -> tuple[Finding, str]:
    """The finding of a kprobe/tracepoint/LSM hit and the detail a summary shows.
    Every hit is a signal (a policy chose to report it); an unrecognised one is a
    low "policy hit", or medium when a named policy reported it."""
    fn = body.function_name
    if not isinstance(fn, str) or not fn:
        event = body.event if isinstance(body.event, str) else ""
        fn = f"{body.subsys}/{event}" if event else "hook"
    low = fn.lower()
    args = body.args if isinstance(body.args, list) else None
    path = _arg_path(args)
    detail = f"{fn}({path})" if path else fn
    if any(c in low for c in _SETUID_CALLS):
        return _setuid(low, args, proc), detail
    if "ptrace" in low:
        return Finding("ptrace", _HIGH, "Ptrace", "T1055"), detail
    found = _module(low, args, path)
    if found is not None:
        module = _arg_module(args)
        return found, f"{fn}({module})" if module and not path else detail
    if any(k in low for k in ("mount", "unshare", "setns")):
        return Finding("container-escape", _HIGH, "Namespace change", "T1611"), detail
    if "connect" in low:
        if _arg_port(args) in MINING_PORTS:
            return Finding("mining-pool-egress", _HIGH, "Mining-pool egress", "T1496"), detail
        return Finding("network-connect", _LOW, "Outbound connection", "T1071"), detail
    if path:
        access = _access(low, args)
        if access:
            detail = f"{fn}({path}, {access})"
        found = _file(path, access, proc)
        if found is not None:
            return found, detail
    sev = _MEDIUM if body.policy_name else _LOW
    return Finding("process-kprobe", sev, "Policy hit", ""), detail


def _setuid(low: str, args: list[Any] | None, proc: TProcess | None) -> Finding:
    uids = _target_uids(low, args)
    caller = proc.uid if proc is not None and type(proc.uid) is int else None
    if uids is None or caller is None:
        return Finding("setuid", _MEDIUM, "Setuid", "T1068")
    if 0 in uids and caller != 0:
        return Finding("setuid", _HIGH, "Setuid to root", "T1068")
    # Dropping root, or root staying root: what servers do after binding a port.
    return Finding("setuid", _LOW, "Setuid", "T1068")


def _module(low: str, args: list[Any] | None, path: str) -> Finding | None:
    if "kernel_read_file" in low:
        ids = _arg_ints(args)
        if _READING_MODULE in ids[:1] or path.endswith(_MODULE_SUFFIXES):
            return Finding("kernel-module", _HIGH, "Kernel module load", "T1547.006")
        return None  # firmware, a kexec image, a policy
    if "module_request" in low:
        # The kernel asking for a module by name (a socket family, a filesystem).
        return Finding("kernel-module", _MEDIUM, "Kernel module request", "T1547.006")
    if any(c in low for c in _MODULE_UNLOAD_CALLS):
        return Finding("kernel-module", _MEDIUM, "Kernel module unload", "T1547.006")
    if any(c in low for c in _MODULE_LOAD_CALLS) or "module" in low:
        return Finding("kernel-module", _HIGH, "Kernel module load", "T1547.006")
    return None


def _file(path: str, access: str, proc: TProcess | None) -> Finding | None:
    if access == "write":
        if path.startswith(_STATIC_POD_DIRS):
            # kubeadm writes these on init and upgrade; anyone else plants a pod.
            kubeadm = proc is not None and _base(proc.binary) == "kubeadm"
            sev = _MEDIUM if kubeadm else _CRITICAL
            return Finding("static-pod-write", sev, "Static pod manifest write", "T1610")
        if path.endswith("/authorized_keys") or path.endswith("/authorized_keys2"):
            return Finding("ssh-key-write", _HIGH, "SSH key added", "T1098.004")
        if path.startswith(_WRITE_SENSITIVE):
            return Finding("sensitive-file-write", _HIGH, "Sensitive file write", "T1098")
        if path.startswith("/var/log/"):
            return Finding("log-clear", _HIGH, "Log tampering", "T1070.002")
        return None
    if path.startswith(_SHADOW):
        return Finding("shadow-read", _HIGH, "Shadow file read", "T1003.008")
    if any(p in path for p in _TOKEN_PATHS):
        return Finding("sa-token-read", _HIGH, "Token theft", "T1528")
    if _any_in(path, KUBELET_CREDENTIAL_PATHS):  # also through a hostPath mount
        return Finding("kubelet-credentials-read", _HIGH, "Kubelet credentials read", "T1552.001")
    if path.endswith(_KEY_SUFFIXES):
        return Finding("sensitive-file-read", _MEDIUM, "Key file read", "T1552.001")
    if path.startswith(_WRITE_SENSITIVE):
        label = "Sensitive file read" if access == "read" else "Sensitive file access"
        return Finding("sensitive-file-read", _MEDIUM, label, "T1552.001")
    return None


def classify_connect(proc: TProcess | None, port: int | None) -> Finding | None:
    """The finding for a suspicious connection (older process_connect), else None."""
    if port in MINING_PORTS:
        return Finding("mining-pool-egress", _HIGH, "Mining-pool egress", "T1496")
    if _base(proc.binary if proc is not None else None) in _NETCAT:
        return Finding("network-connect", _HIGH, "Netcat connection", "T1095")
    return None
