"""Live: the pod watch tells the correlator each pod's own address and service
account, so a token's calls from a pod's address join that pod's incident, as in a
replay of the audit log (the simulated cluster gives pods their addresses)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from waiting import wait_for

from ktriage.core.ingest import Ingestor
from ktriage.sim.runner import SimCluster

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit"))
from k8s_records import audit, falco
from test_kube_source import watching

pytestmark = pytest.mark.sim


async def test_a_tokens_calls_from_a_watched_pods_address_join_its_incident(
    sim_cluster: SimCluster,
) -> None:
    async with watching(sim_cluster.kubeconfig_path) as w:
        await wait_for(lambda: (p := w.state.pod("shop", "web-1")) is not None and p.pod_ip,
                       what="web-1's address")  # fmt: skip
        web = w.state.pod("shop", "web-1")
        assert web is not None
        await wait_for(
            lambda: any(
                e.kind == "pod-address" and any(x.name == web.pod_ip for x in e.entities)
                for e in w.engine.store
            ),
            what="the pod watch's address fact",
        )
        t = web.created + 60
        ingestor = Ingestor()
        shell = falco(t, "Terminal shell in container", "Warning", namespace="shop",
                      pod="web-1", cmd="bash -i")  # fmt: skip
        # A legacy (unbound) token of another account, used from the pod's address.
        stolen = audit(t + 30, "system:serviceaccount:shop:reporting", "list", "secrets",
                       namespace="shop", source_ip=web.pod_ip, user_agent="curl/8.5.0")  # fmt: skip
        shell_events = ingestor.feed_line(shell)
        stolen_events = ingestor.feed_line(stolen)
        w.engine.add_events(shell_events + stolen_events)
        correlator = w.engine.correlator
        of_shell = correlator.incident_of_event(shell_events[0].id)
        of_stolen = correlator.incident_of_event(stolen_events[0].id)
        assert of_shell is not None and of_shell is of_stolen
        assert of_shell.title.endswith("in shop/web-1")
