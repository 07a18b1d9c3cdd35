"""The live UI fixes glibc's mmap threshold (ktriage/procmem.py): a block of a MiB or
more is then a mapping of its own, given back to the system when freed, even after
a big block was freed (which would have raised glibc's own threshold)."""

from __future__ import annotations

import ctypes
import os
import sys
from pathlib import Path

import pytest
from fresh_python import run_fresh

ROOT = Path(__file__).resolve().parents[2]
DRIVER = """
import ctypes, sys
from ktriage.procmem import return_large_blocks

class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
        "uordblks", "fordblks", "keepcost")]

mallinfo2 = ctypes.CDLL(None).mallinfo2
mallinfo2.restype = MallInfo2
if sys.argv[1] == "fixed":
    assert return_large_blocks()
big = bytearray(8 << 20)  # freed: glibc's own threshold would rise to 8 MiB
del big
before = mallinfo2().hblks
blocks = [bytearray(3 << 20) for _ in range(4)]
print(mallinfo2().hblks - before)
"""


def _has_mallinfo2() -> bool:
    return sys.platform.startswith("linux") and hasattr(ctypes.CDLL(None), "mallinfo2")


@pytest.mark.skipif(not _has_mallinfo2(), reason="needs glibc 2.33 or later (Linux)")
def test_large_blocks_stay_mappings_of_their_own_once_fixed() -> None:
    def new_mappings(mode: str) -> int:
        # glibc as it is by default: no threshold or allocator set from outside.
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("MALLOC_") and k not in ("GLIBC_TUNABLES", "LD_PRELOAD")
        }
        env["PYTHONPATH"] = str(ROOT)
        return int(run_fresh(DRIVER, mode, env=env).split()[-1])

    # Without the setting, the four 3 MiB blocks come from the heap (glibc raised its
    # threshold when the 8 MiB block was freed); with it, each is a mapping.
    assert new_mappings("fixed") >= 4
    assert new_mappings("default") < 4


PRELOAD_DRIVER = """
import gc, sys
import ktriage.core.gcpause
from ktriage.cli import preload_ui_modules

counts = []
gc.callbacks.append(lambda phase, info: phase == "start" and counts.append(phase))
assert gc.isenabled()
preload_ui_modules()
print(len(counts), gc.isenabled(), gc.get_freeze_count() > 50_000,
      "ktriage.ui.app" in sys.modules, "ktriage.live" in sys.modules)
"""


def test_the_ui_modules_load_without_a_collection_and_are_frozen() -> None:
    """In a fresh interpreter: importing the UI's modules sets off no collection (about
    180 without the pause), leaves the collector on, and freezes what they made."""
    assert run_fresh(PRELOAD_DRIVER).split() == ["0", "True", "True", "True", "True"]


def test_the_collector_is_put_back_as_it_was_when_the_body_fails() -> None:
    import gc

    from ktriage.core.gcpause import collector_paused

    assert gc.isenabled()
    try:
        with pytest.raises(RuntimeError), collector_paused():
            assert not gc.isenabled()
            raise RuntimeError("import failed")
        assert gc.isenabled()
        gc.disable()
        with collector_paused():
            pass
        assert not gc.isenabled()  # one someone else turned off stays off
    finally:
        gc.enable()
        gc.unfreeze()
