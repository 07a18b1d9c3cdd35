"""The live UI starts without what a session may never use: the typed Kubernetes API
classes (core/v1 alone takes most of a second to import; lists, watches and logs go
through the ApiClient's own request path) and aiohttp (only webhooks need it)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fresh_python import run_fresh

ROOT = Path(__file__).resolve().parents[2]
DRIVER = """
import json, sys
import ktriage.live, ktriage.ui.app
from kubernetes import client
from ktriage.actions.kube import Kube
kube = Kube(client.ApiClient())
before = sorted(sys.modules)
kube.core  # the first action's call imports its API class
print(json.dumps({"before": before, "after": sorted(sys.modules)}))
"""


def test_live_ui_imports_no_typed_api_class_and_no_aiohttp() -> None:
    report = json.loads(run_fresh(DRIVER).strip().splitlines()[-1])
    before, after = report["before"], report["after"]
    assert not [m for m in before if m.startswith("kubernetes.client.api.")]
    assert not [m for m in before if m == "aiohttp" or m.startswith("aiohttp.")]
    # Not vacuous: the API class is there once an action asks for it.
    assert "kubernetes.client.api.core_v1_api" in after


REVIEW_DRIVER = """
import json, sys
from ktriage.actions.kube import Kube
from ktriage.kubeclient import client_from_kubeconfig
kube = Kube(client_from_kubeconfig(sys.argv[1], sys.argv[2]))
review = kube.access_review(verb=sys.argv[3], resource="pods", namespace="default")
me = kube.self_review()
print(json.dumps({
    "allowed": review.get("status", {}).get("allowed"),
    "user": me.get("status", {}).get("userInfo", {}).get("username"),
    "typed": [m for m in sys.modules if m.startswith("kubernetes.client.api.")],
}))
"""


def _review(kubeconfig: str, context: str, verb: str) -> dict[str, object]:
    output = run_fresh(REVIEW_DRIVER, kubeconfig, context, verb)
    result: dict[str, object] = json.loads(output.strip().splitlines()[-1])
    return result


def test_access_and_identity_reviews_go_without_their_typed_api_classes(
    make_sim_cluster: Any,
) -> None:
    """The reviews every live session sends at start (what it may do, who it is) are
    sent through the ApiClient alone, and still say what the server answered."""
    sim = make_sim_cluster()
    kubeconfig = str(sim.kubeconfig_path)
    admin = _review(kubeconfig, "sim-admin", "delete")
    reader = _review(kubeconfig, "sim-readonly", "delete")
    assert admin["allowed"] is True
    assert reader["allowed"] is False  # the server's own verdict, read back
    assert admin["user"] and reader["user"] and admin["user"] != reader["user"]
    assert admin["typed"] == [] and reader["typed"] == []


def test_a_refused_review_raises_the_servers_status(make_sim_cluster: Any, tmp_path: Path) -> None:
    from kubernetes.client.exceptions import ApiException

    from ktriage.actions.kube import Kube
    from ktriage.kubeclient import client_from_kubeconfig

    sim = make_sim_cluster()
    config = sim.kubeconfig()
    for user in config["users"]:
        user["user"]["token"] = "not-a-token"
    path = tmp_path / "kubeconfig"
    path.write_text(json.dumps(config))
    api = client_from_kubeconfig(str(path))
    try:
        with pytest.raises(ApiException) as caught:
            Kube(api).access_review(verb="get", resource="pods", timeout=10)
        assert caught.value.status == 401
        with pytest.raises(ApiException) as caught:
            Kube(api).self_review(timeout=10)
        assert caught.value.status == 401
    finally:
        api.close()
