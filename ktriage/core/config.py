"""User configuration: correlation window and suppressions, from a TOML file.

```toml
window = "30m"

[[suppress]]            # every key given must match; shell-style wildcards allowed
user = "sre-alice"      # username, or system:serviceaccount:NS:NAME
namespace = "dev"
rule = "exec"           # detection kind, Falco rule or title phrase
reason = "expected SRE access during on-call"
session = "30m"         # optional, default 15m; "0s" turns expected sessions off

[networks]              # the cluster's node and pod networks, besides those learnt
cluster = ["198.51.100.0/24"]

[allowlist]
default = true          # the shipped list of well-known controllers' expected behaviour
files = ["allow.toml"]  # more allow lists (relative to this file), same format
```

A suppressed event stays visible as context with its reason; it never opens or
raises an incident.

Expected sessions: when a suppressed audit event is an exec, attach or
port-forward into a pod, what an interactive session normally produces on that
pod (shells, plain execs, low alerts; see correlate.SESSION_COVERED_KINDS) from
30 s before it until `session` after it is suppressed too. High-impact runtime
detections are never covered.

Allow lists (core/allowlist.py): detections matching a controller's expected
behaviour, by its authenticated identity, verb and resource, stay in timelines as
context marked "expected". The shipped list is on unless `default = false`.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from ktriage.core.allowlist import (
    AllowList,
    AllowListError,
    build_allowlist,
    default_allowlist,
    unknown_keys,
)
from ktriage.core.model import EntityKind, Event

DEFAULT_WINDOW = 30 * 60.0
# How long after an expected exec/attach/port-forward its session's runtime activity
# is covered (see Suppression.session).
DEFAULT_SESSION = 15 * 60.0


class ConfigError(ValueError):
    """A configuration file that cannot be used; the message says why."""


def parse_duration(text: str | float | int) -> float:
    """`90`, `"90s"`, `"15m"`, `"2h"`, `"1d"`, `"1h30m"` → seconds."""
    if isinstance(text, int | float) and not isinstance(text, bool):
        if text < 0:
            raise ValueError(f"duration must not be negative: {text}")
        return float(text)
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"not a duration: {text!r}")
    units = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
    total, number, rest = 0.0, "", text.strip().lower()
    i = 0
    while i < len(rest):
        ch = rest[i]
        if ch.isdigit() or ch == ".":
            number += ch
            i += 1
            continue
        unit = "ms" if rest.startswith("ms", i) else ch
        if unit not in units or not number:
            raise ValueError(f"not a duration: {text!r} (use e.g. 90s, 15m, 2h)")
        total += float(number) * units[unit]
        number = ""
        i += len(unit)
    if number:
        total += float(number)
    return total


def parse_window(text: str) -> float:
    """A correlation window: a duration from 1 second to 7 days."""
    seconds = parse_duration(text)
    if not 1 <= seconds <= 7 * 86400:
        raise ValueError(f"window must be between 1s and 7d, got {text!r}")
    return seconds


@dataclass(frozen=True, slots=True)
class Suppression:
    user: str = ""
    namespace: str = ""
    rule: str = ""
    source: str = ""
    reason: str = ""
    # Seconds after a suppressed exec/attach/port-forward during which the runtime
    # activity it starts on that pod is covered too; 0 turns it off.
    session: float = DEFAULT_SESSION

    def describe(self) -> str:
        parts = [
            f"{k}={v}"
            for k, v in (
                ("user", self.user),
                ("namespace", self.namespace),
                ("rule", self.rule),
                ("source", self.source),
            )
            if v
        ]
        text = " ".join(parts)
        return f"{text} ({self.reason})" if self.reason else text

    def matches(self, event: Event) -> bool:
        if self.source and not fnmatchcase(event.source, self.source):
            return False
        if self.rule and not (
            fnmatchcase(event.kind, self.rule)
            or fnmatchcase(event.label.lower(), self.rule.lower())
            or fnmatchcase(event.summary, self.rule + "*")
        ):
            return False
        if self.user and not any(fnmatchcase(name, self.user) for name in _identities(event)):
            return False
        if self.namespace and not any(fnmatchcase(ns, self.namespace) for ns in _namespaces(event)):
            return False
        return bool(self.user or self.namespace or self.rule or self.source)


def _identities(event: Event) -> list[str]:
    names = []
    for e in event.entities:
        if e.kind == EntityKind.USER:
            names.append(e.name)
        elif e.kind == EntityKind.SERVICE_ACCOUNT:
            names.append(f"system:serviceaccount:{e.namespace}:{e.name}")
    return names


def _namespaces(event: Event) -> list[str]:
    """The namespaces an event happens in. A pod's namespace counts only for events
    that name no namespace of their own and are not audit events: an audit event may
    name the pod whose bound token made the request (the actor's pod), and a rule for
    that pod's namespace must not hide what the token does elsewhere."""
    out = [e.name for e in event.entities if e.kind == EntityKind.NAMESPACE]
    if out or event.source == "audit":
        return out
    return [e.namespace for e in event.entities if e.kind == EntityKind.POD and e.namespace]


@dataclass(slots=True)
class Config:
    window: float = DEFAULT_WINDOW
    suppressions: list[Suppression] = field(default_factory=list)
    path: Path | None = None
    # Expected behaviour of well-known controllers (and the user's own entries).
    allowlist: AllowList = field(default_factory=default_allowlist)
    # CIDRs of the cluster's node and pod networks ([networks] cluster): a system
    # credential used from a public address outside them (and outside those learnt
    # from nodes and pods) is a signal.
    networks: list[str] = field(default_factory=list)

    def suppression_for(self, event: Event) -> Suppression | None:
        for rule in self.suppressions:
            if rule.matches(event):
                return rule
        return None


def config_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "ktriage"


def default_config_path() -> Path:
    return config_dir() / "config.toml"


def load_config(path: Path | str | None = None) -> Config:
    """Load a config file; the default path may be absent, an explicit one may not."""
    explicit = path is not None
    p = Path(path) if path is not None else default_config_path()
    if not p.exists():
        if explicit:
            raise ConfigError(f"config file not found: {p}")
        return Config()
    import tomllib  # here: a start without a config file does without it (7 ms)

    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file {p}: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {p} is not valid TOML: {exc}") from exc
    return config_from_dict(data, p)


def config_from_dict(data: dict[str, Any], path: Path | None = None) -> Config:
    where = f" in {path}" if path else ""
    cfg = Config(path=path)
    unknown_top = set(data) - {"window", "suppress", "networks", "allowlist"}
    if unknown_top:
        raise ConfigError(
            f"unknown setting(s){where}: {', '.join(sorted(unknown_top))}; "
            "known: window, [[suppress]], [networks], [allowlist]"
        )
    if "networks" in data:
        cfg.networks = _networks(data["networks"], where)
    if "allowlist" in data:
        cfg.allowlist = _allowlist(data["allowlist"], path, where)
    if "window" in data:
        value = data["window"]
        if not isinstance(value, str):
            raise ConfigError(f'window{where} must be a duration in quotes, e.g. window = "30m"')
        try:
            cfg.window = parse_window(value)
        except ValueError as exc:
            raise ConfigError(f"window{where}: {exc}") from exc
    entries = data.get("suppress", [])
    if not isinstance(entries, list):
        raise ConfigError(f"'suppress'{where} must be a list of tables ([[suppress]])")
    allowed = {"user", "namespace", "rule", "source", "reason", "session"}
    for n, entry in enumerate(entries, 1):
        if not isinstance(entry, dict):
            raise ConfigError(f"suppress entry {n}{where} must be a table")
        if unknown := unknown_keys(entry, allowed):
            raise ConfigError(f"suppress entry {n}{where}: {unknown}")
        fields = dict(entry)
        if "session" in fields:
            try:
                fields["session"] = parse_duration(fields["session"])
            except ValueError as exc:
                raise ConfigError(f"suppress entry {n}{where}: session: {exc}") from exc
        if not all(isinstance(v, str) for k, v in fields.items() if k != "session"):
            raise ConfigError(f"suppress entry {n}{where}: every value must be a string")
        rule = Suppression(**fields)
        if not (rule.user or rule.namespace or rule.rule or rule.source):
            raise ConfigError(
                f"suppress entry {n}{where} matches nothing: give user, namespace, rule or source"
            )
        cfg.suppressions.append(rule)
    return cfg


def _allowlist(section: object, path: Path | None, where: str) -> AllowList:
    """`[allowlist] default = true/false, files = [...]` (files relative to the config)."""
    if not isinstance(section, dict):
        raise ConfigError(f"'allowlist'{where} must be a table ([allowlist])")
    if unknown := unknown_keys(section, ("default", "files")):
        raise ConfigError(f"[allowlist]{where}: {unknown}")
    use_default = section.get("default", True)
    if not isinstance(use_default, bool):
        raise ConfigError(f"[allowlist]{where}: default must be true or false")
    files = section.get("files", [])
    if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
        raise ConfigError(f"[allowlist]{where}: files must be a list of file names")
    base = path.parent if path is not None else Path.cwd()
    paths = [p if p.is_absolute() else base / p for p in map(Path, files)]
    try:
        return build_allowlist(use_default, paths)
    except AllowListError as exc:
        raise ConfigError(str(exc)) from exc


def _networks(value: object, where: str) -> list[str]:
    """`[networks] cluster = ["10.0.0.0/8", ...]`: checked CIDRs."""
    if not isinstance(value, dict) or set(value) - {"cluster"}:
        raise ConfigError(f'[networks]{where} takes one key: cluster = ["10.0.0.0/8", ...]')
    cidrs = value.get("cluster", [])
    if not isinstance(cidrs, list) or not all(isinstance(c, str) for c in cidrs):
        raise ConfigError(f"[networks] cluster{where} must be a list of CIDRs in quotes")
    for cidr in cidrs:
        try:
            ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            raise ConfigError(
                f"[networks] cluster{where}: {cidr!r} is not a network (e.g. 10.0.0.0/8)"
            ) from None
    return list(cidrs)
