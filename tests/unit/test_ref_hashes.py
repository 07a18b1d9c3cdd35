"""The store's set of (source, ref) hashes: a Python set while small, then one array."""

from __future__ import annotations

import random

import pytest

from ktriage.core.store import RefHashes


@pytest.mark.parametrize("small_max", [0, 7, 4_500, 1 << 16])
def test_ref_hashes_answer_as_a_set_before_and_after_they_move_to_the_array(
    monkeypatch: pytest.MonkeyPatch, small_max: int
) -> None:
    """Adding says whether a hash is new, membership and size agree with a plain
    set, across the move from the set to the array and its growth; 0 (the array's
    empty mark) and 1 stand for one another, as they always did."""
    monkeypatch.setattr(RefHashes, "SMALL_MAX", small_max)
    rng = random.Random(1204)
    refs = RefHashes()
    model: set[int] = set()
    keys = [rng.getrandbits(64) - (1 << 63) for _ in range(5_000)]
    keys += [0, 1, -1, 1 << 62, 1023, 2047, *keys[:500]]  # collisions and repeats
    rng.shuffle(keys)
    for key in keys:
        stored = key or 1
        assert refs.add(key) == (stored not in model)
        model.add(stored)
        assert len(refs) == len(model)
    assert all(key in refs for key in keys)
    assert sum(rng.getrandbits(64) in refs for _ in range(2_000)) == 0
    if small_max < 5_000:
        assert refs._small is None  # moved to the array
        # As large as growing the array from the start makes it: the same memory.
        size = 1024
        while len(model) * 2 > size - 1:
            size *= 2
        assert len(refs._table) == size
    else:
        assert refs._small is not None
