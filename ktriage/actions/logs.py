"""Dump a pod's evidence: every container's logs, its YAML and its events, with checksums.

Every container counts: init, regular and ephemeral; the previous instance's
log too where the container restarted. Logs are streamed, never held whole in
memory: a thread reads the urllib3 response in 64 KiB chunks into a small
bounded queue and the loop writes them with aiofiles while hashing, so memory
stays flat however large the log. A 404/400 for the previous log of a
container that never restarted is not an error.

Files go to `<snapshot-dir>/<incident>/evidence/<namespace>.<pod>.<UTC time>/`,
mode 0600 in 0700 directories, with a `SHA256SUMS` manifest that
`sha256sum -c SHA256SUMS` checks.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import os
import re
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiofiles
import yaml

from ktriage.actions.base import (
    FAILED,
    OK,
    ActionError,
    ActionRecord,
    Change,
    DeclaredAction,
    Outcome,
    Plan,
    Progress,
    Target,
)
from ktriage.actions.context import ActionContext
from ktriage.actions.permissions import GET_LOGS, LIST_EVENTS
from ktriage.actions.runner import translate
from ktriage.core.containment import EVIDENCE, LOGS_DUMPED, fact
from ktriage.core.redact import redact
from ktriage.core.snapshot import make_private_dirs

MANIFEST = "SHA256SUMS"
PARTIAL_MANIFEST = "SHA256SUMS.partial"
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


def safe_name(text: str) -> str:
    """A file name part from untrusted text: no separators, no leading dot."""
    return _UNSAFE.sub("_", text).lstrip(".")[:120] or "_"


@dataclass(frozen=True, slots=True)
class LogStream:
    container: str
    kind: str  # init | container | ephemeral
    previous: bool
    file: str

    def describe(self) -> str:
        which = "previous instance's log" if self.previous else "log"
        kind = {"init": "init container", "ephemeral": "ephemeral container"}.get(
            self.kind, "container"
        )
        return f"{kind} {self.container}: {which}"


def log_streams(pod: dict[str, Any]) -> list[LogStream]:
    """Every container's current log, and the previous one where it restarted."""
    spec = pod.get("spec") or {}
    status = pod.get("status") or {}
    statuses: dict[str, dict[str, Any]] = {}
    for key in ("initContainerStatuses", "containerStatuses", "ephemeralContainerStatuses"):
        for cs in status.get(key) or ():
            statuses[cs.get("name", "")] = cs
    out: list[LogStream] = []
    for key, kind in (
        ("initContainers", "init"),
        ("containers", "container"),
        ("ephemeralContainers", "ephemeral"),
    ):
        for container in spec.get(key) or ():
            name = str(container.get("name", ""))
            if not name:
                continue
            base = safe_name(name)
            out.append(LogStream(name, kind, False, f"{base}.log"))
            cs = statuses.get(name) or {}
            restarted = int(cs.get("restartCount") or 0) > 0
            if restarted or (cs.get("lastState") or {}).get("terminated"):
                out.append(LogStream(name, kind, True, f"{base}.previous.log"))
    return out


def _private_opener(path: str, flags: int) -> int:
    return os.open(path, flags | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)


class _Writer:
    """Writes one evidence file with aiofiles, hashing as it goes."""

    def __init__(self, path: Path, name: str, progress: Progress | None) -> None:
        self.path = path
        self.name = name
        self.progress = progress
        self.sha = hashlib.sha256()
        self.size = 0

    async def write_all(self, chunks: list[bytes]) -> None:
        async with aiofiles.open(self.path, "wb", opener=_private_opener) as fh:
            for chunk in chunks:
                await self.write(fh, chunk)

    async def write(self, fh: Any, chunk: bytes) -> None:
        await fh.write(chunk)
        self.sha.update(chunk)
        self.size += len(chunk)
        if self.progress is not None:
            self.progress(self.name, self.size, None)

    def entry(self, base: Path) -> dict[str, Any]:
        return {
            "path": str(self.path.relative_to(base)),
            "sha256": self.sha.hexdigest(),
            "bytes": self.size,
        }


class DumpLogs(DeclaredAction):
    name = "logs"
    title = "Dump the pod's logs, YAML and events"

    async def check(self, ctx: ActionContext, target: Target) -> dict[str, Any]:
        pod = await ctx.read_pod(target)
        return {"pod": pod}

    def evidence_dir(self, ctx: ActionContext, incident_id: str, target: Target) -> Path:
        stamp = datetime.fromtimestamp(ctx.clock(), UTC).strftime("%Y%m%dT%H%M%SZ")
        base = ctx.snapshot_dir / safe_name(incident_id) / "evidence"
        name = f"{safe_name(target.namespace)}.{safe_name(target.name)}.{stamp}"
        path = base / name
        n = 2
        while path.exists():  # two dumps in the same second keep both
            path = base / f"{name}-{n}"
            n += 1
        return path

    async def plan(
        self, ctx: ActionContext, target: Target, incident_id: str, facts: dict[str, Any]
    ) -> Plan:
        pod = facts["pod"]
        streams = log_streams(pod)
        directory = self.evidence_dir(ctx, incident_id, target)
        plan = Plan(
            action=self.name,
            incident_id=incident_id,
            target=target,
            subject=target,
            title=f"Dump evidence of pod {target.short()}",
            state={"directory": str(directory), "streams": streams},
        )
        rel = directory.relative_to(ctx.snapshot_dir)
        for stream in streams:
            plan.files.append(f"{rel / stream.file}  ({stream.describe()})")
        plan.files.append(f"{rel / 'pod.yaml'}  (the pod, secrets redacted)")
        plan.files.append(f"{rel / 'events.yaml'}  (the pod's events)")
        plan.files.append(f"{rel / MANIFEST}  (sha256 of every file above)")
        for path in plan.files:
            name, _, what = path.partition("  ")
            plan.changes.append(
                Change(verb="write", target=Target("File", "", name), summary=what.strip("()"))
            )
        if not streams:
            plan.warnings.append("The pod declares no containers: only its YAML and events.")
        plan.notes.append(
            f"Files are written under {directory} (mode 0600, directories 0700); "
            "nothing in the cluster changes."
        )
        return plan

    async def dry_run(self, ctx: ActionContext, plan: Plan) -> None:
        """Nothing to change: check that the logs can be read and the directory written."""
        streams: list[LogStream] = plan.state["streams"]
        target = plan.target
        current = [s for s in streams if not s.previous]
        if current:
            response = await ctx.call(
                ctx.kube.open_log,
                target.namespace,
                target.name,
                current[0].container,
                limit_bytes=1,
                what=f"read the log of container {current[0].container}",
                subject=target,
                permission=GET_LOGS,
            )
            await asyncio.to_thread(_close, response)
        parent = Path(plan.state["directory"])
        while not parent.exists():
            parent = parent.parent
        if not os.access(parent, os.W_OK | os.X_OK):
            raise ActionError(f"cannot write evidence under {parent}: permission denied")
        plan.dry_run = "the server serves the pod's logs and the evidence directory is writable"

    async def _stream(
        self,
        ctx: ActionContext,
        target: Target,
        stream: LogStream,
        path: Path,
        progress: Progress | None,
    ) -> _Writer | None:
        """Stream one log to `path`; None when there is no previous log to fetch."""
        try:
            response = await ctx.call(
                ctx.kube.open_log,
                target.namespace,
                target.name,
                stream.container,
                previous=stream.previous,
                what=f"read the {stream.describe()}",
                subject=target,
                permission=GET_LOGS,
            )
        except ActionError as error:
            # No previous instance (never restarted, or its log is gone): not an error.
            if stream.previous and error.status in (400, 404):
                return None
            raise
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[bytes | BaseException | None] = asyncio.Queue(ctx.queue_chunks)
        stop = threading.Event()

        def put(item: bytes | BaseException | None) -> bool:
            # Blocks while the queue is full (backpressure); gives up once told to stop.
            while True:
                future = asyncio.run_coroutine_threadsafe(queue.put(item), loop)
                try:
                    future.result(timeout=0.5)
                    return True
                except concurrent.futures.TimeoutError:
                    future.cancel()
                    if stop.is_set():
                        return False

        def produce() -> None:
            try:
                for chunk in response.stream(ctx.chunk_size):
                    if stop.is_set() or not put(chunk):
                        return
                put(None)
            except BaseException as exc:  # reported by the writer, in words
                put(exc)
            finally:
                _close(response)

        writer = _Writer(path, stream.file, progress)
        producer = asyncio.create_task(asyncio.to_thread(produce))
        try:
            async with aiofiles.open(path, "wb", opener=_private_opener) as fh:
                while True:
                    item = await queue.get()
                    if item is None:
                        break
                    if isinstance(item, BaseException):
                        failed = translate(item, f"read the {stream.describe()}", subject=target)
                        raise ActionError(
                            f"{failed.message} after {writer.size} bytes (the file is partial)",
                            reason=failed.reason,
                        )
                    await writer.write(fh, item)
        finally:
            stop.set()
            if not producer.done():
                # Unblock a producer waiting on the socket (cancelled or failed dump).
                await asyncio.to_thread(_close, response)
            while not producer.done():  # let a blocked producer see the stop
                try:
                    queue.get_nowait()
                except asyncio.QueueEmpty:
                    await asyncio.sleep(0.01)
            await producer
        return writer

    async def _write_yaml(
        self, path: Path, name: str, data: Any, progress: Progress | None
    ) -> _Writer:
        # Redacted (Secret data, env values named as secrets, credentials in any
        # string); non-ASCII written as YAML escapes, so no invisible character
        # hides in the file (loading it gives the exact text back).
        text = yaml.safe_dump(redact(data), sort_keys=False, allow_unicode=False)
        writer = _Writer(path, name, progress)
        await writer.write_all([text.encode()])
        return writer

    async def apply(
        self, ctx: ActionContext, plan: Plan, progress: Progress | None = None
    ) -> Outcome:
        directory = Path(plan.state["directory"])
        try:
            await asyncio.to_thread(make_private_dirs, directory)
        except OSError as exc:
            message = f"cannot create {directory}: {exc.strerror or exc}"
            return Outcome(plan=plan, result=FAILED, message=message, error=message)
        try:
            return await self._dump(ctx, plan, directory, progress)
        except asyncio.CancelledError:
            # Stopped midway (ktriage quit): what was written is still evidence, and
            # its hashes say so, in a manifest that does not claim to be complete.
            await asyncio.to_thread(_write_partial_manifest, directory)
            raise

    async def _dump(
        self, ctx: ActionContext, plan: Plan, directory: Path, progress: Progress | None
    ) -> Outcome:
        target = plan.target
        base = ctx.snapshot_dir
        written: list[_Writer] = []
        problems: list[str] = []
        skipped: list[str] = []
        streams: list[LogStream] = plan.state["streams"]
        for stream in streams:
            path = directory / stream.file
            try:
                writer = await self._stream(ctx, target, stream, path, progress)
            except ActionError as error:
                problems.append(error.message)
                if path.exists() and path.stat().st_size == 0:
                    path.unlink()
                continue
            except OSError as exc:
                problems.append(f"write {stream.file}: {exc.strerror or exc}")
                continue
            if writer is None:
                skipped.append(stream.describe())
            else:
                written.append(writer)
        logs_written = len(written)
        try:
            pod = await ctx.read_pod(target)
            written.append(
                await self._write_yaml(directory / "pod.yaml", "pod.yaml", pod, progress)
            )
        except (ActionError, OSError) as exc:
            problems.append(getattr(exc, "message", None) or f"write pod.yaml: {exc}")
        try:
            events = await ctx.call(
                ctx.kube.list_pod_events,
                target.namespace,
                target.name,
                what=f"list the events of {target.words()}",
                permission=LIST_EVENTS,
            )
            doc = {"apiVersion": "v1", "kind": "EventList", "items": events}
            written.append(
                await self._write_yaml(directory / "events.yaml", "events.yaml", doc, progress)
            )
        except (ActionError, OSError) as exc:
            problems.append(getattr(exc, "message", None) or f"write events.yaml: {exc}")
        if written:
            manifest = "".join(f"{w.sha.hexdigest()}  {w.path.name}\n" for w in written)
            sums = _Writer(directory / MANIFEST, MANIFEST, progress)
            try:
                await sums.write_all([manifest.encode()])
                written.append(sums)
            except OSError as exc:
                problems.append(f"write {MANIFEST}: {exc.strerror or exc}")
        files = [w.entry(base) for w in written]
        total = sum(w.size for w in written)
        rel = directory.relative_to(base)
        message = (
            f"dumped {logs_written} log(s) of pod {target.short()}, its YAML and events "
            f"to {rel} ({_size(total)})"
        )
        if skipped:
            message += f"; no previous log for {len(skipped)} container(s)"
        trouble = ""
        if problems:
            trouble = f"{len(problems)} problem(s): " + "; ".join(problems)
            message += f"; {trouble}"
        result = OK if written and (logs_written or not streams) else FAILED
        containment: list[dict[str, str]] = []
        if result == OK:
            hashes = "; ".join(f"{w.path.name} sha256 {w.sha.hexdigest()}" for w in written)
            detail = f"{len(written)} file(s) in {rel}: {hashes}"
            if problems:
                detail += f" ({len(problems)} problem(s): see the action's record)"
            containment.append(fact(EVIDENCE, target.words(), LOGS_DUMPED, detail))
        return Outcome(
            plan=plan,
            result=result,
            message=message,
            error=trouble,
            files=files,
            undoable=False,
            undo_note="evidence is kept: ktriage never deletes it",
            containment=containment,
        )

    async def plan_undo(self, ctx: ActionContext, record: ActionRecord) -> Plan:
        raise ActionError("evidence is kept: a log dump is not undone")

    async def undo(self, ctx: ActionContext, plan: Plan) -> Outcome:
        raise ActionError("evidence is kept: a log dump is not undone")


def _write_partial_manifest(directory: Path) -> None:
    """`SHA256SUMS.partial`: the SHA-256 of every file of a dump that was stopped, as
    it is on disk now (`sha256sum -c SHA256SUMS.partial` checks them later)."""
    try:
        names = sorted(
            p.name
            for p in directory.iterdir()
            if p.is_file() and not p.is_symlink() and not p.name.startswith(MANIFEST)
        )
        lines = []
        for name in names:
            sha = hashlib.sha256()
            with open(directory / name, "rb") as fh:
                while chunk := fh.read(1 << 20):
                    sha.update(chunk)
            lines.append(f"{sha.hexdigest()}  {name}\n")
        fd = _private_opener(str(directory / PARTIAL_MANIFEST), os.O_WRONLY | os.O_CREAT)
        with os.fdopen(fd, "w") as out:
            out.writelines(lines)
    except OSError:
        pass  # best effort: the dump is being abandoned


def _close(response: Any) -> None:
    """Close a log response; a half-read connection must not go back to the pool."""
    for method in ("close", "release_conn"):
        try:
            getattr(response, method)()
        except Exception:
            pass


def _size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB"):
        if size < 1024 or unit == "MiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"
