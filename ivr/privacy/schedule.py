"""Running the retention job: on a schedule inside ``hotline serve`` and by
hand, each run that changed something written to the audit log.

``hotline serve`` runs it in the process that runs the web part (the default
``hotline serve`` runs every part; a split deployment runs ``--only web`` once,
while FastAGI servers and queue managers may run one per Asterisk node). It
needs neither a vosk model nor a transcription worker. Two processes running
it at once would do no harm: every step is idempotent.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from ivr.audit import AuditEntry
from ivr.config.schema import HotlineConfig
from ivr.config.source import ConfigSource
from ivr.db.executor import DbExecutor
from ivr.db.models import utc_now
from ivr.db.periodic import PeriodicJob
from ivr.privacy.retention import ACTOR, RetentionReport, run_retention

logger = logging.getLogger(__name__)


def audit_run(sessions: sessionmaker[Session], report: RetentionReport, trigger: str) -> None:
    """One audit row with the counts per kind. Runs that found nothing to do
    are only logged: an hourly no-op row would push people's actions off the
    audit page."""
    if report.dry_run or (not report.changed and not report.errors):
        return
    detail = {
        "counts": report.counts,
        "audio_awaiting_transcript": report.audio_awaiting_transcript,
        "held_cases": report.held_cases,
        "errors": report.errors[:20],
    }
    with sessions.begin() as session:
        session.add(
            AuditEntry(
                at=utc_now(), actor=ACTOR, action="retention", target=trigger[:255],
                detail=json.dumps(detail, ensure_ascii=False, sort_keys=True), address="",
            )
        )  # fmt: skip


def run_and_audit(
    sessions: sessionmaker[Session],
    config: HotlineConfig,
    trigger: str,
    *,
    dry_run: bool = False,
    clock: Callable[[], datetime] = utc_now,
) -> RetentionReport:
    report = run_retention(sessions, config, dry_run=dry_run, clock=clock)
    audit_run(sessions, report, trigger)
    return report


class RetentionSchedule:
    """The job at start, then every ``retention.run_every_minutes``, on a
    database thread of its own (the event loop never waits on it). ``close``
    stops it; a config applied while running (read from the process's config
    source) takes effect at the next run."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        config: HotlineConfig | ConfigSource,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.sessions = sessions
        self.config_source = ConfigSource.of(config)
        # One thread: runs never overlap, and a long one holds no other part's thread.
        self.db = DbExecutor("retention", 1)
        self.clock = clock
        self.runs = 0
        self.last_report: RetentionReport | None = None
        self._ran = asyncio.Condition()
        # A failed run is retried at the next tick, never fatal.
        self._schedule = PeriodicJob(
            "retention", self.run_once, self._pause_seconds, "retention run failed", logger
        )

    def start(self) -> None:
        if self.config.retention.run_every_minutes <= 0:
            logger.info("retention is not scheduled (run_every_minutes: 0): use cron")
            return
        self._schedule.start()

    @property
    def config(self) -> HotlineConfig:
        return self.config_source.current

    async def wait_for_run(self, count: int = 1) -> RetentionReport:
        """Until ``count`` runs have finished (tests and callers that need the effect)."""
        async with self._ran:
            await self._ran.wait_for(lambda: self.runs >= count)
        assert self.last_report is not None
        return self.last_report

    async def run_once(self) -> RetentionReport:
        report = await self.db.run(
            run_and_audit, self.sessions, self.config, "scheduled", clock=self.clock
        )
        async with self._ran:
            self.runs += 1
            self.last_report = report
            self._ran.notify_all()
        return report

    def _pause_seconds(self) -> float:
        return (self.config.retention.run_every_minutes or 60) * 60

    async def close(self) -> None:
        await self._schedule.close()
        # Not waiting on the loop: a run under way finishes in its thread.
        self.db.close(wait=False)
