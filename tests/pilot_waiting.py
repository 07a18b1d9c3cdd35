"""Waiting for a Textual app to reach a state, instead of pausing once and hoping."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


async def until(
    pilot: Any, predicate: Callable[[], object], timeout: float = 5.0, what: str = ""
) -> None:
    """Let the app run until `predicate()` holds; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or 'the condition'}")
        await pilot.pause(0.01)
