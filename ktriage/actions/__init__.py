"""One-key containment and evidence: cordon, isolate, detach, dump logs; previewed and undoable.

The UI uses one object, `ActionService`, and one screen,
`ktriage.ui.screens.action_confirm.ActionConfirmScreen`:

    service = ActionService(engine, kubeconfig_factory(path, context), snapshot_dir,
                            read_only=args.read_only, clock=time.time)

    service.available(pod_ref)  -> {"c": (True, "Cordon the pod's node"),
                                    "i": (False, "needs create on networkpolicies"),
                                    "l": (...), "D": (...), "u": (...)}
        Never blocks. Empty in read-only mode (show no action keys at all).
        Until permissions are known the keys show disabled with "checking
        permissions"; `service.on_permissions(callback)` fires when the
        background SelfSubjectAccessReviews have answered (cached for minutes).
    plan = await service.prepare(key, incident_id, pod_ref)
        Permissions, preconditions, the exact plan and a server-side dry run.
        Raises ActionError(message) in plain words (403 names the permission,
        404 says the pod is gone). `plan.unchanged` is set when there is
        nothing to do ("node w2 is already cordoned"): show it, applying it
        records "unchanged".
    outcome = await service.apply(plan, progress=None)
        Applies and records it in the incident's timeline (an Event of source
        "ktriage" via engine.attach_action). Never raises for cluster errors:
        `outcome.result` is ok / unchanged / undone / failed and
        `outcome.message` says what happened (and what is left behind, with
        the command that removes it). `progress(file, bytes_so_far, total)`
        is called while evidence is written.
    plan = await service.prepare_undo(incident_id, pod_ref)  # then apply(plan)
    outcome = await service.undo(incident_id, pod_ref)       # without a preview
    service.records(incident_id) -> [ActionRecord]; `record.can_undo`, `record.undo_note`.

Keys: `c` cordon, `i` isolate, `l` dump logs, `u` undo; `D` detach (a
separate, confirmable action offered with isolation). `pod_ref` may be an
EntityRef of a pod, a `Target`, a `(namespace, name)` pair or `"ns/name"`.

`ActionConfirmScreen(service, plan)` shows the plan (NetworkPolicy YAML,
patch bodies, files to write, warnings), applies it on `enter` (showing
progress) and dismisses with the Outcome; `esc` dismisses with None.
`make_provider(app)` is what ktriage.ui.hooks loads: it builds the service
from `app.api_client_factory` (or `app.engine.api_client_factory`), a
zero-argument callable returning a kubernetes ApiClient, and returns None
when there is none (replay) or the app is read-only.
"""

from __future__ import annotations

import time
from typing import Any

from ktriage.actions.base import (
    FAILED,
    OK,
    REFUSED,
    UNCHANGED,
    UNDONE,
    ActionError,
    ActionRecord,
    Change,
    Outcome,
    Plan,
    Target,
    as_target,
)
from ktriage.actions.kube import api_client_from_kubeconfig
from ktriage.actions.runner import RetryPolicy
from ktriage.actions.service import UNDO_KEY, ActionPolicy, ActionService, kubeconfig_factory

__all__ = [
    "FAILED",
    "OK",
    "REFUSED",
    "UNCHANGED",
    "UNDONE",
    "UNDO_KEY",
    "ActionError",
    "ActionPolicy",
    "ActionRecord",
    "ActionService",
    "Change",
    "Outcome",
    "Plan",
    "RetryPolicy",
    "Target",
    "api_client_from_kubeconfig",
    "as_target",
    "kubeconfig_factory",
    "make_provider",
]


def make_provider(app: Any) -> Any:
    """The UI's action provider (ktriage.ui.hooks), or None when actions cannot run."""
    if getattr(app, "read_only", False):
        return None
    factory = getattr(app, "api_client_factory", None) or getattr(
        getattr(app, "engine", None), "api_client_factory", None
    )
    if factory is None:
        return None
    from ktriage.ui.screens.action_confirm import ActionsProvider

    service = ActionService(
        app.engine,
        factory,
        app.snapshot_dir,
        read_only=False,
        clock=getattr(app, "clock", None) or time.time,
    )
    return ActionsProvider(app, service)
