"""Reading the fields detections need from a record too large or too deep to decode.

A record over the line limit (a pod with 600 KB of environment variables) or nested
deeper than the JSON decoders go (a deeply nested custom resource) must not be
invisible: that would be a ready-made evasion. `RecordScanner` is fed the record's
bytes chunk by chunk and never holds them whole. It is a tokenizer that tracks the
key path and keeps only the scalars found at the paths listed in `RECORD_FIELDS`
(the audit, Falco and Tetragon fields detections read); every other subtree is
skipped by one regular expression per bracket, whatever its depth. What it keeps
is bounded (strings cut, arrays and totals capped, bytes scanned capped), and the
result is a small record of the same shape that goes through the ordinary parsers
and detections.
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson

__all__ = [
    "DANGEROUS_CAPABILITIES",
    "MAX_SCAN_BYTES",
    "OBJECT_FIELDS",
    "RECORD_FIELDS",
    "SALVAGE_KEY",
    "RecordScanner",
    "SalvagedLine",
    "prune_depth",
    "salvage_bytes",
]

# Trie of the paths kept: a key maps to a sub-trie or to LEAF (keep the scalar);
# ANY_KEY matches every key of an object, ITEMS every element of an array.
# A list of names (capabilities, verbs) maps ITEMS to a frozenset of the names that
# matter: those are always kept (once each), other names only the first MAX_NAMES.
LEAF = True
ANY_KEY = "*"
ITEMS = "[]"

# Capabilities that give a container power over its node: never pushed out of a
# salvaged record by any number of other names before them.
DANGEROUS_CAPABILITIES = frozenset(
    {
        "ALL",
        "SYS_ADMIN",
        "NET_ADMIN",
        "SYS_PTRACE",
        "SYS_MODULE",
        "SYS_RAWIO",
        "SYS_BOOT",
        "SYS_TIME",
        "SYS_CHROOT",
        "SYS_RESOURCE",
        "DAC_READ_SEARCH",
        "DAC_OVERRIDE",
        "NET_RAW",
        "BPF",
        "PERFMON",
        "MKNOD",
        "SETUID",
        "SETGID",
        "SETFCAP",
        "SETPCAP",
        "MAC_ADMIN",
        "MAC_OVERRIDE",
        "LINUX_IMMUTABLE",
        "SYSLOG",
        "CHOWN",
        "FOWNER",
    }
)
_CAP_NAMES = frozenset(DANGEROUS_CAPABILITIES | {f"CAP_{c}" for c in DANGEROUS_CAPABILITIES})
_VERB_NAMES = frozenset(
    {"*", "create", "update", "patch", "delete", "deletecollection", "get", "list", "watch"}
    | {"escalate", "bind", "impersonate", "approve", "sign"}
)
_RESOURCE_NAMES = frozenset(
    {"*", "*/*", "secrets", "pods", "pods/exec", "pods/attach", "pods/portforward"}
    | {"pods/ephemeralcontainers", "nodes", "nodes/proxy", "serviceaccounts"}
    | {"serviceaccounts/token", "roles", "rolebindings", "clusterroles"}
    | {"clusterrolebindings", "users", "groups", "certificatesigningrequests"}
    | {"mutatingwebhookconfigurations", "validatingwebhookconfigurations"}
    | {"daemonsets", "deployments", "cronjobs", "jobs", "configmaps"}
)
_GROUP_NAMES = frozenset({"*", "", "rbac.authorization.k8s.io", "certificates.k8s.io"})
# What a list of names is called in a note saying some were not kept.
_NAMES_LABEL = {
    id(_CAP_NAMES): "capability names",
    id(_VERB_NAMES): "verbs",
    id(_RESOURCE_NAMES): "resource names",
    id(_GROUP_NAMES): "API group names",
}

_CONTAINER: dict[str, Any] = {
    "name": LEAF,
    "image": LEAF,
    "securityContext": {
        "privileged": LEAF,
        "allowPrivilegeEscalation": LEAF,
        "runAsUser": LEAF,
        "runAsNonRoot": LEAF,
        "capabilities": {"add": {ITEMS: _CAP_NAMES}},
    },
}
_POD_SPEC: dict[str, Any] = {
    "hostPID": LEAF,
    "hostNetwork": LEAF,
    "hostIPC": LEAF,
    "serviceAccountName": LEAF,
    "serviceAccount": LEAF,
    "nodeName": LEAF,
    "automountServiceAccountToken": LEAF,
    "containers": {ITEMS: _CONTAINER},
    "initContainers": {ITEMS: _CONTAINER},
    "ephemeralContainers": {ITEMS: _CONTAINER},
    "volumes": {ITEMS: {"name": LEAF, "hostPath": {"path": LEAF, "type": LEAF}}},
}
_METADATA = {"name": LEAF, "namespace": LEAF, "generateName": LEAF}
_VOLUME = {"name": LEAF, "hostPath": {"path": LEAF, "type": LEAF}}
# A JSON patch's value: whatever part of a pod spec its path lands in (the spec, a
# container, a securityContext, a volume, the template, or a list of those).
_PATCH_VALUE: dict[str, Any] = {
    **_POD_SPEC,
    **_CONTAINER,
    **_CONTAINER["securityContext"],
    **_VOLUME,
    "spec": _POD_SPEC,
    "template": {"spec": _POD_SPEC},
    ITEMS: {**_CONTAINER, **_VOLUME},
}
_OBJECT: dict[str, Any] = {
    # A JSON patch (an array of operations) in place of the object.
    ITEMS: {"op": LEAF, "path": LEAF, "value": _PATCH_VALUE},
    "kind": LEAF,
    "apiVersion": LEAF,
    "type": LEAF,
    "metadata": _METADATA,
    # A pod's spec, a workload's template, a CronJob's job template.
    "spec": {
        **_POD_SPEC,
        "template": {"metadata": _METADATA, "spec": _POD_SPEC},
        "jobTemplate": {"spec": {"template": {"metadata": _METADATA, "spec": _POD_SPEC}}},
    },
    "roleRef": {"kind": LEAF, "name": LEAF, "apiGroup": LEAF},
    "subjects": {ITEMS: {"kind": LEAF, "name": LEAF, "namespace": LEAF}},
    "rules": {
        ITEMS: {
            "verbs": {ITEMS: _VERB_NAMES},
            "resources": {ITEMS: _RESOURCE_NAMES},
            "apiGroups": {ITEMS: _GROUP_NAMES},
            "nonResourceURLs": {ITEMS: LEAF},
        }
    },
}
# requestObject / responseObject on their own (an audit detection decoding one).
OBJECT_FIELDS = _OBJECT
_USER = {
    "username": LEAF,
    "uid": LEAF,
    "groups": {ITEMS: LEAF},
    "extra": {ANY_KEY: {ITEMS: LEAF}},
}
AUDIT_FIELDS: dict[str, Any] = {
    "kind": LEAF,
    "apiVersion": LEAF,
    "level": LEAF,
    "auditID": LEAF,
    "stage": LEAF,
    "verb": LEAF,
    "requestURI": LEAF,
    "userAgent": LEAF,
    "user": _USER,
    "impersonatedUser": _USER,
    "sourceIPs": {ITEMS: LEAF},
    "objectRef": {
        "resource": LEAF,
        "subresource": LEAF,
        "namespace": LEAF,
        "name": LEAF,
        "apiGroup": LEAF,
        "apiVersion": LEAF,
    },
    "responseStatus": {"code": LEAF, "message": LEAF, "reason": LEAF},
    "annotations": {"authorization.k8s.io/decision": LEAF, "authorization.k8s.io/reason": LEAF},
    "requestReceivedTimestamp": LEAF,
    "stageTimestamp": LEAF,
    "timestamp": LEAF,
    "p_event_time": LEAF,
    "metadata": {"creationTimestamp": LEAF},
    "requestObject": _OBJECT,
    "responseObject": {"kind": LEAF, "metadata": _METADATA},
}
FALCO_FIELDS: dict[str, Any] = {
    "time": LEAF,
    "rule": LEAF,
    "priority": LEAF,
    "source": LEAF,
    "hostname": LEAF,
    "output": LEAF,
    "uuid": LEAF,
    "tags": {ITEMS: LEAF},
    # k8s.ns.name, k8s.pod.name, container.id, proc.cmdline, evt.time, fd.rip...
    "output_fields": {ANY_KEY: LEAF},
}
_TETRAGON_PROCESS: dict[str, Any] = {
    "exec_id": LEAF,
    "pid": LEAF,
    "uid": LEAF,
    "binary": LEAF,
    "arguments": LEAF,
    "start_time": LEAF,
    "docker": LEAF,
    "pod": {
        "namespace": LEAF,
        "name": LEAF,
        "container": {"id": LEAF, "name": LEAF, "pid": LEAF, "image": {"name": LEAF}},
    },
    "cap": {"permitted": {ITEMS: LEAF}, "effective": {ITEMS: LEAF}},
}
_TETRAGON_BODY: dict[str, Any] = {
    "process": _TETRAGON_PROCESS,
    "parent": {"exec_id": LEAF, "binary": LEAF, "arguments": LEAF},
    **{
        key: LEAF
        for key in (
            "function_name",
            "policy_name",
            "action",
            "subsys",
            "event",
            "destination_ip",
            "destination_port",
            "source_ip",
            "protocol",
            "status",
            "signal",
        )
    },
    "args": {
        ITEMS: {
            "file_arg": {"path": LEAF},
            "path_arg": {"path": LEAF},
            "linux_binprm_arg": {"path": LEAF},
            "string_arg": LEAF,
            "int_arg": LEAF,
            "sock_arg": {"dport": LEAF, "daddr": LEAF},
        }
    },
}
TETRAGON_FIELDS: dict[str, Any] = {
    "node_name": LEAF,
    "time": LEAF,
    **{
        f"process_{kind}": _TETRAGON_BODY
        for kind in (
            "exec",
            "exit",
            "kprobe",
            "tracepoint",
            "lsm",
            "uprobe",
            "connect",
            "listen",
            "close",
        )
    },
}
# Any record's fields: the three formats share no key whose shape differs.
RECORD_FIELDS: dict[str, Any] = {**AUDIT_FIELDS, **FALCO_FIELDS, **TETRAGON_FIELDS}

# Bounds on the work and on what is kept.
MAX_SCAN_BYTES = 16 << 20  # bytes of one record scanned at most; the rest is not read
MAX_STEPS = 1_000_000  # tokens and skipped brackets at most; then the rest is not read
MAX_STRING = 4096  # bytes kept of one string value
MAX_KEY = 256  # longer keys match no path
MAX_KEPT_BYTES = 256 << 10  # string bytes kept in all; past it strings are cut short
MAX_CUT_STRING = 128  # bytes kept of a string past MAX_KEPT_BYTES
# Scalars kept in all from lists of scalars and objects of any keys (groups, output
# fields): the only values with no other bound. Fields at a fixed path (a container's
# privileged, a pod's hostPID, the audit fields) are bounded by the paths themselves
# and never count here, so no amount of other content can push them out.
MAX_VALUES = 5000
MAX_ITEMS = 64  # array elements kept in full; later ones only when they say more
MAX_RISKY_ITEMS = 256  # of those later ones (privileged containers...), kept at most
MAX_NAMES = 16  # names of a list of names kept besides the ones that matter
# The key under which a salvaged record says what it could not keep (its bytes never
# give it: no path in the trie matches it).
SALVAGE_KEY = "ktriage.salvage"
# One token on a kept path: a structural byte, a string start, or a bare literal.
_TOKEN = re.compile(rb'[ \t\r\n,:]*+(?:([{}\[\]"])|([^ \t\r\n,:{}\[\]"]++))')
# The rest of a string after its opening quote: stops at the closing quote, or at
# the end of the data (a lone backslash there escapes the next chunk's first byte).
_STRING_REST = re.compile(rb'(?:[^"\\]++|\\.)*+', re.S)
# A skipped subtree: everything but nested brackets, strings and innermost bracket
# pairs included (env entries, number lists), in one match.
_FLAT = rb'(?:[^"{}\[\]]++|"(?:[^"\\]++|\\.)*+")*+'
_SKIP = re.compile(
    rb'(?:[^"{}\[\]]++|"(?:[^"\\]++|\\.)*+"|\[' + _FLAT + rb"\]|\{" + _FLAT + rb"\})*+", re.S
)
# An object with no nested brackets, whole; and what in one could make _says_more
# keep it (escapes included: they could spell any of it).
_FLAT_OBJECT = re.compile(rb"\{" + _FLAT + rb"\}", re.S)
_MAY_SAY_MORE = re.compile(rb"true|hostPath|\*|\\|[A-Z_]{3}")
# A bare literal continued from the previous chunk.
_LITERAL_REST = re.compile(rb'[^ \t\r\n,:{}\[\]"]*+')
# Runs of brackets opening (or closing) a skipped subtree, taken in one step.
_OPEN_RUN = re.compile(rb"[\[{ \t\r\n]++")
_CLOSE_RUN = re.compile(rb"[\]} \t\r\n,]++")
_CLOSER = re.compile(rb"[\]}]")
_QUOTE = 34
_OPEN = frozenset((123, 91))  # { [


def _end(pattern: re.Pattern[bytes], data: bytes | bytearray, pos: int) -> int:
    """Where `pattern` (one that may match nothing) stops matching from `pos`."""
    found = pattern.match(data, pos)
    return found.end() if found is not None else pos


class _Frame:
    __slots__ = ("container", "counted", "key", "name", "node", "risky")

    def __init__(
        self,
        node: dict[str, Any],
        container: dict[str, Any] | list[Any],
        name: str = "",
        counted: bool = False,
    ) -> None:
        self.node = node
        self.container = container
        self.key: str | None = None  # an object's key awaiting its value
        self.name = name  # the key this object or array is under
        # Values here are unbounded in number (an array's, or any key's): they count
        # against MAX_VALUES.
        self.counted = counted
        self.risky = 0  # elements past MAX_ITEMS kept because they say more


def _is_leaf(target: object) -> bool:
    return target is LEAF or type(target) is frozenset


def _says_more(value: object, depth: int = 0) -> bool:
    """An array element worth keeping past the first ones: it sets a flag, adds a
    capability that matters, mounts a host path, or grants everything."""
    if type(value) is dict:
        if "hostPath" in value:
            return True
        return depth < 6 and any(_says_more(v, depth + 1) for v in value.values())
    if type(value) is list:
        return depth < 6 and any(_says_more(v, depth + 1) for v in value)
    return value is True or value == "*" or (type(value) is str and value in _CAP_NAMES)


class RecordScanner:
    """Reads the kept fields of one JSON record from its bytes, chunk by chunk."""

    def __init__(self, fields: dict[str, Any] = RECORD_FIELDS) -> None:
        self.fields = fields
        self.root: dict[str, Any] | None = None
        self.done = False  # the record's closing brace was read (or it is not an object)
        self.not_an_object = False
        self.bytes_seen = 0
        self.cut = False  # some value was cut or left out by a bound
        # What was left out or cut, by what it was ("capability names": 4950).
        self.lost: dict[str, int] = {}
        self.gave_up = False  # MAX_SCAN_BYTES or MAX_STEPS reached: the rest was not read
        self.max_depth = 0
        # Bytes up to and including the record's closing brace, once it was read.
        self.end: int | None = None
        self._stack: list[_Frame] = []
        self._skip_depth = 0  # brackets open inside a skipped subtree
        self._steps = 0
        self._kept_bytes = 0
        self._values = 0
        # A string or literal that continues in the next chunk.
        self._in_string = False
        self._string_role = ""  # "key", "value" or "" (skipped)
        self._string_buf = bytearray()
        self._string_cut = False
        self._escape = False
        self._literal = bytearray()

    # -- input ----------------------------------------------------------------

    def feed(self, chunk: bytes | bytearray | memoryview) -> None:
        """The next bytes of the record (any split: inside strings, escapes, numbers)."""
        if self.done or self.gave_up:
            return
        room = MAX_SCAN_BYTES - self.bytes_seen
        if len(chunk) > room:
            chunk = chunk[:room]
            self.gave_up = self.cut = True
        self.bytes_seen += len(chunk)
        data = bytes(chunk) if isinstance(chunk, memoryview) else chunk
        self._scan(data)

    def result(self) -> dict[str, Any] | None:
        """The kept fields as a record of the same shape; None when the bytes did not
        start an object or nothing was kept. When a bound left something out, the
        record says what under SALVAGE_KEY (see `lost_note`)."""
        if self._literal and not self._in_string and not self.done:
            self._literal_done()
        if not self.root:
            return None
        if not self.lost and not self.gave_up:
            return self.root
        out = dict(self.root)
        out[SALVAGE_KEY] = {"lost": dict(self.lost), "unread": self.gave_up}
        return out

    def _lose(self, what: str, n: int = 1) -> None:
        self.cut = True
        self.lost[what] = self.lost.get(what, 0) + n

    # -- the scanner ------------------------------------------------------------

    def _scan(self, data: bytes | bytearray) -> None:
        pos = 0
        end = len(data)
        if self._in_string:
            pos = self._string(data, 0)
            if self._in_string:
                return
        elif self._literal:
            stop = _end(_LITERAL_REST, data, 0)
            self._literal += data[:stop][:64]
            if stop == end:
                return
            pos = stop
            self._literal_done()
        while pos < end and not self.done:
            self._steps += 1
            if self._steps > MAX_STEPS:
                self.gave_up = self.cut = True
                return
            if self._skip_depth:
                pos = self._skip(data, pos)
                continue
            m = _TOKEN.match(data, pos)
            if m is None:  # only separators left
                return
            pos = m.end()
            punct = m.group(1)
            if punct is None:
                literal = m.group(2)
                if pos == end:  # may continue in the next chunk
                    self._literal += literal[:64]
                    return
                self._value_literal(literal)
                continue
            c = punct[0]
            if c == _QUOTE:
                frame = self._stack[-1] if self._stack else None
                if frame is None:
                    self._not_object()
                    return
                if type(frame.container) is dict and frame.key is None:
                    self._string_role = "key"
                else:
                    self._string_role = "value" if _is_leaf(self._target()) else ""
                self._in_string = True
                self._string_buf.clear()
                self._string_cut = False
                pos = self._string(data, pos)
            elif c in _OPEN:
                if c == 123 and self._past_items():
                    # Thousands of plain elements (padding containers): one that holds
                    # nothing _says_more could see is dropped in one step, unread.
                    flat = _FLAT_OBJECT.match(data, pos - 1)
                    if flat is not None and not _MAY_SAY_MORE.search(data, pos, flat.end()):
                        self._lose(f"{self._stack[-1].name or 'array'} entries")
                        self._after_value()
                        pos = flat.end()
                        continue
                self._open(c)
            else:
                self._close()
                if self.done and self.root is not None:
                    self.end = self.bytes_seen - (end - pos)

    def _skip(self, data: bytes | bytearray, pos: int) -> int:
        """One step through a skipped subtree; the position after it."""
        end = len(data)
        pos = _end(_SKIP, data, pos)
        if pos >= end:
            return pos
        c = data[pos]
        if c == _QUOTE:  # a string that continues in the next chunk
            self._in_string, self._string_role = True, ""
            return self._string(data, pos + 1)
        if c in _OPEN:
            # Deep nesting is a long run of opening brackets: one step.
            stop = _end(_OPEN_RUN, data, pos)
            run = data[pos:stop]
            self._skip_depth += run.count(b"[") + run.count(b"{")
            return stop
        stop = _end(_CLOSE_RUN, data, pos)
        run = data[pos:stop]
        closing = run.count(b"]") + run.count(b"}")
        if closing < self._skip_depth:
            self._skip_depth -= closing
            return stop
        # The subtree ends inside this run, at its skip_depth-th closing bracket.
        for found in _CLOSER.finditer(data, pos, stop):
            self._skip_depth -= 1
            if not self._skip_depth:
                self._after_value()
                return found.end()
        return stop  # not reached: the run holds enough closing brackets

    def _string(self, data: bytes | bytearray, pos: int) -> int:
        """Read string bytes from `pos` (inside a string); the position after it."""
        end = len(data)
        start = pos
        if self._escape:
            if pos >= end:
                return pos
            self._escape = False
            pos += 1
        stop = _end(_STRING_REST, data, pos)
        closed = stop < end and data[stop] == _QUOTE
        if not closed and stop < end:  # a lone backslash at the very end
            self._escape = True
            stop = end
        if self._string_role:
            cap = MAX_KEY if self._string_role == "key" else MAX_STRING
            room = max(cap - len(self._string_buf), 0)
            if stop - start > room:
                stop_kept = start + room
                self._string_cut = True
            else:
                stop_kept = stop
            self._string_buf += data[start:stop_kept]
        if not closed:
            return end
        self._in_string = False
        self._string_done()
        return stop + 1

    def _string_done(self) -> None:
        role = self._string_role
        if not role:
            self._after_value()
            return
        frame = self._stack[-1]
        if role == "key":
            # A key too long to keep matches no path.
            frame.key = "\x00" if self._string_cut else _text(bytes(self._string_buf), False)
            return
        if self._string_cut:
            self._lose("strings cut at 4 KiB")
        self._keep(_text(bytes(self._string_buf), self._string_cut))

    def _target(self) -> object:
        """The trie node for the value about to be read in the current frame."""
        frame = self._stack[-1]
        node = frame.node
        if type(frame.container) is list:
            return node.get(ITEMS)
        key = frame.key
        # A key spelled like the array marker is just a key.
        found = node.get(key) if key is not None and key != ITEMS else None
        if found is None:
            found = node.get(ANY_KEY)
        return found

    def _past_items(self) -> bool:
        """The next value is an element past the first MAX_ITEMS of a kept array."""
        stack = self._stack
        if not stack:
            return False
        frame = stack[-1]
        return (
            type(frame.container) is list
            and len(frame.container) >= MAX_ITEMS
            and type(frame.node.get(ITEMS)) is dict
        )

    def _open(self, c: int) -> None:
        if not self._stack:
            if c != 123 or self.root is not None:
                self._not_object()
                return
            self.root = {}
            self._stack.append(_Frame(self.fields, self.root))
            return
        target = self._target()
        if (
            type(target) is not dict
            # An array where an object belongs, or an object where only an array does.
            or (c == 91 and ITEMS not in target)
            or (c == 123 and len(target) == 1 and ITEMS in target)
        ):
            self._skip_depth = 1
            self._after_value()
            return
        parent = self._stack[-1]
        container: dict[str, Any] | list[Any] = {} if c == 123 else []
        # Named by the path's own keys (a key any key matched is the sender's words).
        if type(parent.container) is dict:
            name = parent.key if parent.key in parent.node else ""
        else:
            name = parent.name
        counted = parent.counted or (
            type(parent.container) is dict and parent.key not in parent.node
        )
        self._attach(container)
        self._stack.append(_Frame(target, container, name or "", counted))
        if len(self._stack) > self.max_depth:
            self.max_depth = len(self._stack)

    def _close(self) -> None:
        if not self._stack:
            self._not_object()
            return
        frame = self._stack.pop()
        if not self._stack:
            self.done = True
            return
        parent = self._stack[-1]
        items = parent.container
        if type(items) is list and len(items) > MAX_ITEMS and items[-1] is frame.container:
            # Past the first elements, keep one only when it says more than its
            # name: a privileged container or a hostPath volume among thousands
            # (and not thousands of those: the first ones make the signal).
            element = frame.container
            if _says_more(element) and parent.risky < MAX_RISKY_ITEMS:
                parent.risky += 1
            else:
                items.pop()
                self._lose(f"{parent.name or 'array'} entries")
        self._after_value()

    def _attach(self, value: object) -> None:
        frame = self._stack[-1]
        container = frame.container
        if isinstance(container, list):
            container.append(value)
        else:
            container[frame.key or ""] = value
            frame.key = None

    def _after_value(self) -> None:
        if self._stack:
            frame = self._stack[-1]
            if type(frame.container) is dict:
                frame.key = None

    def _keep(self, value: object) -> None:
        frame = self._stack[-1]
        target = self._target()
        if type(target) is frozenset:
            # A list of names: the ones that matter always (once), others the first few.
            items = frame.container
            if value in target or (type(value) is str and value.upper() in target):
                if value in items:
                    self._after_value()
                    return
            elif len(items) >= MAX_NAMES:
                self._lose(_NAMES_LABEL.get(id(target), f"{frame.name} entries"))
                self._after_value()
                return
        elif frame.counted or type(frame.container) is list or frame.key not in frame.node:
            # A value among arbitrarily many (a list's, any key's): within the budget.
            if self._values >= MAX_VALUES:
                self._lose("values")
                self._after_value()
                return
            self._values += 1
        if type(value) is str:
            if self._kept_bytes + len(value) > MAX_KEPT_BYTES and len(value) > MAX_CUT_STRING:
                value = value[:MAX_CUT_STRING] + "…"
                self._lose("strings cut short (256 KiB kept in all)")
            self._kept_bytes += len(value)
        self._attach(value)

    def _value_literal(self, literal: bytes | bytearray) -> None:
        if not self._stack:
            self._not_object()
            return
        frame = self._stack[-1]
        if type(frame.container) is dict and frame.key is None:
            return  # a bare word where a key belongs: not JSON, left out
        if not _is_leaf(self._target()):
            self._after_value()
            return
        try:
            value = orjson.loads(literal)
        except orjson.JSONDecodeError:
            self._after_value()  # NaN, Infinity, a cut number: left out
            return
        if type(value) is float and not (-1e300 < value < 1e300):
            self._after_value()
            return
        self._keep(value)

    def _literal_done(self) -> None:
        literal = bytes(self._literal)
        self._literal.clear()
        self._value_literal(literal)

    def _not_object(self) -> None:
        if self.root is None:
            self.not_an_object = True
        self.done = True


def _text(raw: bytes, cut: bool) -> str:
    """A JSON string's content (escapes resolved) as text; a cut one ends with '…'."""
    text: str | None
    if not cut and b"\\" not in raw:
        text = raw.decode("utf-8", "replace")
    else:
        text = None
        for trim in range(0, 7 if cut else 1):
            piece = raw[: len(raw) - trim] if trim else raw
            try:
                text = json.loads(b'"' + piece + b'"')
                break
            except ValueError:
                continue
        if text is None:
            text = raw.decode("utf-8", "replace")
        # Lone surrogates from \ud800-style escapes cannot be encoded again.
        text = text.encode("utf-8", "replace").decode("utf-8")
    return text + "…" if cut else text


# Depth to which a decoded record is shown (detail pane, snapshot appendix): JSON
# encoders and recursive redaction stop far below what a decoder accepts.
SHOW_DEPTH = 48


def prune_depth(obj: object, depth: int = SHOW_DEPTH) -> object:
    """Decoded JSON with what lies deeper than `depth` replaced by a short note."""
    if isinstance(obj, dict):
        if depth <= 0:
            return "… (nested too deeply to show)"
        return {k: prune_depth(v, depth - 1) for k, v in obj.items()}
    if isinstance(obj, list):
        if depth <= 0:
            return "… (nested too deeply to show)"
        return [prune_depth(v, depth - 1) for v in obj]
    return obj


class SalvagedLine(bytes):
    """A line over the limit, as the file follower hands it on: the bytes are the
    record the scanner salvaged (small JSON), `size` the original line's length."""

    size: int
    cut: bool

    def __new__(cls, data: bytes, size: int, cut: bool = False) -> SalvagedLine:
        obj = super().__new__(cls, data)
        obj.size = size
        obj.cut = cut
        return obj


def salvage_bytes(
    data: bytes | bytearray | memoryview,
    chunk: int = 1 << 20,
    fields: dict[str, Any] = RECORD_FIELDS,
) -> RecordScanner:
    """Scan a record already in memory (in slices: the scanner copies nothing whole)."""
    scanner = RecordScanner(fields)
    view = memoryview(data)
    for start in range(0, len(view), chunk):
        scanner.feed(view[start : start + chunk])
        if scanner.done or scanner.gave_up:
            break
    return scanner
