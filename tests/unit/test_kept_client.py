"""KeptClient: the one ApiClient a reader keeps between reads."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from ktriage.kubeclient import KeptClient


class _CountedClient:
    closed = 0

    def close(self) -> None:
        type(self).closed += 1


def test_kept_client_is_made_once_for_every_thread_and_again_after_close() -> None:
    made: list[_CountedClient] = []

    def factory() -> _CountedClient:
        made.append(_CountedClient())
        return made[-1]

    kept = KeptClient(factory)
    assert made == []  # nothing made before first use
    with ThreadPoolExecutor(8) as pool:
        got = list(pool.map(lambda _i: kept.get(), range(32)))
    assert len(made) == 1 and all(client is made[0] for client in got)
    kept.close()
    kept.close()  # a second close has nothing left to close
    assert _CountedClient.closed == 1
    assert kept.get() is not made[0] and len(made) == 2


def test_hostile_client_whose_close_fails_still_lets_go() -> None:
    class Failing:
        def close(self) -> None:
            raise OSError("connection pool already gone")

    kept = KeptClient(Failing)
    first = kept.get()
    kept.close()  # the reader is being closed: a failure here is not the caller's problem
    assert kept.get() is not first
