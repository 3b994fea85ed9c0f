"""Who the citizen is: each contact (E.164 number, lower-cased email address,
Zalo user id) belongs to one citizen of one hotline. Contacts that arrive
together link to one citizen; when they belonged to two citizens, those are
merged (the person told us both are theirs). A contact typed into the web form
is a claim, not a proof: the status lookup (:mod:`ivr.intake.status`) therefore
also needs the case code, which is random (see CaseService._new_code).

Functions on the caller's session: the intake's write transaction, or a read.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from ivr.cases.models import Case
from ivr.contracts.channels import ContactKind
from ivr.intake.models import Citizen, CitizenContact

logger = logging.getLogger(__name__)


def citizen_for(
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


def contact_reaches_case(session: Session, case: Case, kind: ContactKind, value: str) -> bool:
    """Whether this contact is the case's citizen's (or, for a phone case with
    no citizen, its caller's number)."""
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


def contacts_of_number(
    session: Session, hotline_id: str, e164: str
) -> list[tuple[ContactKind, str]]:
    """Every contact of the citizen who owns this number on this hotline
    (the agent's screen-pop): the number itself, their email, Zalo id."""
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


def citizen_of_case(session: Session, case_id: int) -> Citizen | None:
    """The citizen a case belongs to; None for an anonymous case."""
    case = session.get(Case, case_id)
    return session.get(Citizen, case.citizen_id) if case and case.citizen_id else None
