"""Stalling the database on purpose, for the tests and the benchmark that show
the call path does not wait on it.

- SQLite: another connection holds ``BEGIN EXCLUSIVE`` on the file; readers go
  on (WAL), every writer waits for its busy timeout and fails.
- PostgreSQL (the rig's private server): every process of the server is stopped
  with SIGSTOP, so statements hang until SIGCONT, as on a stalled disk.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path

from tests.rig.postgres import postgres_server


def _postgres_pids() -> list[int]:
    """The rig's postmaster and every backend it forked."""
    server = postgres_server()
    postmaster = int((server.data / "postmaster.pid").read_text().split()[0])
    pids = [postmaster]
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == postmaster:
                pids.append(int(stat.parent.name))
    return pids


@contextlib.asynccontextmanager
async def stalled_database(url: str, at_least: float = 0.0) -> AsyncIterator[None]:
    """The database at ``url`` takes no write while the block runs, and for at
    least ``at_least`` seconds in all; then it is back."""
    began = time.monotonic()
    if url.startswith("postgresql"):
        pids = _postgres_pids()
        for pid in pids:
            os.kill(pid, signal.SIGSTOP)
        try:
            yield
            await asyncio.sleep(max(0.0, at_least - (time.monotonic() - began)))
        finally:
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGCONT)
        return
    if not url.startswith("sqlite:///"):
        raise ValueError(f"cannot stall {url}: SQLite files and the rig's PostgreSQL only")
    lock = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
    lock.execute("BEGIN EXCLUSIVE")
    try:
        yield
        await asyncio.sleep(max(0.0, at_least - (time.monotonic() - began)))
    finally:
        lock.execute("ROLLBACK")
        lock.close()
