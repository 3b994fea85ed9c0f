"""The one way to run synchronous database work off the event loop.

Each :class:`DbExecutor` is a named, bounded thread pool. Parts that must stay
apart get separate instances: the FastAGI server's IVR has its own, so a
stalled database can hold the IVR's threads but never the console's (and the
other way round), and neither ever blocks the event loop.

The call log (:mod:`ivr.call_log`) keeps its own single writer thread: it
orders and batches writes, a different job from running a query off the loop.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

logger = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")


class DbExecutor:
    """``await executor.run(fn, *args, **kwargs)`` runs ``fn`` on one of at most
    ``max_workers`` threads named ``name-N`` and returns its result (or raises
    its exception) on the loop."""

    def __init__(self, name: str, max_workers: int) -> None:
        if max_workers < 1:
            raise ValueError("a database executor needs at least one thread")
        self.name = name
        self.max_workers = max_workers
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix=name)

    async def run(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, functools.partial(fn, *args, **kwargs))

    def close(self, wait: bool = True, cancel_pending: bool = False) -> None:
        """Take no more work; with ``wait``, return once the work running has
        finished. ``cancel_pending`` drops work not started yet (a stopping
        IVR does not wait for lookups nobody is listening to)."""
        self._pool.shutdown(wait=wait, cancel_futures=cancel_pending)

    def __repr__(self) -> str:
        return f"DbExecutor({self.name!r}, max_workers={self.max_workers})"
