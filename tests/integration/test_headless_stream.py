"""`ktriage --headless` ends where `ktriage replay` ends: a consumer that applies the
stream (the last line per id, dropping the ids a merged/closed line names) holds the
same incidents as a replay of the same files, even when incidents opened apart and
merged later."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
from test_headless import Headless, run

POD = {"namespace": "shop", "name": "web-1"}


def audit_exec(stamp: str, audit_id: str) -> dict[str, Any]:
    return {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": "Metadata",
        "auditID": audit_id,
        "stage": "ResponseComplete",
        "requestURI": "/api/v1/namespaces/shop/pods/web-1/exec?command=sh&stdin=true&tty=true",
        "verb": "create",
        "user": {"username": "mallory"},
        "sourceIPs": ["203.0.113.9"],
        "objectRef": {"resource": "pods", "subresource": "exec", **POD},
        "responseStatus": {"metadata": {}, "code": 101},
        "requestReceivedTimestamp": f"2026-11-27T{stamp}.000000Z",
        "stageTimestamp": f"2026-11-27T{stamp}.100000Z",
    }


def falco_shell(stamp: str, uuid: str) -> dict[str, Any]:
    return {
        "uuid": uuid,
        "time": f"2026-11-27T{stamp}.000000000Z",
        "rule": "Terminal shell in container",
        "priority": "Notice",
        "source": "syscall",
        "hostname": "node-a",
        "output": f"{stamp}: Notice A shell was spawned (user=root k8s.pod=web-1 shell=sh)",
        "output_fields": {
            "k8s.ns.name": "shop",
            "k8s.pod.name": "web-1",
            "container.id": "0123456789ab",
            "proc.cmdline": "sh",
        },
        "tags": ["container", "shell", "mitre_execution", "T1059"],
    }


def append(path: Path, records: list[dict[str, Any]]) -> None:
    with open(path, "ab") as fh:
        for rec in records:
            fh.write(orjson.dumps(rec) + b"\n")


def apply(lines: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    held: dict[str, dict[str, Any]] = {}
    for line in lines:
        if line.get("type") in ("merged", "closed"):
            held.pop(line["id"], None)
        elif "id" in line:
            held[line["id"]] = line
    return held


def test_headless_merge_stream_applied_equals_replay(tmp_path: Path) -> None:
    audit = tmp_path / "audit.log"
    falco = tmp_path / "falco.jsonl"
    # Three bursts on one pod, 50 minutes apart (the window is 30): three incidents.
    append(audit, [audit_exec("03:00:00", "exec-1")])
    append(
        falco,
        [
            falco_shell("03:00:05", "f-1"),
            falco_shell("03:50:00", "f-2"),
            falco_shell("04:40:00", "f-3"),
        ],
    )
    k = Headless(["--audit-log", str(audit), "--falco", str(falco), "--from-start"], tmp_path)
    try:
        k.wait_for(lambda: len(apply(k.lines)) == 3, what="three incidents")
        # Signals between the bursts arrive: everything is one incident.
        append(falco, [falco_shell("03:25:00", "f-bridge")])
        append(audit, [audit_exec("04:15:00", "exec-bridge")])
        k.wait_for(
            lambda: (
                len(apply(k.lines)) == 1 and len(next(iter(apply(k.lines).values()))["events"]) == 6
            ),
            what="one incident with every signal",
        )
        code = k.stop()
    finally:
        k.kill()
    assert code == 0, k.err[-5:]
    assert "skipped" in k.lines[-1]
    merged = [line for line in k.lines if line.get("type") == "merged"]
    assert len(merged) >= 2
    streamed = apply(k.lines)

    result = run(["replay", "--json", str(audit), str(falco)], tmp_path)
    assert result.returncode == 0, result.stderr
    replayed = [orjson.loads(line) for line in result.stdout.splitlines()[:-1]]
    assert len(replayed) == 1
    assert {i["id"]: i["title"] for i in replayed} == {
        i["id"]: i["title"] for i in streamed.values()
    }
    for inc in replayed:
        refs = sorted(e["ref"] for e in inc["events"])
        assert sorted(e["ref"] for e in streamed[inc["id"]]["events"]) == refs
    # Every merged line names an id the stream had printed and the surviving one.
    printed = {line["id"] for line in k.lines if "events" in line}
    assert all(m["id"] in printed and m["into"] in streamed for m in merged)
