"""What a channel hands to the intake, and what reply senders get back.

Every channel (web form, email, SMS, Zalo, Open311) turns what it received into
a :class:`Submission` and calls :meth:`ivr.intake.service.IntakeService.submit`;
answers to the citizen leave as :class:`OutgoingReply` through the
:class:`ReplySender` registered for the case's channel.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from ivr.contracts.channels import Channel, ContactKind


@dataclass(frozen=True)
class IncomingAttachment:
    """A file as the citizen sent it. ``declared_type`` is what the sender
    claimed (a form's or mail part's Content-Type); the intake trusts only the
    type sniffed from ``content``."""

    filename: str
    content: bytes
    declared_type: str = ""


@dataclass(frozen=True)
class Submission:
    """One message from a citizen. Text fields are plain text (a channel never
    passes HTML on; the intake refuses control characters)."""

    hotline_id: str
    channel: Channel
    text: str
    # How to reach the citizen, already normalised: E.164 for phones (ivr.phone),
    # lower-cased addresses, Zalo user ids. Contacts given together are linked
    # to one citizen.
    contacts: tuple[tuple[ContactKind, str], ...] = ()
    name: str = ""
    subject: str = ""  # an email's subject, an Open311 service's name
    topic: str | None = None  # a topic code of the hotline's cases config
    area_code: str | None = None  # a ward (areas' code)
    address: str = ""
    latitude: float | None = None
    longitude: float | None = None
    # Keep location metadata in photos only when the citizen chose to share it.
    share_location: bool = False
    publish_consent: bool = False
    attachments: tuple[IncomingAttachment, ...] = ()
    # The same key twice (a retried webhook, a double submit, a resent mail)
    # gives the first result back and writes nothing: scoped by channel.
    idempotency_key: str | None = None
    # The channel's id of this message (Message-ID, Zalo msg_id, gateway id):
    # replies thread on it.
    external_id: str | None = None
    # A message continuing an existing case (an email reply, a text quoting the
    # code): joins that case's thread instead of opening a new one, when the
    # case belongs to the same hotline and citizen.
    case_code: str | None = None


@dataclass(frozen=True)
class IntakeResult:
    case_code: str
    case_id: int
    message_id: int
    created: bool  # False: a duplicate, or a message joining an existing case
    duplicate: bool = False  # the idempotency key had been seen


class IntakeRefused(ValueError):
    """A submission the intake will not store; the message says why in words a
    citizen or a client developer understands (the channel maps it to its own
    error format). Nothing was written."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class OutgoingReply:
    """A message to the citizen, already committed as an outbound row of the
    case's thread; the sender delivers it or raises."""

    message_id: int
    case_code: str
    hotline_id: str
    channel: Channel
    to: str  # the address, number or Zalo user id
    subject: str
    text: str
    # For email threading: the Message-IDs of the citizen's messages on the case.
    in_reply_to: str | None = None
    references: tuple[str, ...] = field(default=())


class ReplySender(Protocol):
    channel: Channel

    async def send(self, reply: OutgoingReply) -> str | None:
        """Deliver or raise; returns the channel's id of the sent message
        (the Message-ID, Zalo's message id) when it gives one."""
