"""The one intake every written channel uses: a :class:`Submission` becomes a
citizen, a case (or a message on an existing one), its attachments and the
acknowledgement, in one transaction.

Synchronous SQLAlchemy like the case service: aiohttp handlers and the SMTP
receiver call :meth:`IntakeService.submit` from a thread.

This module is the transaction and the service's face; each step has a module
of its own: the checks (:mod:`ivr.intake.checks`), who the citizen is
(:mod:`ivr.intake.citizens`), which case (:mod:`ivr.intake.case_opening`), the
thread of messages and files (:mod:`ivr.intake.thread`), the idempotency keys
(:mod:`ivr.intake.idempotency`) and the citizen's status lookup
(:mod:`ivr.intake.status`). Their public names are importable from here too.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from ivr.cases.models import SmsMessage
from ivr.cases.service import CaseError, CaseService
from ivr.config.channels import AttachmentLimits
from ivr.config.schema import HotlineConfig
from ivr.config.source import ConfigSource
from ivr.contracts.channels import Channel, ContactKind
from ivr.db.models import utc_now
from ivr.intake import attachments as files
from ivr.intake import case_opening, citizens
from ivr.intake import thread as message_thread
from ivr.intake.checks import (
    ADDRESS_LIMIT,
    KEY_LIMIT,
    NAME_LIMIT,
    SUBJECT_LIMIT,
    TEXT_LIMIT,
    CheckedSubmission,
    check_submission,
    normalise_contact,
)
from ivr.intake.idempotency import key_result as _key_result
from ivr.intake.idempotency import record_key
from ivr.intake.models import CaseAttachment, Citizen
from ivr.intake.status import CaseStatusView, case_status
from ivr.intake.thread import (
    ANSWER_HOOK,
    CHANNEL_CONTACT,
    REPLY_CHANNELS,
    StoredAttachment,
    ThreadEntry,
    queue_answer,
)
from ivr.intake.types import IntakeResult, Submission

# The names this module had before it was split, for code that imports them here.
__all__ = [
    "ADDRESS_LIMIT",
    "ANSWER_HOOK",
    "CHANNEL_CONTACT",
    "KEY_LIMIT",
    "NAME_LIMIT",
    "REPLY_CHANNELS",
    "SUBJECT_LIMIT",
    "TEXT_LIMIT",
    "CaseStatusView",
    "IntakeService",
    "StoredAttachment",
    "ThreadEntry",
    "normalise_contact",
    "queue_answer",
]

logger = logging.getLogger(__name__)

_ATTEMPTS = 20  # code collisions, a contact written by a concurrent submission
# The key look-up and the attachment rows are reached through this module's
# names (_key_result, CaseAttachment): tests replace them here to stage a race
# and a failed write.


class IntakeService:
    """The written channels' way in: :meth:`submit` stores a message; the
    reads serve the console (thread, attachments, screen-pop) and citizens
    (their case's status)."""

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
        checked = check_submission(self._config, submission)
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

    def _write(
        self, session: Session, c: CheckedSubmission, staged: files.StagedFiles
    ) -> tuple[IntakeResult, SmsMessage | None, bool]:
        """The steps of one submission, in the order their rows depend on each
        other: key, citizen, case, message, files, acknowledgement, key row."""
        s = c.submission
        now = self._clock()
        if c.key is not None:
            found = _key_result(session, s.hotline_id, s.channel, c.key)
            if found is not None:
                return found, None, False
        citizen = citizens.citizen_for(session, s.hotline_id, c.contacts, c.name, now)
        case = case_opening.joined_case(session, s, citizen)
        sms: SmsMessage | None = None
        created = case is None
        phone = next((v for k, v in c.contacts if k == ContactKind.PHONE), None)
        if case is None:
            case, sms = case_opening.open_case(session, self._cases, c, citizen, phone, now)
        else:
            case_opening.note_message(session, case, s.channel, c.text, now)
        sender_kind = CHANNEL_CONTACT.get(Channel(s.channel))
        sender = next((v for k, v in c.contacts if k == sender_kind), None)
        # The message and the key are plain INSERTs; objects still pending
        # (attachments, a joined case's history) go in with the flush below.
        message_id = message_thread.add_inbound(
            session, case_id=case.id, channel=s.channel, subject=c.subject, text=c.text,
            external_id=c.external_id, sender=sender, now=now,
        )  # fmt: skip
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
            message_thread.add_acknowledgement(
                session, case, channel=s.channel, subject=c.subject,
                unit=hotline.unit_name if hotline else "", to=sender, now=now,
            )  # fmt: skip
            outbound = True
        if c.key is not None:
            # A copy that raced this one past the look-up fails here, on the
            # unique constraint (IntegrityError: submit reads the winner's result).
            record_key(
                session, hotline_id=s.hotline_id, channel=s.channel, key=c.key,
                case_id=case.id, message_id=message_id, created=created, now=now,
            )  # fmt: skip
        session.flush()
        return IntakeResult(case.code, case.id, message_id, created), sms, outbound

    def _result_for_key(self, c: CheckedSubmission) -> IntakeResult | None:
        if c.key is None:
            return None
        with self._sessions() as session:
            return _key_result(session, c.submission.hotline_id, c.submission.channel, c.key)

    # --- reads -----------------------------------------------------------------

    def status(
        self, case_code: str, contact: tuple[ContactKind, str] | None
    ) -> CaseStatusView | None:
        """The case's status for a citizen who gives its code and one of their
        contacts; None when the code is unknown or the contact is not the
        case's citizen's (the same answer, so codes cannot be probed)."""
        return case_status(self._sessions, case_code, contact)

    def thread(self, case_id: int) -> list[ThreadEntry]:
        """The case's messages both ways, oldest first, each with its attachments."""
        with self._sessions() as session:
            return message_thread.thread_of(session, case_id)

    def attachments_of(self, case_id: int) -> list[CaseAttachment]:
        with self._sessions() as session:
            return message_thread.attachments_of(session, case_id)

    def attachment_for(self, case_id: int, attachment_id: int) -> StoredAttachment | None:
        """The attachment ``attachment_id`` if it belongs to ``case_id`` (the
        caller has checked the user may read that case), with its files' paths;
        None otherwise. Paths never leave the attachments root."""
        with self._sessions() as session:
            row = message_thread.attachment_row(session, case_id, attachment_id)
        if row is None:
            return None
        return message_thread.stored_attachment(self.attachments_root, row)

    def contacts_of_number(self, hotline_id: str, e164: str) -> list[tuple[ContactKind, str]]:
        """Every contact of the citizen who owns this number on this hotline
        (the agent's screen-pop): the number itself, their email, Zalo id."""
        with self._sessions() as session:
            return citizens.contacts_of_number(session, hotline_id, e164)

    def citizen_of_case(self, case_id: int) -> Citizen | None:
        with self._sessions() as session:
            return citizens.citizen_of_case(session, case_id)
