"""`metav1.Status` errors worded as kube-apiserver words them (k8s.io/apimachinery
pkg/api/errors)."""

from __future__ import annotations

from typing import Any

from ktriage.sim.resources import ResourceType


class ApiError(Exception):
    """An error answer: `status` is the metav1.Status body, `headers` extra headers."""

    def __init__(
        self,
        status: dict[str, Any],
        headers: dict[str, str] | None = None,
        *,
        plain_text: str | None = None,
    ) -> None:
        super().__init__(status.get("message", ""))
        self.status = status
        self.headers = headers or {}
        # Answered as this text/plain body instead of the Status (filters outside the
        # API machinery, such as API Priority and Fairness, write plain text).
        self.plain_text = plain_text

    @property
    def code(self) -> int:
        return int(self.status["code"])


def status(
    code: int, reason: str, message: str, details: dict[str, Any] | None = None
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
    }
    if details is not None:
        out["details"] = details
    out["code"] = code
    return out


def success(details: dict[str, Any] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
    }
    if details is not None:
        out["details"] = details
    return out


def _details(rt: ResourceType | None, name: str = "", **extra: Any) -> dict[str, Any]:
    d: dict[str, Any] = {}
    if name:
        d["name"] = name
    if rt is not None and rt.group:
        d["group"] = rt.group
    if rt is not None:
        d["kind"] = rt.resource
    d.update(extra)
    return d


def qualified(rt: ResourceType) -> str:
    return rt.group_resource


def not_found(rt: ResourceType, name: str) -> ApiError:
    return ApiError(
        status(404, "NotFound", f'{qualified(rt)} "{name}" not found', _details(rt, name))
    )


def namespace_not_found(name: str) -> ApiError:
    return ApiError(
        status(
            404, "NotFound", f'namespaces "{name}" not found', {"name": name, "kind": "namespaces"}
        )
    )


def path_not_found() -> ApiError:
    return ApiError(status(404, "NotFound", "the server could not find the requested resource", {}))


def already_exists(rt: ResourceType, name: str) -> ApiError:
    return ApiError(
        status(409, "AlreadyExists", f'{qualified(rt)} "{name}" already exists', _details(rt, name))
    )


def conflict(rt: ResourceType, name: str) -> ApiError:
    return ApiError(
        status(
            409,
            "Conflict",
            f'Operation cannot be fulfilled on {qualified(rt)} "{name}": the object has been '
            "modified; please apply your changes to the latest version and try again",
            _details(rt, name),
        )
    )


def forbidden(
    message: str, rt: ResourceType | None, group: str, resource: str, name: str
) -> ApiError:
    details: dict[str, Any] = {}
    if name:
        details["name"] = name
    if group:
        details["group"] = group
    if resource:
        details["kind"] = resource
    return ApiError(status(403, "Forbidden", message, details))


def unauthorized() -> ApiError:
    return ApiError(status(401, "Unauthorized", "Unauthorized"))


def bad_request(message: str) -> ApiError:
    return ApiError(status(400, "BadRequest", message))


def method_not_allowed() -> ApiError:
    return ApiError(
        status(
            405,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource",
            {},
        )
    )


def unsupported_media_type(content_type: str) -> ApiError:
    message = (
        "the body of the request was in an unknown format - accepted media types include: "
        "application/json, application/yaml, application/vnd.kubernetes.protobuf"
    )
    return ApiError(status(415, "UnsupportedMediaType", message, {}))


def invalid(rt: ResourceType, name: str, causes: list[tuple[str, str, str]]) -> ApiError:
    """422: causes are (field, reason, message)."""
    parts = [f"{field}: {msg}" for field, _, msg in causes]
    joined = parts[0] if len(parts) == 1 else "[" + ", ".join(parts) + "]"
    details: dict[str, Any] = {"name": name}
    if rt.group:
        details["group"] = rt.group
    details["kind"] = rt.kind
    details["causes"] = [
        {"reason": reason, "message": msg, "field": field} for field, reason, msg in causes
    ]
    # The message names the GroupKind (`Deployment.apps`), the details the bare kind.
    kind = f"{rt.kind}.{rt.group}" if rt.group else rt.kind
    return ApiError(status(422, "Invalid", f'{kind} "{name}" is invalid: {joined}', details))


def expired(message: str) -> dict[str, Any]:
    return status(410, "Expired", message)


TOO_MANY_REQUESTS = "Too many requests, please try again later."


def too_many_requests(retry_after: int) -> ApiError:
    """429 as API Priority and Fairness (and max-in-flight) answer it: plain text and
    `Retry-After`; `status` is what the audit record carries."""
    return ApiError(
        status(429, "TooManyRequests", TOO_MANY_REQUESTS, {"retryAfterSeconds": retry_after}),
        {"Retry-After": str(retry_after)},
        plain_text=TOO_MANY_REQUESTS,
    )


def internal_error(message: str) -> ApiError:
    return ApiError(
        status(
            500,
            "InternalError",
            f"Internal error occurred: {message}",
            {"causes": [{"message": message}]},
        )
    )


def service_unavailable(message: str) -> ApiError:
    return ApiError(status(503, "ServiceUnavailable", message))


def from_code(code: int, retry_after: int | None = None) -> ApiError:
    """The error a fault injects for `code`."""
    if code == 429:
        return too_many_requests(retry_after or 1)
    if code == 500:
        return internal_error("injected fault")
    if code == 503:
        return service_unavailable("the server is currently unable to handle the request")
    if code == 504:
        message = (
            "the server was unable to return a response in the time allotted, "
            "but may still be processing the request"
        )
        return ApiError(status(504, "Timeout", message))
    if code == 401:
        return unauthorized()
    if code == 404:
        return path_not_found()
    reason = _REASONS.get(code) or ("InternalError" if code >= 500 else "BadRequest")
    return ApiError(status(code, reason, f"injected fault ({code})"))


# metav1.StatusReason by HTTP code, as apimachinery's errors package pairs them.
_REASONS = {
    400: "BadRequest",
    403: "Forbidden",
    405: "MethodNotAllowed",
    406: "NotAcceptable",
    409: "Conflict",
    410: "Expired",
    413: "RequestEntityTooLarge",
    415: "UnsupportedMediaType",
    422: "Invalid",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}
