"""Every FastAGI handler of ivr/agi/server.py against a fake Asterisk
(tests/rig/agi_peer.py): the exact channel variables each one sets, what the
caller hears and the rows it writes, on a migrated SQLite file. No PBX and no
external program (the unit tier).

The database is a file in the test's folder, copied from one migrated once per
module: the call log, the case desk and the IVR's pool write from threads of
their own, which an in-memory SQLite database cannot share.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from ivr.agi.case_desk import CaseDesk
from ivr.agi.server import HotlineAgi
from ivr.call_log import CallLog, CallStart
from ivr.cases.models import Case, Recording, TranscriptionJob
from ivr.config import HotlineConfig, load_config
from ivr.db.engine import make_engine, make_session_factory
from ivr.db.migrate import upgrade
from ivr.db.models import Call
from ivr.flow.spoken_numbers import day_month_prompts, digit_prompts
from ivr.queue_records.models import CallbackRequest
from tests.flow_driver import keys
from tests.rig.agi_peer import AgiPeer
from tests.rig.stack import EXAMPLE, REPO

HOTLINE = "bac-tu-liem"
HOTLINE_NUMBER = "02437655555"
CALLER_RAW = "0912345678"
CALLER = "+84912345678"
UNIQUEID = "1795420947.12"
MONDAY_10H_HANOI = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)
WARD_03_TARGETS = (
    "PJSIP/0900000103@pstn|20|chairman:dong-ngac"
    "^PJSIP/0900000203@pstn|20|tel:0900000203@pstn"
    "^PJSIP/vp-dong-ngac|20|phone:vp-dong-ngac"
)


@pytest.fixture(scope="module")
def migrated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("agi-handlers") / "migrated.db"
    upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture
def config(tmp_path: Path, migrated: Path) -> HotlineConfig:
    database = tmp_path / "hotline.db"
    shutil.copyfile(migrated, database)
    data = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    data["database"]["url"] = f"sqlite:///{database}"
    data["paths"] = {
        "prompts": str(tmp_path / "prompts"),
        "recordings": str(tmp_path / "recordings"),
        "routing_table": str(tmp_path / "routing.json"),
    }
    data["sms"] = {"kind": "file", "path": str(tmp_path / "sms.jsonl"), "sender": "UBND-BTL"}
    path = tmp_path / "hotline.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    # Every prompt of the catalog is installed (PromptFiles only looks for the
    # file), so what the caller hears is exactly what the handler plays.
    catalog = yaml.safe_load((REPO / "prompts" / "catalog.yaml").read_text(encoding="utf-8"))
    folder = tmp_path / "prompts" / HOTLINE / "vi"  # one folder per hotline
    folder.mkdir(parents=True)
    for name in [*catalog, "area_dong-ngac"]:
        (folder / f"{name}.wav").write_bytes(b"")
    return load_config(path)


@dataclass
class Ivr:
    agi: HotlineAgi
    call_log: CallLog
    sessions: sessionmaker[Session]
    config: HotlineConfig

    async def finish(self) -> None:
        """Everything the handlers queued is written (and the writer stopped)."""
        await self.agi.drain(0)  # background work after a hangup
        assert await asyncio.to_thread(self.call_log.close)

    def rows(self, model: Any) -> list[Any]:
        with self.sessions() as session:
            return list(session.scalars(select(model).order_by(model.id)))

    async def call_up(self, uniqueid: str = UNIQUEID) -> None:
        """The call record the entry handler would have written."""
        await self.call_log.call_started(
            CallStart(uniqueid, uniqueid, HOTLINE, "PJSIP/pstn-00000001", CALLER_RAW,
                      HOTLINE_NUMBER, MONDAY_10H_HANOI)
        )  # fmt: skip


@pytest_asyncio.fixture
async def ivr(config: HotlineConfig) -> AsyncIterator[Ivr]:
    engine = make_engine(config.database_url)
    sessions = make_session_factory(engine)
    call_log = CallLog(sessions)
    desk = CaseDesk(sessions, config, writer=call_log.submit)
    agi = HotlineAgi(config, call_log, desk, clock=lambda: MONDAY_10H_HANOI)
    try:
        yield Ivr(agi, call_log, sessions, config)
    finally:
        await agi.close()
        desk.close()
        await asyncio.to_thread(call_log.close)
        engine.dispose()


def request(script: str, *args: str, caller: str = CALLER_RAW, answers: Any = ()) -> AgiPeer:
    """The AGI request Asterisk sends for ``AGI(agi://…/<script>,<args>)``."""
    headers = {
        "agi_network": "yes",
        "agi_network_script": script,
        "agi_uniqueid": UNIQUEID,
        "agi_channel": "PJSIP/pstn-00000001",
        "agi_callerid": caller,
        "agi_extension": HOTLINE_NUMBER,
        **{f"agi_arg_{n}": arg for n, arg in enumerate(args, 1)},
    }
    return AgiPeer(headers, answers)


def heard(peer: AgiPeer) -> list[str]:
    """Prompt names played, from the paths (``<prompts>/<hotline>/vi/<name>``)."""
    return [Path(path).name for path in peer.played]


def set_commands(peer: AgiPeer) -> list[str]:
    return [c for c in peer.commands if c.startswith(("SET VARIABLE", "EXEC MSet"))]


# --- hotline-entry ------------------------------------------------------------------


async def test_entry_hands_the_ward_route_over_in_one_mset_and_records_the_call(
    ivr: Ivr,
) -> None:
    peer = request("hotline-entry", HOTLINE_NUMBER, "1795420947.11", answers=keys("5", "03"))
    await ivr.agi.entry(peer)
    assert peer.variables == {
        "HL_TARGETS": WARD_03_TARGETS,
        "HL_FINAL": "queue",
        "HL_QUEUE": "operator",
        "HL_ROUTE": "dial",
    }
    assert len(set_commands(peer)) == 1  # one round trip
    assert heard(peer) == ["greeting", "recording_notice", "main_menu", "area_menu",
                           "area_dong-ngac", "transferring"]  # fmt: skip
    await ivr.finish()
    [call] = ivr.rows(Call)
    assert (call.uniqueid, call.linkedid, call.hotline_id) == (UNIQUEID, "1795420947.11", HOTLINE)
    assert (call.caller_number, call.caller_raw, call.dialed_number) == (
        CALLER, CALLER_RAW, HOTLINE_NUMBER
    )  # fmt: skip
    assert (call.keys_pressed, call.last_step, call.area_code) == ("5,03", "route:dial",
                                                                    "dong-ngac")  # fmt: skip
    assert call.route_kind == "dial"
    assert call.route_target == (
        "chairman:dong-ngac → tel:0900000203@pstn → phone:vp-dong-ngac → queue:operator"
    )
    assert call.outcome == "in_progress" and call.ended_at is None


async def test_entry_sends_a_broken_flow_to_the_failure_branch(ivr: Ivr) -> None:
    class BrokenFlow:
        def run(self, *args: Any) -> Any:
            raise RuntimeError("a bug in the flow")

    ivr.agi.flow = BrokenFlow()  # type: ignore[assignment]
    peer = request("hotline-entry", HOTLINE_NUMBER, "", answers=keys("5", "03"))
    await ivr.agi.entry(peer)
    assert peer.variables == {"HL_ROUTE": "failure"}
    await ivr.finish()
    [call] = ivr.rows(Call)
    assert call.linkedid == UNIQUEID and call.last_step == "entry"
    assert call.route_kind is None


async def test_entry_sets_nothing_when_the_caller_hangs_up_in_a_menu(ivr: Ivr) -> None:
    peer = request("hotline-entry", HOTLINE_NUMBER, "", answers=keys("5"))
    await ivr.agi.entry(peer)
    assert peer.variables == {} and peer.hung_up
    await ivr.finish()
    [call] = ivr.rows(Call)
    assert (call.keys_pressed, call.last_step, call.route_kind) == ("5", "menu:wards", None)


async def test_entry_while_stopping_leaves_the_call_to_the_fallback_script(ivr: Ivr) -> None:
    ivr.agi.stopping = True
    peer = request("hotline-entry", HOTLINE_NUMBER, "", answers=keys("5", "03"))
    await ivr.agi.entry(peer)
    assert peer.commands == []  # no flow, no route: the dialplan asks the classic script
    await ivr.finish()
    [call] = ivr.rows(Call)
    assert call.last_step == "fallback:server-stopping" and call.route_kind is None


# --- call-ended -----------------------------------------------------------------------


async def test_call_ended_closes_the_record_with_what_the_dialplan_saw(ivr: Ivr) -> None:
    await ivr.call_up()
    ivr.agi.live[UNIQUEID] = 0.0
    answered_epoch = "1795420960.250"
    peer = request(
        "call-ended", UNIQUEID, "dial", "chairman:dong-ngac", "ANSWER", answered_epoch, "", ""
    )
    await ivr.agi.ended(peer)
    assert peer.commands == []  # the hangup handler is released at once
    assert UNIQUEID not in ivr.agi.live
    await ivr.finish()
    [call] = ivr.rows(Call)
    assert (call.outcome, call.dial_status, call.answered_by) == (
        "answered", "ANSWER", "chairman:dong-ngac"
    )  # fmt: skip
    assert call.answered_at == datetime.fromtimestamp(1795420960.25, UTC)
    assert call.ended_at is not None
    assert ivr.rows(Recording) == [] and ivr.rows(TranscriptionJob) == []


async def test_call_ended_for_a_call_never_seen_inserts_its_record(ivr: Ivr) -> None:
    # Soak defect: answered < 0.2 s before Asterisk stopped, hung up during
    # Answer() before the entry AGI; its call-ended updated nothing: lost.
    # The hangup handler passes HL_HOTLINE (its eighth argument): no AGI round
    # trip, which a dying channel might never answer.
    peer = request("call-ended", UNIQUEID, "", "", "", "", "", "", HOTLINE)
    await ivr.agi.ended(peer)
    assert peer.commands == []  # released at once, as for a known call
    await ivr.finish()
    [call] = ivr.rows(Call)
    assert (call.uniqueid, call.hotline_id, call.caller_number) == (UNIQUEID, HOTLINE, CALLER)
    assert call.outcome == "interrupted" and call.ended_at is not None
    # Asterisk's uniqueid is "<epoch>.<n>": the channel's creation
    assert call.started_at.replace(tzinfo=UTC) == datetime.fromtimestamp(1795420947, UTC)


async def test_a_late_entry_keeps_the_record_its_hangup_inserted(ivr: Ivr) -> None:
    peer = request("call-ended", UNIQUEID, "queue", "", "", "", "", "", HOTLINE)
    await ivr.agi.ended(peer)
    await ivr.call_up()  # the entry AGI's insert, arriving after the hangup
    await ivr.finish()
    [call] = ivr.rows(Call)
    assert call.outcome == "abandoned_in_queue" and call.ended_at is not None


async def test_call_ended_registers_the_recordings_and_one_transcription_job(
    ivr: Ivr, tmp_path: Path
) -> None:
    await ivr.call_up()
    base = tmp_path / "recordings" / "2026-11-23" / UNIQUEID
    base.parent.mkdir(parents=True)
    for leg in ("caller", "agent", "mix"):
        Path(f"{base}-{leg}.wav").write_bytes(b"RIFF")
    peer = request("call-ended", UNIQUEID, "queue", "", "", "", "PJSIP/t-agent", str(base))
    await ivr.agi.ended(peer)
    await ivr.finish()
    [call] = ivr.rows(Call)
    assert (call.outcome, call.answered_by) == ("answered", "PJSIP/t-agent")
    recordings = ivr.rows(Recording)
    assert sorted((r.kind, r.path) for r in recordings) == sorted(
        (leg, f"{base}-{leg}.wav") for leg in ("caller", "agent", "mix")
    )
    [job] = ivr.rows(TranscriptionJob)
    assert (job.call_uniqueid, job.status) == (UNIQUEID, "queued")


# --- survey ---------------------------------------------------------------------------


async def test_survey_rates_the_call_and_the_case_opened_from_it(ivr: Ivr) -> None:
    await ivr.call_up()
    case = ivr.agi.case_desk.cases.open_case(  # type: ignore[union-attr]
        channel="phone", hotline_id=HOTLINE, caller_number=CALLER, call_uniqueid=UNIQUEID,
        actor="agent:t-agent",
    )  # fmt: skip
    peer = request("survey", UNIQUEID, HOTLINE, answers=keys("3"))
    await ivr.agi.survey(peer)
    assert peer.variables == {}
    assert heard(peer) == ["survey", "survey_thanks"]
    await ivr.finish()
    [call] = ivr.rows(Call)
    [stored] = ivr.rows(Case)
    assert call.satisfaction == 3
    assert stored.id == case.id and stored.satisfaction == 3


async def test_survey_without_a_rating_writes_nothing(ivr: Ivr) -> None:
    await ivr.call_up()
    peer = request("survey", UNIQUEID, HOTLINE)  # hangs up at the question
    await ivr.agi.survey(peer)
    assert peer.variables == {} and peer.hung_up
    await ivr.finish()
    [call] = ivr.rows(Call)
    assert call.satisfaction is None


# --- callback-requested / callback-answered ------------------------------------------


async def test_callback_request_opens_a_case_keeps_the_place_and_reads_the_code(
    ivr: Ivr,
) -> None:
    peer = request("callback-requested", UNIQUEID, "operator", "1795420900.25", HOTLINE)
    await ivr.agi.callback_requested(peer)
    assert peer.variables == {"HL_CALLBACK": "1", "HL_ROUTE": "callback"}
    [case] = ivr.rows(Case)
    assert (case.channel, case.hotline_id, case.caller_number, case.call_uniqueid) == (
        "callback", HOTLINE, CALLER, UNIQUEID
    )  # fmt: skip
    [callback] = ivr.rows(CallbackRequest)
    assert (callback.queue, callback.hotline_id, callback.caller_number) == (
        "operator", HOTLINE, CALLER
    )  # fmt: skip
    assert (callback.call_uniqueid, callback.case_code, callback.joined_at) == (
        UNIQUEID, case.code, 1795420900.25
    )  # fmt: skip
    assert callback.status == "pending"
    assert heard(peer) == ["callback_confirmed", "case_code_intro", *digit_prompts(case.code)]


async def test_a_withheld_number_cannot_be_called_back(ivr: Ivr) -> None:
    peer = request(
        "callback-requested", UNIQUEID, "operator", "1795420900.25", HOTLINE, caller="anonymous"
    )
    await ivr.agi.callback_requested(peer)
    assert peer.commands == []  # HL_CALLBACK unset: the caller goes back into the queue
    assert ivr.rows(Case) == [] and ivr.rows(CallbackRequest) == []


async def test_callback_answered_marks_the_request_done(ivr: Ivr) -> None:
    with ivr.sessions.begin() as session:
        row = CallbackRequest(queue="operator", hotline_id=HOTLINE, caller_number=CALLER,
                              call_uniqueid=UNIQUEID, case_code="25110001",
                              joined_at=1795420900.25, status="dialing")  # fmt: skip
        session.add(row)
        session.flush()
        request_id = row.id
    peer = request("callback-answered", str(request_id))
    await ivr.agi.callback_answered(peer)
    assert peer.commands == []
    [callback] = ivr.rows(CallbackRequest)
    assert (callback.status, callback.last_result) == ("done", "answered")


# --- voicemail-saved ------------------------------------------------------------------


@pytest.fixture
def message(tmp_path: Path) -> Iterator[Path]:
    """The base of a recorded message (``<base>-voicemail.wav``, more than a header)."""
    base = tmp_path / "recordings" / "2026-11-23" / UNIQUEID
    base.parent.mkdir(parents=True)
    Path(f"{base}-voicemail.wav").write_bytes(b"RIFF" + bytes(400))
    yield base


async def test_voicemail_becomes_a_case_whose_code_is_read_back_twice(
    ivr: Ivr, message: Path
) -> None:
    await ivr.call_up()
    peer = request("voicemail-saved", UNIQUEID, str(message), HOTLINE)
    await ivr.agi.voicemail_saved(peer)
    [case] = ivr.rows(Case)
    assert peer.variables == {"HL_CASE_CODE": case.code}
    assert (case.channel, case.hotline_id, case.caller_number, case.call_uniqueid) == (
        "voicemail", HOTLINE, CALLER, UNIQUEID
    )  # fmt: skip
    [recording] = ivr.rows(Recording)
    assert (recording.kind, recording.path) == ("voicemail", f"{message}-voicemail.wav")
    assert recording.case_id == case.id
    [job] = ivr.rows(TranscriptionJob)
    assert job.call_uniqueid == UNIQUEID
    assert isinstance(case.due_date, date)
    digits = digit_prompts(case.code)
    assert heard(peer) == ["case_code_intro", *digits, "case_code_repeat", *digits,
                           "case_code_sms", "case_due_intro",
                           *day_month_prompts(case.due_date, "vi")]  # fmt: skip


async def test_an_empty_voicemail_opens_no_case(ivr: Ivr, tmp_path: Path) -> None:
    await ivr.call_up()
    base = tmp_path / "recordings" / "2026-11-23" / UNIQUEID
    base.parent.mkdir(parents=True)
    Path(f"{base}-voicemail.wav").write_bytes(b"RIFF" + bytes(40))  # a bare header
    peer = request("voicemail-saved", UNIQUEID, str(base), HOTLINE)
    await ivr.agi.voicemail_saved(peer)
    assert peer.commands == []
    assert ivr.rows(Case) == []


# --- a message left while the server was down (the call spool) ------------------------


async def test_a_spooled_voicemail_opens_one_case_and_registers_its_recording(
    ivr: Ivr, message: Path, tmp_path: Path
) -> None:
    # Soak defect: voicemail-saved could not reach FastAGI; the WAV was on disk
    # but the spooled hangup line did not name it: no case, no recording.
    from ivr.fallback_calls import FallbackCallSpool
    from tests.test_fallback_calls import FakeAgi, fallback_script

    table = tmp_path / "routing.json"
    spool_path = tmp_path / "fallback-calls.jsonl"
    table.write_text(f'{{"version": 1, "call_spool": "{spool_path}", "hotlines": {{}}}}')
    # The hangup handler's spooled line, as the dialplan invokes the script
    # when call-ended cannot reach the server either.
    agi = FakeAgi([], uniqueid=UNIQUEID)
    argv = ["script", "call-ended", str(table), UNIQUEID, "voicemail", "", "", "", ""]
    assert fallback_script().call_ended(agi, [*argv, str(message), HOTLINE]) == 0
    spool = FallbackCallSpool(spool_path, ivr.call_log, recordings=ivr.agi.spooled_recordings)
    await spool.ingest_new()
    # A restart reads the same line again: still one case, one recording.
    again = FallbackCallSpool(spool_path, ivr.call_log, recordings=ivr.agi.spooled_recordings)
    await again.ingest_new()
    await ivr.finish()
    [case] = ivr.rows(Case)
    assert (case.channel, case.hotline_id, case.caller_number, case.call_uniqueid) == (
        "voicemail", HOTLINE, CALLER, UNIQUEID
    )  # fmt: skip
    [recording] = ivr.rows(Recording)
    assert (recording.kind, recording.path) == ("voicemail", f"{message}-voicemail.wav")
    assert recording.case_id == case.id
    # The server never saw the call start: its record comes from the end line.
    [call] = ivr.rows(Call)
    assert (call.uniqueid, call.hotline_id, call.outcome) == (UNIQUEID, HOTLINE, "voicemail")
