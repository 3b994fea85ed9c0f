"""Forwarding in the console's JSON API (issue 13), in a two-hotline
deployment (tests/test_tenancy.py's): the hotline's staff forward a case and
approve the final answer; a unit user sees and moves only its unit's forwards;
another unit's forward and another hotline's case are 403 and audited; the
supervisor's wallboard carries the overdue count of their hotline only.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import FormData
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from ivr.audit import AuditEntry
from ivr.cases.models import CaseForward
from ivr.cases.service import CaseService
from ivr.config import HotlineConfig, load_config
from ivr.db.engine import make_engine, make_session_factory
from ivr.db.migrate import upgrade
from ivr.web.forwarding import EmailSenderNotifier, start_due_checks
from ivr.web.state import STATE
from ivr.web.store import UserError, UserStore
from tests.test_tenancy import A, B, write_config
from tests.test_web import PASSWORD, Console, FakeManager

pytestmark = pytest.mark.db

UNIT_1, UNIT_2 = "ubnd-phuong-dong-ngac", "phong-quan-ly-do-thi"


def _units(data: dict[str, Any]) -> None:
    data["units"] = [
        {"code": UNIT_1, "name": "Ủy ban nhân dân phường Đông Ngạc", "kind": "agency",
         "email": "vanthu@dong-ngac.example", "sms": "0900000001", "hotline": A},
        {"code": UNIT_2, "name": "Phòng Quản lý đô thị", "kind": "department",
         "email": "qldt@bac-tu-liem.example", "hotline": A},
    ]  # fmt: skip
    # The job runs when a test says so (run_once), never on its own timer.
    data["forwarding"] = {"check_every_minutes": 0}


@pytest.fixture
def config(tmp_path: Path) -> HotlineConfig:
    return load_config(write_config(tmp_path, _units))


@pytest.fixture
def sessions(config: HotlineConfig) -> Iterator[Any]:
    upgrade(config.database_url)
    engine = make_engine(config.database_url)
    factory = make_session_factory(engine)
    users = UserStore(factory)
    users.add("gs-a", PASSWORD, "supervisor", hotline_id=A)
    users.add("gs-b", PASSWORD, "supervisor", hotline_id=B)
    users.add("dtv-a", PASSWORD, "agent", agent_id="dtv01")
    users.add("dtv-b", PASSWORD, "agent", agent_id="hcc01")
    users.add("donvi-1", PASSWORD, "unit", unit_code=UNIT_1)
    users.add("donvi-2", PASSWORD, "unit", unit_code=UNIT_2)
    yield factory
    engine.dispose()


@dataclass
class Setup:
    console: Console
    code: str
    sessions: Any

    async def user(self, name: str) -> tuple[TestClient, dict[str, str]]:
        client, token = await self.console.signed_in(name)
        return client, {"X-CSRF-Token": token}


@pytest_asyncio.fixture(loop_scope="session")
async def setup(config: HotlineConfig, sessions: Any) -> AsyncIterator[Setup]:
    case = CaseService(sessions, config).open_case(
        channel="phone", hotline_id=A, caller_number="+84912000111",
        summary="Rác thải tồn đọng ngõ 12", actor="ivr",
    )  # fmt: skip
    console = Console(config, sessions, FakeManager(config))
    await console.start()
    try:
        yield Setup(console, case.code, sessions)
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


async def _forward_both(setup: Setup) -> dict[str, int]:
    client, headers = await setup.user("dtv-a")
    answer = await client.post(
        f"/api/v1/cases/{setup.code}/forwards",
        json={"units": [{"unit_code": UNIT_1, "working_days": 2, "share_transcript": True},
                        UNIT_2]},
        headers=headers,
    )  # fmt: skip
    assert answer.status == 201, await answer.text()
    return {f["unit_code"]: f["id"] for f in (await answer.json())["forwards"]}


def test_a_unit_user_names_its_unit_and_only_a_unit_user_does(sessions: Any) -> None:
    users = UserStore(sessions)
    with pytest.raises(UserError, match="unit_code"):
        users.add("donvi-x", PASSWORD, "unit")
    with pytest.raises(UserError, match="unit_code"):
        users.add("dtv-x", PASSWORD, "agent", agent_id="dtv01", unit_code=UNIT_1)


@pytest.mark.db
async def test_an_agent_forwards_and_each_unit_sees_only_its_own(setup: Setup) -> None:
    ids = await _forward_both(setup)
    staff, _ = await setup.user("gs-a")
    listed = await (await staff.get(f"/api/v1/cases/{setup.code}/forwards")).json()
    assert {f["unit_code"]: f["status"] for f in listed} == {UNIT_1: "sent", UNIT_2: "sent"}

    unit, headers = await setup.user("donvi-1")
    mine = await (await unit.get("/api/v1/forwards")).json()
    assert [(f["case_code"], f["unit_code"]) for f in mine] == [(setup.code, UNIT_1)]
    detail = await (await unit.get(f"/api/v1/forwards/{ids[UNIT_1]}")).json()
    assert detail["case"]["summary"] == "Rác thải tồn đọng ngõ 12"
    assert "caller_number" not in detail["case"]
    moved = await unit.post(f"/api/v1/forwards/{ids[UNIT_1]}/received", headers=headers)
    assert (await moved.json())["forward"]["status"] == "received"
    answered = await unit.post(
        f"/api/v1/forwards/{ids[UNIT_1]}/answer", json={"answer": "Đã thu gom."},
        headers=headers,
    )  # fmt: skip
    assert (await answered.json())["forward"]["status"] == "answered"
    # A move the table refuses says why.
    again = await unit.post(f"/api/v1/forwards/{ids[UNIT_1]}/in_progress", headers=headers)
    assert again.status == 400 and "cannot become in_progress" in (await again.json())["error"]


@pytest.mark.db
async def test_a_unit_user_gets_403_on_another_units_forward_and_the_case_pages(
    setup: Setup,
) -> None:
    ids = await _forward_both(setup)
    unit, headers = await setup.user("donvi-1")
    other = ids[UNIT_2]
    assert (await unit.get(f"/api/v1/forwards/{other}")).status == 403
    answer = await unit.post(
        f"/api/v1/forwards/{other}/answer", json={"answer": "x"}, headers=headers
    )
    assert answer.status == 403
    assert (await unit.get(f"/api/v1/cases/{setup.code}")).status == 403
    assert (await unit.get(f"/api/v1/cases/{setup.code}/forwards")).status == 403
    assert (await unit.get("/api/v1/calls")).status == 403
    assert ("donvi-1", f"forward {other}") in _audited(setup.sessions, "read_forward_refused")
    assert ("donvi-1", f"forward {other}") in _audited(setup.sessions, "forward_action_refused")
    # Nothing changed on the other unit's forward.
    staff, _ = await setup.user("gs-a")
    listed = await (await staff.get(f"/api/v1/cases/{setup.code}/forwards")).json()
    assert {f["unit_code"]: f["status"] for f in listed}[UNIT_2] == "sent"


@pytest.mark.db
async def test_another_hotlines_staff_get_403_on_forwarding_and_its_forwards(
    setup: Setup,
) -> None:
    ids = await _forward_both(setup)
    agent_b, headers = await setup.user("dtv-b")
    forward = await agent_b.post(
        f"/api/v1/cases/{setup.code}/forwards", json={"units": [UNIT_1]}, headers=headers
    )
    assert forward.status == 403
    assert (await agent_b.get(f"/api/v1/cases/{setup.code}/forwards")).status == 403
    assert (await agent_b.get(f"/api/v1/forwards/{ids[UNIT_1]}")).status == 403
    assert ("dtv-b", f"case {setup.code}") in _audited(setup.sessions, "forward_refused")
    supervisor_b, headers_b = await setup.user("gs-b")
    approve = await supervisor_b.post(
        f"/api/v1/cases/{setup.code}/final-answer", json={"answer": "x"}, headers=headers_b
    )
    assert approve.status == 403


@pytest.mark.db
async def test_the_supervisor_approves_the_final_answer_and_the_case_closes(
    setup: Setup,
) -> None:
    ids = await _forward_both(setup)
    for name, unit_code in (("donvi-1", UNIT_1), ("donvi-2", UNIT_2)):
        unit, headers = await setup.user(name)
        answered = await unit.post(
            f"/api/v1/forwards/{ids[unit_code]}/answer", json={"answer": f"Trả lời {name}"},
            headers=headers,
        )  # fmt: skip
        assert answered.status == 200, await answered.text()
    supervisor, headers = await setup.user("gs-a")
    draft = (await (await supervisor.get(f"/api/v1/cases/{setup.code}/final-answer")).json())[
        "answer"
    ]
    assert "Trả lời donvi-1" in draft and "Trả lời donvi-2" in draft
    approved = await supervisor.post(
        f"/api/v1/cases/{setup.code}/final-answer", json={"answer": draft}, headers=headers
    )
    body = await approved.json()
    assert (body["status"], body["approved_by"]) == ("closed", "gs-a")
    case = await (await supervisor.get(f"/api/v1/cases/{setup.code}")).json()
    assert case["status"] == "closed"


@pytest.mark.db
async def test_the_wallboard_carries_the_overdue_forwards_of_the_users_hotline_only(
    setup: Setup,
) -> None:
    assert setup.console.server is not None
    hub = setup.console.server.app[STATE].hub
    hub.set_overdue_forwards({A: 2, B: 1})
    supervisor_a, _ = await setup.user("gs-a")
    board = json.loads(await (await supervisor_a.get("/api/v1/wallboard")).text())
    assert board["overdue_forwards"] == {A: 2}
    supervisor_b, _ = await setup.user("gs-b")
    board = json.loads(await (await supervisor_b.get("/api/v1/wallboard")).text())
    assert board["overdue_forwards"] == {B: 1}


@pytest.mark.db
async def test_an_attachment_is_read_by_its_unit_and_hotline_and_refused_to_another_unit(
    setup: Setup,
) -> None:
    ids = await _forward_both(setup)
    unit, headers = await setup.user("donvi-1")
    form = FormData()
    form.add_field("file", b"%PDF-1.4 bien ban", filename="../../biên bản.pdf",
                   content_type="application/pdf")  # fmt: skip
    uploaded = await unit.post(
        f"/api/v1/forwards/{ids[UNIT_1]}/attachments", data=form, headers=headers
    )
    assert uploaded.status == 201, await uploaded.text()
    attachment = (await uploaded.json())["id"]
    answered = await unit.post(
        f"/api/v1/forwards/{ids[UNIT_1]}/answer",
        json={"answer": "Đã xử lý, biên bản đính kèm.", "attachment_ids": [attachment]},
        headers=headers,
    )
    assert answered.status == 200
    own = await unit.get(f"/api/v1/attachments/{attachment}")
    assert own.status == 200 and await own.read() == b"%PDF-1.4 bien ban"
    assert own.headers["Content-Disposition"].startswith("attachment;")
    staff, _ = await setup.user("gs-a")
    assert (await staff.get(f"/api/v1/attachments/{attachment}")).status == 200
    other, other_headers = await setup.user("donvi-2")
    assert (await other.get(f"/api/v1/attachments/{attachment}")).status == 403
    hotline_b, _ = await setup.user("gs-b")
    assert (await hotline_b.get(f"/api/v1/attachments/{attachment}")).status == 403
    refused = _audited(setup.sessions, "attachment_refused")
    assert ("donvi-2", f"attachment {attachment}") in refused
    # Uploading to another unit's forward is refused too.
    form = FormData()
    form.add_field("file", b"x", filename="x.txt")
    assert (
        await other.post(f"/api/v1/forwards/{ids[UNIT_1]}/attachments", data=form,
                         headers=other_headers)
    ).status == 403  # fmt: skip
    assert ("donvi-2", f"forward {ids[UNIT_1]}") in _audited(setup.sessions, "attachment_refused")


@pytest.mark.db
async def test_the_console_job_puts_an_overdue_forward_on_its_hotlines_wallboard(
    setup: Setup,
) -> None:
    ids = await _forward_both(setup)
    with setup.sessions.begin() as session:  # the ward's deadline has passed
        session.get(CaseForward, ids[UNIT_1]).due_date = date(2020, 1, 6)
    assert setup.console.server is not None
    schedule = start_due_checks(setup.console.server.app)
    try:
        run = await schedule.run_once()
    finally:
        await schedule.close()
    assert run.escalated == [ids[UNIT_1]]
    supervisor_a, _ = await setup.user("gs-a")
    board = json.loads(await (await supervisor_a.get("/api/v1/wallboard")).text())
    assert board["overdue_forwards"] == {A: 1}
    supervisor_b, _ = await setup.user("gs-b")
    board = json.loads(await (await supervisor_b.get("/api/v1/wallboard")).text())
    assert board["overdue_forwards"] == {}


class FakeSender:
    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def send(self, message: Any) -> None:
        self.messages.append(message)


async def test_the_email_adapter_hands_the_sender_one_outgoing_email() -> None:
    sender = FakeSender()
    await EmailSenderNotifier(sender).email(  # type: ignore[arg-type]
        "vanthu@dong-ngac.example", "Chuyển xử lý phản ánh mã số 26040001", "Nội dung"
    )
    [message] = sender.messages
    assert (message.to, message.subject, message.text) == (
        "vanthu@dong-ngac.example", "Chuyển xử lý phản ánh mã số 26040001", "Nội dung",
    )  # fmt: skip


@pytest.mark.db
async def test_the_case_page_forwards_lists_statuses_in_vietnamese_and_approves(
    setup: Setup,
) -> None:
    page_of = f"/cases/{setup.code}"
    supervisor, headers = await setup.user("gs-a")
    page = await (await supervisor.get(page_of)).text()
    assert 'id="forward-form"' in page and "Ủy ban nhân dân phường Đông Ngạc" in page
    assert "Chưa chuyển đơn vị nào." in page
    form = [("csrf_token", headers["X-CSRF-Token"]), ("unit", UNIT_1), ("unit", UNIT_2),
            ("working_days", "2"), ("share_transcript", "1")]  # fmt: skip
    sent = await supervisor.post(f"{page_of}/forwards", data=form, allow_redirects=False)
    assert sent.status == 303 and sent.headers["Location"] == f"{page_of}#forwards"
    page = await (await supervisor.get(page_of)).text()
    assert page.count("<td>đã chuyển</td>") == 2
    assert 'id="final-answer-form"' in page
    # A refusal on the form is the error page, with the reason.
    again = await supervisor.post(f"{page_of}/forwards", data=form, allow_redirects=False)
    assert again.status == 400 and "already forwarded" in await again.text()
    approved = await supervisor.post(
        f"{page_of}/final-answer",
        data={"csrf_token": headers["X-CSRF-Token"], "answer": "Đã thu gom rác thải."},
        allow_redirects=False,
    )
    assert approved.status == 303
    case = await (await supervisor.get(f"/api/v1/cases/{setup.code}")).json()
    assert (case["status"], case["answer"]) == ("closed", "Đã thu gom rác thải.")


@pytest.mark.db
async def test_an_administrator_adds_a_unit_user_for_a_known_unit_only(
    config: HotlineConfig, sessions: Any
) -> None:
    UserStore(sessions).add("quantri", PASSWORD, "admin")
    console = Console(config, sessions, FakeManager(config))
    await console.start()
    try:
        admin, token = await console.signed_in("quantri")
        headers = {"X-CSRF-Token": token}
        added = await admin.post(
            "/api/v1/users", headers=headers,
            json={"username": "donvi-3", "password": PASSWORD, "role": "unit",
                  "unit_code": UNIT_2},
        )  # fmt: skip
        assert added.status == 200, await added.text()
        users = await (await admin.get("/api/v1/users")).json()
        assert {"username": "donvi-3", "unit_code": UNIT_2}.items() <= next(
            u for u in users if u["username"] == "donvi-3"
        ).items()
        unknown = await admin.post(
            "/api/v1/users", headers=headers,
            json={"username": "donvi-4", "password": PASSWORD, "role": "unit",
                  "unit_code": "khong-co"},
        )  # fmt: skip
        assert unknown.status == 400
        page = await (await admin.get("/admin/users")).text()
        assert "Đơn vị (người dùng của đơn vị xử lý)" in page and "đơn vị xử lý" in page
    finally:
        for client in console.clients:
            await client.close()
        assert console.server is not None
        await console.server.close()


@pytest.mark.db
async def test_the_console_process_retries_the_email_outbox_while_it_runs(
    config: HotlineConfig, sessions: Any, tmp_path: Path
) -> None:
    """Mail the SMTP server could not take waits in the outbox: the console's
    process (one per deployment) runs its retry loop from start to shutdown."""
    from aiohttp.test_utils import TestServer

    from ivr.notify.email import EmailOutbox, EmailSender
    from ivr.web.app import create_app
    from tests.rig.stack import free_tcp_port
    from tests.test_email_sender import _settings

    outbox = EmailOutbox(tmp_path / "var" / "email-outbox.jsonl")
    sender = EmailSender(_settings(free_tcp_port()), outbox)
    app = create_app(
        config, sessions, secret=b"s" * 32, notifier=EmailSenderNotifier(sender)
    )  # fmt: skip
    server = TestServer(app)
    await server.start_server()
    try:
        assert sender._outbox_task is not None and not sender._outbox_task.done()
    finally:
        await server.close()
    assert sender._outbox_task is None  # stopped with the console
