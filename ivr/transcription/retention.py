"""Retention: old audio is deleted only once its transcript is stored and no
case on the call is under legal hold; the row stays, marked deleted (audit)."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import exists, select
from sqlalchemy.orm import Session, sessionmaker

from ivr.cases.models import Case, Recording, Transcript
from ivr.config.schema import HotlineConfig
from ivr.db.models import utc_now

logger = logging.getLogger(__name__)


def purge_expired_recordings(
    sessions: sessionmaker[Session], config: HotlineConfig, now: datetime | None = None
) -> list[str]:
    """Delete audio older than ``recording.retention_days``; returns the paths deleted."""
    days = config.recording.retention_days
    if days <= 0:
        return []
    cutoff = (now or utc_now()) - timedelta(days=days)
    deleted: list[str] = []
    with sessions.begin() as session:
        held = exists().where(Case.call_uniqueid == Recording.call_uniqueid, Case.legal_hold)
        transcribed = exists().where(Transcript.call_uniqueid == Recording.call_uniqueid)
        rows = session.scalars(
            select(Recording).where(
                Recording.created_at < cutoff,
                Recording.deleted_at.is_(None),
                transcribed,
                ~held,
            )
        ).all()
        for recording in rows:
            Path(recording.path).unlink(missing_ok=True)
            recording.deleted_at = now or utc_now()
            deleted.append(recording.path)
    if deleted:
        logger.info("retention: deleted %d recordings older than %d days", len(deleted), days)
    return deleted
