"""Change history kept per resource type, as kube-apiserver's watch cache keeps one
window per resource: a flood of Events never expires a watch on Pods.

Each type keeps its last `limit` changes. A type's history covers every
resourceVersion at or after its `oldest` one: a watch may resume from it, and the
type's state at it can be rebuilt (paged lists read one snapshot that way).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from typing import Any

TypeKey = tuple[str, str]  # (apiVersion, kind)
Key = tuple[str, str]  # (namespace or "", name)


class TypeHistory:
    """The kept changes of one resource type, oldest first."""

    __slots__ = ("changes", "evicted_rv")

    def __init__(self, limit: int) -> None:
        self.changes: deque[Any] = deque(maxlen=limit)
        # The newest resourceVersion whose change of this type is no longer kept.
        self.evicted_rv = 0

    def append(self, change: Any) -> None:
        if self.changes.maxlen is not None and len(self.changes) == self.changes.maxlen:
            self.evicted_rv = self.changes[0].rv
        self.changes.append(change)

    def after(self, rv: int) -> list[Any]:
        """The kept changes newer than `rv`, oldest first."""
        out: list[Any] = []
        for change in reversed(self.changes):
            if change.rv <= rv:
                break
            out.append(change)
        out.reverse()
        return out


class WatchCache:
    """Per-type histories and the store-wide compaction point."""

    def __init__(self, limit: int, first_rv: int) -> None:
        self.limit = limit
        self._types: dict[TypeKey, TypeHistory] = {}
        # Everything at or before this resourceVersion was compacted away.
        self.compacted_rv = first_rv

    def record(self, type_key: TypeKey, change: Any) -> None:
        history = self._types.get(type_key)
        if history is None:
            history = self._types[type_key] = TypeHistory(self.limit)
        history.append(change)

    def oldest(self, type_key: TypeKey | None) -> int:
        """The oldest resourceVersion a watch (or a snapshot) of the type can start from;
        for None (every type), the oldest all of them can."""
        if type_key is None:
            evicted = max((h.evicted_rv for h in self._types.values()), default=0)
        else:
            history = self._types.get(type_key)
            evicted = history.evicted_rv if history is not None else 0
        return max(evicted, self.compacted_rv)

    def changes_after(self, type_key: TypeKey | None, rv: int) -> list[Any]:
        """The kept changes newer than `rv`, of one type or of all, in order."""
        if type_key is not None:
            history = self._types.get(type_key)
            return history.after(rv) if history is not None else []
        merged = [c for h in self._types.values() for c in h.after(rv)]
        merged.sort(key=lambda c: c.rv)
        return merged

    def compact(self, rv: int) -> None:
        """Forget every change, as an etcd compaction at `rv` does."""
        self._types.clear()
        self.compacted_rv = rv


def state_at(current: dict[Key, dict], newer: Iterable[Any]) -> dict[Key, dict]:
    """A type's objects as they were before the `newer` changes (oldest first): each
    change is undone, newest first. The objects are shared, never copied."""
    state = dict(current)
    for change in reversed(list(newer)):
        meta = change.obj["metadata"]
        key = (meta.get("namespace") or "", meta["name"])
        if change.old is None:
            state.pop(key, None)
        else:
            state[key] = change.old
    return state
