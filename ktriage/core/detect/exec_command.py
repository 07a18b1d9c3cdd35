"""The command of a `pods/exec` request, read from its URI and judged.

The API server runs the `command=` query parameters, in order, as the container's
argv. `exec_command` gives them back (bounded); `judge_command` names what the
command does that a responder must see first: a reverse shell, download-and-run,
a request to a cloud metadata service, or reading credential files.

Matching is done on a normalised copy (lower case, percent-encoding undone again,
invisible characters dropped, whitespace collapsed) so that tricks that keep a
command working, or that hide it from a reader, do not hide it from the check. The
command shown is the one the request carried, as plain text.
"""

from __future__ import annotations

import re
import shlex
import unicodedata
from typing import NamedTuple
from urllib.parse import parse_qsl, unquote

from ktriage.core.model import Severity

# An exec URI is bounded by the API server (8 KiB by default); a record may carry
# anything. Read at most this much of the query, and this many arguments.
MAX_QUERY = 64 << 10
MAX_ARGS = 256


class CommandFinding(NamedTuple):
    """What a command does: a kind, a label, severity, ATT&CK technique, and the part
    of the command that matched (as found in the normalised text)."""

    kind: str
    label: str
    severity: Severity
    technique: str
    matched: str


def exec_command(uri: str) -> tuple[list[str], bool]:
    """(argv, cut): the `command=` parameters of an exec URI, in order; `cut` is True
    when the query was longer than read or had more arguments than kept."""
    _, _, query = uri.partition("?")
    if not query:
        return [], False
    cut = len(query) > MAX_QUERY
    args: list[str] = []
    for key, value in parse_qsl(query[:MAX_QUERY], keep_blank_values=True):
        if key != "command":
            continue
        if len(args) >= MAX_ARGS:
            cut = True
            break
        args.append(value)
    return args, cut


def command_text(args: list[str]) -> str:
    """`bash -c 'curl x | sh'`: the argv as one shell-quoted line."""
    return shlex.join(args)


def _normalise(text: str) -> str:
    # Undo percent-encoding left after the query was decoded once (a double-encoded
    # `%252Fdev%252Ftcp`), a few rounds at most.
    for _ in range(3):
        if "%" not in text:
            break
        decoded = unquote(text)
        if decoded == text:
            break
        text = decoded
    text = unicodedata.normalize("NFKC", text)
    # Drop invisible format characters (zero-width space, joiners, bidi controls) and
    # control characters; the shell would see them, a reader would not.
    text = "".join(
        ch for ch in text if unicodedata.category(ch) not in ("Cf", "Cc") or ch in "\t\n"
    )
    text = text.replace("\\", "")  # b\ash -> bash, /dev/t\cp -> /dev/tcp
    text = text.replace("'", "").replace('"', "")
    return re.sub(r"\s+", " ", text.lower())


_SHELLS = r"(?:ba|da|z|k|c|tc|a)?sh"
_INTERPRETERS = rf"(?:{_SHELLS}|python[0-9.]{{0,8}}|perl|ruby|php|node|lua)"
_REVERSE_SHELL = re.compile(
    "|".join(
        (
            r"/dev/(?:tcp|udp)/[^\s;|&]+",
            r"\b(?:nc|ncat|netcat|nc\.traditional|nc\.openbsd)\b[^|;&]{0,256}\s-(?:[a-z]{0,256}e|c)\b",
            rf"\b{_SHELLS}\s+-i\b[^;|]{{0,256}}[>&]",
            r"\bsocat\b[^;|]{0,256}\b(?:exec|system):",
            r"\bmkfifo\b[^;]{0,256};?[^|]{0,256}\|\s*(?:nc|ncat|netcat|openssl)\b",
            r"\b(?:python[0-9.]{0,8}|perl|ruby|php|node)\b.{0,256}?\bsocket\b.{0,512}?"
            r"\b(?:connect|dup2|pty\.spawn|subprocess|exec)\b",
            r"\bfsockopen\b",
            r"\bopenssl\s+s_client\b[^|]{0,256}\|\s*" + _SHELLS,
        )
    )
)
_DOWNLOAD_RUN = re.compile(
    "|".join(
        (
            rf"\b(?:curl|wget|fetch)\b[^|;&]{{0,256}}\|\s*(?:sudo\s+)?{_INTERPRETERS}\b",
            rf"\b{_INTERPRETERS}\s+(?:-c\s+)?<\(\s*(?:curl|wget)\b",
            r"\b(?:curl|wget)\b[^;&|]{0,256}(?:;|&&)\s*chmod\s+[+0-7]{0,256}x",
            r"\b(?:curl|wget)\b[^;&|]{0,256}(?:;|&&)[^;&|]{0,256}chmod\b[^;&|]{0,256}(?:;|&&)\s*\.?/",
        )
    )
)
_METADATA = re.compile(
    r"169\.254\.169\.254|169\.254\.170\.2\b|metadata\.google\.internal|"
    r"fd00:ec2::254|100\.100\.100\.200|\[?fd00:ec2::23\]?|metadata\.azure\.com|"
    r"/computemetadata/v1|/latest/meta-data"
)
_SHADOW = re.compile(r"/etc/(?:g?shadow|sudoers|master\.passwd)\b")
_SA_TOKEN = re.compile(
    r"/(?:var/)?run/secrets/(?:kubernetes\.io|eks\.amazonaws\.com)\b[^\s;|&]{0,256}|"
    r"/serviceaccount/token\b"
)
_CREDENTIAL_FILES = re.compile(
    r"\.kube/config\b|/etc/kubernetes/(?:admin|kubelet|controller-manager|scheduler|super-admin)"
    r"\.conf\b|/etc/kubernetes/pki\b[^\s;|&]{0,256}|/var/lib/kubelet/(?:pki|kubeconfig)\b[^\s;|&]{0,256}|"
    r"\.aws/credentials\b|\.config/gcloud\b|\.azure/\S{0,256}token|\bid_(?:rsa|dsa|ecdsa|ed25519)\b|"
    r"\.ssh/authorized_keys\b|\.docker/config\.json\b|/etc/ssl/private\b"
)

_CHECKS: tuple[tuple[re.Pattern[str], str, str, Severity, str], ...] = (
    (_REVERSE_SHELL, "reverse-shell", "Reverse shell via exec", Severity.CRITICAL, "T1059.004"),
    (_DOWNLOAD_RUN, "download-exec", "Download and run via exec", Severity.HIGH, "T1105"),
    (_METADATA, "metadata-access", "Cloud metadata access via exec", Severity.HIGH, "T1552.005"),
    (_SHADOW, "shadow-read", "Password file read via exec", Severity.HIGH, "T1003.008"),
    (_SA_TOKEN, "sa-token-read", "Token read via exec", Severity.HIGH, "T1528"),
    (_CREDENTIAL_FILES, "credential-file-read", "Credential read via exec", Severity.HIGH,
     "T1552.001"),
)  # fmt: skip
_MAX_MATCHED = 80


def judge_command(args: list[str]) -> list[CommandFinding]:
    """What the command does, most severe first (several may apply)."""
    if not args:
        return []
    text = _normalise(" ".join(args))
    found: list[CommandFinding] = []
    for pattern, kind, label, severity, technique in _CHECKS:
        m = pattern.search(text)
        if m is not None:
            matched = m.group(0).strip()
            if len(matched) > _MAX_MATCHED:
                matched = matched[: _MAX_MATCHED - 1] + "…"
            found.append(CommandFinding(kind, label, severity, technique, matched))
    found.sort(key=lambda f: -f.severity)
    return found
