"""MITRE ATT&CK tables (containers matrix, plus the few enterprise techniques we see).

Tactics are kebab-case slugs ("privilege-escalation"); their order is the order an
attack usually progresses in, which the correlator uses to score incidents.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from ktriage.core.model import Attack

# (slug, id, name) in progression order.
TACTICS: tuple[tuple[str, str, str], ...] = (
    ("initial-access", "TA0001", "Initial Access"),
    ("execution", "TA0002", "Execution"),
    ("persistence", "TA0003", "Persistence"),
    ("privilege-escalation", "TA0004", "Privilege Escalation"),
    ("defense-evasion", "TA0005", "Defense Evasion"),
    ("credential-access", "TA0006", "Credential Access"),
    ("discovery", "TA0007", "Discovery"),
    ("lateral-movement", "TA0008", "Lateral Movement"),
    ("collection", "TA0009", "Collection"),
    ("command-and-control", "TA0011", "Command and Control"),
    ("exfiltration", "TA0010", "Exfiltration"),
    ("impact", "TA0040", "Impact"),
)
TACTIC_ORDER: tuple[str, ...] = tuple(t[0] for t in TACTICS)
TACTIC_IDS: dict[str, str] = {t[0]: t[1] for t in TACTICS}
TACTIC_NAMES: dict[str, str] = {t[0]: t[2] for t in TACTICS}
_RANK: dict[str, int] = {slug: i for i, slug in enumerate(TACTIC_ORDER)}

# technique id -> (usual tactic, name)
TECHNIQUES: dict[str, tuple[str, str]] = {
    "T1003": ("credential-access", "OS Credential Dumping"),
    "T1003.008": ("credential-access", "/etc/passwd and /etc/shadow"),
    "T1014": ("defense-evasion", "Rootkit"),
    "T1021.004": ("lateral-movement", "Remote Services: SSH"),
    "T1040": ("credential-access", "Network Sniffing"),
    "T1046": ("discovery", "Network Service Discovery"),
    "T1048": ("exfiltration", "Exfiltration Over Alternative Protocol"),
    "T1053.003": ("persistence", "Cron"),
    "T1053.007": ("persistence", "Container Orchestration Job"),
    "T1055": ("privilege-escalation", "Process Injection"),
    "T1059": ("execution", "Command and Scripting Interpreter"),
    "T1059.004": ("execution", "Unix Shell"),
    "T1068": ("privilege-escalation", "Exploitation for Privilege Escalation"),
    "T1070": ("defense-evasion", "Indicator Removal"),
    "T1070.002": ("defense-evasion", "Clear Linux or Mac System Logs"),
    "T1070.003": ("defense-evasion", "Clear Command History"),
    "T1071": ("command-and-control", "Application Layer Protocol"),
    "T1078": ("initial-access", "Valid Accounts"),
    "T1078.001": ("initial-access", "Default Accounts"),
    "T1095": ("command-and-control", "Non-Application Layer Protocol"),
    "T1098": ("persistence", "Account Manipulation"),
    "T1098.004": ("persistence", "SSH Authorized Keys"),
    "T1098.006": ("privilege-escalation", "Additional Container Cluster Roles"),
    "T1105": ("command-and-control", "Ingress Tool Transfer"),
    "T1133": ("initial-access", "External Remote Services"),
    "T1136": ("persistence", "Create Account"),
    "T1190": ("initial-access", "Exploit Public-Facing Application"),
    "T1204.003": ("execution", "Malicious Image"),
    "T1496": ("impact", "Resource Hijacking"),
    "T1485": ("impact", "Data Destruction"),
    "T1525": ("persistence", "Implant Internal Image"),
    "T1543.005": ("persistence", "Create or Modify System Process: Container Service"),
    "T1546": ("persistence", "Event Triggered Execution"),
    "T1528": ("credential-access", "Steal Application Access Token"),
    "T1546.004": ("persistence", "Unix Shell Configuration Modification"),
    "T1547.006": ("persistence", "Kernel Modules and Extensions"),
    "T1548.001": ("privilege-escalation", "Setuid and Setgid"),
    "T1552": ("credential-access", "Unsecured Credentials"),
    "T1552.001": ("credential-access", "Credentials In Files"),
    "T1552.005": ("credential-access", "Cloud Instance Metadata API"),
    "T1552.007": ("credential-access", "Container API"),
    "T1554": ("persistence", "Compromise Host Software Binary"),
    "T1555": ("credential-access", "Credentials from Password Stores"),
    "T1557": ("credential-access", "Adversary-in-the-Middle"),
    "T1562.001": ("defense-evasion", "Disable or Modify Tools"),
    "T1572": ("command-and-control", "Protocol Tunneling"),
    "T1609": ("execution", "Container Administration Command"),
    "T1610": ("execution", "Deploy Container"),
    "T1611": ("privilege-escalation", "Escape to Host"),
    "T1613": ("discovery", "Container and Resource Discovery"),
    "T1620": ("defense-evasion", "Reflective Code Loading"),
    "T1649": ("credential-access", "Steal or Forge Authentication Certificates"),
}

# Default mapping of event kinds (ours and Falco's well-known rules) to techniques.
KIND_TECHNIQUE: dict[str, str] = {
    "exec": "T1609",
    "attach": "T1609",
    "port-forward": "T1572",
    "ephemeral-container": "T1609",
    "node-proxy": "T1609",
    "secret-read": "T1552.007",
    "secret-list": "T1552.007",
    "rbac-binding": "T1098.006",
    "rbac-wildcard-role": "T1098.006",
    "privileged-pod": "T1611",
    "hostpath-pod": "T1611",
    "host-namespace-pod": "T1611",
    "pod-create": "T1610",
    "pod-spec-unread": "T1610",
    "cronjob-create": "T1053.007",
    "anonymous-allowed": "T1078",
    "forbidden-burst": "T1613",
    "token-request": "T1528",
    "security-tool-deleted": "T1562.001",
    "rbac-dangerous-role": "T1098.006",
    "rbac-system-change": "T1098.006",
    "csr-create": "T1649",
    "csr-approval": "T1649",
    "impersonation": "T1078",
    "system-credential-outside": "T1078",
    "admission-webhook": "T1546",
    "dns-config-change": "T1557",
    "aws-auth-change": "T1098",
    "configmap-credentials": "T1552.001",
    "events-deleted": "T1070",
    "bulk-delete": "T1485",
    "service-exposed": "T1133",
    "container-injected": "T1610",
    "daemonset-kube-system": "T1543.005",
    "static-pod": "T1543.005",
    "secret-burst": "T1552.007",
    "metadata-access": "T1552.005",
    "credential-file-read": "T1552.001",
    "download-exec": "T1105",
    "shell": "T1059.004",
    "reverse-shell": "T1059.004",
    "netcat": "T1095",
    "nsenter": "T1611",
    "container-escape": "T1611",
    "download": "T1105",
    "miner": "T1496",
    "mining-pool-egress": "T1496",
    "kubectl-in-pod": "T1613",
    "sa-token-read": "T1528",
    "sensitive-file-read": "T1552.001",
    "kubelet-credentials-read": "T1552.001",
    "shadow-read": "T1003.008",
    "sensitive-file-write": "T1098",
    "setuid": "T1068",
    "ptrace": "T1055",
    "kernel-module": "T1547.006",
    "log-clear": "T1070",
    "k8s-api-contact": "T1613",
    "network-connect": "T1071",
    "drop-and-execute": "T1105",
    "fileless-exec": "T1620",
    # Falco rules and Tetragon detections of runtime behaviour
    "app-spawned-process": "T1190",
    "exploit": "T1190",
    "bpf-load": "T1014",
    "setuid-bit": "T1548.001",
    "privilege-escalation-exploit": "T1068",
    "backdoor": "T1554",
    "ssh-key-write": "T1098.004",
    "shell-config-write": "T1546.004",
    "cron-write": "T1053.003",
    "user-management": "T1136",
    "data-destruction": "T1485",
    "network-scan": "T1046",
    "packet-socket": "T1040",
    "exfil-tool": "T1048",
    "ssh-tunnel": "T1572",
    "ssh-client": "T1021.004",
    "sshd-in-container": "T1133",
    "static-pod-write": "T1610",
    "rbac-exec-role": "T1098.006",
    "system-role-modified": "T1098.006",
}

# Falco tags name tactics with underscores, a few with older names.
_FALCO_TACTIC_ALIASES: dict[str, str] = {
    "remote_service": "lateral-movement",
    "port_service": "discovery",
    "network_service": "discovery",
    "exfiltration": "exfiltration",
    "command_and_control": "command-and-control",
}
_TECHNIQUE_RE = re.compile(r"^T\d{4}(?:\.\d{3})?$")


def normalize_tactic(tactic: str) -> str:
    """ "Privilege Escalation", "privilege_escalation", "mitre_privilege_escalation",
    "TA0004" -> "privilege-escalation"; unknown text is returned lower-kebab-cased."""
    text = tactic.strip()
    if text.upper().startswith("TA"):
        for slug, tid in TACTIC_IDS.items():
            if tid == text.upper():
                return slug
    text = text.lower()
    if text.startswith("mitre_"):
        text = text[6:]
        alias = _FALCO_TACTIC_ALIASES.get(text)
        if alias:
            return alias
    return text.replace("_", "-").replace(" ", "-")


def tactic_rank(tactic: str) -> int:
    """Position in the progression order; -1 for an unknown tactic."""
    rank = _RANK.get(tactic)
    if rank is None:
        rank = _RANK.get(normalize_tactic(tactic), -1)
    return rank


_ATTACKS: dict[tuple[str, str | None], Attack] = {}


def attack_for(technique_id: str, tactic: str | None = None) -> Attack:
    """The Attack for a technique id, with its usual tactic unless `tactic` is given.

    An unknown technique keeps its id with an empty name (and tactic, if none given).
    """
    key = (technique_id, tactic)
    found = _ATTACKS.get(key)
    if found is None:
        if len(_ATTACKS) > 10_000:
            _ATTACKS.clear()
        found = _ATTACKS[key] = _attack_for(technique_id, tactic)
    return found


def _attack_for(technique_id: str, tactic: str | None) -> Attack:
    known = TECHNIQUES.get(technique_id)
    if known is None:
        parent = TECHNIQUES.get(technique_id.split(".", 1)[0])
        default_tactic = parent[0] if parent else ""
        return Attack(normalize_tactic(tactic) if tactic else default_tactic, technique_id, "")
    return Attack(normalize_tactic(tactic) if tactic else known[0], technique_id, known[1])


def attack_for_kind(kind: str) -> Attack | None:
    technique = KIND_TECHNIQUE.get(kind)
    return attack_for(technique) if technique else None


_FROM_TAGS: dict[tuple[object, ...], Attack | None] = {}


def from_falco_tags(tags: Iterable[object] | None) -> Attack | None:
    """ATT&CK from Falco rule tags such as `mitre_execution`, `T1059`, `T1059.004`.

    The most specific technique wins; its tactic is the tagged one that matches the
    technique's usual tactic, else the first tactic tag, else the usual tactic.
    """
    if not tags:
        return None
    key = tuple(tags)
    try:
        return _FROM_TAGS[key]
    except KeyError:
        pass
    except TypeError:  # unhashable tags
        return _from_tags(key)
    if len(_FROM_TAGS) > 10_000:
        _FROM_TAGS.clear()
    found = _FROM_TAGS[key] = _from_tags(key)
    return found


def _from_tags(tags: tuple[object, ...]) -> Attack | None:
    tactics: list[str] = []
    techniques: list[str] = []
    for tag in tags:
        if not isinstance(tag, str):
            continue
        if tag.startswith("mitre_"):
            slug = normalize_tactic(tag)
            if slug in _RANK:
                tactics.append(slug)
        elif _TECHNIQUE_RE.match(tag):
            techniques.append(tag)
    if not tactics and not techniques:
        return None
    if techniques:
        # Sub-techniques first, then known ones.
        techniques.sort(key=lambda t: ("." not in t, t not in TECHNIQUES))
        technique = techniques[0]
        usual = attack_for(technique)
        if usual.tactic in tactics or not tactics:
            if not usual.tactic:
                return None
            return usual
        return Attack(tactics[0], technique, usual.name)
    return Attack(tactics[0], "", "")
