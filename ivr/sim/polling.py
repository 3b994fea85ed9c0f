"""The one way the rig, the demo and the tests wait for a condition that no event
announces: a line another process appends to a file, a row another process
commits, a port a child process binds. Where an event can be awaited (a future,
a process's exit), await it instead."""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, overload

logger = logging.getLogger(__name__)

T = TypeVar("T")


@overload
async def wait_for(
    probe: Callable[[], Awaitable[T | None]], timeout: float, what: str, *, interval: float = ...
) -> T: ...


@overload
async def wait_for(
    probe: Callable[[], T | None], timeout: float, what: str, *, interval: float = ...
) -> T: ...


async def wait_for(
    probe: Callable[[], Any],
    timeout: float,
    what: str,
    *,
    interval: float = 0.05,
) -> Any:
    """Call ``probe`` (plain or async) every ``interval`` seconds until it returns
    something true, and return that; ``TimeoutError`` naming ``what`` once
    ``timeout`` seconds have passed.

    ``probe`` is always asked at least once, and once more after the deadline,
    so a slow probe cannot make the wait give up on a condition that holds. An
    exception from ``probe`` ends the wait (say, the process that was to act has
    died), so the caller sees why instead of a timeout.
    """
    deadline = time.monotonic() + timeout
    while True:
        expired = time.monotonic() > deadline
        value = probe()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if expired:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(interval)
