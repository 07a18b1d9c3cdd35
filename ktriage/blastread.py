"""Reading what the blast radius needs from the live cluster: read only, bounded.

With the official client (an ApiClient from the app's factory), in threads:
the RBAC objects, ServiceAccounts, pods, NetworkPolicies and Secrets' metadata
(as PartialObjectMetadataList: Secret values never leave the server), each
list paginated and bounded in time. A 403 is recorded as "not seen" and the
rest goes on. Then, per identity, SelfSubjectRulesReview in each namespace with
`Impersonate-User` on a dedicated ApiClient (the server adds a service
account's groups itself); where impersonation is forbidden, the RBAC objects
are evaluated instead (`core.blast` says which method was used).

The reviews are cached per identity and reused while the RBAC objects are
unchanged: every computation lists them again (cheap) and compares each
object's resourceVersion.

Whether NetworkPolicy is enforced at all is judged as the isolate action judges
it (`actions.netplugins.classify`): from the DaemonSets of every namespace (or,
without that permission, the pods of kube-system and calico-system) and the API
groups served. The blast radius then never calls a pod isolated that nothing is
seen to isolate.

Secrets are not listed unless asked (`read_secrets=True`): a cluster-wide list of
Secrets, even of their names, is what audit-log detections look for, and the
responder's own tool should not raise an incident of its own.
"""

from __future__ import annotations

import contextlib
import functools
import json
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Any

from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from ktriage.actions.netplugins import POD_NAMESPACES, classify
from ktriage.core import blast
from ktriage.kubeclient import USER_AGENT, KeptClient, status_message

PAGE = 500
MAX_ITEMS = 50_000  # per kind: a bigger list is cut, and said so
MAX_NAMESPACES = 64  # reviewed per identity
WORKERS = 8
REVIEW_TTL = 60.0  # seconds cached reviews hold when RBAC objects cannot be read
PARTIAL = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"

# kind -> (API class, list method, metadata only)
LISTS: dict[str, tuple[str, str, bool]] = {
    "clusterroles": ("RbacAuthorizationV1Api", "list_cluster_role", False),
    "clusterrolebindings": ("RbacAuthorizationV1Api", "list_cluster_role_binding", False),
    "roles": ("RbacAuthorizationV1Api", "list_role_for_all_namespaces", False),
    "rolebindings": ("RbacAuthorizationV1Api", "list_role_binding_for_all_namespaces", False),
    "serviceaccounts": ("CoreV1Api", "list_service_account_for_all_namespaces", False),
    "pods": ("CoreV1Api", "list_pod_for_all_namespaces", False),
    "networkpolicies": ("NetworkingV1Api", "list_network_policy_for_all_namespaces", False),
    "secrets": ("CoreV1Api", "list_secret_for_all_namespaces", True),
    "namespaces": ("CoreV1Api", "list_namespace", True),
    # Read for the network plugin's agents only (by name and image).
    "daemonsets": ("AppsV1Api", "list_daemon_set_for_all_namespaces", False),
}
# The policy kinds isolation may write besides NetworkPolicy, where served (a 404:
# not served, nothing to read): kind -> (group, version, plural, ClusterView field).
CUSTOM: dict[str, tuple[str, str, str, str]] = {
    "ciliumnetworkpolicies": ("cilium.io", "v2", "ciliumnetworkpolicies", "cilium_policies"),
    "Calico networkpolicies": ("projectcalico.org", "v3", "networkpolicies", "calico_policies"),
}
GROUPS = "API groups"  # discovery, read beside the lists
PLUGIN_EVIDENCE = ("daemonsets", GROUPS)
RBAC_KINDS = ("clusterroles", "clusterrolebindings", "roles", "rolebindings")
_FIELDS = {
    "clusterroles": "cluster_roles",
    "clusterrolebindings": "cluster_role_bindings",
    "roles": "roles",
    "rolebindings": "role_bindings",
    "serviceaccounts": "service_accounts",
    "pods": "pods",
    "networkpolicies": "network_policies",
    "secrets": "secrets",
}


class _Deadline(Exception):
    pass


def _why(exc: BaseException) -> str:
    if isinstance(exc, ApiException):
        reason = "forbidden" if exc.status == 403 else f"HTTP {exc.status}"
        message = status_message(exc)
        return f"{reason} ({message})" if message else reason
    if isinstance(exc, _Deadline):
        return "timed out"
    return f"{type(exc).__name__}: {exc}"[:200]


def list_all(
    api: k8s.ApiClient, kind: str, deadline: float, clock: Callable[[], float] = time.monotonic
) -> tuple[list[dict[str, Any]], bool]:
    """Every object of a kind (pages of PAGE), and whether the list was cut short.

    Read raw (`_preload_content=False`) and decoded as plain dicts; Secrets and
    Namespaces as metadata only."""
    if kind in CUSTOM:
        group, version, plural, _ = CUSTOM[kind]
        custom = k8s.CustomObjectsApi(api).list_cluster_custom_object
        lister = functools.partial(custom, group, version, plural)
        metadata_only = False
    else:
        api_class, method, metadata_only = LISTS[kind]
        lister = getattr(getattr(k8s, api_class)(api), method)
    headers = {"Accept": PARTIAL} if metadata_only else None
    items: list[dict[str, Any]] = []
    token = ""
    while True:
        left = deadline - clock()
        if left <= 0:
            raise _Deadline()
        options: dict[str, Any] = {"limit": PAGE}
        if token:
            options["_continue"] = token
        if headers:
            options["_headers"] = headers
        response = lister(**options, _preload_content=False, _request_timeout=max(left, 0.5))
        body = json.loads(response.data)
        if not isinstance(body, dict):
            raise ValueError(f"the {kind} list is not an object")
        page = body.get("items") or []
        items += [i for i in page if isinstance(i, dict)]
        token = str((body.get("metadata") or {}).get("continue") or "")
        if not token:
            return items, False
        if len(items) >= MAX_ITEMS:
            return items[:MAX_ITEMS], True


def api_groups(
    api: k8s.ApiClient, deadline: float, clock: Callable[[], float] = time.monotonic
) -> tuple[dict[str, list[str]], bool]:
    """The API groups served (name -> versions), from discovery (`/apis`)."""
    left = deadline - clock()
    if left <= 0:
        raise _Deadline()
    response = k8s.ApisApi(api).get_api_versions(
        _preload_content=False, _request_timeout=max(left, 0.5)
    )
    body = json.loads(response.data)
    groups: dict[str, list[str]] = {}
    for group in (body.get("groups") if isinstance(body, dict) else None) or []:
        if not isinstance(group, dict) or not isinstance(group.get("name"), str):
            continue
        versions = group.get("versions")
        groups[group["name"]] = [
            str(v.get("version"))
            for v in (versions if isinstance(versions, list) else [])
            if isinstance(v, dict)
        ]
    return groups, False


def _enforcement(
    view: blast.ClusterView,
    daemonsets: list[dict[str, Any]] | None,
    groups: dict[str, list[str]] | None,
    problems: list[str],
) -> None:
    """Which plugins enforce NetworkPolicy here, as the isolate action tells it."""
    workloads: list[dict[str, Any]] = []
    looked: list[str] = []
    if daemonsets is not None:
        # (Items of a list carry no kind of their own.)
        workloads = [{**d, "kind": "DaemonSet"} for d in daemonsets]
        looked.append("the DaemonSets of every namespace")
    elif "pods" in view.seen:
        workloads = [
            {**p, "kind": "Pod"}
            for p in view.pods
            if (p.get("metadata") or {}).get("namespace") in POD_NAMESPACES
        ]
        looked += [f"the pods of {ns}" for ns in POD_NAMESPACES]
    if groups is not None:
        looked.append("API discovery")
    plugins = classify(workloads, groups or {})
    plugins.looked_at = looked
    plugins.problems = problems
    view.enforcing = dict(plugins.enforcing)
    view.enforcement_warning = plugins.warning()


def _fingerprint(view: blast.ClusterView) -> tuple:
    """What the cached reviews depend on: every RBAC object's identity and version."""
    keys = []
    for field in ("cluster_roles", "cluster_role_bindings", "roles", "role_bindings"):
        for obj in getattr(view, field):
            meta = obj.get("metadata") or {}
            keys.append(
                (field, meta.get("namespace"), meta.get("name"), meta.get("resourceVersion"))
            )
    return (frozenset(view.seen & set(RBAC_KINDS)), frozenset(keys))


class BlastReader:
    """Computes blast radii against one cluster; keeps the reviews between calls."""

    def __init__(
        self,
        api_client_factory: Callable[[], Any],
        *,
        timeout: float = 10.0,
        impersonate: bool = True,
        max_namespaces: int = MAX_NAMESPACES,
        read_secrets: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.factory = api_client_factory
        self.timeout = timeout
        self.impersonate = impersonate
        self.max_namespaces = max_namespaces
        self.read_secrets = read_secrets
        self.clock = clock
        self._lock = threading.Lock()
        # user -> (RBAC fingerprint, when, reviews by namespace or None, problem)
        self._reviews: dict[str, tuple[tuple, float, dict[str, Any] | None, str]] = {}
        self.review_calls = 0  # SelfSubjectRulesReviews sent (the cache's effect shows here)
        self._kept = KeptClient(api_client_factory)
        self._impersonating: dict[str, Any] = {}

    def read(self, api: k8s.ApiClient, deadline: float) -> blast.ClusterView:
        view = blast.ClusterView()
        pool = ThreadPoolExecutor(WORKERS, thread_name_prefix="ktriage-blast")
        try:
            kinds = [k for k in LISTS if k != "secrets" or self.read_secrets]
            futures = {pool.submit(list_all, api, kind, deadline, self.clock): kind
                       for kind in kinds}  # fmt: skip
            futures[pool.submit(api_groups, api, deadline, self.clock)] = GROUPS
            for kind in CUSTOM:
                futures[pool.submit(list_all, api, kind, deadline, self.clock)] = kind
            done, pending = wait(futures, timeout=max(deadline - self.clock(), 0.1) + 1)
            daemonsets: list[dict[str, Any]] | None = None
            groups: dict[str, list[str]] | None = None
            plugin_problems: list[str] = []
            # (What the plugin's evidence misses is said in its own sentence.)
            custom_unread: list[str] = []
            for future in pending:
                future.cancel()
                said = plugin_problems if futures[future] in PLUGIN_EVIDENCE else view.not_seen
                said.append(f"could not list {futures[future]}: timed out")
                if futures[future] in CUSTOM:
                    custom_unread.append(futures[future])
            for future in done:
                kind = futures[future]
                try:
                    items, cut = future.result()
                except ApiException as exc:
                    if kind in CUSTOM and exc.status == 404:
                        continue  # not served: no such policy can govern a pod here
                    said = plugin_problems if kind in PLUGIN_EVIDENCE else view.not_seen
                    said.append(f"could not list {kind}: {_why(exc)}")
                    if kind in CUSTOM:
                        custom_unread.append(kind)
                    continue
                except Exception as exc:  # every failure is said, none stops the rest
                    said = plugin_problems if kind in PLUGIN_EVIDENCE else view.not_seen
                    said.append(f"could not list {kind}: {_why(exc)}")
                    continue
                if kind == GROUPS:
                    groups = items
                    continue
                view.seen.add(kind)
                if cut:
                    view.not_seen.append(f"{kind}: only the first {MAX_ITEMS} were read")
                if kind in CUSTOM:
                    setattr(view, CUSTOM[kind][3], items)
                    if cut:
                        view.policies_unread.append(f"{kind} past the first {MAX_ITEMS}")
                elif kind == "daemonsets":
                    daemonsets = items
                elif kind == "namespaces":
                    view.namespaces = sorted(
                        str((i.get("metadata") or {}).get("name") or "") for i in items
                    )
                else:
                    setattr(view, _FIELDS[kind], items)
        finally:
            # A list still running past the deadline is abandoned, not waited for.
            pool.shutdown(wait=False, cancel_futures=True)
        if "namespaces" not in view.seen:
            # Namespaces the other lists show, so that reviews still have somewhere to look.
            found = {
                str((obj.get("metadata") or {}).get("namespace") or "")
                for field in ("pods", "service_accounts", "role_bindings", "roles")
                for obj in getattr(view, field)
            }
            view.namespaces = sorted(n for n in found if n)
        _enforcement(view, daemonsets, groups, sorted(plugin_problems))
        # A kind the cluster does not serve governs nothing, read or not.
        view.policies_unread += [
            kind for kind in custom_unread if groups is None or CUSTOM[kind][0] in groups
        ]
        view.not_seen.sort()
        if not self.read_secrets:
            view.not_seen.append(
                "Secrets were not listed (a cluster-wide list, even of names, reads in the "
                "audit log like an attacker's): legacy token Secrets are not followed"
            )
        return view

    def _review(
        self, api: k8s.ApiClient, ident: blast.Identity, namespaces: Sequence[str], deadline: float
    ) -> tuple[dict[str, Any] | None, str]:
        """SelfSubjectRulesReview in each namespace as `ident`; (None, why) when it cannot."""
        if not self.impersonate:
            return None, "impersonation is off"
        if not namespaces:
            return None, "no namespace could be seen"
        impersonating = self._impersonating.get(ident.user)
        if impersonating is None:
            impersonating = k8s.ApiClient(configuration=api.configuration)
            impersonating.user_agent = USER_AGENT
            impersonating.set_default_header("Impersonate-User", ident.user)
            if not ident.sa:
                for group in ident.groups:
                    if group != blast.AUTHENTICATED:
                        # This client sends one value per header: the first known group.
                        impersonating.set_default_header("Impersonate-Group", group)
                        break
            with self._lock:
                if len(self._impersonating) >= blast.MAX_TARGETS * 4:
                    self._impersonating.pop(next(iter(self._impersonating))).close()
                self._impersonating[ident.user] = impersonating
        auth = k8s.AuthorizationV1Api(impersonating)

        def one(namespace: str) -> tuple[str, dict[str, Any]]:
            body = {
                "apiVersion": "authorization.k8s.io/v1",
                "kind": "SelfSubjectRulesReview",
                "spec": {"namespace": namespace},
            }
            left = deadline - self.clock()
            if left <= 0:
                raise _Deadline()
            with self._lock:
                self.review_calls += 1
            response = auth.create_self_subject_rules_review(
                body, _preload_content=False, _request_timeout=max(left, 0.5)
            )
            data = json.loads(response.data)
            return namespace, dict((data or {}).get("status") or {})

        chosen = list(namespaces)[: self.max_namespaces]
        try:
            first = one(chosen[0])  # a 403 here: may not impersonate; no need for the rest
        except Exception as exc:
            return None, f"could not impersonate {ident.user}: {_why(exc)}"
        reviews = dict([first])
        try:
            with ThreadPoolExecutor(WORKERS, thread_name_prefix="ktriage-review") as pool:
                for namespace, status in pool.map(one, chosen[1:]):
                    reviews[namespace] = status
        except Exception as exc:
            return None, f"a review as {ident.user} failed: {_why(exc)}"
        return reviews, ""

    def _fresh(self, fingerprint: tuple, when: float, now_fingerprint: tuple) -> bool:
        """Cached reviews hold while RBAC is unchanged; when RBAC cannot be read, a
        change cannot be seen, so they hold for REVIEW_TTL seconds only."""
        if fingerprint != now_fingerprint:
            return False
        if set(RBAC_KINDS) <= fingerprint[0]:
            return True
        return self.clock() - when < REVIEW_TTL

    def _client(self) -> Any:
        return self._kept.get()

    def close(self) -> None:
        """Close every client made (one failing to close does not keep the rest open)."""
        self._kept.close()
        with self._lock:
            clients = list(self._impersonating.values())
            self._impersonating.clear()
        for api in clients:
            close = getattr(api, "close", None)
            if close is not None:
                with contextlib.suppress(Exception):
                    close()

    def compute(
        self, identities: Sequence[blast.Identity], pods: Sequence[tuple[str, str]]
    ) -> blast.BlastResult:
        """Read the cluster and compute (blocking: call it from a worker thread)."""
        started = self.clock()
        deadline = started + self.timeout
        api = self._client()
        view = self.read(api, deadline)
        fingerprint = _fingerprint(view)
        reviews: dict[str, dict[str, Any]] = {}
        problems: dict[str, str] = {}
        for ident in identities[: blast.MAX_TARGETS]:
            cached = self._reviews.get(ident.user)
            if cached is None or not self._fresh(cached[0], cached[1], fingerprint):
                got, problem = self._review(api, ident, view.namespaces, deadline)
                cached = (fingerprint, self.clock(), got, problem)
                self._reviews[ident.user] = cached
            if cached[2] is not None:
                reviews[ident.user] = cached[2]
                if len(view.namespaces) > self.max_namespaces:
                    view.not_seen.append(
                        f"reviewed {self.max_namespaces} of {len(view.namespaces)} "
                        f"namespaces as {ident.user}"
                    )
            else:
                problems[ident.user] = cached[3]
        result = blast.compute(view, identities, pods, reviews=reviews, review_problems=problems)
        result.elapsed = self.clock() - started
        return result

    def compute_incident(self, incident: Any) -> blast.BlastResult:
        identities, pods = blast.targets_of(incident)
        return self.compute(identities, pods)
