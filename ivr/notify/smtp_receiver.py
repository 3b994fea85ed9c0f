"""The SMTP receiver of ``channels.email`` (issue 14): mail to a hotline's
inbound address becomes a case, or joins one, through the intake.

``hotline serve`` starts one :class:`EmailReceiver` on its running loop (an
aiosmtpd :class:`~aiosmtpd.smtp.SMTP` protocol per connection, no thread). It
answers as a final destination, never as a relay:

- ``RCPT TO`` a configured address (any letter case) → 250; any other → 550;
  an address of a second hotline in the same transaction → 452, so the sending
  server delivers it in its own transaction (one case per hotline);
- a message above ``max_message_bytes`` → 552 (aiosmtpd, also advertised as
  ``SIZE`` in the EHLO answer);
- a message we will not file (a header with a line break once decoded, no or
  two senders, a malformed address, the intake's refusal) → 554 with the reason;
- a failure of ours (the database, a bug) → 451, logged: the sending server
  tries later, and this server keeps running;
- delivered → 250 with the case code.

Mail from the null sender (bounces) or marked ``Auto-Submitted`` (RFC 3834:
out-of-office replies, our own mail looping back) is taken and not filed:
answering it could start a loop of machines writing to each other.

SPF, DKIM and DMARC are not checked here: the From address is taken as given.
The MTA in front (the one the MX record names) should check them and relay only
mail that passed; the intake joins a reply to a case only when it comes from the
case's citizen, which a forged From defeats without those checks.

Facts this relies on (aiosmtpd 1.4): a handler's ``handle_RCPT`` must append
the address to ``envelope.rcpt_tos`` itself; ``handle_DATA`` gets the raw bytes
in ``envelope.original_content`` and its return value is the reply line, sent as
ASCII (we make ours ASCII); ``data_size_limit`` answers 552 itself.
"""

from __future__ import annotations

import asyncio
import email.policy
import logging
import socket
import unicodedata
import weakref
from collections.abc import Callable
from email.parser import BytesHeaderParser
from typing import Protocol

from aiosmtpd.smtp import SMTP, Envelope, Session

from ivr.config.channels import EmailChannel
from ivr.config.email import check_email_address
from ivr.config.source import ConfigSource
from ivr.intake.types import IntakeRefused, IntakeResult, Submission
from ivr.notify.mail_intake import MailRefused, parse_mail

logger = logging.getLogger(__name__)

MAX_RECIPIENTS = 20


class Intake(Protocol):
    """What the receiver needs of :class:`ivr.intake.service.IntakeService`."""

    def submit(self, submission: Submission) -> IntakeResult: ...


def our_domains(section: EmailChannel) -> set[str]:
    """Domains whose Message-IDs may be ours (our replies' and our addresses')."""
    domains = {address.rpartition("@")[2].lower() for address in section.addresses}
    if section.message_id_domain:
        domains.add(section.message_id_domain.lower())
    return domains


def _ascii_reply(text: str, limit: int = 400) -> str:
    """A reply line's text: one line, ASCII (aiosmtpd sends replies as ASCII;
    Vietnamese loses its diacritics, đ becomes d)."""
    text = text.replace("đ", "d").replace("Đ", "D")
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return " ".join(text.split())[:limit] or "refused"


def _is_auto_submitted(raw: bytes) -> bool:
    headers = BytesHeaderParser(policy=email.policy.default).parsebytes(raw)
    # The raw value: the header is a keyword (RFC 3834), nothing to decode.
    value = next((v for k, v in headers.raw_items() if k.lower() == "auto-submitted"), "no")
    return str(value).split(";", 1)[0].strip().lower() not in ("", "no")


class MailHandler:
    """aiosmtpd's handler: checks recipients, files each message through the intake."""

    def __init__(
        self,
        settings: Callable[[], EmailChannel],
        intake: Intake,
        on_filed: Callable[[IntakeResult], None] | None = None,
    ) -> None:
        self._settings = settings  # read per message: a config applied while running counts
        self._intake = intake
        self._on_filed = on_filed

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        try:
            check_email_address(address)
        except ValueError:
            return "553 5.1.3 malformed address"
        settings = self._settings()
        hotline = settings.hotline_of(address)
        if hotline is None:
            return "550 5.1.1 no such mailbox here (this server relays nothing)"
        if len(envelope.rcpt_tos) >= MAX_RECIPIENTS:
            return "452 4.5.3 too many recipients"
        for earlier in envelope.rcpt_tos:
            if settings.hotline_of(earlier) != hotline:
                return "452 4.5.3 one hotline per message: send this recipient separately"
        envelope.rcpt_tos.append(address.lower())
        envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        peer = session.peer
        try:
            return await self._file(raw, envelope)
        except Exception:
            # Ours, not the sender's: they keep the mail and try again later.
            logger.exception("email from %s: could not be filed (451, try later)", peer)
            return "451 4.3.0 temporary failure, try again later"

    async def _file(self, raw: bytes, envelope: Envelope) -> str:
        settings = self._settings()
        if not envelope.rcpt_tos:
            return "503 5.5.1 no valid recipient"
        hotline_id = settings.hotline_of(envelope.rcpt_tos[0])
        if hotline_id is None:  # the address was removed by a config applied since RCPT
            return "450 4.1.1 mailbox not available now, try again later"
        if not envelope.mail_from or envelope.mail_from == "<>" or _is_auto_submitted(raw):
            logger.info(
                "email to %s: auto-generated (bounce or auto-reply), taken and not filed",
                envelope.rcpt_tos[0],
            )
            return "250 2.6.0 auto-generated mail taken, not filed"
        try:
            submission = parse_mail(raw, hotline_id, our_domains(settings))
        except MailRefused as exc:
            logger.info("email to %s refused: %s", envelope.rcpt_tos[0], exc)
            return f"554 5.6.0 {_ascii_reply(str(exc))}"
        try:
            result = await asyncio.to_thread(self._intake.submit, submission)
        except IntakeRefused as exc:
            where = f"{exc.field}: " if exc.field else ""
            logger.info("email %s refused by the intake: %s%s", submission.external_id, where, exc)
            return f"554 5.6.0 {_ascii_reply(where + str(exc))}"
        logger.info(
            "email %s for hotline %s: case %s (%s, %d attachments)",
            submission.external_id,
            hotline_id,
            result.case_code,
            "duplicate" if result.duplicate else "new case" if result.created else "joined",
            len(submission.attachments),
        )
        if self._on_filed is not None:
            self._on_filed(result)
        return f"250 2.0.0 filed as case {result.case_code}"


class EmailReceiver:
    """The SMTP server on ``channels.email.listen_host:listen_port``, on the
    running loop; :meth:`close` stops it (connections under way are cut)."""

    def __init__(
        self,
        source: ConfigSource,
        intake: Intake,
        *,
        port: int | None = None,
        on_filed: Callable[[IntakeResult], None] | None = None,
    ) -> None:
        self._source = source
        self._handler = MailHandler(lambda: source.current.channels.email, intake, on_filed)
        self._port = port
        self._server: asyncio.Server | None = None
        self._sessions: weakref.WeakSet[SMTP] = weakref.WeakSet()

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        settings = self._source.current.channels.email
        loop = asyncio.get_running_loop()
        hostname = socket.getfqdn() or "localhost"

        def protocol() -> SMTP:
            session = SMTP(
                self._handler,
                data_size_limit=settings.max_message_bytes,
                enable_SMTPUTF8=True,
                hostname=hostname,
                ident="Hotline SMTP receiver",
                timeout=120,
                loop=loop,
            )
            self._sessions.add(session)
            return session

        port = settings.listen_port if self._port is None else self._port
        self._server = await loop.create_server(
            protocol, settings.listen_host, port, reuse_address=True
        )
        logger.info("SMTP receiver on %s:%s", settings.listen_host, self.port)

    async def close(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        for session in list(self._sessions):
            transport = getattr(session, "transport", None)
            if transport is not None:
                transport.close()  # a client idling in a session would keep it open
        await server.wait_closed()
