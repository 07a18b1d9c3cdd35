"""Keys whose action may not run say why (Pilot, against the simulated cluster's RBAC):
the missing permission with its namespace and the `kubectl auth can-i` line; `u` with
nothing to undo says so; the palette lists what is possible on the selection."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from test_actions_support import (
    engine_with_incident,
    seed_cluster_role_binding,
    seed_node,
    seed_pod,
    unique,
)
from waiting import wait_for

from ktriage.actions import kubeconfig_factory
from ktriage.core.model import EntityKind, Event, Severity, entity
from ktriage.ui.app import KtriageApp

pytestmark = pytest.mark.sim


def _app(sim: Any, engine: Any, tmp_path: Path, context: str) -> KtriageApp:
    app = KtriageApp(engine, mode="live", snapshot_dir=tmp_path, start_sources=False)
    app.api_client_factory = kubeconfig_factory(str(sim.kubeconfig_path), context)
    return app


async def _permissions_known(app: KtriageApp, pilot: Any, ref: Any) -> None:
    provider = app.action_provider
    assert provider is not None
    await provider.service.refresh(ref)
    app.refresh_bindings()
    await pilot.pause()


async def test_a_blocked_key_names_the_missing_permission_and_the_can_i_line(
    sim: Any, tmp_path: Path
) -> None:
    node, pod = unique("node"), unique("web")
    seed_node(sim.store, node)
    seed_pod(sim.store, "shop", pod, node=node)
    engine, _incident = engine_with_incident("shop", pod, node)
    app = _app(sim, engine, tmp_path, "sim-readonly")
    async with app.run_test(size=(160, 45)) as pilot:
        await pilot.pause()
        await _permissions_known(app, pilot, ("shop", pod))
        screen = app.main_screen
        assert screen is not None
        # Shown dimmed in the footer, but the key is not dead.
        assert app.check_action("containment", ("cordon",)) is None
        await pilot.press("c")
        await wait_for(lambda: screen.notice.active, what="the notice")
        text = screen.notice.text
        assert "viewer may not patch nodes (cluster-wide)" in text
        assert "check: kubectl auth can-i patch nodes" in text
        # It sits below the panes: the newest rows of the Live stream stay visible.
        assert screen.notice.region.y >= screen.live.region.bottom
        await pilot.press("i")
        await pilot.pause()
        assert "kubectl auth can-i create networkpolicies.networking.k8s.io -n shop" in (
            screen.notice.text
        )
        await pilot.press("escape")
        await pilot.pause()
        assert not screen.notice.active
        await pilot.press("u")
        await wait_for(lambda: screen.notice.active, what="the undo notice")
        assert "nothing to undo on pod " in screen.notice.text
        assert "ktriage has taken no action on it" in screen.notice.text
        # No identity acted in this incident (a Falco alert only): B says so.
        assert app.check_action("containment", ("unbind",)) is False  # not in the footer
        await pilot.press("B")
        await pilot.pause()
        assert "no identity acted in the selected incident" in screen.notice.text
        app.action_provider.service.close()  # type: ignore[union-attr]


async def test_the_palette_lists_every_action_possible_on_the_selection(
    sim: Any, tmp_path: Path
) -> None:
    ns, sa, node, pod = unique("ci"), unique("runner"), unique("node"), unique("build")
    seed_node(sim.store, node)
    seed_pod(sim.store, ns, pod, node=node)
    sim.store.apply(
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": sa, "namespace": ns}}
    )
    engine, _incident = engine_with_incident(ns, pod, node)
    actor = entity(EntityKind.SERVICE_ACCOUNT, ns, sa)
    engine.add_events(
        [
            Event(
                time=time.time() - 30,
                source="audit",
                ref=unique("audit"),
                kind="secrets-list",
                severity=Severity.HIGH,
                summary="secrets listed by the pod's token",
                entities=(actor, entity(EntityKind.POD, ns, pod)),
                signal=True,
                label="Secrets listed",
            )
        ]
    )
    app = _app(sim, engine, tmp_path, "sim-admin")
    async with app.run_test(size=(160, 45)) as pilot:
        await pilot.pause()
        selection = app.selection()
        assert selection is not None and selection.identity == actor
        await _permissions_known(app, pilot, (ns, pod))
        await _permissions_known(app, pilot, actor)
        titles = [title for title, _help, _run in app.action_commands()]
        assert any(t.startswith("Cordon (c): Pod") for t in titles)
        assert any(t.startswith("Delete pod (X): Pod") for t in titles)
        assert f"Unbind (B): ServiceAccount {ns}/{sa}" in titles
        assert f"Revoke (R): ServiceAccount {ns}/{sa}" in titles
        assert not any(t.startswith("Undo") for t in titles)  # nothing to undo yet
        # The identity keys show in the footer when an identity acted.
        assert app.check_action("containment", ("unbind",)) is True
        # Chosen from the palette, the action previews like its key.
        from ktriage.ui.screens.action_confirm import ActionConfirmScreen

        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"Revoke")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await wait_for(lambda: isinstance(app.screen, ActionConfirmScreen), what="the preview")
        assert app.screen.plan.title == (  # type: ignore[attr-defined]
            f"Revoke the credentials of ServiceAccount {ns}/{sa}"
        )
        await pilot.press("escape")
        app.action_provider.service.close()  # type: ignore[union-attr]


async def test_u_undoes_the_newest_action_of_the_pod_or_the_identity(
    sim: Any, tmp_path: Path
) -> None:
    """After removing the actor's bindings, `u` on the incident offers to restore them
    (not "nothing to undo on" the pod)."""
    from ktriage.ui.screens.action_confirm import ActionConfirmScreen

    ns, sa, node, pod = unique("ci"), unique("runner"), unique("node"), unique("build")
    seed_node(sim.store, node)
    seed_pod(sim.store, ns, pod, node=node)
    sim.store.apply(
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": sa, "namespace": ns}}
    )
    binding = unique("ci-admin")
    seed_cluster_role_binding(
        sim.store,
        binding,
        "cluster-admin",
        [{"kind": "ServiceAccount", "name": sa, "namespace": ns}],
    )
    engine, incident = engine_with_incident(ns, pod, node)
    actor = entity(EntityKind.SERVICE_ACCOUNT, ns, sa)
    engine.add_events(
        [
            Event(
                time=time.time() - 30,
                source="audit",
                ref=unique("audit"),
                kind="secrets-list",
                severity=Severity.HIGH,
                summary="secrets listed by the pod's token",
                entities=(actor, entity(EntityKind.POD, ns, pod)),
                signal=True,
                label="Secrets listed",
            )
        ]
    )
    app = _app(sim, engine, tmp_path, "sim-admin")
    async with app.run_test(size=(160, 45)) as pilot:
        await pilot.pause()
        provider = app.action_provider
        assert provider is not None
        service = provider.service  # type: ignore[attr-defined]
        await _permissions_known(app, pilot, (ns, pod))
        await _permissions_known(app, pilot, actor)
        removed = await service.apply(await service.prepare("B", incident, actor))
        assert removed.result == "ok", removed.message
        assert (
            sim.store.get_obj("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", None, binding)
            is None
        )
        selection = app.selection()
        ok, why = provider.available("undo", selection)
        assert ok and "unbind" in why
        await pilot.press("u")
        await wait_for(lambda: isinstance(app.screen, ActionConfirmScreen), what="the preview")
        assert app.screen.plan.title.startswith("Restore the RBAC bindings")  # type: ignore[attr-defined]
        await pilot.press("enter")
        await wait_for(
            lambda: sim.store.get_obj(
                "rbac.authorization.k8s.io/v1", "ClusterRoleBinding", None, binding
            ),
            what="the binding recreated",
        )
        service.close()
