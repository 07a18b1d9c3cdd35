"""Pass 1 of a focused replay reads lines in batches and remembers what decided a
common audit line by the names it is made of: neither may change what a full
replay gives (core/focus.py `first_pass`)."""

from __future__ import annotations

import io
import itertools
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest
from k8s_records import T0, audit, pod_object, tetragon_exec
from test_focus import _assert_same, _replay

from ktriage.core import focus
from ktriage.core import replay as replay_module
from ktriage.core.correlate import Correlator
from ktriage.core.detect.audit import SIGNAL_REQUESTS
from ktriage.core.ingest import Ingestor
from ktriage.core.model import Event
from ktriage.core.parse.audit import DECODER as AUDIT_DECODER
from ktriage.core.parse.podfacts import pod_facts
from ktriage.core.replay import LINE_LIMIT

KUBELET = "system:node:node-a"


class _Watched:
    """A record (or a part of it) that notes every attribute read of it."""

    def __init__(self, real: object, path: str, seen: set[str]) -> None:
        self._real, self._path, self._seen = real, path, seen

    def __getattr__(self, name: str) -> object:
        path = f"{self._path}.{name}" if self._path else name
        self._seen.add(path)
        value = getattr(self._real, name)
        if isinstance(value, msgspec.Struct):
            return _Watched(value, path, self._seen)
        return value


# What the decision cache's key holds (core/focus.py `first_pass`), and the bodies
# a record it is used for has none of.
_KEYED = {
    "user",
    "user.username",
    "username",
    "sourceIPs",
    "objectRef",
    "objectRef.resource",
    "objectRef.subresource",
    "objectRef.namespace",
    "objectRef.name",
    "verb",
    "kind",
    "responseStatus",
    "responseStatus.code",
    "requestObject",
    "responseObject",
}


def test_signal_predicates_read_only_what_pass_one_remembers_them_by() -> None:
    """Pass 1 asks a resource's SIGNAL_REQUESTS predicate once per combination of
    the names in its cache key: a predicate that read anything else of a record
    without a body (its URI, its user agent...) would make that wrong, and must be
    left out of `_DECIDED_BY_NAMES`."""
    assert "secrets" not in focus._DECIDED_BY_NAMES  # it reads the request URI
    users = [KUBELET, "system:kube-controller-manager", "alice@example.com"]
    asked = 0
    for resource in sorted(focus._DECIDED_BY_NAMES):
        for user, verb, sub, namespace, name in itertools.product(
            users,
            ["get", "list", "create", "update", "patch", "delete"],
            ["", "exec", "token", "proxy", "status"],
            ["kube-system", "shop"],
            ["", "web-1"],
        ):
            line = audit(T0, user, verb, resource, namespace=namespace, name=name, subresource=sub)
            rec = focus._PLAIN_AUDIT_DECODE(line)
            seen: set[str] = set()
            SIGNAL_REQUESTS[resource](_Watched(rec, "", seen))  # type: ignore[arg-type]
            assert seen <= _KEYED, (resource, seen - _KEYED)
            asked += 1
    assert asked > 1000


def _pod_patch(t: float, pod: str, **over: Any) -> bytes:
    return audit(
        t, KUBELET, "patch", "pods", namespace="shop", name=pod, subresource="status", **over
    )


def test_hostile_lines_that_share_remembered_names_but_not_their_decision(
    tmp_path: Path,
) -> None:
    """Lines with the very names of a remembered plain line, each different where the
    names do not tell: a pod write that states the pod's address, one with a body,
    a time out of range, no verb, a bound token naming its pod, a secret read by a
    node with and without a name, two source addresses. Each is read as a full
    replay reads it."""
    lines: list[bytes] = []
    shell = tetragon_exec(T0 + 50, "/bin/sh", "-c id", namespace="shop", pod="web-1")
    for i in range(40):
        t = T0 + i
        lines.append(_pod_patch(t, f"web-{i % 3}"))
        lines.append(audit(t, KUBELET, "get", "secrets", namespace="shop", name="tls"))
        lines.append(audit(t, "alice@example.com", "get", "configmaps", namespace="shop"))
    hostile = [
        # The pod's address in the line (not in a body): the full path learns it.
        _pod_patch(T0 + 41, "web-1", query="podIP=10.1.2.3"),
        _pod_patch(
            T0 + 42,
            "web-2",
            request_object={"status": {"podIP": "10.1.2.4", "hostIP": "10.0.0.2"}},
        ),
        _pod_patch(
            T0 + 43,
            "web-1",
            response_object=pod_object("shop", "web-1", account="web", pod_ip="10.1.2.5"),
        ),
        _pod_patch(T0 + 44, "web-0").replace(b'"stageTimestamp":"20', b'"stageTimestamp":"50'),
        # A bound token of an account nothing else links, naming the shell's pod.
        audit(
            T0 + 45,
            "system:serviceaccount:shop:builder",
            "get",
            "configmaps",
            namespace="shop",
            extra={"authentication.kubernetes.io/pod-name": ["web-1"]},
        ),
        audit(T0 + 46, KUBELET, "list", "secrets", namespace="shop"),
        # No verb (an empty one, or none at all): never left out.
        _pod_patch(T0 + 46.5, "web-1").replace(b'"verb":"patch"', b'"verb":""'),
        _pod_patch(T0 + 46.6, "web-1").replace(b'"verb":"patch",', b""),
        audit(T0 + 47, KUBELET, "list", "secrets", namespace="shop", query="fieldSelector=x"),
        audit(T0 + 48, "alice@example.com", "get", "configmaps", namespace="shop").replace(
            b'"sourceIPs":["10.0.0.11"]', b'"sourceIPs":["10.0.0.11","203.0.113.9"]'
        ),
        shell,
    ]
    for n, line in enumerate(hostile):
        lines.insert(7 + n * 11, line)
    # The same names again after the hostile lines: still remembered as plain.
    lines += [_pod_patch(T0 + 60 + i, f"web-{i % 3}") for i in range(20)]
    lines += [
        audit(T0 + 70 + i, "system:serviceaccount:shop:builder", "get", "configmaps",
              namespace="shop")
        for i in range(5)
    ]  # fmt: skip
    path = tmp_path / "hostile.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    replayer = _assert_same([path])
    assert replayer.stats.unrelated > 100  # the common lines were left out
    (shell_incident,) = [
        i for i in replayer.correlator.incidents.values() if i.title == "Shell in shop/web-1"
    ]
    summaries = [e.summary for e in replayer.correlator.events_of(shell_incident.id)]
    # The bound token joined the shell's incident; the same account's later lines
    # (no token) did not.
    assert sum("builder" in s for s in summaries) == 1, summaries


def test_a_pod_write_without_a_body_states_no_pod_facts() -> None:
    """Pass 1 leaves a bodiless pod write out by its names alone, whatever else its
    line says: the facts a pod write states come from its bodies only."""
    line = _pod_patch(T0, "web-1", query="podIP=10.1.2.3&serviceAccountName=x")
    line = line.replace(b'"annotations":{', b'"annotations":{"podIP":"10.1.2.3",')
    assert b'"podIP"' in line
    assert pod_facts(AUDIT_DECODER.decode(line)) is None
    with_body = _pod_patch(T0, "web-1", request_object={"status": {"podIP": "10.1.2.3"}})
    assert pod_facts(AUDIT_DECODER.decode(with_body)) == ("shop", "web-1", "10.1.2.3", "")


def _records(n: int) -> list[bytes]:
    return [
        audit(T0 + i, KUBELET, "get", "configmaps", namespace="shop", name=f"c{i}")
        for i in range(n)
    ]


@pytest.mark.parametrize("batch", [300, 4096, 1 << 20])
def test_hostile_batch_edges_give_the_same_incidents(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, batch: int
) -> None:
    """Batches of pass 1 cut anywhere: lines with CRLF ends, a NUL byte, a blank
    line, a line that is not JSON, one longer than the line limit (alone in its
    batch), and the last line without an end; pass 1 of the first part stops inside
    a batch. A focused replay (shared with a helper too) gives what a full one gives."""
    monkeypatch.setattr(focus, "BATCH_BYTES", batch)
    lines = _records(300)
    shell = tetragon_exec(T0 + 150, "/bin/sh", "-c id", namespace="shop", pod="web-1")
    too_long = audit(T0 + 151, KUBELET, "get", "configmaps", namespace="shop", name="big")
    too_long = too_long.replace(b'"userAgent":"', b'"userAgent":"' + b"x" * LINE_LIMIT)
    edges = [
        lines[5] + b"\r",  # CRLF (its \n comes from the join)
        lines[6].replace(b'"get"', b'"g\x00t"'),
        b"",
        b"not json at all",
        too_long,
        shell,
        lines[7] + b"\r",
    ]
    for n, line in enumerate(edges):
        lines.insert(20 + n * 37, line)
    path = tmp_path / "edges.jsonl"
    path.write_bytes(b"\n".join(lines))  # the last line has no end
    replayer = _assert_same([path])
    skipped = replayer.ingestor.skipped
    assert skipped["too-long"] == 1
    assert replayer.stats.lines == len(lines)


@pytest.mark.parametrize("stop_line", [0, 1, 57, 199, 200])
def test_a_part_ends_where_its_stop_is_whatever_the_batches(
    monkeypatch: pytest.MonkeyPatch, stop_line: int
) -> None:
    """Pass 1 over a part reads exactly the lines that start before its stop, from
    a file or from any iterable of lines, with their offsets."""
    monkeypatch.setattr(focus, "BATCH_BYTES", 2000)
    monkeypatch.setattr(focus, "_BATCH_LINES", 7)
    lines = [line + b"\n" for line in _records(200)]
    data = b"".join(lines)
    starts = list(itertools.accumulate(map(len, lines), initial=100))
    stop = starts[stop_line] - (1 if stop_line else 0)  # just before a line starts
    for source in (io.BytesIO(data), iter(lines)):
        index, read, _, _ = focus.first_pass(
            source, lambda *_: None, LINE_LIMIT, start=100, stop=stop
        )
        assert read == stop_line
        assert list(index.offsets) == starts[:stop_line]
        assert len(index.combos) == stop_line


def _signal_dense_file(tmp_path: Path) -> Path:
    """A file whose second half sends many lines to the full path: shells among
    ordinary reads, every tenth line."""
    lines = []
    for i in range(2_000):
        if i % 10 == 3:
            lines.append(
                tetragon_exec(T0 + i, "/bin/sh", f"-c id {i}", namespace="shop", pod="web-1")
            )
        else:
            lines.append(
                audit(T0 + i, KUBELET, "get", "configmaps", namespace="shop", name=f"c{i}")
            )
    path = tmp_path / "dense.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


@pytest.mark.parametrize("then", ["dies", "hangs", "dies inside a message"])
def test_hostile_helper_fails_after_sending_some_signals(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, then: str
) -> None:
    """The helper sends the lines it finds for the full path as it goes: when it dies,
    hangs or is killed halfway through a message after sending a few, the replay
    feeds each line once (those already fed are not fed again) and reads the rest
    of the helper's part itself."""
    path = _signal_dense_file(tmp_path)
    full, full_skips, _ = _replay([path], focus=False)
    monkeypatch.setattr(replay_module, "SIGNALS_PER_MESSAGE", 3)
    monkeypatch.setattr(replay_module, "HELPER_PATIENCE", 0.5)
    real = replay_module._first_pass_from

    def failing(
        path: Path,
        split: int,
        send: Callable[[object], None],
        receive: Callable[[], object] | None = None,
        progress: Any = None,
    ) -> None:
        sent = 0

        def send_some(message: object) -> None:
            nonlocal sent
            sent += 1
            if sent <= 4:
                send(message)
                return
            if then == "hangs":
                threading.Event().wait()
            elif then == "dies inside a message":
                os.write(HELPER_FD[0], (1000).to_bytes(8, "little") + b"\x80\x05(")
            os._exit(3)

        real(path, split, send_some, receive, progress)

    HELPER_FD: list[int] = []
    helper_main = replay_module._helper_main

    def watched_main(fd: int, requests: int, path: Path, split: int, progress: Any) -> None:
        HELPER_FD.append(fd)
        helper_main(fd, requests, path, split, progress)

    monkeypatch.setattr(replay_module, "_first_pass_from", failing)
    monkeypatch.setattr(replay_module, "_helper_main", watched_main)
    fed: list[str] = []
    feed_line = Ingestor.feed_line

    def counted(self: Ingestor, body: bytes, **kw: Any) -> object:
        fed.append(kw.get("origin", ""))
        return feed_line(self, body, **kw)

    monkeypatch.setattr(Ingestor, "feed_line", counted)
    shared, shared_skips, replayer = _replay([path], focus=True, parallel=True)
    assert shared == full
    assert shared_skips == full_skips
    assert replayer.stats.lines == 2_000
    assert len(fed) > 100
    assert len(fed) == len(set(fed))  # no line fed twice


def test_the_helper_never_waits_for_the_replay_to_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While the replay reads its own part it takes what the helper sent out of the
    pipe (`drain`): even through a pipe of a page, the helper finishes its part
    with nobody reading its messages, and they all arrive whole, in order."""
    path = _signal_dense_file(tmp_path)
    monkeypatch.setattr(replay_module, "_PIPE_BYTES", 4096)
    monkeypatch.setattr(replay_module, "SIGNALS_PER_MESSAGE", 5)
    helper = replay_module._Helper.start(path, 0)
    assert helper is not None
    # No request will come: the helper ends once it sent all it found.
    os.close(helper.requests)
    helper.requests = os.open(os.devnull, os.O_WRONLY)
    try:
        deadline = time.monotonic() + 20
        finished = False
        while not finished and time.monotonic() < deadline:
            helper.drain()
            finished = os.waitpid(helper.pid, os.WNOHANG)[0] == helper.pid
            if not finished:
                helper._poller.poll(50)  # until it sends more (or a short while)
        assert finished, "the helper waited for the replay to read"
        signals = list(helper.signals(time.monotonic() + 10))
        found = helper.result(10)
    finally:
        helper.stop()
    assert found is not None
    assert len(signals) == 200  # every shell, once, in file order
    assert [s[1] for s in signals] == list(range(3, 2_000, 10))
    lines, _, plain, stopped_at, _ = found
    assert lines == 2_000 and plain == 1_800 and stopped_at is None


@pytest.mark.parametrize("sent", ["none", "some", "all"])
def test_lines_for_the_full_path_come_down_the_pipe_or_are_read_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sent: str
) -> None:
    """The helper sends each line it finds for the full path with its bytes when it
    is no longer than SENT_LINE_MAX, else its length (the replay reads it again from
    the file): the bytes are the line's own, and the replay gives what a full read
    gives either way."""
    path = _signal_dense_file(tmp_path)
    data = path.read_bytes()
    shells = sorted(len(line) for line in data.splitlines() if b'"process_exec"' in line)
    sent_max = {"none": 0, "some": shells[0], "all": 1 << 20}[sent]
    monkeypatch.setattr(replay_module, "SENT_LINE_MAX", sent_max)
    helper = replay_module._Helper.start(path, 0)
    assert helper is not None
    try:
        signals = list(helper.signals(time.monotonic() + 20))
        assert helper.result(10) is not None
    finally:
        helper.stop()
    assert len(signals) == 200
    lengths = set()
    for offset, _, _, _, body in signals:
        line = data[offset : data.index(b"\n", offset)]
        lengths.add(len(line))
        if len(line) <= sent_max:
            assert body == line
        else:
            assert body == len(line)
    assert sent != "some" or min(lengths) <= sent_max < max(lengths)  # both kinds here

    full, full_skips, _ = _replay([path], focus=False)
    shared, shared_skips, _ = _replay([path], focus=True, parallel=True)
    assert shared == full
    assert shared_skips == full_skips


@pytest.mark.parametrize("parallel", [False, True])
def test_events_are_filed_in_batches_in_the_order_they_were_built(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, parallel: bool
) -> None:
    """Pass 1 gives the correlator the events of the lines for the full path a batch
    at a time (FILED_EVENTS): each event as soon as it is built or in batches, the
    correlator is given the same events in the same order, none left out."""
    path = _signal_dense_file(tmp_path)
    given: list[tuple[str, str]] = []
    add = Correlator.add

    def recorded(self: Correlator, event: Event) -> set[str]:
        given.append((event.source, event.ref))
        return add(self, event)

    monkeypatch.setattr(Correlator, "add", recorded)
    orders = []
    for filed in (1, 7, replay_module.FILED_EVENTS):
        monkeypatch.setattr(replay_module, "FILED_EVENTS", filed)
        given.clear()
        _replay([path], focus=True, parallel=parallel)
        orders.append(list(given))
    assert len(orders[0]) >= 200  # every shell, and the context pass 2 found
    assert orders[1] == orders[0]
    assert orders[2] == orders[0]


def test_hostile_a_read_that_fails_midway_keeps_every_event_built_before_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The disk fails in the middle of pass 1 (an I/O error reading again a line the
    helper found): the file is counted unreadable, and every event built from the
    lines read before the error is given to the correlator, those still waiting to
    be filed in a batch too."""
    path = _signal_dense_file(tmp_path)
    monkeypatch.setattr(replay_module, "SENT_LINE_MAX", 0)  # each line read again here
    read_at = replay_module._read_at
    reads = 0

    def failing(fd: int, offset: int, length: int) -> bytes:
        nonlocal reads
        reads += 1
        if reads == 100:
            raise OSError(5, "Input/output error")
        return read_at(fd, offset, length)

    monkeypatch.setattr(replay_module, "_read_at", failing)
    built = 0
    feed_line = Ingestor.feed_line

    def counted(self: Ingestor, body: bytes, **kw: Any) -> list[Event]:
        nonlocal built
        events = feed_line(self, body, **kw)
        built += len(events)
        return events

    monkeypatch.setattr(Ingestor, "feed_line", counted)
    filed: list[int] = []
    file_built = replay_module.Replayer._file_built

    def watched(self: replay_module.Replayer) -> None:
        filed.append(len(self._built))
        file_built(self)

    monkeypatch.setattr(replay_module.Replayer, "_file_built", watched)
    _, skipped, replayer = _replay([path], focus=True, parallel=True)
    assert reads == 100
    assert skipped == {"unreadable-file": 1}
    assert 0 < filed[-1] < replay_module.FILED_EVENTS  # a batch was waiting
    assert len(replayer.correlator.store) == built
    assert replayer.stats.events == built


def test_the_backlog_taken_from_the_pipe_is_bounded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While this process is behind the helper, it takes at most about PENDING_MAX
    bytes out of the pipe ahead of what it feeds: the helper then waits on a full
    pipe, and a file of signals does not pile up in memory. Fed again, it goes on,
    and every line arrives whole, in order; a replay so bounded gives what a full
    read gives."""
    path = _signal_dense_file(tmp_path)
    cap = 8 << 10
    monkeypatch.setattr(replay_module, "PENDING_MAX", cap)
    monkeypatch.setattr(replay_module, "_PIPE_BYTES", 4096)
    monkeypatch.setattr(replay_module, "SIGNALS_PER_MESSAGE", 5)  # about 5 KB each
    helper = replay_module._Helper.start(path, 0)
    assert helper is not None
    os.close(helper.requests)  # no request will come
    helper.requests = os.open(os.devnull, os.O_WRONLY)
    try:
        deadline = time.monotonic() + 20
        while len(helper._pending) - helper._taken < cap and time.monotonic() < deadline:
            helper.drain()
            helper._poller.poll(50)  # until it sends more (or a short while)
        assert len(helper._pending) - helper._taken >= cap, "the helper sent too little"
        for _ in range(20):  # drained again and again, nothing fed meanwhile
            helper.drain()
            helper._poller.poll(10)
            assert len(helper._pending) - helper._taken <= cap + 4096
        assert os.waitpid(helper.pid, os.WNOHANG)[0] == 0  # it waits to send the rest
        signals = list(helper.signals(time.monotonic() + 20))
        assert helper.result(10) is not None
    finally:
        helper.stop()
    assert [s[1] for s in signals] == list(range(3, 2_000, 10))

    full, full_skips, _ = _replay([path], focus=False)
    shared, shared_skips, _ = _replay([path], focus=True, parallel=True)
    assert shared == full
    assert shared_skips == full_skips


def test_hostile_replay_fails_midway_and_its_helper_is_ended(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A replay that fails while its helper runs (here the full path raises) ends
    the helper and waits for it: none is left behind, waiting to be read."""
    path = _signal_dense_file(tmp_path)
    started: list[replay_module._Helper] = []
    start = replay_module._Helper.start

    def watched(path: Path, split: int) -> replay_module._Helper | None:
        helper = start(path, split)
        if helper is not None:
            started.append(helper)
        return helper

    monkeypatch.setattr(replay_module._Helper, "start", staticmethod(watched))
    monkeypatch.setattr(replay_module, "_PIPE_BYTES", 4096)  # it would wait to be read
    feed_line = Ingestor.feed_line
    fed = 0

    def failing(self: Ingestor, body: bytes, **kw: Any) -> object:
        nonlocal fed
        fed += 1
        if fed == 60:
            raise RuntimeError("the full path failed")
        return feed_line(self, body, **kw)

    monkeypatch.setattr(Ingestor, "feed_line", failing)
    with pytest.raises(RuntimeError, match="the full path failed"):
        _replay([path], focus=True, parallel=True)
    (helper,) = started
    assert helper.fd == -1  # its pipe is closed
    with pytest.raises(ChildProcessError):
        os.waitpid(helper.pid, os.WNOHANG)  # and it was waited for


def test_the_pipe_is_drained_while_a_part_without_signals_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """This process takes what the helper sent out of the pipe after every batch of
    its own part, also when that part sends nothing to the full path (all its lines
    are left out): the helper is never left waiting on a full pipe meanwhile."""
    lines = [
        audit(T0 + i, KUBELET, "get", "configmaps", namespace="shop", name=f"c{i}")
        for i in range(3_000)
    ]
    lines += [
        tetragon_exec(T0 + 3_000 + i, "/bin/sh", f"-c id {i}", namespace="shop", pod="web-1")
        for i in range(300)
    ]
    path = tmp_path / "quiet-then-loud.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    full, full_skips, _ = _replay([path], focus=False)
    monkeypatch.setattr(focus, "BATCH_BYTES", 16 << 10)  # many batches in a small file
    monkeypatch.setattr(replay_module, "PROBE_BYTES", 16 << 10)
    reading_own_part = False
    drained_then = 0
    drain = replay_module._Helper.drain
    first_pass = focus.first_pass

    def watched_first_pass(*args: Any, **kw: Any) -> Any:
        nonlocal reading_own_part
        reading_own_part = kw.get("start", 0) > 0 and kw.get("stop") is not None
        try:
            return first_pass(*args, **kw)
        finally:
            reading_own_part = False

    def counted_drain(self: Any) -> None:
        nonlocal drained_then
        drained_then += reading_own_part
        drain(self)

    monkeypatch.setattr(focus, "first_pass", watched_first_pass)
    monkeypatch.setattr(replay_module._Helper, "drain", counted_drain)
    shared, shared_skips, _ = _replay([path], focus=True, parallel=True)
    assert shared == full and shared_skips == full_skips
    assert drained_then > 3  # after each batch of this process's own part


@pytest.mark.parametrize("wanted", [1, 3, focus._FEW_COMBOS, focus._FEW_COMBOS + 1, 200])
def test_the_lines_pass_two_reads_are_those_naming_a_wanted_name(wanted: int) -> None:
    """A few names are looked for combination by combination, many in one loop: both
    find every line whose combination holds a wanted name, and the lines that may
    join any incident, once each and in order."""
    import random

    rng = random.Random(wanted)
    index = focus.PlainIndex()
    names = [f"name-{n}" for n in range(300)]
    for combo in range(400):
        for name in rng.sample(names, 2):
            index.postings.setdefault(name, []).append(combo)
    index.combos.extend(rng.randrange(-1, 400) for _ in range(20_000))
    index.always.extend(sorted(rng.sample(range(20_000), 30)))
    asked = rng.sample(sorted(index.postings), wanted // 2 + 1)
    combos = {c for name in asked for c in index.postings.get(name, [])}
    expected = sorted({i for i, c in enumerate(index.combos) if c in combos} | set(index.always))
    assert index.candidates(asked) == expected
    assert len(expected) > 30
