"""Keeping a big list's first pages out of the cyclic garbage collector's way.

A page of 500 listed pods is decoded into some 30,000 containers (dicts, lists) and
read into as many more objects; the young collections that the decoding sets off
walk every one of them, and again each time they survive one, though JSON makes no
cycles and all of it is freed by reference counting. While the UI runs (it turns
this on with the rest of its collector policy, see ui/app.py), the first list of
each resource is decoded and read with the collector paused, and what it made is
then frozen (`gc.freeze`: never walked again; still freed when its last reference
goes), measured at about a tenth of the time to all 20,000 pods on screen.

What else was freshly made meanwhile is frozen with it: the young garbage is
collected before each page (`gc.collect(1)`), so only cycles made during a page's
decoding (a frame drawn meanwhile) wait until the app exits, as the app's own
periodic freeze lets cycles that outlived a young collection wait. Later lists (a
410 Expired, a reconnect) are decoded as usual, so that cost is paid once per
resource, not once per relist.
"""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Iterator

_lock = threading.Lock()
_open = 0  # pages being decoded now, in any thread
_resume = False  # whether the collector was on when the first of them began
_enabled = False


def keep_first_lists_out(enabled: bool) -> None:
    """Turn the pause on (the UI, while it runs) or off."""
    global _enabled
    _enabled = enabled


@contextlib.contextmanager
def listed_page(first_list: bool) -> Iterator[None]:
    """Decode and read one listed page within this block: with the collector paused
    for a resource's first list (when turned on), its objects frozen at the end."""
    global _open, _resume
    if not (_enabled and first_list):
        yield
        return
    if _open == 0:
        # The young garbage so far is collected, not frozen (not while another
        # thread's page is paused: that would walk it. A stale read costs only time).
        gc.collect(1)
    with _lock:
        if _open == 0:
            _resume = gc.isenabled()
            gc.disable()
        _open += 1
    try:
        yield
    finally:
        with _lock:
            _open -= 1
            if _open == 0:
                # Not once the pause was turned off: the app has quit and unfrozen
                # the heap, and a page that ends after it must not freeze it again.
                if _enabled:
                    gc.freeze()
                if _resume:
                    gc.enable()
