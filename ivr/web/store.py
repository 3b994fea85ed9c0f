"""What the console reads and writes in the database, as plain synchronous
functions (handlers run them in a thread). No request objects in here, so the
same functions serve the HTML pages, the JSON API and the CLI. The audit log
is in :mod:`ivr.web.audit_store`, the statistics in :mod:`ivr.web.statistics_store`."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Select, or_, select
from sqlalchemy import case as when
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload, sessionmaker

from ivr.cases.models import OPEN_STATUSES, Case, Recording, Transcript, TranscriptionJob
from ivr.db.models import Call, utc_now
from ivr.phone import normalise_caller
from ivr.queue_records.models import QueueCall
from ivr.web.access import AccessScope
from ivr.web.models import ROLES, WebUser
from ivr.web.security import DUMMY_HASH, hash_password, verify_password

logger = logging.getLogger(__name__)

MAX_ROWS = 500


# OWASP ASVS 2.1.1: user-set passwords of at least 12 characters.
MIN_PASSWORD_LENGTH = 12
# A name is one line: it lands in log lines, audit entries and their CSV
# export, where a line break would forge an entry of its own.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


class UserError(ValueError):
    """A user change that is not allowed; the message says why."""


class UserStore:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def add(
        self,
        username: str,
        password: str,
        role: str,
        *,
        agent_id: str | None = None,
        display_name: str = "",
        hotline_id: str | None = None,
        unit_code: str | None = None,
    ) -> WebUser:
        username = username.strip().lower()
        if role not in ROLES:
            raise UserError(f"unknown role {role!r}; use {', '.join(ROLES)}")
        if not username or len(username) > 64:
            raise UserError("a user name is 1 to 64 characters")
        if _CONTROL.search(username) or _CONTROL.search(display_name):
            raise UserError("a name may not hold line breaks or control characters")
        if len(password) < MIN_PASSWORD_LENGTH:
            raise UserError(f"a password has at least {MIN_PASSWORD_LENGTH} characters")
        if role == "agent" and not agent_id:
            raise UserError("an agent user needs the agent id from the config")
        if hotline_id and role != "supervisor":
            raise UserError("only a supervisor is limited to one hotline")
        if (role == "unit") != bool(unit_code):
            raise UserError("a unit user, and only one, names its responsible unit (unit_code)")
        user = WebUser(
            username=username,
            display_name=display_name or username,
            role=role,
            agent_id=agent_id or None,
            hotline_id=hotline_id or None,
            unit_code=unit_code or None,
            password_hash=hash_password(password),
            active=True,
            session_epoch=0,
            created_at=utc_now(),
        )
        try:
            with self._sessions.begin() as session:
                session.add(user)
        except IntegrityError:
            raise UserError(f"user {username!r} exists already") from None
        return user

    def authenticate(self, username: str, password: str) -> WebUser | None:
        with self._sessions.begin() as session:
            user = session.scalar(
                select(WebUser).where(WebUser.username == username.strip().lower())
            )
            if user is None or not user.active:
                verify_password(password, DUMMY_HASH)  # same cost either way
                return None
            if not verify_password(password, user.password_hash):
                return None
            user.last_login_at = utc_now()
            return user

    def get(self, user_id: int) -> WebUser | None:
        with self._sessions() as session:
            return session.get(WebUser, user_id)

    def all(self) -> list[WebUser]:
        with self._sessions() as session:
            return list(session.scalars(select(WebUser).order_by(WebUser.username)))

    def set_active(self, user_id: int, active: bool) -> WebUser:
        with self._sessions.begin() as session:
            user = session.get(WebUser, user_id)
            if user is None:
                raise UserError("no such user")
            user.active = active
            user.session_epoch += 1  # ends its sessions
            return user

    def set_password(self, username: str, password: str) -> None:
        if len(password) < MIN_PASSWORD_LENGTH:
            raise UserError(f"a password has at least {MIN_PASSWORD_LENGTH} characters")
        with self._sessions.begin() as session:
            user = session.scalar(select(WebUser).where(WebUser.username == username))
            if user is None:
                raise UserError(f"no user {username!r}")
            user.password_hash = hash_password(password)
            user.session_epoch += 1


# --- calls and cases --------------------------------------------------------------


@dataclass
class Filters:
    """Search filters shared by calls and cases (all optional)."""

    day_from: date | None = None
    day_to: date | None = None
    area: str = ""
    topic: str = ""
    status: str = ""
    number: str = ""
    agent: str = ""
    code: str = ""
    q: str = ""  # words in a case's summary or transcript

    @classmethod
    def parse(cls, query: Any) -> Filters:
        def day(name: str) -> date | None:
            try:
                return date.fromisoformat(str(query.get(name, "")).strip())
            except ValueError:
                return None

        return cls(
            day_from=day("from"),
            day_to=day("to"),
            **{k: str(query.get(k, "")).strip()[:64] for k in ("area", "topic", "status",
                                                                "number", "agent", "code", "q")},
        )  # fmt: skip

    def as_query(self) -> dict[str, str]:
        out = {k: v for k, v in vars(self).items() if isinstance(v, str) and v}
        if self.day_from:
            out["from"] = self.day_from.isoformat()
        if self.day_to:
            out["to"] = self.day_to.isoformat()
        return out


def day_bounds(filters: Filters, zone: ZoneInfo) -> tuple[datetime | None, datetime | None]:
    start = (
        datetime.combine(filters.day_from, time(), zone).astimezone(UTC)
        if filters.day_from
        else None
    )
    end = (
        datetime.combine(filters.day_to + timedelta(days=1), time(), zone).astimezone(UTC)
        if filters.day_to
        else None
    )
    return start, end


def _e164(text: str) -> str | None:
    return normalise_caller(text).e164 if text else None


def search_calls(
    sessions: sessionmaker[Session],
    filters: Filters,
    zone: ZoneInfo,
    limit: int = MAX_ROWS,
    scope: AccessScope | None = None,
) -> list[Call]:
    """Calls matching the filters, newest first, only those ``scope`` may read."""
    query = select(Call).order_by(Call.started_at.desc(), Call.id.desc()).limit(limit)
    if scope is not None:
        query = query.where(scope.call_condition())
    start, end = day_bounds(filters, zone)
    if start:
        query = query.where(Call.started_at >= start)
    if end:
        query = query.where(Call.started_at < end)
    if filters.area:
        query = query.where(Call.area_code == filters.area)
    if filters.number:
        e164 = _e164(filters.number)
        query = query.where(
            Call.caller_number == e164 if e164 else Call.caller_raw.contains(filters.number)
        )
    if filters.status:
        query = query.where(Call.outcome == filters.status)
    if filters.agent:
        answered = select(QueueCall.uniqueid).where(QueueCall.agent_id == filters.agent)
        query = query.where(Call.uniqueid.in_(answered))
    with sessions() as session:
        return list(session.scalars(query))


def case_search_query(
    filters: Filters, zone: ZoneInfo, limit: int = MAX_ROWS, scope: AccessScope | None = None
) -> Select[Any]:
    """The query of :func:`search_cases` (the bench prints its plan)."""
    query = select(Case).order_by(Case.received_at.desc(), Case.id.desc()).limit(limit)
    if scope is not None:
        query = query.where(scope.case_condition())
    start, end = day_bounds(filters, zone)
    if start:
        query = query.where(Case.received_at >= start)
    if end:
        query = query.where(Case.received_at < end)
    if filters.area:
        query = query.where(Case.area_code == filters.area)
    if filters.topic:
        query = query.where(Case.topic == filters.topic)
    if filters.status:
        query = query.where(Case.status == filters.status)
    if filters.number:
        e164 = _e164(filters.number)
        query = query.where(Case.caller_number == (e164 or filters.number))
    if filters.code:
        query = query.where(Case.code == "".join(c for c in filters.code if c.isdigit()))
    if filters.q:
        # A substring, case-insensitive: ``lower(x) LIKE lower('%q%')``. On
        # PostgreSQL the trigram indexes on lower(summary) and lower(transcript)
        # (migration 0012) answer it among a province's 100,000 cases; SQLite
        # scans, which a few thousand cases a year allow.
        query = query.where(
            or_(
                Case.summary.icontains(filters.q, autoescape=True),
                Case.transcript.icontains(filters.q, autoescape=True),
            )
        )
    if filters.agent:
        opened = select(QueueCall.uniqueid).where(QueueCall.agent_id == filters.agent)
        query = query.where(Case.call_uniqueid.in_(opened))
    return query


def search_cases(
    sessions: sessionmaker[Session],
    filters: Filters,
    zone: ZoneInfo,
    limit: int = MAX_ROWS,
    scope: AccessScope | None = None,
) -> list[Case]:
    """Cases matching the filters, newest first, only those ``scope`` may read."""
    query = case_search_query(filters, zone, limit, scope)
    with sessions() as session:
        return list(session.scalars(query))


@dataclass
class CallDetail:
    call: Call
    recordings: list[Recording]
    transcript: Transcript | None
    cases: list[Case]
    queue_call: QueueCall | None


def call_detail(sessions: sessionmaker[Session], uniqueid: str) -> CallDetail | None:
    with sessions() as session:
        call = session.scalar(select(Call).where(Call.uniqueid == uniqueid))
        if call is None:
            return None
        return CallDetail(
            call,
            list(
                session.scalars(
                    select(Recording)
                    .where(Recording.call_uniqueid == uniqueid, Recording.deleted_at.is_(None))
                    .order_by(Recording.id)
                )
            ),
            session.scalar(select(Transcript).where(Transcript.call_uniqueid == uniqueid)),
            list(session.scalars(select(Case).where(Case.call_uniqueid == uniqueid))),
            session.scalar(select(QueueCall).where(QueueCall.uniqueid == uniqueid)),
        )


def case_with_history(sessions: sessionmaker[Session], code: str) -> Case | None:
    with sessions() as session:
        return session.scalar(
            select(Case).where(Case.code == code).options(selectinload(Case.history))
        )


def transcript_of_case(sessions: sessionmaker[Session], case: Case) -> Transcript | None:
    """The dialogue of the case's call (also when the case was opened after the
    transcription ran, so the worker could not link it)."""
    conditions = [Transcript.case_id == case.id]
    if case.call_uniqueid:
        conditions.append(Transcript.call_uniqueid == case.call_uniqueid)
    with sessions() as session:
        return session.scalar(
            select(Transcript).where(or_(*conditions)).order_by(Transcript.id).limit(1)
        )


def recordings_of_case(sessions: sessionmaker[Session], case: Case) -> list[Recording]:
    with sessions() as session:
        conditions = [Recording.case_id == case.id]
        if case.call_uniqueid:
            conditions.append(Recording.call_uniqueid == case.call_uniqueid)
        return list(
            session.scalars(
                select(Recording)
                .where(or_(*conditions), Recording.deleted_at.is_(None))
                .order_by(Recording.id)
            )
        )


def recording(sessions: sessionmaker[Session], recording_id: int) -> Recording | None:
    with sessions() as session:
        found = session.get(Recording, recording_id)
        return None if found is None or found.deleted_at is not None else found


def call_visible(sessions: sessionmaker[Session], scope: AccessScope, uniqueid: str) -> bool:
    """May ``scope`` read this call (its page, recordings and transcript)?"""
    if scope.sees_everything:
        return True
    if scope.is_agent and scope.agent_id is None:
        return False  # an agent user whose agent left the config
    with sessions() as session:
        found = session.scalar(
            select(Call.id).where(Call.uniqueid == uniqueid, scope.call_condition()).limit(1)
        )
        if found is not None or not scope.is_agent:
            return found is not None
        # The queue record can be written before the call record (the call log
        # does not hold up the call path).
        return (
            session.scalar(
                select(QueueCall.id)
                .where(QueueCall.uniqueid == uniqueid, QueueCall.agent_id == scope.agent_id)
                .limit(1)
            )
            is not None
        )


def case_visible(sessions: sessionmaker[Session], scope: AccessScope, code: str) -> bool:
    """May ``scope`` read (and so work on) this case?"""
    if scope.sees_everything:
        return True
    with sessions() as session:
        return (
            session.scalar(
                select(Case.id).where(Case.code == code, scope.case_condition()).limit(1)
            )
            is not None
        )


def recording_visible(
    sessions: sessionmaker[Session], scope: AccessScope, found: Recording
) -> bool:
    """A recording belongs to a call (or a voicemail case): readable with it."""
    if scope.sees_everything or call_visible(sessions, scope, found.call_uniqueid):
        return True
    if found.case_id is None:
        return False
    with sessions() as session:
        return (
            session.scalar(
                select(Case.id).where(Case.id == found.case_id, scope.case_condition()).limit(1)
            )
            is not None
        )


@dataclass
class CallerHistory:
    """The screen-pop: who is calling, what they called about before."""

    number: str
    e164: str | None
    earlier_calls: list[Call] = field(default_factory=list)
    open_cases: list[Case] = field(default_factory=list)
    current_call: Call | None = None
    # Which of the rows above the reader may open (their own work); the others
    # are shown as a line of history without a link and with a masked number.
    readable_calls: set[str] = field(default_factory=set)
    readable_cases: set[str] = field(default_factory=set)


def caller_calls_query(e164: str, uniqueid: str, limit: int) -> Select[Any]:
    """A caller's latest calls but this one: the index on (caller_number,
    started_at) reads only ``limit`` rows even for a number that called
    thousands of times."""
    return (
        select(Call)
        .where(Call.caller_number == e164, Call.uniqueid != uniqueid)
        .order_by(Call.started_at.desc())
        .limit(limit)
    )


def caller_history(
    sessions: sessionmaker[Session],
    number: str,
    uniqueid: str = "",
    limit: int = 10,
    scope: AccessScope | None = None,
    only_readable: bool = False,
) -> CallerHistory:
    """The caller's earlier calls and open cases. With ``only_readable``, only
    the rows ``scope`` may read are returned (the history of a past caller); without
    it (the agent is serving this caller now) all are, marked readable or not."""
    e164 = _e164(number)
    history = CallerHistory(number, e164)
    with sessions() as session:
        if uniqueid:
            history.current_call = session.scalar(select(Call).where(Call.uniqueid == uniqueid))
        if e164 is None:
            return history
        calls = caller_calls_query(e164, uniqueid, limit)
        cases = select(Case).where(Case.caller_number == e164, Case.status.in_(OPEN_STATUSES))
        if scope is not None and not scope.sees_everything:
            # Another hotline's calls and cases are not even listed as unreadable.
            calls = calls.where(Call.hotline_id == scope.hotline_id)
            cases = cases.where(Case.hotline_id == scope.hotline_id)
        history.earlier_calls = list(session.scalars(calls))
        history.open_cases = list(session.scalars(cases.order_by(Case.received_at.desc())))
        if scope is None or scope.sees_everything:
            history.readable_calls = {c.uniqueid for c in history.earlier_calls}
            history.readable_cases = {c.code for c in history.open_cases}
        else:
            call_ids = [c.uniqueid for c in history.earlier_calls]
            case_ids = [c.id for c in history.open_cases]
            history.readable_calls = set(
                session.scalars(
                    select(Call.uniqueid).where(Call.uniqueid.in_(call_ids), scope.call_condition())
                )
            )
            history.readable_cases = set(
                session.scalars(
                    select(Case.code).where(Case.id.in_(case_ids), scope.case_condition())
                )
            )
        if only_readable:
            history.earlier_calls = [
                c for c in history.earlier_calls if c.uniqueid in history.readable_calls
            ]
            history.open_cases = [c for c in history.open_cases if c.code in history.readable_cases]
    return history


# --- transcription jobs -------------------------------------------------------------


def transcription_jobs(
    sessions: sessionmaker[Session], limit: int = 200, scope: AccessScope | None = None
) -> list[TranscriptionJob]:
    """Jobs that need a person's eye first: failed, then waiting or running;
    with ``scope``, only those of calls the user may read (their hotline's)."""
    order = when((TranscriptionJob.status == "failed", 0), else_=1)
    query = select(TranscriptionJob).where(TranscriptionJob.status != "done")
    if scope is not None and not scope.sees_everything:
        readable = select(Call.uniqueid).where(scope.call_condition())
        query = query.where(TranscriptionJob.call_uniqueid.in_(readable))
    with sessions() as session:
        return list(
            session.scalars(query.order_by(order, TranscriptionJob.created_at.desc()).limit(limit))
        )
