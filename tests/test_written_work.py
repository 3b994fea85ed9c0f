"""What the hotline's staff see of the written channels (issue 14), in the console.

Two hotlines (A: Bắc Từ Liêm, B: Hà Nội public administration), with cases
that came by SMS, email, the web form and Zalo, and one by phone:

- the queue of written work lists the open written cases of the user's
  hotline only (supervisor, agent; the administrator sees both), oldest due
  date first or newest first, one channel or all, with counts per channel,
  each row linking to its case page; an agent may open those cases;
- the wallboard and the agent console show the counts per channel of the
  user's hotline;
- the case page shows the thread (both directions, channel, time, delivery
  status) and the attachments: a thumbnail for a photo, a link for a PDF,
  served by id through an access-checked route: another hotline's user or a
  unit not forwarded the case gets 403 (audited), a forwarded unit's clerk
  gets the file, an id of another case is 404, and a row whose path leads
  outside the recordings folder serves nothing.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from PIL import Image
from sqlalchemy import select

from ivr.cases.forwarding import ForwardingService, ForwardRequest
from ivr.cases.models import CLOSED, Case
from ivr.cases.service import CaseService
from ivr.config import HotlineConfig, load_config
from ivr.config.source import ConfigSource
from ivr.contracts.channels import Channel, ContactKind, MessageDirection
from ivr.db.models import utc_now
from ivr.intake.models import FAILED, SENT, CaseAttachment, CaseMessage, Citizen, CitizenContact
from ivr.intake.replies import ReplyDispatcher
from ivr.notify.sms_replies import SmsReplySender
from ivr.web import written_store
from ivr.web.access import AccessScope
from ivr.web.app import create_app
from ivr.web.store import UserStore
from tests.rig.console import Account, ServedConsole, audited, console_sessions
from tests.test_tenancy import A, B, write_config
from tests.test_web import PASSWORD, FakeManager

UNIT_1, UNIT_2 = "ubnd-phuong-dong-ngac", "phong-quan-ly-do-thi"


def _units(data: dict[str, Any]) -> None:
    data["units"] = [
        {"code": UNIT_1, "name": "Ủy ban nhân dân phường Đông Ngạc", "kind": "agency",
         "email": "vanthu@dong-ngac.example", "hotline": A},
        {"code": UNIT_2, "name": "Phòng Quản lý đô thị", "kind": "department",
         "email": "qldt@bac-tu-liem.example", "hotline": A},
    ]  # fmt: skip
    data["forwarding"] = {"check_every_minutes": 0}


def _jpeg(size: tuple[int, int], colour: str) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, "JPEG")
    return out.getvalue()


@dataclass
class Written:
    console: ServedConsole
    config: HotlineConfig
    sessions: Any
    codes: dict[str, str]  # name → case code
    photo: int  # attachment ids
    pdf: int
    b_photo: int
    outside: int
    photo_bytes: bytes
    thumb_bytes: bytes

    async def user(self, name: str) -> tuple[Any, dict[str, str]]:
        client, token = await self.console.signed_in(name)
        return client, {"X-CSRF-Token": token}


@pytest.fixture
def config(tmp_path: Path) -> HotlineConfig:
    return load_config(write_config(tmp_path, _units))


@pytest.fixture
def sessions(config: HotlineConfig) -> Iterator[Any]:
    with console_sessions(
        config.database_url,
        Account("quantri", "admin"),
        Account("gs-a", "supervisor", hotline_id=A),
        Account("gs-b", "supervisor", hotline_id=B),
        Account("dtv-a", "agent", agent_id="dtv01"),
        Account("dtv-b", "agent", agent_id="hcc01"),
        Account("donvi-1", "unit", unit_code=UNIT_1),
        Account("donvi-2", "unit", unit_code=UNIT_2),
        password=PASSWORD,
    ) as factory:
        yield factory


def _open(
    cases: CaseService, channel: str, hotline: str, summary: str, caller_number: str | None = None
) -> str:
    return cases.open_case(channel=channel, hotline_id=hotline, summary=summary, actor="intake",
                           caller_number=caller_number).code  # fmt: skip


def _seed(config: HotlineConfig, sessions: Any) -> Written:
    cases = CaseService(sessions, config)
    codes = {
        "a_sms": _open(cases, "sms", A, "Đèn đường hỏng ngõ 5", caller_number="+84912000111"),
        "a_email": _open(cases, "email", A, "Rác thải tồn đọng"),
        "a_web": _open(cases, "web", A, "Ổ gà trên đường Phạm Văn Đồng"),
        "a_zalo_closed": _open(cases, "zalo", A, "Đã giải quyết"),
        "a_phone": _open(cases, "phone", A, "Gọi hỏi thủ tục", caller_number="+84912000999"),
        "b_sms": _open(cases, "sms", B, "Hỏi thủ tục cấp phép", caller_number="+84987000222"),
    }
    now = utc_now()
    root = config.resolve_path(config.paths.recordings).resolve()
    folder = root / "attachments" / A / "test"  # the intake's folder: attachments/<hotline>/…
    folder.mkdir(parents=True, exist_ok=True)
    photo_bytes, thumb_bytes = _jpeg((640, 480), "red"), _jpeg((160, 120), "blue")
    (folder / "p1").write_bytes(photo_bytes)
    (folder / "p1-thumb").write_bytes(thumb_bytes)
    (folder / "d1").write_bytes(b"%PDF-1.4\n%test\n")
    outside = root / "secret.txt"  # in the recordings folder, not among the attachments
    outside.write_text("not for the console")
    with sessions.begin() as session:
        by_code = {c.code: c for c in session.scalars(select(Case))}
        # Due dates apart, so the order of the queue is known: email, sms, web.
        for name, days in (("a_email", 1), ("a_sms", 2), ("a_web", 3)):
            by_code[codes[name]].due_date = now.date() + timedelta(days=days)
        by_code[codes["a_web"]].received_at = now + timedelta(minutes=5)  # the newest
        by_code[codes["a_zalo_closed"]].status = CLOSED
        citizen = Citizen(hotline_id=A, name="Trần Thị Lan")
        session.add(citizen)
        session.flush()
        session.add_all([
            CitizenContact(citizen_id=citizen.id, hotline_id=A, kind=ContactKind.PHONE.value,
                           value="+84912000111"),
            CitizenContact(citizen_id=citizen.id, hotline_id=A, kind=ContactKind.EMAIL.value,
                           value="lan@example.vn"),
        ])  # fmt: skip
        a_sms = by_code[codes["a_sms"]]
        a_sms.citizen_id = citizen.id
        by_code[codes["a_web"]].citizen_id = citizen.id  # the same citizen, by the form
        thread: dict[str, Any] = {"case_id": a_sms.id, "channel": "sms"}
        inbound = CaseMessage(
            **thread,
            direction=MessageDirection.INBOUND.value,
            text="Đèn đường hỏng ngõ 5, tối om",
            at=now,
            sender="+84912000111",
        )
        # Two messages by SMS to the citizen: one delivered, one the gateway refused.
        to_citizen = {**thread, "direction": MessageDirection.OUTBOUND.value, "to": "+84912000111"}
        sent = CaseMessage(
            **to_citizen,
            purpose="case_opened",
            text="Đã nhận phản ánh, mã hồ sơ",
            status=SENT,
            sent_at=now,
            at=now + timedelta(seconds=1),
        )
        failed = CaseMessage(
            **to_citizen,
            purpose="message",
            text="Chúng tôi đang xử lý",
            status=FAILED,
            error="gateway refused: 503",
            at=now + timedelta(seconds=2),
        )
        session.add_all([inbound, sent, failed])
        session.flush()
        photo = CaseAttachment(
            case_id=a_sms.id,
            message_id=inbound.id,
            kind="image",
            media_type="image/jpeg",
            filename="den-duong.jpg",
            path=f"{A}/test/p1",
            thumbnail_path=f"{A}/test/p1-thumb",
            size=len(photo_bytes),
        )
        pdf = CaseAttachment(
            case_id=a_sms.id,
            message_id=inbound.id,
            kind="pdf",
            media_type="application/pdf",
            filename="don.pdf",
            path=f"{A}/test/d1",
            size=15,
        )
        b_case = by_code[codes["b_sms"]]
        b_photo = CaseAttachment(
            case_id=b_case.id,
            kind="image",
            media_type="image/jpeg",
            filename="b.jpg",
            path=f"{A}/test/p1",
        )
        # A row whose path leads out of the recordings folder (never served).
        sneaky = CaseAttachment(
            case_id=a_sms.id,
            kind="pdf",
            media_type="application/pdf",
            filename="x.pdf",
            path="../secret.txt",
        )
        session.add_all([photo, pdf, b_photo, sneaky])
        session.flush()
        ids = (photo.id, pdf.id, b_photo.id, sneaky.id)  # fmt: skip
    return Written(None, config, sessions, codes, *ids, photo_bytes, thumb_bytes)  # type: ignore[arg-type]


@pytest_asyncio.fixture(loop_scope="session")
async def written(config: HotlineConfig, sessions: Any) -> AsyncIterator[Written]:
    seeded = _seed(config, sessions)
    app = create_app(config, sessions, secret=b"s" * 32, queue_manager=FakeManager(config))
    async with ServedConsole(app, PASSWORD) as console:
        seeded.console = console
        yield seeded


# --- the queue of written work -------------------------------------------------------


@pytest.mark.db
async def test_the_queue_lists_the_open_written_cases_of_the_users_hotline_only(
    written: Written,
) -> None:
    c = written.codes
    mine = [c["a_email"], c["a_sms"], c["a_web"]]  # oldest due date first
    for name in ("gs-a", "dtv-a"):
        client, _ = await written.user(name)
        body = await (await client.get("/api/v1/written-work")).json()
        assert [row["code"] for row in body["cases"]] == mine, name
        assert body["by_channel"] == {"sms": 1, "email": 1, "zalo": 0, "web": 1, "open311": 0}
        assert body["total"] == 3
        assert all(row["url"] == f"/cases/{row['code']}" for row in body["cases"])
        newest = await (await client.get("/api/v1/written-work?order=newest")).json()
        assert next(row["code"] for row in newest["cases"]) == c["a_web"]
        only_sms = await (await client.get("/api/v1/written-work?channel=sms")).json()
        assert [row["code"] for row in only_sms["cases"]] == [c["a_sms"]]
        page = await (await client.get("/written")).text()
        for code in mine:
            assert f'<a href="/cases/{code}">{code}</a>' in page
        assert c["b_sms"] not in page and c["a_phone"] not in page
        assert c["a_zalo_closed"] not in page
        # The agent works the hotline's written cases: the case page opens.
        assert (await client.get(f"/cases/{c['a_sms']}")).status == 200
        assert (await client.get(f"/cases/{c['b_sms']}")).status == 403
    # B's supervisor and agent: B's only.
    for name in ("gs-b", "dtv-b"):
        client, _ = await written.user(name)
        body = await (await client.get("/api/v1/written-work")).json()
        assert [row["code"] for row in body["cases"]] == [c["b_sms"]], name
        assert body["total"] == 1
        assert (await client.get(f"/cases/{c['a_sms']}")).status == 403
    # An agent of A still does not see A's phone cases it had nothing to do with.
    agent_a, _ = await written.user("dtv-a")
    assert (await agent_a.get(f"/cases/{c['a_phone']}")).status == 403
    # The administrator sees both hotlines'.
    admin, _ = await written.user("quantri")
    body = await (await admin.get("/api/v1/written-work")).json()
    assert {row["code"] for row in body["cases"]} == {*mine, c["b_sms"]}
    assert body["by_channel"]["sms"] == 2
    # A unit's clerk has no queue of written work.
    unit, _ = await written.user("donvi-1")
    assert (await unit.get("/api/v1/written-work")).status == 403
    assert ("gs-a", "/api/v1/written-work") in audited(written.sessions, "list_written_work")


@pytest.mark.db
async def test_the_wallboard_and_agent_console_count_the_written_work_per_channel(
    written: Written,
) -> None:
    gs_a, _ = await written.user("gs-a")
    page = await (await gs_a.get("/wallboard")).text()
    assert 'id="written-counts"' in page
    assert '<b class="written-total">3</b>' in page
    assert re.search(r'data-channel="sms">.*?<b class="written-count">1</b>', page)
    assert re.search(r'data-channel="zalo">.*?<b class="written-count">0</b>', page)
    counts = await (await gs_a.get("/api/v1/written-work/counts")).json()
    assert counts == {
        "total": 3,
        "by_channel": {"sms": 1, "email": 1, "zalo": 0, "web": 1, "open311": 0},
    }
    gs_b, _ = await written.user("gs-b")
    page_b = await (await gs_b.get("/wallboard")).text()
    assert '<b class="written-total">1</b>' in page_b
    agent, _ = await written.user("dtv-a")
    console_page = await (await agent.get("/agent")).text()
    assert '<b class="written-total">3</b>' in console_page
    assert "/static/written_work.js" in console_page


# --- the case page: thread and attachments -------------------------------------------


@pytest.mark.db
async def test_the_case_page_shows_the_thread_with_delivery_and_the_attachments(
    written: Written,
) -> None:
    code = written.codes["a_sms"]
    client, _ = await written.user("dtv-a")
    page = await (await client.get(f"/cases/{code}")).text()
    assert 'id="thread"' in page
    assert "Đèn đường hỏng ngõ 5, tối om" in page and 'data-direction="in"' in page
    assert 'data-status="sent"' in page and 'data-status="failed"' in page
    assert "gateway refused: 503" in page
    assert "lan@example.vn" in page  # the citizen's other contact
    assert f'src="/cases/{code}/attachments/{written.photo}?thumb=1"' in page
    assert f'href="/cases/{code}/attachments/{written.pdf}?download=1"' in page
    assert 'id="reply-form"' in page
    api = await (await client.get(f"/api/v1/cases/{code}/thread")).json()
    assert [m["direction"] for m in api["messages"]] == ["in", "out", "out"]
    assert [m["status"] for m in api["messages"]] == [None, "sent", "failed"]
    assert [a["id"] for a in api["messages"][0]["attachments"]] == [written.photo, written.pdf]
    # A phone case has no thread and no reply form.
    gs_a, _ = await written.user("gs-a")
    phone_page = await (await gs_a.get(f"/cases/{written.codes['a_phone']}")).text()
    assert 'id="reply-form"' not in phone_page


@pytest.mark.db
async def test_attachments_are_served_by_id_only_to_who_may_read_the_case(
    written: Written,
) -> None:
    code = written.codes["a_sms"]
    url = f"/cases/{code}/attachments/{written.photo}"
    agent, _ = await written.user("dtv-a")
    photo = await agent.get(url)
    assert photo.status == 200 and photo.headers["Content-Type"] == "image/jpeg"
    assert await photo.read() == written.photo_bytes
    assert "sandbox" in photo.headers["Content-Security-Policy"]
    thumb = await agent.get(url + "?thumb=1")
    assert thumb.status == 200 and await thumb.read() == written.thumb_bytes
    pdf = await agent.get(f"/cases/{code}/attachments/{written.pdf}")
    assert pdf.status == 200 and pdf.headers["Content-Type"] == "application/octet-stream"
    assert pdf.headers["Content-Disposition"].startswith("attachment;")
    # Another hotline's supervisor and agent: 403, audited.
    for name in ("gs-b", "dtv-b"):
        client, _ = await written.user(name)
        assert (await client.get(url)).status == 403, name
        assert (await client.get(url + "?thumb=1")).status == 403, name
    refused = audited(written.sessions, "attachment_refused")
    assert ("gs-b", f"case {code}") in refused and ("dtv-b", f"case {code}") in refused
    # B's attachment asked for under A's case: not this case's, 404 (not B's file).
    assert (await agent.get(f"/cases/{code}/attachments/{written.b_photo}")).status == 404
    assert (await agent.get(f"/cases/{code}/attachments/999999")).status == 404
    assert (await agent.get(f"/cases/{code}/attachments/..%2F..%2Fetc")).status == 404
    # A row pointing outside the recordings folder serves nothing.
    assert (await agent.get(f"/cases/{code}/attachments/{written.outside}")).status == 404
    # A unit not forwarded the case: 403; once forwarded to its unit, the clerk reads it.
    unit, _ = await written.user("donvi-1")
    assert (await unit.get(url)).status == 403
    assert ("donvi-1", f"case {code}") in audited(written.sessions, "attachment_refused")
    forwarding = ForwardingService(
        written.sessions, written.config, cases=CaseService(written.sessions, written.config)
    )
    forwarding.forward(code, [ForwardRequest(UNIT_1)], actor="gs-a")
    assert (await unit.get(url)).status == 200
    other_unit, _ = await written.user("donvi-2")
    assert (await other_unit.get(url)).status == 403
    views = audited(written.sessions, "view")
    assert ("dtv-a", f"attachment {written.photo}") in views
    assert ("donvi-1", f"attachment {written.photo}") in views


# --- a reply to the citizen ----------------------------------------------------------


def _outbound(sessions: Any, code: str) -> list[CaseMessage]:
    with sessions() as session:
        return list(
            session.scalars(
                select(CaseMessage)
                .join(Case, Case.id == CaseMessage.case_id)
                .where(Case.code == code, CaseMessage.purpose == "reply")
                .order_by(CaseMessage.id)
            )
        )


async def _reply(client: Any, headers: dict[str, str] | None, code: str, text: str) -> Any:
    """A reply to the citizen of case ``code`` through the API, as ``client``."""
    return await client.post(f"/api/v1/cases/{code}/replies", json={"text": text}, headers=headers)


@pytest.mark.db
async def test_an_agent_replies_on_the_cases_channel_from_the_case_page(
    written: Written,
) -> None:
    c = written.codes
    agent, headers = await written.user("dtv-a")
    answer = await _reply(
        agent, headers, c["a_sms"], "Đội điện đã được cử đến ngõ 5.\r\nXin cảm ơn."
    )
    assert answer.status == 200, await answer.text()
    body = await answer.json()
    assert (body["channel"], body["status"]) == ("sms", "pending")
    (reply,) = _outbound(written.sessions, c["a_sms"])
    assert (reply.direction, reply.channel, reply.to) == ("out", "sms", "+84912000111")
    assert reply.text == "Đội điện đã được cử đến ngõ 5.\nXin cảm ơn."
    assert reply.status == "pending" and reply.next_attempt_at is not None
    page = await (await agent.get(f"/cases/{c['a_sms']}")).text()
    assert f'data-message="{reply.id}" data-direction="out" data-status="pending"' in page
    # A web-form case goes back by the citizen's email.
    answer = await _reply(agent, headers, c["a_web"], "Đã chuyển phòng quản lý đô thị.")
    assert answer.status == 200, await answer.text()
    (web_reply,) = _outbound(written.sessions, c["a_web"])
    assert (web_reply.channel, web_reply.to) == ("email", "lan@example.vn")
    assert c["a_web"] in web_reply.subject
    # The HTML form: back to the thread.
    page = await agent.get(f"/cases/{c['a_sms']}")
    token = re.search(r'name="csrf_token" value="([^"]+)"', await page.text())
    assert token is not None
    form = await agent.post(f"/cases/{c['a_sms']}/replies",
                            data={"text": "Lần 2", "csrf_token": token.group(1)},
                            allow_redirects=False)  # fmt: skip
    assert form.status == 303 and form.headers["Location"] == f"/cases/{c['a_sms']}#thread"
    assert len(_outbound(written.sessions, c["a_sms"])) == 2
    assert ("dtv-a", f"case {c['a_sms']}") in audited(written.sessions, "reply")


@pytest.mark.db
async def test_a_reply_is_refused_without_a_contact_with_bad_text_or_outside_the_scope(
    written: Written,
) -> None:
    c = written.codes
    agent, headers = await written.user("dtv-a")
    for text in ("", "   ", "xin chào\x1b[2J"):
        answer = await _reply(agent, headers, c["a_sms"], text)
        assert answer.status == 400, text
    too_long = await _reply(agent, headers, c["a_sms"], "a" * 481)
    assert too_long.status == 400
    # An email case whose citizen left no address; a phone case: nowhere to write.
    gs_a, gs_headers = await written.user("gs-a")
    for name in ("a_email", "a_phone"):
        answer = await _reply(gs_a, gs_headers, c[name], "Trả lời")
        assert answer.status == 400, name
        assert "no contact" in (await answer.json())["error"]
    # Another hotline's supervisor or agent: 403, audited, nothing queued.
    for name in ("gs-b", "dtv-b"):
        client, other = await written.user(name)
        answer = await _reply(client, other, c["a_sms"], "Xâm nhập")
        assert answer.status == 403, name
        assert (name, f"case {c['a_sms']}") in audited(written.sessions, "reply_refused")
    # Without the CSRF token: refused by the console.
    answer = await _reply(agent, None, c["a_sms"], "x")
    assert answer.status == 403
    assert _outbound(written.sessions, c["a_sms"]) == []
    assert _outbound(written.sessions, c["a_email"]) == []


@pytest.mark.db
async def test_the_reply_dispatcher_delivers_an_sms_reply_and_the_thread_shows_it_sent(
    written: Written,
) -> None:
    c = written.codes
    agent, headers = await written.user("dtv-a")
    answer = await _reply(agent, headers, c["a_sms"], "Đã sửa xong đèn đường ngõ 5.")
    assert answer.status == 200, await answer.text()
    source = ConfigSource.of(written.config)
    dispatcher = ReplyDispatcher(written.sessions, {Channel.SMS: SmsReplySender(source)})
    run = await dispatcher.run_once()
    assert run.sent == 1
    (reply,) = _outbound(written.sessions, c["a_sms"])
    assert reply.status == "sent" and reply.sent_at is not None
    # The configured gateway (a file in tests) got the text for the citizen's number.
    outbox = Path(written.config.resolve_path(written.config.sms.path))
    sent = [json.loads(line) for line in outbox.read_text(encoding="utf-8").splitlines()]
    mine = [m for m in sent if m["text"] == "Đã sửa xong đèn đường ngõ 5."]
    assert len(mine) == 1 and mine[0]["to"] == "+84912000111"
    page = await (await agent.get(f"/cases/{c['a_sms']}")).text()
    assert f'data-message="{reply.id}" data-direction="out" data-status="sent"' in page


@pytest.mark.db
async def test_the_screen_pop_shows_a_citizen_of_the_calls_and_users_hotline_only(
    written: Written,
) -> None:
    """The same number known to hotline A's citizen: A's agent gets its other
    contact and written cases; B's agent, or the administrator on a call to B,
    nothing of A's citizen."""
    config, sessions = written.config, written.sessions
    users = UserStore(sessions)

    def scope(name: str) -> AccessScope:
        user = next(u for u in users.all() if u.username == name)
        return AccessScope.of(user, config)

    number = "+84912000111"
    mine = written_store.citizen_of_caller(sessions, number, scope("dtv-a"), A)
    assert [(c.kind, c.value) for c in mine.contacts] == [("email", "lan@example.vn")]
    codes = {c.code for c in mine.written_cases}
    assert codes == {written.codes["a_sms"], written.codes["a_web"]} == mine.readable_cases
    assert written_store.citizen_of_caller(sessions, number, scope("dtv-b"), B).contacts == []
    assert written_store.citizen_of_caller(sessions, number, scope("dtv-b"), None).contacts == []
    assert written_store.citizen_of_caller(sessions, number, scope("quantri"), B).contacts == []
    everything = written_store.citizen_of_caller(sessions, number, scope("quantri"), None)
    assert {c.code for c in everything.written_cases} == codes
