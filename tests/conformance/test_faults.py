"""Injected faults look like real failures: lost connections, API Priority and
Fairness' plain-text 429, probes left alone, 410 only where a history can be too
old, 409 labelled Conflict; and a fast clock never writes a future timestamp."""

from __future__ import annotations

import email.utils
import http.client
import json
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conformance_support import Target

pytestmark = pytest.mark.sim_only


@pytest.fixture
def faults(target: Target) -> Iterator[Any]:
    yield target.sim.faults
    target.sim.faults.reset()


def _core(api: Any) -> Any:
    from kubernetes import client

    return client.CoreV1Api(api)


def _connection(sim: Any) -> http.client.HTTPSConnection:
    context = ssl.create_default_context(cafile=str(sim.ca_path))
    host, port = sim.url.removeprefix("https://").split(":")
    return http.client.HTTPSConnection(host, int(port), context=context, timeout=10)


def _get(sim: Any, path: str, token: str | None = None) -> http.client.HTTPResponse:
    conn = _connection(sim)
    headers = {"Authorization": f"Bearer {token or sim.admin_token}"}
    conn.request("GET", path, headers=headers)
    resp = conn.getresponse()
    resp.read()
    conn.close()
    return resp


def test_cut_watch_is_a_lost_connection_not_a_clean_end(
    api: Any, namespace: str, faults: Any
) -> None:
    from kubernetes import watch

    core = _core(api)
    rv = core.list_namespaced_config_map(namespace).metadata.resource_version
    outcome: dict[str, Any] = {}

    def run() -> None:
        stream = watch.Watch().stream(
            core.list_namespaced_config_map, namespace, resource_version=rv, timeout_seconds=30
        )
        try:
            outcome["events"] = [ev["type"] for ev in stream]
            outcome["ended"] = "cleanly"
        except Exception as exc:
            outcome["ended"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    deadline = time.monotonic() + 10
    while faults.state()["open_watches"] < 1:
        assert time.monotonic() < deadline, "the watch never opened"
        time.sleep(0.01)
    assert faults.cut_watches() == 1
    thread.join(10)
    assert not thread.is_alive()
    assert isinstance(outcome["ended"], Exception), "the cut watch ended cleanly"


def test_reset_next_loses_the_connection_before_any_answer(target: Target, faults: Any) -> None:
    sim = target.sim
    faults.reset_next(1)
    conn = _connection(sim)
    conn.request(
        "GET", "/api/v1/namespaces", headers={"Authorization": f"Bearer {sim.admin_token}"}
    )
    with pytest.raises((ConnectionError, http.client.RemoteDisconnected, ssl.SSLError)):
        conn.getresponse().read()
    conn.close()
    assert faults.state()["reset_next"] == 0
    assert _get(sim, "/api/v1/namespaces").status == 200  # the next request is answered


def test_throttle_answers_plain_text_429_with_retry_after(target: Target, faults: Any) -> None:
    # On the wire (the official client's urllib3 retries a 429 that has Retry-After).
    sim = target.sim
    faults.throttle(1, retry_after=3)
    conn = _connection(sim)
    conn.request(
        "GET", "/api/v1/namespaces", headers={"Authorization": f"Bearer {sim.admin_token}"}
    )
    resp = conn.getresponse()
    body = resp.read()
    conn.close()
    assert resp.status == 429
    assert resp.headers["Retry-After"] == "3"
    assert resp.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert body == b"Too many requests, please try again later.\n"


def test_health_version_and_fault_api_are_exempt_from_faults(target: Target, faults: Any) -> None:
    sim = target.sim
    faults.fail_next(2, code=503)
    faults.throttle(2)
    faults.reset_next(2)
    for path in ("/healthz", "/readyz", "/livez", "/version", "/_sim/faults"):
        resp = _get(sim, path)
        assert resp.status == 200, path
    state = faults.state()
    assert state["fail_next"] == [503, 503] and state["throttle"] == 2
    assert state["reset_next"] == 2


def test_expire_next_watch_spares_a_watch_without_resource_version(
    api: Any, namespace: str, faults: Any
) -> None:
    core = _core(api)
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "here"}})
    rv = core.list_namespaced_config_map(namespace).metadata.resource_version
    faults.expire_next_watch(1)

    def watch_lines(**kwargs: Any) -> list[dict]:
        resp = core.list_namespaced_config_map(
            namespace, watch=True, timeout_seconds=1, _preload_content=False, **kwargs
        )
        lines = [json.loads(line) for line in resp.read().splitlines() if line.strip()]
        resp.release_conn()
        return lines

    # No resourceVersion (and "0"): the current state, never too old.
    assert [e["type"] for e in watch_lines()] == ["ADDED"]
    assert [e["type"] for e in watch_lines(resource_version="0")] == ["ADDED"]
    assert faults.state()["expire_next_watch"] == 1
    events = watch_lines(resource_version=rv)
    assert [e["type"] for e in events] == ["ERROR"]
    assert events[0]["object"]["code"] == 410 and events[0]["object"]["reason"] == "Expired"
    assert events[0]["object"]["message"].startswith(f"too old resource version: {rv} (")


def test_injected_409_is_a_conflict(api: Any, namespace: str, faults: Any) -> None:
    from kubernetes.client import ApiException

    faults.fail_next(1, code=409)
    with pytest.raises(ApiException) as err:
        _core(api).create_namespaced_config_map(namespace, {"metadata": {"name": "c"}})
    assert err.value.status == 409
    assert json.loads(err.value.body)["reason"] == "Conflict"


def test_fast_clock_never_writes_a_timestamp_ahead_of_the_server(tmp_path: Path) -> None:
    from kubernetes import client, config

    from ktriage.sim.runner import SimCluster

    # 4 minutes of scenario in about 2 seconds.
    cluster = SimCluster(tmp_path, scenario="cryptominer", speed=120).start()
    try:
        deadline = time.monotonic() + 30
        while not cluster.player.finished.is_set():
            assert time.monotonic() < deadline, "the scenario did not finish"
            time.sleep(0.05)
        api = config.new_client_from_config(config_file=str(cluster.kubeconfig_path))
        core = client.CoreV1Api(api)
        pods, _, headers = core.list_pod_for_all_namespaces_with_http_info()
        events = core.list_event_for_all_namespaces()
        api.close()
        server_now = email.utils.parsedate_to_datetime(headers["Date"]).timestamp()
        stamps = [p.metadata.creation_timestamp.timestamp() for p in pods.items]
        stamps += [e.metadata.creation_timestamp.timestamp() for e in events.items]
        stamps += [
            e.last_timestamp.timestamp() for e in events.items if e.last_timestamp is not None
        ]
        assert len(pods.items) > 0 and len(events.items) > 0
        # The Date header has whole seconds, as creationTimestamp does.
        ahead = [t for t in stamps if int(t) > server_now]
        assert ahead == [], f"{len(ahead)} timestamps ahead of the server's Date {server_now}"
        # Only lines ended by a newline are whole (the server may be writing one).
        audit = cluster.outputs.audit_path.read_text(encoding="utf-8").split("\n")[:-1]
        from datetime import datetime

        stage_times = [
            datetime.fromisoformat(json.loads(line)["stageTimestamp"].replace("Z", "+00:00"))
            for line in audit
            if line.strip()
        ]
        assert max(t.timestamp() for t in stage_times) <= time.time()
    finally:
        cluster.stop()


def test_blackhole_loses_the_real_request_never_applied_until_reset(
    api: Any, namespace: str, target: Target, faults: Any
) -> None:
    core = _core(api)
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "cm"}, "data": {"a": "1"}})
    faults.blackhole("PATCH", f"/namespaces/{namespace}/configmaps/cm")
    # A dry run is not lost.
    core.patch_namespaced_config_map("cm", namespace, {"data": {"a": "2"}}, dry_run="All")
    outcome: dict[str, Any] = {}

    def patch() -> None:
        try:
            core.patch_namespaced_config_map("cm", namespace, {"data": {"a": "3"}})
            outcome["answered"] = True
        except Exception as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=patch)
    thread.start()
    deadline = time.monotonic() + 10
    while faults.state()["held"] < 1:
        assert time.monotonic() < deadline, "the patch never reached the blackhole"
        time.sleep(0.01)
    assert thread.is_alive() and outcome == {}
    # Held, never applied; other requests are answered meanwhile.
    assert core.read_namespaced_config_map("cm", namespace).data == {"a": "1"}
    faults.reset()
    thread.join(timeout=10)
    assert not thread.is_alive() and "error" in outcome  # the connection ended, no answer
    assert faults.state()["held"] == 0
    assert core.read_namespaced_config_map("cm", namespace).data == {"a": "1"}
