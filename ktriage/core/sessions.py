"""The ktriage sessions that ran before this one, so their requests are recognised in a
replay or after a restart (see detect/own.py for why the identity must match too).

`sessions.jsonl` in the state directory: one line per session, written once the
session knows its cluster identity: `{"token", "user", "cluster", "time"}`. The file
is the user's alone (0600); what is read back is bounded (the last MAX_BYTES, lines
of at most MAX_LINE bytes) and every line that is not a well-formed record is
skipped and counted: a damaged file costs recognition, never the run.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

from ktriage.core.detect.own import own_tokens, trust_earlier_session


def default_state_dir() -> Path:
    """`$XDG_STATE_HOME/ktriage` (~/.local/state/ktriage): where the workflow database
    and the sessions file live (here, not in core/workflow.py: every start reads the
    sessions file, and only some need the database and sqlite3)."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "ktriage"


SESSIONS_FILE = "sessions.jsonl"
MAX_BYTES = 2_000_000
MAX_LINE = 1_000
MAX_FIELD = 300


@dataclass
class SessionsRead:
    """What `load_sessions` found: sessions trusted, lines skipped, a problem in words."""

    trusted: int = 0
    skipped: int = 0
    problem: str = ""


def record_session(directory: Path, user: str, cluster: str = "") -> str:
    """Append this process's session(s) with the identity they run as; the problem in
    words when it cannot be written ("" when written, or when there is nothing to
    write)."""
    tokens = own_tokens()
    if not tokens or not user:
        return ""
    lines = "".join(
        json.dumps(
            {
                "token": t,
                "user": user[:MAX_FIELD],
                "cluster": cluster[:MAX_FIELD],
                "time": round(time.time(), 3),
            },
            ensure_ascii=True,
        )
        + "\n"
        for t in tokens
    )
    try:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(directory / SESSIONS_FILE, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        with os.fdopen(fd, "a", encoding="ascii") as out:
            out.write(lines)
    except OSError as exc:
        return f"cannot record this session in {directory}: {exc.strerror or exc}"
    return ""


def load_sessions(directory: Path) -> SessionsRead:
    """Trust the earlier sessions recorded in `directory` (by token and identity)."""
    read = SessionsRead()
    path = directory / SESSIONS_FILE
    try:
        with path.open("rb") as f:
            size = f.seek(0, os.SEEK_END)
            f.seek(max(0, size - MAX_BYTES))
            data = f.read(MAX_BYTES)
    except FileNotFoundError:
        return read
    except OSError as exc:
        read.problem = f"cannot read {path}: {exc.strerror or exc}"
        return read
    lines = data.split(b"\n")
    if len(data) == MAX_BYTES and size > MAX_BYTES:
        lines = lines[1:]  # the first line is cut
    for line in lines:
        if not line.strip():
            continue
        record = _record(line)
        if record is None:
            read.skipped += 1
            continue
        trust_earlier_session(*record)
        read.trusted += 1
    return read


def _record(line: bytes) -> tuple[str, str] | None:
    if len(line) > MAX_LINE:
        return None
    try:
        value = json.loads(line)
    except (ValueError, RecursionError):
        return None
    if not isinstance(value, dict):
        return None
    token, user = value.get("token"), value.get("user")
    if not isinstance(token, str) or not isinstance(user, str):
        return None
    if len(token) != 10 or any(c not in "0123456789abcdef" for c in token) or not user:
        return None
    return token, user
