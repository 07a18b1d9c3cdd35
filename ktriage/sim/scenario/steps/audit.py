"""The `audit` step, and the audit events of the control plane's own requests."""

from __future__ import annotations

import copy
import uuid
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from ktriage.sim.audit import object_ref as build_object_ref
from ktriage.sim.scenario.context import StepFailed
from ktriage.sim.scenario.templates import RESOURCE_KINDS, parse_seconds
from ktriage.sim.version import (
    CONTROL_PLANE_IP,
    KUBE_CONTROLLER_AGENT,
    KUBECTL_AGENT,
    KUBELET_AGENT,
    SCHEDULER_AGENT,
)

if TYPE_CHECKING:
    from ktriage.sim.scenario.player import ScenarioPlayer


def audit(player: ScenarioPlayer, body: dict[str, Any], t: float) -> None:
    variants = body.get("each") or [{}]
    spacing = parse_seconds(body.get("spacing", 0.15))
    base = {k: v for k, v in body.items() if k not in ("each", "spacing")}
    for i, override in enumerate(variants):
        audit_one(player, {**base, **override}, t + i * spacing)


def audit_one(player: ScenarioPlayer, spec: dict[str, Any], t: float) -> dict[str, Any]:
    user = str(spec["user"])
    verb = spec["verb"]
    code = int(spec.get("code", 201 if verb == "create" else 200))
    created: dict[str, Any] | None = None
    request_object = spec.get("request_object")
    response_object = spec.get("response_object")
    resource = spec.get("resource")
    namespace = spec.get("namespace")
    name = spec.get("name")
    if spec.get("creates"):
        objs = player.factory.expand(spec["creates"], now=t)
        created = objs[0]
        meta = created["metadata"]
        resource = resource or _resource_of(created["kind"])
        namespace = namespace or meta.get("namespace")
        name = name or meta["name"]
        if request_object is None:
            ((_, written),) = spec["creates"].items()
            request_object = _request_form(created, written)
        if code < 300:
            for obj in objs:
                stored = player.apply(obj)
                if obj is created:
                    created = stored or obj
            for ns, pod, container, line, when in player.factory.initial_logs:
                player.store.append_log(ns, pod, container, line, time=when)
            player.factory.initial_logs.clear()
            if response_object is None:
                response_object = created
        else:
            player.factory.initial_logs.clear()
    group, version = spec.get("api_group"), spec.get("api_version")
    if resource in RESOURCE_KINDS:
        g, v, _, namespaced = RESOURCE_KINDS[resource]
        group = g if group is None else group
        version = version or v
        if not namespaced:
            namespace = None
    group = group or ""
    version = version or "v1"
    subresource = spec.get("subresource")
    exec_spec = spec.get("exec")
    if exec_spec is not None:
        subresource = "exec"
        resource = resource or "pods"
        verb = spec.get("verb", "create")
    object_ref = None
    if resource:
        object_ref = build_object_ref(resource, namespace, name, group, version, subresource)
    uri = spec.get("uri") or _request_uri(
        verb,
        group,
        version,
        resource or "",
        namespace,
        name,
        subresource,
        spec.get("query"),
        exec_spec,
    )
    stage = spec.get("stage") or ("ResponseStarted" if code == 101 else "ResponseComplete")
    level = spec.get("level") or (
        "RequestResponse" if request_object is not None or resource in _RBAC else "Metadata"
    )
    if level == "Metadata":
        request_object = response_object = None
    elif level == "Request":
        response_object = None
    if code >= 400:
        response_object = None
    groups = spec.get("groups")
    if groups is None:
        groups = _default_groups(user)
    ips = spec.get("source_ips") or [CONTROL_PLANE_IP]
    if isinstance(ips, str):
        ips = [ips]
    kwargs: dict[str, Any] = {
        "user": user,
        "groups": list(groups),
        "verb": verb,
        "uri": uri,
        "object_ref": object_ref,
        "code": code,
        "source_ips": [str(ip) for ip in ips],
        "user_agent": spec.get("user_agent") or _default_agent(user),
        "level": level,
        "request_object": request_object,
        "response_object": response_object,
        "annotations": spec.get("annotations"),
        "time": t,
        "stage": stage,
    }
    if code >= 400:
        kwargs["response_status"] = _failure_status(
            code, user, verb, resource or "", subresource, group, namespace, name
        )
    if user.startswith("system:serviceaccount:") and user.count(":") == 3:
        _, _, sa_ns, sa_name = user.split(":")
        sa = player.store.get_obj("v1", "ServiceAccount", sa_ns, sa_name)
        if sa is not None:
            kwargs["user_uid"] = sa["metadata"].get("uid")
    if spec.get("bound_pod"):
        kwargs["user_extra"] = _bound_token_claims(player, str(spec["bound_pod"]))
    if spec.get("impersonate"):
        kwargs["impersonated_user"] = {
            "username": spec["impersonate"],
            "groups": ["system:authenticated"],
        }
    return player.audit.emit(**{k: v for k, v in kwargs.items() if k in player.emit_params})


def _bound_token_claims(player: ScenarioPlayer, pod_ref: str) -> dict[str, list[str]]:
    """The `user.extra` of a request made with a pod's bound service-account
    token: kube-apiserver records the pod and node the token was issued for,
    which is what ties a stolen token back to the pod it was taken from."""
    ns, name = player.resolve_pod(pod_ref)
    pod = player.store.get_obj("v1", "Pod", ns, name)
    if pod is None:
        raise StepFailed(f"bound_pod {pod_ref}: pod {ns}/{name} does not exist")
    node = pod.get("spec", {}).get("nodeName", "")
    node_obj = player.store.get_obj("v1", "Node", None, node) if node else None
    pod_uid = pod["metadata"].get("uid", "")
    claims = {
        "authentication.kubernetes.io/credential-id": [
            f"JTI={uuid.uuid5(uuid.NAMESPACE_URL, pod_uid)}"
        ],
        "authentication.kubernetes.io/pod-name": [name],
        "authentication.kubernetes.io/pod-uid": [pod_uid],
    }
    if node:
        claims["authentication.kubernetes.io/node-name"] = [node]
        if node_obj is not None:
            claims["authentication.kubernetes.io/node-uid"] = [node_obj["metadata"].get("uid", "")]
    return claims


def system_audit(
    player: ScenarioPlayer,
    t: float,
    user: str,
    verb: str,
    resource: str,
    namespace: str | None,
    name: str | None = None,
    subresource: str | None = None,
    code: int | None = None,
    source_ip: str = CONTROL_PLANE_IP,
) -> None:
    """A request the control plane makes (controllers, scheduler, kubelets)."""
    spec: dict[str, Any] = {
        "user": user,
        "verb": verb,
        "resource": resource,
        "namespace": namespace,
        "source_ips": [source_ip],
        "level": "Metadata",
    }
    if name:
        spec["name"] = name
    if subresource:
        spec["subresource"] = subresource
    if code is not None:
        spec["code"] = code
    audit_one(player, spec, t)


_RBAC = {"roles", "rolebindings", "clusterroles", "clusterrolebindings"}


def _failure_status(
    code: int,
    user: str,
    verb: str,
    resource: str,
    subresource: str | None,
    group: str,
    namespace: str | None,
    name: str | None,
) -> dict[str, Any]:
    """The metav1.Status kube-apiserver answers a failed request with."""
    what = f"{resource}.{group}" if group else resource
    named = f'{what} "{name}"' if name else what
    details: dict[str, Any] = {"kind": resource}
    if name:
        details = {"name": name, **({"group": group} if group else {}), "kind": resource}
    if code == 403:
        res = f"{resource}/{subresource}" if subresource else resource
        scope = f'in the namespace "{namespace}"' if namespace else "at the cluster scope"
        reason = "Forbidden"
        message = (
            f'{named} is forbidden: User "{user}" cannot {verb} resource "{res}" '
            f'in API group "{group}" {scope}'
        )
    elif code == 404:
        reason, message = "NotFound", f"{named} not found"
    elif code == 409:
        reason, message = "AlreadyExists", f"{named} already exists"
    elif code == 401:
        return {"status": "Failure", "message": "Unauthorized", "reason": "Unauthorized"}
    else:
        return {"status": "Failure", "message": f"request failed with code {code}"}
    return {"status": "Failure", "message": message, "reason": reason, "details": details}


def _resource_of(kind: str) -> str:
    for resource, (_, _, k, _) in RESOURCE_KINDS.items():
        if k == kind:
            return resource
    return kind.lower() + "s"


def _request_form(obj: dict[str, Any], written: dict[str, Any]) -> dict[str, Any]:
    """What a client sends to create `obj` from the template `written`: no status, no
    server-set metadata, no defaults the client did not write."""
    req = {k: copy.deepcopy(v) for k, v in obj.items() if k not in ("status",)}
    meta = req.get("metadata") or {}
    for key in ("uid", "resourceVersion", "creationTimestamp", "generation", "managedFields"):
        meta.pop(key, None)
    spec = req.get("spec")
    if isinstance(spec, dict) and obj.get("kind") == "Pod":
        # The client sends the pod as written; the server adds defaults and the token volume.
        if not written.get("node"):
            spec.pop("nodeName", None)
        for c in spec.get("containers", []):
            c["volumeMounts"] = [
                m for m in c.get("volumeMounts", []) if not m["name"].startswith("kube-api-access")
            ]
            if not c["volumeMounts"]:
                c.pop("volumeMounts")
            for key in ("terminationMessagePath", "terminationMessagePolicy", "imagePullPolicy"):
                c.pop(key, None)
            if not c.get("resources"):
                c.pop("resources", None)
        spec["volumes"] = [
            v for v in spec.get("volumes", []) if not v["name"].startswith("kube-api-access")
        ]
        if not spec["volumes"]:
            spec.pop("volumes")
        for key in (
            "dnsPolicy",
            "enableServiceLinks",
            "preemptionPolicy",
            "priority",
            "schedulerName",
            "serviceAccount",
            "terminationGracePeriodSeconds",
        ):
            spec.pop(key, None)
        if not written.get("tolerations"):
            spec.pop("tolerations", None)
        if not spec.get("securityContext"):
            spec.pop("securityContext", None)
        if spec.get("serviceAccountName") == "default":
            spec.pop("serviceAccountName")
    return req


def _request_uri(
    verb: str,
    group: str,
    version: str,
    resource: str,
    namespace: str | None,
    name: str | None,
    subresource: str | None,
    query: Any,
    exec_spec: dict[str, Any] | None,
) -> str:
    """The requestURI kube-apiserver logs for this request (kubectl's query params)."""
    prefix = f"/apis/{group}/{version}" if group else f"/api/{version}"
    path = prefix
    if namespace:
        path += f"/namespaces/{namespace}"
    path += f"/{resource}"
    collection = verb in ("list", "watch", "create", "deletecollection") and not subresource
    if name and not collection:
        path += f"/{name}"
    elif name and verb == "watch":
        query = {"fieldSelector": f"metadata.name={name}", **(query or {})}
    if subresource:
        if name and collection:
            path += f"/{name}"
        path += f"/{subresource}"
    params: list[tuple[str, str]] = []
    if exec_spec is not None:
        for arg in exec_spec["command"]:
            params.append(("command", str(arg)))
        if exec_spec.get("container"):
            params.append(("container", str(exec_spec["container"])))
        tty = bool(exec_spec.get("tty", True))
        if not tty:
            params.append(("stderr", "true"))
        if exec_spec.get("stdin", True):
            params.append(("stdin", "true"))
        params.append(("stdout", "true"))
        if tty:
            params.append(("tty", "true"))
    elif query is not None:
        items = query.items() if isinstance(query, dict) else query
        for key, value in items:
            values = value if isinstance(value, list) else [value]
            params += [(str(key), _qv(v)) for v in values]
    elif verb == "list":
        params.append(("limit", "500"))
    elif verb == "watch":
        params += [("allowWatchBookmarks", "true"), ("watch", "true")]
    elif verb == "create" and not subresource:
        params += [("fieldManager", "kubectl-create"), ("fieldValidation", "Strict")]
    if verb == "watch" and query is not None and "watch" not in dict(params):
        params.append(("watch", "true"))
    return path + ("?" + urlencode(params) if params else "")


def _qv(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def _default_groups(user: str) -> list[str]:
    if user.startswith("system:serviceaccount:"):
        ns = user.split(":")[2]
        return ["system:serviceaccounts", f"system:serviceaccounts:{ns}", "system:authenticated"]
    if user.startswith("system:node:"):
        return ["system:nodes", "system:authenticated"]
    if user.startswith("system:kube-") or user == "system:apiserver":
        return ["system:authenticated"]
    if user == "system:anonymous":
        return ["system:unauthenticated"]
    return ["system:authenticated"]


def _default_agent(user: str) -> str:
    if user.startswith("system:serviceaccount:kube-system:"):
        return f"{KUBE_CONTROLLER_AGENT}/{user}"
    if user == "system:kube-controller-manager":
        return f"{KUBE_CONTROLLER_AGENT}/leader-election"
    if user.startswith("system:node:"):
        return KUBELET_AGENT
    if user == "system:kube-scheduler":
        return SCHEDULER_AGENT
    return KUBECTL_AGENT
