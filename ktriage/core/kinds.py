"""Kind families: one word for what means the same across sources.

Each source names its events in its own way: the audit log's `pods/exec` is kind
`exec`, a Tetragon process execution is `process-exec` (or, once classified, what
it ran: `shell`, `miner`, `download`), a Falco alert is what its rule detects. A
family groups the kinds that answer one question, so `kind:exec` in the filter
finds the command the attacker typed through the API and the processes it
started in the container alike.

A kind filter that names no family matches kinds by prefix, as before.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class KindFamily:
    name: str
    meaning: str  # one line, for the help screen
    example: str  # a filter that uses it
    kinds: frozenset[str]

    def matches(self, kind: str) -> bool:
        return kind in self.kinds or kind.startswith(self.name + "-")


# Commands run: through the API (exec, attach, an ephemeral container) or seen by a
# runtime sensor (a process execution, and what classifying it found it to be).
_EXEC = frozenset(
    {
        "exec",
        "attach",
        "ephemeral-container",
        "process-exec",
        "shell",
        "miner",
        "download",
        "drop-and-execute",
        "fileless-exec",
        "app-spawned-process",
        "netcat",
        "reverse-shell",
        "exfil-tool",
        "kubectl-in-pod",
        "nsenter",
        "network-scan",
        "package-manager",
        "user-management",
        "ssh-client",
        "ssh-tunnel",
        "sshd-in-container",
        "setuid",
        "exploit",
        "privilege-escalation-exploit",
        "log-clear",
        "data-destruction",
    }
)
_NETWORK = frozenset(
    {
        "network-connect",
        "network-listen",
        "network-close",
        "mining-pool-egress",
        "metadata-access",
        "k8s-api-contact",
        "packet-socket",
        "reverse-shell",
        "ssh-tunnel",
        "port-forward",
        "node-proxy",
        "service-exposed",
        "network-scan",
    }
)
_FILE = frozenset(
    {
        "sensitive-file-read",
        "sensitive-file-write",
        "shadow-read",
        "sa-token-read",
        "kubelet-credentials-read",
        "ssh-key-write",
        "shell-config-write",
        "cron-write",
        "setuid-bit",
        "static-pod-write",
        "drop-and-execute",
        "log-clear",
    }
)
_RBAC = frozenset(
    {
        "rbac-binding",
        "rbac-dangerous-role",
        "rbac-exec-role",
        "rbac-system-change",
        "rbac-wildcard-role",
        "system-role-modified",
        "aws-auth-change",
        "csr-approval",
        "csr-create",
        "anonymous-allowed",
        "forbidden-burst",
        "impersonation",
    }
)
_SECRET = frozenset(
    {
        "secret-read",
        "secret-list",
        "token-request",
        "sa-token-read",
        "kubelet-credentials-read",
        "configmap-credentials",
        "shadow-read",
        "system-credential-outside",
    }
)
_POD = frozenset(
    {
        "pod-create",
        "pod-deleted",
        "pod-account",
        "pod-address",
        "privileged-pod",
        "host-namespace-pod",
        "hostpath-pod",
        "static-pod",
        "ephemeral-container",
        "container-injected",
        "pod-spec-unread",
        "cronjob-create",
        "daemonset-kube-system",
    }
)
_ESCAPE = frozenset(
    {
        "container-escape",
        "nsenter",
        "kernel-module",
        "bpf-load",
        "ptrace",
        "process-kprobe",
        "privileged-pod",
        "host-namespace-pod",
        "hostpath-pod",
        "static-pod-write",
    }
)

FAMILIES: tuple[KindFamily, ...] = (
    KindFamily(
        "exec",
        "commands run: API exec/attach and runtime process executions",
        "kind:exec ns:shop",
        _EXEC,
    ),
    KindFamily(
        "network",
        "connections, listeners, mining-pool egress, port-forward",
        "kind:network !ktriage-request",
        _NETWORK,
    ),
    KindFamily("file", "sensitive files read or written, dropped binaries", "kind:file", _FILE),
    KindFamily("rbac", "roles, bindings, certificates, forbidden bursts", "kind:rbac", _RBAC),
    KindFamily("secret", "secrets and tokens read, listed or requested", "kind:secret", _SECRET),
    KindFamily(
        "pod",
        "pods and workloads created, deleted, privileged, host access",
        "kind:pod sev:high",
        _POD,
    ),
    KindFamily("escape", "container escape attempts and host access", "kind:escape", _ESCAPE),
)
BY_FAMILY = {f.name: f for f in FAMILIES}

# Kinds no family holds, known so that a mistyped kind can be told from a real one.
OTHER_KINDS = frozenset(
    {
        "api-request",
        "ktriage-request",
        "process-exit",
        "process-tracepoint",
        "process-lsm",
        "process-uprobe",
        "falco-alert",
        "falco-internal",
        "unknown-format",
        "node-deleted",
        "node-notready",
        "admission-webhook",
        "dns-config-change",
        "events-deleted",
        "backdoor",
        "bulk-delete",
        "security-tool-deleted",
        "action",
    }
)
KNOWN_KINDS = frozenset().union(*(f.kinds for f in FAMILIES), OTHER_KINDS)


def family_of(name: str) -> KindFamily | None:
    return BY_FAMILY.get(name.lower())


def is_known_kind(prefix: str) -> bool:
    """Whether `prefix` names a family, or begins a kind ktriage produces."""
    prefix = prefix.lower()
    return prefix in BY_FAMILY or any(k.startswith(prefix) for k in KNOWN_KINDS)


def families_of(kind: str) -> list[str]:
    """The families a kind belongs to (a kind may answer more than one question)."""
    return [f.name for f in FAMILIES if f.matches(kind)]
