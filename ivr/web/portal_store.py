"""What the units' portal reads (issue 13), kept out of its handlers like
:mod:`ivr.web.store`: a unit's list of forwards, a forward's attachments, the
recordings a forward shares, and the forwards escalated past their deadline."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from ivr.cases.models import Case, CaseForward, ForwardAttachment, Recording
from ivr.contracts.statuses import OPEN_FORWARD_STATUSES
from ivr.web import store
from ivr.web.access import AccessScope


@dataclass(frozen=True)
class PortalRow:
    """One line of a unit's list."""

    forward: CaseForward
    case_code: str
    summary: str
    days_left: int  # calendar days to the deadline; negative once it passed

    @property
    def is_open(self) -> bool:
        return self.forward.status in OPEN_FORWARD_STATUSES

    @property
    def overdue(self) -> bool:
        return self.is_open and self.days_left < 0


def unit_rows(
    sessions: sessionmaker[Session], unit_code: str, today: date, status: str = ""
) -> list[PortalRow]:
    """A unit's forwards with their case's code and summary, soonest deadline first."""
    query = (
        select(CaseForward, Case.code, Case.summary)
        .join(Case, Case.id == CaseForward.case_id)
        .where(CaseForward.unit_code == unit_code)
        .order_by(CaseForward.due_date, CaseForward.id)
    )
    if status in ("open", "overdue"):
        query = query.where(CaseForward.status.in_(OPEN_FORWARD_STATUSES))
        if status == "overdue":
            query = query.where(CaseForward.due_date < today)
    elif status:
        query = query.where(CaseForward.status == status)
    with sessions() as session:
        return [
            PortalRow(forward, code, summary or "", (forward.due_date - today).days)
            for forward, code, summary in session.execute(query)
        ]


def forward_attachments(
    sessions: sessionmaker[Session], forward_id: int
) -> list[ForwardAttachment]:
    with sessions() as session:
        return list(
            session.scalars(
                select(ForwardAttachment)
                .where(
                    ForwardAttachment.forward_id == forward_id,
                    ForwardAttachment.deleted_at.is_(None),
                )
                .order_by(ForwardAttachment.id)
            )
        )


def shared_recordings(sessions: sessionmaker[Session], forward: CaseForward) -> list[Recording]:
    """The case's recordings when the forward shares them; else none."""
    if not forward.share_recording:
        return []
    with sessions() as session:
        case = session.get(Case, forward.case_id)
    return [] if case is None else store.recordings_of_case(sessions, case)


def escalated_forwards(sessions: sessionmaker[Session], scope: AccessScope) -> list[dict[str, Any]]:
    """Open forwards the reminder job escalated for their current deadline (an
    extension's new date clears them), of the hotlines the user sees. The job
    decides "overdue" on its own clock; this list follows its decision."""
    with sessions() as session:
        rows = session.execute(
            select(CaseForward, Case.code)
            .join(Case, Case.id == CaseForward.case_id)
            .where(
                CaseForward.status.in_(OPEN_FORWARD_STATUSES),
                CaseForward.escalated_for.is_not(None),
                CaseForward.escalated_for == CaseForward.due_date,
            )
            .order_by(CaseForward.due_date, CaseForward.id)
        )
        return [
            {"id": forward.id, "case_code": code, "unit_code": forward.unit_code,
             "hotline_id": forward.hotline_id, "status": forward.status,
             "due_date": forward.due_date.isoformat()}
            for forward, code in rows
            if scope.sees_hotline(forward.hotline_id)
        ]  # fmt: skip
