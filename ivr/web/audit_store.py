"""The audit log: who did or read what, when, from where. Written by every
handler that changes something or reads personal data; read by the
administrators' audit page, its API and its CSV export."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from ivr.audit import AuditEntry
from ivr.audit import record as audit
from ivr.web.store import Filters, day_bounds

logger = logging.getLogger(__name__)


__all__ = ["AuditFilters", "audit", "audit_actions", "audit_entries"]


AUDIT_EXPORT_ROWS = 100_000


@dataclass
class AuditFilters:
    """Filters of the audit log page, its API and its CSV export."""

    actor: str = ""
    action: str = ""
    day_from: date | None = None
    day_to: date | None = None

    @classmethod
    def parse(cls, query: Any) -> AuditFilters:
        common = Filters.parse(query)
        return cls(
            actor=str(query.get("actor", "")).strip().lower()[:64],
            action=str(query.get("action", "")).strip()[:32],
            day_from=common.day_from,
            day_to=common.day_to,
        )

    def as_query(self) -> dict[str, str]:
        out = {k: v for k, v in (("actor", self.actor), ("action", self.action)) if v}
        if self.day_from:
            out["from"] = self.day_from.isoformat()
        if self.day_to:
            out["to"] = self.day_to.isoformat()
        return out


def audit_entries(
    sessions: sessionmaker[Session],
    limit: int = 200,
    filters: AuditFilters | None = None,
    zone: ZoneInfo | None = None,
) -> list[AuditEntry]:
    """The newest entries first, narrowed by actor, action and days (in ``zone``)."""
    query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
    if filters is not None:
        if filters.actor:
            query = query.where(AuditEntry.actor == filters.actor)
        if filters.action:
            query = query.where(AuditEntry.action == filters.action)
        start, end = day_bounds(
            Filters(day_from=filters.day_from, day_to=filters.day_to), zone or ZoneInfo("UTC")
        )
        if start:
            query = query.where(AuditEntry.at >= start)
        if end:
            query = query.where(AuditEntry.at < end)
    with sessions() as session:
        return list(session.scalars(query))


def audit_actions(sessions: sessionmaker[Session]) -> list[str]:
    """The actions the log holds, for the filter's choices."""
    with sessions() as session:
        return list(
            session.scalars(select(AuditEntry.action).distinct().order_by(AuditEntry.action))
        )
