"""ktriage's own requests in this run, and dry runs, are context: never signals, never
an identity that acted. A copied `ktriage/...` agent is judged like anyone's."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_detect_audit import audit, run, signals
from test_focus import _assert_same, _replay

from ktriage.core.containment import containment_state
from ktriage.core.correlate import Correlator
from ktriage.core.detect.own import is_dry_run, is_own_agent
from ktriage.core.model import Event
from ktriage.core.parse.audit import OWN_REQUEST_KIND
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
