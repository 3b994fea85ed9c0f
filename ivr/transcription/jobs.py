"""The job table as a queue: enqueue at hangup, claim with a lease, finish once.

Claiming is one transaction: on PostgreSQL ``SELECT … FOR UPDATE SKIP LOCKED``
(many workers, no waiting on each other); on SQLite one atomic ``UPDATE …
WHERE id = (SELECT …)`` (SQLite has a single writer, so two workers cannot take
the same row). A claim carries a random token; finishing checks it, so a worker
whose lease expired and was taken over cannot store a second transcript.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import and_, or_, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session, sessionmaker

from ivr.cases.models import Recording, Transcript, TranscriptionJob
from ivr.db.engine import insert_ignoring_duplicates
from ivr.db.models import utc_now

logger = logging.getLogger(__name__)

QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"
# File suffixes the dialplan writes after ``<base>``: see ivr/asterisk/render.py.
LEG_SUFFIXES = {"caller": "-caller.wav", "agent": "-agent.wav", "mix": "-mix.wav",
                "voicemail": "-voicemail.wav"}  # fmt: skip
TRANSCRIBED_KINDS = ("caller", "agent", "voicemail")


@dataclass(frozen=True)
class Claim:
    job_id: int
    call_uniqueid: str
    token: str
    attempt: int


def register_recordings(
    session: Session | Connection,
    call_uniqueid: str,
    base: str,
    now: datetime,
    settle_seconds: float,
) -> int:
    """Rows for the files a call left at ``<base>-<kind>.wav`` and one job for
    the call when it has anything to transcribe. Idempotent; returns the
    number of recording files found."""
    # Runs at every hangup: at most two statements, idempotent through the
    # unique path and the one job per call (ON CONFLICT DO NOTHING).
    files = {
        kind: str(Path(base + suffix))
        for kind, suffix in LEG_SUFFIXES.items()
        if Path(base + suffix).is_file()
    }
    dialect = (
        session.get_bind().dialect.name if isinstance(session, Session) else (session.dialect.name)
    )
    if files:
        # Tables, not ORM classes, and values as parameters: the statement is
        # compiled once and reused (this runs at every hangup).
        session.execute(
            insert_ignoring_duplicates(Recording.__table__, dialect),
            [
                {"call_uniqueid": call_uniqueid, "kind": kind, "path": path, "created_at": now}
                for kind, path in files.items()
            ],
        )
    if set(files) & set(TRANSCRIBED_KINDS):
        session.execute(
            insert_ignoring_duplicates(TranscriptionJob.__table__, dialect),
            {
                "call_uniqueid": call_uniqueid,
                "status": QUEUED,
                "attempts": 0,
                "error": "",
                "available_at": now + timedelta(seconds=settle_seconds),
                "created_at": now,
            },
        )
    return len(files)


def _claimable(now: datetime, max_attempts: int):  # type: ignore[no-untyped-def]
    job = TranscriptionJob
    return and_(
        job.attempts < max_attempts,
        or_(
            and_(job.status == QUEUED, job.available_at <= now),
            and_(job.status == RUNNING, job.lease_until < now),
        ),
    )


def fail_exhausted(sessions: sessionmaker[Session], max_attempts: int, now: datetime) -> int:
    """Jobs whose last lease expired with no attempts left end as failed."""
    job = TranscriptionJob
    with sessions.begin() as session:
        result = session.execute(
            update(job)
            .where(job.status == RUNNING, job.lease_until < now, job.attempts >= max_attempts)
            .values(
                status=FAILED,
                finished_at=now,
                error=f"lease expired {max_attempts} times: the worker died or hung each time",
            )
        )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]


def claim_job(
    sessions: sessionmaker[Session],
    worker: str,
    lease_seconds: float,
    max_attempts: int,
    now: datetime | None = None,
) -> Claim | None:
    """Take the oldest available job (or one whose lease expired), or None."""
    now = now or utc_now()
    fail_exhausted(sessions, max_attempts, now)
    token = secrets.token_hex(16)
    lease = now + timedelta(seconds=lease_seconds)
    job = TranscriptionJob
    values = {
        "status": RUNNING,
        "worker": worker[:128],
        "claim_token": token,
        "lease_until": lease,
        "attempts": job.attempts + 1,
    }
    with sessions.begin() as session:
        if session.get_bind().dialect.name == "postgresql":
            job_id = session.scalar(
                select(job.id)
                .where(_claimable(now, max_attempts))
                .order_by(job.id)
                .limit(1)
                .with_for_update(skip_locked=True)
            )
            if job_id is None:
                return None
            session.execute(update(job).where(job.id == job_id).values(**values))
        else:
            candidate = (
                select(job.id)
                .where(_claimable(now, max_attempts))
                .order_by(job.id)
                .limit(1)
                .scalar_subquery()
            )
            job_id = session.scalar(
                update(job)
                .where(job.id == candidate, _claimable(now, max_attempts))
                .values(**values)
                .returning(job.id)
            )
            if job_id is None:
                return None
        row = session.execute(select(job.call_uniqueid, job.attempts).where(job.id == job_id)).one()
    logger.info("worker %s claimed job %s (call %s, attempt %s)", worker, job_id, row[0], row[1])
    return Claim(job_id, row[0], token, row[1])


def renew_lease(sessions: sessionmaker[Session], claim: Claim, lease_seconds: float) -> bool:
    """Push the lease forward; False when the job is no longer ours."""
    with sessions.begin() as session:
        result = session.execute(
            update(TranscriptionJob)
            .where(TranscriptionJob.id == claim.job_id,
                   TranscriptionJob.claim_token == claim.token,
                   TranscriptionJob.status == RUNNING)
            .values(lease_until=utc_now() + timedelta(seconds=lease_seconds))
        )  # fmt: skip
        return bool(result.rowcount)  # type: ignore[attr-defined]


def own_job(session: Session, claim: Claim) -> TranscriptionJob | None:
    """The job row, locked, if this claim still holds it."""
    job = session.scalar(
        select(TranscriptionJob).where(TranscriptionJob.id == claim.job_id).with_for_update()
    )
    if job is None or job.status != RUNNING or job.claim_token != claim.token:
        return None
    return job


def fail_job(sessions: sessionmaker[Session], claim: Claim, reason: str) -> bool:
    """End the job as failed (no retry): the reason is for supervisors."""
    with sessions.begin() as session:
        job = own_job(session, claim)
        if job is None:
            return False
        job.status = FAILED
        job.error = reason[:2000]
        job.finished_at = utc_now()
        job.lease_until = None
    logger.warning("transcription job %s failed: %s", claim.job_id, reason)
    return True


def transcript_count(session: Session, call_uniqueid: str) -> int:
    return len(
        session.scalars(
            select(Transcript.id).where(Transcript.call_uniqueid == call_uniqueid)
        ).all()
    )
