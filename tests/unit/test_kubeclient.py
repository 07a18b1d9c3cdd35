"""The one place the product reads the API server's errors: sanitised, bounded, total."""

from __future__ import annotations

import pytest
from kubernetes.client.exceptions import ApiException

from ktriage.kubeclient import MAX_STATUS_MESSAGE, USER_AGENT, retry_after, status_message


def _error(body: object = None, reason: str = "", headers: dict | None = None) -> ApiException:
    exc = ApiException(status=500, reason=reason)
    exc.body = body
    exc.headers = headers
    return exc


def test_the_status_message_is_read_from_a_kube_status() -> None:
    body = '{"kind":"Status","status":"Failure","message":"pods \\"x\\" is forbidden","code":403}'
    assert status_message(_error(body)) == 'pods "x" is forbidden'


def test_hostile_escape_characters_in_a_server_message_become_visible_text() -> None:
    body = '{"message":"denied\\u001b]52;c;aGk=\\u0007\\u001b[2J\\r\\nnext"}'
    text = status_message(_error(body))
    assert "\x1b" not in text and "\x07" not in text and "\r" not in text and "\n" not in text
    assert "denied" in text and "next" in text


def test_hostile_huge_bodies_are_bounded() -> None:
    assert len(status_message(_error("x" * 1_000_000))) <= MAX_STATUS_MESSAGE
    assert len(status_message(_error('{"message": "' + "y" * 100_000 + '"}'))) <= (
        MAX_STATUS_MESSAGE
    )


@pytest.mark.parametrize(
    ("body", "reason", "expected"),
    [
        (None, "Service Unavailable", "Service Unavailable"),
        ("", "Bad Gateway", "Bad Gateway"),
        ("[1, 2]", "", "[1, 2]"),
        ('{"message": null}', "Conflict", "Conflict"),
        ("Too many requests, please try again later.\n", "", "Too many requests"),
    ],
)
def test_odd_bodies_fall_back_to_what_the_server_said(body, reason, expected) -> None:
    assert status_message(_error(body, reason)).startswith(expected)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("3", 3.0),
        ("0.5", 0.5),
        ("-4", 0.0),
        ("soon", None),
        ("nan", None),
        ("inf", None),
        ("1e400", None),
        ("Wed, 21 Oct 2015 07:28:00 GMT", None),
        (None, None),
    ],
)
def test_retry_after_is_read_or_ignored(value, expected) -> None:
    headers = {"Retry-After": value} if value is not None else {}
    assert retry_after(_error(headers=headers)) == expected


def test_the_user_agent_names_ktriage() -> None:
    assert USER_AGENT.startswith("ktriage/")
