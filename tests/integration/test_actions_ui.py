"""The confirmation screen and the app's action keys, driven by Pilot against the sim."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pilot_waiting import until
from rich.text import Text
from test_actions_support import (
    engine_with_incident,
    kubectl,
    make_service,
    seed_node,
    seed_pod,
    unique,
)
from textual.app import App
from textual.containers import VerticalScroll
from textual.widgets import Static

from ktriage.actions import OK, Outcome, Plan, Target, kubeconfig_factory
from ktriage.actions.base import Change
from ktriage.ui.screens.action_confirm import ActionConfirmScreen, plan_text

pytestmark = pytest.mark.sim


def _policy_names(sim: Any, ns: str) -> list[str]:
    objs = sim.store.list_objs("networking.k8s.io/v1", "NetworkPolicy", ns)
    return [p["metadata"]["name"] for p in objs]


HOSTILE = "[bold red]pwned[/] [link=https://evil.example]x[/link] \x1b]52;c;ZXZpbA==\x07"


def test_plan_text_never_parses_markup() -> None:
    pod = Target("Pod", "shop", "web-1")
    plan = Plan(
        action="isolate",
        incident_id="INC-1",
        target=pod,
        subject=pod,
        title="Isolate pod shop/web-1",
        changes=[Change("patch", pod, {"metadata": {"annotations": {"x": HOSTILE}}})],
        warnings=[HOSTILE],
        notes=[HOSTILE],
        dry_run="ok",
    )
    text = plan_text(plan)
    assert isinstance(text, Text)
    plain = text.plain
    assert "[bold red]pwned[/]" in plain and "[link=https://evil.example]" in plain
    assert "\x1b" not in plain and "\\x1b]52;" in plain
    # No span links anywhere: nothing was interpreted as markup.
    assert all("link" not in str(span.style) for span in text.spans)


class _Host(App[None]):
    def __init__(self, service: Any, plan: Plan) -> None:
        super().__init__()
        self.service = service
        self.plan = plan
        self.results: list[Outcome | None] = []

    def on_mount(self) -> None:
        self.push_screen(ActionConfirmScreen(self.service, self.plan), self.results.append)


async def test_confirm_screen_esc_cancels_and_enter_applies(sim: Any, tmp_path: Path) -> None:
    node, pod = unique("node"), unique("web")
    seed_node(sim.store, node)
    seed_pod(sim.store, "shop", pod, node=node)
    engine, incident = engine_with_incident("shop", pod)
    service = make_service(sim, engine, tmp_path)
    try:
        plan = await service.prepare("i", incident, ("shop", pod))
        app = _Host(service, plan)
        async with app.run_test() as pilot:
            await until(pilot, lambda: isinstance(app.screen, ActionConfirmScreen))
            screen = app.screen
            shown = screen.query_one("#action-plan", Static).render()
            assert f"ktriage-quarantine-{pod}" in str(shown)
            assert "policyTypes" in str(shown) and "Dry run" in str(shown)
            await pilot.press("escape")
            await until(pilot, lambda: app.results == [None])
            assert f"ktriage-quarantine-{pod}" not in _policy_names(sim, "shop")

            app.push_screen(ActionConfirmScreen(service, plan), app.results.append)
            await until(pilot, lambda: isinstance(app.screen, ActionConfirmScreen))
            await pilot.press("enter")
            for _ in range(100):
                if len(app.results) == 2:
                    break
                await pilot.pause(0.05)
            outcome = app.results[1]
            assert outcome is not None and outcome.result == OK, outcome
        assert f"ktriage-quarantine-{pod}" in _policy_names(sim, "shop")
    finally:
        service.close()


async def test_app_keys_isolate_and_record_in_the_timeline(sim: Any, tmp_path: Path) -> None:
    """The real app: `i` on the selected incident previews, `enter` applies, the timeline has it."""
    from ktriage.ui.app import KtriageApp

    node, pod = unique("node"), unique("web")
    seed_node(sim.store, node)
    seed_pod(sim.store, "shop", pod, node=node)
    engine, incident = engine_with_incident("shop", pod)
    app = KtriageApp(engine, mode="live", snapshot_dir=tmp_path, start_sources=False)
    app.api_client_factory = kubeconfig_factory(str(sim.kubeconfig_path), "sim-admin")
    async with app.run_test(size=(160, 50)) as pilot:
        await until(pilot, lambda: app.action_provider is not None)
        provider = app.action_provider
        await provider.service.refresh(("shop", pod))
        await pilot.press("i")
        for _ in range(100):
            if isinstance(app.screen, ActionConfirmScreen):
                break
            await pilot.pause(0.05)
        assert isinstance(app.screen, ActionConfirmScreen)
        await pilot.press("enter")
        for _ in range(100):
            names = [e.kind for e in engine.correlator.events_of(incident)]
            if "action-isolate" in names and not isinstance(app.screen, ActionConfirmScreen):
                break
            await pilot.pause(0.05)
        assert "action-isolate" in [e.kind for e in engine.correlator.events_of(incident)]
        provider.service.close()
    labels = kubectl(sim, tmp_path, "get", "pod", pod, "-n", "shop", "-o", "json")["metadata"][
        "labels"
    ]
    assert labels.get("ktriage.io/quarantine") == pod


async def test_a_long_plan_scrolls_to_its_end() -> None:
    """Every line of a preview can be read, however long (a namespace with many
    policies gives many notes)."""
    pod = Target("Pod", "shop", "web-1")
    plan = Plan(
        action="isolate",
        incident_id="INC-1",
        target=pod,
        subject=pod,
        title="Isolate pod shop/web-1",
        notes=[f"note {i}: NetworkPolicy allow-{i} still allows traffic" for i in range(120)],
        dry_run="the server accepted every change (dryRun=All)",
    )
    app = _Host(None, plan)
    async with app.run_test(size=(160, 45)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, ActionConfirmScreen))
        view = app.screen.query_one(VerticalScroll)
        await until(pilot, lambda: view.max_scroll_y > 0)
        assert view.max_scroll_y > 0  # taller than the screen: it must scroll
        assert view.region.bottom <= 45
        await pilot.press("j", "j", "j")
        await until(pilot, lambda: view.scroll_y == 3)
        await pilot.press("end")
        await until(pilot, lambda: view.scroll_y == view.max_scroll_y)
        await pilot.press("home")
        await until(pilot, lambda: view.scroll_y == 0)
        await pilot.press("pagedown")
        await until(pilot, lambda: view.scroll_y > 10)
    # The dry run's verdict comes first, above the fold.
    assert plan_text(plan).plain.startswith("Dry run: the server accepted")
