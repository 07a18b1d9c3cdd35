"""Which Falco alerts ktriage recognises, and how risky they are.

core/parse/falco.py decodes an alert and names its entities, then asks this module
what the rule is (its kind and label) and how severe.
"""

from __future__ import annotations

from ktriage.core.model import Severity

PRIORITY: dict[str, Severity] = {
    "emergency": Severity.CRITICAL,
    "alert": Severity.CRITICAL,
    "critical": Severity.CRITICAL,
    "error": Severity.HIGH,
    "warning": Severity.MEDIUM,
    "notice": Severity.LOW,
    "informational": Severity.LOW,
    "info": Severity.LOW,
    "debug": Severity.INFO,
}

# Well-known rules -> (kind, label). Matched on the lower-cased rule name.
KNOWN_RULES: dict[str, tuple[str, str]] = {
    "terminal shell in container": ("shell", "Shell"),
    "run shell untrusted": ("shell", "Shell"),
    "system user interactive": ("shell", "Interactive system user"),
    "netcat remote code execution in container": ("netcat", "Netcat"),
    "redirect stdout/stdin to network connection in container": (
        "reverse-shell",
        "Reverse shell",
    ),
    "read sensitive file untrusted": ("sensitive-file-read", "Sensitive file read"),
    "read sensitive file trusted after startup": ("sensitive-file-read", "Sensitive file read"),
    "directory traversal monitored file read": ("sensitive-file-read", "Sensitive file read"),
    "search private keys or passwords": ("sensitive-file-read", "Credential search"),
    "find aws credentials": ("sensitive-file-read", "Credential search"),
    "contact k8s api server from container": ("k8s-api-contact", "API server contact"),
    "clear log activities": ("log-clear", "Log clearing"),
    "linux kernel module injection detected": ("kernel-module", "Kernel module load"),
    "detect release_agent file container escapes": ("container-escape", "Container escape"),
    "debugfs launched in privileged container": ("container-escape", "Container escape"),
    "ptrace attached to process": ("ptrace", "Ptrace"),
    "drop and execute new binary in container": ("drop-and-execute", "Dropped binary run"),
    "fileless execution via memfd_create": ("fileless-exec", "Fileless execution"),
    "non sudo setuid": ("setuid", "Setuid"),
    "launch privileged container": ("privileged-pod", "Privileged container"),
    # Falco's k8saudit rules
    "attach/exec pod": ("exec", "Exec into pod"),
    "port-forward": ("port-forward", "Port-forward to pod"),
    "ephemeralcontainers created": ("ephemeral-container", "Ephemeral container"),
    "create privileged pod": ("privileged-pod", "Privileged pod"),
    "create sensitive mount pod": ("hostpath-pod", "HostPath pod"),
    "create hostnetwork pod": ("host-namespace-pod", "Host-namespace pod"),
    "create hostpid pod": ("host-namespace-pod", "Host-namespace pod"),
    "create hostipc pod": ("host-namespace-pod", "Host-namespace pod"),
    "attach to cluster-admin role": ("rbac-binding", "Cluster-admin binding"),
    "clusterrole with wildcard created": ("rbac-wildcard-role", "Wildcard role"),
    "anonymous request allowed": ("anonymous-allowed", "Anonymous access"),
    "k8s secret get successfully": ("secret-read", "Secret read"),
}

_KINDS: dict[str, tuple[str, str]] = {}


def kind_for(rule: str) -> tuple[str, str]:
    found = _KINDS.get(rule)
    if found is None:
        if len(_KINDS) > 10_000:
            _KINDS.clear()
        found = _KINDS[rule] = _classify_rule(rule)
    return found


def _classify_rule(rule: str) -> tuple[str, str]:
    low = rule.lower()
    known = KNOWN_RULES.get(low)
    if known:
        return known
    if "miner" in low or "mining" in low or "crypto" in low:
        if "pool" in low or "connect" in low or "outbound" in low:
            return "mining-pool-egress", "Mining-pool egress"
        return "miner", "Miner"
    if "shell" in low:
        return "shell", "Shell"
    words = rule.split()
    return "falco-alert", " ".join(words[:4]) if words else "Falco alert"
