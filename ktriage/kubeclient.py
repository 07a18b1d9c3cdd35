"""The official Kubernetes client as the product uses it, in one place.

Sources (the live watchers) and actions build their ApiClients here, and read
the server's answers with the same helpers:

- `client_from_kubeconfig`: one ApiClient for a kubeconfig file and context, with
  urllib3's own retries off (every failure is seen and retried by ktriage, with
  backoff, Retry-After and a word in the health line or the action's record) and
  keep-alive on (idle watches through proxies stay open), and this process's user
  agent (`USER_AGENT`, with a random session token) so the audit log tells its own
  requests apart from everyone else's, a copied `ktriage/...` agent included;
- `status_message`: the `message` of the Status the server sent, as plain text
  (a server's words are untrusted: control characters gone, length bounded);
- `retry_after`: the Retry-After header in seconds, when there is a usable one;
- `KeptClient`: one ApiClient made on first use and kept for a reader's life;
- `raw_get`: a GET whose answer is read as bytes or a stream (lists, watches, logs),
  through the ApiClient's own request path (auth, TLS, proxies) without the typed
  API classes: the core/v1 one alone takes most of a second to import;
- `raw_post`: a POST of a JSON body by the same path (the access and identity
  reviews every live session sends at start: importing their API classes and
  models, about 40 ms of CPU, fell in the middle of the first pods' load).
"""

from __future__ import annotations

import contextlib
import json
import math
import secrets
import threading
from collections.abc import Callable
from typing import Any

from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException

from ktriage import __version__
from ktriage.core.detect.own import trust_own_agent
from ktriage.core.text import clip, printable

# Unguessable per process: the audit detector keeps this run's requests as context
# (never signals, never an identity that acted); any other `ktriage/...` agent, a
# replay's or an attacker's, is judged like anyone's.
SESSION_TOKEN = secrets.token_hex(5)
USER_AGENT = f"ktriage/{__version__} (session {SESSION_TOKEN})"
trust_own_agent(USER_AGENT)
MAX_STATUS_MESSAGE = 300


def tune(configuration: k8s.Configuration) -> None:
    """Retries off (ktriage retries, visibly) and keep-alive on."""
    configuration.retries = False
    configuration.keep_alive = True


def client_from_kubeconfig(path: str | None = None, context: str | None = None) -> k8s.ApiClient:
    """An ApiClient for a kubeconfig file and context, like kubectl's `--kubeconfig/--context`."""
    configuration = k8s.Configuration()
    tune(configuration)
    api = k8s_config.new_client_from_config(
        config_file=path,
        context=context,
        persist_config=False,
        client_configuration=configuration,
    )
    api.user_agent = USER_AGENT
    return api


def status_message(exc: ApiException) -> str:
    """The `message` of the Status the server returned (else its body or reason), as
    one line of plain text of at most MAX_STATUS_MESSAGE characters."""
    body = exc.body
    text = ""
    if body:
        try:
            status = json.loads(body)
        except (ValueError, TypeError):
            text = str(body)
        else:
            if isinstance(status, dict):
                text = str(status.get("message") or "")
            else:
                text = str(body)
    text = text.strip() or str(exc.reason or "")
    return clip(printable(text), MAX_STATUS_MESSAGE)


def retry_after(exc: ApiException) -> float | None:
    """Seconds the server asked to wait (Retry-After), or None."""
    headers = exc.headers or {}
    value = headers.get("Retry-After") if hasattr(headers, "get") else None
    if value is None:
        return None
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, seconds) if math.isfinite(seconds) else None


def raw_get(
    api_client: k8s.ApiClient,
    path: str,
    query: list[tuple[str, str]],
    *,
    path_params: dict[str, str] | None = None,
    accept: str = "application/json",
    timeout: Any = None,
) -> Any:
    """GET `path` (its `{name}` parts filled from `path_params`, quoted) with `query`;
    the urllib3 response, not read. A reply outside 2xx raises ApiException, as the
    typed API classes do."""
    return _send(api_client, "GET", path, query, path_params, {"Accept": accept}, None, timeout)


def raw_post(
    api_client: k8s.ApiClient, path: str, body: dict[str, Any], *, timeout: Any = None
) -> Any:
    """POST `body` as JSON to `path`; the urllib3 response, not read (a reply outside
    2xx raises ApiException)."""
    headers = {"Accept": "application/json", "Content-Type": "application/json"}
    return _send(api_client, "POST", path, [], None, headers, body, timeout)


def _send(
    api_client: k8s.ApiClient,
    method: str,
    path: str,
    query: list[tuple[str, str]],
    path_params: dict[str, str] | None,
    headers: dict[str, str],
    body: dict[str, Any] | None,
    timeout: Any,
) -> Any:
    method, url, headers, body, post = api_client.param_serialize(
        method=method,
        resource_path=path,
        path_params=path_params,
        query_params=query,
        header_params=headers,
        body=body,
        auth_settings=["BearerToken"],
    )
    resp = api_client.call_api(
        method, url, header_params=headers, body=body, post_params=post, _request_timeout=timeout
    )
    if not 200 <= resp.status <= 299:
        resp.read()
        raise ApiException.from_response(http_resp=resp, body=None, data=None)
    return resp.response


class KeptClient:
    """One ApiClient from `factory`, made on first use and kept until `close`: its
    connections are reused between reads (a TLS handshake per list would cost more than
    the lists). Safe to share between worker threads."""

    def __init__(self, factory: Callable[[], Any]) -> None:
        self.factory = factory
        self._lock = threading.Lock()
        self._api: Any = None

    def get(self) -> Any:
        with self._lock:
            if self._api is None:
                self._api = self.factory()
            return self._api

    def close(self) -> None:
        """Close the client if one was made (the next `get` makes a new one)."""
        with self._lock:
            api, self._api = self._api, None
        if api is not None:
            with contextlib.suppress(Exception):
                api.close()
