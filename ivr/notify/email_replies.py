"""Answers to citizens who wrote by email (issue 14): the
:class:`~ivr.intake.types.ReplySender` of :attr:`Channel.EMAIL`.

The mail goes out through :class:`~ivr.notify.email.EmailSender` (the SMTP
server of ``email:``, its outbox and retries) from the hotline's own inbound
address, so the citizen's reply comes back to the receiver. It threads:

- Subject ``Re: <the citizen's subject> [Mã <code>]`` (the code once, even on
  the tenth reply), so a mail client groups it and a reply names the case;
- ``Message-ID`` ``<hotline.<code>.r<message id>@<domain>>`` (domain:
  ``channels.email.message_id_domain``, else the hotline address's), which
  :func:`~ivr.notify.mail_intake.parse_mail` reads back from In-Reply-To. The
  same for every attempt at one message: a server that took it and lost the
  connection before saying so sees the retry as the same mail;
- ``In-Reply-To`` and ``References`` from the :class:`OutgoingReply` (the
  citizen's Message-IDs), References cut to what a header may hold.

One attempt per :meth:`EmailReplySender.send` (:meth:`EmailSender.deliver`, not
the sender's own outbox): the reply dispatcher keeps the message's row pending,
retries it and records the error on it (``case_messages.error``), so staff see
on the case why an answer has not left.
"""

from __future__ import annotations

import logging
import re

from ivr.config.source import ConfigSource
from ivr.contracts.channels import Channel
from ivr.intake.types import OutgoingReply
from ivr.notify.email import HEADER_VALUE_MAX, SUBJECT_MAX, EmailNotSent, EmailSender, OutgoingEmail

logger = logging.getLogger(__name__)

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_MESSAGE_ID = re.compile(r"<[^<>\s]{1,250}>")
_REPLY_PREFIX = re.compile(r"^\s*(?:(?:re|aw|tl|trả lời|fwd?|tr)\s*:\s*)+", re.IGNORECASE)
_CODE_TAG = re.compile(
    r"\s*\[\s*(?:mã|ma|case|code)(?:\s+s[ốo])?\s*[:#]?\s*#?\d{4,16}\s*\]", re.IGNORECASE
)


def reply_subject(subject: str, case_code: str) -> str:
    """``Re: <subject> [Mã <code>]``: one "Re:", the case's tag once."""
    bare = _CODE_TAG.sub("", _REPLY_PREFIX.sub("", _CONTROL.sub(" ", subject)))
    bare = " ".join(bare.split())
    tag = f" [Mã {case_code}]"
    room = SUBJECT_MAX - len("Re: ") - len(tag)
    if len(bare) > room:
        bare = bare[: room - 1].rstrip() + "…"
    return f"Re: {bare}{tag}" if bare else f"Re:{tag}"


def references_header(in_reply_to: str | None, references: tuple[str, ...]) -> str:
    """The References value: the thread's first id and as many of the latest
    as fit in a header (RFC 5322 3.6.4 allows trimming the middle)."""
    ids = [i for i in references if _MESSAGE_ID.fullmatch(i)]
    if in_reply_to and _MESSAGE_ID.fullmatch(in_reply_to) and in_reply_to not in ids:
        ids.append(in_reply_to)
    if not ids:
        return ""
    kept = [ids[0]]
    tail: list[str] = []
    for message_id in reversed(ids[1:]):
        if len(" ".join([*kept, message_id, *tail])) > HEADER_VALUE_MAX:
            break
        tail.insert(0, message_id)
    return " ".join(kept + tail)


class EmailReplySender:
    """Sends :class:`OutgoingReply` by email; returns the Message-ID it gave.
    ``sender`` None (``email.enabled`` off): every answer raises, and waits."""

    channel = Channel.EMAIL

    def __init__(self, source: ConfigSource, sender: EmailSender | None) -> None:
        self._source = source
        self._sender = sender

    async def send(self, reply: OutgoingReply) -> str | None:
        if self._sender is None:
            raise EmailNotSent(
                "email.enabled is off: answers by email cannot be sent", temporary=True
            )
        config = self._source.current
        section = config.channels.email
        from_address = section.address_of(reply.hotline_id) or config.email.from_address
        if from_address is None:
            raise EmailNotSent(
                f"hotline {reply.hotline_id} has no address in channels.email.addresses",
                temporary=False,
            )
        domain = section.message_id_domain or from_address.rpartition("@")[2]
        message_id = f"<hotline.{reply.case_code}.r{reply.message_id}@{domain}>"
        headers = {"X-Hotline-Case": reply.case_code}
        if reply.in_reply_to and _MESSAGE_ID.fullmatch(reply.in_reply_to):
            headers["In-Reply-To"] = reply.in_reply_to
        references = references_header(reply.in_reply_to, reply.references)
        if references:
            headers["References"] = references
        message = OutgoingEmail(
            to=reply.to,
            subject=reply_subject(reply.subject, reply.case_code),
            text=reply.text,
            reply_to=from_address,
            headers=headers,
            from_address=from_address,
        )
        # Raises EmailNotSent (temporary or not) for the dispatcher to record.
        await self._sender.deliver(message, message_id=message_id)
        logger.info(
            "answer %s on case %s sent by email as %s",
            reply.message_id,
            reply.case_code,
            message_id,
        )
        return message_id
