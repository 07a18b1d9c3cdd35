"""A list's `resourceVersion`, `resourceVersionMatch` and `continue`, as documented in
"Resource versions" of the Kubernetes API concepts and worded as kube-apiserver words
its refusals.

- unset resourceVersion: the most recent state;
- "0": any state (this server's is always current);
- N (NotOlderThan, the default): a state at least as new as N; N beyond the newest
  is refused with 504 "Too large resource version";
- N with `Exact`: the state at N, or 410 Expired once the history no longer reaches it;
- `continue`: the next page of the list the token started, at the token's
  resourceVersion (one snapshot); once that is too old, 410 Expired with a token to
  go on inconsistently (its resourceVersion -1: at the newest state).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

import orjson

from ktriage.sim.server import errors

EXPIRED_LIST = "The resourceVersion for the provided list is too old."
INCONSISTENT_CONTINUE = (
    "The provided continue parameter is too old to display a consistent list result. "
    "You can start a new list without the continue parameter, or use the continue token "
    "in this response to retrieve the remainder of the results. Continuing with the "
    "provided token results in an inconsistent list - objects that were created, "
    "modified, or deleted between the time the first chunk was returned and now may "
    "show up in the list."
)
LATEST = -1  # a continue token's resourceVersion: go on at the newest state


@dataclass(frozen=True)
class ContinueToken:
    rv: int
    start: str  # the first key of the next page ("namespace/name"), inclusive


@dataclass(frozen=True)
class ListOptions:
    resource_version: int | None  # None: unset or "0"
    exact: bool
    token: ContinueToken | None


def parse(query: Any) -> ListOptions:
    """The list options of a request's query; ApiError for what kube-apiserver refuses."""
    rv_text = query.get("resourceVersion", "")
    match = query.get("resourceVersionMatch", "")
    cont = query.get("continue", "")
    problems: list[str] = []
    if match:
        if not rv_text:
            problems.append(
                "resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden unless "
                "resourceVersion is provided"
            )
        if cont:
            problems.append(
                "resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden when "
                "continue is provided"
            )
        if match not in ("Exact", "NotOlderThan"):
            problems.append(
                f'resourceVersionMatch: Unsupported value: "{match}": supported values: '
                '"Exact", "NotOlderThan", ""'
            )
        if match == "Exact" and rv_text == "0":
            problems.append(
                'resourceVersionMatch: Forbidden: resourceVersionMatch "exact" is forbidden '
                'for resourceVersion "0"'
            )
    if problems:
        joined = problems[0] if len(problems) == 1 else "[" + ", ".join(problems) + "]"
        raise errors.ApiError(
            errors.status(422, "Invalid", f'ListOptions.meta.k8s.io "" is invalid: {joined}')
        )
    if cont and rv_text:
        raise errors.bad_request("specifying resource version is not allowed when using continue")
    rv: int | None = None
    if rv_text and rv_text != "0":
        try:
            rv = int(rv_text)
            if rv < 0:
                raise ValueError
        except ValueError:
            raise errors.bad_request(
                f'resourceVersion: Invalid value: "{rv_text}": strconv.ParseUint: '
                f'parsing "{rv_text}": invalid syntax'
            ) from None
    return ListOptions(rv, match == "Exact", decode_continue(cont) if cont else None)


def too_large(requested: int, current: int) -> errors.ApiError:
    """504 for a resourceVersion newer than the server's (storage's TooLargeResourceVersion)."""
    return errors.ApiError(
        errors.status(
            504,
            "Timeout",
            f"Timeout: Too large resource version: {requested}, current: {current}",
            {
                "causes": [
                    {"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}
                ],
                "retryAfterSeconds": 1,
            },
        )
    )


def list_expired() -> errors.ApiError:
    return errors.ApiError(errors.expired(EXPIRED_LIST))


def continue_expired(token: ContinueToken) -> errors.ApiError:
    """410 for a continue token older than the history, with one to go on at the newest
    state, as kube-apiserver answers (an inconsistent remainder, said so)."""
    status = errors.expired(INCONSISTENT_CONTINUE)
    status["metadata"] = {"continue": encode_continue(LATEST, token.start)}
    return errors.ApiError(status)


def encode_continue(rv: int, start: str) -> str:
    """A token like kube-apiserver's: base64 of `{"v":"meta.k8s.io/v1","rv":N,"start":K}`."""
    token = {"v": "meta.k8s.io/v1", "rv": rv, "start": start}
    return base64.urlsafe_b64encode(orjson.dumps(token)).decode().rstrip("=")


def decode_continue(text: str) -> ContinueToken:
    try:
        padded = text + "=" * (-len(text) % 4)
        data = orjson.loads(base64.urlsafe_b64decode(padded))
        if not isinstance(data, dict) or data.get("v") != "meta.k8s.io/v1":
            raise ValueError
        start, rv = data.get("start"), data.get("rv")
        if not isinstance(start, str) or not isinstance(rv, int) or isinstance(rv, bool):
            raise ValueError
        if rv == 0 or rv < LATEST:
            raise ValueError
    except (ValueError, TypeError, orjson.JSONDecodeError):
        raise errors.bad_request(
            "continue key is not valid: incorrect encoded start resourceVersion "
            "(version meta.k8s.io/v1)"
        ) from None
    return ContinueToken(rv, start)
