"""Which Falco alerts ktriage recognises, and how risky they are.

core/parse/falco.py decodes an alert and names its entities, then asks this module
what the rule is (`classify`): its kind, the label an incident title shows, and its
severity.

- The label is the rule's own name, verbatim (quoted, so a title neither cuts nor
  re-cases it), made safe as text.
- The severity is Falco's priority, raised to ktriage's own severity for the
  behaviour when ktriage recognises the rule (the severity the Tetragon or audit
  detection of that behaviour has), never lowered. Rules whose priority is left
  as it comes are listed too, for their kind: a privileged CNI agent starting or a
  kubectl in a CI pod is routine, and ktriage knows no more than Falco does there.
"""

from __future__ import annotations

from typing import NamedTuple

from ktriage.core.memo import remembered
from ktriage.core.model import Severity
from ktriage.core.redact import redact_text
from ktriage.core.text import printable

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
# A priority Falco does not define (a typo in a custom rule, a forwarder's own
# word): a signal worth a look, not noise.
UNKNOWN_PRIORITY = Severity.MEDIUM

# Longest rule name shown whole in a title; Falco's own rules stay far below it.
LABEL_MAX = 160

_CRITICAL, _HIGH, _MEDIUM = Severity.CRITICAL, Severity.HIGH, Severity.MEDIUM


class Behaviour(NamedTuple):
    """What a rule detects: ktriage's kind for it and ktriage's own severity for
    that behaviour (None: Falco's priority stands)."""

    kind: str
    severity: Severity | None = None


# Rules ktriage recognises, by lower-cased name (falcosecurity/rules stable,
# incubating and sandbox files; the k8saudit plugin's rules).
RULES: dict[str, Behaviour] = {
    # Shells and remote code execution
    "terminal shell in container": Behaviour("shell", _MEDIUM),
    "run shell untrusted": Behaviour("shell", _HIGH),
    "system user interactive": Behaviour("shell", _MEDIUM),
    "web server spawned shell": Behaviour("shell", _HIGH),
    "db program spawned process": Behaviour("app-spawned-process", _HIGH),
    "web server spawned suspicious child process": Behaviour("app-spawned-process", _HIGH),
    "redirect stdout/stdin to network connection in container": Behaviour(
        "reverse-shell", _CRITICAL
    ),
    "reverse shell from web server": Behaviour("reverse-shell", _CRITICAL),
    "netcat remote code execution in container": Behaviour("netcat", _HIGH),
    "netcat/socat remote code execution on host": Behaviour("netcat", _HIGH),
    "java process class file download": Behaviour("exploit", _CRITICAL),
    # Escape, namespaces, kernel
    "change thread namespace": Behaviour("container-escape", _HIGH),
    "change namespace privileges via unshare": Behaviour("container-escape", _HIGH),
    "detect release_agent file container escapes": Behaviour("container-escape", _CRITICAL),
    "debugfs launched in privileged container": Behaviour("container-escape", _HIGH),
    "mount launched in privileged container": Behaviour("container-escape", _HIGH),
    "privileged container device access": Behaviour("container-escape", _CRITICAL),
    "container access to host sensitive paths": Behaviour("container-escape", _HIGH),
    "modify container entrypoint": Behaviour("container-escape", _HIGH),
    "linux kernel module injection detected": Behaviour("kernel-module", _HIGH),
    "bpf program not profiled": Behaviour("bpf-load", _MEDIUM),
    "ptrace attached to process": Behaviour("ptrace", _HIGH),
    "ptrace anti-debug attempt": Behaviour("ptrace", _HIGH),
    "non sudo setuid": Behaviour("setuid", _HIGH),
    "set setuid or setgid bit": Behaviour("setuid-bit", _MEDIUM),
    "sudo potential privilege escalation": Behaviour("privilege-escalation-exploit", _CRITICAL),
    "polkit local privilege escalation vulnerability (cve-2021-4034)": Behaviour(
        "privilege-escalation-exploit", _CRITICAL
    ),
    "potential local privilege escalation via environment variables misuse": Behaviour(
        "privilege-escalation-exploit", _HIGH
    ),
    "backdoored library loaded into sshd (cve-2024-3094)": Behaviour("backdoor", _HIGH),
    # Binaries dropped and run
    "drop and execute new binary in container": Behaviour("drop-and-execute", _HIGH),
    "container drift detected (chmod)": Behaviour("drop-and-execute", _HIGH),
    "container drift detected (open+create)": Behaviour("drop-and-execute", _HIGH),
    "execution from /dev/shm": Behaviour("drop-and-execute", _HIGH),
    "fileless execution via memfd_create": Behaviour("fileless-exec", _CRITICAL),
    # Miners
    "detect crypto miners using the stratum protocol": Behaviour("miner", _CRITICAL),
    "known cryptominer process executed": Behaviour("miner", _CRITICAL),
    "detect outbound connections to common miner pool ports": Behaviour(
        "mining-pool-egress", _HIGH
    ),
    # Credentials and sensitive files
    "read sensitive file untrusted": Behaviour("sensitive-file-read", _HIGH),
    "read sensitive file trusted after startup": Behaviour("sensitive-file-read", _HIGH),
    "directory traversal monitored file read": Behaviour("sensitive-file-read", _HIGH),
    "read ssh information": Behaviour("sensitive-file-read", _HIGH),
    "search private keys or passwords": Behaviour("sensitive-file-read", _MEDIUM),
    "find aws credentials": Behaviour("sensitive-file-read", _MEDIUM),
    "read environment variable from /proc files": Behaviour("sensitive-file-read", _MEDIUM),
    "create symlink over sensitive files": Behaviour("sensitive-file-read", _MEDIUM),
    "create hardlink over sensitive files": Behaviour("sensitive-file-read", _MEDIUM),
    "contact ec2 instance metadata service from container": Behaviour("metadata-access", _MEDIUM),
    "contact cloud metadata service from container": Behaviour("metadata-access", _MEDIUM),
    # Persistence: writes where the system reads its configuration or binaries
    "write below etc": Behaviour("sensitive-file-write", _HIGH),
    "write below binary dir": Behaviour("sensitive-file-write", _HIGH),
    "write below monitored dir": Behaviour("sensitive-file-write", _HIGH),
    "write below root": Behaviour("sensitive-file-write", _HIGH),
    "modify binary dirs": Behaviour("sensitive-file-write", _HIGH),
    "mkdir binary dirs": Behaviour("sensitive-file-write", _HIGH),
    "create files below dev": Behaviour("sensitive-file-write"),
    "adding ssh keys to authorized_keys": Behaviour("ssh-key-write", _HIGH),
    "modify shell configuration file": Behaviour("shell-config-write", _MEDIUM),
    "schedule cron jobs": Behaviour("cron-write", _MEDIUM),
    "user mgmt binaries": Behaviour("user-management", _MEDIUM),
    # Defense evasion and impact
    "clear log activities": Behaviour("log-clear", _HIGH),
    "delete or rename shell history": Behaviour("log-clear", _MEDIUM),
    "remove bulk data from disk": Behaviour("data-destruction", _HIGH),
    # Discovery, tools, exfiltration
    "launch suspicious network tool in container": Behaviour("network-scan", _MEDIUM),
    "launch suspicious network tool on host": Behaviour("network-scan", _MEDIUM),
    "packet socket created in container": Behaviour("packet-socket", _MEDIUM),
    "launch remote file copy tools in container": Behaviour("exfil-tool", _MEDIUM),
    "exfiltrating artifacts via kubernetes control plane": Behaviour("exfil-tool", _MEDIUM),
    "launch ingress remote file copy tools in container": Behaviour("download", _MEDIUM),
    # Routine in many clusters: recognised, Falco's priority stands.
    "contact k8s api server from container": Behaviour("k8s-api-contact"),
    "kubernetes client tool launched in container": Behaviour("kubectl-in-pod"),
    "launch privileged container": Behaviour("privileged-pod"),
    "launch excessively capable container": Behaviour("privileged-pod"),
    "launch sensitive mount container": Behaviour("hostpath-pod"),
    "launch package management process in container": Behaviour("package-manager"),
    # Falco's k8saudit rules, rated as ktriage's audit detections rate them
    "attach/exec pod": Behaviour("exec", _MEDIUM),
    "port-forward": Behaviour("port-forward", _MEDIUM),
    "ephemeralcontainers created": Behaviour("ephemeral-container", _MEDIUM),
    "create privileged pod": Behaviour("privileged-pod", _HIGH),
    "create sensitive mount pod": Behaviour("hostpath-pod", _HIGH),
    "create hostnetwork pod": Behaviour("host-namespace-pod", _MEDIUM),
    "create hostpid pod": Behaviour("host-namespace-pod", _HIGH),
    "create hostipc pod": Behaviour("host-namespace-pod", _MEDIUM),
    "attach to cluster-admin role": Behaviour("rbac-binding", _HIGH),
    "clusterrole with wildcard created": Behaviour("rbac-wildcard-role", _HIGH),
    "clusterrole with pod exec created": Behaviour("rbac-exec-role", _MEDIUM),
    "system clusterrole modified/deleted": Behaviour("system-role-modified", _HIGH),
    "anonymous request allowed": Behaviour("anonymous-allowed", _HIGH),
    "k8s secret get successfully": Behaviour("secret-read"),
    "create nodeport service": Behaviour("service-exposed", _MEDIUM),
    "create/modify configmap with private credentials": Behaviour("configmap-credentials", _MEDIUM),
}

_UNKNOWN = Behaviour("falco-alert")


class Classified(NamedTuple):
    kind: str
    label: str
    behaviour: Behaviour


_CLASSIFIED: dict[str, Classified] = {}


@remembered(_CLASSIFIED, 10_000)
def classify_rule(rule: str) -> Classified:
    """The kind, title label and behaviour of a rule (cached: an alert stream
    repeats a few rules)."""
    behaviour = _behaviour(rule)
    return Classified(behaviour.kind, rule_label(rule), behaviour)


def _behaviour(rule: str) -> Behaviour:
    low = rule.strip().lower()
    known = RULES.get(low)
    if known is not None:
        return known
    # A custom or renamed miner rule still says what it is.
    if "miner" in low or "mining" in low or "cryptomin" in low:
        if "pool" in low or "connect" in low or "outbound" in low:
            return Behaviour("mining-pool-egress", _HIGH)
        return Behaviour("miner", _CRITICAL)
    return _UNKNOWN


def severity(priority: str, behaviour: Behaviour) -> Severity:
    """Falco's priority, raised (never lowered) to ktriage's severity for the behaviour."""
    base = PRIORITY.get(priority.strip().lower(), UNKNOWN_PRIORITY)
    own = behaviour.severity
    return own if own is not None and own > base else base


def recognised(rule: str) -> bool:
    """Whether ktriage rates this rule itself (its alerts are signals whatever
    their priority)."""
    return classify_rule(rule).behaviour.severity is not None


def rule_label(rule: str) -> str:
    """The rule's name as an incident title shows it: verbatim in quotes (a title
    capitalises or lower-cases the first letter of its phrases; a quote has none),
    secrets redacted, hidden characters escaped, and only a hostile length cut,
    at a word where there is one."""
    text = printable(redact_text(rule.strip())) or "Falco alert"
    if len(text) > LABEL_MAX:
        cut = text.rfind(" ", LABEL_MAX // 2, LABEL_MAX)
        text = text[: cut if cut > 0 else LABEL_MAX - 1].rstrip() + "…"
    return f"“{text}”"
