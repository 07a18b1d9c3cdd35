"""Tetragon events: a JSON export file (`--tetragon PATH`, e.g. the
`/var/run/cilium/tetragon/tetragon.log` export), or the `export-stdout`
container of the Tetragon pods (`--tetragon auto`)."""

from __future__ import annotations

from pathlib import Path

from ktriage.sources.kube import Backoff, KubeConnection
from ktriage.sources.podlogs import PodLogSource
from ktriage.sources.tail import FileSource

__all__ = ["tetragon_file_source", "tetragon_pod_logs"]


def tetragon_file_source(
    path: Path | str, *, start: str = "end", since: float | None = None
) -> FileSource:
    return FileSource(path, "tetragon", start=start, since=since)


def tetragon_pod_logs(
    conn: KubeConnection,
    *,
    start: str = "end",
    since: float | None = None,
    backoff: Backoff | None = None,
) -> PodLogSource:
    """Stream the export of Tetragon pods (label app.kubernetes.io/name=tetragon)."""
    return PodLogSource(conn, "tetragon", start=start, since=since, backoff=backoff)
