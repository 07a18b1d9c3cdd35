"""A focused replay gives exactly what a full replay gives, for less work."""

from __future__ import annotations

import importlib.util
import json
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest
from focus_edge_cases import EDGE_CASES
from hypothesis import given, settings
from hypothesis import strategies as st
from real_fixtures import require_real_fixtures

from ktriage.core import focus
from ktriage.core import replay as replay_module
from ktriage.core.correlate import Correlator
from ktriage.core.detect import tetragon as detect_tetragon
from ktriage.core.parse import tetragon, to_epoch
from ktriage.core.replay import Replayer
from ktriage.core.report import incident_json_line
from ktriage.sim.audit import AuditWriter
from ktriage.sim.clock import ManualClock
from ktriage.sim.outputs import SimOutputs
from ktriage.sim.scenario.format import load_scenario
from ktriage.sim.scenario.player import ScenarioPlayer
from ktriage.sim.storage.store import ClusterStore

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT.parent / "shared" / "fixtures" / "real"


def _replay(
    paths: list[Path], *, focus: bool, parallel: bool = False
) -> tuple[list[bytes], dict, Replayer]:
    correlator = Correlator()
    replayer = Replayer(
        correlator, focus=focus, focus_min_bytes=0, parallel=parallel, parallel_min_bytes=0
    )
    replayer.replay(paths)
    lines = [
        incident_json_line(i, correlator.events_of(i.id)) for i in correlator.sorted_incidents()
    ]
    return lines, dict(replayer.ingestor.skipped), replayer


def _assert_same(paths: list[Path]) -> Replayer:
    full, full_skips, full_replayer = _replay(paths, focus=False)
    focused, focused_skips, replayer = _replay(paths, focus=True)
    assert focused == full
    assert focused_skips == full_skips
    # Where each skip was (file and line) and why, in order.
    assert replayer.ingestor.skip_log == full_replayer.ingestor.skip_log
    # Pass 1 shared with a helper process (as `ktriage replay` does for large files).
    shared, shared_skips, shared_replayer = _replay(paths, focus=True, parallel=True)
    assert shared == full
    assert shared_skips == full_skips
    assert shared_replayer.ingestor.skip_log == full_replayer.ingestor.skip_log
    assert shared_replayer.stats == replayer.stats
    return replayer


def _benchmark_module():
    spec = importlib.util.spec_from_file_location("replay_bench", ROOT / "benchmarks" / "replay.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generated_cluster_traffic_gives_the_same_incidents(tmp_path: Path) -> None:
    path = tmp_path / "mixed.jsonl"
    _benchmark_module().generate(path, 30_000)
    replayer = _assert_same([path])
    # Most lines were checked and left out, so the test is about the focused path.
    assert replayer.stats.unrelated > 20_000
    assert len(replayer.correlator.store) < 10_000


def test_bad_and_untimed_lines_are_skipped_and_placed_the_same(tmp_path: Path) -> None:
    path = tmp_path / "mixed.jsonl"
    _benchmark_module().generate(path, 5_000)
    lines = path.read_bytes().splitlines()
    rng = random.Random(3)
    untimed = json.loads(lines[10])
    for key in ("stageTimestamp", "requestReceivedTimestamp"):
        untimed.pop(key, None)
    bad = [
        b'{"kind":"Event","auditID":"x","verb":',
        b"\x00\xffgarbage",
        b'{"kind":"Event","auditID":"y","verb":"get","stageTimestamp":12,"user":5}',
        b'{"kind":"Event","auditID":"z","verb":"get","stageTimestamp":"not a time"}',
        json.dumps(untimed).encode(),
        b'{"process_exit":{"process":{"binary":"/bin/true"}},"time":"yesterday"}',
    ]
    for item in bad:
        lines.insert(rng.randrange(len(lines)), item)
    path.write_bytes(b"\n".join(lines) + b"\n")
    _assert_same([path])


@pytest.mark.parametrize("scenario", ["cryptominer", "token-theft", "quiet-day"])
def test_scenario_streams_give_the_same_incidents(tmp_path: Path, scenario: str) -> None:
    clock = ManualClock(1_790_000_000.0)
    outputs = SimOutputs(tmp_path)
    player = ScenarioPlayer(
        load_scenario(scenario),
        store=ClusterStore(clock),
        audit=AuditWriter(outputs, clock),
        outputs=outputs,
        clock=clock,
    )
    player.play_all()
    outputs.close()
    _assert_same([outputs.audit_path, outputs.falco_path, outputs.tetragon_path])


def test_real_captured_lines_give_the_same_incidents() -> None:
    require_real_fixtures(FIXTURES)
    paths = sorted(FIXTURES.glob("k8s-audit-v1/*.jsonl")) + sorted(FIXTURES.glob("falco-alerts/*"))
    assert paths
    _assert_same(paths)


def test_lines_near_the_edge_of_the_quick_checks_give_the_same_incidents(tmp_path: Path) -> None:
    """Lines built to sit just inside or outside what pass 1 may leave out."""
    path = tmp_path / "mixed.jsonl"
    _benchmark_module().generate(path, 3_000)
    lines = path.read_bytes().splitlines()
    t = "2026-09-21T14:20:00.000000Z"
    container = {"id": "containerd://" + "ab" * 32, "name": "app", "pid": 7}
    pod = {"namespace": "shop", "name": "storefront-7d9f8-x2kq", "container": container}
    edge = [
        # A shell exec and an exit in one line: read as the exec, a signal.
        {
            "process_exec": {"process": {"binary": "/bin/sh", "pod": pod}},
            "process_exit": {"process": {"binary": "/bin/true", "pod": pod}},
            "time": t,
        },
        # An ordinary exec whose arguments read a token: a signal.
        {
            "process_exec": {
                "process": {
                    "binary": "/usr/bin/python3",
                    "arguments": "-c open('/var/run/secrets/kubernetes.io/serviceaccount/token')",
                    "pod": pod,
                }
            },
            "time": t,
        },
        # An exit of a container that has an empty id: linked by its docker id.
        {
            "process_exit": {
                "process": {
                    "binary": "/bin/date",
                    "docker": "cd" * 16,
                    "pod": {"namespace": "dev", "name": "app-01", "container": {"id": ""}},
                }
            },
            "time": t,
        },
        # Falco's own notice, and a Debug alert that names a pod (context, linked).
        {
            "time": t,
            "rule": "Falco internal: syscall event drop",
            "priority": "Debug",
            "source": "syscall",
            "hostname": "node-a",
            "output": "drops",
            "output_fields": {"n_drops": 5},
        },
        {
            "time": t,
            "rule": "Some debug rule",
            "priority": "Debug",
            "source": "syscall",
            "hostname": "node-a",
            "output": "debug",
            "output_fields": {"k8s.ns.name": "shop", "k8s.pod.name": "storefront-7d9f8-x2kq"},
        },
        # Audit: a bound service-account token naming the attacked pod; a record
        # with kind first but no auditID; one whose only time is not RFC 3339.
        {
            "kind": "Event",
            "auditID": "bound-1",
            "verb": "get",
            "user": {
                "username": "system:serviceaccount:shop:storefront",
                "extra": {"authentication.kubernetes.io/pod-name": ["storefront-7d9f8-x2kq"]},
            },
            "objectRef": {"resource": "configmaps", "namespace": "shop", "name": "c"},
            "sourceIPs": ["198.51.100.7"],
            "stageTimestamp": t,
        },
        {
            "kind": "Event",
            "verb": "get",
            "user": {"username": "mallory"},
            "objectRef": {"resource": "configmaps", "namespace": "shop", "name": "c"},
            "stageTimestamp": t,
        },
        {
            "kind": "Event",
            "auditID": "epoch-1",
            "verb": "list",
            "user": {"username": "mallory"},
            "objectRef": {"resource": "configmaps", "namespace": "shop"},
            "stageTimestamp": 1_790_000_400,
        },
        {
            "kind": "Event",
            "auditID": "bad-agent",
            "verb": "list",
            "user": {"username": "mallory"},
            "userAgent": 7,
            "stageTimestamp": t,
        },
    ]
    rng = random.Random(5)
    for item in edge:
        lines.insert(rng.randrange(len(lines)), json.dumps(item).encode())
    path.write_bytes(b"\n".join(lines) + b"\n")
    _assert_same([path])


_RFC3339ISH = st.from_regex(
    r"\A[0-9]{4}-[01][0-9]-[0-3][0-9][Tt ][0-2][0-9]:[0-5][0-9]:[0-6][0-9]"
    r"(\.[0-9]{0,12})?([Zz]|[+-][0-2][0-9]:?[0-5][0-9])?\Z"
)


@settings(max_examples=300, deadline=None)
@given(stamp=st.one_of(_RFC3339ISH, st.text(max_size=40)))
def test_a_time_pass_one_accepts_is_one_the_parsers_read(stamp: str) -> None:
    """Pass 1 lets msgspec read stageTimestamp and Tetragon's time; whatever it
    accepts within the years it leaves out, the parsers must read too, or a skipped
    line would go uncounted. Outside them (the parsers refuse a time out of range)
    the line takes the full path."""
    for decode, field in (
        (focus._PLAIN_AUDIT_DECODE, "stageTimestamp"),
        (focus._PLAIN_TETRAGON_DECODE, "time"),
    ):
        try:
            rec = decode(json.dumps({field: stamp}).encode())
        except (msgspec.DecodeError, ValueError):
            continue
        assert getattr(rec, field) is not None
        low, high = focus._PLAIN_YEARS
        if low < getattr(rec, field).year < high:
            assert to_epoch(stamp) is not None, stamp


_BINARIES = [
    *sorted(detect_tetragon.SUSPECT_EXEC_BINARIES),
    "python3",
    "node",
    "date",
    "env",
    "shx",
    "",
]


@settings(max_examples=500, deadline=None)
@given(
    binary=st.sampled_from(_BINARIES),
    parent=st.sampled_from([*_BINARIES, "containerd-shim", "runc"]),
    directory=st.sampled_from(["/bin/", "/usr/local/bin/", "", "./"]),
    args=st.lists(
        st.sampled_from(
            [
                "-c",
                "stratum+tcp://pool:3333",
                "-t 1",
                "--target=1",
                "| sh",
                "-o /tmp/x",
                *detect_tetragon.SUSPECT_EXEC_ARGUMENTS,
                "plain",
                "/etc/passwd",
                # pieces that complete a detection started by another piece
                ">&",
                "0>&1",
                "-i",
                "-e /bin/sh",
                "> /var/log/auth.log",
                "u+s",
                "4755",
                "user@203.0.113.9:~",
                "-R",
                "scp -t",
            ]
        ),
        max_size=3,
    ),
    in_pod=st.booleans(),
    pid=st.sampled_from([1, 7, None]),
)
def test_pass_one_never_leaves_out_an_exec_the_parser_calls_a_signal(
    binary: str, parent: str, directory: str, args: list[str], in_pod: bool, pid: int | None
) -> None:
    proc = tetragon.TProcess(
        binary=directory + binary if binary else None,
        arguments=" ".join(args) or None,
        pod=tetragon.TPod(name="p", container=tetragon.TContainer(pid=pid)) if in_pod else None,
    )
    par = tetragon.TParent(binary="/bin/" + parent)
    if detect_tetragon.classify_exec(proc, par) is not None:
        assert focus._exec_might_signal(proc)


def _untimed_exec(length: int) -> bytes:
    """An exec into the attacked pod with no time of its own, `length` bytes long."""
    record = {
        "kind": "Event",
        "auditID": "untimed-exec",
        "stage": "ResponseComplete",
        "verb": "create",
        "user": {"username": "mallory"},
        "objectRef": {
            "resource": "pods",
            "subresource": "exec",
            "namespace": "shop",
            "name": "storefront-7d9f8-x2kq",
        },
        "responseStatus": {"code": 101},
        "pad": "",
    }
    line = json.dumps(record).encode()
    record["pad"] = "x" * (length - len(line))
    line = json.dumps(record).encode()
    assert len(line) == length
    return line


def test_an_untimed_record_where_the_file_is_split_is_placed_as_in_one_pass(
    tmp_path: Path,
) -> None:
    path = tmp_path / "mixed.jsonl"
    _benchmark_module().generate(path, 4_000)
    data = path.read_bytes()
    lines = data.splitlines(keepends=True)
    split = data.index(b"\n", len(data) // 2) + 1  # where the helper's part starts
    at = data.count(b"\n", 0, split)
    assert len(lines[at - 1]) > 300  # the line before it is an ordinary timed one
    lines[at] = _untimed_exec(len(lines[at]) - 1) + b"\n"
    path.write_bytes(b"".join(lines))
    replayer = _assert_same([path])
    assert replayer.stats.lines == 4_000


@pytest.mark.parametrize("pad", [0, 5_000], ids=["plain-line-sent", "plain-time-sent"])
def test_untimed_records_after_thousands_of_failed_lines_are_placed_as_in_one_pass(
    tmp_path: Path, pad: int
) -> None:
    """A line left out before each full line gives its time only when an untimed
    record asks for it, here after 3,000 full lines that gave no event; the helper
    sends such a line as it is, or its time when the line is long (`pad`)."""
    timed = json.loads(EDGE_CASES["untimed_null_stage"].splitlines()[0])
    timed["userAgent"] = "x" * pad
    enc = lambda d: json.dumps(d, separators=(",", ":")).encode()  # noqa: E731
    lines = []
    for i in range(3_000):
        minute, second = divmod(i, 60)
        stamp = f"2024-05-01T1{minute // 60}:{minute % 60:02d}:{second:02d}.000000Z"
        lines.append(enc(dict(timed, auditID=f"p{i}", stageTimestamp=stamp)))
        lines.append(b'{"kind":"Event","auditID":' + str(i).encode() + b",broken")
    lines.append(_untimed_exec(400))
    path = tmp_path / "failed.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    replayer = _assert_same([path])
    assert sum(replayer.ingestor.skipped.values()) == 3_000, replayer.ingestor.skipped


def _watch_helper_results(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """The helpers' results (`_Helper.result`), as they come."""
    results: list[object] = []
    result = replay_module._Helper.result

    def watched(helper: replay_module._Helper, timeout: float) -> object:
        results.append(result(helper, timeout))
        return results[-1]

    monkeypatch.setattr(replay_module._Helper, "result", watched)
    return results


def test_a_failed_helper_leaves_the_replay_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "mixed.jsonl"
    _benchmark_module().generate(path, 4_000)
    full, full_skips, _ = _replay([path], focus=False)

    def broken(*_args: object) -> None:
        raise MemoryError("the helper ran out of memory")

    monkeypatch.setattr(replay_module, "_first_pass_from", broken)
    results = _watch_helper_results(monkeypatch)
    shared, shared_skips, replayer = _replay([path], focus=True, parallel=True)
    assert results == [None]  # the helper failed, and the replay read its part itself
    assert shared == full
    assert shared_skips == full_skips
    assert replayer.stats.lines == 4_000


@pytest.mark.parametrize("case", sorted(EDGE_CASES))
def test_lines_a_review_built_to_break_it_give_the_same_incidents(
    tmp_path: Path, case: str
) -> None:
    """Held exec requests released by plain lines or kept to the end, a pod named
    only in the response, untimed records after a plain Falco line or with a null
    time, an escaped key that the ingestor reads as Falco."""
    path = tmp_path / f"{case}.jsonl"
    path.write_bytes(EDGE_CASES[case])
    _assert_same([path])


def test_a_line_one_byte_too_long_is_skipped_the_same(tmp_path: Path) -> None:
    line = json.loads(EDGE_CASES["untimed_null_stage"].splitlines()[0])
    line["userAgent"] = ""
    short = len(json.dumps(line, separators=(",", ":")))
    for extra in (0, 1, 2):
        line["userAgent"] = "x" * ((1 << 20) - short + extra)
        data = json.dumps(line, separators=(",", ":")).encode()
        assert len(data) == (1 << 20) + extra
        path = tmp_path / f"long-{extra}.jsonl"
        path.write_bytes(data + b"\n" + data)  # the last line has no line end
        _, full_skips, _ = _replay([path], focus=False)
        assert full_skips.get("too-long", 0) == (2 if extra else 0)
        _assert_same([path])


def test_a_blank_line_where_the_helper_starts_keeps_untimed_records_placed(
    tmp_path: Path,
) -> None:
    records = [json.loads(x) for x in EDGE_CASES["untimed_null_stage"].splitlines()]
    timed, untimed = records
    untimed.pop("stageTimestamp")
    signal = dict(timed, auditID="s0", verb="get", objectRef={"resource": "secrets",
                  "namespace": "default", "name": "x"}, user={"username": "mallory"},
                  stageTimestamp="2024-05-01T10:00:00.000000Z")  # fmt: skip
    plain = dict(timed, auditID="p1", userAgent="x" * 4000,
                 stageTimestamp="2024-05-01T10:00:30.000000Z")  # fmt: skip
    enc = lambda d: json.dumps(d, separators=(",", ":")).encode()  # noqa: E731
    data = enc(signal) + b"\n" + enc(plain) + b"\n\n" + enc(untimed) + b"\n"
    # The helper's part starts at the blank line, right after the plain one.
    assert data.index(b"\n", len(data) // 2) + 1 == data.index(b"\n\n") + 1
    path = tmp_path / "boundary.jsonl"
    path.write_bytes(data)
    _assert_same([path])


def _watch_helper_parts(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[int]]:
    """Records what pass 2 got from helpers: the lines each one's answer named, the
    indexes taken whole, and the parts read again in this process."""
    seen: dict[str, list[int]] = {"answered": [], "indexes": [], "read_again": []}
    candidates = replay_module._HelperPart.candidates
    take_index = replay_module._HelperPart.take_index
    read_again = replay_module._HelperPart._read_again

    def watched_candidates(part: replay_module._HelperPart, *args: Any) -> Any:
        asked = part.helper is not None and part.index is None
        found = candidates(part, *args)
        if asked and part.index is None:
            seen["answered"].append(len(found))
        return found

    def watched_take_index(part: replay_module._HelperPart, *args: Any) -> Any:
        if part.index is None:
            seen["indexes"].append(part.split)
        return take_index(part, *args)

    def watched_read_again(part: replay_module._HelperPart) -> Any:
        seen["read_again"].append(part.split)
        return read_again(part)

    monkeypatch.setattr(replay_module._HelperPart, "candidates", watched_candidates)
    monkeypatch.setattr(replay_module._HelperPart, "take_index", watched_take_index)
    monkeypatch.setattr(replay_module._HelperPart, "_read_again", watched_read_again)
    return seen


def _context_in_the_second_half(path: Path, lines: int = 3_000) -> Path:
    """A shell in pod shop/web-1 early on, and ordinary processes of that pod (its
    context, which pass 2 reads again) among kubelet reads all through the file."""
    from k8s_records import T0, audit, tetragon_exec

    out = [tetragon_exec(T0, "/bin/sh", "-c id", namespace="shop", pod="web-1")]
    for i in range(1, lines):
        if i % 25 == 0:
            out.append(tetragon_exec(T0 + i, "/usr/bin/python3", "app.py", namespace="shop",
                                     pod="web-1"))  # fmt: skip
        else:
            out.append(audit(T0 + i, "system:node:node-a", "get", "configmaps",
                             namespace="shop", name=f"c{i}"))  # fmt: skip
    path.write_bytes(b"\n".join(out) + b"\n")
    return path


def test_the_helper_answers_which_of_its_lines_pass_two_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _context_in_the_second_half(tmp_path / "context.jsonl")
    seen = _watch_helper_parts(monkeypatch)
    _assert_same([path])
    # Its index stayed in the helper, which named lines of its part to read again.
    assert len(seen["answered"]) == 1 and seen["answered"][0] > 0, seen
    assert seen["indexes"] == [] and seen["read_again"] == []


def test_two_helpers_never_wait_at_once_and_give_the_same_incidents(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = _context_in_the_second_half(tmp_path / "first.jsonl")
    second = tmp_path / "second.jsonl"
    _benchmark_module().generate(second, 3_000, seed=2)
    seen = _watch_helper_parts(monkeypatch)
    _assert_same([first, second])
    # The first file's helper gave its index when the second's started; the second's
    # answered pass 2.
    assert len(seen["indexes"]) == 1 and seen["read_again"] == [], seen
    assert len(seen["answered"]) == 1


@pytest.mark.parametrize("then", ["ends", "hangs", "answers garbage"])
def test_a_helper_that_cannot_answer_pass_two_leaves_the_replay_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, then: str
) -> None:
    import threading

    path = _context_in_the_second_half(tmp_path / "context.jsonl")
    real = replay_module._first_pass_from

    def after_pass_one(
        path: Path,
        split: int,
        send: Callable[[object], None],
        receive: Any = None,
        progress: Any = None,
    ) -> None:
        if then == "ends":
            real(path, split, send, None, progress)  # never reads the request
        elif then == "hangs":
            real(path, split, send, lambda: threading.Event().wait(), progress)
        else:
            real(path, split, send, lambda: receive() and None, progress)
            send(("candidates", [("not", "a", "candidate", "tuple")]))

    monkeypatch.setattr(replay_module, "_first_pass_from", after_pass_one)
    monkeypatch.setattr(replay_module, "HELPER_PATIENCE", 0.5)
    seen = _watch_helper_parts(monkeypatch)
    _assert_same([path])
    # The part was read again here, once per replay that had a helper.
    assert len(seen["read_again"]) == 1 and seen["answered"] == [], seen


def _slow_helper(
    monkeypatch: pytest.MonkeyPatch, refuse: bool = False, first_only: bool = False
) -> tuple[list[object], list[int]]:
    """A helper a few ms slower per batch of lines (the replay then has time to take
    over the end of its part, as it may on 2 cores), with take-over allowed on small
    files; `refuse`: every request to stop comes too late for it; `first_only`: it
    stops where it was first asked to, as when its last batch began before the later
    requests came. Gives the helpers' results as they come, and where the replay
    asked them to stop."""
    import time as time_module

    monkeypatch.setattr(replay_module, "TAKE_OVER_MIN_BYTES", 16 << 10)
    monkeypatch.setattr(replay_module, "TAKE_OVER_MARGIN", 8 << 10)
    # A third of what is left each time (what balance asks for on this machine's
    # timings aside): several take-overs in a row.
    monkeypatch.setattr(replay_module, "_take_over_share", lambda *_: 0.35)
    monkeypatch.setattr(focus, "BATCH_BYTES", 4 << 10)
    stop_at = replay_module._Progress.stop_at

    first_asked: list[int] = []

    def slow_stop_at(progress: replay_module._Progress, offset: int) -> int:
        time_module.sleep(0.003)
        if refuse:
            progress._passed = True
        end = stop_at(progress, offset)
        if first_only and first_asked:
            progress.stopped_at = first_asked[0]
            return first_asked[0]
        if first_only and progress.stopped_at is not None:
            first_asked.append(progress.stopped_at)
        return end

    monkeypatch.setattr(replay_module._Progress, "stop_at", slow_stop_at)
    results = _watch_helper_results(monkeypatch)
    asked: list[int] = []
    ask_to_stop = replay_module._Progress.ask_to_stop

    def watched_ask(progress: replay_module._Progress, at: int) -> None:
        asked.append(at)
        before = progress.position()
        ask_to_stop(progress, at)
        if first_only:
            # Until the helper has begun another batch (and so seen this request):
            # then the first request is the first it sees, however fast this process
            # asks again.
            deadline = time_module.monotonic() + 2
            while progress.position() == before and time_module.monotonic() < deadline:
                time_module.sleep(0.001)

    monkeypatch.setattr(replay_module._Progress, "ask_to_stop", watched_ask)
    return results, asked


@pytest.mark.parametrize("kind", ["generated", "context", "untimed", "hostile"])
def test_the_end_of_the_helpers_part_taken_over_gives_the_same_incidents(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    path = tmp_path / f"{kind}.jsonl"
    if kind == "generated":
        _benchmark_module().generate(path, 3_000)
    elif kind == "context":
        _context_in_the_second_half(path)
    elif kind == "untimed":
        # Every other line an untimed exec (a signal: it is placed after the plain
        # line before it, which for the first of a part is in the part before).
        plain = EDGE_CASES["untimed_null_stage"].splitlines()[0]
        lines = []
        for i in range(1_500):
            lines.append(plain.replace(b":01.000000Z", b":%02d.000000Z" % (i % 60)))
            lines.append(_untimed_exec(300 + i % 7).replace(b"untimed-exec", b"untimed-%04d" % i))
        path.write_bytes(b"\n".join(lines) + b"\n")
    else:
        path.write_bytes(b"".join(EDGE_CASES[case] for case in sorted(EDGE_CASES)) * 40)
    results, asked = _slow_helper(monkeypatch)
    _assert_same([path])
    # The helper stopped where this process last asked it to, after several asks.
    assert [r[3] for r in results if isinstance(r, tuple)] == [asked[-1]], results
    assert len(asked) >= 3, asked


def test_ends_taken_over_after_the_helper_stopped_are_its_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The helper stops where it was first asked to; the ends this process took over
    before that place are the helper's, and are dropped; the ones after it follow."""
    path = tmp_path / "generated.jsonl"
    _benchmark_module().generate(path, 3_000)
    results, asked = _slow_helper(monkeypatch, first_only=True)
    _assert_same([path])
    assert len(asked) >= 2, asked
    assert [r[3] for r in results if isinstance(r, tuple)] == [asked[0]], results


def test_a_helper_that_stops_where_nobody_asked_leaves_the_replay_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """It cannot happen (the helper stops only where asked), and were it ever to, the
    rest of the file is read here."""
    path = tmp_path / "generated.jsonl"
    _benchmark_module().generate(path, 3_000)
    data = path.read_bytes()
    there = data.index(b"\n", len(data) * 3 // 4) + 1  # a line start in its part
    results, _ = _slow_helper(monkeypatch)

    def stops_there(progress: replay_module._Progress, offset: int) -> int:
        progress.stopped_at = there
        return there

    monkeypatch.setattr(replay_module._Progress, "stop_at", stops_there)
    _assert_same([path])
    assert [r[3] for r in results if isinstance(r, tuple)] == [there], results


def test_the_share_taken_over_lets_both_end_together() -> None:
    # Seconds per byte: reading here, the full path, the helper reading.
    for scan, feed, helper in [(3.0, 0.5, 3.0), (3.0, 1.6, 2.5), (2.0, 0.0, 6.0), (4.0, 0.1, 1.0)]:
        share = replay_module._take_over_share(scan, feed, helper)
        here = share * scan + feed  # per byte of what is left
        there = (1 - share) * helper
        assert here == pytest.approx(there)
    assert replay_module._take_over_share(3.0, 4.0, 3.0) == 0.0  # the full path is all it can do


def test_a_take_over_asked_for_too_late_is_dropped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _context_in_the_second_half(tmp_path / "context.jsonl")
    results, asked = _slow_helper(monkeypatch, refuse=True)
    _assert_same([path])
    # Asked, refused: the helper read its part to the end, and what this process
    # read of it was dropped (the incidents, skips and counts are the same).
    assert asked
    assert [r[3] for r in results if isinstance(r, tuple)] == [None]


def test_a_hung_helper_is_stopped_and_the_replay_reads_its_part(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    path = tmp_path / "mixed.jsonl"
    _benchmark_module().generate(path, 4_000)
    full, full_skips, _ = _replay([path], focus=False)

    def hang(*_args: object) -> None:
        threading.Event().wait()  # never answers (in the helper process only)

    monkeypatch.setattr(replay_module, "_first_pass_from", hang)
    monkeypatch.setattr(replay_module, "HELPER_PATIENCE", 0.5)
    shared, shared_skips, replayer = _replay([path], focus=True, parallel=True)
    assert shared == full
    assert shared_skips == full_skips
    assert replayer.stats.lines == 4_000


def test_hostile_records_give_the_same_incidents(tmp_path: Path) -> None:
    """Records too deep or too large to decode, and times out of range, among
    ordinary traffic: the focused replay reads and counts them as the full one."""
    path = tmp_path / "mixed.jsonl"
    _benchmark_module().generate(path, 3_000)
    lines = path.read_bytes().splitlines()
    base = json.loads(lines[10])
    pod = next(json.loads(x) for x in lines if b'"resource":"pods"' in x and b'"name":"' in x)[
        "objectRef"
    ]

    def audit(**over: object) -> bytes:
        return json.dumps({**base, **over}).encode()

    spec = {
        "hostPID": True,
        "containers": [
            {
                "name": "c",
                "env": [{"name": f"V{i}", "value": "x" * 1000} for i in range(1100)],
                "securityContext": {"privileged": True},
            }
        ],
    }
    created = {"resource": "pods", "namespace": pod["namespace"], "name": "evil-1"}
    deep = "[" * 5000 + "]" * 5000
    stamp = base["stageTimestamp"]
    hostile = [
        audit(auditID="deep-1", verb="create", requestObject={"spec": "HOLE"}).replace(
            b'"HOLE"', deep.encode()
        ),
        audit(
            auditID="big-1",
            verb="create",
            user={"username": "mallory"},
            objectRef=created,
            requestObject={"kind": "Pod", "spec": spec},
        ),
        audit(
            auditID="big-deep-1",
            verb="create",
            user={"username": "mallory"},
            objectRef={**created, "name": "evil-2"},
            requestObject={"kind": "Pod", "spec": spec, "x": "HOLE"},
        ).replace(b'"HOLE"', deep.encode()),
        audit(auditID="far-1", stageTimestamp="5000-01-01T00:00:00.000000Z"),
        audit(auditID="far-2", stageTimestamp="2999-12-31T23:59:59.500000Z"),
        audit(auditID="far-3", stageTimestamp="1970-01-01T00:00:00.000000Z"),
        audit(
            auditID="far-4",
            stageTimestamp="9999-12-31T23:59:59.9999999Z",
            requestReceivedTimestamp="0001-01-01T00:00:00Z",
        ),
        json.dumps(
            {
                "process_exit": {"process": {"binary": "/bin/true", "pod": {"name": "p"}}},
                "time": "5000-01-01T00:00:00.000000Z",
            }
        ).encode(),
        json.dumps(
            {
                "time": 2**62,
                "rule": "Falco internal: syscall event drop",
                "priority": "Debug",
                "output": "drops",
            }
        ).encode(),
        json.dumps(
            {
                "process_exec": {"process": {"binary": "/bin/sh", "pod": {"name": "p"}}},
                "args": "HOLE",
                "time": stamp,
            }
        )
        .encode()
        .replace(b'"HOLE"', deep.encode()),
    ]
    rng = random.Random(11)
    for item in hostile:
        lines.insert(rng.randrange(len(lines)), item)
    path.write_bytes(b"\n".join(lines) + b"\n")
    replayer = _assert_same([path])
    skipped = replayer.ingestor.skipped
    assert skipped["too-deep"] == 2 and skipped["too-long"] == 2
    assert skipped["out-of-range"] == 1  # the Tetragon exit; audit ones are placed
