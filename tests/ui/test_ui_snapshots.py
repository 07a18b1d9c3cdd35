"""SVG snapshots of the main screens on the demo scenario, with a fixed clock.

Update the baselines with `pytest tests/ui/test_ui_snapshots.py --snapshot-update`
and look at the report before committing them.
"""

from __future__ import annotations

import pytest

from ktriage.ui.screenshots import replay_app


@pytest.fixture
def app_for(cryptominer_streams, tmp_path):
    def build(theme: str = "ktriage-dark"):
        return replay_app(cryptominer_streams, theme, tmp_path)

    return build


# The three sizes every view is checked at: the smallest usual terminal, a laptop, a
# wide monitor.
SIZES = {"80x24": (80, 24), "120x36": (120, 36), "200x60": (200, 60)}


@pytest.mark.parametrize("size", SIZES)
def test_main_screen(snap_compare, app_for, size):
    assert snap_compare(app_for(), terminal_size=SIZES[size])


@pytest.mark.parametrize("size", SIZES)
def test_pods_zoomed(snap_compare, app_for, size):
    # Pods zoomed shows every column, the status line and the key hints.
    assert snap_compare(app_for(), terminal_size=SIZES[size], press=["tab", "tab", "tab", "z"])


@pytest.mark.parametrize("size", ["80x24", "200x60"])
def test_help_screen_sized(snap_compare, app_for, size):
    assert snap_compare(app_for(), terminal_size=SIZES[size], press=["question_mark"])


def test_main_screen_light(snap_compare, app_for):
    assert snap_compare(app_for("ktriage-light"), terminal_size=(120, 36))


def test_main_screen_high_contrast(snap_compare, app_for):
    assert snap_compare(app_for("ktriage-high-contrast"), terminal_size=(120, 36))


def test_help_screen(snap_compare, app_for):
    assert snap_compare(app_for(), terminal_size=(120, 36), press=["question_mark"])


def test_timeline_zoomed(snap_compare, app_for):
    assert snap_compare(app_for(), terminal_size=(120, 36), press=["enter", "z"])


def test_event_detail(snap_compare, app_for):
    keys = ["enter", "slash", *"Miner:", "enter", "enter"]
    assert snap_compare(app_for(), terminal_size=(120, 36), press=keys)


def test_pods_all_and_filtered_live_stream(snap_compare, app_for):
    keys = ["tab", "tab", "tab", "a", "tab", "slash", *"sev:high", "enter"]
    assert snap_compare(app_for(), terminal_size=(120, 36), press=keys)
