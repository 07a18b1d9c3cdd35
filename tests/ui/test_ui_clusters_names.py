"""With several clusters every place that speaks of one cluster names it: an action's
notice, the Blast radius title, the start-up dialog of actions cut short, and the
Pods pane when no incident is selected. With one cluster nothing changes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pilot_waiting import until
from textual.app import App
from ui_helpers import make_app, miner_events, notices, screen_text

from ktriage.actions.base import Plan, Target
from ktriage.actions.service import OK, Outcome
from ktriage.clusters import MultiEngine
from ktriage.core.model import EntityKind
from ktriage.ui.hooks import make_provider
from ktriage.ui.query import parse_query
from ktriage.ui.screens.blast import BlastScreen, open_blast
from ktriage.ui.screens.unfinished import UnfinishedScreen
from ktriage.ui.widgets.pod_list import PodList

HOSTILE = "[bold red]eu[/]\x1b[2J"


def cordon_plan() -> Plan:
    return Plan(
        action="cordon",
        incident_id="INC-1",
        target=Target(EntityKind.POD, "shop", "web-1"),
        subject=Target(EntityKind.NODE, "", "worker-1"),
        title="Cordon node worker-1",
    )


def two_clusters(first: str = "prod-eu", second: str = "prod-us") -> MultiEngine:
    engine = MultiEngine()
    for name in (first, second):
        engine.add_cluster(name).add_events(miner_events())
        engine.client_factories[name] = lambda: None  # never called: nothing is read
    return engine


async def test_action_outcome_notice_names_its_cluster(tmp_path: Path) -> None:
    app = make_app(two_clusters(second=HOSTILE), tmp_path, mode="live")
    async with app.run_test(size=(120, 36)) as pilot:
        provider = make_provider(app)
        assert provider is not None
        service = provider.by_cluster[HOSTILE]  # type: ignore[attr-defined]
        plan = cordon_plan()
        provider._confirm(plan, service, HOSTILE)  # type: ignore[attr-defined]
        await until(pilot, lambda: app.screen.__class__.__name__ == "ActionConfirmScreen")
        app.screen.dismiss(Outcome(plan, OK, "cordoned node worker-1"))
        await until(pilot, lambda: any("cordon: ok" in n.title for n in notices(app)))
        (note,) = [n for n in notices(app) if "cordon: ok" in n.title]
        assert note.title.startswith("[[bold red]eu[/]")
        assert "\x1b" not in note.title
        text = screen_text(app)
        assert "[bold red]eu[/]" in text and "cordon: ok" in text


async def test_blast_radius_title_names_the_incidents_cluster(tmp_path: Path) -> None:
    engine = two_clusters()
    app = make_app(engine, tmp_path, mode="live", read_only=True)
    async with app.run_test(size=(120, 36)) as pilot:
        inc = next(i for i in engine.correlator.sorted_incidents() if i.cluster == "prod-us")

        class Answerless:
            def compute(self, *_: Any) -> Any:
                raise OSError("not reached in this test")

        # The reader of the incident's cluster is made on first use; here a stand-in.
        from ktriage.ui.screens import blast

        blast._READERS.setdefault(app, {})["prod-us"] = Answerless()  # type: ignore[assignment]
        open_blast(app, inc)
        await until(pilot, lambda: isinstance(app.screen, BlastScreen))
        await until(pilot, lambda: "Could not compute" in screen_text(app))
        assert f"Blast radius · {inc.id} · cluster prod-us" in screen_text(app)


class CutShort:
    """What the dialog shows of an action cut short (its journal entry is not needed)."""

    uid = "u-1"

    def title(self) -> str:
        return "cordon node worker-1 (INC-1)"

    def summary(self) -> str:
        return "done: patch node worker-1"


def test_unfinished_dialog_names_the_cluster_of_each_action() -> None:
    item = CutShort()

    class Host(App[None]):
        def on_mount(self) -> None:
            self.push_screen(UnfinishedScreen(None, [item], cluster="prod-us"))  # type: ignore[arg-type]

    import asyncio

    async def run() -> str:
        host = Host()
        async with host.run_test(size=(140, 30)) as pilot:
            await until(pilot, lambda: isinstance(host.screen, UnfinishedScreen))
            return screen_text(host)

    text = asyncio.run(run())
    assert "1 action(s) on cluster prod-us" in text
    assert "[prod-us] " in text


async def test_pods_pane_without_an_incident_names_the_cluster_it_lists(tmp_path: Path) -> None:
    app = make_app(two_clusters(), tmp_path, mode="live", read_only=True)
    async with app.run_test(size=(160, 45)) as pilot:
        screen = app.screen
        pods = screen.query_one(PodList)
        selected = screen.incidents.selected
        assert selected.cluster == "prod-eu"
        await until(pilot, lambda: pods.scope.endswith("cluster prod-eu"))
        # The other cluster's incident: its cluster's pods, named.
        screen.incidents.select_id(
            next(i.id for i in screen.incidents.all_incidents if i.cluster == "prod-us")
        )
        await until(pilot, lambda: pods.scope.endswith("cluster prod-us"))
        # No incident selected: the first cluster's pods, and the title says so.
        screen.incidents.set_query(parse_query("zzz-nothing-matches"))
        await until(pilot, lambda: screen.incidents.selected is None)
        screen.refresh_pods(force=True)
        assert pods.scope == "no incident · cluster prod-eu"
        assert "no incident · cluster prod-eu" in screen_text(app)


async def test_one_cluster_titles_name_no_cluster(tmp_path: Path) -> None:
    from ui_helpers import engine_with

    app = make_app(engine_with(miner_events()), tmp_path, mode="live", read_only=True)
    async with app.run_test(size=(160, 45)):
        assert "cluster" not in app.screen.query_one(PodList).scope
