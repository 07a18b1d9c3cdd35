"""Falco alerts: JSON-line files, `http_output` / Falcosidekick POSTs, or the logs of
the Falco pods themselves (`--falco auto`, the default when connected to a cluster).

Falco must run with `json_output: true` for its alerts to be JSON lines.
"""

from __future__ import annotations

from pathlib import Path

from ktriage.sources.http import FalcoWebhookSource
from ktriage.sources.kube import Backoff, KubeConnection
from ktriage.sources.podlogs import PodLogSource
from ktriage.sources.tail import FileSource

__all__ = ["FalcoWebhookSource", "falco_file_source", "falco_pod_logs"]


def falco_file_source(
    path: Path | str, *, start: str = "end", since: float | None = None
) -> FileSource:
    """Follow a file Falco writes with `file_output` (one JSON alert per line)."""
    return FileSource(path, "falco", start=start, since=since)


def falco_pod_logs(
    conn: KubeConnection,
    *,
    start: str = "end",
    since: float | None = None,
    backoff: Backoff | None = None,
) -> PodLogSource:
    """Stream the alerts Falco pods print (label app.kubernetes.io/name=falco)."""
    return PodLogSource(conn, "falco", start=start, since=since, backoff=backoff)
