"""Tables of the written channels (issue 14, migration 0016): citizens and their
contacts, the thread of messages of a case in both directions, attachments, and
the idempotency keys that make a retried submission a no-op.

Tenancy: a citizen belongs to one hotline. The same phone number writing to two
hotlines is two citizens, so one hotline's staff never see another's contacts.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from ivr.cases.models import Case
from ivr.db.models import Base, UtcDateTime, utc_now

# Outbound message states (``case_messages.status``; None on inbound rows).
PENDING = "pending"
SENT = "sent"
FAILED = "failed"  # gave up after the last attempt; ``error`` says why


class Citizen(Base):
    """A person as one hotline knows them: linked contacts, their cases."""

    __tablename__ = "citizens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    hotline_id: Mapped[str] = mapped_column(String(64), index=True)
    name: Mapped[str] = mapped_column(String(128), default="")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utc_now)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utc_now)


# ``cases.citizen_id`` → ``citizens.id`` (migration 0016). Declared here, by the
# package that owns ``citizens``, and not in ivr.cases.models: a foreign key the
# ORM cannot resolve fails every flush of a case in a process that has not
# imported this module, and ivr.cases does not import ivr.intake.
_cases_table: Table = Case.__table__  # type: ignore[assignment]
_cases_table.append_constraint(ForeignKeyConstraint(["citizen_id"], ["citizens.id"]))


class CitizenContact(Base):
    """One way to reach a citizen (``ivr.contracts.channels.ContactKind``):
    E.164 number, lower-cased email address, Zalo user id. A value belongs to
    one citizen per hotline."""

    __tablename__ = "citizen_contacts"
    __table_args__ = (UniqueConstraint("hotline_id", "kind", "value"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    citizen_id: Mapped[int] = mapped_column(
        ForeignKey("citizens.id", ondelete="CASCADE"), index=True
    )
    hotline_id: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))  # ContactKind
    value: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utc_now)
    last_seen_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utc_now)


class CaseMessage(Base):
    """One message of a case's thread. Inbound: what the citizen wrote.
    Outbound: what the hotline sends (the acknowledgement, the answer), written
    in the transaction of the change it reports and delivered afterwards by
    :class:`ivr.intake.replies.ReplyDispatcher`, which records the outcome."""

    __tablename__ = "case_messages"
    # The dispatcher's query: pending rows whose next attempt is due.
    __table_args__ = (
        Index("ix_case_messages_status_next_attempt_at", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    direction: Mapped[str] = mapped_column(String(8))  # MessageDirection
    channel: Mapped[str] = mapped_column(String(16))  # Channel
    purpose: Mapped[str] = mapped_column(String(32), default="")  # message, case_opened, …
    subject: Mapped[str] = mapped_column(String(255), default="")
    text: Mapped[str] = mapped_column(Text, default="")
    # The channel's id of the message (Message-ID, Zalo msg_id, gateway id).
    external_id: Mapped[str | None] = mapped_column(String(255), index=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utc_now, index=True)
    # Inbound only: the contact it came from (the From address, the Zalo user
    # id, the sender's number), which the answer goes back to.
    sender: Mapped[str | None] = mapped_column(String(255))
    # Outbound only.
    to: Mapped[str | None] = mapped_column(String(255))
    status: Mapped[str | None] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str] = mapped_column(Text, default="")
    next_attempt_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    # When retention blanked ``text``, ``subject`` and ``to`` (the row stays).
    erased_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class CaseAttachment(Base):
    """A photo, video or PDF a citizen sent. The file lives under
    ``paths.recordings`` (``attachments/<hotline>/<yyyy>/<mm>/<random>``; the
    rows' paths are relative to that ``attachments`` folder) with a name that
    says nothing; ``filename`` is the citizen's (sanitised, display
    only). Served only through the console's access checks."""

    __tablename__ = "case_attachments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    message_id: Mapped[int | None] = mapped_column(
        ForeignKey("case_messages.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(8))  # image, video, pdf
    media_type: Mapped[str] = mapped_column(String(64))  # sniffed from the bytes
    filename: Mapped[str] = mapped_column(String(255), default="")
    path: Mapped[str | None] = mapped_column(String(512))  # below paths.recordings/attachments
    thumbnail_path: Mapped[str | None] = mapped_column(String(512))
    size: Mapped[int] = mapped_column(Integer, default=0)
    sha256: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utc_now, index=True)
    # When retention removed the files (``path`` and ``filename`` blanked).
    erased_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class IntakeKey(Base):
    """A submission's idempotency key: the same key again gives the first
    result back. Unique per (hotline, channel, key): the unique constraint, not
    a lookup, settles two copies arriving at once."""

    __tablename__ = "intake_keys"
    __table_args__ = (UniqueConstraint("hotline_id", "channel", "key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    hotline_id: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(16))
    key: Mapped[str] = mapped_column(String(255))
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("case_messages.id", ondelete="CASCADE"))
    created: Mapped[bool] = mapped_column(default=False)  # the first copy opened the case
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utc_now)
