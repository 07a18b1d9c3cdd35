"""Which network plugin enforces NetworkPolicy here, and which policy kinds the cluster serves.

A NetworkPolicy is only data: the network plugin enforces it, and some plugins
(flannel alone, kindnet before 0.24, many cloud defaults) do not. Before
claiming isolation ktriage looks, once per session, for the agents of the
plugins that do (Cilium, Calico, Antrea, Weave Net, kube-router and a few
cloud ones) among the DaemonSets of every namespace (or, without that
permission, the pods of kube-system and calico-system), and for their API
groups in discovery. It also learns whether the cluster serves Cilium's
`cilium.io/v2` CiliumNetworkPolicy or Calico's `projectcalico.org/v3`
NetworkPolicy, which isolation prefers (quarantine_crd.py).

`classify` is pure; `detect` reads the cluster and never raises: what it could
not read is said in `problems`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ktriage.actions.base import ActionError
from ktriage.actions.context import ActionContext

CILIUM_GROUP, CILIUM_VERSION, CILIUM_PLURAL = "cilium.io", "v2", "ciliumnetworkpolicies"
CALICO_GROUP, CALICO_VERSION, CALICO_PLURAL = "projectcalico.org", "v3", "networkpolicies"
CALICO_CRD_GROUP = "crd.projectcalico.org"
ANTREA_GROUP = "crd.antrea.io"

# (plugin, pattern on a DaemonSet/pod name or a container image). Anchored on
# word boundaries so that `not-cilium-at-all` in a name is not mistaken for it.
_ENFORCING: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("Cilium", re.compile(r"(^|[/-])(cilium|cilium-agent|anetd)(:|$|-[a-z0-9]{5}$)")),
    ("Calico", re.compile(r"(^|/)(calico-node|calico/node|canal)(:|$|-[a-z0-9]{5}$)")),
    ("Antrea", re.compile(r"(^|/)(antrea-agent|antrea/antrea-)")),
    ("Weave Net", re.compile(r"(^|/)(weave-net|weaveworks/weave-kube)(:|$|-[a-z0-9]{5}$)")),
    ("kube-router", re.compile(r"(^|/)kube-router(:|$|-[a-z0-9]{5}$)")),
    ("Azure NPM", re.compile(r"(^|/)azure-npm(:|$|-[a-z0-9]{5}$)")),
    (
        "AWS network policy agent",
        re.compile(r"(^|/)aws-network-policy-agent(:|$)"),
    ),
)
# Plugins that never enforce NetworkPolicy on their own: named, so the warning is precise.
_NOT_ENFORCING: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("flannel", re.compile(r"(^|/)(kube-flannel(-ds)?|flannel)(:|$|-[a-z0-9]{5}$)")),
    ("kindnet", re.compile(r"(^|/)kindnet(d)?(:|$|-[a-z0-9]{5}$)")),
)
# Where the agents' pods run when DaemonSets cannot be listed.
POD_NAMESPACES = ("kube-system", "calico-system")


@dataclass(slots=True)
class NetworkPlugins:
    """What was seen: enforcing plugins (name -> where), others, and served policy kinds."""

    enforcing: dict[str, str] = field(default_factory=dict)
    others: dict[str, str] = field(default_factory=dict)
    cilium_policies: bool = False  # cilium.io/v2 ciliumnetworkpolicies is served
    calico_policies: bool = False  # projectcalico.org/v3 networkpolicies is served
    looked_at: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def seen(self) -> bool:
        return bool(self.enforcing)

    def names(self) -> str:
        return ", ".join(f"{name} ({where})" for name, where in self.enforcing.items())

    def warning(self) -> str:
        """The sentence for the confirm dialog when nothing enforcing was seen ("" if seen)."""
        if self.seen:
            return ""
        looked = "; ".join(self.looked_at) or "nothing could be read"
        others = ""
        if self.others:
            others = (
                " Seen instead: "
                + ", ".join(f"{n} ({w})" for n, w in self.others.items())
                + ", which does not enforce NetworkPolicy."
            )
        problems = f" ({'; '.join(self.problems)})" if self.problems else ""
        return (
            "No NetworkPolicy-enforcing network plugin was seen (looked for Cilium, Calico, "
            f"Antrea, Weave Net, kube-router in {looked}){problems}; "
            f"isolation may not be enforced.{others}"
        )

    def note(self) -> str:
        if not self.seen:
            return ""
        return f"NetworkPolicy is enforced here by {self.names()}."


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _images(obj: Mapping[str, Any]) -> list[str]:
    spec = _mapping(obj.get("spec"))
    if obj.get("kind") != "Pod" and isinstance(spec.get("template"), Mapping):
        spec = _mapping(spec["template"].get("spec"))
    out = []
    for key in ("containers", "initContainers"):
        containers = spec.get(key)
        for container in containers if isinstance(containers, list) else ():
            if isinstance(container, Mapping) and isinstance(container.get("image"), str):
                out.append(container["image"])
    return out


def _match(patterns: Iterable[tuple[str, re.Pattern[str]]], texts: Iterable[str]) -> str:
    for name, pattern in patterns:
        for text in texts:
            if pattern.search(text.lower()):
                return name
    return ""


def classify(
    workloads: Iterable[Mapping[str, Any]], groups: Mapping[str, Iterable[str]]
) -> NetworkPlugins:
    """Plugins from DaemonSets or pods (by name or image) and from the API groups served."""
    found = NetworkPlugins()
    for obj in workloads:
        if not isinstance(obj, Mapping):
            continue
        meta = _mapping(obj.get("metadata"))
        name = str(meta.get("name", ""))
        where = f"{str(obj.get('kind') or 'object').lower()} {meta.get('namespace', '')}/{name}"
        texts = [name, *_images(obj)]
        plugin = _match(_ENFORCING, texts)
        if plugin:
            found.enforcing.setdefault(plugin, where)
            continue
        other = _match(_NOT_ENFORCING, texts)
        if other:
            found.others.setdefault(other, where)
    for group, label in ((CILIUM_GROUP, "Cilium"), (CALICO_CRD_GROUP, "Calico"),
                         (CALICO_GROUP, "Calico"), (ANTREA_GROUP, "Antrea")):  # fmt: skip
        if group in groups:
            found.enforcing.setdefault(label, f"API group {group}")
    return found


async def detect(ctx: ActionContext) -> NetworkPlugins:
    """Read the cluster once: agents, API groups, and the policy kinds served. Never raises."""
    workloads: list[dict[str, Any]] = []
    looked: list[str] = []
    problems: list[str] = []
    try:
        daemonsets = await ctx.call(
            ctx.kube.list_daemonsets_all, what="list DaemonSets in every namespace"
        )
        # (Items of a list carry no kind of their own.)
        workloads += [{**d, "kind": "DaemonSet"} for d in daemonsets]
        looked.append("the DaemonSets of every namespace")
    except ActionError as error:
        problems.append(error.message)
        for ns in POD_NAMESPACES:
            try:
                pods = await ctx.call(ctx.kube.list_pods, ns, what=f"list pods in {ns}")
            except ActionError as pod_error:
                if pod_error.reason != "not-found":
                    problems.append(pod_error.message)
                continue
            workloads += [{**p, "kind": "Pod"} for p in pods]
            looked.append(f"the pods of {ns}")
    groups: dict[str, list[str]] = {}
    try:
        groups = await ctx.call(ctx.kube.api_groups, what="read the API groups (discovery)")
        looked.append("API discovery")
    except ActionError as error:
        problems.append(error.message)
    found = classify(workloads, groups)
    found.looked_at = looked
    found.problems = problems
    found.cilium_policies = await _serves(ctx, groups, CILIUM_GROUP, CILIUM_VERSION, CILIUM_PLURAL)
    found.calico_policies = await _serves(ctx, groups, CALICO_GROUP, CALICO_VERSION, CALICO_PLURAL)
    return found


async def _serves(
    ctx: ActionContext, groups: Mapping[str, list[str]], group: str, version: str, plural: str
) -> bool:
    if version not in groups.get(group, ()):
        return False
    try:
        names = await ctx.call(
            ctx.kube.api_resources, group, version, what=f"read the resources of {group}/{version}"
        )
    except ActionError:
        return False
    return plural in names
