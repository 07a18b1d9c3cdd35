"""The file follower at the edges of the file system: a followed link whose target goes
away, a link loop, a path under a regular file, a log of lines without times, a start
that is neither end nor beginning. Real files, links and directories under tmp."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from test_tail import Collector, append, audit_line, follower
from waiting import wait_for

from ktriage.sources.tail import FileFollower, line_time, offset_for_time


def test_a_start_that_is_neither_end_nor_beginning_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="start must be 'end' or 'beginning', not 'middle'"):
        FileFollower(tmp_path / "audit.log", start="middle")


@pytest.mark.parametrize("line", [b"not json", b"[1, 2]", b'{"no": "time here"}', b"\xff\xfe"])
def test_a_line_without_a_time_has_none(line: bytes) -> None:
    assert line_time(line) is None


def test_since_over_a_log_with_no_times_starts_at_the_beginning(tmp_path: Path) -> None:
    path = tmp_path / "untimed.log"
    path.write_bytes(b"".join(b'{"line": %d}\n' % i for i in range(500)))
    # Nothing to place the cutoff by: read all of it rather than skip what may matter.
    assert offset_for_time(path, 2_000_000_000.0) == 0


async def test_a_link_to_a_log_not_there_yet_waits_for_it(tmp_path: Path) -> None:
    target = tmp_path / "real.log"
    link = tmp_path / "audit.log"
    link.symlink_to(target)  # dangling: the log is made later (a sensor starting up)
    statuses: list[tuple[str, str]] = []
    col = Collector(
        follower(link, start="beginning", on_status=lambda s, m: statuses.append((s, m)))
    ).start()
    await wait_for(
        lambda: (f"waiting for file {link} to appear") in [m for _, m in statuses],
        what=lambda: statuses,
    )
    target.write_bytes(audit_line(1) + b"\n")
    await wait_for(lambda: len(col.lines) == 1, what=lambda: col.lines)
    append(target, audit_line(2) + b"\n")
    await wait_for(lambda: len(col.lines) == 2, what=lambda: col.lines)
    await col.stop()


async def test_hostile_link_loop_at_the_path_is_said_and_not_fatal(tmp_path: Path) -> None:
    link = tmp_path / "audit.log"
    os.symlink(link.name, link)  # a link to itself: ELOOP on every open
    statuses: list[tuple[str, str]] = []
    col = Collector(follower(link, on_status=lambda s, m: statuses.append((s, m)))).start()
    await wait_for(
        lambda: any(s == "reconnecting" and "(a link to" in m for s, m in statuses),
        what=lambda: statuses,
    )
    # A regular file there at last is followed as the link was.
    link.unlink()
    link.write_bytes(b"")
    append(link, audit_line(3) + b"\n")
    await wait_for(lambda: len(col.lines) == 1, what=lambda: (col.lines, statuses))
    await col.stop()


async def test_a_path_under_a_regular_file_is_said_and_not_fatal(tmp_path: Path) -> None:
    blocker = tmp_path / "logs"
    blocker.write_bytes(b"a file where a directory should be")
    path = blocker / "audit.log"
    statuses: list[tuple[str, str]] = []
    col = Collector(follower(path, on_status=lambda s, m: statuses.append((s, m)))).start()
    await wait_for(
        lambda: any(s == "reconnecting" and f"cannot read {path}" in m for s, m in statuses),
        what=lambda: statuses,
    )
    assert col.lines == []
    await col.stop()
