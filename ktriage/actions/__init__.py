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

Keys (catalog.py): `c` cordon, `i` isolate, `D` detach (also offered after
isolation), `l` dump logs, `X` delete the pod, `S` scale its workload to zero,
`B` remove an identity's RBAC bindings, `R` revoke a ServiceAccount's
credentials, `u` undo. `pod_ref` may be an EntityRef of a pod (or, for `B` and
`R`, of a ServiceAccount or User), a `Target`, a `(namespace, name)` pair or
`"ns/name"`.

`ActionConfirmScreen(service, plan)` shows the plan (NetworkPolicy YAML,
patch bodies, files to write, warnings), applies it on `enter` (showing
progress) and dismisses with the Outcome; `esc` dismisses with None.
Every action is declared once in `catalog.py` (key, name, title, help,
permissions, undo, what it acts on); the UI derives its keys, footer, help and
palette from that table. This package never imports the UI: the UI builds its
provider (`ktriage.ui.hooks.make_provider`) from an ActionService.
"""

from __future__ import annotations

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
]
