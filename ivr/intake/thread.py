"""A case's thread: the citizen's messages in, the acknowledgement and the
answer out (queued ``pending`` here, in the transaction of the change they
report; :mod:`ivr.intake.replies` delivers them), and the files attached.

Email and Zalo cases get the acknowledgement and the answer on their own
thread; the others are answered by SMS to the number, or by the code shown to
whoever submitted.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, cast

from sqlalchemy import CursorResult, Table, insert, select
from sqlalchemy.orm import Session

from ivr.cases.models import Case
from ivr.contracts.channels import Channel, ContactKind, MessageDirection
from ivr.intake.checks import SUBJECT_LIMIT
from ivr.intake.models import PENDING, CaseAttachment, CaseMessage

logger = logging.getLogger(__name__)

# The contact a channel's own message comes from (authenticated by the channel:
# the SMTP envelope, the gateway's sender number, Zalo's signed user id).
CHANNEL_CONTACT: dict[Channel, ContactKind] = {
    Channel.SMS: ContactKind.PHONE,
    Channel.EMAIL: ContactKind.EMAIL,
    Channel.ZALO: ContactKind.ZALO,
}
# Channels that get the acknowledgement and the answer on their own thread
# (the others: SMS to the number, or the code shown to the caller of submit).
REPLY_CHANNELS = (Channel.EMAIL, Channel.ZALO)
# The name :func:`queue_answer` is registered under with the case service.
ANSWER_HOOK = "intake"

# Built once: a plain INSERT whose primary key is the message's id, cheaper
# than an object for the session's flush.
_INSERT_MESSAGE = insert(cast(Table, CaseMessage.__table__))


@dataclass(frozen=True)
class ThreadEntry:
    message: CaseMessage
    attachments: list[CaseAttachment] = field(default_factory=list)


@dataclass(frozen=True)
class StoredAttachment:
    """An attachment row with its files' absolute paths (checked to lie under
    the attachments root); None paths: erased or missing."""

    attachment: CaseAttachment
    path: Path | None
    thumbnail: Path | None


# --- writes, in the intake's transaction ------------------------------------------


def add_inbound(
    session: Session,
    *,
    case_id: int,
    channel: str,
    subject: str,
    text: str,
    external_id: str | None,
    sender: str | None,
    now: datetime,
) -> int:
    """The citizen's message on the case's thread; its id."""
    # A plain INSERT, not an object for the session's flush: each flush costs
    # more than its statement, and the message's id (for the key and the
    # attachments) is the INSERT's own.
    inserted = session.execute(
        _INSERT_MESSAGE,
        {
            "case_id": case_id, "direction": MessageDirection.INBOUND,
            "channel": channel, "purpose": "message", "subject": subject,
            "text": text, "external_id": external_id, "at": now, "sender": sender,
        },
    )  # fmt: skip
    # An INSERT's result is a cursor's (the Session's signature says Result),
    # and a single-row INSERT always has its primary key.
    key = cast(CursorResult[Any], inserted).inserted_primary_key
    assert key is not None
    message_id: int = key[0]
    return message_id


def add_acknowledgement(
    session: Session, case: Case, *, channel: str, subject: str, unit: str, to: str, now: datetime
) -> None:
    """Queue the "received, here is your code" reply on a new case's thread."""
    session.add(
        CaseMessage(
            case_id=case.id, direction=MessageDirection.OUTBOUND, channel=channel,
            purpose="case_opened", subject=reply_subject(case.code, subject),
            text=(
                f"{unit}: phản ánh của quý vị đã được tiếp nhận, mã số {case.code}. "
                f"Hạn trả lời: {case.due_date.strftime('%d/%m/%Y')}."
            ).strip(": "),
            at=now, to=to, status=PENDING, next_attempt_at=now,
        )
    )  # fmt: skip


def reply_subject(code: str, subject: str) -> str:
    """The subject of a reply: the citizen's own with the case code, so mail
    clients thread it and the citizen can quote the code."""
    base = f"[Mã số {code}]"
    if subject and code not in subject:
        subject = subject if subject.lower().startswith("re:") else f"Re: {subject}"
        return f"{subject} {base}"[:SUBJECT_LIMIT]
    return (subject or f"{base} Phản ánh đã được tiếp nhận")[:SUBJECT_LIMIT]


def queue_answer(session: Session, case: Case, now: datetime) -> None:
    """The answer hook (:meth:`CaseService.set_answer_hook`): inside the
    transaction that answers an email or Zalo case, queue the answer on its
    thread, to the contact the citizen last wrote from on that channel."""
    try:
        channel = Channel(case.channel)
    except ValueError:
        return
    if channel not in REPLY_CHANNELS or not case.answer:
        return
    last = session.execute(
        select(CaseMessage.sender, CaseMessage.subject)
        .where(
            CaseMessage.case_id == case.id,
            CaseMessage.direction == MessageDirection.INBOUND,
            CaseMessage.channel == channel,
            CaseMessage.sender.is_not(None),
        )
        .order_by(CaseMessage.at.desc(), CaseMessage.id.desc())
        .limit(1)
    ).one_or_none()
    if last is None:
        logger.warning("case %s answered: no %s address to reply to", case.code, channel)
        return
    session.add(
        CaseMessage(
            case_id=case.id, direction=MessageDirection.OUTBOUND, channel=channel,
            purpose="case_answered", subject=reply_subject(case.code, last.subject),
            text=case.answer, at=now, to=last.sender, status=PENDING, next_attempt_at=now,
        )
    )  # fmt: skip


# --- reads ------------------------------------------------------------------------


def thread_of(session: Session, case_id: int) -> list[ThreadEntry]:
    """The case's messages both ways, oldest first, each with its attachments."""
    messages = list(
        session.scalars(
            select(CaseMessage)
            .where(CaseMessage.case_id == case_id)
            .order_by(CaseMessage.at, CaseMessage.id)
        )
    )
    by_message: dict[int | None, list[CaseAttachment]] = {}
    for item in attachments_of(session, case_id):
        by_message.setdefault(item.message_id, []).append(item)
    return [ThreadEntry(m, by_message.get(m.id, [])) for m in messages]


def attachments_of(session: Session, case_id: int) -> list[CaseAttachment]:
    """The case's attachment rows, in the order they came."""
    return list(
        session.scalars(
            select(CaseAttachment)
            .where(CaseAttachment.case_id == case_id)
            .order_by(CaseAttachment.id)
        )
    )


def attachment_row(session: Session, case_id: int, attachment_id: int) -> CaseAttachment | None:
    """The attachment ``attachment_id`` if it belongs to ``case_id``."""
    return session.scalar(
        select(CaseAttachment).where(
            CaseAttachment.id == attachment_id, CaseAttachment.case_id == case_id
        )
    )


def stored_attachment(root: Path, row: CaseAttachment) -> StoredAttachment:
    """The row with its files' paths, None where a path would leave ``root``
    or the file is gone."""
    return StoredAttachment(row, _inside(root, row.path), _inside(root, row.thumbnail_path))


def _inside(root: Path, relative: str | None) -> Path | None:
    if not relative:
        return None
    root = root.resolve()
    path = (root / relative).resolve()
    if not path.is_relative_to(root) or not path.is_file():
        return None
    return path
