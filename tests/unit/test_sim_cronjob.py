"""CronJob schedules and the CronJob controller on a ManualClock: Jobs start at the
times the schedule names on the sim clock, not on the wall clock."""

from __future__ import annotations

import asyncio
import calendar

import pytest

from ktriage.sim.clock import ManualClock
from ktriage.sim.controllers import origin
from ktriage.sim.controllers.cronjob import next_time, parse_schedule
from ktriage.sim.controllers.run import start_controllers
from ktriage.sim.storage.store import ClusterStore

START = float(calendar.timegm((2027, 1, 15, 10, 0, 30, 0, 0, 0)))  # a Friday, 10:00:30 UTC


def test_parse_schedule_fields_and_macros() -> None:
    fields = parse_schedule("*/15 9-17 * * 1-5")
    assert fields is not None
    assert fields[0] == {0, 15, 30, 45}
    assert fields[1] == set(range(9, 18))
    assert fields[4] == {1, 2, 3, 4, 5}
    assert parse_schedule("@hourly") == parse_schedule("0 * * * *")


@pytest.mark.parametrize(
    "text", ["", "* * * *", "61 * * * *", "*/0 * * * *", "a b c d e", "5-1 * * * *", "* " * 40]
)
def test_hostile_schedules_are_refused(text: str) -> None:
    assert parse_schedule(text) is None


def test_next_time_is_the_next_named_minute() -> None:
    every_5 = parse_schedule("*/5 * * * *")
    assert every_5 is not None
    assert next_time(every_5, START) == START - 30 + 5 * 60
    sundays = parse_schedule("0 3 * * 0")
    assert sundays is not None
    assert next_time(sundays, START) == float(calendar.timegm((2027, 1, 17, 3, 0, 0, 0, 0, 0)))
    never = parse_schedule("0 0 31 2 *")  # February 31st
    assert never is not None and next_time(never, START) is None


def test_cronjob_starts_jobs_on_the_sim_clock() -> None:
    async def scenario() -> None:
        clock = ManualClock(start=START)
        store = ClusterStore(clock)
        manager = start_controllers(store, clock)
        origin.mark_api_request()  # written as a client would
        store.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ops"}})
        store.create_checked(
            {
                "apiVersion": "batch/v1",
                "kind": "CronJob",
                "metadata": {"name": "backup", "namespace": "ops"},
                "spec": {
                    "schedule": "*/5 * * * *",
                    "jobTemplate": {
                        "spec": {
                            "template": {
                                "spec": {
                                    "restartPolicy": "Never",
                                    "containers": [{"name": "b", "image": "busybox"}],
                                }
                            }
                        }
                    },
                },
            }
        )

        async def jobs_after(seconds: float) -> list[str]:
            clock.advance(seconds)
            for _ in range(200):
                await asyncio.sleep(0)
            return sorted(j["metadata"]["name"] for j in store.list_objs("batch/v1", "Job"))

        assert await jobs_after(60) == []  # 10:01:30: not yet
        first = f"backup-{int((START - 30 + 300) // 60)}"
        assert await jobs_after(240) == [first]  # 10:05:30
        cj = store.get_obj("batch/v1", "CronJob", "ops", "backup")
        assert cj["status"]["lastScheduleTime"] == "2027-01-15T10:05:00Z"
        assert cj["status"]["active"][0]["name"] == first
        assert manager.errors == 0
        await manager.stop()

    asyncio.run(scenario())
