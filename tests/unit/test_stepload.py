"""A replay loaded slice by slice (the UI's background load) gives exactly what a whole
replay gives: the same events with the same ids and raw records, the same incidents."""

from __future__ import annotations

import gzip
from pathlib import Path

import orjson
from k8s_records import T0, audit, falco, tetragon_exec

from ktriage.core.config import Config
from ktriage.core.correlate import Correlator
from ktriage.core.ingest import MAX_LINE
from ktriage.core.replay import Replayer
from ktriage.core.stepload import SteppedReplay


def _mixed_lines(n: int) -> list[bytes]:
    lines: list[bytes] = []
    for i in range(n):
        t = T0 + i
        if i % 7 == 3:
            lines.append(
                tetragon_exec(t, "/usr/bin/python3", "-m app", namespace="shop", pod=f"web-{i % 5}")
            )
        elif i % 11 == 5:
            lines.append(
                falco(
                    t,
                    "Read sensitive file untrusted",
                    "Warning",
                    namespace="shop",
                    pod="web-1",
                    cmd="cat /etc/shadow",
                )
            )
        else:
            lines.append(
                audit(t, "alice@example.com", "get", "pods", namespace="shop", name=f"web-{i % 5}")
            )
    lines.append(
        audit(
            T0 + n,
            "mallory",
            "create",
            "pods",
            namespace="shop",
            name="web-1",
            subresource="exec",
            code=101,
        )
    )
    return lines


def _write(path: Path, lines: list[bytes], end: bytes = b"\n") -> Path:
    path.write_bytes(end.join(lines) + end)
    return path


def _whole(paths: list[Path]) -> Correlator:
    correlator = Correlator(config=Config())
    Replayer(correlator).replay(paths)
    return correlator


def _stepped(paths: list[Path], slice_bytes: int) -> tuple[Correlator, SteppedReplay, int]:
    correlator = Correlator(config=Config())
    replayer = Replayer(correlator)
    loader = SteppedReplay(
        correlator, replayer.ingestor, replayer.archive, paths, slice_bytes=slice_bytes
    )
    steps = 0
    for _ in loader.steps():
        steps += 1
    return correlator, loader, steps


def _events(correlator: Correlator) -> list[tuple[object, ...]]:
    return [
        (
            ev.id,
            ev.source,
            ev.ref,
            ev.kind,
            ev.severity,
            ev.summary,
            ev.time,
            ev.entities,
            ev.signal,
            ev.label,
            # Archive ids are unique in the process: where in the file is what matters.
            ev.raw[1:] if ev.raw is not None else None,
        )
        for ev in correlator.store
    ]


def _incidents(correlator: Correlator) -> list[tuple[object, ...]]:
    return [
        (inc.id, inc.title, inc.severity, inc.entities, list(inc.timeline))
        for inc in correlator.sorted_incidents()
    ]


def test_sliced_replay_gives_the_same_events_and_incidents_as_a_whole_one(tmp_path):
    # CRLF line ends, blank lines and a BOM on the first line cut at every slice edge.
    lines = _mixed_lines(400)
    lines[0] = b"\xef\xbb\xbf" + lines[0]
    lines.insert(50, b"")
    lines.insert(90, b"   ")
    files = [
        _write(tmp_path / "a.jsonl", lines[:250], b"\r\n"),
        _write(tmp_path / "b.jsonl", lines[250:]),
    ]
    whole = _whole(files)
    stepped, loader, steps = _stepped(files, slice_bytes=700)
    assert steps > 50, "a small slice size cuts the input into many steps"
    assert _events(stepped) == _events(whole)
    assert _incidents(stepped) == _incidents(whole)
    assert whole.incidents, "the exec into a pod opens an incident"
    assert loader.complete and loader.fraction() == 1.0
    # Raw references (compared above) read back the event's own line.
    for ev in list(stepped.store)[1:40]:
        assert ev.raw is not None
        record = orjson.loads(loader.archive.read(ev.raw))
        if ev.source == "audit":
            assert ev.ref.startswith(record["auditID"])


def test_sliced_replay_reads_compressed_files_and_documents_whole(tmp_path):
    lines = _mixed_lines(60)
    gz = tmp_path / "c.jsonl.gz"
    gz.write_bytes(gzip.compress(b"\n".join(lines) + b"\n"))
    doc = tmp_path / "d.json"
    doc.write_bytes(b"[" + b",\n".join(_mixed_lines(30)) + b"]")
    plain = _write(tmp_path / "e.jsonl", _mixed_lines(80))
    files = [gz, doc, plain]
    assert _events(_stepped(files, 512)[0]) == _events(_whole(files))


def test_progress_is_never_complete_before_the_last_step(tmp_path):
    path = _write(tmp_path / "a.jsonl", _mixed_lines(300))
    correlator = Correlator(config=Config())
    replayer = Replayer(correlator)
    loader = SteppedReplay(
        correlator, replayer.ingestor, replayer.archive, [path], slice_bytes=1000
    )
    fractions = []
    for _ in loader.steps():
        assert not loader.complete
        fractions.append(loader.fraction())
    assert loader.complete
    assert fractions == sorted(fractions)
    assert all(f < 1.0 for f in fractions)
    assert loader.fraction() == 1.0


def test_take_changed_hands_every_event_over_once(tmp_path):
    path = _write(tmp_path / "a.jsonl", _mixed_lines(200))
    correlator = Correlator(config=Config())
    replayer = Replayer(correlator)
    loader = SteppedReplay(correlator, replayer.ingestor, replayer.archive, [path], slice_bytes=900)
    seen: list[int] = []
    changed: set[str] = set()
    for _ in loader.steps():
        inc, events = loader.take_changed()
        changed |= inc
        seen.extend(ev.id for ev in events)
    inc, events = loader.take_changed()
    changed |= inc
    seen.extend(ev.id for ev in events)
    assert seen == list(range(1, len(correlator.store) + 1))
    assert set(correlator.incidents) <= changed
    assert loader.newest == max(ev.time for ev in correlator.store)


def test_hostile_oversized_and_binary_lines_cut_by_slices_stay_counted(tmp_path):
    # A line over 1 MiB, invalid UTF-8, a deep nest and a truncated record, between
    # ordinary lines, with slices much smaller than the long line.
    lines = _mixed_lines(40)
    huge = orjson.loads(lines[1])
    huge["requestObject"] = {"pad": "x" * (MAX_LINE + 10)}
    lines[10:10] = [
        orjson.dumps(huge),
        b"\xff\xfe{not utf-8 \x80\x81}",
        b'{"a":' * 5000 + b"1" + b"}" * 5000,
        lines[3][: len(lines[3]) // 2],
    ]
    path = _write(tmp_path / "hostile.jsonl", lines)
    whole = _whole([path])
    stepped, loader, _ = _stepped([path], slice_bytes=4096)
    assert _events(stepped) == _events(whole)
    skipped = loader.ingestor.skipped
    assert skipped["too-long"] == 1
    assert skipped["binary"] == 1
    assert skipped["truncated-json"] == 1


def test_hostile_file_cut_while_loading_keeps_what_was_read(tmp_path):
    # The file shrinks under the loader between two slices (a rotation or truncation):
    # what was read stays, nothing raises, and the load still completes.
    lines = _mixed_lines(300)
    path = _write(tmp_path / "a.jsonl", lines)
    correlator = Correlator(config=Config())
    replayer = Replayer(correlator)
    loader = SteppedReplay(
        correlator, replayer.ingestor, replayer.archive, [path], slice_bytes=2000
    )
    steps = loader.steps()
    next(steps)
    next(steps)
    loaded = len(correlator.store)
    path.write_bytes(b"")
    for _ in steps:
        pass
    assert loader.complete
    assert len(correlator.store) >= loaded > 0
