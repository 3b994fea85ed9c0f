"""A call served while the FastAGI server is down still leaves a call record.

On the real Asterisk with SIPp (tests/rig/stack.py): no server listens on the
FastAGI port, so the dialplan falls back to the classic script, which routes
ward 03 to its chairman and appends the call to the call spool; the hangup
handler (the server is still down) appends its end. When ``hotline serve``
starts, the spool becomes a complete call record marked as served by the
fallback script.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ivr.fallback_calls import FALLBACK_STEP
from ivr.routing_table import call_spool_path
from ivr.service import start_services
from ivr.sim.sipp import Dtmf, Pause
from tests.conftest import Stack
from tests.rig.stack import HOTLINE_NUMBER, wait_for

pytestmark = pytest.mark.asterisk


def e164(national: str) -> str:
    return "+84" + national[1:]


def spooled(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


async def test_a_call_routed_by_the_fallback_script_is_in_the_call_log(
    stack: Stack, caller_number: str
) -> None:
    spool = call_spool_path(stack.config)
    chairman = stack.phones["t-chair"]
    chairman.reset()
    # The server is down: the classic script asks for the ward code.
    result = await stack.call(caller_number, [Pause(1000), Dtmf("03")])
    assert result.answered, result.log_text
    await chairman.wait_rung(1, timeout=15)
    assert chairman.answered_count == 1
    start = await wait_for(
        lambda: next(
            (s for s in spooled(spool) if s["event"] == "start" and s["caller"] == caller_number),
            None,
        ),
        15,
        "the fallback script's start line",
    )
    # The hangup handler could not reach the server either: its end is spooled too.
    await wait_for(
        lambda: any(
            s["event"] == "end" and s["uniqueid"] == start["uniqueid"] for s in spooled(spool)
        ),
        15,
        "the hangup handler's end line",
    )

    services = await start_services(stack.config)  # the server is back
    try:
        record = await stack.records.wait_closed(e164(caller_number))
        assert record.uniqueid == start["uniqueid"]
        assert record.hotline_id == stack.config.hotlines[0].id
        assert record.dialed_number == HOTLINE_NUMBER
        assert record.last_step == FALLBACK_STEP  # statistics tell it was served by fallback
        assert (record.route_kind, record.area_code) == ("dial", "dong-ngac")
        assert record.keys_pressed.startswith("03")
        assert record.outcome == "answered"
        assert record.answered_by == "chairman:dong-ngac"  # the label the FastAGI server writes
        assert record.answered_at is not None and record.ended_at is not None
        assert record.started_at <= record.answered_at <= record.ended_at
        # Read again (as at the next start): still one record for the call.
        assert services.call_spool is not None
        again = await services.call_spool.ingest_new()
        assert (again.inserted, again.closed) == (0, 0)
        spool_read_anew = type(services.call_spool)(spool, services.call_log)  # type: ignore[arg-type]
        reread = await spool_read_anew.ingest_new()
        assert (reread.inserted, reread.closed, reread.problems) == (0, 0, [])
        assert len(stack.records.by_caller(e164(caller_number))) == 1
    finally:
        await services.close()
