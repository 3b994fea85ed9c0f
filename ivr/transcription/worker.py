"""``hotline worker``: claim a job, transcribe the call's legs, store the dialogue.

One process per worker (vosk decodes on one core; a process per core scales
and a crash takes one job's lease with it, nothing else).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from ivr.cases.models import Case, CaseEvent, Recording, Transcript, TranscriptionJob
from ivr.config.schema import HotlineConfig
from ivr.db.engine import make_engine, make_session_factory
from ivr.db.models import utc_now
from ivr.transcription.audio import UndecodableAudio, load_pcm
from ivr.transcription.jobs import (
    DONE,
    TRANSCRIBED_KINDS,
    Claim,
    claim_job,
    fail_job,
    own_job,
    renew_lease,
)
from ivr.transcription.recognizer import (
    LegTranscript,
    SilenceSettings,
    dialogue_json,
    dialogue_text,
    load_model,
    merge_dialogue,
    transcribe_leg,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class JobOutcome:
    job_id: int
    status: str  # done | failed | lost (the lease went to another worker)
    detail: str = ""


def silence_settings(config: HotlineConfig) -> SilenceSettings:
    t = config.transcription
    return SilenceSettings(
        t.skip_silence, t.silence_threshold_dbfs, t.min_silence_seconds, t.pad_seconds
    )


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class TranscriptionWorker:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        config: HotlineConfig,
        model: Any,
        name: str | None = None,
    ) -> None:
        self.sessions = sessions
        self.config = config
        self.model = model
        self.name = name or worker_name()
        self.silence = silence_settings(config)
        model_path = config.transcription.resolved_model_path()
        self.model_label = model_path.name if model_path else ""
        if model_path is not None and config.transcription.model_package:
            self.model_label = config.transcription.model_package

    def run_once(self) -> JobOutcome | None:
        """Claim and finish at most one job; None when there was nothing to do."""
        t = self.config.transcription
        claim = claim_job(self.sessions, self.name, t.lease_seconds, t.max_attempts)
        if claim is None:
            return None
        return self.process(claim)

    def run(self, stop: threading.Event) -> None:
        # Retention is not the worker's job: it must run with no model and no
        # worker at all (ivr.privacy.retention, scheduled by `hotline serve`).
        while not stop.is_set():
            try:
                outcome = self.run_once()
            except Exception:
                logger.exception("transcription worker %s: unexpected error", self.name)
                outcome = None
            if outcome is None:
                stop.wait(self.config.transcription.poll_seconds)

    def process(self, claim: Claim) -> JobOutcome:
        with self.sessions() as session:
            recordings = list(
                session.scalars(
                    select(Recording)
                    .where(
                        Recording.call_uniqueid == claim.call_uniqueid,
                        Recording.kind.in_(TRANSCRIBED_KINDS),
                        Recording.deleted_at.is_(None),
                    )
                    .order_by(Recording.id)
                )
            )
        if not recordings:
            fail_job(self.sessions, claim, "no recordings to transcribe")
            return JobOutcome(claim.job_id, "failed", "no recordings")
        lease = self.config.transcription.lease_seconds
        renewed_at = time.monotonic()

        def keep_lease() -> None:
            nonlocal renewed_at
            if time.monotonic() - renewed_at > lease / 3:
                renew_lease(self.sessions, claim, lease)
                renewed_at = time.monotonic()

        legs: list[LegTranscript] = []
        for recording in recordings:
            try:
                pcm = load_pcm(Path(recording.path))
            except FileNotFoundError:
                return self._fail(claim, f"{recording.kind} recording missing: {recording.path}")
            except UndecodableAudio as exc:
                return self._fail(claim, f"{recording.kind} recording: {exc}")
            legs.append(transcribe_leg(self.model, recording.kind, pcm, self.silence, keep_lease))
        return self._store(claim, legs)

    def _fail(self, claim: Claim, reason: str) -> JobOutcome:
        fail_job(self.sessions, claim, reason)
        return JobOutcome(claim.job_id, "failed", reason)

    def _store(self, claim: Claim, legs: list[LegTranscript]) -> JobOutcome:
        turns = merge_dialogue(legs)
        text = dialogue_text(turns)
        audio = sum(leg.audio_seconds for leg in legs)
        decoded = sum(leg.decoded_seconds for leg in legs)
        skipped = 0.0 if audio <= 0 else max(0.0, 1 - decoded / audio)
        now = utc_now()
        with self.sessions.begin() as session:
            job = own_job(session, claim)
            if job is None:
                logger.warning("job %s was taken over; dropping this result", claim.job_id)
                return JobOutcome(claim.job_id, "lost")
            case = session.scalar(select(Case).where(Case.call_uniqueid == claim.call_uniqueid))
            session.add(
                Transcript(
                    call_uniqueid=claim.call_uniqueid,
                    job_id=job.id,
                    case_id=case.id if case else None,
                    text=text,
                    dialogue=dialogue_json(legs, turns),
                    audio_seconds=round(audio, 3),
                    skipped_share=round(skipped, 4),
                    model=self.model_label,
                    created_at=now,
                )
            )
            if case is not None:
                case.transcript = text
                case.updated_at = now
                session.add(
                    CaseEvent(case_id=case.id, at=now, actor=f"transcription:{self.name}",
                              action="transcript", note=f"{len(text)} characters")
                )  # fmt: skip
            job.status = DONE
            job.finished_at = now
            job.lease_until = None
            job.error = ""
        logger.info(
            "job %s done: %d turns, %.1f s audio, %.0f%% skipped as silence",
            claim.job_id, len(turns), audio, skipped * 100,
        )  # fmt: skip
        return JobOutcome(claim.job_id, DONE)


def open_worker(config: HotlineConfig, name: str | None = None) -> TranscriptionWorker:
    model_path = config.transcription.resolved_model_path()
    if model_path is None:
        raise SystemExit(
            "no vosk model configured: set transcription.model_path (see docs/transcription.md)"
        )
    model_path = config.resolve_path(model_path)
    started = time.monotonic()
    model = load_model(model_path)
    logger.info("vosk model %s loaded in %.1f s", model_path, time.monotonic() - started)
    sessions = make_session_factory(make_engine(config.database_url))
    return TranscriptionWorker(sessions, config, model, name)


def run_worker(config: HotlineConfig, stop: threading.Event, name: str | None = None) -> None:
    worker = open_worker(config, name)
    logger.info("transcription worker %s waiting for jobs", worker.name)
    worker.run(stop)


def jobs_summary(sessions: sessionmaker[Session]) -> dict[str, int]:
    with sessions() as session:
        rows = session.execute(select(TranscriptionJob.status)).scalars().all()
    summary: dict[str, int] = {}
    for status in rows:
        summary[status] = summary.get(status, 0) + 1
    return summary
