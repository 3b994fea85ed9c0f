"""After hours, a call-back when the line opens (``callback:<queue>``), as the
Hà Nội public-administration hotline offers it: "nhấn phím 1 để được gọi lại
khi bắt đầu giờ làm việc, phím 2 để để lại lời nhắn".

The config checks (where a call-back may be offered, from which queue), the
flow (which route each key gives, a withheld number), and the FastAGI entry
handler with the queue manager's dispatcher on one database: the request and
its case are written at 19:00, and the caller is dialled the next morning once
an agent of the switchboard is free.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as dt_time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import pytest_asyncio
import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from ivr.agi.case_desk import CaseDesk
from ivr.agi.server import HotlineAgi
from ivr.call_log import CallLog
from ivr.cases.calendar import WorkingCalendar
from ivr.cases.models import Case
from ivr.config import HotlineConfig, load_config
from ivr.config.destinations import Destination, DestinationKind
from ivr.db.engine import make_engine, make_session_factory
from ivr.db.migrate import upgrade
from ivr.db.models import Call, utc_now
from ivr.flow.call_flow import HotlineFlow
from ivr.flow.spoken_numbers import digit_prompts
from ivr.flow.steps import FlowResult, RouteKind
from ivr.queue_records.models import CallbackRequest
from queue_manager.callbacks import CallbackDispatcher
from queue_manager.model import DailyTotals, LiveModel, Member, QueueState, WaitingCaller
from tests.config_checks import config_problems as _problems
from tests.config_checks import line_of as _line_of
from tests.flow_driver import ScriptedCaller, keys
from tests.rig.agi_peer import AgiPeer
from tests.rig.postgres import fresh_database_url
from tests.rig.stack import REPO

PUBLIC_ADMIN = REPO / "examples" / "ha-noi-public-admin.yaml"
COMBINED = REPO / "examples" / "combined.yaml"
HOTLINE = "ha-noi-hcc"
HOTLINE_NUMBER = "02400000100"
SWITCHBOARD = "hcc-tong-dai"
CALLER_RAW = "0912345678"
CALLER = "+84912345678"
UNIQUEID = "1795450000.7"
MONDAY_19H_HANOI = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
MONDAY_10H_HANOI = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)


def _write(tmp_path: Path, source: Path, edit: Any = None, name: str = "hotline.yaml") -> Path:
    data = yaml.safe_load(source.read_text(encoding="utf-8"))
    if edit is not None:
        edit(data)
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def _after_hours(data: dict[str, Any], hotline_id: str = HOTLINE) -> dict[str, Any]:
    line = next(h for h in data["hotlines"] if h["id"] == hotline_id)
    menu: dict[str, Any] = line["menus"]["after-hours"]
    return menu


# --- the config -----------------------------------------------------------------------


def test_a_call_back_is_a_destination_naming_its_queue() -> None:
    assert Destination.parse("callback:hcc-tong-dai") == Destination(
        DestinationKind.CALLBACK, SWITCHBOARD
    )
    with pytest.raises(ValueError, match="needs an argument"):
        Destination.parse("callback")


def test_the_public_admin_line_offers_a_call_back_after_hours() -> None:
    line = load_config(PUBLIC_ADMIN).hotlines[0]
    assert str(line.out_of_hours) == "menu:after-hours"
    menu = line.menus["after-hours"]
    assert str(menu.options["1"]) == f"callback:{SWITCHBOARD}"
    assert str(menu.options["2"]) == str(menu.on_no_input) == "voicemail"


def test_a_call_back_from_an_unknown_queue_is_refused_with_file_line_and_field(
    tmp_path: Path,
) -> None:
    def misspell(data: dict[str, Any]) -> None:
        _after_hours(data)["options"]["1"] = "callback:hcc-tongdai"

    path = _write(tmp_path, PUBLIC_ADMIN, misspell)
    line = _line_of(path, "callback:hcc-tongdai")
    assert (
        f"{path}:{line}: hotlines[0].menus.after-hours.options.1: unknown queue 'hcc-tongdai'"
    ) in _problems(path)


def test_a_call_back_as_a_chairmans_fallback_is_refused(tmp_path: Path) -> None:
    """Nobody asked for it there: the caller only wanted to be put through."""

    def as_fallback(data: dict[str, Any]) -> None:
        data["areas"][0]["chairman"] = "tel:0900000001@pstn"
        data["areas"][0]["fallbacks"] = [f"callback:{SWITCHBOARD}"]

    path = _write(tmp_path, PUBLIC_ADMIN, as_fallback)
    line = _line_of(path, f"- callback:{SWITCHBOARD}")
    assert (
        f"{path}:{line}: areas[0].fallbacks[0]: a call-back is offered only in a hotline's "
        "menus or out_of_hours"
    ) in _problems(path)


def test_a_call_back_cannot_be_the_failure_destination(tmp_path: Path) -> None:
    def as_failure(data: dict[str, Any]) -> None:
        data["hotlines"][0]["failure_destination"] = f"callback:{SWITCHBOARD}"

    path = _write(tmp_path, PUBLIC_ADMIN, as_failure)
    line = _line_of(path, f"failure_destination: callback:{SWITCHBOARD}")
    assert f"{path}:{line}: hotlines[0].failure_destination: must be a queue" in _problems(path)


def test_a_call_back_from_another_hotlines_queue_is_refused(tmp_path: Path) -> None:
    """In the combined deployment the public-admin line may not promise a call
    from Bắc Từ Liêm's switchboard (its agents, its caller id)."""

    def cross(data: dict[str, Any]) -> None:
        data["paths"]["prompts"] = str(REPO / "prompts")
        _after_hours(data)["options"]["1"] = "callback:btl-tong-dai"

    path = _write(tmp_path, COMBINED, cross)
    line = _line_of(path, "callback:btl-tong-dai")
    index = [h["id"] for h in yaml.safe_load(path.read_text("utf-8"))["hotlines"]].index(HOTLINE)
    assert (
        f"{path}:{line}: hotlines[{index}].menus.after-hours.options.1: queue 'btl-tong-dai' "
        f"belongs to hotline 'bac-tu-liem-2026', not to '{HOTLINE}'"
    ) in _problems(path)


# --- the flow -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def public_admin() -> HotlineConfig:
    return load_config(PUBLIC_ADMIN)


def _call(
    config: HotlineConfig, caller: ScriptedCaller, at: datetime, number: str | None = CALLER
) -> FlowResult:
    flow = HotlineFlow(config)
    return caller.run(flow.run(config.hotlines[0], at, number))


def test_after_hours_key_1_asks_for_a_call_back_from_the_switchboard(
    public_admin: HotlineConfig,
) -> None:
    caller = ScriptedCaller(keys("1"))
    result = _call(public_admin, caller, MONDAY_19H_HANOI)
    assert caller.prompts_heard == ["out_of_hours", "after_hours_menu"]
    assert result.route is not None and result.route.callback_queue == SWITCHBOARD
    assert result.route.kind is RouteKind.HANGUP  # nothing to bridge: the call ends
    assert (result.keys_pressed, result.last_step) == ("1", "route:callback")
    assert "menu:after-hours" in caller.marks


def test_after_hours_key_2_or_silence_leaves_a_message_without_an_operator_promised(
    public_admin: HotlineConfig,
) -> None:
    for answers in (keys("2"), keys("")):
        caller = ScriptedCaller(answers)
        result = _call(public_admin, caller, MONDAY_19H_HANOI)
        assert result.route is not None and result.route.kind is RouteKind.VOICEMAIL
        assert result.route.callback_queue is None
        # "Transferring you to an operator" would be untrue: a message follows.
        assert caller.prompts_heard == ["out_of_hours", "after_hours_menu"]


def test_a_withheld_number_is_told_it_cannot_be_called_back_and_leaves_a_message(
    public_admin: HotlineConfig,
) -> None:
    caller = ScriptedCaller(keys("1"))
    result = _call(public_admin, caller, MONDAY_19H_HANOI, number=None)
    assert caller.prompts_heard == ["out_of_hours", "after_hours_menu", "callback_unavailable"]
    assert result.route is not None and result.route.kind is RouteKind.VOICEMAIL
    assert result.route.callback_queue is None


def test_a_queue_closed_in_office_hours_never_promises_an_unasked_call_back(
    tmp_path: Path,
) -> None:
    """out_of_hours may itself be a call-back; a caller who chose a queue that is
    closed while the line is open goes to the failure queue instead."""

    def closed_topic(data: dict[str, Any]) -> None:
        data["hotlines"][0]["out_of_hours"] = f"callback:{SWITCHBOARD}"
        data["schedules"]["mornings"] = {"weekly": {"mon": ["08:00-09:00"]}}
        data["queues"][1]["schedule"] = "mornings"  # hcc-thu-tuc, closed at 10:00

    config = load_config(_write(tmp_path, PUBLIC_ADMIN, closed_topic))
    caller = ScriptedCaller(keys("1"))
    result = _call(config, caller, MONDAY_10H_HANOI, number=None)
    assert result.route is not None and result.route.callback_queue is None
    assert result.route.queue == SWITCHBOARD and result.route.announce == ("out_of_hours",)


# --- the FastAGI handler and the dispatcher, on one database -------------------------


@dataclass
class Line:
    agi: HotlineAgi
    call_log: CallLog
    sessions: sessionmaker[Session]
    config: HotlineConfig

    async def finish(self) -> None:
        await self.agi.drain(0)
        assert await asyncio.to_thread(self.call_log.close)

    def rows(self, model: Any) -> list[Any]:
        with self.sessions() as session:
            return list(session.scalars(select(model).order_by(model.id)))


@pytest.fixture
def line_config(tmp_path: Path) -> HotlineConfig:
    url = fresh_database_url(tmp_path)
    upgrade(url)

    def point_here(data: dict[str, Any]) -> None:
        data["database"]["url"] = url
        data["paths"] = {
            "prompts": str(tmp_path / "prompts"),
            "recordings": str(tmp_path / "recordings"),
            "routing_table": str(tmp_path / "routing.json"),
        }
        data["retention"]["pseudonym_key_file"] = str(tmp_path / "pseudonym-key")
        data["sms"]["path"] = str(tmp_path / "sms.jsonl")

    path = _write(tmp_path, PUBLIC_ADMIN, point_here)
    # Every catalog prompt installed (empty files): what the caller hears is
    # exactly what the handler plays.
    catalog = yaml.safe_load((REPO / "prompts" / "catalog.yaml").read_text(encoding="utf-8"))
    folder = tmp_path / "prompts" / HOTLINE / "vi"
    folder.mkdir(parents=True)
    for name in catalog:
        (folder / f"{name}.wav").write_bytes(b"")
    return load_config(path)


@pytest_asyncio.fixture
async def line(line_config: HotlineConfig) -> AsyncIterator[Line]:
    engine = make_engine(line_config.database_url)
    sessions = make_session_factory(engine)
    call_log = CallLog(sessions)
    desk = CaseDesk(sessions, line_config, writer=call_log.submit)
    agi = HotlineAgi(line_config, call_log, desk, clock=lambda: MONDAY_19H_HANOI)
    try:
        yield Line(agi, call_log, sessions, line_config)
    finally:
        await agi.close()
        desk.close()
        await asyncio.to_thread(call_log.close)
        engine.dispose()


def _entry(caller: str, answers: Any) -> AgiPeer:
    """Asterisk's request for ``AGI(agi://…/hotline-entry,<dialled>,<linkedid>)``."""
    headers = {
        "agi_network": "yes",
        "agi_network_script": "hotline-entry",
        "agi_uniqueid": UNIQUEID,
        "agi_channel": "PJSIP/pstn-00000007",
        "agi_callerid": caller,
        "agi_extension": HOTLINE_NUMBER,
        "agi_arg_1": HOTLINE_NUMBER,
        "agi_arg_2": UNIQUEID,
    }
    return AgiPeer(headers, answers)


def _heard(peer: AgiPeer) -> list[str]:
    return [Path(path).name for path in peer.played]


def _switchboard(free_agents: int, waiting_since: list[float]) -> LiveModel:
    """The live picture of hcc-tong-dai: agents the roster logged in, callers waiting."""
    model = LiveModel("local", queue_settings={SWITCHBOARD: (30, 0)})
    queue = QueueState(SWITCHBOARD, 30, 0, DailyTotals(utc_now().date()))
    for index, joined in enumerate(waiting_since):
        queue.callers[f"w{index}"] = WaitingCaller(
            f"w{index}", "PJSIP/pstn-1", "0987000001", index + 1, joined, index + 1
        )
    for index in range(free_agents):
        interface = f"PJSIP/hcc-dtv-0{index + 1}"
        queue.members[interface] = Member(interface, f"hcc0{index + 1}", device=1)
    model.queues[SWITCHBOARD] = queue
    return model


@pytest.mark.db
async def test_key_1_at_night_writes_the_request_and_case_and_the_morning_agent_calls_back(
    line: Line,
) -> None:
    peer = _entry(CALLER_RAW, keys("1"))
    await line.agi.entry(peer)

    [case] = line.rows(Case)
    [request] = line.rows(CallbackRequest)
    assert (case.channel, case.hotline_id, case.caller_number, case.call_uniqueid) == (
        "callback", HOTLINE, CALLER, UNIQUEID
    )  # fmt: skip
    assert (request.queue, request.hotline_id, request.caller_number) == (
        SWITCHBOARD, HOTLINE, CALLER
    )  # fmt: skip
    assert (request.case_code, request.status, request.call_uniqueid) == (
        case.code, "pending", UNIQUEID
    )  # fmt: skip
    # Its place in line, and due from then: when it was asked for (the server's
    # clock, which judged the hours; not the machine's).
    assert request.joined_at == MONDAY_19H_HANOI.timestamp()
    assert request.requested_at == request.next_attempt_at == MONDAY_19H_HANOI
    digits = digit_prompts(case.code)
    assert _heard(peer) == [
        "out_of_hours", "after_hours_menu", "callback_confirmed_when_open",
        "case_code_intro", *digits, "case_code_repeat", *digits, "goodbye",
    ]  # fmt: skip
    # Then the dialplan hangs up on its "callback" branch: reports count the call
    # as a call back, as for key 1 in a queue.
    assert peer.variables == {"HL_ROUTE": "callback"}
    await line.finish()
    [call] = line.rows(Call)
    assert (call.keys_pressed, call.last_step) == ("1", "route:callback")
    assert call.route_target == f"callback:{SWITCHBOARD}"

    sent: list[dict[str, str]] = []
    # The dispatcher's clock: the working night after the request, then the
    # next working morning.
    zone = ZoneInfo(line.config.timezone)
    calendar = WorkingCalendar.of(line.config)  # listed and computed holidays

    def working_day_after(day: date) -> date:
        day += timedelta(days=1)
        while not calendar.is_working_day(day):
            day += timedelta(days=1)
        return day

    night = working_day_after(MONDAY_19H_HANOI.astimezone(zone).date())
    morning = [datetime.combine(night, dt_time(19, 0), zone)]
    dispatcher = CallbackDispatcher(
        line.config,
        line.sessions,
        {"local": _switchboard(free_agents=0, waiting_since=[])},
        sent.append,
        clock=lambda: morning[0],
    )
    try:
        assert await dispatcher.tick() == []  # the night: nobody logged in
        morning[0] = datetime.combine(working_day_after(night), dt_time(8, 30), zone)
        # 8:00: the roster brings an agent in; a caller of the morning waits, but
        # joined after the request was made, so it goes first.
        dispatcher.models = {"local": _switchboard(free_agents=1, waiting_since=[time.time()])}
        assert await dispatcher.tick() == [request.id]
        assert await dispatcher.tick() == []  # ringing: not dialled twice
    finally:
        await dispatcher.close()
        dispatcher.db.close()
    [action] = sent
    assert action["Channel"] == "PJSIP/0912345678@pstn"
    assert action["CallerID"].endswith(f"<{HOTLINE_NUMBER}>")  # the caller's own hotline
    assert f"HL_QUEUE={SWITCHBOARD}" in action["Variable"]
    assert f"HL_HOTLINE={HOTLINE}" in action["Variable"]
    with line.sessions() as session:
        dialled = session.get(CallbackRequest, request.id)
        assert dialled is not None and (dialled.status, dialled.attempts) == ("dialing", 1)


@pytest.mark.db
async def test_key_1_from_a_withheld_number_writes_nothing_and_takes_a_message(
    line: Line,
) -> None:
    peer = _entry("anonymous", keys("1"))
    await line.agi.entry(peer)
    assert _heard(peer) == ["out_of_hours", "after_hours_menu", "callback_unavailable"]
    assert peer.variables == {"HL_ROUTE": "voicemail"}
    assert line.rows(CallbackRequest) == [] and line.rows(Case) == []


@pytest.mark.db
async def test_a_call_back_that_cannot_be_written_takes_a_message_instead(
    line: Line,
) -> None:
    """The database refuses the request: the caller is not promised a call that
    will never come; their message becomes a case instead."""

    def broken(*args: Any) -> str:
        raise RuntimeError("database away")

    line.agi._open_callback = broken  # type: ignore[method-assign,assignment]
    peer = _entry(CALLER_RAW, keys("1"))
    await line.agi.entry(peer)
    assert _heard(peer) == ["out_of_hours", "after_hours_menu"]  # then voicemail_intro
    assert peer.variables == {"HL_ROUTE": "voicemail"}
    await line.finish()
    [call] = line.rows(Call)
    assert (call.keys_pressed, call.route_kind, call.route_target) == ("1", "voicemail",
                                                                       "voicemail")  # fmt: skip
