"""Every branch of the hotline call flow on the real Asterisk with SIPp phones.

The shared test stack (tests/rig/stack.py): ward 03 chairman answers; ward 04
chairman never answers and the vice-chairman does; ward 05 nobody answers and
the caller leaves a message; the operator queue has one answering agent; the
pstn trunk leads to a SIPp carrier that answers any number (113, 114, 115).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import pytest_asyncio

from ivr.cases.service import CaseService
from ivr.db.engine import make_engine, make_session_factory
from ivr.flow.call_flow import HotlineFlow
from ivr.service import RunningServices, start_services
from ivr.sim.sipp import AUDIO_PCAP, Dtmf, Pause, PlayAudio, dtmf_end_offset_ms
from tests.conftest import Stack
from tests.rig.stack import wait_for

pytestmark = pytest.mark.asterisk

SUNDAY_10H_HANOI = datetime(2026, 11, 22, 3, 0, tzinfo=UTC)


def e164(national: str) -> str:
    return "+84" + national[1:]


def played(stack: Stack, since: int) -> list[str]:
    """Prompt names Asterisk played since log offset ``since``; each from the
    hotline's own folder, ``<prompts>/<hotline id>/<language>/``."""
    text = stack.asterisk.messages_log.read_text(errors="replace")[since:]
    prompts = stack.config.resolve_path(stack.config.paths.prompts)
    names = []
    for line in text.splitlines():
        if "Playing '" in line:
            path = Path(line.split("Playing '", 1)[1].split("'", 1)[0])
            assert path.parent == prompts / stack.config.hotlines[0].id / "vi", path
            names.append(path.stem)
    return names


def log_size(stack: Stack) -> int:
    return len(stack.asterisk.messages_log.read_text(errors="replace"))


async def test_chairman_not_answering_rings_the_next_fallback(
    stack: Stack, services: RunningServices, caller_number: str
) -> None:
    silent, vice = stack.phones["t-chair-silent"], stack.phones["t-vice"]
    silent.reset()
    vice.reset()
    result = await stack.call(caller_number, [Pause(600), Dtmf("5"), Pause(600), Dtmf("04")])
    assert result.answered, result.log_text
    await vice.wait_rung(1, timeout=15)
    assert silent.rung_count == 1 and silent.answered_count == 0
    assert vice.caller_ids == [caller_number]
    # the chairman rang for its 3 s before the fallback
    assert vice.calls[0].rung_at - silent.calls[0].rung_at >= 2.5
    record = await stack.records.wait_closed(e164(caller_number))
    assert record.area_code == "duc-thang"
    assert record.answered_by == "phone:t-vice"
    assert record.outcome == "answered"


async def test_nobody_answers_so_a_message_becomes_a_case(
    stack: Stack, services: RunningServices, caller_number: str
) -> None:
    silent = stack.phones["t-chair-silent"]
    silent.reset()
    before = log_size(stack)
    # ward 05: the chairman rings 3 s, then the caller speaks after the beep and presses #
    result = await stack.call(
        caller_number,
        [
            Pause(600),
            Dtmf("5"),
            Pause(600),
            Dtmf("05"),
            Pause(4500),
            PlayAudio(AUDIO_PCAP),
            Dtmf("#"),
        ],
        hangup_after_ms=4000,
    )
    assert result.answered, result.log_text
    assert silent.rung_count == 1
    sessions = make_session_factory(make_engine(stack.config.database_url))
    cases = CaseService(sessions, stack.config)
    opened = await wait_for(
        lambda: cases.open_cases_for_caller(e164(caller_number)), 20, "the voicemail case"
    )
    case = opened[0]
    assert case.channel == "voicemail" and case.area_code == "lien-mac"
    heard = played(stack, before)
    assert "voicemail_intro" in heard and "case_code_intro" in heard
    spoken = heard[heard.index("case_code_intro") + 1 :][: len(case.code)]
    assert spoken == [f"digit_{digit}" for digit in case.code]
    recordings = list(stack.config.resolve_path(stack.config.paths.recordings).rglob("*voicemail*"))
    assert any(path.stat().st_size > 44 for path in recordings)


@pytest.mark.parametrize(("key", "number"), [("1", "113"), ("2", "114"), ("3", "115")])
async def test_emergency_key_rings_the_emergency_number_at_once(
    stack: Stack, services: RunningServices, caller_number: str, key: str, number: str
) -> None:
    carrier = stack.carrier
    carrier.reset()
    result = await stack.call(caller_number, [Pause(600), Dtmf("9"), Pause(600), Dtmf(key)])
    assert result.answered, result.log_text
    await carrier.wait_rung(1, timeout=10)
    assert [c.dialed for c in carrier.calls] == [number]
    # From the moment Asterisk has the whole key to the INVITE at the target.
    key_done = result.dtmf_sent_at[-1].at + dtmf_end_offset_ms(key) / 1000
    assert carrier.calls[0].rung_at - key_done < 1.0
    record = await stack.records.wait_closed(e164(caller_number))
    assert record.keys_pressed == f"9,{key}"
    assert record.route_target is not None and record.route_target.startswith(f"tel:{number}@")


@pytest_asyncio.fixture(loop_scope="session")
async def sunday_services(stack: Stack) -> AsyncIterator[RunningServices]:
    running = await start_services(stack.config, clock=lambda: SUNDAY_10H_HANOI)
    try:
        yield running
    finally:
        await running.close()


async def test_queue_out_of_hours_plays_the_hours_and_takes_a_message(
    stack: Stack, sunday_services: RunningServices, caller_number: str
) -> None:
    """Key 1 (procedures) on a Sunday: that queue keeps office hours."""
    before = log_size(stack)
    result = await stack.call(
        caller_number,
        [Pause(600), Dtmf("1"), Pause(2500), Dtmf("#")],
        hangup_after_ms=3000,
    )
    assert result.answered, result.log_text
    record = await stack.records.wait_closed(e164(caller_number))
    assert record.route_kind == "voicemail"
    assert record.route_target == "queue:procedures closed → voicemail"
    heard = played(stack, before)
    assert heard.index("out_of_hours") < heard.index("voicemail_intro")


async def test_three_invalid_keys_go_to_the_operator(
    stack: Stack, services: RunningServices, caller_number: str
) -> None:
    agent = stack.phones["t-agent"]
    agent.reset()
    before = log_size(stack)
    result = await stack.call(
        caller_number,
        [Pause(600), Dtmf("7"), Pause(1200), Dtmf("7"), Pause(1200), Dtmf("7")],
    )
    assert result.answered, result.log_text
    await agent.wait_rung(1, timeout=15)
    record = await stack.records.wait_closed(e164(caller_number))
    assert record.keys_pressed == "7,7,7"
    assert record.route_target == "queue:operator"
    heard = played(stack, before)
    assert heard.count("invalid_key") == 2 and "to_operator" in heard


async def test_hangup_mid_menu_closes_the_record_with_the_last_step(
    stack: Stack, services: RunningServices, caller_number: str
) -> None:
    result = await stack.call(caller_number, [Pause(600), Dtmf("5")], hangup_after_ms=800)
    assert result.answered and result.hung_up_by == "caller", result.log_text
    record = await stack.records.wait_closed(e164(caller_number))
    assert record.last_step == "menu:wards"
    assert record.keys_pressed == "5"
    assert record.route_kind is None
    assert record.outcome == "abandoned_in_ivr"


async def test_case_status_by_phone_reads_the_right_case(
    stack: Stack, services: RunningServices, caller_number: str
) -> None:
    sessions = make_session_factory(make_engine(stack.config.database_url))
    cases = CaseService(sessions, stack.config)
    other = cases.open_case(channel="web", hotline_id="bac-tu-liem", caller_number=None)
    case = cases.open_case(
        channel="phone",
        hotline_id="bac-tu-liem",
        caller_number="+84900000000",
        summary="Đèn đường hỏng",
    )
    cases.change_status(case.code, "classified", actor="test")
    cases.change_status(case.code, "assigned", actor="test")
    cases.change_status(case.code, "in_progress", actor="test")
    assert other.code != case.code
    before = log_size(stack)
    result = await stack.call(
        caller_number,
        [Pause(600), Dtmf("4"), Pause(600), Dtmf(case.code + "#")],
    )  # the flow hangs up once it has read the status: a caller's timer here raced it
    assert result.answered, result.log_text
    await stack.records.wait_closed(e164(caller_number))
    heard = played(stack, before)
    start = heard.index("case_status_intro")
    assert heard[start + 1 : start + 1 + len(case.code)] == [f"digit_{d}" for d in case.code]
    assert heard[start + 1 + len(case.code)] == "case_status_in_progress"
    assert "case_due_date_intro" in heard[start:]


async def test_fastagi_handler_raising_still_reaches_the_operator(
    stack: Stack, services: RunningServices, caller_number: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("a bug in the flow")

    monkeypatch.setattr(HotlineFlow, "run", broken)
    agent = stack.phones["t-agent"]
    agent.reset()
    result = await stack.call(caller_number, [])
    assert result.answered, result.log_text
    await agent.wait_rung(1, timeout=15)
    assert agent.caller_ids == [caller_number]
    assert "HL_STEP=failure:operator" in stack.asterisk.messages_log.read_text(errors="replace")


async def test_fastagi_down_the_fallback_script_still_routes_ward_keys(
    stack: Stack, caller_number: str
) -> None:
    """No FastAGI server: the classic pyst2 script reads the routing table."""
    chairman = stack.phones["t-chair"]
    chairman.reset()
    result = await stack.call(caller_number, [Pause(1000), Dtmf("03")])
    assert result.answered, result.log_text
    await chairman.wait_rung(1, timeout=15)
    assert chairman.caller_ids == [caller_number]


async def test_caller_rates_the_agent_call_after_the_agent_hangs_up(
    stack: Stack, services: RunningServices, caller_number: str
) -> None:
    """Queue(c): when the agent hangs up first the caller stays for the survey."""
    agent = stack.phones["t-agent"]
    agent.reset()
    before = log_size(stack)
    result = await stack.call(
        caller_number,
        [Pause(600), Dtmf("0"), Pause(3500), Dtmf("3")],
        hangup_after_ms=1500,
    )
    assert result.answered, result.log_text
    assert agent.answered_count == 1
    record = await stack.records.wait_closed(e164(caller_number))
    await wait_for(
        lambda: next(
            iter(
                c.satisfaction
                for c in stack.records.by_caller(e164(caller_number))
                if c.satisfaction
            ),
            None,
        ),
        10,
        "the rating on the call",
    )
    rated = stack.records.by_caller(e164(caller_number))[0]
    assert rated.satisfaction == 3 and record.outcome == "answered"
    heard = played(stack, before)
    assert heard.index("survey") < heard.index("survey_thanks")
