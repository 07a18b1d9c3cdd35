"""Server-side printing: `meta.k8s.io/v1` Tables, the rows `kubectl get` shows.

The cells follow kube-apiserver's printers (pkg/printers/internalversion): pods
(NAME READY STATUS RESTARTS AGE, wide IP NODE...), nodes (NAME STATUS ROLES AGE
VERSION, wide addresses and node info), and the usual columns of the other
types; anything else gets NAME AGE. Priority 1 columns are the `-o wide` ones.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ktriage.sim.server import tables_more
from ktriage.sim.timefmt import human_duration, parse_rfc3339

Column = dict[str, Any]
Printer = Callable[[dict, float], list[Any]]

_NAME_DOC = (
    "Name must be unique within a namespace. Is required when creating resources, although "
    "some resources may allow a client to request the generation of an appropriate name "
    "automatically. Name is primarily intended for creation idempotence and configuration "
    "definition. Cannot be updated. More info: "
    "https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names"
)
_AGE_DOC = (
    "CreationTimestamp is a timestamp representing the server time when this object was "
    "created. It is not guaranteed to be set in happens-before order across separate "
    "operations. Clients may not set this value. It is represented in RFC3339 form and is "
    "in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: "
    "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata"
)


def _col(name: str, description: str = "", priority: int = 0, typ: str = "string") -> Column:
    col: Column = {
        "name": name,
        "type": typ,
        "format": "",
        "description": description,
        "priority": priority,
    }
    if name == "Name":
        col["format"] = "name"
        col["description"] = description or _NAME_DOC
    if name == "Age":
        col["description"] = description or _AGE_DOC
    return col


def age(obj: dict, now: float) -> str:
    ts = (obj.get("metadata") or {}).get("creationTimestamp")
    if not ts:
        return "<unknown>"
    return human_duration(now - parse_rfc3339(ts))


def _since(ts: str | None, now: float) -> str:
    if not ts:
        return "<unknown>"
    return human_duration(now - parse_rfc3339(ts))


def _name(obj: dict) -> str:
    return (obj.get("metadata") or {}).get("name", "")


# ------------------------------------------------------------------ pods


POD_COLUMNS = [
    _col("Name"),
    _col("Ready", "The aggregate readiness state of this pod for accepting traffic."),
    _col("Status", "The aggregate status of the containers in this pod."),
    _col(
        "Restarts",
        "The number of times the containers in this pod have been restarted and when the "
        "last container in this pod has restarted.",
    ),
    _col("Age"),
    _col("IP", "podIP address allocated to the pod. Routable at least within the cluster.", 1),
    _col("Node", "NodeName indicates in which node this pod is scheduled.", 1),
    _col("Nominated Node", "nominatedNodeName is set only when this pod preempts other pods.", 1),
    _col("Readiness Gates", "If specified, all readiness gates will be evaluated.", 1),
]


def pod_status_reason(pod: dict) -> tuple[str, int, int, str | None]:
    """(STATUS, ready containers, restarts, last restart time) as kubectl shows them."""
    spec = pod.get("spec") or {}
    status = pod.get("status") or {}
    reason = status.get("reason") or status.get("phase") or ""
    restarts = 0
    ready = 0
    last_restart: str | None = None

    def note_restart(cs: dict) -> None:
        nonlocal last_restart
        finished = ((cs.get("lastState") or {}).get("terminated") or {}).get("finishedAt")
        if finished and (last_restart is None or finished > last_restart):
            last_restart = finished

    initializing = False
    init_specs = {c.get("name"): c for c in spec.get("initContainers") or []}
    n_init = len(init_specs)
    for i, cs in enumerate(status.get("initContainerStatuses") or []):
        restarts += int(cs.get("restartCount", 0))
        note_restart(cs)
        state = cs.get("state") or {}
        term, wait = state.get("terminated"), state.get("waiting")
        sidecar = (init_specs.get(cs.get("name")) or {}).get("restartPolicy") == "Always"
        if term and term.get("exitCode", 0) == 0:
            continue
        if sidecar and cs.get("started"):
            ready += 1 if cs.get("ready") else 0
            continue
        if term:
            if term.get("reason"):
                reason = "Init:" + term["reason"]
            elif term.get("signal"):
                reason = f"Init:Signal:{term['signal']}"
            else:
                reason = f"Init:ExitCode:{term.get('exitCode', 0)}"
        elif wait and wait.get("reason") and wait.get("reason") != "PodInitializing":
            reason = "Init:" + wait["reason"]
        else:
            reason = f"Init:{i}/{n_init}"
        initializing = True
        break
    initialized = any(
        c.get("type") == "Initialized" and c.get("status") == "True"
        for c in status.get("conditions") or []
    )
    if not initializing or initialized:
        restarts = 0
        has_running = False
        for cs in reversed(status.get("containerStatuses") or []):
            restarts += int(cs.get("restartCount", 0))
            note_restart(cs)
            state = cs.get("state") or {}
            term, wait = state.get("terminated"), state.get("waiting")
            if wait and wait.get("reason"):
                reason = wait["reason"]
            elif term and term.get("reason"):
                reason = term["reason"]
            elif term:
                if term.get("signal"):
                    reason = f"Signal:{term['signal']}"
                else:
                    reason = f"ExitCode:{term.get('exitCode', 0)}"
            elif cs.get("ready") and state.get("running") is not None:
                has_running = True
                ready += 1
        if reason == "Completed" and has_running:
            has_ready = any(
                c.get("type") == "Ready" and c.get("status") == "True"
                for c in status.get("conditions") or []
            )
            reason = "Running" if has_ready else "NotReady"
    if (pod.get("metadata") or {}).get("deletionTimestamp"):
        if status.get("reason") == "NodeLost":
            reason = "Unknown"
        elif status.get("phase") not in ("Succeeded", "Failed"):
            reason = "Terminating"
    return reason, ready, restarts, last_restart


def _pod_row(pod: dict, now: float) -> list[Any]:
    reason, ready, restarts, last = pod_status_reason(pod)
    total = len((pod.get("spec") or {}).get("containers") or [])
    restarts_text = str(restarts)
    if restarts and last:
        restarts_text = f"{restarts} ({_since(last, now)} ago)"
    status = pod.get("status") or {}
    ips = status.get("podIPs") or []
    ip = (ips[0].get("ip") if ips else status.get("podIP")) or "<none>"
    gates = (pod.get("spec") or {}).get("readinessGates") or []
    gates_text = "<none>"
    if gates:
        true = {c.get("type") for c in status.get("conditions") or [] if c.get("status") == "True"}
        gates_text = f"{sum(1 for g in gates if g.get('conditionType') in true)}/{len(gates)}"
    return [
        _name(pod),
        f"{ready}/{total}",
        reason,
        restarts_text,
        age(pod, now),
        ip,
        (pod.get("spec") or {}).get("nodeName") or "<none>",
        status.get("nominatedNodeName") or "<none>",
        gates_text,
    ]


# ------------------------------------------------------------------ nodes


NODE_COLUMNS = [
    _col("Name"),
    _col("Status", "The status of the node"),
    _col("Roles", "The roles of the node"),
    _col("Age"),
    _col("Version", "Kubelet Version reported by the node."),
    _col("Internal-IP", "List of addresses reachable to the node.", 1),
    _col("External-IP", "List of addresses reachable to the node.", 1),
    _col("OS-Image", "OS Image reported by the node from /etc/os-release.", 1),
    _col("Kernel-Version", "Kernel Version reported by the node.", 1),
    _col("Container-Runtime", "ContainerRuntime Version reported by the node.", 1),
]


def node_roles(node: dict) -> list[str]:
    roles = set()
    for key, value in ((node.get("metadata") or {}).get("labels") or {}).items():
        if key.startswith("node-role.kubernetes.io/"):
            roles.add(key.split("/", 1)[1])
        elif key == "kubernetes.io/role" and value:
            roles.add(value)
    return sorted(r for r in roles if r)


def _node_row(node: dict, now: float) -> list[Any]:
    status = node.get("status") or {}
    ready = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), None)
    states = []
    if ready is not None:
        states.append("Ready" if ready.get("status") == "True" else "NotReady")
    else:
        states.append("Unknown")
    if (node.get("spec") or {}).get("unschedulable"):
        states.append("SchedulingDisabled")
    addrs = status.get("addresses") or []

    def addr(kind: str) -> str:
        return next((a["address"] for a in addrs if a.get("type") == kind), "<none>")

    info = status.get("nodeInfo") or {}
    return [
        _name(node),
        ",".join(states),
        ",".join(node_roles(node)) or "<none>",
        age(node, now),
        info.get("kubeletVersion", ""),
        addr("InternalIP"),
        addr("ExternalIP"),
        info.get("osImage") or "<unknown>",
        info.get("kernelVersion") or "<unknown>",
        info.get("containerRuntimeVersion") or "<unknown>",
    ]


# ------------------------------------------------------------------ the others


def selector_text(sel: dict | None) -> str:
    if not sel:
        return "<none>"
    parts = [f"{k}={v}" for k, v in sorted((sel.get("matchLabels") or {}).items())]
    for expr in sel.get("matchExpressions") or []:
        op = expr.get("operator", "")
        if op in ("In", "NotIn"):
            parts.append(f"{expr.get('key')} {op.lower()} ({','.join(expr.get('values') or [])})")
        elif op == "Exists":
            parts.append(expr.get("key", ""))
        elif op == "DoesNotExist":
            parts.append("!" + expr.get("key", ""))
    return ",".join(parts) or "<none>"


def _containers(obj: dict) -> tuple[str, str]:
    spec = ((obj.get("spec") or {}).get("template") or {}).get("spec") or {}
    cs = spec.get("containers") or []
    return ",".join(c.get("name", "") for c in cs), ",".join(c.get("image", "") for c in cs)


def _deployment_row(d: dict, now: float) -> list[Any]:
    spec, st = d.get("spec") or {}, d.get("status") or {}
    names, images = _containers(d)
    return [
        _name(d),
        f"{st.get('readyReplicas', 0)}/{spec.get('replicas', 1)}",
        st.get("updatedReplicas", 0),
        st.get("availableReplicas", 0),
        age(d, now),
        names,
        images,
        selector_text(spec.get("selector")),
    ]


def _replicaset_row(rs: dict, now: float) -> list[Any]:
    spec, st = rs.get("spec") or {}, rs.get("status") or {}
    names, images = _containers(rs)
    return [
        _name(rs),
        spec.get("replicas", 1),
        st.get("replicas", 0),
        st.get("readyReplicas", 0),
        age(rs, now),
        names,
        images,
        selector_text(spec.get("selector")),
    ]


def _daemonset_row(ds: dict, now: float) -> list[Any]:
    st = ds.get("status") or {}
    names, images = _containers(ds)
    node_sel = (((ds.get("spec") or {}).get("template") or {}).get("spec") or {}).get(
        "nodeSelector"
    ) or {}
    return [
        _name(ds),
        st.get("desiredNumberScheduled", 0),
        st.get("currentNumberScheduled", 0),
        st.get("numberReady", 0),
        st.get("updatedNumberScheduled", 0),
        st.get("numberAvailable", 0),
        ",".join(f"{k}={v}" for k, v in sorted(node_sel.items())) or "<none>",
        age(ds, now),
        names,
        images,
        selector_text((ds.get("spec") or {}).get("selector")),
    ]


def _service_row(svc: dict, now: float) -> list[Any]:
    spec = svc.get("spec") or {}
    ports = []
    for p in spec.get("ports") or []:
        text = f"{p.get('port')}"
        if p.get("nodePort"):
            text += f":{p['nodePort']}"
        ports.append(f"{text}/{p.get('protocol', 'TCP')}")
    ingress = ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
    external = ",".join(i.get("ip") or i.get("hostname", "") for i in ingress) or (
        ",".join(spec.get("externalIPs") or [])
    )
    if not external:
        external = "<pending>" if spec.get("type") == "LoadBalancer" else "<none>"
    selector = spec.get("selector") or {}
    return [
        _name(svc),
        spec.get("type", "ClusterIP"),
        spec.get("clusterIP") or "<none>",
        external,
        ",".join(ports) or "<none>",
        age(svc, now),
        ",".join(f"{k}={v}" for k, v in sorted(selector.items())) or "<none>",
    ]


def _event_row(ev: dict, now: float) -> list[Any]:
    obj = ev.get("involvedObject") or ev.get("regarding") or {}
    last = (
        ev.get("lastTimestamp")
        or (ev.get("series") or {}).get("lastObservedTime")
        or ev.get("eventTime")
        or (ev.get("metadata") or {}).get("creationTimestamp")
    )
    first = ev.get("firstTimestamp") or ev.get("eventTime") or last
    source = ev.get("source") or {}
    source_text = (
        source.get("component") or ev.get("reportingComponent") or ev.get("reportingController", "")
    )
    if source.get("host"):
        source_text += f", {source['host']}"
    count = ev.get("count") or ((ev.get("series") or {}).get("count")) or 1
    return [
        _since(last, now) if isinstance(last, str) else "<unknown>",
        ev.get("type", ""),
        ev.get("reason", ""),
        f"{str(obj.get('kind', '')).lower()}/{obj.get('name', '')}",
        obj.get("fieldPath", ""),
        source_text,
        ev.get("message") or ev.get("note", ""),
        _since(first, now) if isinstance(first, str) else "<unknown>",
        count,
        _name(ev),
    ]


def _binding_row(b: dict, now: float) -> list[Any]:
    ref = b.get("roleRef") or {}
    subjects = b.get("subjects") or []

    def names(kind: str) -> str:
        return ",".join(
            (f"{s.get('namespace')}/" if kind == "ServiceAccount" else "") + s.get("name", "")
            for s in subjects
            if s.get("kind") == kind
        )

    return [
        _name(b),
        f"{ref.get('kind', '')}/{ref.get('name', '')}",
        age(b, now),
        names("User"),
        names("Group"),
        names("ServiceAccount"),
    ]


TABLES: dict[tuple[str, str], tuple[list[Column], Printer]] = {
    ("v1", "Pod"): (POD_COLUMNS, _pod_row),
    ("v1", "Node"): (NODE_COLUMNS, _node_row),
    ("v1", "Namespace"): (
        [_col("Name"), _col("Status", "The status of the namespace"), _col("Age")],
        lambda o, now: [_name(o), (o.get("status") or {}).get("phase", ""), age(o, now)],
    ),
    ("apps/v1", "Deployment"): (
        [
            _col("Name"),
            _col("Ready", "Number of the pod with ready state"),
            _col(
                "Up-to-date",
                "Total number of non-terminated pods targeted by this deployment that have the "
                "desired template spec.",
                typ="integer",
            ),
            _col(
                "Available",
                "Total number of available pods (ready for at least minReadySeconds) targeted by "
                "this deployment.",
                typ="integer",
            ),
            _col("Age"),
            _col("Containers", "Names of each container in the template.", 1),
            _col("Images", "Images referenced by each container in the template.", 1),
            _col("Selector", "Label selector for pods.", 1),
        ],
        _deployment_row,
    ),
    ("apps/v1", "ReplicaSet"): (
        [
            _col("Name"),
            _col("Desired", "Number of desired pods.", typ="integer"),
            _col("Current", "Number of actual pods.", typ="integer"),
            _col("Ready", "Number of pods ready.", typ="integer"),
            _col("Age"),
            _col("Containers", "Names of each container in the template.", 1),
            _col("Images", "Images referenced by each container in the template.", 1),
            _col("Selector", "Label selector for pods.", 1),
        ],
        _replicaset_row,
    ),
    ("apps/v1", "DaemonSet"): (
        [
            _col("Name"),
            _col(
                "Desired",
                "The total number of nodes that should be running the daemon pod.",
                typ="integer",
            ),
            _col("Current", "The number of nodes running at least one daemon pod.", typ="integer"),
            _col(
                "Ready",
                "The number of nodes that should be running the daemon pod and have one or more "
                "running and ready.",
                typ="integer",
            ),
            _col(
                "Up-to-date",
                "The total number of nodes that are running updated daemon pod.",
                typ="integer",
            ),
            _col(
                "Available",
                "The number of nodes running the daemon pod and available.",
                typ="integer",
            ),
            _col("Node Selector", "Node selector of the pod template."),
            _col("Age"),
            _col("Containers", "Names of each container in the template.", 1),
            _col("Images", "Images referenced by each container in the template.", 1),
            _col("Selector", "Label selector for pods.", 1),
        ],
        _daemonset_row,
    ),
    ("v1", "Service"): (
        [
            _col("Name"),
            _col("Type", "The type of service."),
            _col("Cluster-IP", "The IP address of the service."),
            _col("External-IP", "The external IP addresses of the service."),
            _col("Port(s)", "The ports of the service."),
            _col("Age"),
            _col("Selector", "The label selector of the service.", 1),
        ],
        _service_row,
    ),
    ("v1", "Event"): (
        [
            _col("Last Seen", "Time when last event occurred."),
            _col("Type", "Type of this event."),
            _col("Reason", "Reason why this event was generated."),
            _col("Object", "The object this event is about."),
            _col("Subobject", "The subobject this event is about.", 1),
            _col("Source", "The source of this event.", 1),
            _col("Message", "A human-readable description of the status of this operation."),
            _col("First Seen", "Time when first event occurred.", 1),
            _col("Count", "Number of times this event has occurred.", 1, "integer"),
            _col("Name", "Name of this event.", 1),
        ],
        _event_row,
    ),
    ("v1", "ConfigMap"): (
        [
            _col("Name"),
            _col("Data", "Number of keys in the ConfigMap.", typ="integer"),
            _col("Age"),
        ],
        lambda o, now: [
            _name(o),
            len(o.get("data") or {}) + len(o.get("binaryData") or {}),
            age(o, now),
        ],
    ),
    ("v1", "Secret"): (
        [
            _col("Name"),
            _col("Type", "The type of the secret"),
            _col("Data", "The number of keys in the secret.", typ="integer"),
            _col("Age"),
        ],
        lambda o, now: [
            _name(o),
            o.get("type", "Opaque"),
            len(o.get("data") or {}) + len(o.get("stringData") or {}),
            age(o, now),
        ],
    ),
    ("v1", "ServiceAccount"): (
        [_col("Name"), _col("Secrets", "The number of secrets.", typ="string"), _col("Age")],
        lambda o, now: [_name(o), str(len(o.get("secrets") or [])), age(o, now)],
    ),
    ("networking.k8s.io/v1", "NetworkPolicy"): (
        [
            _col("Name"),
            _col("Pod-Selector", "The selector of pods this policy applies to."),
            _col("Age"),
        ],
        lambda o, now: [
            _name(o),
            selector_text((o.get("spec") or {}).get("podSelector")).replace("<none>", "<none>"),
            age(o, now),
        ],
    ),
}
_BINDING_COLUMNS = [
    _col("Name"),
    _col("Role", "The role referenced by this binding."),
    _col("Age"),
    _col("Users", "Users in the binding.", 1),
    _col("Groups", "Groups in the binding.", 1),
    _col("ServiceAccounts", "ServiceAccounts in the binding.", 1),
]
TABLES[("rbac.authorization.k8s.io/v1", "RoleBinding")] = (_BINDING_COLUMNS, _binding_row)
TABLES[("rbac.authorization.k8s.io/v1", "ClusterRoleBinding")] = (_BINDING_COLUMNS, _binding_row)
TABLES[("events.k8s.io/v1", "Event")] = TABLES[("v1", "Event")]
tables_more.register(TABLES, _col, age)

GENERIC_COLUMNS = [_col("Name"), _col("Age")]


def _generic_row(obj: dict, now: float) -> list[Any]:
    return [_name(obj), age(obj, now)]


def columns_for(api_version: str, kind: str) -> list[Column]:
    return TABLES.get((api_version, kind), (GENERIC_COLUMNS, _generic_row))[0]


def partial_metadata(obj: dict) -> dict:
    return {
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": obj.get("metadata") or {},
    }


def row(api_version: str, kind: str, obj: dict, now: float, include: str = "Metadata") -> dict:
    printer = TABLES.get((api_version, kind), (GENERIC_COLUMNS, _generic_row))[1]
    out: dict[str, Any] = {"cells": printer(obj, now)}
    if include == "Object":
        out["object"] = dict(obj, apiVersion=api_version, kind=kind)
    elif include != "None":
        out["object"] = partial_metadata(obj)
    return out


def table(
    api_version: str,
    kind: str,
    objs: list[dict],
    now: float,
    *,
    resource_version: str | None = None,
    include: str = "Metadata",
    with_columns: bool = True,
    list_meta: dict | None = None,
) -> dict:
    """A Table of `objs`; `list_meta` carries continue/remainingItemCount for lists."""
    meta: dict[str, Any] = dict(list_meta or {})
    if resource_version is not None:
        meta["resourceVersion"] = resource_version
    out: dict[str, Any] = {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": meta}
    out["columnDefinitions"] = columns_for(api_version, kind) if with_columns else None
    out["rows"] = [row(api_version, kind, o, now, include) for o in objs]
    return out
