"""Waiting for a condition with a deadline, instead of sleeping a guessed time."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any


async def wait_for(
    cond: Callable[[], Any], timeout: float = 20.0, what: Any = "", poll: float = 0.01
) -> None:
    """Poll `cond` until it is true; fail naming `what` (text, or a callable giving
    the text, so the message can show the state at the deadline)."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            said = what() if callable(what) else what
            raise AssertionError(f"timed out after {timeout:g} s waiting for {said or cond}")
        await asyncio.sleep(poll)
