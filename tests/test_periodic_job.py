"""The schedule the database jobs share (ivr/db/periodic.py): a failed run is
logged on the owner's logger and the next runs anyway; wake() cuts the pause
short; close() ends it, and a closed schedule runs no more."""

from __future__ import annotations

import asyncio
import logging

import pytest

from ivr.db.periodic import PeriodicJob

HOUR = 3600.0  # a pause no test waits out: only wake() can start the next run
owner = logging.getLogger("tests.periodic_owner")


class Job:
    def __init__(self, failures: int = 0) -> None:
        self.runs = 0
        self.failures = failures
        self.ran = asyncio.Event()

    async def __call__(self) -> None:
        self.runs += 1
        self.ran.set()
        if self.runs <= self.failures:
            raise RuntimeError(f"run {self.runs} failed")

    async def next_run(self) -> int:
        await asyncio.wait_for(self.ran.wait(), 10)
        self.ran.clear()
        return self.runs


async def test_a_failed_run_is_logged_and_the_next_one_still_runs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    job = Job(failures=1)
    schedule = PeriodicJob("test-job", job, lambda: 0.0, "the job failed", owner)
    with caplog.at_level(logging.ERROR, logger=owner.name):
        schedule.start()
        try:
            assert await job.next_run() == 1
            assert await job.next_run() == 2
        finally:
            await schedule.close()
    failed = [r for r in caplog.records if r.name == owner.name]
    assert [r.getMessage() for r in failed] == ["the job failed"]
    assert failed[0].exc_info is not None and "run 1 failed" in str(failed[0].exc_info[1])


async def test_wake_runs_at_once_and_close_stops_the_schedule() -> None:
    job = Job()
    schedule = PeriodicJob("test-job", job, lambda: HOUR, "the job failed", owner)
    schedule.start()
    assert await job.next_run() == 1
    schedule.wake()
    assert await job.next_run() == 2
    await schedule.close()
    schedule.wake()  # after close: nothing to wake, no error
    for _ in range(5):
        await asyncio.sleep(0)
    assert job.runs == 2


async def test_the_pause_is_read_again_before_each_wait() -> None:
    # Zero first (run again at once), then an hour: a pause read once would
    # give either a run loop without end or a single run.
    job = Job()
    pauses = [0.0, HOUR]
    schedule = PeriodicJob("test-job", job, lambda: pauses.pop(0), "the job failed", owner)
    schedule.start()
    try:
        assert await job.next_run() == 1
        assert await job.next_run() == 2
        for _ in range(20):
            await asyncio.sleep(0)
        assert job.runs == 2 and pauses == []
    finally:
        await schedule.close()
