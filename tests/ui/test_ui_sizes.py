"""The screen at every size: key hints that fit whole, zoom that fits, notices that
cover no row, and the palette's screenshot."""

from __future__ import annotations

import stat
import time
from typing import Any, ClassVar

import pytest
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from ui_helpers import engine_with, make_app, miner_events, screen_text, wait_for

from ktriage.ui.format import event_time
from ktriage.ui.themes import VARIABLE_DEFAULTS
from ktriage.ui.widgets.key_hints import Hint, KeyHints, fit_hints
from ktriage.ui.widgets.notice_bar import HISTORY, NoticeBar

SIZES = [(80, 24), (100, 30), (120, 36), (200, 60), (250, 70)]


def _lines(app: Any) -> list[str]:
    return screen_text(app).rstrip("\n").split("\n")


# ---- key hints --------------------------------------------------------------------


def test_fit_hints_drops_the_least_needed_first_and_never_help() -> None:
    hints = [
        Hint("enter", "⏎", "Timeline", "open", True, ""),
        Hint("q", "q", "Quit", "quit", True, ""),
        Hint("?", "?", "Help", "help", True, ""),
        Hint("s", "s", "Snapshot", "save_snapshot", True, ""),
        Hint("t", "t", "Theme", "cycle_theme", True, ""),
        Hint("c", "c", "Cordon", "containment('cordon')", True, ""),
    ]
    kept, dropped = fit_hints(hints, 200)
    assert (kept, dropped) == (hints, 0)
    kept, dropped = fit_hints(hints, 40)
    assert dropped == 2
    assert [h.key for h in kept] == ["enter", "q", "?", "c"]
    assert kept[2].description == "Help (+2)"
    assert sum(h.width for h in kept) <= 40
    # Narrower than anything: help stays, with the count of the rest.
    kept, dropped = fit_hints(hints, 3)
    assert [h.key for h in kept] == ["?"]
    assert dropped == 5


class ManyKeysApp(App[None]):
    """An app with more (and longer) hints than any footer holds."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("question_mark", "help", "Help", key_display="?"),
        *(Binding(k, f"noop('{k}')", f"Long description {k}") for k in "abcdefghijklmnop"),
    ]

    def get_theme_variable_defaults(self) -> dict[str, str]:
        return dict(VARIABLE_DEFAULTS)

    def compose(self) -> ComposeResult:
        yield KeyHints()

    def action_noop(self, key: str) -> None:
        pass

    def action_help(self) -> None:
        pass


@pytest.mark.parametrize("width", [40, 80, 100, 120, 200])
async def test_hostile_many_long_hints_footer_has_no_partial_word(width: int) -> None:
    app = ManyKeysApp()
    async with app.run_test(size=(width, 5)) as pilot:
        footer = app.query_one(KeyHints)
        await wait_for(pilot, lambda: bool(footer.shown_hints))
        await pilot.pause()
        line = _lines(app)[-1]
        assert len(line) <= width
        for hint in footer.shown_hints:
            assert f"{hint.key_display} {hint.description}" in line
        assert footer.dropped > 0
        assert "? Help (+" in line
        # No stray character after the palette hint at the right edge.
        if "palette" in line:
            assert line.rstrip().endswith("^p palette")
        # Every hint is whole: the words are those of hints, nothing cut.
        words = {w for h in footer.shown_hints for w in f"{h.key_display} {h.description}".split()}
        words |= {"▏^p", "^p", "palette"}
        assert set(line.split()) <= words


@pytest.mark.parametrize("size", SIZES)
async def test_main_screen_footer_is_whole_at_every_size(tmp_path, size) -> None:
    width, height = size
    app = make_app(engine_with(miner_events()), tmp_path)
    async with app.run_test(size=size) as pilot:
        footer = app.screen.query_one(KeyHints)
        await wait_for(pilot, lambda: bool(footer.shown_hints))
        for keys in ((), ("tab", "tab", "tab")):
            await pilot.press(*keys)
            await pilot.pause()
            lines = _lines(app)
            assert len(lines) == height
            line = lines[-1]
            assert len(line) <= width
            for hint in footer.shown_hints:
                assert f"{hint.key_display} {hint.description}" in line
            assert "? Help" in line
            assert line.rstrip().endswith("^p palette")


async def test_footer_reflows_when_the_terminal_shrinks(tmp_path) -> None:
    app = make_app(engine_with(miner_events()), tmp_path)
    async with app.run_test(size=(200, 40)) as pilot:
        footer = app.screen.query_one(KeyHints)
        await wait_for(pilot, lambda: bool(footer.shown_hints))
        wide = footer.dropped
        await pilot.resize_terminal(50, 24)
        await wait_for(pilot, lambda: footer.dropped > wide)
        line = _lines(app)[-1]
        assert len(line) <= 50
        assert "? Help (+" in line


async def test_footer_is_rebuilt_only_when_its_hints_change(tmp_path, monkeypatch) -> None:
    composed: list[int] = []
    compose = KeyHints.compose

    def counted(self: KeyHints) -> Any:
        composed.append(1)
        return compose(self)

    monkeypatch.setattr(KeyHints, "compose", counted)
    app = make_app(engine_with(miner_events()), tmp_path)
    async with app.run_test(size=(160, 45)) as pilot:
        footer = app.screen.query_one(KeyHints)
        await wait_for(pilot, lambda: bool(footer.shown_hints))
        await pilot.pause()
        before, hints = len(composed), footer.text()
        # Refreshes of the bindings that leave the hints as they are (a cursor move in
        # the Pods pane makes one, the ticks of a live session too).
        for key in ("j", "k"):
            await pilot.press(key)
            app.screen.refresh_bindings()
            await pilot.pause()
        assert len(composed) == before and footer.text() == hints
        # Another pane has other keys: the row follows.
        await pilot.press("tab")
        await wait_for(pilot, lambda: footer.text() != hints)
        assert len(composed) > before
        assert _lines(app)[-1].startswith(footer.shown_hints[0].key_display)


# ---- zoom -------------------------------------------------------------------------


@pytest.mark.parametrize("size", [(80, 24), (120, 36), (200, 60)])
@pytest.mark.parametrize("pane", ["incidents", "timeline", "detail", "pods", "live"])
async def test_zoom_fits_the_screen(tmp_path, size, pane) -> None:
    width, height = size
    app = make_app(engine_with(miner_events()), tmp_path)
    async with app.run_test(size=size) as pilot:
        screen = app.main_screen
        await wait_for(pilot, lambda: screen.incidents.selected is not None)
        widget = screen.query_one(f"#{pane}")
        widget.focus()
        await pilot.press("z")
        await wait_for(pilot, lambda: screen.maximized is widget)
        await pilot.pause()
        assert widget.region.x == 0 and widget.region.width == width
        # The status bar above and the key hints below stay.
        assert screen.query_one("#status").region.y == 0
        assert widget.region.y == 1
        assert widget.region.bottom == height - 1
        lines = _lines(app)
        assert all(len(line) <= width for line in lines)
        # Both borders are on screen: the pane's right edge is the screen's last column.
        assert lines[1].startswith("╭") and lines[1].endswith("╮")
        assert lines[-2].startswith("╰") and lines[-2].endswith("╯")
        if pane == "pods":
            assert "NODE" in lines[2] and "FLAGS" in lines[2]
        if pane == "live":
            assert "INCIDENT" in lines[2]
        await pilot.press("z")
        await wait_for(pilot, lambda: screen.maximized is None)


# ---- notices ----------------------------------------------------------------------


def _newest_live_row_visible(screen: Any) -> bool:
    live = screen.live
    last = live.row_count() - 1
    top = round(live.scroll_y)
    return top <= last < top + live.page_height


@pytest.mark.parametrize("size", [(80, 24), (120, 36)])
async def test_a_notice_never_hides_the_newest_live_rows(tmp_path, size) -> None:
    app = make_app(engine_with(miner_events()), tmp_path)
    async with app.run_test(size=size, notifications=True) as pilot:
        screen = app.main_screen
        await wait_for(pilot, lambda: screen.live.row_count() > 0)
        newest = screen.live.shown[-1]
        app.notify("Snapshot saved: /somewhere/INC-1.md", timeout=30)
        await wait_for(pilot, lambda: screen.notice.active)
        await pilot.pause()
        # No toast over the panes: the notice has its own line below them.
        assert not app._notifications
        assert screen.notice.region.height == 1
        assert screen.notice.region.y >= screen.live.region.bottom
        assert screen.live.region.bottom <= screen.query_one("#panes").region.bottom
        assert _newest_live_row_visible(screen)
        text = screen_text(app)
        assert "Snapshot saved: /somewhere/INC-1.md" in text
        assert event_time(newest.time) in text.split("Live stream")[1]
        # A long explanation takes the lines the panes spare, no more.
        screen.notice.show_notice(
            "x Cordon: not possible now", "\n".join(f"line {i}" for i in range(40))
        )
        await pilot.pause()
        await pilot.pause()
        assert screen.live.region.bottom <= screen.query_one("#panes").region.bottom
        assert screen.notice.region.bottom <= size[1] - 1
        assert _newest_live_row_visible(screen)
        # What did not fit says where the rest is.
        shown_text = screen_text(app)
        assert "line 0" in shown_text and "line 39" not in shown_text
        assert "all of it: palette, Notices" in shown_text
        await pilot.press("escape")
        await wait_for(pilot, lambda: not screen.notice.active)


async def test_newest_notice_wins_and_counts_the_earlier_ones(tmp_path) -> None:
    app = make_app(engine_with(miner_events()), tmp_path)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = app.main_screen
        for n in range(3):
            app.notify(f"notice {n}", timeout=30)
        await wait_for(pilot, lambda: len(screen.notice.history) == 3)
        await pilot.pause()
        text = screen_text(app)
        assert "notice 2" in text and "+2 earlier" in text
        assert "notice 0" not in text
        app.action_notices()
        await pilot.pause()
        text = screen_text(app)
        assert "notice 0" in text and "notice 1" in text


async def test_a_notice_hides_after_its_time(tmp_path) -> None:
    app = make_app(engine_with(miner_events()), tmp_path)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = app.main_screen
        app.notify("brief", timeout=0.5)
        await wait_for(pilot, lambda: screen.notice.active)
        await wait_for(pilot, lambda: not screen.notice.active, timeout=5)
        assert screen.notice.region.height == 0


async def test_an_error_notice_stays_long_enough_to_be_read(tmp_path) -> None:
    app = make_app(engine_with(miner_events()), tmp_path)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = app.main_screen
        app.notify("Snapshot not saved: disk full", severity="error", timeout=1)
        await wait_for(pilot, lambda: screen.notice.active)
        assert screen.notice.current.severity == "error"
        assert screen.notice.seconds >= 15
        assert "✖ Snapshot not saved: disk full" in screen_text(app)


async def test_hostile_notice_markup_and_escapes_stay_text(tmp_path) -> None:
    app = make_app(engine_with(miner_events()), tmp_path)
    hostile = "[bold red]x[/] [link=http://evil]y[/link] \x1b]52;c;ZXZpbA==\x07 \x1b[2J"
    async with app.run_test(size=(200, 36)) as pilot:
        screen = app.main_screen
        # markup=True on purpose: a caller's mistake must not make it markup.
        app.notify(hostile, title="[b]t[/b]\x1b[31m", timeout=30)
        await wait_for(pilot, lambda: screen.notice.active)
        await pilot.pause()
        rendered = screen.notice.render()
        assert "[bold red]x[/]" in rendered.plain
        assert "[link=http://evil]" in rendered.plain
        assert "[b]t[/b]" in rendered.plain
        assert "\x1b" not in rendered.plain and "\x07" not in rendered.plain
        assert not any(span.style and "link" in str(span.style) for span in rendered.spans)


async def test_hostile_notice_over_a_dialog_is_a_plain_text_toast(tmp_path) -> None:
    app = make_app(engine_with(miner_events()), tmp_path)
    async with app.run_test(size=(120, 36), notifications=True) as pilot:
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: app.screen is not app.main_screen)
        app.notify("[bold red]x[/] [link=http://evil]y[/link]", title="[b]t[/b]")
        await wait_for(pilot, lambda: bool(app._notifications))
        (toast,) = list(app._notifications)
        assert toast.markup is False
        assert "[bold red]x[/]" in screen_text(app)
        assert not app.main_screen.notice.active


async def test_hostile_notice_burst_of_ten_thousand_is_bounded(tmp_path) -> None:
    app = make_app(engine_with(miner_events()), tmp_path)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = app.main_screen
        started = time.monotonic()
        for n in range(10_000):
            app.notify(f"burst {n} " + "x" * 50, timeout=30)
        await wait_for(pilot, lambda: "burst 9999" in screen.notice.text, timeout=60)
        elapsed = time.monotonic() - started
        await pilot.pause()
        assert len(screen.notice.history) == HISTORY
        assert screen.notice.replaced == 9_999
        assert screen.notice.region.height == 1
        assert "+9999 earlier" in screen_text(app)
        assert not app._notifications
        # The app still answers keys.
        await pilot.press("tab")
        await wait_for(pilot, lambda: app.screen.focused is screen.timeline)
        assert elapsed < 60


async def test_hostile_notice_huge_text_is_clipped(tmp_path) -> None:
    app = make_app(engine_with(miner_events()), tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.main_screen
        app.notify("A" * 1_000_000 + " token=s3cr3t-value", timeout=30)
        await wait_for(pilot, lambda: screen.notice.active)
        bar = screen.query_one(NoticeBar)
        assert len(bar.current.message) <= 2000
        assert bar.region.height == 1


# ---- palette screenshot -----------------------------------------------------------


async def test_palette_screenshot_saves_an_svg_next_to_the_snapshots(tmp_path) -> None:
    app = make_app(engine_with(miner_events()), tmp_path)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = app.main_screen
        titles = [c.title for c in app.get_system_commands(screen)]
        assert titles.count("Screenshot") == 1
        (command,) = [c for c in app.get_system_commands(screen) if c.title == "Screenshot"]
        command.callback()
        directory = tmp_path / "snapshots"
        await wait_for(pilot, lambda: directory.exists() and any(directory.glob("*.svg")))
        (path,) = directory.glob("*.svg")
        assert path.read_text().lstrip().startswith("<svg")
        assert stat.S_IMODE(path.stat().st_mode) == 0o600  # it shows incident data
        await wait_for(pilot, lambda: str(path) in screen.notice.text)
        # However long the directory, the line ends with the file's name.
        await pilot.resize_terminal(80, 24)
        await wait_for(pilot, lambda: path.name in _lines(app)[-2])
        # A second one does not overwrite the first.
        second = app.action_save_screenshot()
        assert second is not None and second != path and second.exists()


async def test_palette_screenshot_says_why_when_it_cannot_save(tmp_path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    app = make_app(engine_with(miner_events()), tmp_path, snapshot_dir=blocker / "snapshots")
    async with app.run_test(size=(120, 36)) as pilot:
        screen = app.main_screen
        assert app.action_save_screenshot() is None
        await wait_for(pilot, lambda: "Screenshot not saved" in screen.notice.text)
