"""Outgoing mail over TLS (issue 13's untested gap, closed in issue 14): STARTTLS
and implicit TLS to a local aiosmtpd whose certificate a test CA signed, with
verification on; the wrong CA fails with a clear error kept on the outbox's line.

The CAs and the certificate are made with the ``openssl`` command (so these
tests are integration tier: they run a program; a missing openssl fails them).
"""

from __future__ import annotations

import json
import shutil
import ssl
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from ivr.config import load_config
from ivr.config.email import EmailSection
from ivr.notify.email import EmailNotSent, EmailOutbox, EmailSender, OutgoingEmail
from tests.rig.stack import EXAMPLE, free_tcp_port

SENDER = "hotline@bactuliem.gov.vn"
CITIZEN = "citizen@example.com"


@dataclass(frozen=True)
class Pki:
    ca: Path  # the CA that signed the server's certificate
    wrong_ca: Path  # another CA
    cert: Path
    key: Path


def _openssl(*args: str, cwd: Path) -> None:
    binary = shutil.which("openssl")
    if binary is None:
        pytest.fail("openssl not found: apt-get install openssl", pytrace=False)
    subprocess.run([binary, *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """A test CA, a certificate for 127.0.0.1 signed by it, and an unrelated CA."""
    here = tmp_path_factory.mktemp("pki")
    for name in ("ca", "wrong-ca"):
        _openssl(
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-subj", f"/CN=Hotline test {name}", "-keyout", f"{name}.key", "-out", f"{name}.pem",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign",
            cwd=here,
        )  # fmt: skip
    _openssl(
        "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
        "-keyout", "server.key", "-out", "server.csr", cwd=here,
    )  # fmt: skip
    (here / "san.ext").write_text(
        "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n",
        encoding="ascii",
    )
    _openssl(
        "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-days", "2", "-extfile", "san.ext", "-out", "server.pem", cwd=here,
    )  # fmt: skip
    return Pki(here / "ca.pem", here / "wrong-ca.pem", here / "server.pem", here / "server.key")


class Sink:
    def __init__(self) -> None:
        self.messages: list[bytes] = []
        self.tls_seen: list[bool] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(bytes(envelope.original_content))
        self.tls_seen.append(session.ssl is not None)
        return "250 OK"


def _server_context(pki: Pki) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(pki.cert, pki.key)
    return context


@pytest.fixture
def starttls_server(pki: Pki) -> Iterator[tuple[Sink, int]]:
    """aiosmtpd that requires STARTTLS before MAIL."""
    sink, port = Sink(), free_tcp_port()
    controller = Controller(
        sink,
        hostname="127.0.0.1",
        port=port,
        tls_context=_server_context(pki),
        require_starttls=True,
    )
    controller.start()
    try:
        yield sink, port
    finally:
        controller.stop()


@pytest.fixture
def smtps_server(pki: Pki) -> Iterator[tuple[Sink, int]]:
    """aiosmtpd speaking TLS from the first byte (port 465 style)."""
    sink, port = Sink(), free_tcp_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port, ssl_context=_server_context(pki))
    controller.start()
    try:
        yield sink, port
    finally:
        controller.stop()


def _settings(port: int, security: str, **changes: Any) -> EmailSection:
    values: dict[str, Any] = {
        "enabled": True,
        "host": "127.0.0.1",
        "port": port,
        "security": security,
        "from_address": SENDER,
        "timeout_seconds": 10,
        **changes,
    }
    return EmailSection(**values)


MESSAGE = OutgoingEmail(to=CITIZEN, subject="Re: Rác thải [Mã 25071234]", text="Đã nhận.")


@pytest.mark.integration
async def test_starttls_with_the_test_ca_delivers_over_tls(
    pki: Pki, starttls_server: tuple[Sink, int]
) -> None:
    sink, port = starttls_server
    sender = EmailSender(_settings(port, "starttls", ca_file=pki.ca))
    await sender.deliver(MESSAGE)
    assert len(sink.messages) == 1 and sink.tls_seen == [True]


@pytest.mark.integration
async def test_implicit_tls_with_the_test_ca_delivers(
    pki: Pki, smtps_server: tuple[Sink, int]
) -> None:
    sink, port = smtps_server
    await EmailSender(_settings(port, "tls", ca_file=pki.ca)).deliver(MESSAGE)
    assert len(sink.messages) == 1


@pytest.mark.integration
async def test_the_wrong_ca_keeps_the_mail_in_the_outbox_with_a_clear_error(
    pki: Pki, starttls_server: tuple[Sink, int], tmp_path: Path
) -> None:
    sink, port = starttls_server
    outbox = EmailOutbox(tmp_path / "outbox.jsonl")
    sender = EmailSender(_settings(port, "starttls", ca_file=pki.wrong_ca), outbox)
    message_id = await sender.send(MESSAGE)
    assert sink.messages == []  # nothing went in clear, nothing to an untrusted server
    [line] = (tmp_path / "outbox.jsonl").read_text(encoding="utf-8").splitlines()
    row = json.loads(line)
    assert row["message_id"] == message_id
    error = row["last_error"]
    assert f"127.0.0.1:{port}" in error
    assert f"not trusted by the CA file {pki.wrong_ca}" in error
    assert "unable to get local issuer certificate" in error


@pytest.mark.integration
async def test_the_system_cas_do_not_trust_a_private_ca(
    starttls_server: tuple[Sink, int],
) -> None:
    sink, port = starttls_server
    with pytest.raises(EmailNotSent, match="not trusted by the system's CAs") as caught:
        await EmailSender(_settings(port, "starttls")).deliver(MESSAGE)
    assert caught.value.temporary and sink.messages == []


@pytest.mark.integration
async def test_verification_off_is_for_a_relay_on_this_machine(
    starttls_server: tuple[Sink, int],
) -> None:
    sink, port = starttls_server
    await EmailSender(_settings(port, "starttls", verify_certificate=False)).deliver(MESSAGE)
    assert len(sink.messages) == 1


def test_verification_off_to_another_host_is_refused_by_the_config() -> None:
    with pytest.raises(ValueError, match="must be checked: give ca_file"):
        EmailSection(host="smtp.bactuliem.gov.vn", verify_certificate=False)


async def test_an_unreadable_ca_file_is_named_in_the_error(tmp_path: Path) -> None:
    sender = EmailSender(_settings(free_tcp_port(), "tls", ca_file=tmp_path / "missing.pem"))
    with pytest.raises(EmailNotSent, match=r"email.ca_file .*missing.pem could not be read"):
        await sender.deliver(MESSAGE)


def test_a_relative_ca_file_is_read_beside_the_config(tmp_path: Path) -> None:
    text = EXAMPLE.read_text(encoding="utf-8").rstrip("\n") + (
        "\nemail:\n  enabled: true\n  host: smtp.bactuliem.gov.vn\n"
        f"  from_address: {SENDER}\n  ca_file: certs/ca.pem\n"
    )
    path = tmp_path / "etc" / "hotline.yaml"
    path.parent.mkdir()
    path.write_text(text, encoding="utf-8")
    sender = EmailSender.from_config(load_config(path))
    assert sender._ca_path == tmp_path / "etc" / "certs" / "ca.pem"


# --- answers to citizens: the error on the thread's row -----------------------------


@pytest.mark.db
async def test_an_answer_refused_for_the_wrong_ca_keeps_the_reason_on_its_row(
    pki: Pki, starttls_server: tuple[Sink, int], tmp_path: Path
) -> None:
    """The intake queues the acknowledgement of a mail; the dispatcher sends it
    through EmailReplySender over STARTTLS. With the wrong CA the row stays
    pending with the reason; with the right one it leaves, over TLS, and the
    row keeps its Message-ID."""
    from sqlalchemy import select

    from ivr.cases.service import CaseService
    from ivr.config.channels import EmailChannel
    from ivr.config.source import ConfigSource
    from ivr.contracts.channels import Channel, ContactKind
    from ivr.db.engine import make_engine, make_session_factory
    from ivr.db.migrate import upgrade
    from ivr.intake.models import PENDING, SENT, CaseMessage
    from ivr.intake.replies import ReplyDispatcher
    from ivr.intake.service import IntakeService
    from ivr.intake.types import Submission
    from ivr.notify.email_replies import EmailReplySender
    from tests.rig.postgres import fresh_database_url

    sink, port = starttls_server
    url = fresh_database_url(tmp_path)
    upgrade(url)
    engine = make_engine(url)
    sessions = make_session_factory(engine)
    config = load_config(EXAMPLE)
    section = EmailChannel(enabled=True, addresses={"phananh@bactuliem.gov.vn": "bac-tu-liem"})  # type: ignore[dict-item]
    config = config.model_copy(
        update={"channels": config.channels.model_copy(update={"email": section})}
    )
    source = ConfigSource(config)
    intake = IntakeService(sessions, source, CaseService(sessions, source), tmp_path / "att")
    result = intake.submit(
        Submission(
            hotline_id="bac-tu-liem",
            channel=Channel.EMAIL,
            text="Đèn đường hỏng.",
            contacts=((ContactKind.EMAIL, CITIZEN),),
            subject="Đèn đường",
            idempotency_key="<m1@example.com>",
            external_id="<m1@example.com>",
        )
    )

    def row() -> CaseMessage:
        with sessions() as session:
            return session.scalars(
                select(CaseMessage).where(
                    CaseMessage.case_id == result.case_id, CaseMessage.direction == "out"
                )
            ).one()

    wrong = EmailSender(_settings(port, "starttls", ca_file=pki.wrong_ca))
    dispatcher = ReplyDispatcher(sessions, {Channel.EMAIL: EmailReplySender(source, wrong)})
    run = await dispatcher.run_once()
    assert run.retrying == 1 and sink.messages == []
    refused = row()
    assert refused.status == PENDING and refused.attempts == 1
    assert f"not trusted by the CA file {pki.wrong_ca}" in refused.error
    assert "EmailNotSent" in refused.error

    # The operator fixes ca_file; the retry (made due now) goes out over TLS.
    with sessions.begin() as session:
        session.get(CaseMessage, refused.id).next_attempt_at = None  # type: ignore[union-attr]
    right = EmailSender(_settings(port, "starttls", ca_file=pki.ca))
    dispatcher.senders[Channel.EMAIL] = EmailReplySender(source, right)
    assert (await dispatcher.run_once()).sent == 1
    sent = row()
    assert sent.status == SENT and sent.error == ""
    assert sent.external_id == f"<hotline.{result.case_code}.r{sent.id}@bactuliem.gov.vn>"
    assert sink.tls_seen == [True]
    engine.dispose()
