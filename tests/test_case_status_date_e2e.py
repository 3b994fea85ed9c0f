"""On the real Asterisk: a caller pressing the case-status key for an answered
case hears that it was answered and on which day (issue 13)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ivr.cases.service import CaseService
from ivr.db.engine import make_engine, make_session_factory
from ivr.service import RunningServices
from ivr.sim.sipp import Dtmf, Pause
from tests.conftest import Stack
from tests.test_call_flow_e2e import e164, log_size, played

pytestmark = pytest.mark.asterisk

# 17:30 UTC on 2 December is 00:30 on 3 December in Hà Nội: the day said is the local one.
ANSWERED_AT = datetime(2026, 12, 2, 17, 30, tzinfo=UTC)


async def test_status_key_says_an_answered_case_was_answered_and_when(
    stack: Stack, services: RunningServices, caller_number: str
) -> None:
    engine = make_engine(stack.config.database_url)
    try:
        cases = CaseService(make_session_factory(engine), stack.config, clock=lambda: ANSWERED_AT)
        case = cases.open_case(
            channel="phone",
            hotline_id="bac-tu-liem",
            caller_number="+84900000001",
            summary="Rác thải tại ngõ 12",
        )
        for status in ("classified", "assigned", "in_progress"):
            cases.change_status(case.code, status, actor="test")
        cases.change_status(case.code, "answered", actor="test", note="Đã thu gom rác.")
    finally:
        engine.dispose()

    before = log_size(stack)
    result = await stack.call(
        caller_number,
        [Pause(600), Dtmf("4"), Pause(600), Dtmf(case.code + "#")],
    )  # the flow hangs up once it has read the status and the date
    assert result.answered, result.log_text
    await stack.records.wait_closed(e164(caller_number))
    heard = played(stack, before)
    start = heard.index("case_status_intro")
    assert heard[start + 1 : start + 1 + len(case.code)] == [f"digit_{d}" for d in case.code]
    # "… đã được xử lý. Phản ánh đã được trả lời ngày ba tháng mười hai."
    assert heard[start + 1 + len(case.code) :][:6] == [
        "case_status_answered",
        "case_answered_on_intro",
        "digit_3",
        "date_month",
        "number_ten",
        "digit_2",
    ]
    assert "case_due_date_intro" not in heard[start:]
