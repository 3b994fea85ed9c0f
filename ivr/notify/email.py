"""Email over SMTP, with an outbox for the mail the server did not take.

:class:`EmailSender` is what the rest of the project calls: ``await
sender.send(OutgoingEmail(to=..., subject=..., text=...))``. A message that is
unsafe (a line break in the recipient, subject or a header; an address that is
not one plain mailbox) is refused with :class:`UnsafeEmail` before any
connection is made. A message the server cannot take now (it is down, slow,
answers 4xx, or refuses our login) is written to the outbox, a JSON-lines file,
and retried with back-off by :meth:`EmailSender.run_outbox`; ``send`` then
returns normally, since the mail will go. A message the server refuses for good
(5xx on the sender, recipient or content) raises :class:`EmailNotSent`.

Facts this relies on (Python's standard library):

- ``smtplib`` blocks; every exchange runs in a worker thread
  (:func:`asyncio.to_thread`) so the event loop keeps serving calls and pages.
  Its ``timeout`` bounds each socket operation (connect, each reply), not the
  whole exchange.
- ``EmailMessage`` under ``email.policy.SMTP`` writes CRLF lines and encodes a
  non-ASCII subject or display name as RFC 2047 encoded words, so Vietnamese
  reaches servers that only speak ASCII headers. It would itself refuse a CR
  or LF in a header value; we check first so the refusal names the field.
- ``smtplib.SMTP.send_message`` drops ``Bcc`` but sends to ``to_addrs`` as
  given: the envelope recipient is always the one checked address.
- Reply codes 4xx are temporary and 5xx permanent (RFC 5321, 4.2.1).
"""

from __future__ import annotations

import asyncio
import email.policy
import fcntl
import json
import logging
import os
import re
import smtplib
import socket
import ssl
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path

from ivr.config.email import EmailSection, check_email_address
from ivr.config.schema import HotlineConfig

logger = logging.getLogger(__name__)

# A header name as mail software writes them; RFC 5322 allows more, nobody needs it.
_HEADER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,75}")
# CR, LF, NUL, the other C0/C1 controls and the Unicode line separators.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
# Headers the sender writes itself. An extra header may not replace them: a
# second From is a forged sender, a Cc or Bcc a hidden recipient, a
# Content-Type a different body.
RESERVED_HEADERS = frozenset(
    name.lower()
    for name in (
        "From", "Sender", "To", "Cc", "Bcc", "Subject", "Date", "Message-ID", "Reply-To",
        "Return-Path", "Received", "MIME-Version", "Content-Type",
        "Content-Transfer-Encoding", "Content-Disposition",
    )
)  # fmt: skip
SUBJECT_MAX = 400
HEADER_VALUE_MAX = 900


@dataclass(frozen=True)
class OutgoingEmail:
    """One plain-text message to one mailbox."""

    to: str
    subject: str
    text: str
    reply_to: str | None = None  # None: the config's ``email.reply_to``
    headers: dict[str, str] = field(default_factory=dict)  # X-Hotline-Case, In-Reply-To…
    # None: the config's ``email.from_address``; a hotline's own address for its
    # answers to citizens (channels.email), so their replies come back to it.
    from_address: str | None = None


class EmailError(Exception):
    """Email could not be sent; the message says why (never a password)."""


class UnsafeEmail(EmailError, ValueError):
    """A message that would add headers or recipients; nothing was sent."""


class EmailNotSent(EmailError):
    """The server refused the message, or it could not be kept for a retry."""

    def __init__(self, reason: str, *, temporary: bool) -> None:
        super().__init__(reason)
        self.temporary = temporary


def check_outgoing(message: OutgoingEmail) -> None:
    """Raise :class:`UnsafeEmail` naming the field if ``message`` could change the
    mail's structure: a line break or control character in ``to``, ``subject``,
    ``reply_to`` or a header, an address that is not one plain mailbox, or an
    extra header that replaces one the sender writes."""

    def address(value: str, where: str) -> None:
        try:
            check_email_address(value)
        except ValueError as exc:
            raise UnsafeEmail(f"{where}: {_safe_repr(exc)}") from None

    address(message.to, "to")
    if message.from_address is not None:
        address(message.from_address, "from_address")
    if message.reply_to is not None:
        address(message.reply_to, "reply_to")
    if _CONTROL.search(message.subject):
        raise UnsafeEmail("subject: line breaks and control characters are not allowed")
    if not message.subject.strip() or len(message.subject) > SUBJECT_MAX:
        raise UnsafeEmail(f"subject: between 1 and {SUBJECT_MAX} characters")
    if "\x00" in message.text:
        raise UnsafeEmail("text: NUL is not allowed")
    for name, value in message.headers.items():
        if not isinstance(name, str) or not _HEADER_NAME.fullmatch(name):
            raise UnsafeEmail(f"headers: {name!r} is not a header name (letters, digits, -)")
        if name.lower() in RESERVED_HEADERS:
            raise UnsafeEmail(f"headers: {name} is written by the sender, not by the caller")
        if not isinstance(value, str) or _CONTROL.search(value):
            raise UnsafeEmail(f"headers: {name}: line breaks and control characters not allowed")
        if len(value) > HEADER_VALUE_MAX:
            raise UnsafeEmail(f"headers: {name}: longer than {HEADER_VALUE_MAX} characters")


def _safe_repr(exc: Exception) -> str:
    # Error texts quote the value; make sure a CR/LF in it cannot split a log line.
    return str(exc).replace("\r", "\\r").replace("\n", "\\n")


def new_message_id(settings: EmailSection) -> str:
    """A fresh ``<…@domain>`` in the sender's domain (kept across retries)."""
    domain = (settings.from_address or "hotline@localhost").rpartition("@")[2]
    return make_msgid(domain=domain)


def build_message(
    message: OutgoingEmail, settings: EmailSection, *, message_id: str, date: datetime
) -> EmailMessage:
    """The MIME message (UTF-8 text/plain) for ``message``; checks it first."""
    check_outgoing(message)
    from_address = message.from_address or settings.from_address
    if from_address is None:
        raise EmailNotSent("email.from_address is not set", temporary=False)
    mime = EmailMessage(policy=email.policy.SMTP)
    mime["From"] = Address(display_name=settings.from_name, addr_spec=from_address)
    mime["To"] = message.to
    mime["Subject"] = message.subject
    mime["Date"] = format_datetime(date)
    mime["Message-ID"] = message_id
    reply_to = message.reply_to or settings.reply_to
    if reply_to:
        mime["Reply-To"] = reply_to
    # RFC 3834: a machine wrote this; out-of-office replies should not answer it.
    if not any(name.lower() == "auto-submitted" for name in message.headers):
        mime["Auto-Submitted"] = "auto-generated"
    for name, value in message.headers.items():
        mime[name] = value
    # Quoted-printable keeps every line 7-bit: a server without 8BITMIME takes it too.
    mime.set_content(message.text, charset="utf-8", cte="quoted-printable")
    return mime


# --- the outbox ---------------------------------------------------------------------


@dataclass(frozen=True)
class QueuedEmail:
    """One message waiting in the outbox, with what its retries need."""

    message: OutgoingEmail
    message_id: str  # kept, so a receiver sees one message however often it is tried
    date: datetime
    queued_at: datetime
    attempts: int
    next_attempt_at: datetime
    last_error: str

    def to_json(self) -> str:
        return json.dumps(
            {
                "message_id": self.message_id,
                "to": self.message.to,
                "subject": self.message.subject,
                "text": self.message.text,
                "reply_to": self.message.reply_to,
                "headers": self.message.headers,
                "from_address": self.message.from_address,
                "date": self.date.isoformat(),
                "queued_at": self.queued_at.isoformat(),
                "attempts": self.attempts,
                "next_attempt_at": self.next_attempt_at.isoformat(),
                "last_error": self.last_error,
            },
            ensure_ascii=False,
        )

    @classmethod
    def from_json(cls, line: str) -> QueuedEmail:
        data = json.loads(line)
        return cls(
            OutgoingEmail(
                data["to"],
                data["subject"],
                data["text"],
                data["reply_to"],
                data["headers"],
                data.get("from_address"),  # absent in lines queued before issue 14
            ),
            data["message_id"],
            datetime.fromisoformat(data["date"]),
            datetime.fromisoformat(data["queued_at"]),
            int(data["attempts"]),
            datetime.fromisoformat(data["next_attempt_at"]),
            data["last_error"],
        )


class EmailOutbox:
    """Queued mail as JSON lines in ``path`` (mode 0600: it holds personal data).

    Writers take an exclusive lock on ``<path>.lock`` (``flock``), so the console
    and the FastAGI server may both add mail while one of them retries. Mail
    given up on is appended to ``<name>.failed.jsonl`` beside it, not dropped.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.failed_path = path.with_name(f"{path.stem}.failed{path.suffix}")
        self._lock_path = path.with_name(f"{path.name}.lock")

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def add(self, item: QueuedEmail) -> None:
        with self._locked():
            _append_line(self.path, item.to_json())

    def items(self) -> list[QueuedEmail]:
        with self._locked():
            return self._read()

    def settle(self, sent: set[str], retried: dict[str, QueuedEmail], failed: set[str]) -> None:
        """Drop the ``sent`` and ``failed`` messages (by Message-ID), replace the
        ``retried`` ones; keep whatever was added since they were read."""
        with self._locked():
            kept: list[str] = []
            for item in self._read():
                if item.message_id in sent or item.message_id in failed:
                    continue
                kept.append(retried.get(item.message_id, item).to_json())
            tmp = self.path.with_name(f"{self.path.name}.tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write("".join(line + "\n" for line in kept))
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path)

    def give_up(self, item: QueuedEmail, reason: str) -> None:
        with self._locked():
            _append_line(self.failed_path, replace(item, last_error=reason).to_json())

    def _read(self) -> list[QueuedEmail]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        items = []
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                items.append(QueuedEmail.from_json(line))
            except (ValueError, KeyError, TypeError):
                # A line cut short by a crash mid-write: say where, keep the rest.
                logger.error("email outbox %s:%d: unreadable line skipped", self.path, number)
        return items


def _append_line(path: Path, line: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "a", encoding="utf-8") as handle:
        handle.write(line + "\n")
        handle.flush()
        os.fsync(handle.fileno())  # queued means on disk: the server may be down for hours


# --- the sender ---------------------------------------------------------------------


def _utc_now() -> datetime:
    return datetime.now(UTC)


class EmailSender:
    """Sends :class:`OutgoingEmail` through the configured SMTP server.

    ``outbox`` keeps what could not be sent now (None: such a failure raises
    instead). ``password`` overrides ``settings.password`` (tests, or a secret
    read elsewhere); it is never logged. ``clock`` dates messages and paces retries.
    """

    def __init__(
        self,
        settings: EmailSection,
        outbox: EmailOutbox | None = None,
        *,
        password: str | None = None,
        clock: Callable[[], datetime] = _utc_now,
        ca_path: Path | None = None,
    ) -> None:
        self.settings = settings
        self.outbox = outbox
        # ``settings.ca_file`` resolved against the config's folder (from_config);
        # None: the file as written, or the system's CAs.
        self._ca_path = ca_path if ca_path is not None else settings.ca_file
        self._password = password if password is not None else settings.password
        self._clock = clock
        self._retrying = asyncio.Lock()
        self._outbox_task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    @classmethod
    def from_config(cls, config: HotlineConfig) -> EmailSender:
        settings = config.email
        ca_path = config.resolve_path(settings.ca_file) if settings.ca_file is not None else None
        return cls(
            settings, EmailOutbox(config.resolve_path(settings.outbox_path)), ca_path=ca_path
        )

    @property
    def enabled(self) -> bool:
        return self.settings.enabled

    async def send(self, message: OutgoingEmail, *, message_id: str | None = None) -> str:
        """Send ``message`` now, or keep it in the outbox if the server cannot
        take it now; returns its Message-ID (``message_id``, else a new one).
        Raises :class:`UnsafeEmail` (nothing sent) or :class:`EmailNotSent`
        (refused for good, or no outbox to keep it in)."""
        check_outgoing(message)
        message_id = message_id or new_message_id(self.settings)
        if not self.enabled:
            logger.info(
                "email is off (email.enabled: false): not sent to %s (%d characters)",
                message.to,
                len(message.text),
            )
            return message_id
        now = self._clock()
        try:
            await self.deliver(message, message_id=message_id, date=now)
        except EmailNotSent as exc:
            if not exc.temporary or self.outbox is None:
                raise
            queued = QueuedEmail(message, message_id, now, now, 1, now + self._delay(1), str(exc))
            try:
                await asyncio.to_thread(self.outbox.add, queued)
            except OSError as io_error:
                raise EmailNotSent(
                    f"{exc}; and the outbox {self.outbox.path} could not keep it: {io_error}",
                    temporary=True,
                ) from exc
            logger.warning(
                "email %s to %s not sent now, kept in the outbox for a retry: %s",
                message_id,
                message.to,
                exc,
            )
        return message_id

    async def deliver(
        self, message: OutgoingEmail, *, message_id: str | None = None, date: datetime | None = None
    ) -> None:
        """One attempt, no outbox: raises :class:`EmailNotSent` saying whether a
        retry may succeed (``temporary``)."""
        mime = build_message(
            message,
            self.settings,
            message_id=message_id or new_message_id(self.settings),
            date=date or self._clock(),
        )
        await asyncio.to_thread(self._exchange, mime, message.to)
        logger.info("email %s sent to %s", mime["Message-ID"], message.to)

    def _exchange(self, mime: EmailMessage, recipient: str) -> None:
        """The SMTP session (in a worker thread)."""
        s = self.settings
        from_address = mime["From"].addresses[0].addr_spec  # build_message checked it
        where = f"{s.host}:{s.smtp_port}"
        try:
            with self._connect() as smtp:
                if s.security == "starttls":
                    smtp.starttls(context=self._tls_context())
                    smtp.ehlo()
                if s.username is not None and self._password is not None:
                    smtp.login(s.username, self._password)
                smtp.send_message(mime, from_addr=from_address, to_addrs=[recipient])
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            raise EmailNotSent(
                f"{where} refused {recipient}: {_replies(exc.recipients.values())}",
                temporary=all(400 <= code < 500 for code in codes),
            ) from None
        except smtplib.SMTPAuthenticationError as exc:
            # Our login is wrong: a config matter, so the mail waits for the fix.
            raise EmailNotSent(
                f"{where} refused the login of {s.username!r}: {_reply(exc)}", temporary=True
            ) from None
        except smtplib.SMTPResponseException as exc:
            raise EmailNotSent(
                f"{where} answered {_reply(exc)}", temporary=not 500 <= exc.smtp_code < 600
            ) from None
        except ssl.SSLCertVerificationError as exc:
            # A config matter too (the wrong CA file, or a server posing as
            # ours): the mail waits in the outbox for the fix, the reason on its line.
            trusted = f"the CA file {self._ca_path}" if self._ca_path else "the system's CAs"
            raise EmailNotSent(
                f"{where}: the server's certificate is not trusted by {trusted}: "
                f"{_safe_repr(Exception(exc.verify_message or exc.reason or exc))}",
                temporary=True,
            ) from None
        except (smtplib.SMTPException, OSError, UnicodeError) as exc:
            # Down, unreachable, timed out, cut off, no STARTTLS, a bad certificate
            # (or a non-ASCII password given past the config's check).
            raise EmailNotSent(
                f"{where}: {type(exc).__name__}: {_safe_repr(exc)}", temporary=True
            ) from None

    def _connect(self) -> smtplib.SMTP:
        s = self.settings
        # Our own host name for EHLO, without the DNS look-up smtplib would make.
        local = socket.gethostname() or "localhost"
        if s.security == "tls":
            return smtplib.SMTP_SSL(
                s.host,
                s.smtp_port,
                local_hostname=local,
                timeout=s.timeout_seconds,
                context=self._tls_context(),
            )
        return smtplib.SMTP(s.host, s.smtp_port, local_hostname=local, timeout=s.timeout_seconds)

    def _tls_context(self) -> ssl.SSLContext:
        """Checks the server's certificate against ``ca_file`` (or the system's
        CAs) and its name against ``host``, unless verify_certificate is off
        (loopback only, the config insists)."""
        try:
            context = ssl.create_default_context(
                cafile=str(self._ca_path) if self._ca_path is not None else None
            )
        except (OSError, ssl.SSLError) as exc:
            raise EmailNotSent(
                f"email.ca_file {self._ca_path} could not be read: {_safe_repr(exc)}",
                temporary=True,
            ) from None
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        if not self.settings.verify_certificate:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context

    def _delay(self, attempts: int) -> timedelta:
        """Back-off after ``attempts`` failed tries: first, then doubling, capped."""
        s = self.settings
        seconds = min(s.retry_first_seconds * 2 ** (attempts - 1), s.retry_max_seconds)
        return timedelta(seconds=seconds)

    async def retry_outbox(self) -> int:
        """Try the queued messages whose time has come; returns how many were sent.

        A message refused for good, or still unsent ``give_up_hours`` after it
        was queued, moves to the outbox's ``.failed`` file with an error logged.
        """
        if self.outbox is None or not self.enabled:
            return 0
        outbox = self.outbox
        async with self._retrying:
            now = self._clock()
            due = [q for q in await asyncio.to_thread(outbox.items) if q.next_attempt_at <= now]
            sent: set[str] = set()
            failed: set[str] = set()
            retried: dict[str, QueuedEmail] = {}
            for item in due:
                try:
                    await self.deliver(item.message, message_id=item.message_id, date=item.date)
                except UnsafeEmail as exc:  # written by hand into the file
                    failed.add(item.message_id)
                    await asyncio.to_thread(outbox.give_up, item, str(exc))
                    logger.error("email %s in the outbox is unsafe: %s", item.message_id, exc)
                except EmailNotSent as exc:
                    attempts = item.attempts + 1
                    deadline = item.queued_at + timedelta(hours=self.settings.give_up_hours)
                    if not exc.temporary or now >= deadline:
                        failed.add(item.message_id)
                        await asyncio.to_thread(outbox.give_up, item, str(exc))
                        logger.error(
                            "email %s to %s given up after %d attempts: %s",
                            item.message_id,
                            item.message.to,
                            attempts,
                            exc,
                        )
                    else:
                        retried[item.message_id] = replace(
                            item,
                            attempts=attempts,
                            next_attempt_at=now + self._delay(attempts),
                            last_error=str(exc),
                        )
                        logger.warning(
                            "email %s to %s: attempt %d failed, next in %s: %s",
                            item.message_id,
                            item.message.to,
                            attempts,
                            self._delay(attempts),
                            exc,
                        )
                else:
                    sent.add(item.message_id)
            if due:
                await asyncio.to_thread(outbox.settle, sent, retried, failed)
            return len(sent)

    def start(self) -> None:
        """Start retrying the outbox in the background (on the running loop).
        One process of a deployment does it: the one that serves the console,
        like the retention job; :meth:`close` stops it."""
        if self._outbox_task is None and self.outbox is not None and self.enabled:
            self._stopping = asyncio.Event()
            self._outbox_task = asyncio.create_task(self.run_outbox(), name="email-outbox")

    async def close(self, grace_seconds: float = 30.0) -> None:
        """Stop retrying. A pass under way is let finish (up to ``grace_seconds``):
        cancelled mid-pass, mail the server took would stay queued and go twice."""
        task, self._outbox_task = self._outbox_task, None
        if task is None:
            return
        self._stopping.set()
        try:
            await asyncio.wait_for(asyncio.shield(task), grace_seconds)
        except TimeoutError:
            task.cancel()
            with suppress(asyncio.CancelledError):
                await task

    async def run_outbox(self, poll_seconds: float = 30.0) -> None:
        """Retry the outbox until :meth:`close` (``hotline serve`` runs one of these)."""
        pause = min(poll_seconds, self.settings.retry_first_seconds)
        while not self._stopping.is_set():
            try:
                await self.retry_outbox()
            except Exception:
                # A full disk or a bug must not end the loop: mail would wait forever.
                logger.exception("email outbox retry failed")
            with suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), pause)


def sender_from_config(config: HotlineConfig) -> EmailSender | None:
    """The deployment's sender, or None while ``email.enabled`` is off (callers
    then log what they would have sent)."""
    return EmailSender.from_config(config) if config.email.enabled else None


def _reply(exc: smtplib.SMTPResponseException) -> str:
    text = exc.smtp_error
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    return f"{exc.smtp_code} {_safe_repr(Exception(text))}"


def _replies(refusals: Iterable[tuple[int, bytes]]) -> str:
    parts = []
    for code, text in refusals:
        decoded = text.decode("utf-8", errors="replace") if isinstance(text, bytes) else str(text)
        parts.append(f"{code} {_safe_repr(Exception(decoded))}")
    return "; ".join(parts)
