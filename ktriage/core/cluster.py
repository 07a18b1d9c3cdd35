"""The current state of a cluster's pods and nodes, kept from list/watch results.

Pure: it takes the plain dicts the API returns (the JSON of a Pod, Node or Event)
and never talks to a server. Every change returns the events it implies (crash
loops, OOM kills, new privileged pods, nodes going NotReady...), derived by
`ktriage.core.detect.podstate`. The UI and the actions read `pods` and `nodes`.
"""

from __future__ import annotations

import re
import sys
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from ktriage.core.detect import podstate
from ktriage.core.detect.identity import ClusterNetworks, is_public_address, public_address
from ktriage.core.memo import remembered
from ktriage.core.model import EntityKind, Event, Severity, entity
from ktriage.core.parse.podfacts import POD_ACCOUNT_KIND, POD_ADDRESS_KIND, own_address
from ktriage.core.text import clip
from ktriage.core.timeparse import object_time

QUARANTINE_LABEL = "ktriage.io/quarantine"
# Warning events remembered (by uid) so an updated event reports only new occurrences.
EVENTS_REMEMBERED = 20_000
# Pod facts held for take_facts at most (a source that never takes them loses the oldest).
FACTS_KEPT = 100_000
# Addresses remembered as already learnt (then forgotten all at once, and learnt again).
LEARNT_KEPT = 200_000


class ContainerStatus(NamedTuple):
    """What detections need from one container status (regular, init or ephemeral)."""

    name: str
    kind: str  # "container" | "init" | "ephemeral"
    image: str
    ready: bool
    restarts: int
    state: str  # "running" | "waiting" | "terminated" | ""
    reason: str  # waiting or terminated reason
    message: str
    exit_code: int | None
    started: float | None
    finished: float | None
    last_reason: str  # lastState.terminated
    last_exit_code: int | None
    last_started: float | None
    last_finished: float | None

    def termination_key(self) -> str | None:
        """Identifies the current termination, so it is reported once."""
        if self.state != "terminated":
            return None
        return _term_key(self.reason, self.exit_code, self.started, self.finished, self.restarts)

    def last_termination_key(self) -> str | None:
        if not self.last_reason and self.last_exit_code is None:
            return None
        return _term_key(
            self.last_reason,
            self.last_exit_code,
            self.last_started,
            self.last_finished,
            self.restarts - 1,
        )


def _term_key(
    reason: str, code: int | None, started: float | None, finished: float | None, n: int
) -> str:
    if finished is not None or started is not None:
        return f"{started}:{finished}"
    # No times at all: the restart count tells terminations apart.
    return f"{reason}:{code}:#{n}"


# Not frozen, though nothing changes one once made: a frozen dataclass sets each of
# its thirty-odd fields through object.__setattr__, a tenth of reading a listed pod.
@dataclass(slots=True)
class PodInfo:
    namespace: str
    name: str
    uid: str
    phase: str = ""
    ready: str = "0/0"
    restarts: int = 0
    node: str = ""
    service_account: str = ""
    images: tuple[str, ...] = ()
    labels: dict[str, str] = field(default_factory=dict)
    owner: str = ""  # "ReplicaSet/web-7d9f"
    created: float = 0.0
    privileged: bool = False
    host_path: bool = False
    host_network: bool = False
    host_pid: bool = False
    host_ipc: bool = False
    status_reason: str = ""  # what `kubectl get pods` shows in STATUS
    containers: tuple[str, ...] = ()  # every container name, init and ephemeral too
    isolated: bool = False
    resource_version: str = ""
    statuses: tuple[ContainerStatus, ...] = ()
    reason: str = ""  # status.reason ("Evicted")
    message: str = ""  # status.message
    unschedulable: str = ""  # the scheduler's message while Pending and unschedulable
    unschedulable_since: float | None = None
    deleting: bool = False
    host_paths: tuple[str, ...] = ()
    privileged_containers: tuple[str, ...] = ()
    # The newest time found in the object (status and managed-fields times).
    changed: float = 0.0
    # Its own address ("" when none yet, or on the host's network: the node's).
    pod_ip: str = ""
    # (namespace, name), made once: the state, its list and the rows share the tuple.
    key: tuple[str, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.key = (self.namespace, self.name)

    @property
    def risky(self) -> bool:
        return (
            self.privileged or self.host_path or self.host_network or self.host_pid or self.host_ipc
        )

    def status(self, container: str) -> ContainerStatus | None:
        for st in self.statuses:
            if st.name == container:
                return st
        return None


@dataclass(frozen=True, slots=True)
class NodeInfo:
    name: str
    uid: str = ""
    ready: bool = False
    ready_reason: str = ""
    ready_message: str = ""
    ready_since: float | None = None
    unschedulable: bool = False
    roles: tuple[str, ...] = ()
    version: str = ""
    created: float = 0.0
    resource_version: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    changed: float = 0.0


# ---- parsing ----------------------------------------------------------------


def _d(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _l(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _s(value: Any) -> str:
    return value if isinstance(value, str) else ""


_t = object_time


def _shared(value: Any) -> str:
    """A string many pods repeat (a namespace, node, image, label, reason), held once:
    with 50,000 pods, copies of the same few hundred strings add up."""
    return sys.intern(value) if isinstance(value, str) and len(value) <= 256 else _s(value)


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def latest_time(obj: dict[str, Any]) -> float | None:
    """The newest timestamp anywhere an object records one (status, conditions,
    container states, managed fields), else its creation time."""
    meta = _d(obj.get("metadata"))
    found: list[Any] = [mf.get("time") for mf in _l(meta.get("managedFields")) if type(mf) is dict]
    status = _d(obj.get("status"))
    found.append(status.get("startTime"))
    for cond in _l(status.get("conditions")):
        if type(cond) is dict:
            found.append(cond.get("lastTransitionTime"))
            found.append(cond.get("lastProbeTime"))
    for key in ("containerStatuses", "initContainerStatuses", "ephemeralContainerStatuses"):
        for cs in _l(status.get(key)):
            if type(cs) is not dict:
                continue
            for state_key in ("state", "lastState"):
                for st in _d(cs.get(state_key)).values():
                    if type(st) is dict:
                        found.append(st.get("startedAt"))
                        found.append(st.get("finishedAt"))
    # Each distinct text read once: an object repeats its times (a rollout, a start).
    texts = {v for v in found if type(v) is str and v}
    others = [v for v in found if v and type(v) is not str]
    best: float | None = None
    for value in (*texts, *others):
        t = _t(value)
        if t is not None and (best is None or t > best):
            best = t
    if best is None:
        best = _t(meta.get("creationTimestamp"))
    return best


# A container's state, in the order kubectl reads them.
_STATE_NAMES = ("terminated", "waiting", "running")


def _container_status(cs: dict[str, Any], kind: str) -> ContainerStatus:
    get = cs.get
    state = reason = message = ""
    exit_code: int | None = None
    started = finished = None
    state_obj = get("state")
    if isinstance(state_obj, dict):
        for name in _STATE_NAMES:
            st = state_obj.get(name)
            if isinstance(st, dict):
                state = name
                reason = _shared(st.get("reason"))
                message = _s(st.get("message"))
                exit_code = _int(st.get("exitCode"))
                started = _t(st.get("startedAt"))
                finished = _t(st.get("finishedAt"))
                break
    last_reason = ""
    last_exit_code: int | None = None
    last_started = last_finished = None
    last = get("lastState")
    last = last.get("terminated") if isinstance(last, dict) else None
    if isinstance(last, dict):
        last_reason = _s(last.get("reason"))
        last_exit_code = _int(last.get("exitCode"))
        last_started = _t(last.get("startedAt"))
        last_finished = _t(last.get("finishedAt"))
    return ContainerStatus(
        _shared(get("name")),
        kind,
        _shared(get("image")),
        get("ready") is True,
        _int(get("restartCount")) or 0,
        state,
        reason,
        message,
        exit_code,
        started,
        finished,
        last_reason,
        last_exit_code,
        last_started,
        last_finished,
    )


def _display_reason(
    phase: str, reason: str, deleting: bool, statuses: list[ContainerStatus]
) -> str:
    """The STATUS column as kubectl computes it, in short."""
    if deleting:
        return "Terminating"
    if reason:
        return reason
    for st in statuses:
        if st.kind != "init":
            continue
        if st.state == "terminated" and st.exit_code not in (0, None):
            return f"Init:{st.reason or 'ExitCode:' + str(st.exit_code)}"
        if st.state == "waiting" and st.reason and st.reason != "PodInitializing":
            return f"Init:{st.reason}"
    shown = phase
    for st in statuses:
        if st.kind != "container":
            continue
        if st.state == "waiting" and st.reason:
            shown = st.reason
        elif st.state == "terminated":
            if st.reason:
                shown = st.reason
            elif st.exit_code is not None:
                shown = f"ExitCode:{st.exit_code}"
    return shown


_CONTAINER_KEYS = ("initContainers", "containers", "ephemeralContainers")
_STATUS_KEYS = (
    ("initContainerStatuses", "init"),
    ("containerStatuses", "container"),
    ("ephemeralContainerStatuses", "ephemeral"),
)


def pod_info(obj: dict[str, Any]) -> PodInfo:
    """Parse a Pod (as the API returns it) into a PodInfo."""
    meta = _d(obj.get("metadata"))
    spec = _d(obj.get("spec"))
    status = _d(obj.get("status"))
    labels = {_shared(str(k)): _shared(str(v)) for k, v in _d(meta.get("labels")).items()}
    owner = ""
    owners = [_d(o) for o in _l(meta.get("ownerReferences"))]
    if owners:
        chosen = next((o for o in owners if o.get("controller") is True), owners[0])
        owner = _shared(f"{_s(chosen.get('kind'))}/{_s(chosen.get('name'))}")

    names: list[str] = []
    images: dict[str, None] = {}  # in order, each once (a set test: 10,000 containers)
    privileged: list[str] = []
    regular = 0  # regular containers that are objects (READY's total)
    for key in _CONTAINER_KEYS:
        for c in _l(spec.get(key)):
            if isinstance(c, dict):
                regular += key == "containers"
            else:
                c = {}  # still counted by name (""), as a container it cannot read
            name = _shared(c.get("name"))
            names.append(name)
            image = _shared(c.get("image"))
            if image:
                images[image] = None
            sc = c.get("securityContext")
            if isinstance(sc, dict) and sc.get("privileged") is True:
                privileged.append(name)
    paths: list[str] = []
    for v in _l(spec.get("volumes")):
        host = v.get("hostPath") if isinstance(v, dict) else None
        if isinstance(host, dict):
            paths.append(_s(host.get("path")) or "?")
    host_paths = tuple(paths)

    statuses: list[ContainerStatus] = []
    ready_n = 0
    for key, kind in _STATUS_KEYS:
        for cs in _l(status.get(key)):
            st = _container_status(cs if isinstance(cs, dict) else {}, kind)
            statuses.append(st)
            ready_n += kind == "container" and st.ready

    unschedulable = ""
    unschedulable_since = None
    for cond in _l(status.get("conditions")):
        if (
            isinstance(cond, dict)
            and cond.get("type") == "PodScheduled"
            and cond.get("status") == "False"
            and cond.get("reason") == "Unschedulable"
        ):
            unschedulable = _s(cond.get("message")) or "no node fits the pod"
            unschedulable_since = _t(cond.get("lastTransitionTime"))

    phase = _shared(status.get("phase"))
    reason = _shared(status.get("reason"))
    deleting = bool(meta.get("deletionTimestamp"))
    created = _t(meta.get("creationTimestamp")) or 0.0
    return PodInfo(
        namespace=_shared(meta.get("namespace")),
        name=_s(meta.get("name")),
        uid=_s(meta.get("uid")),
        phase=phase,
        ready=_shared(f"{ready_n}/{regular}"),
        restarts=sum(st.restarts for st in statuses if st.kind != "ephemeral"),
        node=_shared(spec.get("nodeName")),
        service_account=_shared(
            _s(spec.get("serviceAccountName")) or _s(spec.get("serviceAccount"))
        ),
        images=tuple(images),
        labels=labels,
        owner=owner,
        created=created,
        privileged=bool(privileged),
        host_path=bool(host_paths),
        host_network=spec.get("hostNetwork") is True,
        host_pid=spec.get("hostPID") is True,
        host_ipc=spec.get("hostIPC") is True,
        status_reason=_shared(_display_reason(phase, reason, deleting, statuses)),
        containers=tuple(names),
        isolated=QUARANTINE_LABEL in labels,
        resource_version=_s(meta.get("resourceVersion")),
        statuses=tuple(statuses),
        reason=reason,
        message=_s(status.get("message")),
        unschedulable=unschedulable,
        unschedulable_since=unschedulable_since,
        deleting=deleting,
        host_paths=host_paths,
        privileged_containers=tuple(privileged),
        changed=latest_time(obj) or created,
        pod_ip=_own_ip(spec, status),
    )


def _own_ip(spec: dict[str, Any], status: dict[str, Any]) -> str:
    if spec.get("hostNetwork") is True:
        return ""
    ip = _own_address(status.get("podIP"))
    return ip if ip and ip != _own_address(status.get("hostIP")) else ""


# An IPv4 address as the API server writes one: each part 0-255, no leading zeros.
_OCTET = r"(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_PLAIN_IPV4 = re.compile(rf"{_OCTET}\.{_OCTET}\.{_OCTET}\.{_OCTET}", re.ASCII)


def _own_address(text: object) -> str:
    """`podfacts.own_address`, without `ipaddress` for the plain IPv4 form every pod
    and node carries (parsing one took a fifth of a pod's reading); anything else
    (IPv6, odd forms, garbage) goes the exact way."""
    if isinstance(text, str):
        m = _PLAIN_IPV4.fullmatch(text)
        if m is not None:
            first, second = int(m.group(1)), int(m.group(2))
            if (
                first == 127  # loopback
                or 224 <= first <= 239  # multicast
                or (first == 169 and second == 254)  # link-local
                or text == "0.0.0.0"  # unspecified
            ):
                return ""
            return text
    return own_address(text)


def pod_facts(old: PodInfo | None, new: PodInfo) -> list[Event]:
    """What the correlator learns links from (see correlate.FACT_KINDS): the pod's own
    address and the service account it runs as, said when first seen or changed."""
    out: list[Event] = []
    pod = entity(EntityKind.POD, new.namespace, new.name)
    when = new.changed or new.created
    where = f"{new.namespace}/{new.name}"
    if new.pod_ip and (old is None or old.pod_ip != new.pod_ip):
        out.append(
            Event(
                time=when,
                source="kube",
                ref=f"{new.uid}:{new.resource_version}:pod-address",
                kind=POD_ADDRESS_KIND,
                severity=Severity.INFO,
                summary=clip(f"pod {where} has address {new.pod_ip}", 300),
                entities=(pod, entity(EntityKind.IP, "", new.pod_ip)),
            )
        )
    account = new.service_account
    if account and (old is None or old.service_account != account):
        out.append(
            Event(
                time=when,
                source="kube",
                ref=f"{new.uid}:{new.resource_version}:pod-account",
                kind=POD_ACCOUNT_KIND,
                severity=Severity.INFO,
                summary=clip(f"pod {where} runs as service account {account}", 300),
                entities=(pod, entity(EntityKind.SERVICE_ACCOUNT, new.namespace, account)),
            )
        )
    return out


def node_info(obj: dict[str, Any]) -> NodeInfo:
    """Parse a Node (as the API returns it) into a NodeInfo."""
    meta = _d(obj.get("metadata"))
    spec = _d(obj.get("spec"))
    status = _d(obj.get("status"))
    labels = {str(k): str(v) for k, v in _d(meta.get("labels")).items()}
    roles = tuple(
        sorted(
            k.split("/", 1)[1]
            for k in labels
            if k.startswith("node-role.kubernetes.io/") and k.split("/", 1)[1]
        )
    )
    ready = False
    ready_reason = ready_message = ""
    ready_since = None
    for cond in _l(status.get("conditions")):
        cond = _d(cond)
        if cond.get("type") == "Ready":
            ready = cond.get("status") == "True"
            ready_reason = _s(cond.get("reason"))
            ready_message = _s(cond.get("message"))
            ready_since = _t(cond.get("lastTransitionTime"))
    created = _t(meta.get("creationTimestamp")) or 0.0
    return NodeInfo(
        name=_s(meta.get("name")),
        uid=_s(meta.get("uid")),
        ready=ready,
        ready_reason=ready_reason,
        ready_message=ready_message,
        ready_since=ready_since,
        unschedulable=spec.get("unschedulable") is True,
        roles=roles,
        version=_s(_d(status.get("nodeInfo")).get("kubeletVersion")),
        created=created,
        resource_version=_s(meta.get("resourceVersion")),
        labels=labels,
        changed=latest_time(obj) or created,
    )


def object_addresses(obj: dict[str, Any]) -> list[str]:
    """The addresses of a Node or Pod object, as `ClusterNetworks.learn_object` reads
    them (status.podIP(s), hostIP(s), addresses)."""
    status = obj.get("status")
    if not isinstance(status, dict):
        return []
    found: list[Any] = [status.get("podIP"), status.get("hostIP")]
    for key in ("podIPs", "hostIPs", "addresses"):
        for item in _l(status.get(key))[:64]:
            if isinstance(item, dict):
                if key == "addresses" and item.get("type") not in ("InternalIP", "ExternalIP"):
                    continue
                found.append(item.get("ip") or item.get("address"))
    return [value for value in found if isinstance(value, str)]


class ListedPod(NamedTuple):
    """A pod of a list read without the state (in the watch thread, off the loop):
    its object, its PodInfo, and its addresses with whether each is public."""

    obj: dict[str, Any]
    info: PodInfo
    addresses: tuple[tuple[str, bool], ...]


# Whether an address is public, for the addresses many pods repeat (their nodes'):
# each pod's own address is read once and not kept (50,000 of them would be).
_REPEATED_PUBLIC: dict[str, bool] = {}
_REPEATED_KEPT = 4096


@remembered(_REPEATED_PUBLIC, _REPEATED_KEPT)
def _is_public(value: str) -> bool:
    return is_public_address(value)


# Whether a plain IPv4 address is public, by its first two parts: every IPv4 network
# `is_public_address` excludes is a /16 or wider (a test checks), so one answer
# holds for a whole /16 (a pod's own address is new each time, its /16 is not).
_PUBLIC_BY_16: dict[str, bool] = {}


@remembered(_PUBLIC_BY_16, _REPEATED_KEPT)
def _public_16(prefix: str) -> bool:
    """Whether the addresses of the /16 `prefix` ("a.b") are public."""
    return is_public_address(f"{prefix}.0.0")


def _own_is_public(value: str) -> bool:
    m = _PLAIN_IPV4.fullmatch(value)
    if m is None:
        return is_public_address(value)
    return _public_16(value[: m.end(2)])


def listed_pod(obj: dict[str, Any]) -> ListedPod:
    """Everything of a listed pod that `ClusterState.apply_pod_page` reads and needs
    no state for (pure: safe in any thread)."""
    found = dict.fromkeys(object_addresses(obj))  # podIP is in podIPs too: read once
    status = obj.get("status")
    own = status.get("podIP") if isinstance(status, dict) else None
    addresses = tuple((v, _own_is_public(v) if v == own else _is_public(v)) for v in found)
    return ListedPod(obj, pod_info(obj), addresses)


# ---- state ------------------------------------------------------------------


class ListProgress:
    """A full list of one resource being applied page by page (see ClusterState)."""

    __slots__ = ("applied", "newest", "present")

    def __init__(self) -> None:
        self.applied = 0  # objects of this list applied so far
        self.present: set[Any] = set()  # their keys: what is absent at the end is gone
        self.newest = 0.0  # the newest time in the list, bounding when the absent went


class ClusterState:
    """Pods and nodes as last seen, and the events their changes imply.

    Every method takes the object as the API returned it (a dict) and returns
    the derived events, which are new each time: refs are the object's uid and
    resourceVersion, so seeing the same version twice (a watch replaying after a
    reconnect, a list overlapping a watch) yields nothing new.

    A full list is applied as its pages arrive (`begin_pod_list`, `apply_pod_page`,
    `end_pod_list`; the same for nodes), so a big cluster shows while it loads;
    `pods_loading` says one is under way and how many of its pods are in. Pages
    of one list read one snapshot (its resourceVersion), so once it ends the pods
    are that snapshot: the pods it did not name are gone. A list started again
    (its continue token expired, the connection was lost) starts over.
    """

    def __init__(self, networks: ClusterNetworks | None = None) -> None:
        # Learns the pods' and nodes' addresses for the audit detections.
        self.networks = networks
        self.pods: dict[tuple[str, str], PodInfo] = {}
        self.nodes: dict[str, NodeInfo] = {}
        # Bumped on every change, so a reader can tell whether to redraw.
        self.revision = 0
        # The pod list under way (None when none is), and whether one ever ended:
        # until then `pods` is a part of the cluster's.
        self.pod_list: ListProgress | None = None
        self.pods_complete = False
        self.node_list: ListProgress | None = None
        self._event_counts: OrderedDict[str, int] = OrderedDict()
        # Facts about pods (address, service account) not yet taken: see take_facts.
        self._facts: list[Event] = []
        # Addresses already given to `networks` (a node's address is on all its pods).
        self._learnt: set[str] = set()
        # Pods stored or removed since `take_touched_pods` was last called.
        self._touched: set[tuple[str, str]] = set()

    @property
    def pods_loading(self) -> int | None:
        """How many pods of the list under way are in (0 before the first list's first
        page); None once a list is complete and none is under way."""
        if self.pod_list is not None:
            return self.pod_list.applied
        return None if self.pods_complete else 0

    def _learn(self, obj: dict[str, Any]) -> None:
        """Give `networks` the object's addresses (as `learn_object` reads them) that
        it has not had yet: reading an address is the costly part, and a node's
        address is on every pod of the node."""
        if self.networks is not None:
            self._learn_addresses([(value, None) for value in object_addresses(obj)])

    def _learn_addresses(self, found: Iterable[tuple[str, bool | None]]) -> None:
        """Addresses with whether each is public (None: not known yet). A private one
        tells `networks` only that something is known: once it knows, the rest are
        not read at all (reading them was most of applying a listed pod)."""
        networks = self.networks
        if networks is None:
            return
        learnt = self._learnt
        for value, public in found:
            if value in learnt:
                continue
            if public is None:
                public = public_address(value)
            if not public and networks.known:
                continue  # nothing to learn from it, nor to remember
            if len(learnt) >= LEARNT_KEPT:
                learnt.clear()
            learnt.add(value)
            networks.learn(value)

    # ---- pods -----------------------------------------------------------------

    def update_pod(self, obj: dict[str, Any]) -> list[Event]:
        """A pod was added or modified."""
        return self._update_pod(obj, pod_info(obj))

    def _update_pod(
        self,
        obj: dict[str, Any],
        new: PodInfo,
        addresses: tuple[tuple[str, bool], ...] | None = None,
    ) -> list[Event]:
        if addresses is None:
            self._learn(obj)
        else:
            self._learn_addresses(addresses)
        if not new.name:
            return []
        old = self.pods.get(new.key)
        events: list[Event] = []
        if old is not None and old.uid != new.uid:
            # Same name, new pod: the old one is gone even if we missed its deletion.
            events.extend(podstate.pod_deleted(old, None, fallback_time=new.created))
            old = None
        if old is not None and (
            old == new or (new.resource_version and old.resource_version == new.resource_version)
        ):
            return []
        self.pods[new.key] = new
        self._touched.add(new.key)
        self.revision += 1
        events.extend(podstate.pod_changes(old, new, obj))
        facts = pod_facts(old, new)
        if facts:
            self._facts.extend(facts)
            if len(self._facts) > FACTS_KEPT:
                del self._facts[: len(self._facts) - FACTS_KEPT]
        return events

    def delete_pod(self, obj: dict[str, Any], seen_at: float | None = None) -> list[Event]:
        """A pod was deleted (the watch's DELETED object, its final state); `seen_at`:
        when the watch event arrived (dates a delete that left no deletionTimestamp)."""
        info = pod_info(obj)
        old = self.pods.get(info.key)
        # Unknown (already gone after a re-list) or an older pod of the same name.
        if old is None or (info.uid and old.uid != info.uid):
            return []
        self.pods.pop(info.key, None)
        self._touched.add(info.key)
        self.revision += 1
        return podstate.pod_deleted(info, obj, seen_at=seen_at)

    def begin_pod_list(self) -> None:
        """A full list starts (the first, or again after a 410 or a lost connection)."""
        self.pod_list = ListProgress()
        self.revision += 1

    def apply_pod_page(
        self, objs: Iterable[dict[str, Any] | tuple[dict[str, Any], PodInfo] | ListedPod]
    ) -> list[Event]:
        """One page of the list under way: its pods are applied now. Each is the
        pod's object, (object, its `pod_info`) when that was parsed already, or a
        `ListedPod` (read in full off the loop: `listed_pod`)."""
        progress = self.pod_list
        if progress is None:
            self.begin_pod_list()
            progress = self.pod_list
            assert progress is not None
        events: list[Event] = []
        for item in objs:
            addresses = None
            if isinstance(item, ListedPod):
                obj, info, addresses = item
            elif isinstance(item, tuple):
                obj, info = item
            else:
                obj, info = item, pod_info(item)
            progress.present.add(info.key)
            progress.applied += 1
            progress.newest = max(progress.newest, info.changed)
            events.extend(self._update_pod(obj, info, addresses))
        self.revision += 1  # the count loading shows moved on
        return events

    def end_pod_list(self) -> list[Event]:
        """The list is complete: the pods it did not name are gone."""
        progress = self.pod_list or ListProgress()
        self.pod_list = None
        self.pods_complete = True
        self.revision += 1
        events: list[Event] = []
        present = progress.present
        for key in [k for k in self.pods if k not in present]:
            gone = self.pods.pop(key)
            self._touched.add(key)
            # The list does not say when it went; the newest time in the list bounds it.
            fallback = max(progress.newest, gone.changed)
            events.extend(podstate.pod_deleted(gone, None, fallback_time=fallback))
        return events

    def resync_pods(self, objs: Iterable[dict[str, Any]]) -> list[Event]:
        """A full list in one piece (after a 410 Expired re-list): apply only the
        differences, including the deletion of pods that are no longer there."""
        self.begin_pod_list()
        events = self.apply_pod_page(objs)
        return events + self.end_pod_list()

    # ---- nodes ----------------------------------------------------------------

    def update_node(self, obj: dict[str, Any]) -> list[Event]:
        return self._update_node(obj, node_info(obj))

    def _update_node(self, obj: dict[str, Any], new: NodeInfo) -> list[Event]:
        self._learn(obj)
        if not new.name:
            return []
        old = self.nodes.get(new.name)
        if old is not None and old.uid and new.uid and old.uid != new.uid:
            old = None
        if old is not None and old == new:
            return []
        self.nodes[new.name] = new
        self.revision += 1
        return podstate.node_changes(old, new, obj)

    def delete_node(self, obj: dict[str, Any], seen_at: float | None = None) -> list[Event]:
        """A node was removed (the watch's DELETED object); `seen_at` as for delete_pod."""
        info = node_info(obj)
        if self.nodes.pop(info.name, None) is None:
            return []
        self.revision += 1
        return podstate.node_deleted(info, obj, seen_at=seen_at)

    def begin_node_list(self) -> None:
        self.node_list = ListProgress()

    def apply_node_page(self, objs: Iterable[dict[str, Any]]) -> list[Event]:
        progress = self.node_list
        if progress is None:
            progress = self.node_list = ListProgress()
        events: list[Event] = []
        for obj in objs:
            info = node_info(obj)
            progress.present.add(info.name)
            progress.applied += 1
            progress.newest = max(progress.newest, info.changed)
            events.extend(self._update_node(obj, info))
        return events

    def end_node_list(self) -> list[Event]:
        progress = self.node_list or ListProgress()
        self.node_list = None
        events: list[Event] = []
        for name in [n for n in self.nodes if n not in progress.present]:
            gone = self.nodes.pop(name)
            self.revision += 1
            events.extend(
                podstate.node_deleted(gone, None, fallback_time=max(progress.newest, gone.changed))
            )
        return events

    def resync_nodes(self, objs: Iterable[dict[str, Any]]) -> list[Event]:
        self.begin_node_list()
        events = self.apply_node_page(objs)
        return events + self.end_node_list()

    # ---- Kubernetes events ----------------------------------------------------

    def update_event(self, obj: dict[str, Any]) -> list[Event]:
        """A core/v1 or events.k8s.io/v1 Event was added or updated: Warning events
        become events, once per new occurrence."""
        if obj.get("type") != "Warning":
            return []
        meta = _d(obj.get("metadata"))
        uid = _s(meta.get("uid")) or f"{_s(meta.get('namespace'))}/{_s(meta.get('name'))}"
        count = podstate.event_count(obj)
        seen = self._event_counts.get(uid)
        if seen is not None and count <= seen:
            return []
        self._event_counts[uid] = count
        self._event_counts.move_to_end(uid)
        while len(self._event_counts) > EVENTS_REMEMBERED:
            self._event_counts.popitem(last=False)
        return podstate.warning_event(obj)

    def resync_events(self, objs: Iterable[dict[str, Any]]) -> list[Event]:
        events: list[Event] = []
        for obj in objs:
            events.extend(self.update_event(obj))
        return events

    def take_touched_pods(self) -> set[tuple[str, str]]:
        """The pods stored (added or changed) or removed since the last call: a view
        that keeps its rows updates only those."""
        touched, self._touched = self._touched, set()
        return touched

    def take_facts(self) -> list[Event]:
        """The pod facts (`pod_facts`) seen since the last call: context events the
        correlator learns links from. Kept apart from the changes a method returns."""
        facts, self._facts = self._facts, []
        return facts

    # ---- queries ----------------------------------------------------------------

    def pod(self, namespace: str, name: str) -> PodInfo | None:
        return self.pods.get((namespace, name))

    def pods_on_node(self, node: str) -> list[PodInfo]:
        return sorted((p for p in self.pods.values() if p.node == node), key=lambda p: p.key)
