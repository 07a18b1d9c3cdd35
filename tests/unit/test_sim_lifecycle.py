"""When a simulated container exits and what its restart policy does then."""

from __future__ import annotations

import pytest

from ktriage.sim.controllers.lifecycle import back_off, exit_plan, restarts, settle_phase


@pytest.mark.parametrize(
    ("command", "policy", "plan"),
    [
        (["true"], "Never", (0.5, 0)),
        (["sh", "-c", "echo done"], "Never", (0.5, 0)),
        (["sh", "-c", "do-work; exit 3"], "Always", (0.5, 3)),
        (["sleep", "5"], "Always", (5.0, 0)),
        (["sh", "-c", "sleep 2; exit 1"], "OnFailure", (2.0, 1)),
        (["python", "job.py"], "OnFailure", (1.0, 0)),
        (["sleep", "infinity"], "Always", None),
        (["nginx", "-g", "daemon off;"], "Always", None),
        ([], "Always", None),
    ],
)
def test_exit_plan(command: list[str], policy: str, plan: tuple[float, int] | None) -> None:
    assert exit_plan({"command": command}, policy) == plan


def test_hostile_commands_do_not_break_the_plan() -> None:
    assert exit_plan({"command": ["sh", "-c", "exit 999"]}, "Never") == (0.5, 999 % 256)
    assert exit_plan({"command": [7, None, {"x": 1}]}, "Always") is None
    assert exit_plan({"args": ["x"] * 100_000}, "Never") == (1.0, 0)


def test_back_off_is_kubelets() -> None:
    assert [back_off(n) for n in range(7)] == [0.0, 10.0, 20.0, 40.0, 80.0, 160.0, 300.0]
    assert restarts("Always", 0) and restarts("OnFailure", 1)
    assert not restarts("OnFailure", 0) and not restarts("Never", 1)


def _pod(policy: str, *codes: int | None) -> dict:
    statuses = []
    for code in codes:
        state = {"running": {}} if code is None else {"terminated": {"exitCode": code}}
        statuses.append({"state": state})
    return {"spec": {"restartPolicy": policy}, "status": {"containerStatuses": statuses}}


def test_settle_phase() -> None:
    for pod, phase in (
        (_pod("Never", 0, 0), "Succeeded"),
        (_pod("Never", 0, 2), "Failed"),
        (_pod("OnFailure", 0), "Succeeded"),
        (_pod("Never", 0, None), None),
        (_pod("Always", 0), None),
        (_pod("OnFailure", 1), None),
    ):
        settle_phase(pod)
        assert pod["status"].get("phase") == phase, pod
