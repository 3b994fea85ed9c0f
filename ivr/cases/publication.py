"""Publishing selected cases on the hotline's public page (issue 13), as the
1022 line publishes urban-civility reports: only with the citizen's consent
and without personal data.

- **Consent** is a fact about the citizen, recorded on the case with who
  recorded it and when (an agent ticks it after asking on the phone; the web
  and chat channels set it from their forms). Silence is not consent: the
  default is no. Withdrawing it takes a published case off the page at once.
- **Publishing** is a supervisor's act on an answered or closed case of their
  hotline: a public title, the public text of the petition and the public
  answer, which they edit from a draft pre-filled by
  :func:`ivr.cases.redaction.redact`. Refused without consent, before the
  answer, after retention erased the case's text, and when the texts still
  carry the caller's own number or name.
- The page shows a case under a random ``public_id``; the case code (dated
  and sequential) never appears there. Unpublishing keeps the texts (a second
  publication starts from them) and the id.

Every change is a case history event; the console audits who did it.
"""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session, sessionmaker

from ivr.cases.models import ANSWERED, CLOSED, Case, CaseEvent
from ivr.cases.redaction import redact
from ivr.db.models import utc_now

logger = logging.getLogger(__name__)

PUBLISHABLE_STATUSES = (ANSWERED, CLOSED)
TITLE_MAX = 200
TEXT_MAX = 4000  # as Open311's description
PAGE_SIZE = 20


class PublicationError(ValueError):
    """A publication refused, with the reason to show (400)."""


class PublicationNotFound(PublicationError):
    pass


@dataclass(frozen=True)
class PublicDraft:
    """The texts a supervisor edits before publishing."""

    title: str
    text: str
    answer: str


@dataclass(frozen=True)
class PublicCase:
    """What the public page shows of a case: nothing that names the citizen."""

    public_id: str
    hotline_id: str
    topic: str | None
    area_code: str | None
    received_at: datetime
    answered_at: datetime | None
    published_at: datetime
    title: str
    text: str
    answer: str


def _names(case: Case) -> list[str]:
    return [case.caller_name] if case.caller_name else []


def draft_of(case: Case) -> PublicDraft:
    """The texts to edit: the ones already written, else the summary and the
    answer with personal data removed; the title is the text's first sentence."""
    if case.public_text or case.public_answer:
        return PublicDraft(case.public_title, case.public_text, case.public_answer)
    text = redact(case.summary, names=_names(case)).strip()
    answer = redact(case.answer, names=_names(case)).strip()
    first = re.split(r"(?<=[.!?])\s|\n", text, maxsplit=1)[0].strip()
    title = first if len(first) <= 120 else first[:117].rstrip() + "…"
    return PublicDraft(title, text, answer)


def _digits(text: str) -> str:
    return "".join(c for c in text if c.isdigit())


def personal_data_left(case: Case, *texts: str) -> list[str]:
    """What of the caller's own identity is still in the texts: their number
    (in any grouping, national or international) or their full name."""
    found: list[str] = []
    # A number retention already replaced by its pseudonym (``anon:…``) is no
    # number: its hex digits must not match a date or an amount.
    raw = case.caller_number or ""
    number = _digits(raw) if re.fullmatch(r"\+?\d+", raw) else ""
    # +84912345678 is written 0912 345 678, 912.345.678 or +84 912 345 678:
    # compare the national part against the texts with digit groups joined.
    national = number[2:] if number.startswith("84") and len(number) > 9 else number
    joined = [re.sub(r"(?<=\d)[ .\-](?=\d)", "", t) for t in texts]
    if len(national) >= 6 and any(national in t for t in joined):
        found.append("the caller's phone number")
    names = _names(case)
    if names and any(redact(t, names=names) != redact(t) for t in texts):
        found.append("the caller's name")
    return found


def _lock(session: Session, code: str) -> Case:
    case = session.scalar(select(Case).where(Case.code == code).with_for_update())
    if case is None:
        raise PublicationNotFound(f"no case with code {code!r}")
    return case


class PublicationService:
    """Consent, publishing and unpublishing; the public reads."""

    def __init__(
        self, sessions: sessionmaker[Session], clock: Callable[[], datetime] = utc_now
    ) -> None:
        self._sessions = sessions
        self._clock = clock

    def set_consent(self, code: str, consent: bool, actor: str, note: str = "") -> bool:
        """Record whether the citizen agreed to publication (``note``: how, e.g.
        "asked on the call"); withdrawing it unpublishes. Returns whether
        anything changed."""
        now = self._clock()
        with self._sessions.begin() as session:
            case = _lock(session, code)
            if case.publish_consent == consent:
                return False
            case.publish_consent = consent
            case.publish_consent_by = actor
            case.publish_consent_at = now
            case.publish_consent_note = note.strip()[:1000]
            case.updated_at = now
            action = "publish_consent" if consent else "publish_consent_withdrawn"
            session.add(CaseEvent(case_id=case.id, at=now, actor=actor, action=action,
                                  note=case.publish_consent_note))  # fmt: skip
            if not consent and case.published_at is not None:
                # Consent withdrawn: the page stops showing the case at once.
                case.published_at = None
                session.add(CaseEvent(case_id=case.id, at=now, actor=actor, action="unpublished",
                                      note="consent withdrawn"))  # fmt: skip
        return True

    def publish(self, code: str, *, title: str, text: str, answer: str, actor: str) -> str:
        """Publish (or re-publish with new texts) an answered case whose
        citizen consented; returns its public id. :class:`PublicationError`
        says why not."""
        title, text, answer = title.strip(), text.strip(), answer.strip()
        now = self._clock()
        with self._sessions.begin() as session:
            case = _lock(session, code)
            if not case.publish_consent:
                raise PublicationError(
                    "the citizen's consent to publication is not recorded on this case"
                )
            if case.status not in PUBLISHABLE_STATUSES:
                raise PublicationError("only an answered or closed case can be published")
            if case.erased_at is not None:
                raise PublicationError("the case's text was erased by retention")
            if not title or not text or not answer:
                raise PublicationError("a public title, text and answer are all needed")
            if len(title) > TITLE_MAX or len(text) > TEXT_MAX or len(answer) > TEXT_MAX:
                raise PublicationError(
                    f"the title is at most {TITLE_MAX} characters, the texts {TEXT_MAX}"
                )
            left = personal_data_left(case, title, text, answer)
            if left:
                raise PublicationError(f"the public texts still contain {' and '.join(left)}")
            if case.public_id is None:
                case.public_id = secrets.token_urlsafe(9)  # 12 characters, not guessable
            case.public_title, case.public_text, case.public_answer = title, text, answer
            case.published_at = now
            case.published_by = actor
            case.updated_at = now
            session.add(CaseEvent(case_id=case.id, at=now, actor=actor, action="published",
                                  note=f"public id {case.public_id}"))  # fmt: skip
            return case.public_id

    def unpublish(self, code: str, actor: str) -> bool:
        """Take a case off the public page; returns whether it was on it."""
        now = self._clock()
        with self._sessions.begin() as session:
            case = _lock(session, code)
            if case.published_at is None:
                return False
            case.published_at = None
            case.updated_at = now
            session.add(CaseEvent(case_id=case.id, at=now, actor=actor, action="unpublished"))
        return True

    # --- the public page ----------------------------------------------------------

    def published(self, hotline_id: str | None, page: int = 1) -> tuple[list[PublicCase], bool]:
        """Published cases, newest publication first, PAGE_SIZE at a time; and
        whether there are more."""
        page = max(page, 1)
        with self._sessions() as session:
            query = (
                select(Case, _answered_at())
                .where(*_published())
                .order_by(Case.published_at.desc(), Case.id.desc())
            )
            if hotline_id is not None:
                query = query.where(Case.hotline_id == hotline_id)
            rows = session.execute(query.offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE + 1)).all()
            return [_public(c, at) for c, at in rows[:PAGE_SIZE]], len(rows) > PAGE_SIZE

    def published_case(self, public_id: str) -> PublicCase | None:
        with self._sessions() as session:
            row = session.execute(
                select(Case, _answered_at()).where(Case.public_id == public_id, *_published())
            ).first()
            return _public(row[0], row[1]) if row is not None else None


def _published() -> tuple[ColumnElement[bool], ...]:
    # Consent is checked again on read: a row changed behind the service's
    # back (a migration, a manual fix) still never shows without it.
    return (
        Case.published_at.is_not(None),
        Case.publish_consent.is_(True),
        Case.erased_at.is_(None),
    )


def _answered_at() -> Any:
    """When the case last became answered (its history): the date shown for a
    case answered without the forwarding's approval step."""
    return (
        select(func.max(CaseEvent.at))
        .where(CaseEvent.case_id == Case.id, CaseEvent.to_status == ANSWERED)
        .correlate(Case)
        .scalar_subquery()
    )


def _public(case: Case, answered_at: datetime | None) -> PublicCase:
    assert case.public_id is not None and case.published_at is not None
    return PublicCase(
        public_id=case.public_id,
        hotline_id=case.hotline_id,
        topic=case.topic,
        area_code=case.area_code,
        received_at=case.received_at,
        answered_at=case.answer_approved_at or answered_at or case.closed_at,
        published_at=case.published_at,
        title=case.public_title,
        text=case.public_text,
        answer=case.public_answer,
    )


__all__ = [
    "PublicCase",
    "PublicDraft",
    "PublicationError",
    "PublicationNotFound",
    "PublicationService",
    "draft_of",
    "personal_data_left",
]
