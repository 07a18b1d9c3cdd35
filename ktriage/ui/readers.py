"""The live readers the screens share: one per app and cluster, made on first use."""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any, TypeVar

from ktriage.ui.hooks import client_factory

Reader = TypeVar("Reader")
ReadersByApp = weakref.WeakKeyDictionary[Any, dict[str, Reader]]


def cached_reader(
    readers_by_app: ReadersByApp[Reader],
    app: Any,
    cluster: str,
    make: Callable[[Callable[[], Any]], Reader],
) -> Reader | None:
    """The app's reader of `cluster` ("" with one cluster) from `readers_by_app`, made
    with `make(client_factory)` on first use so that its cache and connection pool
    outlive the screens; None without a live cluster (replay) or a client for it."""
    readers = readers_by_app.setdefault(app, {})
    reader = readers.get(cluster)
    if reader is not None:
        return reader
    factory = client_factory(app, cluster)
    if factory is None:
        return None
    reader = readers[cluster] = make(factory)
    return reader
