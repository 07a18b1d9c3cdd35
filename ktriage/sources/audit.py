"""Kubernetes audit events: followed log files and the webhook backend.

- `--audit-log PATH` (repeatable): the API server's log backend
  (`--audit-log-path`), followed across rotations (see `tail.py`).
- `--listen-audit HOST:PORT`: the webhook backend (`--audit-webhook-config-file`),
  POSTs of `audit.k8s.io/v1` EventList batches (see `http.py`).
"""

from __future__ import annotations

from pathlib import Path

from ktriage.sources.http import AuditWebhookSource
from ktriage.sources.tail import FileSource

__all__ = ["AuditWebhookSource", "audit_file_source"]


def audit_file_source(
    path: Path | str, *, start: str = "end", since: float | None = None
) -> FileSource:
    """Follow one audit log file."""
    return FileSource(path, "audit", start=start, since=since)
