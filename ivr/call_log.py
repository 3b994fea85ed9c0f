"""Writes the call record. Synchronous SQLAlchemy behind one worker thread, so
the asyncio loop never blocks on the database and SQLite sees one writer."""

from __future__ import annotations

import asyncio
import logging
import queue
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, select, update
from sqlalchemy.orm import Session, sessionmaker

from ivr.db.engine import insert_ignoring_duplicates
from ivr.db.models import Call
from ivr.phone import normalise_caller

logger = logging.getLogger(__name__)

# Statements built once, values passed at execution: SQLAlchemy then reuses the
# compiled form instead of building and hashing a statement with every value
# embedded (most of the call log's CPU before).
_CALLS = Call.__table__
_UPDATE_CALL = update(_CALLS).where(_CALLS.c.uniqueid == bindparam("by_uniqueid"))
_INSERT_CALL: dict[str, Any] = {}  # dialect name → INSERT … ON CONFLICT DO NOTHING RETURNING id


def _insert_call_statement(dialect_name: str) -> Any:
    statement = _INSERT_CALL.get(dialect_name)
    if statement is None:
        statement = insert_ignoring_duplicates(_CALLS, dialect_name).returning(_CALLS.c.id)
        _INSERT_CALL[dialect_name] = statement
    return statement


@dataclass(frozen=True)
class CallStart:
    uniqueid: str
    linkedid: str
    hotline_id: str
    channel: str
    caller_raw: str
    dialed_number: str
    started_at: datetime


@dataclass(frozen=True)
class CallEnd:
    uniqueid: str
    route: str  # HL_ROUTE as the dialplan last saw it
    dial_status: str
    answered_epoch: float | None  # when the answering phone picked up
    answered_by: str
    queue_member: str
    ended_at: datetime


def outcome_of(end: CallEnd) -> str:
    """One word for reports: answered, no_answer, busy, abandoned_in_ivr, ..."""
    if end.answered_by or end.queue_member or end.answered_epoch is not None:
        return "answered"
    if not end.route:
        return "abandoned_in_ivr"
    if end.dial_status in ("NOANSWER", "CANCEL"):
        return "no_answer" if end.dial_status == "NOANSWER" else "abandoned"
    if end.dial_status in ("BUSY", "CONGESTION", "CHANUNAVAIL"):
        return end.dial_status.lower()
    if end.route == "queue":
        return "abandoned_in_queue"
    return end.route or "ended"


class _BatchWriter:
    """One thread that writes everything, batching what piles up into one
    transaction: under load a commit per statement is the call log's main cost.

    A batch that fails is rolled back and its items retried one by one, so one
    bad write never loses the others."""

    def __init__(self, engine: Engine, max_batch: int = 64, linger: float = 0.02) -> None:
        self._engine = engine
        self._max_batch = max_batch
        # Group commit: after the first write of a batch, wait up to ``linger``
        # seconds for more. Calls arrive spread out, so without it nearly every
        # write is its own commit; nothing on a call's path waits for these.
        self._linger = linger
        self._items: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._loop, name="call-log", daemon=True)
        self._thread.start()

    def submit(self, function: Callable[..., Any], *args: Any) -> asyncio.Future[Any]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._items.put(_Item(function, args, future, loop))
        return future

    def close(self) -> None:
        self._items.put(None)
        self._thread.join(timeout=10)

    def _loop(self) -> None:
        while True:
            first = self._items.get()
            if first is None:
                return
            batch = [first]
            stop = False
            deadline = time.monotonic() + self._linger
            while len(batch) < self._max_batch:
                remaining = deadline - time.monotonic()
                try:
                    if remaining > 0:
                        item = self._items.get(timeout=remaining)
                    else:
                        item = self._items.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stop = True
                    break
                batch.append(item)
            self._write(batch)
            if stop:
                return

    def _write(self, batch: list[_Item]) -> None:
        try:
            with self._engine.begin() as connection:
                results = [item.function(connection, *item.args) for item in batch]
        except Exception:
            if len(batch) == 1:
                logger.exception("call log write failed")
                batch[0].fail(sys.exc_info()[1])
                return
            for item in batch:  # isolate the failing write
                self._write([item])
            return
        for item, result in zip(batch, results, strict=True):
            item.done(result)


@dataclass
class _Item:
    function: Callable[..., Any]
    args: tuple[Any, ...]
    future: asyncio.Future[Any]
    loop: asyncio.AbstractEventLoop

    def done(self, result: Any) -> None:
        self.loop.call_soon_threadsafe(_settle, self.future, result, None)

    def fail(self, error: BaseException | None) -> None:
        self.loop.call_soon_threadsafe(_settle, self.future, None, error)


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


class CallLog:
    """Writes go through SQLAlchemy Core, batched by one writer thread: the call
    log is on the hot path of every call, where ORM sessions and a commit per
    statement cost several times more CPU for the same rows."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions
        self._engine: Engine = sessions.kw["bind"]
        self._writer = _BatchWriter(self._engine)

    async def _run(self, function: Any, *args: Any) -> Any:
        return await self._writer.submit(function, *args)

    async def submit(self, function: Callable[..., Any], *args: Any) -> Any:
        """Run ``function(connection, *args)`` in the writer's next batch."""
        return await self._writer.submit(function, *args)

    def close(self) -> None:
        self._writer.close()

    async def call_started(self, start: CallStart) -> int:
        return int(await self._run(self._insert, start))

    async def call_routed(
        self,
        uniqueid: str,
        *,
        keys: str,
        last_step: str,
        area_code: str | None,
        route_kind: str | None,
        route_target: str | None,
    ) -> None:
        await self._run(
            self._update,
            uniqueid,
            {
                "keys_pressed": keys[:128],
                "last_step": last_step,
                "area_code": area_code,
                "route_kind": route_kind,
                "route_target": (route_target or "")[:255] or None,
            },
        )

    async def rated(self, uniqueid: str, rating: int) -> None:
        """The caller's survey answer, on the call and on the case opened from it."""
        await self._run(self._rate, uniqueid, rating)

    @staticmethod
    def _rate(connection: Connection, uniqueid: str, rating: int) -> None:
        from ivr.cases.models import Case

        connection.execute(
            update(Call).where(Call.uniqueid == uniqueid).values(satisfaction=rating)
        )
        connection.execute(
            update(Case).where(Case.call_uniqueid == uniqueid).values(satisfaction=rating)
        )

    async def call_ended(self, end: CallEnd) -> None:
        await self._run(self._close, end)

    @staticmethod
    def _insert(connection: Connection, start: CallStart) -> int:
        caller = normalise_caller(start.caller_raw)
        values = {
            "uniqueid": start.uniqueid,
            "linkedid": start.linkedid or start.uniqueid,
            "hotline_id": start.hotline_id,
            "channel": start.channel,
            "caller_number": caller.e164,
            "caller_raw": caller.raw[:64],
            "caller_withheld": caller.withheld,
            "dialed_number": start.dialed_number[:32],
            "keys_pressed": "",
            "last_step": "entry",
            "started_at": start.started_at,
            "outcome": "in_progress",
            "notes": "",
        }
        # ON CONFLICT DO NOTHING: a re-entry for the same channel keeps its row,
        # and a duplicate never aborts the batch's transaction.
        statement = _insert_call_statement(connection.dialect.name)
        inserted = connection.execute(statement, values).scalar()
        if inserted is not None:
            return int(inserted)
        return int(connection.scalar(select(Call.id).where(Call.uniqueid == start.uniqueid)))

    @staticmethod
    def _update(connection: Connection, uniqueid: str, values: dict[str, Any]) -> None:
        connection.execute(_UPDATE_CALL, {"by_uniqueid": uniqueid, **values})

    @staticmethod
    def _close(connection: Connection, end: CallEnd) -> None:
        answered_by = end.answered_by or end.queue_member or None
        values: dict[str, Any] = {
            "ended_at": end.ended_at,
            "dial_status": end.dial_status or None,
            "answered_by": answered_by,
            "outcome": outcome_of(end),
        }
        if end.answered_epoch is not None and answered_by:
            values["answered_at"] = datetime.fromtimestamp(end.answered_epoch, UTC)
        closed = connection.execute(_UPDATE_CALL, {"by_uniqueid": end.uniqueid, **values})
        if not closed.rowcount:
            logger.warning("call-ended for unknown call %s", end.uniqueid)
