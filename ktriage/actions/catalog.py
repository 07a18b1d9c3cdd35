"""Every action, declared once: key, name, title, help, permissions, undo, what it acts on.

The UI derives everything about an action from this table: its key binding, the
footer label, the help screen row, the command palette entry, and whether the
key is offered at all (`--read-only` hides every one). The actions themselves
take their permissions from here, so what the key checks is what the action
needs. Nothing here imports the UI.
"""

from __future__ import annotations

from dataclasses import dataclass

from ktriage.actions import permissions as perm
from ktriage.actions.permissions import Permission

# What an action acts on: the selected pod (or the incident's main pod), the identity
# that acted in the incident, or the newest action that can be undone.
POD = "pod"
IDENTITY = "identity"
RECORD = "record"

UNDO_NAME = "undo"


@dataclass(frozen=True, slots=True)
class ActionSpec:
    key: str
    name: str  # as the record and the journal name it: cordon, delete-pod
    title: str  # short, for the footer and the palette: "Cordon"
    description: str  # one line for the help screen and the palette (at most 60 characters)
    undo: str  # what undo does, or why there is none (at most 54 characters)
    acts_on: str  # POD | IDENTITY | RECORD
    permissions: tuple[Permission, ...] = ()

    @property
    def binding_action(self) -> str:
        """The app's action string for the key: `containment('cordon')`."""
        return f"containment('{self.name}')"


CATALOG: tuple[ActionSpec, ...] = (
    ActionSpec(
        "c",
        "cordon",
        "Cordon",
        "Cordon the pod's node: no new pods are scheduled there",
        "uncordons the node (if ktriage cordoned it)",
        POD,
        (perm.GET_PODS, perm.GET_NODES, perm.PATCH_NODES),
    ),
    ActionSpec(
        "i",
        "isolate",
        "Isolate",
        "Isolate the pod with a deny-all NetworkPolicy",
        "removes the quarantine label, then the policy",
        POD,
        (
            perm.GET_PODS,
            perm.LIST_NETPOL,
            perm.CREATE_NETPOL,
            perm.DELETE_NETPOL,
            perm.PATCH_PODS,
        ),
    ),
    ActionSpec(
        "D",
        "detach",
        "Detach",
        "Detach the pod from its workload, Services and policies",
        "none: its controller would adopt it again",
        POD,
        (perm.GET_PODS, perm.PATCH_PODS, perm.LIST_SERVICES, perm.LIST_NETPOL),
    ),
    ActionSpec(
        "l",
        "logs",
        "Evidence",
        "Save the pod's logs, YAML and events as evidence",
        "none needed: nothing in the cluster changes",
        POD,
        (perm.GET_PODS, perm.GET_LOGS, perm.LIST_EVENTS),
    ),
    ActionSpec(
        "X",
        "delete-pod",
        "Delete pod",
        "Delete the pod (once its evidence is saved)",
        "none: a deleted pod cannot come back",
        POD,
        (perm.GET_PODS, perm.DELETE_PODS),
    ),
    ActionSpec(
        "S",
        "scale-zero",
        "Scale to 0",
        "Scale the pod's Deployment or StatefulSet to zero",
        "restores the recorded number of replicas",
        POD,
        (perm.GET_PODS, perm.GET_REPLICASETS, perm.PATCH_DEPLOYMENT_SCALE),
    ),
    ActionSpec(
        "B",
        "unbind",
        "Unbind",
        "Remove the RBAC bindings of the identity that acted",
        "recreates the bindings exactly as they were",
        IDENTITY,
        (
            perm.LIST_ROLEBINDINGS,
            perm.LIST_CLUSTERROLEBINDINGS,
            perm.DELETE_ROLEBINDINGS,
            perm.DELETE_CLUSTERROLEBINDINGS,
            perm.UPDATE_ROLEBINDINGS,
            perm.UPDATE_CLUSTERROLEBINDINGS,
            # Undo, and the rollback of a half-done removal, recreate them.
            perm.CREATE_ROLEBINDINGS,
            perm.CREATE_CLUSTERROLEBINDINGS,
        ),
    ),
    ActionSpec(
        "R",
        "revoke",
        "Revoke",
        "Revoke the credentials of the identity that acted",
        "none: revoked tokens cannot come back",
        IDENTITY,
        (
            perm.GET_SERVICEACCOUNTS,
            perm.LIST_SECRETS,
            perm.DELETE_SECRETS,
            perm.LIST_PODS,
            perm.DELETE_SERVICEACCOUNTS,
            perm.CREATE_SERVICEACCOUNTS,
        ),
    ),
    ActionSpec(
        "u",
        UNDO_NAME,
        "Undo",
        "Undo the newest undoable action on the selection",
        "",
        RECORD,
    ),
)

BY_NAME: dict[str, ActionSpec] = {s.name: s for s in CATALOG}
BY_KEY: dict[str, ActionSpec] = {s.key: s for s in CATALOG}


def spec(name: str) -> ActionSpec:
    """The declaration of one action, by name."""
    return BY_NAME[name]


def permissions_of(name: str) -> list[Permission]:
    return list(BY_NAME[name].permissions)
