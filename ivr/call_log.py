"""Writes the call record. Synchronous SQLAlchemy behind one worker thread, so
the asyncio loop never blocks on the database and SQLite sees one writer.

This thread is not a :class:`~ivr.db.executor.DbExecutor` (the one way other
database work leaves the loop) on purpose: it is the call path's ordered
writer — one FIFO, a call's insert before its updates, batched commits, held
and retried while the database is away — not a pool that runs queries."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Connection, Engine, Table, bindparam, func, select, update
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as SqlTimeoutError
from sqlalchemy.orm import Session, sessionmaker

from ivr.contracts.statuses import CallOutcome, RouteKind
from ivr.db.call_chain import link_previous_call
from ivr.db.engine import insert_ignoring_duplicates
from ivr.db.models import Call
from ivr.phone import normalise_caller

logger = logging.getLogger(__name__)

# Statements built once, values passed at execution: SQLAlchemy then reuses the
# compiled form instead of building and hashing a statement with every value
# embedded (most of the call log's CPU before).
_CALLS = cast(Table, Call.__table__)  # a mapped class's table, typed as one
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
    # What the hangup knows of the call's start, for a call whose start never
    # reached us (hung up during Answer(), before the entry AGI): its record is
    # then inserted from these instead of being lost. Empty hotline: no insert.
    hotline_id: str = ""
    caller_raw: str = ""
    channel: str = ""
    linkedid: str = ""
    dialed_number: str = ""
    rec_base: str = ""  # HL_REC_BASE, for a spooled end: its recordings, its voicemail


def closing_values(end: CallEnd) -> dict[str, Any]:
    """The columns a call's end writes (the server's close and the fallback
    script's spooled one alike)."""
    answered_by = end.answered_by or end.queue_member or None
    values: dict[str, Any] = {
        "ended_at": end.ended_at,
        "dial_status": end.dial_status or None,
        "answered_by": answered_by,
        "outcome": outcome_of(end),
    }
    if end.answered_epoch is not None and answered_by:
        values["answered_at"] = datetime.fromtimestamp(end.answered_epoch, UTC)
    return values


def outcome_of(end: CallEnd) -> str:
    """One word for reports (:class:`CallOutcome`), or the route the call ended on."""
    if end.answered_by or end.queue_member or end.answered_epoch is not None:
        return CallOutcome.ANSWERED
    if not end.route:
        return CallOutcome.ABANDONED_IN_IVR
    if end.dial_status in ("NOANSWER", "CANCEL"):
        return CallOutcome.NO_ANSWER if end.dial_status == "NOANSWER" else CallOutcome.ABANDONED
    if end.dial_status in ("BUSY", "CONGESTION", "CHANUNAVAIL"):
        return CallOutcome(end.dial_status.lower())
    if end.route == RouteKind.QUEUE:
        return CallOutcome.ABANDONED_IN_QUEUE
    return end.route or CallOutcome.ENDED


class CallLogFull(RuntimeError):
    """The writer holds ``max_pending`` writes already (a long database outage)."""


def is_outage(error: BaseException) -> bool:
    """Errors that say the database is away or busy, not that the write is wrong:
    the write is kept and tried again. SQLite's "database is locked", a refused
    or dropped connection, a connect or statement timeout are all
    ``OperationalError``; an exhausted pool is SQLAlchemy's ``TimeoutError``."""
    if isinstance(error, OperationalError | InterfaceError | SqlTimeoutError):
        return True
    return isinstance(error, DBAPIError) and bool(error.connection_invalidated)


class _BatchWriter:
    """One thread that writes everything, in the order submitted, batching what
    piles up into one transaction: under load a commit per statement is the call
    log's main cost.

    A batch that fails because of its content is rolled back and its items
    retried one by one, so one bad write never loses the others. A batch that
    fails because the database is away (:func:`is_outage`) is kept and retried,
    with a growing pause, until the database is back: nothing behind it is
    written first, so a call's insert always precedes its updates. Nothing on a
    call's path waits for this thread.

    Memory is bounded by ``max_pending`` writes (about five per call); past it
    new writes are refused with :class:`CallLogFull` and an error in the log.
    """

    def __init__(
        self,
        engine: Engine,
        max_batch: int = 64,
        linger: float = 0.02,
        max_pending: int = 50_000,
        retry_pause: float = 0.5,
        max_retry_pause: float = 5.0,
    ) -> None:
        self._engine = engine
        self._max_batch = max_batch
        # Group commit: after the first write of a batch, wait up to ``linger``
        # seconds for more. Calls arrive spread out, so without it nearly every
        # write is its own commit; nothing on a call's path waits for these.
        self._linger = linger
        self._max_pending = max_pending
        self._retry_pause = retry_pause
        self._max_retry_pause = max_retry_pause
        self._items: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        # submitted is only counted on the event loop's thread, written only on
        # the writer's: each has one writer, so no lock is needed.
        self._submitted = 0
        self._written = 0
        self._refused = 0
        self._outage_since: float | None = None
        self.outages = 0  # outages seen (each logged once)
        self.lost = 0  # writes given up at close() (database away past its deadline)
        self._flush_deadline: float | None = None  # set by close()
        self._wake = threading.Event()  # cuts a retry pause short at close()
        self._thread = threading.Thread(target=self._loop, name="call-log", daemon=True)
        self._thread.start()

    @property
    def pending(self) -> int:
        """Writes submitted and not yet settled (written or failed)."""
        return self._submitted - self._written

    def submit(self, function: Callable[..., Any], *args: Any) -> asyncio.Future[Any]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        future.add_done_callback(_consume)
        if self.pending >= self._max_pending:
            self._refused += 1
            if self._refused == 1 or self._refused % 1000 == 0:
                logger.error(
                    "call log backlog is full (%d writes held while the database is away): "
                    "%d new writes refused so far; raise max_pending or restore the database",
                    self.pending,
                    self._refused,
                )
            future.set_exception(CallLogFull(f"{self.pending} writes already held"))
            return future
        self._submitted += 1
        self._items.put(_Item(function, args, future, loop))
        return future

    def close(self, timeout: float = 30.0) -> bool:
        """Write everything submitted so far, then stop; while the database is
        away keep retrying for up to ``timeout`` seconds. True when nothing was
        left unwritten."""
        self._flush_deadline = time.monotonic() + timeout
        self._items.put(None)
        self._wake.set()
        self._thread.join(timeout=timeout + 5)
        if self.pending:
            logger.error("call log stopped with %d writes not written", self.pending)
        return self.pending == 0 and self.lost == 0

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
            try:
                self._write_until_done(batch)
            except _PastDeadline:
                self._abandon(batch)
                return
            if stop:
                return

    def _write_until_done(self, batch: list[_Item]) -> None:
        """Write ``batch``, retrying through an outage; raises _PastDeadline when
        close()'s deadline passes first."""
        pause = self._retry_pause
        while True:
            try:
                self._write(batch)
            except Exception as error:  # only outages come out of _write
                self._outage(error)
                if self._flush_deadline is not None and time.monotonic() > self._flush_deadline:
                    raise _PastDeadline from error
                self._wake.wait(pause)
                pause = min(pause * 2, self._max_retry_pause)
                continue
            if self._outage_since is not None:
                logger.warning(
                    "call log: database back after %.1f s; held writes written in order",
                    time.monotonic() - self._outage_since,
                )
                self._outage_since = None
            return

    def _outage(self, error: BaseException) -> None:
        if self._outage_since is None:  # once per outage, not once per retry
            self._outage_since = time.monotonic()
            self.outages += 1
            logger.error(
                "call log: database unavailable (%s); %d writes held, retrying until it is back",
                str(error).splitlines()[0][:200],
                self.pending,
            )
        else:
            logger.debug("call log: database still unavailable: %s", error)

    def _write(self, batch: list[_Item]) -> None:
        """One transaction; raises only for an outage (the batch is then kept)."""
        try:
            with self._engine.begin() as connection:
                results = [item.function(connection, *item.args) for item in batch]
        except Exception as error:
            if is_outage(error):
                raise
            if len(batch) == 1:
                logger.exception("call log write failed")
                self._settle(batch[0], None, error)
                return
            for item in batch:  # isolate the failing write
                self._write_until_done([item])
            return
        for item, result in zip(batch, results, strict=True):
            self._settle(item, result, None)

    def _settle(self, item: _Item, result: Any, error: BaseException | None) -> None:
        if item.settled:
            return
        item.settled = True
        self._written += 1
        item.settle(result, error)

    def _abandon(self, batch: list[_Item]) -> None:
        """close()'s deadline passed with the database still away: say exactly
        which calls lose what, since this is the one place records are lost."""
        left = [item for item in batch if not item.settled]
        while True:
            try:
                item = self._items.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                left.append(item)
        calls = sorted({_call_of(item) for item in left} - {""})
        logger.error(
            "call log: database still unavailable at shutdown; %d writes NOT written "
            "(calls: %s); those calls are closed as interrupted at the next start",
            len(left),
            ", ".join(calls[:50]) + (" …" if len(calls) > 50 else ""),
        )
        self.lost += len(left)
        for item in left:
            self._settle(item, None, RuntimeError("database unavailable at shutdown"))


class _PastDeadline(Exception):
    """close()'s deadline passed while the database was still away."""


def _call_of(item: _Item) -> str:
    """The call a queued write is about, for the shutdown report."""
    for arg in item.args:
        if isinstance(arg, str):
            return arg
        uniqueid = getattr(arg, "uniqueid", None)
        if isinstance(uniqueid, str):
            return uniqueid
    return ""


def _consume(future: asyncio.Future[Any]) -> None:
    """Writes nobody awaits (the call path's) were already logged by the
    writer; this keeps asyncio from logging them again as "never retrieved"."""
    if not future.cancelled():
        future.exception()


@dataclass
class _Item:
    function: Callable[..., Any]
    args: tuple[Any, ...]
    future: asyncio.Future[Any]
    loop: asyncio.AbstractEventLoop
    settled: bool = False

    def settle(self, result: Any, error: BaseException | None) -> None:
        # A closed loop (shutdown after asyncio.run) has nobody left to tell.
        with contextlib.suppress(RuntimeError):
            self.loop.call_soon_threadsafe(_settle, self.future, result, error)


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
    statement cost several times more CPU for the same rows.

    Every method queues its write at once, in call order, and returns a future:
    the call path never awaits it (the writer keeps a call's insert before its
    updates); tests and tools may."""

    def __init__(self, sessions: sessionmaker[Session], max_pending: int = 50_000) -> None:
        self._sessions = sessions
        self._engine: Engine = sessions.kw["bind"]
        self._writer = _BatchWriter(self._engine, max_pending=max_pending)

    @property
    def pending(self) -> int:
        """Writes queued and not written yet (grows while the database is away)."""
        return self._writer.pending

    def submit(self, function: Callable[..., Any], *args: Any) -> asyncio.Future[Any]:
        """Run ``function(connection, *args)`` in the writer's next batch."""
        return self._writer.submit(function, *args)

    def close(self, timeout: float = 30.0) -> bool:
        """Flush every queued write (retrying for up to ``timeout`` seconds while
        the database is away), then stop. True when nothing was lost."""
        return self._writer.close(timeout)

    def call_started(self, start: CallStart) -> asyncio.Future[int]:
        return self._writer.submit(self._insert, start)

    def call_routed(
        self,
        uniqueid: str,
        *,
        keys: str,
        last_step: str,
        area_code: str | None,
        route_kind: str | None,
        route_target: str | None,
    ) -> asyncio.Future[None]:
        return self._writer.submit(
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

    def rated(self, uniqueid: str, rating: int) -> asyncio.Future[None]:
        """The caller's survey answer, on the call (the case opened from it is
        the case desk's: :meth:`ivr.agi.case_desk.CaseDesk.rated`)."""
        return self._writer.submit(self._rate, uniqueid, rating)

    def call_ended(self, end: CallEnd) -> asyncio.Future[None]:
        return self._writer.submit(self._close, end)

    def close_stale_calls(
        self, started_before: datetime, live: frozenset[str] = frozenset()
    ) -> asyncio.Future[int]:
        """Close records a crash left "in progress" (see :func:`close_stale_calls`)."""
        return self._writer.submit(close_stale_calls, started_before, live)

    @staticmethod
    def _rate(connection: Connection, uniqueid: str, rating: int) -> None:
        connection.execute(
            update(Call).where(Call.uniqueid == uniqueid).values(satisfaction=rating)
        )

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
            "outcome": CallOutcome.IN_PROGRESS,
            "notes": "",
        }
        # ON CONFLICT DO NOTHING: a re-entry for the same channel keeps its row,
        # and a duplicate never aborts the batch's transaction.
        statement = _insert_call_statement(connection.dialect.name)
        inserted = connection.execute(statement, values).scalar()
        if inserted is not None:
            link_previous_call(
                connection, inserted, start.hotline_id, caller.e164, start.started_at
            )
            return int(inserted)
        existing = connection.scalar(select(Call.id).where(Call.uniqueid == start.uniqueid))
        assert existing is not None  # the row the insert conflicted with
        return int(existing)

    @staticmethod
    def _update(connection: Connection, uniqueid: str, values: dict[str, Any]) -> None:
        connection.execute(_UPDATE_CALL, {"by_uniqueid": uniqueid, **values})

    @staticmethod
    def _close(connection: Connection, end: CallEnd) -> None:
        values = closing_values(end)
        closed = connection.execute(_UPDATE_CALL, {"by_uniqueid": end.uniqueid, **values})
        if closed.rowcount:
            return
        if not end.hotline_id:
            logger.warning("call-ended for unknown call %s", end.uniqueid)
            return
        # The call's start never reached us: insert the record from what the
        # hangup carries. ON CONFLICT DO NOTHING both ways: a late entry for
        # this uniqueid keeps this closed row (CallLog._insert ignores it).
        logger.warning("call-ended for unseen call %s: recorded from its hangup", end.uniqueid)
        insert_from_end(connection, end, values)


def insert_from_end(
    connection: Connection, end: CallEnd, values: dict[str, Any] | None = None
) -> int | None:
    """Insert the record of a call whose start never reached us, closed with
    what its hangup saw; None when a record with its uniqueid exists already
    (or the hangup does not say whose call it was)."""
    if not end.hotline_id:
        return None
    values = dict(values if values is not None else closing_values(end))
    caller = normalise_caller(end.caller_raw)
    started_at = started_at_of(end)
    if not end.route:  # hung up before any route: the call was cut, not abandoned
        values["outcome"] = CallOutcome.INTERRUPTED
    row = {
        "uniqueid": end.uniqueid,
        "linkedid": end.linkedid or end.uniqueid,
        "hotline_id": end.hotline_id[:64],
        "channel": end.channel[:128],
        "caller_number": caller.e164,
        "caller_raw": caller.raw[:64],
        "caller_withheld": caller.withheld,
        "dialed_number": end.dialed_number[:32],
        "keys_pressed": "",
        "last_step": "hangup",
        "started_at": started_at,
        "notes": "",
        **values,
    }
    inserted = connection.execute(_insert_call_statement(connection.dialect.name), row).scalar()
    if inserted is None:
        return None
    link_previous_call(connection, int(inserted), end.hotline_id, caller.e164, started_at)
    return int(inserted)


def started_at_of(end: CallEnd) -> datetime:
    """When a call we never saw start began: Asterisk's uniqueid is
    "<epoch seconds>.<sequence>", the channel's creation; else its end."""
    head = end.uniqueid.split(".", 1)[0]
    if head.isdigit():
        started = datetime.fromtimestamp(int(head), UTC)
        if started <= end.ended_at:
            return started
    return end.ended_at


INTERRUPTED = CallOutcome.INTERRUPTED


def close_stale_calls(
    connection: Connection, started_before: datetime, live: frozenset[str] = frozenset()
) -> int:
    """Close every call still "in progress" that started before ``started_before``
    and is not in ``live``: its hangup handler never reached us (the server was
    down or crashed when the call ended), so nothing else will ever close it.

    The end time is the last moment we know the call existed: when it was
    answered, else when it started. The real end is unknown; ``interrupted``
    tells reports so. A hangup handler that still arrives later overwrites this
    with what the dialplan saw."""
    statement = (
        update(_CALLS)
        .where(_CALLS.c.outcome == CallOutcome.IN_PROGRESS, _CALLS.c.started_at < started_before)
        .values(
            outcome=INTERRUPTED,
            ended_at=func.coalesce(_CALLS.c.answered_at, _CALLS.c.started_at),
        )
    )
    if live:
        statement = statement.where(_CALLS.c.uniqueid.not_in(sorted(live)))
    closed = int(connection.execute(statement).rowcount or 0)
    if closed:
        logger.warning(
            "closed %d call records left in progress (started before %s) as %s",
            closed,
            started_before.isoformat(timespec="seconds"),
            INTERRUPTED,
        )
    return closed
