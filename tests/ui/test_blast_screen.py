"""The Blast radius screen: `b` on an incident computes it from the simulated cluster
in a worker (the UI keeps answering), shows it as text, saves it, and closes on esc."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from ui_helpers import INJECTIONS, T0, engine_with, make_app, notices, screen_text, signal, wait_for

from ktriage.core.model import EntityKind, Severity, entity
from ktriage.kubeclient import client_from_kubeconfig
from ktriage.ui.screens.blast import BlastScreen
from ktriage.ui.screens.main import MainScreen

pytestmark = pytest.mark.sim

HOSTILE_USER = "mallory" + INJECTIONS[0] + INJECTIONS[2]


@pytest.fixture
def sim(make_sim_cluster: Callable[..., Any]) -> Any:
    cluster = make_sim_cluster()
    store = cluster.store
    store.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}})
    store.apply(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"namespace": "shop", "name": "web-1", "labels": {"app": "web"}},
            "spec": {
                "serviceAccountName": "web",
                "nodeName": "worker-1",
                "containers": [
                    {"name": "web", "image": "nginx:1.27", "securityContext": {"privileged": True}}
                ],
            },
        }
    )
    store.apply(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": "web-admin"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "cluster-admin",
            },
            "subjects": [{"kind": "ServiceAccount", "namespace": "shop", "name": "web"}],
        }
    )
    return cluster


def incident_engine() -> Any:
    pod = entity(EntityKind.POD, "shop", "web-1")
    user = entity(EntityKind.USER, "", HOSTILE_USER)
    return engine_with(
        [signal(T0, "audit", "a-1", "exec", Severity.HIGH, "exec into shop/web-1", (pod, user))]
    )


async def test_b_opens_the_blast_radius_computed_from_the_cluster(tmp_path: Path, sim: Any) -> None:
    app = make_app(incident_engine(), tmp_path, mode="live")
    app.api_client_factory = lambda: client_from_kubeconfig(str(sim.kubeconfig_path), "sim-admin")
    async with app.run_test(size=(160, 45)) as pilot:
        await wait_for(pilot, lambda: app.screen.query_one("#incidents").selected is not None)
        await pilot.press("b")
        await wait_for(pilot, lambda: isinstance(app.screen, BlastScreen))
        screen = app.screen
        await wait_for(pilot, lambda: screen.result is not None, timeout=20)
        # The result is drawn at the next refresh: wait for it on screen.
        await wait_for(pilot, lambda: "PATHS" in screen_text(app))
        text = screen_text(app)
        assert "Blast radius · " in text
        assert "PATHS" in text and "Pod shop/web-1 ⇒ cluster-admin" in text
        assert "ClusterRoleBinding web-admin → ClusterRole cluster-admin" in text
        # The attacker-chosen user name is shown as text: markup and escapes visible.
        assert "[bold red]x[/]" in text and "\\x1b]52;c;" in text
        assert "\x1b]52" not in text
        await pilot.press("s")
        await wait_for(pilot, lambda: any((tmp_path / "snapshots").glob("*-blast-*.md")))
        saved = next((tmp_path / "snapshots").glob("*-blast-*.md")).read_text()
        assert saved.startswith("## Blast radius") and "cluster-admin" in saved
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, MainScreen))
        # The palette opens it too; the reader (and its cached reviews) is the same.
        await pilot.press("ctrl+p", *"Blast radius", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, BlastScreen))
        assert app.screen.reader is screen.reader


async def test_blast_radius_needs_a_live_cluster(tmp_path: Path) -> None:
    app = make_app(incident_engine(), tmp_path)  # replay: no cluster to read
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        await wait_for(pilot, lambda: app.screen.query_one("#incidents").selected is not None)
        await pilot.press("b")
        await wait_for(
            pilot, lambda: any("needs a live cluster" in n.message for n in notices(app))
        )
        assert isinstance(app.screen, MainScreen)


async def test_computing_shows_first_and_the_ui_keeps_answering(tmp_path: Path, sim: Any) -> None:
    release = threading.Event()

    def slow_factory() -> Any:
        # The first connection waits: the screen must say so and stay usable meanwhile.
        release.wait(timeout=20)
        return client_from_kubeconfig(str(sim.kubeconfig_path), "sim-admin")

    app = make_app(incident_engine(), tmp_path, mode="live")
    app.api_client_factory = slow_factory
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.screen.query_one("#incidents").selected is not None)
        await pilot.press("b")
        await wait_for(pilot, lambda: isinstance(app.screen, BlastScreen))
        screen = app.screen
        await wait_for(pilot, lambda: "computing…" in screen_text(app))
        await pilot.press("r")  # a second request while computing is ignored, not queued
        assert screen.computing and screen.result is None
        release.set()
        await wait_for(pilot, lambda: screen.result is not None, timeout=20)
        await wait_for(pilot, lambda: "PATHS" in screen_text(app))
        assert "computing…" not in screen_text(app)


async def test_hostile_unreachable_cluster_is_said_and_the_screen_stays(tmp_path: Path) -> None:
    def broken_factory() -> Any:
        raise OSError("kubeconfig \x1b[31mgone\x1b[0m")

    app = make_app(incident_engine(), tmp_path, mode="live")
    app.api_client_factory = broken_factory
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.screen.query_one("#incidents").selected is not None)
        await pilot.press("b")
        await wait_for(pilot, lambda: "Could not compute the blast radius" in screen_text(app))
        screen = app.screen
        assert isinstance(screen, BlastScreen) and not screen.computing
        assert "\\x1b[31mgone" in screen_text(app)
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, MainScreen))
