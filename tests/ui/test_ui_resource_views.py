"""`:` resource views, `d` describe and `L` pod logs, against the simulated cluster:
the prompt completes, each view reads the live cluster in a worker, failures are a
line in the view, esc goes back, untrusted text stays text and secrets stay hidden."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from ui_helpers import (
    INJECTIONS,
    T0,
    engine_with,
    make_app,
    open_view,
    screen_text,
    signal,
    wait_for,
)

from ktriage.core.model import EntityKind, Severity, entity
from ktriage.kubeclient import client_from_kubeconfig
from ktriage.ui.screens.describe import DescribeScreen
from ktriage.ui.screens.main import MainScreen
from ktriage.ui.screens.pod_logs import ContainerChoice, PodLogsScreen
from ktriage.ui.screens.resource import ResourcePromptScreen, ResourceScreen

pytestmark = pytest.mark.sim


HOSTILE_LABEL = "[bold red]owned[/]"
SECRET_ENV = "hunter2-db-password-value"
SECRET_TOKEN = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"


@pytest.fixture
def sim(make_sim_cluster: Callable[..., Any]) -> Any:
    cluster = make_sim_cluster()
    store = cluster.store
    store.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}})
    store.apply(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "namespace": "shop",
                "name": "web-1",
                "labels": {"app": "web"},
                # Attacker-chosen annotation text: markup, ANSI, an OSC 52 clipboard write,
                # and a credential.
                "annotations": {
                    "note": "".join(INJECTIONS),
                    "deploy-token": f"token={SECRET_TOKEN}",
                },
            },
            "spec": {
                "nodeName": "worker-1",
                "containers": [
                    {
                        "name": "web",
                        "image": "nginx:1.27",
                        "env": [
                            {"name": "DB_PASSWORD", "value": SECRET_ENV},
                            {"name": "MODE", "value": HOSTILE_LABEL},
                        ],
                    },
                    {"name": "sidecar", "image": "envoy:1.30"},
                ],
            },
        }
    )
    for i in range(3):
        store.append_log("shop", "web-1", "web", f"previous run line {i}")
    store.set_container_state("shop", "web-1", "web", "terminated", reason="Error", exit_code=1)
    store.set_container_state("shop", "web-1", "web", "running", restart=True)
    store.append_log("shop", "web-1", "web", "GET /cart 200")
    store.append_log("shop", "web-1", "sidecar", "envoy ready")
    store.apply(
        {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"namespace": "shop", "name": "web-1.restart"},
            "involvedObject": {"kind": "Pod", "namespace": "shop", "name": "web-1"},
            "reason": "BackOff",
            "type": "Warning",
            "message": "Back-off restarting " + INJECTIONS[0],
            "lastTimestamp": "2027-01-15T08:00:00Z",
        }
    )
    return cluster


def incident_engine() -> Any:
    pod = entity(EntityKind.POD, "shop", "web-1")
    user = entity(EntityKind.USER, "", "mallory")
    return engine_with(
        [signal(T0, "audit", "a-1", "exec", Severity.HIGH, "exec into shop/web-1", (pod, user))]
    )


def live_app(tmp_path: Path, sim: Any, context: str = "sim-admin") -> Any:
    app = make_app(incident_engine(), tmp_path, mode="live", read_only=True)
    app.api_client_factory = lambda: client_from_kubeconfig(str(sim.kubeconfig_path), context)
    return app


def select_row(screen: ResourceScreen, name: str) -> None:
    screen.table.move_cursor(next(i for i, r in enumerate(screen.table.rows) if r.name == name))


async def open_logs(pilot: Any, app: Any) -> PodLogsScreen:
    """`L`, and the logs screen it opens."""
    await pilot.press("L")
    await wait_for(pilot, lambda: isinstance(app.screen, PodLogsScreen))
    return app.screen


async def test_colon_completes_with_tab_and_opens_the_pods_table(tmp_path: Path, sim: Any):
    app = live_app(tmp_path, sim)
    async with app.run_test(size=(160, 45)) as pilot:
        await pilot.press("colon")
        await wait_for(pilot, lambda: isinstance(app.screen, ResourcePromptScreen))
        await pilot.press("p", "o", "d", "tab")
        prompt = app.screen.query_one("#resource-prompt")
        assert prompt.value == "pods"
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ResourceScreen))
        screen = app.screen
        await wait_for(pilot, lambda: screen.listing is not None, timeout=15)
        names = [(r.namespace, r.name) for r in screen.table.rows]
        assert ("shop", "web-1") in names
        text = screen_text(app)
        for column in ("NAMESPACE", "NAME", "READY", "STATUS", "RESTARTS", "AGE", "NODE"):
            assert column in text
        row = next(r for r in screen.table.rows if r.name == "web-1")
        assert row.cells[2] == "2/2" and row.cells[4] == "1" and row.cells[6] == "worker-1"
        # esc goes back to the main view, where the incidents are.
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, MainScreen))


@pytest.mark.parametrize(
    ("typed", "title", "expected"),
    [
        ("no", "Nodes", None),
        ("ev", "Events", "BackOff"),
        ("networkpolicies", "NetworkPolicies", None),
        ("serviceaccounts", "ServiceAccounts", "default"),
        ("rbac", "RBAC", "cluster-admin"),
    ],
)
async def test_aliases_open_their_views(tmp_path: Path, sim: Any, typed, title, expected):
    app = live_app(tmp_path, sim)
    async with app.run_test(size=(160, 45)) as pilot:
        screen = await open_view(pilot, app, typed)
        assert screen.resource.title.startswith(title)
        assert screen.listing.problems == []
        if expected is not None:
            assert any(expected in " ".join(map(str, r.cells)) for r in screen.table.rows)


async def test_unknown_view_is_said_and_nothing_opens(tmp_path: Path, sim: Any):
    app = live_app(tmp_path, sim)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.press("colon", *"secretz", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, MainScreen))
        notice = app.screen.notice
        await wait_for(pilot, lambda: notice.active)
        assert "No view named 'secretz'" in notice.text and "pods" in notice.text


async def test_colon_incidents_goes_back_to_the_main_view(tmp_path: Path, sim: Any):
    app = live_app(tmp_path, sim)
    async with app.run_test(size=(120, 36)) as pilot:
        await open_view(pilot, app, "nodes")
        await pilot.press("colon", *"incidents", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, MainScreen))
        assert len(app.screen_stack) == 1


async def test_colon_in_a_view_switches_views_without_stacking(tmp_path: Path, sim: Any):
    app = live_app(tmp_path, sim)
    async with app.run_test(size=(120, 36)) as pilot:
        await open_view(pilot, app, "nodes")
        screen = await open_view(pilot, app, "sa")
        assert screen.resource.name == "sa"
        assert len(app.screen_stack) == 2
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, MainScreen))


async def test_replay_says_there_is_no_cluster(tmp_path: Path):
    app = make_app(incident_engine(), tmp_path)  # replay: no cluster to read
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.press("colon", *"pods", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, MainScreen))
        notice = app.screen.notice
        await wait_for(pilot, lambda: notice.active)
        assert "No live cluster" in notice.text
        notice.hide()
        await pilot.press("d")
        await wait_for(pilot, lambda: notice.active)
        assert "No live cluster" in notice.text
        assert isinstance(app.screen, MainScreen)


async def test_forbidden_identity_is_a_clear_line_in_the_view(tmp_path: Path, sim: Any):
    app = live_app(tmp_path, sim, context="sim-intruder")
    async with app.run_test(size=(160, 45)) as pilot:
        screen = await open_view(pilot, app, "pods")
        assert screen.table.rows == []
        assert any("forbidden (403)" in p for p in screen.listing.problems)
        text = screen_text(app)
        assert "forbidden (403) to list pods in all namespaces" in text
        assert "Nothing could be read" in text


async def test_slash_filters_the_table_and_esc_clears_it_first(tmp_path: Path, sim: Any):
    app = live_app(tmp_path, sim)
    async with app.run_test(size=(160, 45)) as pilot:
        screen = await open_view(pilot, app, "rbac")
        total = len(screen.table.rows)
        await pilot.press("slash", *"cluster-admin", "enter")
        await wait_for(pilot, lambda: len(screen.table.rows) < total)
        assert all("cluster-admin" in " ".join(map(str, r.cells)) for r in screen.table.rows)
        await pilot.press("escape")
        await wait_for(pilot, lambda: len(screen.table.rows) == total)
        assert isinstance(app.screen, ResourceScreen)


async def test_d_describes_the_row_redacted_with_its_events(tmp_path: Path, sim: Any):
    app = live_app(tmp_path, sim)
    async with app.run_test(size=(160, 45)) as pilot:
        screen = await open_view(pilot, app, "pods")
        select_row(screen, "web-1")
        await pilot.press("d")
        await wait_for(pilot, lambda: isinstance(app.screen, DescribeScreen))
        describe = app.screen
        await wait_for(pilot, lambda: describe.description is not None, timeout=15)
        body = describe.body_text
        assert "kind: Pod" in body and "name: web-1" in body
        assert "managedFields" not in body
        assert "BackOff" in body and "Events" in body
        # Secrets: the env value named as a password and the token in an annotation.
        assert SECRET_ENV not in body and SECRET_TOKEN not in body
        assert "<redacted>" in body
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is screen)


async def test_hostile_markup_and_escapes_in_objects_stay_text(tmp_path: Path, sim: Any):
    app = live_app(tmp_path, sim)
    async with app.run_test(size=(200, 60)) as pilot:
        screen = await open_view(pilot, app, "events")
        text = screen_text(app)
        assert "Back-off restarting [bold red]x[/]" in text
        screen.table.move_cursor(0)
        await pilot.press("d")
        await wait_for(pilot, lambda: isinstance(app.screen, DescribeScreen))
        describe = app.screen
        await wait_for(pilot, lambda: describe.description is not None, timeout=15)
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is screen)
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, MainScreen))
        # The pod's annotations and env, from the main screen's `d` (the incident's pod).
        await pilot.press("d")
        await wait_for(pilot, lambda: isinstance(app.screen, DescribeScreen))
        describe = app.screen
        await wait_for(pilot, lambda: describe.description is not None, timeout=15)
        shown_text = screen_text(app)
        assert "\x1b" not in shown_text and "\x07" not in shown_text
        body = describe.body_text
        assert HOSTILE_LABEL in body  # markup shown as typed, not applied
        assert "\\e]52;c;" in body or "\\x1b]52;c;" in body
        assert "\x1b" not in body


async def test_L_follows_the_pod_log_and_new_lines_arrive(tmp_path: Path, sim: Any):
    app = live_app(tmp_path, sim)
    async with app.run_test(size=(160, 45)) as pilot:
        logs = await open_logs(pilot, app)
        await wait_for(pilot, lambda: "GET /cart 200" in logs.view.text(), timeout=15)
        assert logs.container == "web" and not logs.previous
        sim.store.append_log("shop", "web-1", "web", "a line written while following")
        await wait_for(pilot, lambda: "a line written while following" in logs.view.text())
        assert "following" in logs.status_text
        await pilot.press("f")
        assert not logs.view.follow and "paused" in logs.status_text
        await pilot.press("f")
        assert logs.view.follow
        # p: the previous instance's log (before the restart), and back.
        await pilot.press("p")
        await wait_for(pilot, lambda: "previous run line 2" in logs.view.text(), timeout=15)
        assert "GET /cart 200" not in logs.view.text()
        assert "previous instance" in logs.status_text
        await pilot.press("p")
        await wait_for(pilot, lambda: "GET /cart 200" in logs.view.text(), timeout=15)
        # c: choose the sidecar.
        await pilot.press("c")
        await wait_for(pilot, lambda: isinstance(app.screen, ContainerChoice))
        await pilot.press("down", "enter")
        await wait_for(pilot, lambda: app.screen is logs)
        await wait_for(pilot, lambda: "envoy ready" in logs.view.text(), timeout=15)
        assert logs.container == "sidecar"
        follower = logs.follower
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, MainScreen))
        # The stream was closed with the screen.
        follower.thread.join(5)
        assert not follower.thread.is_alive()


async def test_log_search_highlights_and_steps_through_matches(tmp_path: Path, sim: Any):
    for i in range(50):
        sim.store.append_log(
            "shop", "web-1", "web", f"request {i} {'ERROR' if i % 10 == 3 else 'ok'}"
        )
    app = live_app(tmp_path, sim)
    async with app.run_test(size=(120, 30)) as pilot:
        logs = await open_logs(pilot, app)
        await wait_for(pilot, lambda: "request 49" in logs.view.text(), timeout=15)
        await pilot.press("g", "slash", *"error", "enter")
        view = logs.view
        first = view.current
        assert first is not None and "request 3 ERROR" in view.lines[first - view.first_number]
        await pilot.press("n")
        assert "request 13 ERROR" in view.lines[view.current - view.first_number]
        await pilot.press("N")
        assert view.current == first
        assert not view.follow  # searching stops following the end


async def test_log_stream_that_ends_is_said_and_r_reopens(tmp_path: Path, sim: Any):
    app = live_app(tmp_path, sim)
    async with app.run_test(size=(120, 30)) as pilot:
        logs = await open_logs(pilot, app)
        await wait_for(pilot, lambda: "GET /cart 200" in logs.view.text(), timeout=15)
        await wait_for(pilot, lambda: logs.follower.opened.is_set())
        sim.store.restart_container("shop", "web-1", "web")
        await wait_for(pilot, lambda: "log stream ended" in logs.status_text, timeout=15)
        sim.store.append_log("shop", "web-1", "web", "after the restart")
        await pilot.press("r")
        await wait_for(pilot, lambda: "after the restart" in logs.view.text(), timeout=15)


async def test_logs_of_a_pod_that_is_gone_say_so(tmp_path: Path, sim: Any):
    app = live_app(tmp_path, sim)
    async with app.run_test(size=(120, 30)) as pilot:
        sim.store.delete("v1", "Pod", "shop", "web-1")
        logs = await open_logs(pilot, app)
        await wait_for(pilot, lambda: "not found (404)" in logs.status_text, timeout=15)
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, MainScreen))
        await pilot.press("d")
        await wait_for(pilot, lambda: isinstance(app.screen, DescribeScreen))
        describe = app.screen
        await wait_for(pilot, lambda: describe.description is not None, timeout=15)
        assert "not found (404)" in describe.body_text


async def test_hostile_log_lines_stay_text_and_secrets_hidden(tmp_path: Path, sim: Any):
    for payload in (*INJECTIONS, f"Authorization: Bearer {SECRET_TOKEN}"):
        sim.store.append_log("shop", "web-1", "web", payload)
    app = live_app(tmp_path, sim)
    async with app.run_test(size=(160, 45)) as pilot:
        logs = await open_logs(pilot, app)
        await wait_for(pilot, lambda: "Authorization" in logs.view.text(), timeout=15)
        text = logs.view.text()
        assert "[bold red]x[/]" in text
        assert "\x1b" not in text and "\x07" not in text
        assert "\\x1b]52;c;ZXZpbA==\\x07" in text
        assert SECRET_TOKEN not in text
        shown_text = screen_text(app)
        assert "[bold red]x[/]" in shown_text and "\x1b" not in shown_text


async def test_hostile_one_megabyte_log_line_is_cut_not_kept(tmp_path: Path, sim: Any):
    sim.store.append_log("shop", "web-1", "web", "A" * (1 << 20))
    sim.store.append_log("shop", "web-1", "web", "after the long line")
    app = live_app(tmp_path, sim)
    async with app.run_test(size=(120, 30)) as pilot:
        logs = await open_logs(pilot, app)
        await wait_for(pilot, lambda: "after the long line" in logs.view.text(), timeout=20)
        long_line = next(line for line in logs.view.lines if line.startswith("AAAA"))
        assert len(long_line) < 20_000
        assert "more bytes of this line not shown" in long_line


async def test_hostile_hundred_thousand_log_lines_keep_a_bounded_ring(tmp_path: Path, sim: Any):
    app = live_app(tmp_path, sim)
    async with app.run_test(size=(120, 30)) as pilot:
        logs = await open_logs(pilot, app)
        await wait_for(pilot, lambda: "GET /cart 200" in logs.view.text(), timeout=15)
        for i in range(100_000):
            sim.store.append_log("shop", "web-1", "web", f"flood {i}")
        await wait_for(pilot, lambda: "flood 99999" in logs.view.text(), timeout=60)
        view = logs.view
        assert len(view.lines) == view.capacity == 10_000
        assert view.dropped >= 100_000 + 1 - 10_000
        assert "dropped" in logs.status_text
        # The UI answers: g goes to the top, where the first line says what was dropped.
        await pilot.press("g")
        assert not view.follow
        await wait_for(pilot, lambda: "90,001 earlier lines dropped" in screen_text(app))


async def test_table_columns_shrink_to_fit_80_columns_and_keep_node(tmp_path: Path, sim: Any):
    long_name = "payments-checkout-canary-7d9f8c6b5-x2x4z"
    sim.store.apply(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"namespace": "payments-production", "name": long_name},
            "spec": {"nodeName": "worker-1", "containers": [{"name": "c", "image": "i"}]},
        }
    )
    app = live_app(tmp_path, sim)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_view(pilot, app, "pods")
        await wait_for(pilot, lambda: "worker-1" in screen_text(app))
        lines = screen_text(app).splitlines()
        header = next(line for line in lines if "NAMESPACE" in line)
        assert "NODE" in header and "AGE" in header
        for name in ("web-1", "x2x4z"):
            row = next(line for line in lines if name in line)
            assert row.rstrip("│ ").endswith("worker-1"), row
        # The cut name keeps its start and its replica suffix.
        row = next(line for line in lines if "x2x4z" in line)
        assert "…" in row and "payments" in row, row


async def test_L_from_a_table_row_an_event_row_and_describe_and_r_reloads(tmp_path: Path, sim: Any):
    app = live_app(tmp_path, sim)
    async with app.run_test(size=(160, 45)) as pilot:
        screen = await open_view(pilot, app, "pods")
        rows = screen.table.rows
        screen.table.move_cursor(next(i for i, r in enumerate(rows) if r.name == "web-1"))
        await pilot.press("L")
        await wait_for(pilot, lambda: isinstance(app.screen, PodLogsScreen))
        assert (app.screen.namespace, app.screen.pod) == ("shop", "web-1")
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is screen)
        # r reads the cluster again: a pod created since shows up.
        sim.store.apply(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"namespace": "shop", "name": "late-1"},
                "spec": {"containers": [{"name": "c", "image": "i"}]},
            }
        )
        await pilot.press("r")
        await wait_for(pilot, lambda: any(r.name == "late-1" for r in screen.table.rows), 15)
        await pilot.press("d")
        await wait_for(pilot, lambda: isinstance(app.screen, DescribeScreen))
        describe = app.screen
        await wait_for(pilot, lambda: describe.description is not None, timeout=15)
        await pilot.press("L")
        await wait_for(pilot, lambda: isinstance(app.screen, PodLogsScreen))
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is describe)
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is screen)
        # An event about a pod: L follows that pod's log.
        events = await open_view(pilot, app, "ev")
        assert events.table.selected.about == ("Pod", "shop", "web-1")
        await pilot.press("L")
        await wait_for(pilot, lambda: isinstance(app.screen, PodLogsScreen))
        assert app.screen.pod == "web-1"


async def test_keys_typed_in_the_filter_prompt_are_text_not_commands(tmp_path: Path, sim: Any):
    app = live_app(tmp_path, sim)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.press("slash", "d", "colon", "L")
        field = app.screen.query_one("#filter-input")
        assert field.value == "d:L"
        assert isinstance(app.screen, MainScreen)


def counted_event(name: str, count: Any = None, series: Any = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"namespace": "shop", "name": name},
        "involvedObject": {"kind": "Pod", "namespace": "shop", "name": "web-1"},
        "reason": f"Reason-{name}",
        "type": "Warning",
        "message": f"message of {name}",
        "lastTimestamp": "2027-01-15T08:00:00Z",
    }
    if count is not None:
        body["count"] = count
    if series is not None:
        body["series"] = series
    return body


async def test_events_view_and_describe_show_how_many_times(tmp_path: Path, sim: Any):
    sim.store.apply(counted_event("pulled", count=4))
    sim.store.apply(counted_event("probed", series={"count": 7, "lastObservedTime": None}))
    app = live_app(tmp_path, sim)
    async with app.run_test(size=(160, 45)) as pilot:
        events = await open_view(pilot, app, "events")
        by_reason = {r.cells[3]: r.cells[5] for r in events.table.rows}
        assert by_reason["Reason-pulled"] == "x4"
        assert by_reason["Reason-probed"] == "x7"
        assert by_reason["BackOff"] == "x1"
        assert "COUNT" in screen_text(app)
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, MainScreen))
        await pilot.press("d")
        await wait_for(pilot, lambda: isinstance(app.screen, DescribeScreen))
        describe = app.screen
        await wait_for(pilot, lambda: describe.description is not None, timeout=15)
        line = next(ln for ln in describe.body_text.splitlines() if "Reason-pulled" in ln)
        assert "x4" in line


async def test_L_is_offered_only_in_views_of_pods_and_says_why_elsewhere(tmp_path: Path, sim: Any):
    app = live_app(tmp_path, sim)
    async with app.run_test(size=(160, 45)) as pilot:
        pods = await open_view(pilot, app, "pods")
        assert "View logs" in screen_text(app)
        nodes = await open_view(pilot, app, "nodes")
        assert nodes is not pods
        await wait_for(pilot, lambda: "View logs" not in screen_text(app))
        await pilot.press("L")
        assert isinstance(app.screen, ResourceScreen)
        assert "L shows a pod's log: Nodes are not pods" in nodes.status_text


async def test_previous_log_is_not_said_to_be_followed(tmp_path: Path, sim: Any):
    app = live_app(tmp_path, sim)
    async with app.run_test(size=(160, 45)) as pilot:
        logs = await open_logs(pilot, app)
        await wait_for(pilot, lambda: "GET /cart 200" in logs.view.text(), timeout=15)
        await pilot.press("p")
        await wait_for(pilot, lambda: "previous run line 2" in logs.view.text(), timeout=15)
        await wait_for(pilot, lambda: logs.ended is not None, timeout=15)
        status = logs.status_text
        assert "following" not in status and "whole log, not followed" in status
        assert "the log ended" not in status


async def test_c_with_one_container_says_so(tmp_path: Path, sim: Any):
    sim.store.apply(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"namespace": "shop", "name": "solo-1"},
            "spec": {"nodeName": "worker-1", "containers": [{"name": "only", "image": "i"}]},
        }
    )
    app = live_app(tmp_path, sim)
    async with app.run_test(size=(160, 45)) as pilot:
        screen = await open_view(pilot, app, "pods")
        select_row(screen, "solo-1")
        logs = await open_logs(pilot, app)
        await wait_for(pilot, lambda: bool(logs.containers), timeout=15)
        await pilot.press("c")
        assert not isinstance(app.screen, ContainerChoice)
        assert "only one container: only" in logs.status_text


async def test_describe_offers_L_on_a_pod_only_and_says_why_elsewhere(tmp_path: Path, sim: Any):
    from ui_helpers import notices

    app = live_app(tmp_path, sim)
    async with app.run_test(size=(160, 45)) as pilot:
        await open_view(pilot, app, "ev")  # an Event (about a pod) is not a pod
        await pilot.press("d")
        await wait_for(pilot, lambda: isinstance(app.screen, DescribeScreen))
        describe = app.screen
        assert describe.kind == "Event"
        await wait_for(pilot, lambda: describe.description is not None, timeout=15)
        assert "View logs" not in screen_text(app)
        await pilot.press("L")
        await wait_for(pilot, lambda: any("is not a pod" in n.message for n in notices(app)))
        assert app.screen is describe
