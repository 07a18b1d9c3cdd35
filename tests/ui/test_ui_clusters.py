"""Several clusters in the UI: the CLUSTER column (only with several), the `cluster:`
filter, each cluster's health in the status bar, the cluster in the Detail pane and
in the confirm dialog's title, and hostile context names kept as text."""

from __future__ import annotations

from typing import Any

from pilot_waiting import until
from textual.app import App
from ui_helpers import engine_with, make_app, miner_events, screen_text

from ktriage.actions.base import Plan, Target
from ktriage.clusters import MultiEngine
from ktriage.core.model import EntityKind
from ktriage.engine import SourceHealth
from ktriage.ui.query import parse_query
from ktriage.ui.screens.action_confirm import ActionConfirmScreen
from ktriage.ui.widgets.incident_list import IncidentList
from ktriage.ui.widgets.status_bar import StatusBar

HOSTILE = "[bold red]eu[/]\x1b[2J\u202e" + "z" * 200


class Fixed:
    def __init__(self, health: SourceHealth) -> None:
        self.health = health

    async def run(self, engine: Any) -> None:
        return None


def two_clusters(first: str = "prod-eu", second: str = "prod-us") -> MultiEngine:
    """The same incidents (same pods, same refs) in two clusters; the second is down."""
    engine = MultiEngine()
    for name in (first, second):
        member = engine.add_cluster(name)
        member.add_events(miner_events())
    engine.add_to(first, Fixed(SourceHealth(name="kube pods", kind="kube", state="connected")))
    engine.add_to(
        second,
        Fixed(SourceHealth(name="kube pods", kind="kube", state="failed", last_error="refused")),
    )
    return engine


async def test_cluster_column_filter_and_status_with_several_clusters(tmp_path):
    app = make_app(two_clusters(), tmp_path, mode="live")
    async with app.run_test(size=(160, 40)) as pilot:
        incidents = app.screen.query_one(IncidentList)
        await until(pilot, lambda: len(incidents.shown) == 4, what="four incidents")
        assert incidents.cluster_width
        text = screen_text(app)
        assert "CLUSTER" in text
        assert text.count("prod-eu") >= 2 and text.count("prod-us") >= 2
        # One segment per cluster in the status bar, with its worst source.
        app.screen.tick_slow()
        bar = app.screen.query_one(StatusBar)
        assert bar.clusters == [("prod-eu", "connected"), ("prod-us", "failed")]
        top = screen_text(app).splitlines()[0]
        assert "prod-eu ●" in top and "prod-us ✖" in top
        await pilot.press("slash", *"cluster:prod-us", "enter")
        assert len(incidents.shown) == 2
        assert {i.cluster for i in incidents.shown} == {"prod-us"}
        # The Detail pane names the cluster of the selected incident.
        assert "Cluster" in screen_text(app)


async def test_one_cluster_shows_no_cluster_column(tmp_path):
    app = make_app(engine_with(miner_events()), tmp_path)
    async with app.run_test(size=(160, 40)) as pilot:
        incidents = app.screen.query_one(IncidentList)
        await until(pilot, lambda: len(incidents.shown) == 2, what="two incidents")
        assert incidents.cluster_width == 0
        assert "CLUSTER" not in screen_text(app)
        assert app.screen.query_one(StatusBar).clusters == []


def test_cluster_filter_keys_and_events_without_a_cluster():
    q = parse_query("cluster:Prod-EU,prod-us")
    assert q.clusters == frozenset({"prod-eu", "prod-us"}) and not q.empty
    assert parse_query("ctx:a").clusters == frozenset({"a"})
    # Events are filtered within their incident: the cluster test does not hide them.
    (event, *_rest) = miner_events(context_count=0)
    assert q.matches_event(event)
    assert not q.matches_fields("", cluster="prod-ap")
    assert q.matches_fields("", cluster="PROD-EU")


async def test_hostile_context_name_in_list_status_and_confirm_title(tmp_path):
    engine = two_clusters(first=HOSTILE, second="b")
    app = make_app(engine, tmp_path, mode="live")
    async with app.run_test(size=(120, 36)) as pilot:
        incidents = app.screen.query_one(IncidentList)
        await until(pilot, lambda: len(incidents.shown) == 4, what="four incidents")
        app.screen.tick_slow()
        text = screen_text(app)
        assert "\x1b" not in text and "\u202e" not in text
        assert "[bold red]eu[/]" in text  # shown as typed, never as markup
        assert "z" * 40 not in text  # clipped in the column and the status bar
    plan = Plan(
        action="cordon",
        incident_id="INC-1",
        target=Target(EntityKind.POD, "shop", "web-1"),
        subject=Target(EntityKind.NODE, "", "worker-1"),
        title="Cordon node worker-1",
    )

    class Host(App[None]):
        def on_mount(self) -> None:
            self.push_screen(ActionConfirmScreen(None, plan, cluster=HOSTILE))  # type: ignore[arg-type]

    host = Host()
    async with host.run_test(size=(120, 30)) as pilot:
        await until(pilot, lambda: isinstance(host.screen, ActionConfirmScreen), what="confirm")
        # As drawn: the name as typed (markup and escapes visible), clipped.
        (line,) = [ln for ln in screen_text(host).splitlines() if "Cordon node" in ln]
        assert "[cluster [bold red]eu[/]\\x1b[2J\\" in line
        assert "…] Cordon node worker-1" in line
        assert "\x1b" not in line and "z" * 30 not in line


def test_blast_radius_reads_the_incidents_own_cluster():
    from ktriage.ui.screens.blast import reader_for

    engine = two_clusters()

    def eu_client() -> None:
        return None

    def us_client() -> None:
        return None

    engine.client_factories = {"prod-eu": eu_client, "prod-us": us_client}

    class FakeApp:
        api_client_factory = None

    app = FakeApp()
    app.engine = engine  # type: ignore[attr-defined]
    us = reader_for(app, "prod-us")
    assert us is not None and us.factory is us_client
    eu = reader_for(app, "prod-eu")
    assert eu is not None and eu.factory is eu_client
    assert reader_for(app, "prod-us") is us  # one reader (and cache) per cluster
    assert reader_for(app, "elsewhere") is None
