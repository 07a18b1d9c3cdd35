"""A followed file under rotations that race the follower, against real files:
copy-truncate, truncation then regrowth past the read offset, two renames between
two looks, compressed rotated files, deletion, and things put in the file's place
(a symbolic link, a directory, a pipe, a file we may not read). Every line that was
on disk while the file was followed is read, exactly once and in order; what truly
could not be read is counted as lost, with a sentence."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import os
import random
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_tail import Collector, append, audit_line, follower
from waiting import wait_for

from ktriage.engine import Engine
from ktriage.sources.tail import LOST_ON_ROTATION, FileSource, rotated_name


def numbered(start: int, stop: int, pad: int = 40) -> list[bytes]:
    return [b"line-%06d-" % i + b"x" * pad for i in range(start, stop)]


def text(lines: list[bytes]) -> bytes:
    return b"".join(line + b"\n" for line in lines)


def copytruncate(path: Path, keep: int = 3) -> None:
    """What logrotate's `copytruncate` does: shift the older copies, copy the live file
    to `name.1`, then truncate the live file in place (its writers go on writing)."""
    for n in range(keep - 1, 0, -1):
        older = path.with_name(f"{path.name}.{n}")
        if older.exists():
            os.replace(older, path.with_name(f"{path.name}.{n + 1}"))
    shutil.copyfile(path, path.with_name(f"{path.name}.1"))
    with open(path, "r+b") as fh:
        fh.truncate(0)


def gzip_away(path: Path) -> Path:
    """Compress a rotated file the way a rotator does: write `.gz`, remove the original."""
    target = path.with_name(path.name + ".gz")
    target.write_bytes(gzip.compress(path.read_bytes()))
    path.unlink()
    return target


def test_rotated_names() -> None:
    assert rotated_name("audit.log", "audit-2027-01-15T10-00-00.000.log")
    assert rotated_name("audit.log", "audit-2027-01-15T10-00-00.000.log.gz")
    assert rotated_name("falco.jsonl", "falco.jsonl.1")
    assert rotated_name("falco.jsonl", "falco.jsonl.2.gz")
    assert rotated_name("falco.jsonl", "falco.jsonl-20270115")
    # Other logs next to it are not its rotations.
    assert not rotated_name("audit.log", "audit-webhook.log")
    assert not rotated_name("audit.log", "audit.log")
    assert not rotated_name("audit.log", "kube-apiserver.log")
    assert not rotated_name("falco.jsonl", "falco.jsonl.bak")


async def test_hostile_rotation_copytruncate_loses_nothing(tmp_path: Path) -> None:
    path = tmp_path / "falco.jsonl"
    path.write_bytes(b"")
    f = follower(path, start="beginning")
    col = Collector(f).start()
    await col.idle_once_more()  # following from here on
    expected = numbered(0, 1200)
    rng = random.Random(7)
    for gen in range(24):
        batch = expected[gen * 50 : (gen + 1) * 50]
        for i in range(0, 50, 10):
            append(path, text(batch[i : i + 10]))
            if rng.random() < 0.5:
                await asyncio.sleep(0)  # sometimes the follower gets to read some
        # Often it has not read the last lines when the file is copied and truncated,
        # or not even looked at the file since the previous truncation.
        copytruncate(path)
        if gen % 2:
            # Rotated copies are kept 3 deep: the follower looks at least every 2.
            await col.idle_once_more()
    await wait_for(lambda: len(col.lines) >= 1200, what=lambda: f"{len(col.lines)} of 1200")
    await col.idle_once_more()
    assert col.lines == expected
    # Some lines could only be read from the copies.
    assert f.recovered + f.intermediates >= 1
    await col.stop()


async def test_hostile_rotation_copytruncate_mid_read_with_a_compressed_copy(
    tmp_path: Path,
) -> None:
    path = tmp_path / "audit.log"
    old = numbered(0, 20_000)
    path.write_bytes(text(old))
    f = follower(path, start="beginning", chunk_size=64 * 1024)
    agen = f.batches()
    got = [line for _, line in await agen.__anext__()]
    assert 0 < len(got) < 20_000
    # Copied (and the copy compressed at once), truncated, written again past the
    # offset we had reached, all before the follower reads its next chunk.
    copytruncate(path)
    gzip_away(path.with_name("audit.log.1"))
    new = numbered(50_000, 52_000, pad=400)
    append(path, text(new))
    assert path.stat().st_size > f.offset
    async with asyncio.timeout(20):
        while len(got) < len(old) + len(new):
            got.extend(line for _, line in await agen.__anext__())
    await agen.aclose()
    assert got == old + new
    assert f.truncations == 1 and f.recovered == 1


async def test_hostile_rotation_truncate_then_regrow_past_the_old_offset(tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    old = numbered(0, 600)
    path.write_bytes(b"")
    engine = Engine()
    src = FileSource(path, "falco", start="beginning", poll_interval=0.01)
    col = Collector(src.follower).start()
    append(path, text(old))
    await wait_for(lambda: len(col.lines) == 600)
    # Truncated and written again, longer than before, before the follower looks.
    new = numbered(1000, 1302, pad=100)
    with open(path, "r+b") as fh:
        fh.truncate(0)
        fh.write(text(new))
    assert path.stat().st_size > src.follower.offset
    await wait_for(lambda: len(col.lines) >= 902, what=lambda: f"{len(col.lines)} of 902")
    await col.idle_once_more()
    assert col.lines == old + new
    assert src.follower.truncations == 1
    # Everything had been read before the truncation: nothing is counted lost, and
    # health says what happened.
    assert src.health.skipped[LOST_ON_ROTATION] == 0
    assert "was truncated at byte" in src.health.last_error
    await col.stop()
    engine.archive.close()


async def test_hostile_rotation_replaced_in_place_mid_read(tmp_path: Path) -> None:
    """Truncated and rewritten between two chunk reads, with no copy anywhere: no line
    is pieced together from the old and the new content."""
    path = tmp_path / "audit.log"
    old = numbered(0, 20_000)
    path.write_bytes(text(old))
    f = follower(path, start="beginning", chunk_size=64 * 1024)
    agen = f.batches()
    got = [line for _, line in await agen.__anext__()]
    seen_old = len(got)
    new = numbered(50_000, 60_000, pad=100)
    with open(path, "r+b") as fh:
        fh.truncate(0)
        fh.write(text(new))
    async with asyncio.timeout(20):
        while len(got) < seen_old + len(new):
            got.extend(line for _, line in await agen.__anext__())
    await agen.aclose()
    assert got == old[:seen_old] + new


async def test_hostile_rotation_two_renames_between_two_looks(tmp_path: Path) -> None:
    """kube-apiserver's rotation (`audit.log` → `audit-<time>.log`) twice before the
    follower looks again: the middle file, never at the path when looked at, is read."""
    path = tmp_path / "audit.log"
    ancient = tmp_path / "audit-2027-01-01T00-00-00.000.log"
    ancient.write_bytes(b"ancient-1\nancient-2\n")
    os.utime(ancient, (1_700_000_000, 1_700_000_000))  # rotated long before
    path.write_bytes(b"")
    f = follower(path, start="beginning")
    col = Collector(f).start()
    writer = open(path, "ab", buffering=0)
    writer.write(text(numbered(0, 100)))
    await wait_for(lambda: len(col.lines) == 100)
    # No await from here on: the follower cannot look in between.
    os.rename(path, tmp_path / "audit-2027-01-15T10-00-00.000.log")
    writer.write(text(numbered(100, 150)))  # in flight to the renamed file
    writer.close()
    with open(path, "ab") as middle:
        middle.write(text(numbered(150, 450)))
    os.rename(path, tmp_path / "audit-2027-01-15T10-00-00.400.log")
    path.write_bytes(text(numbered(450, 600)))
    await wait_for(lambda: len(col.lines) >= 600, what=lambda: f"{len(col.lines)} of 600")
    await col.idle_once_more()
    assert col.lines == numbered(0, 600)
    assert f.intermediates == 1 and f.rotations == 2
    await col.stop()


async def test_hostile_rotation_compressed_rotations_read_once(tmp_path: Path) -> None:
    """Two rotations, both rotated files compressed before the follower looks: the
    middle one is read from its `.gz`; the one followed is not read a second time."""
    path = tmp_path / "audit.log"
    path.write_bytes(text(numbered(0, 100)))
    f = follower(path, start="beginning")
    col = Collector(f).start()
    await wait_for(lambda: len(col.lines) == 100)
    first = tmp_path / "audit-2027-01-15T10-00-00.000.log"
    os.rename(path, first)
    path.write_bytes(text(numbered(100, 300)))
    middle = tmp_path / "audit-2027-01-15T10-00-00.400.log"
    os.rename(path, middle)
    gzip_away(middle)
    gzip_away(first)
    path.write_bytes(text(numbered(300, 400)))
    await wait_for(lambda: len(col.lines) >= 400, what=lambda: f"{len(col.lines)} of 400")
    await col.idle_once_more()
    assert col.lines == numbered(0, 400)
    await col.stop()


async def test_hostile_rotation_deleted_and_recreated(tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    path.write_bytes(b"")
    f = follower(path, start="beginning")
    col = Collector(f).start()
    writer = open(path, "ab", buffering=0)
    writer.write(text(numbered(0, 10)))
    await wait_for(lambda: len(col.lines) == 10)
    path.unlink()
    writer.write(text(numbered(10, 20)))  # to the deleted file, still open
    writer.close()
    await wait_for(lambda: len(col.lines) == 20, what="lines written after the unlink")
    path.write_bytes(text(numbered(20, 30)))
    await wait_for(lambda: len(col.lines) >= 30)
    assert col.lines == numbered(0, 30)
    await col.stop()


async def test_hostile_rotation_lost_line_is_counted_and_said(tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    path.write_bytes(b"")
    engine = Engine()
    src = FileSource(path, "audit", start="beginning", poll_interval=0.01)
    engine.add_source(src)
    await engine.start()
    try:
        half = audit_line(4)[:100]
        append(path, b"\n".join(audit_line(i) for i in (1, 2, 3)) + b"\n" + half)
        await wait_for(lambda: src.health.events_total == 3)
        await wait_for(lambda: src.follower.offset == path.stat().st_size)
        # Truncated with no copy kept: the unfinished line's start is gone for good.
        with open(path, "r+b") as fh:
            fh.truncate(0)
        append(path, audit_line(5) + b"\n" + audit_line(6) + b"\n")
        await wait_for(lambda: src.health.events_total == 5, what="events after truncation")
        assert src.health.skipped[LOST_ON_ROTATION] == 1
        _, reason, why = src.ingestor.skip_log[-1]
        assert reason == LOST_ON_ROTATION and "100 bytes" in why and "truncated" in why
        assert src.health.state == "connected"
    finally:
        await engine.stop()
        engine.archive.close()


async def test_hostile_rotation_replaced_by_a_symlink(tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    secret = tmp_path / "elsewhere.txt"
    secret.write_bytes(b"not-for-you-1\nnot-for-you-2\n")
    path.write_bytes(text(numbered(0, 5)))
    statuses: list[tuple[str, str]] = []
    f = follower(path, start="beginning", on_status=lambda s, m: statuses.append((s, m)))
    col = Collector(f).start()
    await wait_for(lambda: len(col.lines) == 5)
    path.unlink()
    path.symlink_to(secret)
    await wait_for(lambda: any("symbolic link" in m for _, m in statuses), what="a clear word")
    state, message = statuses[-1]
    assert state == "failed" and "elsewhere.txt" in message and "not followed" in message
    assert not any(b"not-for-you" in line for line in col.lines)
    # Fixed: a regular file is back, and followed from its start.
    path.unlink()
    path.write_bytes(text(numbered(5, 8)))
    await wait_for(lambda: len(col.lines) >= 8)
    assert col.lines == numbered(0, 8)
    assert statuses[-1] == ("connected", "")
    await col.stop()


async def test_a_path_that_is_a_symlink_from_the_start_is_followed(tmp_path: Path) -> None:
    """/var/log/containers/*.log are links: those are followed, rotations included."""
    target = tmp_path / "real.log"
    target.write_bytes(text(numbered(0, 3)))
    path = tmp_path / "link.log"
    path.symlink_to(target)
    col = Collector(follower(path, start="beginning")).start()
    await wait_for(lambda: col.lines == numbered(0, 3))
    append(target, text(numbered(3, 4)))
    await wait_for(lambda: col.lines == numbered(0, 4))
    await col.stop()


async def test_hostile_rotation_directory_in_its_place(tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    path.write_bytes(text(numbered(0, 3)))
    statuses: list[tuple[str, str]] = []
    f = follower(path, start="beginning", on_status=lambda s, m: statuses.append((s, m)))
    col = Collector(f).start()
    await wait_for(lambda: len(col.lines) == 3)
    os.rename(path, tmp_path / "audit-2027-01-15T10-00-00.000.log")
    path.mkdir()
    await wait_for(lambda: any("is a directory" in m for _, m in statuses), what="a clear word")
    assert statuses[-1][0] == "failed"
    path.rmdir()
    path.write_bytes(text(numbered(3, 6)))
    await wait_for(lambda: len(col.lines) >= 6)
    assert col.lines == numbered(0, 6)
    assert statuses[-1] == ("connected", "")
    await col.stop()


async def test_hostile_rotation_pipe_in_its_place(tmp_path: Path) -> None:
    """A FIFO at the path would block a reader forever: refused, and stop is prompt."""
    path = tmp_path / "audit.log"
    os.mkfifo(path)
    statuses: list[tuple[str, str]] = []
    f = follower(path, on_status=lambda s, m: statuses.append((s, m)))
    col = Collector(f).start()
    await wait_for(lambda: any("not a regular file" in m for _, m in statuses))
    await col.stop()  # within its 2 s


@contextlib.contextmanager
def unprivileged() -> Iterator[None]:
    """Run as nobody for a while when running as root (root may read any file)."""
    if os.geteuid() != 0:
        yield
        return
    os.setegid(65534)
    os.seteuid(65534)
    try:
        yield
    finally:
        os.seteuid(0)
        os.setegid(0)


async def test_hostile_rotation_permission_denied_then_fixed() -> None:
    if not hasattr(os, "seteuid"):
        pytest.skip("no seteuid on this platform")
    # A directory any user can reach (pytest's tmp_path is private to its owner).
    where = Path(tempfile.mkdtemp(prefix="ktriage-perm-"))
    try:
        where.chmod(0o755)
        path = where / "audit.log"
        path.write_bytes(text(numbered(0, 3)))
        path.chmod(0o000)
        statuses: list[tuple[str, str]] = []
        with unprivileged():
            f = follower(path, start="beginning", on_status=lambda s, m: statuses.append((s, m)))
            col = Collector(f).start()
            await wait_for(lambda: any("Permission denied" in m for _, m in statuses))
        state, message = statuses[-1]
        assert state == "reconnecting" and str(path) in message
        assert col.lines == []
        path.chmod(0o644)  # fixed
        with unprivileged():
            await wait_for(lambda: col.lines == numbered(0, 3), what="lines once readable")
            assert statuses[-1] == ("connected", "")
            await col.stop()
    finally:
        shutil.rmtree(where, ignore_errors=True)


async def test_hostile_rotation_file_source_keeps_every_audit_event(tmp_path: Path) -> None:
    """The same races through a FileSource and the engine: every audit event written
    is stored once, across a copy-truncate and two quick renames."""
    path = tmp_path / "audit.log"
    path.write_bytes(b"")
    engine = Engine()
    src = FileSource(path, "audit", start="beginning", poll_interval=0.01)
    engine.add_source(src)
    await engine.start()
    try:
        await wait_for(lambda: src.health.state == "connected")

        def write(ids: range) -> None:
            append(path, b"".join(audit_line(i) + b"\n" for i in ids))

        write(range(0, 50))
        await wait_for(lambda: src.health.events_total == 50)
        write(range(50, 80))
        copytruncate(path)  # before the follower has read 50..79
        write(range(80, 100))
        os.rename(path, tmp_path / "audit-2027-01-15T10-00-00.000.log")
        write(range(100, 130))
        os.rename(path, tmp_path / "audit-2027-01-15T10-00-00.400.log")
        write(range(130, 150))
        await wait_for(
            lambda: src.health.events_total >= 150, what=lambda: f"{src.health.events_total}"
        )
        assert sorted(e.ref for e in engine.store) == sorted(
            f"id-{i}:ResponseComplete" for i in range(150)
        )
        assert src.health.skipped[LOST_ON_ROTATION] == 0
    finally:
        await engine.stop()
        engine.archive.close()


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_hostile_rotation_random_races_lose_nothing(tmp_path: Path, seed: int) -> None:
    """Appends (some in two halves), copy-truncates, renames, and compressions of
    rotated files in a random order, up to two of them between two looks of the
    follower, with chunk sizes down to 64 bytes: every line is read, exactly once."""
    rng = random.Random(seed)
    path = tmp_path / "audit.log"
    path.write_bytes(b"")
    col = Collector(follower(path, start="beginning", chunk_size=rng.choice([64, 4096]))).start()
    await col.idle_once_more()
    written = 0
    renamed: list[Path] = []
    for step in range(150):
        if step % 3 == 2:
            if not path.exists():
                path.write_bytes(b"")  # the writer re-creates it
            await col.idle_once_more()
        op = rng.random()
        if op < 0.55:
            k = rng.randint(1, 8)
            data = text(numbered(written, written + k))
            written += k
            cut = rng.randint(1, len(data) - 1) if rng.random() < 0.3 else len(data)
            append(path, data[:cut])
            if cut < len(data):
                await asyncio.sleep(0)
                append(path, data[cut:])
        elif op < 0.7 and path.exists():
            copytruncate(path, keep=50)
        elif op < 0.85 and path.exists():
            renamed.append(tmp_path / f"audit-2027-01-15T10-{step // 60:02d}-{step % 60:02d}.log")
            os.rename(path, renamed[-1])
        elif op < 0.9 and any(p.exists() for p in renamed):
            gzip_away(rng.choice([p for p in renamed if p.exists()]))
        else:
            await asyncio.sleep(0)
    if not path.exists():
        path.write_bytes(b"")
    await col.idle_once_more()
    await col.idle_once_more()
    assert sorted(col.lines) == numbered(0, written)  # all of them, none twice
    await col.stop()
