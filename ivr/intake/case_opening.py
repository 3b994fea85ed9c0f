"""The case a submission goes to: the existing case its message continues
(named by its code, of the same hotline and citizen), or a new one opened
through :class:`ivr.cases.service.CaseService` with the submission's address,
position and publication consent. Inside the intake's write transaction.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ivr.cases.models import Case, CaseEvent, SmsMessage
from ivr.cases.service import CaseError, CaseService
from ivr.intake.checks import CheckedSubmission
from ivr.intake.models import Citizen
from ivr.intake.types import IntakeRefused, Submission

logger = logging.getLogger(__name__)


def joined_case(session: Session, s: Submission, citizen: Citizen | None) -> Case | None:
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


def open_case(
    session: Session,
    cases: CaseService,
    c: CheckedSubmission,
    citizen: Citizen | None,
    phone: str | None,
    now: datetime,
) -> tuple[Case, SmsMessage | None]:
    """A new case for the submission, and the SMS with its code when there is
    a number (the caller delivers it after the commit); a case rule's refusal
    becomes :class:`IntakeRefused`."""
    s = c.submission
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
        return cases.open_case_in(
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


def note_message(session: Session, case: Case, channel: str, text: str, now: datetime) -> None:
    """A message joining an existing case: the case is touched and its history
    says a message came (the message itself is on the thread)."""
    case.updated_at = now
    session.add(
        CaseEvent(case_id=case.id, at=now, actor=f"citizen:{channel}",
                  action="message", note=f"{len(text)} characters")
    )  # fmt: skip


def _position(c: CheckedSubmission) -> tuple[float | None, float | None]:
    """Where a new case is: the position given, or, when the citizen chose to
    share where they are and typed none, the first photo's (read before its
    metadata was stripped)."""
    s = c.submission
    if s.latitude is None and s.share_location:
        gps = next((item.gps for item in c.attachments if item.gps), None)
        if gps is not None:
            return gps
    return s.latitude, s.longitude
