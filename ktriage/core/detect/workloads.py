"""Detections on pods and workloads: exec, attach and port-forward (with the exec
command judged), pods that reach into the host, static pods, DaemonSets in
kube-system, containers added to existing workloads. A part of AuditDetector (which
provides `_exempt`, `_deleted` and `_tool_deleted`)."""

from __future__ import annotations

from ktriage.core.detect.common import (
    DELETE_VERBS,
    WORKLOADS,
    WRITE_VERBS,
    denied,
    object_name,
    past,
    signal,
)
from ktriage.core.detect.exec_command import command_text, exec_command, judge_command
from ktriage.core.detect.identity import node_of
from ktriage.core.detect.podspec import pod_spec_risks, template_spec
from ktriage.core.model import EntityKind, Event, Severity, entity
from ktriage.core.parse import plain
from ktriage.core.parse.audit import AuditRecord, decode_object

MAX_COMMAND_SHOWN = 160
_MAX_WORKLOADS = 100_000
_BULK_WORKLOADS = frozenset({"deployments", "statefulsets", "daemonsets"})
MIRROR_ANNOTATION = "kubernetes.io/config.mirror"
SECURITY_TOOLS = (
    "falco",
    "tetragon",
    "sysdig",
    "aqua",
    "twistlock",
    "prisma",
    "crowdstrike",
    "falcon-sensor",
    "tracee",
    "kubearmor",
    "neuvector",
    "stackrox",
    "lacework",
    "wiz-",
    "qualys",
    "trivy",
    "kyverno",
    "gatekeeper",
    "datadog",
)


def flag_unread_pod_spec(rec: AuditRecord, ev: Event) -> None:
    """A pod or workload written with a record too large to read to its end: what was
    not read may hold anything, and a spec that large is suspicious in itself. At least
    a medium signal (a stronger one the detections made stays)."""
    oref = rec.objectRef
    verb = rec.verb or ""
    if oref is None or oref.subresource or verb not in WRITE_VERBS or denied(rec):
        return
    resource = oref.resource or ""
    if resource != "pods" and resource not in WORKLOADS:
        return
    if ev.signal and ev.severity >= Severity.MEDIUM:
        return
    kind_name = resource[:-1] if resource.endswith("s") else resource
    where = f"{kind_name} {oref.namespace}/{oref.name}" if oref.namespace else kind_name
    if oref.name is None:
        where = f"a {kind_name} in {oref.namespace}" if oref.namespace else f"a {kind_name}"
    signal(
        ev,
        "pod-spec-unread",
        Severity.MEDIUM,
        "Pod spec too large to read fully",
        f"{rec.username} {past(verb)} {where}: the pod spec is too large to read fully",
        "T1610",
    )


_LABELS = {
    "privileged-pod": "Privileged pod",
    "hostpath-pod": "HostPath pod",
    "host-namespace-pod": "Host-namespace pod",
}


class WorkloadDetections:
    _containers: dict[tuple[str, str, str], frozenset[str]]

    def _exempt(self, rec: AuditRecord) -> bool:
        raise NotImplementedError

    def _deleted(self, rec: AuditRecord, ev: Event, group: str) -> None:
        raise NotImplementedError

    def _tool_deleted(self, rec: AuditRecord, ev: Event, what: str) -> None:
        raise NotImplementedError

    def _pods(self, rec: AuditRecord, ev: Event) -> None:
        oref = rec.objectRef
        assert oref is not None
        sub = oref.subresource
        verb = rec.verb or ""
        actor = rec.username
        if sub in ("exec", "attach", "portforward") and verb in ("create", "get"):
            pod = f"{oref.namespace}/{oref.name}"
            sev = Severity.MEDIUM
            if sub == "exec":
                args, cut = exec_command(rec.requestURI or "")
                cmd = command_text(args)
                if len(cmd) > MAX_COMMAND_SHOWN:
                    # The summary has room for the findings after it.
                    cmd = cmd[: MAX_COMMAND_SHOWN - 1] + "…"
                kind, label, technique = "exec", "Exec into pod", "T1609"
                text = f"{actor} exec into {pod}" + (f": {cmd}" if cmd else "")
                if cut:
                    text += f" (command cut: {len(args)} arguments read)"
                findings = judge_command(args)
                if findings:
                    worst = findings[0]
                    sev, label, technique = worst.severity, worst.label, worst.technique
                    text += " (" + "; ".join(f"{f.label}: {f.matched}" for f in findings) + ")"
            elif sub == "attach":
                kind, label, technique = "attach", "Attach to pod", "T1609"
                text = f"{actor} attached to {pod}"
            else:
                kind, label, technique = "port-forward", "Port-forward to pod", "T1572"
                text = f"{actor} port-forward to {pod}"
            signal(ev, kind, sev, label, text, technique, request=rec)
            return
        if sub == "ephemeralcontainers" and verb in ("update", "patch"):
            text = f"{actor} added an ephemeral container to {oref.namespace}/{oref.name}"
            signal(
                ev,
                "ephemeral-container",
                Severity.MEDIUM,
                "Ephemeral container",
                text,
                "T1609",
                request=rec,
            )
            return
        if not sub and verb == "create":
            self._pod_create(rec, ev)

    def _pod_create(self, rec: AuditRecord, ev: Event) -> None:
        """A pod created with a risky spec (or in kube-system by a person, or as a
        node's static pod)."""
        oref = rec.objectRef
        assert oref is not None
        obj = decode_object(rec.requestObject)
        name = oref.name or _created_name(obj)
        if not name and rec.responseObject:
            # Made from a generateName (a controller's pods): the name the server gave
            # it is in the response, where the audit policy records it.
            name = _created_name(decode_object(rec.responseObject))
        ns = oref.namespace or ""
        if name and (created := entity(EntityKind.POD, ns, name)) not in ev.entities:
            # The request may already name a pod: the one whose bound token made it.
            # The created pod goes before it, as the first Pod of a request is its target.
            ents = list(ev.entities)
            at = next((i for i, e in enumerate(ents) if e.kind == EntityKind.POD), len(ents))
            ents.insert(at, created)
            ev.entities = tuple(ents)
        ev.kind = "pod-create"
        ev.label = "Pod created"
        risks = pod_spec_risks(template_spec("pods", obj))
        actor = rec.username
        where = f"{ns}/{name}" if name else f"a pod in {ns}"
        if _is_mirror(obj):
            self._static_pod(rec, ev, where, risks)
            return
        if risks is None:
            if ns == "kube-system" and not self._exempt(rec) and not denied(rec):
                signal(
                    ev,
                    "pod-create",
                    Severity.LOW,
                    "Pod in kube-system",
                    f"{actor} created {where}",
                    "T1610",
                )
            return
        kind, sev, flags = risks
        text = f"{actor} created {where}: {', '.join(flags)}"
        if denied(rec):
            signal(ev, kind, Severity.LOW, _LABELS[kind], f"{text} (denied {rec.code})", "T1611")
        elif self._exempt(rec):
            # A controller made it from a template; the template's author is the
            # signal where the audit log has it. Outside kube-system it is still news.
            if ns == "kube-system":
                ev.kind = kind
                ev.summary = plain(text)
                return
            signal(ev, kind, Severity.LOW, _LABELS[kind], text, "T1611")
        else:
            signal(ev, kind, sev, _LABELS[kind], text, "T1611")

    def _static_pod(
        self,
        rec: AuditRecord,
        ev: Event,
        where: str,
        risks: tuple[str, Severity, list[str]] | None,
    ) -> None:
        """A mirror pod: the API's copy of a static pod a kubelet runs from a manifest
        on its host. Only a node makes one; a privileged one, or one outside
        kube-system (where the control plane's own run), means a file was written
        into the node's manifest directory."""
        actor = rec.username
        node = node_of(actor)
        ns = (rec.objectRef.namespace if rec.objectRef else "") or ""
        flags = f": {', '.join(risks[2])}" if risks else ""
        ev.kind = "static-pod"
        if not node:
            sev = Severity.HIGH
            text = f"{actor} created {where} marked as a node's static (mirror) pod{flags}"
            label = "Forged mirror pod"
        else:
            risky = risks is not None and risks[1] >= Severity.HIGH
            if ns == "kube-system" and not risky:
                return  # the control plane's own static pods
            # Some distributions run kube-proxy as a privileged static pod in
            # kube-system: medium there; elsewhere a static pod is news.
            sev = Severity.MEDIUM
            if risky and risks is not None and ns != "kube-system":
                sev = risks[1]
            text = f"node {node} started static pod {where}{flags}"
            label = "Privileged static pod" if risky else "Static pod"
        signal(ev, "static-pod", sev, label, text, "T1543.005", request=rec)

    def _workload(self, rec: AuditRecord, ev: Event) -> None:
        verb = rec.verb or ""
        oref = rec.objectRef
        assert oref is not None
        if oref.subresource:
            return
        resource = oref.resource or ""
        if verb in DELETE_VERBS:
            name = (oref.name or "").lower()
            if name and any(tool in name for tool in SECURITY_TOOLS):
                what = f"{resource[:-1]} {oref.namespace}/{oref.name}"
                self._tool_deleted(rec, ev, what)
            elif resource in _BULK_WORKLOADS:
                self._deleted(rec, ev, "workloads")
            return
        if verb not in WRITE_VERBS:
            return
        actor = rec.username
        exempt = self._exempt(rec)
        if exempt:
            return
        obj = decode_object(rec.requestObject)
        spec = template_spec(resource, obj)
        ns = oref.namespace or ""
        name = object_name(oref.name, obj)
        added = self._added_containers(rec, resource, ns, name, obj, spec)
        risks = pod_spec_risks(spec)
        kind_name = resource[:-1] if resource.endswith("s") else resource
        where = f"{kind_name} {ns}/{name}" if ns else f"{kind_name} {name}"
        in_kube_system = resource == "daemonsets" and verb == "create" and ns == "kube-system"
        if risks is not None:
            kind, sev, flags = risks
            text = f"{actor} {past(verb)} {where} with {', '.join(flags)}"
            if added:
                text += f" (adds container {', '.join(added)})"
            signal(ev, kind, sev, _LABELS[kind], text, "T1611", request=rec)
        elif added and not denied(rec):
            text = f"{actor} {past(verb)} {where}, adding container {', '.join(added)}"
            signal(
                ev,
                "container-injected",
                Severity.MEDIUM,
                "Container added to workload",
                text,
                "T1610",
            )
        elif in_kube_system:
            text = f"{actor} created {where}: runs on every node, beside the control plane"
            sev = Severity.MEDIUM
            signal(
                ev,
                "daemonset-kube-system",
                sev,
                "DaemonSet in kube-system",
                text,
                "T1543.005",
                request=rec,
            )
        elif resource == "cronjobs" and verb == "create" and not denied(rec):
            signal(
                ev,
                "cronjob-create",
                Severity.LOW,
                "CronJob created",
                f"{actor} created {where}",
                "T1053.007",
            )

    def _added_containers(
        self,
        rec: AuditRecord,
        resource: str,
        ns: str,
        name: str,
        obj: object,
        spec: object,
    ) -> list[str]:
        """Containers (and init containers) a write adds to a workload's template that
        it did not have: from a JSON patch's `add` of a container, or against the
        names last seen for the workload. Remembers the names the write leaves."""
        if not name or denied(rec):
            return []
        key = (resource, ns, name)
        verb = rec.verb or ""
        names = _container_names(spec)
        known = self._containers.get(key)
        if verb != "create" and isinstance(obj, list):
            added = [n for n in _json_patch_added(obj) if known is None or n not in known]
        else:
            added = sorted(names - known) if known is not None and verb != "create" else []
        if names or verb == "create":
            if verb == "patch" and known is not None:
                names |= known
            if len(self._containers) >= _MAX_WORKLOADS:
                self._containers.pop(next(iter(self._containers)))
            self._containers[key] = frozenset(names)
        return added[:8]


def _created_name(obj: object) -> str:
    """metadata.name of a request or response object, or ""."""
    meta = obj.get("metadata") if isinstance(obj, dict) else None
    name = meta.get("name") if isinstance(meta, dict) else None
    return name if isinstance(name, str) else ""


def _is_mirror(obj: object) -> bool:
    """Whether a pod object carries the mirror-pod annotation (a static pod's copy)."""
    meta = obj.get("metadata") if isinstance(obj, dict) else None
    ann = meta.get("annotations") if isinstance(meta, dict) else None
    return isinstance(ann, dict) and MIRROR_ANNOTATION in ann


def _container_names(spec: object) -> frozenset[str]:
    """Names of a pod spec's containers and init containers."""
    if not isinstance(spec, dict):
        return frozenset()
    names: set[str] = set()
    for key in ("containers", "initContainers"):
        items = spec.get(key)
        if isinstance(items, list):
            for c in items[:200]:
                if isinstance(c, dict) and isinstance(c.get("name"), str):
                    names.add(c["name"])
    return frozenset(names)


def _json_patch_added(ops: list[object]) -> list[str]:
    """Containers a JSON patch adds (an `add` of a whole container to a list)."""
    added: list[str] = []
    for op in ops[:1000]:
        if not isinstance(op, dict) or op.get("op") != "add":
            continue
        path = op.get("path")
        if not isinstance(path, str):
            continue
        parts = path.rstrip("/").split("/")
        if (
            len(parts) >= 2
            and parts[-2] in ("containers", "initContainers")
            and (parts[-1] == "-" or parts[-1].isdigit())
        ):
            value = op.get("value")
            name = value.get("name") if isinstance(value, dict) else None
            added.append(str(name) if name else "(unnamed)")
        elif parts[-1] in ("containers", "initContainers") and isinstance(op.get("value"), list):
            for c in op["value"][:200]:
                if isinstance(c, dict):
                    added.append(str(c.get("name") or "(unnamed)"))
    return added
