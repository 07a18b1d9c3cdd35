"""What an action needs at hand: the client, the runner, the permission cache, the clock."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from ktriage.actions.base import Target
from ktriage.actions.kube import Kube
from ktriage.actions.permissions import GET_PODS, PATCH_PODS, Permission, PermissionCache
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

    async def read(
        self,
        send: Callable[..., dict[str, Any]],
        target: Target,
        *args: Any,
        permission: Permission,
        verb: str = "read",
    ) -> dict[str, Any]:
        """The target as the server has it now, read by `send(*args)`; `verb` says why
        in the record ("re-read" after a conflict)."""
        return await self.call(
            send, *args, what=f"{verb} {target.words()}", subject=target, permission=permission
        )

    async def read_pod(self, target: Target, *, verb: str = "read") -> dict[str, Any]:
        """The target pod as the server has it now (every action starts here)."""
        return await self.read(
            self.kube.get_pod, target, target.namespace, target.name, permission=GET_PODS, verb=verb
        )

    async def patch_pod(
        self, target: Target, body: dict[str, Any], *, verb: str, dry_run: bool = False
    ) -> dict[str, Any]:
        """Patch the target pod (a strategic merge); `verb` names the change in the record."""
        return await self.call(
            self.kube.patch_pod,
            target.namespace,
            target.name,
            body,
            dry_run=dry_run,
            what=f"dry run: {verb} {target.words()}" if dry_run else f"{verb} {target.words()}",
            subject=target,
            permission=PATCH_PODS,
        )

    async def delete(
        self,
        send: Callable[..., dict[str, Any]],
        target: Target,
        *,
        uid: str,
        permission: Permission,
        dry_run: bool = False,
        **options: Any,
    ) -> dict[str, Any]:
        """Delete the target with `send` (a `kube_contain.delete_*`): only that very object,
        its uid a precondition, so a namesake made since is never deleted."""
        verb = "dry run: delete" if dry_run else "delete"
        return await self.call(
            send,
            self.kube,
            target.namespace,
            target.name,
            uid=uid,
            dry_run=dry_run,
            what=f"{verb} {target.words()}",
            subject=target,
            permission=permission,
            **options,
        )
