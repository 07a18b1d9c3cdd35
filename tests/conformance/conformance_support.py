"""Shared pieces of the conformance suite (see conftest.py)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
E2E_ENV = "KTRIAGE_E2E_KUBECONFIG"


@dataclass
class Target:
    kubeconfig: Path
    is_sim: bool
    admin_context: str | None
    readonly_context: str | None
    sim: Any = None  # ktriage.sim.runner.SimCluster when simulated


def new_api_client(target: Target, context: str | None = None) -> Any:
    from kubernetes import config

    return config.new_client_from_config(
        config_file=str(target.kubeconfig), context=context or target.admin_context
    )


def kubectl_binary() -> Path | None:
    for candidate in (REPO / ".venv" / "bin" / "kubectl", Path(sys.prefix) / "bin" / "kubectl"):
        if candidate.exists():
            return candidate
    found = shutil.which("kubectl")
    return Path(found) if found else None


class Kubectl:
    """kubectl against the target; each run with a fresh KUBECACHEDIR."""

    def __init__(self, binary: Path, target: Target) -> None:
        self.binary = binary
        self.target = target

    def __call__(
        self, *args: str, context: str | None = None, timeout: float = 60, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        argv = [str(self.binary), "--kubeconfig", str(self.target.kubeconfig)]
        ctx = context or self.target.admin_context
        if ctx:
            argv += ["--context", ctx]
        with tempfile.TemporaryDirectory(prefix="kubecache-") as cache:
            env = {k: v for k, v in os.environ.items() if not k.startswith("KUBE")}
            env.update(KUBECACHEDIR=cache, HOME=cache)
            return subprocess.run(
                argv + list(args),
                env=env,
                capture_output=True,
                text=True,
                timeout=timeout,
                input=input,
            )
