"""The pause of the cyclic collector around a first list's pages (sources/listgc.py):
off unless turned on, only for a first list, and shared by threads decoding at once
(the collector runs again when the last of them is done)."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator

import pytest

from ktriage.sources import listgc


@pytest.fixture
def turned_on() -> Iterator[None]:
    assert gc.isenabled()
    listgc.keep_first_lists_out(True)
    try:
        yield
    finally:
        listgc.keep_first_lists_out(False)
        gc.unfreeze()
        gc.enable()


def test_off_by_default_and_for_later_lists() -> None:
    with listgc.listed_page(True):  # off: a first list's page leaves the collector on
        assert gc.isenabled()
    listgc.keep_first_lists_out(True)
    try:
        with listgc.listed_page(False):
            assert gc.isenabled()
    finally:
        listgc.keep_first_lists_out(False)


def _collected(obj: object) -> bool:
    """Whether the collector's generations hold `obj` (frozen objects are outside)."""
    return any(o is obj for o in gc.get_objects())


def test_a_first_list_page_pauses_then_freezes_what_it_made(turned_on: None) -> None:
    with listgc.listed_page(True):
        assert not gc.isenabled()
        page = [{"metadata": {"name": f"p{i}", "labels": [i]}} for i in range(1000)]
        assert _collected(page)
    assert gc.isenabled()
    assert gc.is_tracked(page) and not _collected(page)  # frozen: never walked again
    assert not _collected(page[500]["metadata"]["labels"])


def test_a_later_list_page_is_left_to_the_collector(turned_on: None) -> None:
    with listgc.listed_page(False):
        page = [{"labels": [i]} for i in range(10)]
    assert _collected(page)


def test_a_page_ending_after_the_pause_was_turned_off_freezes_nothing(
    turned_on: None,
) -> None:
    """The app quit (it turned the pause off and unfroze the heap) while a list thread
    was still decoding: that page's end leaves the heap unfrozen, the collector on."""
    with listgc.listed_page(True):
        page = [{"labels": [i]} for i in range(10)]
        listgc.keep_first_lists_out(False)
        gc.unfreeze()
    assert gc.isenabled()
    assert _collected(page)


def test_an_exception_inside_still_resumes_the_collector(turned_on: None) -> None:
    with pytest.raises(ValueError), listgc.listed_page(True):
        raise ValueError("a page that does not decode")
    assert gc.isenabled()


def test_threads_share_the_pause_until_the_last_page_is_done(turned_on: None) -> None:
    inside = threading.Barrier(2)
    first_done = threading.Event()
    second_may_end = threading.Event()
    seen: dict[str, bool] = {}

    def first() -> None:
        with listgc.listed_page(True):
            inside.wait(5)
        first_done.set()

    def second() -> None:
        with listgc.listed_page(True):
            inside.wait(5)
            first_done.wait(5)
            seen["after the first ended"] = gc.isenabled()
            second_may_end.wait(5)

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    first_done.wait(5)
    second_may_end.set()
    for t in threads:
        t.join(5)
    assert seen["after the first ended"] is False  # the other page was still decoding
    assert gc.isenabled()


def test_a_collector_turned_off_by_someone_else_stays_off(turned_on: None) -> None:
    gc.disable()
    with listgc.listed_page(True):
        pass
    assert not gc.isenabled()
