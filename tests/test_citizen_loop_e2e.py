"""The citizen's loop of issue 13 in a real browser (Debian's chromium driven
by Playwright) against the real stack: a private Asterisk, the FastAGI server,
the queue manager, the console and SIPp phones.

A SIPp citizen calls and presses 0; the agent, on the screen-pop, writes the
case and forwards it to two units from the case page; each unit's clerk signs
in and sees only the case forwarded to their unit; one answers on time with a
file; the reminder job runs with its clock past the other's deadline and the
escalation appears on the supervisor's wallboard; the late unit answers; the
supervisor approves the combined answer; the citizen's SMS (the outbox file)
carries it; a new call pressing the status key hears the case is answered and
on which day.

Time: the job decides "overdue" by the clock of its :class:`ForwardingService`.
Rather than sleep for days, the test runs the job once through
:class:`ForwardingSchedule` over a service whose clock is 30 days ahead, wired to
the running console's live hub exactly as :func:`start_due_checks` wires the
console's own. No wall-clock time is asserted: dates come from the database.
Screenshots of the unit's pages go to docs/screenshots/ (docs/web.md).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import pytest_asyncio
from aiohttp import web
from playwright.async_api import Browser, BrowserContext, Page, async_playwright, expect
from sqlalchemy import select

from ivr.asterisk.instance import AsteriskInstance
from ivr.cases.forwarding import DueRun, ForwardingSchedule, ForwardingService
from ivr.cases.models import Case, CaseEvent, CaseForward
from ivr.config import HotlineConfig
from ivr.db.engine import make_engine, make_session_factory
from ivr.db.models import utc_now
from ivr.flow.spoken_numbers import day_month_prompts
from ivr.service import RunningServices, start_services
from ivr.sim.sipp import CallResult, Dtmf, Pause, SippAnswerer, SippCaller
from ivr.web.app import start_web
from ivr.web.state import STATE
from ivr.web.store import UserStore
from queue_manager.manager import QueueManager
from tests.rig.browser import launch_chromium, require_chromium
from tests.rig.browser import signed_in as browser_signed_in
from tests.rig.stack import (
    HOTLINE_NUMBER,
    REPO,
    Ports,
    free_tcp_port,
    free_udp_port,
    start_asterisk,
    wait_for,
    write_test_config,
)

pytestmark = [pytest.mark.asterisk, pytest.mark.browser]

SCREENSHOTS = REPO / "docs" / "screenshots"
PASSWORD = "mật-khẩu-thử-nghiệm"
CALLER = "0912000888"
CALLER_E164 = "+84912000888"
TIMEOUT_MS = 20_000
AGENT_ROW = 'section[data-queue="operator"] tr.agent[data-interface="PJSIP/qa-1"]'
WARD, DEPARTMENT = "ubnd-phuong-dong-ngac", "phong-quan-ly-do-thi"
WARD_NAME, DEPARTMENT_NAME = "Ủy ban nhân dân phường Đông Ngạc", "Phòng Quản lý đô thị"
WARD_ANSWER = "Phường đã thu gom rác tại ngõ 12 ngày hôm nay."
DEPARTMENT_ANSWER = "Phòng đã bố trí thêm thùng rác cho ngõ 12."


@dataclass
class LoopRig:
    asterisk: AsteriskInstance
    config: HotlineConfig
    services: RunningServices
    manager: QueueManager
    sessions: Any
    workdir: Path
    port: int
    runner: web.AppRunner
    browser: Browser
    sms_outbox: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def _tweak(sms_outbox: Path) -> Any:
    def tweak(data: dict[str, Any]) -> None:
        data["agents"].append({"id": "qa1", "name": "Nguyễn Thị Lan", "phone": "qa-1"})
        for queue in data["queues"]:
            if queue["id"] == "operator":
                queue.update(members=[], ring_seconds=15, wrapup_seconds=2)
        data["roster"]["assignments"] = []
        data["roster"]["overrides"] = []
        hotline = data["hotlines"][0]["id"]
        data["units"] = [
            {"code": WARD, "name": WARD_NAME, "kind": "ward_committee", "area": "dong-ngac",
             "email": "vanthu@dong-ngac.example", "hotline": hotline},
            {"code": DEPARTMENT, "name": DEPARTMENT_NAME, "kind": "department",
             "email": "qldt@bac-tu-liem.example", "hotline": hotline},
        ]  # fmt: skip
        # The job runs when the test says so (run_once), never on its own timer.
        data["forwarding"] = {"check_every_minutes": 0}
        data["sms"]["path"] = str(sms_outbox)

    return tweak


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def rig(
    tmp_path_factory: pytest.TempPathFactory,
    asterisk_binary: Path,
    sipp_binary: str,
    quick_prompts: Path,
) -> AsyncIterator[LoopRig]:
    require_chromium()  # before anything starts
    base = tmp_path_factory.mktemp("citizen-loop")
    # The agent's phone rings 3 s (time for the screen-pop) and talks 8 s.
    phone = SippAnswerer(base / "sipp", "qa-1", mode="answer", ring_ms=3000, hold_ms=8000)
    await phone.start()
    sms_outbox = base / "sms-outbox.jsonl"
    config_path = write_test_config(
        base,
        Ports(),
        {
            **{p: f"sip:{p}@127.0.0.1:9" for p in ("t-chair", "t-chair-silent", "t-vice",
                                                  "t-agent")},
            "qa-1": phone.contact,
        },
        quick_prompts,
        trunk_port=free_udp_port(),
        tweak=_tweak(sms_outbox),
    )  # fmt: skip
    asterisk, config = start_asterisk(base, config_path)
    services = await start_services(config)  # FastAGI: the call flow puts calls in queues
    engine = make_engine(config.database_url)
    sessions = make_session_factory(engine)
    users = UserStore(sessions)
    users.add("giamsat", PASSWORD, "supervisor", display_name="Trần Văn Giám")
    users.add("dtv-lan", PASSWORD, "agent", agent_id="qa1", display_name="Nguyễn Thị Lan")
    users.add("vanthu-phuong", PASSWORD, "unit", unit_code=WARD, display_name="Lê Thị Hoa")
    users.add("chuyenvien-qldt", PASSWORD, "unit", unit_code=DEPARTMENT,
              display_name="Đỗ Văn Nam")  # fmt: skip
    manager = QueueManager(config, sessions, backoff=(1.0, 3.0), ping_interval=2.0)
    await manager.start()
    port = free_tcp_port()
    runner = await start_web(config, sessions, queue_manager=manager, port=port)
    playwright = await async_playwright().start()
    browser = await launch_chromium(playwright)
    rig = LoopRig(asterisk, config, services, manager, sessions, base, port, runner, browser,
                  sms_outbox)  # fmt: skip
    try:
        await wait_for(lambda: manager.links["local"].synced.is_set(), 20, "the first resync")
        yield rig
    finally:
        await browser.close()
        await playwright.stop()
        await runner.cleanup()
        await manager.close()
        await services.close()
        asterisk.stop()
        engine.dispose()
        await phone.stop()


async def signed_in(rig: LoopRig, username: str) -> tuple[BrowserContext, Page]:
    context, page = await browser_signed_in(rig.browser, rig.url, username, PASSWORD, TIMEOUT_MS)
    return context, page


def call(
    rig: LoopRig, steps: list[Any], hangup_after_ms: int | None = None
) -> asyncio.Task[CallResult]:
    caller = SippCaller(rig.workdir / "calls")
    return asyncio.create_task(
        caller.call(
            target=f"127.0.0.1:{rig.config.asterisk.sip.port}",
            number=HOTLINE_NUMBER,
            caller_id=CALLER,
            steps=steps,
            hangup_after_ms=hangup_after_ms,
            timeout_s=60,
        )
    )


def played(rig: LoopRig, since: int) -> list[str]:
    """Prompt names Asterisk played since log offset ``since``."""
    text = rig.asterisk.messages_log.read_text(errors="replace")[since:]
    return [
        Path(line.split("Playing '", 1)[1].split("'", 1)[0]).stem
        for line in text.splitlines()
        if "Playing '" in line
    ]


def forwards_of(rig: LoopRig, code: str) -> dict[str, CaseForward]:
    with rig.sessions() as session:
        case_id = session.scalar(select(Case.id).where(Case.code == code))
        rows = session.scalars(select(CaseForward).where(CaseForward.case_id == case_id))
        return {f.unit_code: f for f in rows}


async def run_job_later(rig: LoopRig, days: int) -> DueRun:
    """The reminder job once, its clock ``days`` ahead, feeding the running
    console's wallboard (the wiring of :func:`ivr.web.forwarding.start_due_checks`)."""
    hub = rig.runner.app[STATE].hub
    service = ForwardingService(
        rig.sessions, rig.config, clock=lambda: utc_now() + timedelta(days=days)
    )
    schedule = ForwardingSchedule(
        service, None, lambda run: hub.set_overdue_forwards(run.overdue_by_hotline,
                                                            run.escalations)
    )  # fmt: skip
    try:
        return await schedule.run_once()
    finally:
        await schedule.close()


async def test_a_call_becomes_a_forwarded_case_answered_by_units_and_heard_by_the_citizen(
    rig: LoopRig,
) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    sup_context, board = await signed_in(rig, "giamsat")
    await expect(board).to_have_url(rig.url + "/wallboard")
    await expect(board.locator("#live-status")).to_have_class("status on")
    agent_context, console = await signed_in(rig, "dtv-lan")
    await expect(console.locator("#live-status")).to_have_class("status on")
    await console.click("#queue-login")
    await expect(board.locator(AGENT_ROW).locator(".agent-state")).to_have_text("sẵn sàng")

    # The citizen calls and presses 0; the agent writes the case on the screen-pop.
    first_call = call(rig, [Pause(500), Dtmf("0")])
    await expect(console.locator("#pop-number")).to_have_text(CALLER)
    await console.fill("#case-name", "Phạm Văn Minh")
    await console.select_option("#case-topic", "hien-truong")
    await console.fill("#case-summary", "Rác thải tồn đọng ba ngày ở ngõ 12 phố Đông Ngạc.")
    await console.click("#case-save")
    await expect(console.locator("#case-result")).to_contain_text("Đã lưu phản ánh mã số")
    code = await console.locator("#case-result").get_attribute("data-code")
    assert code and code.isdigit()
    assert (await first_call).answered

    # ... and forwards it to the ward and the department from the case page.
    await console.goto(rig.url + f"/cases/{code}")
    form = console.locator("#forward-form")
    await form.locator(f'input[name="unit"][value="{WARD}"]').check()
    await form.locator(f'input[name="unit"][value="{DEPARTMENT}"]').check()
    await form.locator('input[name="working_days"]').fill("2")
    await form.locator("button").click()
    await expect(console.locator("#forward-list tbody tr")).to_have_count(2)
    forwards = forwards_of(rig, code)
    assert set(forwards) == {WARD, DEPARTMENT}

    # Each unit's clerk sees the case forwarded to their unit, and only that.
    ward_context, ward = await signed_in(rig, "vanthu-phuong")
    await expect(ward).to_have_url(rig.url + "/forwards")
    rows = ward.locator("#unit-forwards tbody tr")
    await expect(rows).to_have_count(1)
    await expect(rows.first).to_have_attribute("data-forward", str(forwards[WARD].id))
    await expect(rows.first.locator(".days-left")).to_be_visible()
    await ward.screenshot(path=str(SCREENSHOTS / "unit-forwards.png"), full_page=True)
    dept_context, dept = await signed_in(rig, "chuyenvien-qldt")
    dept_rows = dept.locator("#unit-forwards tbody tr")
    await expect(dept_rows).to_have_count(1)
    await expect(dept_rows.first).to_have_attribute("data-forward", str(forwards[DEPARTMENT].id))
    refused = await dept.goto(rig.url + f"/forwards/{forwards[WARD].id}")
    assert refused is not None and refused.status == 403
    await dept.goto(rig.url + "/forwards")
    await dept_rows.first.locator("a").click()
    await dept.click("#mark-received")
    await expect(dept.locator("#forward-status")).to_have_text("đơn vị đã tiếp nhận")

    # The ward answers on time, with a file.
    await rows.first.locator("a").click()
    await expect(ward.locator("#case-summary")).to_contain_text("Rác thải tồn đọng")
    await ward.fill("#answer-text", WARD_ANSWER)
    await ward.set_input_files(
        "#answer-files",
        files=[{"name": "biên bản.pdf", "mimeType": "application/pdf",
                "buffer": b"%PDF-1.4 bien ban thu gom"}],
    )  # fmt: skip
    await ward.screenshot(path=str(SCREENSHOTS / "unit-case.png"), full_page=True)
    await ward.click("#send-answer")
    await expect(ward.locator("#forward-answer")).to_have_text(WARD_ANSWER)
    await expect(ward.locator("#forward-attachments")).to_contain_text("biên bản.pdf")
    answered = forwards_of(rig, code)[WARD]
    assert answered.status == "answered" and answered.answered_at is not None
    zone = ZoneInfo(rig.config.timezone)
    assert answered.answered_at.astimezone(zone).date() <= answered.due_date  # on time

    # Past the department's deadline, the escalation reaches the wallboard.
    run = await run_job_later(rig, days=30)
    assert run.escalated == [forwards[DEPARTMENT].id]
    overdue = board.locator(f'#overdue-list li[data-code="{code}"]')
    await expect(overdue).to_have_attribute("data-unit", DEPARTMENT)
    await expect(overdue).to_contain_text(DEPARTMENT_NAME)
    await board.screenshot(path=str(SCREENSHOTS / "wallboard-overdue.png"), full_page=True)

    # The department answers late; the supervisor approves the combined answer.
    await dept.fill("#answer-text", DEPARTMENT_ANSWER)
    await dept.click("#send-answer")
    await expect(dept.locator("#forward-answer")).to_have_text(DEPARTMENT_ANSWER)
    await board.goto(rig.url + f"/cases/{code}")
    draft = board.locator('#final-answer-form textarea[name="answer"]')
    await expect(draft).to_have_value(f"{WARD_NAME}: {WARD_ANSWER}\n\n"
                                      f"{DEPARTMENT_NAME}: {DEPARTMENT_ANSWER}")  # fmt: skip
    await board.locator("#final-answer-form button").click()
    await expect(board.locator("#final-answer-form")).to_have_count(0)
    with rig.sessions() as session:
        case = session.scalar(select(Case).where(Case.code == code))
        assert case is not None
        assert (case.status, case.answer_approved_by) == ("closed", "giamsat")
        answered_at = session.scalar(
            select(CaseEvent.at).where(CaseEvent.case_id == case.id, CaseEvent.action == "status",
                                       CaseEvent.to_status == "answered")
        )  # fmt: skip
    assert answered_at is not None

    # The citizen's SMS carries both units' answers.
    sent = [json.loads(line) for line in rig.sms_outbox.read_text(encoding="utf-8").splitlines()]
    answers = [m for m in sent if m["purpose"] == "case_answered" and m["case_code"] == code]
    assert len(answers) == 1 and answers[0]["to"] == CALLER_E164
    assert WARD_ANSWER in answers[0]["text"] and DEPARTMENT_ANSWER in answers[0]["text"]

    # A new call pressing the status key hears it answered, and the day.
    before = len(rig.asterisk.messages_log.read_text(errors="replace"))
    status_call = await call(
        rig, [Pause(600), Dtmf("4"), Pause(600), Dtmf(code + "#")], hangup_after_ms=6000
    )
    assert status_call.answered, status_call.log_text
    heard = played(rig, before)
    start = heard.index("case_status_intro")
    said = heard[start + 1 + len(code) :]
    assert said[:2] == ["case_status_answered", "case_answered_on_intro"]
    # The day said is the local day of the approval, as the history holds it.
    day = day_month_prompts(answered_at.astimezone(zone).date())
    assert said[2 : 2 + len(day)] == day
    for context in (sup_context, agent_context, ward_context, dept_context):
        await context.close()
