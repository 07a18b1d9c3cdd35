"""Failures put into words: what the client raises becomes one plain sentence with a
reason the runner retries by; irreversible actions refuse an undo in words; a full
event store counts what it did not keep."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import urllib3
from kubernetes.client.exceptions import ApiException

from ktriage.actions.base import ActionError, ActionRecord, Target
from ktriage.actions.detach import Detach
from ktriage.actions.logs import DumpLogs
from ktriage.actions.revoke import RevokeCredentials
from ktriage.actions.runner import Runner, _retryable, translate
from ktriage.actions.workload import DeletePod
from ktriage.core.model import EntityKind, Event, Severity, entity
from ktriage.engine import Engine, SourceHealth
from ktriage.sources.base import STORE_FULL, deliver

POD = Target(EntityKind.POD, "shop", "web-1")


def _api_exception(status: int, body: str = "", reason: str = "") -> ApiException:
    exc = ApiException(status=status, reason=reason)
    exc.body = body
    return exc


def test_an_unusual_status_is_named_with_its_number() -> None:
    error = translate(_api_exception(418, '{"message": "short and stout"}'), "patch pod")
    assert error.message == "patch pod: HTTP 418: short and stout"
    assert (error.status, error.reason) == (418, "http")
    assert not _retryable(error)


def test_a_status_without_a_code_is_a_network_failure_and_retried() -> None:
    error = translate(_api_exception(0, reason="Connection refused"), "read pod")
    assert error.message == "read pod: Connection refused"
    assert error.reason == "network" and _retryable(error)


@pytest.mark.parametrize(
    "exc",
    [ConnectionResetError(104, "reset"), urllib3.exceptions.ProtocolError("gone"), OSError()],
)
def test_a_lost_connection_says_the_server_cannot_be_reached(exc: BaseException) -> None:
    error = translate(exc, "list pods")
    assert error.message == f"list pods: cannot reach the API server ({type(exc).__name__})"
    assert error.reason == "network" and _retryable(error)


def test_a_timeout_is_retried() -> None:
    error = translate(urllib3.exceptions.ReadTimeoutError(None, "/", "read timed out"), "get")
    assert error.message == "get: timed out" and _retryable(error)


def test_hostile_control_characters_in_an_unexpected_error_are_dropped() -> None:
    error = translate(ValueError("bad\x1b]52;c;ZXZpbA==\x07value\r\n"), "decode reply")
    assert error.reason == "error" and not _retryable(error)
    assert error.message.startswith("decode reply: ValueError: bad")
    assert "\x1b" not in error.message and "\x07" not in error.message
    assert "\r" not in error.message and "\n" not in error.message


def test_an_action_error_passes_through_unchanged() -> None:
    original = ActionError("already in words", reason="forbidden")
    assert translate(original, "anything") is original


def test_a_second_conflict_is_not_retried_again_and_says_so() -> None:
    tries: list[bool] = []

    async def attempt(refresh: bool) -> str:
        tries.append(refresh)
        raise ActionError("patch node w1: conflict: the object has been modified", status=409,
                          reason="conflict")  # fmt: skip

    with pytest.raises(ActionError) as caught:
        asyncio.run(Runner().retry_on_conflict(attempt))
    assert tries == [False, True]
    assert caught.value.message.startswith(
        "the object changed again while applying; nothing more was done: patch node w1"
    )
    assert str(caught.value) == caught.value.message


def test_a_failure_other_than_a_conflict_is_not_tried_again() -> None:
    tries: list[bool] = []

    async def attempt(refresh: bool) -> str:
        tries.append(refresh)
        raise ActionError("read node w1: forbidden", reason="forbidden")

    with pytest.raises(ActionError, match=r"^read node w1: forbidden$"):
        asyncio.run(Runner().retry_on_conflict(attempt))
    assert tries == [False]


@pytest.mark.parametrize(
    ("action", "words"),
    [
        (DeletePod(), "a deleted pod cannot be brought back"),
        (RevokeCredentials(), "revoked credentials cannot be brought back"),
        (DumpLogs(), "evidence is kept: a log dump is not undone"),
        (Detach(), "detach cannot be undone by ktriage"),
    ],
)
def test_irreversible_actions_refuse_an_undo_in_words(action: Any, words: str) -> None:
    record = ActionRecord("A1", action.name, "INC-1", POD, POD, 0.0, "admin", "ok", "")
    with pytest.raises(ActionError, match=words):
        asyncio.run(action.plan_undo(None, record))
    with pytest.raises(ActionError, match=words):
        asyncio.run(action.undo(None, None))


def _events(n: int, start: float) -> list[Event]:
    return [
        Event(
            time=start + i,
            source="falco",
            ref=f"alert-{start}-{i}",
            kind="shell",
            severity=Severity.HIGH,
            summary="Shell spawned",
            entities=(entity(EntityKind.POD, "shop", "web-1"),),
            signal=True,
            label="Shell",
        )
        for i in range(n)
    ]


def test_a_full_event_store_counts_what_it_did_not_keep() -> None:
    engine = Engine(max_events=3)
    health = SourceHealth(name="falco", kind="falco")
    deliver(engine, health, [])
    assert health.events_total == 0 and not health.skipped
    deliver(engine, health, _events(2, 1000.0))
    assert health.events_total == 2 and not health.skipped and health.last_error == ""
    deliver(engine, health, _events(4, 2000.0))
    # One more fitted; three were dropped, counted under store-full and said in words.
    assert health.events_total == 3
    assert health.skipped[STORE_FULL] == 3
    assert health.last_error == "event store full (3 events): 3 not kept"
