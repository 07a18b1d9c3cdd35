"""A recurring incident counts the entities of the signals it took all at once
(`_Recurring.settle`): the same as counting each signal's as it came (`add_all`)."""

from __future__ import annotations

import random

import pytest

from ktriage.core import correlate
from ktriage.core.correlate import _Recurring
from ktriage.core.model import EntityKind, entity


@pytest.mark.parametrize("seed", range(6))
def test_settling_at_once_counts_and_lists_as_one_signal_at_a_time(
    monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    monkeypatch.setattr(correlate, "ROLLUP_COUNTED", 60)  # some pods left uncounted
    rng = random.Random(seed)
    nodes = [entity(EntityKind.NODE, "", f"node-{i}") for i in range(4)]
    namespace = entity(EntityKind.NAMESPACE, "", "team-1")
    shared: list[tuple] = []  # tuples signals share (one per pod in parse/falco.py)
    signals = []
    for _ in range(400):
        if shared and rng.random() < 0.3:
            signals.append(rng.choice(shared))
            continue
        pod = entity(EntityKind.POD, "team-1", f"svc-{rng.randrange(150):03d}")
        ents = (pod, entity(EntityKind.CONTAINER, "", f"{rng.getrandbits(48):012x}"))
        ents += (rng.choice(nodes), namespace)[: rng.randint(0, 2)]
        shared.append(ents)
        signals.append(ents)
    key = entity(EntityKind.NAMESPACE, "", "team-1")
    one_by_one = _Recurring(key)
    at_once = _Recurring(key)
    for i, ents in enumerate(signals):
        one_by_one.add_all(ents)
        at_once.take(ents)
        if i in (50, 51, 300):  # settled midway too: lists that already hold some
            at_once.settle()
            assert at_once.listed == one_by_one.listed
    at_once.settle()
    assert at_once.listed == one_by_one.listed
    one_by_one.changed = at_once.changed = False
    at_once.take(signals[0])
    at_once.take(signals[0])
    at_once.settle()  # nothing new: nothing changed
    assert not at_once.changed
    for ents in signals[-5:]:
        at_once.take(ents)
    at_once.take((entity(EntityKind.POD, "team-1", "aaa-first"),))
    at_once.settle()
    one_by_one.add_all((entity(EntityKind.POD, "team-1", "aaa-first"),))
    assert at_once.changed and one_by_one.changed
    assert list(at_once.pods) == list(one_by_one.pods)  # counted in the same order
    assert at_once.more_pods == one_by_one.more_pods
    assert at_once.listed == one_by_one.listed
    assert at_once.entities() == one_by_one.entities()
    assert len(at_once.listed["Pod"]) == correlate.ROLLUP_LISTED
