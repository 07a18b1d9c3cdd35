"""The Kubernetes protobuf messages clients send the simulated server.

kubectl's typed clients send `application/vnd.kubernetes.protobuf`: `auth can-i` posts
a SelfSubjectAccessReview that way, `create configmap|secret|namespace|deployment|
clusterrolebinding|token...` their objects. A Kubernetes protobuf body is the magic
`k8s\\x00` followed by a `runtime.Unknown` message whose `raw` field holds the object.
This module decodes those objects into the JSON shape the rest of the server uses
and encodes the answers, from small schemas mirroring the `generated.proto` files
(field numbers and types); fields not in a schema are skipped.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

MAGIC = b"k8s\x00"
CONTENT_TYPE = "application/vnd.kubernetes.protobuf"

# Schema: field number -> (json name, type). A type is a scalar name, a nested schema
# (dict), ("repeated", type) or ("map", value type) for map<string, value>. Scalars:
# string, bytes, bool, int32, int64, and the JSON-shaped ones: time (metav1.Time → RFC
# 3339), intorstr (IntOrString), quantity (resource.Quantity), b64 (bytes as base64). A
# trailing "?" marks a pointer field, whose zero value is kept: other zero values are
# dropped on decoding, as Go's `omitempty` drops them from JSON.
Schema = dict[int, tuple[str, Any]]

TIME: Schema = {1: ("seconds", "int64"), 2: ("nanos", "int32")}
OWNER_REFERENCE: Schema = {
    1: ("kind", "string"),
    3: ("name", "string"),
    4: ("uid", "string"),
    5: ("apiVersion", "string"),
    6: ("controller", "bool?"),
    7: ("blockOwnerDeletion", "bool?"),
}
OBJECT_META: Schema = {
    1: ("name", "string"),
    2: ("generateName", "string"),
    3: ("namespace", "string"),
    5: ("uid", "string"),
    6: ("resourceVersion", "string"),
    7: ("generation", "int64"),
    8: ("creationTimestamp", "time"),
    9: ("deletionTimestamp", "time"),
    11: ("labels", ("map", "string")),
    12: ("annotations", ("map", "string")),
    13: ("ownerReferences", ("repeated", OWNER_REFERENCE)),
    14: ("finalizers", ("repeated", "string")),
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
LABEL_SELECTOR: Schema = {
    1: ("matchLabels", ("map", "string")),
    2: ("matchExpressions", ("repeated", LABEL_SELECTOR_REQ)),
}
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
        {1: ("rawSelector", "string"), 2: ("requirements", ("repeated", LABEL_SELECTOR_REQ))},
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
RESOURCE_RULE: Schema = {
    1: ("verbs", ("repeated", "string")),
    2: ("apiGroups", ("repeated", "string")),
    3: ("resources", ("repeated", "string")),
    4: ("resourceNames", ("repeated", "string")),
}
NON_RESOURCE_RULE: Schema = {
    1: ("verbs", ("repeated", "string")),
    2: ("nonResourceURLs", ("repeated", "string")),
}
SSRR: Schema = {
    1: ("metadata", OBJECT_META),
    2: ("spec", {1: ("namespace", "string")}),
    3: (
        "status",
        {
            1: ("resourceRules", ("repeated", RESOURCE_RULE)),
            2: ("nonResourceRules", ("repeated", NON_RESOURCE_RULE)),
            3: ("incomplete", "bool"),
            4: ("evaluationError", "string"),
        },
    ),
}
# ExtraValue is a message around the list (JSON shows the bare list): see `wrap_extra`.
EXTRA_VALUE: Schema = {1: ("items", ("repeated", "string"))}
USER_INFO: Schema = {
    1: ("username", "string"),
    2: ("uid", "string"),
    3: ("groups", ("repeated", "string")),
    4: ("extra", ("map", EXTRA_VALUE)),
}


def wrap_extra(user_info: dict[str, Any]) -> dict[str, Any]:
    """A UserInfo ready for protobuf: each extra value list as an ExtraValue message."""
    extra = user_info.get("extra")
    if not isinstance(extra, dict):
        return user_info
    return dict(user_info, extra={k: {"items": v} for k, v in extra.items()})


SELF_SUBJECT_REVIEW: Schema = {
    1: ("metadata", OBJECT_META),
    2: ("status", {1: ("userInfo", USER_INFO)}),
}

# The objects `kubectl create ...` and friends post through the typed clients.
OBJECT_REFERENCE: Schema = {
    1: ("kind", "string"),
    2: ("namespace", "string"),
    3: ("name", "string"),
    4: ("uid", "string"),
    5: ("apiVersion", "string"),
    6: ("resourceVersion", "string"),
    7: ("fieldPath", "string"),
}
LOCAL_OBJECT_REFERENCE: Schema = {1: ("name", "string")}
CONFIG_MAP: Schema = {
    1: ("metadata", OBJECT_META),
    2: ("data", ("map", "string")),
    3: ("binaryData", ("map", "b64")),
    4: ("immutable", "bool?"),
}
SECRET: Schema = {
    1: ("metadata", OBJECT_META),
    2: ("data", ("map", "b64")),
    3: ("type", "string"),
    4: ("stringData", ("map", "string")),
    5: ("immutable", "bool?"),
}
NAMESPACE: Schema = {
    1: ("metadata", OBJECT_META),
    2: ("spec", {1: ("finalizers", ("repeated", "string"))}),
    3: ("status", {1: ("phase", "string")}),
}
SERVICE_ACCOUNT: Schema = {
    1: ("metadata", OBJECT_META),
    2: ("secrets", ("repeated", OBJECT_REFERENCE)),
    3: ("imagePullSecrets", ("repeated", LOCAL_OBJECT_REFERENCE)),
    4: ("automountServiceAccountToken", "bool?"),
}
SERVICE_PORT: Schema = {
    1: ("name", "string"),
    2: ("protocol", "string"),
    3: ("port", "int32"),
    4: ("targetPort", "intorstr"),
    5: ("nodePort", "int32"),
    6: ("appProtocol", "string"),
}
SERVICE: Schema = {
    1: ("metadata", OBJECT_META),
    2: (
        "spec",
        {
            1: ("ports", ("repeated", SERVICE_PORT)),
            2: ("selector", ("map", "string")),
            3: ("clusterIP", "string"),
            4: ("type", "string"),
            5: ("externalIPs", ("repeated", "string")),
            7: ("sessionAffinity", "string"),
            10: ("externalName", "string"),
            18: ("clusterIPs", ("repeated", "string")),
        },
    ),
}
CONTAINER_PORT: Schema = {
    1: ("name", "string"),
    2: ("hostPort", "int32"),
    3: ("containerPort", "int32"),
    4: ("protocol", "string"),
    5: ("hostIP", "string"),
}
ENV_VAR: Schema = {1: ("name", "string"), 2: ("value", "string")}
RESOURCES: Schema = {
    1: ("limits", ("map", "quantity")),
    2: ("requests", ("map", "quantity")),
}
SECURITY_CONTEXT: Schema = {
    1: ("capabilities", {1: ("add", ("repeated", "string")), 2: ("drop", ("repeated", "string"))}),
    2: ("privileged", "bool?"),
    4: ("runAsUser", "int64?"),
    5: ("runAsNonRoot", "bool?"),
    6: ("readOnlyRootFilesystem", "bool?"),
    7: ("allowPrivilegeEscalation", "bool?"),
    8: ("runAsGroup", "int64?"),
}
VOLUME_MOUNT: Schema = {
    1: ("name", "string"),
    2: ("readOnly", "bool"),
    3: ("mountPath", "string"),
    4: ("subPath", "string"),
}
CONTAINER: Schema = {
    1: ("name", "string"),
    2: ("image", "string"),
    3: ("command", ("repeated", "string")),
    4: ("args", ("repeated", "string")),
    5: ("workingDir", "string"),
    6: ("ports", ("repeated", CONTAINER_PORT)),
    7: ("env", ("repeated", ENV_VAR)),
    8: ("resources", RESOURCES),
    9: ("volumeMounts", ("repeated", VOLUME_MOUNT)),
    13: ("terminationMessagePath", "string"),
    14: ("imagePullPolicy", "string"),
    15: ("securityContext", SECURITY_CONTEXT),
    16: ("stdin", "bool"),
    17: ("stdinOnce", "bool"),
    18: ("tty", "bool"),
    20: ("terminationMessagePolicy", "string"),
}
VOLUME: Schema = {
    1: ("name", "string"),
    # VolumeSource is embedded (inlined in JSON): its fields are spliced into the volume.
    2: (
        "",
        {
            1: ("hostPath", {1: ("path", "string"), 2: ("type", "string?")}),
            2: ("emptyDir", {1: ("medium", "string"), 2: ("sizeLimit", "quantity")}),
            6: ("secret", {1: ("secretName", "string"), 3: ("defaultMode", "int32?")}),
            19: ("configMap", {1: ("localObjectReference", LOCAL_OBJECT_REFERENCE)}),
        },
    ),
}
POD_SPEC: Schema = {
    1: ("volumes", ("repeated", VOLUME)),
    2: ("containers", ("repeated", CONTAINER)),
    3: ("restartPolicy", "string"),
    4: ("terminationGracePeriodSeconds", "int64?"),
    6: ("dnsPolicy", "string"),
    7: ("nodeSelector", ("map", "string")),
    8: ("serviceAccountName", "string"),
    9: ("serviceAccount", "string"),
    10: ("nodeName", "string"),
    11: ("hostNetwork", "bool"),
    12: ("hostPID", "bool"),
    13: ("hostIPC", "bool"),
    15: ("imagePullSecrets", ("repeated", LOCAL_OBJECT_REFERENCE)),
    19: ("schedulerName", "string"),
    20: ("initContainers", ("repeated", CONTAINER)),
    21: ("automountServiceAccountToken", "bool?"),
}
POD_TEMPLATE_SPEC: Schema = {1: ("metadata", OBJECT_META), 2: ("spec", POD_SPEC)}
POD: Schema = {1: ("metadata", OBJECT_META), 2: ("spec", POD_SPEC)}
DEPLOYMENT: Schema = {
    1: ("metadata", OBJECT_META),
    2: (
        "spec",
        {
            1: ("replicas", "int32?"),
            2: ("selector", LABEL_SELECTOR),
            3: ("template", POD_TEMPLATE_SPEC),
            4: (
                "strategy",
                {
                    1: ("type", "string"),
                    2: (
                        "rollingUpdate",
                        {1: ("maxUnavailable", "intorstr"), 2: ("maxSurge", "intorstr")},
                    ),
                },
            ),
            5: ("minReadySeconds", "int32"),
            6: ("revisionHistoryLimit", "int32?"),
            7: ("paused", "bool"),
            9: ("progressDeadlineSeconds", "int32?"),
        },
    ),
}
POLICY_RULE: Schema = {
    1: ("verbs", ("repeated", "string")),
    2: ("apiGroups", ("repeated", "string")),
    3: ("resources", ("repeated", "string")),
    4: ("resourceNames", ("repeated", "string")),
    5: ("nonResourceURLs", ("repeated", "string")),
}
ROLE: Schema = {1: ("metadata", OBJECT_META), 2: ("rules", ("repeated", POLICY_RULE))}
SUBJECT: Schema = {
    1: ("kind", "string"),
    2: ("apiGroup", "string"),
    3: ("name", "string"),
    4: ("namespace", "string"),
}
ROLE_REF: Schema = {1: ("apiGroup", "string"), 2: ("kind", "string"), 3: ("name", "string")}
BINDING: Schema = {
    1: ("metadata", OBJECT_META),
    2: ("subjects", ("repeated", SUBJECT)),
    3: ("roleRef", ROLE_REF),
}
TOKEN_REQUEST: Schema = {
    1: ("metadata", OBJECT_META),
    2: (
        "spec",
        {
            1: ("audiences", ("repeated", "string")),
            3: (
                "boundObjectRef",
                {
                    1: ("kind", "string"),
                    2: ("apiVersion", "string"),
                    3: ("name", "string"),
                    4: ("uid", "string"),
                },
            ),
            4: ("expirationSeconds", "int64?"),
        },
    ),
}
EVICTION: Schema = {
    1: ("metadata", OBJECT_META),
    2: ("deleteOptions", {1: ("gracePeriodSeconds", "int64?"), 3: ("orphanDependents", "bool?")}),
}

CSR_CONDITION: Schema = {
    1: ("type", "string"),
    2: ("reason", "string"),
    3: ("message", "string"),
    4: ("lastUpdateTime", "time"),
    5: ("lastTransitionTime", "time"),
    6: ("status", "string"),
}
CERTIFICATE_SIGNING_REQUEST: Schema = {
    1: ("metadata", OBJECT_META),
    2: (
        "spec",
        {
            2: ("request", "b64"),
            3: ("usages", ("repeated", "string")),
            4: ("username", "string"),
            5: ("uid", "string"),
            6: ("groups", ("repeated", "string")),
            8: ("signerName", "string"),
            9: ("expirationSeconds", "int32?"),
        },
    ),
    3: (
        "status",
        {1: ("conditions", ("repeated", CSR_CONDITION)), 2: ("certificate", "b64")},
    ),
}

SCHEMAS: dict[tuple[str, str], Schema] = {
    ("authorization.k8s.io/v1", "SelfSubjectAccessReview"): SSAR,
    ("authorization.k8s.io/v1", "SelfSubjectRulesReview"): SSRR,
    ("authentication.k8s.io/v1", "SelfSubjectReview"): SELF_SUBJECT_REVIEW,
    ("authentication.k8s.io/v1", "TokenRequest"): TOKEN_REQUEST,
    ("v1", "ConfigMap"): CONFIG_MAP,
    ("v1", "Secret"): SECRET,
    ("v1", "Namespace"): NAMESPACE,
    ("v1", "ServiceAccount"): SERVICE_ACCOUNT,
    ("v1", "Service"): SERVICE,
    ("v1", "Pod"): POD,
    ("apps/v1", "Deployment"): DEPLOYMENT,
    ("rbac.authorization.k8s.io/v1", "Role"): ROLE,
    ("rbac.authorization.k8s.io/v1", "ClusterRole"): ROLE,
    ("rbac.authorization.k8s.io/v1", "RoleBinding"): BINDING,
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"): BINDING,
    ("policy/v1", "Eviction"): EVICTION,
    ("certificates.k8s.io/v1", "CertificateSigningRequest"): CERTIFICATE_SIGNING_REQUEST,
}
# Objects the server answers in protobuf when asked: the reviews.
ENCODABLE = frozenset(
    {
        ("authorization.k8s.io/v1", "SelfSubjectAccessReview"),
        ("authorization.k8s.io/v1", "SelfSubjectRulesReview"),
        ("authentication.k8s.io/v1", "SelfSubjectReview"),
    }
)


class ProtobufError(ValueError):
    pass


class UnsupportedKind(ProtobufError):
    """A well-formed body of a kind this module has no schema for."""


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


def _signed(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _scalar(typ: str, value: Any) -> Any:
    typ = typ.rstrip("?")
    if typ == "string":
        return bytes(value).decode("utf-8")
    if typ == "bytes":
        return bytes(value)
    if typ == "b64":
        return base64.b64encode(bytes(value)).decode()
    if typ == "bool":
        return bool(value)
    if typ in ("int64", "int32"):
        return _signed(value)
    if typ == "quantity":
        return decode_message(value, {1: ("string", "string")}).get("string", "")
    if typ == "time":
        t = decode_message(value, TIME)
        if not t.get("seconds") and not t.get("nanos"):
            return None
        return datetime.fromtimestamp(t.get("seconds", 0), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if typ == "intorstr":
        v = decode_message(
            value, {1: ("type", "int64"), 2: ("intVal", "int32"), 3: ("strVal", "string")}
        )
        return v.get("strVal", "") if v.get("type") == 1 else v.get("intVal", 0)
    raise ProtobufError(f"unknown type {typ}")


def _empty(value: Any) -> bool:
    return (
        value is None
        or value == ""
        or value == {}
        or value == []
        or value is False
        or (isinstance(value, int) and not isinstance(value, bool) and value == 0)
    )


def decode_message(data: bytes, schema: Schema) -> dict[str, Any]:
    """Decode one message; zero values of non-pointer fields are dropped (omitempty)."""
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
            entry = decode_message(value, {1: ("key", "string"), 2: ("value", typ[1] + "?")})
            out.setdefault(name, {})[entry.get("key", "")] = entry.get("value", "")
        elif isinstance(typ, dict):
            decoded = decode_message(value, typ)
            if name == "":
                out.update(decoded)  # an embedded (inlined) struct
            elif name == "localObjectReference":
                out.update(decoded)
            else:
                out[name] = decoded
        else:
            decoded = _scalar(typ, value)
            if _empty(decoded) and not (
                isinstance(typ, str) and typ.endswith("?") and decoded is not None
            ):
                out.pop(name, None)
                continue
            out[name] = decoded
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
        raise UnsupportedKind(f"no protobuf support for {kind} in {api_version or 'v1'}")
    obj = decode_message(unknown.get("raw", b""), schema)
    obj["apiVersion"], obj["kind"] = api_version, kind
    return obj


def supports(api_version: str, kind: str) -> bool:
    """Whether the server answers this kind in protobuf (the reviews)."""
    return (api_version, kind) in ENCODABLE


def encode(obj: dict[str, Any]) -> bytes:
    """An object (with apiVersion/kind) → a Kubernetes protobuf body."""
    api_version, kind = obj["apiVersion"], obj["kind"]
    if (api_version, kind) not in ENCODABLE:
        raise ProtobufError(f"no protobuf support for {kind} in {api_version}")
    raw = encode_message(obj, SCHEMAS[(api_version, kind)])
    envelope = encode_message(
        {"typeMeta": {"apiVersion": api_version, "kind": kind}, "raw": raw}, UNKNOWN
    )
    return MAGIC + envelope
