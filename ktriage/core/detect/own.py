"""Which user agents are this ktriage process's own, and which requests changed nothing.

A request ktriage made in this run (a check, a dry run, an action) is context, never a
signal, and never makes its identity one that acted. The user agent alone proves
nothing (anyone can send `ktriage/...`), so the client sends one with a random token
made per process (ktriage/kubeclient.py) and trusts it here at import; core cannot
import the client, hence this small registry. A record with another session's agent
(a replay, an attacker copying the prefix) is judged like anyone's.
"""

from __future__ import annotations

from urllib.parse import parse_qs

_OWN_AGENTS: set[str] = set()
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
