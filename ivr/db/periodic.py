"""A job run on the event loop every so many seconds until closed: the
schedules of the database jobs (the reply dispatcher, forward reminders,
retention, the statistics roll-up) run, fail and stop the same way.

A failed run is logged and the next one runs on time: a database down for a
while must not end a schedule that nobody restarts."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

logger = logging.getLogger(__name__)


class PeriodicJob:
    """``job`` at :meth:`start`, then again ``every_seconds()`` after each run
    ends (read at each pause: a reloaded config takes effect at the next one),
    or at once after :meth:`wake`. ``failed`` is logged, with the traceback,
    on ``log`` (the owner's logger) when a run raises."""

    def __init__(
        self,
        name: str,
        job: Callable[[], Awaitable[object]],
        every_seconds: Callable[[], float],
        failed: str,
        log: logging.Logger = logger,
    ) -> None:
        self.name = name
        self._job = job
        self._every_seconds = every_seconds
        self._failed = failed
        self._log = log
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._task = self._loop.create_task(self._run(), name=self.name)

    def wake(self) -> None:
        """Run now instead of at the end of the pause. Safe from any thread."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._wake.set)

    async def close(self) -> None:
        """Stop the schedule; a run under way is cancelled at its next await."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._loop = None

    async def _run(self) -> None:
        while True:
            try:
                await self._job()
            except Exception:  # retried at the next tick, never fatal
                self._log.exception(self._failed)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._every_seconds())
            self._wake.clear()
