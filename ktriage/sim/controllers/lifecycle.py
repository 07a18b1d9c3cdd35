"""When a simulated container exits, and what its pod's restart policy does then.

There are no processes in the simulated cluster: a container's command says how long
it runs. `exit N` (as in `sh -c "...; exit 3"`) ends it with that code, `sleep N` after
N seconds; any other command of a pod that is not restarted `Always` (a Job's) does its
work and exits 0 (`true`, `echo …` at once, others after `WORK_SECONDS`); servers
(`Always`, no such command) run on.
"""

from __future__ import annotations

import re

WORK_SECONDS = 1.0
QUICK_SECONDS = 0.5  # `true`, `echo …`, `exit N`: done as soon as started
_QUICK = ("true", "echo", "date", "printf", "env", "hostname")
_EXIT = re.compile(r"(?:^|[;&|\s])exit\s+(\d{1,3})\b")
_SLEEP = re.compile(r"(?:^|[;&|\s])sleep\s+(\d+(?:\.\d+)?)\b")
_FOREVER = ("infinity", "inf")


def exit_plan(container: dict, restart_policy: str) -> tuple[float, int] | None:
    """(seconds after start, exit code), or None if the container runs until stopped."""
    words = [str(x) for x in (container.get("command") or []) + (container.get("args") or [])]
    text = " ".join(words)
    if any(f"sleep {word}" in text for word in _FOREVER):
        return None
    sleep = _SLEEP.search(text)
    seconds = float(sleep.group(1)) if sleep else None
    code_match = _EXIT.search(text)
    if code_match:
        return (seconds or 0.5, int(code_match.group(1)) % 256)
    if seconds is not None:
        return (seconds, 0)
    if restart_policy != "Always" and words:
        # The program, or the first word of a shell script (`sh -c "echo …"`).
        first = words[0].rsplit("/", 1)[-1]
        if first in ("sh", "bash", "ash") and len(words) > 2 and words[1] == "-c":
            first = (words[2].split() or [""])[0]
        quick = first in _QUICK
        return (QUICK_SECONDS if quick else WORK_SECONDS, 0)
    return None


def restarts(restart_policy: str, code: int) -> bool:
    return restart_policy == "Always" or (restart_policy == "OnFailure" and code != 0)


def back_off(restart_count: int) -> float:
    """Kubelet's crash-loop back-off: the first restart at once, then 10 s, doubling,
    at most 5 minutes."""
    if restart_count <= 0:
        return 0.0
    return float(min(10 * 2 ** (int(restart_count) - 1), 300))


def settle_phase(pod: dict) -> None:
    """A pod whose containers have all exited for good is Succeeded or Failed."""
    spec = pod.get("spec") or {}
    policy = spec.get("restartPolicy", "Always")
    status = pod.get("status") or {}
    codes = []
    for cs in status.get("containerStatuses") or []:
        term = (cs.get("state") or {}).get("terminated")
        if term is None:
            return
        codes.append(int(term.get("exitCode", 0)))
    if not codes or any(restarts(policy, c) for c in codes):
        return
    status["phase"] = "Succeeded" if all(c == 0 for c in codes) else "Failed"
