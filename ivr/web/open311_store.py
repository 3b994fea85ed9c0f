"""What an Open311 request carried besides the case (table ``open311_requests``),
and the reads of ``GET requests``: Open311 cases of one hotline with only what
a public page may show.

Which cases are listed: those that came in through Open311 (``cases.channel``;
the row here is not needed to list one, so a case whose row was never written
is still listed). The spec makes every request public; a citizen who used an
Open311 app was told so by the app, one who phoned or wrote to the hotline
was not, so cases of other channels are never listed here.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import ForeignKey, Integer, Select, String, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

from ivr.cases.models import Case
from ivr.contracts.channels import Channel
from ivr.contracts.statuses import OPEN_CASE_STATUSES
from ivr.db.models import Base

logger = logging.getLogger(__name__)

MAX_REQUESTS = 1000  # the spec's default cap of one list


class Open311Request(Base):
    """What an Open311 POST carried that the case has no column for: the
    spec's ``address_id`` and the media link (stored, never fetched), with the
    app that sent them. Written only for a request that had either: which app
    sent a request is on its thread message (``external_id``), and the app's
    ids of the citizen (``device_id``, ``account_id``) are not kept at all (the
    hotline has no use for them; the case has the citizen's contacts)."""

    __tablename__ = "open311_requests"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), unique=True)
    api_key_id: Mapped[int] = mapped_column(ForeignKey("open311_api_keys.id"), index=True)
    # The free address and coordinates are the case's own (cases.address…).
    address_id: Mapped[str] = mapped_column(String(128), default="")
    media_url: Mapped[str] = mapped_column(String(1000), default="")


@dataclass(frozen=True)
class RequestDetails:
    """The Open311 fields of a new request, as the handler parsed them."""

    api_key_id: int
    address_id: str = ""
    media_url: str = ""

    @property
    def worth_a_row(self) -> bool:
        return bool(self.address_id or self.media_url)


@dataclass(frozen=True)
class PublicRequest:
    """One case as ``GET requests`` may show it (raw: the handler redacts)."""

    code: str
    status: str
    topic: str | None
    summary: str
    caller_name: str
    answer: str
    rejection_reason: str
    responsible_unit: str | None
    received_at: datetime
    updated_at: datetime
    due_date: date
    erased: bool
    address: str
    latitude: float | None
    longitude: float | None
    media_url: str


def record_request(sessions: sessionmaker[Session], case_id: int, details: RequestDetails) -> None:
    """The request's Open311 fields for ``case_id``; kept as they are when a
    retry of the same request (the intake gave the case back) wrote them
    (one INSERT: a retry is rare, so the unique case_id tells, not a SELECT)."""
    try:
        with sessions.begin() as session:
            session.execute(
                insert(Open311Request).values(
                    case_id=case_id, api_key_id=details.api_key_id,
                    address_id=details.address_id, media_url=details.media_url,
                )
            )  # fmt: skip
    except IntegrityError:
        logger.info("open311 fields of case %s were written by the first request", case_id)


def _public(case: Case, row: Open311Request | None) -> PublicRequest:
    return PublicRequest(
        code=case.code, status=case.status, topic=case.topic, summary=case.summary,
        caller_name=case.caller_name, answer=case.answer,
        rejection_reason=case.rejection_reason, responsible_unit=case.responsible_unit,
        received_at=case.received_at, updated_at=case.updated_at, due_date=case.due_date,
        erased=case.erased_at is not None, address=case.address, latitude=case.latitude,
        longitude=case.longitude, media_url=row.media_url if row else "",
    )  # fmt: skip


def _open311_cases(hotline_id: str) -> Select[Case, Open311Request]:
    return (
        select(Case, Open311Request)
        .outerjoin(Open311Request, Open311Request.case_id == Case.id)
        .where(Case.channel == Channel.OPEN311, Case.hotline_id == hotline_id)
    )


def requests_by_code(
    sessions: sessionmaker[Session], hotline_id: str, codes: Sequence[str]
) -> list[PublicRequest]:
    """The hotline's Open311 requests among ``codes`` (others are left out)."""
    if not codes:
        return []
    query = (
        _open311_cases(hotline_id)
        .where(Case.code.in_(list(codes)))
        .order_by(Case.received_at.desc())
        .limit(MAX_REQUESTS)
    )
    with sessions() as session:
        return [_public(case, row) for case, row in session.execute(query).all()]


def requests_between(
    sessions: sessionmaker[Session],
    hotline_id: str,
    start: datetime,
    end: datetime,
    *,
    topics: Sequence[str] = (),
    statuses: Sequence[str] = (),
) -> list[PublicRequest]:
    """The hotline's Open311 requests received in [start, end], newest first, at
    most :data:`MAX_REQUESTS`; ``statuses`` are the spec's words (open, closed)."""
    query = _open311_cases(hotline_id).where(Case.received_at >= start, Case.received_at <= end)
    if topics:
        query = query.where(Case.topic.in_(list(topics)))
    wanted = set(statuses)
    if wanted == {"open"}:
        query = query.where(Case.status.in_(list(OPEN_CASE_STATUSES)))
    elif wanted == {"closed"}:
        query = query.where(Case.status.not_in(list(OPEN_CASE_STATUSES)))
    query = query.order_by(Case.received_at.desc()).limit(MAX_REQUESTS)
    with sessions() as session:
        return [_public(case, row) for case, row in session.execute(query).all()]
