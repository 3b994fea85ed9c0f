"""The first call, end to end on the real Asterisk with SIPp phones: a citizen
dials the hotline, presses a ward's shortcut and reaches its chairman."""

from __future__ import annotations

import pytest

from ivr.config import HotlineConfig
from ivr.service import start_services
from ivr.sim.sipp import Dtmf, Pause
from tests.conftest import Stack
from tests.rig.stack import HOTLINE_NUMBER, REPO

pytestmark = pytest.mark.asterisk


def e164(national: str) -> str:
    return "+84" + national[1:]


async def test_ward_shortcut_rings_the_chairman_and_logs_the_call(
    stack: Stack, services: object, caller_number: str
) -> None:
    chairman = stack.phones["t-chair"]
    chairman.reset()
    result = await stack.call(
        caller_number,
        steps=[Pause(600), Dtmf("5"), Pause(600), Dtmf("03")],
        hangup_after_ms=None,  # the chairman hangs up after 1.5 s
        timeout_s=40,
    )
    assert result.answered, result.log_text
    await chairman.wait_rung(1, timeout=10)
    assert chairman.answered_count == 1
    assert chairman.caller_ids == [caller_number]

    call = await stack.records.wait_closed(e164(caller_number))
    assert call.caller_number == e164(caller_number)
    assert call.caller_raw == caller_number
    assert call.dialed_number == HOTLINE_NUMBER
    assert call.hotline_id == "bac-tu-liem"
    assert call.keys_pressed == "5,03"
    assert call.area_code == "dong-ngac"
    assert call.route_kind == "dial"
    assert call.route_target is not None and call.route_target.startswith("chairman:dong-ngac")
    assert call.answered_by == "chairman:dong-ngac"
    assert call.outcome == "answered"
    assert call.uniqueid and call.linkedid
    assert call.answered_at is not None and call.ended_at is not None
    assert call.started_at <= call.answered_at <= call.ended_at
    # The chairman holds the call 1.5 s: the answer time is the chairman's
    # pick-up, not the moment Asterisk answered the caller.
    talk = (call.ended_at - call.answered_at).total_seconds()
    assert 1.0 <= talk <= 5.0, talk


async def test_wrong_key_reprompts_and_the_next_key_still_routes(
    stack: Stack, services: object, caller_number: str
) -> None:
    chairman = stack.phones["t-chair"]
    chairman.reset()
    result = await stack.call(
        caller_number,
        steps=[Pause(600), Dtmf("7"), Pause(1500), Dtmf("5"), Pause(600), Dtmf("03")],
        hangup_after_ms=None,
        timeout_s=40,
    )
    assert result.answered, result.log_text
    await chairman.wait_rung(1, timeout=10)
    call = await stack.records.wait_closed(e164(caller_number))
    assert call.keys_pressed == "7,5,03"
    assert call.answered_by == "chairman:dong-ngac"


async def test_no_key_at_all_goes_to_the_operator_queue(
    stack: Stack, services: object, caller_number: str
) -> None:
    agent = stack.phones["t-agent"]
    agent.reset()
    result = await stack.call(
        caller_number,
        steps=[],
        hangup_after_ms=None,  # the agent hangs up after 1.5 s
        timeout_s=60,
    )
    assert result.answered, result.log_text
    await agent.wait_rung(1, timeout=10)
    assert agent.caller_ids == [caller_number]
    call = await stack.records.wait_closed(e164(caller_number))
    assert call.keys_pressed == ""
    assert call.route_kind == "queue" and call.route_target == "queue:operator"
    assert call.last_step == "route:queue"
    assert call.outcome == "answered"


async def test_fastagi_server_down_still_reaches_the_operator_queue(
    stack: Stack, caller_number: str
) -> None:
    """No `services` fixture: nothing listens on the FastAGI port."""
    agent = stack.phones["t-agent"]
    agent.reset()
    result = await stack.call(
        caller_number,
        steps=[Pause(300), Dtmf("9")],  # a key the fallback script does not know
        hangup_after_ms=None,
        timeout_s=60,
    )
    assert result.answered, result.log_text
    await agent.wait_rung(1, timeout=20)
    assert agent.caller_ids == [caller_number]
    assert stack.records.by_caller(e164(caller_number)) == []  # the server really was down
    log = stack.asterisk.messages_log.read_text(errors="replace")
    assert "AGISTATUS=FAILURE" in log


async def test_real_vietnamese_prompts_play_and_barge_in_skips_them(
    stack: Stack, caller_number: str
) -> None:
    """The same route with the real prompts: the greeting lasts over 30 s, so
    reaching the chairman within the timeout proves barge-in works."""
    real: HotlineConfig = stack.config.model_copy(
        update={"paths": stack.config.paths.model_copy(update={"prompts": REPO / "prompts"})}
    )
    running = await start_services(real)
    try:
        chairman = stack.phones["t-chair"]
        chairman.reset()
        result = await stack.call(
            caller_number,
            steps=[Pause(2000), Dtmf("5"), Pause(1500), Dtmf("03")],
            hangup_after_ms=None,
            timeout_s=40,
        )
        assert result.answered, result.log_text
        await chairman.wait_rung(1, timeout=15)
    finally:
        await running.close()
    log = stack.asterisk.messages_log.read_text(errors="replace")
    # From the hotline's own folder: <prompts>/<hotline id>/<language>/.
    hotline = stack.config.hotlines[0].id
    assert f"{REPO / 'prompts' / hotline / 'vi' / 'greeting'}" in log
    call = await stack.records.wait_closed(e164(caller_number))
    assert call.answered_by == "chairman:dong-ngac"
