"""The blast radius of an incident: what its identities and pods can do next.

Pure: computed from plain dicts as the API returns them (Roles, ClusterRoles with
aggregation resolved by the server, RoleBindings, ClusterRoleBindings,
ServiceAccounts, pods, NetworkPolicies, Secrets' metadata, never their values)
and, where ktriage could impersonate an identity, from SelfSubjectRulesReview
answers. `ktriage.blastread` reads those from the cluster.

- Identity: its rights, dangerous ones first, each with why it matters and the
  object that grants it; which method was used and what could not be seen.
- Pod: the token and Secrets it mounts, whether it can reach its node (then the
  node's other pods and service accounts are in the blast radius too), and what
  its namespace's policies (NetworkPolicies, and Cilium's and Calico's where
  served) let it reach and be reached by, judged by `core.netverdict`, the
  verdict isolation gives. A direction is called isolated only when a policy
  closes it, nothing lets traffic through, and a network plugin that enforces
  NetworkPolicy was seen (`ClusterView.enforcing`, found as isolation finds it).
- Paths: a breadth-first search, at most MAX_DEPTH steps, for the short chains
  that end in cluster-admin-like rights or in another namespace's Secrets, each
  step citing the object that allows it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ktriage.core import netpol, netverdict
from ktriage.core.model import EntityKind, Incident
from ktriage.core.snapshot import md_escape
from ktriage.core.text import clip, shown

SA_PREFIX = "system:serviceaccount:"
AUTHENTICATED = "system:authenticated"
MASTERS = "system:masters"
RBAC_GROUP = "rbac.authorization.k8s.io"
MAX_DEPTH = 3
MAX_PATHS = 5
MAX_TARGETS = 10  # identities, and pods, looked at per incident
MAX_NEIGHBOURS = 40  # other pods on a reachable node, listed
MAX_WHERE = 12  # namespaces named per right
MAX_CITES = 4
MAX_SEARCH = 3000  # identities the path search may visit
NAME_WIDTH = 120  # untrusted names are clipped to this many characters when shown
ALL = ""  # a grant's namespace when it holds cluster-wide

WORKLOADS = (
    ("", "pods"),
    ("", "replicationcontrollers"),
    ("apps", "deployments"),
    ("apps", "daemonsets"),
    ("apps", "statefulsets"),
    ("apps", "replicasets"),
    ("batch", "jobs"),
    ("batch", "cronjobs"),
)
CLUSTER_SCOPED = frozenset(
    {
        "nodes",
        "nodes/proxy",
        "namespaces",
        "persistentvolumes",
        "clusterroles",
        "clusterrolebindings",
        "certificatesigningrequests",
        "certificatesigningrequests/approval",
        "signers",
        "mutatingwebhookconfigurations",
        "validatingwebhookconfigurations",
        "users",
        "groups",
        "uids",
        "userextras",
    }
)


# ---------------------------------------------------------------- identities


@dataclass(frozen=True, slots=True)
class Identity:
    """Who acted: a user name and the groups the API server gives it."""

    user: str
    groups: tuple[str, ...] = (AUTHENTICATED,)
    groups_known: bool = True

    @classmethod
    def service_account(cls, namespace: str, name: str) -> Identity:
        return cls(
            f"{SA_PREFIX}{namespace}:{name}",
            ("system:serviceaccounts", f"system:serviceaccounts:{namespace}", AUTHENTICATED),
        )

    @classmethod
    def from_username(cls, user: str, groups: Iterable[str] = ()) -> Identity:
        """A user as the audit log names it; a service account's groups are implied."""
        sa = _sa_parts(user)
        if sa is not None:
            return cls.service_account(*sa)
        given = tuple(dict.fromkeys([*groups, AUTHENTICATED]))
        return cls(user, given, groups_known=bool(tuple(groups)))

    @property
    def sa(self) -> tuple[str, str] | None:
        return _sa_parts(self.user)

    @property
    def label(self) -> str:
        sa = self.sa
        return f"ServiceAccount {sa[0]}/{sa[1]}" if sa else f"User {self.user}"


def _sa_parts(user: str) -> tuple[str, str] | None:
    if not user.startswith(SA_PREFIX):
        return None
    parts = user[len(SA_PREFIX) :].split(":")
    if len(parts) != 2 or not all(parts):
        return None
    return parts[0], parts[1]


def targets_of(incident: Incident) -> tuple[list[Identity], list[tuple[str, str]]]:
    """The identities that acted in an incident and its pods (at most MAX_TARGETS each)."""
    identities: dict[str, Identity] = {}
    pods: dict[tuple[str, str], None] = {}
    for ent in incident.entities:
        if ent.kind == EntityKind.SERVICE_ACCOUNT and ent.namespace and ent.name:
            ident = Identity.service_account(ent.namespace, ent.name)
            identities.setdefault(ident.user, ident)
        elif ent.kind == EntityKind.USER and ent.name:
            ident = Identity.from_username(ent.name)
            identities.setdefault(ident.user, ident)
        elif ent.kind == EntityKind.POD and ent.namespace and ent.name:
            pods[(ent.namespace, ent.name)] = None
    return list(identities.values())[:MAX_TARGETS], list(pods)[:MAX_TARGETS]


# ---------------------------------------------------------------- the cluster as read


@dataclass(slots=True)
class ClusterView:
    """What the reader could see. `not_seen` says what it could not, in words."""

    roles: list[dict[str, Any]] = field(default_factory=list)
    cluster_roles: list[dict[str, Any]] = field(default_factory=list)
    role_bindings: list[dict[str, Any]] = field(default_factory=list)
    cluster_role_bindings: list[dict[str, Any]] = field(default_factory=list)
    service_accounts: list[dict[str, Any]] = field(default_factory=list)
    pods: list[dict[str, Any]] = field(default_factory=list)
    network_policies: list[dict[str, Any]] = field(default_factory=list)
    secrets: list[dict[str, Any]] = field(default_factory=list)  # metadata only
    namespaces: list[str] = field(default_factory=list)
    not_seen: list[str] = field(default_factory=list)
    # What could be read of each kind: a kind not listed here was not seen at all.
    seen: set[str] = field(default_factory=set)
    # The network plugins seen that enforce NetworkPolicy (name -> where), found as
    # the isolate action finds them; None when nobody looked. Empty: none was seen,
    # and `enforcement_warning` says what was looked at.
    enforcing: dict[str, str] | None = None
    enforcement_warning: str = ""
    # The other policy kinds isolation may write, where the cluster serves them
    # (cilium.io/v2 CiliumNetworkPolicy, projectcalico.org/v3 NetworkPolicy), and
    # those served that could not be read (in words).
    cilium_policies: list[dict[str, Any]] = field(default_factory=list)
    calico_policies: list[dict[str, Any]] = field(default_factory=list)
    policies_unread: list[str] = field(default_factory=list)


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    meta = obj.get("metadata") if isinstance(obj, Mapping) else None
    return meta if isinstance(meta, Mapping) else {}


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _strs(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list | tuple):
        return ()
    return tuple(v for v in value if isinstance(v, str))


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _dict(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def name_of(kind: str, namespace: str, name: str) -> str:
    """`ClusterRoleBinding x`, `Role ns/y`: how a step cites an object."""
    return f"{kind} {namespace}/{name}" if namespace else f"{kind} {name}"


@dataclass(frozen=True, slots=True)
class Grant:
    """One RBAC rule granted to an identity, where it holds and what grants it."""

    namespace: str  # ALL: cluster-wide
    verbs: tuple[str, ...]
    api_groups: tuple[str, ...]
    resources: tuple[str, ...]
    resource_names: tuple[str, ...]
    source: str

    def matches(self, verbs: Iterable[str], group: str, resource: str) -> bool:
        if not ("*" in self.api_groups or group in self.api_groups):
            return False
        if not ("*" in self.verbs or any(v in self.verbs for v in verbs)):
            return False
        if "*" in self.resources or resource in self.resources:
            return True
        if "/" in resource:
            return "*/" + resource.split("/", 1)[1] in self.resources
        return False

    @property
    def wildcard(self) -> bool:
        return "*" in self.verbs or "*" in self.resources

    @property
    def everything(self) -> bool:
        return (
            "*" in self.verbs
            and "*" in self.resources
            and "*" in self.api_groups
            and not self.resource_names
        )


def _grants_of_rules(rules: Any, namespace: str, source: str) -> list[Grant]:
    out = []
    for rule in _list(rules):
        rule = _dict(rule)
        resources = _strs(rule.get("resources"))
        if not resources:
            continue  # nonResourceURLs only: nothing in the blast radius
        out.append(
            Grant(
                namespace=namespace,
                verbs=_strs(rule.get("verbs")),
                api_groups=_strs(rule.get("apiGroups")),
                resources=resources,
                resource_names=_strs(rule.get("resourceNames")),
                source=source,
            )
        )
    return out


class RbacIndex:
    """Roles and bindings indexed by subject, built once per ClusterView."""

    def __init__(self, view: ClusterView) -> None:
        self.view = view
        self.problems: list[str] = []
        self.cluster_roles: dict[str, Mapping[str, Any]] = {}
        for role in view.cluster_roles:
            name = _str(_meta(role).get("name"))
            if name:
                self.cluster_roles[name] = role
        self.roles: dict[tuple[str, str], Mapping[str, Any]] = {}
        for role in view.roles:
            meta = _meta(role)
            self.roles[(_str(meta.get("namespace")), _str(meta.get("name")))] = role
        # subject key -> [(binding kind, binding namespace, binding name, roleRef)]
        self.by_subject: dict[tuple[str, ...], list[tuple[str, str, str, Mapping[str, Any]]]] = {}
        for kind, items in (
            ("ClusterRoleBinding", view.cluster_role_bindings),
            ("RoleBinding", view.role_bindings),
        ):
            for binding in items:
                meta = _meta(binding)
                bns = _str(meta.get("namespace")) if kind == "RoleBinding" else ""
                bname = _str(meta.get("name"))
                ref = _dict(binding.get("roleRef"))
                for subject in _list(binding.get("subjects")):
                    key = _subject_key(_dict(subject), bns)
                    if key is not None:
                        self.by_subject.setdefault(key, []).append((kind, bns, bname, ref))
        self._aggregated: dict[str, list[Any]] = {}

    def role_rules(self, kind: str, namespace: str, name: str) -> tuple[list[Any], str] | None:
        """The rules of a role a binding refers to and how to cite it (None: missing)."""
        if kind == "Role":
            role = self.roles.get((namespace, name))
            return (_list(role.get("rules")), name_of("Role", namespace, name)) if role else None
        if kind != "ClusterRole":
            return None
        role = self.cluster_roles.get(name)
        if role is None:
            return None
        rules = _list(role.get("rules"))
        if not rules and role.get("aggregationRule"):
            rules = self._aggregate(name, role)
        return rules, name_of("ClusterRole", "", name)

    def _aggregate(self, name: str, role: Mapping[str, Any]) -> list[Any]:
        """An aggregated ClusterRole the controller has not filled yet, filled the same way."""
        if name not in self._aggregated:
            rules: list[Any] = []
            selectors = _list(_dict(role.get("aggregationRule")).get("clusterRoleSelectors"))
            for other_name, other in self.cluster_roles.items():
                if other_name == name:
                    continue
                labels = _dict(_meta(other).get("labels"))
                try:
                    if any(netpol.selector_matches(_dict(s), labels) for s in selectors):
                        rules.extend(_list(other.get("rules")))
                except netpol.SelectorError:
                    continue
            self._aggregated[name] = rules
        return self._aggregated[name]

    def grants(self, identity: Identity) -> list[Grant]:
        keys: list[tuple[str, ...]] = [("User", identity.user)]
        keys += [("Group", g) for g in identity.groups]
        sa = identity.sa
        if sa is not None:
            keys.append(("ServiceAccount", sa[0], sa[1]))
        out: list[Grant] = []
        seen: set[tuple[str, str, str]] = set()
        for key in keys:
            for kind, bns, bname, ref in self.by_subject.get(key, ()):
                if (kind, bns, bname) in seen:
                    continue
                seen.add((kind, bns, bname))
                ref_kind, ref_name = _str(ref.get("kind")), _str(ref.get("name"))
                found = self.role_rules(ref_kind, bns if ref_kind == "Role" else "", ref_name)
                binding = name_of(kind, bns, bname)
                if found is None:
                    missing = name_of(
                        ref_kind or "role", bns if ref_kind == "Role" else "", ref_name
                    )
                    self.problems.append(f"{binding} refers to {missing}, which was not found")
                    continue
                rules, role = found
                out += _grants_of_rules(rules, bns, f"{binding} → {role}")
        return out


def _subject_key(subject: Mapping[str, Any], binding_namespace: str) -> tuple[str, ...] | None:
    kind, name = _str(subject.get("kind")), _str(subject.get("name"))
    if not name:
        return None
    if kind == "ServiceAccount":
        return ("ServiceAccount", _str(subject.get("namespace")) or binding_namespace, name)
    if kind in ("User", "Group"):
        return (kind, name)
    return None


def grants_from_reviews(
    identity: Identity, reviews: Mapping[str, Mapping[str, Any]]
) -> tuple[list[Grant], list[str]]:
    """Grants from SelfSubjectRulesReview statuses, one per namespace.

    A rule that every reviewed namespace reports (two at least) is taken as
    cluster-wide: a review answers for one namespace and folds in the
    cluster-wide bindings. Returns the grants and the reviews' own warnings.
    """
    per_rule: dict[tuple[Any, ...], set[str]] = {}
    notes: list[str] = []
    for namespace, status in reviews.items():
        status = _dict(status)
        if status.get("incomplete"):
            error = clip(_str(status.get("evaluationError")) or "no reason given", 200)
            notes.append(f"the review in namespace {namespace} is incomplete: {error}")
        for rule in _list(status.get("resourceRules")):
            rule = _dict(rule)
            key = (
                _strs(rule.get("verbs")),
                _strs(rule.get("apiGroups")),
                _strs(rule.get("resources")),
                _strs(rule.get("resourceNames")),
            )
            if key[2]:
                per_rule.setdefault(key, set()).add(namespace)
    everywhere = len(reviews) >= 2
    grants: list[Grant] = []
    for (verbs, groups, resources, names), where in per_rule.items():
        if (everywhere and len(where) == len(reviews)) or all(
            r in CLUSTER_SCOPED for r in resources
        ):
            # Cluster-scoped resources are only ever granted cluster-wide.
            spots = [ALL]
        else:
            spots = sorted(where)
        for namespace in spots:
            grants.append(
                Grant(
                    namespace,
                    verbs,
                    groups,
                    resources,
                    names,
                    f"SelfSubjectRulesReview as {identity.user}",
                )
            )
    return grants, notes


# ---------------------------------------------------------------- dangerous rights


@dataclass(frozen=True, slots=True)
class Check:
    key: str
    title: str
    why: str
    verbs: tuple[str, ...]
    targets: tuple[tuple[str, str], ...]  # (apiGroup, resource)


CHECKS: tuple[Check, ...] = (
    Check(
        "impersonate",
        "impersonate users, groups or service accounts",
        "act as anyone: impersonating the group system:masters is cluster-admin",
        ("impersonate",),
        (("", "users"), ("", "groups"), ("", "serviceaccounts")),
    ),
    Check(
        "escalate",
        "escalate roles",
        "edit a role to hold rights it does not have itself",
        ("escalate",),
        ((RBAC_GROUP, "roles"), (RBAC_GROUP, "clusterroles")),
    ),
    Check(
        "bind",
        "bind roles",
        "grant any role it can name (cluster-admin included) when it may also create bindings",
        ("bind",),
        ((RBAC_GROUP, "roles"), (RBAC_GROUP, "clusterroles")),
    ),
    Check(
        "write-bindings",
        "create or change role bindings",
        "with bind or escalate, give itself or anyone any right",
        ("create", "update", "patch"),
        ((RBAC_GROUP, "rolebindings"), (RBAC_GROUP, "clusterrolebindings")),
    ),
    Check(
        "csr-approve",
        "approve certificate signing requests",
        "sign a client certificate for any user or group, system:masters included",
        ("update", "patch", "approve"),
        (
            ("certificates.k8s.io", "certificatesigningrequests/approval"),
            ("certificates.k8s.io", "signers"),
        ),
    ),
    Check(
        "webhooks",
        "write admission webhook configurations",
        "see and rewrite every object sent to the API server, Secrets and pods included",
        ("create", "update", "patch"),
        (
            ("admissionregistration.k8s.io", "mutatingwebhookconfigurations"),
            ("admissionregistration.k8s.io", "validatingwebhookconfigurations"),
        ),
    ),
    Check(
        "nodes-proxy",
        "nodes/proxy",
        "the kubelet API: run commands in any pod of the node, unaudited by the API server",
        ("get", "create"),
        (("", "nodes/proxy"),),
    ),
    Check(
        "sa-token",
        "create service account tokens",
        "mint a token for any service account there and act as it",
        ("create",),
        (("", "serviceaccounts/token"),),
    ),
    Check(
        "create-pods",
        "create pods",
        "run any image as any service account of the namespace and mount its Secrets; "
        "a privileged pod takes its node (kube-system: the controllers' accounts)",
        ("create",),
        (("", "pods"),),
    ),
    Check(
        "workloads",
        "create or change workloads",
        "the same as creating pods, through a controller",
        ("create", "update", "patch"),
        WORKLOADS[1:],
    ),
    Check(
        "exec",
        "pods/exec",
        "run commands in running pods, with their tokens and mounted Secrets",
        ("create", "get"),
        (("", "pods/exec"),),
    ),
    Check(
        "attach",
        "pods/attach",
        "attach to running containers' processes",
        ("create", "get"),
        (("", "pods/attach"),),
    ),
    Check(
        "secrets",
        "read secrets",
        "passwords, keys and service account tokens",
        ("get", "list", "watch"),
        (("", "secrets"),),
    ),
)
_ORDER = {c.key: i for i, c in enumerate(CHECKS)}


@dataclass(frozen=True, slots=True)
class Right:
    """A right an identity holds, where, why it matters, and what grants it."""

    key: str
    title: str
    why: str
    where: tuple[str, ...]  # namespaces; ALL first when cluster-wide
    names: tuple[str, ...] = ()  # only these objects (resourceNames); () = any
    cites: tuple[str, ...] = ()
    dangerous: bool = True

    @property
    def cluster_wide(self) -> bool:
        return ALL in self.where

    @property
    def critical(self) -> bool:
        return self.cluster_wide or "kube-system" in self.where

    def where_text(self) -> str:
        if self.cluster_wide:
            return "cluster-wide"
        names = list(self.where[:MAX_WHERE])
        more = len(self.where) - len(names)
        text = "in " + ", ".join(names)
        return text + (f" and {more} more" if more > 0 else "")


def _where(grants: Sequence[Grant], cluster_scoped: bool) -> tuple[str, ...]:
    spots = {g.namespace for g in grants if not cluster_scoped or g.namespace == ALL}
    if ALL in spots:
        return (ALL,)
    return tuple(sorted(spots, key=lambda n: (n != "kube-system", n)))


def rights_of(grants: Sequence[Grant], cite_from: Sequence[Grant] = ()) -> list[Right]:
    """Dangerous rights first (cluster-wide and kube-system before the rest), then
    wildcards and anything else cluster-wide. Citations come from `cite_from` when
    given (the RBAC objects behind a SelfSubjectRulesReview's answer)."""
    rights: list[Right] = []
    citing = list(cite_from) or list(grants)
    admin = [g for g in grants if g.everything and g.namespace == ALL]
    if admin:
        cites = [g.source for g in citing if g.everything and g.namespace == ALL] or [
            g.source for g in admin
        ]
        rights.append(
            Right(
                "cluster-admin",
                "everything (cluster-admin)",
                "every verb on every resource: the whole cluster is in the blast radius",
                (ALL,),
                cites=_cites(cites),
            )
        )
    used: set[Grant] = set()
    for check in CHECKS:
        hits: list[Grant] = []
        for group, resource in check.targets:
            # Under cluster-admin, list only what other bindings grant too.
            hits += [
                g
                for g in grants
                if not (admin and g.everything) and g.matches(check.verbs, group, resource)
            ]
        if not hits:
            continue
        scoped = all(r in CLUSTER_SCOPED for _, r in check.targets)
        where = _where(hits, scoped)
        if not where:
            continue
        used.update(hits)
        cite_hits = [
            g.source
            for g in citing
            for group, resource in check.targets
            if not (admin and g.everything) and g.matches(check.verbs, group, resource)
        ]
        names: tuple[str, ...] = ()
        if all(g.resource_names for g in hits):
            names = tuple(sorted({n for g in hits for n in g.resource_names}))
        rights.append(Right(check.key, check.title, check.why, where, names, _cites(cite_hits)))
    wild = [g for g in grants if g.wildcard and not (admin and g.everything)]
    if wild:
        rights.append(
            Right(
                "wildcard",
                "wildcard rules",
                "`*` grants every verb or resource, today's and tomorrow's",
                _where(wild, False),
                cites=_cites(g.source for g in wild),
            )
        )
    other = [g for g in grants if g.namespace == ALL and g not in used and not g.wildcard]
    if other:
        what = sorted({r for g in other for r in g.resources})
        shown_what = ", ".join(what[:8]) + (f" and {len(what) - 8} more" if len(what) > 8 else "")
        rights.append(
            Right(
                "cluster-wide",
                f"other cluster-wide rights ({shown_what})",
                "they hold in every namespace, present and future",
                (ALL,),
                cites=_cites(g.source for g in other),
                dangerous=False,
            )
        )
    rights.sort(key=lambda r: (not r.dangerous, not r.critical, _ORDER.get(r.key, -1)))
    return rights


def _cites(sources: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(sources))[:MAX_CITES]


def _allowing(
    grants: Sequence[Grant], verbs: Iterable[str], targets: Iterable[tuple[str, str]]
) -> dict[str, Grant]:
    """Namespace (ALL: cluster-wide) -> the first grant allowing one of `targets` there."""
    out: dict[str, Grant] = {}
    verbs = tuple(verbs)
    for group, resource in targets:
        for g in grants:
            if g.namespace not in out and g.matches(verbs, group, resource):
                if resource in CLUSTER_SCOPED and g.namespace != ALL:
                    continue
                out[g.namespace] = g
    return out


# ---------------------------------------------------------------- results


@dataclass(slots=True)
class IdentityBlast:
    identity: Identity
    method: str
    rights: list[Right] = field(default_factory=list)
    not_seen: list[str] = field(default_factory=list)

    @property
    def cluster_admin(self) -> bool:
        return any(r.key == "cluster-admin" for r in self.rights)


@dataclass(slots=True)
class PodBlast:
    namespace: str
    name: str
    found: bool = True
    node: str = ""
    service_account: str = ""
    token: str = ""  # how the token is mounted, or why not
    secrets: list[tuple[str, str]] = field(default_factory=list)  # (secret, how)
    host_access: list[str] = field(default_factory=list)
    neighbours: list[tuple[str, str]] = field(default_factory=list)  # (pod, service account)
    neighbour_count: int = 0
    ingress: list[str] = field(default_factory=list)
    egress: list[str] = field(default_factory=list)
    open_to_ingress: int = 0  # other pods that accept ingress from anywhere
    other_pods: int = 0


@dataclass(frozen=True, slots=True)
class Step:
    text: str
    cite: str


@dataclass(frozen=True, slots=True)
class Path:
    start: str
    goal: str
    steps: tuple[Step, ...]


@dataclass(slots=True)
class BlastResult:
    identities: list[IdentityBlast] = field(default_factory=list)
    pods: list[PodBlast] = field(default_factory=list)
    paths: list[Path] = field(default_factory=list)
    not_seen: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    elapsed: float = 0.0


# ---------------------------------------------------------------- pods


def _pod_index(view: ClusterView) -> dict[tuple[str, str], Mapping[str, Any]]:
    out: dict[tuple[str, str], Mapping[str, Any]] = {}
    for pod in view.pods:
        meta = _meta(pod)
        out[(_str(meta.get("namespace")), _str(meta.get("name")))] = pod
    return out


def _sa_of(pod: Mapping[str, Any]) -> str:
    spec = _dict(pod.get("spec"))
    return _str(spec.get("serviceAccountName")) or _str(spec.get("serviceAccount")) or "default"


def _containers(spec: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    out = []
    for key in ("initContainers", "containers", "ephemeralContainers"):
        out += [_dict(c) for c in _list(spec.get(key))]
    return out


def _token_mount(pod: Mapping[str, Any], sas: Mapping[tuple[str, str], Mapping[str, Any]]) -> str:
    spec = _dict(pod.get("spec"))
    ns = _str(_meta(pod).get("namespace"))
    sa = _sa_of(pod)
    projected = [
        _str(_dict(v).get("name"))
        for v in _list(spec.get("volumes"))
        if any(
            "serviceAccountToken" in _dict(s)
            for s in _list(_dict(_dict(v).get("projected")).get("sources"))
        )
    ]
    if projected:
        return f"mounted (projected volume {', '.join(projected)})"
    auto = spec.get("automountServiceAccountToken")
    if auto is False:
        return "not mounted (automountServiceAccountToken: false on the pod)"
    if auto is None and _dict(sas.get((ns, sa))).get("automountServiceAccountToken") is False:
        return f"not mounted (automountServiceAccountToken: false on ServiceAccount {sa})"
    return "mounted"


def _pod_secrets(pod: Mapping[str, Any]) -> list[tuple[str, str]]:
    spec = _dict(pod.get("spec"))
    out: list[tuple[str, str]] = []
    for volume in _list(spec.get("volumes")):
        volume = _dict(volume)
        vname = _str(volume.get("name"))
        secret = _str(_dict(volume.get("secret")).get("secretName"))
        if secret:
            out.append((secret, f"volume {vname}"))
        for source in _list(_dict(volume.get("projected")).get("sources")):
            secret = _str(_dict(_dict(source).get("secret")).get("name"))
            if secret:
                out.append((secret, f"projected volume {vname}"))
    for container in _containers(spec):
        cname = _str(container.get("name"))
        for env_from in _list(container.get("envFrom")):
            secret = _str(_dict(_dict(env_from).get("secretRef")).get("name"))
            if secret:
                out.append((secret, f"all keys as environment of container {cname}"))
        for env in _list(container.get("env")):
            env = _dict(env)
            ref = _dict(_dict(env.get("valueFrom")).get("secretKeyRef"))
            if _str(ref.get("name")):
                out.append(
                    (
                        _str(ref.get("name")),
                        f"key {_str(ref.get('key'))} as ${_str(env.get('name'))} in {cname}",
                    )
                )
    for pull in _list(spec.get("imagePullSecrets")):
        secret = _str(_dict(pull).get("name"))
        if secret:
            out.append((secret, "image pull secret"))
    return list(dict.fromkeys(out))


def _host_access(pod: Mapping[str, Any]) -> list[str]:
    spec = _dict(pod.get("spec"))
    out = [
        f"{key} (shares the node's namespace)"
        for key in ("hostPID", "hostIPC", "hostNetwork")
        if spec.get(key) is True
    ]
    for container in _containers(spec):
        ctx = _dict(container.get("securityContext"))
        cname = _str(container.get("name"))
        if ctx.get("privileged") is True:
            out.append(f"container {cname} is privileged")
        added = {a.upper() for a in _strs(_dict(ctx.get("capabilities")).get("add"))}
        for cap in sorted(
            added & {"SYS_ADMIN", "SYS_PTRACE", "SYS_MODULE", "ALL", "DAC_READ_SEARCH"}
        ):
            out.append(f"container {cname} adds capability {cap}")
    for volume in _list(spec.get("volumes")):
        volume = _dict(volume)
        path = _str(_dict(volume.get("hostPath")).get("path"))
        if path:
            out.append(f"hostPath {path} (volume {_str(volume.get('name'))})")
    return out


def _policies_by_namespace(
    view: ClusterView, kind: str = "network_policies"
) -> dict[str, list[Mapping[str, Any]]]:
    out: dict[str, list[Mapping[str, Any]]] = {}
    for policy in getattr(view, kind):
        if isinstance(policy, Mapping):
            out.setdefault(_str(_meta(policy).get("namespace")), []).append(policy)
    return out


def _labels(pod: Mapping[str, Any]) -> dict[str, str]:
    labels = _dict(_meta(pod).get("labels"))
    return {k: v for k, v in labels.items() if isinstance(k, str) and isinstance(v, str)}


def pod_blast(
    view: ClusterView,
    namespace: str,
    name: str,
    *,
    pods: Mapping[tuple[str, str], Mapping[str, Any]] | None = None,
    policies: Mapping[str, list[Mapping[str, Any]]] | None = None,
) -> PodBlast:
    pods = pods if pods is not None else _pod_index(view)
    policies = policies if policies is not None else _policies_by_namespace(view)
    out = PodBlast(namespace, name)
    pod = pods.get((namespace, name))
    if pod is None:
        out.found = False
        return out
    spec = _dict(pod.get("spec"))
    sas = {
        (_str(_meta(s).get("namespace")), _str(_meta(s).get("name"))): s
        for s in view.service_accounts
    }
    out.node = _str(spec.get("nodeName"))
    out.service_account = _sa_of(pod)
    out.token = _token_mount(pod, sas)
    out.secrets = _pod_secrets(pod)
    out.host_access = _host_access(pod)
    if out.host_access and out.node:
        for (ns, pname), other in pods.items():
            if (ns, pname) == (namespace, name):
                continue
            if _str(_dict(other.get("spec")).get("nodeName")) == out.node:
                out.neighbour_count += 1
                if len(out.neighbours) < MAX_NEIGHBOURS:
                    out.neighbours.append((f"{ns}/{pname}", f"{ns}/{_sa_of(other)}"))
    if "networkpolicies" in view.seen:
        _network(out, view, pod, pods, policies, spec)
    else:
        out.ingress.append("NetworkPolicies could not be read: reachability unknown")
    return out


def _network(
    out: PodBlast,
    view: ClusterView,
    pod: Mapping[str, Any],
    pods: Mapping[tuple[str, str], Mapping[str, Any]],
    policies: Mapping[str, list[Mapping[str, Any]]],
    spec: Mapping[str, Any],
) -> None:
    ns = out.namespace
    labels = _labels(pod)
    evaluation = netpol.evaluate(labels, ns, policies.get(ns, ()))
    host_network = spec.get("hostNetwork") is True
    if host_network:
        out.ingress.append("hostNetwork: NetworkPolicies do not apply; it is the node's network")
    # Why the policies that select the pod may not hold, whatever they say.
    enforcing = view.enforcing
    caveats: list[str] = []
    if host_network:
        caveats.append("NetworkPolicies do not apply to a hostNetwork pod")
    elif enforcing is None:
        caveats.append(
            "whether a network plugin enforces NetworkPolicy was not checked: "
            "policies may not be enforced"
        )
    elif not enforcing:
        caveats.append(
            "no NetworkPolicy-enforcing network plugin was seen: policies may not be enforced"
        )
    caveats += [
        f"{what} could not be read: they may allow traffic" for what in view.policies_unread
    ]
    cilium = [p for p in view.cilium_policies if _meta(p).get("namespace") == ns]
    calico = [p for p in view.calico_policies if _meta(p).get("namespace") == ns]
    # Every policy kind that governs the pod, judged as the isolate action judges it.
    verdict = netverdict.judge(
        labels, ns, netpols=policies.get(ns, ()), cilium=cilium, calico=calico
    )
    what = (
        "no NetworkPolicy"
        if not (evaluation.verdicts or cilium or calico)
        else ("no NetworkPolicy selecting it")
    )
    for direction, lines, side in (
        (netpol.INGRESS, out.ingress, "anything in or outside the cluster may connect to it"),
        (
            netpol.EGRESS,
            out.egress,
            "it may connect anywhere: other namespaces, the API server, the internet",
        ),
    ):
        side = f"{what} isolates it: {side}"
        k8s = [f"NetworkPolicy {v.name}" for v in evaluation.selecting if direction in v.types]
        lines += _direction_lines(direction, verdict, k8s, side, caveats, enforcing)
    # A policy that cannot be read may select the pod and allow anything: said, once.
    out.ingress += [v.describe() for v in evaluation.verdicts if v.error]
    # Who else accepts connections from anywhere (a policy-free target for this pod).
    cache: dict[tuple[str, tuple[Any, ...]], bool] = {}
    for (other_ns, other_name), other in pods.items():
        if (other_ns, other_name) == (ns, out.name):
            continue
        out.other_pods += 1
        other_labels = _labels(other)
        key = (other_ns, tuple(sorted(other_labels.items())))
        if key not in cache:
            ev = netpol.evaluate(other_labels, other_ns, policies.get(other_ns, ()))
            cache[key] = not ev.isolated(netpol.INGRESS)
        out.open_to_ingress += cache[key]


_UNREADABLE = "could not be evaluated"


def _policies_words(labels: Sequence[str]) -> str:
    """`NetworkPolicy a, b; CiliumNetworkPolicy c`: plain NetworkPolicies named once."""
    plain = [x.removeprefix("NetworkPolicy ") for x in labels if x.startswith("NetworkPolicy ")]
    other = [x for x in labels if not x.startswith("NetworkPolicy ")]
    return "; ".join(([f"NetworkPolicy {', '.join(plain)}"] if plain else []) + other)


def _direction_lines(
    direction: str,
    verdict: netverdict.NetworkVerdict,
    k8s: Sequence[str],
    side: str,
    caveats: Sequence[str],
    enforcing: Mapping[str, str] | None,
) -> list[str]:
    """What the policies that govern the pod make of one direction. "Isolated" only when
    a policy closes it, none lets anything through, none is unreadable, and a plugin
    that enforces NetworkPolicy was seen."""
    word = direction.lower()
    closed_by = verdict.closed.get(direction)
    if closed_by is None:
        return [f"{word}: {side}"]
    openings = [o for o in verdict.openings if o.direction == direction]
    unreadable = [o.policy for o in openings if _UNREADABLE in o.text]
    allowed = [o for o in openings if _UNREADABLE not in o.text]
    # A deny that wins over every allow closes it alone; otherwise every closing policy.
    closers = [closed_by] if direction in verdict.denied else [*dict.fromkeys([*k8s, closed_by])]
    names = _policies_words(closers)
    but = [*caveats]
    if unreadable:
        but.append(f"{_policies_words(unreadable)} could not be evaluated: it may allow traffic")
    # Allowances from or to anywhere first: the headline names the widest one.
    allowed.sort(key=lambda o: not (" from anywhere " in o.text or " to anywhere " in o.text))
    tail = "; " + "; ".join(but) if but else ""
    if allowed and (" from anywhere " in allowed[0].text or " to anywhere " in allowed[0].text):
        head = f"{word}: policies select it ({names}), but {allowed[0].text}"
        return [head + tail] + [o.text for o in allowed[1:]]
    if allowed:
        they = "they allow" if len(closers) > 1 else "it allows"
        return [f"{word}: limited by {names} to what {they}{tail}"] + [o.text for o in allowed]
    if but:
        it = "select it and allow" if len(closers) > 1 else "selects it and allows"
        return [f"{word}: {names} {it} nothing, but {'; '.join(but)}"]
    by = ", ".join(enforcing or {})
    return [
        f"{word}: isolated by {names}; nothing allowed" + (f" (enforced by {by})" if by else "")
    ]


# ---------------------------------------------------------------- paths


@dataclass(slots=True)
class _Search:
    view: ClusterView
    index: RbacIndex
    grants_of: dict[str, list[Grant]]
    sas_by_ns: dict[str, list[str]]
    running_sas: dict[str, list[str]]  # namespace -> service accounts with a pod there
    token_secrets: dict[str, list[tuple[str, str]]]  # namespace -> (secret, service account)
    overrides: dict[str, list[Grant]] = field(default_factory=dict)

    def grants(self, identity: Identity) -> list[Grant]:
        if identity.user in self.overrides:
            return self.overrides[identity.user]
        if identity.user not in self.grants_of:
            self.grants_of[identity.user] = self.index.grants(identity)
        return self.grants_of[identity.user]

    def goals(self, identity: Identity, home: str) -> list[tuple[str, Step]]:
        """Where this identity already is: cluster-admin, or another namespace's Secrets."""
        grants = self.grants(identity)
        out: list[tuple[str, Step]] = []
        for g in grants:
            if g.everything and g.namespace == ALL:
                out.append(("cluster-admin", Step("has every right cluster-wide", g.source)))
                return out
        bind = _allowing(grants, ("bind",), ((RBAC_GROUP, "clusterroles"),)).get(ALL)
        crb = _allowing(grants, ("create",), ((RBAC_GROUP, "clusterrolebindings"),)).get(ALL)
        if bind is not None and crb is not None and _names_ok(bind, "cluster-admin"):
            out.append(
                (
                    "cluster-admin",
                    Step(
                        "may create ClusterRoleBindings and bind ClusterRole cluster-admin: "
                        "binds itself to cluster-admin",
                        f"{crb.source}; {bind.source}" if crb.source != bind.source else crb.source,
                    ),
                )
            )
        esc = _allowing(grants, ("escalate",), ((RBAC_GROUP, "clusterroles"),)).get(ALL)
        upd = _allowing(grants, ("update", "patch"), ((RBAC_GROUP, "clusterroles"),)).get(ALL)
        if esc is not None and upd is not None:
            out.append(
                (
                    "cluster-admin",
                    Step("may escalate and edit ClusterRoles: grants itself '*'", esc.source),
                )
            )
        imp = _allowing(grants, ("impersonate",), (("", "groups"),)).get(ALL)
        if imp is not None and _names_ok(imp, MASTERS):
            out.append(
                ("cluster-admin", Step("may impersonate the group system:masters", imp.source))
            )
        approve = _allowing(
            grants,
            ("update", "patch"),
            (("certificates.k8s.io", "certificatesigningrequests/approval"),),
        ).get(ALL)
        signer = _allowing(grants, ("approve",), (("certificates.k8s.io", "signers"),)).get(ALL)
        if approve is not None and signer is not None:
            out.append(
                (
                    "cluster-admin",
                    Step(
                        "may approve its own CSR for a client certificate in system:masters",
                        approve.source,
                    ),
                )
            )
        secrets = _allowing(grants, ("get", "list"), (("", "secrets"),))
        for ns, g in sorted(secrets.items(), key=lambda kv: kv[0] != ALL):
            if ns == ALL:
                out.append(
                    ("Secrets of every namespace", Step("may read Secrets cluster-wide", g.source))
                )
                break
            if ns != home:
                out.append(
                    (f"Secrets of namespace {ns}", Step(f"may read Secrets in {ns}", g.source))
                )
        return out

    def moves(self, identity: Identity) -> list[tuple[Identity, Step]]:
        """Identities this one can become, each with the step that allows it."""
        grants = self.grants(identity)
        out: list[tuple[Identity, Step]] = []
        all_ns = list(self.sas_by_ns)

        def spread(allowed: Mapping[str, Grant], pick: Mapping[str, list[str]], text: str) -> None:
            spots = all_ns if ALL in allowed else list(allowed)
            for ns in sorted(spots, key=lambda n: (n != "kube-system", n)):
                g = allowed.get(ns) or allowed[ALL]
                for sa in pick.get(ns, ()):
                    step = Step(text.format(ns=ns, sa=sa), g.source)
                    out.append((Identity.service_account(ns, sa), step))

        create = _allowing(grants, ("create",), WORKLOADS)
        spread(
            create,
            self.sas_by_ns,
            "may create pods in {ns}: runs a pod as ServiceAccount {ns}/{sa}",
        )
        token = _allowing(grants, ("create",), (("", "serviceaccounts/token"),))
        spread(token, self.sas_by_ns, "may create a token for ServiceAccount {ns}/{sa}")
        imp = _allowing(grants, ("impersonate",), (("", "serviceaccounts"),))
        spread(imp, self.sas_by_ns, "may impersonate ServiceAccount {ns}/{sa}")
        execs = _allowing(grants, ("create", "get"), (("", "pods/exec"),))
        spread(
            execs,
            self.running_sas,
            "may exec into pods in {ns}: takes the token of ServiceAccount {ns}/{sa}",
        )
        proxy = _allowing(grants, ("get", "create"), (("", "nodes/proxy"),))
        spread(
            proxy,
            self.running_sas,
            "may use nodes/proxy: runs commands in a pod of ServiceAccount {ns}/{sa}",
        )
        secrets = _allowing(grants, ("get", "list"), (("", "secrets"),))
        spread(
            secrets,
            {ns: [sa for _, sa in v] for ns, v in self.token_secrets.items()},
            "may read the token Secret of ServiceAccount {ns}/{sa}",
        )
        return out


def _names_ok(grant: Grant, name: str) -> bool:
    return not grant.resource_names or name in grant.resource_names


def find_paths(
    search: _Search, starts: Sequence[tuple[str, Identity, tuple[Step, ...], str]]
) -> list[Path]:
    """Breadth-first from each start (label, identity, steps so far, home namespace),
    shortest chains first, cluster-admin before Secrets, at most MAX_PATHS."""
    found: list[Path] = []
    goals_seen: set[tuple[str, str]] = set()
    queue: deque[tuple[str, Identity, tuple[Step, ...], str]] = deque(starts)
    visited: set[str] = set()
    while queue and len(visited) < MAX_SEARCH:
        label, ident, steps, home = queue.popleft()
        if ident.user in visited:
            continue
        visited.add(ident.user)
        for goal, step in search.goals(ident, home):
            if (label, goal) in goals_seen:
                continue
            goals_seen.add((label, goal))
            found.append(Path(label, goal, (*steps, step)))
        if len(steps) + 1 >= MAX_DEPTH:
            continue
        for nxt, step in search.moves(ident):
            if nxt.user not in visited:
                queue.append((label, nxt, (*steps, step), home))
    found.sort(key=lambda p: (p.goal != "cluster-admin", len(p.steps)))
    picked: list[Path] = []
    for path in found:
        if len(picked) >= MAX_PATHS:
            break
        picked.append(path)
    return picked


# ---------------------------------------------------------------- the whole computation


def compute(
    view: ClusterView,
    identities: Sequence[Identity],
    pods: Sequence[tuple[str, str]],
    *,
    reviews: Mapping[str, Mapping[str, Mapping[str, Any]]] | None = None,
    review_problems: Mapping[str, str] | None = None,
) -> BlastResult:
    """The blast radius of these identities and pods.

    `reviews`: user -> namespace -> SelfSubjectRulesReview status, for the
    identities ktriage could impersonate; `review_problems`: user -> why it could not.
    """
    reviews = reviews or {}
    review_problems = review_problems or {}
    result = BlastResult(not_seen=list(view.not_seen))
    index = RbacIndex(view)
    rbac_seen = {"clusterroles", "clusterrolebindings", "roles", "rolebindings"} <= view.seen
    missing_rbac = sorted(
        {"clusterroles", "clusterrolebindings", "roles", "rolebindings"} - view.seen
    )
    overrides: dict[str, list[Grant]] = {}
    for ident in identities[:MAX_TARGETS]:
        rbac_grants = index.grants(ident)
        blast = IdentityBlast(ident, "")
        if not ident.groups_known:
            blast.not_seen.append(
                "the user's groups are unknown: only its own bindings and "
                "system:authenticated's are counted"
            )
        review = reviews.get(ident.user)
        if review:
            grants, notes = grants_from_reviews(ident, review)
            overrides[ident.user] = grants
            blast.method = (
                f"SelfSubjectRulesReview while impersonating {ident.user} "
                f"in {len(review)} namespace(s)"
                + ("; bindings cited from the RBAC objects" if rbac_seen else "")
            )
            blast.not_seen += notes
            blast.rights = rights_of(grants, rbac_grants if rbac_seen else ())
        else:
            blast.method = "evaluated from the Roles, ClusterRoles and bindings ktriage can read"
            problem = review_problems.get(ident.user)
            if problem:
                blast.not_seen.append(f"SelfSubjectRulesReview not used: {problem}")
            if missing_rbac:
                blast.not_seen.append(
                    "rights may be missing: could not read " + ", ".join(missing_rbac)
                )
            blast.rights = rights_of(rbac_grants)
        result.identities.append(blast)
    pod_index = _pod_index(view)
    policies = _policies_by_namespace(view)
    for ns, name in pods[:MAX_TARGETS]:
        result.pods.append(pod_blast(view, ns, name, pods=pod_index, policies=policies))
    if pods and view.enforcing is not None and not view.enforcing and view.enforcement_warning:
        # The isolate dialog's own sentence: what was looked at, and for what.
        result.not_seen.append(view.enforcement_warning)
    # The search cites objects: it uses the reviews' answers only when it cannot read them.
    result.paths = find_paths(
        _make_search(view, index, pod_index, {} if rbac_seen else overrides),
        _starts(result, identities),
    )
    result.notes = list(dict.fromkeys(index.problems))[:20]
    return result


def _make_search(
    view: ClusterView,
    index: RbacIndex,
    pods: Mapping[tuple[str, str], Mapping[str, Any]],
    overrides: dict[str, list[Grant]],
) -> _Search:
    sas_by_ns: dict[str, list[str]] = {ns: [] for ns in view.namespaces}
    for sa in view.service_accounts:
        meta = _meta(sa)
        sas_by_ns.setdefault(_str(meta.get("namespace")), []).append(_str(meta.get("name")))
    running: dict[str, list[str]] = {}
    for (ns, _), pod in pods.items():
        running.setdefault(ns, [])
        sa_name = _sa_of(pod)
        if sa_name not in running[ns]:
            running[ns].append(sa_name)
        if sa_name not in sas_by_ns.setdefault(ns, []):
            sas_by_ns[ns].append(sa_name)
    tokens: dict[str, list[tuple[str, str]]] = {}
    for secret in view.secrets:
        if _str(secret.get("type")) != "kubernetes.io/service-account-token":
            continue
        meta = _meta(secret)
        owner = _str(_dict(meta.get("annotations")).get("kubernetes.io/service-account.name"))
        if owner:
            ns = _str(meta.get("namespace"))
            tokens.setdefault(ns, []).append((_str(meta.get("name")), owner))
    return _Search(view, index, {}, sas_by_ns, running, tokens, overrides)


def _starts(
    result: BlastResult, identities: Sequence[Identity]
) -> list[tuple[str, Identity, tuple[Step, ...], str]]:
    starts: list[tuple[str, Identity, tuple[Step, ...], str]] = []
    for pod in result.pods:
        if not pod.found:
            continue
        label = f"Pod {pod.namespace}/{pod.name}"
        if pod.token.startswith("mounted"):
            sa = Identity.service_account(pod.namespace, pod.service_account)
            step = Step(
                f"mounts the token of ServiceAccount {pod.namespace}/{pod.service_account}",
                f"Pod {pod.namespace}/{pod.name} (spec.serviceAccountName)",
            )
            starts.append((label, sa, (step,), pod.namespace))
    for ident in identities[:MAX_TARGETS]:
        home = ident.sa[0] if ident.sa else ""
        starts.append((ident.label, ident, (), home))
    return starts


# ---------------------------------------------------------------- rendering


def _t(text: object) -> str:
    return clip(shown(text), NAME_WIDTH * 3)


def render_lines(result: BlastResult) -> list[str]:
    """The blast radius as plain lines of safe text (untrusted names escaped)."""
    lines: list[str] = []
    lines.append("PATHS to cluster-admin or another namespace's Secrets")
    if not result.paths:
        lines.append("  none found within 3 steps (in what ktriage could see)")
    for i, path in enumerate(result.paths, 1):
        lines.append(f"  {i}. {_t(path.start)} ⇒ {_t(path.goal)}")
        for step in path.steps:
            lines.append(f"     → {_t(step.text)}")
            lines.append(f"       by {_t(step.cite)}")
    for blast in result.identities:
        lines.append("")
        admin = "  [cluster-admin]" if blast.cluster_admin else ""
        lines.append(f"IDENTITY {_t(blast.identity.label)}{admin}")
        lines.append(f"  method: {_t(blast.method)}")
        for note in blast.not_seen:
            lines.append(f"  not seen: {_t(note)}")
        if not blast.rights:
            lines.append("  no dangerous rights found")
        for right in blast.rights:
            mark = (
                "!!" if right.critical and right.dangerous else ("! " if right.dangerous else "  ")
            )
            names = f" (only {', '.join(_t(n) for n in right.names[:8])})" if right.names else ""
            lines.append(f"  {mark} {_t(right.title)} {_t(right.where_text())}{names}")
            lines.append(f"       why: {_t(right.why)}")
            for cite in right.cites:
                lines.append(f"       by {_t(cite)}")
    for pod in result.pods:
        lines.append("")
        lines.append(f"POD {_t(pod.namespace)}/{_t(pod.name)}")
        if not pod.found:
            lines.append("  not found in the cluster (deleted, or not readable)")
            continue
        lines.append(f"  node: {_t(pod.node or 'not scheduled')}")
        lines.append(f"  service account token: {_t(pod.service_account)}, {_t(pod.token)}")
        if pod.secrets:
            for secret, how in pod.secrets:
                lines.append(f"  secret {_t(secret)}: {_t(how)}")
        else:
            lines.append("  mounts no Secret")
        if pod.host_access:
            lines.append("  reaches its node: " + "; ".join(_t(h) for h in pod.host_access))
            lines.append(
                f"  node {_t(pod.node)} is in the blast radius: "
                f"{pod.neighbour_count} other pod(s) and their tokens"
            )
            for other, sa in pod.neighbours:
                lines.append(f"    {_t(other)}  (ServiceAccount {_t(sa)})")
            if pod.neighbour_count > len(pod.neighbours):
                lines.append(f"    … and {pod.neighbour_count - len(pod.neighbours)} more")
        else:
            lines.append("  no host access (not privileged, no host namespaces, no hostPath)")
        for line in pod.ingress + pod.egress:
            lines.append(f"  {_t(line)}")
        if pod.other_pods:
            lines.append(
                f"  {pod.open_to_ingress} of {pod.other_pods} other pods accept ingress "
                "from anywhere (no policy isolates them)"
            )
    if result.not_seen or result.notes:
        lines.append("")
        lines.append("NOT SEEN")
        for note in result.not_seen:
            lines.append(f"  {_t(note)}")
        for note in result.notes:
            lines.append(f"  {_t(note)}")
    return lines


def render_markdown(result: BlastResult) -> str:
    """A `## Blast radius` section for a snapshot (untrusted names escaped)."""
    e = md_escape
    out = ["## Blast radius", ""]
    if result.elapsed:
        out += [f"Computed in {result.elapsed:.2f} s from the live cluster (read only).", ""]
    out += ["### Paths", ""]
    if not result.paths:
        out.append("None found within 3 steps.")
    for path in result.paths:
        out.append(f"- **{e(path.start)} ⇒ {e(path.goal)}**")
        for step in path.steps:
            out.append(f"  - {e(step.text)} (by {e(step.cite)})")
    for blast in result.identities:
        out += ["", f"### {e(blast.identity.label)}", "", f"Method: {e(blast.method)}.", ""]
        for note in blast.not_seen:
            out.append(f"- Not seen: {e(note)}")
        for right in blast.rights:
            flag = "**" if right.critical and right.dangerous else ""
            names = f" (only {', '.join(e(n) for n in right.names[:8])})" if right.names else ""
            cites = "; ".join(e(c) for c in right.cites)
            out.append(
                f"- {flag}{e(right.title)} {e(right.where_text())}{flag}{names}: "
                f"{e(right.why)}" + (f" (by {cites})" if cites else "")
            )
    for pod in result.pods:
        out += ["", f"### Pod {e(pod.namespace)}/{e(pod.name)}", ""]
        if not pod.found:
            out.append("Not found in the cluster.")
            continue
        out.append(f"- Node: {e(pod.node or 'not scheduled')}")
        out.append(f"- Service account token: {e(pod.service_account)}, {e(pod.token)}")
        for secret, how in pod.secrets:
            out.append(f"- Secret {e(secret)}: {e(how)}")
        if pod.host_access:
            out.append("- Reaches its node: " + "; ".join(e(h) for h in pod.host_access))
            others = ", ".join(e(p) for p, _ in pod.neighbours)
            out.append(f"- Node {e(pod.node)}: {pod.neighbour_count} other pod(s): {others}")
        for line in pod.ingress + pod.egress:
            out.append(f"- {e(line)}")
    if result.not_seen or result.notes:
        out += ["", "### Not seen", ""]
        out += [f"- {e(n)}" for n in [*result.not_seen, *result.notes]]
    return "\n".join(out) + "\n"
