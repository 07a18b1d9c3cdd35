from __future__ import annotations

from ktriage.core.memo import remembered


def test_an_answer_is_made_once_and_kept_in_the_given_cache() -> None:
    cache: dict[str, str] = {}
    made: list[str] = []

    @remembered(cache, 10)
    def shout(text: str) -> str:
        """Upper case."""
        made.append(text)
        return text.upper()

    assert [shout("a"), shout("b"), shout("a")] == ["A", "B", "A"]
    assert made == ["a", "b"]
    assert cache == {"a": "A", "b": "B"}
    assert shout.__doc__ == "Upper case."


def test_a_false_answer_is_remembered_too() -> None:
    cache: dict[str, bool] = {}
    calls: list[str] = []

    @remembered(cache, 10)
    def public(text: str) -> bool:
        calls.append(text)
        return False

    assert public("10.0.0.1") is False
    assert public("10.0.0.1") is False
    assert calls == ["10.0.0.1"]


def test_hostile_unique_key_flood_keeps_the_cache_bounded() -> None:
    # A log naming a new address on every line must not grow memory without end.
    cache: dict[int, int] = {}

    @remembered(cache, 100)
    def double(n: int) -> int:
        return n * 2

    for n in range(10_000):
        assert double(n) == n * 2
        assert len(cache) <= 100
    assert double(9_999) == 19_998
