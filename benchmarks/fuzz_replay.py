"""Hostile mutations of real captured lines through every output path.

    python benchmarks/fuzz_replay.py [--cases 20000] [--seed 1] [--fixtures DIR]

Each case is a file of: one valid line, one real line (audit, Falco or Tetragon,
from ../shared/fixtures/real) mutated by a hostile class (truncation, byte flips,
wrong types, deep nesting, huge numbers, NaN/Infinity tokens, times out of range,
bad UTF-8, duplicate keys, control characters, 5 MiB lines), then three valid
signal lines. It goes through `replay --json`, `--text` and `--markdown` (the
replay entry point the CLI uses, in process) and through the live ingest path
(Ingestor + Correlator + the Markdown snapshot). A case fails when anything raises
or when an event of a valid line after the hostile one is missing.

Prints the number of cases, the failures (the first few inputs saved to a
temporary directory for reproduction) and the time taken. tests/unit/test_fuzz.py
runs the same mutations, fewer of them.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import random
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT.parent / "shared" / "fixtures" / "real"
sys.path.insert(0, str(ROOT))

from ktriage.cli import main as cli_main  # noqa: E402
from ktriage.core.correlate import Correlator  # noqa: E402
from ktriage.core.ingest import Ingestor  # noqa: E402
from ktriage.core.report import incident_json_line, text_report  # noqa: E402
from ktriage.core.snapshot import render_markdown  # noqa: E402

T_AFTER = "2016-08-04T16:20:00.000000Z"


def fixture_lines(root: Path = FIXTURES) -> list[bytes]:
    """One JSON record per line, from the real audit, Falco and Tetragon captures."""
    lines: list[bytes] = []
    for pattern in ("k8s-audit-v1/*.jsonl", "falco-alerts/*", "falco-k8s-audit/*", "tetragon/*"):
        for path in sorted(root.glob(pattern)):
            data = path.read_bytes()
            try:
                records = [json.loads(data)]
            except ValueError:
                records = []
                for raw in data.splitlines():
                    try:
                        records.append(json.loads(raw))
                    except ValueError:
                        continue
            for rec in records:
                for item in rec if isinstance(rec, list) else [rec]:
                    if isinstance(item, dict):
                        lines.append(json.dumps(item, separators=(",", ":")).encode())
    return lines


def after_lines() -> list[tuple[bytes, str]]:
    """Valid signal lines (and the ref each one's event has), placed after the
    hostile line: each must still be read."""
    audit = {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "auditID": "fuzz-after-audit",
        "stage": "ResponseStarted",
        "requestURI": "/api/v1/namespaces/fuzz/pods/after-1/exec?command=sh",
        "verb": "create",
        "user": {"username": "fuzz-user"},
        "sourceIPs": ["198.51.100.99"],
        "objectRef": {
            "resource": "pods",
            "namespace": "fuzz",
            "name": "after-1",
            "subresource": "exec",
        },
        "responseStatus": {"code": 101},
        "requestReceivedTimestamp": T_AFTER,
        "stageTimestamp": T_AFTER,
    }
    falco = {
        "uuid": "fuzz-after-falco",
        "time": T_AFTER,
        "rule": "Terminal shell in container",
        "priority": "Notice",
        "source": "syscall",
        "hostname": "fuzz-node",
        "output": "A shell was spawned",
        "output_fields": {"k8s.ns.name": "fuzz", "k8s.pod.name": "after-2"},
    }
    tetragon = {
        "process_exec": {
            "process": {
                "exec_id": "fuzz-after-tetragon",
                "binary": "/bin/sh",
                "pod": {"namespace": "fuzz", "name": "after-3"},
            },
            "parent": {"binary": "/usr/bin/python3"},
        },
        "node_name": "fuzz-node",
        "time": T_AFTER,
    }
    return [
        (json.dumps(audit).encode(), "fuzz-after-audit:ResponseStarted"),
        (json.dumps(falco).encode(), "fuzz-after-falco"),
        (json.dumps(tetragon).encode(), f"fuzz-after-tetragon:process_exec:{T_AFTER}"),
    ]


# -- mutations ------------------------------------------------------------------

_TIMES = [
    "9999-12-31T23:59:59.9999999Z",
    "0001-01-01T00:00:00Z",
    "5000-01-01T00:00:00Z",
    "1969-12-31T23:59:59Z",
    2**70,
    -(2**63),
    1e308,
    -1.0,
]
_WRONG = [None, True, 0, -1, 1.5e308, "", "x" * 300, [], [1, [2]], {}, {"a": {"b": 1}}]
_TIME_KEYS = (
    "stageTimestamp",
    "requestReceivedTimestamp",
    "timestamp",
    "time",
    "start_time",
    "evt.time",
    "creationTimestamp",
)


def _paths(obj: object, prefix: tuple = ()) -> list[tuple]:
    """Every path to a value in decoded JSON (bounded, the records are small)."""
    out: list[tuple] = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            out.append((*prefix, k))
            out.extend(_paths(v, (*prefix, k)))
    elif isinstance(obj, list):
        for i, v in enumerate(obj[:8]):
            out.append((*prefix, i))
            out.extend(_paths(v, (*prefix, i)))
    return out


def _set(obj: object, path: tuple, value: object) -> None:
    for key in path[:-1]:
        obj = obj[key]  # type: ignore[index]
    obj[path[-1]] = value  # type: ignore[index]


def _replace_value(rng: random.Random, line: bytes, make: Callable[[], object]) -> bytes:
    rec = json.loads(line)
    paths = _paths(rec)
    if not paths:
        return line
    _set(rec, rng.choice(paths), make())
    return json.dumps(rec).encode()


def _splice(rng: random.Random, line: bytes, token: bytes) -> bytes:
    """`token` (raw JSON text) as the value of a random key."""
    rec = json.loads(line)
    paths = _paths(rec)
    if not paths:
        return line
    _set(rec, rng.choice(paths), "\x00HOLE\x00")
    return json.dumps(rec).encode().replace(b'"\\u0000HOLE\\u0000"', token, 1)


def truncate(rng: random.Random, line: bytes) -> bytes:
    return line[: rng.randrange(len(line))]


def byte_flips(rng: random.Random, line: bytes) -> bytes:
    data = bytearray(line)
    for _ in range(rng.randint(1, 6)):
        data[rng.randrange(len(data))] = rng.randrange(256)
    return bytes(data)


def wrong_type(rng: random.Random, line: bytes) -> bytes:
    return _replace_value(rng, line, lambda: rng.choice(_WRONG))


def deep_nesting(rng: random.Random, line: bytes) -> bytes:
    depth = rng.choice([300, 999, 1000, 3000, 50_000])
    opener, closer = rng.choice([(b"[", b"]"), (b'{"a":', b"}")])
    return _splice(rng, line, opener * depth + b"1" + closer * depth)


def huge_number(rng: random.Random, line: bytes) -> bytes:
    token = rng.choice(
        [b"1e308", b"-1e308", b"1e999", b"9" * 400, b"-0", b"1180591620717411303424"]
    )
    return _splice(rng, line, token)


def nan_infinity(rng: random.Random, line: bytes) -> bytes:
    return _splice(rng, line, rng.choice([b"NaN", b"Infinity", b"-Infinity", b"nan"]))


def time_out_of_range(rng: random.Random, line: bytes) -> bytes:
    rec = json.loads(line)
    stamp = rng.choice(_TIMES)
    hit = False
    for path in _paths(rec):
        if path[-1] in _TIME_KEYS:
            _set(rec, path, stamp)
            hit = True
    if not hit:
        rec["time"] = stamp
    return json.dumps(rec).encode()


def bad_utf8(rng: random.Random, line: bytes) -> bytes:
    junk = rng.choice([b"\xff", b"\xfe\xff", b"\xc3", b"\xed\xa0\x80", b"\x80\x80", b"\xf4\x90"])
    quotes = [i for i, c in enumerate(line) if c == 34]
    at = rng.choice(quotes) + 1 if quotes else 0
    return line[:at] + junk + line[at:]


def duplicate_keys(rng: random.Random, line: bytes) -> bytes:
    rec = json.loads(line)
    if not isinstance(rec, dict) or not rec:
        return line
    key = rng.choice(list(rec))
    value = json.dumps(rng.choice(_WRONG)).encode()
    return line.rstrip()[:-1] + b"," + json.dumps(key).encode() + b":" + value + b"}"


def control_characters(rng: random.Random, line: bytes) -> bytes:
    text = rng.choice(["\x1b]52;c;ZXZpbA==\x07", "\x1b[2J", "[bold red]x[/]", "\u202e", "\r\x00"])
    return _replace_value(rng, line, lambda: text)


def five_mib(rng: random.Random, line: bytes) -> bytes:
    pad = rng.choice([b"A" * (5 << 20), b"[1]," * (5 << 18), b'"\\u00e9",' * (5 << 17)])
    if pad[:1] == b"A":
        return _splice(rng, line, b'"' + pad + b'"')
    return _splice(rng, line, b"[" + pad + b"1]")


MUTATIONS: dict[str, Callable[[random.Random, bytes], bytes]] = {
    "truncate": truncate,
    "byte-flips": byte_flips,
    "wrong-type": wrong_type,
    "deep-nesting": deep_nesting,
    "huge-number": huge_number,
    "nan-infinity": nan_infinity,
    "time-out-of-range": time_out_of_range,
    "bad-utf8": bad_utf8,
    "duplicate-keys": duplicate_keys,
    "control-characters": control_characters,
    "five-mib": five_mib,
}


def make_case(rng: random.Random, lines: list[bytes], mutation: str) -> bytes:
    """The bytes of one case's file."""
    hostile = MUTATIONS[mutation](rng, rng.choice(lines))
    return b"\n".join([rng.choice(lines), hostile, *(a for a, _ in after_lines())]) + b"\n"


# -- running a case ---------------------------------------------------------------


def _cli(argv: list[str]) -> tuple[int, bytes, bytes]:
    out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
    err = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli_main(argv)
        out.flush()
    return code, out.buffer.getvalue(), err.getvalue().encode()


def check_case(data: bytes, workdir: Path) -> list[str]:
    """What went wrong with one case (empty: nothing). Raises nothing itself."""
    problems: list[str] = []
    path = workdir / "case.log"
    path.write_bytes(data)
    refs = [ref for _, ref in after_lines()]
    snapdir = workdir / "snapshots"
    for flags in (["--json", "--markdown", str(snapdir)], ["--text"]):
        try:
            code, out, err = _cli(["replay", *flags, str(path)])
        except BaseException:
            problems.append(f"replay {flags[0]}: {traceback.format_exc()}")
            continue
        if code != 0:
            problems.append(f"replay {flags[0]} exited {code}: {err[-400:]!r}")
        if flags[0] == "--json":
            missing = [r for r in refs if r.encode() not in out]
            if missing:
                problems.append(f"replay --json: events of valid lines missing: {missing}")
    try:
        ing = Ingestor()
        correlator = Correlator()
        for lineno, raw in enumerate(data.split(b"\n"), 1):
            for ev in ing.feed_line(raw, origin=f"case:{lineno}"):
                correlator.add(ev)
        for ev in ing.flush():
            correlator.add(ev)
        seen = set()
        for inc in correlator.sorted_incidents():
            events = correlator.events_of(inc.id)
            render_markdown(inc, events, lambda e: None)
            incident_json_line(inc, events)
            seen.update(e.ref for e in events)
        text_report(correlator.sorted_incidents(), correlator.events_of)
        missing = [r for r in refs if r not in seen]
        if missing:
            problems.append(f"live ingest: events of valid lines missing: {missing}")
    except BaseException:
        problems.append(f"live ingest: {traceback.format_exc()}")
    return problems


def run(cases: int, seed: int, fixtures: Path, keep: int = 5) -> int:
    lines = fixture_lines(fixtures)
    if not lines:
        print(f"no fixture lines under {fixtures}", file=sys.stderr)
        return 2
    rng = random.Random(seed)
    names = sorted(MUTATIONS)
    failures = 0
    saved: list[Path] = []
    keep_dir: Path | None = None
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="ktriage-fuzz-") as tmp:
        for i in range(cases):
            mutation = names[i % len(names)]
            data = make_case(rng, lines, mutation)
            workdir = Path(tmp) / "case"
            workdir.mkdir(mode=0o700, exist_ok=True)
            problems = check_case(data, workdir)
            if problems:
                failures += 1
                if len(saved) < keep:
                    if keep_dir is None:
                        keep_dir = Path(tempfile.mkdtemp(prefix="ktriage-fuzz-failures-"))
                    where = keep_dir / f"case-{i}-{mutation}.log"
                    where.write_bytes(data)
                    (keep_dir / f"case-{i}-{mutation}.txt").write_text("\n".join(problems))
                    saved.append(where)
            for child in workdir.rglob("*"):
                if child.is_file():
                    child.unlink()
            if (i + 1) % 1000 == 0:
                print(f"  {i + 1} cases, {failures} failing", file=sys.stderr)
    elapsed = time.perf_counter() - started
    print(f"cases: {cases} ({len(names)} mutation classes, seed {seed})")
    print(f"failing cases (tracebacks or missing events): {failures}")
    for path in saved:
        print(f"  saved: {path}")
    print(f"time: {elapsed:.1f} s ({elapsed / max(cases, 1) * 1000:.1f} ms per case)")
    return 1 if failures else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--fixtures", type=Path, default=FIXTURES)
    args = parser.parse_args()
    return run(args.cases, args.seed, args.fixtures)


if __name__ == "__main__":
    sys.exit(main())
