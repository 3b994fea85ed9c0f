"""A call served while the FastAGI server is down still leaves a call record.

On the real Asterisk with SIPp (tests/rig/stack.py): no server listens on the
FastAGI port, so the dialplan falls back to the classic script, which routes
ward 03 to its chairman and appends the call to the call spool; the hangup
handler (the server is still down) appends its end. When ``hotline serve``
starts, the spool becomes a complete call record marked as served by the
fallback script.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from ivr.cases.models import Case, Recording
from ivr.db.engine import make_engine, make_session_factory
from ivr.fallback_calls import FALLBACK_STEP, FallbackCallSpool
from ivr.routing_table import call_spool_path
from ivr.service import start_services
from ivr.sim.sipp import AUDIO_PCAP, Dtmf, Pause, PlayAudio
from tests.conftest import Stack
from tests.rig.stack import HOTLINE_NUMBER, wait_for
from tests.test_call_path_storage_e2e import _serve

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


async def test_a_chain_ending_in_voicemail_reaches_the_operator_while_the_server_is_down(
    stack: Stack, caller_number: str
) -> None:
    """Soak defect: ward 05's chain ends in voicemail, which the classic script
    cannot do; after the silent chairman rang, the dialplan hung up (a dead
    end). Now the operator queue (a human) answers after the chain."""
    silent, agent = stack.phones["t-chair-silent"], stack.phones["t-agent"]
    silent.reset()
    agent.reset()
    result = await stack.call(caller_number, [Pause(1000), Dtmf("05")], timeout_s=60)
    assert result.answered, result.log_text
    await agent.wait_rung(1, timeout=20)
    assert silent.rung_count == 1 and silent.answered_count == 0
    assert agent.caller_ids == [caller_number]
    spool = call_spool_path(stack.config)
    start = next(
        s for s in spooled(spool) if s["event"] == "start" and s["caller"] == caller_number
    )
    assert (start["route"], start["area"]) == ("dial", "lien-mac")


async def test_a_message_left_when_the_server_died_becomes_its_case(
    stack: Stack, caller_number: str
) -> None:
    """Soak defect: serve died while the caller was leaving a message; the WAV
    was on disk but voicemail-saved (connection refused) and the spooled
    hangup line lost it: no case. Now the spooled line names the recording and
    serve, back, opens the case and registers the recording (once)."""
    silent = stack.phones["t-chair-silent"]
    silent.reset()
    server = await _serve(stack)
    call = asyncio.ensure_future(
        stack.call(
            caller_number,
            [Pause(600), Dtmf("5"), Pause(600), Dtmf("05"), Pause(4500), PlayAudio(AUDIO_PCAP),
             Dtmf("#")],
            hangup_after_ms=4000,
        )
    )  # fmt: skip
    try:
        await silent.wait_rung(1, timeout=20)  # routed by the server: ward 05, then voicemail
        server.kill()  # dies (SIGKILL: no drain) before the message is saved
        await asyncio.to_thread(server.wait, 10)
        result = await call
    finally:
        call.cancel()
        if server.poll() is None:
            server.kill()
    assert result.answered, result.log_text
    spool = call_spool_path(stack.config)
    end = await wait_for(
        lambda: next(
            (s for s in spooled(spool) if s["event"] == "end" and s.get("caller") == caller_number),
            None,
        ),
        15,
        "the hangup handler's spooled end line",
    )
    assert end["route"] == "voicemail" and end["rec_base"]
    message = Path(end["rec_base"] + "-voicemail.wav")
    assert message.stat().st_size > 44

    sessions = make_session_factory(make_engine(stack.config.database_url))

    def cases() -> list[Case]:
        with sessions() as session:
            return list(session.scalars(select(Case).where(Case.call_uniqueid == end["uniqueid"])))

    assert cases() == []
    services = await start_services(stack.config)  # serve is back: it reads the spool
    try:
        [case] = await wait_for(cases, 20, "the voicemail case from the spool")
        assert case.channel == "voicemail" and case.caller_number == e164(caller_number)
        assert case.hotline_id == stack.config.hotlines[0].id
        assert services.agi is not None and services.call_log is not None
        reread = FallbackCallSpool(
            spool, services.call_log, recordings=services.agi.spooled_recordings
        )
        await reread.ingest_new()  # the same line read again: still one case
        assert len(cases()) == 1
        with sessions() as session:
            [recording] = session.scalars(
                select(Recording).where(Recording.path == str(message))
            ).all()
        assert recording.kind == "voicemail" and recording.case_id == case.id
        record = await stack.records.wait_closed(e164(caller_number))
        # As the FastAGI path writes it: the chain's last dial went unanswered.
        assert (record.area_code, record.outcome) == ("lien-mac", "no_answer")
    finally:
        await services.close()
