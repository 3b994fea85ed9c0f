"""Answers reach the citizen on the channel they wrote on (issue 14): an email
or Zalo case gets its acknowledgement and answer as outbound rows of its
thread, written with the change, delivered by the dispatcher through the
channel's sender with the threading ids; phone cases keep the SMS outbox.

Runs on SQLite, and on PostgreSQL with HOTLINE_TEST_DB=postgresql."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from ivr.cases.forwarding import ForwardingService
from ivr.cases.models import SmsMessage
from ivr.contracts.channels import Channel, ContactKind, MessageDirection
from ivr.intake.models import CaseMessage
from ivr.intake.replies import CLAIM, ReplyDispatcher, backoff
from ivr.intake.types import OutgoingReply, Submission
from tests.test_intake import EMAIL, NOW, PHONE, ZALO, Rig, build_rig
from tests.test_tenancy import A

pytestmark = pytest.mark.db


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    built = build_rig(tmp_path)
    yield built
    built.engine.dispose()


class FakeSender:
    def __init__(self, channel: Channel, fail: bool = False) -> None:
        self.channel = channel
        self.fail = fail
        self.sent: list[OutgoingReply] = []

    async def send(self, reply: OutgoingReply) -> str | None:
        if self.fail:
            raise ConnectionRefusedError("relay down")
        self.sent.append(reply)
        return f"<reply-{len(self.sent)}@hotline.example>"


def outbound(rig: Rig, case_id: int) -> list[CaseMessage]:
    with rig.sessions() as session:
        return list(
            session.scalars(
                select(CaseMessage)
                .where(
                    CaseMessage.case_id == case_id,
                    CaseMessage.direction == MessageDirection.OUTBOUND,
                )
                .order_by(CaseMessage.id)
            )
        )


def mail(rig: Rig, text: str, message_id: str, **fields: Any) -> Any:
    return rig.intake.submit(
        Submission(hotline_id=A, channel=Channel.EMAIL, text=text, subject="Cống tắc ở ngõ 5",
                   contacts=((ContactKind.EMAIL, EMAIL),), external_id=message_id, **fields)
    )  # fmt: skip


def test_an_email_case_is_acknowledged_and_answered_on_its_thread(rig: Rig) -> None:
    sender = FakeSender(Channel.EMAIL)
    dispatcher = ReplyDispatcher(rig.sessions, {Channel.EMAIL: sender}, clock=lambda: NOW)
    first = mail(rig, "Cống tắc đã một tuần.", "<m1@example.vn>")
    [ack] = outbound(rig, first.case_id)
    assert (ack.purpose, ack.to, ack.status) == ("case_opened", EMAIL, "pending")
    assert first.case_code in ack.text and first.case_code in ack.subject
    assert asyncio.run(dispatcher.run_once()).sent == 1
    [ack_sent] = sender.sent
    assert (ack_sent.in_reply_to, ack_sent.references) == ("<m1@example.vn>", ("<m1@example.vn>",))

    # The citizen's reply joins the case; the answer is queued with the change.
    mail(rig, "Có ảnh kèm theo.", "<m2@example.vn>", case_code=first.case_code)
    rig.cases.change_status(first.case_code, "in_progress", "agent01")
    rig.cases.change_status(first.case_code, "answered", "agent01", note="Đã nạo vét cống.")
    answer = outbound(rig, first.case_id)[-1]
    assert (answer.purpose, answer.to, answer.text) == ("case_answered", EMAIL, "Đã nạo vét cống.")
    assert answer.status == "pending"
    with rig.sessions() as session:  # no number given: no SMS
        assert session.scalars(select(SmsMessage)).all() == []

    run = asyncio.run(dispatcher.run_once())
    assert (run.sent, run.failed) == (1, 0)
    answer_sent = sender.sent[-1]
    assert answer_sent.case_code == first.case_code and answer_sent.to == EMAIL
    assert first.case_code in answer_sent.subject
    assert answer_sent.in_reply_to == "<m2@example.vn>"
    assert answer_sent.references == (
        "<m1@example.vn>", "<reply-1@hotline.example>", "<m2@example.vn>"
    )  # fmt: skip
    rows = outbound(rig, first.case_id)
    assert [(r.status, r.attempts, r.sent_at) for r in rows] == [("sent", 1, NOW)] * 2
    assert rows[1].external_id == "<reply-2@hotline.example>"
    # Sent once: a further pass has nothing to do.
    assert asyncio.run(dispatcher.run_once()).sent == 0


def test_a_failed_send_is_retried_later_then_given_up(rig: Rig) -> None:
    result = mail(rig, "Đèn hỏng", "<m1@example.vn>")
    now = [NOW]
    dispatcher = ReplyDispatcher(
        rig.sessions, {Channel.EMAIL: FakeSender(Channel.EMAIL, fail=True)},
        clock=lambda: now[0], max_attempts=2,
    )  # fmt: skip
    assert asyncio.run(dispatcher.run_once()).retrying == 1
    [row] = outbound(rig, result.case_id)
    assert (row.status, row.attempts, row.next_attempt_at) == ("pending", 1, NOW + backoff(1))
    assert "relay down" in row.error
    assert asyncio.run(dispatcher.run_once()).retrying == 0  # not due yet
    now[0] = NOW + timedelta(minutes=1)
    assert asyncio.run(dispatcher.run_once()).failed == 1
    [row] = outbound(rig, result.case_id)
    assert (row.status, row.attempts) == ("failed", 2)
    assert [backoff(n).total_seconds() for n in (1, 2, 3, 20)] == [30, 60, 120, 3600]


def test_rows_of_a_channel_without_a_sender_wait(rig: Rig) -> None:
    result = mail(rig, "Đèn hỏng", "<m1@example.vn>")
    dispatcher = ReplyDispatcher(rig.sessions, {Channel.ZALO: FakeSender(Channel.ZALO)})
    assert asyncio.run(dispatcher.run_once()).sent == 0
    assert [r.status for r in outbound(rig, result.case_id)] == ["pending"]


def test_the_final_answer_of_a_forwarded_zalo_case_goes_back_on_zalo(rig: Rig) -> None:
    result = rig.intake.submit(
        Submission(hotline_id=A, channel=Channel.ZALO, text="Cây đổ chắn đường",
                   contacts=((ContactKind.ZALO, ZALO), (ContactKind.PHONE, PHONE)),
                   external_id="zalo-msg-1")
    )  # fmt: skip
    forwarding = ForwardingService(rig.sessions, rig.config, cases=rig.cases, clock=lambda: NOW)
    rig.cases.change_status(result.case_code, "in_progress", "agent01")
    forwarding.approve_final_answer(result.case_code, "Đã dọn cây.", "supervisor01")
    rows = outbound(rig, result.case_id)
    assert [(r.purpose, r.to, r.channel) for r in rows] == [
        ("case_opened", ZALO, "zalo"),
        ("case_answered", ZALO, "zalo"),
    ]
    sender = FakeSender(Channel.ZALO)
    asyncio.run(ReplyDispatcher(rig.sessions, {Channel.ZALO: sender}).run_once())
    assert [r.text for r in sender.sent][-1] == "Đã dọn cây."
    assert sender.sent[-1].in_reply_to == "zalo-msg-1"
    # They gave a number too: the SMS path as for phone cases.
    with rig.sessions() as session:
        purposes = [m.purpose for m in session.scalars(select(SmsMessage).order_by(SmsMessage.id))]
    assert purposes == ["case_opened", "case_answered"]


def test_a_phone_case_is_answered_by_sms_only(rig: Rig) -> None:
    case = rig.cases.open_case(channel="phone", hotline_id=A, caller_number=PHONE)
    rig.cases.change_status(case.code, "in_progress", "agent01")
    rig.cases.change_status(case.code, "answered", "agent01", note="Đã xử lý.")
    assert outbound(rig, case.id) == []
    with rig.sessions() as session:
        purposes = [m.purpose for m in session.scalars(select(SmsMessage).order_by(SmsMessage.id))]
    assert purposes == ["case_opened", "case_answered"]


def test_two_dispatchers_at_once_send_each_row_once(rig: Rig) -> None:
    cases = [mail(rig, f"Phản ánh {n}", f"<m{n}@example.vn>").case_id for n in range(6)]
    sender = FakeSender(Channel.EMAIL)

    async def both() -> None:
        first = ReplyDispatcher(rig.sessions, {Channel.EMAIL: sender}, clock=lambda: NOW)
        second = ReplyDispatcher(rig.sessions, {Channel.EMAIL: sender}, clock=lambda: NOW)
        await asyncio.gather(first.run_once(), second.run_once())

    asyncio.run(both())
    assert sorted(r.message_id for r in sender.sent) == sorted(
        outbound(rig, case_id)[0].id for case_id in cases
    )


def test_the_intake_wakes_the_dispatcher_after_its_commit(rig: Rig) -> None:
    seen: list[int] = []

    def wake() -> None:  # runs after the commit: the row is there to read
        with rig.sessions() as session:
            seen.append(len(session.scalars(select(CaseMessage.id).where(
                CaseMessage.direction == MessageDirection.OUTBOUND)).all()))  # fmt: skip

    rig.intake.on_outbound = wake
    mail(rig, "Đèn hỏng", "<m1@example.vn>")
    rig.intake.submit(Submission(hotline_id=A, channel=Channel.WEB, text="Không cần trả lời"))
    assert seen == [1]  # the web form's code is shown, nothing queued: no wake


def test_a_row_claimed_by_one_dispatcher_is_left_alone_by_another(rig: Rig) -> None:
    result = mail(rig, "Đèn hỏng", "<m1@example.vn>")
    first = ReplyDispatcher(rig.sessions, {Channel.EMAIL: FakeSender(Channel.EMAIL)},
                            clock=lambda: NOW)  # fmt: skip
    [claimed] = first._claim()  # the first is sending it (a slow relay, say)
    other = FakeSender(Channel.EMAIL)
    second = ReplyDispatcher(rig.sessions, {Channel.EMAIL: other}, clock=lambda: NOW)
    assert asyncio.run(second.run_once()).sent == 0 and other.sent == []
    # A dispatcher that died with its claim: the row is sent once the claim expires.
    late = ReplyDispatcher(rig.sessions, {Channel.EMAIL: other}, clock=lambda: NOW + CLAIM)
    assert asyncio.run(late.run_once()).sent == 1
    assert [r.message_id for r in other.sent] == [claimed.message_id]
    assert outbound(rig, result.case_id)[0].status == "sent"
