"""The email channel end to end (issue 14's proof): a real ``hotline serve``
(tests/rig/serve.py) takes a mail with a photo over an ``smtplib`` session, files
it as a case with the attachment, sends its acknowledgement to a local SMTP sink
(aiosmtpd in this test, the server's outgoing SMTP) with the case code in the
subject and the threading headers, and the citizen's reply to that
acknowledgement joins the same case. The same mail delivered twice is one case.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import io
import smtplib
from collections.abc import Iterator
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiosmtpd.controller import Controller
from PIL import Image
from sqlalchemy import func, select

from ivr.cases.models import Case
from ivr.db.engine import make_engine, make_session_factory
from ivr.intake.models import CaseAttachment, CaseMessage
from ivr.sim.polling import wait_for
from tests.rig.serve import port_answers, running_serve, write_serve_config
from tests.rig.stack import free_tcp_port

pytestmark = pytest.mark.db

HOTLINE = "bac-tu-liem"
INBOX = "phananh@bactuliem.gov.vn"
CITIZEN = "nguyen.van.a@example.com"


class Sink:
    """The server's outgoing SMTP: keeps every message (aiosmtpd, a thread)."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self.port = free_tcp_port()
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = email.message_from_bytes(
            bytes(envelope.original_content), policy=email.policy.default
        )
        assert isinstance(parsed, EmailMessage)
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        self.messages.append(parsed)
        return "250 OK"


@pytest.fixture
def sink() -> Iterator[Sink]:
    box = Sink()
    box.controller.start()
    try:
        yield box
    finally:
        box.controller.stop()


def _photo() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 120, 40)).save(buffer, "JPEG")
    return buffer.getvalue()


def _citizen_mail(subject: str, text: str, **headers: str) -> EmailMessage:
    mail = EmailMessage()
    mail["From"] = f"Nguyễn Văn A <{CITIZEN.upper()}>"  # the contact is stored lower-cased
    mail["To"] = INBOX
    mail["Subject"] = subject
    mail["Message-ID"] = make_msgid(domain="example.com")
    for name, value in headers.items():
        mail[name] = value
    mail.set_content(text)
    return mail


def _deliver(port: int, mail: EmailMessage) -> tuple[int, str]:
    """A real SMTP session; (code, text) of the server's answer to the message."""
    with smtplib.SMTP("127.0.0.1", port, local_hostname="mx.example.com", timeout=30) as smtp:
        smtp.ehlo()
        try:
            smtp.send_message(mail)
        except smtplib.SMTPDataError as exc:
            return exc.smtp_code, exc.smtp_error.decode()
        return 250, ""


def _deliver_with_reply(port: int, mail: EmailMessage) -> tuple[int, str]:
    """Like :func:`_deliver`, keeping the 250's text (the case code is in it)."""
    with smtplib.SMTP("127.0.0.1", port, local_hostname="mx.example.com", timeout=30) as smtp:
        smtp.ehlo()
        assert smtp.mail(CITIZEN)[0] == 250
        assert smtp.rcpt(INBOX)[0] == 250
        code, reply = smtp.data(mail.as_bytes(policy=email.policy.SMTP))
        return code, reply.decode()


async def test_a_mail_with_a_photo_becomes_a_case_answered_by_mail_and_the_reply_joins_it(
    tmp_path: Path, sink: Sink
) -> None:
    smtp_port = free_tcp_port()

    def tweak(data: dict[str, Any]) -> None:
        data["email"] = {
            "enabled": True,
            "host": "127.0.0.1",
            "port": sink.port,
            "security": "none",
            "from_address": "hotline@bactuliem.gov.vn",
        }
        data.setdefault("channels", {})["email"] = {
            "enabled": True,
            "listen_host": "127.0.0.1",
            "listen_port": smtp_port,
            "addresses": {INBOX: HOTLINE},
            "message_id_domain": "mail.bactuliem.gov.vn",
        }

    path = write_serve_config(tmp_path, tweak=tweak)
    url = yaml.safe_load(path.read_text(encoding="utf-8"))["database"]["url"]
    async with running_serve(path) as served:
        await wait_for(lambda: port_answers(smtp_port), 30, "the SMTP receiver")

        # 1. A real SMTP session carrying a photo.
        first = _citizen_mail("Rác thải ngõ 12", "Rác ở ngõ 12 Đông Ngạc chưa được thu gom.")
        first.add_attachment(_photo(), maintype="image", subtype="jpeg", filename="ngo12.jpg")
        code, reply = await asyncio.to_thread(_deliver_with_reply, smtp_port, first)
        assert code == 250, f"{reply}\n{served.log}"
        case_code = reply.rsplit(" ", 1)[-1]
        assert case_code.isdigit(), reply

        engine = make_engine(url)
        sessions = make_session_factory(engine)
        with sessions() as session:
            case = session.scalars(select(Case).where(Case.code == case_code)).one()
            assert (case.channel, case.hotline_id) == ("email", HOTLINE)
            [attachment] = session.scalars(
                select(CaseAttachment).where(CaseAttachment.case_id == case.id)
            ).all()
            assert attachment.kind == "image" and attachment.filename == "ngo12.jpg"

        # 2. The acknowledgement reaches the sink, threaded under the citizen's mail.
        await wait_for(lambda: sink.messages, 30, "the acknowledgement at the sink")
        [ack] = sink.messages
        assert sink.envelopes[0] == (INBOX, [CITIZEN])
        assert f"[Mã {case_code}]" in ack["Subject"] and ack["Subject"].startswith("Re: ")
        assert ack["In-Reply-To"] == first["Message-ID"]
        assert first["Message-ID"] in ack["References"].split()
        assert ack["From"].addresses[0].addr_spec == INBOX
        ack_id = ack["Message-ID"]
        assert ack_id.endswith("@mail.bactuliem.gov.vn>")
        with sessions() as session:
            row = session.scalars(
                select(CaseMessage).where(
                    CaseMessage.case_id == case.id, CaseMessage.direction == "out"
                )
            ).one()
            assert (row.status, row.external_id) == ("sent", ack_id)

        # 3. The same mail delivered again (a server that lost our 250): one case.
        code, again = await asyncio.to_thread(_deliver_with_reply, smtp_port, first)
        assert code == 250 and again.endswith(case_code)

        # 4. The citizen answers the acknowledgement: it joins the case.
        answer = _citizen_mail(
            f"Re: {ack['Subject']}",
            "Bổ sung: rác để ở đầu ngõ từ thứ Hai.",
            **{"In-Reply-To": ack_id, "References": f"{first['Message-ID']} {ack_id}"},
        )
        code, joined = await asyncio.to_thread(_deliver_with_reply, smtp_port, answer)
        assert code == 250 and joined.endswith(case_code), joined
        with sessions() as session:
            inbound = session.scalars(
                select(CaseMessage.external_id)
                .where(CaseMessage.case_id == case.id, CaseMessage.direction == "in")
                .order_by(CaseMessage.id)
            ).all()
            assert inbound == [first["Message-ID"], answer["Message-ID"]]
            cases = session.scalar(
                select(func.count()).select_from(Case).where(Case.channel == "email")
            )
            assert cases == 1
        engine.dispose()

        # 5. Mail for an address not configured is refused: not an open relay.
        stray = _citizen_mail("x", "y")
        stray.replace_header("To", "someone@gmail.com")
        with pytest.raises(smtplib.SMTPRecipientsRefused):
            await asyncio.to_thread(_deliver, smtp_port, stray)
