"""Indicators of an incident: the addresses, names, files and identities worth
searching for elsewhere, each with where it was seen.

Pure: read from the incident's events (their entities) and, when a loader is
given, from their raw records: audit `sourceIPs`, `userAgent`, `user`,
`impersonatedUser` and the exec command in `requestURI`; Falco `output_fields`;
Tetragon process binaries and arguments, file and socket arguments, image names
and digests. Commands are read for URLs (`curl http://x/y | sh` gives the URL and
its host; `stratum+tcp://pool:3333` the pool's domain), addresses, domains after a
download or connect option, and files written or run from writable places.

Every string is redacted before it is read (a password in a URL never becomes an
indicator), values are kept as text and bounded, and the list is capped with a
count of what was left out: a flood of distinct values cannot grow memory or the
snapshot without limit.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from ktriage.core.model import EntityKind, Event
from ktriage.core.parse.audit import OWN_REQUEST_KIND
from ktriage.core.redact import REDACTED, redact_text

RawLoader = Callable[[Event], Any]

IP = "ip"
DOMAIN = "domain"
URL = "url"
FILE = "file"
HASH = "hash"
IMAGE = "image"
IDENTITY = "identity"
USER_AGENT = "user-agent"
REQUEST = "request"
# The order sections and rows are written in: what to block first.
KINDS = (URL, DOMAIN, IP, FILE, HASH, IMAGE, IDENTITY, USER_AGENT, REQUEST)
KIND_TITLES = {
    URL: "URLs",
    DOMAIN: "Domains",
    IP: "IP addresses",
    FILE: "Files",
    HASH: "Hashes",
    IMAGE: "Images",
    IDENTITY: "Identities",
    USER_AGENT: "User agents",
    REQUEST: "API requests",
}

MAX_SHOWN = 150  # indicators listed; the rest are counted
MAX_TRACKED = 20_000  # distinct indicators remembered while reading
MAX_PLACES = 3  # distinct places listed for one indicator
MAX_VALUE = 300  # characters of one indicator kept
MAX_TEXT = 8_192  # characters of one command or field read for indicators
MAX_RAW = 5_000  # raw records loaded per incident

_URL = re.compile(r"""\b[a-z][a-z0-9+.-]{0,15}://[^\s'"<>`|;&(){}\[\]\\]+""", re.IGNORECASE)
_IPV4 = re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![\w.]*\w)")
_DOMAIN = re.compile(
    r"(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{1,23}(?::\d{1,5})?",
    re.IGNORECASE,
)
_HASH = re.compile(r"(?<![0-9a-f])(?:sha256:)?[0-9a-f]{64}(?![0-9a-f])", re.IGNORECASE)
_ABS_PATH = re.compile(r"""(?<![\w:/.-])/[^\s'"<>`|;&(){}\[\]\\]+""")
# Last labels that are file extensions, not top-level domains (`app.py`, `x.so`).
_FILE_EXTENSIONS = frozenset(
    "sh py pl rb so js ts go c h o a conf cfg ini txt log json yaml yml toml xml tar gz tgz "
    "bz2 xz zip jar war bin exe elf pid lock sock tmp bak md csv key pem crt cert img iso "
    "deb rpm apk service socket timer release d local".split()
)
# Options whose next word is a place to fetch from or connect to (curl, wget, nc,
# miners' `-o pool:port`, ssh, socat).
_HOST_OPTIONS = frozenset({"-o", "--url", "-url", "--host", "-h", "--pool", "-p", "-c", "-l"})
_NETWORK_TOOLS = frozenset(
    {"curl", "wget", "nc", "ncat", "netcat", "socat", "ssh", "scp", "telnet", "ftp", "tftp"}
)
# Places a dropped file lands, and files an intruder reads: a path under one of
# these is an indicator wherever it is named; elsewhere only when written (`-o`,
# `>`, `chmod +x`, `cp`/`mv` target) or run as a dropped binary.
_INTERESTING_DIRS = (
    "/tmp/",
    "/var/tmp/",
    "/dev/shm/",
    "/run/",
    "/var/run/secrets/",
    "/run/secrets/",
    "/root/",
    "/home/",
    "/etc/kubernetes/",
    "/var/lib/kubelet/",
    "/etc/shadow",
    "/etc/sudoers",
    "/proc/1/root",
    "/host/",
)
# Devices a command writes to that are no dropped file.
_NOT_FILES = ("/dev/null", "/dev/stdout", "/dev/stderr", "/dev/tty", "/proc/self/fd/")
_WRITE_OPTIONS = frozenset({"-o", "-O", "--output", "--output-document", ">", ">>", "of"})


@dataclass(frozen=True, slots=True)
class Place:
    """Where an indicator was seen: the event's time, its source and the field."""

    time: float
    source: str
    field: str


@dataclass(slots=True)
class Indicator:
    kind: str
    value: str
    first: Place
    count: int = 1
    places: list[Place] = field(default_factory=list)

    def seen(self, place: Place) -> None:
        self.count += 1
        if place.time < self.first.time:
            self.first = place
        if len(self.places) < MAX_PLACES and not any(
            (p.source, p.field) == (place.source, place.field) for p in self.places
        ):
            self.places.append(place)


@dataclass(slots=True)
class Indicators:
    """The indicators to show, in KINDS order then by first sighting, and how many
    more there were."""

    items: list[Indicator]
    left_out: int = 0
    # Distinct values beyond MAX_TRACKED: counted, never kept.
    untracked: int = 0
    raw_read: int = 0
    raw_skipped: int = 0

    def of_kind(self, kind: str) -> list[Indicator]:
        return [i for i in self.items if i.kind == kind]


class _Collector:
    def __init__(self) -> None:
        self.found: dict[tuple[str, str], Indicator] = {}
        self.untracked = 0

    def add(self, kind: str, value: str, place: Place) -> None:
        value = value.strip()
        if not value or value == REDACTED or len(value) < 2:
            return
        if len(value) > MAX_VALUE:
            value = value[:MAX_VALUE] + "…"
        key = (kind, value)
        known = self.found.get(key)
        if known is not None:
            known.seen(place)
            return
        if len(self.found) >= MAX_TRACKED:
            self.untracked += 1
            return
        self.found[key] = Indicator(kind, value, place, 1, [place])

    # ---- text --------------------------------------------------------------------

    def text(self, text: str, place: Place, *, command: bool = False) -> None:
        """URLs, their hosts, addresses and hashes anywhere in `text`; in a command
        also domains after a network option and files written or under writable
        places."""
        if not text:
            return
        text = redact_text(text[:MAX_TEXT])
        for match in _URL.finditer(text):
            url = match.group(0).rstrip(".,:'\"")
            self.add(URL, url, place)
            self.host(_host_of(url), place)
        without_urls = _URL.sub(" ", text)
        for match in _IPV4.finditer(without_urls):
            if _is_ip(match.group(0)):
                self.add(IP, match.group(0), place)
        for match in _HASH.finditer(without_urls):
            self.add(HASH, match.group(0).lower(), place)
        if command:
            self.command(without_urls, place)

    def command(self, text: str, place: Place) -> None:
        words = [w.strip("'\"") for w in re.split(r"\s+|(?<=[;&|])|(?=[;&|])", text) if w]
        tool = ""
        for i, word in enumerate(words):
            base = word.rsplit("/", 1)[-1]
            if base in _NETWORK_TOOLS:
                tool = base
            prev = words[i - 1] if i else ""
            redirect = re.match(r"\d?>>?", word)
            if redirect and word[redirect.end() :].startswith("/"):
                # `>/tmp/x`, `2>>/var/tmp/log`: a file written.
                prev, word = ">", word[redirect.end() :]
            if word.startswith("/"):
                for path in _ABS_PATH.findall(word):
                    written = prev in _WRITE_OPTIONS or (
                        i >= 2 and words[i - 2] in ("chmod", "cp", "mv", "install")
                    )
                    if path.startswith(_NOT_FILES):
                        continue
                    if written or _interesting_path(path):
                        self.add(FILE, path, place)
                continue
            if tool and "/" in word and not word.startswith(("-", ".")):
                # `wget evil.example/payload`: the host before the path.
                word = word.split("/", 1)[0]
            if "/" in word or "=" in word or word.startswith("-"):
                continue
            if (tool and not word.startswith("-")) or prev in _HOST_OPTIONS:
                host = _domain_word(word)
                if host:
                    self.host(host, place)

    def host(self, host: str, place: Place) -> None:
        if not host:
            return
        if _is_ip(host):
            self.add(IP, host, place)
        elif "." in host and host != REDACTED:
            self.add(DOMAIN, host.lower(), place)

    def path(self, path: str, place: Place, *, always: bool = False) -> None:
        path = redact_text(path[:MAX_TEXT]).strip()
        if path.startswith("/") and (always or _interesting_path(path)):
            self.add(FILE, path, place)


def _host_of(url: str) -> str:
    try:
        host = urlsplit(url).hostname or ""
    except ValueError:
        return ""
    return host


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _interesting_path(path: str) -> bool:
    return path.startswith(_INTERESTING_DIRS) or path in {"/etc/shadow", "/etc/sudoers"}


def _domain_word(word: str) -> str:
    """The host of `pool.example.com:3333` or `example.org`; "" for a file name."""
    match = _DOMAIN.fullmatch(word)
    if match is None:
        return ""
    host = word.rsplit(":", 1)[0] if ":" in word else word
    if host.rsplit(".", 1)[-1].lower() in _FILE_EXTENSIONS:
        return ""
    return host


def _field(raw: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(raw, dict):
            return None
        raw = raw.get(key)
    return raw


def _strings(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for v in value[:64]:
            if isinstance(v, str):
                yield v


def _from_audit(c: _Collector, raw: dict[str, Any], time: float) -> None:
    src = "audit"
    for ip in list(_strings(raw.get("sourceIPs")))[:8]:
        c.host(ip.strip(), Place(time, src, "sourceIPs"))
    agent = raw.get("userAgent")
    if isinstance(agent, str):
        c.add(USER_AGENT, redact_text(agent[:MAX_TEXT]), Place(time, src, "userAgent"))
    user = _field(raw, "user", "username")
    if isinstance(user, str):
        c.add(IDENTITY, redact_text(user), Place(time, src, "user.username"))
    imp = _field(raw, "impersonatedUser", "username")
    if isinstance(imp, str):
        c.add(IDENTITY, redact_text(imp), Place(time, src, "impersonatedUser.username"))
    uri = raw.get("requestURI")
    if isinstance(uri, str):
        uri = uri[:MAX_TEXT]
        try:
            query = parse_qs(urlsplit(uri).query)
        except ValueError:
            query = {}
        command = query.get("command")
        if command:
            # The exec's command line: what was run, fetched and dropped.
            c.text(" ".join(command), Place(time, src, "requestURI command"), command=True)


# Falco fields read, and what they hold.
_FALCO_HOSTS = ("fd.sip", "fd.rip", "fd.cip", "fd.sip.name", "fd.rip.name")
_FALCO_COMMANDS = ("proc.cmdline", "proc.pcmdline", "proc.args")
_FALCO_FILES = ("fd.name", "fs.path.name", "fs.path.target", "evt.arg.path")
_FALCO_EXES = ("proc.exepath", "proc.exe")


def _from_falco(c: _Collector, raw: dict[str, Any], time: float) -> None:
    src = "falco"
    fields = raw.get("output_fields")
    if not isinstance(fields, dict):
        return
    for name in _FALCO_HOSTS:
        value = fields.get(name)
        if isinstance(value, str) and value not in ("", "<NA>"):
            c.host(value, Place(time, src, name))
    for name in _FALCO_COMMANDS:
        value = fields.get(name)
        if isinstance(value, str):
            c.text(value, Place(time, src, name), command=True)
    for name in _FALCO_FILES:
        value = fields.get(name)
        if isinstance(value, str) and value.startswith("/"):
            c.path(value, Place(time, src, name), always=True)
        elif isinstance(value, str):
            # A connection tuple `10.0.0.1:1234->198.51.100.7:80`.
            c.text(value, Place(time, src, name))
    upper = fields.get("proc.is_exe_upper_layer") is True
    for name in _FALCO_EXES:
        value = fields.get(name)
        if isinstance(value, str):
            # A binary that is not part of the image is a dropped file wherever it is.
            c.path(value, Place(time, src, name), always=upper)
    repo, tag = fields.get("container.image.repository"), fields.get("container.image.tag")
    if isinstance(repo, str) and repo:
        image = f"{repo}:{tag}" if isinstance(tag, str) and tag else repo
        c.add(IMAGE, redact_text(image), Place(time, src, "container.image"))
    user = fields.get("ka.user.name")
    if isinstance(user, str):
        c.add(IDENTITY, redact_text(user), Place(time, src, "ka.user.name"))


def _from_tetragon(c: _Collector, raw: dict[str, Any], time: float) -> None:
    src = "tetragon"
    body = next((v for k, v in raw.items() if k.startswith("process_") and isinstance(v, dict)),
                None)  # fmt: skip
    if body is None:
        return
    process = body.get("process")
    if isinstance(process, dict):
        binary = process.get("binary")
        if isinstance(binary, str):
            c.path(binary, Place(time, src, "process.binary"))
        args = process.get("arguments")
        if isinstance(args, str):
            line = f"{binary} {args}" if isinstance(binary, str) else args
            c.text(line, Place(time, src, "process.arguments"), command=True)
        image = _field(process, "pod", "container", "image")
        if isinstance(image, dict):
            name, ident = image.get("name"), image.get("id")
            if isinstance(name, str):
                c.add(IMAGE, redact_text(name), Place(time, src, "pod.container.image.name"))
            if isinstance(ident, str) and "@sha256:" in ident:
                digest = ident.rsplit("@", 1)[1]
                c.add(HASH, digest.lower(), Place(time, src, "pod.container.image.id"))
    args_list = body.get("args")
    if isinstance(args_list, list):
        for arg in args_list[:16]:
            if not isinstance(arg, dict):
                continue
            daddr = _field(arg, "sock_arg", "daddr")
            if isinstance(daddr, str):
                c.host(daddr, Place(time, src, "args.sock_arg.daddr"))
            for key in ("file_arg", "path_arg", "linux_binprm_arg"):
                path = _field(arg, key, "path")
                if isinstance(path, str):
                    c.path(path, Place(time, src, f"args.{key}.path"), always=True)


_READERS: dict[str, Callable[[_Collector, dict[str, Any], float], None]] = {
    "audit": _from_audit,
    "falco": _from_falco,
    "tetragon": _from_tetragon,
}


def extract(
    events: Sequence[Event],
    raw_loader: RawLoader | None = None,
    *,
    limit: int = MAX_SHOWN,
    max_raw: int = MAX_RAW,
) -> Indicators:
    """The incident's indicators, deduplicated, the first `limit` of them listed."""
    c = _Collector()
    raw_read = raw_skipped = 0
    for ev in events:
        if ev.source == "ktriage" or ev.kind == OWN_REQUEST_KIND:
            continue  # ktriage's own actions and requests are not the attacker's
        for ent in ev.entities:
            place = Place(ev.time, ev.source, f"entity {ent.kind}")
            if ent.kind == EntityKind.IP:
                c.host(ent.name, place)
            elif ent.kind == EntityKind.IMAGE:
                c.add(IMAGE, redact_text(ent.name), place)
            elif ent.kind == EntityKind.USER:
                c.add(IDENTITY, redact_text(ent.name), place)
            elif ent.kind == EntityKind.SERVICE_ACCOUNT:
                # As the audit log names it, so one account is one indicator.
                name = f"system:serviceaccount:{ent.namespace}:{ent.name}"
                c.add(IDENTITY, redact_text(name), place)
        reader = _READERS.get(ev.source)
        if reader is None:
            continue
        raw: Any = ev.raw_inline
        if raw is None and raw_loader is not None and ev.raw is not None:
            if raw_read >= max_raw:
                raw_skipped += 1
                continue
            raw_read += 1
            try:
                raw = raw_loader(ev)
            except Exception:  # a raw record that cannot be read adds no indicator
                raw = None
        if isinstance(raw, dict):
            try:
                reader(c, raw, ev.time)
            except (TypeError, ValueError, AttributeError):
                raw_skipped += 1  # an odd record gives what was read before it
            if ev.signal and ev.source == "audit" and isinstance(raw.get("requestURI"), str):
                # The request a signal was raised on (list secrets, create a token...).
                uri = redact_text(raw["requestURI"][:MAX_TEXT])
                c.add(REQUEST, uri, Place(ev.time, ev.source, "requestURI"))
    order = {kind: n for n, kind in enumerate(KINDS)}
    ranked = sorted(c.found.values(), key=lambda i: (order.get(i.kind, 99), i.first.time))
    return Indicators(
        items=ranked[:limit],
        left_out=max(0, len(ranked) - limit) + c.untracked,
        untracked=c.untracked,
        raw_read=raw_read,
        raw_skipped=raw_skipped,
    )
