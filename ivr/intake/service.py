"""The one intake every written channel uses: a :class:`Submission` becomes a
citizen, a case (or a message on an existing one), its attachments and the
acknowledgement, in one transaction.

Synchronous SQLAlchemy like the case service: aiohttp handlers and the SMTP
receiver call :meth:`IntakeService.submit` from a thread.

Who the citizen is: each contact (E.164 number, lower-cased email address,
Zalo user id) belongs to one citizen of one hotline. Contacts that arrive
together link to one citizen; when they belonged to two citizens, those are
merged (the person told us both are theirs). A contact typed into the web form
is a claim, not a proof: the status lookup therefore also needs the case code,
which is random (see CaseService._new_code).
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import bindparam, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from ivr.cases.models import ANSWERED, CLOSED, Case, CaseEvent, SmsMessage
from ivr.cases.service import CaseError, CaseService
from ivr.config.channels import AttachmentLimits
from ivr.config.schema import HotlineConfig
from ivr.config.source import ConfigSource
from ivr.contracts.channels import Channel, ContactKind, MessageDirection
from ivr.db.models import utc_now
from ivr.intake import attachments as files
from ivr.intake.models import (
    PENDING,
    CaseAttachment,
    CaseMessage,
    Citizen,
    CitizenContact,
    IntakeKey,
)
from ivr.intake.types import IntakeRefused, IntakeResult, Submission

logger = logging.getLogger(__name__)

TEXT_LIMIT = 10_000
SUBJECT_LIMIT = 255
NAME_LIMIT = 128
ADDRESS_LIMIT = 500
KEY_LIMIT = 255
_ATTEMPTS = 20  # code collisions, a contact written by a concurrent submission
_PHONE = re.compile(r"^\+[1-9][0-9]{6,14}$")
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,189}\.[^@\s]{1,63}$")
_ZALO = re.compile(r"^[0-9A-Za-z_-]{1,64}$")
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
ANSWER_HOOK = "intake"


@dataclass(frozen=True)
class CaseStatusView:
    """What a citizen may see of their case when they give its code and one
    of their contacts."""

    case_code: str
    status: str
    channel: str
    topic: str | None
    received_at: datetime
    due_date: date
    answered_at: datetime | None
    answer: str


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


def _control_free(value: str, field_name: str, *, multiline: bool) -> str:
    """Refuse control characters (newline and tab allowed in multi-line text,
    where CRLF and CR are read as a newline); NFC so Vietnamese compares."""
    if multiline:
        value = value.replace("\r\n", "\n").replace("\r", "\n")
    allowed = {"\n", "\t"} if multiline else set()
    for ch in value:
        if ch not in allowed and unicodedata.category(ch) == "Cc":
            raise IntakeRefused(
                f"trường {field_name} chứa ký tự điều khiển không hợp lệ "
                f"(control character U+{ord(ch):04X} refused)",
                field_name,
            )
    return unicodedata.normalize("NFC", value)


def _bounded(value: str, field_name: str, limit: int, *, multiline: bool = False) -> str:
    value = _control_free(value or "", field_name, multiline=multiline).strip()
    if len(value) > limit:
        raise IntakeRefused(
            f"trường {field_name} quá dài: {len(value)} ký tự, tối đa {limit} "
            f"(at most {limit} characters)",
            field_name,
        )
    return value


def normalise_contact(kind: ContactKind, value: str) -> str:
    """The stored spelling of a contact, or :class:`IntakeRefused`."""
    value = _control_free(value or "", "contacts", multiline=False).strip()
    if kind == ContactKind.EMAIL:
        value = value.lower()
        ok = bool(_EMAIL.match(value)) and len(value) <= 254
    elif kind == ContactKind.PHONE:
        ok = bool(_PHONE.match(value))
    else:
        ok = bool(_ZALO.match(value))
    if not ok:
        raise IntakeRefused(f"liên hệ {kind.value} không hợp lệ (invalid {kind.value})", "contacts")
    return value


@dataclass
class _Checked:
    """A submission after validation: what the transaction writes."""

    submission: Submission
    text: str
    subject: str
    name: str
    address: str
    contacts: list[tuple[ContactKind, str]]
    key: str | None
    external_id: str | None
    attachments: list[files.ProcessedAttachment]


class IntakeService:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        config: HotlineConfig | ConfigSource,
        cases: CaseService,
        attachments_root: Path,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._sessions = sessions
        self.config_source = ConfigSource.of(config)
        self._cases = cases
        # ``paths.recordings``/attachments (ivr.web.intake_state.attachments_root,
        # files.ATTACHMENTS_FOLDER). Rows store paths relative to it
        # ("<hotline>/<yyyy>/<mm>/<random name>"): the console serves them from
        # there, retention removes them from there.
        self.attachments_root = Path(attachments_root)
        self._clock = clock
        # Answers to email and Zalo cases go back on their thread; the hook runs
        # in the transaction that answers the case (ivr.cases does not import
        # this package). Registered by name: a second intake replaces it.
        cases.set_answer_hook(ANSWER_HOOK, queue_answer)
        # Called after a commit that queued an outbound row (the dispatcher's wake).
        self.on_outbound: Callable[[], None] | None = None

    @property
    def _config(self) -> HotlineConfig:
        return self.config_source.current

    @property
    def _limits(self) -> AttachmentLimits:
        return self._config.channels.attachments

    # --- submit ----------------------------------------------------------------

    def submit(self, submission: Submission) -> IntakeResult:
        """Store one message from a citizen, or raise :class:`IntakeRefused`
        having written nothing. The same idempotency key again returns the
        first result with ``duplicate=True``."""
        checked = self._check(submission)
        # A retried copy with files is answered before its photos are decoded
        # again. Without files the look-up in the write transaction answers it:
        # a session of its own here would cost four more round trips per
        # submission (checkout ping, BEGIN, the SELECT, ROLLBACK).
        if (
            checked.key is not None
            and submission.attachments
            and (known := self._result_for_key(checked)) is not None
        ):
            return known
        checked.attachments = [files.process(a, self._limits) for a in submission.attachments]
        for _attempt in range(_ATTEMPTS):
            staged = files.StagedFiles(self.attachments_root)
            try:
                with self._sessions.begin() as session:
                    result, sms, outbound = self._write(session, checked, staged)
            except (IntegrityError, OperationalError) as exc:
                staged.rollback()
                # SQLite's busy writer, PostgreSQL's deadlock between two merges:
                # transient, like the races below. Anything else is a fault.
                transient = ("locked", "deadlock", "could not serialize")
                if isinstance(exc, OperationalError) and not any(
                    word in str(exc).lower() for word in transient
                ):
                    raise
                # Another transaction won a race: the same key (its result is
                # ours), a contact (it now exists), or a case code (draw again).
                winner = self._result_for_key(checked)
                if winner is not None:
                    return winner
                logger.info("intake write lost a race (%s), trying again", type(exc).__name__)
                continue
            except BaseException:
                staged.rollback()
                raise
            staged.commit()
            if result.duplicate:
                return result
            self._cases.deliver_queued_sms(sms)
            if outbound and self.on_outbound is not None:
                self.on_outbound()
            return result
        raise CaseError("could not store the submission after several attempts")

    def _check(self, s: Submission) -> _Checked:
        config = self._config
        if config.hotline(s.hotline_id) is None:
            raise IntakeRefused(f"không có đường dây {s.hotline_id!r} (unknown hotline)", "hotline")
        try:
            Channel(s.channel)
        except ValueError:
            raise IntakeRefused(f"unknown channel {s.channel!r}", "channel") from None
        text = _bounded(s.text, "text", TEXT_LIMIT, multiline=True)
        subject = _bounded(s.subject, "subject", SUBJECT_LIMIT)
        name = _bounded(s.name, "name", NAME_LIMIT)
        address = _bounded(s.address, "address", ADDRESS_LIMIT, multiline=True)
        address = " ".join(address.split())
        if s.topic is not None and s.topic not in {t.code for t in config.cases.topics}:
            raise IntakeRefused(f"lĩnh vực {s.topic!r} không có (unknown topic)", "topic")
        if s.area_code is not None and config.area(s.area_code) is None:
            raise IntakeRefused(f"địa bàn {s.area_code!r} không có (unknown area)", "area_code")
        if (s.latitude is None) != (s.longitude is None):
            raise IntakeRefused("cần cả vĩ độ và kinh độ (latitude and longitude)", "latitude")
        if (
            s.latitude is not None
            and s.longitude is not None
            and not (-90 <= s.latitude <= 90 and -180 <= s.longitude <= 180)
        ):
            raise IntakeRefused("tọa độ không hợp lệ (coordinates out of range)", "latitude")
        contacts: list[tuple[ContactKind, str]] = []
        for kind, value in s.contacts:
            try:
                contact_kind = ContactKind(kind)
            except ValueError:
                raise IntakeRefused(f"unknown contact kind {kind!r}", "contacts") from None
            pair = (contact_kind, normalise_contact(contact_kind, value))
            if pair not in contacts:
                contacts.append(pair)
        key = _bounded(s.idempotency_key or "", "idempotency_key", KEY_LIMIT) or None
        external_id = _bounded(s.external_id or "", "external_id", KEY_LIMIT) or None
        if len(s.attachments) > self._limits.max_per_message:
            raise IntakeRefused(
                f"tối đa {self._limits.max_per_message} tệp đính kèm "
                f"(at most {self._limits.max_per_message} attachments)",
                "attachments",
            )
        if not text and not s.attachments:
            raise IntakeRefused("xin nhập nội dung phản ánh (the text is empty)", "text")
        # The files are checked by submit, after the idempotency key.
        return _Checked(s, text, subject, name, address, contacts, key, external_id, [])

    def _write(
        self, session: Session, c: _Checked, staged: files.StagedFiles
    ) -> tuple[IntakeResult, SmsMessage | None, bool]:
        s = c.submission
        now = self._clock()
        if c.key is not None:
            found = _key_result(session, s.hotline_id, s.channel, c.key)
            if found is not None:
                return found, None, False
        citizen = self._citizen_for(session, s.hotline_id, c.contacts, c.name, now)
        case = self._joined_case(session, s, citizen)
        sms: SmsMessage | None = None
        created = case is None
        phone = next((v for k, v in c.contacts if k == ContactKind.PHONE), None)
        if case is None:
            summary = f"{c.subject}\n\n{c.text}".strip() if c.subject else c.text
            # Written with the case's INSERT, not as an UPDATE after it.
            columns: dict[str, Any] = {"address": c.address}
            columns["latitude"], columns["longitude"] = _position(c)
            if s.publish_consent:
                columns.update(
                    publish_consent=True,
                    publish_consent_by=f"citizen:{s.channel}",
                    publish_consent_at=now,
                    publish_consent_note=f"given with the submission ({s.channel})",
                )
            try:
                case, sms = self._cases.open_case_in(
                    session,
                    now=now,
                    channel=s.channel,
                    hotline_id=s.hotline_id,
                    caller_number=phone,
                    caller_name=c.name,
                    area_code=s.area_code,
                    topic=s.topic,
                    summary=summary,
                    actor=f"citizen:{s.channel}",
                    citizen_id=citizen.id if citizen else None,
                    columns=columns,
                )
            except CaseError as exc:
                raise IntakeRefused(str(exc), "topic") from exc
        else:
            case.updated_at = now
            session.add(
                CaseEvent(case_id=case.id, at=now, actor=f"citizen:{s.channel}",
                          action="message", note=f"{len(c.text)} characters")
            )  # fmt: skip
        sender_kind = CHANNEL_CONTACT.get(Channel(s.channel))
        sender = next((v for k, v in c.contacts if k == sender_kind), None)
        # The message and the key are plain INSERTs, not objects for the
        # session's flush: each flush costs more than its statement, and the
        # message's id (for the key and the attachments) is the INSERT's own.
        # Objects still pending (attachments, a joined case's history) go in
        # with the flush below.
        message_id: int = session.execute(
            _INSERT_MESSAGE,
            {
                "case_id": case.id, "direction": MessageDirection.INBOUND,
                "channel": s.channel, "purpose": "message", "subject": c.subject,
                "text": c.text, "external_id": c.external_id, "at": now, "sender": sender,
            },
        ).inserted_primary_key[0]  # fmt: skip
        folder = files.relative_folder(s.hotline_id, now)
        for item in c.attachments:
            path = staged.stage(folder, item.extension, item.content)
            thumb = staged.stage(folder, "thumb.jpg", item.thumbnail) if item.thumbnail else None
            session.add(
                CaseAttachment(
                    case_id=case.id, message_id=message_id, kind=item.kind,
                    media_type=item.media_type, filename=item.filename, path=path,
                    thumbnail_path=thumb, size=len(item.content), sha256=item.sha256,
                    created_at=now,
                )
            )  # fmt: skip
        outbound = False
        if created and Channel(s.channel) in REPLY_CHANNELS and sender:
            hotline = self._config.hotline(s.hotline_id)
            unit = hotline.unit_name if hotline else ""
            session.add(
                CaseMessage(
                    case_id=case.id, direction=MessageDirection.OUTBOUND, channel=s.channel,
                    purpose="case_opened", subject=_reply_subject(case.code, c.subject),
                    text=(
                        f"{unit}: phản ánh của quý vị đã được tiếp nhận, mã số {case.code}. "
                        f"Hạn trả lời: {case.due_date.strftime('%d/%m/%Y')}."
                    ).strip(": "),
                    at=now, to=sender, status=PENDING, next_attempt_at=now,
                )
            )  # fmt: skip
            outbound = True
        if c.key is not None:
            # A copy that raced this one past the look-up fails here, on the
            # unique constraint (IntegrityError: submit reads the winner's result).
            session.execute(
                _INSERT_KEY,
                {
                    "hotline_id": s.hotline_id, "channel": s.channel, "key": c.key,
                    "case_id": case.id, "message_id": message_id, "created": created,
                    "created_at": now,
                },
            )  # fmt: skip
        session.flush()
        return IntakeResult(case.code, case.id, message_id, created), sms, outbound

    def _result_for_key(self, c: _Checked) -> IntakeResult | None:
        if c.key is None:
            return None
        with self._sessions() as session:
            return _key_result(session, c.submission.hotline_id, c.submission.channel, c.key)

    def _citizen_for(
        self,
        session: Session,
        hotline_id: str,
        contacts: list[tuple[ContactKind, str]],
        name: str,
        now: datetime,
    ) -> Citizen | None:
        """The one citizen these contacts belong to, created or merged as needed;
        None without contacts (an anonymous report)."""
        if not contacts:
            return None
        rows = _contacts_matching(session, hotline_id, contacts)
        owners = sorted({row.citizen_id for row in rows})
        if not owners:
            citizen = Citizen(hotline_id=hotline_id, name=name, created_at=now, updated_at=now)
            session.add(citizen)
            session.flush()
        else:
            oldest = session.get(Citizen, owners[0], with_for_update=True)
            assert oldest is not None
            citizen = oldest
            others = owners[1:]
            if others:
                # Two known citizens named together: one person. The oldest
                # record stays; the others' contacts and cases move to it.
                session.execute(
                    update(CitizenContact)
                    .where(CitizenContact.citizen_id.in_(others))
                    .values(citizen_id=citizen.id)
                )
                session.execute(
                    update(Case).where(Case.citizen_id.in_(others)).values(citizen_id=citizen.id)
                )
                session.execute(delete(Citizen).where(Citizen.id.in_(others)))
                logger.info("merged citizens %s into %s", others, citizen.id)
            if name and not citizen.name:
                citizen.name = name
            citizen.updated_at = now
        known = {(ContactKind(r.kind), r.value) for r in rows}
        for kind, value in contacts:
            if (kind, value) not in known:
                session.add(
                    CitizenContact(
                        citizen_id=citizen.id, hotline_id=hotline_id, kind=kind, value=value,
                        created_at=now, last_seen_at=now,
                    )
                )  # fmt: skip
        if rows:
            session.execute(
                update(CitizenContact)
                .where(CitizenContact.id.in_([r.id for r in rows]))
                .values(last_seen_at=now)
            )
        session.flush()
        return citizen

    def _joined_case(self, session: Session, s: Submission, citizen: Citizen | None) -> Case | None:
        """The case a message continues: named by its code, of this hotline and
        this citizen. Anything else opens a new case (never someone else's)."""
        if not s.case_code or citizen is None:
            return None
        digits = "".join(ch for ch in s.case_code if ch.isdigit())
        if not digits:
            return None
        return session.scalar(
            select(Case)
            .where(
                Case.code == digits,
                Case.hotline_id == s.hotline_id,
                Case.citizen_id == citizen.id,
            )
            .with_for_update()
        )

    # --- reads -----------------------------------------------------------------

    def status(
        self, case_code: str, contact: tuple[ContactKind, str] | None
    ) -> CaseStatusView | None:
        """The case's status for a citizen who gives its code and one of their
        contacts; None when the code is unknown or the contact is not the
        case's citizen's (the same answer, so codes cannot be probed)."""
        digits = "".join(ch for ch in case_code or "" if ch.isdigit())
        if not digits or contact is None:
            return None
        try:
            kind = ContactKind(contact[0])
            value = normalise_contact(kind, contact[1])
        except (ValueError, IntakeRefused):
            return None
        with self._sessions() as session:
            case = session.scalar(select(Case).where(Case.code == digits))
            if case is None:
                return None
            if not _contact_reaches_case(session, case, kind, value):
                return None
            # An answer sent back for review (answered → in progress) is not
            # the citizen's answer yet.
            answered_at = (
                session.scalar(
                    select(func.max(CaseEvent.at)).where(
                        CaseEvent.case_id == case.id, CaseEvent.to_status == ANSWERED
                    )
                )
                if case.status in (ANSWERED, CLOSED)
                else None
            )
            return CaseStatusView(
                case_code=case.code, status=case.status, channel=case.channel, topic=case.topic,
                received_at=case.received_at, due_date=case.due_date,
                answered_at=answered_at, answer=case.answer if answered_at else "",
            )  # fmt: skip

    def thread(self, case_id: int) -> list[ThreadEntry]:
        """The case's messages both ways, oldest first, each with its attachments."""
        with self._sessions() as session:
            messages = list(
                session.scalars(
                    select(CaseMessage)
                    .where(CaseMessage.case_id == case_id)
                    .order_by(CaseMessage.at, CaseMessage.id)
                )
            )
            found = list(
                session.scalars(
                    select(CaseAttachment)
                    .where(CaseAttachment.case_id == case_id)
                    .order_by(CaseAttachment.id)
                )
            )
        by_message: dict[int | None, list[CaseAttachment]] = {}
        for item in found:
            by_message.setdefault(item.message_id, []).append(item)
        return [ThreadEntry(m, by_message.get(m.id, [])) for m in messages]

    def attachments_of(self, case_id: int) -> list[CaseAttachment]:
        with self._sessions() as session:
            return list(
                session.scalars(
                    select(CaseAttachment)
                    .where(CaseAttachment.case_id == case_id)
                    .order_by(CaseAttachment.id)
                )
            )

    def attachment_for(self, case_id: int, attachment_id: int) -> StoredAttachment | None:
        """The attachment ``attachment_id`` if it belongs to ``case_id`` (the
        caller has checked the user may read that case), with its files' paths;
        None otherwise. Paths never leave the attachments root."""
        with self._sessions() as session:
            row = session.scalar(
                select(CaseAttachment).where(
                    CaseAttachment.id == attachment_id, CaseAttachment.case_id == case_id
                )
            )
        if row is None:
            return None
        return StoredAttachment(row, self._inside(row.path), self._inside(row.thumbnail_path))

    def _inside(self, relative: str | None) -> Path | None:
        if not relative:
            return None
        root = self.attachments_root.resolve()
        path = (root / relative).resolve()
        if not path.is_relative_to(root) or not path.is_file():
            return None
        return path

    def contacts_of_number(self, hotline_id: str, e164: str) -> list[tuple[ContactKind, str]]:
        """Every contact of the citizen who owns this number on this hotline
        (the agent's screen-pop): the number itself, their email, Zalo id."""
        with self._sessions() as session:
            owner = session.scalar(
                select(CitizenContact.citizen_id).where(
                    CitizenContact.hotline_id == hotline_id,
                    CitizenContact.kind == ContactKind.PHONE,
                    CitizenContact.value == e164,
                )
            )
            if owner is None:
                return []
            rows = session.execute(
                select(CitizenContact.kind, CitizenContact.value)
                .where(CitizenContact.citizen_id == owner)
                .order_by(CitizenContact.id)
            ).all()
        return [(ContactKind(kind), value) for kind, value in rows]

    def citizen_of_case(self, case_id: int) -> Citizen | None:
        with self._sessions() as session:
            case = session.get(Case, case_id)
            return session.get(Citizen, case.citizen_id) if case and case.citizen_id else None


# --- helpers shared with the answer hook -------------------------------------


def _position(c: _Checked) -> tuple[float | None, float | None]:
    """Where a new case is: the position given, or, when the citizen chose to
    share where they are and typed none, the first photo's (read before its
    metadata was stripped)."""
    s = c.submission
    if s.latitude is None and s.share_location:
        gps = next((item.gps for item in c.attachments if item.gps), None)
        if gps is not None:
            return gps
    return s.latitude, s.longitude


def _reply_subject(code: str, subject: str) -> str:
    base = f"[Mã số {code}]"
    if subject and code not in subject:
        subject = subject if subject.lower().startswith("re:") else f"Re: {subject}"
        return f"{subject} {base}"[:SUBJECT_LIMIT]
    return (subject or f"{base} Phản ánh đã được tiếp nhận")[:SUBJECT_LIMIT]


# Built once, values bound at execution: building and hashing the statement
# for every submission cost more than running it. On the tables, not the mapped
# classes: a plain query skips the ORM's result handling.
_KEYS, _CASES = IntakeKey.__table__.c, Case.__table__.c
_KEY_RESULT = (
    select(_KEYS.case_id, _KEYS.message_id, _KEYS.created, _CASES.code)
    .join_from(IntakeKey.__table__, Case.__table__, _CASES.id == _KEYS.case_id)
    .where(
        _KEYS.hotline_id == bindparam("hotline_id"),
        _KEYS.channel == bindparam("channel"),
        _KEYS.key == bindparam("key"),
    )
)


_INSERT_MESSAGE = insert(CaseMessage.__table__)
_INSERT_KEY = insert(IntakeKey.__table__)


def _key_result(session: Session, hotline_id: str, channel: str, key: str) -> IntakeResult | None:
    row = session.execute(
        _KEY_RESULT, {"hotline_id": hotline_id, "channel": channel, "key": key}
    ).one_or_none()
    if row is None:
        return None
    return IntakeResult(row.code, row.case_id, row.message_id, row.created, duplicate=True)


def _contacts_matching(
    session: Session, hotline_id: str, contacts: Iterable[tuple[ContactKind, str]]
) -> list[CitizenContact]:
    found: list[CitizenContact] = []
    for kind, value in contacts:
        row = session.scalar(
            select(CitizenContact).where(
                CitizenContact.hotline_id == hotline_id,
                CitizenContact.kind == kind,
                CitizenContact.value == value,
            )
        )
        if row is not None:
            found.append(row)
    return found


def _contact_reaches_case(session: Session, case: Case, kind: ContactKind, value: str) -> bool:
    if case.citizen_id is not None:
        owner = session.scalar(
            select(CitizenContact.citizen_id).where(
                CitizenContact.hotline_id == case.hotline_id,
                CitizenContact.kind == kind,
                CitizenContact.value == value,
            )
        )
        if owner == case.citizen_id:
            return True
    # A phone case from before issue 14 (no citizen): its caller's number.
    return kind == ContactKind.PHONE and bool(case.caller_number) and case.caller_number == value


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
            purpose="case_answered", subject=_reply_subject(case.code, last.subject),
            text=case.answer, at=now, to=last.sender, status=PENDING, next_attempt_at=now,
        )
    )  # fmt: skip
