"""Running cluster calls for actions: in threads, with bounded retries, plain errors, rollback.

- Every call runs in a thread (`asyncio.to_thread`): the UI loop never blocks.
- 429 and 5xx, timeouts and dropped connections are retried with bounded
  exponential backoff, honouring the server's Retry-After (capped), then
  reported with the number of attempts. Writes are safe to repeat: every patch
  ktriage sends is idempotent, a repeated create meets 409 AlreadyExists and
  a repeated delete meets 404, which the actions treat as done.
- 403 names the permission that was missing; 404 says the object is gone;
  409 is handed back to the action, which re-reads and retries once
  (`retry_on_conflict`).
- `run_steps` applies a multi-step change and, when a step fails, undoes the
  steps already done in reverse; whatever it cannot undo is reported with the
  kubectl command that removes it.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import urllib3
from kubernetes.client.exceptions import ApiException

from ktriage.actions.base import ActionError, Target
from ktriage.actions.permissions import Permission
from ktriage.core.text import printable
from ktriage.kubeclient import retry_after, status_message

T = TypeVar("T")

RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    attempts: int = 4  # tries in all, for retryable failures
    base_delay: float = 0.2  # doubled after each failure, with jitter
    max_delay: float = 2.0
    max_retry_after: float = 5.0  # never wait longer than this for a Retry-After
    timeout: float = 10.0  # per request (connect and each read)


def translate(
    exc: BaseException,
    what: str,
    *,
    subject: Target | None = None,
    permission: Permission | None = None,
    identity: str = "",
) -> ActionError:
    """Turn a client exception into one plain sentence."""
    if isinstance(exc, ActionError):
        return exc
    if isinstance(exc, ApiException):
        status = int(exc.status or 0)
        said = status_message(exc)
        if status == 403:
            who = identity or "the current identity"
            need = f"{who} needs {permission.words()}" if permission else f"{who} is not allowed"
            return ActionError(
                f"{what}: forbidden: {need} (server: {said})", status=403, reason="forbidden"
            )
        if status == 404:
            gone = f"{subject.words()} is gone" if subject else "the object is gone"
            return ActionError(f"{what}: {gone} (server: {said})", status=404, reason="not-found")
        if status == 409:
            reason = "already-exists" if "already exists" in said else "conflict"
            return ActionError(f"{what}: conflict: {said}", status=409, reason=reason)
        if status == 401:
            return ActionError(
                f"{what}: the credentials were rejected (expired token?): {said}",
                status=401,
                reason="unauthorized",
            )
        if status == 429:
            return ActionError(
                f"{what}: the API server is throttling requests: {said}",
                status=429,
                reason="throttled",
            )
        if status >= 500:
            return ActionError(
                f"{what}: server error {status}: {said}", status=status, reason="server"
            )
        if status in (400, 422):
            return ActionError(
                f"{what}: the server rejected the request: {said}", status=status, reason="invalid"
            )
        if status == 0:
            return ActionError(f"{what}: {said}", reason="network")
        return ActionError(f"{what}: HTTP {status}: {said}", status=status, reason="http")
    if isinstance(exc, urllib3.exceptions.TimeoutError):
        return ActionError(f"{what}: timed out", reason="timeout")
    if isinstance(exc, urllib3.exceptions.HTTPError | ConnectionError | OSError):
        return ActionError(
            f"{what}: cannot reach the API server ({type(exc).__name__})", reason="network"
        )
    return ActionError(f"{what}: {type(exc).__name__}: {printable(str(exc))}", reason="error")


def _retryable(error: ActionError) -> bool:
    return error.status in RETRYABLE_STATUS or error.reason in ("timeout", "network")


class Runner:
    """Runs blocking client calls in threads with the retry policy."""

    def __init__(
        self,
        policy: RetryPolicy | None = None,
        *,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    ) -> None:
        self.policy = policy or RetryPolicy()
        self._sleep = sleep
        self.identity = ""  # for 403 messages; set once SelfSubjectReview answered
        self.attempts = 0  # requests sent, for the record
        self.retries = 0

    async def call(
        self,
        fn: Callable[..., T],
        *args: Any,
        what: str,
        subject: Target | None = None,
        permission: Permission | None = None,
        **kwargs: Any,
    ) -> T:
        """Call `fn(*args, timeout=..., **kwargs)` in a thread, retrying what can be retried."""
        policy = self.policy
        delay = policy.base_delay
        timeout = (min(policy.timeout, 5.0), policy.timeout)  # (connect, read)
        last: ActionError | None = None
        for attempt in range(1, max(1, policy.attempts) + 1):
            self.attempts += 1
            try:
                return await asyncio.to_thread(fn, *args, timeout=timeout, **kwargs)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                error = translate(
                    exc, what, subject=subject, permission=permission, identity=self.identity
                )
                if not _retryable(error) or attempt >= policy.attempts:
                    if attempt > 1:
                        error.message += f" (after {attempt} attempts)"
                        error.args = (error.message,)
                    raise error from None
                last = error
                wait = delay * random.uniform(0.8, 1.2)
                if isinstance(exc, ApiException):
                    hinted = retry_after(exc)
                    if hinted is not None:
                        wait = min(hinted, policy.max_retry_after)
                self.retries += 1
                await self._sleep(wait)
                delay = min(delay * 2, policy.max_delay)
        raise last or ActionError(f"{what}: failed")

    async def retry_on_conflict(self, attempt: Callable[[bool], Awaitable[T]]) -> T:
        """Run `attempt(refresh=False)`; on 409, once more with `refresh=True`.

        The attempt re-reads the object when `refresh` is set and recomputes
        its patch from what it finds (or finds there is nothing left to do).
        """
        try:
            return await attempt(False)
        except ActionError as error:
            if error.reason != "conflict":
                raise
        try:
            return await attempt(True)
        except ActionError as error:
            if error.reason == "conflict":
                error.message = (
                    "the object changed again while applying; nothing more was done: "
                    + (error.message)
                )
                error.args = (error.message,)
            raise


@dataclass(slots=True)
class Step:
    """One change of a multi-step action, with how to reverse it."""

    description: str  # "create NetworkPolicy shop/ktriage-quarantine-web"
    do: Callable[[], Awaitable[Any]]
    # How to reverse it when a later step fails; None: keep it (and say so).
    undo: Callable[[], Awaitable[Any]] | None = None
    # What stays behind if it cannot be reversed, with the command that removes it.
    leftover: str = ""


@dataclass(slots=True)
class StepsResult:
    done: list[str] = field(default_factory=list)
    results: list[Any] = field(default_factory=list)
    error: ActionError | None = None
    failed_step: str = ""
    rolled_back: list[str] = field(default_factory=list)
    leftovers: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.error is None


async def run_steps(steps: list[Step]) -> StepsResult:
    """Apply steps in order; on failure, reverse the done ones, newest first."""
    result = StepsResult()
    done: list[Step] = []
    for step in steps:
        try:
            result.results.append(await step.do())
        except ActionError as error:
            result.error = error
            result.failed_step = step.description
            # A timed-out request may still have landed: reverse it too (idempotently).
            if error.reason in ("timeout", "network") and step.undo is not None:
                done.append(step)
            break
        done.append(step)
        result.done.append(step.description)
    if result.error is None:
        return result
    for step in reversed(done):
        # The failed step itself (a timeout) may or may not have landed.
        maybe = "possibly " if step.description == result.failed_step else ""
        if step.undo is None:
            if step.leftover:
                result.leftovers.append(maybe + step.leftover)
            continue
        try:
            await step.undo()
            result.rolled_back.append(step.description)
        except ActionError as error:
            result.leftovers.append(f"{maybe}{step.leftover} (rollback failed: {error.message})")
    return result
