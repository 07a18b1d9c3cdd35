"""The Pods pane shows NODE where there are nodes, and flags that stay readable: in
full when they fit, else abbreviated with the containment flags first, never cut off."""

from __future__ import annotations

from textual.app import App, ComposeResult
from ui_helpers import wait_for

from ktriage.ui.pods import PodRow
from ktriage.ui.themes import VARIABLE_DEFAULTS
from ktriage.ui.widgets.pod_list import PodList

ALL_FLAGS = ["privileged", "hostPath", "hostNet", "hostPID", "quarantined", "cordoned"]


class PodsApp(App):
    def __init__(self, rows: list[PodRow]) -> None:
        super().__init__()
        self.rows = rows

    def get_theme_variable_defaults(self) -> dict[str, str]:
        return dict(VARIABLE_DEFAULTS)

    def compose(self) -> ComposeResult:
        yield PodList(id="pods")

    def on_mount(self) -> None:
        self.query_one(PodList).set_rows(self.rows, "all pods")


async def _lines(rows: list[PodRow], width: int) -> list[str]:
    app = PodsApp(rows)
    async with app.run_test(size=(width, 10)) as pilot:
        pods = app.query_one(PodList)
        await wait_for(pilot, lambda: pods.size.width == width and pods.row_count() == len(rows))
        inner = pods.scrollable_content_region.width
        header = pods.render_header(inner)
        assert header is not None
        return [header.plain] + [pods.render_row(i, inner).plain for i in range(len(rows))]


async def test_narrow_pane_abbreviates_flags_and_keeps_containment() -> None:
    row = PodRow("kube-system", "pwn-x7k2q", "Running", node="worker-2", flags=ALL_FLAGS)
    header, line = await _lines([row], 62)
    assert "NODE" in header and "worker-2" in line
    assert "cord" in line and "quar" in line, line
    assert line.index("cord") < line.index("priv")


async def test_wide_pane_shows_flags_in_full() -> None:
    row = PodRow("shop", "web-1", "Running", node="worker-1", flags=["privileged", "cordoned"])
    _, line = await _lines([row], 120)
    assert "privileged cordoned" in line


async def test_no_flags_and_no_nodes_leave_the_room_to_names() -> None:
    name = "storefront-7b6b5d8bc4-287pg"
    header, line = await _lines([PodRow("shop", name)], 56)
    assert "NODE" not in header
    assert f"shop/{name}" in line
