"""A source whose server stopped answering shows as stalled, with the words why, on
the status bar and in the Sources screen, and outranks the calmer states."""

from __future__ import annotations

from pathlib import Path

from ui_helpers import make_app, screen_text, wait_for

from ktriage.engine import Engine, SourceHealth
from ktriage.ui.screens.sources import SourcesScreen

WORDS = "no answer from the API server at https://10.0.0.1:6443 for 31 s; waiting for it"


class _Source:
    def __init__(self, health: SourceHealth) -> None:
        self.health = health

    async def run(self, engine: Engine) -> None:
        return None


def _engine() -> Engine:
    engine = Engine()
    engine.context_name = "prod"
    for name, state, error in (
        ("kube pods", "connected", ""),
        ("kube nodes", "stalled", WORDS),
        ("kube events", "reconnecting", "lost the API server: connection refused"),
    ):
        health = SourceHealth(name=name, kind="kube", state=state, last_error=error)
        engine.add_source(_Source(health))
    return engine


async def test_hostile_stalled_shows_on_the_status_bar_and_sources_screen(tmp_path: Path) -> None:
    app = make_app(_engine(), tmp_path)
    async with app.run_test(size=(160, 40)) as pilot:
        await wait_for(pilot, lambda: "kube ⧖" in screen_text(app).splitlines()[0])
        top = screen_text(app).splitlines()[0]
        # The worst state of the group is shown, with its words.
        assert "kube ⧖×3 no answer from the API server" in top
        app.action_sources()
        await wait_for(pilot, lambda: isinstance(app.screen, SourcesScreen))
        await wait_for(pilot, lambda: "kube nodes" in screen_text(app))
        text = screen_text(app)
        row = next(line for line in text.splitlines() if "kube nodes" in line)
        assert "stalled" in row
        assert "no answer from the API server at https://10.0.0.1:6443" in text
