"""The quarantine policy, by kind: a NetworkPolicy, a CiliumNetworkPolicy or a Calico policy.

Kubernetes NetworkPolicies only add allows: a deny-all policy cuts nothing
another policy allows, which is why a plain quarantine may need detach.
Where the cluster serves them, isolation uses a policy that denies instead:

- Cilium (`cilium.io/v2` CiliumNetworkPolicy): `ingressDeny` from and
  `egressDeny` to the `all` entity. Cilium's deny rules take precedence over
  every allow, of a CiliumNetworkPolicy or a Kubernetes NetworkPolicy.
- Calico (`projectcalico.org/v3` NetworkPolicy): `order: 0` (evaluated first
  in its tier; Kubernetes NetworkPolicies sit at order 1000), `types: [Ingress,
  Egress]` and one `Deny` rule each way.

All three select the pod by the quarantine label (`ktriage.io/quarantine=<pod>`),
which no controller, Service or policy of the workload selects; the pod's own
labels stay as they are. (A pod name is not a label, and its own labels
usually select its siblings too.) Every object carries ktriage's managed-by
label and the incident annotation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ktriage.actions.base import (
    INCIDENT_ANNOTATION,
    MANAGED_BY,
    MANAGED_BY_LABEL,
    QUARANTINE_LABEL,
    Target,
)
from ktriage.actions.context import ActionContext
from ktriage.actions.kube import CustomKind
from ktriage.actions.netplugins import (
    CALICO_GROUP,
    CALICO_PLURAL,
    CALICO_VERSION,
    CILIUM_GROUP,
    CILIUM_PLURAL,
    CILIUM_VERSION,
)
from ktriage.actions.permissions import CREATE_NETPOL, DELETE_NETPOL, LIST_NETPOL, Permission
from ktriage.core.netverdict import calico_deny_all_rules

NETWORKPOLICY = "networkpolicy"
CILIUM = "cilium"
CALICO = "calico"

CREATE_CNP = Permission("create", CILIUM_PLURAL, CILIUM_GROUP)
DELETE_CNP = Permission("delete", CILIUM_PLURAL, CILIUM_GROUP)
LIST_CNP = Permission("list", CILIUM_PLURAL, CILIUM_GROUP)
CREATE_CALICO = Permission("create", CALICO_PLURAL, CALICO_GROUP)
DELETE_CALICO = Permission("delete", CALICO_PLURAL, CALICO_GROUP)
LIST_CALICO = Permission("list", CALICO_PLURAL, CALICO_GROUP)


def _metadata(namespace: str, name: str, incident_id: str) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": namespace,
        "labels": {MANAGED_BY_LABEL: MANAGED_BY},
        "annotations": {INCIDENT_ANNOTATION: incident_id},
    }


@dataclass(frozen=True, slots=True)
class Quarantine:
    """One kind of quarantine policy: how to build, send, read and remove it."""

    name: str  # networkpolicy | cilium | calico
    kind: str  # the Target kind shown to the user and used with kubectl
    group: str
    version: str
    plural: str
    create_perm: Permission
    delete_perm: Permission
    list_perm: Permission
    deny_based: bool  # wins over allow rules of other policies

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}"

    @property
    def custom_kind(self) -> CustomKind:
        return CustomKind(self.group, self.version, self.plural)

    @property
    def resource(self) -> str:
        """What kubectl calls it: `networkpolicy`, `ciliumnetworkpolicy`, ..."""
        if self.name == CALICO:
            return "networkpolicies.projectcalico.org"
        return self.kind.lower()

    def words(self) -> str:
        return "Calico NetworkPolicy" if self.name == CALICO else self.kind

    def subject(self, namespace: str, name: str) -> Target:
        return Target(self.kind, namespace, name)

    def delete_cmd(self, namespace: str, name: str) -> str:
        return f"kubectl delete {self.resource} {name} -n {namespace}"

    def body(self, namespace: str, name: str, value: str, incident_id: str) -> dict[str, Any]:
        meta = _metadata(namespace, name, incident_id)
        if self.name == CILIUM:
            return {
                "apiVersion": self.api_version,
                "kind": "CiliumNetworkPolicy",
                "metadata": meta,
                "spec": {
                    "description": f"ktriage quarantine for incident {incident_id}",
                    "endpointSelector": {"matchLabels": {QUARANTINE_LABEL: value}},
                    "ingressDeny": [{"fromEntities": ["all"]}],
                    "egressDeny": [{"toEntities": ["all"]}],
                },
            }
        if self.name == CALICO:
            return {
                "apiVersion": self.api_version,
                "kind": "NetworkPolicy",
                "metadata": meta,
                "spec": {
                    "order": 0,
                    "selector": f"{QUARANTINE_LABEL} == '{value}'",
                    "types": ["Ingress", "Egress"],
                    "ingress": calico_deny_all_rules(),
                    "egress": calico_deny_all_rules(),
                },
            }
        return {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": meta,
            "spec": {
                "podSelector": {"matchLabels": {QUARANTINE_LABEL: value}},
                "policyTypes": ["Ingress", "Egress"],
            },
        }

    def selector(self, obj: dict[str, Any]) -> Any:
        """The field that says which pods the policy selects."""
        spec = obj.get("spec") or {}
        key = {CILIUM: "endpointSelector", CALICO: "selector"}.get(self.name, "podSelector")
        return spec.get(key)

    # ---- calls ------------------------------------------------------------------

    async def send_create(
        self, ctx: ActionContext, namespace: str, body: dict[str, Any], *, dry_run: bool = False
    ) -> dict[str, Any]:
        name = body["metadata"]["name"]
        what = f"{'dry run: ' if dry_run else ''}create {self.words()} {namespace}/{name}"
        if self.name == NETWORKPOLICY:
            return await ctx.call(
                ctx.kube.create_network_policy,
                namespace,
                body,
                dry_run=dry_run,
                what=what,
                permission=self.create_perm,
            )
        return await ctx.call(
            ctx.kube.create_custom,
            self.custom_kind,
            namespace,
            body,
            dry_run=dry_run,
            what=what,
            permission=self.create_perm,
        )

    async def send_delete(
        self, ctx: ActionContext, namespace: str, name: str, *, dry_run: bool = False
    ) -> None:
        what = f"{'dry run: ' if dry_run else ''}delete {self.words()} {namespace}/{name}"
        subject = self.subject(namespace, name)
        if self.name == NETWORKPOLICY:
            await ctx.call(
                ctx.kube.delete_network_policy,
                namespace,
                name,
                dry_run=dry_run,
                what=what,
                subject=subject,
                permission=self.delete_perm,
            )
            return
        await ctx.call(
            ctx.kube.delete_custom,
            self.custom_kind,
            namespace,
            name,
            dry_run=dry_run,
            what=what,
            subject=subject,
            permission=self.delete_perm,
        )

    async def read(self, ctx: ActionContext, namespace: str, name: str) -> dict[str, Any]:
        what = f"read {self.words()} {namespace}/{name}"
        subject = self.subject(namespace, name)
        if self.name == NETWORKPOLICY:
            return await ctx.call(
                ctx.kube.get_network_policy, namespace, name, what=what, subject=subject
            )
        return await ctx.call(
            ctx.kube.get_custom,
            self.custom_kind,
            namespace,
            name,
            what=what,
            subject=subject,
        )

    async def read_all(self, ctx: ActionContext, namespace: str) -> list[dict[str, Any]]:
        what = f"list {self.words()} objects in namespace {namespace}"
        if self.name == NETWORKPOLICY:
            return await ctx.call(
                ctx.kube.list_network_policies, namespace, what=what, permission=self.list_perm
            )
        return await ctx.call(
            ctx.kube.list_custom,
            self.custom_kind,
            namespace,
            what=what,
            permission=self.list_perm,
        )


PLAIN = Quarantine(
    NETWORKPOLICY,
    "NetworkPolicy",
    "networking.k8s.io",
    "v1",
    "networkpolicies",
    CREATE_NETPOL,
    DELETE_NETPOL,
    LIST_NETPOL,
    deny_based=False,
)
CILIUM_QUARANTINE = Quarantine(
    CILIUM,
    "CiliumNetworkPolicy",
    CILIUM_GROUP,
    CILIUM_VERSION,
    CILIUM_PLURAL,
    CREATE_CNP,
    DELETE_CNP,
    LIST_CNP,
    deny_based=True,
)
CALICO_QUARANTINE = Quarantine(
    CALICO,
    "NetworkPolicy.projectcalico.org",
    CALICO_GROUP,
    CALICO_VERSION,
    CALICO_PLURAL,
    CREATE_CALICO,
    DELETE_CALICO,
    LIST_CALICO,
    deny_based=True,
)
BY_NAME = {q.name: q for q in (PLAIN, CILIUM_QUARANTINE, CALICO_QUARANTINE)}
