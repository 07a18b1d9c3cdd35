"""Field errors as apimachinery's `field.Error` words them: (field, reason, message)."""

from __future__ import annotations

import re
from typing import Any

import orjson

Cause = tuple[str, str, str]

DNS_LABEL_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS_SUBDOMAIN_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
QUALIFIED_NAME_RE = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
LABEL_VALUE_RE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
IANA_SVC_NAME_RE = re.compile(r"^[-a-z0-9]+$")

DNS_LABEL_MESSAGE = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
    "and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', "
    "regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)
DNS_SUBDOMAIN_MESSAGE = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' "
    "or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex "
    "used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
QUALIFIED_NAME_MESSAGE = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and "
    "end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex "
    "used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
)
LABEL_VALUE_MESSAGE = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or "
    "'my_value',  or '12345', regex used for validation is "
    "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)
PORT_RANGE_MESSAGE = "must be between 1 and 65535, inclusive"


class GoRaw(str):
    """A value already printed as Go prints it (a struct), shown as is."""


def go_value(value: Any) -> str:
    """A bad value as field.Error prints it: strings quoted, numbers bare."""
    if isinstance(value, GoRaw):
        return str(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return orjson.dumps(value).decode()
    if isinstance(value, int | float):
        return str(value)
    if value is None:
        return "null"
    if isinstance(value, dict) and all(isinstance(v, str) for v in value.values()):
        pairs = ", ".join(f"{go_value(str(k))}:{go_value(v)}" for k, v in sorted(value.items()))
        return "map[string]string{" + pairs + "}"
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def invalid(field: str, value: Any, detail: str) -> Cause:
    return (field, "FieldValueInvalid", f"Invalid value: {go_value(value)}: {detail}")


def required(field: str, detail: str = "") -> Cause:
    return (field, "FieldValueRequired", "Required value" + (f": {detail}" if detail else ""))


def duplicate(field: str, value: Any) -> Cause:
    return (field, "FieldValueDuplicate", f"Duplicate value: {go_value(value)}")


def not_found(field: str, value: Any) -> Cause:
    return (field, "FieldValueNotFound", f"Not found: {go_value(value)}")


def forbidden(field: str, detail: str) -> Cause:
    return (field, "FieldValueForbidden", f"Forbidden: {detail}")


def not_supported(field: str, value: Any, supported: list[str]) -> Cause:
    values = ", ".join(f'"{v}"' for v in sorted(supported))
    return (
        field,
        "FieldValueNotSupported",
        f"Unsupported value: {go_value(value)}: supported values: {values}",
    )


def dns_label(field: str, value: Any) -> list[Cause]:
    return _dns_name(field, value, 63, DNS_LABEL_RE, DNS_LABEL_MESSAGE)


def dns_subdomain(field: str, value: Any) -> list[Cause]:
    return _dns_name(field, value, 253, DNS_SUBDOMAIN_RE, DNS_SUBDOMAIN_MESSAGE)


def _dns_name(
    field: str, value: Any, longest: int, pattern: re.Pattern[str], message: str
) -> list[Cause]:
    """A DNS label or subdomain: a string of at most `longest` characters that `pattern`
    matches (kube-apiserver reports both problems when both apply)."""
    if not isinstance(value, str):
        return [invalid(field, value, message)]
    out = []
    if len(value) > longest:
        out.append(invalid(field, value, f"must be no more than {longest} characters"))
    if not pattern.match(value):
        out.append(invalid(field, value, message))
    return out


def qualified_name(field: str, key: str) -> list[Cause]:
    """A label or annotation key: an optional DNS subdomain prefix and a name part."""
    prefix, slash, name = key.rpartition("/")
    out: list[Cause] = []
    if slash:
        if not prefix:
            out.append(invalid(field, key, "prefix part must be non-empty"))
        elif len(prefix) > 253 or not DNS_SUBDOMAIN_RE.match(prefix):
            out.append(invalid(field, key, "prefix part " + DNS_SUBDOMAIN_MESSAGE))
    if not name:
        out.append(invalid(field, key, "name part must be non-empty"))
        return out
    if len(name) > 63:
        out.append(invalid(field, key, "name part must be no more than 63 characters"))
    if not QUALIFIED_NAME_RE.match(name):
        out.append(invalid(field, key, QUALIFIED_NAME_MESSAGE))
    return out


def port_number(field: str, value: Any) -> list[Cause]:
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 65535:
        return [invalid(field, value, PORT_RANGE_MESSAGE)]
    return []


def port_name(field: str, value: str) -> list[Cause]:
    out = []
    if len(value) > 15:
        out.append(invalid(field, value, "must be no more than 15 characters"))
    if not IANA_SVC_NAME_RE.match(value):
        out.append(
            invalid(
                field,
                value,
                "must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)",
            )
        )
    elif not re.search(r"[a-z]", value):
        out.append(invalid(field, value, "must contain at least one letter (a-z)"))
    if "--" in value:
        out.append(invalid(field, value, "must not contain consecutive hyphens"))
    if value.startswith("-") or value.endswith("-"):
        out.append(invalid(field, value, "must not begin or end with a hyphen"))
    return out
