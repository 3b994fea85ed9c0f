"""Delivers the outbound messages of case threads (acknowledgements, answers)
through the sender registered for their channel, and records the outcome.

Rows are written as ``pending`` in the transaction of the change they report
(:mod:`ivr.intake.service`); this runs beside the console in ``hotline serve``.
A row is claimed by pushing its next attempt forward (a conditional update), so
two dispatchers never send it twice at once; a failure is retried with a
growing delay and given up (``failed``) after ``max_attempts``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from ivr.cases.models import Case
from ivr.contracts.channels import Channel, MessageDirection
from ivr.db.models import utc_now
from ivr.db.periodic import PeriodicJob
from ivr.intake.models import FAILED, PENDING, SENT, CaseMessage
from ivr.intake.types import OutgoingReply, ReplySender

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
FIRST_DELAY = timedelta(seconds=30)
LONGEST_DELAY = timedelta(hours=1)
# How long a claimed row is left alone: longer than one send may take.
CLAIM = timedelta(minutes=5)
SEND_TIMEOUT = 60.0  # seconds


def backoff(attempts: int) -> timedelta:
    """The wait after the ``attempts``-th failure: 30 s, 1 min, 2 min, … 1 h."""
    return min(FIRST_DELAY * (2 ** max(attempts - 1, 0)), LONGEST_DELAY)


@dataclass
class DispatchRun:
    sent: int = 0
    retrying: int = 0
    failed: int = 0


class ReplyDispatcher:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        senders: Mapping[Channel, ReplySender],
        clock: Callable[[], datetime] = utc_now,
        *,
        interval_seconds: float = 5.0,
        max_attempts: int = MAX_ATTEMPTS,
        batch: int = 50,
    ) -> None:
        self._sessions = sessions
        self.senders = dict(senders)
        self._clock = clock
        self.interval = interval_seconds
        self.max_attempts = max_attempts
        self.batch = batch
        self._schedule = PeriodicJob(
            "reply-dispatcher", self.run_once, lambda: self.interval,
            "reply dispatcher pass failed; next pass continues", logger,
        )  # fmt: skip

    # --- one pass ----------------------------------------------------------------

    async def run_once(self) -> DispatchRun:
        """Send every due row whose channel has a sender (the others wait for
        one to be configured), each once."""
        run = DispatchRun()
        try:
            claimed = await asyncio.to_thread(self._claim)
        except OperationalError as exc:
            # SQLite: another dispatcher is claiming at this moment. Its rows are
            # its own; ours wait for the next pass.
            if "locked" not in str(exc).lower():
                raise
            logger.info("reply rows busy (%s); next pass", exc)
            return run
        for reply in claimed:
            sender = self.senders[reply.channel]
            try:
                external_id = await asyncio.wait_for(sender.send(reply), SEND_TIMEOUT)
            except Exception as exc:  # the sender's failure is recorded, never raised
                logger.warning("reply %s on %s failed: %s", reply.message_id, reply.channel, exc)
                gave_up = await asyncio.to_thread(self._record_failure, reply, exc)
                if gave_up:
                    run.failed += 1
                else:
                    run.retrying += 1
                continue
            await asyncio.to_thread(self._record_sent, reply, external_id)
            run.sent += 1
        return run

    def _claim(self) -> list[OutgoingReply]:
        now = self._clock()
        channels = [str(c) for c in self.senders]
        if not channels:
            return []
        with self._sessions.begin() as session:
            rows = session.scalars(
                select(CaseMessage)
                .where(
                    CaseMessage.direction == MessageDirection.OUTBOUND,
                    CaseMessage.status == PENDING,
                    CaseMessage.channel.in_(channels),
                    or_(CaseMessage.next_attempt_at.is_(None), CaseMessage.next_attempt_at <= now),
                )
                .order_by(CaseMessage.id)
                .limit(self.batch)
            ).all()
            replies = []
            for row in rows:
                claimed = session.execute(
                    update(CaseMessage)
                    .where(
                        CaseMessage.id == row.id,
                        CaseMessage.status == PENDING,
                        CaseMessage.next_attempt_at.is_(None)
                        if row.next_attempt_at is None
                        else CaseMessage.next_attempt_at == row.next_attempt_at,
                    )
                    .values(next_attempt_at=now + CLAIM)
                    .execution_options(synchronize_session=False)
                )
                if claimed.rowcount == 1:  # type: ignore[attr-defined]
                    replies.append(self._reply_for(session, row))
            return replies

    def _reply_for(self, session: Session, row: CaseMessage) -> OutgoingReply:
        case = session.get(Case, row.case_id)
        assert case is not None
        # Threading: the citizen's messages (and ours already sent) on this
        # channel, oldest first; the reply answers the citizen's latest.
        thread = session.execute(
            select(CaseMessage.direction, CaseMessage.external_id)
            .where(
                CaseMessage.case_id == row.case_id,
                CaseMessage.channel == row.channel,
                CaseMessage.external_id.is_not(None),
                CaseMessage.id != row.id,
            )
            .order_by(CaseMessage.at, CaseMessage.id)
        ).all()
        references = tuple(dict.fromkeys(t.external_id for t in thread))
        inbound = [t.external_id for t in thread if t.direction == MessageDirection.INBOUND]
        return OutgoingReply(
            message_id=row.id,
            case_code=case.code,
            hotline_id=case.hotline_id,
            channel=Channel(row.channel),
            to=row.to or "",
            subject=row.subject,
            text=row.text,
            in_reply_to=inbound[-1] if inbound else None,
            references=references,
        )

    def _record_sent(self, reply: OutgoingReply, external_id: str | None) -> None:
        now = self._clock()
        with self._sessions.begin() as session:
            row = session.get(CaseMessage, reply.message_id)
            if row is None:
                return
            row.status, row.sent_at, row.error = SENT, now, ""
            row.attempts += 1
            row.next_attempt_at = None
            if external_id:
                row.external_id = external_id[:255]

    def _record_failure(self, reply: OutgoingReply, exc: BaseException) -> bool:
        now = self._clock()
        with self._sessions.begin() as session:
            row = session.get(CaseMessage, reply.message_id)
            if row is None:
                return True
            row.attempts += 1
            row.error = f"{type(exc).__name__}: {exc}"[:1000]
            if row.attempts >= self.max_attempts:
                row.status, row.next_attempt_at = FAILED, None
                return True
            row.next_attempt_at = now + backoff(row.attempts)
            return False

    # --- lifecycle -----------------------------------------------------------------

    def wake(self) -> None:
        """Run a pass now (a row was just queued). Safe from any thread."""
        self._schedule.wake()

    def start(self) -> None:
        self._schedule.start()

    async def close(self) -> None:
        await self._schedule.close()
