"""Forwarding a case to the units responsible, and answering the citizen.

The 1022 process (``../shared/domain.md``): what the hotline cannot answer on
the spot goes to the competent departments, agencies or ward committees, to
several at once when it touches several; each answers back within its own
deadline, and the hotline combines the answers into the one the citizen gets.

- :class:`ForwardingService` forwards a case (one row per unit in
  ``case_forwards``, a deadline in working days on the holiday calendar), lets
  the unit move it (received, in progress, answered, returned as not ours,
  extension requested) and a supervisor grant or refuse more time, each move
  checked against :data:`TRANSITIONS` and written to ``forward_events``; and
  approves the final answer (the case becomes answered, the citizen gets the
  SMS, then it closes).
- :func:`due_checks` is the pure rule for reminders and escalations;
  :meth:`ForwardingService.run_due_checks` applies it once per deadline and
  :class:`ForwardingSchedule` runs that inside ``hotline serve``.

Synchronous SQLAlchemy like :mod:`ivr.cases.service`. Texts to units are
written to ``sms_outbox`` in the transaction of the change and handed to the
gateway after commit; emails are returned as :class:`UnitEmail` and sent by the
caller through a :class:`Notifier` (async, like the SMTP sender).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import re
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Protocol
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload, sessionmaker

from ivr.cases.calendar import WorkingCalendar
from ivr.cases.models import (
    Case,
    CaseEvent,
    CaseForward,
    ForwardAttachment,
    ForwardEvent,
    SmsMessage,
)
from ivr.cases.service import (
    SMS_TEXT_LIMIT,
    CaseError,
    CaseNotFound,
    CaseService,
    deliver_sms,
)
from ivr.cases.sms import SmsGateway, gateway_from_config
from ivr.config.forwarding import ResponsibleUnit
from ivr.config.schema import HotlineConfig
from ivr.config.source import ConfigSource
from ivr.contracts.statuses import OPEN_FORWARD_STATUSES, CaseStatus, ForwardStatus
from ivr.db.executor import DbExecutor
from ivr.db.models import utc_now
from ivr.db.periodic import PeriodicJob
from ivr.phone import normalise_caller

logger = logging.getLogger(__name__)

S = ForwardStatus
# Where a forward may go from each status. A refused extension goes back to
# ``in_progress``; a returned forward is reopened (``sent``) only when the
# hotline forwards the case to that unit again; an answer is final.
TRANSITIONS: dict[ForwardStatus, frozenset[ForwardStatus]] = {
    S.SENT: frozenset({S.RECEIVED, S.IN_PROGRESS, S.ANSWERED, S.RETURNED, S.EXTENSION_REQUESTED}),
    S.RECEIVED: frozenset({S.IN_PROGRESS, S.ANSWERED, S.RETURNED, S.EXTENSION_REQUESTED}),
    S.IN_PROGRESS: frozenset({S.ANSWERED, S.RETURNED, S.EXTENSION_REQUESTED}),
    S.EXTENSION_REQUESTED: frozenset({S.EXTENSION_GRANTED, S.IN_PROGRESS, S.ANSWERED, S.RETURNED}),
    S.EXTENSION_GRANTED: frozenset({S.IN_PROGRESS, S.ANSWERED, S.RETURNED, S.EXTENSION_REQUESTED}),
    S.ANSWERED: frozenset(),
    S.RETURNED: frozenset({S.SENT}),
}
# The case's own status while its forwards are worked on.
_CASE_FORWARDABLE = (
    CaseStatus.RECEIVED,
    CaseStatus.CLASSIFIED,
    CaseStatus.ASSIGNED,
    CaseStatus.IN_PROGRESS,
)
SYSTEM = "system"  # the actor of reminders and escalations
MAX_EXTENSION_DAYS = 60
MAX_ATTACHMENT_BYTES = 20 * 1024 * 1024
ATTACHMENTS_FOLDER = "attachments"  # under paths.recordings, beside the audio
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


class ForwardError(CaseError):
    """A forwarding request the rules do not allow; the message says why."""


class ForwardNotFound(ForwardError):
    pass


@dataclass(frozen=True)
class ForwardRequest:
    """One unit to forward a case to. ``working_days`` None: the config's
    default for the unit's kind or the case's topic."""

    unit_code: str
    working_days: int | None = None
    share_transcript: bool = False
    share_recording: bool = False
    note: str = ""


@dataclass(frozen=True)
class UnitEmail:
    """An email to send once the change that caused it is committed."""

    to: str
    subject: str
    text: str
    forward_id: int | None = None


class Notifier(Protocol):
    """Sends one email (the SMTP sender of ``ivr/notify/email.py`` behind an
    adapter; a fake in tests). Raises on failure."""

    async def email(self, to: str, subject: str, text: str) -> None: ...


async def send_emails(notifier: Notifier | None, emails: Iterable[UnitEmail]) -> int:
    """Send each email; a failure is logged and never undoes the change. The
    number sent."""
    sent = 0
    for email in emails:
        if notifier is None:
            logger.info("no email sender: not sending %r to %s", email.subject, email.to)
            continue
        try:
            await notifier.email(email.to, email.subject, email.text)
            sent += 1
        except Exception as exc:  # a mail server down must not lose the forward
            logger.warning("email %r to %s failed: %s", email.subject, email.to, exc)
    return sent


@dataclass
class Outcome:
    """What a change produced besides the rows: emails to send after commit."""

    forwards: list[CaseForward] = field(default_factory=list)
    emails: list[UnitEmail] = field(default_factory=list)


# --- reminders and escalation: the pure rule ------------------------------------------


class ForwardDue(Protocol):
    """What :func:`due_checks` reads of a forward (a ``CaseForward`` row fits)."""

    @property
    def id(self) -> int: ...
    @property
    def status(self) -> str: ...
    @property
    def due_date(self) -> date: ...
    @property
    def reminded_for(self) -> date | None: ...
    @property
    def escalated_for(self) -> date | None: ...


@dataclass(frozen=True)
class DueChecks:
    reminders: tuple[int, ...]  # forward ids whose unit gets a reminder now
    escalations: tuple[int, ...]  # forward ids overdue, not yet escalated


def due_checks(
    today: date,
    forwards: Iterable[ForwardDue],
    calendar: WorkingCalendar,
    remind_working_days_before: int = 1,
) -> DueChecks:
    """Which open forwards need a reminder (their due date is within
    ``remind_working_days_before`` working days of ``today``) and which are
    overdue (``today`` is past the due date). Each once per due date: a
    forward already reminded or escalated for its current due date is left
    out, and an extension's new date earns a new reminder."""
    reminders: list[int] = []
    escalations: list[int] = []
    for forward in forwards:
        if forward.status not in OPEN_FORWARD_STATUSES:
            continue
        due = forward.due_date
        if today > due:
            if forward.escalated_for != due:
                escalations.append(forward.id)
            continue
        soon = calendar.add_working_days(today, remind_working_days_before) >= due
        if soon and forward.reminded_for != due:
            reminders.append(forward.id)
    return DueChecks(tuple(reminders), tuple(escalations))


@dataclass
class DueRun:
    """What one run of the reminder job did."""

    reminded: list[int] = field(default_factory=list)
    escalated: list[int] = field(default_factory=list)
    emails: list[UnitEmail] = field(default_factory=list)
    # Open forwards past their due date, per hotline (the wallboard's count).
    overdue_by_hotline: dict[str, int] = field(default_factory=dict)
    # (hotline id, case code, unit code) of each escalation of this run.
    escalations: list[tuple[str, str, str]] = field(default_factory=list)


# --- the service ----------------------------------------------------------------------


class ForwardingService:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        config: HotlineConfig | ConfigSource,
        cases: CaseService | None = None,
        clock: Callable[[], datetime] = utc_now,
        sms_gateway: SmsGateway | None = None,
    ) -> None:
        self._sessions = sessions
        self.config_source = ConfigSource.of(config)
        self._clock = clock
        first = self.config_source.current
        self._cases = cases or CaseService(sessions, self.config_source, clock=clock)
        self._sms = sms_gateway or gateway_from_config(first)

    @property
    def _config(self) -> HotlineConfig:
        return self.config_source.current

    def _calendar(self) -> WorkingCalendar:
        return WorkingCalendar.of(self._config)

    def _today(self, now: datetime) -> date:
        return now.astimezone(ZoneInfo(self._config.timezone)).date()

    # --- queries -------------------------------------------------------------

    def forwards_of_case(self, code: str) -> list[CaseForward]:
        with self._sessions() as session:
            case_id = session.scalar(select(Case.id).where(Case.code == code))
            if case_id is None:
                raise CaseNotFound(f"no case with code {code!r}")
            return list(
                session.scalars(
                    select(CaseForward)
                    .where(CaseForward.case_id == case_id)
                    .options(selectinload(CaseForward.events))
                    .order_by(CaseForward.id)
                )
            )

    def get(self, forward_id: int) -> CaseForward | None:
        with self._sessions() as session:
            return session.scalar(
                select(CaseForward)
                .where(CaseForward.id == forward_id)
                .options(selectinload(CaseForward.events))
            )

    def hotline_of_case(self, code: str) -> str | None:
        """The case's hotline (None: no such case), for the console's scope check."""
        with self._sessions() as session:
            return session.scalar(select(Case.hotline_id).where(Case.code == code))

    def forwards_of_unit(self, unit_code: str) -> list[tuple[CaseForward, str]]:
        """A unit's forwards with their case codes, soonest deadline first."""
        with self._sessions() as session:
            rows = session.execute(
                select(CaseForward, Case.code)
                .join(Case, Case.id == CaseForward.case_id)
                .where(CaseForward.unit_code == unit_code)
                .order_by(CaseForward.due_date, CaseForward.id)
            )
            return [(forward, code) for forward, code in rows]

    def case_for_unit(self, forward: CaseForward) -> dict[str, object] | None:
        """What the unit may read of the forwarded case: the summary, and the
        transcript only when shared; never the citizen's number or name (the
        unit answers through the hotline)."""
        with self._sessions() as session:
            case = session.get(Case, forward.case_id)
            if case is None:
                return None
            return {
                "code": case.code,
                "received_at": case.received_at.isoformat(),
                "area_code": case.area_code,
                "topic": case.topic,
                "summary": case.summary,
                "transcript": case.transcript if forward.share_transcript else None,
            }

    def case_code_of(self, forward_id: int) -> str | None:
        with self._sessions() as session:
            return session.scalar(
                select(Case.code)
                .join(CaseForward, CaseForward.case_id == Case.id)
                .where(CaseForward.id == forward_id)
            )

    def due_date_for(
        self, unit: ResponsibleUnit, topic: str | None, sent_at: datetime, days: int | None
    ) -> date:
        working_days = (
            days if days is not None else self._config.forwarding.working_days_for(unit.kind, topic)
        )
        return self._calendar().add_working_days(self._today(sent_at), working_days)

    def draft_final_answer(self, code: str) -> str:
        """The final answer prefilled from the units' answers, one paragraph each."""
        parts = []
        for forward in self.forwards_of_case(code):
            if forward.status == ForwardStatus.ANSWERED and forward.answer.strip():
                unit = self._config.unit(forward.unit_code)
                parts.append(
                    f"{unit.name if unit else forward.unit_code}: {forward.answer.strip()}"
                )
        return "\n\n".join(parts)

    # --- forwarding ----------------------------------------------------------

    def forward(self, code: str, requests: Sequence[ForwardRequest], actor: str) -> Outcome:
        """Forward a case to one or more units at once, each with its own
        deadline; the case becomes ``assigned``. Each unit is told by email and
        SMS with the case code, the deadline and the link to its portal."""
        if not requests:
            raise ForwardError("name at least one unit to forward to")
        codes = [r.unit_code for r in requests]
        if len(set(codes)) != len(codes):
            raise ForwardError("a unit is named twice")
        now = self._clock()
        outcome = Outcome()
        sms_rows: list[SmsMessage] = []
        with self._sessions.begin() as session:
            case = self._lock_case(session, code)
            if case.status not in _CASE_FORWARDABLE:
                raise ForwardError(f"case {case.code} is {case.status}: it cannot be forwarded")
            units = [self._unit_for(case, r.unit_code) for r in requests]
            for request, unit in zip(requests, units, strict=True):
                if request.working_days is not None and not 1 <= request.working_days <= 365:
                    raise ForwardError("a deadline is 1 to 365 working days")
                due = self.due_date_for(unit, case.topic, now, request.working_days)
                forward = session.scalar(
                    select(CaseForward).where(
                        CaseForward.case_id == case.id, CaseForward.unit_code == unit.code
                    )
                )
                previous: str | None = None
                if forward is None:
                    forward = CaseForward(case_id=case.id, unit_code=unit.code)
                    session.add(forward)
                else:
                    # Only a unit that returned the case may get it again.
                    if forward.status != ForwardStatus.RETURNED:
                        raise ForwardError(
                            f"case {case.code} is already forwarded to {unit.code} "
                            f"({forward.status})"
                        )
                    previous = forward.status
                forward.hotline_id = case.hotline_id
                forward.sent_at, forward.sent_by = now, actor
                forward.due_date, forward.status = due, ForwardStatus.SENT
                forward.share_transcript = request.share_transcript
                forward.share_recording = request.share_recording
                forward.note = request.note[:4000]
                forward.answer, forward.answered_at, forward.answered_by = "", None, None
                forward.reminded_for = forward.escalated_for = None
                session.flush()
                self._event(session, forward, now, actor, "sent", previous, ForwardStatus.SENT,
                            f"due {due.isoformat()}")  # fmt: skip
                outcome.forwards.append(forward)
                text = self._notice_text(case, unit, forward, "forward")
                sms_rows += self._unit_sms(session, case, unit, text, "forward_sent", now)
                if unit.email:
                    outcome.emails.append(
                        UnitEmail(unit.email, self._subject(case, "forward"), text, forward.id)
                    )
            if case.responsible_unit is None:
                case.responsible_unit = units[0].code
            self._move_case(session, case, CaseStatus.ASSIGNED, actor, now,
                            "forwarded to " + ", ".join(codes))  # fmt: skip
        for row in sms_rows:
            self._deliver(row)
        return outcome

    # --- the unit's actions --------------------------------------------------

    def mark_received(self, forward_id: int, actor: str, unit_code: str | None = None) -> Outcome:
        return self._unit_move(forward_id, ForwardStatus.RECEIVED, actor, unit_code)

    def mark_in_progress(
        self, forward_id: int, actor: str, unit_code: str | None = None
    ) -> Outcome:
        return self._unit_move(forward_id, ForwardStatus.IN_PROGRESS, actor, unit_code)

    def answer(
        self,
        forward_id: int,
        text: str,
        actor: str,
        unit_code: str | None = None,
        attachment_ids: Sequence[int] = (),
    ) -> Outcome:
        """The unit's answer (attachments already stored, named by id)."""
        text = text.strip()
        if not text:
            raise ForwardError("an answer needs its text")
        note = f"attachments {', '.join(map(str, attachment_ids))}" if attachment_ids else ""

        def apply(forward: CaseForward, now: datetime) -> None:
            forward.answer = text[:20000]
            forward.answered_at, forward.answered_by = now, actor

        return self._unit_move(forward_id, ForwardStatus.ANSWERED, actor, unit_code, note, apply)

    def return_not_ours(
        self, forward_id: int, reason: str, actor: str, unit_code: str | None = None
    ) -> Outcome:
        """The unit says the case is not within its competence (a reason is required)."""
        reason = reason.strip()
        if not reason:
            raise ForwardError("returning a case needs a reason")
        return self._unit_move(forward_id, ForwardStatus.RETURNED, actor, unit_code, reason)

    def request_extension(
        self, forward_id: int, days: int, reason: str, actor: str, unit_code: str | None = None
    ) -> Outcome:
        reason = reason.strip()
        if not reason:
            raise ForwardError("asking for more time needs a reason")
        if not 1 <= days <= MAX_EXTENSION_DAYS:
            raise ForwardError(f"an extension is 1 to {MAX_EXTENSION_DAYS} working days")

        def apply(forward: CaseForward, now: datetime) -> None:
            forward.extension_days_requested, forward.extension_reason = days, reason[:4000]

        return self._unit_move(forward_id, ForwardStatus.EXTENSION_REQUESTED, actor, unit_code,
                               f"{days} working days: {reason}", apply)  # fmt: skip

    def store_attachment(
        self,
        forward_id: int,
        filename: str,
        content: bytes,
        content_type: str,
        actor: str,
        unit_code: str | None = None,
    ) -> ForwardAttachment:
        """Keep a file the unit sends with its answer under ``paths.recordings``
        (``attachments/<case code>/<forward>-<sha256 prefix>-<safe name>``); the
        name given is kept for display only, never used as a path."""
        if not content:
            raise ForwardError("the attachment is empty")
        if len(content) > MAX_ATTACHMENT_BYTES:
            raise ForwardError(f"an attachment is at most {MAX_ATTACHMENT_BYTES // 2**20} MB")
        digest = hashlib.sha256(content).hexdigest()
        safe = _UNSAFE_NAME.sub("_", Path(filename).name).strip("._")[:80] or "file"
        root = self._config.resolve_path(self._config.paths.recordings)
        with self._sessions.begin() as session:
            forward = self._lock_forward(session, forward_id)
            if unit_code is not None and forward.unit_code != unit_code:
                raise ForwardNotFound(f"no forward {forward_id} for unit {unit_code!r}")
            code = session.scalar(select(Case.code).where(Case.id == forward.case_id))
            relative = Path(ATTACHMENTS_FOLDER, str(code), f"{forward.id}-{digest[:16]}-{safe}")
            target = root / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            _write_file(target, content)
            attachment = ForwardAttachment(
                forward_id=forward.id, filename=Path(filename).name[:255] or safe,
                content_type=content_type[:127] or "application/octet-stream",
                size=len(content), sha256=digest, path=str(relative),
                uploaded_at=self._clock(), uploaded_by=actor,
            )  # fmt: skip
            session.add(attachment)
            session.flush()
            note = f"{attachment.id}: {attachment.filename} ({len(content)} bytes)"
            self._event(session, forward, self._clock(), actor, "attachment", None, None, note)
        return attachment

    def attachment(self, attachment_id: int) -> tuple[ForwardAttachment, CaseForward] | None:
        """An attachment with its forward (whose unit and hotline say who may read it)."""
        with self._sessions() as session:
            row = session.execute(
                select(ForwardAttachment, CaseForward)
                .join(CaseForward, CaseForward.id == ForwardAttachment.forward_id)
                .where(ForwardAttachment.id == attachment_id)
            ).first()
            return (row[0], row[1]) if row else None

    def attachment_path(self, attachment: ForwardAttachment) -> Path | None:
        """The file, only when it lies inside ``paths.recordings``."""
        root = self._config.resolve_path(self._config.paths.recordings).resolve()
        path = (root / attachment.path).resolve()
        if attachment.deleted_at is not None or not path.is_relative_to(root):
            return None
        return path if path.is_file() else None

    # --- the hotline's actions -----------------------------------------------

    def decide_extension(
        self,
        forward_id: int,
        *,
        grant: bool,
        actor: str,
        note: str = "",
        due_date: date | None = None,
    ) -> Outcome:
        """A supervisor grants an extension (the new due date: ``due_date``, or
        the days asked counted from the current due date) or refuses it (back
        to ``in_progress``, the due date unchanged)."""
        now = self._clock()
        outcome = Outcome()
        with self._sessions.begin() as session:
            forward = self._lock_forward(session, forward_id)
            if forward.status != ForwardStatus.EXTENSION_REQUESTED:
                raise ForwardError(
                    f"forward {forward.id} is {forward.status}: no extension was asked for"
                )
            target = ForwardStatus.EXTENSION_GRANTED if grant else ForwardStatus.IN_PROGRESS
            self._check_move(forward, target)
            previous = forward.status
            if grant:
                days = forward.extension_days_requested or 0
                new_due = due_date or self._calendar().add_working_days(forward.due_date, days)
                if new_due <= forward.due_date:
                    raise ForwardError("the new due date must be after the current one")
                note = f"due {forward.due_date.isoformat()} → {new_due.isoformat()}. {note}"
                forward.due_date = new_due
            forward.status = target
            action = "extension_granted" if grant else "extension_refused"
            self._event(session, forward, now, actor, action, previous, target, note.strip())
            case = session.get(Case, forward.case_id)
            unit = self._config.unit(forward.unit_code)
            if case is not None and unit is not None and unit.email:
                kind = "granted" if grant else "refused"
                outcome.emails.append(
                    UnitEmail(unit.email, self._subject(case, kind),
                              self._notice_text(case, unit, forward, kind), forward.id)
                )  # fmt: skip
            outcome.forwards.append(forward)
        return outcome

    def approve_final_answer(self, code: str, answer: str, actor: str, close: bool = True) -> Case:
        """The hotline's final answer, composed from the units' answers: the
        case becomes ``answered`` with it (the citizen gets it by SMS through
        the case service's answer path), records who approved it and when, and
        then closes."""
        answer = answer.strip()
        if not answer:
            raise ForwardError("the final answer needs its text")
        self._cases.change_status(code, CaseStatus.ANSWERED, actor, note=answer[:4000])
        now = self._clock()
        with self._sessions.begin() as session:
            case = self._lock_case(session, code)
            case.answer_approved_by, case.answer_approved_at = actor, now
            session.add(
                CaseEvent(case_id=case.id, at=now, actor=actor, action="answer_approved",
                          note=f"{len(answer)} characters")
            )  # fmt: skip
        if close:
            return self._cases.change_status(code, CaseStatus.CLOSED, actor)
        found = self._cases.find_by_code(code)
        assert found is not None
        return found

    # --- reminders and escalation --------------------------------------------

    def run_due_checks(self) -> DueRun:
        """Send each reminder and escalation due now, once (recorded on the
        forward and in its history), and count the overdue forwards per hotline."""
        now = self._clock()
        today = self._today(now)
        config = self._config
        run = DueRun()
        sms_rows: list[SmsMessage] = []
        with self._sessions.begin() as session:
            open_forwards = list(
                session.scalars(
                    select(CaseForward)
                    .where(CaseForward.status.in_(OPEN_FORWARD_STATUSES))
                    .with_for_update()
                )
            )
            checks = due_checks(today, open_forwards, self._calendar(),
                                config.forwarding.remind_working_days_before)  # fmt: skip
            by_id = {f.id: f for f in open_forwards}
            for forward_id in checks.reminders:
                forward = by_id[forward_id]
                forward.reminded_for = forward.due_date
                self._event(session, forward, now, SYSTEM, "reminded", None, None,
                            f"due {forward.due_date.isoformat()}")  # fmt: skip
                run.reminded.append(forward_id)
                case, unit = session.get(Case, forward.case_id), config.unit(forward.unit_code)
                if case is None or unit is None:
                    continue
                text = self._notice_text(case, unit, forward, "reminder")
                sms_rows += self._unit_sms(session, case, unit, text, "forward_reminder", now)
                if unit.email:
                    run.emails.append(
                        UnitEmail(unit.email, self._subject(case, "reminder"), text, forward.id)
                    )
            for forward_id in checks.escalations:
                forward = by_id[forward_id]
                forward.escalated_for = forward.due_date
                self._event(session, forward, now, SYSTEM, "escalated", None, None,
                            f"overdue since {forward.due_date.isoformat()}")  # fmt: skip
                run.escalated.append(forward_id)
                case, unit = session.get(Case, forward.case_id), config.unit(forward.unit_code)
                if case is None:
                    continue
                run.escalations.append((forward.hotline_id, case.code, forward.unit_code))
                text = self._escalation_text(case, unit, forward)
                for address in config.forwarding.supervisor_emails.get(forward.hotline_id, []):
                    run.emails.append(
                        UnitEmail(address, self._subject(case, "escalation"), text, forward.id)
                    )
            run.overdue_by_hotline = self.overdue_counts(session, today)
        for row in sms_rows:
            self._deliver(row)
        return run

    @staticmethod
    def overdue_counts(session: Session, today: date) -> dict[str, int]:
        rows = session.execute(
            select(CaseForward.hotline_id, func.count())
            .where(CaseForward.status.in_(OPEN_FORWARD_STATUSES), CaseForward.due_date < today)
            .group_by(CaseForward.hotline_id)
        )
        return {hotline: int(count) for hotline, count in rows}

    # --- internals -----------------------------------------------------------

    def _unit_move(
        self,
        forward_id: int,
        target: ForwardStatus,
        actor: str,
        unit_code: str | None,
        note: str = "",
        apply: Callable[[CaseForward, datetime], None] | None = None,
    ) -> Outcome:
        """A move made by the unit; ``unit_code`` set: the actor's unit, which
        must be the forward's (the console checks it too)."""
        now = self._clock()
        with self._sessions.begin() as session:
            forward = self._lock_forward(session, forward_id)
            if unit_code is not None and forward.unit_code != unit_code:
                raise ForwardNotFound(f"no forward {forward_id} for unit {unit_code!r}")
            self._check_move(forward, target)
            previous = forward.status
            if apply is not None:
                apply(forward, now)
            forward.status = target
            self._event(session, forward, now, actor, "status", previous, target, note)
            case = session.get(Case, forward.case_id)
            # The case is being worked on once a unit works on it.
            if case is not None and target in (ForwardStatus.IN_PROGRESS, ForwardStatus.ANSWERED):
                self._move_case(session, case, CaseStatus.IN_PROGRESS, actor, now,
                                f"unit {forward.unit_code}: {target}")  # fmt: skip
        return Outcome(forwards=[forward])

    def _check_move(self, forward: CaseForward, target: ForwardStatus) -> None:
        allowed = TRANSITIONS[ForwardStatus(forward.status)]
        if target not in allowed:
            names = ", ".join(sorted(allowed)) or "none"
            raise ForwardError(
                f"forward {forward.id} to {forward.unit_code} is {forward.status}: "
                f"cannot become {target} (allowed: {names})"
            )

    def _move_case(
        self, session: Session, case: Case, status: CaseStatus, actor: str, now: datetime, note: str
    ) -> None:
        """Move the case along with its forwards, only forward in its workflow:
        a case already in progress is not put back to assigned."""
        order = list(CaseStatus)
        if case.status not in _CASE_FORWARDABLE:
            return
        if order.index(CaseStatus(case.status)) >= order.index(status):
            return
        previous = case.status
        case.status, case.updated_at = status, now
        session.add(
            CaseEvent(case_id=case.id, at=now, actor=actor, action="status",
                      from_status=previous, to_status=status, note=note[:4000])
        )  # fmt: skip

    def _unit_for(self, case: Case, unit_code: str) -> ResponsibleUnit:
        unit = self._config.unit(unit_code)
        if unit is None:
            raise ForwardError(f"unknown unit {unit_code!r}")
        if unit.hotline is not None and unit.hotline != case.hotline_id:
            raise ForwardError(
                f"unit {unit_code!r} works with hotline {unit.hotline!r}, "
                f"not with {case.hotline_id!r}"
            )
        return unit

    def _lock_case(self, session: Session, code: str) -> Case:
        case = session.scalar(select(Case).where(Case.code == code).with_for_update())
        if case is None:
            raise CaseNotFound(f"no case with code {code!r}")
        return case

    def _lock_forward(self, session: Session, forward_id: int) -> CaseForward:
        forward = session.scalar(
            select(CaseForward).where(CaseForward.id == forward_id).with_for_update()
        )
        if forward is None:
            raise ForwardNotFound(f"no forward {forward_id}")
        return forward

    @staticmethod
    def _event(
        session: Session,
        forward: CaseForward,
        now: datetime,
        actor: str,
        action: str,
        status_from: str | None,
        status_to: str | None,
        note: str = "",
    ) -> None:
        session.add(
            ForwardEvent(forward_id=forward.id, at=now, actor=actor, action=action,
                         status_from=status_from, status_to=status_to, note=note[:4000])
        )  # fmt: skip

    def portal_link(self, forward_id: int) -> str:
        """The unit's page for this forward: absolute when the config gives the
        console's address (``forwarding.portal_base_url``), else the path."""
        path = f"/portal/forwards/{forward_id}"
        base = self._config.forwarding.portal_base_url
        return base.rstrip("/") + path if base else path

    def _subject(self, case: Case, kind: str) -> str:
        subjects = {
            "forward": "Chuyển xử lý phản ánh",
            "reminder": "Nhắc hạn trả lời phản ánh",
            "escalation": "Quá hạn trả lời phản ánh",
            "granted": "Đồng ý gia hạn trả lời phản ánh",
            "refused": "Không đồng ý gia hạn trả lời phản ánh",
        }
        return f"{subjects[kind]} mã số {case.code}"

    def _notice_text(
        self, case: Case, unit: ResponsibleUnit, forward: CaseForward, kind: str
    ) -> str:
        hotline = self._config.hotline(case.hotline_id)
        sender = hotline.name if hotline else "Đường dây nóng"
        due = forward.due_date.strftime("%d/%m/%Y")
        link = self.portal_link(forward.id)
        if kind == "reminder":
            lead = f"nhắc {unit.name}: phản ánh mã số {case.code} cần trả lời trước hạn {due}."
        elif kind == "granted":
            lead = f"đồng ý gia hạn phản ánh mã số {case.code} cho {unit.name}, hạn mới {due}."
        elif kind == "refused":
            lead = f"không đồng ý gia hạn phản ánh mã số {case.code}; hạn trả lời vẫn là {due}."
        else:
            lead = f"chuyển {unit.name} xử lý phản ánh mã số {case.code}, hạn trả lời {due}."
        return f"{sender}: {lead} Xem và trả lời tại {link}"

    def _escalation_text(
        self, case: Case, unit: ResponsibleUnit | None, forward: CaseForward
    ) -> str:
        name = unit.name if unit else forward.unit_code
        return (
            f"Phản ánh mã số {case.code} chuyển {name} đã quá hạn trả lời "
            f"({forward.due_date.strftime('%d/%m/%Y')}), trạng thái: {forward.status}."
        )

    def _unit_sms(
        self,
        session: Session,
        case: Case,
        unit: ResponsibleUnit,
        text: str,
        purpose: str,
        now: datetime,
    ) -> list[SmsMessage]:
        number = normalise_caller(unit.sms).e164 if unit.sms else None
        if number is None:
            return []
        message = SmsMessage(
            case_id=case.id, to_number=number, purpose=purpose, text=text[:SMS_TEXT_LIMIT],
            created_at=now, gateway=self._sms.name,
        )  # fmt: skip
        session.add(message)
        session.flush()
        return [message]

    def _deliver(self, message: SmsMessage) -> None:
        deliver_sms(self._sessions, self._sms, message, self._config, self._clock())


def _write_file(path: Path, content: bytes) -> None:
    """Write through a temporary name and rename, readable only by the
    service (like the recordings): a reader never sees half a file."""
    partial = path.with_name(path.name + ".part")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(content)
    os.replace(partial, path)


# --- the periodic job -----------------------------------------------------------------

OnRun = Callable[[DueRun], Awaitable[None] | None]


class ForwardingSchedule:
    """Reminders and escalations at start, then every
    ``forwarding.check_every_minutes``, on a database thread of its own; emails
    are sent through ``notifier`` and ``on_run`` gets each run (the console
    puts the overdue count on the wallboard). Idempotent: two processes running
    it would remind nobody twice (rows are locked and marked)."""

    def __init__(
        self,
        service: ForwardingService,
        notifier: Notifier | None = None,
        on_run: OnRun | None = None,
    ) -> None:
        self.service = service
        self.notifier = notifier
        self.on_run = on_run
        self.db = DbExecutor("forwarding", 1)
        self.runs = 0
        self.last_run: DueRun | None = None
        self._ran = asyncio.Condition()
        self._schedule = PeriodicJob(
            "forwarding", self.run_once, self._pause_seconds, "forward reminder run failed", logger
        )

    def start(self) -> None:
        if self.service.config_source.current.forwarding.check_every_minutes <= 0:
            logger.info("forward reminders are not scheduled (check_every_minutes: 0)")
            return
        self._schedule.start()

    async def run_once(self) -> DueRun:
        run = await self.db.run(self.service.run_due_checks)
        await send_emails(self.notifier, run.emails)
        if self.on_run is not None:
            result = self.on_run(run)
            if result is not None:
                await result
        async with self._ran:
            self.runs += 1
            self.last_run = run
            self._ran.notify_all()
        return run

    async def wait_for_run(self, count: int = 1) -> DueRun:
        """Until ``count`` runs have finished (tests, and callers that need the effect)."""
        async with self._ran:
            await self._ran.wait_for(lambda: self.runs >= count)
        assert self.last_run is not None
        return self.last_run

    def _pause_seconds(self) -> float:
        return (self.service.config_source.current.forwarding.check_every_minutes or 15) * 60

    async def close(self) -> None:
        await self._schedule.close()
        self.db.close(wait=False)
