"""Detections on the cluster's configuration objects: admission webhooks, the DNS and
aws-auth ConfigMaps, ConfigMaps holding credentials, Events, exposed Services. A part
of AuditDetector (which provides `_exempt`)."""

from __future__ import annotations

from ktriage.core.detect.common import DELETE_VERBS, WRITE_VERBS, object_name, past, signal
from ktriage.core.detect.objects import configmap_credentials, only_ca_bundle
from ktriage.core.model import Event, Severity
from ktriage.core.parse.audit import AuditRecord, ObjectRef, decode_object

_DNS_CONFIGMAPS = frozenset({"coredns", "kube-dns"})
# Node ports of services reaching a node's own agents: exposing them is worse.
_ADMIN_PORTS = frozenset({22, 2375, 2376, 2379, 2380, 6443, 10250, 10255, 10257, 10259})


def _written(rec: AuditRecord) -> tuple[str, ObjectRef, object] | None:
    """The verb, reference and decoded request object of a create, update or patch of
    the object itself (not of a subresource); None for any other request."""
    verb = rec.verb or ""
    oref = rec.objectRef
    assert oref is not None
    if oref.subresource or verb not in WRITE_VERBS:
        return None
    return verb, oref, decode_object(rec.requestObject)


class ConfigDetections:
    def _exempt(self, rec: AuditRecord) -> bool:
        raise NotImplementedError

    def _webhook(self, rec: AuditRecord, ev: Event) -> None:
        verb = rec.verb or ""
        oref = rec.objectRef
        assert oref is not None
        if oref.subresource or (verb not in WRITE_VERBS and verb not in DELETE_VERBS):
            return
        mutating = oref.resource == "mutatingwebhookconfigurations"
        kind_name = "MutatingWebhookConfiguration" if mutating else "ValidatingWebhookConfiguration"
        obj = decode_object(rec.requestObject)
        name = object_name(oref.name, obj)
        ev.kind = "admission-webhook"
        if self._exempt(rec):
            return
        if verb in ("update", "patch") and only_ca_bundle(obj):
            return  # a certificate refresh (cert-manager's cainjector, operators)
        actor = rec.username
        where = f"{kind_name} {name}" if name else f"a {kind_name}"
        # Installs and upgrades (cert-manager, policy engines, service meshes) write
        # these too: a mutating webhook, which can rewrite every pod, is medium; a
        # validating one low, until it is deleted (its policy no longer enforced).
        if verb in DELETE_VERBS:
            sev = Severity.LOW if mutating else Severity.MEDIUM
            text = f"{actor} deleted {where}"
            label, technique = "Admission webhook deleted", "T1562.001"
        else:
            sev = Severity.MEDIUM if mutating else Severity.LOW
            text = f"{actor} {past(verb)} {where}"
            if mutating:
                text += ": every matching object it sees may be rewritten"
            label = "Mutating webhook" if mutating else "Validating webhook"
            label += " created" if verb == "create" else " changed"
            technique = "T1546" if mutating else "T1562.001"
        signal(ev, "admission-webhook", sev, label, text, technique, request=rec)

    def _configmap(self, rec: AuditRecord, ev: Event) -> None:
        written = _written(rec)
        if written is None:
            return
        verb, oref, obj = written
        name = object_name(oref.name, obj)
        ns = oref.namespace or ""
        actor = rec.username
        where = f"ConfigMap {ns}/{name}"
        if ns == "kube-system" and name in _DNS_CONFIGMAPS:
            kind, label, technique = "dns-config-change", "Cluster DNS changed", "T1557"
            sev = Severity.HIGH
            text = f"{actor} {past(verb)} {where}: cluster DNS answers can be redirected"
        elif ns == "kube-system" and name == "aws-auth":
            kind, label, technique = "aws-auth-change", "aws-auth changed", "T1098"
            sev = Severity.HIGH
            text = f"{actor} {past(verb)} {where} (who may sign in to the cluster)"
            if rec.requestObject and b"system:masters" in bytes(rec.requestObject):
                sev = Severity.CRITICAL
                text += ", granting system:masters"
        else:
            found = configmap_credentials(obj)
            if not found:
                return
            kind, label, technique = (
                "configmap-credentials",
                "Credentials in ConfigMap",
                "T1552.001",
            )
            sev = Severity.MEDIUM
            text = f"{actor} {past(verb)} {where} holding credentials: {', '.join(found)}"
        ev.kind = kind
        if self._exempt(rec) or (kind == "aws-auth-change" and actor.startswith("eks:")):
            return
        signal(ev, kind, sev, label, text, technique, request=rec)

    def _events(self, rec: AuditRecord, ev: Event) -> None:
        verb = rec.verb or ""
        if verb not in DELETE_VERBS:
            return
        oref = rec.objectRef
        assert oref is not None
        ev.kind = "events-deleted"
        if self._exempt(rec):
            return
        ns = oref.namespace or ""
        if verb == "deletecollection" or not oref.name:
            sev = Severity.HIGH
            what = f"every Event in {ns}" if ns else "Events in all namespaces"
        else:
            sev = Severity.MEDIUM
            what = f"Event {ns}/{oref.name}" if ns else f"Event {oref.name}"
        text = f"{rec.username} deleted {what}"
        signal(ev, "events-deleted", sev, "Events deleted", text, "T1070", request=rec)

    def _service(self, rec: AuditRecord, ev: Event) -> None:
        written = _written(rec)
        if written is None:
            return
        verb, oref, obj = written
        spec = obj.get("spec") if isinstance(obj, dict) else None
        if not isinstance(spec, dict) or spec.get("type") not in ("NodePort", "LoadBalancer"):
            return
        stype = str(spec["type"])
        name = object_name(oref.name, obj)
        ns = oref.namespace or ""
        ev.kind = "service-exposed"
        if self._exempt(rec):
            return
        ports: list[int] = []
        raw_ports = spec.get("ports")
        if isinstance(raw_ports, list):
            for p in raw_ports[:100]:
                if isinstance(p, dict):
                    for key in ("port", "targetPort", "nodePort"):
                        value = p.get(key)
                        if isinstance(value, int) and not isinstance(value, bool):
                            ports.append(value)
        risky_ports = sorted({p for p in ports if p in _ADMIN_PORTS})
        sev = Severity.MEDIUM if ns == "kube-system" or risky_ports else Severity.LOW
        text = f"{rec.username} {past(verb)} {stype} Service {ns}/{name}"
        if risky_ports:
            text += f" exposing port {', '.join(str(p) for p in risky_ports)}"
        signal(ev, "service-exposed", sev, f"{stype} service", text, "T1133", request=rec)
