"""The email channel (issue 14) without the intake: its config, the parser that
turns a mail into a Submission, the SMTP receiver against real SMTP sessions
(``smtplib``) with a fake intake, and the reply sender against a local SMTP
sink.

Unit tier: the servers are on the test's loop or a thread of the test process
(aiosmtpd), not programs.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import smtplib
import threading
from collections.abc import AsyncIterator
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiosmtpd.controller import Controller

from ivr.config import ConfigError, load_config
from ivr.config.channels import EmailChannel
from ivr.config.email import EmailSection
from ivr.config.source import ConfigSource
from ivr.contracts.channels import Channel, ContactKind
from ivr.intake.types import IntakeRefused, IntakeResult, OutgoingReply, Submission
from ivr.notify.email import EmailNotSent, EmailSender
from ivr.notify.email_replies import EmailReplySender, references_header, reply_subject
from ivr.notify.mail_intake import MailRefused, html_to_text, parse_mail
from ivr.notify.smtp_receiver import EmailReceiver
from tests.config_checks import line_of
from tests.rig.stack import EXAMPLE, free_tcp_port

HOTLINE = "bac-tu-liem"
INBOX = "phananh@bactuliem.gov.vn"
CITIZEN = "Citizen.Nguyen@Example.com"
DOMAINS = ["bactuliem.gov.vn"]

CHANNEL = f"""channels:
  email:
    enabled: true
    listen_port: 2525
    addresses:
      {INBOX}: {HOTLINE}
      Tiepdan@BacTuLiem.gov.vn: {HOTLINE}
email:
  enabled: true
  host: 127.0.0.1
  security: none
  from_address: hotline@bactuliem.gov.vn
"""


def _config_file(tmp_path: Path, section: str) -> Path:
    path = tmp_path / "hotline.yaml"
    base = EXAMPLE.read_text(encoding="utf-8").rstrip("\n") + "\n"
    path.write_text(base + section, encoding="utf-8")
    return path


def _errors(path: Path) -> str:
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    return str(caught.value)


# --- config -----------------------------------------------------------------------


def test_inbound_addresses_map_to_their_hotline_whatever_the_letter_case(tmp_path: Path) -> None:
    config = load_config(_config_file(tmp_path, CHANNEL))
    section = config.channels.email
    assert section.listen_host == "127.0.0.1"  # loopback unless told otherwise
    assert section.hotline_of("PhanAnh@BACTULIEM.gov.vn") == HOTLINE
    assert section.hotline_of("tiepdan@bactuliem.gov.vn") == HOTLINE
    assert section.hotline_of("other@bactuliem.gov.vn") is None
    assert section.address_of(HOTLINE) == INBOX


def test_an_address_for_an_unknown_hotline_is_refused_at_its_line(tmp_path: Path) -> None:
    path = _config_file(tmp_path, CHANNEL.replace(f"{INBOX}: {HOTLINE}", f"{INBOX}: hai-ba"))
    errors = _errors(path)
    line = line_of(path, f"{INBOX}: hai-ba")
    assert f"{path}:{line}" in errors
    assert f"channels.email.addresses.{INBOX}" in errors
    assert "unknown hotline 'hai-ba'" in errors


@pytest.mark.parametrize(
    "address", ["phananh@localhost", "phan anh@bactuliem.gov.vn", "a,b@bactuliem.gov.vn"]
)
def test_a_malformed_inbound_address_is_refused_at_its_line(tmp_path: Path, address: str) -> None:
    path = _config_file(tmp_path, CHANNEL.replace(INBOX, f'"{address}"'))
    errors = _errors(path)
    assert f"{path}:{line_of(path, address)}" in errors
    assert "channels.email.addresses" in errors


def test_one_address_in_two_letter_cases_for_two_hotlines_is_refused() -> None:
    with pytest.raises(ValueError, match="given twice for different hotlines"):
        EmailChannel(addresses={INBOX: "a", INBOX.upper(): "b"})  # type: ignore[dict-item]


def test_the_receiver_needs_outgoing_email_for_its_answers(tmp_path: Path) -> None:
    path = _config_file(tmp_path, CHANNEL.split("email:\n  enabled: true\n  host")[0])
    errors = _errors(path)
    assert "channels.email.enabled" in errors and "email.enabled" in errors


# --- parsing ----------------------------------------------------------------------


def _mail(
    text: str | None = "Rác thải ở ngõ 12 chưa được thu gom.",
    *,
    html: str | None = None,
    subject: str = "Rác thải ngõ 12",
    sender: str = f"Nguyễn Văn A <{CITIZEN}>",
    message_id: str | None = None,
    headers: dict[str, str] | None = None,
    photo: bytes | None = None,
) -> bytes:
    mail = EmailMessage()
    mail["From"] = sender
    mail["To"] = INBOX
    mail["Subject"] = subject
    mail["Message-ID"] = message_id or make_msgid(domain="example.com")
    for name, value in (headers or {}).items():
        mail[name] = value
    if text is not None:
        mail.set_content(text)
        if html is not None:
            mail.add_alternative(html, subtype="html")
    elif html is not None:
        mail.set_content(html, subtype="html")
    if photo is not None:
        mail.add_attachment(photo, maintype="image", subtype="jpeg", filename="ngo12.jpg")
    return mail.as_bytes(policy=email.policy.SMTP)


PHOTO = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(range(256)) * 4


def test_a_mail_becomes_a_submission_with_its_sender_subject_and_attachment() -> None:
    message_id = "<abc.123@mail.example.com>"
    submission = parse_mail(
        _mail(html="<p>Rác <b>HTML</b></p>", message_id=message_id, photo=PHOTO),
        HOTLINE,
        DOMAINS,
    )
    assert submission.channel is Channel.EMAIL and submission.hotline_id == HOTLINE
    assert submission.contacts == ((ContactKind.EMAIL, CITIZEN.lower()),)
    assert submission.name == "Nguyễn Văn A"
    assert submission.subject == "Rác thải ngõ 12"
    assert submission.text == "Rác thải ở ngõ 12 chưa được thu gom."  # plain preferred
    assert submission.idempotency_key == submission.external_id == message_id
    assert submission.case_code is None
    [photo] = submission.attachments
    assert photo.filename == "ngo12.jpg" and photo.content == PHOTO
    assert photo.declared_type == "image/jpeg"


def test_an_html_only_mail_keeps_its_text_and_no_markup() -> None:
    html = (
        "<html><head><style>p {color: red}</style><title>x</title></head><body>"
        "<p>Đèn đường <b>hỏng</b> &amp; tối</p><script>alert('x')</script>"
        '<div><img src="http://tracker.example/t.gif" onerror="alert(1)">'
        "Gõ &lt;script&gt; vào đây</div></body></html>"
    )
    submission = parse_mail(_mail(None, html=html), HOTLINE, DOMAINS)
    assert submission.text == "Đèn đường hỏng & tối\n\nGõ <script> vào đây"
    assert "alert" not in submission.text and "img" not in submission.text
    assert submission.attachments == ()  # the HTML body is not an attachment


def test_html_to_text_keeps_no_attribute_or_comment() -> None:
    text = html_to_text('<a href="javascript:x()">liên kết</a><!-- secret --><br/>dòng 2')
    assert text == "liên kết\ndòng 2"


def test_a_reply_to_our_message_names_its_case() -> None:
    ours = "<hotline.25071234.r17@bactuliem.gov.vn>"
    submission = parse_mail(
        _mail(subject="Re: Rác thải", headers={"In-Reply-To": ours, "References": ours}),
        HOTLINE,
        DOMAINS,
    )
    assert submission.case_code == "25071234"


def test_a_reference_to_another_domains_lookalike_id_names_no_case() -> None:
    theirs = "<hotline.25071234.r17@attacker.example>"
    submission = parse_mail(_mail(headers={"In-Reply-To": theirs}), HOTLINE, DOMAINS)
    assert submission.case_code is None


@pytest.mark.parametrize(
    "subject",
    [
        "Re: Rác thải [Mã 25071234]",
        "Re: Rác thải [Mã số 25071234]",  # the intake's acknowledgement writes this
        "[ma: 25071234] bổ sung",
        "Fwd: [Case #25071234]",
    ],
)
def test_the_case_code_in_brackets_in_the_subject_names_its_case(subject: str) -> None:
    assert parse_mail(_mail(subject=subject), HOTLINE, DOMAINS).case_code == "25071234"


def test_a_signed_mail_passes_on_its_photo_not_its_signature() -> None:
    mail = EmailMessage()
    mail["From"] = CITIZEN
    mail["Subject"] = "Ký số"
    mail["Message-ID"] = "<signed@example.com>"
    mail.set_content("Nội dung có chữ ký số.")
    mail.add_attachment(PHOTO, maintype="image", subtype="jpeg", filename="a.jpg")
    mail.add_attachment(
        b"0\x82\x01\x00", maintype="application", subtype="pkcs7-signature", filename="smime.p7s"
    )
    mail.add_attachment(b"BEGIN:VCARD\r\nEND:VCARD\r\n", maintype="text", subtype="vcard")
    submission = parse_mail(mail.as_bytes(policy=email.policy.SMTP), HOTLINE, DOMAINS)
    assert [a.filename for a in submission.attachments] == ["a.jpg"]


def test_parts_nested_thousands_deep_are_refused_not_crashed_on() -> None:
    depth = 3000
    head = b"From: a@example.com\r\nSubject: s\r\nMessage-ID: <deep@example.com>\r\n"
    body = b"".join(
        b"Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n" % (n, n)
        for n in range(depth)
    )
    with pytest.raises(MailRefused, match="nested too deeply"):
        parse_mail(head + body + b"Content-Type: text/plain\r\n\r\nx\r\n", HOTLINE, DOMAINS)


def test_a_photo_with_a_subject_only_takes_the_subject_as_its_text() -> None:
    submission = parse_mail(_mail(None, photo=PHOTO, subject="Ổ gà"), HOTLINE, DOMAINS)
    assert submission.text == "Ổ gà" and len(submission.attachments) == 1


def test_a_mail_without_message_id_is_keyed_by_its_content() -> None:
    raw = _mail().replace(b"Message-ID:", b"X-Old-ID:")
    first = parse_mail(raw, HOTLINE, DOMAINS)
    again = parse_mail(raw, HOTLINE, DOMAINS)
    assert first.external_id is None
    assert first.idempotency_key and first.idempotency_key == again.idempotency_key


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        # An encoded word that decodes to CR LF and a Bcc header.
        (
            b"From: a@example.com\r\nSubject: =?utf-8?q?hi=0D=0ABcc:_x@y.com?=\r\n"
            b"Message-ID: <1@example.com>\r\n\r\nbody\r\n",
            "Subject: line breaks",
        ),
        (
            b"From: =?utf-8?q?A=0D=0AB?= <a@example.com>\r\nSubject: s\r\n"
            b"Message-ID: <2@example.com>\r\n\r\nbody\r\n",
            "From: malformed header",
        ),
        (
            b"From: a@example.com, b@example.com\r\nSubject: s\r\n\r\nbody\r\n",
            "From: expected one address",
        ),
        (b"From: not an address\r\nSubject: s\r\n\r\nbody\r\n", "From:"),
        (b"Subject: s\r\n\r\nbody\r\n", "From: one sender"),
        (
            b"From: a@example.com\r\nFrom: b@example.com\r\nSubject: s\r\n\r\nbody\r\n",
            "From: one sender",
        ),
        (
            b"From: a@example.com\r\nSubject: s\r\nMessage-ID: two words\r\n\r\nbody\r\n",
            "Message-ID: expected one",
        ),
    ],
)
def test_hostile_or_malformed_headers_are_refused_with_a_reason(raw: bytes, reason: str) -> None:
    with pytest.raises(MailRefused, match=reason):
        parse_mail(raw, HOTLINE, DOMAINS)


# --- the receiver -----------------------------------------------------------------


class FakeIntake:
    """Files submissions in memory; the same idempotency key gives the first
    case back, as the real intake does."""

    def __init__(self) -> None:
        self.submissions: list[Submission] = []
        self.cases: dict[str, IntakeResult] = {}
        self.fail_next: Exception | None = None

    def submit(self, submission: Submission) -> IntakeResult:
        if self.fail_next is not None:
            error, self.fail_next = self.fail_next, None
            raise error
        self.submissions.append(submission)
        key = submission.idempotency_key or ""
        if key in self.cases:
            first = self.cases[key]
            return IntakeResult(first.case_code, first.case_id, first.message_id, False, True)
        code = submission.case_code or f"2507{len(self.cases) + 1:04d}"
        result = IntakeResult(code, len(self.cases) + 1, len(self.submissions), True)
        self.cases[key] = result
        return result


def _source(**channel: Any) -> ConfigSource:
    config = load_config(EXAMPLE)
    section = EmailChannel(
        enabled=True,
        addresses={INBOX: HOTLINE},
        **channel,  # type: ignore[dict-item]
    )
    channels = config.channels.model_copy(update={"email": section})
    return ConfigSource(config.model_copy(update={"channels": channels}))


@pytest_asyncio.fixture
async def receiver() -> AsyncIterator[tuple[EmailReceiver, FakeIntake]]:
    intake = FakeIntake()
    server = EmailReceiver(_source(max_message_bytes=64 * 1024), intake, port=free_tcp_port())
    await server.start()
    try:
        yield server, intake
    finally:
        await server.close()


def _session(port: int) -> smtplib.SMTP:
    return smtplib.SMTP("127.0.0.1", port, local_hostname="client.example", timeout=10)


def _send(port: int, raw: bytes, to: str = INBOX, sender: str = CITIZEN) -> tuple[int, str]:
    """One SMTP transaction; (code, text) of the reply to DATA."""
    with _session(port) as smtp:
        smtp.ehlo()
        code, text = smtp.mail(sender)
        assert code == 250, text
        code, text = smtp.rcpt(to)
        assert code == 250, text
        code, reply = smtp.data(raw)
        return code, reply.decode()


async def test_a_mail_to_a_hotline_address_is_filed_and_answered_with_its_case(
    receiver: tuple[EmailReceiver, FakeIntake],
) -> None:
    server, intake = receiver
    raw = _mail(photo=PHOTO)
    code, reply = await asyncio.to_thread(_send, server.port, raw, INBOX.upper())
    assert (code, reply) == (250, "2.0.0 filed as case 25070001")
    [submission] = intake.submissions
    assert submission.hotline_id == HOTLINE and submission.attachments[0].content == PHOTO
    # Delivered again (a server that lost our 250): the same key, the same case.
    assert await asyncio.to_thread(_send, server.port, raw) == (250, "2.0.0 filed as case 25070001")
    assert len(intake.cases) == 1


async def test_the_receiver_is_not_a_relay(receiver: tuple[EmailReceiver, FakeIntake]) -> None:
    server, intake = receiver

    def attempt() -> list[tuple[int, bytes]]:
        with _session(server.port) as smtp:
            smtp.ehlo()
            smtp.mail(CITIZEN)
            return [
                smtp.rcpt("someone@gmail.com"),
                smtp.rcpt("other@bactuliem.gov.vn"),
                smtp.rcpt("not an address"),
            ]

    outside, unknown, malformed = await asyncio.to_thread(attempt)
    assert outside[0] == 550 and unknown[0] == 550
    assert malformed[0] in (501, 553)
    assert intake.submissions == []


async def test_an_oversized_mail_gets_552_and_files_nothing(
    receiver: tuple[EmailReceiver, FakeIntake],
) -> None:
    server, intake = receiver
    raw = _mail(photo=PHOTO * 100)  # ~100 kB against a 64 kB limit
    code, reply = await asyncio.to_thread(_send, server.port, raw)
    assert code == 552, reply
    assert intake.submissions == []


async def test_header_injection_gets_554_with_the_reason_and_files_nothing(
    receiver: tuple[EmailReceiver, FakeIntake],
) -> None:
    server, intake = receiver
    raw = (
        f"From: {CITIZEN}\r\nTo: {INBOX}\r\nSubject: =?utf-8?q?x=0D=0ABcc:_a@b.com?=\r\n"
        "Message-ID: <inj@example.com>\r\n\r\nbody\r\n"
    ).encode()
    code, reply = await asyncio.to_thread(_send, server.port, raw)
    assert code == 554 and "Subject: line breaks" in reply
    assert intake.submissions == []


async def test_the_intakes_refusal_reaches_the_sender_in_ascii(
    receiver: tuple[EmailReceiver, FakeIntake],
) -> None:
    server, intake = receiver
    intake.fail_next = IntakeRefused("Tệp đính kèm quá lớn", field="attachments")
    code, reply = await asyncio.to_thread(_send, server.port, _mail())
    assert (code, reply) == (554, "5.6.0 attachments: Tep dinh kem qua lon")


async def test_a_crash_while_filing_gets_451_and_the_server_keeps_taking_mail(
    receiver: tuple[EmailReceiver, FakeIntake], caplog: pytest.LogCaptureFixture
) -> None:
    server, intake = receiver
    intake.fail_next = RuntimeError("database is locked")
    raw = _mail()
    code, reply = await asyncio.to_thread(_send, server.port, raw)
    assert code == 451 and "try again later" in reply
    assert "could not be filed" in caplog.text and "database is locked" in caplog.text
    # The sending server retries the same mail later: it is filed then.
    assert (await asyncio.to_thread(_send, server.port, raw))[0] == 250
    assert len(intake.submissions) == 1


async def test_bounces_and_auto_replies_are_taken_but_not_filed(
    receiver: tuple[EmailReceiver, FakeIntake],
) -> None:
    server, intake = receiver
    code, _ = await asyncio.to_thread(_send, server.port, _mail(), INBOX, "")
    assert code == 250
    auto = _mail(headers={"Auto-Submitted": "auto-replied"})
    code, _ = await asyncio.to_thread(_send, server.port, auto)
    assert code == 250
    assert intake.submissions == []


async def test_a_second_hotlines_address_waits_for_its_own_transaction() -> None:
    intake = FakeIntake()
    config = load_config(EXAMPLE)
    section = EmailChannel(
        enabled=True,
        addresses={INBOX: HOTLINE, "hotline@khac.gov.vn": "khac"},  # type: ignore[dict-item]
    )
    source = ConfigSource(
        config.model_copy(
            update={"channels": config.channels.model_copy(update={"email": section})}
        )
    )
    server = EmailReceiver(source, intake, port=free_tcp_port())
    await server.start()
    try:

        def attempt() -> tuple[int, int]:
            with _session(server.port) as smtp:
                smtp.ehlo()
                smtp.mail(CITIZEN)
                return smtp.rcpt(INBOX)[0], smtp.rcpt("hotline@khac.gov.vn")[0]

        assert await asyncio.to_thread(attempt) == (250, 452)
    finally:
        await server.close()


# --- replies ----------------------------------------------------------------------


class Sink:
    """A local SMTP server keeping what it receives (aiosmtpd in a thread)."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], bytes]] = []
        self.arrived = threading.Event()
        self.port = free_tcp_port()
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(
            (envelope.mail_from, list(envelope.rcpt_tos), bytes(envelope.original_content))
        )
        self.arrived.set()
        return "250 OK"


@pytest.fixture
def sink() -> Any:
    box = Sink()
    box.controller.start()
    try:
        yield box
    finally:
        box.controller.stop()


def _reply(**changes: Any) -> OutgoingReply:
    values: dict[str, Any] = {
        "message_id": 42,
        "case_code": "25071234",
        "hotline_id": HOTLINE,
        "channel": Channel.EMAIL,
        "to": CITIZEN.lower(),
        "subject": "Rác thải ngõ 12",
        "text": "Đường dây nóng đã nhận phản ánh của ông/bà, mã 25071234.",
        "in_reply_to": "<first@example.com>",
        "references": ("<first@example.com>",),
    }
    return OutgoingReply(**{**values, **changes})


def _outgoing(port: int) -> EmailSection:
    return EmailSection(
        enabled=True,
        host="127.0.0.1",
        port=port,
        security="none",
        from_address="hotline@bactuliem.gov.vn",  # type: ignore[arg-type]
    )


async def test_an_answer_threads_under_the_citizens_mail_with_the_code_in_its_subject(
    sink: Sink,
) -> None:
    source = _source(message_id_domain="mail.bactuliem.gov.vn")
    sender = EmailReplySender(source, EmailSender(_outgoing(sink.port)))
    assert sender.channel is Channel.EMAIL
    message_id = await sender.send(_reply())
    assert message_id == "<hotline.25071234.r42@mail.bactuliem.gov.vn>"
    [(mail_from, rcpt, raw)] = sink.messages
    assert mail_from == INBOX and rcpt == [CITIZEN.lower()]  # from the hotline's address
    mail = email.message_from_bytes(raw, policy=email.policy.default)
    assert mail["Subject"] == "Re: Rác thải ngõ 12 [Mã 25071234]"
    assert mail["Message-ID"] == message_id
    assert mail["In-Reply-To"] == "<first@example.com>"
    assert mail["References"] == "<first@example.com>"
    assert mail["From"].addresses[0].addr_spec == INBOX
    assert mail["X-Hotline-Case"] == "25071234"
    # The citizen's answer to it names the case, whatever their client does to the subject.
    reply = _mail(subject="Trả lời: cảm ơn", headers={"In-Reply-To": message_id})
    assert parse_mail(reply, HOTLINE, ["mail.bactuliem.gov.vn"]).case_code == "25071234"


def test_the_subject_carries_one_re_and_one_code() -> None:
    assert reply_subject("Re: RE: Rác [Mã 25071234]", "25071234") == "Re: Rác [Mã 25071234]"
    assert reply_subject("", "25071234") == "Re: [Mã 25071234]"
    assert reply_subject("Re: Rác [Mã số 25071234]", "25071234") == "Re: Rác [Mã 25071234]"
    long = reply_subject("x" * 500, "25071234")
    assert len(long) <= 400 and long.endswith("… [Mã 25071234]")


def test_references_keep_the_first_and_the_latest_ids_that_fit() -> None:
    ids = tuple(f"<{n:04d}.{'x' * 40}@example.com>" for n in range(40))
    header = references_header("<new@example.com>", ids)
    assert len(header) <= 900
    parts = header.split()
    assert parts[0] == ids[0] and parts[-1] == "<new@example.com>"
    assert references_header(None, ("bad id", "<a@b.c>")) == "<a@b.c>"


async def test_an_answer_with_email_off_raises_so_the_dispatcher_keeps_it() -> None:
    sender = EmailReplySender(_source(), None)
    with pytest.raises(EmailNotSent, match=r"email\.enabled is off"):
        await sender.send(_reply())


async def test_a_refused_answer_raises_for_the_dispatcher_to_record(sink: Sink) -> None:
    sender = EmailReplySender(_source(), EmailSender(_outgoing(free_tcp_port())))  # nobody there
    with pytest.raises(EmailNotSent) as caught:
        await sender.send(_reply())
    assert caught.value.temporary
    assert sink.messages == []
