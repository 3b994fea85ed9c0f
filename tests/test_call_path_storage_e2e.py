"""A ward call on the real Asterisk does not wait on the database, and stopping
``hotline serve`` loses no call record.

Marked ``db``: the suite runs it on SQLite and again on the rig's PostgreSQL
(``HOTLINE_TEST_DB=postgresql``), each with its own way to stall the database:

- SQLite: another connection holds ``BEGIN EXCLUSIVE`` on the file, longer than
  the writer's busy timeout, so the call log's writes fail and are retried;
- PostgreSQL: every process of the server is stopped (SIGSTOP) for 10 s, so the
  writer's statements hang until SIGCONT, as on a stalled disk or a failover.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys

import pytest

from ivr.db.engine import SQLITE_BUSY_TIMEOUT
from ivr.db.models import Call
from ivr.service import RunningServices
from ivr.sim.sipp import Dtmf, Pause
from tests.conftest import Stack
from tests.rig.postgres import backend
from tests.rig.stack import REPO, wait_for
from tests.rig.stall import stalled_database

pytestmark = [pytest.mark.asterisk, pytest.mark.db]

WARD_03 = [Pause(600), Dtmf("5"), Pause(600), Dtmf("03")]  # Phường Đông Ngạc: chairman answers
PG_STALL_SECONDS = 10.0
SQLITE_STALL_SECONDS = SQLITE_BUSY_TIMEOUT + 3  # past the busy timeout: writes fail and retry


def e164(national: str) -> str:
    return "+84" + national[1:]


def _assert_complete(call: Call, caller: str) -> None:
    assert call.caller_raw == caller
    assert call.keys_pressed == "5,03"
    assert call.area_code == "dong-ngac"
    assert call.route_kind == "dial"
    assert call.answered_by == "chairman:dong-ngac"
    assert call.outcome == "answered"
    assert call.answered_at is not None and call.ended_at is not None


async def test_ward_call_rings_the_chairman_while_the_database_is_stalled(
    stack: Stack, services: RunningServices, caller_number: str
) -> None:
    """Before: the entry handler awaited the call-record insert, so the chairman
    rang only once the database was back (or the caller went to the operator)."""
    chairman = stack.phones["t-chair"]
    chairman.reset()
    stall = PG_STALL_SECONDS if backend() == "postgresql" else SQLITE_STALL_SECONDS
    async with stalled_database(stack.config.database_url, at_least=stall):
        call = asyncio.ensure_future(stack.call(caller_number, WARD_03, timeout_s=40))
        try:
            # Rung, answered and hung up, all while the database is still away.
            await chairman.wait_rung(1, timeout=15)
            result = await call
        finally:
            call.cancel()
        assert result.answered, result.log_text
        assert chairman.answered_count == 1 and chairman.caller_ids == [caller_number]
        if backend() == "sqlite":  # readers still work under the lock: nothing written yet
            assert stack.records.by_caller(e164(caller_number)) == []
        assert services.call_log is not None
        assert services.call_log.pending >= 2  # the insert and the route update, held
    record = await stack.records.wait_closed(e164(caller_number), timeout=60)
    _assert_complete(record, caller_number)


async def _serve(stack: Stack) -> subprocess.Popen[bytes]:
    """``hotline serve --only agi`` on the port the dialplan calls."""
    assert stack.config.source is not None
    log = (stack.workdir / "serve-sigterm.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "ivr.cli", "--config", str(stack.config.source), "serve",
         "--only", "agi", "--drain-seconds", "30"],
        cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip

    async def listening() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"hotline serve exited ({process.returncode})")
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", stack.ports.agi)
        except OSError:
            return False
        writer.close()
        return True

    try:
        await wait_for(listening, 30, "hotline serve to listen", interval=0.1)
    except (RuntimeError, TimeoutError):
        process.kill()
        raise RuntimeError(
            "hotline serve did not start:\n"
            + (stack.workdir / "serve-sigterm.log").read_text(errors="replace")
        ) from None
    return process


async def test_sigterm_with_calls_up_loses_no_call_record(stack: Stack, caller_number: str) -> None:
    """Before: SIGTERM closed the FastAGI port at once, so the hangup handlers
    of the calls up were refused and their records stayed "in progress"."""
    chairman = stack.phones["t-chair"]
    chairman.reset()
    callers = [caller_number[:-2] + f"{90 + n}" for n in range(3)]
    server = await _serve(stack)
    calls = []
    try:
        calls = [
            asyncio.ensure_future(stack.call(caller, WARD_03, timeout_s=40)) for caller in callers
        ]
        await chairman.wait_answered(len(callers), timeout=30)
        server.send_signal(signal.SIGTERM)  # three calls up, talking to the chairman
        results = await asyncio.gather(*calls)
        exit_code = await asyncio.to_thread(server.wait, 60)
    finally:
        for call in calls:
            call.cancel()
        if server.poll() is None:
            server.kill()
    log = (stack.workdir / "serve-sigterm.log").read_text(errors="replace")
    assert exit_code == 0, log
    assert all(result.answered for result in results)
    # Everything was written before the process exited: read right away.
    for caller in callers:
        records = stack.records.by_caller(e164(caller))
        assert len(records) == 1, (caller, log)
        _assert_complete(records[0], caller)
