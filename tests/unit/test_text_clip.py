"""Shortening untrusted names for a column: at the end, or in the middle."""

from __future__ import annotations

import pytest

from ktriage.core.text import clip, clip_middle


@pytest.mark.parametrize("width", range(1, 40))
def test_clip_middle_is_never_wider_and_keeps_both_ends(width: int) -> None:
    name = "storefront-7b6b5d8bc4-287pg"
    out = clip_middle(name, width)
    assert len(out) <= max(width, 0)
    if len(name) <= width:
        assert out == name
    elif width >= 3:
        head, _, tail = out.partition("…")
        assert name.startswith(head) and name.endswith(tail) and tail
        assert len(tail) >= len(head)  # the end is what tells replicas apart
    else:
        assert out == clip(name, width)


def test_two_replicas_cut_stay_apart() -> None:
    a, b = (clip_middle(f"storefront-7b6b5d8bc4-{s}", 12) for s in ("dvnml", "rfwxj"))
    assert a != b and a.endswith("nml") and b.endswith("wxj")
