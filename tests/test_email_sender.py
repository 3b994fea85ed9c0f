"""The email sender against a real SMTP server (aiosmtpd, in this process on
127.0.0.1): what arrives, what is refused before anything is sent, and the
outbox that keeps mail while the server is down.

Unit tier: the server is a thread of the test process, not a program (as the
console's tests run aiohttp's test server)."""

from __future__ import annotations

import asyncio
import email
import email.policy
import json
import logging
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from ivr.config import load_config
from ivr.config.email import EmailSection
from ivr.notify.email import (
    EmailNotSent,
    EmailOutbox,
    EmailSender,
    OutgoingEmail,
    UnsafeEmail,
    sender_from_config,
)
from tests.rig.stack import EXAMPLE, free_tcp_port

# aiosmtpd warns about AUTH without TLS: the login tests run in clear on loopback,
# as the config allows only there.
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")

SENDER = "hotline@bactuliem.gov.vn"
UNIT = "ubnd.dongngac@hanoi.gov.vn"
SUBJECT = "Phản ánh 25071234: đề nghị UBND phường Đông Ngạc xử lý"
TEXT = "Kính gửi UBND phường Đông Ngạc,\nĐề nghị xử lý phản ánh về rác thải tại ngõ 12.\n"
PASSWORD = "p@ss w0rd#Hanoi"
START = datetime(2026, 11, 30, 2, 0, tzinfo=UTC)


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    raw: bytes
    login: bytes | None


@dataclass
class Mailbox:
    """An aiosmtpd handler that keeps what it was given."""

    received: list[Received] = field(default_factory=list)
    sessions: int = 0  # EHLOs seen: a connection that got as far as talking
    refuse_rcpt: str | None = None  # an SMTP reply to every RCPT, e.g. "550 …"
    arrived: threading.Event = field(default_factory=threading.Event)  # a message was taken

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        self.sessions += 1
        session.host_name = hostname
        return responses

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        if self.refuse_rcpt:
            return self.refuse_rcpt
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        raw = bytes(envelope.original_content or envelope.content)
        parsed = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        login = session.auth_data.login if isinstance(session.auth_data, LoginPassword) else None
        self.received.append(
            Received(envelope.mail_from, list(envelope.rcpt_tos), parsed, raw, login)
        )
        self.arrived.set()
        return "250 Message accepted for delivery"


class SmtpServer:
    """aiosmtpd on 127.0.0.1:``port``; with ``users`` it requires AUTH (in clear:
    the test has no certificate; the config allows that only to a loopback host)."""

    def __init__(self, port: int, users: dict[str, str] | None = None) -> None:
        self.mailbox = Mailbox()
        self.users = users
        kwargs: dict[str, Any] = {}
        if users is not None:
            kwargs = {
                "auth_required": True,
                "auth_require_tls": False,
                "authenticator": self._authenticate,
            }
        self.controller = Controller(self.mailbox, hostname="127.0.0.1", port=port, **kwargs)

    def _authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any
    ) -> AuthResult:
        assert self.users is not None
        ok = isinstance(data, LoginPassword) and self.users.get(
            data.login.decode("utf-8")
        ) == data.password.decode("utf-8")
        return AuthResult(success=ok, handled=False, auth_data=data)

    def __enter__(self) -> SmtpServer:
        self.controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


def _settings(port: int, **changes: Any) -> EmailSection:
    values: dict[str, Any] = {
        "enabled": True,
        "host": "127.0.0.1",
        "port": port,
        "security": "none",
        "from_address": SENDER,
        "from_name": "Đường dây nóng Bắc Từ Liêm",
        "timeout_seconds": 5,
        "retry_first_seconds": 60,
        "retry_max_seconds": 600,
        **changes,
    }
    return EmailSection.model_validate(values)


@pytest.fixture
def port() -> int:
    return free_tcp_port()


@pytest.fixture
def server(port: int) -> Iterator[SmtpServer]:
    with SmtpServer(port) as running:
        yield running


@pytest.fixture
def clock() -> Clock:
    return Clock()


def _sender(port: int, tmp_path: Path, clock: Clock, **changes: Any) -> EmailSender:
    outbox = EmailOutbox(tmp_path / "var" / "email-outbox.jsonl")
    return EmailSender(_settings(port, **changes), outbox, clock=clock)


def _unit_notice(**changes: Any) -> OutgoingEmail:
    values: dict[str, Any] = {
        "to": UNIT,
        "subject": SUBJECT,
        "text": TEXT,
        "headers": {"X-Hotline-Case": "25071234"},
        **changes,
    }
    return OutgoingEmail(**values)


async def test_a_notice_arrives_with_its_vietnamese_subject_sender_and_body(
    server: SmtpServer, port: int, tmp_path: Path, clock: Clock
) -> None:
    sender = _sender(port, tmp_path, clock, reply_to="tiepdan@bactuliem.gov.vn")
    await sender.send(_unit_notice())

    (got,) = server.mailbox.received
    assert got.mail_from == SENDER and got.rcpt_tos == [UNIT]
    message = got.message
    assert message["Subject"] == SUBJECT  # decoded from RFC 2047
    assert b"=?utf-8?" in got.raw.split(b"\r\n\r\n")[0]  # headers stay ASCII on the wire
    assert message["From"].addresses[0].display_name == "Đường dây nóng Bắc Từ Liêm"
    assert message["From"].addresses[0].addr_spec == SENDER
    assert message["To"] == UNIT
    assert message["Reply-To"] == "tiepdan@bactuliem.gov.vn"
    assert message["X-Hotline-Case"] == "25071234"
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["Message-ID"].startswith("<") and message["Message-ID"].endswith(
        "@bactuliem.gov.vn>"
    )
    assert message["Date"].datetime == START
    assert message.get_content_type() == "text/plain"
    assert message.get_content_charset() == "utf-8"
    assert message.get_content().replace("\r\n", "\n") == TEXT  # CRLF on the wire
    assert all(byte < 128 for byte in got.raw)  # 7-bit: no 8BITMIME needed
    assert not (tmp_path / "var" / "email-outbox.jsonl").exists()


async def test_login_with_username_and_password(port: int, tmp_path: Path, clock: Clock) -> None:
    with SmtpServer(port, users={"hotline": PASSWORD}) as server:
        sender = _sender(port, tmp_path, clock, username="hotline", password=PASSWORD)
        await sender.send(_unit_notice())
    (got,) = server.mailbox.received
    assert got.login == b"hotline"


async def test_a_refused_login_keeps_the_mail_and_never_logs_the_password(
    port: int, tmp_path: Path, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with SmtpServer(port, users={"hotline": "another password"}) as server:
        sender = _sender(port, tmp_path, clock, username="hotline", password=PASSWORD)
        await sender.send(_unit_notice())
        assert server.mailbox.received == []
    (queued,) = sender.outbox.items()  # type: ignore[union-attr]
    assert "refused the login" in queued.last_error and "535" in queued.last_error
    assert "refused the login" in caplog.text
    assert PASSWORD not in caplog.text
    assert PASSWORD not in (tmp_path / "var" / "email-outbox.jsonl").read_text(encoding="utf-8")


def test_a_server_without_starttls_gets_no_mail_in_clear(port: int, tmp_path: Path) -> None:
    async def attempt() -> str:
        sender = EmailSender(_settings(port, security="starttls"))
        with pytest.raises(EmailNotSent) as caught:
            await sender.send(_unit_notice())
        return str(caught.value)

    with SmtpServer(port) as server:
        error = asyncio.run(attempt())
        assert server.mailbox.received == []
    assert "STARTTLS" in error


@pytest.mark.parametrize(
    "unsafe",
    [
        {"subject": "Phản ánh\r\nBcc: spy@evil.example"},
        {"subject": "Phản ánh\nX-Injected: 1"},
        {"to": "ubnd@hanoi.gov.vn\r\nBcc: spy@evil.example"},
        {"to": "ubnd@hanoi.gov.vn, spy@evil.example"},
        {"to": "Tiếp dân <ubnd@hanoi.gov.vn>"},
        {"reply_to": "a@b.vn\nBcc: spy@evil.example"},
        {"headers": {"X-Hotline-Case": "1\r\nBcc: spy@evil.example"}},
        {"headers": {"X-Hotline-Case\r\nBcc": "spy@evil.example"}},
        {"headers": {"X-Bad Name": "1"}},
        {"headers": {"Bcc": "spy@evil.example"}},
        {"headers": {"from": "director@hanoi.gov.vn"}},
    ],
)
async def test_header_injection_is_refused_and_nothing_is_sent(
    server: SmtpServer, port: int, tmp_path: Path, clock: Clock, unsafe: dict[str, Any]
) -> None:
    sender = _sender(port, tmp_path, clock)
    with pytest.raises(UnsafeEmail):
        await sender.send(_unit_notice(**unsafe))
    assert server.mailbox.sessions == 0  # not even connected
    assert server.mailbox.received == []
    assert sender.outbox.items() == []  # type: ignore[union-attr]


async def test_a_recipient_refused_for_good_raises_and_is_not_queued(
    server: SmtpServer, port: int, tmp_path: Path, clock: Clock
) -> None:
    server.mailbox.refuse_rcpt = "550 5.1.1 No such mailbox"
    sender = _sender(port, tmp_path, clock)
    with pytest.raises(EmailNotSent) as caught:
        await sender.send(_unit_notice())
    assert caught.value.temporary is False
    assert "550" in str(caught.value) and UNIT in str(caught.value)
    assert sender.outbox.items() == []  # type: ignore[union-attr]


async def test_mail_waits_while_the_server_is_down_and_goes_when_it_is_back(
    port: int, tmp_path: Path, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    sender = _sender(port, tmp_path, clock)
    await sender.send(_unit_notice())  # nothing listens on the port: queued, no error
    assert "kept in the outbox" in caplog.text
    (queued,) = sender.outbox.items()  # type: ignore[union-attr]
    assert queued.attempts == 1 and queued.next_attempt_at == START + timedelta(seconds=60)
    assert "ConnectionRefused" in queued.last_error

    with SmtpServer(port) as server:
        clock.now = START + timedelta(seconds=59)
        assert await sender.retry_outbox() == 0  # back-off: not yet
        assert server.mailbox.received == []

        clock.now = START + timedelta(seconds=60)
        assert await sender.retry_outbox() == 1
        (got,) = server.mailbox.received
        assert got.message["Subject"] == SUBJECT
        assert got.message["Message-ID"] == queued.message_id  # the same message, late
        assert got.message["Date"].datetime == START  # dated when it was written
        assert sender.outbox.items() == []  # type: ignore[union-attr]

        assert await sender.retry_outbox() == 0  # sent once only
        assert len(server.mailbox.received) == 1


async def test_retries_back_off_and_give_up_into_the_failed_file(
    port: int, tmp_path: Path, clock: Clock
) -> None:
    sender = _sender(port, tmp_path, clock, give_up_hours=1)
    await sender.send(_unit_notice())
    outbox = sender.outbox
    assert outbox is not None
    waits = []
    for _ in range(4):
        (queued,) = outbox.items()
        waits.append(queued.next_attempt_at - clock.now)
        clock.now = queued.next_attempt_at
        assert await sender.retry_outbox() == 0  # still down
    # 60 s, then doubling, capped at retry_max_seconds (600 s).
    assert waits == [timedelta(seconds=s) for s in (60, 120, 240, 480)]
    (queued,) = outbox.items()
    assert queued.attempts == 5 and queued.next_attempt_at - clock.now == timedelta(seconds=600)

    clock.now = START + timedelta(hours=1)
    assert await sender.retry_outbox() == 0
    assert outbox.items() == []
    (failed,) = outbox.failed_path.read_text(encoding="utf-8").splitlines()
    assert json.loads(failed)["subject"] == SUBJECT


async def test_mail_added_during_a_retry_is_kept(port: int, tmp_path: Path, clock: Clock) -> None:
    sender = _sender(port, tmp_path, clock)
    await sender.send(_unit_notice(subject="Phản ánh thứ nhất"))
    outbox = sender.outbox
    assert outbox is not None
    clock.now = START + timedelta(minutes=5)
    original = sender.deliver

    async def deliver_while_another_arrives(message: OutgoingEmail, **kwargs: Any) -> None:
        sender.deliver = original  # type: ignore[method-assign]
        await sender.send(_unit_notice(subject="Phản ánh thứ hai"))  # also queued
        await original(message, **kwargs)

    sender.deliver = deliver_while_another_arrives  # type: ignore[method-assign]
    assert await sender.retry_outbox() == 0  # still down: both wait
    attempts = {q.message.subject: q.attempts for q in outbox.items()}
    assert attempts == {"Phản ánh thứ nhất": 2, "Phản ánh thứ hai": 1}


async def test_the_event_loop_runs_while_the_server_is_slow(tmp_path: Path, clock: Clock) -> None:
    """A server that accepts the connection and says nothing: the send waits in
    its worker thread while the loop goes on, then times out into the outbox."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    loop = asyncio.get_running_loop()
    connected = asyncio.Event()
    release = threading.Event()

    def accept_and_stay_silent() -> None:
        conn, _ = listener.accept()
        loop.call_soon_threadsafe(connected.set)
        release.wait(30)
        conn.close()

    thread = threading.Thread(target=accept_and_stay_silent, daemon=True)
    thread.start()
    try:
        sender = _sender(port, tmp_path, clock, timeout_seconds=30)
        sending = asyncio.create_task(sender.send(_unit_notice()))
        await asyncio.wait_for(connected.wait(), 10)  # the loop is free meanwhile
        assert not sending.done()
        release.set()  # the server hangs up without a greeting
        await asyncio.wait_for(sending, 10)
    finally:
        release.set()
        thread.join(5)
        listener.close()
    (queued,) = sender.outbox.items()  # type: ignore[union-attr]
    assert "SMTPServerDisconnected" in queued.last_error


async def test_a_silent_server_times_out_into_the_outbox(tmp_path: Path, clock: Clock) -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:  # never answers
        sender = _sender(listener.getsockname()[1], tmp_path, clock, timeout_seconds=0.2)
        await sender.send(_unit_notice())
    (queued,) = sender.outbox.items()  # type: ignore[union-attr]
    assert "timed out" in queued.last_error


async def test_email_off_sends_nothing(
    server: SmtpServer, port: int, tmp_path: Path, clock: Clock
) -> None:
    sender = _sender(port, tmp_path, clock, enabled=False)
    await sender.send(_unit_notice())
    assert server.mailbox.sessions == 0
    with pytest.raises(UnsafeEmail):  # still checked: a bug shows before email is on
        await sender.send(_unit_notice(subject="a\nb"))


def test_the_outbox_file_is_private(tmp_path: Path, port: int, clock: Clock) -> None:
    sender = _sender(port, tmp_path, clock)
    asyncio.run(sender.send(_unit_notice()))
    assert (tmp_path / "var" / "email-outbox.jsonl").stat().st_mode & 0o077 == 0


async def test_started_the_sender_retries_its_outbox_until_closed(
    port: int, tmp_path: Path, clock: Clock
) -> None:
    sender = _sender(port, tmp_path, clock)
    await sender.send(_unit_notice())  # down: queued for a minute later
    clock.now = START + timedelta(minutes=1)
    with SmtpServer(port) as server:
        sender.start()
        try:
            assert await asyncio.to_thread(server.mailbox.arrived.wait, 10)
        finally:
            await sender.close()
        assert len(server.mailbox.received) == 1
    assert sender.outbox.items() == []  # type: ignore[union-attr]


def test_from_config_only_when_email_is_on(tmp_path: Path) -> None:
    config = load_config(EXAMPLE)
    assert sender_from_config(config) is None
    on = config.model_copy(update={"email": _settings(25, outbox_path=Path("../var/mail.jsonl"))})
    sender = sender_from_config(on)
    assert sender is not None and sender.outbox is not None
    assert sender.outbox.path == on.resolve_path(Path("../var/mail.jsonl"))
