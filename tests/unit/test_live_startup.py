"""The live UI starts without what a session may never use: the typed Kubernetes API
classes (core/v1 alone takes most of a second to import; lists, watches and logs go
through the ApiClient's own request path) and aiohttp (only webhooks need it)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

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
    done = subprocess.run(
        [sys.executable, "-c", DRIVER],
        cwd=ROOT,
        capture_output=True,
        timeout=120,
        check=True,
    )
    report = json.loads(done.stdout.decode().strip().splitlines()[-1])
    before, after = report["before"], report["after"]
    assert not [m for m in before if m.startswith("kubernetes.client.api.")]
    assert not [m for m in before if m == "aiohttp" or m.startswith("aiohttp.")]
    # Not vacuous: the API class is there once an action asks for it.
    assert "kubernetes.client.api.core_v1_api" in after
