"""Every source's health stays on the status line at every width, with the most detail
that fits, and a leading `!` when a source is unhealthy and its words had to go."""

from __future__ import annotations

from collections import Counter

import pytest
from textual.app import App, ComposeResult
from ui_helpers import wait_for

from ktriage.engine import SourceHealth
from ktriage.ui.themes import VARIABLE_DEFAULTS
from ktriage.ui.widgets.status_bar import StatusBar

NOW = 1_800_000_000.0


def _health() -> list[SourceHealth]:
    kube = [SourceHealth(name=f"kube {r}", kind="kube", state="connected") for r in "abc"]
    falco = SourceHealth(
        name="falco:/var/log/falco.json",
        kind="falco",
        state="failed",
        last_error="cannot open /var/log/falc0.json: No such file or directory",
    )
    audit = SourceHealth(name="audit", kind="audit", state="connected")
    audit.skipped = Counter({"malformed-json": 12})
    tetragon = SourceHealth(name="tetragon", kind="tetragon", state="reconnecting")
    return [*kube, audit, falco, tetragon]


class BarApp(App):
    def get_theme_variable_defaults(self) -> dict[str, str]:
        return dict(VARIABLE_DEFAULTS)

    def compose(self) -> ComposeResult:
        yield StatusBar(id="status")


async def _line(width: int) -> str:
    app = BarApp()
    async with app.run_test(size=(width, 5)) as pilot:
        bar = app.query_one(StatusBar)
        bar.update_status(
            context="prod-eu-west-1-admin@cluster-prod-eu-west-1",
            cluster="cluster-prod-eu-west-1",
            mode="live",
            health=_health(),
            now=NOW,
        )
        await wait_for(pilot, lambda: bar.size.width == width)
        return bar.render().plain


@pytest.mark.parametrize("width", [80, 100, 120, 160, 250])
async def test_every_source_is_on_the_line_at_every_width(width: int) -> None:
    line = await _line(width)
    assert len(line) == width
    # Nothing cut at the end: a level of detail that fits was chosen (a long context
    # name may be clipped, never a source).
    assert not line.rstrip().split("  ")[0].endswith("…"), line
    for name in (("kube", "k8s"), ("audit", "aud"), ("falco", "fal"), ("tetragon", "tet")):
        assert any(n in line for n in name), (name, line)
    assert "✖" in line and "◐" in line  # falco failed, tetragon reconnecting
    assert "skip" in line and "12" in line  # the skipped lines, the last item


async def test_a_wide_line_says_why_a_source_failed() -> None:
    line = await _line(250)
    assert "cannot open /var/log/falc0.json" in line
    assert not line.lstrip().startswith("!")


async def test_a_narrow_line_marks_the_trouble_up_front() -> None:
    line = await _line(80)
    assert line.startswith(" !")
