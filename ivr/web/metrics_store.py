"""The database reads of ``/metrics`` and ``/healthz`` (ivr/web/metrics.py,
ivr/web/health.py): run on their own thread, never on the event loop."""

from __future__ import annotations

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session, sessionmaker

from ivr.cases.models import SmsMessage, TranscriptionJob
from ivr.contracts.channels import MessageDirection
from ivr.intake.models import PENDING, CaseMessage


def select_one(sessions: sessionmaker[Session]) -> None:
    """The database answers (the health check's probe)."""
    with sessions() as session:
        session.execute(text("SELECT 1"))


def count_backlogs(sessions: sessionmaker[Session]) -> dict[str, int]:
    """Rows waiting for a worker: transcription jobs queued and running, texts
    and outbound case messages pending (indexed status columns: cheap)."""
    with sessions() as session:
        jobs = dict(
            session.execute(
                select(TranscriptionJob.status, func.count())
                .where(TranscriptionJob.status.in_(("queued", "running")))
                .group_by(TranscriptionJob.status)
            ).all()
        )
        sms = session.scalar(
            select(func.count()).select_from(SmsMessage).where(SmsMessage.status == "pending")
        )
        messages = session.scalar(
            select(func.count())
            .select_from(CaseMessage)
            .where(
                CaseMessage.status == PENDING,
                CaseMessage.direction == MessageDirection.OUTBOUND.value,
            )
        )
    return {
        "transcription_queued": int(jobs.get("queued", 0)),
        "transcription_running": int(jobs.get("running", 0)),
        "sms_pending": int(sms or 0),
        "case_messages_pending": int(messages or 0),
    }
