"""Remembered answers of small pure functions: a log names the same few thousand users,
addresses and namespaces again and again."""

from __future__ import annotations

import functools
from collections.abc import Callable, Hashable
from typing import TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


def remembered(cache: dict[K, V], limit: int) -> Callable[[Callable[[K], V]], Callable[[K], V]]:
    """Decorate a one-argument function that never returns None so that its answers are
    kept in `cache`, which never holds more than `limit` keys: when full, all are
    forgotten at once (cheaper than an LRU on every call, and what a stream repeats
    comes back at once). A hot loop may look in `cache` itself first and call the
    function only for what it lacks."""

    def decorate(make: Callable[[K], V]) -> Callable[[K], V]:
        @functools.wraps(make)
        def cached(key: K) -> V:
            found = cache.get(key)
            if found is None:
                if len(cache) >= limit:
                    cache.clear()
                found = cache[key] = make(key)
            return found

        return cached

    return decorate
