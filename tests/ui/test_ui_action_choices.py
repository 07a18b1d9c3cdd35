"""A plan's choices in the confirmation: single keys, and enter waits for one when the
plan says a choice must be made (deleting a pod whose evidence was not saved)."""

from __future__ import annotations

from typing import Any

from textual.app import App
from textual.containers import VerticalScroll
from textual.widgets import Static

from ktriage.actions.base import Change, Outcome, Plan, Target
from ktriage.ui.screens.action_confirm import ActionConfirmScreen, plan_text

POD = Target("Pod", "shop", "web-1")


class _Service:
    """Stands in for the ActionService: records what it was asked to apply."""

    def __init__(self) -> None:
        self.applied: list[str] = []

    async def apply(self, plan: Plan, progress: Any = None) -> Outcome:
        self.applied.append(plan.option)
        return Outcome(plan=plan, result="ok", message="done")


class _Host(App[None]):
    def __init__(self, service: _Service, plan: Plan) -> None:
        super().__init__()
        self.service = service
        self.plan = plan
        self.results: list[Outcome | None] = []

    def on_mount(self) -> None:
        screen = ActionConfirmScreen(self.service, self.plan)  # type: ignore[arg-type]
        self.push_screen(screen, self.results.append)


def _plan(option: str) -> Plan:
    return Plan(
        action="delete-pod",
        incident_id="INC-1",
        target=POD,
        subject=POD,
        title="Delete pod shop/web-1",
        changes=[Change("delete", POD, summary="delete pod shop/web-1")],
        warnings=["No evidence of this pod was saved in this incident"],
        options=[("g", "delete with the pod's grace period"), ("0", "delete immediately")],
        option=option,
        dry_run="ok",
    )


async def test_enter_waits_for_a_choice_then_applies_the_chosen_one() -> None:
    service = _Service()
    plan = _plan("")
    app = _Host(service, plan)
    async with app.run_test() as pilot:
        await pilot.pause()
        assert "nothing chosen yet" in plan_text(plan).plain
        await pilot.press("enter")
        await pilot.pause()
        assert service.applied == [] and isinstance(app.screen, ActionConfirmScreen)
        # `g` is also "top" in the preview: the plan's own choice comes first.
        await pilot.press("g")
        await pilot.pause()
        assert plan.option == "g"
        await pilot.press("0")
        await pilot.pause()
        assert plan.option == "0"
        shown = str(app.screen.query_one("#action-plan", Static).render())
        assert "▶ 0" in shown
        await pilot.press("enter")
        for _ in range(50):
            if app.results:
                break
            await pilot.pause(0.02)
    assert service.applied == ["0"]
    assert app.results and app.results[0] is not None


async def test_a_plan_without_choices_keeps_g_for_the_top() -> None:
    plan = _plan("")
    plan.options = []
    plan.notes = [f"note {i}" for i in range(200)]
    app = _Host(_Service(), plan)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        view = app.screen.query_one(VerticalScroll)
        await pilot.press("G")
        await pilot.pause()
        assert view.scroll_y > 0
        await pilot.press("g")
        await pilot.pause()
        assert view.scroll_y == 0
