"""Kind families in the filter, dates where times would mislead, the LAST column, the
palette's unavailable actions, and source problems on the status line."""

from __future__ import annotations

from typing import Any

import pytest
from textual.app import App, ComposeResult
from ui_helpers import (
    T0,
    context,
    engine_with,
    make_app,
    miner_events,
    notices,
    screen_text,
    signal,
    wait_for,
)

from ktriage.core.model import EntityKind, Event, Severity, entity
from ktriage.engine import SourceHealth
from ktriage.ui.query import parse_query
from ktriage.ui.screens.help import help_text
from ktriage.ui.themes import VARIABLE_DEFAULTS
from ktriage.ui.widgets.status_bar import StatusBar

POD = entity(EntityKind.POD, "shop", "web-1")
NODE = entity(EntityKind.NODE, "", "node-1")
USER = entity(EntityKind.USER, "", "ci-deploy")


def _event(t: float, source: str, ref: str, kind: str, summary: str, sig: bool = False) -> Event:
    if sig:
        return signal(t, source, ref, kind, Severity.HIGH, summary, (POD, NODE, USER))
    ev = context(t, source, ref, summary, (POD, NODE))
    ev.kind = kind
    return ev


def _mixed() -> list[Event]:
    return [
        _event(T0, "audit", "a1", "exec", "ci-deploy exec into shop/web-1: sh", sig=True),
        _event(T0 + 1, "tetragon", "t1", "process-exec", "exec /bin/ls in shop/web-1"),
        _event(T0 + 2, "tetragon", "t2", "shell", "Shell: /bin/sh in shop/web-1", sig=True),
        _event(T0 + 3, "falco", "f1", "shell", "Terminal shell in container", sig=True),
        _event(T0 + 4, "tetragon", "t3", "process-exit", "exit /bin/ls in shop/web-1"),
        _event(T0 + 5, "audit", "a2", "secret-read", "ci-deploy read secret", sig=True),
        _event(T0 + 6, "tetragon", "t4", "network-connect", "connect curl -> 1.2.3.4:443"),
    ]


# ---- kind families ------------------------------------------------------------------


def test_kind_exec_matches_the_audit_exec_and_the_runtime_execs() -> None:
    q = parse_query("kind:exec")
    assert not q.problems
    matched = [(e.source, e.kind) for e in _mixed() if q.matches_event(e)]
    assert matched == [
        ("audit", "exec"),
        ("tetragon", "process-exec"),
        ("tetragon", "shell"),
        ("falco", "shell"),
    ]
    # Either of two families; a plain kind is still matched by its beginning.
    both = [e.kind for e in _mixed() if parse_query("kind:secret,network").matches_event(e)]
    assert both == ["secret-read", "network-connect"]
    assert [e.kind for e in _mixed() if parse_query("kind:process-").matches_event(e)] == [
        "process-exec",
        "process-exit",
    ]


def test_an_unknown_kind_names_the_families() -> None:
    q = parse_query("kind:exce")
    assert q.problems
    assert "exec, network, file, rbac, secret, pod" in q.problems[0]


def test_hostile_kind_values_stay_plain_and_bounded() -> None:
    q = parse_query("kind:" + "[b]x[/b]," * 2000)
    assert len(q.kinds) == 2000
    assert not any(q.matches_event(e) for e in _mixed())


async def test_kind_exec_filters_the_live_stream_across_sources(tmp_path) -> None:
    app = make_app(engine_with(_mixed()), tmp_path)
    async with app.run_test(size=(160, 45)) as pilot:
        screen = app.main_screen
        await wait_for(pilot, lambda: screen.live.row_count() == len(_mixed()))
        screen.live.focus()
        await pilot.press("slash", *"kind:exec", "enter")
        await wait_for(pilot, lambda: screen.live.query_filter is not None)
        assert {(e.source, e.kind) for e in screen.live.shown} == {
            ("audit", "exec"),
            ("tetragon", "process-exec"),
            ("tetragon", "shell"),
            ("falco", "shell"),
        }
        await pilot.press("escape", "slash", *"kind:exce", "enter")
        await wait_for(pilot, lambda: any("exec, network" in n.message for n in notices(app)))


def test_help_lists_the_kind_families_with_examples() -> None:
    text = help_text("").plain
    for family in ("exec", "network", "file", "rbac", "secret", "pod"):
        assert f"  {family} " in text
    assert "e.g. /kind:exec ns:shop" in text
    assert "LAST" in text and "not its age" in text
    assert "● ◐ ◌ ⧖ ✖ ✓" in text


# ---- time -----------------------------------------------------------------------------


async def test_an_old_incident_names_its_day_and_today_needs_no_date(tmp_path) -> None:
    app = make_app(engine_with(miner_events()), tmp_path)
    app.wall_clock = lambda: T0 + 30 * 86_400  # looked at a month later
    async with app.run_test(size=(160, 45)) as pilot:
        screen = app.main_screen
        await wait_for(pilot, lambda: screen.timeline.incident is not None)
        # The events are from 2027-01-15: not today, whatever the clock of the replay
        # says (it stops at the last event).
        assert "2027-01-15" in str(screen.timeline.border_title)
        assert "2027-01-15" in screen_text(app).split("\n")[11]
        assert not screen.timeline.dated
        # Seen on the day itself, the day is not named.
        screen.timeline.wall_clock = lambda: T0 + 60
        screen.timeline.show_incident(None)
        screen.timeline.show_incident(screen.incidents.selected)
        await pilot.pause()
        assert "2027-01-15" not in str(screen.timeline.border_title)
        assert "TIME (UTC)" in screen_text(app)


async def test_an_incident_spanning_days_dates_every_row(tmp_path) -> None:
    before_midnight = T0 + 15 * 3600 + 59 * 60 + 50  # 2027-01-15 23:59:50
    events = [
        _event(before_midnight, "audit", "a1", "exec", "ci-deploy exec into web-1", sig=True),
        _event(before_midnight + 20.25, "tetragon", "t2", "shell", "Shell: /bin/sh", sig=True),
    ]
    app = make_app(engine_with(events), tmp_path)
    async with app.run_test(size=(200, 50)) as pilot:
        screen = app.main_screen
        await wait_for(pilot, lambda: screen.timeline.incident is not None)
        await pilot.pause()
        assert len(screen.timeline.incident.timeline) == 2
        assert screen.timeline.dated
        assert "2027-01-15 → 2027-01-16" in str(screen.timeline.border_title)
        text = screen_text(app)
        assert "DATE  TIME (UTC)" in text
        assert "01-15 23:59:50.000" in text and "01-16 00:00:10.250" in text
    # Narrow: the date stays, the milliseconds go.
    app = make_app(engine_with(events), tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.main_screen
        await wait_for(pilot, lambda: screen.timeline.incident is not None)
        await pilot.pause()
        text = screen_text(app)
        assert "01-16 00:00:10 " in text and "01-16 00:00:10.250" not in text


async def test_the_last_column_says_what_it_measures(tmp_path) -> None:
    app = make_app(engine_with(miner_events()), tmp_path)
    async with app.run_test(size=(160, 45)) as pilot:
        await wait_for(pilot, lambda: app.main_screen.incidents.selected is not None)
        header = screen_text(app).split("\n")[2]
        assert header.rstrip(" │").endswith("EVENTS  LAST")
        assert " AGE" not in header


# ---- palette --------------------------------------------------------------------------


async def test_palette_says_why_an_action_is_not_possible(tmp_path) -> None:
    app = make_app(engine_with(miner_events()), tmp_path)
    async with app.run_test(size=(160, 45)) as pilot:
        screen = app.main_screen
        await wait_for(pilot, lambda: screen.incidents.selected is not None)
        unavailable = app.unavailable_action_commands()
        titles = [t for t, _h, _c in unavailable]
        assert "Cordon (c): not possible now" in titles
        assert all(h == "a replay has no cluster to act on" for _t, h, _c in unavailable)
        # Nothing possible in a replay: the palette offers no action to run.
        assert app.action_commands() == []
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"Cordon")
        await wait_for(pilot, lambda: "not possible now" in screen_text(app))
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.screen is screen)
        await wait_for(pilot, lambda: "a replay has no cluster" in screen.notice.text)


async def test_palette_has_navigation_commands(tmp_path) -> None:
    app = make_app(engine_with(miner_events()), tmp_path)
    async with app.run_test(size=(160, 45)) as pilot:
        screen = app.main_screen
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"Go to Live")
        await wait_for(pilot, lambda: "Go to Live stream" in screen_text(app))
        await pilot.press("enter")
        await wait_for(pilot, lambda: screen.focused is screen.live)


# ---- source problems on the status line ------------------------------------------------


class BarApp(App[None]):
    def get_theme_variable_defaults(self) -> dict[str, str]:
        return dict(VARIABLE_DEFAULTS)

    def compose(self) -> ComposeResult:
        yield StatusBar(id="status")


async def _line(width: int, health: list[Any]) -> str:
    app = BarApp()
    async with app.run_test(size=(width, 5)) as pilot:
        bar = app.query_one(StatusBar)
        bar.update_status(context="prod", cluster="prod", mode="live", health=health, now=T0 + 60)
        await wait_for(pilot, lambda: bar.size.width == width)
        return bar.render().plain


def _mistyped(path: str) -> list[SourceHealth]:
    return [
        SourceHealth(name="kube", kind="kube", state="connected"),
        SourceHealth(name="audit", kind="audit", state="connected"),
        SourceHealth(
            name=f"falco:{path}",
            kind="falco",
            state="starting",
            last_error=f"waiting for file {path} to appear",
        ),
        SourceHealth(name="tetragon", kind="tetragon", state="connected"),
    ]


@pytest.mark.parametrize("width", [120, 160, 250])
async def test_a_mistyped_source_path_is_said_on_the_status_line(width: int) -> None:
    line = await _line(width, _mistyped("/var/log/falc0.json"))
    assert len(line) == width
    assert "falc0.json" in line
    assert "waiting for file" in line
    assert "tetragon" in line or "tet " in line


async def test_a_mistyped_source_path_is_marked_when_its_words_do_not_fit() -> None:
    line = await _line(80, _mistyped("/var/log/falc0.json"))
    assert line.startswith(" !")
    assert "◌" in line and ("tet" in line)


@pytest.mark.parametrize("width", [80, 120, 250])
async def test_hostile_very_long_source_path_keeps_the_line(width: int) -> None:
    path = "/" + "/".join(["d" * 200] * 50) + "/" + "[b]x" * 2000 + "/falc0.json"
    line = await _line(width, _mistyped(path))
    assert len(line) == width
    assert "tet" in line  # the source after it is still on the line
    assert line.rstrip().endswith("08:01:00Z") or line.rstrip().endswith("08:01:00")
    if width >= 120:
        assert "…/" in line


async def test_live_stream_dates_rows_when_an_old_event_arrives_in_between(tmp_path) -> None:
    """A watch reports a pod created weeks ago among today's events: its time alone
    would read as today's."""
    weeks_ago = T0 - 21 * 86_400
    events = [
        _event(T0, "audit", "a1", "exec", "ci-deploy exec into web-1", sig=True),
        _event(weeks_ago, "kube", "k1", "privileged-pod", "Pod kube-system/proxy privileged"),
        _event(T0 + 1, "tetragon", "t1", "process-exec", "exec /bin/ls"),
    ]
    app = make_app(engine_with(events), tmp_path)
    app.wall_clock = lambda: T0 + 60  # seen on the day
    async with app.run_test(size=(200, 50)) as pilot:
        screen = app.main_screen
        await wait_for(pilot, lambda: screen.live.row_count() == 3)
        await pilot.pause()
        assert screen.live.dated
        text = screen_text(app)
        assert "12-25 08:00:00.000" in text  # the old one, dated
        assert "01-15 08:00:01.000" in text
