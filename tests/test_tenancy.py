"""Several hotlines in one deployment, kept apart (issue 12).

A two-hotline config (the Bắc Từ Liêm example plus the Hà Nội
public-administration hotline with its own number, queue, agent and phone):

- the config names each queue's and agent's hotline, and ``check-config``
  refuses, with file:line:field, a missing owner, an unknown one, a queue
  member or rostered agent of another hotline, and a menu sending callers to
  another hotline's queue;
- in the console, a supervisor or agent of one hotline sees nothing of the
  other: its wallboard (page, JSON, websocket) carries only its queues, agents
  and callers; the other's calls, cases, statistics, exports and jobs are
  refused or left out; pausing or listening in on the other's agent is 403;
  an administrator sees both;
- nothing falls back to "the first hotline": a case opened without a hotline
  in a two-hotline deployment is refused, and the FastAGI handlers and the
  call-back dialler use the channel's hotline or the queue's owner.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import yaml
from sqlalchemy import select

from ivr.audit import AuditEntry
from ivr.cases.models import TranscriptionJob
from ivr.cases.service import CaseService
from ivr.config import HotlineConfig, load_config
from ivr.db.engine import make_engine, make_session_factory
from ivr.db.migrate import upgrade
from ivr.db.models import Call, utc_now
from ivr.queue_records.models import QueueCall
from ivr.web.store import UserStore
from tests.config_checks import config_problems as _problems
from tests.config_checks import line_of as _line_of
from tests.rig.postgres import fresh_database_url
from tests.rig.stack import EXAMPLE
from tests.test_web import PASSWORD, Console, FakeManager

A = "bac-tu-liem"
B = "ha-noi-hcc"
B_NUMBER = "02439990000"  # B's published number
B_QUEUE = "hcc-tu-van"
B_AGENT = "hcc01"
B_PHONE = "hcc-01"
A_CALLER = "0912000111"
B_CALLER = "0987000222"  # a citizen in B's queue: A's people never see this number


def add_second_hotline(data: dict[str, Any]) -> None:
    """The example (hotline A) becomes one of two: every queue and agent names
    its hotline, and hotline B brings its own number, queue, agent and phone."""
    for item in (*data["queues"], *data["agents"]):
        item["hotline"] = A
    data["phones"].append({"id": B_PHONE, "name": "Điện thoại viên HCC 01"})
    data["agents"].append(
        {"id": B_AGENT, "name": "Nguyễn Văn Bình", "phone": B_PHONE, "hotline": B}
    )
    data["queues"].append(
        {"id": B_QUEUE, "title": "Tư vấn thủ tục hành chính", "hotline": B,
         "members": [B_AGENT]}
    )  # fmt: skip
    data["hotlines"].append(
        {
            "id": B,
            "name": "Đường dây nóng Hành chính công Hà Nội",
            "unit_name": "thành phố Hà Nội",
            "numbers": [B_NUMBER, "8100"],
            "schedule": "round-the-clock",
            "menus": {
                "main": {
                    "prompt": "main_menu",
                    "timeout_seconds": 2,
                    "options": {"1": f"queue:{B_QUEUE}"},
                    "on_invalid": f"queue:{B_QUEUE}",
                    "on_no_input": f"queue:{B_QUEUE}",
                }
            },
            "failure_destination": f"queue:{B_QUEUE}",
        }
    )


def write_config(
    folder: Path, edit: Callable[[dict[str, Any]], None] | None = None, *, second: bool = True
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    data = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    data["database"]["url"] = fresh_database_url(folder)
    data["sms"] = {"kind": "file", "path": str(folder / "sms.jsonl")}
    data["paths"]["recordings"] = str(folder / "recordings")
    data["web"] = {"cookie_secure": False}
    if second:
        add_second_hotline(data)
    if edit is not None:
        edit(data)
    path = folder / "two-hotlines.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


# --- config ---------------------------------------------------------------------------


def test_each_queue_and_agent_belongs_to_its_hotline(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path))
    assert [h.id for h in config.hotlines] == [A, B]
    assert config.queue_owner(B_QUEUE) == B and config.queue_owner("operator") == A
    assert config.agent_owner(B_AGENT) == B and config.agent_owner("dtv01") == A
    assert [q.id for q in config.queues_of(B)] == [B_QUEUE]
    assert [a.id for a in config.agents_of(B)] == [B_AGENT]
    assert config.sole_hotline() is None
    assert config.hotline_or_sole(None) is None  # several: nobody is "the" hotline
    # One hotline: the owner is implied.
    single = load_config(write_config(tmp_path / "one", second=False))
    assert single.queue_owner("operator") == A and single.agent_owner("dtv01") == A
    assert single.hotline_or_sole("") is single.hotlines[0]


def test_a_missing_owner_is_refused_with_file_line_and_field(tmp_path: Path) -> None:
    def drop_owners(data: dict[str, Any]) -> None:
        del data["queues"][-1]["hotline"]
        del data["agents"][-1]["hotline"]

    path = write_config(tmp_path, drop_owners)
    error = _problems(path)
    queue_line = _line_of(path, f"id: {B_QUEUE}", after="queues:")
    agent_line = _line_of(path, f"id: {B_AGENT}", after="agents:")
    assert f"{path}:{queue_line}: queues[4].hotline: required with several hotlines" in error
    assert f"{path}:{agent_line}: agents[18].hotline: required with several hotlines" in error


def test_an_unknown_owner_is_refused(tmp_path: Path) -> None:
    def misspell(data: dict[str, Any]) -> None:
        data["queues"][-1]["hotline"] = "ha-noi"

    path = write_config(tmp_path, misspell)
    line = _line_of(path, "hotline: ha-noi", after=f"id: {B_QUEUE}")
    assert f"{path}:{line}: queues[4].hotline: unknown hotline 'ha-noi'" in _problems(path)


def test_a_queue_member_or_rostered_agent_of_another_hotline_is_refused(tmp_path: Path) -> None:
    def cross(data: dict[str, Any]) -> None:
        data["queues"][-1]["members"] = [B_AGENT, "dtv01"]  # A's agent in B's queue
        data["roster"]["assignments"].append(
            {"shift": "sang", "queue": "operator", "agents": [B_AGENT]}
        )

    path = write_config(tmp_path, cross)
    error = _problems(path)
    member_line = _line_of(path, "- dtv01", after=f"id: {B_QUEUE}")
    assert (
        f"{path}:{member_line}: queues[4].members[1]: agent 'dtv01' works for hotline "
        f"'{A}', but queue '{B_QUEUE}' belongs to hotline '{B}'"
    ) in error
    roster_line = _line_of(path, f"- {B_AGENT}", after="shift: dem")
    assert (
        f"{path}:{roster_line}: roster.assignments[9].agents[0]: agent '{B_AGENT}' works for "
        f"hotline '{B}', but queue 'operator' belongs to hotline '{A}'"
    ) in error


def test_a_menu_sending_callers_to_another_hotlines_queue_is_refused(tmp_path: Path) -> None:
    def cross(data: dict[str, Any]) -> None:
        data["hotlines"][1]["menus"]["main"]["options"]["9"] = "queue:operator"
        data["hotlines"][0]["failure_destination"] = f"queue:{B_QUEUE}"

    path = write_config(tmp_path, cross)
    error = _problems(path)
    option_line = _line_of(path, "'9': queue:operator")
    assert (
        f"{path}:{option_line}: hotlines[1].menus.main.options.9: queue 'operator' belongs "
        f"to hotline '{A}', not to '{B}'"
    ) in error
    assert f"hotlines[0].failure_destination: queue '{B_QUEUE}' belongs to hotline '{B}'" in error


# --- the console ----------------------------------------------------------------------


class SpyingManager(FakeManager):
    """The fake queue manager, able to listen in (it records who was spied on)."""

    async def spy(self, agent_id: str, phone: str, mode: str) -> str | None:
        self.calls.append(("spy", (agent_id, phone, mode)))
        return f"PJSIP/{agent_id}-00000001"


@dataclass
class Deployment:
    console: Console
    config: HotlineConfig
    manager: SpyingManager
    a_call: str
    b_call: str
    a_case: str
    b_case: str


def _live_queues(manager: FakeManager, config: HotlineConfig) -> None:
    """Both hotlines' queues live: an agent and a waiting caller in each."""
    b_phone = f"PJSIP/{B_PHONE}"
    a_phone = f"PJSIP/{config.agents[0].phone}"
    manager.model.resync(
        [
            {"Event": "QueueParams", "Queue": "operator"},
            {"Event": "QueueParams", "Queue": B_QUEUE},
            {"Event": "QueueMember", "Queue": "operator", "Location": a_phone,
             "Status": "1", "Paused": "0"},
            {"Event": "QueueMember", "Queue": B_QUEUE, "Location": b_phone,
             "Status": "1", "Paused": "0"},
            {"Event": "QueueEntry", "Queue": "operator", "Uniqueid": "7.1",
             "CallerIDNum": A_CALLER, "Position": "1"},
            {"Event": "QueueEntry", "Queue": B_QUEUE, "Uniqueid": "7.2",
             "CallerIDNum": B_CALLER, "Position": "1"},
        ]
    )  # fmt: skip


def _call(sessions: Any, uniqueid: str, hotline: str, queue: str, number: str) -> None:
    now = utc_now()
    with sessions.begin() as session:
        session.add(
            Call(uniqueid=uniqueid, linkedid=uniqueid, hotline_id=hotline, caller_number=number,
                 caller_raw=number, started_at=now, ended_at=now, outcome="answered")
        )  # fmt: skip
        session.add(
            QueueCall(node="local", uniqueid=uniqueid, linkedid=uniqueid, caller_id=number,
                      first_queue=queue, queue=queue, joined_at=now, answered_at=now,
                      ended_at=now, outcome="answered", wait_seconds=5.0)
        )  # fmt: skip
        session.add(TranscriptionJob(call_uniqueid=uniqueid, status="failed", attempts=3,
                                     error=f"model missing for {uniqueid}"))  # fmt: skip


@pytest.fixture
def deployment_config(tmp_path: Path) -> HotlineConfig:
    return load_config(write_config(tmp_path))


@pytest.fixture
def deployment_sessions(deployment_config: HotlineConfig) -> Iterator[Any]:
    upgrade(deployment_config.database_url)
    engine = make_engine(deployment_config.database_url)
    factory = make_session_factory(engine)
    users = UserStore(factory)
    users.add("quantri", PASSWORD, "admin")
    users.add("gs-a", PASSWORD, "supervisor", hotline_id=A)
    users.add("gs-b", PASSWORD, "supervisor", hotline_id=B)
    users.add("dtv-a", PASSWORD, "agent", agent_id="dtv01")
    users.add("dtv-b", PASSWORD, "agent", agent_id=B_AGENT)
    yield factory
    engine.dispose()


@pytest_asyncio.fixture(loop_scope="session")
async def deployment(
    deployment_config: HotlineConfig, deployment_sessions: Any
) -> AsyncIterator[Deployment]:
    config, sessions = deployment_config, deployment_sessions
    _call(sessions, "3100.1", A, "operator", "+84912000111")
    _call(sessions, "3100.2", B, B_QUEUE, "+84987000222")
    cases = CaseService(sessions, config)
    a_case = cases.open_case(
        channel="phone",
        hotline_id=A,
        caller_number="+84912000111",
        summary="Đèn đường hỏng",
        call_uniqueid="3100.1",
        actor="ivr",
    )
    b_case = cases.open_case(channel="phone", hotline_id=B, caller_number="+84987000222",
                             summary="Hỏi thủ tục cấp phép", call_uniqueid="3100.2",
                             actor="ivr")  # fmt: skip
    manager = SpyingManager(config)
    manager.model.queue_settings[B_QUEUE] = (30, 0)
    _live_queues(manager, config)
    console = Console(config, sessions, manager)
    await console.start()
    try:
        yield Deployment(console, config, manager, "3100.1", "3100.2", a_case.code, b_case.code)
    finally:
        for client in console.clients:
            await client.close()
        assert console.server is not None
        await console.server.close()


def _audited(sessions: Any, action: str) -> list[tuple[str, str]]:
    with sessions() as session:
        return [
            (e.actor, e.target)
            for e in session.scalars(select(AuditEntry).where(AuditEntry.action == action))
        ]


def _queue_ids(board: dict[str, Any]) -> set[str]:
    return {q["id"] for q in board["queues"]}


@pytest.mark.db
async def test_a_hotlines_supervisor_sees_only_its_queues_agents_and_callers(
    deployment: Deployment,
) -> None:
    console = deployment.console
    gs_a, _ = await console.signed_in("gs-a")
    text = await (await gs_a.get("/api/v1/wallboard")).text()
    assert _queue_ids(json.loads(text)) == {"operator"}
    assert B_CALLER not in text and B_PHONE not in text
    page = await (await gs_a.get("/wallboard")).text()
    assert B_PHONE not in page and "Nguyễn Văn Bình" not in page  # B's agent and phone
    async with gs_a.ws_connect("/ws/wallboard") as ws:
        first = json.loads((await ws.receive()).data)
        assert _queue_ids(first["board"]) == {"operator"}
        # A change in B's queue still reaches A's socket only as A's picture.
        console.manager.model.apply(
            {"Event": "QueueCallerJoin", "Queue": B_QUEUE, "Uniqueid": "7.3",
             "Channel": "PJSIP/x-1", "CallerIDNum": "0987000999", "Position": "2"}
        )  # fmt: skip
        frame = (await asyncio.wait_for(ws.receive(), 5)).data
        assert _queue_ids(json.loads(frame)["board"]) == {"operator"}
        assert B_CALLER not in frame and "0987000999" not in frame and B_PHONE not in frame
    # B's supervisor gets B's queue, with its caller.
    gs_b, _ = await console.signed_in("gs-b")
    board = await (await gs_b.get("/api/v1/wallboard")).json()
    assert _queue_ids(board) == {B_QUEUE}
    assert [c["caller_id"] for c in board["queues"][0]["callers"]] == [B_CALLER, "0987000999"]
    # The administrator sees both.
    admin, _ = await console.signed_in("quantri")
    assert _queue_ids(await (await admin.get("/api/v1/wallboard")).json()) == {
        "operator",
        B_QUEUE,
    }


@pytest.mark.db
async def test_a_hotlines_supervisor_gets_403_on_the_others_records_actions_and_listen_in(
    deployment: Deployment,
) -> None:
    d = deployment
    gs_a, csrf = await d.console.signed_in("gs-a")
    headers = {"X-CSRF-Token": csrf}
    for path in (f"/api/v1/calls/{d.b_call}", f"/calls/{d.b_call}",
                 f"/api/v1/cases/{d.b_case}", f"/cases/{d.b_case}"):  # fmt: skip
        assert (await gs_a.get(path)).status == 403, path
    for action in ("pause", "unpause", "logout"):
        answer = await gs_a.post(f"/api/v1/agents/{B_AGENT}/{action}", json={}, headers=headers)
        assert answer.status == 403, action
    spy = {"agent_id": B_AGENT, "mode": "listen", "phone": "pb-noi-vu"}
    assert (await gs_a.post("/api/v1/spy", json=spy, headers=headers)).status == 403
    # Nor from B's agent's phone onto A's agent.
    own_from_b = {"agent_id": "dtv01", "mode": "listen", "phone": B_PHONE}
    assert (await gs_a.post("/api/v1/spy", json=own_from_b, headers=headers)).status == 403
    assert not [c for c in d.manager.calls if B_AGENT in str(c)]  # nothing reached AMI
    assert ("gs-a", B_AGENT) in _audited(d.console.sessions, "spy_refused")
    assert ("gs-a", B_AGENT) in _audited(d.console.sessions, "supervise_refused")
    # Its own agent: accepted.
    answer = await gs_a.post("/api/v1/agents/dtv01/pause", json={}, headers=headers)
    assert answer.status == 200
    spy_a = {"agent_id": "dtv01", "mode": "listen", "phone": "pb-noi-vu"}
    assert (await gs_a.post("/api/v1/spy", json=spy_a, headers=headers)).status == 200
    # B's supervisor listens to B's agent; the administrator to anyone.
    gs_b, csrf_b = await d.console.signed_in("gs-b")
    answer = await gs_b.post(
        "/api/v1/spy", json={**spy, "phone": B_PHONE}, headers={"X-CSRF-Token": csrf_b}
    )
    assert answer.status == 200
    admin, csrf_admin = await d.console.signed_in("quantri")
    answer = await admin.post("/api/v1/spy", json=spy, headers={"X-CSRF-Token": csrf_admin})
    assert answer.status == 200
    assert [c[1][0] for c in d.manager.calls if c[0] == "spy"] == ["dtv01", B_AGENT, B_AGENT]


@pytest.mark.db
async def test_statistics_exports_and_lists_count_only_the_users_hotline(
    deployment: Deployment,
) -> None:
    d = deployment
    gs_a, _ = await d.console.signed_in("gs-a")
    mine = await (await gs_a.get("/api/v1/stats")).json()
    assert (mine["calls"], mine["cases"], mine["queue_answered"]) == (1, 1, 1)
    csv_text = await (await gs_a.get("/stats.csv")).text()
    assert sum(int(line.rsplit(",", 1)[1]) for line in csv_text.splitlines()[1:]) == 1
    assert (await gs_a.get("/stats.xlsx")).status == 200
    calls_csv = await (await gs_a.get("/calls.csv")).text()
    cases_csv = await (await gs_a.get("/cases.csv")).text()
    assert d.a_call in calls_csv and d.b_call not in calls_csv
    assert d.a_case in cases_csv and d.b_case not in cases_csv
    jobs = await (await gs_a.get("/api/v1/jobs")).json()
    assert [j["call"] for j in jobs] == [d.a_call]
    calls_page = await (await gs_a.get("/calls")).text()
    assert "Nguyễn Văn Bình" not in calls_page  # B's agent is no filter choice of A's
    # The administrator counts both hotlines.
    admin, _ = await d.console.signed_in("quantri")
    everything = await (await admin.get("/api/v1/stats")).json()
    assert (everything["calls"], everything["cases"], everything["queue_answered"]) == (2, 2, 2)
    assert len(await (await admin.get("/api/v1/jobs")).json()) == 2


@pytest.mark.db
async def test_a_hotlines_agent_sees_only_its_hotlines_board_and_records(
    deployment: Deployment,
) -> None:
    d = deployment
    dtv_a, _ = await d.console.signed_in("dtv-a")
    async with dtv_a.ws_connect("/ws/agent") as ws:
        first = (await ws.receive()).data
        assert _queue_ids(json.loads(first)["board"]) == {"operator"}
        assert B_QUEUE not in first and B_PHONE not in first
    for path in (f"/api/v1/calls/{d.b_call}", f"/api/v1/cases/{d.b_case}"):
        assert (await dtv_a.get(path)).status == 403, path
    for path in ("/wallboard", "/api/v1/wallboard", "/api/v1/stats", "/calls.csv"):
        assert (await dtv_a.get(path)).status == 403, path
    dtv_b, _ = await d.console.signed_in("dtv-b")
    async with dtv_b.ws_connect("/ws/agent") as ws:
        assert _queue_ids(json.loads((await ws.receive()).data)["board"]) == {B_QUEUE}


@pytest.mark.db
async def test_a_case_opened_without_a_hotline_is_refused_not_given_to_the_first(
    deployment: Deployment,
) -> None:
    d = deployment
    admin, csrf = await d.console.signed_in("quantri")
    headers = {"X-CSRF-Token": csrf}
    form = {"caller_number": "0912000555", "summary": "Hỏi giờ làm việc"}
    answer = await admin.post("/api/v1/cases", json=form, headers=headers)
    assert answer.status == 400
    assert "hotline" in (await answer.json())["error"]
    answer = await admin.post("/api/v1/cases", json={**form, "hotline_id": B}, headers=headers)
    assert (await answer.json())["case"]["hotline_id"] == B
    assert (await answer.json())["case"]["channel"] == "phone"  # by default
    # The channel the case came by is the form's, one of the known ones.
    by_mail = {**form, "hotline_id": B, "channel": "email"}
    answer = await admin.post("/api/v1/cases", json=by_mail, headers=headers)
    assert (await answer.json())["case"]["channel"] == "email"
    answer = await admin.post("/api/v1/cases", json={**by_mail, "channel": "fax\r\n"},
                              headers=headers)  # fmt: skip
    assert answer.status == 400 and "channel" in (await answer.json())["error"]
    # A hotline's supervisor opens cases of that hotline, whatever the form says.
    gs_b, csrf_b = await d.console.signed_in("gs-b")
    answer = await gs_b.post(
        "/api/v1/cases", json={**form, "hotline_id": A}, headers={"X-CSRF-Token": csrf_b}
    )
    assert (await answer.json())["case"]["hotline_id"] == B


# --- no "first hotline" in the FastAGI handlers and the call-back dialler ------------


@dataclass
class Ivr:
    agi: Any  # ivr.agi.server.HotlineAgi
    call_log: Any
    sessions: Any
    config: HotlineConfig


@pytest_asyncio.fixture
async def ivr(tmp_path: Path) -> AsyncIterator[Ivr]:
    from ivr.agi.case_desk import CaseDesk
    from ivr.agi.server import HotlineAgi
    from ivr.call_log import CallLog

    config = load_config(write_config(tmp_path))
    upgrade(config.database_url)
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


MONDAY_10H_HANOI = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)
UNIQUEID = "1795420947.40"


def _agi(script: str, *args: str, hl_hotline: str | None = None, answers: Any = ()) -> Any:
    """Asterisk's request for ``AGI(agi://…/<script>,<args>)``; ``hl_hotline``
    is the channel's HL_HOTLINE as the dialplan set it (None: unset)."""
    from tests.rig.agi_peer import AgiPeer

    headers = {
        "agi_network": "yes", "agi_network_script": script, "agi_uniqueid": UNIQUEID,
        "agi_channel": "PJSIP/pstn-00000001", "agi_callerid": "0912345678",
        "agi_extension": "s", **{f"agi_arg_{n}": arg for n, arg in enumerate(args, 1)},
    }  # fmt: skip
    return AgiPeer(
        headers, answers, evaluate=lambda expr: hl_hotline if expr == "${HL_HOTLINE}" else None
    )


async def _rows(ivr: Ivr, model: Any) -> list[Any]:
    await ivr.agi.drain(0)
    await asyncio.to_thread(ivr.call_log.close)
    with ivr.sessions() as session:
        return list(session.scalars(select(model)))


async def test_a_call_to_a_number_no_hotline_lists_follows_the_channels_hotline(
    ivr: Ivr,
) -> None:
    """A number the config no longer lists (applied before Asterisk reloaded):
    the hotline the dialplan set on the channel answers, not the first one."""
    from tests.flow_driver import keys

    peer = _agi("hotline-entry", "02439990001", "", hl_hotline=B, answers=keys("1"))
    await ivr.agi.entry(peer)
    assert peer.variables == {"HL_QUEUE": B_QUEUE, "HL_ROUTE": "queue"}
    [call] = await _rows(ivr, Call)
    assert call.hotline_id == B


async def test_a_call_whose_hotline_cannot_be_known_takes_the_failure_branch(ivr: Ivr) -> None:
    peer = _agi("hotline-entry", "02439990001", "", hl_hotline=None)
    await ivr.agi.entry(peer)
    assert peer.variables == {"HL_ROUTE": "failure"}
    assert peer.played == []  # no other hotline's greeting
    assert await _rows(ivr, Call) == []  # and no record under another hotline


async def test_a_call_back_request_without_hotline_belongs_to_its_queues_hotline(
    ivr: Ivr,
) -> None:
    from ivr.cases.models import Case
    from ivr.queue_records.models import CallbackRequest

    peer = _agi("callback-requested", UNIQUEID, B_QUEUE, "1795420900.25", "")
    await ivr.agi.callback_requested(peer)
    assert peer.variables == {"HL_CALLBACK": "1", "HL_ROUTE": "callback"}
    [case] = await _rows(ivr, Case)
    assert case.hotline_id == B
    with ivr.sessions() as session:
        [callback] = session.scalars(select(CallbackRequest))
        assert callback.hotline_id == B


async def test_a_survey_of_an_unknown_hotline_plays_no_other_hotlines_prompts(ivr: Ivr) -> None:
    peer = _agi("survey", UNIQUEID, "")
    await ivr.agi.survey(peer)
    assert peer.commands == []


async def test_a_voicemail_of_an_unknown_hotline_opens_no_case_of_another(
    ivr: Ivr, tmp_path: Path
) -> None:
    from ivr.cases.models import Case, Recording

    base = tmp_path / "recordings" / "2026-11-23" / UNIQUEID
    base.parent.mkdir(parents=True)
    Path(f"{base}-voicemail.wav").write_bytes(b"RIFF" + bytes(400))
    # No call record (the FastAGI server was down) and no HL_HOTLINE.
    assert await ivr.agi.case_desk.voicemail_saved(UNIQUEID, str(base), "", "0912345678") is None
    assert await _rows(ivr, Case) == []
    with ivr.sessions() as session:  # the message itself is kept
        assert [r.kind for r in session.scalars(select(Recording))] == ["voicemail"]


@pytest.mark.db
async def test_the_call_back_dialler_calls_as_the_queues_hotline_never_the_first(
    deployment_config: HotlineConfig, tmp_path: Path
) -> None:
    from ivr.queue_records.models import CallbackRequest
    from queue_manager.callbacks import CallbackDispatcher
    from queue_manager.model import DailyTotals, LiveModel, Member, QueueState

    config = deployment_config
    upgrade(config.database_url)
    engine = make_engine(config.database_url)
    sessions = make_session_factory(engine)
    model = LiveModel("local", timezone=config.timezone)
    for name in (B_QUEUE, "gone"):
        queue = QueueState(name, 30, 0, DailyTotals(utc_now().date()))
        queue.members[f"PJSIP/{B_PHONE}"] = Member(f"PJSIP/{B_PHONE}", "free", device=1)
        model.queues[name] = queue
    with sessions.begin() as session:
        for index, queue_id in enumerate((B_QUEUE, "gone")):
            session.add(
                CallbackRequest(queue=queue_id, hotline_id="", caller_number="+84912000001",
                                call_uniqueid=f"u{index}", case_code="1", joined_at=1.0 + index)
            )  # fmt: skip
    sent: list[dict[str, str]] = []
    dispatcher = CallbackDispatcher(config, sessions, {"local": model}, sent.append)
    try:
        await dispatcher.tick()
    finally:
        dispatcher.db.close()
    [action] = sent
    assert f"HL_HOTLINE={B}" in action["Variable"] and action["CallerID"].endswith(f"<{B_NUMBER}>")
    with sessions() as session:
        statuses = {r.queue: (r.status, r.last_result) for r in session.scalars(
            select(CallbackRequest))}  # fmt: skip
    assert statuses["gone"] == ("failed", "unknown hotline")  # no number of another hotline
    engine.dispose()


@pytest.mark.db
async def test_an_agent_serving_a_caller_sees_nothing_of_their_calls_to_another_hotline(
    deployment: Deployment,
) -> None:
    """The caller B served rings A's agent: A's agent gets the caller's history
    on A's hotline, and not even the existence of their call and case on B."""
    d = deployment
    a_phone = f"PJSIP/{d.config.agents[0].phone}"
    model = d.manager.model
    model.apply(
        {
            "Event": "QueueCallerJoin",
            "Queue": "operator",
            "Uniqueid": "3200.1",
            "Channel": "PJSIP/trunk-1",
            "CallerIDNum": "0987000222",
            "Position": "2",
        }
    )
    model.apply({"Event": "AgentCalled", "Queue": "operator", "Interface": a_phone,
                 "MemberName": a_phone, "Uniqueid": "3200.1"})  # fmt: skip
    dtv_a, _ = await d.console.signed_in("dtv-a")
    answer = await dtv_a.get("/api/v1/callers/+84987000222", params={"uniqueid": "3200.1"})
    assert answer.status == 200
    body = await answer.json()
    assert body["earlier_calls"] == [] and body["open_cases"] == []
    # B's agent, serving the same caller, sees B's call and case.
    b_phone = f"PJSIP/{B_PHONE}"
    model.apply(
        {
            "Event": "QueueCallerJoin",
            "Queue": B_QUEUE,
            "Uniqueid": "3200.2",
            "Channel": "PJSIP/trunk-2",
            "CallerIDNum": "0987000222",
            "Position": "2",
        }
    )
    model.apply({"Event": "AgentCalled", "Queue": B_QUEUE, "Interface": b_phone,
                 "MemberName": b_phone, "Uniqueid": "3200.2"})  # fmt: skip
    dtv_b, _ = await d.console.signed_in("dtv-b")
    body = await (
        await dtv_b.get("/api/v1/callers/+84987000222", params={"uniqueid": "3200.2"})
    ).json()
    assert [c["uniqueid"] for c in body["earlier_calls"]] == [d.b_call]
    assert [c["code"] for c in body["open_cases"]] == [d.b_case]
