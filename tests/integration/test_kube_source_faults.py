"""The cluster watches when a request itself is refused: HTTP 410 on a watch lists again,
a 429 waits as Retry-After asks; a kubeconfig that cannot be used is named in words.
Against the simulated API server's fault API on loopback."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from test_kube_source import converged, privileged_pod, watching
from waiting import wait_for

from ktriage.sim.runner import SimCluster
from ktriage.sources.kube import KubeConfigError, KubeConnection

pytestmark = pytest.mark.sim


def _said(source: object, words: str) -> bool:
    return any(words in message for _, message in source.history)  # type: ignore[attr-defined]


async def test_a_watch_refused_with_http_410_lists_again(sim_cluster: SimCluster) -> None:
    sim = sim_cluster
    async with watching(sim.kubeconfig_path) as w:
        lists = w.pods.lists
        # The next request on the cluster-wide pods path (the watch resuming after the
        # cut) is answered 410 Gone outright, not with an ERROR event in the stream.
        sim.faults.match = "/api/v1/pods"
        sim.faults.fail_next(1, code=410)
        sim.faults.cut_watches()
        await wait_for(
            lambda: w.pods.relists == 1 and w.pods.lists > lists,
            what=lambda: (w.pods.relists, w.pods.lists, w.history()),
        )
        assert _said(w.pods, "resourceVersion expired (410 Gone): listing again")
        sim.store.apply(privileged_pod("after-410"))
        await wait_for(lambda: len(w.events("privileged-pod", "after-410")) == 1)
        await wait_for(converged(sim, w))
        assert w.pods.health.state == "connected"


async def test_a_throttled_watch_waits_as_retry_after_asks(sim_cluster: SimCluster) -> None:
    sim = sim_cluster
    async with watching(sim.kubeconfig_path) as w:
        sim.faults.match = "/api/v1/pods"
        sim.faults.throttle(1, retry_after=1)
        sim.faults.cut_watches()
        await wait_for(
            lambda: _said(w.pods, "throttled by the API server (429): retrying after 1 s"),
            what=w.history,
        )
        sim.store.apply(privileged_pod("after-429"))
        await wait_for(lambda: len(w.events("privileged-pod", "after-429")) == 1)
        assert w.pods.relists == 0  # resumed where it was, nothing listed again


def test_a_missing_kubeconfig_is_named(tmp_path: Path) -> None:
    with pytest.raises(KubeConfigError, match=r"kubeconfig not found: .*nowhere"):
        KubeConnection.connect(str(tmp_path / "nowhere"))


def test_an_unknown_context_lists_the_contexts_there_are(sim_cluster: SimCluster) -> None:
    path = str(sim_cluster.kubeconfig_path)
    with pytest.raises(KubeConfigError) as caught:
        KubeConnection.connect(path, context="prod-eu")
    message = str(caught.value)
    assert message.startswith(f"context 'prod-eu' not found in {path} (contexts: ")
    assert "sim-admin" in message and "sim-readonly" in message


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("{not: [yaml", "cannot read kubeconfig"),
        ("apiVersion: v1\nkind: Config\ncontexts: []\nclusters: []\nusers: []\n", "kubeconfig"),
    ],
)
def test_hostile_unusable_kubeconfig_is_refused_in_words(
    tmp_path: Path, text: str, words: str
) -> None:
    path = tmp_path / "config"
    path.write_text(text)
    with pytest.raises(KubeConfigError, match=words) as caught:
        KubeConnection.connect(str(path))
    assert "Traceback" not in str(caught.value)


def test_a_kubeconfig_whose_context_names_no_cluster_is_refused(
    sim_cluster: SimCluster, tmp_path: Path
) -> None:
    config = yaml.safe_load(sim_cluster.kubeconfig_path.read_text())
    for entry in config["contexts"]:
        entry["context"]["cluster"] = "nowhere"
    path = tmp_path / "broken.kubeconfig"
    path.write_text(yaml.safe_dump(config))
    with pytest.raises(KubeConfigError, match=f"cannot use kubeconfig {path}"):
        KubeConnection.connect(str(path))
