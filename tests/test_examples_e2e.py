"""The combined example (examples/combined.yaml) on one real Asterisk with SIPp:
the main paths of each of its four hotlines, with as few calls as cover them.

The rig (one module-scoped stack): the combined config pointed at loopback ports
and a fresh database; one SIPp answerer plays a test agent per queue (phone
``t-<queue id>``, so the Request-URI says which queue rang); the ``pstn`` trunk
leads to a SIPp carrier that answers every number (113, 114, 115, chairmen).
Prompts are 0.3 s tones under each hotline's own folder
(``<prompts>/<hotline id>/<language>/<name>.wav``): the tests read which file
Asterisk played. The FastAGI server runs on a clock the tests set: a Monday
morning (the office-hours lines open) unless a test says otherwise.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
from array import array
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import yaml
from sqlalchemy import select

from ivr.asterisk.instance import AsteriskInstance
from ivr.cases.service import CaseService
from ivr.config import HotlineConfig, load_config
from ivr.config.schema import iter_areas
from ivr.db.engine import make_engine, make_session_factory
from ivr.db.models import Call
from ivr.prompt_setup import CATALOG, write_pcm_wav
from ivr.prompts import load_catalog
from ivr.queue_records.models import CallbackRequest
from ivr.service import RunningServices, start_services
from ivr.sim.sipp import (
    Dtmf,
    Pause,
    PlayAudio,
    SippAnswerer,
    SippCaller,
    dtmf_end_offset_ms,
)
from ivr.sim.sipp.results import CallResult
from ivr.sim.speech import wav_to_rtp_pcap
from queue_manager.manager import QueueManager
from tests.rig.stack import REPO, CallRecords, Ports, point_at_rig, start_asterisk, wait_for

pytestmark = pytest.mark.asterisk

COMBINED = REPO / "examples" / "combined.yaml"
BAC_TU_LIEM, HCC, C1022, THANH_XUAN = "02437655555", "02400000100", "1022", "02400000300"
MONDAY_10H_HANOI = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)
MONDAY_19H_HANOI = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
_callers = iter(range(1, 100))


def new_caller() -> str:
    """A fresh national number per call, so records and open cases never mix."""
    return f"0913700{next(_callers):03d}"


def e164(national: str) -> str:
    return "+84" + national[1:]


class SettableClock:
    """The FastAGI server's clock; tests move it to open or close the offices."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


@dataclass
class CombinedRig:
    asterisk: AsteriskInstance
    config: HotlineConfig
    ports: Ports
    agents: SippAnswerer  # every queue's test agent, told apart by the dialled user
    carrier: SippAnswerer
    records: CallRecords
    workdir: Path
    sms_outbox: Path
    clock: SettableClock
    message_pcap: Path  # one second of a caller's "message" (a tone) as RTP

    async def call(self, number: str, caller: str, steps: list[Any], **kwargs: Any) -> CallResult:
        return await SippCaller(self.workdir / "calls").call(
            target=f"127.0.0.1:{self.ports.sip}",
            number=number,
            caller_id=caller,
            steps=steps,
            **kwargs,
        )

    def log_lines(self, call: Call) -> list[str]:
        """Asterisk's log lines about this call's channel."""
        text = self.asterisk.messages_log.read_text(errors="replace")
        return [line for line in text.splitlines() if call.channel and call.channel in line]

    def played(self, call: Call) -> list[Path]:
        """The prompt files Asterisk played on this call, in order."""
        found = []
        for line in self.log_lines(call):
            if "Playing '" in line:
                found.append(Path(line.split("Playing '", 1)[1].split("'", 1)[0]))
        return found

    def heard(self, call: Call) -> list[str]:
        return [path.stem for path in self.played(call)]


def _write_tone_prompts(config: HotlineConfig, root: Path) -> None:
    """A 0.3 s tone under every name each hotline's flow may play, in both languages."""
    tone = array("h", (int(8000 * math.sin(2 * math.pi * 660 * n / 8000)) for n in range(2400)))
    catalog = load_catalog(CATALOG)
    area_names = [f"area_{area.code}" for area in iter_areas(config.areas)]
    for hotline in config.hotlines:
        names = [*catalog.with_texts(hotline.prompts).names, *area_names, "beep"]
        for language in ("vi", "en"):
            folder = root / hotline.id / language
            for name in names:
                write_pcm_wav(folder / f"{name}.wav", tone)
    write_pcm_wav(root / "moh" / "hotline-hold.wav", tone)


def _tune_for_the_rig(data: dict[str, Any], agents_port: int, sms_outbox: Path) -> None:
    """Each queue gets one answering test agent of its own hotline (its only
    member, so the Request-URI names the queue); menus wait 2 s for a key."""
    for queue in data["queues"]:
        phone = f"t-{queue['id']}"
        data["phones"].append(
            {"id": phone, "name": phone, "contact": f"sip:{phone}@127.0.0.1:{agents_port}"}
        )
        data["agents"].append(
            {
                "id": phone,
                "name": "Điện thoại viên thử",
                "phone": phone,
                "hotline": queue["hotline"],
            }
        )
        queue.update(members=[phone], ring_seconds=5, wrapup_seconds=0)
    for hotline in data["hotlines"]:
        for menu in hotline["menus"].values():
            menu["timeout_seconds"] = 2
    data["sms"]["path"] = str(sms_outbox)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def rig(
    tmp_path_factory: pytest.TempPathFactory, asterisk_binary: Path, sipp_binary: str
) -> AsyncIterator[CombinedRig]:
    base = tmp_path_factory.mktemp("combined")
    agents = SippAnswerer(base / "sipp", "agents", mode="answer", hold_ms=0)
    carrier = SippAnswerer(base / "sipp", "carrier", mode="answer", hold_ms=1000)
    for answerer in (agents, carrier):
        await answerer.start()
    ports = Ports()
    data = yaml.safe_load(COMBINED.read_text(encoding="utf-8"))
    prompts = base / "prompts"
    point_at_rig(data, base, ports, prompts, trunk_port=carrier.port)
    sms_outbox = base / "sms-outbox.jsonl"
    _tune_for_the_rig(data, agents.port, sms_outbox)
    config_path = base / "combined-test.yaml"
    config_path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), "utf-8")
    _write_tone_prompts(load_config(config_path), prompts)
    asterisk, config = start_asterisk(base, config_path)
    clock = SettableClock(MONDAY_10H_HANOI)
    tone = array("h", (int(6000 * math.sin(2 * math.pi * 440 * n / 8000)) for n in range(8000)))
    message = wav_to_rtp_pcap(write_pcm_wav(base / "message.wav", tone), base / "message.pcap")
    result = CombinedRig(
        asterisk, config, ports, agents, carrier, CallRecords(config), base, sms_outbox, clock,
        message,
    )  # fmt: skip
    try:
        yield result
    finally:
        asterisk.stop()
        result.records.dispose()
        for answerer in (agents, carrier):
            await answerer.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def services(rig: CombinedRig) -> AsyncIterator[RunningServices]:
    running = await start_services(rig.config, clock=rig.clock)
    try:
        yield running
    finally:
        await running.close()


@pytest.fixture
def monday_morning(rig: CombinedRig) -> Iterator[None]:
    rig.clock.at = MONDAY_10H_HANOI
    yield
    rig.clock.at = MONDAY_10H_HANOI


def _cases(rig: CombinedRig) -> CaseService:
    return CaseService(make_session_factory(make_engine(rig.config.database_url)), rig.config)


def _read_back(heard: list[str], code: str) -> list[str]:
    start = heard.index("case_code_intro") + 1
    return heard[start : start + len(code)]


# --- topic keys: every queue of every hotline, one call each, all at once ----------

# (the number dialled, its hotline, the key, the queue it must reach)
TOPIC_KEYS = [
    (BAC_TU_LIEM, "bac-tu-liem-2026", "1", "btl-thu-tuc"),
    (BAC_TU_LIEM, "bac-tu-liem-2026", "2", "btl-can-bo"),
    (BAC_TU_LIEM, "bac-tu-liem-2026", "3", "btl-hien-truong"),
    (BAC_TU_LIEM, "bac-tu-liem-2026", "0", "btl-tong-dai"),
    (HCC, "ha-noi-hcc", "1", "hcc-thu-tuc"),
    (HCC, "ha-noi-hcc", "2", "hcc-can-bo"),
    (HCC, "ha-noi-hcc", "0", "hcc-tong-dai"),
    (C1022, "tong-dai-1022", "1", "c1022-thu-tuc"),
    (C1022, "tong-dai-1022", "3", "c1022-hien-truong"),
    (C1022, "tong-dai-1022", "0", "c1022-tong-dai"),
    (THANH_XUAN, "thanh-xuan", "1", "tx-mot-cua"),
    (THANH_XUAN, "thanh-xuan", "3", "tx-can-bo"),
]


async def test_each_topic_key_of_each_hotline_rings_its_own_queue(
    rig: CombinedRig, services: RunningServices, monday_morning: None
) -> None:
    """The dialled number picks the hotline; its keys lead to its own queues
    (twelve callers at once, one per queue)."""
    rig.agents.reset()
    callers = [new_caller() for _ in TOPIC_KEYS]
    results = await asyncio.gather(
        *(
            rig.call(number, caller, [Pause(600), Dtmf(key)], hangup_after_ms=4000, timeout_s=40)
            for (number, _, key, _), caller in zip(TOPIC_KEYS, callers, strict=True)
        )
    )
    assert all(result.answered for result in results), [r.log_text for r in results]
    await rig.agents.wait_rung(len(TOPIC_KEYS), timeout=20)
    rung = {call.caller_id: call.dialed for call in rig.agents.calls}
    for (number, hotline_id, key, queue), caller in zip(TOPIC_KEYS, callers, strict=True):
        assert rung.get(caller) == f"t-{queue}", (number, key, queue)
        record = await rig.records.wait_closed(e164(caller))
        assert record.hotline_id == hotline_id
        assert record.keys_pressed == key and record.route_target == f"queue:{queue}"
        # The hotline's own prompts: its greeting comes from its own folder.
        greeting = [p for p in rig.played(record) if p.stem == "greeting"]
        assert greeting and greeting[0].parent.parent.name == record.hotline_id


# --- 1022: emergencies, complaints, English ----------------------------------------


async def test_1022_emergency_keys_ring_113_114_115_with_nothing_said_in_between(
    rig: CombinedRig, services: RunningServices, monday_morning: None
) -> None:
    rig.carrier.reset()
    keys = {"1": "113", "2": "114", "3": "115"}
    callers = {key: new_caller() for key in keys}
    results = await asyncio.gather(
        *(
            rig.call(C1022, callers[key], [Pause(600), Dtmf("2"), Pause(600), Dtmf(key)],
                     hangup_after_ms=3000, timeout_s=40)
            for key in keys
        )
    )  # fmt: skip
    assert all(result.answered for result in results), [r.log_text for r in results]
    await rig.carrier.wait_rung(3, timeout=15)
    dialed = {call.caller_id: call for call in rig.carrier.calls}
    for (key, number), result in zip(keys.items(), results, strict=True):
        caller = callers[key]
        assert dialed[caller].dialed == number
        # Measured, not asserted (no wall-clock assertions): from the end of the
        # key at the caller to the INVITE at the carrier.
        key_done = result.dtmf_sent_at[-1].at + dtmf_end_offset_ms(key) / 1000
        print(f"key {key} → INVITE for {number}: {dialed[caller].rung_at - key_done:.3f} s")
        record = await rig.records.wait_closed(e164(caller))
        assert record.keys_pressed == f"2,{key}"
        assert record.route_target is not None and record.route_target.startswith(f"tel:{number}@")
        # After the emergency menu, the next thing on the channel is the Dial:
        # no announcement stands between the key and the ring.
        lines = rig.log_lines(record)
        menu = max(i for i, line in enumerate(lines) if "emergency_menu" in line)
        dial = next(i for i, line in enumerate(lines) if i > menu and "Dial(" in line)
        assert not [line for line in lines[menu + 1 : dial] if "Playing '" in line]


async def test_1022_complaints_message_in_english_after_the_english_key(
    rig: CombinedRig, services: RunningServices, monday_morning: None
) -> None:
    """9 during the greeting: English from then on; 8: the line's own message that
    complaints and denunciations go elsewhere, then back to the menu."""
    caller = new_caller()
    result = await rig.call(
        C1022, caller, [Pause(300), Dtmf("9"), Pause(1500), Dtmf("8")], hangup_after_ms=1500
    )
    assert result.answered, result.log_text
    record = await rig.records.wait_closed(e164(caller))
    assert record.keys_pressed == "9,8"
    played = rig.played(record)
    scope = [path for path in played if path.stem == "out_of_scope"]
    assert (
        scope
        and scope[0].parent
        == rig.config.resolve_path(rig.config.paths.prompts) / "tong-dai-1022" / "en"
    )
    heard = [path.stem for path in played]
    assert (
        heard.index("out_of_scope") < len(heard) - 1
        and "main_menu" in heard[heard.index("out_of_scope") + 1 :]
    )


# --- Bắc Từ Liêm 2026: the city-wide ward menu --------------------------------------


async def test_bac_tu_liem_ward_code_is_read_back_and_rings_after_confirmation(
    rig: CombinedRig, services: RunningServices, monday_morning: None
) -> None:
    """5, then 050 (Phường Đông Ngạc of Hà Nội's 126 units): its name is read back,
    and 1 rings its chairman through the carrier."""
    rig.carrier.reset()
    caller = new_caller()
    result = await rig.call(
        BAC_TU_LIEM,
        caller,
        [Pause(600), Dtmf("5"), Pause(800), Dtmf("050"), Pause(1000), Dtmf("1")],
        hangup_after_ms=3000,
    )
    assert result.answered, result.log_text
    await rig.carrier.wait_rung(1, timeout=15)
    assert [call.dialed for call in rig.carrier.calls] == ["0900000602"]
    record = await rig.records.wait_closed(e164(caller))
    assert record.hotline_id == "bac-tu-liem-2026"
    assert record.keys_pressed == "5,050,1" and record.area_code == "phuong-dong-ngac"
    heard = rig.heard(record)
    name = heard.index("area_phuong-dong-ngac")
    assert heard[name + 1] == "area_confirm"
    assert "city_area_menu" in heard[:name]


# --- After hours: Hà Nội public administration and Thanh Xuân ------------------------


def _sms_to(rig: CombinedRig, number: str) -> list[dict[str, Any]]:
    if not rig.sms_outbox.exists():
        return []
    lines = rig.sms_outbox.read_text(encoding="utf-8").splitlines()
    return [message for message in map(json.loads, lines) if message["to"] == number]


def _callback_requests(rig: CombinedRig, caller: str) -> list[CallbackRequest]:
    engine = make_engine(rig.config.database_url)
    try:
        with make_session_factory(engine)() as session:
            return list(
                session.scalars(
                    select(CallbackRequest).where(CallbackRequest.caller_number == caller)
                )
            )
    finally:
        engine.dispose()


async def test_after_hours_message_becomes_a_case_read_back_texted_and_offered_on_the_next_call(
    rig: CombinedRig, services: RunningServices, monday_morning: None
) -> None:
    """Monday 19:00, both office-hours lines are closed. The public-admin line says
    its hours (its own out_of_hours text) and offers 1, a call-back when it opens,
    or 2, a message: one caller presses 2 and leaves a message (a case, its code
    read back), another presses 1 (a case and a call-back request, the code read
    back, then the line hangs up) and is called back from the line's own number
    as soon as the switchboard's agent is free (the rig's agent is always in).
    Thanh Xuân takes a message and texts the code to the caller. Monday 10:00 the
    public-admin caller calls again: the open case is offered first, then key 1
    reaches the procedures queue."""
    hcc_caller, tx_caller, callback_caller = new_caller(), new_caller(), new_caller()
    rig.clock.at = MONDAY_19H_HANOI
    rig.carrier.reset()
    rig.agents.reset()
    message = [PlayAudio(rig.message_pcap), Dtmf("#")]
    # The after-hours menu's key once out_of_hours (not interruptible) has played.
    after_hours_key = [Pause(1500)]
    closed = await asyncio.gather(
        rig.call(HCC, hcc_caller, [*after_hours_key, Dtmf("2"), Pause(1200), *message],
                 hangup_after_ms=5000),
        rig.call(THANH_XUAN, tx_caller, [Pause(1500), *message], hangup_after_ms=3000),
        rig.call(HCC, callback_caller, [*after_hours_key, Dtmf("1")], hangup_after_ms=None),
    )  # fmt: skip
    assert all(result.answered for result in closed), [r.log_text for r in closed]
    assert closed[2].hung_up_by == "remote"  # the line ends the call after the code
    cases = _cases(rig)
    for caller, hotline_id in ((hcc_caller, "ha-noi-hcc"), (tx_caller, "thanh-xuan")):
        record = await rig.records.wait_closed(e164(caller))
        assert record.hotline_id == hotline_id and record.route_kind == "voicemail"
        played = rig.played(record)
        heard = [path.stem for path in played]
        assert heard.index("out_of_hours") < heard.index("voicemail_intro")
        assert "main_menu" not in heard and "greeting" not in heard
        if hotline_id == "ha-noi-hcc":
            assert record.keys_pressed == "2"
            assert heard.index("after_hours_menu") < heard.index("voicemail_intro")
        # The line's own text, with its own hours.
        assert played[heard.index("out_of_hours")].parent.parent.name == hotline_id
        opened = await wait_for(
            lambda caller=caller: cases.open_cases_for_caller(e164(caller)), 20, "the case"
        )
        assert opened[0].hotline_id == hotline_id and opened[0].channel == "voicemail"

    case = cases.open_cases_for_caller(e164(hcc_caller))[0]
    record = await rig.records.wait_closed(e164(hcc_caller))
    assert _read_back(rig.heard(record), case.code) == [f"digit_{d}" for d in case.code]

    # Key 1: a case and a call-back request of the switchboard, the code read back.
    record = await rig.records.wait_closed(e164(callback_caller))
    assert record.hotline_id == "ha-noi-hcc" and record.keys_pressed == "1"
    assert record.route_target == "callback:hcc-tong-dai"
    assert record.outcome == "callback"  # the dialplan's callback branch, as in a queue
    [callback_case] = cases.open_cases_for_caller(e164(callback_caller))
    assert (callback_case.channel, callback_case.hotline_id) == ("callback", "ha-noi-hcc")
    heard = rig.heard(record)
    assert heard.index("after_hours_menu") < heard.index("callback_confirmed_when_open")
    assert "voicemail_intro" not in heard
    code = [f"digit_{d}" for d in callback_case.code]
    assert _read_back(heard, callback_case.code) == code
    [request] = _callback_requests(rig, e164(callback_caller))
    assert (request.queue, request.hotline_id) == ("hcc-tong-dai", "ha-noi-hcc")
    assert request.case_code == callback_case.code
    # The queue manager (started now: this rig's other tests run the FastAGI
    # server alone) sees the switchboard's agent free and calls the citizen back
    # through the trunk, from the public-admin line's own number, then puts them
    # through to that switchboard. The rig's agents are static queue members, so
    # the roster is left out (it would add the 1022 center's phone-less agents).
    roster = rig.config.roster.model_copy(update={"assignments": [], "overrides": []})
    # Tuesday 10:00, the office open again: the call-back waits for the queue's
    # hours, on the rig's clock, not the machine's (it failed after 17:00 in Hà Nội).
    rig.clock.at = MONDAY_10H_HANOI + timedelta(days=1)
    manager = QueueManager(
        rig.config.model_copy(update={"roster": roster}),
        make_session_factory(make_engine(rig.config.database_url)),
        clock=rig.clock,
    )
    await manager.start()
    try:
        await rig.carrier.wait_rung(1, timeout=20)
        [dialled] = rig.carrier.calls
        assert (dialled.dialed, dialled.caller_id) == (callback_caller, HCC)
        await rig.agents.wait_rung(1, timeout=20)
        assert [call.dialed for call in rig.agents.calls] == ["t-hcc-tong-dai"]
        answered = await wait_for(
            lambda: [
                r for r in _callback_requests(rig, e164(callback_caller)) if r.status == "done"
            ],
            20,
            "the call-back answered",
        )
        assert answered[0].attempts == 1
    finally:
        await manager.close()

    tx_case = cases.open_cases_for_caller(e164(tx_caller))[0]
    sent = (await wait_for(lambda: _sms_to(rig, e164(tx_caller)), 10, "the SMS"))[0]
    assert sent["case_code"] == tx_case.code and tx_case.code in sent["text"]
    assert "quận Thanh Xuân" in sent["text"]
    assert re.search(r"\d{2}/\d{2}/\d{4}", sent["text"])  # the deadline
    # Under the line's own sender name, not the deployment's.
    assert sent["from"] == "UBND-TX" != rig.config.sms.sender

    rig.clock.at = MONDAY_10H_HANOI
    rig.agents.reset()
    again = await rig.call(
        HCC, hcc_caller, [Pause(2000), Dtmf("2"), Pause(800), Dtmf("1")], hangup_after_ms=3000
    )
    assert again.answered, again.log_text
    await rig.agents.wait_rung(1, timeout=15)
    assert [call.dialed for call in rig.agents.calls] == ["t-hcc-thu-tuc"]
    second = await wait_for(
        lambda: next((c for c in rig.records.by_caller(e164(hcc_caller))[1:] if c.ended_at), None),
        20,
        "the second call's record",
    )
    heard = rig.heard(second)
    assert heard.index("open_case_offer") < heard.index("main_menu")
    assert second.route_target == "queue:hcc-thu-tuc"
