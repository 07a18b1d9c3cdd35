"""The sim's JSON patch (RFC 6902) walking a document: nested maps and lists, escaped
keys, and the message for a path that is not there."""

from __future__ import annotations

from typing import Any

import pytest

from ktriage.sim.storage.patch import PatchError, json_patch

DOC: dict[str, Any] = {
    "metadata": {"labels": {"app": "web", "a/b": "slash", "t~x": "tilde"}},
    "spec": {"containers": [{"name": "app", "args": ["-v"]}, {"name": "side"}]},
}


def test_every_operation_reaches_nested_maps_and_lists() -> None:
    ops = [
        {"op": "test", "path": "/spec/containers/0/name", "value": "app"},
        {"op": "replace", "path": "/spec/containers/1/name", "value": "sidecar"},
        {"op": "add", "path": "/spec/containers/0/args/-", "value": "-x"},
        {"op": "copy", "from": "/metadata/labels/a~1b", "path": "/metadata/labels/copied"},
        {"op": "move", "from": "/metadata/labels/t~0x", "path": "/metadata/labels/moved"},
        {"op": "remove", "path": "/metadata/labels/app"},
    ]
    out = json_patch(DOC, ops)
    assert out["spec"]["containers"] == [{"name": "app", "args": ["-v", "-x"]}, {"name": "sidecar"}]
    assert out["metadata"]["labels"] == {"a/b": "slash", "copied": "slash", "moved": "tilde"}
    assert DOC["metadata"]["labels"]["app"] == "web"  # the target is not changed


@pytest.mark.parametrize(
    ("op", "path"),
    [
        ({"op": "test", "path": "/spec/containers/2/name", "value": "x"}, "test"),
        ({"op": "replace", "path": "/spec/missing/name", "value": 1}, "replace"),
        ({"op": "copy", "from": "/spec/containers/x", "path": "/spec/y"}, "copy"),
        ({"op": "remove", "path": "/metadata/labels/app/deeper"}, "remove"),
    ],
)
def test_hostile_paths_that_are_not_there_are_refused_by_name(op: dict, path: str) -> None:
    with pytest.raises(PatchError, match=f"^{path} operation does not apply: doc is missing path"):
        json_patch(DOC, [op])
