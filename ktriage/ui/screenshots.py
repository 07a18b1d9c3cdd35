"""Regenerate the README screenshots: `python -m ktriage.ui.screenshots DIR`.

The demo scenario is played at once into a temporary directory with a fixed
clock, the streams are replayed, and the UI is photographed at a fixed size:
the same input, the same pictures.
"""

from __future__ import annotations

import asyncio
import re
import sys
import tempfile
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ktriage.core.config import Config
from ktriage.engine import Engine
from ktriage.ui.app import KtriageApp, replay_clock

SIZE = (160, 45)
SCENARIO = "cryptominer"
# Scenario time starts here (2027-01-15T08:00:00Z), whatever the day.
START = 1_800_000_000.0

_AUDIT_ID = re.compile(rb'"auditID":"[0-9a-f-]{36}"')


@dataclass(frozen=True, slots=True)
class Shot:
    name: str
    theme: str
    keys: tuple[str, ...] = ()


SHOTS: tuple[Shot, ...] = (
    Shot("main-dark.svg", "ktriage-dark"),
    Shot("main-light.svg", "ktriage-light"),
    Shot("main-high-contrast.svg", "ktriage-high-contrast"),
    Shot("help.svg", "ktriage-dark", ("question_mark",)),
    # The incident's timeline, zoomed to the whole screen.
    Shot("incident-timeline.svg", "ktriage-dark", ("enter", "z")),
    # An alert's raw record in Detail, reached by searching the timeline.
    Shot("event-detail.svg", "ktriage-dark", ("enter", "slash", *"Miner:", "enter", "enter")),
)


def play_scenario(name: str, directory: Path) -> list[Path]:
    """Play a scenario to the end into `directory`; returns the stream files."""
    from ktriage.sim.audit import AuditWriter
    from ktriage.sim.clock import ManualClock
    from ktriage.sim.outputs import SimOutputs
    from ktriage.sim.scenario.format import load_scenario
    from ktriage.sim.scenario.player import ScenarioPlayer
    from ktriage.sim.storage.store import ClusterStore

    directory.mkdir(parents=True, exist_ok=True)
    clock = ManualClock(start=START)
    outputs = SimOutputs(directory)
    store = ClusterStore(clock)
    audit = AuditWriter(outputs, clock)
    player = ScenarioPlayer(
        load_scenario(name), store=store, audit=audit, outputs=outputs, clock=clock
    )
    try:
        player.play_all()
    finally:
        outputs.close()
    _fix_audit_ids(outputs.audit_path)
    return [outputs.audit_path, outputs.falco_path, outputs.tetragon_path]


def _fix_audit_ids(path: Path) -> None:
    """Replace the random audit IDs with ones derived from the line number.

    Incident ids come from the first signal's reference, an audit ID here, so
    random IDs would give every run different ids in the pictures.
    """
    lines = path.read_bytes().splitlines(keepends=True)
    out = []
    for n, line in enumerate(lines):
        fixed = uuid.uuid5(uuid.NAMESPACE_URL, f"ktriage-screenshot-{n}")
        out.append(_AUDIT_ID.sub(f'"auditID":"{fixed}"'.encode(), line, count=1))
    path.write_bytes(b"".join(out))


def replay_app(files: Sequence[Path], theme: str, snapshot_dir: Path) -> KtriageApp:
    """The UI over recorded streams with the clock at the end of the recording."""
    engine = Engine(Config())
    engine.context_name = "replay"
    engine.replay_files(list(files))
    app = KtriageApp(
        engine,
        mode="replay",
        clock=replay_clock(engine),
        theme=theme,
        snapshot_dir=snapshot_dir,
        start_sources=False,
        user_theme_dir=snapshot_dir / "no-user-themes",
    )
    # Looked at a week later, whatever the day: the recording's day is named.
    app.wall_clock = lambda: START + 7 * 86_400
    return app


async def take(app: KtriageApp, keys: Sequence[str], path: Path) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        if keys:
            await pilot.press(*keys)
        await pilot.pause()
        app.save_screenshot(path.name, str(path.parent))
    app.engine.archive.close()


def make_screenshots(out_dir: Path, shots: Sequence[Shot] = SHOTS) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    with tempfile.TemporaryDirectory(prefix="ktriage-shots-") as tmp:
        files = play_scenario(SCENARIO, Path(tmp) / "streams")
        for shot in shots:
            app = replay_app(files, shot.theme, Path(tmp))
            path = out_dir / shot.name
            asyncio.run(take(app, shot.keys, path))
            written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    out_dir = Path(args[0]) if args else Path("screenshots")
    for path in make_screenshots(out_dir):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
