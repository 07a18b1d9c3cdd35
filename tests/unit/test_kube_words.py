"""What a kube source says when talking to the API server fails: words a person can
act on, never the client's exception names ("API error 0 ... SSLError")."""

from __future__ import annotations

import socket
import ssl

import orjson
import urllib3
from kubernetes.client.exceptions import ApiException

from ktriage.sources.kube import describe_api_error, describe_connection_error, is_timeout


def _client_ssl_failure(inner: BaseException) -> ApiException:
    """What the kubernetes client raises on a TLS failure: status 0, raised while
    handling urllib3's SSLError (which is then its context)."""
    try:
        try:
            raise urllib3.exceptions.SSLError(inner)
        except urllib3.exceptions.SSLError as err:
            raise ApiException(status=0, reason=f"SSLError\n{err}")  # noqa: B904
    except ApiException as exc:
        return exc
    raise AssertionError("unreachable")


def test_hostile_ca_change_words_from_the_clients_status_0() -> None:
    inner = ssl.SSLCertVerificationError(
        1, "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: self-signed certificate"
    )
    inner.verify_message = "self-signed certificate in certificate chain"  # type: ignore[attr-defined]
    text = describe_api_error(_client_ssl_failure(inner), "list/watch pods")
    assert text == (
        "the API server's certificate is not trusted (certificate verify failed: "
        "self-signed certificate in certificate chain): has the cluster's CA changed? "
        "check the kubeconfig's certificate-authority-data"
    )


def test_hostile_ca_change_words_from_text_only() -> None:
    exc = ApiException(
        status=0,
        reason="SSLError\n[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed (_ssl.c:1006)",
    )
    text = describe_api_error(exc, "list/watch pods")
    assert text.startswith("the API server's certificate is not trusted (certificate verify")
    assert "SSLError" not in text and "API error 0" not in text


def test_other_tls_failures_are_said_without_the_exception_name() -> None:
    exc = ApiException(status=0, reason="SSLError\n[SSL: WRONG_VERSION_NUMBER] wrong version")
    assert describe_api_error(exc, "list/watch pods") == (
        "cannot talk to the API server: SSLError [SSL: WRONG_VERSION_NUMBER] wrong version"
    )


def test_dns_failure_is_named() -> None:
    gai = socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    try:  # as urllib3 raises it
        raise urllib3.exceptions.NameResolutionError("api.example.invalid", None, gai) from gai  # type: ignore[arg-type]
    except urllib3.exceptions.NameResolutionError as raised:
        err = raised
    assert describe_connection_error(err) == (
        "the API server's host name does not resolve (DNS): Name or service not known"
    )
    assert not is_timeout(err)


def test_timeouts_and_refusals() -> None:
    timeout = urllib3.exceptions.ReadTimeoutError(None, "/api/v1/pods", "Read timed out.")  # type: ignore[arg-type]
    assert describe_connection_error(timeout) == "read timed out"
    assert is_timeout(timeout)
    refused = urllib3.exceptions.NewConnectionError(None, "Connection refused")  # type: ignore[arg-type]
    assert describe_connection_error(refused) == "connection refused"
    assert not is_timeout(refused)


def _answer(code: int, message: str = "") -> ApiException:
    exc = ApiException(status=code, reason="Reason")
    if message:
        exc.body = orjson.dumps({"kind": "Status", "message": message}).decode()
    return exc


def test_http_answers_in_words() -> None:
    assert describe_api_error(_answer(401), "list/watch pods").startswith(
        "credentials rejected (401): the API server did not accept the kubeconfig's token "
        "or client certificate; check your kubeconfig credentials"
    )
    forbidden = _answer(403, 'pods is forbidden: User "bob" cannot list resource "pods"')
    assert describe_api_error(forbidden, "list/watch pods in shop") == (
        'forbidden (403) to list/watch pods in shop: pods is forbidden: User "bob" cannot '
        'list resource "pods"'
    )
    assert describe_api_error(_answer(429), "get pods/log in falco") == (
        "throttled by the API server (429)"
    )
    assert describe_api_error(_answer(503, "etcd is down"), "list/watch nodes") == (
        "API server error 503: etcd is down"
    )
    assert describe_api_error(_answer(404, "not found"), "list/watch events") == (
        "API error 404 on list/watch events: not found"
    )
