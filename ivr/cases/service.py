"""The case service: open, find and move cases; every change lands in history.

Synchronous SQLAlchemy: the AGI server calls it from its database thread, the
web console and workers directly. SMS rows are written in the same transaction
as the change they report and handed to the gateway after commit, so a text is
never sent for a change that was rolled back.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Mapping
from datetime import date, datetime
from typing import Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload, sessionmaker

from ivr.cases.calendar import WorkingCalendar
from ivr.cases.models import (
    ANSWERED,
    ASSIGNED,
    CLASSIFIED,
    CLOSED,
    IN_PROGRESS,
    OPEN_STATUSES,
    RECEIVED,
    REJECTED,
    STATUSES,
    Case,
    CaseEvent,
    Recording,
    SmsMessage,
    Transcript,
)
from ivr.cases.sms import OutgoingSms, SmsGateway, gateway_from_config
from ivr.config.schema import HotlineConfig
from ivr.config.source import ConfigSource
from ivr.db.models import utc_now

logger = logging.getLogger(__name__)

# Where a case may go from each status. ``answered → in_progress``: the review
# step sent the answer back. Rejection (out of scope) is possible until answered.
TRANSITIONS: dict[str, frozenset[str]] = {
    RECEIVED: frozenset({CLASSIFIED, ASSIGNED, IN_PROGRESS, REJECTED}),
    CLASSIFIED: frozenset({ASSIGNED, IN_PROGRESS, REJECTED}),
    ASSIGNED: frozenset({IN_PROGRESS, ANSWERED, CLASSIFIED, REJECTED}),
    IN_PROGRESS: frozenset({ANSWERED, ASSIGNED, REJECTED}),
    ANSWERED: frozenset({CLOSED, IN_PROGRESS}),
    CLOSED: frozenset(),
    REJECTED: frozenset({CLOSED}),
}
SEVERITIES = ("urgent", "normal", "complex")
_CODE_ATTEMPTS = 20
_INSERT_EVENT = insert(cast(Table, CaseEvent.__table__))
# Built once, with one parameter per draw (an expanding list would be rendered
# again at each execution): building a statement per case costs more than
# running it. On the table, not the mapped class: a plain query skips the ORM's
# result handling.
_TAKEN_CODES = select(Case.__table__.c.code).where(
    Case.__table__.c.code.in_([bindparam(f"code{i}") for i in range(_CODE_ATTEMPTS)])
)
SMS_TEXT_LIMIT = 480  # three concatenated Unicode SMS parts, roughly


# Called inside the transaction that answers a case (see CaseService.set_answer_hook).
AnswerHook = Callable[[Session, Case, datetime], None]


class CaseError(ValueError):
    """A request the case rules do not allow; the message says why."""


class CaseNotFound(CaseError):
    pass


class CaseService:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        config: HotlineConfig | ConfigSource,
        clock: Callable[[], datetime] = utc_now,
        sms_gateway: SmsGateway | None = None,
    ) -> None:
        self._sessions = sessions
        # Topics, due days and holidays follow a config applied while running:
        # read from the source at each use. One service per process (the
        # console and the FastAGI case desk share it, see ivr.service).
        self.config_source = ConfigSource.of(config)
        self._clock = clock
        first = self.config_source.current
        self._zone = ZoneInfo(first.timezone)
        self._sms = sms_gateway or gateway_from_config(first)
        # (config, its calendar) as one tuple: threads swap it in one assignment.
        self._calendar_of: tuple[HotlineConfig, WorkingCalendar] = (
            first,
            WorkingCalendar.of(first),
        )
        self._answer_hooks: dict[str, AnswerHook] = {}

    @property
    def _config(self) -> HotlineConfig:
        return self.config_source.current

    @property
    def _calendar(self) -> WorkingCalendar:
        config = self.config_source.current
        known, calendar = self._calendar_of
        if known is not config:
            calendar = WorkingCalendar.of(config)
            self._calendar_of = (config, calendar)
        return calendar

    # --- queries -------------------------------------------------------------

    def find_by_code(self, code: str) -> Case | None:
        digits = "".join(ch for ch in code if ch.isdigit())
        if not digits:
            return None
        with self._sessions() as session:
            return session.scalar(
                select(Case).where(Case.code == digits).options(selectinload(Case.history))
            )

    def open_cases_for_caller(self, e164: str) -> list[Case]:
        """The caller's cases that are not answered, closed or rejected, newest first."""
        with self._sessions() as session:
            return list(
                session.scalars(
                    select(Case)
                    .where(Case.caller_number == e164, Case.status.in_(OPEN_STATUSES))
                    .order_by(Case.received_at.desc(), Case.id.desc())
                )
            )

    def due_date_for(
        self, hotline_id: str, topic: str | None, severity: str, received_at: datetime
    ) -> date:
        days = self._config.cases.working_days_for(hotline_id, topic, severity)
        local_day = received_at.astimezone(self._zone).date()
        return self._calendar.add_working_days(local_day, days)

    # --- changes -------------------------------------------------------------

    def open_case(
        self,
        *,
        channel: str,
        hotline_id: str,
        caller_number: str | None,
        caller_name: str = "",
        area_code: str | None = None,
        topic: str | None = None,
        summary: str = "",
        call_uniqueid: str | None = None,
        actor: str = "system",
        severity: str = "normal",
    ) -> Case:
        """A new case in ``received``; the citizen gets an SMS with its code.

        Opening twice for the same call returns the first case (the AGI route
        may be retried), so a call never yields two codes."""
        self.check_new_case(topic, severity)
        for _attempt in range(_CODE_ATTEMPTS):
            now = self._clock()
            try:
                with self._sessions.begin() as session:
                    if call_uniqueid:
                        existing = session.scalar(
                            select(Case).where(Case.call_uniqueid == call_uniqueid)
                        )
                        if existing is not None:
                            return existing
                    case, sms = self.open_case_in(
                        session,
                        now=now,
                        channel=channel,
                        hotline_id=hotline_id,
                        caller_number=caller_number,
                        caller_name=caller_name,
                        area_code=area_code,
                        topic=topic,
                        summary=summary,
                        call_uniqueid=call_uniqueid,
                        actor=actor,
                        severity=severity,
                    )
                break
            except IntegrityError:
                # Two cases drew the same code at once: draw again.
                logger.info("case code collision, drawing another")
        else:
            raise CaseError("could not draw a free case code; raise cases.code_digits")
        self._deliver(sms)
        return self._reload(case.id)

    def check_new_case(self, topic: str | None, severity: str = "normal") -> None:
        """Raise :class:`CaseError` for a topic or severity a new case may not have."""
        if severity not in SEVERITIES:
            raise CaseError(f"unknown severity {severity!r}; use {', '.join(SEVERITIES)}")
        self._check_topic(topic)

    def open_case_in(
        self,
        session: Session,
        *,
        now: datetime,
        channel: str,
        hotline_id: str,
        caller_number: str | None,
        caller_name: str = "",
        area_code: str | None = None,
        topic: str | None = None,
        summary: str = "",
        call_uniqueid: str | None = None,
        actor: str = "system",
        severity: str = "normal",
        citizen_id: int | None = None,
        columns: Mapping[str, Any] | None = None,
    ) -> tuple[Case, SmsMessage | None]:
        """Inside the caller's transaction (the intake's, which writes the
        citizen, the message and the attachments with it): the new case with
        its code, deadline and history, and the SMS with the code queued when
        there is a number. The caller commits, then hands the SMS to
        :meth:`deliver_queued_sms`. A code drawn by another transaction at the
        same moment fails the commit with ``IntegrityError``: retry.

        ``columns``: more of the case's columns (the intake's address, position
        and publication consent), written with its INSERT: an UPDATE right
        after it would be one more round trip."""
        self.check_new_case(topic, severity)
        case = Case(
            code=self._new_code(session, now),
            channel=channel,
            hotline_id=hotline_id,
            caller_number=caller_number,
            caller_name=caller_name,
            area_code=area_code,
            topic=topic,
            severity=severity,
            summary=summary,
            status=RECEIVED,
            received_at=now,
            updated_at=now,
            due_date=self.due_date_for(hotline_id, topic, severity, now),
            call_uniqueid=call_uniqueid,
            citizen_id=citizen_id,
            **(columns or {}),
        )
        session.add(case)
        session.flush()
        # A plain INSERT: as an object it would cost the session a flush of its
        # own, more than the statement (the case's history is read from the
        # table, never from this session's objects).
        session.execute(
            _INSERT_EVENT,
            {
                "case_id": case.id, "at": now, "actor": actor, "action": "opened",
                "from_status": None, "to_status": RECEIVED, "note": f"channel {channel}",
            },
        )  # fmt: skip
        if call_uniqueid:
            self._link_call(session, case, call_uniqueid)
        return case, self._queue_sms(session, case, "case_opened", now)

    def deliver_queued_sms(self, message: SmsMessage | None) -> None:
        """Hand a text queued by :meth:`open_case_in` to the gateway, after commit."""
        self._deliver(message)

    def set_answer_hook(self, name: str, hook: AnswerHook | None) -> None:
        """Run ``hook(session, case, now)`` inside the transaction that makes a
        case ``answered`` (the intake queues the answer on the citizen's email
        or Zalo thread there). One hook per name: registering again replaces
        it, so building a second intake service never sends twice."""
        if hook is None:
            self._answer_hooks.pop(name, None)
        else:
            self._answer_hooks[name] = hook

    def change_status(self, code: str, status: str, actor: str, note: str = "") -> Case:
        """Move a case; ``rejected`` needs the reason in ``note``; ``answered``
        takes the answer text in ``note`` and texts it to the citizen."""
        if status not in STATUSES:
            raise CaseError(f"unknown status {status!r}; use {', '.join(STATUSES)}")
        if status == REJECTED and not note.strip():
            raise CaseError("a rejection needs a reason")
        now = self._clock()
        with self._sessions.begin() as session:
            case = self._lock_case(session, code)
            if status not in TRANSITIONS[case.status]:
                allowed = ", ".join(sorted(TRANSITIONS[case.status])) or "none"
                raise CaseError(
                    f"case {case.code} is {case.status}: cannot become {status} "
                    f"(allowed: {allowed})"
                )
            previous = case.status
            case.status = status
            case.updated_at = now
            if status == REJECTED:
                case.rejection_reason = note
            if status == ANSWERED and note:
                case.answer = note
            # A rejected case closed later was done when it was rejected: the
            # first closing time stays (the on-time report judges by it).
            if status in (CLOSED, REJECTED) and case.closed_at is None:
                case.closed_at = now
            session.add(
                CaseEvent(
                    case_id=case.id, at=now, actor=actor, action="status",
                    from_status=previous, to_status=status, note=note,
                )
            )  # fmt: skip
            sms = (
                self._queue_sms(session, case, "case_answered", now) if status == ANSWERED else None
            )
            if status == ANSWERED:
                for hook in list(self._answer_hooks.values()):
                    hook(session, case, now)
        self._deliver(sms)
        return self._reload(case.id)

    def classify(self, code: str, *, topic: str, severity: str = "normal", actor: str) -> Case:
        """Set topic and severity (the deadline follows) and mark ``classified``."""
        self._check_topic(topic)
        if severity not in SEVERITIES:
            raise CaseError(f"unknown severity {severity!r}")
        now = self._clock()
        with self._sessions.begin() as session:
            case = self._lock_case(session, code)
            case.topic, case.severity = topic, severity
            case.due_date = self.due_date_for(case.hotline_id, topic, severity, case.received_at)
            session.add(
                CaseEvent(
                    case_id=case.id, at=now, actor=actor, action="classified",
                    note=f"topic {topic}, severity {severity}, due {case.due_date.isoformat()}",
                )
            )  # fmt: skip
        if case.status == RECEIVED:
            return self.change_status(code, CLASSIFIED, actor)
        return self._reload(case.id)

    def assign(self, code: str, unit: str, actor: str) -> Case:
        """Give the case to a responsible unit and mark ``assigned``."""
        with self._sessions.begin() as session:
            case = self._lock_case(session, code)
            case.responsible_unit = unit
        return self.change_status(code, ASSIGNED, actor, note=f"unit {unit}")

    def set_legal_hold(self, code: str, *, hold: bool, reason: str, actor: str) -> Case:
        """Put a case under legal hold (a reason is required) or release it.

        While held, retention erases nothing linked to the case: its calls,
        their recordings and transcripts, the numbers and the case's text."""
        reason = reason.strip()
        if hold and not reason:
            raise CaseError("a legal hold needs a reason")
        now = self._clock()
        with self._sessions.begin() as session:
            case = self._lock_case(session, code)
            if case.legal_hold == hold:
                state = "already under legal hold" if hold else "not under legal hold"
                raise CaseError(f"case {case.code} is {state}")
            case.legal_hold = hold
            case.legal_hold_reason = reason if hold else ""
            case.legal_hold_by = actor if hold else None
            case.legal_hold_at = now if hold else None
            case.updated_at = now
            session.add(
                CaseEvent(
                    case_id=case.id, at=now, actor=actor,
                    action="legal_hold" if hold else "legal_hold_released", note=reason,
                )
            )  # fmt: skip
        return self._reload(case.id)

    def set_summary(self, code: str, summary: str, actor: str) -> None:
        """The written summary; a history event records its length when it changes."""
        with self._sessions.begin() as session:
            case = self._lock_case(session, code)
            if case.summary == summary:
                return
            now = self._clock()
            case.summary = summary
            case.updated_at = now
            session.add(
                CaseEvent(case_id=case.id, at=now, actor=actor, action="summary",
                          note=f"{len(summary)} characters")
            )  # fmt: skip

    def attach_transcript(self, session: Session, call_uniqueid: str, text: str) -> None:
        """Inside the worker's transaction: copy a call's transcript to its case."""
        case = session.scalar(select(Case).where(Case.call_uniqueid == call_uniqueid))
        if case is None:
            return
        case.transcript = text
        session.add(
            CaseEvent(case_id=case.id, at=self._clock(), actor="transcription",
                      action="transcript", note=f"{len(text)} characters")
        )  # fmt: skip

    def text_citizen(
        self, to_number: str, text: str, purpose: str, case_id: int | None = None
    ) -> None:
        """A text to a citizen that reports no change (a case's status asked
        for by SMS, "no such case"): through the same outbox and gateway as
        every other text, its outcome recorded on its row."""
        with self._sessions.begin() as session:
            message = SmsMessage(
                case_id=case_id, to_number=to_number, purpose=purpose[:32],
                text=text[:SMS_TEXT_LIMIT], created_at=self._clock(), gateway=self._sms.name,
            )  # fmt: skip
            session.add(message)
        self._deliver(message)

    # --- internals -----------------------------------------------------------

    def _check_topic(self, topic: str | None) -> None:
        known = {t.code for t in self._config.cases.topics}
        if topic is not None and topic not in known:
            raise CaseError(f"unknown topic {topic!r}; known: {', '.join(sorted(known))}")

    def _new_code(self, session: Session, now: datetime) -> str:
        """YYMM in the hotline's zone, then random digits: short enough to key
        in, unguessable enough that codes of others are not found by counting."""
        prefix = now.astimezone(self._zone).strftime("%y%m")
        width = self._config.cases.code_digits - len(prefix)
        # Every draw checked in one query (a month's codes fill up: with 8
        # digits, 6,000 cases take 60 % of them and a draw at a time would take
        # several round trips); the first free one in the order drawn is as
        # random as drawing until one is free.
        # One random number cut into the draws: its digits are independent and
        # uniform, like separate draws, for one read of the system's randomness.
        digits = f"{secrets.randbelow(10 ** (width * _CODE_ATTEMPTS)):0{width * _CODE_ATTEMPTS}d}"
        drawn = [prefix + digits[i * width : (i + 1) * width] for i in range(_CODE_ATTEMPTS)]
        taken = set(session.scalars(_TAKEN_CODES, {f"code{i}": c for i, c in enumerate(drawn)}))
        for code in drawn:
            if code not in taken:
                return code
        raise CaseError("no free case code this month; raise cases.code_digits")

    def _lock_case(self, session: Session, code: str) -> Case:
        case = session.scalar(select(Case).where(Case.code == code).with_for_update())
        if case is None:
            raise CaseNotFound(f"no case with code {code!r}")
        return case

    def _link_call(self, session: Session, case: Case, call_uniqueid: str) -> None:
        session.execute(
            update(Recording)
            .where(Recording.call_uniqueid == call_uniqueid, Recording.case_id.is_(None))
            .values(case_id=case.id)
        )
        transcript = session.scalar(
            select(Transcript).where(Transcript.call_uniqueid == call_uniqueid)
        )
        if transcript is not None:
            transcript.case_id = case.id
            case.transcript = transcript.text

    def _queue_sms(
        self, session: Session, case: Case, purpose: str, now: datetime
    ) -> SmsMessage | None:
        if not case.caller_number:
            return None
        hotline = self._config.hotline(case.hotline_id)
        unit = hotline.unit_name if hotline else "đường dây nóng"
        if purpose == "case_opened":
            text = (
                f"{unit}: phản ánh của quý vị đã được tiếp nhận, mã số {case.code}. "
                f"Hạn trả lời: {case.due_date.strftime('%d/%m/%Y')}."
            )
        else:
            text = f"{unit}: phản ánh mã số {case.code} đã được xử lý. Trả lời: {case.answer}"
        message = SmsMessage(
            case_id=case.id, to_number=case.caller_number, purpose=purpose,
            text=text[:SMS_TEXT_LIMIT], created_at=now, gateway=self._sms.name,
        )  # fmt: skip
        session.add(message)
        session.flush()
        return message

    def _deliver(self, message: SmsMessage | None) -> None:
        if message is not None:
            deliver_sms(self._sessions, self._sms, message, self._config, self._clock())

    def _reload(self, case_id: int) -> Case:
        with self._sessions() as session:
            case = session.scalar(
                select(Case).where(Case.id == case_id).options(selectinload(Case.history))
            )
            assert case is not None
            return case


def deliver_sms(
    sessions: sessionmaker[Session],
    gateway: SmsGateway,
    message: SmsMessage,
    config: HotlineConfig,
    now: datetime,
) -> None:
    """Hand a committed text to the gateway, from its case's hotline's sender
    name, and record the outcome on its row. A gateway failure is recorded, never
    raised: the case (or forward) the text belongs to is already saved."""
    code, sender = None, ""
    with sessions() as session:
        if message.case_id is not None:
            row = session.execute(
                select(Case.code, Case.hotline_id).where(Case.id == message.case_id)
            ).one_or_none()
            if row is not None:
                code, sender = row.code, sms_sender(config, row.hotline_id)
    outgoing = OutgoingSms(
        message.to_number, message.text, message.purpose, code, message.created_at, sender
    )
    try:
        gateway.send(outgoing)
        values: dict[str, object] = {"status": "sent", "sent_at": now}
    except Exception as exc:
        logger.warning("SMS %s to %s failed: %s", message.id, message.to_number, exc)
        values = {"status": "failed", "error": str(exc)[:1000]}
    with sessions.begin() as session:
        session.execute(update(SmsMessage).where(SmsMessage.id == message.id).values(**values))


def sms_sender(config: HotlineConfig, hotline_id: str | None) -> str:
    """The case's hotline's own sender name, else the deployment's."""
    hotline = config.hotline(hotline_id) if hotline_id else None
    return (hotline.sms_sender if hotline else None) or config.sms.sender
