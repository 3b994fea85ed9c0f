"""What the console reads of the written channels (issue 14): the queue of
written work (open cases that came by SMS, email, Zalo, the web form or
Open311) and its counts per channel. Plain synchronous functions, scoped by
:class:`ivr.web.access.AccessScope` exactly like the case list (handlers run
them in a thread)."""

from __future__ import annotations

import logging
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, func, select
from sqlalchemy.orm import Session, sessionmaker

from ivr.cases.models import OPEN_STATUSES, Case, CaseEvent
from ivr.contracts.channels import WRITTEN_CHANNELS, Channel, ContactKind, MessageDirection
from ivr.intake.models import PENDING, CaseAttachment, CaseMessage, CitizenContact
from ivr.web.access import AccessScope
from ivr.web.i18n import N_

logger = logging.getLogger(__name__)

MAX_ROWS = 500
# The two orders an agent picks from: the work closest to (or past) its
# deadline first, or what just came in.
ORDERS = ("due", "newest")


def _written_open(scope: AccessScope, channel: Channel | None) -> ColumnElement[bool]:
    channels = (channel,) if channel is not None else WRITTEN_CHANNELS
    return and_(
        Case.channel.in_([c.value for c in channels]),
        Case.status.in_(list(OPEN_STATUSES)),
        scope.case_condition(),
    )


def written_queue_query(
    scope: AccessScope, channel: Channel | None = None, order: str = "due", limit: int = MAX_ROWS
) -> Select[Case]:
    """The open written cases ``scope`` may read, oldest due date first (then
    the longest waiting), or newest first."""
    query = select(Case).where(_written_open(scope, channel))
    if order == "newest":
        query = query.order_by(Case.received_at.desc(), Case.id.desc())
    else:
        query = query.order_by(Case.due_date, Case.received_at, Case.id)
    return query.limit(limit)


def written_queue(
    sessions: sessionmaker[Session],
    scope: AccessScope,
    channel: Channel | None = None,
    order: str = "due",
    limit: int = MAX_ROWS,
) -> list[Case]:
    with sessions() as session:
        return list(session.scalars(written_queue_query(scope, channel, order, limit)))


def written_counts(sessions: sessionmaker[Session], scope: AccessScope) -> dict[str, int]:
    """Open written cases per channel that ``scope`` may read; every written
    channel is listed, with 0 when none is waiting."""
    counts: dict[str, int] = {c.value: 0 for c in WRITTEN_CHANNELS}
    query = select(Case.channel, func.count()).where(_written_open(scope, None))
    with sessions() as session:
        for channel, count in session.execute(query.group_by(Case.channel)):
            counts[str(channel)] = int(count)
    return counts


def written_counts_json(counts: dict[str, int]) -> dict[str, Any]:
    return {"total": sum(counts.values()), "by_channel": counts}


# --- one case's thread and attachments ------------------------------------------------


@dataclass
class CaseThread:
    """What the case page shows of the written channels: the messages in both
    directions, oldest first, and the files the citizen sent."""

    messages: list[CaseMessage] = field(default_factory=list)
    attachments: list[CaseAttachment] = field(default_factory=list)
    # message id → its attachments (those sent with no message: under None)
    by_message: dict[int | None, list[CaseAttachment]] = field(default_factory=dict)
    contacts: list[CitizenContact] = field(default_factory=list)


def case_thread(sessions: sessionmaker[Session], case: Case) -> CaseThread:
    with sessions() as session:
        messages = list(
            session.scalars(
                select(CaseMessage)
                .where(CaseMessage.case_id == case.id)
                .order_by(CaseMessage.at, CaseMessage.id)
            )
        )
        attachments = list(
            session.scalars(
                select(CaseAttachment)
                .where(CaseAttachment.case_id == case.id)
                .order_by(CaseAttachment.id)
            )
        )
        contacts = (
            list(
                session.scalars(
                    select(CitizenContact)
                    .where(CitizenContact.citizen_id == case.citizen_id)
                    .order_by(CitizenContact.kind, CitizenContact.id)
                )
            )
            if case.citizen_id is not None
            else []
        )
    thread = CaseThread(messages, attachments, contacts=contacts)
    for attachment in attachments:
        thread.by_message.setdefault(attachment.message_id, []).append(attachment)
    return thread


def case_attachment(
    sessions: sessionmaker[Session], case_code: str, attachment_id: int
) -> CaseAttachment | None:
    """The attachment ``attachment_id`` if it belongs to the case ``case_code``
    (and retention has not removed its file); None otherwise."""
    with sessions() as session:
        return session.scalar(
            select(CaseAttachment)
            .join(Case, Case.id == CaseAttachment.case_id)
            .where(
                CaseAttachment.id == attachment_id,
                Case.code == case_code,
                CaseAttachment.erased_at.is_(None),
            )
        )


# --- the screen-pop: the caller's other contacts and written cases -----------------


@dataclass
class CitizenOnOtherChannels:
    """What the screen-pop adds for a caller known from the written channels:
    their other contacts (email, Zalo) and their open written cases."""

    contacts: list[CitizenContact] = field(default_factory=list)
    written_cases: list[Case] = field(default_factory=list)
    readable_cases: set[str] = field(default_factory=set)


def citizen_of_caller(
    sessions: sessionmaker[Session],
    e164: str | None,
    scope: AccessScope,
    hotline_id: str | None = None,
    limit: int = 20,
) -> CitizenOnOtherChannels:
    """The citizens whose phone contact is ``e164``, in the hotlines ``scope``
    sees (a citizen belongs to one hotline: another hotline's are not even
    listed), or only ``hotline_id``'s (the hotline of the call): their other
    contacts, and their open written cases, marked readable by ``scope``."""
    found = CitizenOnOtherChannels()
    if not e164:
        return found
    owners = select(CitizenContact.citizen_id).where(
        CitizenContact.kind == ContactKind.PHONE.value, CitizenContact.value == e164
    )
    if hotline_id is not None:
        owners = owners.where(CitizenContact.hotline_id == hotline_id)
    if not scope.sees_everything:
        owners = owners.where(CitizenContact.hotline_id == scope.hotline_id)
    with sessions() as session:
        citizen_ids = list(session.scalars(owners.limit(limit)))
        if not citizen_ids:
            return found
        found.contacts = list(
            session.scalars(
                select(CitizenContact)
                .where(
                    CitizenContact.citizen_id.in_(citizen_ids),
                    ~and_(
                        CitizenContact.kind == ContactKind.PHONE.value,
                        CitizenContact.value == e164,
                    ),
                )
                .order_by(CitizenContact.kind, CitizenContact.id)
            )
        )
        found.written_cases = list(
            session.scalars(
                select(Case)
                .where(
                    Case.citizen_id.in_(citizen_ids),
                    Case.channel.in_([c.value for c in WRITTEN_CHANNELS]),
                    Case.status.in_(list(OPEN_STATUSES)),
                )
                .order_by(Case.received_at.desc())
                .limit(limit)
            )
        )
        case_ids = [c.id for c in found.written_cases]
        found.readable_cases = set(
            session.scalars(select(Case.code).where(Case.id.in_(case_ids), scope.case_condition()))
        )
    return found


# --- a reply from the case page ----------------------------------------------------------

REPLY_LIMIT = 4000
SMS_REPLY_LIMIT = 480  # three concatenated Unicode SMS parts, as the case service's texts
# Where a reply to a case from a channel with no way back (the web form, an
# Open311 app) goes: the citizen's email, else their phone by SMS.
_FALLBACK = ((Channel.EMAIL, ContactKind.EMAIL), (Channel.SMS, ContactKind.PHONE))
_OWN_CONTACT = {
    Channel.SMS: ContactKind.PHONE,
    Channel.EMAIL: ContactKind.EMAIL,
    Channel.ZALO: ContactKind.ZALO,
}


class ReplyRefused(ValueError):
    """A reply that cannot be queued; the message says why (English source
    text, translated by the console)."""


def reply_text(text: str) -> str:
    """The agent's text as it may leave: newlines kept (CRLF read as one), no
    other control character, not empty."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").strip()
    if any(unicodedata.category(ch) == "Cc" and ch not in "\n\t" for ch in text):
        raise ReplyRefused(N_("The reply holds a control character."))
    if not text:
        raise ReplyRefused(N_("Write the reply first."))
    return unicodedata.normalize("NFC", text)


def _reply_route(session: Session, case: Case) -> tuple[Channel, str, str] | None:
    """(channel, address, subject of the citizen's last message) for a reply:
    on the case's own channel to where the citizen last wrote from, else to
    their contact of that kind; web form and Open311 cases by email or SMS."""
    try:
        channel = Channel(case.channel)
    except ValueError:
        return None
    if channel in _OWN_CONTACT:
        last = session.execute(
            select(CaseMessage.sender, CaseMessage.subject)
            .where(
                CaseMessage.case_id == case.id,
                CaseMessage.direction == MessageDirection.INBOUND.value,
                CaseMessage.channel == channel.value,
                CaseMessage.sender.is_not(None),
            )
            .order_by(CaseMessage.at.desc(), CaseMessage.id.desc())
            .limit(1)
        ).one_or_none()
        if last is not None and last.sender:
            return channel, last.sender, last.subject or ""
        routes: tuple[tuple[Channel, ContactKind], ...] = ((channel, _OWN_CONTACT[channel]),)
    elif channel in WRITTEN_CHANNELS:
        routes = _FALLBACK
    else:
        return None
    for route_channel, kind in routes:
        if case.citizen_id is not None:
            value = session.scalar(
                select(CitizenContact.value)
                .where(CitizenContact.citizen_id == case.citizen_id, CitizenContact.kind == kind)
                .order_by(CitizenContact.last_seen_at.desc(), CitizenContact.id.desc())
                .limit(1)
            )
            if value:
                return route_channel, value, ""
        if kind == ContactKind.PHONE and case.caller_number:
            return route_channel, case.caller_number, ""
    return None


def queue_reply(
    sessions: sessionmaker[Session], case_code: str, text: str, actor: str, now: datetime
) -> CaseMessage:
    """An agent's reply to the citizen: an outbound row of the case's thread
    (``pending``; the reply dispatcher delivers it and records the outcome)
    and a line in the case's history, in one transaction."""
    text = reply_text(text)
    with sessions.begin() as session:
        case = session.scalar(select(Case).where(Case.code == case_code).with_for_update())
        if case is None:
            raise ReplyRefused(N_("No such case."))
        route = _reply_route(session, case)
        if route is None:
            raise ReplyRefused(N_("This case has no contact to reply to on a written channel."))
        channel, to, subject = route
        if channel == Channel.EMAIL and not subject:
            subject = f"[Mã số {case.code}] Trả lời phản ánh"
        limit = SMS_REPLY_LIMIT if channel == Channel.SMS else REPLY_LIMIT
        if len(text) > limit:
            raise ReplyRefused(
                N_("The reply is too long for its channel (an SMS: 480 characters).")
            )
        if channel != Channel.EMAIL:
            subject = ""  # only a mail has a subject line
        elif subject and case.code not in subject:
            subject = subject if subject.lower().startswith("re:") else f"Re: {subject}"
            subject = f"{subject} [Mã số {case.code}]"
        message = CaseMessage(
            case_id=case.id, direction=MessageDirection.OUTBOUND.value, channel=channel.value,
            purpose="reply", subject=subject[:255],
            text=text, at=now, to=to, status=PENDING, next_attempt_at=now,
        )  # fmt: skip
        session.add(message)
        session.add(CaseEvent(case_id=case.id, at=now, actor=actor, action="reply",
                              note=f"{channel.value}: {text[:500]}"))  # fmt: skip
        case.updated_at = now
        session.flush()
        return message
