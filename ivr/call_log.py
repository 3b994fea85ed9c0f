"""Writes the call record. Synchronous SQLAlchemy behind one worker thread, so
the asyncio loop never blocks on the database and SQLite sees one writer."""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any

from sqlalchemy import Engine, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from ivr.db.models import Call
from ivr.phone import normalise_caller

logger = logging.getLogger(__name__)


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


class CallLog:
    """Writes go through SQLAlchemy Core on one connection per statement: the call
    log is on the hot path of every call, where ORM sessions cost several times
    more CPU for the same row."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions
        self._engine: Engine = sessions.kw["bind"]
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="call-log")

    async def _run(self, function: Any, *args: Any) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._writer, partial(function, *args))

    def close(self) -> None:
        self._writer.shutdown(wait=True)

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

    def _rate(self, uniqueid: str, rating: int) -> None:
        from ivr.cases.models import Case

        with self._engine.begin() as connection:
            connection.execute(
                update(Call).where(Call.uniqueid == uniqueid).values(satisfaction=rating)
            )
            connection.execute(
                update(Case).where(Case.call_uniqueid == uniqueid).values(satisfaction=rating)
            )

    async def call_ended(self, end: CallEnd) -> None:
        await self._run(self._close, end)

    def _insert(self, start: CallStart) -> int:
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
        try:
            with self._engine.begin() as connection:
                inserted = connection.execute(insert(Call).values(**values))
                return int(inserted.inserted_primary_key[0])
        except IntegrityError:  # the flow re-entered for the same channel
            with self._engine.connect() as connection:
                return int(
                    connection.scalar(select(Call.id).where(Call.uniqueid == start.uniqueid))
                )

    def _update(self, uniqueid: str, values: dict[str, Any]) -> None:
        with self._engine.begin() as connection:
            connection.execute(update(Call).where(Call.uniqueid == uniqueid).values(**values))

    def _close(self, end: CallEnd) -> None:
        answered_by = end.answered_by or end.queue_member or None
        values: dict[str, Any] = {
            "ended_at": end.ended_at,
            "dial_status": end.dial_status or None,
            "answered_by": answered_by,
            "outcome": outcome_of(end),
        }
        if end.answered_epoch is not None and answered_by:
            values["answered_at"] = datetime.fromtimestamp(end.answered_epoch, UTC)
        with self._engine.begin() as connection:
            closed = connection.execute(
                update(Call).where(Call.uniqueid == end.uniqueid).values(**values)
            )
        if not closed.rowcount:
            logger.warning("call-ended for unknown call %s", end.uniqueid)
