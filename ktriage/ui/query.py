"""The `/` filter language shared by every pane.

    miner                 rows containing "miner" (case-insensitive; all words must match)
    "xmrig -o"            a phrase, spaces and all
    !kube-system          rows not containing "kube-system"
    source:falco,audit    only these sources (also `src:`)
    sev:high              severity high or above (also `severity:`)
    kind:exec             a kind family (exec, network, file, rbac, secret, pod, escape:
                          ktriage.core.kinds), else the event kind by prefix
    ns:payments           namespace
    cluster:prod-eu       incidents of this cluster (several clusters; also `ctx:`)

A row that lacks a field (a pod has no source) does not match a test on it; the
cluster test applies to incidents only (events are filtered within their incident).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ktriage.core.kinds import FAMILIES, family_of, is_known_kind
from ktriage.core.model import SOURCES, EntityKind, Event, Severity

_SEVERITY_ALIASES = {"crit": "critical", "med": "medium", "warn": "medium", "warning": "medium"}


@dataclass(frozen=True, slots=True)
class Query:
    text: str
    words: tuple[str, ...] = ()
    excluded: tuple[str, ...] = ()
    sources: frozenset[str] = frozenset()
    min_severity: Severity | None = None
    kinds: tuple[str, ...] = ()
    namespaces: tuple[str, ...] = ()
    clusters: frozenset[str] = frozenset()  # lower-cased context names
    # Words that looked like a field test but were not understood, for the user.
    problems: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not (
            self.words
            or self.excluded
            or self.sources
            or self.min_severity is not None
            or self.kinds
            or self.namespaces
            or self.clusters
        )

    def matches_text(self, haystack: str) -> bool:
        """Word tests against an already lower-cased haystack."""
        return all(w in haystack for w in self.words) and not any(
            w in haystack for w in self.excluded
        )

    def matches_fields(
        self,
        haystack: str,
        *,
        source: str | None = None,
        severity: Severity | None = None,
        kind: str | None = None,
        namespaces: Iterable[str] = (),
        cluster: str | None = None,
    ) -> bool:
        # `cluster` is None for rows that have none to test (events).
        if self.clusters and cluster is not None and cluster.lower() not in self.clusters:
            return False
        if self.sources and (source is None or source not in self.sources):
            return False
        if self.min_severity is not None and (severity is None or severity < self.min_severity):
            return False
        if self.kinds and (kind is None or not any(kind_matches(kind, k) for k in self.kinds)):
            return False
        if self.namespaces:
            have = set(namespaces)
            if not any(ns in have for ns in self.namespaces):
                return False
        return self.matches_text(haystack)

    def matches_event(self, event: Event) -> bool:
        return self.matches_fields(
            event_haystack(event),
            source=event.source,
            severity=event.severity,
            kind=event.kind,
            namespaces=event_namespaces(event),
        )


def kind_matches(kind: str, wanted: str) -> bool:
    """`wanted` is a family (`exec` covers the audit exec and runtime process execs)
    or the beginning of a kind."""
    family = family_of(wanted)
    if family is not None:
        return family.matches(kind)
    return kind.startswith(wanted)


def event_haystack(event: Event) -> str:
    parts = [event.summary, event.kind, event.source, event.severity.label]
    parts.extend(e.short() for e in event.entities)
    if event.attack is not None:
        parts.append(event.attack.tactic)
        parts.append(event.attack.technique)
    return " ".join(parts).lower()


def event_namespaces(event: Event) -> list[str]:
    out = []
    for e in event.entities:
        if e.kind == EntityKind.NAMESPACE:
            out.append(e.name)
        elif e.namespace:
            out.append(e.namespace)
    return out


def _tokens(text: str) -> list[str]:
    """Words, with "double-quoted phrases" kept whole (an unclosed quote runs to the end)."""
    out: list[str] = []
    rest = text
    while rest:
        rest = rest.lstrip()
        if not rest:
            break
        if rest.startswith('"') or rest.startswith('!"'):
            bang = "!" if rest.startswith("!") else ""
            body = rest[len(bang) + 1 :]
            end = body.find('"')
            phrase, rest = (body, "") if end < 0 else (body[:end], body[end + 1 :])
            if phrase:
                out.append(bang + phrase)
            continue
        word, _, rest = rest.partition(" ")
        out.append(word)
    return out


def parse_query(text: str) -> Query:
    words: list[str] = []
    excluded: list[str] = []
    sources: set[str] = set()
    kinds: list[str] = []
    namespaces: list[str] = []
    clusters: set[str] = set()
    problems: list[str] = []
    min_severity: Severity | None = None
    for token in _tokens(text):
        field_name, sep, value = token.partition(":")
        field_name = field_name.lower()
        if sep and value and field_name in ("source", "src"):
            for item in value.lower().split(","):
                if item in SOURCES:
                    sources.add(item)
                elif item:
                    problems.append(f"unknown source {item!r} (use {', '.join(SOURCES)})")
        elif sep and value and field_name in ("sev", "severity"):
            name = _SEVERITY_ALIASES.get(value.lower(), value.lower())
            try:
                min_severity = Severity.parse(name)
            except KeyError:
                problems.append(f"unknown severity {value!r}")
        elif sep and value and field_name == "kind":
            for item in value.lower().split(","):
                if not item:
                    continue
                kinds.append(item)
                if not is_known_kind(item):
                    names = ", ".join(f.name for f in FAMILIES)
                    problems.append(
                        f"no kind begins with {item!r}: use a family ({names}) "
                        "or a kind from the help (?)"
                    )
        elif sep and value and field_name in ("ns", "namespace"):
            namespaces.append(value)
        elif sep and value and field_name in ("cluster", "ctx", "context"):
            clusters.update(item.lower() for item in value.split(",") if item)
        elif token.startswith("!") and len(token) > 1:
            excluded.append(token[1:].lower())
        else:
            words.append(token.lower())
    return Query(
        text=text,
        words=tuple(words),
        excluded=tuple(excluded),
        sources=frozenset(sources),
        min_severity=min_severity,
        kinds=tuple(kinds),
        namespaces=tuple(namespaces),
        clusters=frozenset(clusters),
        problems=tuple(problems),
    )
