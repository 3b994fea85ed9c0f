"""The statistics page's figures kept ahead, exactly, for a province's scale.

Two things make a year's page a sum of small rows instead of a pass over two
million calls (README, "At a province's scale"):

- **A daily roll-up** (:mod:`ivr.reports.models`): per UTC day and hotline
  the calls per quarter hour, per area and per outcome, and per queue the
  queue figures. :func:`roll_up` (run by ``hotline serve`` every
  :data:`ROLL_UP_EVERY`) writes a day once it is settled: over for
  :data:`GRACE` and no call of it still in progress. It rewrites the last
  :data:`REDO_DAYS` days every run (a queue record is written when its call
  leaves the queue, and a call started before midnight ends after it), and
  any rolled day whose count of calls or queue records changed since
  (checked over the last :data:`CHECK_DAYS` days). A call recorded late for
  a past day (the fallback spool, ivr/fallback_calls.py) takes its day out
  of the roll-up in the same transaction (:func:`forget_day_of`), so the page
  reads that day from the calls until the next run rolls it again. Each day
  is rewritten whole (delete, insert, list) in one transaction: a reader sees
  the day rolled or not, never half.
- **Distinct callers from an index**: each call carries the time of the same
  number's previous call to the same hotline and to any hotline
  (``calls.previous_call_at``, ``previous_call_anywhere_at``); the callers of
  ``[start, end)`` are then exactly the calls of the period with a number
  whose previous call is none or before ``start`` (each number's first call
  in the period), a count over ``ix_calls_first_caller_*``, no hash of a
  million numbers. :func:`link_previous_call` keeps the chain when a call is
  recorded, in or out of time order; :func:`relink_numbers` when retention
  replaces numbers (a pseudonym is another number, an erased one none).
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, and_, delete, func, insert, literal_column, or_, select
from sqlalchemy.orm import Session, sessionmaker

from ivr.contracts.statuses import CallOutcome
from ivr.db.executor import DbExecutor
from ivr.db.models import Call
from ivr.db.periodic import PeriodicJob
from ivr.queue_records.models import QueueCall
from ivr.reports.models import CallDayCount, QueueDayCount, RolledDay

logger = logging.getLogger(__name__)

ROLL_UP_EVERY = timedelta(hours=1)
# A day is rolled this long after its end (and only with no call in progress).
GRACE = timedelta(hours=1)
REDO_DAYS = 2
CHECK_DAYS = 35
QUARTER = timedelta(minutes=15)
ABANDONED = ("abandoned", "left", "lost")

_CALLS = Call.__table__


def distinct_callers_query(start: datetime, end: datetime, hotline_id: str | None) -> Any:
    """The count of distinct numbers that called in ``[start, end)`` (one
    hotline's, or any), read from ``ix_calls_first_caller_*``."""
    if hotline_id is None:
        previous = Call.previous_call_anywhere_at
        scope: tuple[Any, ...] = ()
    else:
        previous = Call.previous_call_at
        scope = (Call.hotline_id == hotline_id,)
    return select(func.count()).where(
        *scope,
        Call.started_at >= start,
        Call.started_at < end,
        # The partial indexes' condition, word for word.
        Call.caller_number != "",
        or_(previous.is_(None), previous < start),
    )


# --- the daily roll-up --------------------------------------------------------------


def day_bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time(), UTC)
    return start, start + timedelta(days=1)


def rolled_days(session: Session, first: date, last: date) -> set[date]:
    """The UTC days in ``[first, last]`` whose figures are rolled up."""
    if last < first:
        return set()
    return set(session.scalars(select(RolledDay.day).where(RolledDay.day.between(first, last))))


def day_ranges(days: list[date]) -> list[tuple[date, date]]:
    """Sorted days as runs of consecutive days, first and last of each."""
    ranges: list[tuple[date, date]] = []
    for day in days:
        if ranges and ranges[-1][1] + timedelta(days=1) == day:
            ranges[-1] = (ranges[-1][0], day)
        else:
            ranges.append((day, day))
    return ranges


def offset_groups(days: list[date], zone: ZoneInfo) -> dict[int | None, list[date]]:
    """The UTC days by ``zone``'s offset from UTC during the whole day, in
    minutes (``None``: the days a clock change falls in). Within one offset
    each quarter hour of a UTC day is one local hour, and the local midnight
    one quarter: the page's hours and days are then a few sums by quarter."""
    groups: dict[int | None, list[date]] = {}
    for day in days:
        start, end = day_bounds(day)
        first = start.astimezone(zone).utcoffset()
        last = (end - timedelta(microseconds=1)).astimezone(zone).utcoffset()
        offset = None if first != last or first is None else int(first.total_seconds() // 60)
        groups.setdefault(offset, []).append(day)
    return groups


def local_midnight_quarter(offset: int) -> int:
    """The first quarter of a UTC day (0–96) whose local date differs from
    that of quarter 0, at ``offset`` minutes from UTC (96: none)."""
    if offset > 0:
        return (1440 - offset + 14) // 15
    if offset < 0:
        return (-offset + 14) // 15
    return 96


def local_day_shift(offset: int, quarter: int) -> int:
    """Days from a UTC day to the local date of its ``quarter``."""
    return (quarter * 15 + offset) // 1440


def split_period(
    session: Session, start: datetime, end: datetime
) -> tuple[list[date], list[tuple[datetime, datetime]]]:
    """``[start, end)`` as the rolled-up UTC days it covers whole, and the
    rest as a few intervals to read from the calls (the edges of a local
    period, and any day not rolled yet)."""
    first = (start + timedelta(days=1) if start.timetz() != time(tzinfo=UTC) else start).date()
    last = end.date() - timedelta(days=1)
    rolled = rolled_days(session, first, last)
    days = sorted(rolled)
    rest: list[tuple[datetime, datetime]] = []
    at = start
    for day in days:
        day_start, day_end = day_bounds(day)
        if at < day_start:
            rest.append((at, day_start))
        at = day_end
    if at < end:
        rest.append((at, end))
    return days, rest


def _quarters_of_day(connection: Connection, day: date) -> list[tuple[str, int, int]]:
    """(hotline, quarter hour of the day, calls) of one UTC day."""
    start, end = day_bounds(day)
    in_day = (Call.started_at >= start, Call.started_at < end)
    counts: Counter[tuple[str, int]] = Counter()
    if connection.dialect.name == "postgresql":
        quarter = func.date_bin(
            literal_column("interval '15 minutes'"),
            Call.started_at,
            literal_column("timestamptz '2000-01-01 00:00:00+00'"),
        )
        rows = connection.execute(
            select(Call.hotline_id, quarter, func.count())
            .where(*in_day)
            .group_by(Call.hotline_id, quarter)
        )
        for hotline_id, at, count in rows:
            counts[hotline_id, int((at - start) / QUARTER)] += count
    else:
        # SQLite has no date arithmetic worth trusting at a boundary: Python counts.
        for hotline_id, at in connection.execute(
            select(Call.hotline_id, Call.started_at).where(*in_day)
        ):
            counts[hotline_id, int((at - start) / QUARTER)] += 1
    return [(h, q, n) for (h, q), n in counts.items()]


def queue_figures(*conditions: Any) -> Any:
    """Answered, abandoned, waits in tenths of a second and their count: the
    same columns whether summed from the roll-up or from the records."""
    answered = QueueCall.outcome == "answered"
    waited = and_(answered, QueueCall.wait_seconds > 0)
    return (
        func.count().filter(answered),
        func.count().filter(QueueCall.outcome.in_(ABANDONED)),
        # Waits are recorded to the tenth: summed as whole tenths, exact.
        func.sum(func.round(QueueCall.wait_seconds * 10)).filter(waited),
        func.count().filter(waited),
    )


def _roll_day(connection: Connection, day: date, now: datetime) -> bool:
    """Rewrite one UTC day's roll-up; False (and the day left out) while a
    call of it is still in progress."""
    start, end = day_bounds(day)
    in_day = (Call.started_at >= start, Call.started_at < end)
    connection.execute(delete(RolledDay).where(RolledDay.day == day))
    connection.execute(delete(CallDayCount).where(CallDayCount.day == day))
    connection.execute(delete(QueueDayCount).where(QueueDayCount.day == day))
    open_calls = connection.scalar(
        select(func.count()).where(*in_day, Call.outcome == CallOutcome.IN_PROGRESS)
    )
    if open_calls:
        return False
    rows: list[dict[str, Any]] = [
        {"day": day, "hotline_id": h, "dimension": "quarter", "value": str(q), "calls": n}
        for h, q, n in _quarters_of_day(connection, day)
    ]
    area = func.coalesce(Call.area_code, "")
    for dimension, column in (("area", area), ("outcome", Call.outcome)):
        for hotline_id, value, count in connection.execute(
            select(Call.hotline_id, column, func.count())
            .where(*in_day)
            .group_by(Call.hotline_id, column)
        ):
            rows.append(
                {"day": day, "hotline_id": hotline_id, "dimension": dimension,
                 "value": value, "calls": count}
            )  # fmt: skip
    if rows:
        connection.execute(insert(CallDayCount), rows)
    queue_rows = [
        {"day": day, "queue": queue, "answered": a, "abandoned": b,
         "wait_tenths": int(w or 0), "waits": n}
        for queue, a, b, w, n in connection.execute(
            select(QueueCall.queue, *queue_figures())
            .where(QueueCall.joined_at >= start, QueueCall.joined_at < end)
            .group_by(QueueCall.queue)
        )
    ]  # fmt: skip
    if queue_rows:
        connection.execute(insert(QueueDayCount), queue_rows)
    calls, queue_calls = _day_counts(connection, day)
    connection.execute(
        insert(RolledDay).values(day=day, rolled_at=now, calls=calls, queue_calls=queue_calls)
    )
    return True


def _day_counts(connection: Connection, day: date) -> tuple[int, int]:
    start, end = day_bounds(day)
    calls = connection.scalar(
        select(func.count()).where(Call.started_at >= start, Call.started_at < end)
    )
    queue_calls = connection.scalar(
        select(func.count()).where(QueueCall.joined_at >= start, QueueCall.joined_at < end)
    )
    return int(calls or 0), int(queue_calls or 0)


def forget_day_of(connection: Connection, started_at: datetime) -> None:
    """Take the UTC day of ``started_at`` out of the roll-up (a record for it
    arrived late): the page reads it from the calls until it is rolled again."""
    day = started_at.astimezone(UTC).date()
    connection.execute(delete(RolledDay).where(RolledDay.day == day))


def days_to_roll(connection: Connection, now: datetime) -> list[date]:
    """Settled days not rolled yet, the last :data:`REDO_DAYS` days, and
    rolled days of the last :data:`CHECK_DAYS` whose counts changed."""
    last = (now - GRACE).date() - timedelta(days=1)
    first_call = connection.scalar(select(func.min(Call.started_at)))
    first_queue = connection.scalar(select(func.min(QueueCall.joined_at)))
    firsts = [t.astimezone(UTC).date() for t in (first_call, first_queue) if t is not None]
    if not firsts or last < min(firsts):
        return []
    first = min(firsts)
    rolled = {
        row.day: (row.calls, row.queue_calls)
        for row in connection.execute(
            select(RolledDay.day, RolledDay.calls, RolledDay.queue_calls).where(
                RolledDay.day >= first
            )
        )
    }
    wanted: list[date] = []
    check_from = last - timedelta(days=CHECK_DAYS - 1)
    redo_from = last - timedelta(days=REDO_DAYS - 1)
    day = first
    while day <= last:
        if (
            day not in rolled
            or day >= redo_from
            or (day >= check_from and rolled[day] != _day_counts(connection, day))
        ):
            wanted.append(day)
        day += timedelta(days=1)
    return wanted


def roll_up(sessions: sessionmaker[Session], now: datetime | None = None) -> int:
    """One run of the job: (re)roll every day :func:`days_to_roll` names, each
    in its own transaction. Returns the days rolled."""
    now = now or datetime.now(UTC)
    with sessions() as session:
        days = days_to_roll(session.connection(), now)
    rolled = 0
    for day in days:
        with sessions.begin() as session:
            rolled += _roll_day(session.connection(), day, now)
    if rolled:
        logger.info("statistics roll-up: %d day(s) rolled", rolled)
    return rolled


class RollUpSchedule:
    """:func:`roll_up` at start, then every :data:`ROLL_UP_EVERY`, on a
    database thread of its own (once per deployment: beside the console)."""

    def __init__(self, sessions: sessionmaker[Session], every: timedelta = ROLL_UP_EVERY) -> None:
        self.sessions = sessions
        self.every = every
        self.db = DbExecutor("statistics-roll-up", 1)
        # A failed run is retried at the next tick; the page reads the calls meanwhile.
        self._schedule = PeriodicJob(
            "roll-up", lambda: self.db.run(roll_up, self.sessions), self.every.total_seconds,
            "statistics roll-up failed", logger,
        )  # fmt: skip

    def start(self) -> None:
        self._schedule.start()

    async def close(self) -> None:
        await self._schedule.close()
        await asyncio.to_thread(self.db.close, True, True)
