"""Kind families: one filter word for what means the same across sources."""

from __future__ import annotations

import collections
from pathlib import Path

import pytest
from real_fixtures import REAL_FIXTURES, require_real_fixtures

from ktriage.core.config import Config
from ktriage.core.kinds import FAMILIES, KNOWN_KINDS, families_of, family_of, is_known_kind
from ktriage.engine import Engine


def test_exec_family_holds_the_api_exec_and_runtime_execs() -> None:
    family = family_of("exec")
    assert family is not None
    for kind in ("exec", "attach", "process-exec", "shell", "miner", "download"):
        assert family.matches(kind), kind
    for kind in ("process-exit", "secret-read", "api-request", "network-connect"):
        assert not family.matches(kind), kind


def test_a_kind_may_answer_more_than_one_question() -> None:
    assert set(families_of("reverse-shell")) >= {"exec", "network"}
    assert set(families_of("sa-token-read")) >= {"file", "secret"}
    assert families_of("api-request") == []


def test_known_kinds_and_prefixes() -> None:
    assert is_known_kind("exec") and is_known_kind("EXEC")
    assert is_known_kind("secret")  # a family, and the beginning of secret-read
    assert is_known_kind("process-")
    assert not is_known_kind("exce")
    assert not is_known_kind("x" * 10_000)


def test_every_family_has_help_words_and_a_kind_filter_example() -> None:
    for family in FAMILIES:
        assert family.meaning and len(family.meaning) <= 66
        assert family.example.startswith(f"kind:{family.name}")
        assert family.kinds <= KNOWN_KINDS


def _kinds_of(files: list[Path]) -> collections.Counter[tuple[str, str]]:
    engine = Engine(Config())
    try:
        engine.replay_files(files)
        return collections.Counter((ev.source, ev.kind) for ev in engine.store)
    finally:
        engine.archive.close()


@pytest.mark.parametrize("scenario", ["cryptominer", "token-theft", "hostile", "quiet-day"])
def test_every_kind_a_scenario_produces_is_known(scenario: str, tmp_path: Path) -> None:
    """A detector that starts naming a new kind must give it a family (or list it):
    else `kind:` would call it unknown."""
    from ktriage.ui.screenshots import play_scenario

    kinds = _kinds_of(play_scenario(scenario, tmp_path / "streams"))
    assert kinds
    unknown = {k for _, k in kinds if k not in KNOWN_KINDS and not k.startswith("action-")}
    assert not unknown


def test_every_kind_the_real_fixtures_produce_is_known() -> None:
    root = require_real_fixtures(REAL_FIXTURES)
    files = sorted(p for p in root.rglob("*") if p.suffix in (".json", ".jsonl"))
    kinds = _kinds_of(files)
    assert len(kinds) > 10
    unknown = {k for _, k in kinds if k not in KNOWN_KINDS and not k.startswith("action-")}
    assert not unknown
    # Across the real captures, exec means the API's and the runtime's alike.
    execs = {source for (source, kind) in kinds if family_of("exec").matches(kind)}  # type: ignore[union-attr]
    assert {"audit", "tetragon"} <= execs
