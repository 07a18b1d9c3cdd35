"""The clusterrole-aggregation controller: a ClusterRole with an `aggregationRule` gets
the rules of every ClusterRole its selectors match (sorted by name, duplicates dropped),
kept up to date as those roles come, change and go."""

from __future__ import annotations

import asyncio
from typing import Any

from ktriage.sim.controllers.watching import StoreWatcher
from ktriage.sim.controllers.workloads import selector_matches
from ktriage.sim.storage.store import Change, ClusterStore

RBAC = "rbac.authorization.k8s.io/v1"


def aggregated_rules(role: dict, all_roles: list[dict]) -> list[dict]:
    """The rules `role`'s aggregationRule selects from `all_roles`."""
    selectors = (role.get("aggregationRule") or {}).get("clusterRoleSelectors") or []
    if not isinstance(selectors, list):
        return []
    name = role["metadata"]["name"]
    rules: list[dict] = []
    for other in sorted(all_roles, key=lambda r: r["metadata"]["name"]):
        if other["metadata"]["name"] == name:
            continue
        labels = other["metadata"].get("labels") or {}
        own_rules = other.get("rules")
        if not isinstance(labels, dict) or not isinstance(own_rules, list):
            continue
        if not any(selector_matches(s, labels) for s in selectors):
            continue
        for rule in own_rules:
            if isinstance(rule, dict) and rule not in rules:
                rules.append(rule)
    return rules


class ClusterRoleAggregationController:
    def __init__(self, store: ClusterStore, loop: asyncio.AbstractEventLoop) -> None:
        self.store = store
        self._watcher = StoreWatcher(store, loop, [(RBAC, "ClusterRole")], self._on_change)
        # resourceVersions of our own writes: they need no new pass (and roles that
        # aggregate each other in a ring must not keep the loop busy).
        self._own_writes: set[str] = set()

    def start(self) -> None:
        self._watcher.start()
        self.sync_all()

    def stop(self) -> None:
        self._watcher.stop()

    def _on_change(self, change: Change) -> None:
        rv = change.obj["metadata"].get("resourceVersion", "")
        if rv in self._own_writes:
            self._own_writes.discard(rv)
            return
        self.sync_all()

    def sync_all(self) -> None:
        """Bring every aggregated ClusterRole's rules up to date (a few passes, as roles
        aggregate roles that aggregate others: view → edit → admin)."""
        for _ in range(4):
            changed = False
            roles = self.store.list_objs(RBAC, "ClusterRole")
            for i, role in enumerate(roles):
                if not isinstance(role.get("aggregationRule"), dict):
                    continue
                # Computed from the roles as updated so far in this pass, so two roles
                # that aggregate each other settle instead of swapping rules forever.
                rules = aggregated_rules(role, roles)
                if rules != (role.get("rules") or []):
                    name = role["metadata"]["name"]
                    try:
                        roles[i] = self.store.mutate(
                            RBAC, "ClusterRole", None, name, _set_rules(rules)
                        )
                        self._own_writes.add(roles[i]["metadata"]["resourceVersion"])
                    except KeyError:  # deleted meanwhile
                        continue
                    changed = True
            if not changed:
                return


def _set_rules(rules: list[dict]) -> Any:
    def apply(obj: dict) -> None:
        obj["rules"] = rules

    return apply
