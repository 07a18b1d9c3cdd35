"""Untrusted text reaches the screen as plain text: no markup, no escape sequences."""

from __future__ import annotations

from ui_helpers import INJECTIONS, T0, context, engine_with, make_app, screen_text, signal, wait_for

from ktriage.core.model import EntityKind, Severity, entity
from ktriage.ui.widgets.detail_view import DetailView
from ktriage.ui.widgets.pod_list import PodList
from ktriage.ui.widgets.timeline import Timeline

NASTY = " ".join(INJECTIONS)
# What printable() makes of the control characters: visible escapes.
SHOWN = ("[bold red]x[/]", "[link=http://evil]y[/link]", "\\x1b]52;c;ZXZpbA==\\x07", "\\x1b[2J")


def injected_events():
    pod = entity(EntityKind.POD, "default", "web-[bold red]x[/]-[link=http://evil]y[/link]")
    user = entity(EntityKind.USER, "", "mallory\x1b[2J")
    alert = signal(
        T0,
        "falco",
        "f-1",
        "shell",
        Severity.CRITICAL,
        f"Shell spawned: sh -c {NASTY}",
        (pod, user),
        label=f"Shell {INJECTIONS[0]}",
    )
    alert.raw_inline = {"rule": "Terminal shell", "output": f"cmd={NASTY}", "proc": NASTY}
    return [alert, context(T0 + 1, "tetragon", "t-1", f"exec {NASTY}", (pod,))]


def assert_plain(text: str) -> None:
    for shown in SHOWN:
        assert shown in text, shown
    assert "\x1b" not in text and "\x07" not in text


def assert_no_markup_effects(segments) -> None:
    for seg in segments:
        if seg.control:
            continue  # the compositor's own cursor moves
        assert "\x1b" not in seg.text and "\x07" not in seg.text
        if seg.style is not None:
            assert seg.style.link is None
            assert not (seg.style.meta or {}).get("@click")


def frame_segments(app):
    update = app.screen._compositor.render_update(full=True)
    from rich.console import Console

    console = Console(width=app.size.width, force_terminal=True, color_system="truecolor")
    return list(console.render(update))


async def test_markup_and_escapes_in_names_commands_and_alerts_stay_text(tmp_path):
    app = make_app(engine_with(injected_events()), tmp_path)
    async with app.run_test(size=(200, 50)) as pilot:
        # Incidents (title, entities), timeline (summary), live stream, status bar.
        await pilot.press("enter")
        timeline = app.screen.query_one(Timeline)
        await pilot.press("g")
        text = screen_text(app)
        assert "web-[bold red]x[/]-[link=http://evil]y[/link]" in text
        assert "Shell [bold red]x[/]" in text
        assert "mallory\\x1b[2J" in text
        assert_plain(text)
        assert_no_markup_effects(frame_segments(app))

        # Detail: the alert's summary, entities and raw record.
        assert timeline.selected_event.ref == "f-1"
        await pilot.press("enter")
        detail = app.screen.query_one(DetailView)
        assert app.focused is detail
        whole = "\n".join(line.plain for line in detail.lines).replace("\n          ", "")
        assert "Shell spawned: sh -c" in whole
        assert "[link=http://evil]y[/link]" in whole
        # The raw record is JSON: control characters are escaped by JSON itself.
        assert "\\u001b]52;c;ZXZpbA==\\u0007" in whole
        assert "\x1b" not in whole and "\x07" not in whole
        assert_no_markup_effects(frame_segments(app))

        # Pods pane and the pod's summary.
        pods = app.screen.query_one(PodList)
        pods.focus()
        await pilot.press("enter")
        text = screen_text(app)
        assert "[link=http://evil]y[/link]" in text
        assert_no_markup_effects(frame_segments(app))


async def test_filter_text_and_palette_entries_are_not_markup(tmp_path):
    app = make_app(engine_with(injected_events()), tmp_path)
    async with app.run_test(size=(200, 50)) as pilot:
        # A query with markup in it ends up in the pane's border as typed.
        await pilot.press("slash", *"[b]", "enter")
        await wait_for(pilot, lambda: "filter: [b]" in screen_text(app))
        await pilot.press("escape")
        # The command palette shows incident titles as plain text.
        await pilot.press("ctrl+p", *"Go to INC")
        await wait_for(pilot, lambda: "Shell [bold red]x[/]" in screen_text(app))
        assert_no_markup_effects(frame_segments(app))
        await pilot.press("escape")


async def test_injected_rows_render_without_escape_bytes_at_row_level(tmp_path):
    from ui_helpers import screen_segments

    app = make_app(engine_with(injected_events()), tmp_path)
    async with app.run_test(size=(200, 50)) as pilot:
        await pilot.press("tab")
        segments = screen_segments(app)
        joined = "".join(s.text for s in segments)
        assert "[bold red]x[/]" in joined
        assert "\\x1b[2J" in joined
        assert_no_markup_effects(segments)
