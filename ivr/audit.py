"""The audit log: who did or read what, when, from where (table
``web_audit_log``, named for where it began).

The console writes a row for every change and every read of personal data;
the retention job writes one per run that changed something. So the table
belongs to neither: it lives here, in the domain layer, and both write it
through :func:`record`. Reading and exporting it is the console's
(:mod:`ivr.web.audit_store`).
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import Integer, String, Text
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

from ivr.db.models import Base, UtcDateTime, utc_now

logger = logging.getLogger(__name__)


class AuditEntry(Base):
    """Who did what to which record: listening, downloads, exports, supervisor
    actions, logins. Written in the same request as the action it records."""

    __tablename__ = "web_audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utc_now, index=True)
    actor: Mapped[str] = mapped_column(String(64), index=True)
    action: Mapped[str] = mapped_column(String(32), index=True)  # listen, download, export, …
    target: Mapped[str] = mapped_column(String(255), default="")
    detail: Mapped[str] = mapped_column(Text, default="")
    address: Mapped[str] = mapped_column(String(64), default="")


def record(
    sessions: sessionmaker[Session],
    actor: str,
    action: str,
    target: str = "",
    detail: str = "",
    address: str = "",
) -> None:
    """Write one audit row (its own transaction)."""
    with sessions.begin() as session:
        session.add(
            AuditEntry(
                at=utc_now(), actor=actor, action=action, target=target[:255],
                detail=detail, address=address[:64],
            )
        )  # fmt: skip
