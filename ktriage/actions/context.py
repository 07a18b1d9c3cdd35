"""What an action needs at hand: the client, the runner, the permission cache, the clock."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from ktriage.actions.base import Target
from ktriage.actions.kube import Kube
from ktriage.actions.permissions import GET_PODS, PermissionCache
from ktriage.actions.runner import Runner

T = TypeVar("T")


@dataclass(slots=True)
class ActionContext:
    kube: Kube
    runner: Runner
    permissions: PermissionCache
    snapshot_dir: Path
    # Time for the record (epoch seconds): the wall clock, or the simulated one.
    clock: Callable[[], float] = field(default=time.time)
    # Chunk size for evidence streams, and how many chunks may wait to be written.
    chunk_size: int = 64 * 1024
    queue_chunks: int = 4
    # An incident's events with their raw records, [(event, raw)], for actions that
    # read what happened (the bindings an identity created); empty without an engine.
    incident_records: Callable[[str], list[tuple[Any, Any]]] = field(default=lambda _incident: [])

    async def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Shorthand for `runner.call`."""
        return await self.runner.call(fn, *args, **kwargs)

    async def read_pod(self, target: Target) -> dict[str, Any]:
        """The target pod as the server has it now (every action starts here)."""
        return await self.call(
            self.kube.get_pod,
            target.namespace,
            target.name,
            what=f"read {target.words()}",
            subject=target,
            permission=GET_PODS,
        )
