"""The pure parts of the resource reader: prompt words, rows as kubectl shows them,
redacted YAML, and the line splitter that keeps attacker-long log lines bounded."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from ktriage.resourceread import (
    PROMPT_WORDS,
    RESOURCES,
    HeadSplitter,
    make_row,
    object_yaml,
    pod_status,
    resolve,
)


@pytest.mark.parametrize(
    ("word", "name"),
    [
        ("pods", "pods"),
        (":po", "pods"),
        (" Pods ", "pods"),
        ("no", "nodes"),
        ("ev", "events"),
        ("networkpolicies", "netpol"),
        ("serviceaccounts", "sa"),
        ("clusterroles", "rbac"),
        ("rolebindings", "rbac"),
    ],
)
def test_prompt_words_and_aliases_resolve(word: str, name: str) -> None:
    resource = resolve(word)
    assert resource is not None and resource.name == name


def test_unknown_words_resolve_to_nothing_and_every_view_is_offered() -> None:
    assert resolve("secrets") is None and resolve("") is None and resolve("pods;rm") is None
    assert set(PROMPT_WORDS) >= {r.name for r in RESOURCES} | {"incidents"}


def pod(statuses: list[dict], **meta: str) -> dict:
    return {
        "metadata": {"name": "p", "namespace": "ns", **meta},
        "spec": {"containers": [{"name": s["name"]} for s in statuses], "nodeName": "n1"},
        "status": {"phase": "Running", "containerStatuses": statuses},
    }


def test_pod_status_reads_like_kubectl() -> None:
    running = {"name": "a", "ready": True, "restartCount": 2, "state": {"running": {}}}
    crashing = {
        "name": "b",
        "ready": False,
        "restartCount": 5,
        "state": {"waiting": {"reason": "CrashLoopBackOff"}},
    }
    assert pod_status(pod([running])) == ("1/1", "Running", 2)
    assert pod_status(pod([running, crashing])) == ("1/2", "CrashLoopBackOff", 7)
    assert pod_status(pod([running], deletionTimestamp="2026-01-01T00:00:00Z"))[1] == (
        "Terminating"
    )
    row = make_row("Pod", pod([running]), resolve("pods"))  # type: ignore[arg-type]
    assert row.cells[:5] == ("ns", "p", "1/1", "Running", "2") and row.cells[6] == "n1"


def test_hostile_malformed_objects_make_rows_not_exceptions() -> None:
    hostile = (
        {},
        {"metadata": "x", "spec": "y", "status": 3},
        {"status": {"containerStatuses": ["x", None], "initContainerStatuses": ["x", None]}},
        {"status": {"conditions": [None, "x"]}, "subjects": [None], "roleRef": "x"},
    )
    for obj in hostile:
        for resource in RESOURCES:
            for kind in resource.kinds:
                row = make_row(kind, obj, resource)  # type: ignore[arg-type]
                assert len(row.cells) == len(resource.columns)


def test_hostile_secrets_in_env_annotations_and_secret_data_are_redacted() -> None:
    token = "ghp_" + "Z9y8X7w6V5u4T3s2R1q0P9o8N7m6L5k4J3i2"
    obj = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "p",
            "annotations": {"ci": f"token={token}", "note": "\x1b]52;c;ZXZpbA==\x07"},
            "managedFields": [{"manager": "kubectl"}],
        },
        "spec": {
            "containers": [
                {
                    "name": "c",
                    "env": [
                        {"name": "DB_PASSWORD", "value": "hunter2-value"},
                        {"name": "HEADERS", "value": "Authorization: Bearer abc.def.ghi"},
                    ],
                }
            ]
        },
    }
    text = object_yaml(obj)
    assert "hunter2-value" not in text and token not in text and "abc.def.ghi" not in text
    assert "managedFields" not in text
    # Control characters come out as YAML escapes, never raw.
    assert "\x1b" not in text and "\x07" not in text
    assert yaml.safe_load(text)["metadata"]["annotations"]["note"] == "\x1b]52;c;ZXZpbA==\x07"
    secret = object_yaml({"kind": "Secret", "metadata": {"name": "s"}, "data": {"k": "c2VjcmV0"}})
    assert "c2VjcmV0" not in secret


def test_head_splitter_joins_chunks_and_keeps_blank_and_last_lines() -> None:
    splitter = HeadSplitter(100)
    assert splitter.feed(b"hel") == []
    assert splitter.feed(b"lo\r\n\nwor") == ["hello", ""]
    assert splitter.finish() == ["wor"]
    assert splitter.finish() == []


def test_hostile_one_megabyte_line_keeps_its_head_and_says_the_rest() -> None:
    splitter = HeadSplitter(1024)
    out: list[str] = []
    chunk = b"A" * 65536
    for _ in range(16):  # 1 MiB without a newline, in pieces
        out += splitter.feed(chunk)
    out += splitter.feed(b"\nnext\n")
    assert len(out) == 2
    assert out[0].startswith("A" * 1024) and "1,047,552 more bytes" in out[0]
    assert len(out[0]) < 1100
    assert out[1] == "next"


def test_hostile_invalid_utf8_is_replaced_not_raised() -> None:
    assert HeadSplitter(100).feed(b"\xff\xfeok\n") == ["\ufffd\ufffdok"]


def test_event_count_reads_count_or_series_count() -> None:
    from ktriage.resourceread import event_count

    assert event_count({"count": 4}) == 4
    assert event_count({"series": {"count": 9}}) == 9
    assert event_count({"count": 2, "series": {"count": 5}}) == 5
    assert event_count({}) == 1


@pytest.mark.parametrize(
    "hostile",
    [
        {"count": True},
        {"count": "4"},
        {"count": -3},
        {"count": 10**30},
        {"count": 2.5},
        {"series": "x"},
        {"series": {"count": [1]}},
        {"count": None, "series": None},
    ],
)
def test_hostile_event_count_values_are_not_believed(hostile: dict[str, Any]) -> None:
    from ktriage.resourceread import event_count, event_row

    assert event_count(hostile) == 1
    assert event_row(hostile).cells[5] == "x1"
