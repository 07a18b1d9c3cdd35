"""RBAC rules that grant more than they seem: wildcards, and named rights that lead to
cluster-admin without one (exec into pods, the kubelet API, every secret, minting
tokens, escalate/bind/impersonate)."""

from __future__ import annotations

from typing import NamedTuple

from ktriage.core.detect.common import (
    DELETE_VERBS,
    WRITE_VERBS,
    denied,
    object_name,
    past,
    signal,
)
from ktriage.core.detect.identity import is_control_plane, node_of
from ktriage.core.detect.objects import CsrSubject, csr_approved, csr_subject
from ktriage.core.model import EntityKind, EntityRef, Event, Severity, entity
from ktriage.core.parse import identity, plain
from ktriage.core.parse.audit import AuditRecord, decode_object, rights_review, target_text

MAX_RULES = 1000
_MAX_VALUES = 200


class RoleRisk(NamedTuple):
    """What a role's rules grant: wildcard keys ("verbs", "resources") and dangerous
    rights in words ("create pods/exec"), most severe first."""

    wildcards: tuple[str, ...]
    rights: tuple[str, ...]


def _strings(values: object) -> list[str]:
    if not isinstance(values, list):
        return []
    return [v for v in values[:_MAX_VALUES] if isinstance(v, str)]


# (resource, verbs that matter, words): a rule granting any of the verbs on the
# resource grants the right. Secrets only count in a ClusterRole (every namespace).
_DANGEROUS: tuple[tuple[str, frozenset[str], str], ...] = (
    ("pods/exec", frozenset({"create", "get"}), "exec into pods"),
    ("pods/attach", frozenset({"create", "get"}), "attach to pods"),
    ("nodes/proxy", frozenset({"get", "create", "update", "patch"}), "the kubelet API"),
    ("serviceaccounts/token", frozenset({"create"}), "mint service-account tokens"),
    ("pods/ephemeralcontainers", frozenset({"update", "patch"}), "add ephemeral containers"),
)  # fmt: skip
_CLUSTER_ONLY: tuple[tuple[str, frozenset[str], str], ...] = (
    ("secrets", frozenset({"get", "list", "watch"}), "read secrets in every namespace"),
)
_DANGEROUS_VERBS = {
    "escalate": "escalate (grant rights it does not hold)",
    "bind": "bind (bind roles it does not hold)",
    "impersonate": "impersonate other identities",
}


def role_risk(rules: object, cluster: bool) -> RoleRisk:
    """Read a Role's or ClusterRole's rules (bounded)."""
    wild: set[str] = set()
    rights: dict[str, None] = {}
    if not isinstance(rules, list):
        return RoleRisk((), ())
    for rule in rules[:MAX_RULES]:
        if not isinstance(rule, dict):
            continue
        verbs = set(_strings(rule.get("verbs")))
        resources = set(_strings(rule.get("resources")))
        if "*" in verbs:
            wild.add("verbs")
        if "*" in resources:
            wild.add("resources")
        if "*" in verbs or "*" in resources:
            continue
        for verb, words in _DANGEROUS_VERBS.items():
            if verb in verbs and resources:
                rights[words] = None
        checks = _DANGEROUS + (_CLUSTER_ONLY if cluster else ())
        for resource, wanted, words in checks:
            if resource in resources and verbs & wanted:
                rights[words] = None
    return RoleRisk(tuple(sorted(wild)), tuple(rights))


# Users that are cluster-admin by construction (kubeadm's and other installers' admin
# certificates), besides those seen bound to cluster-admin.
ADMIN_USERS = frozenset({"kubernetes-admin", "system:admin", "kube-admin", "admin"})
_ANONYMOUS_SUBJECTS = frozenset(
    {("User", "system:anonymous"), ("Group", "system:unauthenticated"),
     ("Group", "system:authenticated")}
)  # fmt: skip
_MAX_REMEMBERED = 100_000


class RbacDetections:
    """Role, binding, certificate-request and impersonation detections; a part of
    AuditDetector (which provides `_exempt` and the state below)."""

    _risky_roles: dict[tuple[str, str], str]
    _admin_users: set[str]
    _csr_subjects: dict[str, CsrSubject]

    def _exempt(self, rec: AuditRecord) -> bool:
        raise NotImplementedError

    def _remember_role(self, key: tuple[str, str], why: str) -> None:
        if len(self._risky_roles) >= _MAX_REMEMBERED:
            self._risky_roles.pop(next(iter(self._risky_roles)))
        self._risky_roles[key] = why

    def _system_deleted(self, rec: AuditRecord, ev: Event, what: str, label: str) -> None:
        """A delete of a `system:` binding or role (`what` says which) is a signal."""
        assert rec.objectRef is not None
        name = rec.objectRef.name or ""
        if name.startswith("system:") and not self._exempt(rec):
            text = f"{rec.username} deleted {what} {name}"
            signal(ev, "rbac-system-change", Severity.MEDIUM, label, text, "T1098.006", request=rec)

    def _binding(self, rec: AuditRecord, ev: Event) -> None:
        verb = rec.verb or ""
        oref = rec.objectRef
        assert oref is not None
        cluster = oref.resource == "clusterrolebindings"
        what = "ClusterRoleBinding" if cluster else f"RoleBinding in {oref.namespace}"
        actor = rec.username
        if verb in DELETE_VERBS:
            self._system_deleted(rec, ev, what, "System binding deleted")
            return
        obj = decode_object(rec.requestObject) if verb in WRITE_VERBS else None
        if not isinstance(obj, dict):
            return
        role_ref = obj.get("roleRef")
        if not isinstance(role_ref, dict):
            return
        role = str(role_ref.get("name") or "")
        role_kind = str(role_ref.get("kind") or "ClusterRole")
        ns = "" if role_kind == "ClusterRole" else (oref.namespace or "")
        subjects: list[str] = []
        extra: list[EntityRef] = []
        users: list[str] = []
        to_sa_elsewhere = to_sa = to_anyone = False
        subs = obj.get("subjects")
        if isinstance(subs, list):
            for s in subs[:200]:
                if not isinstance(s, dict):
                    continue
                sk, sn = str(s.get("kind") or ""), str(s.get("name") or "")
                sns = str(s.get("namespace") or "")
                if (sk, sn) in _ANONYMOUS_SUBJECTS:
                    to_anyone = True
                if sk == "ServiceAccount":
                    subjects.append(f"ServiceAccount {sns}/{sn}")
                    extra.append(entity(EntityKind.SERVICE_ACCOUNT, sns, sn))
                    to_sa = True
                    if sns == "kube-system" or (not cluster and sns and sns != oref.namespace):
                        to_sa_elsewhere = True
                elif sk == "User":
                    subjects.append(f"User {sn}")
                    extra.append(identity(sn))
                    users.append(sn)
                else:
                    subjects.append(f"{sk} {sn}")
        name = object_name(oref.name, obj)
        risky = self._risky_roles.get((ns, role))
        if role == "cluster-admin":
            sev, label = Severity.HIGH, "Cluster-admin binding"
            if not denied(rec) and cluster:
                for user in users:
                    if len(self._admin_users) < _MAX_REMEMBERED:
                        self._admin_users.add(user)
        elif role == "admin":
            sev, label = (Severity.HIGH if cluster else Severity.MEDIUM), "Admin binding"
        elif risky is not None:
            sev = Severity.HIGH if cluster else Severity.MEDIUM
            label = "Wildcard role binding" if risky == "wildcard" else "Dangerous role binding"
        elif to_anyone:
            sev, label = Severity.HIGH, "Binding for anyone"
        elif name.startswith("system:") and cluster:
            sev, label = Severity.HIGH, "System binding changed"
        elif to_sa:
            # Every chart binds its accounts (often across namespaces, as to
            # extension-apiserver-authentication-reader): on record, low.
            sev = Severity.LOW
            label = "Role binding to service account"
            if to_sa_elsewhere:
                label = "Cross-namespace role binding to service account"
        else:
            return
        if to_anyone and sev >= Severity.HIGH and label != "Binding for anyone":
            # cluster-admin (or as much) for every caller, signed in or not.
            sev = Severity.CRITICAL
        kind = "rbac-system-change" if label == "System binding changed" else "rbac-binding"
        ev.kind = kind
        if extra:
            ev.entities = (*ev.entities, *extra)
        if self._exempt(rec):
            return
        text = f"{actor} bound {role_kind} {role} to {', '.join(subjects) or 'no subjects'}"
        text += f" ({oref.resource} {name})" if name else ""
        signal(ev, kind, sev, label, text, "T1098.006", request=rec)

    def _role(self, rec: AuditRecord, ev: Event) -> None:
        verb = rec.verb or ""
        oref = rec.objectRef
        assert oref is not None
        cluster = oref.resource == "clusterroles"
        ns = "" if cluster else (oref.namespace or "")
        what = "ClusterRole" if cluster else f"Role in {ns}"
        actor = rec.username
        if verb in DELETE_VERBS:
            if cluster:
                self._system_deleted(rec, ev, what, "System role deleted")
            return
        obj = decode_object(rec.requestObject) if verb in WRITE_VERBS else None
        if not isinstance(obj, dict):
            return
        name = object_name(oref.name, obj)
        risk = role_risk(obj.get("rules"), cluster)
        if (risk.wildcards or risk.rights) and not denied(rec) and name:
            self._remember_role((ns, name), "wildcard" if risk.wildcards else "dangerous")
        system_name = cluster and name.startswith("system:")
        if not (risk.wildcards or risk.rights or (system_name and "rules" in obj)):
            return
        if risk.wildcards:
            kind, label = "rbac-wildcard-role", "Wildcard role"
            text = (
                f"{actor} {past(verb)} {what} {name} with wildcard {' and '.join(risk.wildcards)}"
            )
        elif risk.rights:
            kind, label = "rbac-dangerous-role", "Role with dangerous rights"
            text = f"{actor} {past(verb)} {what} {name} granting {', '.join(risk.rights)}"
        else:
            kind, label = "rbac-system-change", "System role changed"
            text = f"{actor} {past(verb)} {what} {name}"
        ev.kind = kind
        if self._exempt(rec):
            return
        sev = Severity.HIGH if cluster else Severity.MEDIUM
        if system_name and kind != "rbac-system-change":
            text += " (a system: role)"
        signal(ev, kind, sev, label, text, "T1098.006", request=rec)

    def _csr(self, rec: AuditRecord, ev: Event) -> None:
        verb = rec.verb or ""
        oref = rec.objectRef
        assert oref is not None
        sub = oref.subresource or ""
        actor = rec.username
        obj = decode_object(rec.requestObject)
        name = object_name(oref.name, obj)
        if sub == "approval" and verb in ("update", "patch"):
            ev.kind = "csr-approval"
            subject = csr_subject(obj) or self._csr_subjects.get(name)
            if self._exempt(rec) or (obj is not None and not csr_approved(obj)):
                return
            text = f"{actor} approved certificate request {name}"
            if subject is not None and _system_subject(subject):
                text += f" for {_subject_text(subject)}"
                sev, label = Severity.CRITICAL, "Client certificate approved for system identity"
            else:
                if subject is not None:
                    text += f" for {_subject_text(subject)}"
                sev, label = Severity.MEDIUM, "Certificate request approved"
            signal(ev, "csr-approval", sev, label, text, "T1649", request=rec)
            return
        if sub or verb != "create":
            return
        ev.kind = "csr-create"
        subject = csr_subject(obj)
        if subject is None:
            return
        if name and not denied(rec):
            if len(self._csr_subjects) >= _MAX_REMEMBERED:
                self._csr_subjects.pop(next(iter(self._csr_subjects)))
            self._csr_subjects[name] = subject
        if self._exempt(rec) or _kubelet_own_request(actor, subject):
            return
        text = f"{actor} requested a client certificate for {_subject_text(subject)}"
        if name:
            text += f" (certificatesigningrequest {name})"
        if _system_subject(subject):
            sev, label = Severity.CRITICAL, "Client certificate request for system identity"
        else:
            sev, label = Severity.LOW, "Certificate request"
        signal(ev, "csr-create", sev, label, text, "T1649", request=rec)

    def _impersonation(self, rec: AuditRecord, ev: Event) -> None:
        """A request made with another identity's rights: a privileged one is a signal
        on its own, and raises any signal the request made."""
        imp = rec.impersonatedUser
        if imp is None or self._exempt(rec):
            return
        target = imp.username or ""
        why = ""
        sev = Severity.HIGH
        if imp.in_group("system:masters"):
            why, sev = "the system:masters group", Severity.CRITICAL
        elif target in ADMIN_USERS or target in self._admin_users:
            why, sev = f"{target} (cluster-admin)", Severity.CRITICAL
        elif is_control_plane(target) or target.startswith("system:serviceaccount:kube-system:"):
            why = f"{target} (a kube-system identity)"
        elif node_of(target):
            why = f"{target} (a node)"
        if not why:
            return
        if denied(rec) or rights_review(rec):
            # A review of its own rights (`kubectl auth can-i --as`) acts on nothing;
            # the identity used for anything else is judged on that request.
            sev = Severity.LOW
        if ev.signal:
            if sev > ev.severity:
                ev.severity = sev
            ev.summary = plain(f"{ev.summary} (impersonating {why})")
            return
        text = f"{rec.username} impersonated {why}: {rec.verb or 'request'} {target_text(rec)}"
        if denied(rec):
            text += f" (denied {rec.code})"
        signal(
            ev,
            "impersonation",
            sev,
            "Privileged impersonation",
            text,
            "T1078",
            "privilege-escalation",
        )


def _system_subject(subject: CsrSubject) -> bool:
    return subject.common_name.startswith("system:") or any(
        o.startswith("system:") and o != "system:authenticated" for o in subject.organizations
    )


def _kubelet_own_request(actor: str, subject: CsrSubject) -> bool:
    """A kubelet renewing its own certificate, or bootstrapping one for its node."""
    node = node_of(actor)
    cn = subject.common_name
    orgs = set(subject.organizations)
    if orgs - {"system:nodes"}:
        return False
    if node:
        return cn == f"system:node:{node}"
    return actor.startswith("system:bootstrap:") and cn.startswith("system:node:")


def _subject_text(subject: CsrSubject) -> str:
    text = subject.common_name or "(no common name)"
    if subject.organizations:
        text += f" (groups {', '.join(subject.organizations)})"
    return text
