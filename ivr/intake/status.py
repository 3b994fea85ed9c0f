"""What a citizen may see of their case: its status and, once answered, the
answer, for whoever gives the case code and one of the case's citizen's
contacts. An unknown code and a wrong contact get the same answer (None), so
codes cannot be probed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from ivr.cases.models import ANSWERED, CLOSED, Case, CaseEvent
from ivr.contracts.channels import ContactKind
from ivr.intake.checks import normalise_contact
from ivr.intake.citizens import contact_reaches_case
from ivr.intake.types import IntakeRefused

logger = logging.getLogger(__name__)


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


def case_status(
    sessions: sessionmaker[Session], case_code: str, contact: tuple[ContactKind, str] | None
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
    # A session only for a well-formed question: a malformed one costs nothing.
    with sessions() as session:
        case = session.scalar(select(Case).where(Case.code == digits))
        if case is None:
            return None
        if not contact_reaches_case(session, case, kind, value):
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
