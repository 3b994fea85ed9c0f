"""Least privilege in the console: an agent reads only the calls and cases it
handled (pages, JSON API, recordings, transcripts, caller history, websocket),
numbers it does not need are masked, every read of personal data is audited,
and administrators can filter and export the audit log.

Two agents, each with an answered call (a ``calls`` row plus the queue
manager's ``queue_calls`` row, or only ``answered_by`` naming the phone), a
recording, a transcript and cases; agent A tries everything of agent B's."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import pytest_asyncio
from sqlalchemy import select

from ivr.audit import AuditEntry
from ivr.cases.models import Case, Recording, Transcript, TranscriptionJob
from ivr.cases.service import CaseService
from ivr.config import HotlineConfig
from ivr.db.models import Call, utc_now
from ivr.queue_records.models import QueueCall
from ivr.web import store
from ivr.web.access import AccessScope, mask_number
from ivr.web.live import Client, LiveHub
from ivr.web.models import WebUser
from ivr.web.store import UserError, UserStore
from tests import test_web
from tests.test_web import PASSWORD, Console, FakeManager

# The console harness of tests/test_web.py (fixtures shared by name).
config = test_web.config
sessions = test_web.sessions

A_NUMBER = "+84912000111"  # A's caller
B_NUMBER = "+84987000222"  # B's caller
B2_NUMBER = "+84987000333"  # B's other caller (answered_by only)
WAITING_NUMBER = "0911000444"  # someone still in the queue


def test_mask_number_keeps_the_network_and_the_last_three_digits() -> None:
    assert mask_number("+84912000678") == "+84 91x xxx 678"
    assert mask_number("+842437655555") == "+84 24x xxxx 555"
    assert mask_number("0912 000 678") == "xxxxxxx678"
    assert mask_number("1001") == "x001"
    assert mask_number("") == "" and mask_number(None) == ""
    assert "000" not in mask_number("+84912000678")[:-3]


@pytest.mark.db
def test_an_agent_user_whose_agent_left_the_config_reads_nothing(
    config: HotlineConfig, sessions: Any, tmp_path: Path
) -> None:
    _answered_call(
        sessions, "1950.1", A_NUMBER, agent_id=None, answered_by=None,
        recording=tmp_path / "x.wav", said="không ai nhận",
    )  # fmt: skip
    with sessions.begin() as session:  # a queue record with no agent id at all
        session.add(QueueCall(node="local", uniqueid="1950.1", first_queue="operator",
                              queue="operator", joined_at=utc_now(),
                              outcome="abandoned"))  # fmt: skip
    orphan = WebUser(username="cu", role="agent", agent_id="da-nghi-viec")
    scope = AccessScope.of(orphan, config)
    assert scope.agent_id is None and not scope.sees_everything
    assert store.search_calls(sessions, store.Filters(), ZoneInfo("UTC"), scope=scope) == []
    assert not store.call_visible(sessions, scope, "1950.1")
    supervisor = AccessScope.of(WebUser(username="gs", role="supervisor"), config)
    assert (
        len(store.search_calls(sessions, store.Filters(), ZoneInfo("UTC"), scope=supervisor)) == 1
    )


# --- the console with two agents' work ----------------------------------------------


@dataclass
class World:
    console: Console
    a_call: str
    b_call: str
    b_call2: str
    a_recording: int
    b_recording: int
    a_case: str  # opened by the supervisor on A's call
    b_case: str  # opened by B on B's call
    b_own_case: str  # opened by B without a call


def _answered_call(
    sessions: Any,
    uniqueid: str,
    number: str,
    *,
    agent_id: str | None,
    answered_by: str | None,
    recording: Path,
    said: str,
) -> int:
    now = utc_now()
    with sessions.begin() as session:
        session.add(
            Call(uniqueid=uniqueid, linkedid=uniqueid, hotline_id="bac-tu-liem",
                 caller_number=number, caller_raw=number, started_at=now, answered_at=now,
                 ended_at=now, outcome="answered", answered_by=answered_by)
        )  # fmt: skip
        if agent_id is not None:
            session.add(
                QueueCall(node="local", uniqueid=uniqueid, linkedid=uniqueid, caller_id=number,
                          first_queue="operator", queue="operator", joined_at=now,
                          answered_at=now, ended_at=now, outcome="answered",
                          agent_interface=answered_by, agent_id=agent_id)
            )  # fmt: skip
        recording.write_bytes(b"RIFF" + b"\0" * 60)
        found = Recording(call_uniqueid=uniqueid, kind="mix", path=str(recording), created_at=now)
        session.add(found)
        job = TranscriptionJob(call_uniqueid=uniqueid, status="done", attempts=1)
        session.add(job)
        session.flush()
        session.add(Transcript(call_uniqueid=uniqueid, job_id=job.id, text=f"Người gọi: {said}"))
        return found.id


@pytest_asyncio.fixture(loop_scope="session")
async def world(config: HotlineConfig, sessions: Any, tmp_path: Path) -> AsyncIterator[World]:
    folder = tmp_path / "recordings"
    folder.mkdir(exist_ok=True)
    agent_a, agent_b = config.agents[0], config.agents[1]
    a_rec = _answered_call(
        sessions, "1900.1", A_NUMBER, agent_id=agent_a.id, answered_by=f"PJSIP/{agent_a.phone}",
        recording=folder / "a.wav", said="đèn đường ngõ 3 hỏng",
    )  # fmt: skip
    b_rec = _answered_call(
        sessions, "1900.2", B_NUMBER, agent_id=agent_b.id, answered_by=f"PJSIP/{agent_b.phone}",
        recording=folder / "b.wav", said="bí mật của người gọi B",
    )  # fmt: skip
    # A call whose queue record is missing: the call record alone names B's phone.
    _answered_call(
        sessions, "1900.3", B2_NUMBER, agent_id=None, answered_by=f"PJSIP/{agent_b.phone}",
        recording=folder / "b2.wav", said="chuyện riêng B2",
    )  # fmt: skip
    cases = CaseService(sessions, config)
    a_case = cases.open_case(
        channel="phone",
        hotline_id="bac-tu-liem",
        caller_number=A_NUMBER,
        summary="Đèn đường ngõ 3",
        call_uniqueid="1900.1",
        actor="giamsat",
    )
    b_case = cases.open_case(
        channel="phone",
        hotline_id="bac-tu-liem",
        caller_number=B_NUMBER,
        summary="Khiếu nại đất đai của B",
        call_uniqueid="1900.2",
        actor="dtv2",
    )
    b_own = cases.open_case(channel="phone", hotline_id="bac-tu-liem", caller_number=B2_NUMBER,
                            summary="Ghi chép riêng của B", actor="dtv2")  # fmt: skip
    running = Console(config, sessions, FakeManager(config))
    await running.start()
    try:
        yield World(running, "1900.1", "1900.2", "1900.3", a_rec, b_rec, a_case.code,
                    b_case.code, b_own.code)  # fmt: skip
    finally:
        for client in running.clients:
            await client.close()
        assert running.server is not None
        await running.server.close()


def _audit(sessions: Any) -> list[tuple[str, str, str, str]]:
    with sessions() as session:
        return [
            (e.actor, e.action, e.target, e.address)
            for e in session.scalars(select(AuditEntry).order_by(AuditEntry.id))
        ]


@pytest.mark.db
async def test_an_agent_gets_403_for_another_agents_call_case_transcript_and_recording(
    world: World,
) -> None:
    console = world.console
    agent, token = await console.signed_in("dtv1")
    refused = {
        f"/calls/{world.b_call}": "read_call_refused",
        f"/api/v1/calls/{world.b_call}": "read_call_refused",
        f"/calls/{world.b_call2}": "read_call_refused",  # answered_by names B's phone
        f"/api/v1/calls/{world.b_call2}": "read_call_refused",
        "/calls/1999.404": "read_call_refused",  # no oracle for ids that do not exist
        f"/cases/{world.b_case}": "read_case_refused",
        f"/api/v1/cases/{world.b_case}": "read_case_refused",
        f"/cases/{world.b_own_case}": "read_case_refused",
        f"/api/v1/cases/{world.b_own_case}": "read_case_refused",
        f"/recordings/{world.b_recording}": "listen_refused",
    }
    for path in refused:
        answer = await agent.get(path)
        body = await answer.text()
        assert answer.status == 403, path
        assert "bí mật" not in body and B_NUMBER not in body, path
        if path.startswith("/api/"):
            assert (await answer.json())["error"] == "Access denied"
        else:
            assert "Không có quyền truy cập" in body
    # Working on B's case, or linking a new case to B's call, is refused too.
    update = await agent.post(
        f"/api/v1/cases/{world.b_case}", json={"status": "in_progress", "summary": "sửa"},
        headers={"X-CSRF-Token": token},
    )  # fmt: skip
    assert update.status == 403
    update_form = await agent.post(
        f"/cases/{world.b_case}", data={"status": "in_progress", "csrf_token": token}
    )
    assert update_form.status == 403
    link = await agent.post(
        "/api/v1/cases", json={"caller_number": B_NUMBER, "summary": "x",
                               "call_uniqueid": world.b_call},
        headers={"X-CSRF-Token": token},
    )  # fmt: skip
    assert link.status == 403
    with console.sessions() as session:
        b_case = session.scalar(select(Case).where(Case.code == world.b_case))
        assert b_case is not None
        assert b_case.status == "received" and b_case.summary == "Khiếu nại đất đai của B"
        assert session.scalar(select(Case).where(Case.summary == "x")) is None

    # A's own work is readable, transcript and recording included.
    page = await agent.get(f"/calls/{world.a_call}")
    assert page.status == 200 and "đèn đường ngõ 3 hỏng" in await page.text()
    api = await (await agent.get(f"/api/v1/calls/{world.a_call}")).json()
    assert api["caller_number"] == A_NUMBER and "đèn đường" in api["transcript"]
    assert (await agent.get(f"/cases/{world.a_case}")).status == 200
    assert (await agent.get(f"/api/v1/cases/{world.a_case}")).status == 200
    listen = await agent.get(f"/recordings/{world.a_recording}")
    assert listen.status == 200 and (await listen.read()).startswith(b"RIFF")

    entries = _audit(console.sessions)
    for path, action in refused.items():
        target = path.rsplit("/", 1)[1]
        found = [e for e in entries if e[:2] == ("dtv1", action) and e[2].endswith(target)]
        assert found, (path, action)
    assert ("dtv1", "update_case_refused", f"case {world.b_case}", "127.0.0.1") in entries
    assert ("dtv1", "open_case_refused", f"call {world.b_call}", "127.0.0.1") in entries
    for allowed in (
        ("dtv1", "read_call", f"call {world.a_call}", "127.0.0.1"),
        ("dtv1", "read_transcript", f"call {world.a_call}", "127.0.0.1"),
        ("dtv1", "read_case", f"case {world.a_case}", "127.0.0.1"),
        ("dtv1", "listen", f"recording {world.a_recording}", "127.0.0.1"),
    ):
        assert allowed in entries, allowed
    # Two reads of A's call (page and API), each audited.
    assert entries.count(("dtv1", "read_call", f"call {world.a_call}", "127.0.0.1")) == 2


@pytest.mark.db
async def test_lists_and_searches_show_an_agent_only_its_own_rows(world: World) -> None:
    console = world.console
    agent, _ = await console.signed_in("dtv1")
    calls = await (await agent.get("/api/v1/calls")).json()
    assert [c["uniqueid"] for c in calls] == [world.a_call]
    # Filters cannot widen the scope: B's agent id, B's number.
    by_agent = await agent.get("/api/v1/calls", params={"agent": console.config.agents[1].id})
    assert await by_agent.json() == []
    by_number = await agent.get("/api/v1/calls", params={"number": B_NUMBER})
    assert await by_number.json() == []
    page = await (await agent.get("/calls")).text()
    assert A_NUMBER in page and B_NUMBER not in page and B2_NUMBER not in page
    cases = await (await agent.get("/api/v1/cases")).json()
    assert [c["code"] for c in cases] == [world.a_case]
    words = await (await agent.get("/api/v1/cases", params={"q": "đất đai"})).json()
    assert words == []
    cases_page = await (await agent.get("/cases")).text()
    assert f'data-code="{world.a_case}"' in cases_page
    assert f'data-code="{world.b_case}"' not in cases_page
    assert B_NUMBER not in cases_page

    # B sees its own three rows; the supervisor sees everyone's, numbers whole.
    other, _ = await console.signed_in("dtv2")
    mine = {c["uniqueid"] for c in await (await other.get("/api/v1/calls")).json()}
    assert mine == {world.b_call, world.b_call2}
    b_cases = {c["code"] for c in await (await other.get("/api/v1/cases")).json()}
    assert b_cases == {world.b_case, world.b_own_case}
    supervisor, _ = await console.signed_in("giamsat")
    everything = await (await supervisor.get("/api/v1/calls")).json()
    assert {c["caller_number"] for c in everything} == {A_NUMBER, B_NUMBER, B2_NUMBER}
    assert (await supervisor.get(f"/calls/{world.b_call}")).status == 200
    assert len(await (await supervisor.get("/api/v1/cases")).json()) == 3

    entries = _audit(console.sessions)
    assert ("dtv1", "list_calls", "/api/v1/calls", "127.0.0.1") in entries
    assert ("dtv1", "list_cases", "/cases", "127.0.0.1") in entries
    assert ("giamsat", "read_call", f"call {world.b_call}", "127.0.0.1") in entries


def _ring(manager: FakeManager, interface: str, uniqueid: str, number: str) -> None:
    model = manager.model
    model.apply({"Event": "QueueCallerJoin", "Queue": "operator", "Uniqueid": uniqueid,
                 "Channel": f"PJSIP/trunk-{uniqueid}", "CallerIDNum": number,
                 "Position": "1"})  # fmt: skip
    model.apply({"Event": "AgentCalled", "Queue": "operator", "Interface": interface,
                 "MemberName": interface, "Uniqueid": uniqueid})  # fmt: skip


@pytest.mark.db
async def test_caller_history_is_only_for_the_caller_at_the_agents_phone(world: World) -> None:
    console = world.console
    agent_a = console.config.agents[0]
    client, token = await console.signed_in("dtv1")
    # B's caller, not at A's phone: refused (API and screen-pop).
    assert (await client.get(f"/api/v1/callers/{B_NUMBER}")).status == 403
    pop = await client.get("/agent/pop", params={"number": B_NUMBER, "uniqueid": world.b_call})
    assert pop.status == 403
    # A's own earlier caller: only A's own work comes back.
    own = await (await client.get(f"/api/v1/callers/{A_NUMBER}")).json()
    assert [c["uniqueid"] for c in own["earlier_calls"]] == [world.a_call]

    # B's caller calls again and rings A's phone: A serves them now, so A gets
    # their history; B's earlier call is listed without a link and with a masked
    # number, B's case without its text.
    console.manager.model.resync([{"Event": "QueueParams", "Queue": "operator"}])
    _ring(console.manager, f"PJSIP/{agent_a.phone}", "1901.1", "0987000222")
    history = await client.get(f"/api/v1/callers/{B_NUMBER}", params={"uniqueid": "1901.1"})
    assert history.status == 200
    body = await history.json()
    earlier = {c["uniqueid"]: c for c in body["earlier_calls"]}
    assert earlier[world.b_call]["readable"] is False
    assert earlier[world.b_call]["caller_number"] == mask_number(B_NUMBER)
    case = next(c for c in body["open_cases"] if c["code"] == world.b_case)
    assert case["readable"] is False and "summary" not in case and "transcript" not in case
    assert "Khiếu nại đất đai" not in await history.text()
    pop = await client.get("/agent/pop", params={"number": "0987000222", "uniqueid": "1901.1"})
    html = await pop.text()
    assert pop.status == 200 and world.b_case in html
    assert f'href="/calls/{world.b_call}"' not in html
    assert f'href="/cases/{world.b_case}"' not in html and "Khiếu nại đất đai" not in html
    # Serving the caller opens neither B's call nor B's case.
    assert (await client.get(f"/calls/{world.b_call}")).status == 403
    assert (await client.get(f"/cases/{world.b_case}")).status == 403
    # But A may open a case on the call at its phone (the call record may not exist yet).
    opened = await client.post(
        "/api/v1/cases", json={"caller_number": "0987000222", "summary": "gọi lại",
                               "call_uniqueid": "1901.1"},
        headers={"X-CSRF-Token": token},
    )  # fmt: skip
    assert opened.status == 200, await opened.text()
    # A number that is not the one ringing is still refused.
    assert (
        await client.get(f"/api/v1/callers/{B2_NUMBER}", params={"uniqueid": "1901.1"})
    ).status == 403
    entries = _audit(console.sessions)
    assert ("dtv1", "read_caller_refused", f"caller {B_NUMBER}", "127.0.0.1") in entries
    assert ("dtv1", "read_caller", f"caller {B_NUMBER}", "127.0.0.1") in entries


class _Recorder:
    closed = False

    async def send_str(self, data: str) -> None:
        pass

    async def close(self, **_: Any) -> None:
        self.closed = True


def _frames(client: Client) -> str:
    out = []
    while not client.outbox.empty():
        out.append(client.outbox.get_nowait())
    return "\n".join(out)


async def test_agent_sockets_carry_only_the_number_ringing_at_that_agents_phone(
    config: HotlineConfig,
) -> None:
    manager = FakeManager(config)
    hub = LiveHub(config, manager)
    hub.start()
    a_iface = f"PJSIP/{config.agents[0].phone}"
    b_iface = f"PJSIP/{config.agents[1].phone}"
    agent_a = Client(_Recorder(), "agent", a_iface)  # type: ignore[arg-type]
    agent_b = Client(_Recorder(), "agent", b_iface)  # type: ignore[arg-type]
    board = Client(_Recorder(), "wallboard")  # type: ignore[arg-type]
    hub.clients |= {agent_a, agent_b, board}
    manager.model.resync([{"Event": "QueueParams", "Queue": "operator"}])
    for iface in (a_iface, b_iface):
        manager.model.apply({"Event": "QueueMemberAdded", "Queue": "operator",
                             "Interface": iface, "MemberName": iface, "Status": "1"})  # fmt: skip
    manager.model.apply({"Event": "QueueCallerJoin", "Queue": "operator", "Uniqueid": "7.1",
                         "Channel": "PJSIP/trunk-1", "CallerIDNum": WAITING_NUMBER,
                         "Position": "1"})  # fmt: skip
    _ring(manager, a_iface, "7.2", "0912000555")
    await asyncio.sleep(0)  # the scheduled flush
    seen_a, seen_b, seen_board = _frames(agent_a), _frames(agent_b), _frames(board)
    assert "0912000555" in seen_a  # A's own ringing caller (the screen-pop)
    assert WAITING_NUMBER not in seen_a and "PJSIP/trunk" not in seen_a
    assert WAITING_NUMBER not in seen_b and "0912000555" not in seen_b
    assert WAITING_NUMBER in seen_board and "0912000555" in seen_board  # supervisors see all
    # Agents still see how many wait and for how long.
    last_board = [json.loads(f) for f in seen_b.splitlines() if '"wallboard"' in f][-1]
    operator = next(q for q in last_board["board"]["queues"] if q["id"] == "operator")
    assert [set(c) for c in operator["callers"]] == [{"position", "wait_seconds"}] * 2
    current = hub.current_call(a_iface)
    assert current is not None and (current.uniqueid, current.number) == ("7.2", "0912000555")
    assert hub.current_call(b_iface) is None
    # Another phone answered: A's phone no longer holds that caller.
    manager.model.apply({"Event": "AgentRingNoAnswer", "Queue": "operator", "Interface": a_iface,
                         "MemberName": a_iface, "Uniqueid": "7.2", "RingTime": "5"})  # fmt: skip
    assert hub.current_call(a_iface) is None
    # Ring-all: both phones ring, B answers; A no longer holds that caller.
    manager.model.apply({"Event": "AgentCalled", "Queue": "operator", "Interface": a_iface,
                         "MemberName": a_iface, "Uniqueid": "7.1"})  # fmt: skip
    manager.model.apply({"Event": "AgentCalled", "Queue": "operator", "Interface": b_iface,
                         "MemberName": b_iface, "Uniqueid": "7.1"})  # fmt: skip
    assert hub.current_call(a_iface) is not None
    manager.model.apply({"Event": "AgentConnect", "Queue": "operator", "Interface": b_iface,
                         "MemberName": b_iface, "Uniqueid": "7.1", "HoldTime": "3",
                         "RingTime": "2"})  # fmt: skip
    assert hub.current_call(a_iface) is None
    answered = hub.current_call(b_iface)
    assert answered is not None and (answered.uniqueid, answered.state) == ("7.1", "answered")
    # A caller who hangs up while ringing a phone is no longer that phone's caller.
    _ring(manager, a_iface, "7.3", "0912000666")
    assert hub.current_call(a_iface) is not None
    manager.model.apply({"Event": "QueueCallerAbandon", "Queue": "operator", "Uniqueid": "7.3",
                         "Position": "1", "OriginalPosition": "1", "HoldTime": "4"})  # fmt: skip
    assert hub.current_call(a_iface) is None
    await hub.close()


@pytest.mark.db
async def test_agent_state_and_socket_carry_no_waiting_callers_number(world: World) -> None:
    console = world.console
    console.manager.model.resync([{"Event": "QueueParams", "Queue": "operator"}])
    console.manager.model.apply({"Event": "QueueCallerJoin", "Queue": "operator",
                                 "Uniqueid": "7.9", "Channel": "PJSIP/trunk-9",
                                 "CallerIDNum": WAITING_NUMBER, "Position": "1"})  # fmt: skip
    agent, _ = await console.signed_in("dtv1")
    state = await agent.get("/api/v1/agent")
    assert state.status == 200 and WAITING_NUMBER not in await state.text()
    async with agent.ws_connect("/ws/agent") as ws:
        first = (await asyncio.wait_for(ws.receive(), 5)).data
    assert '"wallboard"' in first and WAITING_NUMBER not in first


@pytest.mark.db
async def test_admin_filters_and_exports_the_audit_log(world: World) -> None:
    console = world.console
    agent, _ = await console.signed_in("dtv1")
    await agent.get(f"/calls/{world.a_call}")
    await agent.get(f"/calls/{world.b_call}")
    admin, _ = await console.signed_in("quantri")
    page = await admin.get("/admin/audit", params={"actor": "dtv1", "action": "read_call"})
    html = await page.text()
    assert page.status == 200 and f"call {world.a_call}" in html
    assert f"call {world.b_call}" not in html and "<td>login</td>" not in html
    api = await (await admin.get("/api/v1/audit", params={"actor": "dtv1"})).json()
    assert {e["action"] for e in api} >= {"login", "read_call", "read_call_refused"}
    assert all(e["actor"] == "dtv1" for e in api)
    later = await (await admin.get("/api/v1/audit", params={"from": "2999-01-01"})).json()
    assert later == []

    export = await admin.get("/admin/audit.csv", params={"actor": "dtv1"})
    assert export.status == 200 and export.content_type == "text/csv"
    assert 'filename="audit.csv"' in export.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO((await export.read()).decode("utf-8-sig"))))
    assert list(rows[0]) == ["at", "actor", "action", "target", "detail", "address"]
    assert ("read_call_refused", f"call {world.b_call}", "127.0.0.1") in {
        (r["action"], r["target"], r["address"]) for r in rows
    }
    assert all(r["actor"] == "dtv1" for r in rows)
    supervisor, _ = await console.signed_in("giamsat")
    assert (await supervisor.get("/admin/audit.csv")).status == 403
    assert (await agent.get("/admin/audit.csv")).status == 403
    assert (await supervisor.get("/admin/audit")).status == 403
    entries = _audit(console.sessions)
    assert ("quantri", "export", "audit.csv", "127.0.0.1") in entries


@pytest.mark.db
async def test_a_supervisor_of_one_hotline_reads_only_that_hotlines_calls_and_cases(
    world: World,
) -> None:
    console = world.console
    with console.sessions.begin() as session:  # B's call belongs to another hotline
        session.query(Call).filter_by(uniqueid=world.b_call).update({"hotline_id": "khac"})
        session.query(Case).filter_by(code=world.b_case).update({"hotline_id": "khac"})
    UserStore(console.sessions).add("gs-btl", PASSWORD, "supervisor", hotline_id="bac-tu-liem")
    with pytest.raises(UserError):  # only supervisors are limited to a hotline
        UserStore(console.sessions).add("dtv9", PASSWORD, "agent", agent_id="x", hotline_id="y")
    limited, _ = await console.signed_in("gs-btl")
    calls = await (await limited.get("/api/v1/calls")).json()
    assert world.a_call in {c["uniqueid"] for c in calls}
    assert world.b_call not in {c["uniqueid"] for c in calls}
    cases = await (await limited.get("/api/v1/cases")).json()
    assert world.a_case in {c["code"] for c in cases}
    assert world.b_case not in {c["code"] for c in cases}
    for path in (f"/api/v1/calls/{world.b_call}", f"/cases/{world.b_case}",
                 f"/recordings/{world.b_recording}"):  # fmt: skip
        assert (await limited.get(path)).status == 403, path
    assert (await limited.get(f"/api/v1/calls/{world.a_call}")).status == 200
    # A supervisor without a hotline still reads every hotline.
    everyone, _ = await console.signed_in("giamsat")
    calls = await (await everyone.get("/api/v1/calls")).json()
    assert {world.a_call, world.b_call} <= {c["uniqueid"] for c in calls}
