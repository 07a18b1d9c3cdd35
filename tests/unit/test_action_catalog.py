"""Every action declared once (actions/catalog.py), and everything derived from it."""

from __future__ import annotations

from textual.binding import Binding

from ktriage.actions.base import Target
from ktriage.actions.catalog import CATALOG, IDENTITY, POD, RECORD, UNDO_NAME
from ktriage.actions.permissions import GET_LOGS, PATCH_NODES, Permission, explain_missing
from ktriage.actions.service import UNDO_KEY, acts_on, default_actions
from ktriage.core.model import EntityKind
from ktriage.ui.app import KtriageApp
from ktriage.ui.hooks import ACTION_KEYS
from ktriage.ui.screens.help import help_text

POD_TARGET = Target(EntityKind.POD, "shop", "web-1")
SA_TARGET = Target(EntityKind.SERVICE_ACCOUNT, "ci", "runner")
USER_TARGET = Target(EntityKind.USER, "", "alice")


def test_keys_and_names_are_unique_and_every_action_is_declared() -> None:
    keys = [s.key for s in CATALOG]
    names = [s.name for s in CATALOG]
    assert len(set(keys)) == len(keys) and len(set(names)) == len(names)
    actions = default_actions()
    assert {a.name for a in actions} | {UNDO_NAME} == set(names)
    by_name = {s.name: s for s in CATALOG}
    for action in actions:
        assert by_name[action.name].key == action.key
    assert by_name[UNDO_NAME].key == UNDO_KEY and by_name[UNDO_NAME].acts_on == RECORD


def test_each_action_checks_exactly_the_permissions_the_catalog_declares() -> None:
    by_name = {s.name: s for s in CATALOG}
    for action in default_actions():
        spec = by_name[action.name]
        target = SA_TARGET if spec.acts_on == IDENTITY else POD_TARGET
        assert set(action.permissions(target)) == set(spec.permissions), action.name


def test_help_rows_fit_the_help_screen() -> None:
    for spec in CATALOG:
        assert len(spec.description) <= 60, spec.name
        assert len(spec.undo) <= 54, spec.name


def test_bindings_help_and_hooks_derive_from_the_catalog() -> None:
    bindings = [b for b in KtriageApp.BINDINGS if isinstance(b, Binding)]
    for spec in CATALOG:
        # The first binding of the key (the one the footer shows) runs the action.
        binding = next(b for b in bindings if b.key == spec.key)
        assert binding.action == f"containment('{spec.name}')"
        assert binding.description == spec.title and binding.show
    # A second, hidden binding per key explains a blocked key.
    blocked = [b for b in bindings if b.action.startswith("blocked(")]
    assert sorted(b.key for b in blocked) == sorted(s.key for s in CATALOG)
    assert not any(b.show for b in blocked)
    assert [(a.key, a.name, a.description) for a in ACTION_KEYS] == [
        (s.key, s.name, s.description) for s in CATALOG
    ]
    text = help_text("state").plain
    for spec in CATALOG:
        assert spec.description in text
        if spec.undo:
            assert f"undo: {spec.undo}" in text


def test_identity_actions_apply_to_identities_and_pod_actions_to_pods() -> None:
    for spec in CATALOG:
        if spec.acts_on == POD:
            assert acts_on(spec.key, POD_TARGET) and not acts_on(spec.key, SA_TARGET)
        elif spec.acts_on == IDENTITY:
            assert acts_on(spec.key, SA_TARGET) and acts_on(spec.key, USER_TARGET)
            assert not acts_on(spec.key, POD_TARGET)
        else:
            assert acts_on(spec.key, POD_TARGET) and acts_on(spec.key, SA_TARGET)


def test_a_missing_permission_is_named_with_its_scope_and_can_i_line() -> None:
    text = explain_missing([PATCH_NODES, GET_LOGS], "shop", "viewer")
    assert text.splitlines() == [
        "viewer may not patch nodes (cluster-wide); check: kubectl auth can-i patch nodes",
        "viewer may not get pods/log (in namespace shop); check: "
        "kubectl auth can-i get pods --subresource=log -n shop",
    ]
    netpol = Permission("create", "networkpolicies", "networking.k8s.io")
    assert netpol.can_i("shop") == (
        "kubectl auth can-i create networkpolicies.networking.k8s.io -n shop"
    )
    everywhere = Permission("list", "rolebindings", "rbac.authorization.k8s.io", namespaced=False)
    assert everywhere.can_i("shop") == (
        "kubectl auth can-i list rolebindings.rbac.authorization.k8s.io --all-namespaces"
    )
