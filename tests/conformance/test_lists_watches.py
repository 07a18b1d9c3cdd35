"""Lists and watches read consistent state: a paged list is one snapshot, continue
tokens expire, resourceVersion/resourceVersionMatch mean what the API concepts say,
and each resource type keeps its own watch history."""

from __future__ import annotations

import json
from typing import Any

import pytest
from conformance_support import Kubectl, Target

EXPIRED_CONTINUE = (
    "The provided continue parameter is too old to display a consistent list result. "
    "You can start a new list without the continue parameter, or use the continue token "
    "in this response to retrieve the remainder of the results. Continuing with the "
    "provided token results in an inconsistent list - objects that were created, "
    "modified, or deleted between the time the first chunk was returned and now may "
    "show up in the list."
)


def _core(api: Any) -> Any:
    from kubernetes import client

    return client.CoreV1Api(api)


def _make_configmaps(core: Any, namespace: str, names: list[str]) -> None:
    for name in names:
        core.create_namespaced_config_map(
            namespace, {"metadata": {"name": name}, "data": {"v": "1"}}
        )


def _status(exc: Any) -> dict:
    return json.loads(exc.body)


def _watch_lines(core: Any, namespace: str, **kwargs: Any) -> list[dict]:
    """A configmap watch read to its end (it ends by timeoutSeconds or an error)."""
    resp = core.list_namespaced_config_map(namespace, watch=True, _preload_content=False, **kwargs)
    try:
        return [json.loads(line) for line in resp.read().splitlines() if line.strip()]
    finally:
        resp.release_conn()


def test_paged_list_is_one_snapshot_while_objects_change(api: Any, namespace: str) -> None:
    core = _core(api)
    _make_configmaps(core, namespace, [f"cm-{i}" for i in range(6)])
    first = core.list_namespaced_config_map(namespace, limit=2)
    rv = first.metadata.resource_version
    assert first.metadata._continue and first.metadata.remaining_item_count == 4
    before = {
        cm.metadata.name: cm.metadata.resource_version
        for cm in core.list_namespaced_config_map(namespace, resource_version=rv,
                                                  resource_version_match="Exact").items
    }  # fmt: skip
    # Between the pages: one created, one not yet listed deleted, one changed.
    _make_configmaps(core, namespace, ["cm-new"])
    core.delete_namespaced_config_map("cm-5", namespace)
    core.patch_namespaced_config_map("cm-3", namespace, {"data": {"v": "2"}})
    items = list(first.items)
    token = first.metadata._continue
    while token:
        page = core.list_namespaced_config_map(namespace, limit=2, _continue=token)
        assert page.metadata.resource_version == rv  # every page at the first one's RV
        items += page.items
        token = page.metadata._continue
    assert {cm.metadata.name: cm.metadata.resource_version for cm in items} == before
    assert [cm.metadata.name for cm in items] == [f"cm-{i}" for i in range(6)]
    assert next(cm for cm in items if cm.metadata.name == "cm-3").data == {"v": "1"}


@pytest.mark.sim_only
def test_continue_token_expires_with_410_and_a_token_to_go_on(
    api: Any, namespace: str, target: Target
) -> None:
    from kubernetes.client import ApiException

    core = _core(api)
    _make_configmaps(core, namespace, ["a", "b", "c", "d"])
    first = core.list_namespaced_config_map(namespace, limit=2)
    _make_configmaps(core, namespace, ["e"])
    target.sim.store.compact()  # as an etcd compaction past the list's resourceVersion
    with pytest.raises(ApiException) as err:
        core.list_namespaced_config_map(namespace, limit=2, _continue=first.metadata._continue)
    assert err.value.status == 410
    status = _status(err.value)
    assert status["reason"] == "Expired" and status["message"] == EXPIRED_CONTINUE
    # The token in the answer goes on at the newest state: the remainder, "e" included.
    rest = core.list_namespaced_config_map(namespace, _continue=status["metadata"]["continue"])
    assert [cm.metadata.name for cm in rest.items] == ["c", "d", "e"]


def test_list_resource_version_semantics(api: Any, namespace: str) -> None:
    from kubernetes.client import ApiException

    core = _core(api)
    _make_configmaps(core, namespace, ["old"])
    rv = core.list_namespaced_config_map(namespace).metadata.resource_version
    _make_configmaps(core, namespace, ["new"])

    def names(**kwargs: Any) -> list[str]:
        return [
            cm.metadata.name for cm in core.list_namespaced_config_map(namespace, **kwargs).items
        ]

    assert names() == ["new", "old"]  # unset: the most recent state
    assert names(resource_version="0") == ["new", "old"]  # any state; never an older one here
    assert names(resource_version=rv) == ["new", "old"]  # not older than rv
    assert names(resource_version=rv, resource_version_match="NotOlderThan") == ["new", "old"]
    exact = core.list_namespaced_config_map(
        namespace, resource_version=rv, resource_version_match="Exact"
    )
    assert [cm.metadata.name for cm in exact.items] == ["old"]
    assert exact.metadata.resource_version == rv

    with pytest.raises(ApiException) as err:
        core.list_namespaced_config_map(namespace, resource_version_match="Exact")
    assert err.value.status == 422
    assert _status(err.value)["message"] == (
        'ListOptions.meta.k8s.io "" is invalid: resourceVersionMatch: Forbidden: '
        "resourceVersionMatch is forbidden unless resourceVersion is provided"
    )
    with pytest.raises(ApiException) as err:
        core.list_namespaced_config_map(
            namespace, resource_version="0", resource_version_match="Exact"
        )
    assert err.value.status == 422
    too_far = str(int(rv) + 10_000_000)
    with pytest.raises(ApiException) as err:
        core.list_namespaced_config_map(namespace, resource_version=too_far)
    assert err.value.status == 504
    status = _status(err.value)
    assert status["reason"] == "Timeout"
    assert status["message"].startswith(
        f"Timeout: Too large resource version: {too_far}, current: "
    )


@pytest.mark.sim_only
def test_exact_list_older_than_the_history_is_expired(
    api: Any, namespace: str, target: Target
) -> None:
    from kubernetes.client import ApiException

    core = _core(api)
    _make_configmaps(core, namespace, ["x"])
    rv = core.list_namespaced_config_map(namespace).metadata.resource_version
    _make_configmaps(core, namespace, ["y"])
    target.sim.store.compact()
    with pytest.raises(ApiException) as err:
        core.list_namespaced_config_map(
            namespace, resource_version=rv, resource_version_match="Exact"
        )
    assert err.value.status == 410
    assert _status(err.value)["message"] == "The resourceVersion for the provided list is too old."


@pytest.mark.sim_only
def test_hostile_flood_of_one_type_keeps_other_types_watchable(
    api: Any, namespace: str, target: Target
) -> None:
    store = target.sim.store
    core = _core(api)
    _make_configmaps(core, namespace, ["flooded"])
    rv = core.list_namespaced_config_map(namespace).metadata.resource_version
    # More changes to one ConfigMap than a type's window holds (10k).
    for i in range(10_050):
        store.mutate("v1", "ConfigMap", namespace, "flooded",
                     lambda obj, i=i: obj.__setitem__("data", {"v": str(i)}))  # fmt: skip
    core.create_namespaced_secret(namespace, {"metadata": {"name": "s"}, "data": {}})
    # Secrets kept their history: a watch from before the flood sees the new one.
    resp = core.list_namespaced_secret(
        namespace, watch=True, resource_version=rv, timeout_seconds=1, _preload_content=False
    )
    events = [json.loads(line) for line in resp.read().splitlines() if line.strip()]
    resp.release_conn()
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [("ADDED", "s")]
    # ConfigMaps' window moved on: the same resourceVersion is too old for them.
    events = _watch_lines(core, namespace, resource_version=rv, timeout_seconds=1)
    assert [e["type"] for e in events] == ["ERROR"]
    assert events[0]["object"]["code"] == 410 and events[0]["object"]["reason"] == "Expired"


@pytest.mark.parametrize(
    "token",
    [
        "not base64 at all!",
        "eyJ2IjoibWV0YS5rOHMuaW8vdjEiLCJydiI6dHJ1ZSwic3RhcnQiOiJ4In0",  # rv: true
        "eyJ2IjoibWV0YS5rOHMuaW8vdjEiLCJydiI6MCwic3RhcnQiOiJ4In0",  # rv: 0
        "W1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW10",  # nested arrays
    ],
)
def test_hostile_forged_continue_token_is_a_bad_request(
    api: Any, namespace: str, token: str
) -> None:
    from kubernetes.client import ApiException

    with pytest.raises(ApiException) as err:
        _core(api).list_namespaced_config_map(namespace, limit=1, _continue=token)
    assert err.value.status == 400
    assert _status(err.value)["reason"] == "BadRequest"


@pytest.mark.sim_only
def test_hostile_continue_token_from_the_future_is_refused(api: Any, namespace: str) -> None:
    import base64

    from kubernetes.client import ApiException

    core = _core(api)
    current = int(core.list_namespaced_config_map(namespace).metadata.resource_version)
    forged = {"v": "meta.k8s.io/v1", "rv": current + 1_000_000, "start": "\x00"}
    token = base64.urlsafe_b64encode(json.dumps(forged).encode()).decode().rstrip("=")
    with pytest.raises(ApiException) as err:
        core.list_namespaced_config_map(namespace, limit=1, _continue=token)
    assert err.value.status == 504
    assert _status(err.value)["reason"] == "Timeout"


def test_kubectl_chunked_get_reads_every_page(api: Any, kubectl: Kubectl, namespace: str) -> None:
    core = _core(api)
    _make_configmaps(core, namespace, [f"chunk-{i}" for i in range(5)])
    result = kubectl("get", "configmaps", "-n", namespace, "--chunk-size=2", "-o", "name")
    assert result.returncode == 0, result.stderr
    names = [line for line in result.stdout.splitlines() if line.startswith("configmap/chunk-")]
    assert names == [f"configmap/chunk-{i}" for i in range(5)]
