"""The Blast radius on screen after an isolation in a cluster where nothing is seen to
enforce NetworkPolicy: it says so, in warning colour, and never "isolated" (the isolate
dialog had said the isolation may not be enforced)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from rich.text import Text
from ui_helpers import T0, engine_with, make_app, screen_text, signal, wait_for

from ktriage.core.model import EntityKind, Severity, entity
from ktriage.kubeclient import client_from_kubeconfig
from ktriage.ui.screens.blast import BlastScreen

pytestmark = pytest.mark.sim


def _policy(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"namespace": "shop", "name": name},
        "spec": spec,
    }


@pytest.fixture
def sim(make_sim_cluster: Callable[..., Any]) -> Any:
    cluster = make_sim_cluster()
    store = cluster.store
    store.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}})
    labels = {"app": "storefront", "ktriage.io/quarantine": "web-1"}
    store.apply(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"namespace": "shop", "name": "web-1", "labels": labels},
            "spec": {"nodeName": "worker-1", "containers": [{"name": "web", "image": "nginx"}]},
        }
    )
    store.apply(_policy("default-deny-ingress", {"podSelector": {}, "policyTypes": ["Ingress"]}))
    store.apply(
        _policy(
            "ktriage-quarantine-web-1",
            {
                "podSelector": {"matchLabels": {"ktriage.io/quarantine": "web-1"}},
                "policyTypes": ["Ingress", "Egress"],
            },
        )
    )
    store.apply(
        _policy(
            "storefront-allow-http",
            {
                "podSelector": {"matchLabels": {"app": "storefront"}},
                "ingress": [{"ports": [{"port": 8080, "protocol": "TCP"}]}],
            },
        )
    )
    return cluster


async def test_blast_radius_after_isolation_without_an_enforcing_plugin(
    tmp_path: Path, sim: Any
) -> None:
    pod = entity(EntityKind.POD, "shop", "web-1")
    engine = engine_with([signal(T0, "falco", "f-1", "shell", Severity.HIGH, "shell", (pod,))])
    app = make_app(engine, tmp_path, mode="live")
    app.api_client_factory = lambda: client_from_kubeconfig(str(sim.kubeconfig_path), "sim-admin")
    async with app.run_test(size=(160, 45)) as pilot:
        await wait_for(pilot, lambda: app.screen.query_one("#incidents").selected is not None)
        await pilot.press("b")
        await wait_for(pilot, lambda: isinstance(app.screen, BlastScreen))
        screen = app.screen
        await wait_for(pilot, lambda: screen.result is not None, timeout=20)
        await wait_for(pilot, lambda: "POD shop/web-1" in screen_text(app))
        # What the screen shows (its body's text, before wrapping to the screen).
        body = screen.query_one("#blast-body").content
        assert isinstance(body, Text)
        text = body.plain
        pod_part = text.split("POD shop/web-1", 1)[1].split("NOT SEEN", 1)[0]
        assert "isolated" not in pod_part
        assert (
            "but NetworkPolicy storefront-allow-http allows ingress from anywhere on TCP/8080"
            in pod_part
        )
        assert "egress: NetworkPolicy ktriage-quarantine-web-1 selects it and allows nothing, " in (
            pod_part
        )
        assert pod_part.count("policies may not be enforced") == 2
        assert "No NetworkPolicy-enforcing network plugin was seen" in text
        assert "may not" in screen_text(app)
        # Both reachability lines in warning colour.
        warned = [
            body.plain[span.start : span.end].strip()
            for span in body.spans
            if str(span.style) == "yellow"
        ]
        assert [w.split(":", 1)[0] for w in warned if w.startswith(("ingress", "egress"))] == [
            "ingress",
            "egress",
        ]
        await pilot.press("s")
        await wait_for(pilot, lambda: any((tmp_path / "snapshots").glob("*-blast-*.md")))
        saved = next((tmp_path / "snapshots").glob("*-blast-*.md")).read_text()
        assert saved.count("policies may not be enforced") == 2
        assert "isolated" not in saved.split("### Pod", 1)[1].split("### Not seen", 1)[0]
