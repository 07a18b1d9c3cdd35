"""Which user agents are ktriage's own, and which requests changed nothing.

A request ktriage made (a check, a dry run, an action) is context, never a signal,
and never makes its identity one that acted: it stays in the stream, marked, but
opens no incident, feeds no indicator and links to none. The user agent alone
proves nothing (anyone can send `ktriage/...`), so the client sends one with a
random token made per process (ktriage/kubeclient.py) and trusts it here at import;
core cannot import the client, hence this small registry.

Earlier sessions (a replay of yesterday's audit log, a restart) are recognised the
same way only when they were recorded: a session writes its token and the cluster
identity it ran as to the state directory (core/sessions.py), and a request with
that token is trusted only when it was made by that same identity. The trade-off:
an attacker who sets a ktriage agent gains, at best, that their request is shown
as the responder's and kept out of detection. With a copied prefix, or a made-up
token, they gain nothing (judged like anyone's, the token is unknown). With a real
token read from an audit log they gain nothing either unless they also hold the
responder's own credential, and then they could act as the responder anyway. A
replay without the state directory judges every earlier session like anyone's,
which errs towards noise (the responder's reads shown as activity), never silence.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qs

_OWN_AGENTS: set[str] = set()
# Earlier sessions' tokens -> the identity each ran as (see core/sessions.py).
_EARLIER: dict[str, str] = {}
_MAX_EARLIER = 10_000
# The agent ktriage/kubeclient.py builds: `ktriage/<version> (session <10 hex>)`.
_SESSION_AGENT = re.compile(r"ktriage/[0-9A-Za-z.+-]{1,40} \(session ([0-9a-f]{10})\)")
THIS_SESSION = "this"
EARLIER_SESSION = "earlier"
# Verbs whose options (dryRun among them) come from the query string. A delete's
# options come from its body when it has one (the server then ignores the query).
_QUERY_OPTION_VERBS = frozenset({"create", "update", "patch"})
_DELETE_VERBS = frozenset({"delete", "deletecollection"})


def trust_own_agent(agent: str) -> None:
    """Record `agent` as this process's own (exact match only; empty is refused)."""
    if agent:
        _OWN_AGENTS.add(agent)


def is_own_agent(agent: str | None) -> bool:
    """Whether `agent` is exactly one this process trusted."""
    return bool(agent) and agent in _OWN_AGENTS


def session_token(agent: str | None) -> str | None:
    """The session token of a ktriage user agent, or None for any other agent."""
    if not agent or len(agent) > 80:
        return None
    match = _SESSION_AGENT.fullmatch(agent)
    return match.group(1) if match else None


def own_tokens() -> list[str]:
    """This process's session tokens (what core/sessions.py records)."""
    return sorted(t for t in map(session_token, _OWN_AGENTS) if t)


def trust_earlier_session(token: str, user: str) -> None:
    """Trust requests of the earlier session `token` made by `user` (both required)."""
    if not token or not user or not re.fullmatch(r"[0-9a-f]{10}", token):
        return
    if token not in _EARLIER and len(_EARLIER) >= _MAX_EARLIER:
        _EARLIER.pop(next(iter(_EARLIER)))
    _EARLIER[token] = user


def forget_earlier_sessions() -> None:
    """Trust no earlier session (tests; a state directory switched)."""
    _EARLIER.clear()


def own_session(agent: str | None, user: str | None) -> str:
    """THIS_SESSION for this process's agent; EARLIER_SESSION for a recorded earlier
    session's agent sent by the identity that session ran as; else ""."""
    if is_own_agent(agent):
        return THIS_SESSION
    if not _EARLIER or not agent or not agent.startswith("ktriage/"):
        return ""  # the common case, cheaply
    token = session_token(agent)
    if token is not None and user and _EARLIER.get(token) == user:
        return EARLIER_SESSION
    return ""


def _all_dry(values: object) -> bool:
    return isinstance(values, list) and bool(values) and all(value == "All" for value in values)


def is_dry_run(
    verb: str | None,
    request_uri: str | None,
    *,
    body_recorded: bool = False,
    delete_options: object = None,
) -> bool:
    """Whether a write request was a server-side dry run (`dryRun=All`): it changed
    nothing. Reads never are (the server ignores the parameter on them). A delete with
    a body takes its options from the body alone (the server then ignores the query):
    `delete_options` (the recorded request object) decides when there is one; without
    one, the query decides only when the record would show a body (`body_recorded`:
    level Request or RequestResponse), since a `?dryRun=All` beside an unrecorded body
    may have deleted for real."""
    if verb in _DELETE_VERBS:
        if delete_options is not None:
            return isinstance(delete_options, dict) and _all_dry(delete_options.get("dryRun"))
        if not body_recorded:
            return False
    elif verb not in _QUERY_OPTION_VERBS:
        return False
    if not request_uri:
        return False
    _, sep, query = request_uri.partition("?")
    if not sep:
        return False
    # Exact parameter name and value, as the server reads them (`dryrun=All` is ignored
    # by the server, so the request went ahead).
    return _all_dry(parse_qs(query, keep_blank_values=True).get("dryRun"))
