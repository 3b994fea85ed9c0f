"""The figures of the statistics page, its API and its exports."""

from __future__ import annotations

import logging
from collections import Counter
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    and_,
    cast,
    func,
    literal_column,
    or_,
    select,
    true,
)
from sqlalchemy import case as when
from sqlalchemy.orm import Session, sessionmaker

from ivr.cases.models import Case, CaseForward, ForwardEvent
from ivr.contracts.channels import Channel
from ivr.contracts.statuses import ForwardStatus
from ivr.db.models import Call
from ivr.queue_records.models import QueueCall
from ivr.reports.call_rollup import (
    QUARTER,
    day_bounds,
    day_ranges,
    distinct_callers_query,
    local_day_shift,
    local_midnight_quarter,
    offset_groups,
    queue_figures,
    split_period,
)
from ivr.reports.models import CallDayCount, QueueDayCount

logger = logging.getLogger(__name__)


def _period_bounds(day_from: date, day_to: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    start = datetime.combine(day_from, time(), zone).astimezone(UTC)
    end = datetime.combine(day_to + timedelta(days=1), time(), zone).astimezone(UTC)
    return start, end


def _scopes(
    hotline: tuple[str, list[str]] | None,
) -> tuple[ColumnElement[bool], ColumnElement[bool], ColumnElement[bool]]:
    if hotline is None:
        return true(), true(), true()
    # Queue records carry the queue, not the hotline: its owner decides.
    hotline_id, queues = hotline
    return Call.hotline_id == hotline_id, QueueCall.queue.in_(queues), Case.hotline_id == hotline_id


def forward_query(start: datetime, end: datetime, hotline_id: str | None) -> Select[Any]:
    """The forwards sent in ``[start, end)`` (of one hotline, or all): unit,
    due date, status, when answered and, for a returned one, when it was
    returned (its last move into ``returned``, from the history)."""
    returned_at = (
        select(func.max(ForwardEvent.at))
        .where(
            ForwardEvent.forward_id == CaseForward.id,
            ForwardEvent.status_to == ForwardStatus.RETURNED.value,
        )
        .scalar_subquery()
    )
    scope = true() if hotline_id is None else CaseForward.hotline_id == hotline_id
    return select(
        CaseForward.unit_code,
        CaseForward.due_date,
        CaseForward.status,
        CaseForward.answered_at,
        # Looked up only for the returned ones (an index on forward_id).
        when((CaseForward.status == ForwardStatus.RETURNED.value, returned_at)).label(
            "returned_at"
        ),
    ).where(CaseForward.sent_at >= start, CaseForward.sent_at < end, scope)


CASE_COLUMNS = (Case.topic, Case.area_code, Case.responsible_unit, Case.status, Case.due_date,
                Case.closed_at, Case.received_at)  # fmt: skip


def statistics_queries(
    day_from: date,
    day_to: date,
    zone: ZoneInfo,
    hotline: tuple[str, list[str]] | None,
    postgresql: bool = True,
    split: tuple[list[date], list[tuple[datetime, datetime]]] | None = None,
) -> dict[str, Any]:
    """The queries behind the statistics page (also for the bench's plans).

    ``split`` is the period as :func:`~ivr.reports.call_rollup.split_period`
    gives it: the UTC days read from the daily roll-up, and the intervals read
    from the calls (default: all of it from the calls). Counting is done by the
    database (GROUP BY); only the grouping by the hotline's local hour needs a
    date function, so the calls give quarter hours (the roll-up keeps them)
    and Python turns them into the zone's days and hours; on SQLite
    (embedded, small) the raw call times are fetched and grouped in Python."""
    start, end = _period_bounds(day_from, day_to, zone)
    days, rest = split if split is not None else ([], [(start, end)])
    call_scope, queue_scope, case_scope = _scopes(hotline)
    queries: dict[str, Any] = {}
    if rest:
        raw_calls = or_(*(and_(Call.started_at >= a, Call.started_at < b) for a, b in rest))
        in_rest = (raw_calls, call_scope)
        if postgresql:
            # Every zone's offset is a whole number of quarter hours, and
            # binning costs a third of converting each row with timezone().
            quarter = func.date_bin(
                literal_column("interval '15 minutes'"),
                Call.started_at,
                literal_column("timestamptz '2000-01-01 00:00:00+00'"),
            )
            queries["per_hour"] = select(quarter, func.count()).where(*in_rest).group_by(quarter)
        else:
            queries["per_hour"] = select(Call.started_at).where(*in_rest)
        queries["by_area_outcome"] = (
            select(Call.area_code, Call.outcome, func.count())
            .where(*in_rest)
            .group_by(Call.area_code, Call.outcome)
        )
        raw_queue = or_(*(and_(QueueCall.joined_at >= a, QueueCall.joined_at < b) for a, b in rest))
        queries["queue"] = select(*queue_figures()).where(raw_queue, queue_scope)
    if days:
        rolled_scope = true() if hotline is None else CallDayCount.hotline_id == hotline[0]
        # Runs of consecutive days as ranges: "day = ANY(366 dates)" is a
        # comparison with each date for each row.
        ranges = day_ranges(days)
        rolled = (or_(*(CallDayCount.day.between(a, b) for a, b in ranges)), rolled_scope)
        total = func.sum(CallDayCount.calls)
        # The local days and hours: per run of days at one offset from UTC,
        # two sums per day (before and after local midnight) and one per
        # quarter hour; the days of a clock change quarter by quarter.
        quarters = (CallDayCount.dimension == "quarter", rolled_scope)
        slot = cast(CallDayCount.value, Integer)
        for offset, group in offset_groups(days, zone).items():
            in_group = or_(*(CallDayCount.day.between(a, b) for a, b in day_ranges(group)))
            if offset is None:
                queries["rolled_quarters"] = (
                    select(CallDayCount.day, slot, total)
                    .where(in_group, *quarters)
                    .group_by(CallDayCount.day, slot)
                )
                continue
            after = slot >= local_midnight_quarter(offset)
            queries[f"rolled_days {offset}"] = (
                select(CallDayCount.day, after, total)
                .where(in_group, *quarters)
                .group_by(CallDayCount.day, after)
            )
            queries[f"rolled_hours {offset}"] = (
                select(slot, total).where(in_group, *quarters).group_by(slot)
            )
        queries["rolled_area_outcome"] = (
            select(CallDayCount.dimension, CallDayCount.value, total)
            .where(*rolled, CallDayCount.dimension.in_(("area", "outcome")))
            .group_by(CallDayCount.dimension, CallDayCount.value)
        )
        queue_rolled = true() if hotline is None else QueueDayCount.queue.in_(hotline[1])
        queries["rolled_queue"] = select(
            func.sum(QueueDayCount.answered),
            func.sum(QueueDayCount.abandoned),
            func.sum(QueueDayCount.wait_tenths),
            func.sum(QueueDayCount.waits),
        ).where(or_(*(QueueDayCount.day.between(a, b) for a, b in ranges)), queue_rolled)
    # Each number's first call of the period: a count over an index.
    queries["distinct_callers"] = distinct_callers_query(
        start, end, None if hotline is None else hotline[0]
    )
    # A year is some twenty thousand cases: their rows are fetched, the
    # on-time report needs each one's dates.
    queries["cases"] = select(*CASE_COLUMNS).where(
        Case.received_at >= start, Case.received_at < end, case_scope
    )
    # The per-unit report counts forwards (a case sent to two units is two).
    queries["forwards"] = forward_query(start, end, None if hotline is None else hotline[0])
    return queries


def statistics(
    sessions: sessionmaker[Session],
    day_from: date,
    day_to: date,
    zone: ZoneInfo,
    hotline: tuple[str, list[str]] | None = None,
    today: date | None = None,
    use_rollup: bool = True,
) -> dict[str, Any]:
    """Counts for the statistics page, in the hotline's time zone; ``hotline``
    (its id and its queues' ids) limits them to one hotline. Deadlines are
    judged as of the period's last day, or ``today`` (default: the date now
    in ``zone``) when that is earlier: a past period's report stays the same
    whenever it is printed. The days the daily roll-up holds are summed from
    it (``use_rollup=False``: everything from the records, the same figures)."""
    start, end = _period_bounds(day_from, day_to, zone)
    with sessions() as session:
        postgresql = session.get_bind().dialect.name == "postgresql"
        if postgresql:
            # One snapshot for the page: which days are rolled up and their
            # rows, even while the job rewrites a day (or a late call takes
            # one out of the roll-up) between two of these statements.
            session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
        split = split_period(session, start, end) if use_rollup else ([], [(start, end)])
        queries = statistics_queries(day_from, day_to, zone, hotline, postgresql, split)
        per_quarter: Counter[datetime] = Counter()
        by_area: Counter[str] = Counter()
        by_outcome: Counter[str] = Counter()
        queue = [0, 0, 0, 0]  # answered, abandoned, wait tenths, waits
        if "per_hour" in queries:
            if postgresql:
                for quarter, count in session.execute(queries["per_hour"]):
                    per_quarter[quarter] += count
            else:
                for (started_at,) in session.execute(queries["per_hour"]):
                    per_quarter[started_at.replace(minute=started_at.minute // 15 * 15,
                                                   second=0, microsecond=0)] += 1  # fmt: skip
            for area_code, outcome, count in session.execute(queries["by_area_outcome"]):
                by_area[area_code or "-"] += count
                by_outcome[outcome] += count
            for n, value in enumerate(session.execute(queries["queue"]).one()):
                queue[n] += int(value or 0)
        per_day: Counter[date] = Counter()
        per_hour: Counter[int] = Counter()
        for name, query in queries.items():
            if name == "rolled_quarters":
                for day, value, count in session.execute(query):
                    per_quarter[day_bounds(day)[0] + value * QUARTER] += count
            elif name.startswith("rolled_days "):
                offset = int(name.split()[1])
                boundary = local_midnight_quarter(offset)
                for day, after, count in session.execute(query):
                    shift = local_day_shift(offset, boundary if after else 0)
                    per_day[day + timedelta(days=shift)] += count
            elif name.startswith("rolled_hours "):
                offset = int(name.split()[1])
                for value, count in session.execute(query):
                    per_hour[(value * 15 + offset) % 1440 // 60] += count
        if "rolled_area_outcome" in queries:
            for dimension, value, count in session.execute(queries["rolled_area_outcome"]):
                if dimension == "area":
                    by_area[value or "-"] += count
                else:
                    by_outcome[value] += count
            for n, value in enumerate(session.execute(queries["rolled_queue"]).one()):
                queue[n] += int(value or 0)
        distinct_callers = session.scalar(queries["distinct_callers"]) or 0
        cases = session.execute(queries["cases"]).all()
        forwards = session.execute(queries["forwards"]).all()
    per_local_hour: Counter[datetime] = Counter()
    for quarter, count in per_quarter.items():
        local = quarter.astimezone(zone)
        per_local_hour[local.replace(minute=0, second=0, microsecond=0)] += count
    answered, abandoned, wait_tenths, waits = queue
    days = [day_from + timedelta(days=n) for n in range((day_to - day_from).days + 1)]
    for local_hour, count in per_local_hour.items():
        per_day[local_hour.date()] += count
        per_hour[local_hour.hour] += count
    today = today or datetime.now(zone).date()
    deadlines = deadline_report(cases, min(day_to, today), zone, forwards)
    return {
        "from": day_from.isoformat(),
        "to": day_to.isoformat(),
        "calls": sum(per_day.values()),
        "distinct_callers": distinct_callers,
        "per_day": [(d.isoformat(), per_day.get(d, 0)) for d in days],
        "per_hour": [(h, per_hour.get(h, 0)) for h in range(24)],
        "by_area": sorted(by_area.items(), key=lambda item: (-item[1], item[0])),
        "by_outcome": sorted(by_outcome.items(), key=lambda item: (-item[1], item[0])),
        "by_topic": Counter(c.topic or "-" for c in cases).most_common(),
        "queue_answered": answered,
        "queue_abandoned": abandoned,
        # Waits are summed in whole tenths of a second: the same average
        # whether the days come from the roll-up or from the records.
        "average_wait_seconds": round(wait_tenths / 10 / waits, 1) if waits else 0.0,
        "cases": len(cases),
        "forwards": deadlines["unit_total"]["received"],
        # (unit, on time, late) for the chart: "late" counts open forwards past due too.
        "cases_by_unit": [
            (row["unit"], row["on_time"], row["late"] + row["overdue"])
            for row in deadlines["units"]
            if row["on_time"] or row["late"] or row["overdue"]
        ],
        # As a district reports it: on time, late, open within the deadline and
        # open past it, per unit, per ward and per topic and in total, with the
        # on-time rate.
        "deadlines": deadlines,
    }


def month_bounds(year: int, month: int) -> tuple[date, date]:
    """The first and last day of a month."""
    first = date(year, month, 1)
    following = date(year + month // 12, month % 12 + 1, 1)
    return first, following - timedelta(days=1)


def monthly_report(
    sessions: sessionmaker[Session],
    year: int,
    month: int,
    zone: ZoneInfo,
    hotline_id: str | None = None,
    today: date | None = None,
) -> dict[str, Any]:
    """The on-time report of one month (of one hotline, or all), judged as of
    the month's last day or ``today`` if earlier: per unit the forwards sent
    in the month, per ward and per topic the cases received in it."""
    day_from, day_to = month_bounds(year, month)
    start, end = _period_bounds(day_from, day_to, zone)
    scope = true() if hotline_id is None else Case.hotline_id == hotline_id
    with sessions() as session:
        cases = session.execute(
            select(*CASE_COLUMNS).where(Case.received_at >= start, Case.received_at < end, scope)
        ).all()
        forwards = session.execute(forward_query(start, end, hotline_id)).all()
    today = today or datetime.now(zone).date()
    return {
        "month": f"{year:04d}-{month:02d}",
        "from": day_from.isoformat(),
        "to": day_to.isoformat(),
        "hotline": hotline_id,
        "cases": len(cases),
        "forwards": len(forwards),
        "deadlines": deadline_report(cases, min(day_to, today), zone, forwards),
    }


DEADLINE_COUNTS = ("on_time", "late", "in_deadline", "overdue")
# Per unit, the forwards also count the ones the unit returned as not its own.
UNIT_COUNTS = (*DEADLINE_COUNTS, "returned")


def _deadline_row(key: str, counts: Counter[str], kind: str = "unit") -> dict[str, Any]:
    row: dict[str, Any] = {kind: key, **{name: counts[name] for name in DEADLINE_COUNTS}}
    row["total"] = sum(counts[name] for name in DEADLINE_COUNTS)
    # Of the cases whose deadline is decided (closed, or open past due), the
    # share closed on time, in percent; open cases still within the deadline
    # are left out, they may yet be on time. None when nothing is decided.
    decided = counts["on_time"] + counts["late"] + counts["overdue"]
    row["on_time_rate"] = round(100 * counts["on_time"] / decided, 1) if decided else None
    return row


def _unit_row(key: str, counts: Counter[str]) -> dict[str, Any]:
    """A unit's forwards: received (all sent to it in the period), the four
    counts, returned; the rate as for cases, returned ones left out (not the
    unit's to answer)."""
    row = _deadline_row(key, counts)
    row["returned"] = counts["returned"]
    row["received"] = row["total"] = sum(counts[name] for name in UNIT_COUNTS)
    return row


def forward_kind(forward: Any, as_of: date, zone: ZoneInfo) -> str:
    """Where one forward stood at the end of ``as_of``: answered on or before
    its due date (``on_time``; the due date is the forward's current one, so
    after any extension granted), answered after it (``late``), returned as
    not the unit's (``returned``), else still owed: ``in_deadline`` while
    ``as_of`` is on or before the due date, ``overdue`` after. An answer or
    a return after ``as_of`` had not happened yet then."""
    if forward.status == ForwardStatus.ANSWERED and forward.answered_at is not None:
        answered = forward.answered_at.astimezone(zone).date()
        if answered <= as_of:
            return "on_time" if answered <= forward.due_date else "late"
    returned = forward.returned_at if forward.status == ForwardStatus.RETURNED else None
    if returned is not None and returned.astimezone(zone).date() <= as_of:
        return "returned"
    return "in_deadline" if as_of <= forward.due_date else "overdue"


def deadline_report(cases: Any, as_of: date, zone: ZoneInfo, forwards: Any = ()) -> dict[str, Any]:
    """Each case in one of four, as it stood at the end of ``as_of``: closed on
    or before its due date (on time), closed after it (late), open and not yet
    due (in deadline), open and past due (overdue). A case is closed when
    ``closed_at`` is set (closed or rejected); one closed after ``as_of`` was
    still open then. Rows need ``area_code``, ``topic``, ``due_date`` and
    ``closed_at``; the counts are given per ward (``areas``, "-" for none) and
    per topic ("-" for none), and in total.

    Per unit (``units``, total ``unit_total``) the report counts ``forwards``
    (rows of :func:`forward_query`), not cases: a case sent to two units is
    one forward for each, each judged on its own deadline by
    :func:`forward_kind`."""
    groups: dict[str, dict[str, Counter[str]]] = {"areas": {}, "topics": {}}
    kinds = {"areas": "area", "topics": "topic"}
    total: Counter[str] = Counter()
    for case in cases:
        done = case.closed_at.astimezone(zone).date() if case.closed_at else None
        if done is not None and done <= as_of:
            kind = "on_time" if done <= case.due_date else "late"
        else:
            kind = "in_deadline" if as_of <= case.due_date else "overdue"
        groups["areas"].setdefault(case.area_code or "-", Counter())[kind] += 1
        groups["topics"].setdefault(case.topic or "-", Counter())[kind] += 1
        total[kind] += 1
    units: dict[str, Counter[str]] = {}
    unit_total: Counter[str] = Counter()
    for forward in forwards:
        kind = forward_kind(forward, as_of, zone)
        units.setdefault(forward.unit_code, Counter())[kind] += 1
        unit_total[kind] += 1
    return {
        "as_of": as_of.isoformat(),
        "units": [_unit_row(code, units[code]) for code in sorted(units)],
        "unit_total": _unit_row("", unit_total),
        **{
            name: [_deadline_row(key, counts[key], kinds[name]) for key in sorted(counts)]
            for name, counts in groups.items()
        },
        "total": _deadline_row("", total),
    }


def cases_by_channel(
    sessions: sessionmaker[Session],
    day_from: date,
    day_to: date,
    zone: ZoneInfo,
    hotline_id: str | None = None,
) -> list[tuple[str, int]]:
    """Cases received in the period per channel (issue 14: phone, voicemail,
    SMS, email, Zalo, web form, Open311), of one hotline or all; every channel
    is listed, in the order of :class:`ivr.contracts.channels.Channel`, then
    any value outside it (older data)."""
    start, end = _period_bounds(day_from, day_to, zone)
    scope = true() if hotline_id is None else Case.hotline_id == hotline_id
    query = (
        select(Case.channel, func.count())
        .where(Case.received_at >= start, Case.received_at < end, scope)
        .group_by(Case.channel)
    )
    with sessions() as session:
        counted = {str(channel): int(count) for channel, count in session.execute(query)}
    known = [(c.value, counted.pop(c.value, 0)) for c in Channel]
    return known + sorted(counted.items())
