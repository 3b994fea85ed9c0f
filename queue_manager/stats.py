"""Persist the live model's changes: queue calls, agent sessions and pauses, and a
``queue_log`` in Asterisk's vocabulary.

Changes are buffered in memory and written in batches from a worker thread, so
the event loop never waits on the database. Every write is idempotent (keys
come from Asterisk: node, channel uniqueid, event time), so a replayed change or
a second queue manager on the same node leaves the same rows.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session, sessionmaker

from ivr.contracts.statuses import QueueCallOutcome
from ivr.db.executor import DbExecutor
from ivr.queue_records.models import AgentPause, AgentSession, QueueCall, QueueLogEntry
from queue_manager.model import Change, ChangeKind

logger = logging.getLogger(__name__)


def _utc(at: float) -> datetime:
    return datetime.fromtimestamp(at, UTC)


def _insert_ignore(session: Session, model: type[Any], values: dict[str, Any]) -> bool:
    """INSERT that does nothing when the unique key exists (SQLite and PostgreSQL);
    True when a row was written."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        result = session.execute(pg_insert(model).values(**values).on_conflict_do_nothing())
    elif dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        result = session.execute(sqlite_insert(model).values(**values).on_conflict_do_nothing())
    else:  # pragma: no cover - other backends: plain insert in a savepoint
        try:
            with session.begin_nested():
                session.execute(insert(model).values(**values))
        except Exception:
            logger.debug("duplicate %s row ignored", model.__tablename__)
            return False
        return True
    return bool(result.rowcount)  # type: ignore[attr-defined]


_COMPLETE_EVENTS = {"caller": "COMPLETECALLER", "agent": "COMPLETEAGENT", "transfer": "TRANSFER"}


class StatsRecorder:
    """Subscribe :meth:`record` to each node's model; :meth:`flush` writes.

    ``agent_of`` maps a member interface to the agent id; ``shift_of`` names
    the shift running at a moment (for reports by shift).
    """

    def __init__(
        self,
        sessions: sessionmaker[Session],
        agent_of: Mapping[str, str],
        shift_of: Callable[[datetime], str | None] = lambda _at: None,
        flush_interval: float = 0.5,
        db: DbExecutor | None = None,
    ) -> None:
        self.sessions = sessions
        # The queue manager's executor; a recorder built alone has its own thread.
        self.db = db or DbExecutor("queue-stats", 1)
        self.agent_of = dict(agent_of)
        self.shift_of = shift_of
        self.flush_interval = flush_interval
        self._pending: list[Change] = []
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    def record(self, change: Change) -> None:
        self._pending.append(change)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="queue-stats")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.flush()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.flush_interval)
            try:
                await self.flush()
            except Exception:
                logger.exception("writing queue statistics failed; will retry")

    async def flush(self) -> None:
        async with self._lock:
            batch, self._pending = self._pending, []
            if not batch:
                return
            try:
                await self.db.run(self._write, batch)
            except Exception:
                self._pending[:0] = batch  # keep them for the next attempt
                raise

    # -- writing (worker thread) ------------------------------------------------

    def _write(self, batch: list[Change]) -> None:
        with self.sessions.begin() as session:
            for change in batch:
                handler = HANDLERS.get(change.kind)
                if handler is not None:
                    handler(self, session, change)

    def _log(
        self,
        session: Session,
        change: Change,
        event: str,
        *,
        callid: str = "NONE",
        agent: str = "NONE",
        data: tuple[Any, ...] = (),
    ) -> bool:
        """Write the queue_log row; False when it was already written (a replay, or
        the other manager), so counters are not bumped twice."""
        values = {
            "node": change.node,
            "time": _utc(change.at),
            "callid": callid or "NONE",
            "queuename": change.queue or "NONE",
            "agent": agent or "NONE",
            "event": event,
        }
        for index, value in enumerate(data[:5], start=1):
            values[f"data{index}"] = str(value)
        return _insert_ignore(session, QueueLogEntry, values)

    def _call(self, session: Session, change: Change) -> QueueCall | None:
        return session.scalar(
            select(QueueCall).where(
                QueueCall.node == change.node, QueueCall.uniqueid == change.data["uniqueid"]
            )
        )

    def _on_caller_joined(self, session: Session, change: Change) -> None:
        d = change.data
        entered = (d["uniqueid"], ("", d.get("caller_id"), 1))
        if not self._log(session, change, "ENTERQUEUE", callid=entered[0], data=entered[1]):
            return
        call = self._call(session, change)
        if call is None:
            at = _utc(change.at)
            _insert_ignore(
                session,
                QueueCall,
                {
                    "node": change.node,
                    "uniqueid": d["uniqueid"],
                    "linkedid": d.get("linkedid") or d["uniqueid"],
                    "caller_id": d.get("caller_id", ""),
                    "first_queue": change.queue,
                    "queue": change.queue,
                    "queues_visited": 1,
                    "shift_id": self.shift_of(at),
                    "joined_at": at,
                    "outcome": QueueCallOutcome.WAITING,
                    "rings_unanswered": 0,
                },
            )
        elif call.queue != change.queue or call.outcome == QueueCallOutcome.LEFT:
            # The same channel moved on to another queue: still one call.
            call.queue = change.queue
            call.queues_visited += 1
            call.outcome = QueueCallOutcome.WAITING
            call.ended_at = None

    def _on_agent_ring_no_answer(self, session: Session, change: Change) -> None:
        d = change.data
        ring = (d.get("ring_ms", 0),)
        if not self._log(
            session, change, "RINGNOANSWER", callid=d["uniqueid"], agent=d["member"], data=ring
        ):
            return
        call = self._call(session, change)
        if call is not None:
            call.rings_unanswered += 1

    def _on_call_answered(self, session: Session, change: Change) -> None:
        d = change.data
        call = self._call(session, change)
        if call is not None and call.answered_at is None:
            call.answered_at = _utc(change.at)
            call.queue = change.queue
            call.outcome = QueueCallOutcome.ANSWERED
            call.wait_seconds = float(d["waited"])
            call.agent_interface = d["interface"]
            call.agent_id = self.agent_of.get(d["interface"])
        self._log(
            session,
            change,
            "CONNECT",
            callid=d["uniqueid"],
            agent=d["member"],
            data=(d["waited"], d.get("agent_uniqueid", ""), d.get("ring_s", 0)),
        )

    def _on_call_completed(self, session: Session, change: Change) -> None:
        d = change.data
        call = self._call(session, change)
        if call is not None:
            call.ended_at = _utc(change.at)
            call.talk_seconds = float(d["talked"])
            call.outcome = QueueCallOutcome.ANSWERED
        event = _COMPLETE_EVENTS.get(str(d.get("reason", "")).lower(), "COMPLETECALLER")
        self._log(
            session,
            change,
            event,
            callid=d["uniqueid"],
            agent=d["member"],
            data=(d["waited"], d["talked"], 1),
        )

    def _on_caller_abandoned(self, session: Session, change: Change) -> None:
        d = change.data
        call = self._call(session, change)
        if call is not None and call.answered_at is None:
            call.outcome = QueueCallOutcome.ABANDONED
            call.ended_at = _utc(change.at)
            call.wait_seconds = float(d["waited"])
        self._log(
            session,
            change,
            "ABANDON",
            callid=d["uniqueid"],
            data=(d.get("position", 0), d.get("original_position", 0), int(d["waited"])),
        )

    def _on_caller_left(self, session: Session, change: Change) -> None:
        d = change.data
        call = self._call(session, change)
        if call is not None and call.outcome == QueueCallOutcome.WAITING:
            # an abandon, arriving in either order, overrides this
            call.outcome = QueueCallOutcome.LEFT
            call.ended_at = _utc(change.at)
            call.wait_seconds = round(float(d["waited"]), 1)

    def _on_caller_lost(self, session: Session, change: Change) -> None:
        call = self._call(session, change)
        waiting, answered = QueueCallOutcome.WAITING, QueueCallOutcome.ANSWERED
        if call is not None and call.outcome in (waiting, answered) and call.ended_at is None:
            call.outcome = QueueCallOutcome.LOST if call.outcome == waiting else call.outcome
            call.ended_at = _utc(change.at)

    def _on_member_added(self, session: Session, change: Change) -> None:
        d = change.data
        _insert_ignore(
            session,
            AgentSession,
            {
                "node": change.node,
                "agent_id": self.agent_of.get(d["interface"]),
                "interface": d["interface"],
                "queue": change.queue,
                "login_at": _utc(change.at),
            },
        )
        self._log(session, change, "ADDMEMBER", agent=d["member"], data=(d["interface"],))

    def _on_member_removed(self, session: Session, change: Change) -> None:
        d = change.data
        at = _utc(change.at)
        for model, column in ((AgentSession, "logout_at"), (AgentPause, "unpaused_at")):
            session.execute(
                update(model)
                .where(
                    model.node == change.node,
                    model.interface == d["interface"],
                    model.queue == change.queue,
                    getattr(model, column).is_(None),
                )
                .values({column: at})
            )
        self._log(session, change, "REMOVEMEMBER", agent=d["member"], data=(d["interface"],))

    def _on_member_paused(self, session: Session, change: Change) -> None:
        d = change.data
        open_pause = session.scalar(
            select(AgentPause).where(
                AgentPause.node == change.node,
                AgentPause.interface == d["interface"],
                AgentPause.queue == change.queue,
                AgentPause.unpaused_at.is_(None),
            )
        )
        if open_pause is None:
            _insert_ignore(
                session,
                AgentPause,
                {
                    "node": change.node,
                    "agent_id": self.agent_of.get(d["interface"]),
                    "interface": d["interface"],
                    "queue": change.queue,
                    "reason": d.get("reason", ""),
                    "paused_at": _utc(change.at),
                },
            )
        elif d.get("reason") and open_pause.reason != d["reason"]:
            open_pause.reason = d["reason"]
        self._log(session, change, "PAUSE", agent=d["member"], data=(d.get("reason", ""),))

    def _on_member_unpaused(self, session: Session, change: Change) -> None:
        d = change.data
        session.execute(
            update(AgentPause)
            .where(
                AgentPause.node == change.node,
                AgentPause.interface == d["interface"],
                AgentPause.queue == change.queue,
                AgentPause.unpaused_at.is_(None),
            )
            .values(unpaused_at=_utc(change.at))
        )
        self._log(session, change, "UNPAUSE", agent=d["member"], data=(d.get("reason", ""),))


Handler = Callable[[StatsRecorder, Session, Change], None]

# Which change writes what. Every kind is either handled or named as ignored:
# tests/test_contracts.py fails when a ChangeKind is in neither, so a new kind
# (or a renamed one) cannot silently drop figures.
HANDLERS: dict[ChangeKind, Handler] = {
    ChangeKind.CALLER_JOINED: StatsRecorder._on_caller_joined,
    ChangeKind.AGENT_RING_NO_ANSWER: StatsRecorder._on_agent_ring_no_answer,
    ChangeKind.CALL_ANSWERED: StatsRecorder._on_call_answered,
    ChangeKind.CALL_COMPLETED: StatsRecorder._on_call_completed,
    ChangeKind.CALLER_ABANDONED: StatsRecorder._on_caller_abandoned,
    ChangeKind.CALLER_LEFT: StatsRecorder._on_caller_left,
    ChangeKind.CALLER_LOST: StatsRecorder._on_caller_lost,
    ChangeKind.MEMBER_ADDED: StatsRecorder._on_member_added,
    ChangeKind.MEMBER_REMOVED: StatsRecorder._on_member_removed,
    ChangeKind.MEMBER_PAUSED: StatsRecorder._on_member_paused,
    ChangeKind.MEMBER_UNPAUSED: StatsRecorder._on_member_unpaused,
}
# Live-only changes: nothing to keep (ringing is logged as CONNECT or
# RINGNOANSWER when it ends; device states and resyncs are not history).
IGNORED: frozenset[ChangeKind] = frozenset(
    {ChangeKind.AGENT_RINGING, ChangeKind.MEMBER_STATE, ChangeKind.RESYNCED}
)
