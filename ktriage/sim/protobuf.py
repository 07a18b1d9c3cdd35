"""The few Kubernetes protobuf messages clients send the simulated server.

kubectl sends some requests as `application/vnd.kubernetes.protobuf` (`auth can-i`
posts a SelfSubjectAccessReview that way). A Kubernetes protobuf body is the magic
`k8s\\x00` followed by a `runtime.Unknown` message whose `raw` field holds the object.
This module decodes those objects into the JSON shape the rest of the server uses
and encodes the answers, from small schemas mirroring the `generated.proto` files
(field numbers and types); fields not in a schema are skipped.
"""

from __future__ import annotations

from typing import Any

MAGIC = b"k8s\x00"
CONTENT_TYPE = "application/vnd.kubernetes.protobuf"

# Schema: field number -> (json name, type); a type is a scalar name, a nested
# schema (dict), ("repeated", type) or ("map", value type) for map<string, value>.
Schema = dict[int, tuple[str, Any]]

TIME: Schema = {1: ("seconds", "int64"), 2: ("nanos", "int32")}
OBJECT_META: Schema = {
    1: ("name", "string"),
    2: ("generateName", "string"),
    3: ("namespace", "string"),
    5: ("uid", "string"),
    6: ("resourceVersion", "string"),
    7: ("generation", "int64"),
    8: ("creationTimestamp", TIME),
    11: ("labels", ("map", "string")),
    12: ("annotations", ("map", "string")),
}
TYPE_META: Schema = {1: ("apiVersion", "string"), 2: ("kind", "string")}
UNKNOWN: Schema = {
    1: ("typeMeta", TYPE_META),
    2: ("raw", "bytes"),
    3: ("contentEncoding", "string"),
    4: ("contentType", "string"),
}
LABEL_SELECTOR_REQ: Schema = {
    1: ("key", "string"),
    2: ("operator", "string"),
    3: ("values", ("repeated", "string")),
}
FIELD_SELECTOR_REQ: Schema = LABEL_SELECTOR_REQ
RESOURCE_ATTRIBUTES: Schema = {
    1: ("namespace", "string"),
    2: ("verb", "string"),
    3: ("group", "string"),
    4: ("version", "string"),
    5: ("resource", "string"),
    6: ("subresource", "string"),
    7: ("name", "string"),
    8: (
        "fieldSelector",
        {1: ("rawSelector", "string"), 2: ("requirements", ("repeated", FIELD_SELECTOR_REQ))},
    ),
    9: (
        "labelSelector",
        {1: ("rawSelector", "string"), 2: ("requirements", ("repeated", LABEL_SELECTOR_REQ))},
    ),
}
NON_RESOURCE_ATTRIBUTES: Schema = {1: ("path", "string"), 2: ("verb", "string")}
SSAR: Schema = {
    1: ("metadata", OBJECT_META),
    2: (
        "spec",
        {
            1: ("resourceAttributes", RESOURCE_ATTRIBUTES),
            2: ("nonResourceAttributes", NON_RESOURCE_ATTRIBUTES),
        },
    ),
    3: (
        "status",
        {
            1: ("allowed", "bool"),
            2: ("reason", "string"),
            3: ("evaluationError", "string"),
            4: ("denied", "bool"),
        },
    ),
}
SSRR: Schema = {
    1: ("metadata", OBJECT_META),
    2: ("spec", {1: ("namespace", "string")}),
    3: (
        "status",
        {
            1: (
                "resourceRules",
                (
                    "repeated",
                    {
                        1: ("verbs", ("repeated", "string")),
                        2: ("apiGroups", ("repeated", "string")),
                        3: ("resources", ("repeated", "string")),
                        4: ("resourceNames", ("repeated", "string")),
                    },
                ),
            ),
            2: (
                "nonResourceRules",
                (
                    "repeated",
                    {
                        1: ("verbs", ("repeated", "string")),
                        2: ("nonResourceURLs", ("repeated", "string")),
                    },
                ),
            ),
            3: ("incomplete", "bool"),
            4: ("evaluationError", "string"),
        },
    ),
}
SELF_SUBJECT_REVIEW: Schema = {
    1: ("metadata", OBJECT_META),
    2: (
        "status",
        {
            1: (
                "userInfo",
                {
                    1: ("username", "string"),
                    2: ("uid", "string"),
                    3: ("groups", ("repeated", "string")),
                },
            )
        },
    ),
}
SCHEMAS: dict[tuple[str, str], Schema] = {
    ("authorization.k8s.io/v1", "SelfSubjectAccessReview"): SSAR,
    ("authorization.k8s.io/v1", "SelfSubjectRulesReview"): SSRR,
    ("authentication.k8s.io/v1", "SelfSubjectReview"): SELF_SUBJECT_REVIEW,
}


class ProtobufError(ValueError):
    pass


# ------------------------------------------------------------------ wire format


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data):
            raise ProtobufError("truncated varint")
        b = data[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ProtobufError("varint too long")


def _varint(value: int) -> bytes:
    if value < 0:
        value += 1 << 64
    out = bytearray()
    while True:
        b = value & 0x7F
        value >>= 7
        if value:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _fields(data: bytes) -> list[tuple[int, int, Any]]:
    """(field number, wire type, value) triples; lengths delimited come as bytes."""
    out = []
    pos = 0
    while pos < len(data):
        key, pos = _read_varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _read_varint(data, pos)
        elif wire == 2:
            length, pos = _read_varint(data, pos)
            if pos + length > len(data):
                raise ProtobufError("truncated field")
            value = data[pos : pos + length]
            pos += length
        elif wire == 1:
            value = int.from_bytes(data[pos : pos + 8], "little")
            pos += 8
        elif wire == 5:
            value = int.from_bytes(data[pos : pos + 4], "little")
            pos += 4
        else:
            raise ProtobufError(f"unsupported wire type {wire}")
        out.append((number, wire, value))
    return out


def _scalar(typ: str, value: Any) -> Any:
    if typ == "string":
        return bytes(value).decode("utf-8")
    if typ == "bytes":
        return bytes(value)
    if typ == "bool":
        return bool(value)
    if typ in ("int64", "int32"):
        return value - (1 << 64) if value >= 1 << 63 else value
    raise ProtobufError(f"unknown type {typ}")


def decode_message(data: bytes, schema: Schema) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for number, _wire, value in _fields(data):
        if number not in schema:
            continue
        name, typ = schema[number]
        if isinstance(typ, tuple) and typ[0] == "repeated":
            inner = typ[1]
            item = (
                decode_message(value, inner) if isinstance(inner, dict) else _scalar(inner, value)
            )
            out.setdefault(name, []).append(item)
        elif isinstance(typ, tuple) and typ[0] == "map":
            entry = decode_message(value, {1: ("key", "string"), 2: ("value", typ[1])})
            out.setdefault(name, {})[entry.get("key", "")] = entry.get("value", "")
        elif isinstance(typ, dict):
            out[name] = decode_message(value, typ)
        else:
            out[name] = _scalar(typ, value)
    return out


def _key(number: int, wire: int) -> bytes:
    return _varint(number << 3 | wire)


def _encode_value(number: int, typ: Any, value: Any) -> bytes:
    if isinstance(typ, dict):
        body = encode_message(value or {}, typ)
        return _key(number, 2) + _varint(len(body)) + body
    if typ in ("string", "bytes"):
        raw = value.encode("utf-8") if isinstance(value, str) else bytes(value)
        return _key(number, 2) + _varint(len(raw)) + raw
    if typ == "bool":
        return _key(number, 0) + _varint(1 if value else 0)
    if typ in ("int64", "int32"):
        return _key(number, 0) + _varint(int(value))
    raise ProtobufError(f"unknown type {typ}")


def encode_message(obj: dict[str, Any], schema: Schema) -> bytes:
    out = bytearray()
    for number in sorted(schema):
        name, typ = schema[number]
        value = obj.get(name)
        if isinstance(typ, tuple) and typ[0] == "repeated":
            for item in value or []:
                out += _encode_value(number, typ[1], item)
        elif isinstance(typ, tuple) and typ[0] == "map":
            for k in sorted(value or {}):
                entry = encode_message(
                    {"key": k, "value": value[k]}, {1: ("key", "string"), 2: ("value", typ[1])}
                )
                out += _key(number, 2) + _varint(len(entry)) + entry
        elif isinstance(typ, dict):
            # Non-nullable nested messages are always written, as gogo-protobuf does.
            out += _encode_value(number, typ, value or {})
        elif value is not None:
            out += _encode_value(number, typ, value)
        elif typ == "string":
            out += _encode_value(number, typ, "")
        elif typ == "bool":
            out += _encode_value(number, typ, False)
    return bytes(out)


# ------------------------------------------------------------------ envelope


def decode(body: bytes) -> dict[str, Any]:
    """A protobuf request body → the object as JSON-shaped data (with apiVersion/kind)."""
    if not body.startswith(MAGIC):
        raise ProtobufError(
            "provided data does not appear to be a protobuf message, expected prefix [107 56 115 0]"
        )
    unknown = decode_message(body[len(MAGIC) :], UNKNOWN)
    type_meta = unknown.get("typeMeta", {})
    api_version, kind = type_meta.get("apiVersion", ""), type_meta.get("kind", "")
    schema = SCHEMAS.get((api_version, kind))
    if schema is None:
        raise ProtobufError(f"no protobuf support for {kind} in {api_version or 'v1'}")
    obj = decode_message(unknown.get("raw", b""), schema)
    obj["apiVersion"], obj["kind"] = api_version, kind
    return obj


def supports(api_version: str, kind: str) -> bool:
    return (api_version, kind) in SCHEMAS


def encode(obj: dict[str, Any]) -> bytes:
    """An object (with apiVersion/kind) → a Kubernetes protobuf body."""
    api_version, kind = obj["apiVersion"], obj["kind"]
    schema = SCHEMAS.get((api_version, kind))
    if schema is None:
        raise ProtobufError(f"no protobuf support for {kind} in {api_version}")
    raw = encode_message(obj, schema)
    envelope = encode_message(
        {"typeMeta": {"apiVersion": api_version, "kind": kind}, "raw": raw}, UNKNOWN
    )
    return MAGIC + envelope
