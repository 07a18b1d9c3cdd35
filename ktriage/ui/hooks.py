"""Where containment actions plug into the UI.

The app binds the action keys below in the Incidents, Timeline and Pods panes
and asks an *action provider* what they do. The provider comes from
`ktriage.actions.make_provider(app)` when that function exists (and the app is
not `--read-only`); without one the keys are listed in the help screen as not
available and hidden from the footer.

A provider implements:

    def available(self, name: str, selection: Selection) -> tuple[bool, str]:
        '''(True, "") when the action can run on this selection, else (False, why).'''

    async def run(self, name: str, selection: Selection) -> None:
        '''Preview, confirm, apply; record the outcome with engine.attach_action.'''

It may push its own screens (previews, confirmations) on `app`, and reads
`app.snapshot_dir` for where evidence goes. It may also implement

    def still_in_place(self) -> list[str]:
        '''Every change ktriage made in the cluster and left there, in words: this
        run's and earlier runs', leftovers and actions cut short included (the app
        names them in a dialog before it quits).'''

    def start(self) -> None:
        '''Called once the app is mounted (the start-up dialog for actions an
        earlier run was cut short in).'''
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

from ktriage.core.model import EntityKind, EntityRef, Event, Incident


class ActionKey(NamedTuple):
    key: str
    name: str
    description: str


ACTION_KEYS: tuple[ActionKey, ...] = (
    ActionKey("c", "cordon", "Cordon the pod's node (undo: uncordon)"),
    ActionKey("i", "isolate", "Isolate the pod with a deny-all NetworkPolicy"),
    ActionKey("l", "logs", "Dump the pod's logs, YAML and events as evidence"),
    ActionKey("u", "undo", "Undo the last action on the selection"),
)


@dataclass(slots=True)
class Selection:
    """What the user is pointing at when an action key is pressed."""

    pane: str  # "incidents" | "timeline" | "pods" | "live" | "detail"
    incident: Incident | None
    event: Event | None
    # The selected pod (Pods pane) or the incident's main pod otherwise.
    pod: EntityRef | None
    # The live PodInfo for `pod` when connected to a cluster.
    pod_info: Any = None

    @staticmethod
    def main_pod(incident: Incident | None) -> EntityRef | None:
        if incident is None:
            return None
        return next((e for e in incident.entities if e.kind == EntityKind.POD), None)


class ActionProvider(Protocol):
    def available(self, name: str, selection: Selection) -> tuple[bool, str]: ...

    async def run(self, name: str, selection: Selection) -> None: ...


def load_action_provider(app: Any) -> ActionProvider | None:
    """The actions' provider, when the actions package offers one."""
    try:
        import ktriage.actions as actions
    except ImportError:
        return None
    make = getattr(actions, "make_provider", None)
    if make is None:
        return None
    return make(app)
