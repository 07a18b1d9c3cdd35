"""Themes, the help screen, the command palette and saving snapshots."""

from __future__ import annotations

import os
import stat

import pytest
from ui_helpers import engine_with, make_app, miner_events, notices, screen_text, wait_for

from ktriage.ui.hooks import ACTION_KEYS
from ktriage.ui.screens.help import HelpScreen
from ktriage.ui.themes import SHIPPED_THEMES, ThemeFileError, load_theme_file, load_themes
from ktriage.ui.widgets.incident_list import IncidentList


def test_shipped_themes_load_with_severity_variables():
    themes = load_themes().themes
    for name in SHIPPED_THEMES:
        theme = themes[name]
        for level in ("critical", "high", "medium", "low", "info"):
            assert f"severity-{level}" in theme.variables
    assert themes["ktriage-light"].dark is False


def test_user_theme_is_added_and_a_broken_one_is_skipped_with_a_reason(tmp_path):
    folder = tmp_path / "themes"
    folder.mkdir()
    (folder / "mine.toml").write_text(
        'name = "mine"\nprimary = "#ff00ff"\n[variables]\nseverity-critical = "#ffffff"\n'
    )
    (folder / "broken.toml").write_text('name = "broken"\nprimary = "not-a-colour"\n')
    (folder / "typo.toml").write_text('name = "typo"\nprimary = "#000"\nforground = "#fff"\n')
    loaded = load_themes(folder)
    assert loaded.themes["mine"].variables["severity-critical"] == "#ffffff"
    reasons = dict((os.path.basename(p), r) for p, r in loaded.problems)
    assert "primary" in reasons["broken.toml"]
    assert "forground" in reasons["typo.toml"]
    with pytest.raises(ThemeFileError):
        load_theme_file(folder / "broken.toml")


async def test_t_cycles_the_themes_and_colours_follow(tmp_path):
    app = make_app(engine_with(miner_events()), tmp_path)
    async with app.run_test(size=(120, 36)) as pilot:
        incidents = app.screen.query_one(IncidentList)
        assert app.theme == "ktriage-dark"
        dark = incidents.severity_style(incidents.shown[0].severity).color
        await pilot.press("t")
        assert app.theme == "ktriage-high-contrast"
        await pilot.press("t")
        assert app.theme == "ktriage-light"
        light = incidents.severity_style(incidents.shown[0].severity).color
        # Severity colours come from the theme's variables.
        assert dark is not None and light is not None
        assert dark.triplet.hex == "#ff5c7a"
        assert light.triplet.hex == "#c4163a"
        await pilot.press("t")
        assert app.theme == "ktriage-dark"


async def test_theme_option_and_unknown_theme_falls_back(tmp_path):
    app = make_app(engine_with(miner_events()), tmp_path, theme="ktriage-light")
    async with app.run_test(size=(120, 36)):
        assert app.theme == "ktriage-light"
    app = make_app(engine_with(miner_events()), tmp_path, theme="no-such-theme")
    async with app.run_test(size=(120, 36)):
        assert app.theme == "ktriage-dark"


async def test_help_lists_every_key_including_the_action_keys(tmp_path):
    app = make_app(engine_with(miner_events()), tmp_path)
    # Tall enough for the whole help text (every action of the catalog, with its undo).
    async with app.run_test(size=(120, 140)) as pilot:
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        text = screen_text(app)
        for key in ("tab / shift+tab", "ctrl+p", "esc", "n / N", "g / G", "/", "?"):
            assert key in text
        for action in ACTION_KEYS:
            assert action.description in text
        # Replay has no cluster: the actions say why they are not offered.
        assert "Not available" in text
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)


async def test_read_only_hides_the_action_keys(tmp_path):
    app = make_app(engine_with(miner_events()), tmp_path, read_only=True)
    async with app.run_test(size=(120, 36)) as pilot:
        assert app.action_provider is None
        assert app.check_action("containment", ("cordon",)) is False
        footer = screen_text(app).splitlines()[-1]
        assert "Cordon" not in footer
        await pilot.press("question_mark")
        assert "read-only" in screen_text(app)


async def test_s_saves_the_selected_incident_snapshot_privately(tmp_path):
    app = make_app(engine_with(miner_events()), tmp_path)
    async with app.run_test(size=(120, 36), notifications=True) as pilot:
        incidents = app.screen.query_one(IncidentList)
        title = incidents.selected.title
        await pilot.press("s")
        await wait_for(pilot, lambda: app.last_snapshot is not None)
        path = app.last_snapshot
        assert path.parent == tmp_path / "snapshots"
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
        body = path.read_text()
        assert title in body
        assert "s3cr3t-value" not in body
        # The notification names the file.
        await wait_for(pilot, lambda: any(str(path) in n.message for n in notices(app)))
        await wait_for(pilot, lambda: "Snapshot saved" in screen_text(app))


async def test_default_snapshot_dir_is_the_xdg_state_dir(tmp_path):
    from ktriage.ui.app import default_snapshot_dir

    assert default_snapshot_dir() == tmp_path / "state" / "ktriage" / "snapshots"


async def test_command_palette_goes_to_an_incident(tmp_path):
    app = make_app(engine_with(miner_events()), tmp_path)
    async with app.run_test(size=(120, 36)) as pilot:
        incidents = app.screen.query_one(IncidentList)
        target = incidents.shown[1]
        await pilot.press("ctrl+p")
        await pilot.press(*"debug-shell")
        await wait_for(pilot, lambda: "Go to" in screen_text(app))
        await pilot.press("enter")
        await wait_for(pilot, lambda: incidents.selected is not None)
        await wait_for(pilot, lambda: incidents.selected.id == target.id)
        assert app.focused.id == "timeline"


async def test_the_palette_offers_ktriage_themes_and_help_not_textual_ones(tmp_path):
    app = make_app(engine_with(miner_events()), tmp_path)
    async with app.run_test(size=(120, 36)):
        titles = [c.title for c in app.get_system_commands(app.screen)]
        assert "Theme" not in titles and "Keys" not in titles
        assert "Quit" in titles  # the rest of Textual's entries stay


async def test_quitting_with_changes_in_place_asks_in_a_dialog(tmp_path):
    from ktriage.ui.screens.quit_confirm import QuitConfirmScreen

    class Provider:  # the app's action provider protocol, plus what it left in place
        def __init__(self) -> None:
            self.left = [
                "cordon of pod shop/web-1 (node worker-1)",
                "left by a failed isolate (A2): NetworkPolicy shop/[bold red]x[/] \x1b[2J",
            ]

        def available(self, name, selection):
            return False, "not in this test"

        async def run(self, name, selection):
            return None

        def still_in_place(self):
            return self.left

    app = make_app(engine_with(miner_events()), tmp_path)
    async with app.run_test(size=(120, 36)) as pilot:
        app.action_provider = Provider()
        await pilot.press("q")
        await wait_for(pilot, lambda: isinstance(app.screen, QuitConfirmScreen))
        text = screen_text(app)
        assert "Still in place in the cluster: 2 change(s)" in text
        assert "cordon of pod shop/web-1 (node worker-1)" in text
        # Names from the cluster are text: the markup shows as written, no escape acts.
        assert "NetworkPolicy shop/[bold red]x[/]" in text
        assert "\x1b" not in text
        assert "q quit anyway · esc stay" in text
        # esc stays; the dialog waits for its second q, it is no toast that times out.
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, QuitConfirmScreen))
        assert app.is_running
        await pilot.press("q")
        await wait_for(pilot, lambda: isinstance(app.screen, QuitConfirmScreen))
        await pilot.pause(0.3)
        assert app.is_running and isinstance(app.screen, QuitConfirmScreen)
        await pilot.press("q")
        await wait_for(pilot, lambda: not app.is_running)


async def test_quitting_with_nothing_in_place_quits_at_once(tmp_path):
    app = make_app(engine_with(miner_events()), tmp_path)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.press("q")
        await wait_for(pilot, lambda: not app.is_running)
