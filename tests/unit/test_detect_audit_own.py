"""ktriage's own requests in this run, and dry runs, are context: never signals, never
an identity that acted. A copied `ktriage/...` agent is judged like anyone's."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_detect_audit import audit, run, signals
from test_focus import _assert_same, _replay

from ktriage.core.containment import containment_state
from ktriage.core.correlate import Correlator
from ktriage.core.detect.own import (
    EARLIER_SESSION,
    forget_earlier_sessions,
    is_dry_run,
    is_own_agent,
    own_session,
    trust_own_agent,
)
from ktriage.core.model import Event
from ktriage.core.parse.audit import OWN_REQUEST_KIND
from ktriage.core.sessions import SESSIONS_FILE, SessionsRead, load_sessions, record_session
from ktriage.kubeclient import SESSION_TOKEN, USER_AGENT

ADMIN = "kubernetes-admin"
BINDING = {
    "apiVersion": "rbac.authorization.k8s.io/v1",
    "kind": "ClusterRoleBinding",
    "metadata": {"name": "ktriage-restore"},
    "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                "name": "cluster-admin"},
    "subjects": [{"kind": "ServiceAccount", "name": "runner", "namespace": "ci"}],
}  # fmt: skip
BINDINGS_URI = "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings"


def secret_list(agent: str | None, *, aid: str = "own-1", at: float = 0.0) -> dict:
    rec = audit("list", "secrets", ns="ci", user=ADMIN, aid=aid, at=at,
                uri="/api/v1/namespaces/ci/secrets")  # fmt: skip
    if agent is not None:
        rec["userAgent"] = agent
    return rec


def admin_binding(agent: str | None, *, uri: str = BINDINGS_URI, aid: str = "own-2") -> dict:
    rec = audit("create", "clusterrolebindings", ns=None, name="ktriage-restore", user=ADMIN,
                uri=uri, body=BINDING, aid=aid, at=1.0)  # fmt: skip
    if agent is not None:
        rec["userAgent"] = agent
    return rec


def test_the_user_agent_carries_a_per_process_session_token_trusted_exactly() -> None:
    assert USER_AGENT.startswith("ktriage/") and f"(session {SESSION_TOKEN})" in USER_AGENT
    assert len(SESSION_TOKEN) >= 10
    assert is_own_agent(USER_AGENT)
    assert not is_own_agent(USER_AGENT.rsplit(" ", 1)[0])
    assert not is_own_agent(USER_AGENT + " ")
    assert not is_own_agent("") and not is_own_agent(None)


@pytest.mark.parametrize("make", [secret_list, admin_binding], ids=["secret-list", "binding"])
def test_own_session_requests_are_context_not_signals(make) -> None:
    events = run(make(USER_AGENT))
    assert signals(events) == []
    assert [e.kind for e in events] == [OWN_REQUEST_KIND]
    assert events[0].summary.endswith("(ktriage)")


@pytest.mark.parametrize(
    "agent",
    [
        "ktriage/0.1.0",
        "ktriage/0.1.0 (session 0000000000)",
        f"ktriage/0.1.0 (session {SESSION_TOKEN[:-1]})",
        None,
    ],
    ids=["no-session", "another-session", "near-miss", "no-agent"],
)
def test_hostile_spoofed_ktriage_agent_is_judged_like_anyone(agent: str | None) -> None:
    listed = signals(run(secret_list(agent)))
    assert [e.kind for e in listed] == ["secret-list"]
    bound = signals(run(admin_binding(agent)))
    assert len(bound) == 1 and "cluster-admin" in bound[0].summary
    assert all(e.kind != OWN_REQUEST_KIND for e in run(secret_list(agent)))


def test_a_dry_run_of_a_cluster_admin_binding_is_context_whoever_sent_it() -> None:
    events = run(admin_binding("kubectl/v1.30.0", uri=f"{BINDINGS_URI}?dryRun=All"))
    assert signals(events) == []
    assert events[0].summary.endswith("(dry run)")
    # The same request for real is the signal.
    assert len(signals(run(admin_binding("kubectl/v1.30.0")))) == 1


@pytest.mark.parametrize(
    "query",
    ["dryrun=All", "dryRun=all", "dryRun=", "fieldManager=dryRun%3DAll", "dryRun=All&dryRun=x",
     "dryRun=All;x=1"],
)  # fmt: skip
def test_hostile_lookalike_dry_run_parameter_is_still_a_signal(query: str) -> None:
    """The server ignores these (or refuses them): a real change must not hide behind them."""
    assert len(signals(run(admin_binding(None, uri=f"{BINDINGS_URI}?{query}")))) == 1


def test_hostile_dry_run_on_a_read_is_still_a_signal() -> None:
    """The server ignores dryRun on reads: the secrets were read."""
    rec = secret_list(None)
    rec["requestURI"] += "?dryRun=All"
    assert [e.kind for e in signals(run(rec))] == ["secret-list"]


def test_hostile_delete_with_dry_run_in_the_query_and_a_body_without_it_is_real() -> None:
    """With a body the server reads the delete's options from it alone."""
    uri = "/apis/apps/v1/namespaces/falco/daemonsets/falco?dryRun=All"
    real = audit("delete", "daemonsets", ns="falco", name="falco", uri=uri,
                 body={"kind": "DeleteOptions", "apiVersion": "v1"})  # fmt: skip
    assert len(signals(run(real))) == 1
    dry = audit("delete", "daemonsets", ns="falco", name="falco", uri=uri,
                body={"kind": "DeleteOptions", "apiVersion": "v1", "dryRun": ["All"]})  # fmt: skip
    assert signals(run(dry)) == []
    # Metadata level: whether a body overrode the query is unknown, so it is judged.
    unknown = audit("delete", "daemonsets", ns="falco", name="falco", uri=uri)
    unknown["level"] = "Metadata"
    assert len(signals(run(unknown))) == 1
    no_body = audit("delete", "daemonsets", ns="falco", name="falco", uri=uri)
    assert signals(run(no_body)) == []  # level Request, no body recorded: the query held


def test_is_dry_run_reads_the_options_as_the_server_does() -> None:
    assert is_dry_run("patch", "/x?a=1&dryRun=All")
    assert is_dry_run("create", "/x?dryRun=%41ll")
    assert not is_dry_run("get", "/x?dryRun=All")
    assert not is_dry_run("create", "/x/dryRun=All")
    assert not is_dry_run("delete", "/x?dryRun=All")
    assert is_dry_run("delete", "/x?dryRun=All", body_recorded=True)
    assert not is_dry_run("delete", "/x?dryRun=All", delete_options=[1])


def test_own_requests_and_dry_runs_make_no_identity_one_that_acted() -> None:
    """The containment state lists as open only identities whose requests were signals."""
    attacker = audit("get", "secrets", ns="ci", name="db", user="system:serviceaccount:ci:runner",
                     aid="a-1", at=0.0)  # fmt: skip
    events: list[Event] = run(
        attacker,
        secret_list(USER_AGENT, aid="own-1", at=2.0),
        admin_binding(USER_AGENT, aid="own-2"),
        admin_binding(ADMIN, uri=f"{BINDINGS_URI}?dryRun=All", aid="dry-1"),
    )
    correlator = Correlator()
    for ev in events:
        correlator.add(ev)
    incidents = correlator.sorted_incidents()
    assert len(incidents) == 1
    state = containment_state(incidents[0], correlator.events_of(incidents[0].id))
    subjects = [item.subject for item in state.items]
    assert any("ci/runner" in s for s in subjects), subjects
    assert not any(ADMIN in s for s in subjects), subjects


def test_focused_replay_equals_full_replay_for_own_requests_and_dry_runs(tmp_path: Path) -> None:
    records = [
        audit("get", "secrets", ns="ci", name="db", user="system:serviceaccount:ci:runner",
              aid="a-1", at=0.0),
        secret_list(USER_AGENT, aid="own-1", at=2.0),
        admin_binding(USER_AGENT, aid="own-2"),
        admin_binding("ktriage/0.1.0", aid="spoof-1"),
        admin_binding(ADMIN, uri=f"{BINDINGS_URI}?dryRun=All", aid="dry-1"),
        secret_list("ktriage/0.1.0 (session 0000000000)", aid="spoof-2", at=3.0),
    ]  # fmt: skip
    path = tmp_path / "own.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    _assert_same([path])
    lines, _, _ = _replay([path], focus=False)
    text = b"".join(lines).decode()
    # The spoofed agents' requests are in the incident as signals; ours are not in it.
    assert '"spoof-1:ResponseComplete"' in text and '"spoof-2:ResponseComplete"' in text
    assert "own-1:" not in text and "own-2:" not in text
    for line in lines:
        for ev in json.loads(line)["events"]:
            assert not ev["ref"].startswith("dry-1:") or ev["severity"] == "info", ev


# -- earlier sessions (a replay, a restart) ------------------------------------------------

EARLIER_TOKEN = "a1b2c3d4e5"
EARLIER_AGENT = f"ktriage/0.1.0 (session {EARLIER_TOKEN})"
CI = "ci-deploy"
POD = "storefront-7b6b5d8bc4-287pg"


@pytest.fixture
def state_dir(tmp_path: Path) -> Iterator[Path]:
    """A state directory; the earlier sessions trusted are forgotten after the test."""
    forget_earlier_sessions()
    yield tmp_path / "state"
    forget_earlier_sessions()


def earlier_session_log(agent: str = EARLIER_AGENT, user: str = ADMIN) -> list[dict]:
    """What an earlier ktriage session left in the audit log next to the attack: the
    blast radius (rules reviews as the suspect), a describe, logs, the isolate dry run
    and patch. The attacker's exec comes first."""
    attack = audit("create", "pods", ns="shop", name=POD, sub="exec", user=CI, code=101,
                   uri=f"/api/v1/namespaces/shop/pods/{POD}/exec?command=sh&stdin=true",
                   aid="attack-1", at=0.0)  # fmt: skip
    review = audit("create", "selfsubjectrulesreviews", ns=None, user=user, code=201,
                   uri="/apis/authorization.k8s.io/v1/selfsubjectrulesreviews",
                   aid="own-review", at=30.0)  # fmt: skip
    review["objectRef"]["apiGroup"] = "authorization.k8s.io"
    review["impersonatedUser"] = {"username": CI, "groups": ["system:authenticated"]}
    describe = audit("get", "pods", ns="shop", name=POD, user=user, aid="own-get", at=31.0,
                     uri=f"/api/v1/namespaces/shop/pods/{POD}")  # fmt: skip
    logs = audit("get", "pods", ns="shop", name=POD, sub="log", user=user, aid="own-log",
                 at=32.0, uri=f"/api/v1/namespaces/shop/pods/{POD}/log")  # fmt: skip
    label = {"metadata": {"labels": {"ktriage.io/isolated": "true"}}}
    patch_uri = f"/api/v1/namespaces/shop/pods/{POD}"
    dry = audit("patch", "pods", ns="shop", name=POD, user=user, body=label, aid="own-dry",
                at=33.0, uri=f"{patch_uri}?dryRun=All")  # fmt: skip
    patch = audit("patch", "pods", ns="shop", name=POD, user=user, body=label, aid="own-patch",
                  at=34.0, uri=patch_uri)  # fmt: skip
    own = [review, describe, logs, dry, patch]
    for rec in own:
        rec["userAgent"] = agent
    return [attack, *own]


def correlated(records: list[dict]) -> tuple[list[Event], Correlator]:
    events = run(*records)
    correlator = Correlator()
    for ev in events:
        correlator.add(ev)
    return events, correlator


def test_an_earlier_recorded_session_is_marked_and_kept_out_of_incidents(state_dir: Path) -> None:
    trust_own_agent(EARLIER_AGENT)  # the earlier process, recording its session
    try:
        assert record_session(state_dir, ADMIN, "prod") == ""
    finally:
        _forget_own_agent(EARLIER_AGENT)
    assert (state_dir / SESSIONS_FILE).stat().st_mode & 0o077 == 0
    assert load_sessions(state_dir).trusted >= 1
    events, correlator = correlated(earlier_session_log())
    own = [e for e in events if e.ref.startswith("own-")]
    assert len(own) == 5  # kept: the responder's own actions stay visible
    assert all(e.kind == OWN_REQUEST_KIND and not e.signal for e in own)
    assert all(e.summary.endswith("(ktriage, earlier session)") for e in own)
    (incident,) = correlator.sorted_incidents()
    assert not any(e.ref.startswith("own-") for e in correlator.events_of(incident.id))


def test_an_earlier_session_not_recorded_is_judged_like_anyone(state_dir: Path) -> None:
    """A replay without the state directory errs towards noise, never silence."""
    events, correlator = correlated(earlier_session_log())
    assert not any(e.kind == OWN_REQUEST_KIND for e in events)
    (incident,) = correlator.sorted_incidents()
    assert any(e.ref.startswith("own-") for e in correlator.events_of(incident.id))


def test_hostile_forged_agent_of_a_recorded_session_by_another_user_is_judged(
    state_dir: Path,
) -> None:
    """The attacker copied a real session token from the audit log: not the same identity."""
    write_sessions(state_dir, {"token": EARLIER_TOKEN, "user": ADMIN})
    load_sessions(state_dir)
    events, correlator = correlated(earlier_session_log(user="system:serviceaccount:ci:runner"))
    assert not any(e.kind == OWN_REQUEST_KIND for e in events)
    (incident,) = correlator.sorted_incidents()
    assert any(e.ref.startswith("own-") for e in correlator.events_of(incident.id))


@pytest.mark.parametrize(
    "agent",
    [f"ktriage/0.1.0 (session {EARLIER_TOKEN}) ", f"kubectl/1.30 (session {EARLIER_TOKEN})",
     f"ktriage/0.1.0 (session {EARLIER_TOKEN.upper()})", f"ktriage/{'9' * 100} (session "
     f"{EARLIER_TOKEN})", f"ktriage/0.1.0 (session {EARLIER_TOKEN})\x1b]0;x\x07"],
    ids=["trailing-space", "other-client", "upper-case", "oversized", "escape"],
)  # fmt: skip
def test_hostile_lookalike_agents_of_a_recorded_session_are_judged(
    state_dir: Path, agent: str
) -> None:
    write_sessions(state_dir, {"token": EARLIER_TOKEN, "user": ADMIN})
    load_sessions(state_dir)
    assert own_session(EARLIER_AGENT, ADMIN) == EARLIER_SESSION
    assert own_session(agent, ADMIN) == ""
    events, _ = correlated(earlier_session_log(agent=agent))
    assert not any(e.kind == OWN_REQUEST_KIND for e in events)


def test_hostile_damaged_sessions_file_is_skipped_line_by_line(state_dir: Path) -> None:
    good = {"token": EARLIER_TOKEN, "user": ADMIN}
    write_sessions(
        state_dir,
        "not json",
        "[" * 5000 + "]" * 5000,
        {"token": "A1B2C3D4E5", "user": ADMIN},
        {"token": EARLIER_TOKEN, "user": ""},
        {"token": ["x"], "user": ADMIN},
        {"token": EARLIER_TOKEN, "user": ADMIN, "pad": "x" * 5000},
        good,
        "\x00\xff garbage",
    )
    read = load_sessions(state_dir)
    assert (read.trusted, read.skipped, read.problem) == (1, 7, "")
    assert own_session(EARLIER_AGENT, ADMIN) == EARLIER_SESSION


def test_hostile_huge_sessions_file_is_read_from_its_tail_only(state_dir: Path) -> None:
    state_dir.mkdir(parents=True)
    with (state_dir / SESSIONS_FILE).open("w") as out:
        out.write(("x" * 999 + "\n") * 3000)  # 3 MB of junk, then the latest session
        out.write(json.dumps({"token": EARLIER_TOKEN, "user": ADMIN}) + "\n")
    read = load_sessions(state_dir)
    assert read.trusted == 1 and read.skipped <= 2001
    assert own_session(EARLIER_AGENT, ADMIN) == EARLIER_SESSION


def test_no_sessions_file_and_an_unwritable_state_dir_cost_nothing(state_dir: Path) -> None:
    assert load_sessions(state_dir) == SessionsRead()
    state_dir.parent.mkdir(parents=True, exist_ok=True)
    state_dir.write_text("a file, not a directory")
    assert "cannot record" in record_session(state_dir, ADMIN)


def write_sessions(directory: Path, *lines: object) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    text = "".join((ln if isinstance(ln, str) else json.dumps(ln)) + "\n" for ln in lines)
    (directory / SESSIONS_FILE).write_text(text, encoding="utf-8", errors="surrogateescape")


def _forget_own_agent(agent: str) -> None:
    from ktriage.core.detect import own

    own._OWN_AGENTS.discard(agent)


def test_focused_replay_equals_full_replay_for_an_earlier_session(
    state_dir: Path, tmp_path: Path
) -> None:
    write_sessions(state_dir, {"token": EARLIER_TOKEN, "user": ADMIN})
    load_sessions(state_dir)
    path = tmp_path / "earlier.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in earlier_session_log()))
    _assert_same([path])
    lines, _, _ = _replay([path], focus=False)
    assert lines and "own-" not in b"".join(lines).decode()
