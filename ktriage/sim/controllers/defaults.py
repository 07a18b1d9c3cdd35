"""The defaults kube-apiserver fills into workload specs (apps/v1, batch/v1), which
the controllers and kubectl rely on (e.g. `rollout status` needs a RollingUpdate
strategy)."""

from __future__ import annotations


def fill_workload(obj: dict) -> None:
    kind = obj.get("kind")
    api_version = obj.get("apiVersion")
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return
    if api_version == "apps/v1" and kind in (
        "Deployment",
        "ReplicaSet",
        "StatefulSet",
        "DaemonSet",
    ):
        if kind != "DaemonSet":
            spec.setdefault("replicas", 1)
        if kind != "ReplicaSet":
            spec.setdefault("revisionHistoryLimit", 10)
        if kind == "Deployment":
            spec.setdefault("progressDeadlineSeconds", 600)
            _strategy(spec, "strategy", {"maxSurge": "25%", "maxUnavailable": "25%"})
        elif kind == "DaemonSet":
            _strategy(spec, "updateStrategy", {"maxSurge": 0, "maxUnavailable": 1})
        elif kind == "StatefulSet":
            spec.setdefault("podManagementPolicy", "OrderedReady")
            spec.setdefault(
                "updateStrategy", {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}
            )
            spec.setdefault(
                "persistentVolumeClaimRetentionPolicy",
                {"whenDeleted": "Retain", "whenScaled": "Retain"},
            )
    elif api_version == "batch/v1" and kind == "Job":
        spec.setdefault("backoffLimit", 6)
        spec.setdefault("completionMode", "NonIndexed")
        spec.setdefault("suspend", False)
        spec.setdefault("manualSelector", False)
        spec.setdefault("podReplacementPolicy", "TerminatingOrFailed")
        if "parallelism" not in spec:
            spec["parallelism"] = 1
        if "completions" not in spec:
            spec["completions"] = 1
    elif api_version == "batch/v1" and kind == "CronJob":
        spec.setdefault("concurrencyPolicy", "Allow")
        spec.setdefault("failedJobsHistoryLimit", 1)
        spec.setdefault("successfulJobsHistoryLimit", 3)
        spec.setdefault("suspend", False)


def _strategy(spec: dict, field: str, rolling: dict) -> None:
    """An absent or empty strategy is RollingUpdate with the kind's default bounds."""
    strategy = spec.get(field)
    if not isinstance(strategy, dict):
        strategy = spec[field] = {}
    strategy.setdefault("type", "RollingUpdate")
    if strategy["type"] == "RollingUpdate":
        current = strategy.get("rollingUpdate")
        strategy["rollingUpdate"] = {**rolling, **(current if isinstance(current, dict) else {})}
