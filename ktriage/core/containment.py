"""What containment is in place for an incident, as the actions checked it.

Every action that changes the cluster says, after re-reading what it changed, what
is now true, as a list of facts in its timeline event (`raw_inline["containment"]`):

    {"aspect": "network", "subject": "pod shop/web-1", "state": "isolated",
     "detail": "no NetworkPolicy allows traffic to or from it"}

The vocabulary is below; a fact's `detail` is one plain sentence for the user.
A later fact about the same (aspect, subject) replaces an earlier one.
"""

from __future__ import annotations

# Aspects of containment.
NETWORK = "network"
WORKLOAD = "workload"
NODE = "node"
IDENTITY = "identity"
EVIDENCE = "evidence"
ASPECTS = (NETWORK, WORKLOAD, NODE, IDENTITY, EVIDENCE)

# States, by aspect. "restored" means an undo put things back as they were.
RESTORED = "restored"
# network: checked against every NetworkPolicy that selects the pod
ISOLATED = "isolated"  # no policy allows traffic to or from it
NOT_EFFECTIVE = "not-effective"  # some policy still allows traffic (detail says which)
NOT_APPLICABLE = "not-applicable"  # NetworkPolicy cannot apply (hostNetwork pod)
UNVERIFIED = "unverified"  # applied, but could not be checked (detail says why)
# workload
DETACHED = "detached"  # taken out of its controller's selector
REPLACED = "replaced"  # its controller made a replacement pod
SCALED_DOWN = "scaled-down"
DELETED = "deleted"
# node
CORDONED = "cordoned"
DRAINED = "drained"
# identity
BINDINGS_REMOVED = "bindings-removed"
CREDENTIALS_REVOKED = "credentials-revoked"
CANNOT_REVOKE = "cannot-revoke"  # a user or client certificate: Kubernetes cannot revoke it
# evidence
LOGS_DUMPED = "logs-dumped"

# Derived, never in a fact: what the state computation below says of a pod or an
# identity that no fact contains ("open"), and of a pod the cluster shows deleted.
OPEN = "open"
GONE = "gone"

STATES: dict[str, frozenset[str]] = {
    NETWORK: frozenset({ISOLATED, NOT_EFFECTIVE, NOT_APPLICABLE, UNVERIFIED, RESTORED}),
    WORKLOAD: frozenset({DETACHED, REPLACED, SCALED_DOWN, DELETED, RESTORED}),
    NODE: frozenset({CORDONED, DRAINED, RESTORED}),
    IDENTITY: frozenset({BINDINGS_REMOVED, CREDENTIALS_REVOKED, CANNOT_REVOKE, RESTORED}),
    EVIDENCE: frozenset({LOGS_DUMPED}),
}


def fact(aspect: str, subject: str, state: str, detail: str) -> dict[str, str]:
    """One containment fact, checked against the vocabulary."""
    if state not in STATES.get(aspect, ()):
        raise ValueError(f"{state!r} is not a state of {aspect!r}")
    return {"aspect": aspect, "subject": subject, "state": state, "detail": detail}
