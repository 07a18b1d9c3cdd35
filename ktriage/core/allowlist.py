"""Benign by default, by data: what well-known controllers are expected to do.

An allow list is a TOML file of `[[allow]]` entries. A detection an entry matches
is no signal: the event stays in timelines as context, marked "expected" with the
entry's name and reason (`Event.suppressed_by`), or, for an entry with
`severity = "low"`, stays a signal no higher than that.

Audit entries match the request's AUTHENTICATED identity (`user.username`: the
token or certificate the API server verified), its verb, resource and namespace,
and optionally the object's name, a label selector the request carried, the
owner of a pod and the exact risks of a pod spec. They never match a pod name,
a label on an object, a user agent or anything else the requester writes.
An impersonated request never matches: the rights used are someone else's.

```toml
[[allow]]
name = "ingress-nginx"                 # shown with the event: "expected: ingress-nginx"
reason = "the ingress controller reads TLS secrets in every namespace"
users = ["system:serviceaccount:ingress-nginx:ingress-nginx"]   # exact identities
verbs = ["get", "list", "watch"]
resources = ["secrets"]                # resource, or resource/subresource
namespaces = []                        # patterns; "" is cluster-wide; none: any
names = []                             # object name patterns; none: any
label_selector = ""                    # a term the request's labelSelector must hold
kinds = []                             # the detections it may cover; none: any
owner_kinds = []                       # pods: the kind of their controller owner
severity = ""                          # "" (expected), or "low": a low signal at most
[allow.pod_spec]                       # pods and workloads: the most their spec may ask
host_paths = ["/proc", "/sys"]         # only these hostPath volumes, mounted read-only
host_network = true
host_pid = true
host_ipc = false
privileged = false
capabilities = []

[[allow]]                              # runtime: a process started the way probes are
name = "wget liveness probe"
source = "tetragon"
binaries = ["wget"]                    # base names
parents = ["runc", "containerd-shim*"] # base-name patterns of the parent
arguments = '^-q -O- http://localhost:[0-9]+/[a-z/]*$'   # whole arguments, a regex
```

`users = ["*"]` (anyone) is accepted only with a narrowing condition: names, a
label selector or a pod spec.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import orjson

from ktriage.core.detect.podspec import workload_pod_spec
from ktriage.core.model import Event, Severity

EXPECTED_PREFIX = "expected: "
DEFAULT_FILE = "allowlist.toml"
# The shipped list as every start reads it: allowlist.toml (the file to read and to
# copy from) decoded into JSON, which loads without the TOML parser (7 ms to import,
# and 1 ms to parse the list); tests/unit/test_allowlist.py holds the two equal.
DEFAULT_DATA = "allowlist.json"
# Arguments longer than this never match a runtime entry (a regex on hostile text
# stays cheap, and no probe needs more).
MAX_ARGUMENTS = 512


class AllowListError(ValueError):
    """An allow-list file that cannot be used; the message says where and why."""


@dataclass(frozen=True, slots=True)
class PodSpecLimit:
    """The most a pod spec may ask for: risks outside this set are not expected."""

    host_paths: frozenset[str] = frozenset()
    host_network: bool = False
    host_pid: bool = False
    host_ipc: bool = False
    privileged: bool = False
    capabilities: frozenset[str] = frozenset()

    def admits(self, spec: object) -> bool:
        """Whether every host-reaching part of `spec` is within this limit: each
        hostPath volume one of `host_paths` and mounted read-only by every container
        that mounts it, host namespaces only as allowed, no privilege or added
        capability beyond the limit."""
        if not isinstance(spec, dict):
            return False
        for key, allowed in (
            ("hostNetwork", self.host_network),
            ("hostPID", self.host_pid),
            ("hostIPC", self.host_ipc),
        ):
            value = spec.get(key)
            if value is not None and value is not False and not (allowed and value is True):
                return False
        host_volumes: set[str] = set()
        volumes = spec.get("volumes")
        if volumes is not None and not isinstance(volumes, list):
            return False
        for volume in volumes or ():
            if not isinstance(volume, dict):
                return False
            if "hostPath" not in volume:
                continue
            host = volume.get("hostPath")
            path = host.get("path") if isinstance(host, dict) else None
            if not isinstance(path, str) or _norm_path(path) not in self.host_paths:
                return False
            name = volume.get("name")
            if not isinstance(name, str):
                return False
            host_volumes.add(name)
        for key in ("containers", "initContainers", "ephemeralContainers"):
            containers = spec.get(key)
            if containers is None:
                continue
            if not isinstance(containers, list):
                return False
            for c in containers:
                if not isinstance(c, dict) or not self._container_ok(c, host_volumes):
                    return False
        return True

    def _container_ok(self, c: dict[str, Any], host_volumes: set[str]) -> bool:
        sc = c.get("securityContext")
        if sc is not None:
            if not isinstance(sc, dict):
                return False
            if sc.get("privileged") not in (None, False) and not (
                self.privileged and sc.get("privileged") is True
            ):
                return False
            caps = sc.get("capabilities")
            if caps is not None:
                if not isinstance(caps, dict):
                    return False
                added = caps.get("add")
                if added is not None:
                    if not isinstance(added, list):
                        return False
                    for cap in added:
                        if not isinstance(cap, str):
                            return False
                        if cap.upper().removeprefix("CAP_") not in self.capabilities:
                            return False
        mounts = c.get("volumeMounts")
        if mounts is None:
            return True
        if not isinstance(mounts, list):
            return False
        for m in mounts:
            if not isinstance(m, dict):
                return False
            if m.get("name") in host_volumes and m.get("readOnly") is not True:
                return False
        return True


@dataclass(frozen=True, slots=True)
class AllowEntry:
    name: str
    reason: str = ""
    source: str = "audit"
    users: frozenset[str] = frozenset()
    verbs: frozenset[str] = frozenset()
    resources: frozenset[str] = frozenset()
    namespaces: tuple[str, ...] = ()
    names: tuple[str, ...] = ()
    label_selector: str = ""
    owner_kinds: frozenset[str] = frozenset()
    pod_spec: PodSpecLimit | None = None
    severity: Severity | None = None
    # The detections (event kinds) it may cover; none: any.
    kinds: frozenset[str] = frozenset()
    # runtime entries
    binaries: frozenset[str] = frozenset()
    parents: tuple[str, ...] = ()
    arguments: re.Pattern[str] | None = None
    origin: str = ""  # the file it came from, for messages

    def describe(self) -> str:
        return f"{self.name} ({self.reason})" if self.reason else self.name

    # -- audit ----------------------------------------------------------------

    def matches_request(
        self,
        user: str,
        verb: str,
        resource: str,
        namespace: str,
        name: str,
        uri: str,
        request_object: Any,
        kind: str = "",
    ) -> bool:
        """Whether an audit request is this entry's expected behaviour. `resource`
        is `resource` or `resource/subresource`; `request_object` is a callable
        giving the decoded requestObject (decoded only when an entry needs it);
        `kind` the detection that fired."""
        if "*" not in self.users and user not in self.users:
            return False
        if self.kinds and kind not in self.kinds:
            return False
        if self.verbs and verb not in self.verbs and "*" not in self.verbs:
            return False
        if self.resources and resource not in self.resources and "*" not in self.resources:
            return False
        if self.namespaces and not any(fnmatchcase(namespace, p) for p in self.namespaces):
            return False
        if self.names and not (name and any(fnmatchcase(name, p) for p in self.names)):
            return False
        if self.label_selector and not _selector_holds(uri, self.label_selector):
            return False
        if self.owner_kinds or self.pod_spec is not None:
            obj = request_object()
            if self.owner_kinds and _owner_kind(obj) not in self.owner_kinds:
                return False
            if self.pod_spec is not None:
                base = resource.partition("/")[0]
                if not self.pod_spec.admits(_pod_spec_of(base, obj)):
                    return False
        return True

    # -- runtime --------------------------------------------------------------

    def matches_process(self, binary: str, arguments: str, parent: str, kind: str = "") -> bool:
        if _base(binary) not in self.binaries:
            return False
        if self.kinds and kind not in self.kinds:
            return False
        if self.parents and not any(fnmatchcase(_base(parent), p) for p in self.parents):
            return False
        if self.arguments is not None:
            if len(arguments) > MAX_ARGUMENTS or self.arguments.fullmatch(arguments) is None:
                return False
        return True


@dataclass(slots=True)
class AllowList:
    """Entries by source; audit entries also by identity, for a cheap look-up."""

    entries: list[AllowEntry] = field(default_factory=list)
    _by_user: dict[str, list[AllowEntry]] = field(default_factory=dict)
    _anyone: list[AllowEntry] = field(default_factory=list)
    _runtime: dict[str, list[AllowEntry]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for entry in list(self.entries):
            self._index(entry)

    def _index(self, entry: AllowEntry) -> None:
        if entry.source == "audit":
            if "*" in entry.users:
                self._anyone.append(entry)
            for user in entry.users - {"*"}:
                self._by_user.setdefault(user, []).append(entry)
        else:
            self._runtime.setdefault(entry.source, []).append(entry)

    def extend(self, entries: Iterable[AllowEntry]) -> None:
        for entry in entries:
            self.entries.append(entry)
            self._index(entry)

    def __len__(self) -> int:
        return len(self.entries)

    @property
    def runtime_sources(self) -> frozenset[str]:
        return frozenset(self._runtime)

    def audit_candidates(self, user: str) -> list[AllowEntry]:
        found = self._by_user.get(user)
        if found is None:
            return self._anyone
        return found + self._anyone if self._anyone else found

    def for_request(
        self,
        user: str,
        verb: str,
        resource: str,
        namespace: str,
        name: str,
        uri: str,
        request_object: Any,
        kind: str = "",
    ) -> AllowEntry | None:
        for entry in self.audit_candidates(user):
            if entry.matches_request(
                user, verb, resource, namespace, name, uri, request_object, kind
            ):
                return entry
        return None

    def for_process(
        self, source: str, binary: str, arguments: str, parent: str, kind: str = ""
    ) -> AllowEntry | None:
        for entry in self._runtime.get(source, ()):
            if entry.matches_process(binary, arguments, parent, kind):
                return entry
        return None


def mark_expected(ev: Event, entry: AllowEntry) -> None:
    """Apply a matching entry to a signal: context marked expected, or a low signal."""
    if entry.severity is not None:
        if ev.severity > entry.severity:
            ev.severity = entry.severity
            ev.suppressed_by = ""
            note = f" ({EXPECTED_PREFIX}{entry.name}; kept as a {entry.severity.label} signal)"
            if not ev.summary.endswith(note):
                ev.summary += note
        return
    ev.signal = False
    ev.suppressed_by = EXPECTED_PREFIX + entry.describe()


def is_expected(ev: Event) -> bool:
    return ev.suppressed_by.startswith(EXPECTED_PREFIX)


# ---- loading ------------------------------------------------------------------

_ENTRY_KEYS = {
    "name",
    "reason",
    "source",
    "users",
    "verbs",
    "resources",
    "namespaces",
    "names",
    "label_selector",
    "owner_kinds",
    "pod_spec",
    "severity",
    "binaries",
    "parents",
    "arguments",
    "kinds",
}
_SPEC_KEYS = {"host_paths", "host_network", "host_pid", "host_ipc", "privileged", "capabilities"}
_SOURCES = ("audit", "falco", "tetragon")


def _strings(value: object, key: str, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise AllowListError(f"{where}: {key} must be a string or a list of strings")
    return tuple(value)


def unknown_keys(table: dict[str, Any], allowed: Iterable[str]) -> str:
    """What to say of a table's keys that are not `allowed` ("" when there are none):
    `unknown key(s) a, b; allowed: x, y`."""
    known = set(allowed)
    unknown = set(table) - known
    if not unknown:
        return ""
    return f"unknown key(s) {', '.join(sorted(unknown))}; allowed: {', '.join(sorted(known))}"


def _bool(value: object, key: str, where: str) -> bool:
    if not isinstance(value, bool):
        raise AllowListError(f"{where}: {key} must be true or false")
    return value


def entry_from_dict(data: object, where: str, origin: str = "") -> AllowEntry:
    if not isinstance(data, dict):
        raise AllowListError(f"{where} must be a table")
    if unknown := unknown_keys(data, _ENTRY_KEYS):
        raise AllowListError(f"{where}: {unknown}")
    name = data.get("name")
    if not isinstance(name, str) or not name.strip():
        raise AllowListError(f"{where}: every entry needs a name")
    where = f"{where} ({name})"
    reason = data.get("reason", "")
    if not isinstance(reason, str):
        raise AllowListError(f"{where}: reason must be a string")
    source = data.get("source", "audit")
    if source not in _SOURCES:
        raise AllowListError(f"{where}: source must be one of {', '.join(_SOURCES)}")
    severity = None
    sev_text = data.get("severity", "")
    if not isinstance(sev_text, str):
        raise AllowListError(f"{where}: severity must be a string")
    if sev_text:
        try:
            severity = Severity.parse(sev_text)
        except KeyError:
            raise AllowListError(f"{where}: severity must be a level such as low") from None
    if source != "audit":
        binaries = frozenset(_strings(data.get("binaries", []), "binaries", where))
        if not binaries:
            raise AllowListError(f"{where}: a {source} entry needs binaries")
        pattern = data.get("arguments")
        compiled = None
        if pattern is not None:
            if not isinstance(pattern, str):
                raise AllowListError(f"{where}: arguments must be a regular expression")
            try:
                compiled = re.compile(pattern)
            except re.error as exc:
                raise AllowListError(
                    f"{where}: arguments is not a regular expression: {exc}"
                ) from None
        return AllowEntry(
            name=name,
            reason=reason,
            source=source,
            kinds=frozenset(_strings(data.get("kinds", []), "kinds", where)),
            binaries=binaries,
            parents=_strings(data.get("parents", []), "parents", where),
            arguments=compiled,
            severity=severity,
            origin=origin,
        )
    users = frozenset(_strings(data.get("users", []), "users", where))
    if not users:
        raise AllowListError(f"{where}: an audit entry needs users (authenticated identities)")
    spec = None
    if "pod_spec" in data:
        raw = data["pod_spec"]
        if not isinstance(raw, dict):
            raise AllowListError(f"{where}: pod_spec must be a table")
        if unknown := unknown_keys(raw, _SPEC_KEYS):
            raise AllowListError(f"{where}: pod_spec: {unknown}")
        spec = PodSpecLimit(
            host_paths=frozenset(
                _norm_path(p) for p in _strings(raw.get("host_paths", []), "host_paths", where)
            ),
            host_network=_bool(raw.get("host_network", False), "host_network", where),
            host_pid=_bool(raw.get("host_pid", False), "host_pid", where),
            host_ipc=_bool(raw.get("host_ipc", False), "host_ipc", where),
            privileged=_bool(raw.get("privileged", False), "privileged", where),
            capabilities=frozenset(
                c.upper().removeprefix("CAP_")
                for c in _strings(raw.get("capabilities", []), "capabilities", where)
            ),
        )
    label_selector = data.get("label_selector", "")
    if not isinstance(label_selector, str):
        raise AllowListError(f"{where}: label_selector must be a string")
    names = _strings(data.get("names", []), "names", where)
    if "*" in users and not (names or label_selector or spec is not None):
        raise AllowListError(
            f'{where}: users = ["*"] needs names, a label_selector or a pod_spec to narrow it'
        )
    return AllowEntry(
        name=name,
        reason=reason,
        users=users,
        verbs=frozenset(_strings(data.get("verbs", []), "verbs", where)),
        resources=frozenset(_strings(data.get("resources", []), "resources", where)),
        namespaces=_strings(data.get("namespaces", []), "namespaces", where),
        names=names,
        label_selector=label_selector.replace(" ", ""),
        owner_kinds=frozenset(_strings(data.get("owner_kinds", []), "owner_kinds", where)),
        pod_spec=spec,
        severity=severity,
        kinds=frozenset(_strings(data.get("kinds", []), "kinds", where)),
        origin=origin,
    )


def entries_from_text(text: str, origin: str) -> list[AllowEntry]:
    import tomllib  # here: the shipped list is read without it (see DEFAULT_DATA)

    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise AllowListError(f"allow list {origin} is not valid TOML: {exc}") from exc
    return _entries_from_data(data, origin)


def _entries_from_data(data: dict[str, Any], origin: str) -> list[AllowEntry]:
    unknown = set(data) - {"allow"}
    if unknown:
        raise AllowListError(
            f"allow list {origin}: unknown setting(s) {', '.join(sorted(unknown))}; "
            "known: [[allow]]"
        )
    items = data.get("allow", [])
    if not isinstance(items, list):
        raise AllowListError(f"allow list {origin}: 'allow' must be a list of tables ([[allow]])")
    return [entry_from_dict(item, f"{origin} entry {n}", origin) for n, item in enumerate(items, 1)]


def load_file(path: Path) -> list[AllowEntry]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise AllowListError(f"cannot read allow list {path}: {exc}") from exc
    return entries_from_text(text, str(path))


@functools.lru_cache(maxsize=1)
def _default_entries() -> tuple[AllowEntry, ...]:
    data = orjson.loads(_shipped_file(DEFAULT_DATA))
    return tuple(_entries_from_data(data, f"(shipped) {DEFAULT_FILE}"))


def _shipped_file(name: str) -> bytes:
    """A data file shipped beside this module (found through the package's loader
    when the package is not plain files, as in a zip archive)."""
    try:
        return Path(__file__).with_name(name).read_bytes()
    except OSError:  # not a plain file (in a zip archive, the path is inside the zip)
        from importlib import resources

        return resources.files("ktriage.core").joinpath(name).read_bytes()


def default_allowlist() -> AllowList:
    """The shipped list of well-known controllers' expected behaviour."""
    return AllowList(list(_default_entries()))


def build_allowlist(use_default: bool = True, files: Iterable[Path] = ()) -> AllowList:
    allow = default_allowlist() if use_default else AllowList()
    for path in files:
        allow.extend(load_file(path))
    return allow


# The allow list live sources use when they build their own Ingestor; the engine
# sets it from the configuration.
_CURRENT: list[AllowList] = []


def use(allow: AllowList) -> None:
    _CURRENT[:] = [allow]


def current() -> AllowList:
    if not _CURRENT:
        _CURRENT.append(default_allowlist())
    return _CURRENT[0]


# ---- helpers --------------------------------------------------------------------


def _norm_path(path: str) -> str:
    path = re.sub("/+", "/", path.strip())
    return path.rstrip("/") or "/"


def _base(path: str) -> str:
    return path.rpartition("/")[2]


def _selector_holds(uri: str, term: str) -> bool:
    """Whether the request's labelSelector holds `term` (e.g. `owner=helm`) as one of
    its comma-separated requirements (a selector ANDs them, so the answer holds only
    objects that carry it)."""
    _, _, query = uri.partition("?")
    if not query:
        return False
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key == "labelSelector":
            terms = [t.replace(" ", "") for t in value.split(",")]
            if term in terms or term.replace("=", "==") in terms:
                return True
    return False


def _owner_kind(obj: object) -> str:
    meta = obj.get("metadata") if isinstance(obj, dict) else None
    owners = meta.get("ownerReferences") if isinstance(meta, dict) else None
    if not isinstance(owners, list):
        return ""
    for owner in owners:
        if isinstance(owner, dict) and owner.get("controller") is True:
            kind = owner.get("kind")
            return kind if isinstance(kind, str) else ""
    return ""


def _pod_spec_of(resource: str, obj: object) -> object:
    """The pod spec in a pod or workload object (None for anything else, a JSON
    patch included: a partial write is never taken as expected)."""
    if not isinstance(obj, dict):
        return None
    spec = obj.get("spec")
    if resource == "pods" or not isinstance(spec, dict):
        return spec if resource == "pods" else None
    return workload_pod_spec(resource, spec)
