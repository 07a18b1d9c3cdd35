"""What containment is in place for an incident, as the actions checked it.

Every action that changes the cluster says, after re-reading what it changed, what
is now true, as a list of facts in its timeline event (`raw_inline["containment"]`):

    {"aspect": "network", "subject": "pod shop/web-1", "state": "isolated",
     "detail": "no NetworkPolicy allows traffic to or from it"}

The vocabulary is below; a fact's `detail` is one plain sentence for the user.
A later fact about the same (aspect, subject) replaces an earlier one; an identity
has two independent parts, its bindings (unbind, undo unbind) and its credentials
(revoke, never undone), and a fact replaces only the one of its part.
"""

from __future__ import annotations

import hashlib
import json
import re
import shlex
from collections import Counter
from collections.abc import Callable, Iterable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from ktriage.core.model import (
    EntityKind,
    EntityRef,
    Event,
    Incident,
    Severity,
    is_system_identity,
)
from ktriage.core.parse.audit import OWN_REQUEST_KIND

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


# ---- the state of an incident's containment ----------------------------------------
#
# Computed from the incident's events: the facts of its action events (source
# `ktriage`), the pods and the acting identities of its signals, and the pod
# deletions the cluster reported. A pod counts as contained when it is isolated
# effectively or gone; an identity when its bindings were removed or its
# credentials revoked. A cordon alone contains nothing: the pod keeps running.

# What keeps a pod or an identity contained.
CONTAINING: dict[str, frozenset[str]] = {
    NETWORK: frozenset({ISOLATED, GONE}),
    IDENTITY: frozenset({BINDINGS_REMOVED, CREDENTIALS_REVOKED}),
}
# States shown as done (nothing to do about that subject in that aspect).
DONE_STATES: dict[str, frozenset[str]] = {
    NETWORK: frozenset({ISOLATED, GONE}),
    WORKLOAD: frozenset({DETACHED, REPLACED, SCALED_DOWN, DELETED}),
    NODE: frozenset({CORDONED, DRAINED}),
    IDENTITY: frozenset({BINDINGS_REMOVED, CREDENTIALS_REVOKED}),
    EVIDENCE: frozenset({LOGS_DUMPED}),
}

# The compact mark of an incident.
CONTAINED = "contained"  # every pod isolated or gone, every identity to revoke revoked
PARTLY = "partly"  # something is contained, not everything
NOTHING = "none"  # nothing is contained yet

TIME_TO_CONTAIN_DEFINITION = (
    "from the first signal until every pod of the incident is isolated effectively or "
    "gone, every identity that acted is revoked (bindings removed or credentials "
    "revoked) and every credential the attacker obtained is revoked (a token minted "
    "for a ServiceAccount: its credentials revoked; a node's kubelet credentials read: "
    "never by Kubernetes, so the incident stays open); a cordon alone does not count"
)

# Bounds on what one action event may make us read (a hostile or broken record).
MAX_FACTS_PER_EVENT = 1_000
MAX_SUBJECT = 1_024
MAX_DETAIL = 4_096

# Where the quarantine label and policy come from (the same as actions/isolate.py;
# a test keeps the two equal).
QUARANTINE_LABEL = "ktriage.io/quarantine"
POLICY_PREFIX = "ktriage-quarantine-"
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_LABEL_VALUE = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?")

# The two parts of an identity's containment, and the part each action changes.
BINDINGS = "bindings"
CREDENTIALS = "credentials"
_PART_OF_ACTION = {"unbind": BINDINGS, "undo unbind": BINDINGS, "revoke": CREDENTIALS}
_PART_OF_STATE = {
    BINDINGS_REMOVED: BINDINGS,
    CREDENTIALS_REVOKED: CREDENTIALS,
    CANNOT_REVOKE: CREDENTIALS,
}
# Signals that tell of a credential the attacker obtained (core/detect/audit.py,
# core/detect/tetragon.py).
TOKEN_REQUEST = "token-request"
KUBELET_CREDENTIALS_READ = "kubelet-credentials-read"
# Sources whose signals name the identity that made the request, first.
_ACTOR_SOURCES = frozenset({"audit", "falco"})
# Legacy action events (recorded without facts): what each result still tells.
_LEGACY = {
    ("isolate", "ok"): (NETWORK, UNVERIFIED, "isolated without a check of every policy"),
    ("cordon", "ok"): (NODE, CORDONED, "cordoned"),
    ("detach", "ok"): (WORKLOAD, DETACHED, "detached from its controller"),
    ("undo isolate", "undone"): (NETWORK, RESTORED, "isolation undone"),
    ("undo cordon", "undone"): (NODE, RESTORED, "uncordoned"),
    ("undo detach", "undone"): (WORKLOAD, RESTORED, "labels restored"),
}

PodLookup = Callable[[str, str], "bool | None"]


@dataclass(frozen=True, slots=True)
class Fact:
    """One containment fact, as an action event reported it."""

    aspect: str
    subject: str
    state: str
    detail: str
    time: float
    actor: str
    action: str


@dataclass(frozen=True, slots=True)
class Item:
    """Where one subject stands in one aspect."""

    aspect: str
    subject: str
    state: str
    detail: str
    # When the current state began (the fact's or the deletion's time); None when
    # nothing set it, or when it is not known (a pod found gone by a lookup only).
    since: float | None = None
    actor: str = ""
    action: str = ""
    # Counts for "contained": a pod of the incident, an identity that acted.
    required: bool = False
    done: bool = False


@dataclass(frozen=True, slots=True)
class NextStep:
    """One thing left to do, in words, with the exact commands (arguments quoted)."""

    subject: str
    why: str
    commands: tuple[str, ...] = ()
    # Some name holds characters no Kubernetes name has: read before running.
    suspicious: bool = False


@dataclass(slots=True)
class Containment:
    items: list[Item] = field(default_factory=list)
    next_steps: list[NextStep] = field(default_factory=list)
    # When the incident became contained (None while it is not, or when unknown).
    contained_at: float | None = None
    # Facts that could not be read, by reason (never raised).
    skipped: Counter[str] = field(default_factory=Counter)

    def of(self, aspect: str) -> list[Item]:
        return [i for i in self.items if i.aspect == aspect]

    @property
    def required(self) -> list[Item]:
        return [i for i in self.items if i.required]

    @property
    def contained(self) -> bool:
        required = self.required
        return bool(required) and all(i.done for i in required)

    @property
    def open(self) -> list[Item]:
        """What is still open: pods and identities not contained, evidence not saved."""
        return [i for i in self.items if not i.done and (i.required or i.aspect == EVIDENCE)]

    @property
    def done(self) -> list[Item]:
        return [i for i in self.items if i.done]

    @property
    def level(self) -> str:
        """contained / partly / none, for the Incidents list."""
        if self.contained:
            return CONTAINED
        # Only what contains counts: a pod isolated effectively or gone, an identity
        # revoked. A cordon, a detach or saved evidence leaves the pod running as it
        # was. A pod found absent with no record of when (never created, perhaps) is
        # nothing anyone contained.
        if any(
            i.done and i.since is not None and i.state in CONTAINING.get(i.aspect, ())
            for i in self.items
        ):
            return PARTLY
        return NOTHING

    @property
    def tokens_live(self) -> list[Item]:
        """ServiceAccounts counted contained by removed bindings alone: their tokens
        still authenticate (as whatever their groups may do) until revoked."""
        return [
            i
            for i in self.items
            if i.aspect == IDENTITY
            and i.done
            and i.state == BINDINGS_REMOVED
            and i.subject.startswith("serviceaccount ")
        ]

    def tokens_live_words(self, limit: int = 6) -> str:
        """`serviceaccount ci/runner: bindings removed; its tokens still authenticate
        until revoked (R)`, or "" when there is none."""
        items = self.tokens_live
        if not items:
            return ""
        names = ", ".join(i.subject for i in items[:limit])
        if len(items) > limit:
            names += f" and {len(items) - limit} more"
        return f"{names}: bindings removed; its tokens still authenticate until revoked (R)"

    def open_words(self, limit: int = 6) -> str:
        """`pod shop/web-1 not isolated, serviceaccount ci/runner not revoked`."""
        items = [i for i in self.open if i.required]
        if not items:
            if not self.required:
                return "no pod or acting identity found to contain"
            return ""
        words = [f"{i.subject} {_open_phrase(i)}" for i in items[:limit]]
        if len(items) > limit:
            words.append(f"{len(items) - limit} more")
        return ", ".join(words)


def _open_phrase(item: Item) -> str:
    if item.aspect == IDENTITY:
        return {
            CANNOT_REVOKE: "cannot be revoked by Kubernetes",
            RESTORED: "restored, not revoked",
        }.get(item.state, "not revoked")
    return {
        NOT_EFFECTIVE: "isolation not effective",
        NOT_APPLICABLE: "cannot be isolated by NetworkPolicy",
        UNVERIFIED: "isolation not verified",
        RESTORED: "isolation undone",
    }.get(item.state, "not isolated")


# ---- reading facts ----------------------------------------------------------------------


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def facts_of(event: Event, skipped: Counter[str] | None = None) -> list[Fact]:
    """The containment facts an action event carries; what cannot be read is
    counted in `skipped` by reason and left out."""
    raw = event.raw_inline
    if event.source != "ktriage" or not isinstance(raw, dict):
        return []
    skipped = skipped if skipped is not None else Counter()
    actor = _text(raw.get("actor"))
    action = _text(raw.get("action"))
    when = event.time
    if "containment" not in raw:
        pod = _text(raw.get("pod"))
        if not pod:
            ent = event.first(EntityKind.POD)
            pod = ent.short() if ent is not None else ""
        return _legacy_facts(raw, pod, when, actor, action)
    listed = raw["containment"]
    if not isinstance(listed, list):
        skipped["not-a-list"] += 1
        return []
    if len(listed) > MAX_FACTS_PER_EVENT:
        skipped["too-many"] += len(listed) - MAX_FACTS_PER_EVENT
        listed = listed[:MAX_FACTS_PER_EVENT]
    out: list[Fact] = []
    for entry in listed:
        if not isinstance(entry, dict):
            skipped["not-an-object"] += 1
            continue
        aspect, state = entry.get("aspect"), entry.get("state")
        subject, detail = entry.get("subject"), entry.get("detail", "")
        if not isinstance(aspect, str) or aspect not in STATES:
            skipped["unknown-aspect"] += 1
            continue
        if not isinstance(state, str) or state not in STATES[aspect]:
            skipped["unknown-state"] += 1
            continue
        if not isinstance(subject, str) or not subject.strip() or len(subject) > MAX_SUBJECT:
            skipped["bad-subject"] += 1
            continue
        if not isinstance(detail, str):
            skipped["bad-detail"] += 1
            continue
        out.append(Fact(aspect, subject, state, detail[:MAX_DETAIL], when, actor, action))
    return out


# An action's Result as shown (the snapshot's "Actions taken"): the record's "ok"
# says only that every API call succeeded; the facts the action checked afterwards
# say whether the change holds.
RESULT_OK = "ok"
RESULT_NOT_EFFECTIVE = "not effective"  # some policy still allows traffic
RESULT_UNVERIFIED = "not verified"  # could not be checked, or nothing seen enforces it


def action_result(event: Event) -> str:
    """The Result word of an action event: its record's ("ok", "failed", "undone",
    "refused"...), except an "ok" whose own facts say its change does not hold:
    "not effective" or "not verified"."""
    raw = event.raw_inline
    result = _text(raw.get("result")) if isinstance(raw, dict) else ""
    if result != RESULT_OK:
        return result
    states = {f.state for f in facts_of(event)}
    if NOT_EFFECTIVE in states:
        return RESULT_NOT_EFFECTIVE
    if UNVERIFIED in states:
        return RESULT_UNVERIFIED
    return result


def _legacy_facts(
    raw: dict[str, Any], pod: str, when: float, actor: str, action: str
) -> list[Fact]:
    """An action event recorded without facts tells what its result still says."""
    result = _text(raw.get("result"))
    if action == "logs" and result == "ok":
        files = raw.get("files")
        count = len(files) if isinstance(files, list) else 0
        if pod and count:
            return [
                Fact(EVIDENCE, f"pod {pod}", LOGS_DUMPED, f"{count} file(s)", when, actor, action)
            ]
        return []
    known = _LEGACY.get((action, result))
    if known is None:
        return []
    aspect, state, detail = known
    if aspect == NODE:
        subject = _text(raw.get("target"))
        subject = subject if subject.startswith("node ") else ""
    else:
        subject = f"pod {pod}" if pod else ""
    if not subject or len(subject) > MAX_SUBJECT:
        return []
    return [Fact(aspect, subject, state, detail, when, actor, action)]


# ---- subjects ------------------------------------------------------------------------------


def pod_subject(namespace: str, name: str) -> str:
    return f"pod {namespace}/{name}" if namespace else f"pod {name}"


def identity_subject(ent: EntityRef) -> str:
    if ent.kind == EntityKind.SERVICE_ACCOUNT:
        return f"serviceaccount {ent.namespace}/{ent.name}"
    return f"user {ent.name}"


def acts_for_the_cluster(ent: EntityRef) -> bool:
    """The control plane's own identities (kube-controller-manager, kubelets, the
    controllers' service accounts): revoking them would break the cluster."""
    if ent.kind == EntityKind.SERVICE_ACCOUNT:
        return ent.namespace == "kube-system" and ent.name.endswith("-controller")
    return is_system_identity(ent.name) and not ent.name.startswith("system:serviceaccount:")


def actor_of(event: Event) -> EntityRef | None:
    """The identity that made the request a signal is about (audit and Kubernetes
    audit alerts of Falco name it first of its identities), or None."""
    if event.source not in _ACTOR_SOURCES:
        return None
    for ent in event.entities:
        if ent.kind in (EntityKind.USER, EntityKind.SERVICE_ACCOUNT):
            return ent
    return None


# ---- the computation --------------------------------------------------------------------


@dataclass(slots=True)
class _Pod:
    namespace: str
    name: str
    required: bool
    network: Fact | None = None
    isolated_since: float | None = None  # start of the current isolated streak
    workload: Fact | None = None  # the latest workload fact about the pod
    deleted_since: float | None = None
    gone_event: float | None = None  # the cluster reported it deleted
    node: str = ""
    host_network: bool = False  # the cluster's own record of the pod says so
    facts: list[Fact] = field(default_factory=list)


def containment_state(
    incident: Incident,
    events: Iterable[Event],
    pod_exists: PodLookup | None = None,
) -> Containment:
    """Where the incident's containment stands, from its events.

    `pod_exists(namespace, name)` says whether a pod exists now (True), is gone
    (False), or is not known (None); without it (replay) only the events tell.
    """
    token = _CONTEXT.set(incident.cluster)
    try:
        return _containment_state(incident, events, pod_exists)
    finally:
        _CONTEXT.reset(token)


def _containment_state(
    incident: Incident, events: Iterable[Event], pod_exists: PodLookup | None
) -> Containment:
    state = Containment()
    pods: dict[str, _Pod] = {}
    for ent in incident.entities:
        if ent.kind == EntityKind.POD and ent.name:
            pods.setdefault(
                pod_subject(ent.namespace, ent.name), _Pod(ent.namespace, ent.name, True)
            )
    actors: dict[str, EntityRef] = {}
    seen_actors: set[EntityRef] = set()
    facts: list[tuple[float, int, Fact]] = []
    deletions: list[tuple[float, str]] = []
    seen_nodes: dict[str, str] = {}
    host_network: set[str] = set()
    # ServiceAccounts a token was minted for (with who minted it), kubelet
    # credentials read (node, pod).
    obtained: dict[str, tuple[EntityRef, EntityRef | None]] = {}
    kubelet_reads: list[tuple[str, EntityRef | None]] = []
    identity_facts: dict[str, list[Fact]] = {}
    for ev in events:
        source = ev.source
        if source == "ktriage":
            for n, f in enumerate(facts_of(ev, state.skipped)):
                facts.append((f.time, ev.id * MAX_FACTS_PER_EVENT + n, f))
            continue
        # Context events (most of an incident) only matter from the cluster itself.
        if not ev.signal and source != "kube":
            continue
        if ev.signal and ev.kind != OWN_REQUEST_KIND:
            # (This run's own requests are never signals; should one come as one, it
            # still names no identity that acted.)
            actor = actor_of(ev)
            if actor is not None and actor not in seen_actors:
                seen_actors.add(actor)
                if actor.name and not acts_for_the_cluster(actor):
                    actors.setdefault(identity_subject(actor), actor)
            minted = _token_obtained(ev, actor)
            if minted is not None:
                obtained.setdefault(identity_subject(minted), (minted, actor))
            if ev.kind == KUBELET_CREDENTIALS_READ:
                pod_ref, node_ref = ev.first(EntityKind.POD), ev.first(EntityKind.NODE)
                kubelet_reads.append((node_ref.name if node_ref is not None else "", pod_ref))
        if source != "audit":
            # The node a pod runs on, as runtime alerts and the cluster name it.
            pod_ref, node = ev.first(EntityKind.POD), ev.first(EntityKind.NODE)
            if pod_ref is not None and node is not None:
                seen_nodes[pod_subject(pod_ref.namespace, pod_ref.name)] = node.name
        if source == "kube":
            if ev.kind == "pod-deleted":
                pod_ref = ev.first(EntityKind.POD)
                if pod_ref is not None:
                    deletions.append((ev.time, pod_subject(pod_ref.namespace, pod_ref.name)))
            if isinstance(ev.raw_inline, dict):
                _pod_spec(ev, seen_nodes, host_network)
    facts.sort(key=lambda t: (t[0], t[1]))
    for when, subject in deletions:
        pod = pods.get(subject)
        if pod is not None and (pod.gone_event is None or when < pod.gone_event):
            pod.gone_event = when

    latest: dict[tuple[str, str], Fact] = {}
    streak: dict[tuple[str, str], float | None] = {}
    for _, _, f in facts:
        key = (f.aspect, f.subject)
        if f.aspect == IDENTITY:
            identity_facts.setdefault(f.subject, []).append(f)
            continue
        if f.subject.startswith("pod ") and f.aspect in (NETWORK, WORKLOAD, EVIDENCE):
            pod = pods.get(f.subject)
            if pod is None:
                ns, _, name = f.subject[4:].rpartition("/")
                pod = pods[f.subject] = _Pod(ns, name, False)
            pod.facts.append(f)
            if f.aspect == NETWORK:
                pod.isolated_since = _run_start(pod.isolated_since, pod.network, f, ISOLATED)
                pod.network = f
            elif f.aspect == WORKLOAD:
                pod.deleted_since = _run_start(pod.deleted_since, pod.workload, f, DELETED)
                pod.workload = f
        was = latest.get(key)
        contains = f.state in CONTAINING.get(f.aspect, ())
        if contains:
            streak[key] = (
                streak.get(key)
                if was is not None and was.state in CONTAINING.get(f.aspect, ())
                else f.time
            )
        else:
            streak[key] = None
        latest[key] = f

    for subject, pod in pods.items():
        pod.node = seen_nodes.get(subject, "")
        pod.host_network = subject in host_network

    nodes_cordoned = {
        f.subject[5:]
        for (aspect, _), f in latest.items()
        if aspect == NODE and f.state in DONE_STATES[NODE] and f.subject.startswith("node ")
    }
    items: list[Item] = []
    steps: list[NextStep] = []
    evidence_items: list[Item] = []
    # Network (and gone), per pod.
    for subject, pod in sorted(pods.items(), key=lambda kv: (not kv[1].required, kv[0])):
        item = _pod_item(subject, pod, pod_exists)
        items.append(item)
        ev_fact = latest.get((EVIDENCE, subject))
        if ev_fact is not None:
            evidence_items.append(_item(ev_fact, required=False, since=ev_fact.time))
        elif pod.required:
            gone = item.state == GONE
            evidence_items.append(
                Item(
                    EVIDENCE,
                    subject,
                    OPEN,
                    "no logs saved; the pod is gone, its logs with it"
                    if gone
                    else "no logs saved yet",
                    required=False,
                )
            )
        if pod.required and not item.done:
            steps.extend(_pod_steps(item, pod, ev_fact is not None, nodes_cordoned))
        elif pod.required and item.state != GONE and ev_fact is None:
            steps.append(_evidence_step(item, pod))
    # Workload and node facts, as reported.
    for (aspect, subject), f in sorted(latest.items()):
        if aspect in (WORKLOAD, NODE):
            items.append(_item(f, required=False, since=streak.get((aspect, subject)) or f.time))
    # Identities: every one that acted or whose credentials were obtained, and any
    # other a fact is about.
    identity_subjects = dict.fromkeys([*actors, *obtained, *identity_facts])
    for subject in identity_subjects:
        who = actors.get(subject) or (obtained[subject][0] if subject in obtained else None)
        minted_by = obtained[subject][1] if subject in obtained else None
        item = _identity_item(
            subject,
            identity_facts.get(subject, []),
            required=subject in actors or subject in obtained,
            obtained=subject in obtained,
            minted_by=minted_by,
            service_account=who is not None and who.kind == EntityKind.SERVICE_ACCOUNT,
        )
        items.append(item)
        if item.required and not item.done:
            steps.append(_identity_step(item, who, minted_by if subject in obtained else None))
        elif item.done and item.state == BINDINGS_REMOVED and who is not None:
            if who.kind == EntityKind.SERVICE_ACCOUNT:
                steps.append(_revoke_tokens_step(item, who))
    # Kubelet credentials read: that node's identity stays open (Kubernetes cannot
    # revoke a client certificate by an API call).
    named = {i.subject for i in items if i.aspect == IDENTITY}
    for read_node, read_pod in kubelet_reads:
        where = pod_subject(read_pod.namespace, read_pod.name) if read_pod is not None else ""
        node_name = read_node or (seen_nodes.get(where, "") if where else "")
        subject = (
            f"user system:node:{node_name}"
            if node_name
            else f"the kubelet of the node of {where or '?'}"
        )
        if subject in named:  # one item per node, however many reads
            continue
        named.add(subject)
        item = Item(
            IDENTITY,
            subject,
            CANNOT_REVOKE,
            "its kubelet credentials were read"
            + (f" in {where}" if where else "")
            + ": they act as the node until the certificate expires; Kubernetes cannot "
            "revoke them by an API call",
            required=True,
        )
        items.append(item)
        steps.append(_kubelet_step(item, node_name, read_pod))
    covered = {i.subject for i in evidence_items}
    for (aspect, subject), f in sorted(latest.items()):
        if aspect == EVIDENCE and subject not in covered:
            evidence_items.append(_item(f, required=False, since=f.time))
    items.extend(evidence_items)
    state.items = items
    state.next_steps = steps
    if state.contained:
        times = [i.since for i in state.required]
        state.contained_at = None if any(t is None for t in times) else max(times)  # type: ignore[type-var]
    return state


def _token_obtained(ev: Event, actor: EntityRef | None) -> EntityRef | None:
    """The ServiceAccount a TokenRequest that succeeded minted a token for: named
    after the identity that asked (audit entities: the actor, any impersonated
    identity, then the request's object). A denied request is a LOW signal."""
    if ev.source != "audit" or ev.kind != TOKEN_REQUEST or ev.severity <= Severity.LOW:
        return None
    if actor is None or actor not in ev.entities:
        return None
    after = ev.entities[ev.entities.index(actor) + 1 :]
    accounts = [e for e in after if e.kind == EntityKind.SERVICE_ACCOUNT and e.name]
    return accounts[-1] if accounts else None


def _parts(f: Fact) -> tuple[str, ...]:
    """The part(s) of an identity's containment a fact is about: by the action that
    reported it, else by its state; a restore by an unknown action, both."""
    part = _PART_OF_ACTION.get(f.action) or _PART_OF_STATE.get(f.state)
    return (part,) if part else (BINDINGS, CREDENTIALS)


def _identity_item(
    subject: str,
    facts: list[Fact],
    *,
    required: bool,
    obtained: bool,
    minted_by: EntityRef | None,
    service_account: bool,
) -> Item:
    """Where an identity stands: revoked credentials contain it; removed bindings too,
    unless a credential of it was obtained (a minted token outlives any binding)."""
    parts: dict[str, Fact] = {}
    since: float | None = None
    for f in facts:
        for part in _parts(f):
            parts[part] = f
        if _identity_contained(parts, obtained):
            since = f.time if since is None else since
        else:
            since = None
    bindings, credentials = parts.get(BINDINGS), parts.get(CREDENTIALS)
    by = f" by {identity_subject(minted_by)}" if minted_by is not None else ""
    if credentials is not None and credentials.state == CREDENTIALS_REVOKED:
        return _item(credentials, required=required, since=since)
    if bindings is not None and bindings.state == BINDINGS_REMOVED:
        item = _item(bindings, required=required, since=since)
        if obtained:
            detail = (
                f"bindings removed, but a token for it was obtained{by}: it still "
                "authenticates until the credentials are revoked (R)"
            )
            return Item(
                IDENTITY,
                subject,
                BINDINGS_REMOVED,
                detail,
                bindings.time,
                bindings.actor,
                bindings.action,
                required,
                done=False,
            )
        if service_account:
            detail = "bindings removed; its tokens still authenticate until revoked (R)"
            if bindings.detail:
                detail += f" ({bindings.detail})"
            return Item(
                IDENTITY,
                subject,
                item.state,
                detail,
                item.since,
                item.actor,
                item.action,
                required,
                done=True,
            )
        return item
    if credentials is not None:
        return _item(credentials, required=required, since=since)
    if bindings is not None:
        return _item(bindings, required=required, since=since)
    detail = (
        f"a token for it was obtained{by}; not revoked yet"
        if obtained
        else "acted in the incident; nothing revoked yet"
    )
    return Item(IDENTITY, subject, OPEN, detail, required=required)


def _identity_contained(parts: dict[str, Fact], obtained: bool) -> bool:
    credentials, bindings = parts.get(CREDENTIALS), parts.get(BINDINGS)
    if credentials is not None and credentials.state == CREDENTIALS_REVOKED:
        return True
    return not obtained and bindings is not None and bindings.state == BINDINGS_REMOVED


def _pod_spec(ev: Event, nodes: dict[str, str], host_network: set[str]) -> None:
    """The node and hostNetwork of a pod, from the copy of it a pod-state event keeps."""
    raw = ev.raw_inline or {}
    meta, spec = raw.get("metadata"), raw.get("spec")
    if raw.get("kind") != "Pod" or not isinstance(meta, dict) or not isinstance(spec, dict):
        return
    ns, name = meta.get("namespace"), meta.get("name")
    if not isinstance(ns, str) or not isinstance(name, str) or not name:
        return
    subject = pod_subject(ns, name)
    node = spec.get("nodeName")
    if isinstance(node, str) and node:
        nodes[subject] = node
    if spec.get("hostNetwork") is True:
        host_network.add(subject)


def _run_start(since: float | None, before: Fact | None, f: Fact, state: str) -> float | None:
    """When the current run of `state` began, after fact `f` (`before` the one it follows):
    kept while the run lasts, `f`'s time when it starts one, None when `f` ends it."""
    if f.state != state:
        return None
    return since if before is not None and before.state == state else f.time


def _isolated(f: Fact | None) -> bool:
    return f is not None and f.state == ISOLATED


def _deleted(f: Fact | None) -> bool:
    return f is not None and f.state == DELETED


def _item(f: Fact, *, required: bool, since: float | None) -> Item:
    return Item(
        aspect=f.aspect,
        subject=f.subject,
        state=f.state,
        detail=f.detail,
        since=since if f.state in DONE_STATES.get(f.aspect, ()) else f.time,
        actor=f.actor,
        action=f.action,
        required=required,
        done=f.state in DONE_STATES.get(f.aspect, ()),
    )


def _pod_item(subject: str, pod: _Pod, pod_exists: PodLookup | None) -> Item:
    """The pod's network item: isolated, gone, or what its latest network fact says."""
    exists = pod_exists(pod.namespace, pod.name) if pod_exists is not None else None
    net = pod.network
    deleted = pod.workload if _deleted(pod.workload) else None
    gone_times: list[float] = []
    if exists is not True:
        # A pod that exists now (recreated under the same name, or still
        # terminating) is not gone, whatever was deleted before.
        if pod.gone_event is not None:
            gone_times.append(pod.gone_event)
        if deleted is not None and pod.deleted_since is not None:
            gone_times.append(pod.deleted_since)
    if not gone_times and exists is not False:
        if net is None:
            detail = "not isolated"
            if pod.host_network:
                detail = "not isolated; hostNetwork: NetworkPolicy cannot isolate it"
            return Item(NETWORK, subject, OPEN, detail, required=pod.required)
        return _item(net, required=pod.required, since=pod.isolated_since)
    # Gone: contained since it was deleted, or since it was isolated before that;
    # found gone by the lookup alone, since a time no event tells.
    if _isolated(net) and pod.isolated_since is not None:
        gone_times.append(pod.isolated_since)
    if deleted is not None and exists is not True:
        detail = deleted.detail or "deleted"
    elif pod.gone_event is not None and exists is not True:
        detail = "the cluster reported it deleted"
    else:
        detail = "not in the cluster now (deleted, or never created)"
    return Item(
        NETWORK,
        subject,
        GONE,
        detail,
        since=min(gone_times) if gone_times else None,
        actor=deleted.actor if deleted is not None else "",
        action=deleted.action if deleted is not None else "",
        required=pod.required,
        done=True,
    )


# ---- next steps ----------------------------------------------------------------------------


def _q(text: str) -> str:
    return shlex.quote(text)


# The kubeconfig context of the incident whose next steps are being written: with
# several clusters, every command names its cluster (the current context may be another).
_CONTEXT: ContextVar[str] = ContextVar("kubectl_context", default="")


def _kubectl() -> str:
    """`kubectl ` with the incident's `--context` when it has a cluster."""
    context = _CONTEXT.get()
    return f"kubectl --context={_q(context)} " if context else "kubectl "


def _ns(namespace: str) -> str:
    """`--namespace=shop `, quoted; nothing for a pod known without its namespace."""
    return f"--namespace={_q(namespace)} " if namespace else ""


def _suspicious(*names: str) -> bool:
    return any(not n.isprintable() or n != n.strip() for n in names)


def quarantine_value(pod_name: str) -> str:
    """The quarantine label's value for a pod (as actions/isolate.py sets it)."""
    if len(pod_name) <= 63 and _LABEL_VALUE.fullmatch(pod_name):
        return pod_name
    head = re.sub(r"[^A-Za-z0-9_.-]", "-", pod_name)[:52].strip("-_.") or "pod"
    return f"{head}-{_digest(pod_name)}"


def policy_name(pod_name: str) -> str:
    """`ktriage-quarantine-<pod>` (as actions/isolate.py names it)."""
    name = POLICY_PREFIX + pod_name
    if len(name) <= 63 and _DNS_LABEL.fullmatch(name):
        return name
    room = 63 - len(POLICY_PREFIX) - 11
    head = re.sub(r"[^a-z0-9-]", "-", pod_name.lower())[:room].strip("-") or "pod"
    return f"{POLICY_PREFIX}{head}-{_digest(pod_name)}"


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:10]


def isolate_commands(namespace: str, name: str) -> tuple[str, ...]:
    """A deny-all policy selecting the quarantine label, then the label on the pod:
    until the label lands nothing is selected."""
    policy = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": policy_name(name), "namespace": namespace},
        "spec": {
            "podSelector": {"matchLabels": {QUARANTINE_LABEL: quarantine_value(name)}},
            "policyTypes": ["Ingress", "Egress"],
        },
    }
    body = json.dumps(policy, separators=(",", ":"), ensure_ascii=True)
    label = f"{QUARANTINE_LABEL}={quarantine_value(name)}"
    return (
        f"printf '%s\\n' {_q(body)} | {_kubectl()}apply -f -",
        f"{_kubectl()}{_ns(namespace)}label {_q('pod/' + name)} {_q(label)} --overwrite",
    )


def evidence_commands(namespace: str, name: str) -> tuple[str, ...]:
    base = re.sub(r"[^A-Za-z0-9_.-]", "_", f"{namespace}.{name}").lstrip(".")[:120] or "pod"
    pod = _q("pod/" + name)
    log, yml = _q(base + ".log"), _q(base + ".yaml")
    return (
        f"{_kubectl()}{_ns(namespace)}logs {pod} --all-containers --prefix --timestamps > {log}",
        f"{_kubectl()}{_ns(namespace)}get {pod} -o yaml > {yml}",
        f"sha256sum {log} {yml} > {_q(base + '.SHA256SUMS')}",
    )


def delete_pod_command(namespace: str, name: str) -> str:
    return f"{_kubectl()}{_ns(namespace)}delete {_q('pod/' + name)}"


def cordon_command(namespace: str, name: str, node: str) -> str:
    if node:
        return f"{_kubectl()}cordon -- {_q(node)}"
    # Not seen in any event: ask the cluster for it.
    find = f"{_kubectl()}{_ns(namespace)}get {_q('pod/' + name)} -o jsonpath='{{.spec.nodeName}}'"
    return f'{_kubectl()}cordon -- "$({find})"'


def _pod_steps(item: Item, pod: _Pod, has_evidence: bool, cordoned: set[str]) -> list[NextStep]:
    ns, name = pod.namespace, pod.name
    odd = _suspicious(ns, name, pod.node)
    steps: list[NextStep] = []
    evidence = () if has_evidence else evidence_commands(ns, name)
    if item.state == NOT_APPLICABLE or (pod.host_network and item.state != NOT_EFFECTIVE):
        cordon = () if pod.node and pod.node in cordoned else (cordon_command(ns, name, pod.node),)
        commands: tuple[str, ...] = (*cordon, *evidence, delete_pod_command(ns, name))
        why = (
            "NetworkPolicy cannot isolate it (hostNetwork): contain it on its node: "
            "cordon the node, save the evidence, then delete the pod"
        )
        steps.append(NextStep(item.subject, why, commands, odd))
    elif item.state == NOT_EFFECTIVE and _detached_since(pod):
        why = (
            "detached since its isolation was found not effective: check the isolation "
            "again (i in ktriage re-reads every policy that selects it) or by hand"
        )
        commands = (
            f"{_kubectl()}{_ns(ns)}get {_q('pod/' + name)} --show-labels",
            f"{_kubectl()}{_ns(ns)}get networkpolicies -o wide",
        )
        steps.append(NextStep(item.subject, why, commands, odd))
        if evidence:
            steps.append(_evidence_step(item, pod))
    elif item.state == NOT_EFFECTIVE:
        why = (
            f"isolation is not effective ({item.detail or 'another policy allows traffic'}): "
            "detach it from the labels those policies select (D in ktriage), or save the "
            "evidence and delete it"
        )
        steps.append(NextStep(item.subject, why, (*evidence, delete_pod_command(ns, name)), odd))
    elif item.state == UNVERIFIED:
        # The policy is in place; what is missing is proof that it holds (no
        # enforcing plugin seen, or the re-read failed): deleting the pod is sure.
        why = (
            f"isolation is not verified ({item.detail or 'not checked'}): check it again "
            "(i in ktriage), or save the evidence and delete the pod"
        )
        steps.append(NextStep(item.subject, why, (*evidence, delete_pod_command(ns, name)), odd))
    else:
        why = (
            "its isolation was undone: isolate it again (i in ktriage) or by hand"
            if item.state == RESTORED
            else "not isolated: isolate it (i in ktriage) or by hand"
        )
        steps.append(NextStep(item.subject, why, isolate_commands(ns, name), odd))
        if evidence:
            steps.append(_evidence_step(item, pod))
    return steps


def _detached_since(pod: _Pod) -> bool:
    """Whether the pod was detached (or replaced) after its latest network fact."""
    work, net = pod.workload, pod.network
    return (
        work is not None
        and net is not None
        and work.state in (DETACHED, REPLACED)
        and work.time >= net.time
    )


def _evidence_step(item: Item, pod: _Pod) -> NextStep:
    return NextStep(
        item.subject,
        "save its evidence: logs and YAML, with their SHA-256 (l in ktriage) or by hand",
        evidence_commands(pod.namespace, pod.name),
        _suspicious(pod.namespace, pod.name),
    )


def _service_account_json(namespace: str, name: str) -> str:
    """The ServiceAccount as one JSON line: `kubectl create serviceaccount NAME`
    would read a hostile name starting with `-` as an option (and drops what
    follows `--`)."""
    account = {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": name, "namespace": namespace},
    }
    return json.dumps(account, separators=(",", ":"), ensure_ascii=True)


def _identity_step(
    item: Item, ent: EntityRef | None, minted_by: EntityRef | None = None
) -> NextStep:
    if ent is None:  # pragma: no cover - only actors are required
        return NextStep(item.subject, "revoke it")
    grep = (
        f"{_kubectl()}get clusterrolebindings,rolebindings --all-namespaces -o wide | grep -F -e "
    )
    if ent.kind == EntityKind.SERVICE_ACCOUNT:
        ns, name = ent.namespace, ent.name
        if minted_by is not None:
            # A minted token outlives any binding: only a new uid ends it.
            controller = (
                " (a controller's account: kube-controller-manager requests a new token for it)"
                if acts_for_the_cluster(ent)
                else ""
            )
            why = (
                f"a token for it was obtained by {identity_subject(minted_by)}: revoke every "
                f"token it has by deleting and recreating it (the command below; R in ktriage "
                f"acts on the identity that acted, not on this account){controller}; pods "
                "that use it must restart"
            )
        else:
            # (No "credentials: ..." in these words: the redactor would take it for one.)
            why = (
                "not revoked. Remove the bindings it created or used (kubectl delete "
                "clusterrolebinding NAME / kubectl --namespace=NS delete rolebinding NAME), "
                "and revoke every token it has by deleting and recreating it (bound tokens "
                "die with the ServiceAccount's UID, its legacy token Secrets are deleted "
                "with it; pods that use it must restart)"
            )
        commands: tuple[str, ...] = (
            f"{_kubectl()}auth can-i --list {_q(f'--as=system:serviceaccount:{ns}:{name}')}",
            grep + _q(f"{ns}/{name}"),
            _recreate_command(ns, name),
        )
        return NextStep(item.subject, why, commands, _suspicious(ns, name))
    name = ent.name
    if item.state == CANNOT_REVOKE:
        why = f"{item.detail or 'Kubernetes cannot revoke it'}. "
    else:
        why = "not revoked, and Kubernetes cannot revoke a user. "
    why += (
        "Remove its bindings (kubectl delete clusterrolebinding NAME / kubectl "
        "--namespace=NS delete rolebinding NAME), then revoke it where it was issued "
        "(the identity provider; for a client certificate, rotate the cluster's CA)"
    )
    commands = (f"{_kubectl()}auth can-i --list {_q('--as=' + name)}", grep + _q(name))
    return NextStep(item.subject, why, commands, _suspicious(name))


def _recreate_command(namespace: str, name: str) -> str:
    return (
        f"{_kubectl()}{_ns(namespace)}delete {_q('serviceaccount/' + name)} && "
        f"printf '%s\\n' {_q(_service_account_json(namespace, name))} | {_kubectl()}create -f -"
    )


def _revoke_tokens_step(item: Item, ent: EntityRef) -> NextStep:
    """A ServiceAccount whose bindings are removed: its tokens still authenticate."""
    ns, name = ent.namespace, ent.name
    why = (
        "bindings removed, but its tokens still authenticate (as whatever its groups "
        "may do): revoke them by deleting and recreating it (R in ktriage)"
    )
    return NextStep(item.subject, why, (_recreate_command(ns, name),), _suspicious(ns, name))


def drain_command(node: str) -> str:
    return f"{_kubectl()}drain --ignore-daemonsets --delete-emptydir-data -- {_q(node)}"


def _kubelet_step(item: Item, node: str, pod: EntityRef | None) -> NextStep:
    """A node whose kubelet credentials were read: nothing in the API revokes them."""
    why = (
        "its kubelet credentials were read: Kubernetes cannot revoke a client "
        "certificate by an API call, and rotating the kubelet's certificate leaves the "
        "stolen one valid until it expires. Cordon and drain the node (the Node "
        "authorizer then gives that identity no pod to read), then replace the node, "
        "or rotate the cluster's CA"
    )
    if node:
        commands: tuple[str, ...] = (f"{_kubectl()}cordon -- {_q(node)}", drain_command(node))
        odd = _suspicious(node)
    elif pod is not None:
        find = (
            f"{_kubectl()}{_ns(pod.namespace)}get {_q('pod/' + pod.name)} "
            "-o jsonpath='{.spec.nodeName}'"
        )
        commands = (
            cordon_command(pod.namespace, pod.name, ""),
            f'{_kubectl()}drain --ignore-daemonsets --delete-emptydir-data -- "$({find})"',
        )
        odd = _suspicious(pod.namespace, pod.name)
    else:
        commands, odd = (), False
    return NextStep(item.subject, why, commands, odd)
