"""The Pods pane shows NODE where there are nodes, and flags that stay readable: in
full when they fit, else abbreviated with the containment flags first, never cut off."""

from __future__ import annotations

import re

import pytest
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


CONTAINED = PodRow(
    "kube-system",
    "pwn-x7k2q",
    "CrashLoopBackOff",
    restarts=12,
    node="worker-2",
    flags=["privileged", "hostPath", "quarantined", "cordoned"],
)
PLAIN = PodRow("shop", "web-1", "Running", restarts=0, node="worker-1")


def _shows_containment(line: str) -> bool:
    """Both containment flags: in full, as short words, or as their initials where those
    do not fit ("Q C", "C Q+18")."""
    if re.search(r"\bquar(antined)?\b", line) and re.search(r"\bcord(oned)?\b", line):
        return True
    return bool(re.search(r"\bQ\b", line) and re.search(r"\bC\b", line))


@pytest.mark.parametrize("width", [28, 40, 60, 100])
async def test_every_width_shows_node_phase_restarts_and_containment(width: int) -> None:
    header, contained, plain = await _lines([CONTAINED, PLAIN], width)
    assert "NODE" in header and "RST" in header and "PHASE" in header, header
    assert "worke" in contained and "worke" in plain, (contained, plain)
    assert _shows_containment(contained), contained
    assert " 12 " in contained, contained
    assert "pwn" in contained and "web" in plain
    assert len(contained) <= width and len(header) <= width


async def test_narrow_pane_uses_short_phases_that_read_as_the_word() -> None:
    _, contained, plain = await _lines([CONTAINED, PLAIN], 28)
    assert "Crash" in contained and "Run" in plain, (contained, plain)


async def test_wide_pane_fits_crashloopbackoff_in_full() -> None:
    _, contained, _ = await _lines([CONTAINED, PLAIN], 80)
    assert "CrashLoopBackOff" in contained, contained


async def test_hostile_253_character_names_keep_node_and_containment_visible() -> None:
    row = PodRow(
        "ns-" + "n" * 60,
        "p" * 253,
        "R" * 253,
        restarts=7,
        node="w" * 253,
        flags=["quarantined", "cordoned"],
    )
    for width in (28, 40, 60, 100):
        header, line = await _lines([row], width)
        assert "NODE" in header
        assert "ww" in line and "…" in line, line
        assert _shows_containment(line), line
        assert len(line) <= width


async def test_hostile_twenty_flags_put_containment_first_at_every_width() -> None:
    flags = [f"flag{i}" for i in range(18)] + ["cordoned", "quarantined"]
    row = PodRow("ns", "pod", "Running", node="worker-3", flags=flags)
    for width in (28, 40, 60, 100):
        _, line = await _lines([row], width)
        assert "worke" in line and _shows_containment(line), (width, line)
        assert len(line) <= width


@pytest.mark.parametrize("width", [28, 40, 60])
async def test_replicas_cut_in_the_middle_stay_apart(width: int) -> None:
    """Two replicas differ only at the end of their names: a cut keeps the end."""
    rows = [
        PodRow("shop", f"storefront-7b6b5d8bc4-{suffix}", "Running", node="worker-1")
        for suffix in ("dvnml", "rfwxj")
    ]
    _, first, second = await _lines(rows, width)
    if width < 60:  # at 60 the whole name fits
        assert "…" in first, first
    assert first.split()[0][-3:] == "nml" and second.split()[0][-3:] == "wxj", (first, second)
