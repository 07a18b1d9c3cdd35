"""Process-wide memory settings for the long-running live UI.

Its modules are imported with the cyclic garbage collector paused
(`core.gcpause.collector_paused`, from `cli.preload_ui_modules` and
`live.run_live`): importing them makes about 130,000 objects that live as long as
the process, and the collections they set off (about 180, one of them full) took
30-40 ms of a start-up of 0.4 s, finding almost nothing to free (2,000 objects).

A big list arrives as replies of a few MiB each, read in worker threads. glibc
serves a block that large with its own mapping and unmaps it when freed, but after
the first such free it raises that threshold to the freed size (its "dynamic mmap
threshold"): the next replies then come from the threads' heaps, which hold on to
the memory after they are freed. With 20,000 pods, that made the peak resident
size 30 MiB higher in one run out of two. A fixed threshold keeps every block of
a MiB or more a mapping of its own, given back when freed. It is set before the
live UI asks for the cluster's first pages (`live.LiveSetup.ask_first_pages`), and
again when the UI starts (for a replay or a demo), and holds for the rest of the
process.
"""

from __future__ import annotations

import ctypes
import sys

# glibc's mallopt parameter for the threshold (malloc.h); setting it turns the
# dynamic adjustment off.
_M_MMAP_THRESHOLD = -3
LARGE_BLOCK = 1 << 20


def return_large_blocks() -> bool:
    """Have blocks of LARGE_BLOCK bytes or more mapped on their own (glibc on Linux);
    whether the setting was taken."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None)
    except OSError:
        return False
    # Not glibc (musl): its allocator differs, so it is left as it is.
    mallopt = getattr(libc, "mallopt", None)
    if mallopt is None or not hasattr(libc, "gnu_get_libc_version"):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, LARGE_BLOCK))
