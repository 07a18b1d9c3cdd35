"""Audit event parsing: fields, times, entities, refs and the skip reasons."""

from __future__ import annotations

import copy

import orjson
import pytest

from ktriage.core.ingest import Ingestor
from ktriage.core.model import EntityKind, Severity, entity, iso

BASE = {
    "kind": "Event",
    "apiVersion": "audit.k8s.io/v1",
    "level": "Metadata",
    "auditID": "0b7f6a52-1111-4c3e-9a6e-000000000001",
    "stage": "ResponseComplete",
    "requestURI": "/api/v1/namespaces/payments/configmaps/app",
    "verb": "get",
    "user": {"username": "alice", "groups": ["system:authenticated"]},
    "sourceIPs": ["203.0.113.7"],
    "objectRef": {"resource": "configmaps", "namespace": "payments", "name": "app"},
    "responseStatus": {"code": 200},
    "requestReceivedTimestamp": "2024-05-01T12:00:00.100000Z",
    "stageTimestamp": "2024-05-01T12:00:00.250000Z",
}


def record(**changes: object) -> dict:
    rec = copy.deepcopy(BASE)
    for key, value in changes.items():
        if value is None:
            rec.pop(key, None)
        else:
            rec[key] = value
    return rec


def line(**changes: object) -> bytes:
    return orjson.dumps(record(**changes))


def one(ing: Ingestor, data: bytes) -> object:
    events = ing.feed_line(data, origin="t:1")
    assert len(events) == 1, (events, ing.skip_log)
    return events[0]


def test_ordinary_event_is_cheap_context() -> None:
    ing = Ingestor()
    ev = one(ing, line())
    assert ev.source == "audit"
    assert ev.kind == "api-request"
    assert ev.severity == Severity.INFO
    assert ev.signal is False
    assert ev.ref == "0b7f6a52-1111-4c3e-9a6e-000000000001:ResponseComplete"
    assert ev.summary == "alice get configmaps payments/app"
    assert iso(ev.time) == "2024-05-01T12:00:00.250000Z"
    assert entity(EntityKind.USER, "", "alice") in ev.entities
    assert entity(EntityKind.NAMESPACE, "", "payments") in ev.entities
    assert entity(EntityKind.IP, "", "203.0.113.7") in ev.entities
    assert ing.formats["audit"] == 1
    assert not ing.skipped


def test_stages_of_one_request_have_distinct_refs_and_replays_match() -> None:
    ing = Ingestor()
    a = one(ing, line(stage="RequestReceived", responseStatus=None))
    b = one(ing, line())
    c = one(Ingestor(), line())
    assert a.ref != b.ref
    assert b.ref == c.ref


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({}, "2024-05-01T12:00:00.250000Z"),  # stageTimestamp first
        ({"stageTimestamp": None}, "2024-05-01T12:00:00.100000Z"),
        (
            {
                "stageTimestamp": None,
                "requestReceivedTimestamp": None,
                "timestamp": "2017-09-11T19:55:05Z",
            },
            "2017-09-11T19:55:05.000000Z",
        ),
        (
            {
                "stageTimestamp": None,
                "requestReceivedTimestamp": None,
                "metadata": {"creationTimestamp": "2018-10-26T13:38:34Z"},
            },
            "2018-10-26T13:38:34.000000Z",
        ),
        (
            {
                "stageTimestamp": None,
                "requestReceivedTimestamp": None,
                "p_event_time": "2023-01-02 03:04:05.5",
            },
            "2023-01-02T03:04:05.500000Z",
        ),
        (  # the object's own time before Panther's
            {
                "stageTimestamp": None,
                "requestReceivedTimestamp": None,
                "metadata": {"creationTimestamp": "2018-10-26T13:38:34Z"},
                "p_event_time": "2023-01-02 03:04:05.5",
            },
            "2018-10-26T13:38:34.000000Z",
        ),
        # Panther's space-separated form, and nanoseconds, and an offset
        ({"stageTimestamp": "2022-11-29 00:09:04.38"}, "2022-11-29T00:09:04.380000Z"),
        ({"stageTimestamp": "2024-11-13T18:34:10.595494123Z"}, "2024-11-13T18:34:10.595494Z"),
        ({"stageTimestamp": "2024-05-01T14:00:00.5+02:00"}, "2024-05-01T12:00:00.500000Z"),
        # epoch numbers are readable times too
        ({"stageTimestamp": 1714564800}, "2024-05-01T12:00:00.000000Z"),
        ({"stageTimestamp": 1714564800123}, "2024-05-01T12:00:00.123000Z"),
    ],
)
def test_timestamp_forms(changes: dict, expected: str) -> None:
    ev = one(Ingestor(), line(**changes))
    assert iso(ev.time) == expected


def test_unreadable_time_falls_back_then_is_wrong_type() -> None:
    ing = Ingestor()
    ev = one(ing, line(stageTimestamp="yesterday"))
    assert iso(ev.time) == "2024-05-01T12:00:00.100000Z"
    assert ing.feed_line(line(stageTimestamp=True, requestReceivedTimestamp=None)) == []
    assert ing.feed_line(line(stageTimestamp="soon", requestReceivedTimestamp=None)) == []
    assert ing.skipped == {"wrong-type": 2}


def test_hostile_unreadable_fallback_times_name_the_first_one() -> None:
    ing = Ingestor()
    bad = line(
        stageTimestamp=None,
        requestReceivedTimestamp=None,
        metadata={"creationTimestamp": "not a time"},
        p_event_time="nor this",
    )
    assert ing.feed_line(bad, origin="f:1") == []
    assert ing.skipped == {"wrong-type": 1}
    assert "metadata.creationTimestamp" in ing.skip_log[0][2]


def test_missing_time_and_missing_verb() -> None:
    ing = Ingestor()
    assert (
        ing.feed_line(line(stageTimestamp=None, requestReceivedTimestamp=None), origin="f:3") == []
    )
    assert ing.feed_line(line(verb=None, requestURI=None, objectRef=None), origin="f:4") == []
    assert ing.skipped == {"missing-field": 2}
    assert [(o, r) for o, r, _ in ing.skip_log] == [
        ("f:3", "missing-field"),
        ("f:4", "missing-field"),
    ]
    assert "no earlier record" in ing.skip_log[0][2]
    assert "says nothing about the request" in ing.skip_log[1][2]


def test_untimed_record_is_placed_after_the_previous_one_of_its_input() -> None:
    untimed = {"stageTimestamp": None, "requestReceivedTimestamp": None}
    ing = Ingestor()
    first = one(ing, line())
    placed = one(ing, line(auditID="id-2", **untimed))
    assert placed.time == first.time
    assert placed.summary == (
        "alice get configmaps payments/app (time not recorded; placed after the previous record)"
    )
    # A new input starts with nothing to place it after.
    ing.start_input("other.log")
    assert ing.feed_line(line(auditID="id-3", **untimed), origin="other.log:1") == []
    assert ing.skipped == {"missing-field": 1}
    # The note survives a detection rewriting the summary.
    exec_rec = line(
        auditID="id-4",
        verb="create",
        objectRef={"resource": "pods", "namespace": "p", "name": "w", "subresource": "exec"},
        requestURI="/api/v1/namespaces/p/pods/w/exec?command=sh",
        **untimed,
    )
    ing2 = Ingestor()
    one(ing2, line())
    ev = one(ing2, exec_rec)
    assert ev.signal and ev.kind == "exec"
    assert ev.summary.startswith("alice exec into p/w: sh")
    assert ev.summary.endswith("(time not recorded; placed after the previous record)")


def test_record_without_verb_is_read_with_the_verb_unknown() -> None:
    ing = Ingestor()
    ev = one(ing, line(verb=None))
    assert ev.kind == "api-request" and not ev.signal
    assert ev.summary == "alice requested configmaps payments/app (verb not recorded)"
    ev = one(ing, line(auditID="id-2", verb=None, objectRef=None, requestURI="/metrics"))
    assert ev.summary == "alice requested /metrics (verb not recorded)"
    # A detection that needs no verb still applies.
    anon = one(
        Ingestor(),
        line(verb=None, user={"username": "system:anonymous"}, sourceIPs=["8.8.8.8"]),
    )
    assert anon.signal and anon.kind == "anonymous-allowed"
    assert anon.summary == ("anonymous request allowed: configmaps payments/app from 8.8.8.8")


def test_wrong_types() -> None:
    ing = Ingestor()
    assert ing.feed_line(line(objectRef="pods/web"), origin="x:1") == []
    assert ing.feed_line(line(user={"username": 42}), origin="x:2") == []
    assert ing.skipped == {"wrong-type": 2}
    assert "objectRef" in ing.skip_log[0][2]


def test_service_account_impersonation_and_object_entities() -> None:
    ev = one(
        Ingestor(),
        line(
            user={"username": "system:serviceaccount:payments:api"},
            impersonatedUser={"username": "bob"},
            objectRef={"resource": "pods", "namespace": "payments", "name": "api-7d9f"},
            sourceIPs=["10.0.0.5", "198.51.100.2"],
        ),
    )
    ents = set(ev.entities)
    assert entity(EntityKind.SERVICE_ACCOUNT, "payments", "api") in ents
    assert entity(EntityKind.USER, "", "bob") in ents
    assert entity(EntityKind.POD, "payments", "api-7d9f") in ents
    assert entity(EntityKind.IP, "", "198.51.100.2") in ents
    assert ev.summary.endswith("as bob")


def test_node_and_serviceaccount_objects() -> None:
    ev = one(Ingestor(), line(objectRef={"resource": "nodes", "name": "worker-1"}))
    assert entity(EntityKind.NODE, "", "worker-1") in ev.entities
    ev = one(
        Ingestor(),
        line(objectRef={"resource": "serviceaccounts", "namespace": "ci", "name": "deployer"}),
    )
    assert entity(EntityKind.SERVICE_ACCOUNT, "ci", "deployer") in ev.entities


def test_old_events_without_api_version_and_v1beta1() -> None:
    old = record(apiVersion=None, kind=None)
    ev = one(Ingestor(), orjson.dumps(old))
    assert ev.kind == "api-request"
    beta = record(apiVersion="audit.k8s.io/v1beta1")
    assert one(Ingestor(), orjson.dumps(beta)).source == "audit"


def test_event_list_batch_yields_every_item_and_skips_bad_ones() -> None:
    items = [record(auditID=f"id-{i}") for i in range(3)]
    items.append(record(auditID="id-bad", verb=None, requestURI=None, objectRef=None))
    batch = {"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": items}
    ing = Ingestor()
    events = ing.feed_line(orjson.dumps(batch), origin="hook:1")
    assert [e.ref for e in events] == [f"id-{i}:ResponseComplete" for i in range(3)]
    assert ing.skipped == {"missing-field": 1}
    assert ing.skip_log[0][0] == "hook:1:item4"
    # the same batch as a decoded record (webhook body)
    ing2 = Ingestor()
    assert len(ing2.feed_record(batch)) == 3


def test_summary_of_untrusted_text_is_plain() -> None:
    ev = one(
        Ingestor(),
        line(user={"username": "eve\x1b]52;c;bad\x07"}, requestURI="/x", objectRef=None),
    )
    assert "\x1b" not in ev.summary
    assert "\\x1b" in ev.summary


def test_crlf_and_trailing_newline() -> None:
    ing = Ingestor()
    assert len(ing.feed_line(line() + b"\r\n")) == 1
    assert len(ing.feed_line(line() + b"\n")) == 1
    assert not ing.skipped


# `user` of a request made with a pod's bound service-account token, as kube-apiserver
# (1.30 and later) records it.
BOUND_USER = {
    "username": "system:serviceaccount:ci:runner",
    "uid": "5c1f2b7e-2c0d-4f0e-9a55-3f8e2a4d7b10",
    "groups": ["system:serviceaccounts", "system:serviceaccounts:ci", "system:authenticated"],
    "extra": {
        "authentication.kubernetes.io/credential-id": ["JTI=7f3a1c52-9d8e-4b6f-a0c1-2e5d8f9b3a47"],
        "authentication.kubernetes.io/node-name": ["worker-1"],
        "authentication.kubernetes.io/node-uid": ["0d2c6a8e-41f7-4b39-8e2a-6c1d5f9b0e73"],
        "authentication.kubernetes.io/pod-name": ["runner-8c457c4d-d4kw5"],
        "authentication.kubernetes.io/pod-uid": ["b8e4f1d2-6a3c-4e7b-9f05-1c2d3e4f5a6b"],
    },
}
RUNNER = entity(EntityKind.POD, "ci", "runner-8c457c4d-d4kw5")


def test_bound_token_names_the_pod_it_was_issued_for() -> None:
    ev = one(
        Ingestor(),
        line(
            user=BOUND_USER,
            sourceIPs=["198.51.100.23"],
            verb="list",
            requestURI="/api/v1/secrets?limit=500",
            objectRef={"resource": "secrets", "apiVersion": "v1"},
        ),
    )
    assert ev.entities[0] == entity(EntityKind.SERVICE_ACCOUNT, "ci", "runner")
    assert RUNNER in ev.entities
    assert entity(EntityKind.NODE, "", "worker-1") in ev.entities
    assert ev.summary.startswith("system:serviceaccount:ci:runner list secrets")


def test_bound_token_on_a_pod_request_keeps_the_target_first_and_no_node() -> None:
    ev = one(
        Ingestor(),
        line(
            user=BOUND_USER,
            verb="create",
            objectRef={
                "resource": "pods",
                "subresource": "exec",
                "namespace": "kube-system",
                "name": "pwn-x7k2q",
            },
        ),
    )
    pods = [e for e in ev.entities if e.kind == EntityKind.POD]
    assert pods == [entity(EntityKind.POD, "kube-system", "pwn-x7k2q"), RUNNER]
    assert not any(e.kind == EntityKind.NODE for e in ev.entities)


@pytest.mark.parametrize(
    "user",
    [
        # a person with extra (an OIDC claim) is not a service account
        {"username": "alice", "extra": {"authentication.kubernetes.io/pod-name": ["x"]}},
        # the control plane's own controllers' service accounts never link
        {**BOUND_USER, "username": "system:serviceaccount:kube-system:replicaset-controller"},
        # a legacy token (no claims) or claims of the wrong shape
        {**BOUND_USER, "extra": {"authentication.kubernetes.io/credential-id": ["JTI=1"]}},
        {**BOUND_USER, "extra": {"authentication.kubernetes.io/pod-name": [42]}},
        {**BOUND_USER, "extra": ["not", "a", "map"]},
    ],
)
def test_no_bound_pod_without_a_pod_claim_of_a_linking_service_account(user: dict) -> None:
    ing = Ingestor()
    ev = one(ing, line(user=user))
    assert not any(e.kind == EntityKind.POD for e in ev.entities)
    assert not ing.skipped


def test_a_kube_system_account_that_is_no_controller_links_its_bound_pod() -> None:
    """Only the control plane's controllers are exempt: a stolen coredns token is an
    identity like any other, and its bound pod links what it did."""
    user = {**BOUND_USER, "username": "system:serviceaccount:kube-system:coredns"}
    ev = one(Ingestor(), line(user=user))
    assert any(e.kind == EntityKind.POD and e.namespace == "kube-system" for e in ev.entities)
    sa = entity(EntityKind.SERVICE_ACCOUNT, "kube-system", "coredns")
    assert sa.strong
    assert not entity(EntityKind.SERVICE_ACCOUNT, "kube-system", "replicaset-controller").strong
