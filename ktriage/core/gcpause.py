"""Pausing the cyclic garbage collector while many objects that live on are made."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Run the body without the cyclic collector, then freeze what is alive and put
    the collector back as it was.

    For work that makes a great many objects that stay alive and form no garbage
    cycles (a replay filling the store, the UI's modules being imported): the
    collector would walk them again and again (each older-generation pass traverses
    every survivor) and free next to nothing. Frozen (`gc.freeze`), they are kept
    out of every later collection; reference counting still frees them.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if was_enabled:
            gc.enable()
